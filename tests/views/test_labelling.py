
import pytest

from captcha_nb.sources.labelstore import LabelStore
from captcha_nb.views.labelling import UNDO_KEY, Labeller


@pytest.fixture
def folder(neutral_copies):
    return neutral_copies(8)


def test_typing_and_enter_save_skip_and_undo(folder):
    labeller = Labeller(folder)
    first = labeller.current
    labeller.submit("ab12")
    assert LabelStore.open(folder).labels == {first.name: "ab12"} and "1 of 8 labelled" in labeller.counter.value
    second = labeller.current
    labeller.submit("")  # an empty Enter skips
    assert labeller.current != second and second.name not in LabelStore.open(folder).labels
    labeller.submit(UNDO_KEY)
    assert LabelStore.open(folder).labels == {} and labeller.current == first


class ReadsByName:
    """A stand-in model whose reading and confidence of each picture are fixed, so the ranking can be checked."""

    def __init__(self, confidences):
        from captcha_nb.core.ctc import Alphabet

        self.alphabet = Alphabet("abcd23")
        self.confidences = confidences

    def predict_images(self, images):
        from captcha_nb.serving.inference import Prediction

        return [Prediction("ab" + "cd23"[i % 4], c, [c], [0]) for i, c in enumerate(self.confidences[: len(images)])]


def test_a_run_prefills_readings_least_confident_first_and_accepts_confident_ones(folder):
    labeller = Labeller(folder, ReadsByName([0.5, 0.95, 0.2, 0.99, 0.7, 0.91, 0.1, 0.3]))
    assert [p.name for p in labeller.queue][:3] == ["006.png", "002.png", "007.png"]
    assert labeller.text.value == labeller.readings["006.png"][0]  # pre-filled
    labeller.submit(labeller.text.value)  # Enter on the pre-filled reading accepts it
    assert LabelStore.open(folder).labels == {"006.png": labeller.readings["006.png"][0]}
    assert [p.name for p in labeller.confident()] == ["003.png", "001.png", "005.png"]
    assert labeller.accept_confident() == 3
    saved = LabelStore.open(folder).labels
    assert all(saved[name] == labeller.readings[name][0] for name in ("003.png", "001.png", "005.png"))
    assert len(saved) == 4 and "no reading above" in labeller.grid.value


def test_the_real_model_ranks_every_picture(folder, recogniser):
    labeller = Labeller(folder, recogniser)
    confidences = [labeller.readings[p.name][1] for p in labeller.queue]
    assert len(confidences) == 8 and confidences == sorted(confidences)


def test_a_character_outside_the_runs_alphabet_is_saved_with_a_note(folder):
    labeller = Labeller(folder, ReadsByName([0.5] * 8))
    labeller.submit("zz")
    assert "zz" in LabelStore.open(folder).labels.values() and "not in the run's alphabet" in labeller.note.value


def test_with_no_run_ddddocr_prefills_the_first_labels(folder, tmp_path, monkeypatch):
    pytest.importorskip("ddddocr")
    from captcha_nb.core import teacher
    from captcha_nb.views.app import labelling_teacher

    monkeypatch.setattr(teacher, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(ValueError, match="--alphabet"):
        labelling_teacher("ddddocr", "")
    reader = teacher.DdddocrTeacher(teacher.Alphabet("abcd23"), cache_dir=tmp_path / "cache")
    labeller = Labeller(folder, teacher=reader)
    confidences = [labeller.readings[p.name][1] for p in labeller.queue]
    assert len(confidences) == 8 and confidences == sorted(confidences)
    assert labeller.text.value == labeller.readings[labeller.current.name][0]  # pre-filled with the teacher's reading
    assert LabelStore.open(folder).labels == {}  # nothing is saved until a person says so


def test_when_everything_is_done_the_box_is_disabled(folder):
    labeller = Labeller(folder)
    for _ in range(8):
        labeller.submit("a")
    assert labeller.current is None and labeller.text.disabled and "All pictures" in labeller.note.value


def test_the_least_confident_pseudo_labels_are_the_ones_to_label_next(tmp_path):
    from captcha_nb.views.labelling import doubtful_pseudo_labels

    run = tmp_path / "run"
    run.mkdir()
    (run / "pseudo_labels.csv").write_text("picture,reading,confidence,round,source\n"
                                          "/x/a.png,0012,0.99,1,self\n/x/b.png,ab,0.61,0,ddddocr\n/x/c.png,cd,0.93,2,self\n")
    table = doubtful_pseudo_labels(run, n=2)
    assert table["picture"].tolist() == ["b.png", "c.png"] and table["reading"].tolist() == ["ab", "cd"]
    assert doubtful_pseudo_labels(None).empty and doubtful_pseudo_labels(tmp_path).empty
