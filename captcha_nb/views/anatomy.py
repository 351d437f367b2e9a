"""Looking inside a model: the tensor shape after every stage, parameter counts, and CTC's need for time steps."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from captcha_nb.core.ctc import min_time_steps
from captcha_nb.core.model import count_parameters


@torch.inference_mode()
def stage_shapes(model: torch.nn.Module, images: torch.Tensor) -> pd.DataFrame:
    """Shape of the tensor after each stage: image, every feature layer, sequence, GRU, per-step class scores."""
    model.eval()
    rows = [("image", tuple(images.shape))]
    x = images
    for index, layer in enumerate(model.features):
        x = layer(x)
        rows.append((f"features[{index}] {layer.__class__.__name__}", tuple(x.shape)))
    sequence = model.sequence(images)
    rows.append(("sequence of T steps (B, T, features)", tuple(sequence.shape)))
    projected = model.project(sequence)
    if not isinstance(model.project, torch.nn.Identity):
        rows.append(("projected (B, T, hidden)", tuple(projected.shape)))
    recurrent, _ = model.gru(projected)
    rows.append(("bidirectional GRU (B, T, 2 x hidden)", tuple(recurrent.shape)))
    rows.append(("class scores (B, T, classes)", tuple(model.classifier(recurrent).shape)))
    return pd.DataFrame(rows, columns=["stage", "shape"])


def parameter_table(model: torch.nn.Module) -> pd.DataFrame:
    """Parameters per top-level part of the model, and the total."""
    rows = [(name, count_parameters(part)) for name, part in model.named_children()]
    rows.append(("total", count_parameters(model)))
    return pd.DataFrame(rows, columns=["part", "parameters"])


def time_step_table(labels: Sequence[str], widths: Sequence[int], stride: int = 4) -> pd.DataFrame:
    """For each input width: its time steps T, and whether CTC can emit each label in T steps."""
    rows = []
    for width in widths:
        steps = width // stride
        rows.append({"width": width, "time steps T": steps,
                     **{f"fits '{label}' (needs {min_time_steps(label)})": steps >= min_time_steps(label)
                        for label in labels}})
    return pd.DataFrame(rows)


def compare(models: dict[str, tuple[torch.nn.Module, torch.Tensor]], repeats: int = 30) -> pd.DataFrame:
    """Input, time steps, parameters and single-image CPU latency of several models, each with an example batch."""
    from captcha_nb.serving.speed import latency_ms, torch_runner

    rows = []
    for name, (model, batch) in models.items():
        model.eval()
        with torch.inference_mode():
            steps = model(batch[:1]).shape[1]
        single = latency_ms(torch_runner(model, batch[:1]), repeats=repeats, warmup=5)
        rows.append({"model": name, "input": tuple(batch.shape[1:]), "time steps": steps,
                     "parameters": count_parameters(model), "latency median ms": round(single["median_ms"], 2)})
    return pd.DataFrame(rows).set_index("model")
