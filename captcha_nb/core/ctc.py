"""CTC: the characters a model reads and the targets they become, the loss, and two ways to turn per-time-step class
probabilities into text.

Class 0 is the blank. A path such as `8 8 - 8 -` reads "88": repeats merge first, THEN blanks drop, which is why a
doubled character needs a blank between its two runs and why a label needs T >= length + number of doubled pairs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

BLANK = 0


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


def min_time_steps(label: str) -> int:
    """The fewest time steps CTC can emit a label in: one per character plus a blank between adjacent repeats."""
    return len(label) + sum(1 for a, b in zip(label, label[1:]) if a == b)


def ctc_loss(logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Mean CTC loss of (B, T, C) logits against concatenated targets.

    Log-probabilities are computed in float32 even under mixed precision, and impossible alignments give zero
    rather than infinite loss so one bad sample cannot poison a batch.
    """
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, C), as ctc_loss expects
    input_lengths = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long)
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=BLANK, zero_infinity=True)


def ctc_loss_per_sample(log_probs: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """CTC loss of each sample of (B, T, C) log-probabilities, normalised by its label length."""
    input_lengths = torch.full((log_probs.shape[0],), log_probs.shape[1], dtype=torch.long)
    losses = F.ctc_loss(log_probs.float().transpose(0, 1), targets, input_lengths, target_lengths, blank=BLANK,
                        reduction="none", zero_infinity=True)
    return losses / target_lengths.clamp_min(1)


@dataclass
class Decoding:
    """One decoded sequence: classes (1-based, blank removed), each one's confidence and the time step it peaks at."""

    classes: list[int]
    confidences: list[float]
    frames: list[int]

    @property
    def confidence(self) -> float:
        """Probability-like confidence of the whole reading: the product of the characters' confidences."""
        return float(np.prod(self.confidences)) if self.confidences else 0.0


def greedy_decode(probs: torch.Tensor | np.ndarray) -> list[Decoding]:
    """Best-path decoding of (B, T, C) probabilities: argmax per step, merge repeats, then drop blanks."""
    probs = torch.as_tensor(probs)
    best_prob, best_class = probs.max(dim=-1)
    decodings = []
    for classes, peaks in zip(best_class.tolist(), best_prob.tolist()):
        out = Decoding([], [], [])
        previous = BLANK
        for t, (c, p) in enumerate(zip(classes, peaks)):
            if c != BLANK and c == previous:
                # Same run as the previous step: keep the run's most confident frame.
                if p > out.confidences[-1]:
                    out.confidences[-1], out.frames[-1] = p, t
            elif c != BLANK:
                out.classes.append(c)
                out.confidences.append(p)
                out.frames.append(t)
            previous = c
        decodings.append(out)
    return decodings


def _logsumexp(*values: float) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def beam_search(probs: torch.Tensor | np.ndarray, beam_width: int = 10) -> tuple[list[int], float]:
    """CTC prefix beam search over one (T, C) probability matrix: the best prefix's classes and log-probability.

    Each prefix keeps two log-probabilities: of ending in a blank, and of ending in its last character. Summing over
    all paths of a prefix is what lets it beat greedy decoding, which follows only the single best path.
    """
    return beam_alternatives(probs, beam_width, top=1)[0]


def beam_alternatives(probs: torch.Tensor | np.ndarray, beam_width: int = 10,
                      top: int = 3) -> list[tuple[list[int], float]]:
    """The `top` best readings of prefix beam search with their log-probabilities, best first."""
    log_probs = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-30, None))
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}  # prefix -> (ends blank, ends char)
    for step in log_probs:
        # Only characters that could matter at this step: the most probable few keep the search fast.
        candidates = np.argsort(step)[::-1][: max(beam_width, 2)]
        following: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (p_blank, p_char) in beams.items():
            p_total = _logsumexp(p_blank, p_char)
            for c in candidates:
                p = step[c]
                if c == BLANK:
                    entry = following[prefix]
                    entry[0] = _logsumexp(entry[0], p_total + p)
                    continue
                extended = prefix + (int(c),)
                entry = following[extended]
                if prefix and prefix[-1] == c:
                    # A repeat only extends the prefix after a blank; otherwise it merges into the same character.
                    entry[1] = _logsumexp(entry[1], p_blank + p)
                    same = following[prefix]
                    same[1] = _logsumexp(same[1], p_char + p)
                else:
                    entry[1] = _logsumexp(entry[1], p_total + p)
        ranked = sorted(following.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)
        beams = {prefix: (pb, pc) for prefix, (pb, pc) in ranked[:beam_width]}
    ranked = sorted(beams.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)
    return [(list(prefix), _logsumexp(pb, pc)) for prefix, (pb, pc) in ranked[:top]]


def runner_ups(probs: torch.Tensor | np.ndarray, frames: list[int], classes: list[int]) -> list[tuple[int, float]]:
    """At the frame where each emitted character peaks, the most probable *other* character and its probability:
    where the model hesitated, and between what. The blank is left out, since it is the runner-up of almost every
    confident character and says nothing about which character it could have been."""
    probs = np.asarray(probs)
    found = []
    for frame, chosen in zip(frames, classes):
        row = probs[frame].copy()
        row[[BLANK, chosen]] = -1.0
        other = int(row.argmax())
        found.append((other, float(probs[frame, other])))
    return found
