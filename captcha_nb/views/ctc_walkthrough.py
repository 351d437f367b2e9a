"""What notebook 08 (CTC made visible) computes: one captcha's probability matrix, its label's lattice, the decoders
side by side, the loss's gradient, and snapshots of a short training run crossing CTC's plateau.

The lattice itself is `captcha_nb.core.lattice` (written to be read, tested against torch); this module only gathers
what the notebook draws, so the notebook's cells stay one line each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from captcha_nb.core import lattice
from captcha_nb.core.ctc import Alphabet, beam_alternatives, greedy_decode
from captcha_nb.core.model import build_model, to_float
from captcha_nb.core.rundir import RunDir
from captcha_nb.serving.inference import Recogniser, load_model
from captcha_nb.sources.data import CaptchaSet


@dataclass
class Reading:
    """One captcha as one model sees it: its model input as a picture and the (T, C) log-probabilities."""

    name: str
    truth: str
    picture: Image.Image
    log_probs: np.ndarray
    alphabet: Alphabet

    @property
    def label(self) -> list[int]:
        return self.alphabet.encode(self.truth)

    @property
    def states(self) -> list[str]:
        """The lattice's states as text: the label extended with blanks, '-' for a blank."""
        return ["-" if c == lattice.BLANK else self.alphabet.chars[c - 1] for c in lattice.extend_with_blanks(self.label)]


def read_captcha(recogniser: Recogniser, dataset: CaptchaSet, index: int) -> Reading:
    """The model's raw (temperature 1) log-probabilities for one picture of `dataset`."""
    tensor = dataset.subset([dataset.names[index]]).tensor(recogniser.spec)
    probs = recogniser.probabilities(tensor, temperature=1.0)[0].double()
    picture = Image.fromarray(tensor[0, 0].numpy()) if tensor.shape[1] == 1 else Image.fromarray(
        tensor[0].permute(1, 2, 0).numpy())
    return Reading(dataset.names[index], dataset.labels[index], picture, torch.log(probs.clamp_min(1e-300)).numpy(),
                   recogniser.alphabet)


def doubled_letter_index(dataset: CaptchaSet) -> int:
    """The first captcha whose label holds a doubled character (the case that needs a blank in between), else 0."""
    for index, label in enumerate(dataset.labels):
        if any(a == b for a, b in zip(label, label[1:])):
            return index
    return 0


def lattice_check(reading: Reading) -> dict:
    """The label's negative log-probability read off the lattice, beside torch's CTC loss on the same matrix."""
    ours = -lattice.label_log_probability(reading.log_probs, reading.label)
    theirs = torch.nn.functional.ctc_loss(
        torch.from_numpy(reading.log_probs)[:, None], torch.tensor([reading.label]),
        torch.tensor([len(reading.log_probs)]), torch.tensor([len(reading.label)]), reduction="sum").item()
    return {"lattice_nll": ours, "torch_ctc_loss": theirs, "difference": abs(ours - theirs),
            "label_probability": math.exp(-ours), "frames": len(reading.log_probs), "states": len(reading.states)}


def alpha_table(reading: Reading) -> pd.DataFrame:
    """The forward variables alpha (log scale), frames x states; columns 'state number:class' ('-' the blank)."""
    return pd.DataFrame(lattice.forward(reading.log_probs, reading.label),
                        columns=[f"{i}:{s}" for i, s in enumerate(reading.states)])


def path_probability(log_probs: np.ndarray, path: list[int]) -> float:
    return float(np.exp(sum(log_probs[t, c] for t, c in enumerate(path))))


def decoder_table(log_probs: np.ndarray, alphabet: Alphabet, beam_width: int = 10, top: int = 3) -> pd.DataFrame:
    """Best path against best labelling: the single most likely path and what it collapses to (greedy), and beam
    search's best readings. Each row shows the most probable path that reads it (for greedy, the best path of all)
    with that path's probability, and the exact probability of its label, summed over every path by the lattice."""
    def spelt(path: list[int]) -> str:
        return "".join("-" if c == lattice.BLANK else alphabet.chars[c - 1] for c in path)

    best = log_probs.argmax(axis=1).tolist()
    greedy = greedy_decode(torch.from_numpy(np.exp(log_probs))[None])[0].classes
    rows = [{"decoder": "best path (greedy)", "reading": alphabet.decode(greedy), "path": spelt(best),
             "path probability": path_probability(log_probs, best),
             "label probability": math.exp(lattice.label_log_probability(log_probs, greedy))}]
    for rank, (classes, log_p) in enumerate(beam_alternatives(np.exp(log_probs), beam_width, top), start=1):
        path, path_log_p = lattice.best_path(log_probs, classes)
        rows.append({"decoder": f"beam {beam_width}, #{rank}", "reading": alphabet.decode(classes),
                     "path": spelt(path), "path probability": math.exp(path_log_p),
                     "label probability": math.exp(log_p)})
    return pd.DataFrame(rows).set_index("decoder")


def find_disagreement(recogniser: Recogniser, dataset: CaptchaSet, beam_width: int = 10) -> int | None:
    """The first captcha that greedy decoding and beam search read differently, or None."""
    probs = recogniser.probabilities(dataset.tensor(recogniser.spec), temperature=1.0)
    greedy = recogniser.decode(probs)
    beam = recogniser.decode(probs, beam_width=beam_width)
    for index, (a, b) in enumerate(zip(greedy, beam)):
        if a.text != b.text:
            return index
    return None


