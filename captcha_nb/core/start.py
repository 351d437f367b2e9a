"""Where training starts, decided once before the first step: resume the run's own last.pt, fine-tune the checkpoint
of `init_from`, transfer the shipped synthetic model (`pretrained`, on by default where it fits), or from scratch.

`decide_start` reads every checkpoint it needs, once; the `Start` it returns says what it is, gives the input rules a
checkpoint brings, loads the weights into the model built for the data, and describes itself for metrics.json.
`begin` turns a config into the `Training` the engine's loop runs: the seeds, the device, the data, the model and its
start, the optimiser, the weights' average and the progress a resumed run had made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from captcha_nb.core.checkpoint import read_checkpoint
from captcha_nb.core.config import TrainConfig
from captcha_nb.core.device import seed_everything, select_device
from captcha_nb.core.ema import WeightAverage
from captcha_nb.core.model import build_model
from captcha_nb.core.prepare import TrainingData, prepare_data
from captcha_nb.core.rundir import RunDir
from captcha_nb.core.warmstart import (
    PRETRAINED,
    PRETRAINED_BY_DEFAULT,
    WarmStart,
    read_pretrained,
    read_warm_start,
    transfer,
)
from captcha_nb.sources.geometry import InputSpec

RESUME, INIT_FROM, PRETRAINED_START, SCRATCH = "resume", "init_from", "pretrained", "scratch"


@dataclass
class Start:
    kind: str  # RESUME, INIT_FROM, PRETRAINED_START or SCRATCH (the last two settled once the input is known)
    model_name: str
    warm: WarmStart | None = None  # the checkpoint of init_from
    last: dict | None = None  # the run's own last.pt when resuming
    described: dict | None = None

    @property
    def spec(self) -> InputSpec | None:
        """The input rules the start brings (a resumed run's own, or init_from's); None lets the data decide."""
        if self.last is not None:
            return InputSpec.from_dict(self.last["input"])
        return self.warm.spec if self.warm else None

    @property
    def reason(self) -> str:
        return "the run's own last.pt" if self.last is not None else "the checkpoint of init_from"

    def load_into(self, config: TrainConfig, model: torch.nn.Module, data) -> dict:
        """Copy the start's weights into the freshly built model; returns what metrics.json records about it.

        A resumed run's weights are restored with its optimiser (`restore` below), after the warm start it began
        from, so the record says where the run first started too."""
        if self.warm is not None:
            self.described = {"start": self.kind, **self.warm.describe(data.alphabet)}
            self.warm.load_into(model)
            return self.described
        wanted = PRETRAINED_BY_DEFAULT if config.pretrained is None else config.pretrained
        pretrained = read_pretrained(self.model_name) if wanted else None
        if pretrained is not None and data.spec.channels == pretrained.spec.channels:
            self.kind = RESUME if self.last is not None else PRETRAINED_START
            self.described = {"start": self.kind, "init_from": None, **transfer(pretrained, model, data.alphabet)}
            return self.described
        if config.pretrained:
            raise ValueError(f"pretrained=True: {PRETRAINED} is missing or not a {self.model_name!r} model of "
                             f"{data.spec.channels}-channel input")
        self.kind = RESUME if self.last is not None else SCRATCH
        self.described = {"start": self.kind, "init_from": None, "pretrained": None}
        return self.described


def decide_start(config: TrainConfig, run_dir: Path) -> Start:
    last_path = RunDir(run_dir).last
    last = read_checkpoint(last_path) if config.resume and last_path.is_file() else None
    warm = read_warm_start(config.init_from) if config.init_from else None
    kind = RESUME if last is not None else INIT_FROM if warm else PRETRAINED_START
    return Start(kind, warm.model_name if warm else config.model, warm, last)


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


def begin(config: TrainConfig, run_dir: Path) -> Training:
    """Seed, pick the device, decide the start, prepare the data, build the model the data asks for (or the one a
    warm start brings) with its optimiser and average, and restore a resumed run's progress."""
    seed_everything(config.seed)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = select_device(config.device)
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
        data.pool.load_state(state["pool"], data.train if data.labels_from == "teacher" else None)
    return Progress(**state["progress"])
