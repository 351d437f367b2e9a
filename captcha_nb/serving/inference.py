"""A trained recogniser with everything needed to read captchas: model, alphabet and input geometry."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from captcha_nb.core.checkpoint import (
    CheckpointError,
    build_saved_model,
    read_checkpoint,
    saved_input,
)
from captcha_nb.core.ctc import Alphabet, beam_search, greedy_decode
from captcha_nb.core.model import batched_logits, to_float
from captcha_nb.sources.geometry import InputSpec, to_input


@dataclass
class Prediction:
    text: str
    confidence: float
    char_confidences: list[float]
    frames: list[int]  # the time step where each character's probability peaks
    probs: np.ndarray | None = field(default=None, repr=False)  # (T, classes), kept when asked for alignments


@dataclass
class Recogniser:
    model: torch.nn.Module
    alphabet: Alphabet
    model_name: str
    spec: InputSpec
    device: torch.device = torch.device("cpu")
    info: dict = field(default_factory=dict)  # metrics and config saved with the checkpoint
    # Logits are divided by this before the softmax, so confidences are calibrated (see core/calibration.py); it
    # never changes a greedy reading.
    temperature: float = 1.0
    backend: str = "torch"  # "onnx" once use_fastest() has switched to ONNX Runtime
    _fast: object = field(default=None, repr=False)
    _fast_checked: bool = field(default=False, repr=False)

    @property
    def height(self) -> int:
        return self.spec.height

    @property
    def width(self) -> int:
        return self.spec.width

    @property
    def in_channels(self) -> int:
        return self.spec.channels

    def to(self, device: torch.device | str) -> "Recogniser":
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def prepare(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images to the model's uint8 input tensor."""
        arrays = [to_input(image, self.spec) for image in images]
        return torch.from_numpy(np.stack(arrays))

    def use_fastest(self, probe_u8: torch.Tensor) -> str:
        """Switch to ONNX Runtime when it is available and reads the probe images exactly as PyTorch does.

        On a CPU, ONNX Runtime runs this model about three times faster (see reports/BENCHMARKS.md). The switch only
        happens if greedy decoding of the probe gives the same text and the probabilities agree to 1e-4, so the
        faster path never changes a prediction. Returns the backend in use.
        """
        if self.device.type != "cpu" or self._fast_checked:
            return self.backend
        self._fast_checked = True  # decide once: exporting again for every batch would cost more than it saves
        try:
            from captcha_nb.serving.onnx_backend import onnx_bytes, onnx_session_runner

            runner = onnx_session_runner(onnx_bytes(self))
        except Exception:  # onnxruntime missing or the model not exportable: PyTorch it is.
            return self.backend
        expected = self.probabilities(probe_u8)
        logits = torch.from_numpy(runner(to_float(probe_u8).numpy()))
        fast = (logits.float() / self.temperature).softmax(-1)
        same_text = [d.classes for d in greedy_decode(fast)] == [d.classes for d in greedy_decode(expected)]
        if same_text and torch.allclose(fast, expected, atol=1e-4):
            self._fast, self.backend = runner, "onnx"
        return self.backend

    @torch.inference_mode()
    def probabilities(self, images_u8: torch.Tensor, batch_size: int = 256,
                      temperature: float | None = None) -> torch.Tensor:
        """(N, T, classes) softmax probabilities for a uint8 batch, at the calibrated temperature unless another is
        given (1.0 gives the raw, uncalibrated ones)."""
        temperature = self.temperature if temperature is None else temperature
        if not len(images_u8):
            return torch.empty(0, 0, self.alphabet.num_classes)
        if self._fast is None:
            logits = batched_logits(self.model, images_u8, batch_size)
        else:
            logits = torch.cat([torch.from_numpy(self._fast(to_float(images_u8[start : start + batch_size]).numpy()))
                                for start in range(0, len(images_u8), batch_size)])
        return (logits.float() / temperature).softmax(-1)

    def predict_tensor(
        self, images_u8: torch.Tensor, beam_width: int = 0, keep_probs: bool = False, batch_size: int = 256
    ) -> list[Prediction]:
        """Read a uint8 batch. beam_width 0 decodes greedily; > 1 runs prefix beam search."""
        return self.decode(self.probabilities(images_u8, batch_size), beam_width, keep_probs)

    def decode(self, probs: torch.Tensor, beam_width: int = 0, keep_probs: bool = False) -> list[Prediction]:
        """Turn (N, T, classes) probabilities into readings; confidences always describe the greedy path."""
        predictions = []
        for sample, decoding in zip(probs, greedy_decode(probs)):
            text = self.alphabet.decode(decoding.classes)
            if beam_width > 1:
                classes, _ = beam_search(sample.numpy(), beam_width)
                text = self.alphabet.decode(classes)
            predictions.append(
                Prediction(
                    text,
                    decoding.confidence,
                    decoding.confidences,
                    decoding.frames,
                    sample.numpy() if keep_probs else None,
                )
            )
        return predictions

    def predict_images(self, images: Sequence[Image.Image], **kwargs) -> list[Prediction]:
        return self.predict_tensor(self.prepare(images), **kwargs)


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu", alphabet: str | Alphabet | None = None
) -> Recogniser:
    """Rebuild a trained recogniser. Pass `alphabet` to insist on one; a checkpoint for another alphabet is refused."""
    payload = read_checkpoint(path)
    saved = Alphabet(payload["alphabet"])
    if alphabet is not None:
        wanted = alphabet if isinstance(alphabet, Alphabet) else Alphabet(alphabet)
        if wanted != saved:
            raise CheckpointError(f"{path} was trained on alphabet {saved.chars!r}, not {wanted.chars!r}")
    recogniser = Recogniser(
        build_saved_model(payload, path), saved, payload["model_name"], saved_input(payload),
        info={"config": payload.get("config", {}), "metrics": payload.get("metrics", {}), "path": str(path)},
        temperature=float(payload.get("temperature", 1.0)),
    )
    return recogniser.to(device)
