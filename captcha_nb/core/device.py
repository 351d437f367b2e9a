"""Where a run computes and what it costs: the device, the seeds, the process's peak memory."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import torch


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def peak_memory_mb() -> float:
    """This process's peak resident memory. VmHWM is reset by exec, unlike ru_maxrss, which Linux carries over from
    the parent that started the process (a pytest or notebook process of several GB would hide the run's own)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS; the module does not exist on Windows.
    try:
        import resource
    except ImportError:
        return float("nan")
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale, 1)
