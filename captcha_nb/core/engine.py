"""Training: one epoch, one evaluation, and `fit(config)` which runs a whole experiment into a run directory.

A run directory holds model.pt (the best checkpoint), last.pt (to resume), history.csv, metrics.json and split.json.
The headline figure in metrics.json is the test score: images that no decision (stopping, choosing the checkpoint)
ever looked at, scored once at the end.
"""

from __future__ import annotations

import csv
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from captcha_nb import project_relative
from captcha_nb.core.augment import augment
from captcha_nb.core.calibration import calibrate_checkpoint, calibration_errors
from captcha_nb.core.checkpoint import (
    atomic_save,
    build_saved_model,
    make_payload,
    read_checkpoint,
)
from captcha_nb.core.config import TrainConfig
from captcha_nb.core.ctc import ctc_loss, greedy_decode, min_time_steps
from captcha_nb.core.ema import WeightAverage
from captcha_nb.core.metrics import character_error_rate, sequence_accuracy
from captcha_nb.core.model import batched_logits, build_model, count_parameters, model_spec
from captcha_nb.core.runlock import run_lock
from captcha_nb.core.schedule import (
    better, learning_rate, next_strength, rank, schedule_progress, still_learning, stop_reason,
)
from captcha_nb.core.warmstart import (
    PRETRAINED, PRETRAINED_BY_DEFAULT, WarmStart, read_pretrained, read_warm_start, transfer,
)
from captcha_nb.sources.data import (
    Alphabet,
    CaptchaSet,
    DataError,
    encode_targets,
    fingerprint_dir,
    iterate_batches,
    load_dataset,
    load_split,
    save_split,
    split_names,
    to_float,
)
from captcha_nb.sources.download import resolve_data_dir
from captcha_nb.sources.files import atomic_write, write_json
from captcha_nb.sources.geometry import PROFILE_SAMPLE, InputDecision, InputSpec, decide_input_spec

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_seq_accuracy", "val_cer", "weights", "lr", "seconds",
                   "augment_strength"]


class RunExistsError(FileExistsError):
    """The run directory already holds a finished or started run."""


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_one_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: "TrainingData",
    config: TrainConfig,
    generator: torch.Generator,
    schedule: Callable[[float], float],
    average: WeightAverage | None = None,
    deadline: float = math.inf,
    strength: float = 1.0,
) -> float:
    """One pass over the training images, or less if `deadline` (a perf_counter time) passes; returns the mean loss.

    `schedule(fraction_of_epoch)` gives the learning rate for the next step; `average`, when given, follows every step.
    """
    model.train()
    device = next(model.parameters()).device
    images, labels = data.train_x, data.train.labels
    batches = list(iterate_batches(len(images), config.batch_size, shuffle=True, generator=generator))
    total, count = 0.0, 0
    for step, rows in enumerate(tqdm(batches, desc="train", leave=False, disable=not config.progress)):
        if time.perf_counter() >= deadline:
            break
        for group in optimizer.param_groups:
            group["lr"] = schedule(step / len(batches))
        x = to_float(images[rows].to(device))
        if config.augment:
            x = augment(x, generator, strength, data.longest_label)
        targets, lengths = encode_targets([labels[i] for i in rows.tolist()], data.alphabet)
        loss = ctc_loss(model(x), targets.to(device), lengths.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if average is not None:
            average.update(model)
        total += loss.item() * len(rows)
        count += len(rows)
    return total / max(count, 1)


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


def write_history(path: Path, history: list[dict]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
            writer.writeheader()
            writer.writerows(history)

    atomic_write(path, write)


@dataclass
class EpochReport:
    """What a callback sees after every epoch: the history row and the decoded validation predictions."""

    row: dict
    evaluation: Evaluation
    val_names: list[str]


@dataclass
class FitResult:
    run_dir: Path
    history: list[dict]
    metrics: dict
    stopped_because: str
    val_names: list[str] = field(default_factory=list)


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
    input_reasons: dict = field(default_factory=dict)  # why the input is what it is (geometry.InputDecision)

    @property
    def longest_label(self) -> int:
        return max(len(label) for label in self.train.labels)


@dataclass
class Progress:
    """Where a run is: what resume restores and what the stopping rules read."""

    epoch: int = 0
    elapsed: float = 0.0
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"val_seq_accuracy": -1.0, "val_loss": math.inf})
    plateau_seconds: float | None = None  # seconds until the first correct reading of a validation captcha
    improved_at: float = 0.0  # seconds at the last better epoch or lowest validation loss (schedule.still_learning)
    augment_strength: float = 1.0  # follows the train/validation gap unless the config fixes it

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Training:
    """One run while it trains: what the steps of the loop below read and write, handed around as one object."""

    config: TrainConfig
    run_dir: Path
    data: TrainingData
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    average: WeightAverage | None
    device: torch.device
    progress: Progress


