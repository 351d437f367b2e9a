"""The rules that decide a data set's input from its training pictures and labels: crop, locate, height and width.

Each rule returns its value and the sentence that says why (`InputDecision.reasons`, recorded in metrics.json as
`input_reasons` and printed by notebook 01). The rules read the data, never the name of a data set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from captcha_nb.sources.geometry import InputSpec, ink_map, text_box

# Why each constant is what it is, with the runs behind it: reports/BENCHMARKS.md, "The input rules".
HEIGHT_STEP = 8  # the CRNN halves the height three times
MIN_HEIGHT = 32
MAX_HEIGHT = 64  # taller inputs cost compute in proportion, and CTC's plateau is paid in compute
TARGET_PIXELS_PER_CHAR = 20  # width per character of the longest label at the pictures' aspect ratio
MIN_STEPS_PER_CHAR = 6  # time steps (frames) per character, so overlapping or doubled glyphs get frames of their own
MAX_PIXELS_PER_CHAR = 48  # beyond this, width only lengthens the sequence CTC must align: squeeze it
# The ink crop: rows and columns are kept where ink is at least this share of its most inked row or column ...
INK_SHARE = 0.2
# ... and only when the inked band is clearly smaller than the picture, so ordinary captchas are left whole.
CROP_IF_BAND_BELOW = 0.7
CROP_MARGIN = 0.08  # of the picture, on each side of the band, so a glyph a little outside the band survives
PROFILE_SIZE = 128  # the grid ink profiles are averaged on, whatever the images' own sizes
PROFILE_SAMPLE = 256  # images sampled to find the band; the band of 256 captchas is stable to a row
# The text is located in every picture only when its box is both small and of varying extent.
LOCATE_IF_AREA_BELOW = 0.35
LOCATE_IF_SPREAD_ABOVE = 0.45
# The located input's aspect ratio is this percentile of the boxes' (wider ones squeezed, the rest padded).
LOCATE_ASPECT_PERCENTILE = 75


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


def text_extent(boxes: Sequence[tuple[int, int, int, int, int, int]]) -> tuple[float, float] | None:
    """The median share of the picture's area inside (left, top, right, bottom, width, height) text boxes, and the
    spread of their share of its width ((p90 - p10) / median), or None for fewer than two boxes."""
    if len(boxes) < 2:
        return None
    areas = [(r - l) * (b - t) / (w * h) for l, t, r, b, w, h in boxes]
    widths = [(r - l) / w for l, _, r, _, w, _ in boxes]
    p10, p50, p90 = np.percentile(widths, [10, 50, 90])
    return float(np.median(areas)), float((p90 - p10) / max(p50, 1e-9))


def text_varies(boxes: Sequence[tuple[int, int, int, int, int, int]]) -> bool:
    """Whether text boxes are small and of varying extent (see LOCATE_IF_AREA_BELOW)."""
    extent = text_extent(boxes)
    return extent is not None and extent[0] < LOCATE_IF_AREA_BELOW and extent[1] > LOCATE_IF_SPREAD_ABOVE


@dataclass(frozen=True)
class InputDecision:
    """The input the rules chose, and what each rule measured on the way (recorded in metrics.json as
    `input_reasons`, so a user can see why a style got the input it got)."""

    spec: InputSpec
    reasons: dict


def decide_input_spec(
    sizes: Sequence[tuple[int, int]],
    labels: Sequence[str],
    sample: Sequence[Image.Image] = (),
    channels: int = 1,
    *,
    time_stride: int,
    min_time_steps: int = 1,
    height: int | None = None,
    width: int | None = None,
    ink: bool = True,
    crop: bool = True,
    locate: bool | None = None,
) -> InputDecision:
    """Choose crop, height and width from the pictures' (width, height) sizes, the labels and a sample of pictures.

    0. Locate the text in every picture when, in the sample, it is small and of varying extent (`text_varies`;
       `locate` True or False forces it); the aspect ratio below is then the boxes'.
    1. Otherwise crop to the ink band when the text sits in a strip of a larger canvas (`ink_band`).
    2. Height: the smallest multiple of 8 in [32, 64] that, at the pictures' median aspect ratio, gives the longest
       label `TARGET_PIXELS_PER_CHAR` pixels of width per character.
    3. Width: that aspect ratio at that height, widened to the pixels-per-character target if the height cap held it
       back and to `MIN_STEPS_PER_CHAR` time steps per character, narrowed to `MAX_PIXELS_PER_CHAR`, a multiple of the
       model's time stride, and never fewer time steps than the labels need.
    Explicit `height` or `width` override the rules.
    """
    sample = list(sample)
    boxes = [text_box(np.asarray(image.convert("RGB"))) + image.size for image in sample] if sample else []
    extent = text_extent(boxes)
    reasons: dict = {"sampled_pictures": len(sample)}
    if extent is not None:
        reasons["text_area_share"], reasons["text_width_spread"] = round(extent[0], 3), round(extent[1], 3)
    if locate is None:
        locate = channels == 1 and text_varies(boxes)
        if locate:
            reasons["locate"] = (f"text located in every picture: its box is small (area share < "
                                 f"{LOCATE_IF_AREA_BELOW}) and of varying width (spread > {LOCATE_IF_SPREAD_ABOVE})")
        elif channels != 1 or extent is None:
            reasons["locate"] = "one region for every picture: " + (
                "locating needs the one-channel ink map" if channels != 1 else "no sample of pictures to measure")
        else:
            reasons["locate"] = "one region for every picture: the text is large or of steady extent"
    else:
        reasons["locate"] = f"given: {bool(locate)}"
    if locate and boxes:
        aspect = float(np.percentile([(r - l) / max(b - t, 1) for l, t, r, b, _, _ in boxes],
                                     LOCATE_ASPECT_PERCENTILE))
        band = None
    else:
        band = ink_band(sample) if crop and channels == 1 else None
        reasons["crop"] = (f"cropped to the sample's ink band {band}" if band else
                           "the whole picture" + ("" if crop else " (crop off)"))
        left, top, right, bottom = band or (0.0, 0.0, 1.0, 1.0)
        aspect = float(np.median([(w * (right - left)) / (h * (bottom - top)) for w, h in sizes]))
    longest = max((len(label) for label in labels), default=1)
    reasons["aspect_ratio"], reasons["longest_label"] = round(aspect, 3), longest
    if height is None:
        wanted = TARGET_PIXELS_PER_CHAR * longest / aspect
        height = min(MAX_HEIGHT, max(MIN_HEIGHT, round_up(wanted, HEIGHT_STEP)))
        reasons["height"] = (f"{wanted:.0f} rows give {TARGET_PIXELS_PER_CHAR} px of width per character; "
                             f"a multiple of {HEIGHT_STEP} in [{MIN_HEIGHT}, {MAX_HEIGHT}]: {height}")
    else:
        reasons["height"] = f"given: {height}"
    if width is None:
        natural = height * aspect
        floor = max(TARGET_PIXELS_PER_CHAR * longest, MIN_STEPS_PER_CHAR * time_stride * longest)
        ceiling = MAX_PIXELS_PER_CHAR * longest
        width = max(round_up(min(max(natural, floor), ceiling), time_stride), min_time_steps * time_stride,
                    time_stride)
        reasons["width"] = (f"{natural:.0f} at the aspect ratio, kept within [{floor}, {ceiling}] "
                            f"({MIN_STEPS_PER_CHAR} time steps and {TARGET_PIXELS_PER_CHAR} to "
                            f"{MAX_PIXELS_PER_CHAR} px per character): {width}")
    else:
        reasons["width"] = f"given: {width}"
    spec = InputSpec(height=height, width=width, channels=channels, crop=band,
                     ink=bool(ink and channels == 1), time_stride=time_stride, locate=bool(locate))
    return InputDecision(spec, reasons)
