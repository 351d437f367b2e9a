"""environment.yml (conda) and pyproject.toml + Makefile (pip) must describe the same environment."""

import re
import tomllib

import yaml

from captcha_nb import PROJECT_ROOT


def load():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    environment = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    return pyproject, environment, makefile


def pip_section(environment):
    return next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))


def test_python_version_agrees():
    pyproject, environment, _ = load()
    conda_python = next(d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python="))
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")
    assert conda_python == f"python={minimum}"


def test_conda_installs_the_project_with_its_dev_extra():
    _, environment, _ = load()
    assert "-e .[dev]" in pip_section(environment)


def test_torch_pin_agrees_with_the_makefile():
    pyproject, environment, makefile = load()
    make_pin = re.search(r"^TORCH_SPEC \?= (\S+)$", makefile, re.M).group(1)
    assert make_pin in pip_section(environment)
    declared = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch"))
    version = make_pin.split("==")[1]
    assert declared.startswith("torch>=") and tuple(map(int, declared[7:].split("."))) <= tuple(map(int, version.split(".")))


def test_declared_dependencies_are_the_ones_the_project_needs():
    pyproject, _, _ = load()
    names = {re.split(r"[<>=!\[ ]", d)[0].lower() for d in pyproject["project"]["dependencies"]}
    assert {"torch", "numpy", "pillow", "pandas", "matplotlib", "tqdm", "ipywidgets", "captcha", "rapidfuzz"} <= names
    dev = {re.split(r"[<>=!\[ ]", d)[0].lower() for d in pyproject["project"]["optional-dependencies"]["dev"]}
    assert {"pytest", "nbval", "papermill", "jupyterlab", "ipykernel"} <= dev
