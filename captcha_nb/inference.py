"""A trained recogniser with everything needed to read captchas: model, alphabet and input geometry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from captcha_nb.ctc import beam_search, greedy_decode
from captcha_nb.data import Alphabet, open_image, to_array, to_float


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
    height: int
    width: int
    in_channels: int
    device: torch.device = torch.device("cpu")
    info: dict = field(default_factory=dict)  # metrics and config saved with the checkpoint

    def to(self, device: torch.device | str) -> "Recogniser":
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def prepare(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images to the model's uint8 input tensor."""
        arrays = [to_array(image, self.height, self.width, self.in_channels) for image in images]
        return torch.from_numpy(np.stack(arrays))

    @torch.inference_mode()
    def probabilities(self, images_u8: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """(N, T, classes) softmax probabilities for a uint8 batch."""
        self.model.eval()
        chunks = []
        for start in range(0, len(images_u8), batch_size):
            batch = to_float(images_u8[start : start + batch_size].to(self.device))
            chunks.append(self.model(batch).float().softmax(-1).cpu())
        if not chunks:
            return torch.empty(0, 0, self.alphabet.num_classes)
        return torch.cat(chunks)

    def predict_tensor(
        self, images_u8: torch.Tensor, beam_width: int = 0, keep_probs: bool = False, batch_size: int = 256
    ) -> list[Prediction]:
        """Read a uint8 batch. beam_width 0 decodes greedily; > 1 runs prefix beam search."""
        probs = self.probabilities(images_u8, batch_size)
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

    def predict_file(self, path, **kwargs) -> Prediction:
        return self.predict_images([open_image(path)], **kwargs)[0]
