"""captcha_nb: a CNN + bidirectional GRU + CTC captcha recogniser and the workspace around it."""

import os
from pathlib import Path

__version__ = "0.1.0"

# Paths are computed from the package, not from the current directory, so notebooks run the same under
# JupyterLab, papermill and nbval.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT = PROJECT_ROOT / "data"
REPORTS_DIR = PROJECT_ROOT / "reports"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
# What `make run` (`report`) and a sweep execute, in order; 06 compares runs and 07 labels, so they run on request.
NOTEBOOKS = [
    "01_data_exploration.ipynb",
    "02_model_building.ipynb",
    "03_ctc_training.ipynb",
    "04_error_analysis.ipynb",
    "05_prediction_inspector.ipynb",
    "08_ctc_made_visible.ipynb",
]


def project_relative(path) -> str:
    """A path as committed run files record it: relative to the project when it lies in the project or beside it
    (such as ../shared/data), otherwise absolute, so a reference report names its data the same way on every
    machine and a temporary folder is never written as a long climb of '..'."""
    # Symbolic links are not followed: ../shared may be a link to a disk elsewhere, and it is still beside the project.
    for candidate in (Path(os.path.abspath(path)), Path(path).resolve()):
        if candidate.is_relative_to(PROJECT_ROOT.parent):
            return os.path.relpath(candidate, PROJECT_ROOT)
    return str(Path(path).resolve())


def __getattr__(name: str):
    # `from captcha_nb import Reader` without importing torch for every `python -m captcha_nb --help`.
    if name in ("Reader", "Reading", "ReadError"):
        from captcha_nb.serving import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'captcha_nb' has no attribute {name!r}")
