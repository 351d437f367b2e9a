"""A run's data, made ready before its first step: the labelled pictures and their split, the pool of unlabelled ones
and what a teacher read in it, the input they are decoded to, and the alphabet.

A data folder's labels are its labels.csv, or its file names when it has none; given a teacher, a folder without a
labels.csv is read as unlabelled (its pictures are named by a site, not by their text), and when no picture has a
human label the teacher's confident readings of the data folder take their place: the split then has no test part,
and the run's figures are called what they are, agreement with the teacher.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from captcha_nb import project_relative
from captcha_nb.core.calibration import calibration_errors
from captcha_nb.core.checkpoint import build_saved_model, read_checkpoint
from captcha_nb.core.config import TrainConfig
from captcha_nb.core.ctc import Alphabet, min_time_steps
from captcha_nb.core.evaluation import evaluation_of
from captcha_nb.core.model import batched_logits, model_spec
from captcha_nb.core.pseudo import Pool, PseudoLabel, plausible
from captcha_nb.core.rundir import RunDir
from captcha_nb.core.teacher import open_teacher
from captcha_nb.core.trust import TEACHER_BLIND_THRESHOLD, teacher_takes, trust_teacher
from captcha_nb.sources.data import (
    CaptchaSet,
    DataError,
    fingerprint_dir,
    load_dataset,
    load_pool,
    load_split,
    read_labels,
    save_split,
    split_names,
)
from captcha_nb.sources.download import resolve_data_dir
from captcha_nb.sources.files import LABELS_FILE
from captcha_nb.sources.geometry import InputSpec
from captcha_nb.sources.input_rules import (
    PROFILE_SAMPLE,
    InputDecision,
    decide_input_spec,
)


@dataclass
class TrainingData:
    """Everything a run trains and is judged on, decoded once at the input size the data decided."""

    train: CaptchaSet
    val: CaptchaSet
    test: CaptchaSet | None
    split: dict
    alphabet: Alphabet
    spec: InputSpec
    train_x: torch.Tensor
    val_x: torch.Tensor
    input_reasons: dict = field(default_factory=dict)  # why the input is what it is (input_rules.InputDecision)
    pool: Pool | None = None  # the unlabelled pictures and their pseudo-labels (core/pseudo.py)
    labels_from: str = "labels"  # or "teacher": no human label, validation has only the teacher's readings
    teacher: dict = field(default_factory=dict)  # what the teacher read, how well, at what cost (metrics.json)

    @property
    def longest_label(self) -> int:
        return max(len(label) for label in self.train.labels)


def decide_input(config: TrainConfig, train: CaptchaSet) -> InputDecision:
    """The input geometry and pixels, decided from the training images only (sources/input_rules.py)."""
    spec = model_spec(config.model)
    if spec.fixed_size:
        fixed = InputSpec(*spec.fixed_size, channels=spec.in_channels, ink=False, time_stride=spec.time_stride)
        return InputDecision(fixed, {"size": f"model {config.model!r} takes this size only"})
    sample = train.sample_images(PROFILE_SAMPLE, seed=config.seed) if config.crop or config.locate else []
    return decide_input_spec(
        train.sizes, train.labels, sample, channels=spec.in_channels, time_stride=spec.time_stride,
        min_time_steps=max(min_time_steps(label) for label in train.labels),
        height=config.img_height, width=config.img_width, ink=config.ink, crop=config.crop, locate=config.locate,
    )


def prepare_data(config: TrainConfig, run_dir: Path, start=None, device: torch.device = torch.device("cpu")
                 ) -> TrainingData:
    """Load and split the data set, gather the pool and let the teacher read it, decide the input, and decode the
    training, validation and pool pictures.

    A start that brings a checkpoint (core/start.py) brings its input rules, and init_from the alphabet the new
    labels grow it to."""
    warm = start.warm if start is not None else None
    data_dir = resolve_data_dir(config.data_dir)
    unnamed = config.teacher is not None and not (data_dir / LABELS_FILE).is_file()
    if unnamed:
        warnings.warn(f"{data_dir} has no {LABELS_FILE}: with a teacher, its pictures are read as unlabelled")
        dataset = CaptchaSet([], [], [], config.max_image_pixels, config.progress)
    else:
        dataset = load_dataset(data_dir, config.max_image_pixels, config.progress, allow_empty=bool(config.teacher))
    wanted = config.pseudo_labels or config.teacher
    # Every picture the labels name is theirs, even one that failed to decode (it was named in a warning already).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # load_dataset named every skipped file already
        named = [] if unnamed else [path for path, _ in read_labels(data_dir)]
    pool = load_pool([data_dir, *config.unlabelled] if wanted else [], named, config.max_image_pixels,
                     config.progress)
    chars = set(config.alphabet or "") | set("".join(dataset.labels))
    if warm:
        chars |= set(warm.alphabet.chars)
    alphabet = warm.grown_alphabet(sorted(chars)) if warm else Alphabet("".join(sorted(chars)))

    teacher, readings, labels_from = {}, {}, "labels"
    if config.teacher:
        if not chars:
            raise ValueError(f"teacher={config.teacher!r}: name the characters it may read with alphabet=..., or "
                             f"label a few pictures")
        reader, started = open_teacher(config.teacher, alphabet, device), time.perf_counter()
        readings = dict(zip(pool.paths, reader.read(pool.paths, config.progress)))
        teacher = {"teacher": reader.name, "teacher_read": len(pool)}
        if not len(dataset):
            # No human label: the teacher's confident readings of the data folder are the labels.
            labels_from = "teacher"
            taken = [(p, r.text, s) for p, s in zip(pool.paths, pool.sizes)
                     if p.parent == data_dir and (r := readings[p]) and r.text and
                     r.confidence >= TEACHER_BLIND_THRESHOLD]
            if not taken:
                raise DataError(f"{data_dir}: the teacher read none of its pictures confidently")
            dataset = CaptchaSet([p for p, _, _ in taken], [t for _, t, _ in taken], [s for _, _, s in taken],
                                 config.max_image_pixels, config.progress)
            # The pool keeps the rest; its headers were read once already.
            labelled = set(dataset.paths)
            rest = [(p, s) for p, s in zip(pool.paths, pool.sizes) if p not in labelled]
            pool = CaptchaSet([p for p, _ in rest], [""] * len(rest), [s for _, s in rest], config.max_image_pixels,
                              config.progress)
        teacher["teacher_seconds"] = round(time.perf_counter() - started, 1)

    # The split: split.json's when resuming, otherwise drawn and saved; with no human label there is no test split.
    split_path = RunDir(run_dir).split
    if config.resume and split_path.is_file():
        split = load_split(split_path)
    else:
        test_fraction = 0.0 if labels_from == "teacher" else config.test_fraction
        names = split_names(dataset.names, config.val_fraction, config.seed, test_fraction)
        split = {"data_dir": project_relative(data_dir), "fingerprint": fingerprint_dir(data_dir),
                 "seed": config.seed, "val_fraction": config.val_fraction, "test_fraction": test_fraction,
                 "labels_from": labels_from}
        save_split(split_path, names, **split)
        split.update(names.to_dict())
    train, val = dataset.subset(split["train"]), dataset.subset(split["val"])
    test = dataset.subset(split["test"]) if split["test"] else None
    lengths = frozenset(map(len, train.labels + val.labels)) if labels_from == "labels" else None
    if config.teacher:
        teacher.update(trust_teacher(reader, train, lengths) if labels_from == "labels" else
                       {"teacher_threshold": TEACHER_BLIND_THRESHOLD,
                        "teacher_rule": "no human label to score it on: its readings are the labels"})
    if start is not None and start.spec is not None:
        decision = InputDecision(start.spec, {"from": start.reason})
    else:
        decision = decide_input(config, train)
    spec = decision.spec
    train_x, val_x = train.tensor(spec), val.tensor(spec)
    if train.unreadable:
        # A picture that cannot be decoded has no pixels to learn from; it was named in a warning.
        train = train.readable()
        train_x = train.tensor(spec)
    if not len(train):
        raise DataError(f"no training image of {data_dir} could be decoded")
    # The model reads the characters the user named, the teacher was allowed, and the training labels hold.
    chars = set(config.alphabet or "") | set("".join(train.labels + val.labels))
    chars |= set(alphabet.chars) if config.teacher else set()
    alphabet = warm.grown_alphabet(sorted(chars)) if warm else Alphabet("".join(sorted(chars)))
    unlabelled = Pool(pool, pool.tensor(spec), lengths=lengths) if len(pool) or labels_from == "teacher" else None
    if unlabelled is not None and config.teacher:
        given = [readings.get(p) for p in pool.paths]
        unlabelled.teacher_texts = [r.text if r else None for r in given]
        unlabelled.teacher_doubts = frozenset(teacher.get("teacher_doubtful", {}))
        # Round 0 is recorded even when the teacher is not trusted (threshold 1: nothing kept), so the run says so.
        # What it does not take (a doubtful character, a length no label has) the run's model reads later.
        threshold = teacher["teacher_threshold"]
        taken = [r if teacher_takes(r, threshold, unlabelled.teacher_doubts, lengths) else None for r in given]
        kept = unlabelled.adopt(taken, threshold, 0, teacher["teacher"])
        confident = [r for r in given if r and r.text and r.confidence >= threshold and threshold < 1.0]
        unlabelled.rounds.append({"round": 0, "source": teacher["teacher"], "at_seconds": 0.0, "threshold": threshold,
                                  "threshold_rule": teacher["teacher_rule"], "read": len(pool), "kept": kept,
                                  "in_use": len(unlabelled.labels),
                                  "doubtful_skipped": sum(bool(unlabelled.teacher_doubts & set(r.text))
                                                          for r in confident),
                                  "length_skipped": sum(not plausible(r.text, lengths) for r in confident)})
    if labels_from == "teacher":
        unlabelled.folder_labels = {str(p): PseudoLabel(readings[p].text, float(readings[p].confidence), 0,
                                                        teacher["teacher"]) for p in [*train.paths, *val.paths]}
    return TrainingData(train, val, test, split, alphabet, spec, train_x, val_x, decision.reasons, unlabelled,
                        labels_from, teacher)


def score_test(data: TrainingData, best_path: Path, device: torch.device) -> dict:
    """The headline: the saved best checkpoint read on the test images, once, after every decision was made."""
    if data.test is None:
        return {"n_test": 0, "test_seq_accuracy": None, "test_cer": None}
    payload = read_checkpoint(best_path)
    model = build_saved_model(payload, best_path).to(device)
    logits = batched_logits(model, data.test.tensor(data.spec))  # the test images go through the model once
    result = evaluation_of(logits, data.test.labels, data.alphabet)
    errors = calibration_errors(logits, data.test.labels, data.alphabet, payload.get("temperature", 1.0))
    return {"n_test": len(data.test), "test_seq_accuracy": result.seq_accuracy, "test_cer": result.cer,
            "test_loss": result.loss, "test_ece_raw": errors["ece_raw"], "test_ece": errors["ece"]}
