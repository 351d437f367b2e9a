"""Sweeps: the notebooks over a grid of parameters and seeds, one report folder per combination, run on Dask.

`python -m captcha_nb sweep --sweep-id ID -p lr=1e-3,3e-3 --seeds 0,1,2` writes

    reports/ID/sweep.json             the grid, the command, versions, commit, data fingerprint, each run's status
    reports/ID/<run-name>/            exactly what `report` writes for one run (notebooks, figures, model.pt, ...)
    reports/ID/logs/<run-name>.log    what the run's notebooks printed, cell by cell

Runs execute on a Dask cluster: a `LocalCluster` of this machine's cores by default, or the scheduler given with
`--scheduler`. One code path serves both, and it never assumes a shared disk: a worker that cannot see the sweep
folder runs in its own copy of the project and sends the run's files back as bytes, which only this process writes.
sweep.json is written only here, atomically, after every change of status, so an interrupted sweep can be resumed:
finished runs are kept, anything else is redone from scratch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import os
import platform
import queue
import re
import secrets
import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from captcha_nb import NOTEBOOKS_DIR, PROJECT_ROOT, REPORTS_DIR, project_relative
from captcha_nb.sources.data import fingerprint_dir
from captcha_nb.sources.files import atomic_write, write_json
from captcha_nb.workflows.runs import git_commit, package_versions, parse_value, run_report
from captcha_nb.sources.download import data_or_synthetic

SWEEP_FILE = "sweep.json"
LOGS = "logs"
# How many lines of a failed run's error sweep.json keeps: enough to see the exception and where it was raised.
ERROR_LINES = 15
# Longer run names are cut and given a hash, so folder names stay within every file system's limit.
MAX_NAME = 120
# How often the submitter looks for runs that ended or started.
POLL_SECONDS = 2
# A notebook's kernel outlives its stopped worker until it notices that its parent is gone, which ipykernel checks
# once a second; until then it may write one more epoch's files. The interrupt test once found a removed run folder
# back after an interrupt, and such a kernel is the likeliest writer (not proven), so interrupted runs are removed
# only after this grace.
KERNEL_EXIT_SECONDS = 2.5
# Dask starts its worker processes with the first three set to 1, so that tasks do not oversubscribe the CPU, and
# with glibc told to hand freed memory back to the system at once. The notebooks' kernels inherit both, and a
# 90-second Securimage run then trained 6 epochs instead of the 13 the same command trains outside a sweep, most of
# the time spent in the kernel (system CPU time). A run's kernels get its own num_threads (or torch's choice) and
# glibc's default memory trimming.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MEMORY_VARIABLES = ("MALLOC_TRIM_THRESHOLD_",)
# Workers announce a run's start on this Dask event topic; the submitter marks it running.
STARTED_TOPIC = "captcha-nb-sweep-started"


# ---------------------------------------------------------------------------------------------------------------
# The grid


def parse_grid(options: list[str]) -> dict[str, list]:
    """`-p NAME=V1,V2` options as {NAME: [typed values]}, typed like papermill's -p."""
    grid: dict[str, list] = {}
    for option in options:
        name, sep, values = option.partition("=")
        if not sep or not name or not values:
            raise ValueError(f"-p {option!r} must look like NAME=VALUE or NAME=V1,V2,...")
        if name in grid:
            raise ValueError(f"-p {name} is given twice; list its values once, separated by commas")
        grid[name] = [parse_value(value) for value in values.split(",")]
    return grid


def parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(seed) for seed in text.split(",")]
    except ValueError:
        raise ValueError(f"--seeds {text!r} must be integers separated by commas, e.g. 0,1,2") from None


def read_grid_file(path: str | Path) -> list[dict]:
    """Explicit parameter sets from a YAML or JSON file: a list of mappings, or {"runs": [...]}."""
    import yaml

    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"--file {path}: {error}") from None
    sets = content.get("runs") if isinstance(content, dict) else content
    if not isinstance(sets, list) or not sets or not all(isinstance(s, dict) for s in sets):
        raise ValueError(f"--file {path} must hold a non-empty list of parameter mappings (or runs: [...])")
    return [dict(s) for s in sets]


