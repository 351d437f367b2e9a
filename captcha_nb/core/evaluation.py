"""Scoring a model on labelled pictures: loss, greedy readings, sequence accuracy and CER."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from captcha_nb.core.ctc import Alphabet, ctc_loss, encode_targets, greedy_decode
from captcha_nb.core.metrics import character_error_rate, sequence_accuracy
from captcha_nb.core.model import batched_logits


@dataclass
class Evaluation:
    loss: float
    seq_accuracy: float
    cer: float
    predictions: list[str]
    confidences: list[float]
    truths: list[str]

    def summary(self) -> dict:
        return {"n": len(self.truths), "loss": self.loss, "seq_accuracy": self.seq_accuracy, "cer": self.cer}


@dataclass(frozen=True)
class Reading:
    """A reading of one picture, by the run's model or by a teacher."""

    text: str
    confidence: float


@torch.inference_mode()
def read(model: torch.nn.Module, images: torch.Tensor, alphabet: Alphabet) -> list[Reading]:
    """The model's greedy reading of every picture of a uint8 image tensor, in batched forward passes."""
    decodings = greedy_decode(batched_logits(model, images).softmax(-1)) if len(images) else []
    return [Reading(alphabet.decode(d.classes), d.confidence) for d in decodings]


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module, images: torch.Tensor, labels: Sequence[str], alphabet: Alphabet, batch_size: int = 256
) -> Evaluation:
    """Loss, greedy predictions, sequence accuracy and CER over a uint8 image tensor.

    Labels with characters outside the alphabet cannot be read by this model: they count as errors and are left out
    of the loss rather than crashing the evaluation.
    """
    return evaluation_of(batched_logits(model, images, batch_size), labels, alphabet)


def evaluation_of(logits: torch.Tensor, labels: Sequence[str], alphabet: Alphabet) -> Evaluation:
    """`evaluate` from (N, T, classes) logits already computed, so one forward pass can serve several figures."""
    decodings = greedy_decode(logits.softmax(-1)) if len(logits) else []
    predictions = [alphabet.decode(decoding.classes) for decoding in decodings]
    confidences = [decoding.confidence for decoding in decodings]
    known = [i for i, label in enumerate(labels) if alphabet.can_encode(label)]
    loss = float("nan")
    if known:
        targets, lengths = encode_targets([labels[i] for i in known], alphabet)
        loss = ctc_loss(logits[known], targets, lengths).item()
    truths = list(labels)
    return Evaluation(
        loss=loss,
        seq_accuracy=sequence_accuracy(predictions, truths),
        cer=character_error_rate(predictions, truths),
        predictions=predictions,
        confidences=confidences,
        truths=truths,
    )
