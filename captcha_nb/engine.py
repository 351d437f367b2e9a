"""Training: one epoch, one evaluation, and `fit(config)` which runs a whole experiment into a run directory.

A run directory holds model.pt (the best checkpoint), last.pt (to resume), history.csv, metrics.json and split.json.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from captcha_nb.augment import random_affine
from captcha_nb.checkpoint import atomic_save, load_model, make_payload, read_checkpoint  # noqa: F401 (re-exported)
from captcha_nb.config import TrainConfig
from captcha_nb.ctc import ctc_loss, greedy_decode, min_time_steps
from captcha_nb.data import (
    Alphabet,
    CaptchaSet,
    encode_targets,
    fingerprint,
    infer_image_size,
    iterate_batches,
    load_dataset,
    load_split,
    resolve_data_dir,
    save_split,
    split_names,
    to_float,
)
from captcha_nb.metrics import character_error_rate, sequence_accuracy
from captcha_nb.model import build_model, count_parameters, input_size, model_spec

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_seq_accuracy", "val_cer", "lr", "seconds"]


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


def learning_rate(peak: float, progress: float, warmup: float) -> float:
    """Linear warm-up, then cosine decay to 1 % of the peak; progress runs from 0 to 1."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return peak * max(progress / warmup, 0.02)
    cosine = 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup)))
    return peak * (0.01 + 0.99 * cosine)


