"""Checkpoints: written atomically, loaded with weights_only=True, carrying the alphabet and the input spec.

`inference.load_model` turns one into a ready recogniser; training only needs the payload and the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from captcha_nb.core.ctc import Alphabet
from captcha_nb.core.model import build_model
from captcha_nb.sources.files import atomic_write
from captcha_nb.sources.geometry import InputSpec

FORMAT = "captcha_nb.core.checkpoint/1"


class CheckpointError(ValueError):
    """A file that is not a captcha_nb checkpoint, or one that does not fit what it is loaded for."""


def atomic_save(payload: dict, path: str | os.PathLike) -> None:
    """torch.save through a temporary file and a rename: a crash never leaves a half-written checkpoint."""
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def make_payload(model: torch.nn.Module, model_name: str, alphabet: Alphabet, spec: InputSpec, config: dict,
                 metrics: dict) -> dict:
    return {
        "format": FORMAT,
        "model_name": model_name,
        "alphabet": alphabet.chars,
        "input": spec.to_dict(),
        # The flat fields are what checkpoints before InputSpec carried; tools that read them keep working.
        "height": spec.height,
        "width": spec.width,
        "in_channels": spec.channels,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config,
        "metrics": metrics,
    }


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint's payload safely (tensors and plain data only, never arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path} is not a loadable checkpoint ({error.__class__.__name__}: {error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a captcha_nb checkpoint (no '{FORMAT}' marker)")
    return payload


def build_saved_model(payload: dict, path: str | os.PathLike) -> torch.nn.Module:
    """The checkpoint's model with its weights, in eval mode; a weight mismatch names the file."""
    spec = saved_input(payload)
    model = build_model(payload["model_name"], len(payload["alphabet"]) + 1, spec.height, spec.width)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit model {payload['model_name']!r}: {error}") from None
    return model.eval()


def saved_input(payload: dict) -> InputSpec:
    """The checkpoint's input spec; checkpoints from before InputSpec fed plain grey or RGB pixels, uncropped."""
    if "input" in payload:
        return InputSpec.from_dict(payload["input"])
    return InputSpec(payload["height"], payload["width"], payload["in_channels"], crop=None, ink=False)
