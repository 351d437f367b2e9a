"""Sweeps: the notebooks over a grid of parameters and seeds, one report folder per combination, run on Dask.

`python -m captcha_nb sweep --sweep-id ID -p lr=1e-3,3e-3 --seeds 0,1,2` writes

    reports/ID/sweep.json             the grid, the command, versions, commit, data fingerprint, each run's status
    reports/ID/<run-name>/            exactly what `report` writes for one run (notebooks, figures, model.pt, ...)
    reports/ID/logs/<run-name>.log    what the run's notebooks printed, cell by cell

Runs execute on a Dask cluster: a `LocalCluster` of this machine's cores by default, or the scheduler given with
`--scheduler`. One code path serves both, and it never assumes a shared disk: a worker that cannot see the sweep
folder runs in its own copy of the project and sends the run's files back as bytes, which only this process writes.
sweep.json is written only here, atomically, after every change of status, so an interrupted sweep can be resumed:
finished runs are kept, anything else is redone from scratch. The grid is `workflows/grid.py`, one run on a worker
`workflows/worker.py`; this module is the submitter.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from captcha_nb import NOTEBOOKS_DIR, project_relative
from captcha_nb.core.rundir import RunDir
from captcha_nb.sources.data import fingerprint_dir
from captcha_nb.sources.download import data_or_synthetic
from captcha_nb.sources.files import write_json
from captcha_nb.workflows.grid import run_names
from captcha_nb.workflows.runs import Status, git_commit, package_versions
from captcha_nb.workflows.worker import (
    STARTED_TOPIC,
    SWEEP_FILE,
    RunResult,
    RunSpec,
    execute_run,
    unpack,
)

# How often the submitter looks for runs that ended or started.
POLL_SECONDS = 2
# A notebook's kernel outlives its stopped worker until it notices that its parent is gone, which ipykernel checks
# once a second; until then it may write one more epoch's files. The interrupt test once found a removed run folder
# back after an interrupt, and such a kernel is the likeliest writer (not proven), so interrupted runs are removed
# only after this grace.
KERNEL_EXIT_SECONDS = 2.5


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def local_workers(workers: int | None, threads: int | None) -> tuple[int, int]:
    """Worker processes and torch threads per run for this machine: as many runs as the cores allow, so parallel
    runs never ask for more threads than there are cores."""
    if workers is not None and workers < 1:
        raise ValueError(f"--workers {workers} must be at least 1")
    threads = threads or max(1, cores() // (workers or cores()))
    return workers or max(1, cores() // threads), threads


def now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


@dataclass
class SweepRun:
    """One run of the grid as sweep.json records it."""

    parameters: dict
    status: str = Status.PENDING  # one of runs.Status
    error: str = ""
    note: str = ""  # why a run is pending again ("interrupted")
    updated: str = ""
    host: str = ""
    started: str = ""
    finished: str = ""

    @classmethod
    def from_dict(cls, values: dict) -> "SweepRun":
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        """The fields that were set, in sweep.json's order (parameters, status and error always)."""
        return {k: v for k, v in asdict(self).items() if v != "" or k in ("parameters", "status", "error")}


@dataclass
class Sweep:
    """The sweep folder and its sweep.json, written only by the submitting process: the grid's runs by name, what
    the workers need to run them (`notebooks`, `token`), and what the record tells a reader (`about`: the command,
    grid, versions, commit and data)."""

    sweep_dir: Path
    sweep_id: str
    notebooks: list[str]
    token: str
    runs: dict[str, SweepRun]
    about: dict = field(default_factory=dict)

    def save(self) -> None:
        write_json(self.sweep_dir / SWEEP_FILE, self.to_dict())

    def to_dict(self) -> dict:
        about = dict(self.about)
        head = {key: about.pop(key) for key in ("created", "command", "grid") if key in about}
        return {"sweep_id": self.sweep_id, **head, "notebooks": self.notebooks, **about, "token": self.token,
                "runs": {name: run.to_dict() for name, run in self.runs.items()}}

    def set(self, name: str, status: str, **details: str) -> None:
        run = self.runs[name]
        for key, value in {"status": status, **details, "updated": now()}.items():
            setattr(run, key, value)
        self.save()

    def named(self, status: str) -> list[str]:
        return [name for name, run in self.runs.items() if run.status == status]

    def failed(self) -> dict[str, str]:
        return {name: self.runs[name].error for name in self.named(Status.FAILED)}


