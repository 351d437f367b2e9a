"""How a captcha picture becomes the model's input: which part of it, at what size, with which pixel values.

`InputSpec` is decided once from the training data (`infer_input_spec`), saved in every checkpoint, and used by
training, inference, export and the notebooks alike, so an image is always prepared the same way. The rules below
decide from the data, never from the name of a data set; each rule's constant says what measurement it rests on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

# Heights are multiples of 8 because the CRNN halves the height three times.
HEIGHT_STEP = 8
MIN_HEIGHT = 32
# Taller inputs cost compute in proportion, and on a CPU compute is what CTC's flat start is paid in: it lasts a
# similar number of steps whatever the input size, so a 64-row input spends twice as long there as a 32-row one.
MAX_HEIGHT = 64
# Horizontal pixels per character of the longest label, at the pictures' own aspect ratio. captcha_images_v2 at 32x128
# has 25.6 and trains to 99-100 %. The Securimage style (200x80, 6 characters) at 32x80 (13 pixels) read 53 % in
# issue 7. Compared on validation images only, with seed 0 and a 6-minute schedule: 64x160 (27 pixels) first read a
# captcha at 175 s and ended at 55 %; 32x128 (21 pixels, squashed to 32 rows) was still on the plateau at 180 s;
# 48x120 (20 pixels) first read one at 62 s, and reached 75 % even on one thread.
TARGET_PIXELS_PER_CHAR = 20
# Beyond this, extra width only lengthens the sequence CTC must align (wide 780-pixel captchas): squeeze it.
MAX_PIXELS_PER_CHAR = 48
# The ink crop: rows and columns are kept where ink is at least this share of its most inked row or column ...
INK_SHARE = 0.2
# ... and only when the inked band is clearly smaller than the picture, so ordinary captchas are left whole.
CROP_IF_BAND_BELOW = 0.7
CROP_MARGIN = 0.08  # of the picture, on each side of the band, so a glyph a little outside the band survives
PROFILE_SIZE = 128  # the grid ink profiles are averaged on, whatever the images' own sizes
PROFILE_SAMPLE = 256  # images sampled to find the band; the band of 256 captchas is stable to a row


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


def to_input(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """An RGB picture to the (channels, height, width) uint8 array the model reads."""
    box = crop_box(image.size, spec.crop)
    if box is not None:
        image = image.crop(box)
    resized = image.convert("RGB").resize((spec.width, spec.height), Image.BILINEAR)
    rgb = np.asarray(resized, dtype=np.uint8)
    if spec.channels == 3:
        return rgb.transpose(2, 0, 1).copy()
    grey = ink_map(rgb) if spec.ink else np.asarray(resized.convert("L"), dtype=np.uint8)
    return grey[None]


# --------------------------------------------------------------------------------------------------------------------
# Deciding the input from the data


def ink_band(images: Sequence[Image.Image]) -> tuple[float, float, float, float] | None:
    """The region where the sample's ink is, as fractions, or None when the ink spreads over most of the picture.

    Every picture's ink map is resampled to one grid and averaged, so the band is where text is drawn in general,
    not in one picture: a tall canvas with the text in a strip gets cropped to the strip, noise lines or a stray
    distractor glyph do not move it.
    """
    if not images:
        return None
    total = np.zeros((PROFILE_SIZE, PROFILE_SIZE), dtype=np.float64)
    for image in images:
        small = image.convert("RGB").resize((PROFILE_SIZE, PROFILE_SIZE), Image.BILINEAR)
        total += 1.0 - ink_map(np.asarray(small)) / 255.0
    rows, cols = total.sum(axis=1), total.sum(axis=0)

    def band(profile: np.ndarray) -> tuple[float, float]:
        inked = np.flatnonzero(profile >= INK_SHARE * profile.max()) if profile.max() > 0 else np.array([])
        if len(inked) == 0:
            return 0.0, 1.0
        start, stop = inked[0] / PROFILE_SIZE, (inked[-1] + 1) / PROFILE_SIZE
        if stop - start >= CROP_IF_BAND_BELOW:
            return 0.0, 1.0
        return max(0.0, start - CROP_MARGIN), min(1.0, stop + CROP_MARGIN)

    top, bottom = band(rows)
    left, right = band(cols)
    if (left, top, right, bottom) == (0.0, 0.0, 1.0, 1.0):
        return None
    return tuple(round(float(v), 4) for v in (left, top, right, bottom))


def round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step)) * step


def infer_input_spec(
    sizes: Sequence[tuple[int, int]],
    labels: Sequence[str],
    sample: Sequence[Image.Image] = (),
    channels: int = 1,
    time_stride: int = 4,
    min_time_steps: int = 1,
    height: int | None = None,
    width: int | None = None,
    ink: bool = True,
    crop: bool = True,
) -> InputSpec:
    """Choose crop, height and width from the pictures' (width, height) sizes, the labels and a sample of pictures.

    1. Crop to the ink band when the text sits in a strip of a larger canvas (`ink_band`).
    2. Height: the smallest multiple of 8 in [32, 64] that, at the pictures' median aspect ratio, gives the longest
       label `TARGET_PIXELS_PER_CHAR` pixels of width per character.
    3. Width: that aspect ratio at that height, widened to the pixels-per-character target if the height cap held it
       back, narrowed to `MAX_PIXELS_PER_CHAR`, a multiple of the model's time stride, and never fewer time steps
       than the labels need.
    Explicit `height` or `width` override the rules.
    """
    band = ink_band(list(sample)) if crop and channels == 1 else None
    left, top, right, bottom = band or (0.0, 0.0, 1.0, 1.0)
    aspect = float(np.median([(w * (right - left)) / (h * (bottom - top)) for w, h in sizes]))
    longest = max((len(label) for label in labels), default=1)
    if height is None:
        wanted = TARGET_PIXELS_PER_CHAR * longest / aspect
        height = min(MAX_HEIGHT, max(MIN_HEIGHT, round_up(wanted, HEIGHT_STEP)))
    if width is None:
        natural = height * aspect
        natural = max(natural, TARGET_PIXELS_PER_CHAR * longest)
        natural = min(natural, MAX_PIXELS_PER_CHAR * longest)
        width = max(round_up(natural, time_stride), min_time_steps * time_stride, time_stride)
    return InputSpec(height=height, width=width, channels=channels, crop=band,
                     ink=bool(ink and channels == 1), time_stride=time_stride)
