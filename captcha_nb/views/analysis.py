"""Error analysis of a trained recogniser: the tables behind notebooks 04 and 05."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein

from captcha_nb.core.calibration import (
    confidences_and_correct,
    expected_calibration_error,
    reliability,
)
from captcha_nb.core.metrics import character_error_rate, sequence_accuracy
from captcha_nb.serving.inference import Recogniser
from captcha_nb.sources.data import CaptchaSet

MISSING = "∅"  # stands for "no character" in the confusion matrix: a deletion or an insertion


def predict_dataset(recogniser: Recogniser, dataset: CaptchaSet, beam_width: int = 0) -> tuple[pd.DataFrame, list]:
    """Predict every image; returns a table (one row per image) and the Prediction objects with probabilities."""
    images = dataset.tensor(recogniser.spec)
    predictions = recogniser.predict_tensor(images, beam_width=beam_width, keep_probs=True)
    table = pd.DataFrame(
        {
            "name": dataset.names,
            "truth": dataset.labels,
            "prediction": [p.text for p in predictions],
            "confidence": [p.confidence for p in predictions],
            "min_char_confidence": [min(p.char_confidences, default=0.0) for p in predictions],
        }
    )
    table["correct"] = table["truth"] == table["prediction"]
    table["edit_distance"] = [Levenshtein.distance(p, t) for p, t in zip(table["prediction"], table["truth"])]
    return table, predictions


def error_table(table: pd.DataFrame) -> pd.DataFrame:
    """The misread captchas, least confident first."""
    return table[~table["correct"]].sort_values("confidence").reset_index(drop=True)


def closest_calls(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """Up to n captchas where the model came closest to failing: the misread ones, least confident first, then the
    correct readings it was least sure of. A run that reads its whole split right has no errors to show; its closest
    calls are where the next error will come from."""
    correct = table[table["correct"]].sort_values("confidence")
    return pd.concat([error_table(table), correct]).head(n).reset_index(drop=True)


def aligned_pairs(truth: str, prediction: str) -> list[tuple[str, str]]:
    """(true character, predicted character) pairs along the edit-distance alignment; MISSING marks a gap."""
    pairs = []
    for block in Levenshtein.opcodes(truth, prediction):
        expected, read = truth[block.src_start : block.src_end], prediction[block.dest_start : block.dest_end]
        if block.tag in ("equal", "replace"):  # blocks of one-for-one characters
            pairs.extend(zip(expected, read))
        elif block.tag == "delete":
            pairs.extend((c, MISSING) for c in expected)
        else:
            pairs.extend((MISSING, c) for c in read)
    return pairs


def confusion_matrix(truths: Sequence[str], predictions: Sequence[str], alphabet: str) -> pd.DataFrame:
    """Counts of true character (rows) read as predicted character (columns), including missing ones."""
    symbols = sorted(set(alphabet) | set("".join(truths)) | set("".join(predictions))) + [MISSING]
    matrix = pd.DataFrame(0, index=pd.Index(symbols, name="truth"), columns=pd.Index(symbols, name="prediction"))
    for truth, prediction in zip(truths, predictions):
        for t, p in aligned_pairs(truth, prediction):
            matrix.loc[t, p] += 1
    return matrix


def top_confusions(matrix: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The most frequent off-diagonal cells of a confusion matrix."""
    cells = matrix.stack()
    off_diagonal = np.array([t != p for t, p in cells.index])
    cells = cells[off_diagonal & (cells > 0).to_numpy()]
    return cells.sort_values(ascending=False).head(n).rename("count").reset_index()


def position_accuracy(truths: Sequence[str], predictions: Sequence[str]) -> pd.DataFrame:
    """Share of characters read right at each position of the true label."""
    right: dict[int, int] = {}
    total: dict[int, int] = {}
    for truth, prediction in zip(truths, predictions):
        touched = {op.src_pos for op in Levenshtein.editops(truth, prediction) if op.tag != "insert"}
        for i in range(len(truth)):
            total[i + 1] = total.get(i + 1, 0) + 1
            right[i + 1] = right.get(i + 1, 0) + (i not in touched)
    table = pd.DataFrame({"characters": total, "accuracy": {k: right[k] / total[k] for k in total}})
    return table.rename_axis("position").sort_index()


