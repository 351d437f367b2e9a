"""Prepare the notebooks for `pytest --nbval-lax`: small parameters, a trained run arranged up front.

Usage: python tests/notebooks/prepare.py OUT_DIR

Notebooks 04 and 05 need a checkpoint; rather than relying on 03 running first, this script trains a short run
itself and points 04 and 05 at it. Cells marked `# NBVAL_CHECK_OUTPUT` (data counts, alphabet, tensor shapes) are
compared with the committed reference report when the data set is the one that report was made from; on other data
the notebooks are only executed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import papermill

from captcha_nb import REPORTS_DIR
from captcha_nb.config import TrainConfig
from captcha_nb.data import fingerprint, read_labels, resolve_data_dir
from captcha_nb.engine import fit
from captcha_nb.runs import NOTEBOOKS
from captcha_nb.synth import generate
from captcha_nb import NOTEBOOKS_DIR

REFERENCE = REPORTS_DIR / "reference"
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"


def test_data(out: Path) -> Path:
    if os.environ.get("CAPTCHA_DATA_DIR"):
        return resolve_data_dir()
    print("CAPTCHA_DATA_DIR is not set: notebooks run on 300 synthetic captchas")
    return generate(out / "synthetic", 300, seed=0)


def source_for(name: str, data_fingerprint: str) -> tuple[Path, bool]:
    """The reference report's executed copy when it was made from this data, else the bare notebook."""
    params = REFERENCE / "params.json"
    if params.is_file() and json.loads(params.read_text()).get("data_fingerprint") == data_fingerprint:
        return REFERENCE / name, True
    return NOTEBOOKS_DIR / name, False


def strip_checks(path: Path) -> None:
    """Without reference outputs there is nothing to compare, so the check markers are removed."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.startswith(CHECK_MARKER):
            cell.source = cell.source[len(CHECK_MARKER):].lstrip("\n")
    nbformat.write(notebook, path)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data_dir = test_data(out)
    data_fingerprint = fingerprint([p for p, _ in read_labels(data_dir) if p.is_file()])
    arranged = out / "arranged-run"
    fit(TrainConfig(data_dir=str(data_dir), run_dir=str(arranged), epochs=2, max_minutes=3, progress=False))
    small = {
        "01_data_exploration.ipynb": {},
        "02_model_building.ipynb": {},
        "03_ctc_training.ipynb": {"run_dir": str(out / "run-03"), "epochs": 2, "max_minutes": 2.0},
        "04_error_analysis.ipynb": {"run_dir": str(arranged), "beam_width": 3, "n_alignments": 2},
        "05_prediction_inspector.ipynb": {"run_dir": str(arranged)},
    }
    for name in NOTEBOOKS:
        source, compared = source_for(name, data_fingerprint)
        target = out / name
        papermill.execute_notebook(str(source), str(target), prepare_only=True, kernel_name="python3",
                                   parameters={"data_dir": str(data_dir), **small[name]}, progress_bar=False)
        if not compared:
            strip_checks(target)
        print(f"{name}: {'outputs compared with ' + str(source) if compared else 'executed only'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
