"""Scores of predicted text against the real text."""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein


def sequence_accuracy(predictions: Sequence[str], truths: Sequence[str]) -> float:
    """Share of captchas read exactly right: the figure that matters for a captcha."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} labels")
    if not truths:
        return float("nan")
    return sum(p == t for p, t in zip(predictions, truths)) / len(truths)


def character_error_rate(predictions: Sequence[str], truths: Sequence[str]) -> float:
    """Edit distance summed over all samples, divided by the total length of the real text."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} labels")
    total = sum(len(t) for t in truths)
    if total == 0:
        return float("nan")
    return sum(Levenshtein.distance(p, t) for p, t in zip(predictions, truths)) / total