def combinations(grid: dict[str, list], seeds: list[int] | None, explicit: list[dict] | None = None) -> list[dict]:
    """Every parameter set of the sweep: the explicit sets, or the product of the grid; each times every seed."""
    if explicit is not None and grid:
        raise ValueError("give the parameters either with -p or with --file, not both")
    if seeds is not None and "seed" in grid:
        raise ValueError("give seeds either with --seeds or with -p seed=..., not both")
    sets = explicit if explicit is not None else [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if seeds is not None:
        sets = [{**s, "seed": seed} for s in sets for seed in seeds if "seed" not in s] + \
               [s for s in sets if "seed" in s]
    return sets or [{}]


def run_names(sets: list[dict]) -> list[str]:
    """A readable folder name per set from the values that vary, e.g. `lr=0.003,model=crnn_large,seed=1`."""
    varying = sorted({k for s in sets for k in s if len({repr(t.get(k)) for t in sets}) > 1})
    names: list[str] = []
    for s in sets:
        # A set without any of the varying keys runs on the defaults, and is named so.
        name = ",".join(f"{k}={s.get(k)}" for k in varying if k in s) or "defaults"
        name = re.sub(r"[^\w.,=+-]", "_", name)
        if len(name) > MAX_NAME:
            # A hash of the full name, not a random one: the same command must find the same folders to resume.
            name = name[:MAX_NAME - 9] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
        unique, n = name, 1
        while unique in names:
            unique, n = f"{name}-{n}", n + 1
        names.append(unique)
    return names


# ---------------------------------------------------------------------------------------------------------------
# One run, on a worker


@dataclass
class RunSpec:
    """What travels to a worker: everything one run needs, as plain values."""

    sweep_id: str
    name: str
    parameters: dict
    notebooks: list[str]
    reports_dir: str
    # Written into sweep.json by the submitting process: a worker that finds it there shares the submitter's disk.
    token: str


@dataclass
class RunResult:
    name: str
    status: str
    error: str = ""
    host: str = field(default_factory=platform.node)
    # Relative path -> bytes, when the worker does not share the submitter's disk.
    files: dict[str, bytes] = field(default_factory=dict)


def shares_disk(spec: RunSpec) -> bool:
    try:
        recorded = json.loads((Path(spec.reports_dir) / spec.sweep_id / SWEEP_FILE).read_text())
    except (OSError, ValueError):
        return False
    return recorded.get("token") == spec.token


class ThreadLog(logging.FileHandler):
    """Papermill's log of one run, into that run's file: only records from the thread running it, since a Dask
    worker with several threads runs several runs in one process."""

    def __init__(self, path: Path):
        super().__init__(path, encoding="utf-8")
        thread = threading.get_ident()
        self.addFilter(lambda record: record.thread == thread)
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))


def announce_start(spec: RunSpec) -> None:
    """Tell the submitter that this run has started, through the cluster's event log (outside a Dask worker, as
    when a test calls execute_run directly, there is nobody to tell)."""
    try:
        from distributed import get_worker

        get_worker().log_event(STARTED_TOPIC, {"sweep_id": spec.sweep_id, "name": spec.name, "host": platform.node()})
    except (ImportError, ValueError):
        pass


