"""Captcha data sets: finding them, reading labels, decoding images once, splitting, and batching from memory.

A data set is a directory of images whose file stem is the label (`226md.png` reads "226md"), or any names plus a
`labels.csv` of `filename,label` rows. Images are decoded once into a uint8 tensor; training batches are slices of
that tensor, so no PNG is read twice.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from captcha_nb import DATA_ROOT

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
LABELS_FILE = "labels.csv"
DEFAULT_HEIGHT = 32
# The CRNN halves the width twice before reading it as a sequence: widths are kept a multiple of this.
WIDTH_MULTIPLE = 4


class DataError(ValueError):
    """A data set that cannot be used: missing, empty, or without a single readable image."""


# --------------------------------------------------------------------------------------------------------------------
# Finding the data


def resolve_data_dir(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Pick the data set directory: explicit argument, then $CAPTCHA_DATA_DIR, then data/captcha_images_v2, then download."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise DataError(f"data directory {path} does not exist")
        return path
    from_env = os.environ.get("CAPTCHA_DATA_DIR")
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_dir():
            raise DataError(f"CAPTCHA_DATA_DIR={from_env} is not a directory")
        return path
    default = DATA_ROOT / "captcha_images_v2"
    if default.is_dir():
        return default
    if not download:
        raise DataError(f"no data set found at {default}; pass a directory or set CAPTCHA_DATA_DIR")
    from captcha_nb.download import download_dataset

    return download_dataset(DATA_ROOT)


# --------------------------------------------------------------------------------------------------------------------
# Labels and the alphabet


@dataclass(frozen=True)
class Alphabet:
    """The characters a model can emit. Class 0 is the CTC blank, so character i has class i + 1."""

    chars: str

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars):
            raise ValueError(f"alphabet {self.chars!r} repeats a character")

    @classmethod
    def from_labels(cls, labels: Sequence[str]) -> "Alphabet":
        return cls("".join(sorted(set("".join(labels)))))

    @property
    def num_classes(self) -> int:
        return len(self.chars) + 1

    def can_encode(self, label: str) -> bool:
        return all(c in self.chars for c in label)

    def encode(self, label: str) -> list[int]:
        missing = sorted({c for c in label if c not in self.chars})
        if missing:
            raise ValueError(f"label {label!r} has characters {missing} that are not in the alphabet {self.chars!r}")
        return [self.chars.index(c) + 1 for c in label]

    def decode(self, classes: Sequence[int]) -> str:
        return "".join(self.chars[c - 1] for c in classes if c > 0)


def read_labels(data_dir: Path) -> list[tuple[Path, str]]:
    """List (image path, label) pairs, from labels.csv when present, otherwise from file stems.

    Files that are clearly not images are named in a warning and skipped; whether an image decodes is checked later,
    when it is decoded.
    """
    labels_csv = data_dir / LABELS_FILE
    if labels_csv.is_file():
        with open(labels_csv, newline="") as f:
            rows = [row for row in csv.reader(f) if row and not row[0].startswith("#")]
        if rows and rows[0][:2] == ["filename", "label"]:
            rows = rows[1:]
        pairs = []
        for number, row in enumerate(rows, start=2):
            if len(row) < 2 or not row[1]:
                warnings.warn(f"{labels_csv}: row {number} has no label; skipped")
                continue
            pairs.append((data_dir / row[0], row[1]))
        return pairs

    pairs = []
    for path in sorted(data_dir.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            warnings.warn(f"{path}: not an image file; skipped")
            continue
        pairs.append((path, path.stem))
    return pairs


# --------------------------------------------------------------------------------------------------------------------
# Decoding images


def open_image(source) -> Image.Image:
    """Open an image file (path or file object) fully, flattening any transparency onto white."""
    with Image.open(source) as image:
        image.load()
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        return image.convert("RGB")


def to_array(image: Image.Image, height: int, width: int, channels: int) -> np.ndarray:
    """Resize to (height, width) and return a (channels, height, width) uint8 array."""
    image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def infer_image_size(
    sizes: Sequence[tuple[int, int]], height: int | None = None, width: int | None = None, min_time_steps: int = 1
) -> tuple[int, int]:
    """Choose the model's input (height, width) from the images' (width, height) sizes.

    The height defaults to 32 pixels; the width keeps the median aspect ratio so that wide captchas stay readable
    instead of being squashed, rounded to a multiple of the model's width stride, and is widened if needed so that
    the model has at least `min_time_steps` time steps.
    """
    height = height or DEFAULT_HEIGHT
    if width is None:
        aspect = float(np.median([w / h for w, h in sizes]))
        width = max(WIDTH_MULTIPLE, int(round(height * aspect / WIDTH_MULTIPLE)) * WIDTH_MULTIPLE)
        width = max(width, min_time_steps * WIDTH_MULTIPLE)
    return height, width


@dataclass
class CaptchaSet:
    """Decoded images and their labels. `tensor()` gives the model-ready uint8 tensor for one input size."""

    paths: list[Path]
    labels: list[str]
    images: list[Image.Image] = field(repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.paths]

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return [image.size for image in self.images]

    def tensor(self, height: int, width: int, channels: int = 1) -> torch.Tensor:
        """All images as one (N, channels, height, width) uint8 tensor, decoded once and cached."""
        key = (height, width, channels)
        if key not in self._cache:
            arrays = [to_array(image, height, width, channels) for image in self.images]
            self._cache[key] = torch.from_numpy(np.stack(arrays)) if arrays else torch.empty(0, channels, height, width)
        return self._cache[key]

    def subset(self, names: Sequence[str]) -> "CaptchaSet":
        """The images with the given file names, in that order."""
        index = {name: i for i, name in enumerate(self.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise DataError(f"{len(missing)} files of the split are not in the data set, e.g. {missing[:3]}")
        rows = [index[n] for n in names]
        return CaptchaSet([self.paths[i] for i in rows], [self.labels[i] for i in rows], [self.images[i] for i in rows])


def load_dataset(data_dir: str | os.PathLike) -> CaptchaSet:
    """Read every usable image of a directory once. Unreadable files are named in a warning and skipped."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist")
    pairs = read_labels(data_dir)
    paths, labels, images = [], [], []
    for path, label in pairs:
        try:
            images.append(open_image(path))
        except Exception as error:  # PIL raises many types for a broken file; all mean "skip it".
            warnings.warn(f"{path}: cannot be read as an image ({error.__class__.__name__}: {error}); skipped")
            continue
        paths.append(path)
        labels.append(label)
    if not labels:
        raise DataError(f"data directory {data_dir} has no usable images (found {len(pairs)} candidate files)")
    return CaptchaSet(paths, labels, images)