def train_one_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: Sequence[str],
    alphabet: Alphabet,
    batch_size: int,
    generator: torch.Generator,
    schedule: Callable[[float], float] | None = None,
    augment: bool = True,
    grad_clip: float = 5.0,
    progress: bool = True,
) -> float:
    """One pass over the uint8 images; returns the mean training loss. `schedule(fraction_of_epoch)` sets the LR."""
    model.train()
    device = next(model.parameters()).device
    batches = list(iterate_batches(len(images), batch_size, shuffle=True, generator=generator))
    total, count = 0.0, 0
    for step, rows in enumerate(tqdm(batches, desc="train", leave=False, disable=not progress)):
        if schedule is not None:
            for group in optimizer.param_groups:
                group["lr"] = schedule(step / len(batches))
        x = to_float(images[rows].to(device))
        if augment:
            x = random_affine(x, generator)
        targets, lengths = encode_targets([labels[i] for i in rows.tolist()], alphabet)
        loss = ctc_loss(model(x), targets.to(device), lengths.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
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
    model.eval()
    device = next(model.parameters()).device
    predictions, confidences = [], []
    loss_sum, loss_count = 0.0, 0
    for rows in iterate_batches(len(images), batch_size, shuffle=False):
        logits = model(to_float(images[rows].to(device)))
        for decoding in greedy_decode(logits.float().softmax(-1).cpu()):
            predictions.append(alphabet.decode(decoding.classes))
            confidences.append(decoding.confidence)
        positions = [p for p, i in enumerate(rows.tolist()) if alphabet.can_encode(labels[i])]
        known = [rows[p].item() for p in positions]
        if known:
            keep = torch.tensor(positions, device=logits.device)
            targets, lengths = encode_targets([labels[i] for i in known], alphabet)
            loss = ctc_loss(logits[keep], targets.to(device), lengths.to(device))
            loss_sum += loss.item() * len(known)
            loss_count += len(known)
    truths = list(labels)
    return Evaluation(
        loss=loss_sum / loss_count if loss_count else float("nan"),
        seq_accuracy=sequence_accuracy(predictions, truths),
        cer=character_error_rate(predictions, truths),
        predictions=predictions,
        confidences=confidences,
        truths=truths,
    )


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


def prepare_data(config: TrainConfig, run_dir: Path) -> tuple[CaptchaSet, CaptchaSet, dict]:
    """Load the data set and split it, reusing the run's saved split when resuming."""
    data_dir = resolve_data_dir(config.data_dir)
    dataset = load_dataset(data_dir)
    split_path = run_dir / "split.json"
    if config.resume and split_path.is_file():
        split = load_split(split_path)
    else:
        train, val = split_names(dataset.names, config.val_fraction, config.seed)
        split = {"data_dir": str(data_dir), "fingerprint": fingerprint(dataset.paths), "seed": config.seed,
                 "val_fraction": config.val_fraction, "train": train, "val": val}
        save_split(split_path, **split)
    return dataset.subset(split["train"]), dataset.subset(split["val"]), split


def write_history(path: Path, history: list[dict]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)


def write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def fit(config: TrainConfig, callbacks: Sequence[Callable[[EpochReport], None]] = ()) -> FitResult:
    """Train a model as the config says, writing the run directory as it goes. See the module docstring."""
    config.validate()
    run_dir = Path(config.run_dir)
    last_path, best_path = run_dir / "last.pt", run_dir / "model.pt"
    if not config.resume and (last_path.exists() or best_path.exists()):
        raise RunExistsError(f"{run_dir} already holds a run; choose a new run_dir, or resume=True to continue it")
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = select_device(config.device)

    train_set, val_set, split = prepare_data(config, run_dir)
    alphabet = Alphabet.from_labels(train_set.labels + val_set.labels)
    spec = model_spec(config.model)
    needed = max(min_time_steps(label) for label in train_set.labels)
    inferred = infer_image_size(train_set.sizes, config.img_height, config.img_width, min_time_steps=needed)
    height, width = input_size(config.model, inferred)
    model = build_model(config.model, alphabet.num_classes, height, width, labels=train_set.labels).to(device)
    train_x = train_set.tensor(height, width, spec.in_channels).to(device)
    val_x = val_set.tensor(height, width, spec.in_channels).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    history: list[dict] = []
    best: dict = {"val_seq_accuracy": -1.0, "val_loss": math.inf}
    start_epoch, elapsed_before = 0, 0.0
    if config.resume and last_path.is_file():
        state = read_checkpoint(last_path)
        if state["alphabet"] != alphabet.chars:
            raise ValueError(f"cannot resume {run_dir}: it was trained on alphabet {state['alphabet']!r}")
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, elapsed_before = state["epoch"], state["elapsed"]
        history, best = state["history"], state["best"]

    budget = config.max_minutes * 60
    started = time.perf_counter() - elapsed_before
    epochs_since_best = 0
    stopped_because = "epochs"
    epoch_bar = tqdm(range(start_epoch, config.epochs), desc=f"{config.model}", disable=not config.progress,
                     initial=start_epoch, total=config.epochs)
    for epoch in epoch_bar:
        def schedule(fraction: float) -> float:
            # Progress is whichever budget is further along: the epochs or the wall clock.
            progress = max((epoch + fraction) / config.epochs, (time.perf_counter() - started) / budget)
            return learning_rate(config.lr, progress, config.warmup_fraction)

        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        train_loss = train_one_epoch(model, optimizer, train_x, train_set.labels, alphabet, config.batch_size,
                                     generator, schedule, config.augment, config.grad_clip, config.progress)
        evaluation = evaluate(model, val_x, val_set.labels, alphabet)
        elapsed = time.perf_counter() - started
        row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": evaluation.loss,
               "val_seq_accuracy": evaluation.seq_accuracy, "val_cer": evaluation.cer,
               "lr": optimizer.param_groups[0]["lr"], "seconds": round(elapsed, 2)}
        history.append(row)
        epoch_bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{evaluation.seq_accuracy:.3f}")

        improved = (evaluation.seq_accuracy, -evaluation.loss) > (best["val_seq_accuracy"], -best["val_loss"])
        if improved:
            best = {**row, "best_epoch": epoch + 1}
            epochs_since_best = 0
            atomic_save(make_payload(model, config.model, alphabet, height, width, spec.in_channels,
                                     config.to_dict(), best), best_path)
        elif best["val_seq_accuracy"] > 0:
            epochs_since_best += 1
        state = make_payload(model, config.model, alphabet, height, width, spec.in_channels, config.to_dict(), row)
        state.update(optimizer=optimizer.state_dict(), epoch=epoch + 1, elapsed=elapsed, history=history, best=best)
        atomic_save(state, last_path)
        write_history(run_dir / "history.csv", history)
        for callback in callbacks:
            callback(EpochReport(row, evaluation, split["val"]))

        if evaluation.seq_accuracy >= config.target_accuracy:
            stopped_because = "target_accuracy"
        elif epochs_since_best >= config.patience:
            stopped_because = "early_stopping"
        elif elapsed >= budget:
            stopped_because = "max_minutes"
        if stopped_because != "epochs":
            break
    epoch_bar.close()

    metrics = {
        "model": config.model,
        "seed": config.seed,
        "n_train": len(train_set),
        "n_val": len(val_set),
        "val_seq_accuracy": best["val_seq_accuracy"],
        "val_cer": best.get("val_cer"),
        "val_loss": best["val_loss"],
        "best_epoch": best.get("best_epoch"),
        "epochs_run": len(history),
        "train_seconds": history[-1]["seconds"] if history else 0.0,
        "stopped_because": stopped_because,
        "parameters": count_parameters(model),
        "input_size": [height, width],
        "alphabet": alphabet.chars,
        "device": str(device),
        "data_fingerprint": split.get("fingerprint"),
        "config": config.to_dict(),
    }
    write_json(run_dir / "metrics.json", metrics)
    return FitResult(run_dir, history, metrics, stopped_because, split["val"])
