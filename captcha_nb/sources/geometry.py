"""How a captcha picture becomes the model's input: which part of it, at what size, with which pixel values, and
where in the picture its text is.

`InputSpec` is decided once from the training data (`sources/input_rules.py`), saved in every checkpoint, and used by
training, inference, export and the notebooks alike, so an image is always prepared the same way. This file depends on
numpy and Pillow alone: an exported bundle ships it as its standalone `captcha_geometry.py`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

# Locating the text in one picture; why each constant is what it is: reports/BENCHMARKS.md, "The input rules".
# Ink is a pixel at least this far (a share of the picture's ink scale) from the background; 0.5 lost pale glyphs.
LOCATE_INK = 0.25
# Long straight lines (runs along one track at least this share of the height) are taken out before the box is
# measured: erosion alone cannot tell a line from a glyph as thin as it.
LINE_MIN_LENGTH = 1.0
LINE_HALF_WIDTH = 1.5  # pixels either side of the track: noise lines are 1-2 pixels wide and drawn with steps
LINE_MAX_GAP = 3
LINE_ANGLES = np.deg2rad(np.arange(0.0, 180.0, 1.0))
LINE_MAX_TRACKS = 64  # the tracks with most ink that are checked for a run, so a picture full of ink costs no more
# Larger pictures are located on a scaled copy: bounded time and memory for a stranger's picture.
LOCATE_MAX_PIXELS = 160_000
# Eroding by a k x k square removes what is left of 1-2 pixel lines and keeps glyph strokes; thin glyphs fall back.
LOCATE_ERODE = (3, 2, 1)
LOCATE_MIN_SURVIVING = 0.1  # share of the ink that must survive an erosion for it to be used
LOCATE_TRIM = 0.002  # share of surviving ink ignored on each side, so a lone speck does not stretch the box
LOCATE_MARGIN = 0.1  # of the box's height, added on each side


@dataclass(frozen=True)
class InputSpec:
    """The model input: `height` x `width` pixels, `channels` 1 (ink map) or 3 (RGB), after cropping to `crop`.

    `crop` is (left, top, right, bottom) as fractions of the picture, or None for the whole picture. With `ink` True a
    one-channel input is an ink map: each pixel's colour distance from the picture's background colour, stretched to
    the full range and drawn dark on white. That keeps pale colours on white and light text on dark backgrounds as
    visible as black on white, which a plain grey conversion does not (issue 7 measures it).
    """

    height: int
    width: int
    channels: int = 1
    crop: tuple[float, float, float, float] | None = None
    ink: bool = True
    time_stride: int = 4
    # True: the text is found in each picture (`text_box`) and scaled to the input's height, keeping its proportions.
    locate: bool = False

    @property
    def time_steps(self) -> int:
        return self.width // self.time_stride

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "InputSpec":
        crop = values.get("crop")
        return cls(**{**values, "crop": tuple(crop) if crop is not None else None})


# --------------------------------------------------------------------------------------------------------------------
# Pixels


def ink_map(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 colours to an (H, W) uint8 ink map: 255 is background, 0 the strongest ink."""
    pixels = rgb.reshape(-1, 3).astype(np.float32)
    background = np.median(pixels, axis=0)
    distance = np.abs(rgb.astype(np.float32) - background).max(axis=2)
    # The 99th percentile rather than the maximum, so one speck of noise does not set the scale for the glyphs.
    scale = max(float(np.percentile(distance, 99)), 1.0)
    return (255.0 * (1.0 - np.clip(distance / scale, 0.0, 1.0))).astype(np.uint8)


def crop_box(size: tuple[int, int], crop: tuple[float, float, float, float] | None) -> tuple[int, int, int, int] | None:
    if crop is None:
        return None
    w, h = size
    left, top, right, bottom = crop
    return (int(left * w), int(top * h), max(int(left * w) + 1, math.ceil(right * w)),
            max(int(top * h) + 1, math.ceil(bottom * h)))


def erode(mask: np.ndarray, k: int) -> np.ndarray:
    """True where a k x k square of `mask` starting at that pixel is all True (a binary erosion)."""
    h, w = mask.shape
    if k <= 1:
        return mask
    if h < k or w < k:
        return np.zeros_like(mask)
    out = mask[: h - k + 1, : w - k + 1].copy()
    for dy in range(k):
        for dx in range(k):
            out &= mask[dy : h - k + 1 + dy, dx : w - k + 1 + dx]
    return out