def execute_run(spec: RunSpec, scratch_dir: Path = REPORTS_DIR) -> RunResult:
    """Run one combination's notebooks with papermill (this is the task a Dask worker executes).

    On the submitter's disk the run is written in place; elsewhere it is written under this machine's own
    `scratch_dir`, packed as bytes, and removed. A run that fails returns its error and whatever it wrote.
    """
    announce_start(spec)
    shared = shares_disk(spec)
    sweep_dir = (Path(spec.reports_dir) if shared else Path(scratch_dir)) / spec.sweep_id
    run_dir, log_path = sweep_dir / spec.name, sweep_dir / LOGS / f"{spec.name}.log"
    shutil.rmtree(run_dir, ignore_errors=True)  # a half-written folder of an earlier attempt is never kept
    log_path.parent.mkdir(parents=True, exist_ok=True)
    parameters = dict(spec.parameters)
    if parameters.get("data_dir") and not os.path.isabs(parameters["data_dir"]):
        # The submitter names data beside the project relative to it, so it is found in every copy of the project.
        parameters["data_dir"] = str(PROJECT_ROOT / parameters["data_dir"])
    set_thread_variables(parameters.get("num_threads"))
    handler, logger = ThreadLog(log_path), logging.getLogger("papermill")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        run_report(parameters, notebooks=spec.notebooks, run_id=spec.name, reports_dir=sweep_dir, log_output=True)
        result = RunResult(spec.name, "finished")
    except Exception as error:  # a failed run is a result, not the end of the sweep
        lines = "".join(traceback.format_exception_only(error)).strip().splitlines()
        result = RunResult(spec.name, "failed", "\n".join(lines[-ERROR_LINES:]))
        logger.error("run %s failed:\n%s", spec.name, traceback.format_exc())
    finally:
        logger.removeHandler(handler)
        handler.close()
    if not shared:
        result.files = pack(run_dir, sweep_dir)
        result.files[f"{LOGS}/{spec.name}.log"] = log_path.read_bytes()
        shutil.rmtree(run_dir, ignore_errors=True)
        log_path.unlink(missing_ok=True)
    return result


def set_thread_variables(threads: int | None) -> None:
    """The environment the run's kernels inherit from this worker process: their CPU threads, glibc's defaults."""
    for name in THREAD_VARIABLES:
        if threads:
            os.environ[name] = str(threads)
        else:
            os.environ.pop(name, None)
    for name in MEMORY_VARIABLES:
        os.environ.pop(name, None)


def pack(run_dir: Path, base: Path) -> dict[str, bytes]:
    if not run_dir.is_dir():
        return {}
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def unpack(files: dict[str, bytes], sweep_dir: Path, name: str) -> None:
    """Write a run's files sent by a worker: into a side folder first, then renamed into place, so a run folder is
    never half-written. Paths are checked to stay inside the sweep folder."""
    incoming = sweep_dir / f".incoming-{name}"
    shutil.rmtree(incoming, ignore_errors=True)
    for relative, content in files.items():
        parts = Path(relative).parts
        if Path(relative).is_absolute() or ".." in parts or len(parts) < 2 or parts[0] not in (name, LOGS):
            raise ValueError(f"a worker sent a file outside its run folder: {relative!r}")
        if parts[0] == LOGS:
            atomic_write(sweep_dir / relative, lambda tmp, content=content: tmp.write_bytes(content))
            continue
        target = incoming.joinpath(*parts[1:])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    shutil.rmtree(sweep_dir / name, ignore_errors=True)
    if incoming.is_dir():
        incoming.rename(sweep_dir / name)


