import json
from pathlib import Path

import nbformat
import pytest

from captcha_nb.workflows import runs


def test_report_runs_every_notebook_in_order_into_a_new_folder(tmp_path, tiny_dir, fake_papermill):
    report = runs.run_report({"data_dir": str(tiny_dir), "epochs": "3", "lr": "0.01"}, run_id="r1",
                             reports_dir=tmp_path)
    assert [source.rsplit("/", 1)[1] for source, _ in fake_papermill] == runs.NOTEBOOKS
    parameters_03 = fake_papermill[2][1]
    assert parameters_03["epochs"] == 3 and parameters_03["lr"] == 0.01 and Path(runs.NOTEBOOKS_DIR, parameters_03["run_dir"]).resolve() == report.resolve()
    assert "epochs" not in fake_papermill[0][1]  # only parameters a notebook declares are passed to it
    params = json.loads((report / "params.json").read_text())
    assert params["status"] == "finished" and params["synthetic_data"] is False
    assert params["versions"]["torch"] and params["git_commit"] and len(params["data_fingerprint"]) == 16
    assert "widgets" not in json.loads((report / runs.NOTEBOOKS[2]).read_text())["metadata"]
    with pytest.raises(FileExistsError):
        runs.run_report({"data_dir": str(tiny_dir)}, run_id="r1", reports_dir=tmp_path)


def test_without_data_the_report_runs_on_marked_synthetic_data(tmp_path, monkeypatch, fake_papermill):
    from captcha_nb.sources.data import DataError

    def unavailable(data_dir=None, download=True):
        raise DataError("offline")

    from captcha_nb import project_relative
    from captcha_nb.sources import download

    monkeypatch.setattr(download, "resolve_data_dir", unavailable)
    monkeypatch.setattr(download, "SYNTHETIC_DIR", tmp_path / "synthetic")
    monkeypatch.setattr(download, "SYNTHETIC_SIZE", 5)
    report = runs.run_report({}, run_id="offline", reports_dir=tmp_path / "reports")
    params = json.loads((report / "params.json").read_text())
    assert params["synthetic_data"] is True and params["data_dir"] == project_relative(tmp_path / "synthetic")


def test_reports_started_in_the_same_second_get_their_own_folders(tmp_path):
    folders = {runs.new_report_dir(None, tmp_path) for _ in range(3)}
    assert len(folders) == 3 and all(f.is_dir() for f in folders)


def test_parse_value_types_like_papermill():
    assert runs.parse_value("3") == 3 and runs.parse_value("0.5") == 0.5
    assert runs.parse_value("True") is True and runs.parse_value("None") is None
    assert runs.parse_value("crnn") == "crnn"
    assert runs.parse_value(0.001) == 0.001  # a sweep file's values arrive typed already


def test_a_report_holds_its_folder_and_lets_its_own_notebooks_train_there(tmp_path, tiny_dir, monkeypatch):
    import os
    import subprocess
    import sys

    from captcha_nb.core.runlock import LOCK_NAME, TOKEN_ENV, run_lock

    seen = []

    def notebook_process(*args, parameters=None, cwd=None, **kwargs):
        # What a kernel started by the report sees: the folder is locked, yet training into it is allowed.
        assert (tmp_path / "r1" / LOCK_NAME).is_file()
        with run_lock(Path(cwd, parameters["run_dir"])):
            seen.append(str(Path(cwd, parameters["run_dir"]).resolve()))
        return nbformat.v4.new_notebook(metadata={"papermill": {}})

    monkeypatch.setattr("papermill.execute_notebook", notebook_process)
    monkeypatch.setattr("papermill.inspect_notebook", lambda path: {"data_dir": {}, "run_dir": {}})
    report = runs.run_report({"data_dir": str(tiny_dir)}, notebooks=["03_ctc_training.ipynb"], run_id="r1",
                             reports_dir=tmp_path)
    assert seen == [str(report.resolve())] and not (report / LOCK_NAME).exists()
    # While a report runs, a writer from outside its process tree is refused.
    with run_lock(report, "report"):
        outsider = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
        other = subprocess.run([sys.executable, "-c", f"from captcha_nb.core.runlock import run_lock\n"
                                f"with run_lock({str(report)!r}): pass"], capture_output=True, text=True, env=outsider)
        assert other.returncode != 0 and "RunLockedError" in other.stderr
