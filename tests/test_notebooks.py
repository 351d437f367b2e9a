"""The notebooks' papermill contract. Executing every notebook is `make notebooks` (nbval); here: structure, the
parameters, and notebook 03's output files."""

import json

import nbformat
import papermill
import pytest

from captcha_nb import NOTEBOOKS_DIR
from captcha_nb.runs import NOTEBOOKS

COMMON = {"data_dir", "run_dir", "seed", "figures_dir"}
TRAINING = COMMON | {"model", "epochs", "max_minutes", "batch_size", "lr", "device"}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_clean_and_parameterised(name):
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), "commit notebooks without outputs"
    for line in tagged[0].source.splitlines():
        assert "#" in line, f"parameter line without a comment: {line}"
    accepted = set(papermill.inspect_notebook(str(NOTEBOOKS_DIR / name)))
    assert (TRAINING if name.startswith("03") else COMMON) <= accepted
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[-1].cell_type == "code"  # ends with a table or a figure


def execute_03(tmp_path, **parameters):
    return papermill.execute_notebook(str(NOTEBOOKS_DIR / "03_ctc_training.ipynb"), str(tmp_path / "out.ipynb"),
                                      parameters=parameters, kernel_name="python3", progress_bar=False)


def test_training_notebook_writes_the_same_files_as_the_cli(tmp_path, tiny_dir):
    run_dir = tmp_path / "run"
    execute_03(tmp_path, data_dir=str(tiny_dir), run_dir=str(run_dir), epochs=1, batch_size=8, val_fraction=0.25)
    for name in ["model.pt", "history.csv", "metrics.json", "split.json"]:
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 1


@pytest.mark.parametrize(
    "parameters,message",
    [
        ({"model": "nope"}, "model='nope'"),
        ({"epochs": -2}, "epochs=-2"),
        ({"data_dir": "/no/such/data"}, "data_dir='/no/such/data'"),
    ],
)
def test_wrong_parameters_fail_early_with_a_clear_message(tmp_path, tiny_dir, parameters, message):
    given = {"data_dir": str(tiny_dir), "run_dir": str(tmp_path / "r"), **parameters}
    with pytest.raises(papermill.PapermillExecutionError) as error:
        execute_03(tmp_path, **given)
    assert message in str(error.value)
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    failing = [c for c in executed.cells if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.outputs)]
    assert failing and "from captcha_nb" in failing[0].source  # the cell right after `parameters`
    assert not (tmp_path / "r" / "model.pt").exists()


def load_prepare():
    import importlib.util

    from captcha_nb import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("prepare", PROJECT_ROOT / "tests" / "notebooks" / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_cells_take_the_reference_outputs_and_stale_ones_fail_under_ci(tmp_path, monkeypatch):
    prepare = load_prepare()
    checked = "# NBVAL_CHECK_OUTPUT\nprint(936)"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(checked), nbformat.v4.new_code_cell("1")])
    nbformat.write(notebook, tmp_path / "n.ipynb")
    executed = nbformat.v4.new_code_cell(checked, execution_count=3,
                                         outputs=[nbformat.v4.new_output("stream", name="stdout", text="936\n")])
    assert prepare.attach_reference(tmp_path / "n.ipynb", {checked: executed}) == 1
    cell = nbformat.read(tmp_path / "n.ipynb", as_version=4).cells[0]
    assert cell.outputs[0]["text"] == "936\n" and cell.execution_count == 3

    nbformat.write(notebook, tmp_path / "n.ipynb")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(SystemExit, match="regenerate"):
        prepare.attach_reference(tmp_path / "n.ipynb", {"# NBVAL_CHECK_OUTPUT\nprint(1)": executed})
    monkeypatch.delenv("CI")
    assert prepare.attach_reference(tmp_path / "n.ipynb", None) == 0
    assert not nbformat.read(tmp_path / "n.ipynb", as_version=4).cells[0].source.startswith("# NBVAL")
