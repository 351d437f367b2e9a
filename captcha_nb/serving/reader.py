"""`Reader`: the one documented way to use a trained model from Python.

    from captcha_nb import Reader
    reader = Reader.from_run("runs/mine")            # or Reader.from_checkpoint("runs/mine/model.pt")
    reading = reader.read("captcha.png")             # a path, bytes, a PIL image or a numpy array
    print(reading.text, reading.confidence)
    readings = reader.read_many(["a.png", "b.png"])  # batched

A reading is prepared exactly as in training (the checkpoint's crop, size and ink map), decoded greedily, and its
confidence is calibrated by the temperature saved with the model. Anything that is not a picture raises one
`ReadError` that names it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from captcha_nb.core.rundir import RunDir
from captcha_nb.serving.inference import Recogniser, load_model
from captcha_nb.sources.data import MAX_IMAGE_PIXELS, check_size, open_image


class ReadError(ValueError):
    """An input that cannot be read as a captcha picture."""


@dataclass(frozen=True)
class Reading:
    text: str
    confidence: float  # calibrated probability of the greedy reading


class Reader:
    def __init__(self, recogniser: Recogniser, max_pixels: int = MAX_IMAGE_PIXELS):
        self.recogniser = recogniser
        self.max_pixels = max_pixels

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "auto") -> "Reader":
        from captcha_nb.core.device import select_device

        return cls(load_model(path, device=select_device(device)))

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, device: str = "auto") -> "Reader":
        return cls.from_checkpoint(RunDir(run_dir).model, device)

    @property
    def alphabet(self) -> str:
        return self.recogniser.alphabet.chars

    def picture(self, source, name: str) -> Image.Image:
        """Any accepted input as an RGB picture, or a ReadError naming it."""
        try:
            if isinstance(source, Image.Image):
                check_size(source.size, name, self.max_pixels)
                return source.convert("RGB")
            if isinstance(source, (str, os.PathLike)):
                return open_image(Path(source), self.max_pixels)
            if isinstance(source, (bytes, bytearray, memoryview)):
                return open_image(io.BytesIO(bytes(source)), self.max_pixels, name=name)
            if isinstance(source, np.ndarray):
                return from_array(source, name, self.max_pixels)
        except ReadError:
            raise
        except Exception as error:
            raise ReadError(f"{name}: cannot read it as a picture ({error.__class__.__name__}: {error})") from None
        raise ReadError(f"{name}: a {type(source).__name__} is not a path, bytes, a PIL image or a numpy array")

    def read(self, source) -> Reading:
        return self.read_many([source])[0]

    def read_many(self, sources: Sequence, batch_size: int = 64) -> list[Reading]:
        """Read many inputs in batches; every input is checked before any is read."""
        pictures = [self.picture(s, describe(s, i)) for i, s in enumerate(sources)]
        readings = []
        for start in range(0, len(pictures), batch_size):
            batch = self.recogniser.prepare(pictures[start : start + batch_size])
            for prediction in self.recogniser.predict_tensor(batch):
                readings.append(Reading(prediction.text, float(prediction.confidence)))
        return readings


def describe(source, index: int) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return f"input {index} ({type(source).__name__})"


def from_array(array: np.ndarray, name: str, max_pixels: int) -> Image.Image:
    """(H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, uint8 or floats in [0, 1], as an RGB picture."""
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ReadError(f"{name}: an array of shape {array.shape} is not (H, W), (H, W, 3) or (H, W, 4)")
    check_size((array.shape[1], array.shape[0]), name, max_pixels)
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all() or array.min() < 0 \
                or array.max() > 1:
            raise ReadError(f"{name}: array values must be uint8, or floats in [0, 1]; got {array.dtype}")
        array = (array * 255).round().astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    image = Image.fromarray(array)
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.split()[3])
        return background
    return image.convert("RGB")
