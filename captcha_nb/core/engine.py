"""Training: one epoch, and `fit(config)` which runs a whole experiment into a run directory.

A run directory holds model.pt (the best checkpoint), last.pt (to resume), history.csv, metrics.json and split.json,
and pseudo_labels.csv when the run learnt from unlabelled pictures. The headline figure in metrics.json is the test
score: images that no decision (stopping, choosing the checkpoint) ever looked at, scored once at the end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from captcha_nb.core.augment import augment
from captcha_nb.core.calibration import calibrate_checkpoint
from captcha_nb.core.checkpoint import atomic_save, make_payload
from captcha_nb.core.config import TrainConfig
from captcha_nb.core.ctc import ctc_loss
from captcha_nb.core.device import seed_everything, select_device
from captcha_nb.core.ema import WeightAverage
from captcha_nb.core.evaluation import Evaluation, evaluate
from captcha_nb.core.labels import encode_targets, to_float
from captcha_nb.core.model import build_model
from captcha_nb.core.prepare import TrainingData, prepare_data, score_test
from captcha_nb.core.pseudo import TrainingBatches, due, self_training_round
from captcha_nb.core.record import write_metrics
from captcha_nb.core.rundir import RunDir
from captcha_nb.core.runlock import run_lock
from captcha_nb.core.schedule import (
    better,
    learning_rate,
    next_strength,
    rank,
    schedule_progress,
    still_learning,
    stop_reason,
)
from captcha_nb.core.start import Start, decide_start

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_seq_accuracy", "val_cer", "weights", "lr", "seconds",
                   "augment_strength", "pseudo_labels"]


class RunExistsError(FileExistsError):
    """The run directory already holds a finished or started run."""


def train_one_epoch(run: "Training", generator: torch.Generator, schedule: Callable[[float], float],
                    deadline: float = math.inf) -> float:
    """One pass over the training images and the pool's pseudo-labelled share, or less if `deadline` (a perf_counter
    time) passes; returns the mean loss.

    `schedule(fraction_of_epoch)` gives the learning rate for the next step; the weights' average follows every step.
    """
    model, optimizer, data, config = run.model, run.optimizer, run.data, run.config
    model.train()
    batches = TrainingBatches(data.train_x, data.train.labels, data.pool, config.batch_size, generator)
    total, count = 0.0, 0
    for step, (images, labels) in enumerate(tqdm(batches, desc="train", leave=False, disable=not config.progress)):
        if time.perf_counter() >= deadline:
            break
        for group in optimizer.param_groups:
            group["lr"] = schedule(step / len(batches))
        x = to_float(images.to(run.device))
        if config.augment:
            x = augment(x, generator, run.progress.augment_strength, data.longest_label)
        targets, lengths = encode_targets(labels, data.alphabet)
        loss = ctc_loss(model(x), targets.to(run.device), lengths.to(run.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if run.average is not None:
            run.average.update(model)
        total += loss.item() * len(labels)
        count += len(labels)
    return total / max(count, 1)


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

    config: TrainConfig  # the caller's, as metrics.json records it
    run_dir: Path
    data: TrainingData
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    average: WeightAverage | None
    device: torch.device
    progress: Progress
    model_name: str  # the config's model, or the architecture of the checkpoint a warm start brings
    started_from: dict = field(default_factory=dict)  # the start metrics.json records (synthetic, init_from, scratch)


def check_run_dir(config: TrainConfig) -> Path:
    run_dir = Path(config.run_dir)
    if not config.resume and RunDir(run_dir).holds_run():
        raise RunExistsError(f"{run_dir} already holds a run; choose a new run_dir, or resume=True to continue it")
    return run_dir


def restore(config: TrainConfig, run_dir: Path, start: Start, model, optimizer, average,
            data: TrainingData) -> Progress:
    """Continue from last.pt when resuming (weights, optimiser, average, progress and the pool's pseudo-labels);
    otherwise a fresh start."""
    state = start.last
    if state is None:
        return Progress(augment_strength=1.0 if config.augment_strength is None else config.augment_strength)
    if state["alphabet"] != data.alphabet.chars:
        raise ValueError(f"cannot resume {run_dir}: it was trained on alphabet {state['alphabet']!r}")
    model.load_state_dict(state["raw_weights"])
    optimizer.load_state_dict(state["optimizer"])
    if average is not None and state.get("average"):
        average.load_state_dict(state["average"])
    if data.pool is not None and state.get("pool"):
        data.pool.load_state(state["pool"])
    return Progress(**state["progress"])


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
    run = build(config, run_dir, device)
    data, progress = run.data, run.progress
    if data.pool is not None and data.pool.labels:
        data.pool.write(RunDir(run_dir).pseudo_labels)  # round 0's (the teacher's), or a resumed run's
    # Loop: the learning rate follows the wall clock, each epoch is judged on validation, the best weights are kept;
    # the teacher's reading of the pool was paid from the same budget.
    budget = max(config.max_minutes * 60 - data.teacher.get("teacher_seconds", 0.0), 0.1 * config.max_minutes * 60)
    started = time.perf_counter() - progress.elapsed

    def schedule(epoch_fraction: float) -> float:
        elapsed = time.perf_counter() - started
        return learning_rate(config.lr, schedule_progress(config, progress, elapsed, budget, epoch_fraction),
                             config.warmup_fraction)

    stopped_because = None
    bar = tqdm(desc=run.model_name, total=round(budget), unit="s", disable=not config.progress,
               initial=round(progress.elapsed), bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s {postfix}")
    while stopped_because is None:
        generator = torch.Generator().manual_seed(config.seed * 100_003 + progress.epoch)
        strength = progress.augment_strength
        train_loss = train_one_epoch(run, generator, schedule, deadline=started + budget)
        weights, net, evaluation = judge(run.model, run.average, data)
        progress.epoch += 1
        progress.elapsed = time.perf_counter() - started
        by_teacher = data.labels_from == "teacher"
        if due(data.pool, progress, budget, config, by_teacher):
            self_training_round(data.pool, net, evaluation, data.alphabet, progress.elapsed,
                                data.train if by_teacher else None, data.train_x if by_teacher else None)
            data.pool.write(RunDir(run_dir).pseudo_labels)  # the pseudo-labels change only here and in round 0
        row = {"epoch": progress.epoch, "train_loss": train_loss, "val_loss": evaluation.loss,
               "val_seq_accuracy": evaluation.seq_accuracy, "val_cer": evaluation.cer, "weights": weights,
               "lr": run.optimizer.param_groups[0]["lr"], "seconds": round(progress.elapsed, 2),
               "augment_strength": strength, "pseudo_labels": len(data.pool.labels) if data.pool else 0}
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
    files = RunDir(run_dir)
    calibration = calibrate_checkpoint(files.model, data.val_x, data.val.labels, data.alphabet, device)
    test = score_test(data, files.model, device)
    metrics = write_metrics(run, stopped_because, {**calibration, **test, **run.started_from})
    return FitResult(run_dir, progress.history, metrics, stopped_because, data.split["val"])


def build(config: TrainConfig, run_dir: Path, device: torch.device) -> "Training":
    """The data, the model the data asks for (or the one a warm start brings) and where it starts, its optimiser
    and average, and the progress a resumed run had made."""
    start = decide_start(config, run_dir)
    data = prepare_data(config, run_dir, start, device)
    model = build_model(start.model_name, data.alphabet.num_classes, data.spec.height, data.spec.width,
                        labels=data.train.labels)
    started_from = start.load_into(config, model, data)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    average = WeightAverage(model, config.ema_decay) if config.ema_decay else None
    progress = restore(config, run_dir, start, model, optimizer, average, data)
    data.train_x, data.val_x = data.train_x.to(device), data.val_x.to(device)
    return Training(config, run_dir, data, model, optimizer, average, device, progress, start.model_name,
                    started_from)


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
        atomic_save(make_payload(net, run.model_name, data.alphabet, data.spec, config.to_dict(), progress.best),
                    RunDir(run.run_dir).model)


def write_resume_state(run: Training, row: dict) -> None:
    """last.pt (everything --resume needs) and history.csv, after every epoch."""
    state = make_payload(run.model, run.model_name, run.data.alphabet, run.data.spec, run.config.to_dict(), row)
    state.update(raw_weights=state["state_dict"], optimizer=run.optimizer.state_dict(),
                 average=run.average.state_dict() if run.average else None, progress=run.progress.to_dict(),
                 pool=run.data.pool.state() if run.data.pool else None)
    files = RunDir(run.run_dir)
    atomic_save(state, files.last)
    files.write_history(run.progress.history, HISTORY_COLUMNS)
