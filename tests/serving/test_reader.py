import io

import numpy as np
import pytest
from PIL import Image

from captcha_nb import Reader, ReadError
from captcha_nb.serving.inference import load_model


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


def test_the_readme_example_runs(trained_run, tiny_dir, tmp_path, monkeypatch):
    """The README's Python example, exactly as written, on a tiny run placed where the example looks."""
    import re

    from captcha_nb import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    example = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "Reader" in block)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mine").symlink_to(trained_run.run_dir)
    (tmp_path / "my_captchas").mkdir()
    pictures = sorted(tiny_dir.glob("*.png"))
    for name, picture in zip(["7dk2.png", "a.png", "b.png"], pictures):
        (tmp_path / "my_captchas" / name).write_bytes(picture.read_bytes())
        (tmp_path / name).write_bytes(picture.read_bytes())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert len(namespace["readings"]) == 2 and isinstance(namespace["reading"].text, str)


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
