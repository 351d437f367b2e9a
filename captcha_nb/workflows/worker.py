"""One run of a sweep, as a Dask worker executes it: the run's notebooks by papermill, its log, and its files sent
back as bytes when the worker does not share the submitter's disk."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from captcha_nb import PROJECT_ROOT, REPORTS_DIR
from captcha_nb.sources.files import atomic_write
from captcha_nb.workflows.runs import Status, run_report

SWEEP_FILE = "sweep.json"
LOGS = "logs"
# How many lines of a failed run's error sweep.json keeps: enough to see the exception and where it was raised.
ERROR_LINES = 15
# Dask starts its worker processes with the first three set to 1, so that tasks do not oversubscribe the CPU, and
# with glibc told to hand freed memory back to the system at once. The notebooks' kernels inherit both, and a
# 90-second Securimage run then trained 6 epochs instead of the 13 the same command trains outside a sweep, most of
# the time spent in the kernel (system CPU time). A run's kernels get its own num_threads (or torch's choice) and
# glibc's default memory trimming.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MEMORY_VARIABLES = ("MALLOC_TRIM_THRESHOLD_",)
# Workers announce a run's start on this Dask event topic; the submitter marks it running.
STARTED_TOPIC = "captcha-nb-sweep-started"


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
        result = RunResult(spec.name, Status.FINISHED)
    except Exception as error:  # a failed run is a result, not the end of the sweep
        lines = "".join(traceback.format_exception_only(error)).strip().splitlines()
        result = RunResult(spec.name, Status.FAILED, "\n".join(lines[-ERROR_LINES:]))
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
