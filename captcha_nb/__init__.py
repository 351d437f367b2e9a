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


def project_relative(path) -> str:
    """A path as committed run files record it: relative to the project when it is near it, otherwise absolute,
    so a reference report made on one machine names its data the same way on every other."""
    resolved = Path(path).resolve()
    relative = os.path.relpath(resolved, PROJECT_ROOT)
    return str(resolved) if relative.startswith(os.path.join("..", "..", "..")) else relative
