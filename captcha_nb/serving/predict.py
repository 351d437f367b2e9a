"""Reading many files: one bad file yields an error for that file and the rest are still read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from captcha_nb.serving.inference import Prediction, load_model
from captcha_nb.sources.data import MAX_IMAGE_PIXELS, ImageTooLarge, open_image


def predict_files(
    checkpoint: str | Path, paths: Sequence[Path], device: str = "cpu", beam_width: int = 0, batch_size: int = 64,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> Iterator[tuple[Path, Prediction | None, str | None]]:
    """Yield (path, prediction, None) or (path, None, error message) for every path, in order.

    Files are decoded and predicted in batches so that thousands of files cost one model call per batch, on the
    fastest backend that gives identical readings (see `Recogniser.use_fastest`).
    """
    recogniser = load_model(checkpoint, device=device)
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        images, errors = {}, {}
        for path in chunk:
            try:
                images[path] = open_image(path, max_pixels)
            except ImageTooLarge as error:
                errors[path] = str(error)
            except Exception as error:  # A missing, truncated or non-image file: report it and carry on.
                errors[path] = f"cannot read image ({error.__class__.__name__}: {error})"
        readable = [p for p in chunk if p in images]
        predictions = {}
        if readable:
            batch = recogniser.prepare([images[p] for p in readable])
            recogniser.use_fastest(batch)  # ONNX Runtime when it reads this batch exactly as PyTorch does
            predictions = dict(zip(readable, recogniser.predict_tensor(batch, beam_width=beam_width)))
        for path in chunk:
            yield path, predictions.get(path), errors.get(path)
