"""The characters a model reads and the tensors CTC takes: label encoding, beside core/ctc.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Alphabet:
    """The characters a model can emit. Class 0 is the CTC blank, so character i has class i + 1."""

    chars: str

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars):
            raise ValueError(f"alphabet {self.chars!r} repeats a character")

    @classmethod
    def from_labels(cls, labels: Sequence[str]) -> "Alphabet":
        return cls("".join(sorted(set("".join(labels)))))

    @property
    def num_classes(self) -> int:
        return len(self.chars) + 1

    def can_encode(self, label: str) -> bool:
        return all(c in self.chars for c in label)

    def encode(self, label: str) -> list[int]:
        missing = sorted({c for c in label if c not in self.chars})
        if missing:
            raise ValueError(f"label {label!r} has characters {missing} that are not in the alphabet {self.chars!r}")
        return [self.chars.index(c) + 1 for c in label]

    def decode(self, classes: Sequence[int]) -> str:
        return "".join(self.chars[c - 1] for c in classes if c > 0)


def encode_targets(labels: Sequence[str], alphabet: Alphabet) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated class indices and per-label lengths, the form CTC loss takes for variable-length labels."""
    encoded = [alphabet.encode(label) for label in labels]
    targets = torch.tensor([c for e in encoded for c in e], dtype=torch.long)
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
    return targets, lengths


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to the model's float input in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)
