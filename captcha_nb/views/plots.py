"""Figures for the notebooks and reports. Every function returns a matplotlib Figure and draws nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from captcha_nb.core.ctc import Alphabet


def save(figure: plt.Figure, directory: str | Path | None, name: str) -> Path | None:
    """Save a figure as PNG into directory (when one is given) and return its path."""
    if not directory:
        return None
    path = Path(directory) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


# Captchas are small pictures: at this resolution a 3.2-inch panel is about 200 pixels wide, a captcha's own size, so a
# grid of twelve stays a small picture in a saved notebook (at matplotlib's default of 100 it took 300 KB of one).
GRID_DPI = 64


def image_grid(images: Sequence[Image.Image], titles: Sequence[str], ncols: int = 4,
               colors: Sequence[str] | None = None) -> plt.Figure:
    """Images with a title each; colors (e.g. green / red for right / wrong) tint the titles."""
    nrows = max(1, int(np.ceil(len(images) / ncols)))
    figure, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 1.2 * nrows + 0.3), dpi=GRID_DPI, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (image, title) in enumerate(zip(images, titles)):
        ax = axes.flat[i]
        ax.imshow(image, cmap="gray" if image.mode == "L" else None)
        ax.set_title(title, fontsize=12, family="monospace", color=colors[i] if colors else "black")
    figure.tight_layout()
    return figure


def bar_chart(series: pd.Series, title: str, xlabel: str = "", ylabel: str = "") -> plt.Figure:
    figure, ax = plt.subplots(figsize=(max(4, 0.35 * len(series) + 2), 3))
    ax.bar([str(i) for i in series.index], series.values, color="tab:blue")
    ax.set(title=title, xlabel=xlabel or series.index.name or "", ylabel=ylabel or series.name or "")
    figure.tight_layout()
    return figure


def heatmap(table: pd.DataFrame, title: str, fmt: str = "d", cmap: str = "Blues", log: bool = False) -> plt.Figure:
    """A labelled heatmap of a table, with the value written in each non-zero cell."""
    values = table.to_numpy(dtype=float)
    figure, ax = plt.subplots(figsize=(0.45 * values.shape[1] + 2.5, 0.4 * values.shape[0] + 1.5))
    shown = np.log1p(values) if log else values
    ax.imshow(shown, cmap=cmap, aspect="auto")
    ax.set_xticks(range(values.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(values.shape[0]), [str(i) for i in table.index])
    ax.set(title=title, xlabel=table.columns.name or "", ylabel=table.index.name or "")
    top = shown.max() if shown.size else 0
    for (r, c), value in np.ndenumerate(values):
        if value:
            text = format(int(value), fmt) if fmt == "d" else format(value, fmt)
            ax.text(c, r, text, ha="center", va="center", fontsize=7,
                    color="white" if shown[r, c] > 0.6 * top else "black")
    figure.tight_layout()
    return figure


def training_curves(history: pd.DataFrame) -> plt.Figure:
    """Loss, sequence accuracy and CER per epoch, with wall-clock seconds on a second axis label."""
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.3))
    axes[0].plot(history["epoch"], history["train_loss"], label="train")
    axes[0].plot(history["epoch"], history["val_loss"], label="validation")
    axes[0].set(title="CTC loss", xlabel="epoch", yscale="log")
    axes[0].legend()
    axes[1].plot(history["epoch"], history["val_seq_accuracy"], color="tab:green")
    axes[1].set(title="validation sequence accuracy", xlabel="epoch", ylim=(0, 1.02))
    axes[2].plot(history["epoch"], history["val_cer"], color="tab:red")
    axes[2].set(title="validation character error rate", xlabel="epoch", ylim=(0, None))
    for ax in axes:
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def accuracy_over_time(curves: dict[str, pd.DataFrame]) -> plt.Figure:
    """Validation sequence accuracy against wall-clock seconds, one line per run (e.g. per model and seed)."""
    figure, ax = plt.subplots(figsize=(7, 4))
    # Matplotlib's default cycle repeats after ten colours; a sweep often has more runs than that.
    colours = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20").colors
    for (name, history), colour in zip(curves.items(), colours * (len(curves) // len(colours) + 1)):
        ax.plot(history["seconds"], history["val_seq_accuracy"], label=name, color=colour)
    for level in (0.9, 0.95, 0.98, 0.99):
        ax.axhline(level, color="gray", lw=0.5, ls=":")
    ax.set(xlabel="training wall time (s)", ylabel="validation sequence accuracy", ylim=(0, 1.01))
    # Beside the axes rather than over the curves, which fill the top of the plot once runs converge.
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


# The tool the workspace is measured against, drawn as a level line: it reads the same with any number of labels.
ZERO_SHOT = "ddddocr zero-shot"


def accuracy_by_labels(results: pd.DataFrame) -> plt.Figure:
    """Test accuracy against the number of labelled training images (a log axis that also shows 0), one panel per
    style, one line per way of training (from scratch, pretrained, with the pool and the teacher); the line is the
    median over seeds and the dots are the seeds; ddddocr's zero-shot reading is a dashed level."""
    styles = sorted(results["style"].unique())
    # Three panels a row keep the figure readable in a README once five or more styles are measured.
    columns = min(3, len(styles))
    rows = -(-len(styles) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.8 * columns, 3.4 * rows), sharey=True, squeeze=False)
    for ax in axes.flat[len(styles):]:
        ax.set_visible(False)
    for ax, style in zip(axes.flat, styles):
        runs = results[results["style"] == style]
        for start, group in runs.groupby("start"):
            accuracy = group["test_seq_accuracy"].astype(float)
            if start == ZERO_SHOT:
                if accuracy.notna().any():
                    ax.axhline(accuracy.median(), ls="--", color="grey", label="ddddocr, no training")
                continue
            medians = accuracy.groupby(group["labelled"]).median()
            (line,) = ax.plot(medians.index, medians.values, marker="o", label=start)
            ax.scatter(group["labelled"], accuracy, s=8, color=line.get_color(), alpha=0.5)
        counts = sorted(runs.loc[runs["start"] != ZERO_SHOT, "labelled"].unique())
        ax.set(title=style, xlabel="labelled training images", ylim=(0, 1.01))
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.minorticks_off()  # the log axis's own ticks would crowd the counts
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("test sequence accuracy")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def loss_gap(curves: dict[str, pd.DataFrame]) -> plt.Figure:
    """Training loss (dashed) beside validation loss (solid) against wall-clock seconds, one panel per run: where the
    dashed line falls far below the solid one, the model overfits; where both stay high, it underfits."""
    figure, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 3), sharey=True, squeeze=False)
    for ax, (name, history) in zip(axes[0], curves.items()):
        ax.plot(history["seconds"], history["train_loss"], ls="--", label="train")
        ax.plot(history["seconds"], history["val_loss"], label="validation")
        ax.set(title=name, xlabel="training wall time (s)", yscale="log")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("CTC loss")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def parameter_effects(effects: pd.DataFrame, runs: pd.DataFrame, metric: str = "test_seq_accuracy") -> plt.Figure:
    """One panel per swept parameter: the mean of `metric` per value with its spread over seeds, and every run as a
    dot, so a difference smaller than the seed-to-seed spread is seen to be one."""
    names = list(dict.fromkeys(effects["parameter"]))
    figure, axes = plt.subplots(1, max(1, len(names)), figsize=(3.6 * max(1, len(names)), 3.2), squeeze=False)
    for ax, name in zip(axes.flat, names):
        rows = effects[effects["parameter"] == name]
        positions = range(len(rows))
        ax.bar(positions, rows["mean"], yerr=rows["std"].fillna(0), color="tab:blue", alpha=0.5, capsize=4)
        for x, value in zip(positions, rows["value"]):
            dots = runs.loc[runs[name].astype(str) == value, metric].dropna()
            ax.plot([x] * len(dots), dots, "o", color="black", ms=3)
        ax.set_xticks(list(positions), rows["value"].tolist())
        ax.set(xlabel=name, ylabel=metric)
        ax.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return figure


