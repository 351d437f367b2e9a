"""tools/build_pretrained.py on a handful of pictures: it builds a checkpoint that training can start from."""

import importlib.util
import json
from pathlib import Path

import captcha
import pytest

from captcha_nb import PROJECT_ROOT

pytestmark = pytest.mark.slow  # notebooks, sweeps, benchmarks or training run end to end


def test_the_pretrained_builder_writes_a_checkpoint_training_can_start_from(tmp_path):
    spec = importlib.util.spec_from_file_location("build", PROJECT_ROOT / "tools" / "build_pretrained.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    font = str(Path(captcha.__file__).parent / "data" / "DroidSansMono.ttf")  # a font every machine with captcha has
    target = build.main(["--images", "40", "--minutes", "0.05", "--fonts", font, "--work", str(tmp_path / "work"),
                         "--target", str(tmp_path / "out" / "synthetic.pt")])

    from captcha_nb.core.warmstart import read_pretrained

    pretrained = read_pretrained("crnn", target)
    assert pretrained is not None and pretrained.spec.height == 32 and len(pretrained.alphabet.chars) > 20
    described = json.loads(target.with_suffix(".json").read_text())
    assert described["fonts"] == ["DroidSansMono.ttf"] and described["epochs"] >= 1
