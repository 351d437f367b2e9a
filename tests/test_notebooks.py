"""The notebooks' papermill contract: structure, parameters, and the named values each notebook records when run.

`make notebooks` runs them as committed under nbval; here papermill runs them on tiny data and the tests assert on
what they recorded (`workspace.record`), never on printed text, so editing a cell never needs a new reference.
"""

import json

import nbformat
import papermill
import pytest

from captcha_nb import NOTEBOOKS_DIR
from captcha_nb.views import compare
from captcha_nb.views.workspace import read_records
from captcha_nb.workflows.runs import NOTEBOOKS

pytestmark = pytest.mark.slow  # notebooks, sweeps, benchmarks or training run end to end

COMMON = {"data_dir", "run_dir", "seed", "figures_dir"}
TRAINING = COMMON | {"model", "epochs", "max_minutes", "batch_size", "lr", "device"}
ALL_NOTEBOOKS = sorted(p.name for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def test_every_numbered_notebook_is_known():
    assert ALL_NOTEBOOKS == sorted([*NOTEBOOKS, "06_compare_runs.ipynb", "07_labelling.ipynb"])


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_committed_notebook_is_clean_and_parameterised(name):
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), "commit notebooks without outputs"
    for line in tagged[0].source.splitlines():
        assert "#" in line, f"parameter line without a comment: {line}"
    accepted = set(papermill.inspect_notebook(str(NOTEBOOKS_DIR / name)))
    expected = ({"sweep_dir", "figures_dir"} if name.startswith("06") else TRAINING if name.startswith("03")
                else {"images_dir", "run_dir", "figures_dir"} if name.startswith("07") else COMMON)
    assert expected <= accepted
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[-1].cell_type == "code"  # ends with a table or a figure


def test_training_notebook_offers_every_config_field_with_the_config_default():
    from dataclasses import fields

    from captcha_nb.core.config import TrainConfig

    accepted = papermill.inspect_notebook(str(NOTEBOOKS_DIR / "03_ctc_training.ipynb"))
    # data_dir, run_dir and progress are set by the notebook itself (it prints static lines, never a live bar).
    for f in fields(TrainConfig):
        if f.name in ("data_dir", "run_dir", "progress"):
            continue
        assert f.name in accepted, f"notebook 03 has no parameter {f.name}"
        assert eval(accepted[f.name]["default"]) == getattr(TrainConfig(), f.name), f"notebook 03's {f.name} differs"
    exploration = papermill.inspect_notebook(str(NOTEBOOKS_DIR / "01_data_exploration.ipynb"))
    for name in ("val_fraction", "test_fraction", "seed"):
        assert eval(exploration[name]["default"]) == getattr(TrainConfig(), name), name


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


@pytest.fixture(scope="module")
def executed(tmp_path_factory, tiny_dir):
    """Notebooks 01 to 05 and 08 run by papermill with small parameters on the tiny set; 04 and 05 read 03's run."""
    out = tmp_path_factory.mktemp("notebooks")
    run_dir = out / "run"
    small = {
        "01_data_exploration.ipynb": {"val_fraction": 0.25, "test_fraction": 0.0},
        "02_model_building.ipynb": {},
        "03_ctc_training.ipynb": {"run_dir": str(run_dir), "max_minutes": 0.1, "batch_size": 8, "val_fraction": 0.25},
        "04_error_analysis.ipynb": {"run_dir": str(run_dir), "beam_width": 3, "n_alignments": 1, "n_suspects": 4},
        "05_prediction_inspector.ipynb": {"run_dir": str(run_dir)},
        "08_ctc_made_visible.ipynb": {"run_dir": str(run_dir), "beam_width": 3, "plateau_minutes": 0.05},
    }
    notebooks = {}
    for name in NOTEBOOKS:
        notebooks[name] = papermill.execute_notebook(
            str(NOTEBOOKS_DIR / name), str(out / name), kernel_name="python3", progress_bar=False,
            parameters={"data_dir": str(tiny_dir), "figures_dir": str(out / "figures"), **small[name]})
    return {name[:2]: read_records(nb) for name, nb in notebooks.items()}, run_dir


def test_exploration_records_what_the_data_set_holds(executed, tiny_set):
    records, _ = executed
    found = records["01"]
    assert found["images"] == len(tiny_set) == 40
    assert found["alphabet"] == "".join(sorted(set("".join(tiny_set.labels))))
    assert (found["train"], found["validation"], found["test"]) == (30, 10, 0)
    assert found["tensor_shape"] == [40, 1, found["input_height"], found["input_width"]]
    assert found["time_steps"] == found["input_width"] // 4
    assert found["input_reasons"]["width"].endswith(f": {found['input_width']}")


