"""Teachers: decoding restricted to the run's alphabet, ddddocr itself, and its cache keyed by the picture's bytes."""

import numpy as np
import pytest

from captcha_nb.core import teacher as teachers
from captcha_nb.core.ctc import Alphabet
from captcha_nb.core.teacher import DdddocrTeacher, restricted_reading


def test_restricted_decoding_takes_the_best_allowed_character_not_nothing():
    # Columns: blank, 'O', '0', 'x'. Frame 1 prefers 'O', which the alphabet lacks; restricted, '0' wins it.
    probs = np.array([[0.9, 0.05, 0.03, 0.02], [0.1, 0.6, 0.25, 0.05], [0.9, 0.05, 0.03, 0.02]], dtype=np.float32)
    decoding = restricted_reading(probs, [[2], [3]])  # the alphabet "0x"
    assert decoding.classes == [1]
    assert decoding.confidence == pytest.approx(0.25 / (0.1 + 0.25 + 0.05))


def test_ddddocr_reads_a_captcha_within_the_alphabet_and_caches_it(tmp_path, tiny_dir, monkeypatch):
    pytest.importorskip("ddddocr")
    alphabet = Alphabet("abcd23")
    teacher = DdddocrTeacher(alphabet, cache_dir=tmp_path)
    pictures = sorted(tiny_dir.glob("*.png"))[:3]
    first = teacher.read(pictures)
    assert all(set(r.text) <= set(alphabet.chars) and 0 <= r.confidence <= 1 for r in first)
    assert len(teacher.cache_path.read_text().splitlines()) == 3

    def no_second_reading(path):
        raise AssertionError(f"{path} was read again")

    again = DdddocrTeacher(alphabet, cache_dir=tmp_path)
    monkeypatch.setattr(again, "read_one", no_second_reading)
    assert again.read(pictures) == first


def test_a_picture_the_teacher_cannot_read_is_named_and_skipped(tmp_path, tiny_dir):
    pytest.importorskip("ddddocr")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    teacher = DdddocrTeacher(Alphabet("abcd23"), cache_dir=tmp_path / "cache")
    with pytest.warns(UserWarning, match="broken.png"):
        readings = teacher.read([broken, sorted(tiny_dir.glob("*.png"))[0]])
    assert readings[0] is None and readings[1] is not None


def test_ddddocr_missing_is_one_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_ddddocr(name, *args, **kwargs):
        if name == "ddddocr":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_ddddocr)
    with pytest.raises(ValueError, match="pip install"):
        teachers.DdddocrTeacher(Alphabet("ab"))
