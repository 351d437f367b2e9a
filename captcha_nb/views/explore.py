"""Tables that describe a data set: what notebook 01 shows before any model is trained."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from PIL import Image

from captcha_nb.sources.data import CaptchaSet
from captcha_nb.sources.input_rules import InputDecision


def overview(dataset: CaptchaSet) -> pd.Series:
    labels = dataset.labels
    alphabet = "".join(sorted(set("".join(labels))))
    return pd.Series(
        {
            "images": len(labels),
            "distinct labels": len(set(labels)),
            "alphabet size": len(alphabet),
            "alphabet": alphabet,
            "shortest label": min(map(len, labels)),
            "longest label": max(map(len, labels)),
            "labels with a doubled character": f"{doubled_share(labels):.1%}",
        },
        name="value",
    )


def image_formats(paths: Sequence[Path]) -> pd.DataFrame:
    """Counts of (width, height, mode) as stored on disk; reads headers only."""
    rows = Counter()
    for path in paths:
        with Image.open(path) as image:
            rows[(image.size[0], image.size[1], image.mode)] += 1
    table = pd.DataFrame([(w, h, m, n) for (w, h, m), n in rows.items()], columns=["width", "height", "mode", "images"])
    return table.sort_values("images", ascending=False, ignore_index=True)


def length_distribution(labels: Sequence[str]) -> pd.Series:
    return pd.Series(Counter(map(len, labels)), name="labels").sort_index().rename_axis("length")


def character_frequency(labels: Sequence[str]) -> pd.Series:
    return pd.Series(Counter("".join(labels)), name="count").sort_index().rename_axis("character")


def position_frequency(labels: Sequence[str]) -> pd.DataFrame:
    """How often each character appears at each position (rows: characters, columns: positions from 1)."""
    counts = Counter((c, i + 1) for label in labels for i, c in enumerate(label))
    table = pd.Series(counts).unstack(fill_value=0).sort_index()
    table.columns.name, table.index.name = "position", "character"
    return table


def doubled_share(labels: Sequence[str]) -> float:
    """Share of labels with the same character twice in a row, which CTC must separate with a blank."""
    return sum(any(a == b for a, b in zip(s, s[1:])) for s in labels) / len(labels) if labels else 0.0


def pixel_statistics(images_u8: torch.Tensor) -> pd.DataFrame:
    """Mean, spread and range of pixel values per channel of an (N, C, H, W) uint8 tensor, on the 0-255 scale."""
    values = images_u8.float()
    rows = []
    for c in range(values.shape[1]):
        channel = values[:, c]
        rows.append({"channel": c, "mean": channel.mean().item(), "std": channel.std().item(),
                     "min": channel.min().item(), "max": channel.max().item(),
                     "share of near-white pixels": (channel > 230).float().mean().item()})
    return pd.DataFrame(rows).set_index("channel").round(3)


def split_summary(
    train: Sequence[str], val: Sequence[str], labels_by_name: dict[str, str], test: Sequence[str] = ()
) -> pd.DataFrame:
    """Size and label-length mix of each part of the split (an empty test part is left out)."""
    rows = []
    for side, names in (("train", train), ("validation", val), ("test", test)):
        if not names:
            continue
        lengths = [len(labels_by_name[n]) for n in names]
        rows.append({"split": side, "images": len(names), "mean length": sum(lengths) / len(lengths),
                     "doubled share": doubled_share([labels_by_name[n] for n in names])})
    return pd.DataFrame(rows).set_index("split").round(3)


def input_pictures(images_u8: torch.Tensor) -> list[Image.Image]:
    """Model inputs (N, C, H, W) uint8 back as pictures, to show exactly what the model reads."""
    arrays = images_u8.numpy()
    return [Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)) for a in arrays]


def input_reasons(decision: InputDecision) -> str:
    """What each input rule of `captcha_nb.sources.input_rules` measured on the training pictures and chose, one rule a
    line and never cut short (a pandas table would truncate the longer reasons)."""
    width = max(len(name) for name in decision.reasons)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in decision.reasons.items())