def fingerprint(paths: Sequence[Path]) -> str:
    """A short hash of the files' names and contents, to tell whether two runs saw the same data."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------------------------------------------------
# The train / validation split


def split_names(names: Sequence[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """A deterministic split: the same names, fraction and seed always give the same held-out files."""
    ordered = sorted(names)
    order = np.random.default_rng(seed).permutation(len(ordered))
    n_val = max(1, int(round(len(ordered) * val_fraction)))
    if n_val >= len(ordered):
        raise DataError(f"cannot hold out {n_val} of {len(ordered)} images; the data set is too small")
    val = sorted(ordered[i] for i in order[:n_val])
    train = sorted(ordered[i] for i in order[n_val:])
    return train, val


def save_split(path: Path, train: Sequence[str], val: Sequence[str], **info) -> None:
    payload = {**info, "train": list(train), "val": list(val)}
    path.write_text(json.dumps(payload, indent=1))


def load_split(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file {path} does not exist; train a model into that run directory first")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------------------------------
# Batches


def encode_targets(labels: Sequence[str], alphabet: Alphabet) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated class indices and per-label lengths, the form CTC loss takes for variable-length labels."""
    encoded = [alphabet.encode(label) for label in labels]
    targets = torch.tensor([c for e in encoded for c in e], dtype=torch.long)
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
    return targets, lengths


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to the model's float input in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def iterate_batches(
    n: int, batch_size: int, shuffle: bool, generator: torch.Generator | None = None
) -> Iterator[torch.Tensor]:
    """Index batches over n items; shuffled ones use the given generator so a seed fixes the order."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