def is_finished(sweep_dir: Path, name: str, run: SweepRun | None) -> bool:
    """Finished means sweep.json says so and the folder's own params.json agrees: a folder left by a killed sweep
    says `running` in both, and is redone."""
    params = RunDir(sweep_dir / name).params
    if run is None or run.status != Status.FINISHED or not params.is_file():
        return False
    try:
        return json.loads(params.read_text()).get("status") == Status.FINISHED
    except ValueError:
        return False


def prepare_sweep(sweep_id: str, sets: list[dict], notebooks: list[str], reports_dir: Path, command: str,
                  grid: dict) -> Sweep:
    """Create or reopen reports/<sweep_id>/ and mark what is left to run as pending."""
    if not re.fullmatch(r"[\w.,=+-]+", sweep_id):
        raise ValueError(f"--sweep-id {sweep_id!r} may hold only letters, digits and . , = + - _")
    for name in notebooks:
        if not (NOTEBOOKS_DIR / name).is_file():
            raise ValueError(f"--notebooks {name!r} is not a notebook of {project_relative(NOTEBOOKS_DIR)}")
    sweep_dir = reports_dir / sweep_id
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / SWEEP_FILE
    record = json.loads(path.read_text()) if path.is_file() else {}
    data = resolve_data(sets)
    runs = {name: SweepRun.from_dict(run) for name, run in record.get("runs", {}).items()}
    for name, parameters in zip(run_names(sets), sets):
        parameters = {**parameters, "data_dir": data[repr(parameters.get("data_dir"))][0]}
        earlier = runs.get(name)
        if earlier is not None and earlier.parameters != parameters:
            raise ValueError(f"sweep {sweep_id} already has a run {name} with other parameters; choose another "
                             f"--sweep-id")
        runs[name] = earlier if is_finished(sweep_dir, name, earlier) else SweepRun(parameters)
    fingerprints = sorted({fingerprint for _, fingerprint, _ in data.values()})
    about = {
        "created": record.get("created", now()),
        "command": command,
        "grid": grid,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "data_dir": sorted({d for d, _, _ in data.values()}),
        "data_fingerprint": fingerprints[0] if len(fingerprints) == 1 else fingerprints,
        "synthetic_data": any(synthetic for _, _, synthetic in data.values()),
    }
    # A fresh token every time the sweep is (re)started: workers compare it to tell whether they share this disk.
    sweep = Sweep(sweep_dir, sweep_id, notebooks, secrets.token_hex(8), runs, about)
    sweep.save()
    return sweep


def resolve_data(sets: list[dict]) -> dict[str, tuple[str, str, bool]]:
    """Each distinct data_dir of the sweep, resolved once here (synthetic fallback included) rather than by every run."""
    data = {}
    for given in {repr(s.get("data_dir")): s.get("data_dir") for s in sets}.items():
        folder, synthetic = data_or_synthetic(given[1])
        data[given[0]] = (project_relative(folder), fingerprint_dir(folder), synthetic)
    return data