def built_disagreement() -> tuple[np.ndarray, Alphabet]:
    """Three frames where the single best path reads nothing but the label 'a' is more likely than no label.

    Each frame gives the blank 0.5, 'a' 0.4 and 'b' 0.1. The best path is blank, blank, blank (0.125), so greedy reads
    ''. But 'a' is read by every path with one run of a's and blanks elsewhere: three one-frame runs (0.1 each), two
    two-frame runs (0.08 each) and one three-frame run (0.064), 0.524 in all, against 0.125 for ''. Beam search, which
    sums paths, reads 'a'.
    """
    frame = np.log([0.5, 0.4, 0.1])
    return np.tile(frame, (3, 1)), Alphabet("ab")


def gradient(reading: Reading) -> np.ndarray:
    """d loss / d logits, (T, C), for the reading's own model."""
    return lattice.logit_gradient(reading.log_probs, reading.label)


def untrained_reading(reading: Reading, model_name: str, seed: int = 0) -> Reading:
    """The same captcha read by a freshly initialised model of the same architecture: CTC's starting point."""
    torch.manual_seed(seed)
    pixels = torch.from_numpy(np.array(reading.picture, dtype=np.uint8))
    pixels = pixels[None, None] if pixels.dim() == 2 else pixels.permute(2, 0, 1)[None]
    model = build_model(model_name, reading.alphabet.num_classes, pixels.shape[2], pixels.shape[3]).eval()
    with torch.inference_mode():
        logits = model(to_float(pixels))[0].double()
    return Reading(reading.name, reading.truth, reading.picture, torch.log_softmax(logits, -1).numpy(),
                   reading.alphabet)


# --------------------------------------------------------------------------------------------------------------------
# The plateau, in snapshots of a short training run


@dataclass
class FrameSnapshots:
    """A training callback: after every epoch, the newest weights (last.pt) read a few fixed captchas, and their
    per-frame probabilities are kept with the epoch's time and validation accuracy."""

    run_dir: Path
    pictures: list[Image.Image]
    epochs: list[dict] = field(default_factory=list)

    def __call__(self, report) -> None:
        recogniser = load_model(RunDir(self.run_dir).last)
        probs = recogniser.probabilities(recogniser.prepare(self.pictures), temperature=1.0)
        self.epochs.append({"epoch": report.row["epoch"], "seconds": report.row["seconds"],
                            "val_seq_accuracy": report.row["val_seq_accuracy"], "probs": probs.numpy(),
                            "alphabet": recogniser.alphabet.chars})

    def argmax_table(self, picture: int = 0, changes_only: bool = False) -> pd.DataFrame:
        """Rows: epochs (with seconds); columns: frames; cells: the most probable class, '-' for the blank.
        `changes_only` keeps the first and last epochs and those whose row differs from the epoch before."""
        rows = {}
        for snap in self.epochs:
            chars = "-" + snap["alphabet"]
            rows[f"{snap['epoch']} ({snap['seconds']:.0f} s)"] = [chars[c] for c in snap["probs"][picture].argmax(1)]
        table = pd.DataFrame.from_dict(rows, orient="index")
        if changes_only and len(table) > 2:
            changed = (table != table.shift()).any(axis=1)
            changed.iloc[[0, -1]] = True
            table = table[changed]
        return table

    def turning_points(self, picture: int = 0) -> pd.DataFrame:
        """One row per epoch where the picture's frame-by-frame reading changed (the first and last epochs always):
        when, the share of blank frames, what the frames collapse to, and the validation accuracy."""
        kept = self.argmax_table(picture, changes_only=True)
        by_label = {f"{s['epoch']} ({s['seconds']:.0f} s)": s for s in self.epochs}
        shares = self.blank_share()
        rows = []
        for label, frames in kept.iterrows():
            snap = by_label[label]
            classes = [c for i, c in enumerate(frames) if i == 0 or c != frames.iloc[i - 1]]
            rows.append({"epoch": snap["epoch"], "seconds": round(snap["seconds"], 1),
                         "blank share": round(shares[snap["epoch"]], 3),
                         "reads": "".join(c for c in classes if c != "-") or "(nothing)",
                         "val accuracy": round(snap["val_seq_accuracy"], 3)})
        return pd.DataFrame(rows).set_index("epoch")

    def blank_share(self) -> pd.Series:
        """Share of frames (over the snapshot pictures) whose most probable class is the blank, per epoch."""
        return pd.Series({snap["epoch"]: float((snap["probs"].argmax(2) == 0).mean()) for snap in self.epochs},
                         name="blank share")


def plateau_run(data_dir: str | Path, pictures: list[Image.Image], minutes: float, seed: int = 0) -> tuple[
        FrameSnapshots, dict]:
    """Train a fresh model from scratch (never pretrained: the point is the plateau) for `minutes` on `data_dir`,
    snapshotting how it reads `pictures` after every epoch; the run lives in a temporary folder that is removed."""
    import tempfile

    from captcha_nb.core.config import TrainConfig
    from captcha_nb.core.engine import fit

    with tempfile.TemporaryDirectory(prefix="captcha_nb-plateau-") as scratch:
        run_dir = Path(scratch) / "run"
        snapshots = FrameSnapshots(run_dir, pictures)
        result = fit(TrainConfig(data_dir=str(data_dir), run_dir=str(run_dir), max_minutes=minutes, seed=seed,
                                 pretrained=False, progress=False), callbacks=[snapshots])
    return snapshots, result.metrics
