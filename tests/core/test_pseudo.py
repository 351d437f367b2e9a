"""The pool and its pseudo-labels: the threshold rule, adoption across rounds, and a run that learns from a pool."""

import csv
import hashlib
import json
import shutil
from pathlib import Path

import torch

from captcha_nb.core import pseudo
from captcha_nb.core.config import TrainConfig
from captcha_nb.core.ctc import Alphabet
from captcha_nb.core.engine import fit
from captcha_nb.core.pseudo import Pool, confidence_threshold
from captcha_nb.core.teacher import Reading
from captcha_nb.sources.data import CaptchaSet


def test_the_threshold_is_the_lowest_confidence_that_stays_precise():
    confidences = [1 - i / 100 for i in range(40)]  # 1.00 down to 0.61
    correct = [True] * 30 + [False] * 10  # the ten least confident readings are wrong
    threshold, how = confidence_threshold(confidences, correct)
    # 30 right of 30 down to 0.71; one more wrong reading still leaves 30 of 31 = 96.8 % < 97 %.
    assert threshold == confidences[29] and "right above it" in how


def test_too_few_readings_fall_back_and_a_hopeless_reader_keeps_nothing():
    assert confidence_threshold([0.99] * 5, [True] * 5)[0] == pseudo.FALLBACK_THRESHOLD
    threshold, how = confidence_threshold([0.99] * 40, [False] * 40)
    assert threshold == 1.0 and "nothing kept" in how
    # Never below MIN_THRESHOLD, however precise the validation readings are.
    assert confidence_threshold([0.1] * 40, [True] * 40)[0] == pseudo.MIN_THRESHOLD


def pool_of(n: int) -> Pool:
    pictures = CaptchaSet([f"{i}.png" for i in range(n)], [""] * n, [(10, 10)] * n)
    return Pool(pictures, torch.zeros(n, 1, 8, 8, dtype=torch.uint8))


def test_a_later_round_replaces_confident_labels_and_keeps_the_others():
    pool = pool_of(3)
    assert pool.adopt([Reading("ab", 0.95), Reading("cd", 0.99), None], 0.9, 0, "teacher") == 2
    pool.adopt([Reading("ax", 0.5), Reading("ce", 0.999), Reading("ef", 0.97)], 0.9, 1, "self")
    assert {row: (label.text, label.round) for row, label in pool.labels.items()} == {
        0: ("ab", 0), 1: ("ce", 1), 2: ("ef", 1)}


def test_with_a_teacher_a_round_keeps_only_the_readings_it_agrees_with(monkeypatch):
    pool = pool_of(4)
    pool.teacher_texts = ["ab", "cd", None, "ef"]
    readings = [Reading("ab", 0.99), Reading("cx", 0.99), Reading("gh", 0.99), None]
    agreed, overruled = pool.second_opinion(readings)
    assert [r.text if r else None for r in agreed] == ["ab", None, None, None] and overruled == 2
    assert pool.adopt(agreed, 0.9, 1, "self") == 1 and set(pool.labels) == {0}
    monkeypatch.setattr(pseudo, "SECOND_OPINION", False)
    assert pool.second_opinion(readings) == (readings, 0)
    assert pool_of(2).second_opinion(readings[:2]) == (readings[:2], 0)  # no teacher: nothing to agree with


def test_a_second_opinion_ignores_the_places_where_the_teacher_is_doubtful():
    pool = pool_of(3)
    pool.teacher_texts, pool.teacher_doubts = ["o1", "o1", "o1"], frozenset("o")
    agreed, overruled = pool.second_opinion([Reading("01", 0.99), Reading("02", 0.99), Reading("0", 0.99)])
    assert [r.text if r else None for r in agreed] == ["01", None, None] and overruled == 2


def test_an_epoch_takes_a_bounded_share_of_a_large_pool():
    pool = pool_of(3000)
    pool.adopt([Reading("a", 1.0)] * 3000, 0.9, 0, "self")
    rows = pool.epoch_rows(100, torch.Generator().manual_seed(0))
    assert len(rows) == max(pseudo.POOL_ROWS_MIN, 100 * pseudo.POOL_SHARE) and len(set(rows)) == len(rows)
    assert len(pool.epoch_rows(2000, torch.Generator().manual_seed(0))) == 3000


def half_labelled(tmp_path, tiny_dir, labelled: int):
    """The tiny captchas under neutral names with a labels.csv naming only the first `labelled`: a folder the
    labelling app left half done."""
    folder = tmp_path / "half"
    folder.mkdir()
    rows = []
    for i, picture in enumerate(sorted(tiny_dir.glob("*.png"))):
        shutil.copy(picture, folder / f"{i:03d}.png")
        if i < labelled:
            rows.append([f"{i:03d}.png", picture.stem])
    with open(folder / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["filename", "label"], *rows])
    return folder


