"""Export a checkpoint to ONNX or TorchScript, with the alphabet and input geometry carried inside the file, or as
a bundle that reads captchas without torch or captcha_nb.

ONNX keeps them in the model's metadata_props; TorchScript in an extra file `captcha_nb.json` of the archive. Either
way one file is enough to read captchas: `load_exported(path)` gives back a runner and that metadata.

A bundle is a folder: model.onnx, reader.json (alphabet, input rules, temperature, decoder), captcha_geometry.py (the
module that prepares pictures, the same file training used) and read_captcha.py, which needs only onnxruntime, numpy
and pillow. Training and serving then cannot disagree on resizing, normalisation, charset or decoding.
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
from captcha_nb.sources import geometry
from captcha_nb.sources.files import atomic_write, write_json

BUNDLE_FORMAT = "captcha_nb.bundle/1"
FORMATS = ("onnx", "torchscript", "bundle")


def export(checkpoint: str | Path, fmt: str, out: str | Path) -> Path:
    """Write the checkpoint's model as `fmt` ("onnx", "torchscript" or "bundle", a folder) to out; returns the path."""
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r} must be one of {', '.join(FORMATS)}")
    recogniser = load_model(checkpoint, device="cpu")
    out = Path(out)
    if fmt == "bundle":
        return write_bundle(recogniser, out)
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


def write_bundle(recogniser, out: Path) -> Path:
    """The bundle folder described above; refuses a folder that already holds something else."""
    if out.exists() and (not out.is_dir() or any(p.name not in BUNDLE_FILES for p in out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder or an earlier bundle; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "model.onnx", lambda path: path.write_bytes(onnx_bytes(recogniser)))
    write_json(out / "reader.json", {
        "format": BUNDLE_FORMAT, "alphabet": recogniser.alphabet.chars, "input": recogniser.spec.to_dict(),
        "temperature": recogniser.temperature, "decoder": "greedy", "blank": 0,
        "pixels": "uint8 from captcha_geometry.to_input, then x / 127.5 - 1", "model_name": recogniser.model_name,
    })
    here = Path(__file__).parent
    for source, name in ((Path(geometry.__file__), "captcha_geometry.py"), (here / "read_captcha.py", "read_captcha.py")):
        text = source.read_text(encoding="utf-8")
        atomic_write(out / name, lambda path, text=text: path.write_text(text, encoding="utf-8"))
    return out


BUNDLE_FILES = {"model.onnx", "reader.json", "captcha_geometry.py", "read_captcha.py", "__pycache__"}


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
