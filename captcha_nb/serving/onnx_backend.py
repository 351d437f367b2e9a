"""The recogniser as an in-memory ONNX model and an ONNX Runtime session: the fast CPU path inference may switch to.

The alphabet and input spec travel in the ONNX model's metadata_props, so an exported file is enough to read captchas.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

import numpy as np
import torch

META_KEY = "captcha_nb"


def metadata(recogniser) -> dict:
    return {"alphabet": recogniser.alphabet.chars, "height": recogniser.height, "width": recogniser.width,
            "in_channels": recogniser.in_channels, "model_name": recogniser.model_name,
            "preprocessing": recogniser.spec.to_dict(),
            "input": "float32 (N, C, H, W) scaled to [-1, 1]", "output": "logits (N, T, classes), class 0 = blank"}


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