def without_long_lines(ink: np.ndarray, min_length: float) -> np.ndarray:
    """`ink` without the pixels of straight runs at least `min_length` pixels long (a Hough transform: every ink
    pixel votes for the tracks through it; the tracks with enough votes are checked for one unbroken run)."""
    ys, xs = np.nonzero(ink)
    if len(xs) < min_length:
        return ink
    cos, sin = np.cos(LINE_ANGLES), np.sin(LINE_ANGLES)
    offset = int(math.hypot(*ink.shape)) + 1  # distances from the origin run from -offset to offset
    span = 2 * offset + 1
    votes = np.zeros(len(LINE_ANGLES) * span, dtype=np.int64)
    for start in range(0, len(LINE_ANGLES), 30):  # 30 angles at a time keep the memory small
        angles = np.arange(start, min(start + 30, len(LINE_ANGLES)))
        distance = np.rint(np.outer(xs, cos[angles]) + np.outer(ys, sin[angles])).astype(np.int64) + offset
        votes += np.bincount((distance + angles * span).ravel(), minlength=len(votes))
    tracks = np.flatnonzero(votes >= min_length)
    tracks = tracks[np.argsort(-votes[tracks], kind="stable")][:LINE_MAX_TRACKS]
    keep = np.ones(len(xs), dtype=bool)
    for track in tracks:
        angle, distance = divmod(int(track), span)
        near = np.flatnonzero(keep & (np.abs(xs * cos[angle] + ys * sin[angle] - (distance - offset))
                                      <= LINE_HALF_WIDTH))
        if len(near) < min_length:
            continue
        along = -xs[near] * sin[angle] + ys[near] * cos[angle]
        order = np.argsort(along)
        position = along[order]
        gaps = np.flatnonzero(np.diff(position) > LINE_MAX_GAP)
        for first, last in zip(np.r_[0, gaps + 1], np.r_[gaps, len(position) - 1]):
            if position[last] - position[first] >= min_length:
                keep[near[order[first : last + 1]]] = False
    out = np.zeros_like(ink)
    out[ys[keep], xs[keep]] = True
    return out


def text_box(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in pixels of where the glyphs of one (H, W, 3) picture are, noise lines ignored."""
    h, w = rgb.shape[:2]
    if h * w > LOCATE_MAX_PIXELS:
        scale = math.sqrt(LOCATE_MAX_PIXELS / (h * w))
        small = Image.fromarray(rgb).resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.BILINEAR)
        left, top, right, bottom = text_box(np.asarray(small))
        return (int(left / scale), int(top / scale), min(w, math.ceil(right / scale)),
                min(h, math.ceil(bottom / scale)))
    ink = without_long_lines(ink_map(rgb) < 255 * (1 - LOCATE_INK), LINE_MIN_LENGTH * h)
    total = int(ink.sum())
    for k in LOCATE_ERODE:
        kept = erode(ink, k)
        if kept.sum() >= max(LOCATE_MIN_SURVIVING * total, 1):
            break
    ys, xs = np.nonzero(kept)
    if len(xs) == 0:
        return 0, 0, w, h
    left, right = np.percentile(xs, [100 * LOCATE_TRIM, 100 * (1 - LOCATE_TRIM)])
    top, bottom = np.percentile(ys, [100 * LOCATE_TRIM, 100 * (1 - LOCATE_TRIM)])
    margin = LOCATE_MARGIN * (bottom + k - top)
    return (max(0, int(left - margin)), max(0, int(top - margin)),
            min(w, math.ceil(right + k + margin)), min(h, math.ceil(bottom + k + margin)))


def fit_located(image: Image.Image, width: int, height: int) -> Image.Image:
    """The picture cropped to its text, scaled to `height` rows (narrowed if wider than `width`), padded with its
    background colour to `width` columns."""
    rgb = np.asarray(image.convert("RGB"))
    left, top, right, bottom = text_box(rgb)
    text = image.convert("RGB").crop((left, top, right, bottom))
    scale = min(height / text.height, width / text.width)
    size = (max(1, round(text.width * scale)), max(1, round(text.height * scale)))
    background = tuple(int(v) for v in np.median(rgb.reshape(-1, 3), axis=0))
    canvas = Image.new("RGB", (width, height), background)
    canvas.paste(text.resize(size, Image.BILINEAR), ((width - size[0]) // 2, (height - size[1]) // 2))
    return canvas


def to_input(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """An RGB picture to the (channels, height, width) uint8 array the model reads."""
    if spec.locate:
        resized = fit_located(image, spec.width, spec.height)
    else:
        box = crop_box(image.size, spec.crop)
        if box is not None:
            image = image.crop(box)
        resized = image.convert("RGB").resize((spec.width, spec.height), Image.BILINEAR)
    rgb = np.asarray(resized, dtype=np.uint8)
    if spec.channels == 3:
        return rgb.transpose(2, 0, 1).copy()
    grey = ink_map(rgb) if spec.ink else np.asarray(resized.convert("L"), dtype=np.uint8)
    return grey[None]
