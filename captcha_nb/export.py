"""Export a checkpoint to ONNX or TorchScript, with the alphabet and input geometry carried inside the file.

ONNX keeps them in the model's metadata_props; TorchScript in an extra file `captcha_nb.json` of the archive. Either
way one file is enough to read captchas: `load_exported(path)` gives back a runner and that metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from captcha_nb.checkpoint import load_model

META_KEY = "captcha_nb"


def metadata(recogniser) -> dict:
    return {"alphabet": recogniser.alphabet.chars, "height": recogniser.height, "width": recogniser.width,
            "in_channels": recogniser.in_channels, "model_name": recogniser.model_name,
            "preprocessing": recogniser.spec.to_dict(),
            "input": "float32 (N, C, H, W) scaled to [-1, 1]", "output": "logits (N, T, classes), class 0 = blank"}


def _replace_atomically(write: Callable[[str], None], out: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
            _replace_atomically(
                lambda p: torch.jit.save(traced, p, _extra_files={f"{META_KEY}.json": json.dumps(info)}), out)
    else:
        _replace_atomically(lambda path: Path(path).write_bytes(onnx_bytes(recogniser)), out)
    return out


def onnx_bytes(recogniser) -> bytes:
    """The recogniser as an ONNX model (dynamic batch size) with its metadata, serialised in memory."""
    import io

    import onnx

    model = recogniser.model.eval()
    example = torch.zeros(1, recogniser.in_channels, recogniser.height, recogniser.width)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter warns about the GRU's batch_first layout
        torch.onnx.export(model.cpu(), (example,), buffer, dynamo=False, input_names=["images"],
                          output_names=["logits"], dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=17)
    model.to(recogniser.device)
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(metadata(recogniser))
    return proto.SerializeToString()


def onnx_session_runner(model: bytes | str) -> Callable[[np.ndarray], np.ndarray]:
    """An ONNX Runtime CPU session as a function from float32 images to logits."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return lambda images: session.run(["logits"], {"images": np.ascontiguousarray(images, np.float32)})[0]


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
