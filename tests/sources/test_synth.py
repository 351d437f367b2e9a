from PIL import Image

from captcha_nb.sources import synth


def test_generates_labelled_variable_length_images(tmp_path):
    synth.generate(tmp_path, 30, alphabet="xyz9", length=(3, 6), size=(120, 40), seed=5)
    files = sorted(tmp_path.glob("*.png"))
    assert len(files) == 30
    assert all(set(f.stem) <= set("xyz9") for f in files)
    assert len({len(f.stem) for f in files}) > 1
    assert Image.open(files[0]).size == (120, 40)


def test_same_seed_same_images(tmp_path):
    a = synth.generate(tmp_path / "a", 3, seed=9)
    b = synth.generate(tmp_path / "b", 3, seed=9)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def test_grey_option(tmp_path):
    synth.generate(tmp_path, 2, size=(72, 24), grey=True)
    assert Image.open(next(tmp_path.glob("*.png"))).mode == "L"
