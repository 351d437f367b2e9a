import io

import numpy as np
import pytest
from PIL import Image

from captcha_nb import ReadError, Reader
from captcha_nb.serving.inference import load_model
from captcha_nb.sources.data import load_dataset


@pytest.fixture(scope="module")
def reader(trained_run):
    return Reader.from_run(trained_run.run_dir, device="cpu")


def test_every_kind_of_input_reads_the_same_as_the_recogniser(reader, trained_run, tiny_dir):
    path = sorted(tiny_dir.glob("*.png"))[0]
    expected = load_model(trained_run.run_dir / "model.pt").predict_images([Image.open(path).convert("RGB")])[0]
    picture = Image.open(path)
    inputs = [path, str(path), path.read_bytes(), picture, np.asarray(picture.convert("RGB")),
              np.asarray(picture.convert("RGB")).astype(np.float32) / 255]
    readings = reader.read_many(inputs)
    assert {r.text for r in readings} == {expected.text}
    assert all(r.confidence == pytest.approx(expected.confidence, abs=1e-5) for r in readings)
    assert reader.read(path) == readings[0] and 0 <= readings[0].confidence <= 1


def test_the_readme_example_runs(trained_run, tiny_dir):
    from captcha_nb import Reader  # exactly as the README shows it

    reader = Reader.from_run(trained_run.run_dir)
    images = sorted(tiny_dir.glob("*.png"))[:3]
    assert len(reader.read_many(images)) == 3 and isinstance(reader.read(images[0]).text, str)


@pytest.mark.parametrize("bad,message", [
    (b"not a picture", "input 0 \\(bytes\\): cannot read it as a picture"),
    (np.zeros((2, 3, 5, 7)), "shape"),
    (np.full((10, 10), 2.5), "floats in \\[0, 1\\]"),
    (12, "int is not a path"),
])
def test_bad_input_raises_one_error_that_names_it(reader, bad, message):
    with pytest.raises(ReadError, match=message):
        reader.read(bad)


def test_a_missing_file_and_an_oversized_picture_are_named(reader, tmp_path):
    with pytest.raises(ReadError, match="nowhere.png"):
        reader.read(tmp_path / "nowhere.png")
    big = io.BytesIO()
    Image.new("RGB", (3000, 2000)).save(big, format="PNG")
    with pytest.raises(Exception, match="more than the"):
        reader.read(big.getvalue())
