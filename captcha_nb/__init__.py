"""captcha_nb: a CNN + bidirectional GRU + CTC captcha recogniser and the workspace around it."""

from pathlib import Path

__version__ = "0.1.0"

# Paths are computed from the package, not from the current directory, so notebooks run the same under
# JupyterLab, papermill and nbval.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT = PROJECT_ROOT / "data"
REPORTS_DIR = PROJECT_ROOT / "reports"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