class KnowsTheAnswers:
    """A stand-in teacher that reads every picture right at 0.99, from the truths it was handed."""

    name = "oracle"

    def __init__(self, truths: dict):
        self.truths = truths

    def read(self, paths, progress=False):
        return [Reading(self.truths[p.name], 0.99) if p.name in self.truths else None for p in paths]


def test_a_run_learns_from_its_pool_and_never_touches_the_labels(tmp_path, tiny_dir, monkeypatch):
    from captcha_nb.core import prepare

    folder = half_labelled(tmp_path, tiny_dir, 30)
    extra = tmp_path / "extra"
    extra.mkdir()
    first = sorted(tiny_dir.glob("*.png"))[0]
    shutil.copy(first, extra / "x.png")
    (extra / "broken.png").write_bytes(b"not a picture")
    truths = {f"{i:03d}.png": p.stem for i, p in enumerate(sorted(tiny_dir.glob("*.png")))} | {"x.png": first.stem}
    monkeypatch.setattr(prepare, "open_teacher", lambda name, alphabet, device: KnowsTheAnswers(truths))
    before = hashlib.sha256((folder / "labels.csv").read_bytes()).hexdigest()
    config = TrainConfig(data_dir=str(folder), run_dir=str(tmp_path / "run"), unlabelled=[str(extra)],
                         teacher="ddddocr", epochs=2, batch_size=8, progress=False, val_fraction=0.25,
                         test_fraction=0.0, max_minutes=5)
    metrics = fit(config).metrics
    pool = metrics["pool"]
    assert pool["pictures"] == 10 + 1  # the 10 unnamed pictures and x.png; broken.png was skipped with a warning
    assert metrics["teacher"] == "oracle" and metrics["teacher_scored_on"] == metrics["n_train"] == 22
    assert metrics["teacher_accuracy_on_labels"] == 1.0 and metrics["teacher_threshold"] == 0.99
    first = {key: pool["rounds"][0][key] for key in ("round", "source", "at_seconds", "threshold", "read", "kept",
                                                      "in_use")}
    assert first == {"round": 0, "source": "oracle", "at_seconds": 0.0, "threshold": 0.99, "read": 11, "kept": 11,
                     "in_use": 11}
    assert pool["rounds"][0]["val_seq_accuracy_until_next"] is not None  # how validation went after the round
    assert hashlib.sha256((folder / "labels.csv").read_bytes()).hexdigest() == before  # the user's labels, untouched
    with open(tmp_path / "run" / "pseudo_labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == pseudo.PSEUDO_COLUMNS and len(rows) == 11
    assert all(row["reading"] == truths[Path(row["picture"]).name] and row["source"] == "oracle" for row in rows)
    history = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert [int(row["pseudo_labels"]) for row in history] == [11, 11]

    # Resumed, the run carries on with the pseudo-labels it had (last.pt holds them, loaded with weights_only).
    resumed = fit(TrainConfig(**{**config.to_dict(), "epochs": 3, "resume": True})).metrics
    assert resumed["epochs_run"] == 3 and resumed["pool"]["in_use"] == 11 and resumed["start"] == "resume"


def test_a_round_counts_what_it_changed_and_the_patience_rule_reads_it(monkeypatch):
    from types import SimpleNamespace

    pool = pool_of(3)
    pool.adopt([Reading("ab", 0.99), None, None], 0.9, 0, "teacher")
    validation = SimpleNamespace(predictions=["ab"] * 5, truths=["ab"] * 5, confidences=[0.99] * 5, seq_accuracy=1.0)

    def round_reading(*texts):
        monkeypatch.setattr(pseudo, "read", lambda net, x, alphabet: [Reading(t, 0.99) if t else None for t in texts])
        return pseudo.self_training_round(pool, None, validation, Alphabet("abcd"), 10.0)

    monkeypatch.setattr(pseudo, "RENEWED_DATA_RESTARTS_PATIENCE", True)
    same = round_reading("ab", None, None)  # the teacher's label read again: nothing new to learn
    assert same["kept"] == 1 and same["changed"] == 0 and not pseudo.restarts_patience(same)
    renewed = round_reading("ab", "cd", None)  # one more picture joins training
    assert renewed["changed"] == 1 and pseudo.restarts_patience(renewed)
    monkeypatch.setattr(pseudo, "RENEWED_DATA_RESTARTS_PATIENCE", False)
    assert not pseudo.restarts_patience(renewed)


def test_a_pseudo_label_of_a_length_no_label_has_is_not_taken():
    pool = pool_of(3)
    pool.lengths = frozenset({2})
    assert pool.adopt([Reading("ab", 0.99), Reading("abc", 0.99), Reading("a", 0.99)], 0.9, 0, "teacher") == 1
    pool.lengths = None  # no human label: any length
    assert pool.adopt([Reading("abc", 0.99)], 0.9, 1, "self") == 1


def test_a_teacher_that_writes_3_for_2_is_not_taken_where_it_writes_3(tmp_path, tiny_dir, monkeypatch):
    from captcha_nb.core import prepare

    folder = half_labelled(tmp_path, tiny_dir, 30)
    truths = {f"{i:03d}.png": p.stem.replace("2", "3") for i, p in enumerate(sorted(tiny_dir.glob("*.png")))}
    monkeypatch.setattr(prepare, "open_teacher", lambda name, alphabet, device: KnowsTheAnswers(truths))
    trusted = prepare.trust_teacher  # scored as it is, but trusted above 0.9 so that round 0 can take readings
    monkeypatch.setattr(prepare, "trust_teacher", lambda reader, train, lengths: {**trusted(reader, train, lengths),
                                                                                  "teacher_threshold": 0.9})
    config = TrainConfig(data_dir=str(folder), run_dir=str(tmp_path / "run"), teacher="ddddocr", epochs=1,
                         batch_size=8, progress=False, val_fraction=0.25, test_fraction=0.0, max_minutes=5)
    metrics = fit(config).metrics
    assert list(metrics["teacher_doubtful"]) == ["3"]
    pool_texts = [truths[f"{i:03d}.png"] for i in range(30, 40)]
    with_3 = sum("3" in text for text in pool_texts)
    assert 0 < with_3 < 10  # the synthetic draw holds both kinds, so the count below means something
    first = metrics["pool"]["rounds"][0]
    assert first["doubtful_skipped"] == with_3 and first["kept"] == 10 - with_3


def test_a_run_of_ours_teaches_within_the_runs_alphabet(trained_run, tiny_dir):
    from captcha_nb.core.teacher import RunTeacher

    teacher = RunTeacher(trained_run.run_dir, Alphabet("abc"), torch.device("cpu"))  # "d", "2" and "3" are left out
    readings = teacher.read(sorted(tiny_dir.glob("*.png"))[:5])
    assert len(readings) == 5 and all(set(r.text) <= set("abc") and 0 <= r.confidence <= 1 for r in readings)


def test_with_no_label_the_teacher_labels_the_data_and_the_run_says_so(tmp_path, neutral_copies, trained_run,
                                                                      monkeypatch):
    from captcha_nb.core import prepare

    folder = neutral_copies(40)  # no labels.csv, neutral names: nothing says what they read
    monkeypatch.setattr(prepare, "TEACHER_BLIND_THRESHOLD", 0.0)
    config = TrainConfig(data_dir=str(folder), run_dir=str(tmp_path / "run"), teacher=str(trained_run.run_dir),
                         alphabet="abcd23", epochs=1, batch_size=8, progress=False, val_fraction=0.25, max_minutes=5)
    metrics = fit(config).metrics
    assert metrics["labels_from"] == "teacher" and metrics["headline"] == "agreement with the teacher"
    assert metrics["n_test"] == 0 and metrics["n_train"] + metrics["n_val"] <= 40
    assert set(metrics["alphabet"]) >= set("abcd23")
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert not (folder / "labels.csv").exists() and split["test"] == []
    # The teacher's readings that became the labels are pseudo-labels too: pseudo_labels.csv lists every one, and
    # the views judge the run against them, not against the neutral file names.
    with open(tmp_path / "run" / "pseudo_labels.csv", newline="", encoding="utf-8") as f:
        written = {Path(row["picture"]).name: row for row in csv.DictReader(f)}
    assert set(split["train"]) | set(split["val"]) <= set(written)
    assert all(written[name]["source"] in (metrics["teacher"], "self") for name in split["train"] + split["val"])
    from captcha_nb.views.workspace import held_out

    _, val_set, _ = held_out(tmp_path / "run")
    assert val_set.labels == [written[name]["reading"] for name in val_set.names]
    assert all(label != Path(name).stem for label, name in zip(val_set.labels, val_set.names))
    # Pointed at a copy of the folder (moved, or on another machine), the views still find the readings.
    copy = shutil.copytree(folder, tmp_path / "copy")
    _, copied, _ = held_out(tmp_path / "run", data_dir=str(copy))
    assert copied.labels == val_set.labels and all(Path(p).parent.resolve() == copy.resolve() for p in copied.paths)


def test_a_resumed_run_keeps_the_students_revisions_of_the_teachers_labels():
    pool = pool_of(1)
    folder = CaptchaSet(["a.png", "b.png"], ["ab", "cd"], [(10, 10)] * 2)
    pool.folder_labels = {"a.png": pseudo.PseudoLabel("ab", 0.95, 0, "teacher")}
    pool.folder_labels["b.png"] = pseudo.PseudoLabel("ce", 0.99, 1, "self")  # the student's revision of "cd"
    resumed = pool_of(1)
    resumed.load_state(pool.state(), folder)
    assert folder.labels == ["ab", "ce"] and resumed.folder_labels == pool.folder_labels


def test_a_confidence_level_is_judged_on_all_the_readings_at_it():
    # 30 right and 10 wrong readings, all at 0.99: the order they come in must not decide it.
    for correct in ([True] * 30 + [False] * 10, [False] * 10 + [True] * 30):
        assert confidence_threshold([0.99] * 40, correct)[0] == 1.0
