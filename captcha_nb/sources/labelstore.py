"""The labels a person gives a folder of captchas, kept in the folder's `labels.csv` the moment they are given.

Each save appends one `filename,label` row and forces it to disk (flush and fsync) before returning, so killing the
labelling app loses nothing that was saved, and a restart carries on with the pictures still unlabelled. Undo
rewrites the file without its last row, atomically. The file is the same `labels.csv` that training reads.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from captcha_nb.sources.files import IMAGE_SUFFIXES, LABELS_FILE, atomic_write

HEADER = ["filename", "label"]


@dataclass
class LabelStore:
    folder: Path
    labels: dict[str, str] = field(default_factory=dict)  # file name -> label, in the order they were saved
    named_by_label: list[str] = field(default_factory=list)  # files whose name was taken as their label

    @property
    def path(self) -> Path:
        return self.folder / LABELS_FILE

    @classmethod
    def open(cls, folder: str | os.PathLike, alphabet: str | None = None) -> "LabelStore":
        """The folder's labels. Without a labels.csv, a file whose name is written in `alphabet` (a trained run's)
        is taken to be named by its label, as training reads such folders; those labels are written to the new
        labels.csv first, so that training, which then reads labels.csv only, keeps them."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder of captchas")
        store = cls(folder)
        if store.path.is_file():
            with open(store.path, newline="", encoding="utf-8-sig") as f:
                rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
            store.labels = {name: label for name, label, *_ in (r for r in rows if r != HEADER and len(r) >= 2)
                            if label}
        elif alphabet:
            for path in store.images():
                if set(path.stem) <= set(alphabet):
                    store.save(path.name, path.stem)
                    store.named_by_label.append(path.name)
        return store

    def images(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir()
                      if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)

    def unlabelled(self) -> list[Path]:
        return [p for p in self.images() if p.name not in self.labels]

    def save(self, filename: str, label: str) -> None:
        """Append one row and make sure it is on disk before returning."""
        if not label or any(c in label for c in "\r\n"):
            raise ValueError(f"label {label!r} for {filename} must be one line of text")
        if filename in self.labels:
            raise ValueError(f"{filename} is already labelled {self.labels[filename]!r}; undo it first")
        new = not self.path.is_file()
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(HEADER)
            writer.writerow([filename, label])
            f.flush()
            os.fsync(f.fileno())
        self.labels[filename] = label

    def undo(self) -> tuple[str, str] | None:
        """Remove the last saved label; returns (filename, label), or None when there is nothing to undo."""
        if not self.labels:
            return None
        filename = next(reversed(self.labels))
        label = self.labels.pop(filename)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(HEADER)
        writer.writerows(self.labels.items())
        text = buffer.getvalue()
        atomic_write(self.path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return filename, label
