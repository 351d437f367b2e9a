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
from captcha_nb.core.ctc import ctc_loss, encode_targets
from captcha_nb.core.ema import WeightAverage
from captcha_nb.core.evaluation import Evaluation, evaluate
from captcha_nb.core.model import to_float
from captcha_nb.core.prepare import TrainingData, score_test
from captcha_nb.core.pseudo import TrainingBatches, due, restarts_patience, self_training_round
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
from captcha_nb.core.start import Training, begin

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


def fit(config: TrainConfig, callbacks: Sequence[Callable[[EpochReport], None]] = ()) -> FitResult:
    """Train a model as the config says, writing the run directory as it goes. See the module docstring."""
    config.validate()
    run_dir = Path(config.run_dir)
    if not config.resume and RunDir(run_dir).holds_run():
        raise RunExistsError(f"{run_dir} already holds a run; choose a new run_dir, or resume=True to continue it")
    with run_lock(run_dir, "train"):
        run = begin(config, run_dir)
        data, progress, files = run.data, run.progress, RunDir(run_dir)
        if data.pool is not None and (data.pool.labels or data.pool.folder_labels):
            data.pool.write(files.pseudo_labels)  # round 0's (the teacher's), or a resumed run's
        # Loop: the learning rate follows the wall clock, each epoch is judged on validation, the best weights are
        # kept; the teacher's reading of the pool was paid from the same budget.
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
                renewed = self_training_round(data.pool, net, evaluation, data.alphabet, progress.elapsed,
                                              data.train if by_teacher else None,
                                              data.train_x if by_teacher else None)
                data.pool.write(files.pseudo_labels)  # the pseudo-labels change only here and in round 0
                if restarts_patience(renewed):  # new training data: the run has not converged
                    progress.improved_at = progress.elapsed
            row = {"epoch": progress.epoch, "train_loss": train_loss, "val_loss": evaluation.loss,
                   "val_seq_accuracy": evaluation.seq_accuracy, "val_cer": evaluation.cer, "weights": weights,
                   "lr": run.optimizer.param_groups[0]["lr"], "seconds": round(progress.elapsed, 2),
                   "augment_strength": strength, "pseudo_labels": len(data.pool.labels) if data.pool else 0}
            end_epoch(run, row, net, evaluation)
            bar.n = min(round(progress.elapsed), bar.total)
            bar.set_postfix(epoch=progress.epoch, loss=f"{train_loss:.3f}", acc=f"{evaluation.seq_accuracy:.3f}")
            for callback in callbacks:
                callback(EpochReport(row, evaluation, data.split["val"]))
            stopped_because = stop_reason(config, progress, evaluation, budget)
        bar.close()

        # Write: the chosen checkpoint's temperature (fitted on validation), its test score, then metrics.json.
        calibration = calibrate_checkpoint(files.model, data.val_x, data.val.labels, data.alphabet, run.device)
        test = score_test(data, files.model, run.device)
        metrics = write_metrics(run, stopped_because, {**calibration, **test, **run.started_from})
    return FitResult(run_dir, progress.history, metrics, stopped_because, data.split["val"])


def judge(model: torch.nn.Module, average: WeightAverage | None, data: TrainingData):
    """Score the raw weights and their moving average on validation; return (which, model, evaluation) of the better."""
    candidates = [("raw", model)] + ([("average", average.module)] if average else [])
    judged = [(name, net, evaluate(net, data.val_x, data.val.labels, data.alphabet)) for name, net in candidates]
    return max(judged, key=lambda j: rank(j[2].seq_accuracy, j[2].loss))


def end_epoch(run: Training, row: dict, net: torch.nn.Module, evaluation: Evaluation) -> None:
    """Add the epoch to the history, note the first correct reading, save model.pt when the epoch is the best, set
    the next epoch's augmentation, and write last.pt (everything --resume needs) and history.csv."""
    config, data, progress, files = run.config, run.data, run.progress, RunDir(run.run_dir)
    if still_learning(progress.history, evaluation.loss):
        progress.improved_at = progress.elapsed
    progress.history.append(row)
    if progress.plateau_seconds is None and evaluation.seq_accuracy > 0:
        progress.plateau_seconds = row["seconds"]
    if better(evaluation, progress.best):
        progress.best = {**row, "best_epoch": progress.epoch}
        progress.improved_at = progress.elapsed
        atomic_save(make_payload(net, run.model_name, data.alphabet, data.spec, config.to_dict(), progress.best),
                    files.model)
    progress.augment_strength = next_strength(config, progress, row["train_loss"], evaluation.loss)
    state = make_payload(run.model, run.model_name, data.alphabet, data.spec, config.to_dict(), row)
    state.update(raw_weights=state["state_dict"], optimizer=run.optimizer.state_dict(),
                 average=run.average.state_dict() if run.average else None, progress=progress.to_dict(),
                 pool=data.pool.state() if data.pool else None)
    atomic_save(state, files.last)
    files.write_history(progress.history, HISTORY_COLUMNS)
