"""Comparing runs: one table of parameters against results, for a sweep or for every report.

Notebook 06 and `python -m captcha_nb runs [--sweep ID]` show the same table, built here. A sweep's runs are listed
from its sweep.json, so pending and failed runs have a row too; without a sweep every report folder under reports/
(sweeps' runs included) is listed, newest first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from captcha_nb import REPORTS_DIR, project_relative
from captcha_nb.core.rundir import RunDir
from captcha_nb.workflows.runs import PATH_PARAMETERS

# The accuracy level whose first crossing is reported as "time to": a model that reads 95 % of captchas is useful.
TARGET_ACCURACY = 0.95
RESULT_COLUMNS = ["test_seq_accuracy", "test_cer", f"seconds_to_{round(TARGET_ACCURACY * 100)}", "train_seconds",
                  "val_seq_accuracy", "best_epoch"]
FORMATS = ("table", "csv", "markdown", "json")
# The style benchmark (benchmarks/styles.py) writes every run's learning curve to this file of its published folder.
STYLE_CURVES = "curves.csv"


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def read_history(run_dir: Path) -> pd.DataFrame | None:
    path = RunDir(run_dir).history
    try:
        return pd.read_csv(path) if path.is_file() else None
    except (OSError, ValueError, pd.errors.ParserError):
        return None


def seconds_to(history: pd.DataFrame | None, level: float = TARGET_ACCURACY) -> float | None:
    """Training seconds until validation accuracy first reached `level`; None if it never did."""
    if history is None or history.empty:
        return None
    reached = history[history["val_seq_accuracy"] >= level]
    return float(reached["seconds"].iloc[0]) if len(reached) else None


def style_curves(seed: int = 0, reports_dir: str | Path | None = None) -> tuple[Path | None, dict[str, pd.DataFrame]]:
    """The newest published style benchmark that kept its curves, and one seed's learning curve per style (empty when
    none is published)."""
    folders = sorted((Path(reports_dir or REPORTS_DIR) / "benchmarks").glob(f"styles-*/{STYLE_CURVES}"))
    if not folders:
        return None, {}
    table = pd.read_csv(folders[-1])
    chosen = table[table["seed"] == seed]
    return folders[-1].parent, {style: rows.drop(columns=["style", "seed"]).reset_index(drop=True)
                                for style, rows in chosen.groupby("style", sort=True)}


def gap_table(curves: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per run, the losses at its last epoch, how many epochs the recipe's gap rule called overfitting, and the
    augmentation strength the rule had raised it to by the end."""
    from captcha_nb.core.schedule import overfits

    rows = {}
    for name, history in curves.items():
        last = history.iloc[-1]
        flagged = sum(overfits(t, v) for t, v in zip(history["train_loss"], history["val_loss"]))
        rows[name] = [last["seconds"], last["train_loss"], last["val_loss"], last["val_seq_accuracy"], flagged,
                      last.get("augment_strength", float("nan"))]
    return pd.DataFrame.from_dict(rows, orient="index", columns=[
        "seconds", "train loss", "validation loss", "validation accuracy", "epochs overfitting (gap rule)",
        "augmentation strength"])


def run_entries(sweep_dir: Path | None, reports_dir: Path) -> list[dict]:
    """(name, folder, parameters, status, error) of every run to compare."""
    if sweep_dir is not None:
        record = read_json(sweep_dir / "sweep.json")
        if not record:
            raise FileNotFoundError(f"{sweep_dir} holds no sweep.json; give a folder made by `captcha_nb sweep`")
        return [{"run": name, "folder": sweep_dir / name, "parameters": run.get("parameters", {}),
                 "status": run.get("status", ""), "error": (run.get("error") or "").strip().splitlines()[-1:]}
                for name, run in record["runs"].items()]
    entries = []
    params = RunDir(reports_dir).params.name
    for params_path in sorted([*reports_dir.glob(f"*/{params}"), *reports_dir.glob(f"*/*/{params}")]):
        params = read_json(params_path)
        entries.append({"run": params_path.parent.relative_to(reports_dir).as_posix(), "folder": params_path.parent,
                        "parameters": params.get("parameters", {}), "status": params.get("status", ""),
                        "created": params.get("created", ""), "error": []})
    return entries


