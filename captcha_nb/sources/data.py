"""Captcha data sets: finding them, reading labels, decoding images once, splitting, and batching from memory.

A data set is a directory of images whose file stem is the label (`226md.png` reads "226md"), or any names plus a
UTF-8 `labels.csv` of `filename,label` rows. Listing a data set reads only the file headers; the pixels are decoded
once, straight to the model's input size (see `geometry.py`), into a uint8 tensor that training batches slice.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import multiprocessing
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from captcha_nb.sources.files import IMAGE_SUFFIXES, LABELS_FILE, MAX_IMAGE_PIXELS, write_json
from captcha_nb.sources.geometry import InputSpec, to_input


class DataError(ValueError):
    """A data set that cannot be used: missing, empty, or without a single readable image."""


# --------------------------------------------------------------------------------------------------------------------
# Labels


def read_labels(data_dir: Path) -> list[tuple[Path, str]]:
    """List (image path, label) pairs, from labels.csv when present, otherwise from file stems.

    Files that are clearly not images are named in a warning and skipped; whether an image decodes is checked later,
    when it is decoded.
    """
    labels_csv = data_dir / LABELS_FILE
    if labels_csv.is_file():
        # UTF-8 whatever the machine's locale, so Cyrillic or CJK labels read the same everywhere; a BOM is allowed.
        with open(labels_csv, newline="", encoding="utf-8-sig") as f:
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

# Below this many images, decoding in one process is faster than starting workers.
PARALLEL_FROM = 2000


class ImageTooLarge(DataError):
    """A picture whose header declares more pixels than a captcha could need."""


def check_size(size: tuple[int, int], source, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    w, h = size
    if w * h > max_pixels:
        raise ImageTooLarge(f"{source}: {w}x{h} pixels is more than the {max_pixels:,} a captcha may have "
                            f"(max_image_pixels); not decoded")


@contextlib.contextmanager
def header(source, name: str | None = None):
    """Image.open with Pillow's own decompression-bomb warning silenced: `check_size` applies a stricter limit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(source)
        except Image.DecompressionBombError as error:
            raise ImageTooLarge(f"{name or getattr(source, 'name', source)}: {error}") from None
    with image:
        yield image


def open_image(source, max_pixels: int = MAX_IMAGE_PIXELS, name: str | None = None) -> Image.Image:
    """Open an image file (path or file object) fully as RGB, flattening any transparency onto white.

    The pixel count is checked from the header first, so an oversized picture costs nothing to refuse; `name` is
    what the refusal calls the picture (an upload has no path).
    """
    with header(source, name) as image:
        check_size(image.size, name or getattr(source, "name", source), max_pixels)
        image.load()
        if image.mode in ("RGBA", "LA", "P", "PA"):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        return image.convert("RGB")