def check_run_dir(config: TrainConfig) -> Path:
    run_dir = Path(config.run_dir)
    if not config.resume and ((run_dir / "last.pt").exists() or (run_dir / "model.pt").exists()):
        raise RunExistsError(f"{run_dir} already holds a run; choose a new run_dir, or resume=True to continue it")
    return run_dir


def make_split(config: TrainConfig, dataset: CaptchaSet, run_dir: Path, data_dir: Path) -> dict:
    """The run's split: saved in split.json, or read back from it when resuming."""
    split_path = run_dir / "split.json"
    if config.resume and split_path.is_file():
        return load_split(split_path)
    split = split_names(dataset.names, config.val_fraction, config.seed, config.test_fraction)
    info = {"data_dir": project_relative(data_dir), "fingerprint": fingerprint_dir(data_dir), "seed": config.seed,
            "val_fraction": config.val_fraction, "test_fraction": config.test_fraction}
    save_split(split_path, split, **info)
    return {**info, **split.to_dict()}


def decide_input(config: TrainConfig, train: CaptchaSet) -> InputDecision:
    """The input geometry and pixels, decided from the training images only (see geometry.py)."""
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


def prepare_data(config: TrainConfig, run_dir: Path, resumed_spec: InputSpec | None = None,
                 warm: WarmStart | None = None) -> TrainingData:
    """Load and split the data set, decide the input, and decode the training and validation images.

    A warm start brings its own input rules and the alphabet the new labels grow it to."""
    data_dir = resolve_data_dir(config.data_dir)
    dataset = load_dataset(data_dir, config.max_image_pixels, config.progress)
    split = make_split(config, dataset, run_dir, data_dir)
    train, val = dataset.subset(split["train"]), dataset.subset(split["val"])
    test = dataset.subset(split["test"]) if split["test"] else None
    if resumed_spec or warm:
        decision = InputDecision(resumed_spec or warm.spec,
                                 {"from": "the run's own last.pt" if resumed_spec else "the checkpoint of init_from"})
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
    labels = train.labels + val.labels
    alphabet = warm.grown_alphabet(labels) if warm else Alphabet.from_labels(labels)
    return TrainingData(train, val, test, split, alphabet, spec, train_x, val_x, decision.reasons)


def start_pretrained(config: TrainConfig, model: torch.nn.Module, data: TrainingData) -> dict:
    """Start `model` from the shipped synthetic checkpoint when the config asks for it (or its rule does); return what
    metrics.json records about it."""
    wanted = PRETRAINED_BY_DEFAULT if config.pretrained is None else config.pretrained
    if not wanted:
        return {"pretrained": None}
    pretrained = read_pretrained(config.model)
    if pretrained is None or data.spec.channels != pretrained.spec.channels:
        if config.pretrained:
            raise ValueError(f"pretrained=True: {PRETRAINED} is missing or not a {config.model!r} model of "
                             f"{data.spec.channels}-channel input")
        return {"pretrained": None}
    return transfer(pretrained, model, data.alphabet)


def restore(config: TrainConfig, run_dir: Path, model, optimizer, average, alphabet: Alphabet) -> Progress:
    """Continue from last.pt when resuming; otherwise a fresh start."""
    last_path = run_dir / "last.pt"
    if not (config.resume and last_path.is_file()):
        return Progress(augment_strength=1.0 if config.augment_strength is None else config.augment_strength)
    state = read_checkpoint(last_path)
    if state["alphabet"] != alphabet.chars:
        raise ValueError(f"cannot resume {run_dir}: it was trained on alphabet {state['alphabet']!r}")
    model.load_state_dict(state["raw_weights"])
    optimizer.load_state_dict(state["optimizer"])
    if average is not None and state.get("average"):
        average.load_state_dict(state["average"])
    return Progress(**state["progress"])


