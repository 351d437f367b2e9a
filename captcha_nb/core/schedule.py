"""The learning rate over a run: a function of the wall clock, not of the epoch count, because the budget is minutes.

Warm-up, then the peak held through CTC's plateau, then a cosine decay over whatever the budget has left, so that a
run always ends on a small learning rate however long its plateau was (`schedule_progress`, then `learning_rate`).
"""

from __future__ import annotations

import math

from captcha_nb.core.config import TrainConfig


def learning_rate(peak: float, progress: float, warmup: float) -> float:
    """Linear warm-up, then cosine decay to 1 % of the peak; progress runs from 0 to 1."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return peak * max(progress / warmup, 0.02)
    cosine = 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup)))
    return peak * (0.01 + 0.99 * cosine)


def schedule_progress(config: TrainConfig, progress, elapsed: float, budget: float,
                      epoch_fraction: float = 0.0) -> float:
    """How far along the learning-rate schedule is, from 0 to 1, for a run's `progress` (engine.Progress: its epoch
    and the seconds of its first correct reading).

    Warm-up runs on the wall clock. Then the peak rate is held until the model first reads a validation captcha
    right, and the cosine decay spans the rest of the budget from that moment: a style whose CTC plateau lasts half the
    budget still leaves it at the full rate instead of at a rate that has already decayed (issue 7 measured a
    Securimage run escaping at 175 s of 360 on a decayed rate, and ending at 55 % on validation). With an epoch cap
    the schedule is at least as far along as the epochs are, which also makes a capped run repeatable step for step.
    """
    warmup = config.warmup_fraction * budget
    # A warm start already reads: there is no plateau to wait out, so the decay starts when the warm-up ends.
    escaped = 0.0 if config.init_from else progress.plateau_seconds
    if elapsed < warmup:
        done = elapsed / budget
    elif escaped is None:
        done = config.warmup_fraction
    else:
        start = max(escaped, warmup)
        decay = config.warmup_fraction + (1 - config.warmup_fraction) * (elapsed - start) / max(budget - start, 1e-9)
        done = min(max(decay, config.warmup_fraction), 1.0)
    if config.epochs:
        done = max(done, (progress.epoch + epoch_fraction) / config.epochs)
    return done
