import json

import pandas as pd
import pytest

from captcha_nb.views import compare
from captcha_nb.workflows import runs


def write_sweep(sweep_dir, statuses):
    """A sweep.json and run folders as `captcha_nb sweep` leaves them, without running anything."""
    record = {"sweep_id": sweep_dir.name, "runs": {}}
    for i, (name, status) in enumerate(statuses.items()):
        lr, seed = name.split(",")
        parameters = {"lr": float(lr.split("=")[1]), "seed": int(seed.split("=")[1]), "max_minutes": 1}
        record["runs"][name] = {"parameters": parameters, "status": status,
                                "error": "Traceback\nValueError: lr broke" if status == "failed" else ""}
        if status == "finished":
            folder = sweep_dir / name
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps({
                "test_seq_accuracy": 0.9 + 0.01 * i, "test_cer": 0.01, "train_seconds": 60.0 + i,
                "val_seq_accuracy": 0.95, "best_epoch": 3, "config": {**parameters, "model": "crnn"}}))
            (folder / "history.csv").write_text(f"epoch,val_seq_accuracy,seconds\n1,0.2,10\n2,0.97,{20 + i}\n")
            (folder / "03_ctc_training.ipynb").write_text("{}")
    (sweep_dir / "sweep.json").write_text(json.dumps(record))
    return sweep_dir


@pytest.fixture
def sweep_dir(tmp_path):
    return write_sweep(tmp_path / "s", {"lr=0.001,seed=0": "finished", "lr=0.001,seed=1": "finished",
                                        "lr=0.003,seed=0": "finished", "lr=0.003,seed=1": "failed"})


def test_the_table_shows_swept_parameters_results_and_failures(sweep_dir):
    table = compare.runs_table(sweep_dir)
    assert list(table.columns[:4]) == ["run", "status", "lr", "seed"] and "max_minutes" not in table
    assert table["status"].tolist() == ["finished", "finished", "finished", "failed"]
    assert table["seconds_to_95"].tolist()[:3] == [20.0, 21.0, 22.0] and pd.isna(table["seconds_to_95"].iloc[3])
    assert table["error"].iloc[3] == "ValueError: lr broke"


def test_effects_and_best_run_use_finished_runs_only(sweep_dir):
    table = compare.runs_table(sweep_dir)
    effects = compare.parameter_effects(table)
    by_lr = effects[effects["parameter"] == "lr"].set_index("value")
    assert by_lr.loc["0.001", "count"] == 2 and by_lr.loc["0.001", "mean"] == pytest.approx(0.905)
    assert by_lr.loc["0.003", "count"] == 1 and "seed" not in set(effects["parameter"])
    best = compare.best_run(table)
    assert best["run"] == "lr=0.003,seed=0"
    assert "03_ctc_training.ipynb" in compare.notebook_links(best["run"], sweep_dir, start=sweep_dir)
    assert set(compare.histories(table, sweep_dir)) == {"lr=0.001,seed=0", "lr=0.001,seed=1", "lr=0.003,seed=0"}


@pytest.mark.parametrize("fmt", compare.FORMATS)
def test_every_format_prints_every_run(sweep_dir, fmt):
    text = compare.render(compare.runs_table(sweep_dir), fmt)
    assert all(name in text for name in ["lr=0.001,seed=0", "lr=0.003,seed=1"])
    if fmt == "json":
        assert len(json.loads(text)) == 4
    with pytest.raises(ValueError, match="--format"):
        compare.render(compare.runs_table(sweep_dir), "xml")


def test_without_a_sweep_every_report_is_listed_newest_first(tmp_path, tiny_dir, fake_papermill):
    runs.run_report({"data_dir": str(tiny_dir), "lr": "0.001"}, run_id="first", reports_dir=tmp_path)
    second = runs.run_report({"data_dir": str(tiny_dir), "lr": "0.003"}, run_id="second", reports_dir=tmp_path)
    params = json.loads((second / "params.json").read_text())
    params["created"] = "2999-01-01T00:00:00"
    (second / "params.json").write_text(json.dumps(params))
    table = compare.runs_table(None, tmp_path)
    assert table["run"].tolist() == ["second", "first"] and table["lr"].tolist() == [0.003, 0.001]
    assert table["test_seq_accuracy"].tolist() == [0.8, 0.9] and table["seconds_to_95"].tolist() == [8.5, 8.5]


def test_a_folder_without_sweep_json_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="sweep.json"):
        compare.runs_table(tmp_path)
    with pytest.raises(ValueError, match="sweep_dir"):
        compare.check_sweep_dir(str(tmp_path))


def test_seconds_to_reports_not_reached_as_none():
    from captcha_nb.views.compare import seconds_to

    history = pd.DataFrame({"seconds": [10, 20], "val_seq_accuracy": [0.5, 0.96]})
    assert seconds_to(history, 0.95) == 20 and seconds_to(history, 0.99) is None and seconds_to(None) is None


def test_the_gap_table_flags_only_runs_whose_validation_loss_runs_away():
    def curve(train, val):
        return pd.DataFrame({"seconds": [10.0, 20.0], "train_loss": [1.0, train], "val_loss": [1.0, val],
                             "val_seq_accuracy": [0.1, 0.8], "augment_strength": [1.0, 1.25]})

    table = compare.gap_table({"dense": curve(0.04, 0.13), "easy": curve(0.001, 0.002), "wide": curve(0.6, 0.9)})
    assert table["epochs overfitting (gap rule)"].to_dict() == {"dense": 1, "easy": 0, "wide": 0}
    assert table.loc["dense", "train loss"] == 0.04 and table.loc["dense", "augmentation strength"] == 1.25


def test_a_best_runs_links_are_relative_to_where_the_comparison_is_written(tmp_path):
    run = tmp_path / "sweep" / "lr=0.001,seed=0"
    run.mkdir(parents=True)
    (run / "03_ctc_training.ipynb").write_text("{}")
    links = compare.notebook_links(run.name, tmp_path / "sweep", start=tmp_path / "comparison")
    assert links == "[03_ctc_training.ipynb](../sweep/lr=0.001,seed=0/03_ctc_training.ipynb)"
