import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from captcha_nb import PROJECT_ROOT
from captcha_nb.workflows import grid as grids
from captcha_nb.workflows import sweep, worker
from captcha_nb.workflows.runs import Status

pytestmark = pytest.mark.slow  # notebooks, sweeps, benchmarks or training run end to end

FAILED_RUN = "test_fraction=0.5,val_fraction=0.5"


def test_the_grid_is_the_product_of_every_list_and_the_seeds():
    grid = grids.parse_grid(["lr=0.001,3e-3", "model=crnn,crnn_large", "augment=False"])
    assert grid == {"lr": [0.001, 0.003], "model": ["crnn", "crnn_large"], "augment": [False]}
    sets = grids.combinations(grid, grids.parse_seeds("0,1,2"))
    assert len(sets) == 12 and {"lr": 0.003, "model": "crnn_large", "augment": False, "seed": 2} in sets
    names = grids.run_names(sets)
    assert "lr=0.003,model=crnn_large,seed=1" in names and len(set(names)) == 12  # augment never varies


@pytest.mark.parametrize("options,message", [
    (["lr"], "NAME=VALUE"), (["lr=1", "lr=2"], "twice"), (["seed=1,2"], "--seeds"),
])
def test_a_bad_grid_is_refused_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        grids.combinations(grids.parse_grid(options), [0])


def test_a_grid_file_lists_explicit_sets(tmp_path):
    (tmp_path / "grid.yaml").write_text("runs:\n  - {lr: 0.001, model: crnn}\n  - {lr: 0.003, model: seed}\n")
    sets = grids.combinations({}, [0, 1], grids.read_grid_file(tmp_path / "grid.yaml"))
    assert len(sets) == 4 and sets[0] == {"lr": 0.001, "model": "crnn", "seed": 0}
    (tmp_path / "bad.json").write_text('{"lr": 1}')
    with pytest.raises(ValueError, match="bad.json"):
        grids.read_grid_file(tmp_path / "bad.json")


def test_local_runs_share_the_cores_without_oversubscribing(monkeypatch):
    monkeypatch.setattr(sweep, "cores", lambda: 4)
    assert sweep.local_workers(None, None) == (4, 1)
    assert sweep.local_workers(2, None) == (2, 2)
    assert sweep.local_workers(None, 2) == (2, 2)  # -p num_threads=2: as many runs as that leaves cores for
    with pytest.raises(ValueError, match="--workers"):
        sweep.local_workers(0, None)


def test_a_worker_without_the_sweep_folder_sends_the_run_back_as_bytes(tmp_path, tiny_dir, fake_papermill):
    spec = worker.RunSpec("s", "lr=0.001", {"data_dir": str(tiny_dir), "lr": 0.001}, ["03_ctc_training.ipynb"],
                         reports_dir=str(tmp_path / "elsewhere"), token="t")
    result = worker.execute_run(spec, scratch_dir=tmp_path / "worker")
    assert result.status == "finished"
    assert {"lr=0.001/params.json", "lr=0.001/metrics.json", "logs/lr=0.001.log"} <= set(result.files)
    assert not (tmp_path / "worker" / "s" / "lr=0.001").exists()  # the worker keeps no copy
    worker.unpack(result.files, tmp_path / "s", "lr=0.001")
    assert json.loads((tmp_path / "s" / "lr=0.001" / "params.json").read_text())["status"] == "finished"
    with pytest.raises(ValueError, match="outside"):
        worker.unpack({"../../etc/x": b""}, tmp_path / "s", "x")


def test_a_half_written_run_is_not_taken_for_a_finished_one(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "params.json").write_text('{"status": "running"}')
    finished = sweep.SweepRun({}, Status.FINISHED)
    assert not sweep.is_finished(tmp_path, "r", finished)
    (tmp_path / "r" / "params.json").write_text('{"status": "finished"}')
    assert sweep.is_finished(tmp_path, "r", finished)
    assert not sweep.is_finished(tmp_path, "r", sweep.SweepRun({}, Status.RUNNING))
    assert not sweep.is_finished(tmp_path, "r", None)


def test_the_run_record_reads_back_what_it_wrote():
    run = sweep.SweepRun({"lr": 0.001, "seed": 0}, Status.FINISHED, host="vm", started="t0", finished="t1")
    assert sweep.SweepRun.from_dict(run.to_dict()) == run
    assert sweep.SweepRun({"seed": 1}).to_dict() == {"parameters": {"seed": 1}, "status": Status.PENDING, "error": ""}