# ---------------------------------------------------------------------------------------------------------------
# The sweep, from the submitting process


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def local_workers(workers: int | None, threads: int | None) -> tuple[int, int]:
    """Worker processes and torch threads per run for this machine: as many runs as the cores allow, so parallel
    runs never ask for more threads than there are cores."""
    if workers is not None and workers < 1:
        raise ValueError(f"--workers {workers} must be at least 1")
    threads = threads or max(1, cores() // (workers or cores()))
    return workers or max(1, cores() // threads), threads


def is_finished(sweep_dir: Path, name: str, record: dict) -> bool:
    """Finished means sweep.json says so and the folder's own params.json agrees: a folder left by a killed sweep
    says `running` in both, and is redone."""
    params = sweep_dir / name / "params.json"
    if record.get("status") != "finished" or not params.is_file():
        return False
    try:
        return json.loads(params.read_text()).get("status") == "finished"
    except ValueError:
        return False


@dataclass
class Sweep:
    """The sweep folder and its sweep.json, written only by the submitting process."""

    sweep_dir: Path
    record: dict

    def save(self) -> None:
        write_json(self.sweep_dir / SWEEP_FILE, self.record)

    def set(self, name: str, status: str, **details) -> None:
        run = self.record["runs"][name]
        run.update(status=status, **details)
        run["updated"] = dt.datetime.now().isoformat(timespec="seconds")
        self.save()

    def failed(self) -> dict[str, str]:
        return {n: r.get("error", "") for n, r in self.record["runs"].items() if r["status"] == "failed"}


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
    runs = record.get("runs", {})
    for name, parameters in zip(run_names(sets), sets):
        parameters = {**parameters, "data_dir": data[repr(parameters.get("data_dir"))][0]}
        earlier = runs.get(name, {})
        if earlier.get("parameters", parameters) != parameters:
            raise ValueError(f"sweep {sweep_id} already has a run {name} with other parameters; choose another "
                             f"--sweep-id")
        done = is_finished(sweep_dir, name, earlier)
        runs[name] = earlier if done else {"parameters": parameters, "status": "pending"}
    fingerprints = sorted({fingerprint for _, fingerprint, _ in data.values()})
    record.update({
        "sweep_id": sweep_id,
        "created": record.get("created", dt.datetime.now().isoformat(timespec="seconds")),
        "command": command,
        "grid": grid,
        "notebooks": notebooks,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "data_dir": sorted({d for d, _, _ in data.values()}),
        "data_fingerprint": fingerprints[0] if len(fingerprints) == 1 else fingerprints,
        "synthetic_data": any(synthetic for _, _, synthetic in data.values()),
        # A fresh token every time the sweep is (re)started: workers compare it to tell whether they share this disk.
        "token": secrets.token_hex(8),
        "runs": runs,
    })
    sweep = Sweep(sweep_dir, record)
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

    runs = sweep.record["runs"]
    todo = [name for name, run in runs.items() if run["status"] != "finished"]
    threads = None
    if not scheduler:
        # Threads per run as the grid gives them (one value for every run), else as the cores allow.
        given = {run["parameters"].get("num_threads") for run in runs.values()}
        workers, threads = local_workers(workers, given.pop() if len(given) == 1 else None)
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc=sweep.record["sweep_id"], unit="run",
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
            parameters = dict(runs[name]["parameters"])
            if threads and "num_threads" not in parameters:
                parameters["num_threads"] = threads
            spec = RunSpec(sweep.record["sweep_id"], name, parameters, sweep.record["notebooks"],
                           str(sweep.sweep_dir.parent), sweep.record["token"])
            shutil.rmtree(sweep.sweep_dir / name, ignore_errors=True)
            futures[client.submit(execute_run, spec, key=f"{spec.sweep_id}/{name}-{secrets.token_hex(4)}",
                                  pure=False)] = name
            sweep.set(name, "pending", error="")
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
            if runs[name]["status"] in ("pending", "running"):
                shutil.rmtree(sweep.sweep_dir / name, ignore_errors=True)
                sweep.set(name, "pending", note="interrupted")
        raise KeyboardInterrupt
    return sweep


def mark_running(sweep: Sweep, started: queue.SimpleQueue) -> None:
    while not started.empty():
        event = started.get()
        run = sweep.record["runs"].get(event.get("name"))
        if event.get("sweep_id") == sweep.record["sweep_id"] and run and run["status"] == "pending":
            sweep.set(event["name"], "running", host=event.get("host", ""),
                      started=dt.datetime.now().isoformat(timespec="seconds"))


def receive(sweep: Sweep, name: str, future) -> None:
    """Record one finished task: its files (when they travelled), then its status."""
    try:
        result: RunResult = future.result()
    except Exception as error:  # the worker itself died or the task could not run at all
        sweep.set(name, "failed", error=f"{type(error).__name__}: {error}")
        return
    if result.files:
        unpack(result.files, sweep.sweep_dir, name)
    details = {"host": result.host, "finished": dt.datetime.now().isoformat(timespec="seconds")}
    sweep.set(name, result.status, error=result.error, **details)


def summary(sweep: Sweep) -> str:
    runs = sweep.record["runs"].values()
    counts = {status: sum(r["status"] == status for r in runs) for status in ("finished", "failed", "pending")}
    return f"sweep {sweep.record['sweep_id']}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + \
        f" of {len(sweep.record['runs'])}, in {project_relative(sweep.sweep_dir)}"
