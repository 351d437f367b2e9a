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

from captcha_nb import NOTEBOOKS_DIR, REPORTS_DIR
from captcha_nb.config import TrainConfig
from captcha_nb.data import fingerprint, read_labels, resolve_data_dir
from captcha_nb.engine import fit
from captcha_nb.runs import NOTEBOOKS
from captcha_nb.synth import generate

REFERENCE = REPORTS_DIR / "reference"
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"


def test_data(out: Path) -> Path:
    if os.environ.get("CAPTCHA_DATA_DIR"):
        return resolve_data_dir()
    print("CAPTCHA_DATA_DIR is not set: notebooks run on 300 synthetic captchas")
    return generate(out / "synthetic", 300, seed=0)


def reference_cells(name: str, data_fingerprint: str) -> dict[str, dict] | None:
    """The reference report's executed code cells, by source, when that report was made from this very data set."""
    params = REFERENCE / "params.json"
    if not params.is_file() or json.loads(params.read_text()).get("data_fingerprint") != data_fingerprint:
        return None
    reference = nbformat.read(REFERENCE / name, as_version=4)
    return {cell.source: cell for cell in reference.cells if cell.cell_type == "code"}


def attach_reference(path: Path, reference: dict[str, dict] | None) -> int:
    """Give each checked cell of the notebook about to run the reference's outputs for the same source.

    The code that runs is always the current notebook's; only the expected outputs come from the reference. A checked
    cell whose source changed since the reference was made fails the run under CI (the reference must be
    regenerated); elsewhere it is reported and only executed.
    """
    notebook = nbformat.read(path, as_version=4)
    compared = 0
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.source.startswith(CHECK_MARKER):
            continue
        if reference is not None and cell.source in reference:
            # nbval only compares cells that were run, so the execution count travels with the outputs.
            cell.outputs = reference[cell.source].outputs
            cell.execution_count = reference[cell.source].execution_count
            compared += 1
        else:
            if reference is not None:
                message = f"{path.name}: a checked cell changed since reports/reference was made ({cell.source[:60]!r})"
                if os.environ.get("CI"):
                    raise SystemExit(f"{message}; regenerate it: python -m captcha_nb report --run-id reference")
                print(f"{message}; not compared")
            cell.source = cell.source[len(CHECK_MARKER):].lstrip("\n")
    nbformat.write(notebook, path)
    return compared


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
        target = out / name
        papermill.execute_notebook(str(NOTEBOOKS_DIR / name), str(target), prepare_only=True, kernel_name="python3",
                                   parameters={"data_dir": str(data_dir), **small[name]}, progress_bar=False)
        compared = attach_reference(target, reference_cells(name, data_fingerprint))
        print(f"{name}: {compared} cell(s) compared with reports/reference")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