def test_one_failing_run_is_recorded_and_the_others_finish(tiny_sweep):
    sweep_dir, exit_code = tiny_sweep
    assert exit_code == 1
    record = json.loads((sweep_dir / "sweep.json").read_text())
    statuses = {name: run["status"] for name, run in record["runs"].items()}
    assert statuses.pop(FAILED_RUN) == "failed" and set(statuses.values()) == {"finished"} and len(statuses) == 3
    assert "test_fraction=0.5" in record["runs"][FAILED_RUN]["error"]
    assert record["command"].startswith("python -m captcha_nb sweep --sweep-id grid")
    assert record["versions"]["torch"] and record["git_commit"] and len(record["data_fingerprint"]) == 16
    for name in statuses:
        assert {"03_ctc_training.ipynb", "model.pt", "history.csv", "metrics.json", "split.json", "params.json"} <= \
            {p.name for p in (sweep_dir / name).iterdir()}
        assert (sweep_dir / "logs" / f"{name}.log").stat().st_size > 0


def layout(sweep_dir: Path) -> set[str]:
    return {p.relative_to(sweep_dir).as_posix() for p in sweep_dir.rglob("*") if p.is_file() and p.name != ".lock"}


def test_the_same_grid_on_a_dask_scheduler_gives_the_same_layout(tiny_sweep, failing_grid, tmp_path):
    from distributed import LocalCluster

    from captcha_nb.cli import main

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        code = main(["sweep", "--sweep-id", "grid", "--reports", str(tmp_path), *failing_grid,
                     "--scheduler", cluster.scheduler_address])
    assert code == 1
    assert layout(tmp_path / "grid") == layout(tiny_sweep[0])


def test_an_interrupted_sweep_resumes_without_doing_a_run_twice(tmp_path, sweep_data):
    # The first run is quick, the second is long enough to be interrupted while it trains.
    data = str(sweep_data)
    sets = [{"data_dir": data, "epochs": 1, "seed": 0}, {"data_dir": data, "max_minutes": 5, "seed": 1}]
    (tmp_path / "grid.json").write_text(json.dumps(sets))
    command = [sys.executable, "-m", "captcha_nb", "sweep", "--sweep-id", "r", "--reports", str(tmp_path / "reports"),
               "--file", str(tmp_path / "grid.json"), "--workers", "1",
               "--notebooks", "03_ctc_training.ipynb"]
    record_path = tmp_path / "reports" / "r" / "sweep.json"
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = json.loads(record_path.read_text())["runs"] if record_path.is_file() else {}
            if runs.get("max_minutes=5,seed=1", {}).get("status") == "running":
                break
            time.sleep(0.5)
        else:
            pytest.fail("the second run never started")
        time.sleep(3)
        first = json.loads((tmp_path / "reports" / "r" / "epochs=1,seed=0" / "params.json").read_text())
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, output
    runs = json.loads(record_path.read_text())["runs"]
    assert runs["epochs=1,seed=0"]["status"] == "finished" and runs["max_minutes=5,seed=1"]["status"] == "pending"
    assert not (tmp_path / "reports" / "r" / "max_minutes=5,seed=1").exists()

    # Resume, with the notebooks' quick budget so the long run is short: the finished run is kept as it was, the
    # interrupted one is done.
    rerun = subprocess.run([*command, "-p", "epochs=1"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert rerun.returncode == 2 and "--file" in rerun.stderr  # -p and --file together are refused
    env = {**os.environ, "CAPTCHA_NB_QUICK_MINUTES": "0.05"}
    rerun = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)
    assert rerun.returncode == 0, rerun.stderr
    runs = json.loads(record_path.read_text())["runs"]
    assert {run["status"] for run in runs.values()} == {"finished"}
    again = json.loads((tmp_path / "reports" / "r" / "epochs=1,seed=0" / "params.json").read_text())
    assert again["created"] == first["created"]


def test_long_names_are_cut_the_same_way_every_time():
    sets = [{"data_dir": "/a/" + "x" * 200, "seed": 0}, {"data_dir": "/b/" + "x" * 200, "seed": 0}]
    names = grids.run_names(sets)
    assert names == grids.run_names(sets) and len(set(names)) == 2 and all(len(n) <= grids.MAX_NAME for n in names)


def test_a_set_on_the_defaults_is_named_so():
    assert grids.run_names([{"seed": 0}, {"seed": 0, "model": "crnn_large"}]) == ["defaults", "model=crnn_large"]


def test_a_run_sets_its_own_threads_where_dask_set_one(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what a Dask worker process starts with
    worker.set_thread_variables(2)
    assert os.environ["OMP_NUM_THREADS"] == "2"
    worker.set_thread_variables(None)
    assert "OMP_NUM_THREADS" not in os.environ
