"""Starting a run from a trained checkpoint (`train --init-from RUN/model.pt`): the answer to "the site changed its
captcha".

The new run takes the checkpoint's architecture, input rules and weights. When the new labels bring characters the
checkpoint never saw, they are appended to its alphabet: the old characters keep their classes (and so their rows of
the classifier, which keep what they learnt), the new rows start from the fresh initialisation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from captcha_nb.core.checkpoint import read_checkpoint, saved_input
from captcha_nb.sources.data import Alphabet
from captcha_nb.sources.geometry import InputSpec


@dataclass(frozen=True)
class WarmStart:
    path: Path
    model_name: str
    spec: InputSpec
    alphabet: Alphabet
    state_dict: dict

    def grown_alphabet(self, labels: Sequence[str]) -> Alphabet:
        """The checkpoint's alphabet, in its order, followed by the new labels' other characters, sorted."""
        new = sorted(set("".join(labels)) - set(self.alphabet.chars))
        return Alphabet(self.alphabet.chars + "".join(new))

    def load_into(self, model: torch.nn.Module) -> None:
        """Copy the checkpoint's weights into a model built for the grown alphabet.

        Every tensor must match, except those sized by the number of classes (the classifier's rows), where the old
        classes are copied into the first rows. Anything else is a different architecture: one clear error.
        """
        target = model.state_dict()
        for name, old in self.state_dict.items():
            new = target.get(name)
            if new is None or new.dim() != old.dim():
                raise ValueError(f"{self.path}: its weights do not fit model {self.model_name!r} ({name})")
            if new.shape == old.shape:
                target[name] = old
            elif new.shape[1:] == old.shape[1:] and new.shape[0] > old.shape[0]:
                target[name] = torch.cat([old, new[old.shape[0]:]])
            else:
                raise ValueError(f"{self.path}: tensor {name} of shape {tuple(old.shape)} cannot grow to "
                                 f"{tuple(new.shape)}")
        model.load_state_dict(target)

    def describe(self, alphabet: Alphabet) -> dict:
        """What metrics.json records about where the run started from."""
        from captcha_nb import project_relative

        return {"init_from": project_relative(self.path), "init_alphabet": self.alphabet.chars,
                "new_characters": alphabet.chars[len(self.alphabet.chars):]}


def read_warm_start(path: str | os.PathLike) -> WarmStart:
    payload = read_checkpoint(path)
    return WarmStart(Path(path), payload["model_name"], saved_input(payload), Alphabet(payload["alphabet"]),
                     payload["state_dict"])