def resumed_input(config: TrainConfig, run_dir: Path) -> InputSpec | None:
    last_path = run_dir / "last.pt"
    if config.resume and last_path.is_file():
        return InputSpec.from_dict(read_checkpoint(last_path)["input"])
    return None


def peak_memory_mb() -> float:
    """This process's peak resident memory. VmHWM is reset by exec, unlike ru_maxrss, which Linux carries over from
    the parent that started the process (a pytest or notebook process of several GB would hide the run's own)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS; the module does not exist on Windows.
    try:
        import resource
    except ImportError:
        return float("nan")
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale, 1)


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


def write_metrics(run: Training, stopped_because: str, test: dict) -> dict:
    """metrics.json: the headline (test when there is a test split), how training went, and where it started from."""
    config, run_dir, data, progress = run.config, run.run_dir, run.data, run.progress
    best = progress.best
    headline = "test" if test["n_test"] else "validation"
    metrics = {
        "model": config.model,
        "seed": config.seed,
        "headline": headline,
        "seq_accuracy": test["test_seq_accuracy"] if test["n_test"] else best["val_seq_accuracy"],
        **test,
        "n_train": len(data.train),
        "n_val": len(data.val),
        "val_seq_accuracy": best["val_seq_accuracy"],
        "val_cer": best.get("val_cer"),
        "val_loss": best["val_loss"],
        "best_epoch": best.get("best_epoch"),
        "best_weights": best.get("weights"),
        "epochs_run": len(progress.history),
        "train_seconds": progress.history[-1]["seconds"] if progress.history else 0.0,
        "plateau_seconds": progress.plateau_seconds,
        "augment_strength": progress.augment_strength,
        "final_train_loss": progress.history[-1]["train_loss"] if progress.history else None,
        "stopped_because": stopped_because,
        "parameters": count_parameters(run.model),
        "input_size": [data.spec.height, data.spec.width],
        "input": data.spec.to_dict(),
        "input_reasons": data.input_reasons,
        "alphabet": data.alphabet.chars,
        "device": str(run.device),
        "peak_memory_mb": peak_memory_mb(),
        "data_fingerprint": data.split.get("fingerprint"),
        # Paths relative to the project, so a committed run names no machine's folders.
        "config": {**config.to_dict(), "data_dir": project_relative(resolve_data_dir(config.data_dir)),
                   "run_dir": project_relative(run_dir),
                   "init_from": project_relative(config.init_from) if config.init_from else None},
    }
    write_json(run_dir / "metrics.json", metrics)
    return metrics


def fit(config: TrainConfig, callbacks: Sequence[Callable[[EpochReport], None]] = ()) -> FitResult:
    """Train a model as the config says, writing the run directory as it goes. See the module docstring."""
    config.validate()
    run_dir = check_run_dir(config)
    with run_lock(run_dir, "train"):
        return _fit(config, run_dir, callbacks)


def _fit(config: TrainConfig, run_dir: Path, callbacks) -> FitResult:
    seed_everything(config.seed)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = select_device(config.device)

    # Build: the data, the model the data asks for (or the one a warm start brings), its optimiser and average.
    warm = read_warm_start(config.init_from) if config.init_from else None
    if warm:
        config = replace(config, model=warm.model_name)
    data = prepare_data(config, run_dir, resumed_input(config, run_dir), warm)
    model = build_model(config.model, data.alphabet.num_classes, data.spec.height, data.spec.width,
                        labels=data.train.labels)
    if warm:
        warm.load_into(model)
        started_from = warm.describe(data.alphabet)
    else:
        started_from = {"init_from": None, **start_pretrained(config, model, data)}
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    average = WeightAverage(model, config.ema_decay) if config.ema_decay else None
    progress = restore(config, run_dir, model, optimizer, average, data.alphabet)
    data.train_x, data.val_x = data.train_x.to(device), data.val_x.to(device)
    run = Training(config, run_dir, data, model, optimizer, average, device, progress)

    # Loop: the learning rate follows the wall clock, each epoch is judged on validation, the best weights are kept.
    budget = config.max_minutes * 60
    started = time.perf_counter() - progress.elapsed

    def schedule(epoch_fraction: float) -> float:
        elapsed = time.perf_counter() - started
        return learning_rate(config.lr, schedule_progress(config, progress, elapsed, budget, epoch_fraction),
                             config.warmup_fraction)

    stopped_because = None
    bar = tqdm(desc=config.model, total=round(budget), unit="s", disable=not config.progress,
               initial=round(progress.elapsed), bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s {postfix}")
    while stopped_because is None:
        generator = torch.Generator().manual_seed(config.seed * 100_003 + progress.epoch)
        strength = progress.augment_strength
        train_loss = train_one_epoch(model, optimizer, data, config, generator, schedule, average,
                                     deadline=started + budget, strength=strength)
        weights, net, evaluation = judge(model, average, data)
        progress.epoch += 1
        progress.elapsed = time.perf_counter() - started
        row = {"epoch": progress.epoch, "train_loss": train_loss, "val_loss": evaluation.loss,
               "val_seq_accuracy": evaluation.seq_accuracy, "val_cer": evaluation.cer, "weights": weights,
               "lr": optimizer.param_groups[0]["lr"], "seconds": round(progress.elapsed, 2),
               "augment_strength": strength}
        keep_best(run, row, net, evaluation)
        progress.augment_strength = next_strength(config, progress, train_loss, evaluation.loss)
        write_resume_state(run, row)
        bar.n = min(round(progress.elapsed), bar.total)
        bar.set_postfix(epoch=progress.epoch, loss=f"{train_loss:.3f}", acc=f"{evaluation.seq_accuracy:.3f}")
        for callback in callbacks:
            callback(EpochReport(row, evaluation, data.split["val"]))
        stopped_because = stop_reason(config, progress, evaluation, budget)
    bar.close()

    # Write: the chosen checkpoint's temperature (fitted on validation), its test score, then metrics.json.
    calibration = calibrate_checkpoint(run_dir / "model.pt", data.val_x, data.val.labels, data.alphabet, device)
    test = score_test(data, run_dir / "model.pt", device)
    metrics = write_metrics(run, stopped_because, {**calibration, **test, **started_from})
    return FitResult(run_dir, progress.history, metrics, stopped_because, data.split["val"])


def judge(model: torch.nn.Module, average: WeightAverage | None, data: TrainingData):
    """Score the raw weights and their moving average on validation; return (which, model, evaluation) of the better."""
    candidates = [("raw", model)] + ([("average", average.module)] if average else [])
    judged = [(name, net, evaluate(net, data.val_x, data.val.labels, data.alphabet)) for name, net in candidates]
    return max(judged, key=lambda j: rank(j[2].seq_accuracy, j[2].loss))


def keep_best(run: Training, row: dict, net: torch.nn.Module, evaluation: Evaluation) -> None:
    """Add the epoch to the history, note the first correct reading, and save model.pt when the epoch is the best."""
    config, data, progress = run.config, run.data, run.progress
    if still_learning(progress.history, evaluation.loss):
        progress.improved_at = progress.elapsed
    progress.history.append(row)
    if progress.plateau_seconds is None and evaluation.seq_accuracy > 0:
        progress.plateau_seconds = row["seconds"]
    if better(evaluation, progress.best):
        progress.best = {**row, "best_epoch": progress.epoch}
        progress.improved_at = progress.elapsed
        atomic_save(make_payload(net, config.model, data.alphabet, data.spec, config.to_dict(), progress.best),
                    run.run_dir / "model.pt")


def write_resume_state(run: Training, row: dict) -> None:
    """last.pt (everything --resume needs) and history.csv, after every epoch."""
    state = make_payload(run.model, run.config.model, run.data.alphabet, run.data.spec, run.config.to_dict(), row)
    state.update(raw_weights=state["state_dict"], optimizer=run.optimizer.state_dict(),
                 average=run.average.state_dict() if run.average else None, progress=run.progress.to_dict())
    atomic_save(state, run.run_dir / "last.pt")
    write_history(run.run_dir / "history.csv", run.progress.history)
