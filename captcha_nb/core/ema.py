"""An exponential moving average of a model's weights, the copy that is evaluated and saved.

torch.optim.swa_utils.AveragedModel averages integer buffers too (BatchNorm's batch counter), which fails with an
EMA; this keeps the same idea in a few lines: floating-point parameters and buffers are averaged, the rest copied.
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """`update(model)` after each optimiser step; `module` is the averaged copy.

    The decay warms up as (1 + n) / (10 + n) over the first updates, so early in training, when the weights move
    fast (CTC's escape from its flat start), the average follows closely instead of lagging many epochs behind.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        averaged = self.module.state_dict()
        for name, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                averaged[name].lerp_(value.detach(), 1.0 - decay)
            else:
                averaged[name].copy_(value)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "weights": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.updates = state["updates"]
        self.module.load_state_dict(state["weights"])