def coverage_curve(table: pd.DataFrame) -> plt.Figure:
    figure, ax = plt.subplots(figsize=(5, 3.3))
    ax.plot(table["coverage"], table["accuracy"], marker="o")
    ax.set(title="accuracy when low-confidence readings are rejected", xlabel="coverage (share of images kept)",
           ylabel="sequence accuracy of kept", xlim=(1.02, 0))
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def reliability_diagram(table: pd.DataFrame, errors: dict[str, float]) -> plt.Figure:
    """Accuracy against confidence per bin, raw beside calibrated: a calibrated model's bars sit on the diagonal.
    Bar widths follow the bins; the numbers above are how many readings fell in each."""
    kinds = list(dict.fromkeys(table["confidences"]))
    figure, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.8), squeeze=False)
    for ax, kind in zip(axes.flat, kinds):
        rows = table[(table["confidences"] == kind) & (table["count"] > 0)]
        ax.bar(rows["low"], rows["accuracy"], width=rows["high"] - rows["low"], align="edge", color="tab:blue",
               alpha=0.7, edgecolor="white", label="accuracy")
        ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=1, label="perfect calibration")
        for _, row in rows.iterrows():
            ax.text((row["low"] + row["high"]) / 2, min(row["accuracy"] + 0.02, 0.97), str(int(row["count"])),
                    ha="center", fontsize=7)
        ax.set(title=f"{kind}: ECE {errors[kind]:.3f}", xlabel="confidence", ylabel="accuracy", xlim=(0, 1),
               ylim=(0, 1.02))
        ax.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return figure