def start_cluster(scheduler: str | None, workers: int):
    """A Dask client: on the given scheduler, or on a LocalCluster of `workers` processes bound to loopback."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    # One task per worker process, no memory cap (the notebooks' kernels are separate processes anyway), and no
    # dashboard: nothing is served beyond this machine.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, memory_limit=0, silence_logs=logging.ERROR)
    return Client(cluster), cluster


def run_sweep(sweep: Sweep, workers: int | None = None, scheduler: str | None = None, progress: bool = True) -> Sweep:
    """Run every pending run of the sweep and record each result as it arrives. Ctrl-C stops the runs, removes
    their half-written folders and leaves them pending, so the same command resumes."""
    from distributed import wait
    from tqdm.auto import tqdm

    runs = sweep.runs
    todo = [name for name, run in runs.items() if run.status != Status.FINISHED]
    threads = None
    if not scheduler:
        # Threads per run as the grid gives them (one value for every run), else as the cores allow.
        given = {run.parameters.get("num_threads") for run in runs.values()}
        workers, threads = local_workers(workers, given.pop() if len(given) == 1 else None)
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc=sweep.sweep_id, unit="run",
               disable=not progress)
    bar.set_postfix(failed=0)
    if not todo:
        bar.close()
        return sweep
    client, cluster = start_cluster(scheduler, workers)
    # The handler runs on the client's event-loop thread, so it only queues; this thread writes sweep.json.
    started: queue.SimpleQueue = queue.SimpleQueue()
    client.subscribe_topic(STARTED_TOPIC, lambda event: started.put(event[1]))
    futures = {}
    try:
        for name in todo:
            parameters = dict(runs[name].parameters)
            if threads and "num_threads" not in parameters:
                parameters["num_threads"] = threads
            spec = RunSpec(sweep.sweep_id, name, parameters, sweep.notebooks, str(sweep.sweep_dir.parent),
                           sweep.token)
            shutil.rmtree(sweep.sweep_dir / name, ignore_errors=True)
            futures[client.submit(execute_run, spec, key=f"{spec.sweep_id}/{name}-{secrets.token_hex(4)}",
                                  pure=False)] = name
            sweep.set(name, Status.PENDING, error="")
        pending = set(futures)
        while pending:
            try:
                done, pending = wait(pending, timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing ended in this poll; the statuses of running runs may still change
                done = set()
            mark_running(sweep, started)
            for future in done:
                receive(sweep, futures[future], future)
                bar.update()
                bar.set_postfix(failed=len(sweep.failed()))
    except KeyboardInterrupt:
        for future in futures:
            future.cancel()
        interrupted = True
    else:
        interrupted = False
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()  # stops the worker processes, and with them the notebooks' kernels
    if interrupted:
        # Only now that nothing writes to them any more: half-written runs are removed and left pending.
        time.sleep(KERNEL_EXIT_SECONDS)
        for name in futures.values():
            if runs[name].status in (Status.PENDING, Status.RUNNING):
                shutil.rmtree(sweep.sweep_dir / name, ignore_errors=True)
                sweep.set(name, Status.PENDING, note="interrupted")
        raise KeyboardInterrupt
    return sweep


def mark_running(sweep: Sweep, started: queue.SimpleQueue) -> None:
    while not started.empty():
        event = started.get()
        run = sweep.runs.get(event.get("name"))
        if event.get("sweep_id") == sweep.sweep_id and run and run.status == Status.PENDING:
            sweep.set(event["name"], Status.RUNNING, host=event.get("host", ""), started=now())


def receive(sweep: Sweep, name: str, future) -> None:
    """Record one finished task: its files (when they travelled), then its status."""
    try:
        result: RunResult = future.result()
    except Exception as error:  # the worker itself died or the task could not run at all
        sweep.set(name, Status.FAILED, error=f"{type(error).__name__}: {error}")
        return
    if result.files:
        unpack(result.files, sweep.sweep_dir, name)
    sweep.set(name, result.status, error=result.error, host=result.host, finished=now())


def summary(sweep: Sweep) -> str:
    counts = {status: len(sweep.named(status)) for status in (Status.FINISHED, Status.FAILED, Status.PENDING)}
    return f"sweep {sweep.sweep_id}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + \
        f" of {len(sweep.runs)}, in {project_relative(sweep.sweep_dir)}"
