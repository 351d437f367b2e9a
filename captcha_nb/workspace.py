"""What the notebooks call in the cell after `parameters`: check the parameters and find data and runs.

Papermill types `-p` values by their text, so every parameter is checked here and a wrong one fails the first cell
with one clear message instead of a traceback three sections later.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from captcha_nb import PROJECT_ROOT, REPORTS_DIR
from captcha_nb.data import resolve_data_dir
from captcha_nb.synth import SYNTHETIC_MARKER

RUNS_DIR = PROJECT_ROOT / "runs"


class ParameterError(ValueError):
    """A notebook parameter with a wrong type or value."""


def check_type(name: str, value, *types) -> None:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        allowed = " or ".join("None" if t is type(None) else t.__name__ for t in types)
        raise ParameterError(f"parameter {name}={value!r} must be {allowed}")


def data_directory(data_dir: str | None) -> Path:
    """The data set a notebook works on: the parameter when given, otherwise the usual resolution order."""
    check_type("data_dir", data_dir, str, type(None))
    if data_dir and not Path(data_dir).is_dir():
        raise ParameterError(f"parameter data_dir={data_dir!r} is not a directory")
    return resolve_data_dir(data_dir or None)


def is_synthetic(data_dir: str | Path) -> bool:
    return (Path(data_dir) / SYNTHETIC_MARKER).exists()


def describe_data(data_dir: str | Path) -> str:
    kind = "SYNTHETIC captchas (no real data set was available)" if is_synthetic(data_dir) else "real captchas"
    return f"data: {data_dir} — {kind}"


def new_run_dir(model: str) -> Path:
    """A fresh run folder under runs/, named by time so that no run overwrites another."""
    return RUNS_DIR / f"{dt.datetime.now():%Y%m%d-%H%M%S}-{model}"


def latest_run(search: tuple[Path, ...] = (RUNS_DIR, REPORTS_DIR)) -> Path | None:
    """The most recently written run folder holding a model.pt, under runs/ and reports/."""
    checkpoints = [p for root in search if root.is_dir() for p in root.glob("**/model.pt")]
    return max(checkpoints, key=lambda p: p.stat().st_mtime).parent if checkpoints else None


def trained_run(run_dir: str | None) -> Path:
    """The run a notebook analyses; a clear message when there is none yet."""
    check_type("run_dir", run_dir, str, type(None))
    path = Path(run_dir) if run_dir else latest_run()
    if path is None or not (path / "model.pt").is_file():
        where = f"{path}/model.pt" if path else "runs/ or reports/"
        raise FileNotFoundError(
            f"no trained checkpoint found in {where}. Run notebooks/03_ctc_training.ipynb first, or pass "
            f"run_dir= a folder written by `python -m captcha_nb train`."
        )
    return path


def check_seed(seed) -> int:
    check_type("seed", seed, int)
    return seed


def held_out(run_dir: Path, data_dir: str | None = None):
    """The run's recogniser and its held-out images, exactly the files split.json set aside at training time."""
    from captcha_nb.checkpoint import load_model
    from captcha_nb.data import load_dataset, load_split

    split = load_split(run_dir / "split.json")
    source = data_directory(data_dir) if data_dir else Path(split["data_dir"])
    recogniser = load_model(run_dir / "model.pt")
    return recogniser, load_dataset(source).subset(split["val"]), split
