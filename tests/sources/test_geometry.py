import numpy as np
import pytest
from PIL import Image, ImageDraw

from captcha_nb.sources import geometry, synth
from captcha_nb.sources.data import load_dataset
from captcha_nb.sources.geometry import InputSpec, ink_map, text_box, to_input
from captcha_nb.sources.input_rules import LOCATE_IF_AREA_BELOW, MIN_STEPS_PER_CHAR, decide_input_spec


def labels(length: int, n: int = 3) -> list[str]:
    return ["x" * length] * n


def spec_for(*args, **kwargs) -> InputSpec:
    return decide_input_spec(*args, **{"time_stride": 4, **kwargs}).spec


@pytest.mark.parametrize(
    "size,length,expected",
    [
        ((200, 50), 5, (32, 128)),  # captcha_images_v2: the size that trains to 100 % stays as it was
        ((72, 24), 4, (32, 96)),  # tiny images are enlarged, not left with 8 pixels per character
        ((90, 30), 4, (32, 96)),
    ],
)
def test_ordinary_captchas_keep_their_aspect_ratio_at_32_rows(size, length, expected):
    spec = spec_for([size] * 3, labels(length))
    assert (spec.height, spec.width) == expected and spec.crop is None


def test_dense_captchas_get_more_rows_so_each_character_keeps_its_width():
    spec = spec_for([(200, 80)] * 3, labels(6))  # 6 characters in 200x80: 32 rows would leave 13 px each
    assert spec.height > 32 and spec.width / 6 >= 20
    # ... and enough time steps that overlapping or doubled glyphs each get frames of their own.
    assert spec.time_steps >= MIN_STEPS_PER_CHAR * 6


def test_very_wide_captchas_are_narrowed_to_a_sensible_sequence():
    spec = spec_for([(780, 80)] * 3, labels(6))
    assert spec.width <= 48 * 6 and spec.height == 32


def test_explicit_sizes_win_and_long_labels_widen_the_input():
    spec = spec_for([(200, 50)], labels(5), height=48, width=200)
    assert (spec.height, spec.width) == (48, 200)
    spec = spec_for([(50, 50)], labels(2), min_time_steps=40)
    assert spec.time_steps >= 40


def test_text_in_a_strip_of_a_tall_canvas_is_cropped_to_the_strip(tmp_path):
    synth.generate(tmp_path, 24, alphabet="abcd23", length=5, size=(200, 50), seed=2, look="tall")
    dataset = load_dataset(tmp_path)
    spec = spec_for(dataset.sizes, dataset.labels, dataset.sample_images(24))
    left, top, right, bottom = spec.crop
    # The captcha sits at 34 % to 63 % of the canvas height, give or take its jitter.
    assert 0.15 < top < 0.34 and 0.63 < bottom < 0.85 and (left, right) == (0.0, 1.0)
    assert spec.width / 5 >= 20


def test_ordinary_captchas_are_not_cropped(tiny_dir):
    dataset = load_dataset(tiny_dir)
    assert spec_for(dataset.sizes, dataset.labels, dataset.sample_images(40)).crop is None


def draw_text(background, ink) -> Image.Image:
    image = Image.new("RGB", (60, 20), background)
    ImageDraw.Draw(image).rectangle((10, 5, 30, 14), fill=ink)
    return image


@pytest.mark.parametrize("background,ink", [((255, 255, 255), (0, 0, 0)), ((20, 25, 30), (230, 230, 200)),
                                            ((255, 255, 255), (215, 190, 225))])
def test_ink_map_draws_any_text_dark_on_white(background, ink):
    # Black on white, light text on a dark background, and a pale lilac on white all become dark ink on white paper.
    array = ink_map(np.asarray(draw_text(background, ink)))
    assert array[0, 0] == 255 and array[10, 20] < 32


def test_to_input_gives_the_model_shape_with_or_without_the_ink_map():
    image = draw_text((255, 255, 255), (0, 0, 0))
    assert to_input(image, InputSpec(16, 48)).shape == (1, 16, 48)
    assert to_input(image, InputSpec(16, 48, ink=False)).shape == (1, 16, 48)
    assert to_input(image, InputSpec(16, 48, channels=3, ink=False)).shape == (3, 16, 48)
    assert to_input(image, InputSpec(16, 48, crop=(0.1, 0.2, 0.6, 0.8))).shape == (1, 16, 48)


def test_spec_round_trips_through_a_dict():
    spec = InputSpec(40, 160, crop=(0.0, 0.2, 1.0, 0.7))
    assert InputSpec.from_dict(spec.to_dict()) == spec