def alignment(image: Image.Image, probs: np.ndarray, alphabet: Alphabet, title: str = "") -> plt.Figure:
    """The image above its per-time-step class probabilities, on the same horizontal axis.

    Each column of the heatmap is one time step; a bright cell in a character's row is where CTC emits it, the
    blank row ('-') fills the steps in between.
    """
    steps = probs.shape[0]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 4.2), gridspec_kw={"height_ratios": [1, 1.6]})
    top.imshow(image, cmap="gray" if image.mode == "L" else None, extent=(0, steps, 0, steps * image.height / image.width))
    top.set_title(title, family="monospace")
    top.axis("off")
    classes = probs.argmax(axis=1)
    rows = sorted(set(classes.tolist()) | {0})
    labels = ["-" if c == 0 else alphabet.chars[c - 1] for c in rows]
    bottom.imshow(probs[:, rows].T, aspect="auto", cmap="magma", vmin=0, vmax=1, extent=(0, steps, len(rows), 0))
    bottom.set_yticks(np.arange(len(rows)) + 0.5, labels, family="monospace")
    bottom.set_xlabel("time step")
    for t, c in enumerate(classes):
        if c != 0 and (t == 0 or classes[t - 1] != c):
            top.axvline(t + 0.5, color="tab:cyan", lw=1, alpha=0.7)
    figure.tight_layout()
    return figure


def lattice(alpha: pd.DataFrame, moves: Sequence[tuple[int, int]], title: str = "") -> plt.Figure:
    """CTC's lattice for one label: left, the moves a path may make from each state to the next frame's (the skips
    drawn in orange: only onto a different character); right, the forward variables alpha, frames x states, in log
    scale (dark: no path prefix reaches that state by that frame)."""
    states = [str(name).split(":", 1)[-1] for name in alpha.columns]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 0.28 * len(states) + 1.8),
                                         gridspec_kw={"width_ratios": [1, 3.2]})
    for frame in range(3):
        left.scatter([frame] * len(states), range(len(states)), s=50, color="tab:blue", zorder=3)
    for s, target in moves:
        for frame in range(2):
            left.annotate("", xy=(frame + 1, target), xytext=(frame, s),
                          arrowprops={"arrowstyle": "->", "lw": 0.8, "shrinkA": 4, "shrinkB": 4,
                                      "color": "tab:orange" if target == s + 2 else "gray"})
    left.set(yticks=range(len(states)), xticks=range(3), xticklabels=["t", "t+1", "t+2"],
             ylim=(len(states) - 0.5, -0.5), title="allowed moves (orange: skips)")
    left.set_yticklabels(states, family="monospace")
    shown = alpha.to_numpy().T.clip(min=-60)
    image = right.imshow(shown, aspect="auto", cmap="viridis", interpolation="nearest")
    right.set(yticks=range(len(states)), xlabel="frame", title=title or "log alpha (frame, state)")
    right.set_yticklabels(states, family="monospace")
    figure.colorbar(image, ax=right, label="log alpha (clipped at -60)")
    figure.tight_layout()
    return figure


