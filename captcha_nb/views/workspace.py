"""What the notebooks call in the cell after `parameters`: check the parameters and find data and runs.

Papermill types `-p` values by their text, so every parameter is checked here and a wrong one fails the first cell
with one clear message instead of a traceback three sections later.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pandas as pd

from captcha_nb import PROJECT_ROOT, REPORTS_DIR
from captcha_nb.core.rundir import RunDir
from captcha_nb.sources.download import data_or_synthetic
from captcha_nb.sources.synth import SYNTHETIC_MARKER

# Where notebook 03 puts a run when it is given no run_dir. The browser and notebook tests point it at a temporary
# folder, so that a test never writes into the project.
RUNS_ENV = "CAPTCHA_NB_RUNS_DIR"
RUNS_DIR = Path(os.environ.get(RUNS_ENV) or PROJECT_ROOT / "runs")


# Notebooks show named values under this MIME type (beside plain text), so tests read what a notebook found by name
# instead of matching its printed text.
RECORD_MIME = "application/vnd.captcha-nb.record+json"
RECORD_TEXT_CHARS = 100  # longer dicts and lists are counted in the text form (the record keeps them whole)
# A test run of the notebooks as committed (`pytest --nbval-lax notebooks/`) asks for a short training through this
# variable, set by notebooks/conftest.py; the notebooks' own defaults stay the real recipe.
QUICK_ENV = "CAPTCHA_NB_QUICK_MINUTES"


class ParameterError(ValueError):
    """A notebook parameter with a wrong type or value."""


def check_type(name: str, value, *types) -> None:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        allowed = " or ".join("None" if t is type(None) else t.__name__ for t in types)
        raise ParameterError(f"parameter {name}={value!r} must be {allowed}")


def data_directory(data_dir: str | None) -> Path:
    """The data set a notebook works on, resolved exactly as `make run` does (see `data_or_synthetic`)."""
    check_type("data_dir", data_dir, str, type(None))
    if data_dir and not Path(data_dir).is_dir():
        raise ParameterError(f"parameter data_dir={data_dir!r} is not a directory")
    return data_or_synthetic(data_dir or None)[0]


def is_synthetic(data_dir: str | Path) -> bool:
    return (resolve_recorded(str(data_dir)) / SYNTHETIC_MARKER).exists()


def describe_data(data_dir: str | Path) -> str:
    kind = "SYNTHETIC captchas (no real data set was available)" if is_synthetic(data_dir) else "real captchas"
    return f"data: {data_dir} — {kind}"


def training_config(namespace: dict, **overrides):
    """Notebook 03's TrainConfig: every config field that the notebook's parameters define, checked in one place.

    The parameter names are the TrainConfig field names, so `papermill -p lr 3e-3` and `train --lr 3e-3` are the same
    setting; a wrong value fails here with one message naming the parameter.
    """
    from dataclasses import fields

    from captcha_nb.core.config import TrainConfig

    given = {f.name: namespace[f.name] for f in fields(TrainConfig) if f.name in namespace}
    try:
        return TrainConfig(**{**given, **overrides}).validate()
    except ValueError as error:
        raise ParameterError(f"parameter {error}") from None


def new_run_dir(model: str) -> Path:
    """A fresh run folder under runs/, named by time so that no run overwrites another."""
    return RUNS_DIR / f"{dt.datetime.now():%Y%m%d-%H%M%S}-{model}"


def latest_run(search: tuple[Path, ...] = (RUNS_DIR, REPORTS_DIR)) -> Path | None:
    """The most recently written run folder holding a model.pt, under runs/ and reports/."""
    checkpoints = [p for root in search if root.is_dir() for p in root.glob(f"**/{RunDir(root).model.name}")]
    return max(checkpoints, key=lambda p: p.stat().st_mtime).parent if checkpoints else None


def trained_run(run_dir: str | None) -> Path:
    """The run a notebook analyses; a clear message when there is none yet."""
    check_type("run_dir", run_dir, str, type(None))
    path = Path(run_dir) if run_dir else latest_run()
    if path is None or not RunDir(path).model.is_file():
        where = str(RunDir(path).model) if path else "runs/ or reports/"
        raise FileNotFoundError(
            f"no trained checkpoint found in {where}. Run notebooks/03_ctc_training.ipynb first, or pass "
            f"run_dir= a folder written by `python -m captcha_nb train`."
        )
    return path


def check_seed(seed) -> int:
    check_type("seed", seed, int)
    return seed


SPLITS = ("val", "test", "train")


def held_out(run_dir: Path, data_dir: str | None = None, which: str = "val"):
    """The run's recogniser and one part of its split ("val" by default), exactly the files split.json recorded.

    Error analysis looks at the validation images: the test images are kept for the headline figure, so that what a
    person changes after reading the errors is never judged on the images that led to the change.
    """
    from captcha_nb.core.pseudo import read_pseudo_labels
    from captcha_nb.serving.inference import load_model
    from captcha_nb.sources.data import load_dataset, load_split

    if which not in SPLITS:
        raise ParameterError(f"parameter split={which!r} must be one of {SPLITS}")
    split = load_split(RunDir(run_dir).split)
    if not split.get(which):
        raise ParameterError(f"parameter split={which!r}: the run {run_dir} has no {which} images")
    source = run_data(run_dir, data_dir, split)
    recogniser = load_model(RunDir(run_dir).model)
    pictures = load_dataset(source).subset(split[which])
    if split.get("labels_from") == "teacher":
        # No human label: the run was judged against the teacher's readings (as the student revised them), not
        # against the file names a folder without labels.csv would otherwise give.
        # They are found by the picture's name in the folder the run trained on, so a copy of it works too.
        readings = read_pseudo_labels(RunDir(run_dir).pseudo_labels)
        trained_on = resolve_recorded(split["data_dir"]).resolve()
        pictures.labels = [readings.get(trained_on / name, "") for name in split[which]]
    return recogniser, pictures, split


def run_data(run_dir: Path, data_dir: str | None = None, split: dict | None = None) -> Path:
    """The folder a run's images are read from: `data_dir` when given, otherwise the one its split.json (or the
    `split` already read from it) records."""
    from captcha_nb.sources.data import load_split

    if data_dir:
        return data_directory(data_dir)
    return resolve_recorded((split or load_split(RunDir(run_dir).split))["data_dir"])


def resolve_recorded(data_dir: str) -> Path:
    """A data folder recorded in split.json: relative paths are relative to the project."""
    path = Path(data_dir)
    return path if path.is_absolute() else PROJECT_ROOT / path


def headline(run_dir: Path) -> pd.Series:
    """The run's honest figure (test, scored once) beside the validation figure it was selected on."""
    metrics = RunDir(run_dir).read_metrics()
    return pd.Series({
        "headline split": metrics.get("headline", "validation"),
        "test images": metrics.get("n_test", 0),
        "test sequence accuracy": metrics.get("test_seq_accuracy"),
        "test CER": metrics.get("test_cer"),
        "validation images": metrics.get("n_val"),
        "validation sequence accuracy": metrics.get("val_seq_accuracy"),
        "plateau seconds": metrics.get("plateau_seconds"),
        "temperature": metrics.get("temperature"),
        "temperature fitted": metrics.get("temperature_fit"),  # on how many misreads, or why it stayed at 1
        "test calibration error (raw → calibrated)": calibration_change(metrics),
        "input": f"{metrics['input_size'][0]} x {metrics['input_size'][1]}",
        "stopped because": metrics.get("stopped_because"),
    }, name="value")