def test_model_building_records_shapes_that_agree_with_the_data(executed):
    records, _ = executed
    found = records["02"]
    assert found["num_classes"] == len(records["01"]["alphabet"]) + 1
    assert (found["input_height"], found["input_width"]) == (records["01"]["input_height"], records["01"]["input_width"])
    assert found["logits_shape"] == [8, found["input_width"] // 4, found["num_classes"]]
    assert found["untrained_loss"] > 1


def test_training_records_the_run_it_wrote(executed):
    records, run_dir = executed
    found = records["03"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert found["run_dir"] == str(run_dir) and found["epochs_run"] == metrics["epochs_run"] >= 1
    assert found["val_seq_accuracy"] == metrics["val_seq_accuracy"]
    assert found["stopped_because"] in ("max_minutes", "converged")
    # The style section reads the newest published style benchmark, and flags the styles the gap rule flags there.
    folder, curves = compare.style_curves(seed=0)
    gaps = compare.gap_table(curves)
    assert found["style_benchmark"] == (folder.name if folder else None)
    assert found["styles_overfitting"] == sorted(gaps.index[gaps["epochs overfitting (gap rule)"] > 0])


def test_error_analysis_and_inspector_agree_on_the_validation_images(executed):
    records, run_dir = executed
    split = json.loads((run_dir / "split.json").read_text())
    analysis, inspector = records["04"], records["05"]
    assert analysis["analysed"] == "val" and analysis["images"] == inspector["images"] == len(split["val"])
    assert analysis["errors"] == inspector["errors"]
    assert analysis["seq_accuracy"] == pytest.approx(1 - analysis["errors"] / analysis["images"])
    assert analysis["suspects"] == 4


def test_ctc_notebook_reads_the_label_off_the_lattice_as_torch_does(executed):
    records, run_dir = executed
    found = records["08"]
    assert found["lattice_difference"] < 1e-5 and found["lattice_nll"] == pytest.approx(found["torch_ctc_loss"])
    assert found["states"] == 2 * len(found["label"]) + 1
    # The captcha built by hand: the best path reads nothing, the best labelling 'a'.
    assert (found["built_greedy"], found["built_beam"]) == ("", "a")
    assert found["built_label_probability"] == pytest.approx(0.524)
    assert found["plateau_epochs"] >= 1 and 0 <= found["first_blank_share"] <= 1
    figures = run_dir.parent / "figures"
    assert all((figures / f"08_{name}.png").is_file() for name in ("probability_matrix", "lattice", "plateau"))


def test_comparison_notebook_records_the_sweep_it_read(tiny_sweep, tmp_path):
    sweep_dir, _ = tiny_sweep
    executed = papermill.execute_notebook(
        str(NOTEBOOKS_DIR / "06_compare_runs.ipynb"), str(tmp_path / "06.ipynb"), kernel_name="python3",
        progress_bar=False, parameters={"sweep_dir": str(sweep_dir), "figures_dir": str(tmp_path / "figures")})
    found = read_records(executed)
    record = json.loads((sweep_dir / "sweep.json").read_text())
    finished = [name for name, run in record["runs"].items() if run["status"] == "finished"]
    assert (found["runs"], found["finished"], found["failed"]) == (4, 3, 1)
    assert found["best_run"] in finished
    best = json.loads((sweep_dir / found["best_run"] / "metrics.json").read_text())
    assert found["best_test_accuracy"] == best["test_seq_accuracy"]
    assert (tmp_path / "figures" / "06_accuracy_over_time.png").is_file()


def test_labelling_notebook_records_the_folder_it_shows(trained_run, tiny_dir, tmp_path):
    import shutil

    folder = tmp_path / "new"
    folder.mkdir()
    for i, picture in enumerate(sorted(tiny_dir.glob("*.png"))[:5]):
        shutil.copy(picture, folder / f"img{i}.png")
    executed = papermill.execute_notebook(
        str(NOTEBOOKS_DIR / "07_labelling.ipynb"), str(tmp_path / "07.ipynb"), kernel_name="python3",
        progress_bar=False, parameters={"images_dir": str(folder), "run_dir": str(trained_run.run_dir)})
    found = read_records(executed)
    assert (found["images"], found["labelled"], found["to_label"], found["prefilled"]) == (5, 0, 5, 5)
    assert found["doubtful_pseudo_labels"] == 0  # the tiny run had no pool


def test_the_notebooks_resolve_data_like_make_run(monkeypatch, tmp_path):
    from captcha_nb.sources import data, download
    from captcha_nb.views import workspace

    monkeypatch.delenv("CAPTCHA_DATA_DIR", raising=False)
    monkeypatch.setattr(download, "DATA_ROOT", tmp_path)
    monkeypatch.setattr(download, "SYNTHETIC_DIR", tmp_path / "synthetic")
    monkeypatch.setattr(download, "SYNTHETIC_SIZE", 5)
    monkeypatch.setattr("captcha_nb.sources.download.download_dataset", lambda *a, **k: (_ for _ in ()).throw(
        data.DataError("offline")))
    path = workspace.data_directory(None)
    assert path == tmp_path / "synthetic" and workspace.is_synthetic(path)
