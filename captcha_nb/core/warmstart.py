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
from captcha_nb.core.ctc import Alphabet
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


# --------------------------------------------------------------------------------------------------------------------
# The general checkpoint shipped with the package (`train --pretrained yes`), built by tools/build_pretrained.py.

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
PRETRAINED = PRETRAINED_DIR / "synthetic.pt"  # the file `crnn` registers as the one that fits it (core/model.py)
# A run that leaves `pretrained` to the recipe starts from the shipped checkpoint whenever it fits (the same model,
# an ink-map input): it shortens CTC's plateau to seconds and lifts the hard styles (reports/BENCHMARKS.md, "Hard
# styles": securimage 81.0 -> 86.0 %, varlen 36.8 -> 42.4 % of validation, seed 0).
PRETRAINED_BY_DEFAULT = True


def read_pretrained(model_name: str, path: Path | None = None) -> WarmStart | None:
    """The shipped checkpoint that the model registers as fitting it (or `path`), or None when there is none, the file
    is missing, or it holds another architecture."""
    from captcha_nb.core.model import model_spec

    if path is None:
        fitting = model_spec(model_name).pretrained
        path = PRETRAINED_DIR / fitting if fitting else None
    if path is None or not path.is_file():
        return None
    pretrained = read_warm_start(path)
    return pretrained if pretrained.model_name == model_name else None


def transfer(pretrained: WarmStart, model: torch.nn.Module, alphabet: Alphabet) -> dict:
    """Copy into `model` every tensor of `pretrained` that fits, and say what was copied (for metrics.json).

    Unlike a fine-tuning warm start, the new run keeps its own input rules and alphabet: a tensor whose shape depends
    on the input height (the GRU's input weights) is copied only when the heights agree, and the classifier's rows are
    matched by character, so the row of 'a' starts from what 'a' learnt; blank keeps blank's row and a character the
    checkpoint never saw keeps its fresh row.
    """
    target = model.state_dict()
    rows = [0] + [pretrained.alphabet.chars.index(c) + 1 if c in pretrained.alphabet.chars else -1
                  for c in alphabet.chars]
    copied, skipped = [], []
    for name, old in pretrained.state_dict.items():
        new = target.get(name)
        if new is not None and name.startswith("classifier.") and old.shape[1:] == new.shape[1:]:
            for row, source in enumerate(rows):
                if source >= 0:
                    new[row] = old[source]
            copied.append(name)
        elif new is not None and new.shape == old.shape:
            target[name] = old
            copied.append(name)
        else:
            skipped.append(name)
    model.load_state_dict(target)
    from captcha_nb import project_relative

    return {"pretrained": project_relative(pretrained.path), "pretrained_tensors": len(copied),
            "pretrained_skipped": skipped,
            "pretrained_characters": sum(source >= 0 for source in rows[1:])}
