"""Fixtures for the report, sweep and comparison tests."""

import json
from pathlib import Path

import nbformat
import pytest


@pytest.fixture
def fake_papermill(monkeypatch):
    """Record notebook executions instead of running kernels; write the files notebook 03 would."""
    import papermill

    calls = []

    def execute(source, target, parameters, cwd=None, **kwargs):
        calls.append((source, parameters))
        if "03_" in source:  # paths are given as the kernel sees them, from its working directory
            run_dir = Path(cwd, parameters["run_dir"])
            lr = parameters.get("lr", 0.001)
            with open(run_dir / "metrics.json", "w") as f:
                json.dump({"val_seq_accuracy": 0.5, "val_cer": 0.1, "best_epoch": 2, "train_seconds": 9.0,
                           "test_seq_accuracy": 0.9 if lr < 0.002 else 0.8, "test_cer": 0.02}, f)
            (run_dir / "history.csv").write_text("epoch,val_seq_accuracy,seconds\n1,0.5,4.0\n2,0.96,8.5\n")
        return nbformat.v4.new_notebook(metadata={"papermill": {}})

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    return calls
