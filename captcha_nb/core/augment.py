"""Captcha-preserving augmentation applied to whole batches in memory, at a strength that can grow during a run.

With a few thousand training captchas the model memorises them within minutes; random changes that never change the
reading keep it learning shapes instead of pictures. Every transform here keeps every glyph readable: small affine
warps (rotation, scale, shear, shift), pixel noise, and erasing of small patches, each no larger than part of
one glyph. Applied on the device, it costs less than one convolution layer.

`strength` 1 is the light warp that the easy styles train to 99 % with; higher strengths widen every range and add
erasing and noise, for styles whose training loss falls far below their validation loss (`engine` raises it by rule).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# The ranges at strength 1; each widens in proportion to the strength.
ROTATE_DEG = 3.0
SCALE = 0.06
SHIFT = 0.04
SHEAR = 0.05
# Erasing starts above strength 1: one patch per picture, at most this share of the height and of a glyph's width.
ERASE_HEIGHT = 0.25
ERASE_WIDTH_PER_CHAR = 0.5
NOISE = 0.05  # standard deviation of pixel noise per unit of strength above 1, on the [-1, 1] scale


def uniform(b: int, limit: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(b, generator=generator) * 2 - 1) * limit


def random_affine(
    images: torch.Tensor,
    generator: torch.Generator,
    max_rotate_deg: float = ROTATE_DEG,
    max_scale: float = SCALE,
    max_shift: float = SHIFT,
    max_shear: float = 0.0,
) -> torch.Tensor:
    """Randomly rotate, scale, shear and shift each float image of a (B, C, H, W) batch; background stays white."""
    b = images.shape[0]
    angle = uniform(b, math.radians(max_rotate_deg), generator)
    scale = 1 + uniform(b, max_scale, generator)
    shear = uniform(b, max_shear, generator)
    aspect = images.shape[-1] / images.shape[-2]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # Rotation in normalised coordinates must account for the image not being square.
    theta = torch.stack(
        [
            torch.stack([cos, -sin / aspect + shear, uniform(b, max_shift, generator)], dim=1),
            torch.stack([sin * aspect, cos, uniform(b, max_shift, generator)], dim=1),
        ],
        dim=1,
    ).to(images.device, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # Shift so that padding is white paper (1.0 after normalisation) rather than black ink.
    return F.grid_sample(images - 1.0, grid, padding_mode="zeros", align_corners=False) + 1.0


def random_erase(images: torch.Tensor, generator: torch.Generator, max_height: float, max_width: float) -> torch.Tensor:
    """Paint one random patch of each picture white (background), at most max_height x max_width of the picture."""
    b, _, h, w = images.shape
    heights = (torch.rand(b, generator=generator) * max_height * h).long().clamp(min=1)
    widths = (torch.rand(b, generator=generator) * max_width * w).long().clamp(min=1)
    tops = (torch.rand(b, generator=generator) * (h - heights + 1)).long()
    lefts = (torch.rand(b, generator=generator) * (w - widths + 1)).long()
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    patch = ((rows >= tops.view(b, 1, 1)) & (rows < (tops + heights).view(b, 1, 1))
             & (cols >= lefts.view(b, 1, 1)) & (cols < (lefts + widths).view(b, 1, 1)))
    return images.masked_fill(patch.unsqueeze(1).to(images.device), 1.0)


def augment(images: torch.Tensor, generator: torch.Generator, strength: float = 1.0,
            label_length: int = 5) -> torch.Tensor:
    """All of the above at one strength (0 leaves the batch as it is); `label_length` sizes the erased patches."""
    if strength <= 0:
        return images
    extra = max(strength - 1.0, 0.0)
    x = random_affine(images, generator, ROTATE_DEG * strength, SCALE * strength, SHIFT * strength,
                      SHEAR * extra)
    if extra > 0:
        x = random_erase(x, generator, ERASE_HEIGHT * min(extra, 1.0),
                         ERASE_WIDTH_PER_CHAR * min(extra, 1.0) / max(label_length, 1))
        noise = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
        x = (x + NOISE * extra * noise).clamp(-1.0, 1.0)
    return x
