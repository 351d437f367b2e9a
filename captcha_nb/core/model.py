"""Recognisers: a convolutional feature extractor read left to right by a bidirectional GRU, scored by CTC.

To try a new architecture, add a class here and register it (`@registered("name")`, or `register` for a variant of a
class with other arguments); the engine, CLI, notebooks and benchmark pick it up by name. A model states its facts once,
as class attributes the registry reads: `in_channels`, `time_stride` (input columns per CTC frame) and `fixed_size`
when it takes one size only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from captcha_nb.core.ctc import min_time_steps


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    # Batch norm keeps every layer's activations well scaled, so the CNN learns from CTC's weak early gradients.
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its class, the arguments it is built with, and the shipped checkpoint that fits it."""

    cls: type[nn.Module]
    options: dict = field(default_factory=dict)
    pretrained: str | None = None  # a file of captcha_nb/pretrained/ (core/warmstart.py)

    @property
    def in_channels(self) -> int:
        return self.cls.in_channels

    @property
    def time_stride(self) -> int:
        return self.cls.time_stride

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        return getattr(self.cls, "fixed_size", None)

    def build(self, num_classes: int, height: int, width: int) -> nn.Module:
        return self.cls(num_classes, height, width, **self.options)


MODELS: dict[str, ModelSpec] = {}


def register(name: str, cls: type[nn.Module], pretrained: str | None = None, **options) -> type[nn.Module]:
    """Register `cls` under `name`, built with `options`; its facts are read from the class itself."""
    for fact in ("in_channels", "time_stride"):
        if not isinstance(getattr(cls, fact, None), int):
            raise TypeError(f"model {name!r}: {cls.__name__} must state `{fact}` as a class attribute")
    MODELS[name] = ModelSpec(cls, options, pretrained)
    return cls


def registered(name: str, pretrained: str | None = None, **options):
    """The class decorator form of `register`."""
    return lambda cls: register(name, cls, pretrained, **options)


class ColumnReader(nn.Module):
    """What every recogniser here shares: CNN features read column by column as a sequence, a BiGRU, a classifier.

    Subclasses build `features`, `project`, `gru` and `classifier`; the reading itself is written once, here.
    """

    features: nn.Module
    project: nn.Module
    gru: nn.GRU
    classifier: nn.Module

    def sequence(self, images: torch.Tensor) -> torch.Tensor:
        """Feature map (B, C, H', T) read as a sequence (B, T, C * H')."""
        features = self.features(images)
        b, c, h, t = features.shape
        return features.permute(0, 3, 1, 2).reshape(b, t, c * h)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        steps, _ = self.gru(self.project(self.sequence(images)))
        return self.classifier(steps)


@registered("crnn", pretrained="synthetic.pt")
class CRNN(ColumnReader):
    """The default recogniser, sized for CPU training and inference: a small VGG-style CNN read by one BiGRU layer.

    Input (B, 1, H, W) in [-1, 1]; output (B, T, classes) logits with T = W / 4. Heights are pooled by 8 and the
    remaining rows are flattened into each time step's features, so the GRU sees the whole column. Unlike the seed,
    there is no bottleneck layer between the CNN and the GRU: with one, CTC's flat start lasted several times longer
    for some seeds (see the closing notes of the benchmark issue).
    """

    in_channels = 1
    time_stride = 4

    def __init__(
        self,
        num_classes: int,
        height: int = 32,
        width: int = 128,
        channels: Sequence[int] = (16, 32, 64, 64),
        hidden: int = 64,
        gru_layers: int = 1,
        dropout: float = 0.15,
    ):
        super().__init__()
        if height % 8 or width % self.time_stride:
            raise ValueError(f"CRNN input {height}x{width}: height must be a multiple of 8 and width of 4")
        c1, c2, c3, c4 = channels
        self.features = nn.Sequential(
            conv_block(1, c1),
            nn.MaxPool2d(2),
            conv_block(c1, c2),
            nn.MaxPool2d(2),
            conv_block(c2, c3),
            conv_block(c3, c4),
            # Pool height only: the width is the time axis and keeps its resolution from here on.
            nn.MaxPool2d((2, 1)),
        )
        self.project = nn.Identity()  # kept so every model has the same stages: sequence, project, gru, classifier
        self.gru = nn.GRU(
            c4 * (height // 8), hidden, num_layers=gru_layers, bidirectional=True, batch_first=True,
            dropout=dropout if gru_layers > 1 else 0.0,
        )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, num_classes))


@registered("seed")
class SeedCRNN(ColumnReader):
    """The seed project's published architecture, kept faithfully as the baseline every benchmark compares against.

    RGB 75x300 input, Conv 3->128 + avgpool, Conv 128->64 + avgpool, Linear 1152->64, dropout 0.1,
    2-layer BiGRU (hidden 32, dropout 0.1), Linear -> classes + 1. T = 300 / 4 = 75 time steps.
    """

    in_channels = 3
    time_stride = 4
    fixed_size = (75, 300)

    def __init__(self, num_classes: int, height: int = 75, width: int = 300):
        super().__init__()
        if (height, width) != self.fixed_size:
            raise ValueError(f"SeedCRNN takes 75x300 images, not {height}x{width}")
        self.features = nn.Sequential(
            nn.Conv2d(3, 128, 3, padding=1), nn.ReLU(inplace=True), nn.AvgPool2d(2),
            nn.Conv2d(128, 64, 3, padding=1), nn.ReLU(inplace=True), nn.AvgPool2d(2),
        )
        self.project = nn.Sequential(nn.Linear(64 * 18, 64), nn.ReLU(inplace=True), nn.Dropout(0.1))
        self.gru = nn.GRU(64, 32, num_layers=2, bidirectional=True, batch_first=True, dropout=0.1)
        self.classifier = nn.Linear(64, num_classes)


# Wider CNN stages and a GRU twice as wide: four and three times the parameters of "crnn", for styles whose training
# loss stays high; within 6 minutes on 2 CPU cores neither pays (reports/BENCHMARKS.md, "Hard styles").
register("crnn_medium", CRNN, channels=(16, 32, 96, 128), hidden=128)
register("crnn_large", CRNN, channels=(32, 64, 96, 96), hidden=128)


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"model {name!r} is unknown; choose one of {sorted(MODELS)}")
    return MODELS[name]


def build_model(
    name: str, num_classes: int, height: int, width: int, labels: Sequence[str] = ()
) -> nn.Module:
    """Build a registered model, refusing input sizes too narrow for CTC to emit the given labels."""
    spec = model_spec(name)
    time_steps = width // spec.time_stride
    if labels:
        longest = max(labels, key=min_time_steps)
        needed = min_time_steps(longest)
        if time_steps < needed:
            raise ValueError(
                f"model {name!r} at width {width} has {time_steps} time steps, but label {longest!r} needs at least "
                f"{needed} (its length plus one blank between each doubled character); use wider images (img_width)"
            )
    # Channels-last memory: CPU convolutions run about a quarter faster (reports/BENCHMARKS.md, "Step time").
    return spec.build(num_classes, height, width).to(memory_format=torch.channels_last)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to the model's float input in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


@torch.inference_mode()
def batched_logits(model: nn.Module, images_u8: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N, T, classes) float32 logits on the CPU for a uint8 image tensor, in eval mode, a batch at a time: the one
    forward pass that evaluation, calibration and inference share."""
    model.eval()
    device = next(model.parameters()).device
    chunks = [model(to_float(images_u8[start : start + batch_size].to(device))).float().cpu()
              for start in range(0, len(images_u8), batch_size)]
    return torch.cat(chunks) if chunks else torch.empty(0)
