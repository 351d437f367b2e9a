"""Checkpoints: written atomically, loaded with weights_only=True, carrying the alphabet and input geometry."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from captcha_nb.data import Alphabet
from captcha_nb.geometry import InputSpec
from captcha_nb.inference import Recogniser
from captcha_nb.model import build_model

FORMAT = "captcha_nb.checkpoint/1"


class CheckpointError(ValueError):
    """A file that is not a captcha_nb checkpoint, or one that does not fit what it is loaded for."""


def atomic_save(payload: dict, path: str | os.PathLike) -> None:
    """Write to a temporary file beside the target, then rename: a crash never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    spec = saved_input(payload)
    model = build_model(payload["model_name"], saved.num_classes, spec.height, spec.width)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit model {payload['model_name']!r}: {error}") from None
    model.eval()
    recogniser = Recogniser(
        model, saved, payload["model_name"], spec,
        info={"config": payload.get("config", {}), "metrics": payload.get("metrics", {}), "path": str(path)},
    )
    return recogniser.to(device)


def saved_input(payload: dict) -> InputSpec:
    """The checkpoint's input spec; checkpoints from before InputSpec fed plain grey or RGB pixels, uncropped."""
    if "input" in payload:
        return InputSpec.from_dict(payload["input"])
    return InputSpec(payload["height"], payload["width"], payload["in_channels"], crop=None, ink=False)