def glyphs_on_canvas(width: int, left: int, size: int = 18, line: bool = True, thin: bool = False) -> Image.Image:
    """Three 'glyphs' of size x size at `left` (solid, or `thin`: drawn with one-pixel strokes like the line),
    crossed by a one-pixel noise line over the whole canvas."""
    image = Image.new("RGB", (width, 80), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for i in range(3):
        x = left + i * (size + 8)
        box = (x, 30, x + size, 30 + size)
        draw.rectangle(box, outline=(40, 90, 200), width=1) if thin else draw.rectangle(box, fill=(40, 90, 200))
    if line:
        draw.line((0, 5, width - 1, 75), fill=(0, 0, 0), width=1)
    return image


def test_text_box_finds_the_glyphs_and_ignores_a_thin_line_across_the_canvas():
    left, top, right, bottom = text_box(np.asarray(glyphs_on_canvas(400, 150)))
    # The glyphs span x 150-220 and y 30-48; the line runs corner to corner and must not stretch the box.
    assert 140 <= left <= 150 and 220 <= right <= 232 and 24 <= top <= 30 and 48 <= bottom <= 55


def test_text_box_ignores_a_long_line_even_when_the_glyphs_are_as_thin_as_the_line():
    # Erosion cannot keep one-pixel glyphs and drop a one-pixel line; the line's length tells them apart.
    left, top, right, bottom = text_box(np.asarray(glyphs_on_canvas(400, 150, thin=True)))
    assert 140 <= left <= 150 and 220 <= right <= 232 and 24 <= top <= 30 and 48 <= bottom <= 55


def test_a_large_picture_is_located_on_a_scaled_copy_and_boxed_in_its_own_pixels(monkeypatch):
    searched = []
    search = geometry.without_long_lines

    def recording_search(ink, min_length):
        searched.append(ink.size)
        return search(ink, min_length)

    monkeypatch.setattr(geometry, "without_long_lines", recording_search)
    small = glyphs_on_canvas(400, 150)
    large = small.resize((small.width * 6, small.height * 6), Image.NEAREST)
    left, top, right, bottom = text_box(np.asarray(large))
    # The line search, the costly step, saw a copy no larger than the bound, not the 1.15-million-pixel picture.
    assert searched and max(searched) <= geometry.LOCATE_MAX_PIXELS
    assert 6 * 140 <= left <= 6 * 150 and 6 * 220 <= right <= 6 * 232 and 6 * 24 <= top <= 6 * 30
    assert 6 * 48 <= bottom <= 6 * 55


def small_text_of_varying_extent() -> list[Image.Image]:
    """Six canvases 240 to 780 pixels wide, each with small glyphs at its own place and size."""
    return [glyphs_on_canvas(width, left, size) for width, left, size in
            [(240, 20, 14), (400, 200, 18), (600, 60, 22), (780, 500, 16), (300, 100, 12), (700, 300, 20)]]


def test_text_that_is_small_and_varies_is_located_in_every_picture():
    pictures = small_text_of_varying_extent()
    spec = spec_for([p.size for p in pictures], labels(3), pictures)
    assert spec.locate and spec.crop is None
    # Located, every picture's glyphs fill most of the input's rows, whatever their canvas.
    for picture in pictures:
        rows = np.flatnonzero((to_input(picture, spec)[0] < 128).any(axis=1))
        assert rows[-1] - rows[0] + 1 >= 0.6 * spec.height


def test_the_decision_says_why_each_rule_chose_what_it_chose():
    pictures = small_text_of_varying_extent()
    decision = decide_input_spec([p.size for p in pictures], labels(3), pictures, time_stride=4)
    reasons = decision.reasons
    assert decision.spec.locate and reasons["locate"].startswith("text located")
    assert reasons["text_area_share"] < LOCATE_IF_AREA_BELOW and reasons["longest_label"] == 3
    assert reasons["height"].endswith(f": {decision.spec.height}") and reasons["width"].endswith(
        f": {decision.spec.width}")
    given = decide_input_spec([(200, 50)] * 3, labels(5), height=48, locate=False, time_stride=4).reasons
    assert given["height"] == "given: 48" and given["locate"] == "given: False" and given["crop"] == "the whole picture"


def test_text_of_one_extent_keeps_the_data_set_wide_rules(tiny_dir):
    pictures = [glyphs_on_canvas(400, 150) for _ in range(6)]
    assert not spec_for([p.size for p in pictures], labels(3), pictures).locate
    dataset = load_dataset(tiny_dir)
    assert not spec_for(dataset.sizes, dataset.labels, dataset.sample_images(40)).locate


def test_located_spec_round_trips_and_old_specs_default_to_not_locating():
    spec = InputSpec(32, 220, locate=True)
    assert InputSpec.from_dict(spec.to_dict()) == spec
    assert InputSpec.from_dict({"height": 32, "width": 128}).locate is False
