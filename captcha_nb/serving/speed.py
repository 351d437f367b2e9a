"""Inference speed: single-image latency and batch throughput, measured the same way everywhere."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch


def latency_ms(run: Callable[[], object], repeats: int = 200, warmup: int = 20) -> dict[str, float]:
    """Median and 95th percentile wall time of one call, in milliseconds, after warm-up calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95))}


def throughput(run: Callable[[], object], batch_size: int, min_seconds: float = 2.0, warmup: int = 2) -> float:
    """Images per second when `run` processes one batch of batch_size images."""
    for _ in range(warmup):
        run()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds or calls < 3:
        run()
        calls += 1
    return calls * batch_size / elapsed


def torch_runner(model: torch.nn.Module, inputs: torch.Tensor) -> Callable[[], object]:
    """A no-argument callable running the model on fixed float inputs without autograd."""
    model.eval()

    def run():
        with torch.inference_mode():
            return model(inputs)

    return run
