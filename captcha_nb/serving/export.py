"""Export a checkpoint to ONNX or TorchScript, with the alphabet and input geometry carried inside the file.

ONNX keeps them in the model's metadata_props; TorchScript in an extra file `captcha_nb.json` of the archive. Either
way one file is enough to read captchas: `load_exported(path)` gives back a runner and that metadata.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from captcha_nb.serving.inference import load_model
from captcha_nb.serving.onnx_backend import (
    META_KEY,
    metadata,
    onnx_bytes,
    onnx_session_runner,
)
from captcha_nb.sources.files import atomic_write


def export(checkpoint: str | Path, fmt: str, out: str | Path) -> Path:
    """Write the checkpoint's model as `fmt` ("onnx" or "torchscript") to out; returns the path."""
    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"format={fmt!r} must be 'onnx' or 'torchscript'")
    recogniser = load_model(checkpoint, device="cpu")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torchscript":
        model = recogniser.model.eval()
        example = torch.zeros(1, recogniser.in_channels, recogniser.height, recogniser.width)
        info = metadata(recogniser)
        # TorchScript is deprecated upstream in favour of torch.export but remains the one-file format that loads
        # without Python model code; tracing also warns about the GRU. The tests check the trace's predictions.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, example)
            atomic_write(out, lambda p: torch.jit.save(traced, str(p), _extra_files={f"{META_KEY}.json": json.dumps(info)}))
    else:
        atomic_write(out, lambda path: path.write_bytes(onnx_bytes(recogniser)))
    return out


def load_exported(path: str | Path) -> tuple[Callable[[np.ndarray], np.ndarray], dict]:
    """A runner mapping float32 (N, C, H, W) input to (N, T, classes) logits, and the export's metadata."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnx

        info = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}[META_KEY])
        return onnx_session_runner(str(path)), info
    files = {f"{META_KEY}.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    info = json.loads(files[f"{META_KEY}.json"])

    def run(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(images, np.float32))).numpy()

    return run, info
