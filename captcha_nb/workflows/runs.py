"""Reports: run the numbered notebooks with papermill into reports/<run-id>/, and list the runs side by side.

A report folder holds the executed notebooks, figures/ as PNG, the checkpoint and run files of notebook 03
(model.pt, history.csv, metrics.json, split.json) and params.json: parameters, seed, package versions, git commit
and a fingerprint of the data.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from captcha_nb import (
    NOTEBOOKS,
    NOTEBOOKS_DIR,
    PROJECT_ROOT,
    REPORTS_DIR,
    __version__,
    project_relative,
)
from captcha_nb.core.rundir import RunDir
from captcha_nb.core.runlock import run_lock
from captcha_nb.sources.data import fingerprint_dir
from captcha_nb.sources.download import data_or_synthetic
from captcha_nb.sources.files import write_json

PATH_PARAMETERS = ("data_dir", "run_dir", "figures_dir", "sweep_dir")


class Status:
    """A run's status, as params.json and a sweep's sweep.json record it: named once, here."""

    PENDING, RUNNING, FINISHED, FAILED = "pending", "running", "finished", "failed"


def kernel_relative(path) -> str:
    """A path as the notebooks' kernel, whose working directory is notebooks/, should be given it."""
    recorded = project_relative(path)
    return recorded if os.path.isabs(recorded) else os.path.join("..", recorded)


def parse_value(text: str):
    """Type a NAME=VALUE parameter the way papermill's -p does: int, float, bool, None, else string. Values that
    are already typed (from a sweep's grid file) are kept as they are."""
    if not isinstance(text, str):
        return text
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(text, text)


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "captcha_nb", "notebooks"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "captcha_nb": __version__}
    for name in ("torch", "numpy", "pillow", "captcha", "papermill", "ipywidgets"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def new_report_dir(run_id: str | None, reports_dir: Path) -> Path:
    """Create reports/<run-id>/; an existing run is never reused or overwritten."""
    if run_id:
        path = reports_dir / run_id
        if path.exists():
            raise FileExistsError(f"report {path} already exists; choose another --run-id")
        path.mkdir(parents=True)
        return path
    # Date and time, then a counter, so two reports started in the same second still get folders of their own;
    # mkdir without exist_ok is what makes the claim atomic.
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    reports_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        path = reports_dir / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free report id for {stamp} in {reports_dir}")


def write_params(path: Path, params: dict) -> None:
    write_json(path, params)


def run_report(overrides: dict[str, str] | None = None, notebooks: list[str] | None = None,
               run_id: str | None = None, reports_dir: Path = REPORTS_DIR, log_output: bool = False) -> Path:
    """Execute the notebooks in order with papermill into a new report folder; return that folder.

    With `log_output`, papermill logs every cell's output (a sweep sends that log to one file per run)."""
    parameters = {name: parse_value(value) for name, value in (overrides or {}).items()}
    data_dir, synthetic = data_or_synthetic(parameters.pop("data_dir", None))
    report_dir = new_report_dir(run_id, reports_dir)
    parameters.update(data_dir=str(data_dir), run_dir=str(report_dir), figures_dir=str(report_dir / "figures"))
    record = {
        "run_id": report_dir.name,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "status": Status.RUNNING,
        # Paths relative to the project, so a committed report names no machine's folders.
        "parameters": {k: project_relative(v) if k in PATH_PARAMETERS and v is not None else v
                       for k, v in parameters.items()},
        "seed": parameters.get("seed", 0),
        "synthetic_data": synthetic,
        "data_dir": project_relative(data_dir),
        "data_fingerprint": fingerprint_dir(data_dir),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "machine": f"{platform.machine()}, {platform.system()}",
        "notebooks": [],
    }
    with run_lock(report_dir, "report"):
        execute_notebooks(report_dir, record, parameters, notebooks or NOTEBOOKS, log_output)
    return report_dir


def execute_notebooks(report_dir: Path, record: dict, parameters: dict, notebooks: list[str],
                      log_output: bool = False) -> None:
    """Run the notebooks in order into the report folder, keeping params.json's status up to date."""
    import nbformat
    import papermill

    write_params(RunDir(report_dir).params, record)
    for name in notebooks:
        source = NOTEBOOKS_DIR / name
        if not source.is_file():
            raise FileNotFoundError(f"notebook {source} does not exist; choose from {NOTEBOOKS}")
        accepted = papermill.inspect_notebook(str(source))
        try:
            # The kernel runs in notebooks/, so paths are given relative to it: the executed notebooks then name no
            # machine's folders, and papermill's own record of the paths is made project-relative the same way.
            given = {k: kernel_relative(v) if k in PATH_PARAMETERS and v is not None else v
                     for k, v in parameters.items() if k in accepted}
            executed = papermill.execute_notebook(
                str(source), str(report_dir / name), kernel_name="python3", cwd=str(NOTEBOOKS_DIR), parameters=given,
                log_output=log_output, progress_bar=not log_output,
            )
            executed.metadata.papermill.update(input_path=project_relative(source),
                                               output_path=project_relative(report_dir / name))
            # The saved state of every progress bar and widget (megabytes for notebook 03's hundreds of bars) shows
            # nothing once the kernel is gone; the executed notebook keeps its text, tables and figures.
            executed.metadata.pop("widgets", None)
            nbformat.write(executed, report_dir / name)
        except Exception:
            record["status"] = f"failed in {name}"
            write_params(RunDir(report_dir).params, record)
            raise
        record["notebooks"].append(name)
        write_params(RunDir(report_dir).params, record)
    record["status"] = Status.FINISHED
    record["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    write_params(RunDir(report_dir).params, record)


def replace_section(path: Path, heading: str, section: str) -> None:
    """Put `section` (starting with the `## heading` line) into a markdown file, replacing that heading's old section
    and keeping every other one: the benchmark scripts each own one section of reports/BENCHMARKS.md."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    before, found, after = text.partition(heading)
    rest = ""
    if found and "\n## " in after:
        rest = "\n\n## " + after.split("\n## ", 1)[1].strip() + "\n"
    path.write_text(before.rstrip() + "\n\n" + section.strip() + "\n" + rest)
