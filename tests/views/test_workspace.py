import json
import os

import pytest

from captcha_nb.sources import synth
from captcha_nb.views import workspace
from captcha_nb.views.workspace import ParameterError


def test_parameters_are_type_checked():
    with pytest.raises(ParameterError, match="seed='1'"):
        workspace.check_seed("1")
    with pytest.raises(ParameterError, match="data_dir=3"):
        workspace.data_directory(3)
    with pytest.raises(ParameterError, match="data_dir='/nope'"):
        workspace.data_directory("/nope")


def test_missing_checkpoint_says_to_run_notebook_03(tmp_path):
    with pytest.raises(FileNotFoundError, match="03_ctc_training"):
        workspace.trained_run(str(tmp_path))


def test_latest_run_is_the_newest_checkpoint(tmp_path):
    for name, when in [("old", 1_000), ("new", 2_000)]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.pt").write_bytes(b"x")
        os.utime(tmp_path / name / "model.pt", (when, when))
    assert workspace.latest_run((tmp_path,)) == tmp_path / "new"
    assert workspace.latest_run((tmp_path / "none",)) is None


def test_synthetic_data_is_marked(tmp_path):
    synth.generate(tmp_path, 2)
    assert workspace.is_synthetic(tmp_path) and "SYNTHETIC" in workspace.describe_data(tmp_path)
    assert not workspace.is_synthetic(tmp_path / "elsewhere")


def test_held_out_returns_the_runs_validation_files(trained_run):
    recogniser, val_set, split = workspace.held_out(trained_run.run_dir)
    assert val_set.names == split["val"] and len(val_set) == 10
    assert recogniser.alphabet.chars == "23abcd"


def test_a_runs_recorded_data_folder_is_relative_to_the_project_not_to_the_notebooks(tmp_path, trained_run):
    import shutil

    from captcha_nb import PROJECT_ROOT

    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    split = json.loads((run / "split.json").read_text())
    # What a committed run records: a folder relative to the project (the notebooks run from notebooks/).
    (run / "split.json").write_text(json.dumps({**split, "data_dir": "tests"}))
    assert workspace.run_data(run) == PROJECT_ROOT / "tests"
    assert workspace.run_data(run, str(tmp_path)) == tmp_path


def test_the_headline_says_which_split_and_how_the_temperature_was_fitted(trained_run):
    metrics = json.loads((trained_run.run_dir / "metrics.json").read_text())
    figures = workspace.headline(trained_run.run_dir)
    assert figures["headline split"] == metrics["headline"]
    assert figures["temperature fitted"] == metrics["temperature_fit"] and figures["temperature fitted"]


def test_a_long_recorded_table_is_counted_in_the_text_and_kept_whole_in_the_record():
    reasons = {f"rule {i}": "a reason long enough to matter" for i in range(6)}
    assert workspace.shown(reasons) == "6 entries" and workspace.shown({"a": 1}) == "{'a': 1}"
    assert workspace.shown("x" * 200) == "x" * 200  # text is text, however long