def runs_table(sweep_dir: str | Path | None = None, reports_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per run: its status, the parameters that differ between runs, and its results.

    The test figures are the headline; validation accuracy, which chose each checkpoint, stands beside them."""
    reports_dir = Path(reports_dir) if reports_dir else REPORTS_DIR
    entries = run_entries(Path(sweep_dir) if sweep_dir is not None else None, reports_dir)
    rows = []
    for entry in entries:
        metrics = read_json(RunDir(entry["folder"]).metrics)
        # Parameters left at their defaults are not in params.json; the run's own config has them all.
        parameters = {k: v for k, v in {**metrics.get("config", {}), **entry["parameters"]}.items()
                      if k not in PATH_PARAMETERS or k == "data_dir"}
        rows.append({
            "run": entry["run"], "status": entry["status"], **parameters,
            "test_seq_accuracy": metrics.get("test_seq_accuracy"), "test_cer": metrics.get("test_cer"),
            RESULT_COLUMNS[2]: seconds_to(read_history(entry["folder"])),
            "train_seconds": metrics.get("train_seconds"), "val_seq_accuracy": metrics.get("val_seq_accuracy"),
            "best_epoch": metrics.get("best_epoch"), "created": entry.get("created", ""),
            "error": entry["error"][0] if entry["error"] else "",
        })
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=["run", "status", *RESULT_COLUMNS])
    swept = swept_parameters([entry["parameters"] for entry in entries])
    if sweep_dir is None:
        swept = list(dict.fromkeys(["model", "seed", *swept]))
        table = table.sort_values("created", ascending=False, ignore_index=True)
    columns = ["run", "status", *[c for c in swept if c in table], *RESULT_COLUMNS]
    if table["error"].astype(bool).any():
        columns.append("error")
    return table[columns].reset_index(drop=True)


def swept_parameters(given: list[dict]) -> list[str]:
    """The parameters given to the runs whose value differs between them, in the order they first appear."""
    keys = [k for parameters in given for k in parameters if k not in PATH_PARAMETERS or k == "data_dir"]
    return [k for k in dict.fromkeys(keys) if len({repr(parameters.get(k)) for parameters in given}) > 1]


def parameter_effects(table: pd.DataFrame, metric: str = "test_seq_accuracy") -> pd.DataFrame:
    """Per swept parameter (seeds aside) and value: mean, spread and range of `metric` over the finished runs."""
    finished = table[(table["status"] == "finished") & table[metric].notna()]
    frames = []
    for name in [c for c in table.columns if c not in ("run", "status", "seed", "error", *RESULT_COLUMNS)]:
        stats = finished.groupby(finished[name].astype(str))[metric].agg(["count", "mean", "std", "min", "max"])
        frames.append(stats.reset_index(names="value").assign(parameter=name))
    if not frames:
        return pd.DataFrame(columns=["parameter", "value", "count", "mean", "std", "min", "max"])
    return pd.concat(frames, ignore_index=True)[["parameter", "value", "count", "mean", "std", "min", "max"]]


def best_run(table: pd.DataFrame) -> pd.Series | None:
    """The finished run with the best test accuracy; ties go to the lower character error, then the quicker run."""
    finished = table[(table["status"] == "finished") & table["test_seq_accuracy"].notna()]
    if finished.empty:
        return None
    order = finished.sort_values(["test_seq_accuracy", "test_cer", "train_seconds"], ascending=[False, True, True])
    return order.iloc[0]


def run_folder(run: str, sweep_dir: str | Path | None = None, reports_dir: str | Path | None = None) -> Path:
    return Path(sweep_dir) / run if sweep_dir is not None else Path(reports_dir or REPORTS_DIR) / run


def histories(table: pd.DataFrame, sweep_dir=None, reports_dir=None) -> dict[str, pd.DataFrame]:
    """The training history of every run that has one, by run name, for accuracy-against-time curves."""
    found = {}
    for run in table["run"]:
        history = read_history(run_folder(run, sweep_dir, reports_dir))
        if history is not None and len(history):
            found[run] = history
    return found


def notebook_links(run: str, sweep_dir=None, reports_dir=None, start: str | Path = ".") -> str:
    """Markdown links to a run's executed notebooks, relative to `start` (a notebook's own folder)."""
    folder = run_folder(run, sweep_dir, reports_dir)
    links = [f"[{p.name}]({Path(os.path.relpath(p, start)).as_posix()})" for p in sorted(folder.glob("*.ipynb"))]
    return " · ".join(links) or f"no executed notebooks in {project_relative(folder)}"


def describe_sweep(sweep_dir: str | Path | None) -> pd.Series:
    """What a sweep was: its command, data, commit and how its runs ended."""
    if sweep_dir is None:
        return pd.Series({"sweep": "every report under " + project_relative(REPORTS_DIR)})
    record = read_json(Path(sweep_dir) / "sweep.json")
    statuses = pd.Series([run.get("status") for run in record.get("runs", {}).values()]).value_counts()
    return pd.Series({
        "sweep": record.get("sweep_id"), "command": record.get("command"), "data": record.get("data_dir"),
        "data fingerprint": record.get("data_fingerprint"), "git commit": record.get("git_commit"),
        "runs": ", ".join(f"{n} {status}" for status, n in statuses.items()),
    })


def check_sweep_dir(sweep_dir) -> Path | None:
    """Notebook 06's sweep_dir parameter: a sweep folder, or None for every report."""
    if sweep_dir is None:
        return None
    if not isinstance(sweep_dir, (str, Path)) or not (Path(sweep_dir) / "sweep.json").is_file():
        raise ValueError(f"parameter sweep_dir={sweep_dir!r} must be a folder made by `captcha_nb sweep` "
                         "(holding sweep.json), or None")
    return Path(sweep_dir)


def render(table: pd.DataFrame, fmt: str) -> str:
    """The table as `runs --format` prints it."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r} must be one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return table.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        return table.to_json(orient="records", indent=1, force_ascii=False)
    if table.empty:
        return "no runs yet"
    if fmt == "markdown":
        return table.to_markdown(index=False, floatfmt=".4g")
    return table.to_string(index=False)