def gradients(maps: dict[str, np.ndarray], alphabet: Alphabet, label: str) -> plt.Figure:
    """d loss / d logits, frame by frame, one panel per model: blue pulls a class up (the label's characters where
    the lattice wants them), red pushes it down. Rows: the blank and the label's characters."""
    rows = [0] + sorted({alphabet.chars.index(c) + 1 for c in label})
    names = ["-"] + [alphabet.chars[r - 1] for r in rows[1:]]
    figure, axes = plt.subplots(len(maps), 1, figsize=(8, 1.4 + 0.3 * len(rows) * len(maps)), squeeze=False)
    for ax, (name, grad) in zip(axes[:, 0], maps.items()):
        limit = max(float(np.abs(grad[:, rows]).max()), 1e-6)
        image = ax.imshow(grad[:, rows].T, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                          interpolation="nearest")
        ax.set_yticks(range(len(rows)), names, family="monospace")
        ax.set_title(name)
        figure.colorbar(image, ax=ax, pad=0.01)
    axes[-1, 0].set_xlabel("frame")
    figure.tight_layout()
    return figure


def frame_argmax(table: pd.DataFrame, plateau_seconds: float | None = None) -> plt.Figure:
    """The most probable class of every frame (columns) after every epoch (rows): blank frames pale, characters dark
    and written in; the plateau is the run of all-blank rows at the top."""
    values = table.to_numpy()
    figure, ax = plt.subplots(figsize=(9, 0.32 * len(table) + 1.2))
    ax.imshow(values != "-", aspect="auto", cmap="Greys", vmin=-0.3, vmax=1.6, interpolation="nearest")
    for (r, c), value in np.ndenumerate(values):
        if value != "-":
            ax.text(c, r, value, ha="center", va="center", color="white", fontsize=7, family="monospace")
    ax.set(yticks=range(len(table)), xlabel="frame", ylabel="epoch (training seconds)")
    ax.set_yticklabels(table.index, fontsize=7)
    title = "most probable class per frame, epoch by epoch"
    if plateau_seconds is not None:
        title += f"\n(first correct validation reading at {plateau_seconds:.0f} s)"
    ax.set_title(title)
    figure.tight_layout()
    return figure


def frame_view(picture: Image.Image, probs: np.ndarray, frame: int, alphabet: Alphabet, top: int = 5,
               title: str = "") -> plt.Figure:
    """One frame of a reading: the columns of the model input it stands for, shaded on the picture, beside the frame's
    most probable classes. Frames are spread evenly over the input's width (the CNN's stride)."""
    stride = picture.width / probs.shape[0]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 2.4), gridspec_kw={"width_ratios": [2.4, 1]})
    left.imshow(picture, cmap="gray" if picture.mode == "L" else None)
    left.axvspan(frame * stride - 0.5, (frame + 1) * stride - 0.5, color="tab:orange", alpha=0.35)
    left.set_title(title or f"frame {frame} of {probs.shape[0]}")
    left.axis("off")
    order = np.argsort(probs[frame])[::-1][:top]
    names = ["-" if c == 0 else alphabet.chars[c - 1] for c in order]
    right.barh(range(len(order)), probs[frame][order], color="tab:blue")
    right.set(yticks=range(len(order)), xlim=(0, 1), xlabel="probability")
    right.set_yticklabels(names, family="monospace")
    right.invert_yaxis()
    figure.tight_layout()
    return figure
