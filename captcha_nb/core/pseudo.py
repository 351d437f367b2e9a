"""Learning from the pictures nobody labelled: the pool, its pseudo-labels, and the rounds that renew them.

The pool is every unlabelled picture of the run (the data folder's pictures its labels.csv does not name, and every
`unlabelled` folder), decoded once at the input size like the labelled ones. Its pseudo-labels come from two
readers: a teacher before training (round 0, `core/teacher.py`, trusted as `core/trust.py` rules), and then the
run's own judged model (its weights' moving average when that reads better) in rounds spread over the budget. A
reading joins training only above a confidence threshold measured each round on the labelled validation pictures:
the lowest confidence at which the model's validation readings are still PRECISION_TARGET right. Pseudo-labelled
pictures train like labelled ones, under the same augmentation (a weak view read, the augmented view learnt, as in
self-training); a harder view for them alone, as FixMatch has it, read less (reports/BENCHMARKS.md, "A harder view for
the pseudo-labelled pictures"). Validation and test only ever use human labels, unless there are none (then the
teacher's readings, and the run says so).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from captcha_nb.core.ctc import Alphabet
from captcha_nb.core.evaluation import read
from captcha_nb.sources.data import CaptchaSet, iterate_batches
from captcha_nb.sources.files import atomic_write

# Readings are kept above the lowest confidence at which this share of the validation readings is right.
PRECISION_TARGET = 0.97
# A precision needs this many readings above the threshold to be measured at all; below it FALLBACK_THRESHOLD holds.
MIN_READINGS = 20
# Issue 27's probes found our readings at confidence >= 0.9 96-97 % right (captcha_images_v2, securimage); measured
# here with 5 validation pictures, 93.7-95.3 % (reports/BENCHMARKS.md, "The unlabelled pool").
FALLBACK_THRESHOLD = 0.9
# Never below this: under it a greedy reading is as likely to be another text as this one.
MIN_THRESHOLD = 0.5
# The run's model reads the pool again after each such share of the budget, once it reads validation pictures.
ROUND_EVERY = 0.2
# An epoch takes at most this many pseudo-labelled pictures per labelled one (and at least POOL_ROWS_MIN), so that a
# pool ten times the labels does not make epochs, and so the judging of checkpoints, ten times rarer.
POOL_SHARE = 2.0
POOL_ROWS_MIN = 512
# With a teacher, a round keeps only the readings the teacher made too (a second opinion, whatever its confidence):
# the errors of two different readers rarely coincide. Measured on the seed-0 pools against their hidden labels,
# agreement lifted the pseudo-labels' precision from 81-96 % to 92-99 % on kelab and digits (BENCHMARKS.md, "The
# unlabelled pool").
SECOND_OPINION = True
# A pseudo-label is taken only at a length the human labels have (when there are any): a reading of another length
# is wrong whatever its confidence. Most of ddddocr's mistakes are of length: of its readings at confidence >= 0.9 on
# 1,000 labelled pictures of each style, 45 % of securimage's and 82 % of digits' have the right length, and those are
# 99.5 % right character by character (BENCHMARKS.md, "The unlabelled pool", lengths).
LABELLED_LENGTHS_ONLY = True
# Whether a round that changes the training set (a new pseudo-labelled picture, or a new text for one) starts the
# stop rule's patience again (schedule.stop_reason). Off: measured on the training pictures the benchmark hid
# (benchmarks/hidden_rest.py), letting kelab's and digits' pool runs use their whole budget read no more of them
# (kelab 50 labels, 10 min: 96.6 / 98.8 / 94.0 % -> 96.0 / 98.0 / 93.0 %; BENCHMARKS.md, "The unlabelled pool").
RENEWED_DATA_RESTARTS_PATIENCE = False

PSEUDO_COLUMNS = ["picture", "reading", "confidence", "round", "source"]


@dataclass
class PseudoLabel:
    text: str
    confidence: float
    round: int
    source: str


def confidence_threshold(confidences: Sequence[float], correct: Sequence[bool]) -> tuple[float, str]:
    """The lowest confidence above which readings are PRECISION_TARGET right, and how it was found."""
    ranked = sorted(zip(confidences, correct), key=lambda pair: -pair[0])
    best, right = None, 0
    for count, (confidence, ok) in enumerate(ranked, start=1):
        right += ok
        tied = count < len(ranked) and ranked[count][0] == confidence  # a level takes all its readings or none
        if not tied and count >= MIN_READINGS and right / count >= PRECISION_TARGET:
            best = confidence
    if best is None:
        if len(ranked) >= MIN_READINGS:
            return 1.0, (f"no confidence level of {len(ranked)} labelled readings is {PRECISION_TARGET:.0%} right: "
                         f"nothing kept")
        return FALLBACK_THRESHOLD, f"{len(ranked)} labelled readings cannot measure it (< {MIN_READINGS}): fallback"
    return max(best, MIN_THRESHOLD), f"{PRECISION_TARGET:.0%} of {len(ranked)} labelled readings right above it"


def plausible(text: str, lengths: frozenset[int] | None) -> bool:
    """Whether a reading has a length the human labels have (LABELLED_LENGTHS_ONLY; any length without labels)."""
    return not LABELLED_LENGTHS_ONLY or not lengths or len(text) in lengths


def agree(reading: str, teacher: str, doubtful: frozenset[str]) -> bool:
    """Whether the teacher seconds a reading: the same text, except where the teacher wrote a doubtful character."""
    return len(reading) == len(teacher) and all(a == b or b in doubtful for a, b in zip(reading, teacher))


@dataclass
class Pool:
    """The unlabelled pictures, their decoded input and their current pseudo-labels (by row)."""

    pictures: CaptchaSet
    x: torch.Tensor
    labels: dict[int, PseudoLabel] = field(default_factory=dict)
    rounds: list[dict] = field(default_factory=list)
    teacher_texts: list[str | None] | None = None  # the teacher's reading of every row, confident or not
    teacher_doubts: frozenset[str] = frozenset()  # the characters it writes wrongly too often (doubtful_characters)
    lengths: frozenset[int] | None = None  # the human labels' lengths; a pseudo-label of another is not taken
    # With no human label: the data folder's pictures whose labels are the teacher's readings (training and
    # validation), by path, as the student last revised them. They are pseudo-labels too: pseudo_labels.csv lists
    # them.
    folder_labels: dict[str, PseudoLabel] = field(default_factory=dict)

    def second_opinion(self, readings: Sequence) -> tuple[list, int]:
        """The readings the teacher agrees with (the others become None) and how many it did not; all of them when
        there is no teacher."""
        if not SECOND_OPINION or self.teacher_texts is None:
            return list(readings), 0
        agreed = [r if r is not None and t is not None and agree(r.text, t, self.teacher_doubts) else None
                  for r, t in zip(readings, self.teacher_texts)]
        return agreed, sum(a is None and r is not None for a, r in zip(agreed, readings))

    def __len__(self) -> int:
        return len(self.pictures)

    def adopt(self, readings: Sequence, threshold: float, round_number: int, source: str) -> int:
        """Take every reading (text, confidence; None for none) at or above the threshold, at a length the labels
        have, as the picture's label; a picture this round does not read so keeps an earlier round's label."""
        kept = 0
        for row, reading in enumerate(readings):
            if reading is not None and reading.text and reading.confidence >= threshold and \
                    plausible(reading.text, self.lengths):
                self.labels[row] = PseudoLabel(reading.text, float(reading.confidence), round_number, source)
                kept += 1
        return kept

    def epoch_rows(self, n_labelled: int, generator: torch.Generator) -> list[int]:
        """The pseudo-labelled rows one epoch trains on: all of them, or a fresh random draw of POOL_SHARE per
        labelled picture."""
        rows = sorted(self.labels)
        limit = max(POOL_ROWS_MIN, round(POOL_SHARE * n_labelled))
        if len(rows) <= limit:
            return rows
        chosen = torch.randperm(len(rows), generator=generator)[:limit]
        return [rows[i] for i in chosen.tolist()]

    def state(self) -> dict:
        return {"labels": {row: label.__dict__ for row, label in self.labels.items()}, "rounds": self.rounds,
                "folder_labels": {path: label.__dict__ for path, label in self.folder_labels.items()}}

    def load_state(self, state: dict, folder: CaptchaSet | None = None) -> None:
        """A resumed run's pseudo-labels; the student's revisions of the teacher-labelled `folder` are put back."""
        self.labels = {int(row): PseudoLabel(**label) for row, label in state["labels"].items()}
        self.rounds = list(state["rounds"])
        saved = state.get("folder_labels", {})
        self.folder_labels.update({path: PseudoLabel(**label) for path, label in saved.items()})
        if folder is not None:
            for row, path in enumerate(folder.paths):
                if str(path) in self.folder_labels:
                    folder.labels[row] = self.folder_labels[str(path)].text

    def summary(self) -> dict:
        """What metrics.json records: the pool's size and every round's threshold and count."""
        return {"pictures": len(self), "in_use": len(self.labels), "rounds": [dict(r) for r in self.rounds]}

    def write(self, path: Path) -> None:
        """pseudo_labels.csv: every picture that has a pseudo-label now (the teacher-labelled data folder's first),
        by its full path, so that the run's views find it from any folder; never the user's labels.csv."""
        labelled = [(str(Path(picture).resolve()), label) for picture, label in self.folder_labels.items()]
        labelled += [(str(Path(self.pictures.paths[row]).resolve()), self.labels[row]) for row in sorted(self.labels)]

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(PSEUDO_COLUMNS)
                for picture, label in labelled:
                    writer.writerow([picture, label.text, f"{label.confidence:.4f}", label.round, label.source])

        atomic_write(path, write)


def read_pseudo_labels(path: Path) -> dict[Path, str]:
    """A run's pseudo_labels.csv as {picture (resolved): reading}; empty when the run wrote none."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {Path(row["picture"]).resolve(): row["reading"] for row in csv.DictReader(f)}


class TrainingBatches:
    """One epoch's shuffled batches of (uint8 pictures, labels): every labelled training picture and the pool's
    pseudo-labelled share (Pool.epoch_rows), mixed in the same batches. Pictures are gathered a batch at a time, so
    an epoch costs no copy of the pool."""

    def __init__(self, train_x: torch.Tensor, train_labels: list[str], pool: Pool | None, batch_size: int,
                 generator: torch.Generator):
        self.train_x, self.pool = train_x, pool
        self.pool_rows = pool.epoch_rows(len(train_labels), generator) if pool else []
        self.labels = list(train_labels) + [pool.labels[row].text for row in self.pool_rows]
        self.batches = list(iterate_batches(len(self.labels), batch_size, shuffle=True, generator=generator))

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        n_train, pool_index = len(self.train_x), torch.tensor(self.pool_rows, dtype=torch.long)
        for rows in self.batches:
            own, pooled = rows[rows < n_train], rows[rows >= n_train] - n_train
            images = self.train_x[own]
            if len(pooled):  # the pool stays on the CPU; a batch of it joins the training pictures' device
                images = torch.cat([images, self.pool.x[pool_index[pooled]].to(images.device)])
            yield images, [self.labels[i] for i in own.tolist() + (pooled + n_train).tolist()]


def due(pool: Pool | None, progress, budget: float, config, by_teacher: bool = False) -> bool:
    """Whether the run's model should read the pool (and, `by_teacher`, the teacher-labelled pictures) now: it reads
    validation pictures, half a round has passed since the end of the plateau or a whole one since the last round,
    and a tenth of the budget is left to learn from it."""
    if pool is None or not (len(pool) or by_teacher) or not config.pseudo_labels or progress.plateau_seconds is None:
        return False
    own = [r["at_seconds"] for r in pool.rounds if r["source"] == "self"]
    wait = ROUND_EVERY * budget if own else ROUND_EVERY * budget / 2
    since = progress.elapsed - (own[-1] if own else progress.plateau_seconds)
    return since >= wait and budget - progress.elapsed >= 0.1 * budget


def self_training_round(pool: Pool, net: torch.nn.Module, evaluation, alphabet: Alphabet, elapsed: float,
                        teacher_labelled: CaptchaSet | None = None, teacher_x: torch.Tensor | None = None) -> dict:
    """One round: the judged model reads the pool; its readings above the threshold its validation readings set
    (and, with a teacher, that the teacher read alike: SECOND_OPINION) become the pseudo-labels. With no human
    label, the training pictures' labels are the teacher's readings: the model reads them too and its confident
    readings replace the teacher's (a student that reads better than its teacher corrects it). Returns the round's
    record."""
    started = time.perf_counter()
    correct = [p == t for p, t in zip(evaluation.predictions, evaluation.truths)]
    threshold, how = confidence_threshold(evaluation.confidences, correct)
    readings = read(net, pool.x, alphabet)
    number = len(pool.rounds)
    agreed, overruled = pool.second_opinion(readings)
    before = {row: label.text for row, label in pool.labels.items()}
    kept = pool.adopt(agreed, threshold, number, "self")
    # What the round changed in the training set (a new picture or a new text): RENEWED_DATA_RESTARTS_PATIENCE.
    changed = sum(before.get(row) != label.text for row, label in pool.labels.items())
    record = {"round": number, "source": "self", "at_seconds": round(elapsed, 1), "threshold": round(threshold, 4),
              "threshold_rule": how, "read": len(readings), "kept": kept, "changed": changed,
              "in_use": len(pool.labels), "val_seq_accuracy_at_round": evaluation.seq_accuracy}
    if pool.teacher_texts is not None:
        record["teacher_disagreed"] = overruled
    if teacher_labelled is not None and len(teacher_labelled):
        revised = 0
        for row, reading in enumerate(read(net, teacher_x, alphabet)):
            if reading.text and reading.confidence >= threshold and reading.text != teacher_labelled.labels[row]:
                teacher_labelled.labels[row] = reading.text
                pool.folder_labels[str(teacher_labelled.paths[row])] = PseudoLabel(
                    reading.text, float(reading.confidence), number, "self")
                revised += 1
        record["teacher_labels_revised"] = revised
        record["changed"] += revised
    record["seconds"] = round(time.perf_counter() - started, 1)  # what reading the pool cost this round
    pool.rounds.append(record)
    return record


def restarts_patience(record: dict) -> bool:
    """Whether a round's record (self_training_round) starts the stop rule's patience again."""
    return RENEWED_DATA_RESTARTS_PATIENCE and record["changed"] > 0
