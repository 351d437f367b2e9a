"""The one place where hyperparameters live.

Every entry point (the CLI, the notebooks' papermill parameters, the benchmarks) fills a `TrainConfig` and hands it to
`captcha_nb.core.engine.fit`. Fields left as `None` are decided from the data when training starts. Each field's `help` is
what `python -m captcha_nb train --help` prints: the CLI options are generated from these fields, so a default is
written here and nowhere else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from captcha_nb.sources.files import MAX_IMAGE_PIXELS

# The augmentation strength (`core.augment`) grows with the train/validation gap up to this bound; at 3 every warp is
# three times the light warp that the easy styles train to 99 % with, and glyphs stay readable.
MAX_STRENGTH = 3.0


def option(default, help: str, **extra):
    if isinstance(default, list):  # a list-valued field: each config gets its own list
        return field(default_factory=lambda: list(default), metadata={"help": help, **extra})
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class TrainConfig:
    # Where the data comes from and where the run is written.
    data_dir: str | None = option(None, "data set directory (default: $CAPTCHA_DATA_DIR, data/captcha_images_v2, "
                                        "then download)", cli="--data")
    run_dir: str = option("runs/default", "new directory for model.pt, history.csv, metrics.json, split.json")

    # The pool: pictures nobody labelled (core/pseudo.py). The data folder's pictures that its labels.csv does not
    # name join it, and so does every folder given here.
    unlabelled: list[str] = option([], "a folder of unlabelled pictures of the same style; repeat for several "
                                       "(default: none)")
    pseudo_labels: bool = option(True, "learn from the unlabelled pictures through pseudo-labels (core/pseudo.py)")
    teacher: str | None = option(None, "an existing reader whose readings of the pool start training: 'ddddocr', or "
                                       "a run folder or model.pt of ours (default: none)")
    alphabet: str | None = option(None, "the characters the model may read; labels may add to them (default: the "
                                        "labels' characters)")

    model: str = option("crnn", "a name from captcha_nb.core.model.MODELS")
    # Fine-tuning: the checkpoint's model, input rules and weights replace model, img_height, img_width, ink, crop
    # and locate; its alphabet grows by the new data's characters (core/warmstart.py).
    init_from: str | None = option(None, "a trained model.pt to fine-tune, instead of the synthetic start or scratch "
                                         "(default: none)")
    # Transfer: the CNN and GRU start from the package's model of synthetic captchas in many fonts, while the run keeps
    # its own input rules and alphabet (core/warmstart.py, which holds the measurements behind the default).
    pretrained: bool | None = option(None, "start from the package's model of synthetic captchas (captcha_nb/"
                                           "pretrained/synthetic.pt) (default: yes when it fits the model and input)")

    # Input geometry and pixels; see sources/input_rules.py for the rules that decide them from the data.
    img_height: int | None = option(None, "input height; default: decided from the images and labels")
    img_width: int | None = option(None, "input width; default: decided from the images and labels")
    ink: bool = option(True, "feed the model an ink map (colour distance from the background) instead of grey")
    crop: bool = option(True, "crop every picture to the band where the data set's ink is")
    locate: bool | None = option(None, "find the text in every picture and scale it to the input height "
                                       "(default: decided from the data; see sources/input_rules.py)")
    max_image_pixels: int = option(MAX_IMAGE_PIXELS, "refuse pictures with more pixels than this")

    # The budget. The learning rate follows the wall clock: warm-up, then the peak is held until the model first reads
    # a validation captcha (the end of CTC's plateau), then cosine decay ending as max_minutes runs out, so a run always
    # finishes on a small learning rate (schedule.schedule_progress). An epoch cap is there for a user who wants one.
    max_minutes: float = option(10.0, "wall-clock budget for training, in minutes")
    epochs: int | None = option(None, "optional cap on epochs (default: none, the budget decides)")

    # Optimisation.
    batch_size: int = option(32, "images per optimisation step")
    # Higher peaks (3e-3, 6e-3) kept CTC's flat start going for many epochs on some seeds; 1e-3 left it in 8-12.
    lr: float = option(1e-3, "peak learning rate")
    weight_decay: float = option(1e-4, "AdamW weight decay")
    warmup_fraction: float = option(0.05, "share of the budget spent warming the learning rate up")
    grad_clip: float = option(5.0, "gradient norm clip")
    augment: bool = option(True, "random small rotations, scalings and shifts of every batch")
    # Regularisation that follows the gap: when, after CTC's plateau, the validation loss exceeds both
    # GAP_RATIO times the training loss and the training loss plus GAP_MARGIN (schedule.py), the strength rises.
    augment_strength: float | None = option(None, "augmentation strength, 1 = light warps (default: starts at 1 and "
                                                  "rises while the model overfits)")
    # An exponential moving average of the weights is what gets evaluated and saved: it smooths the last epochs'
    # noise, so the checkpoint depends less on which step the budget happened to end on.
    ema_decay: float | None = option(0.995, "decay of the weights' moving average; None to save the raw weights")

    # Stopping before the budget: only once the model has converged, meaning that no epoch beat the best one (higher
    # validation accuracy, or equal accuracy and lower loss: schedule.better) nor lowered the validation loss
    # (schedule.still_learning) over this share of the budget, counted once the model reads, so CTC's flat start never
    # counts as convergence.
    patience_fraction: float = option(0.25, "stop when nothing improved over this share of the budget")
    target_accuracy: float | None = option(None, "stop once validation reaches this accuracy (default: never)")

    # The split: train / validation (model selection, stopping) / test (scored once, at the end).
    val_fraction: float = option(0.1, "share of images for validation")
    test_fraction: float = option(0.15, "share of images for the test score (none below 50 images)")
    seed: int = option(0, "seeds the split, the weights and the batch order")
    device: str = option("auto", "'auto' (cuda, then mps, then cpu), 'cpu', 'cuda', 'cuda:N' or 'mps'")
    num_threads: int | None = option(None, "torch CPU threads (default: one per core)")
    resume: bool = option(False, "continue an interrupted run in run_dir")
    progress: bool = option(True, "show progress bars")

    def validate(self) -> "TrainConfig":
        """Raise one clear ValueError naming the first bad parameter."""
        from captcha_nb.core.model import MODELS

        if self.model not in MODELS:
            raise ValueError(f"model={self.model!r} is unknown; choose one of {sorted(MODELS)}")
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise ValueError(f"epochs={self.epochs!r} must be a positive integer or None")
        if self.augment_strength is not None and not 0 <= self.augment_strength <= MAX_STRENGTH:
            raise ValueError(f"augment_strength={self.augment_strength!r} must be in [0, {MAX_STRENGTH}], or None")
        for name in ("max_minutes", "lr", "val_fraction", "test_fraction", "weight_decay", "patience_fraction",
                     "warmup_fraction", "grad_clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name}={value!r} must be a number")
        for name in ("seed", "max_image_pixels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name}={value!r} must be an integer")
        if not self.max_minutes > 0:
            raise ValueError(f"max_minutes={self.max_minutes!r} must be positive")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size!r} must be a positive integer")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be positive")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction={self.val_fraction!r} must be between 0 and 1")
        if not 0 <= self.test_fraction < 1 or self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"test_fraction={self.test_fraction!r} must be in [0, 1) and leave images to train on")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay={self.ema_decay!r} must be between 0 and 1, or None")
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy={self.target_accuracy!r} must be in (0, 1], or None")
        for name in ("img_height", "img_width"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 8):
                raise ValueError(f"{name}={value!r} must be an integer of at least 8, or None to infer it")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device={self.device!r} must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        if self.pretrained not in (None, True, False):
            raise ValueError(f"pretrained={self.pretrained!r} must be True, False or None")
        if self.init_from is not None and not Path(self.init_from).is_file():
            raise ValueError(f"init_from={self.init_from!r} is not a checkpoint file")
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise ValueError(f"data_dir={self.data_dir!r} is not a directory")
        if not isinstance(self.unlabelled, (list, tuple)) or not all(isinstance(d, str) for d in self.unlabelled):
            raise ValueError(f"unlabelled={self.unlabelled!r} must be a list of folder paths")
        for folder in self.unlabelled:
            if not Path(folder).is_dir():
                raise ValueError(f"unlabelled={folder!r} is not a directory")
        if self.teacher is not None and self.teacher != "ddddocr" and not Path(self.teacher).exists():
            raise ValueError(f"teacher={self.teacher!r} must be 'ddddocr', a run folder or a model.pt")
        if self.alphabet is not None and (not isinstance(self.alphabet, str) or not self.alphabet
                                          or len(set(self.alphabet)) != len(self.alphabet)):
            raise ValueError(f"alphabet={self.alphabet!r} must be a non-empty string of distinct characters")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Build a config from a dict, ignoring keys that a newer or older version may have added."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

