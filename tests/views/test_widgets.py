import io

from captcha_nb.views.widgets import PredictionInspector


def png(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_browsing_with_buttons_and_filters(recogniser, tiny_set):
    inspector = PredictionInspector(recogniser, tiny_set)
    assert inspector.counter.value.startswith("1 of 40")
    assert tiny_set.names[0] in inspector.info.value and inspector.picture.value[:4] == b"\x89PNG"
    inspector.next_button.click()
    assert inspector.current == 1 and tiny_set.names[1] in inspector.info.value
    inspector.previous_button.click()
    inspector.previous_button.click()
    assert inspector.current == 39  # wraps around

    inspector.filter.value = "low confidence"
    inspector.threshold.value = 0.0
    assert inspector.visible() == [] and "No captcha" in inspector.info.value
    inspector.threshold.value = 1.0
    assert len(inspector.visible()) == (inspector.table["confidence"] < 1.0).sum()


def test_the_error_filter_shows_exactly_the_misread_captchas(recogniser, tiny_set):
    from captcha_nb.sources.data import CaptchaSet

    # Two labels no model of this alphabet can read, so there are errors to filter whatever the model learnt.
    labels = [("zz" + label) if i in (3, 7) else label for i, label in enumerate(tiny_set.labels)]
    inspector = PredictionInspector(recogniser, CaptchaSet(tiny_set.paths, labels, tiny_set.sizes))
    inspector.filter.value = "errors"
    errors = inspector.visible()
    assert {3, 7} <= set(errors) and errors == inspector.table.index[~inspector.table["correct"]].tolist()
    assert inspector.current == errors[0] and not inspector.table.loc[inspector.current, "correct"]
    assert inspector.counter.value.startswith(f"1 of {len(errors)}")


def test_with_no_captchas_to_browse_uploads_are_still_read(recogniser, tiny_set):
    from captcha_nb.sources.data import CaptchaSet

    inspector = PredictionInspector(recogniser, CaptchaSet([], [], []))
    assert inspector.counter.value.startswith("0 of 0") and inspector.current is None
    expected = recogniser.predict_images([tiny_set.images[0]])[0].text
    assert inspector.predict_bytes(png(tiny_set.images[0]), "mine.png") == expected


def test_upload_reads_an_image_and_names_a_bad_one(recogniser, tiny_set):
    inspector = PredictionInspector(recogniser, tiny_set)
    expected = recogniser.predict_images([tiny_set.images[0]])[0].text
    inspector._on_upload({"new": ({"name": "mine.png", "content": memoryview(png(tiny_set.images[0]))},)})
    assert "mine.png" in inspector.upload_info.value and inspector.upload_picture.value[:4] == b"\x89PNG"
    assert inspector.predict_bytes(png(tiny_set.images[0])) == expected
    assert inspector.predict_bytes(b"not an image", "junk.bin") == ""
    assert "junk.bin is not a readable image" in inspector.upload_info.value


def test_an_oversized_upload_is_refused_with_its_name_and_size(recogniser, tiny_set):
    from PIL import Image

    inspector = PredictionInspector(recogniser, tiny_set)
    huge = png(Image.new("L", (12000, 9000), 255))
    assert inspector.predict_bytes(huge, "bomb.png") == ""
    assert "bomb.png: 12000x9000 pixels" in inspector.upload_info.value and inspector.upload_picture.value == b""


def test_pictures_stay_hidden_until_there_is_something_to_show(recogniser, tiny_set):
    inspector = PredictionInspector(recogniser, tiny_set)
    assert inspector.upload_picture.layout.display == "none"  # nothing uploaded yet: no broken-image icon
    inspector.predict_bytes(png(tiny_set.images[0]), "ok.png")
    assert inspector.upload_picture.layout.display is None and inspector.upload_picture.value
    inspector.predict_bytes(b"junk", "junk.bin")
    assert inspector.upload_picture.layout.display == "none"


def test_the_inspector_shows_runner_ups_and_beam_alternatives(recogniser, tiny_set):
    inspector = PredictionInspector(recogniser, tiny_set)
    assert "runner-up" in inspector.info.value and "top readings (beam search)" in inspector.info.value