def coverage_table(confidences: Sequence[float], correct: Sequence[bool], steps: int = 10) -> pd.DataFrame:
    """Accuracy on the predictions kept when the least confident ones are rejected, at each coverage level."""
    order = np.argsort(-np.asarray(confidences, dtype=float))
    correct = np.asarray(correct, dtype=bool)[order]
    confidences = np.asarray(confidences, dtype=float)[order]
    rows = []
    for coverage in np.linspace(1.0, 1.0 / steps, steps):
        kept = max(1, int(round(coverage * len(order))))
        rows.append({"coverage": round(float(coverage), 3), "kept": kept, "threshold": float(confidences[kept - 1]),
                     "accuracy": float(correct[:kept].mean())})
    return pd.DataFrame(rows)


def calibration(recogniser: Recogniser, dataset: CaptchaSet) -> tuple[pd.DataFrame, dict[str, float]]:
    """Reliability bins of the raw (temperature 1) and the calibrated confidences on a data set, and each one's
    expected calibration error. The readings are the same at every temperature; only the confidences move."""
    images = dataset.tensor(recogniser.spec)
    frames, errors = [], {}
    for kind, temperature in (("raw", 1.0), ("calibrated", recogniser.temperature)):
        log_probs = recogniser.probabilities(images, temperature=temperature).clamp_min(1e-30).log()
        confidences, correct = confidences_and_correct(log_probs, list(dataset.labels), recogniser.alphabet, 1.0)
        frames.append(pd.DataFrame(reliability(confidences, correct)).assign(confidences=kind))
        errors[kind] = expected_calibration_error(confidences, correct)
    return pd.concat(frames, ignore_index=True), errors


def compare_decoders(
    recogniser: Recogniser, dataset: CaptchaSet, beam_widths: Sequence[int] = (0, 5, 20)
) -> pd.DataFrame:
    """Sequence accuracy, CER and decoding time of greedy decoding (beam width 0) against prefix beam search.

    The model runs once; only the decoding is repeated and timed, since that is all that differs.
    """
    probs = recogniser.probabilities(dataset.tensor(recogniser.spec))
    rows = []
    for width in beam_widths:
        start = time.perf_counter()
        texts = [p.text for p in recogniser.decode(probs, beam_width=width)]
        seconds = time.perf_counter() - start
        rows.append({"decoder": "greedy" if width <= 1 else f"beam {width}",
                     "seq_accuracy": sequence_accuracy(texts, dataset.labels),
                     "cer": character_error_rate(texts, dataset.labels),
                     "decoding ms per image": 1000 * seconds / max(len(dataset), 1)})
    return pd.DataFrame(rows).set_index("decoder")


def disagreements(table_a: pd.DataFrame, table_b: pd.DataFrame) -> pd.DataFrame:
    """Images where two decoders read differently, with both readings."""
    merged = table_a[["name", "truth", "prediction"]].merge(
        table_b[["name", "prediction"]], on="name", suffixes=("_a", "_b"))
    return merged[merged["prediction_a"] != merged["prediction_b"]].reset_index(drop=True)



def suspected_label_errors(recogniser: Recogniser, dataset: CaptchaSet, n: int = 12) -> pd.DataFrame:
    """The images whose label the model disagrees with most: highest CTC loss of the label under the model.

    On training images a well-fitted model has a low loss almost everywhere; the few it still cannot fit are often
    mislabelled (a crowd-labelled set has some), or are the hardest pictures. Either way they are worth a look.
    """
    import torch

    from captcha_nb.core.ctc import ctc_loss_per_sample, encode_targets

    probs = recogniser.probabilities(dataset.tensor(recogniser.spec))
    readable = [i for i, label in enumerate(dataset.labels) if recogniser.alphabet.can_encode(label)]
    targets, lengths = encode_targets([dataset.labels[i] for i in readable], recogniser.alphabet)
    losses = ctc_loss_per_sample(torch.log(probs[readable].clamp_min(1e-12)), targets, lengths)
    readings = recogniser.decode(probs[readable])
    table = pd.DataFrame({
        "name": [dataset.names[i] for i in readable],
        "label": [dataset.labels[i] for i in readable],
        "model reads": [r.text for r in readings],
        "confidence": [r.confidence for r in readings],
        "loss": losses.tolist(),
    })
    return table.sort_values("loss", ascending=False).head(n).reset_index(drop=True)