def read_size(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """A picture's (width, height) from its header alone; raises for files that are not images or too large."""
    with header(path) as image:
        check_size(image.size, path, max_pixels)
        return image.size


def decode_input(path: Path, spec: InputSpec, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray | str:
    """One file to the model's uint8 input, or the reason it could not be read (so one bad file cannot stop a batch)."""
    try:
        return to_input(open_image(path, max_pixels), spec)
    except Exception as error:  # PIL raises many types for a broken file; all mean "this one is unreadable".
        return f"{path}: cannot be read as an image ({error.__class__.__name__}: {error})"


def _decode_chunk(args: tuple[list[Path], InputSpec, int]) -> list[np.ndarray | str]:
    paths, spec, max_pixels = args
    return [decode_input(path, spec, max_pixels) for path in paths]


def decode_inputs(
    paths: Sequence[Path], spec: InputSpec, max_pixels: int = MAX_IMAGE_PIXELS, progress: bool = False
) -> tuple[torch.Tensor, list[int]]:
    """Decode files straight into one (N, C, H, W) uint8 tensor; returns it and the rows that could not be read.

    Only the model-sized arrays are kept, so memory grows with the input tensor, not with the full-size pictures.
    Large sets are decoded by a pool of processes, one per core, in chunks, with a progress bar. Unreadable files are
    named in a warning and left as blank paper in the tensor.
    """
    out = torch.full((len(paths), spec.channels, spec.height, spec.width), 255, dtype=torch.uint8)
    chunk = 256
    jobs = [(list(paths[i : i + chunk]), spec, max_pixels) for i in range(0, len(paths), chunk)]
    workers = min(os.cpu_count() or 1, len(jobs))
    failed = []
    with tqdm(total=len(paths), desc="decoding images", unit="img", disable=not progress, leave=False) as bar:
        if len(paths) >= PARALLEL_FROM and workers > 1:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                # map yields the chunks in order as they finish, so the bar moves while the pool works.
                _fill(out, ((i * chunk, r) for i, r in enumerate(pool.map(_decode_chunk, jobs))), failed, bar)
        else:
            _fill(out, ((i * chunk, _decode_chunk(job)) for i, job in enumerate(jobs)), failed, bar)
    return out, failed


def _fill(out: torch.Tensor, chunks, failed: list[int], bar) -> None:
    for offset, arrays in chunks:
        for row, array in enumerate(arrays, start=offset):
            if isinstance(array, str):
                warnings.warn(array)
                failed.append(row)
            else:
                out[row] = torch.from_numpy(array)
        bar.update(len(arrays))


class LazyImages(Sequence):
    """The data set's pictures, opened from disk when asked for, so that holding a data set never holds its pixels."""

    def __init__(self, paths: Sequence[Path], max_pixels: int = MAX_IMAGE_PIXELS):
        self.paths, self.max_pixels = list(paths), max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [open_image(path, self.max_pixels) for path in self.paths[index]]
        return open_image(self.paths[index], self.max_pixels)


@dataclass
class CaptchaSet:
    """A data set's files, labels and picture sizes. `tensor(spec)` gives the model-ready uint8 tensor.

    Pixels are decoded only by `tensor`, once per input spec, and cached; `images` opens pictures on demand for
    the notebooks to show.
    """

    paths: list[Path]
    labels: list[str]
    sizes: list[tuple[int, int]]
    max_pixels: int = MAX_IMAGE_PIXELS
    progress: bool = False
    _cache: dict = field(default_factory=dict, repr=False)
    unreadable: set[str] = field(default_factory=set, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.paths]

    @property
    def images(self) -> LazyImages:
        return LazyImages(self.paths, self.max_pixels)

    def sample_images(self, n: int, seed: int = 0) -> list[Image.Image]:
        """Up to n pictures chosen at random (for deciding the input geometry); unreadable ones are left out."""
        rows = np.random.default_rng(seed).permutation(len(self))[:n]
        found = []
        for row in sorted(rows.tolist()):
            try:
                found.append(open_image(self.paths[row], self.max_pixels))
            except Exception:
                continue
        return found

    def tensor(self, spec: InputSpec) -> torch.Tensor:
        """All pictures as one (N, channels, height, width) uint8 tensor, decoded once per spec and cached."""
        if spec not in self._cache:
            tensor, failed = decode_inputs(self.paths, spec, self.max_pixels, self.progress)
            self.unreadable.update(self.paths[row].name for row in failed)
            self._cache[spec] = tensor
        return self._cache[spec]

    def subset(self, names: Sequence[str]) -> "CaptchaSet":
        """The pictures with the given file names, in that order, sharing the decoded tensors."""
        index = {name: i for i, name in enumerate(self.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise DataError(f"{len(missing)} files of the split are not in the data set, e.g. {missing[:3]}")
        rows = [index[n] for n in names]
        subset = CaptchaSet([self.paths[i] for i in rows], [self.labels[i] for i in rows],
                            [self.sizes[i] for i in rows], self.max_pixels, self.progress)
        keep = torch.tensor(rows, dtype=torch.long)
        subset._cache = {spec: tensor[keep] for spec, tensor in self._cache.items()}
        subset.unreadable = self.unreadable & set(names)
        return subset

    def readable(self) -> "CaptchaSet":
        """The same set without the files that failed to decode."""
        return self.subset([n for n in self.names if n not in self.unreadable])


def load_dataset(
    data_dir: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS, progress: bool = False,
    allow_empty: bool = False,
) -> CaptchaSet:
    """List every usable picture of a directory with its label and size, from the file headers.

    Files that are not images, or declare too many pixels, are named in a warning and skipped; the pixels are decoded
    later, at the model's size, by `CaptchaSet.tensor`. `allow_empty` lets a folder with no label at all through
    (a run whose teacher labels its pool).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist")
    pairs = read_labels(data_dir)
    dataset = _with_sizes(pairs, max_pixels, progress)
    if not len(dataset) and not allow_empty:
        raise DataError(f"data directory {data_dir} has no usable images (found {len(pairs)} candidate files)")
    return dataset


def _with_sizes(pairs: Sequence[tuple[Path, str]], max_pixels: int, progress: bool) -> CaptchaSet:
    paths, labels, sizes = [], [], []
    for path, label in tqdm(pairs, desc="reading headers", unit="img", disable=not progress, leave=False):
        try:
            sizes.append(read_size(path, max_pixels))
        except ImageTooLarge as error:
            warnings.warn(f"{error}; skipped")
            continue
        except Exception as error:  # PIL raises many types for a broken file; all mean "skip it".
            warnings.warn(f"{path}: cannot be read as an image ({error.__class__.__name__}: {error}); skipped")
            continue
        paths.append(path)
        labels.append(label)
    return CaptchaSet(paths, labels, sizes, max_pixels, progress)


def pictures_in(folder: Path) -> list[Path]:
    """The picture files of a folder, by name, without descending into sub-folders."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def load_pool(folders: Sequence[str | os.PathLike], labelled: Sequence[Path] = (), max_pixels: int = MAX_IMAGE_PIXELS,
              progress: bool = False) -> CaptchaSet:
    """The unlabelled pictures of the given folders, every file that `labelled` does not name, as a set whose labels
    are empty. Headers only, like `load_dataset`: the pixels are decoded once, at the model's size, by `tensor`."""
    taken = {Path(p).resolve() for p in labelled}
    paths = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"unlabelled folder {folder} does not exist")
        paths.extend(p for p in pictures_in(folder) if p.resolve() not in taken)
    return _with_sizes([(p, "") for p in dict.fromkeys(paths)], max_pixels, progress)


def fingerprint(paths: Sequence[Path]) -> str:
    """A short hash of the files' names and contents, to tell whether two runs saw the same data."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fingerprint_dir(data_dir: str | os.PathLike) -> str:
    """The fingerprint of a data set folder: every file its labels name, and labels.csv when there is one.

    The one definition used by split.json and by a report's params.json, so the two always agree for the same data.
    """
    data_dir = Path(data_dir)
    files = [path for path, _ in read_labels(data_dir) if path.is_file()]
    if (data_dir / LABELS_FILE).is_file():
        files.append(data_dir / LABELS_FILE)
    return fingerprint(files)


# --------------------------------------------------------------------------------------------------------------------
# The train / validation split


# A test split smaller than this says little (one error moves it by more than 2 %): below it, there is none, and the
# headline figure is the validation score, marked as such.
MIN_TEST_IMAGES = 50


@dataclass(frozen=True)
class Split:
    train: list[str]
    val: list[str]
    test: list[str]

    def to_dict(self) -> dict:
        return {"train": self.train, "val": self.val, "test": self.test}


def split_names(names: Sequence[str], val_fraction: float, seed: int, test_fraction: float = 0.0) -> Split:
    """A deterministic three-way split: the same names, fractions and seed always give the same files.

    The test files are drawn first, so changing `val_fraction` never moves an image into or out of the test split.
    """
    ordered = sorted(names)
    order = np.random.default_rng(seed).permutation(len(ordered))
    n_test = int(round(len(ordered) * test_fraction))
    if n_test < MIN_TEST_IMAGES:
        n_test = 0
    n_val = max(1, int(round(len(ordered) * val_fraction)))
    if n_test + n_val >= len(ordered):
        raise DataError(f"cannot hold out {n_test + n_val} of {len(ordered)} images; the data set is too small")
    test = sorted(ordered[i] for i in order[:n_test])
    val = sorted(ordered[i] for i in order[n_test : n_test + n_val])
    train = sorted(ordered[i] for i in order[n_test + n_val :])
    return Split(train, val, test)


def save_split(path: Path, split: Split, **info) -> None:
    write_json(path, {**info, **split.to_dict()})


def load_split(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file {path} does not exist; train a model into that run directory first")
    split = json.loads(path.read_text(encoding="utf-8"))
    split.setdefault("test", [])  # runs made before the three-way split had none
    return split


# --------------------------------------------------------------------------------------------------------------------
# Batches


def iterate_batches(
    n: int, batch_size: int, shuffle: bool, generator: torch.Generator | None = None
) -> Iterator[torch.Tensor]:
    """Index batches over n items; shuffled ones use the given generator so a seed fixes the order."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
