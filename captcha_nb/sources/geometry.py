"""How a captcha picture becomes the model's input: which part of it, at what size, with which pixel values.

`InputSpec` is decided once from the training data (`decide_input_spec`), saved in every checkpoint, and used by
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
# The width then gives the longest label at least this many time steps (frames) per character. At 48x120 securimage
# had 5 per character, and 19 of the 42 validation captchas a pretrained run misread came out a character short or
# long (overlapping or doubled glyphs read once). Seed 0, 6 minutes, the pretrained start, validation only:
# 48x120 read 86.0 % (val loss 0.105), 48x144 (6 steps) 88.7 % (0.081), 48x168 (7 steps) 88.7 % (0.097).
# Six is also what the styles that already read 99-100 % have (captcha_images_v2 6.4, kelab 6, digits 7.5), so the
# rule widens only the styles that had fewer.
MIN_STEPS_PER_CHAR = 6
# Beyond this, extra width only lengthens the sequence CTC must align (wide 780-pixel captchas): squeeze it.
MAX_PIXELS_PER_CHAR = 48
# The ink crop: rows and columns are kept where ink is at least this share of its most inked row or column ...
INK_SHARE = 0.2
# ... and only when the inked band is clearly smaller than the picture, so ordinary captchas are left whole.
CROP_IF_BAND_BELOW = 0.7
CROP_MARGIN = 0.08  # of the picture, on each side of the band, so a glyph a little outside the band survives
PROFILE_SIZE = 128  # the grid ink profiles are averaged on, whatever the images' own sizes
PROFILE_SAMPLE = 256  # images sampled to find the band; the band of 256 captchas is stable to a row

# Per-image location of the text (issue 13). A data-set-wide band fails when each picture puts its text somewhere
# else, at its own size, on a canvas of its own size: the varlen style (240-780x80, 4-6 small glyphs) had one crop of
# 70 % x 83 % for every picture, and after the resize to one width a glyph's width changed threefold with its canvas.
# Measured with `text_box` on 120 training pictures of each style (median share of the picture's area inside the
# box; spread of the box's share of the picture's width, (p90 - p10) / median):
#   varlen 0.22 / 0.59; kelab 0.52 / 0.19; captcha_images_v2 0.58 / 0.15; securimage 0.91 / 0.17; digits 0.96 / 0.06;
#   synthetic "tall" (a strip of a 3.5 times taller canvas) 0.29 / 0.17; synthetic 4-6 characters 0.88 / 0.35.
# The text is located in every picture only when it is both small and of varying extent; elsewhere the data-set-wide
# rules, which read those styles at 99 %, stay (the tall strip is cropped well by its band).
LOCATE_IF_AREA_BELOW = 0.35
LOCATE_IF_SPREAD_ABOVE = 0.45
# Ink is a pixel at least this far (as a share of the picture's ink scale) from the background: 0.5 lost pale glyphs
# drawn beside dark ones (a lavender 'A' beside a black '9' in varlen).
LOCATE_INK = 0.25
# Long straight lines are taken out of the ink before the box is measured. Erosion alone (below) cannot tell a line
# from a glyph drawn as thinly as the line: on 600 varlen training pictures 26 fell back to no erosion, and their box
# was 76 of the picture's 80 rows, so the glyphs got a third of the input's height. A line is a run of ink at least
# this share of the picture's height long along one straight track, with gaps of at most LINE_MAX_GAP pixels; a
# glyph's stroke is shorter than the text is high, so only strokes of text filling the whole height could reach it.
# Measured on varlen with the default command (seeds 0-2, 6 minutes, `--test-fraction 0`, validation only), against
# the erosion alone: 43.6 / 40.8 / 43.6 % read against 44.0 / 38.8 / 40.4 %, validation loss 0.985 / 0.937 / 0.869
# against 1.018 / 0.980 / 0.942. The other shared styles are not located, and their decision to stay so is unchanged.
LINE_MIN_LENGTH = 1.0
LINE_HALF_WIDTH = 1.5  # pixels either side of the track: noise lines are 1-2 pixels wide and drawn with steps
LINE_MAX_GAP = 3
LINE_ANGLES = np.deg2rad(np.arange(0.0, 180.0, 1.0))
LINE_MAX_TRACKS = 64  # the tracks with most ink that are checked for a run, so a picture full of ink costs no more
# Pictures with more pixels than this are located on a scaled copy, which bounds the time and memory a picture from
# a stranger can cost (varlen's largest, 780x80, has 62,400).
LOCATE_MAX_PIXELS = 160_000
# Noise lines are 1-2 pixels wide and glyph strokes wider, so eroding the ink by a k x k square removes what is left
# of the lines and keeps the glyphs; a style of thin glyphs falls back to smaller squares while enough ink survives.
LOCATE_ERODE = (3, 2, 1)
LOCATE_MIN_SURVIVING = 0.1  # share of the ink that must survive an erosion for it to be used
LOCATE_TRIM = 0.002  # share of surviving ink ignored on each side, so a lone speck does not stretch the box
LOCATE_MARGIN = 0.1  # of the box's height, added on each side
# The input's aspect ratio is this percentile of the boxes' aspect ratios: wider boxes are squeezed a little, the
# rest keep their glyphs' proportions and are padded with background.
LOCATE_ASPECT_PERCENTILE = 75


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
    time_stride: int = 4,
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
