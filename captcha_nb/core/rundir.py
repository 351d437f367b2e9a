"""A run folder and its files: the one module that knows their names.

Training writes model.pt (the best checkpoint), last.pt (everything `resume` needs), history.csv, metrics.json,
split.json and, when it learnt from unlabelled pictures, pseudo_labels.csv; a report adds params.json beside them.
Everything else asks a `RunDir` for a file rather than spelling its name.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from captcha_nb.sources.files import atomic_write, write_json


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __init__(self, path: str | os.PathLike):
        object.__setattr__(self, "path", Path(path))

    @property
    def model(self) -> Path:
        return self.path / "model.pt"

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def split(self) -> Path:
        return self.path / "split.json"

    @property
    def params(self) -> Path:
        return self.path / "params.json"

    @property
    def pseudo_labels(self) -> Path:
        return self.path / "pseudo_labels.csv"

    def holds_run(self) -> bool:
        """A run was started or finished here: training a new one into it would overwrite it."""
        return self.last.exists() or self.model.exists()

    def read_metrics(self) -> dict:
        return json.loads(self.metrics.read_text(encoding="utf-8"))

    def write_metrics(self, metrics: dict) -> Path:
        return write_json(self.metrics, metrics)

    def write_history(self, rows: list[dict], columns: list[str]) -> Path:
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)

        return atomic_write(self.history, write)


def checkpoint_of(path: str | os.PathLike) -> Path:
    """A run folder's best checkpoint, or the checkpoint file itself when one is named."""
    path = Path(path)
    return RunDir(path).model if path.is_dir() else path