def calibration_change(metrics: dict) -> str | None:
    if metrics.get("test_ece") is None:
        return None
    return f"{metrics['test_ece_raw']:.3f} → {metrics['test_ece']:.3f}"


def record(**values) -> None:
    """Show named values in the notebook: as text for people, and as a record that tests read by name."""
    from IPython.display import display

    text = "\n".join(f"{name}: {shown(value)}" for name, value in values.items())
    display({RECORD_MIME: json.loads(json.dumps(values, default=str)), "text/plain": text}, raw=True)


def shown(value) -> str:
    """A recorded value as people read it: a long dict or list is counted, since the cell shows it as a table."""
    text = str(value)
    if isinstance(value, (dict, list, tuple)) and len(text) > RECORD_TEXT_CHARS:
        return f"{len(value)} entries"
    return text


def read_records(notebook) -> dict:
    """Every value an executed notebook recorded with `record`, by name (later records win)."""
    found = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            found.update(output.get("data", {}).get(RECORD_MIME, {}))
    return found


def training_budget(max_minutes: float) -> float:
    """The notebook's budget, unless a test run asked for a short one (see QUICK_ENV)."""
    quick = os.environ.get(QUICK_ENV)
    if quick:
        print(f"{QUICK_ENV}={quick}: a test run, so training is cut to {quick} minutes (the default is {max_minutes})")
        return float(quick)
    return max_minutes
