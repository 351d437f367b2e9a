"""Where training starts, decided once before the first step: resume the run's own last.pt, fine-tune the checkpoint
of `init_from`, transfer the shipped synthetic model (`pretrained`, on by default where it fits), or from scratch.

`decide_start` reads every checkpoint it needs, once; the `Start` it returns says what it is, gives the input rules a
checkpoint brings, loads the weights into the model built for the data, and describes itself for metrics.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from captcha_nb.core.checkpoint import read_checkpoint
from captcha_nb.core.config import TrainConfig
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

        A resumed run's weights are restored with its optimiser (engine.restore), after the warm start it began
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
