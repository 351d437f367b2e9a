"""The one place where hyperparameters live.

Every entry point (the CLI, the notebooks' papermill parameters, the benchmark) fills a `TrainConfig` and hands it to
`captcha_nb.engine.fit`. Fields left as `None` are inferred from the data when training starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


@dataclass
class TrainConfig:
    # Where the data comes from and where the run is written.
    data_dir: str | None = None  # None: CAPTCHA_DATA_DIR, then data/captcha_images_v2, then download.
    run_dir: str = "runs/default"

    # Model: a name from captcha_nb.model.MODELS.
    model: str = "crnn"

    # Input geometry. None lets the data decide: height 32 and the width that keeps the images' aspect ratio.
    img_height: int | None = None
    img_width: int | None = None

    # Optimisation. The learning rate follows a warm-up then cosine decay over whichever budget runs out first,
    # epochs or minutes, so a time-limited run still ends on a small learning rate.
    epochs: int = 60
    max_minutes: float = 10.0
    batch_size: int = 32
    # Higher peaks (3e-3, 6e-3) kept CTC's flat start going for many epochs on some seeds; 1e-3 left it in 8-12.
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    grad_clip: float = 5.0
    augment: bool = True

    # Early stopping counts only after the model first reads a whole captcha right, so it never ends a run
    # during the long flat start of CTC training.
    patience: int = 15
    # Stop as soon as validation reaches this sequence accuracy (1.0 = never stop early for being good enough).
    target_accuracy: float = 1.0

    val_fraction: float = 0.15
    seed: int = 0
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu.
    num_threads: int | None = None  # None: leave torch's default (one per core).
    resume: bool = False
    progress: bool = True

    def validate(self) -> "TrainConfig":
        """Raise one clear ValueError naming the first bad parameter."""
        from captcha_nb.model import MODELS

        if self.model not in MODELS:
            raise ValueError(f"model={self.model!r} is unknown; choose one of {sorted(MODELS)}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs={self.epochs!r} must be a positive integer")
        for name in ("max_minutes", "lr", "val_fraction", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name}={value!r} must be a number")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed={self.seed!r} must be an integer")
        if not self.max_minutes > 0:
            raise ValueError(f"max_minutes={self.max_minutes!r} must be positive")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size!r} must be a positive integer")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be positive")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction={self.val_fraction!r} must be between 0 and 1")
        for name in ("img_height", "img_width"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 8):
                raise ValueError(f"{name}={value!r} must be an integer of at least 8, or None to infer it")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device={self.device!r} must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise ValueError(f"data_dir={self.data_dir!r} is not a directory")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Build a config from a dict, ignoring keys that a newer or older version may have added."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
