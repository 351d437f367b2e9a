"""Shared fixtures: tiny synthetic data sets, generated once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import torch

from captcha_nb.sources import synth

torch.set_num_threads(2)


def pytest_collection_modifyitems(items):
    """Every test under tests/browser carries the `browser` marker, so `-m "not browser"` leaves them out."""
    for item in items:
        if "browser" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """40 captchas of 4 to 6 characters from a 6-symbol alphabet, 100x32: small enough to train on in seconds."""
    return synth.generate(tmp_path_factory.mktemp("tiny"), 40, alphabet="abcd23", length=(4, 6), size=(100, 32), seed=1)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_dir):
    """A short real training run shared by the tests that need a checkpoint."""
    from captcha_nb.core.config import TrainConfig
    from captcha_nb.core.engine import fit

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    config = TrainConfig(data_dir=str(tiny_dir), run_dir=str(run_dir), epochs=2, batch_size=8, progress=False,
                         val_fraction=0.25, max_minutes=5)
    return fit(config)


@pytest.fixture(scope="session", autouse=True)
def headless_matplotlib():
    import matplotlib

    matplotlib.use("Agg")


@pytest.fixture(scope="session")
def recogniser(trained_run):
    from captcha_nb.serving.inference import load_model

    return load_model(trained_run.run_dir / "model.pt")


@pytest.fixture(scope="session")
def tiny_set(tiny_dir):
    from captcha_nb.sources.data import load_dataset

    return load_dataset(tiny_dir)


@pytest.fixture(scope="session")
def sweep_data(tmp_path_factory):
    """300 small captchas: enough for a test split of 60 when test_fraction is 0.2."""
    return synth.generate(tmp_path_factory.mktemp("sweep-data"), 300, alphabet="abcd23", length=4, size=(64, 24),
                          seed=5)


@pytest.fixture(scope="session")
def failing_grid(sweep_data):
    """`sweep` options for a 2 x 2 grid in which one combination fails by design: validation and test shares of 0.5
    each leave nothing to train on, which notebook 03 refuses in its first cell."""
    return ["-p", f"data_dir={sweep_data}", "-p", "val_fraction=0.1,0.5", "-p", "test_fraction=0.2,0.5",
            "-p", "epochs=1", "-p", "batch_size=16", "--notebooks", "03_ctc_training.ipynb"]


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory, failing_grid):
    """The failing grid run once by `python -m captcha_nb sweep` on a local cluster of 2 workers."""
    from captcha_nb.cli import main

    reports = tmp_path_factory.mktemp("reports")
    code = main(["sweep", "--sweep-id", "grid", "--reports", str(reports), *failing_grid, "--workers", "2"])
    return reports / "grid", code


@pytest.fixture
def neutral_copies(tmp_path, tiny_dir):
    """Copy n tiny captchas under neutral names (000.png, ...), as a site's captchas arrive: nothing says what they
    read. Returns a function of n and the name pattern, giving the folder."""
    import shutil

    def copy(n: int, pattern: str = "{:03d}.png"):
        folder = tmp_path / "to-label"
        folder.mkdir()
        for i, picture in enumerate(sorted(tiny_dir.glob("*.png"))[:n]):
            shutil.copy(picture, folder / pattern.format(i))
        return folder

    return copy


@pytest.fixture
def fake_papermill(monkeypatch):
    """Record notebook executions instead of running kernels; write the files notebook 03 would."""
    import papermill

    calls = []

    def execute(source, target, parameters, cwd=None, **kwargs):
        calls.append((source, parameters))
        if "03_" in source:  # paths are given as the kernel sees them, from its working directory
            run_dir = Path(cwd, parameters["run_dir"])
            lr = parameters.get("lr", 0.001)
            with open(run_dir / "metrics.json", "w") as f:
                json.dump({"val_seq_accuracy": 0.5, "val_cer": 0.1, "best_epoch": 2, "train_seconds": 9.0,
                           "test_seq_accuracy": 0.9 if lr < 0.002 else 0.8, "test_cer": 0.02}, f)
            (run_dir / "history.csv").write_text("epoch,val_seq_accuracy,seconds\n1,0.5,4.0\n2,0.96,8.5\n")
        # Like a kernel's output: the saved state of the widgets it displayed.
        return nbformat.v4.new_notebook(metadata={"papermill": {}, "widgets": {"state": {"bar": {}}}})

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    return calls
