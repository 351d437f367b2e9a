"""Light geometric augmentation applied to whole batches in memory.

With under a thousand training captchas the model memorises them within a few minutes; small random shifts,
rotations and scalings of each batch keep it learning shapes instead of pictures. Applied on the device, it costs
less than one convolution layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(
    images: torch.Tensor,
    generator: torch.Generator,
    max_rotate_deg: float = 3.0,
    max_scale: float = 0.06,
    max_shift: float = 0.04,
) -> torch.Tensor:
    """Randomly rotate, scale and shift each float image of a (B, C, H, W) batch; background stays white (1.0)."""
    b = images.shape[0]

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(b, generator=generator) * 2 - 1) * limit

    angle = uniform(math.radians(max_rotate_deg))
    scale = 1 + uniform(max_scale)
    aspect = images.shape[-1] / images.shape[-2]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # Rotation in normalised coordinates must account for the image not being square.
    theta = torch.stack(
        [
            torch.stack([cos, -sin / aspect, uniform(max_shift)], dim=1),
            torch.stack([sin * aspect, cos, uniform(max_shift)], dim=1),
        ],
        dim=1,
    ).to(images.device, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # Shift so that padding is white paper (1.0 after normalisation) rather than black ink.
    return F.grid_sample(images - 1.0, grid, padding_mode="zeros", align_corners=False) + 1.0
