"""How far a teacher is trusted: doubtful characters, the threshold labels measure and its floor, and the lengths
the labels have."""

from pathlib import Path

from captcha_nb.core.evaluation import Reading
from captcha_nb.core.trust import (
    TEACHER_BLIND_THRESHOLD,
    doubtful_characters,
    teacher_takes,
    teacher_threshold,
    trust_teacher,
)
from captcha_nb.sources.data import CaptchaSet


class Reads:
    """A stand-in teacher that reads each picture (by name) as it is told, at 0.99."""

    def __init__(self, texts: dict, confidence: float = 0.99):
        self.texts, self.confidence = texts, confidence

    def read(self, paths, progress=False):
        return [Reading(self.texts[p.name], self.confidence) for p in paths]


def pictures_labelled(label: str, n: int) -> CaptchaSet:
    return CaptchaSet([Path(f"{i}.png") for i in range(n)], [label] * n, [(10, 10)] * n)


def test_a_character_the_teacher_often_writes_wrongly_is_doubtful():
    truths = ["0a", "0b", "oa", "ob", "1a", "abc"]
    readings = [Reading("oa", 0.9), Reading("ob", 0.9), Reading("oa", 0.9), Reading("ob", 0.9), Reading("1a", 0.9),
                Reading("ab", 0.9)]  # 'o' right 2 of 4; a reading of another length counts nowhere
    assert doubtful_characters(readings, truths) == {"o": {"written": 4, "right": 2}}
    # One slip is not a pattern (DOUBT_MIN_WRONG).
    assert doubtful_characters(readings[1:], truths[1:]) == {}


def test_labels_raise_the_teachers_threshold_but_never_below_the_blind_one():
    pictures = pictures_labelled("ab", 30)
    every = {f"{i}.png": "ab" for i in range(30)}
    assert trust_teacher(Reads(every), pictures)["teacher_threshold"] == 0.99
    floored = trust_teacher(Reads(every, 0.6), pictures)  # right, but not sure of it
    assert floored["teacher_threshold"] == TEACHER_BLIND_THRESHOLD and "raised" in floored["teacher_rule"]


def test_a_few_labelled_readings_trust_the_teacher_only_if_it_read_them_right():
    assert teacher_threshold([0.95] * 5, [True] * 5)[0] == TEACHER_BLIND_THRESHOLD
    assert teacher_threshold([0.95] * 5, [True] * 4 + [False])[0] == 1.0
    assert teacher_threshold([0.5] * 5, [True] * 5)[0] == 1.0  # it made no reading it was sure of
    assert teacher_threshold([], [])[0] == 1.0  # no reading at the labels' lengths at all


def test_a_reading_of_a_length_no_label_has_is_neither_taken_nor_held_against_the_teacher():
    # 30 right readings and 10 with a character too many, all at 0.99: 75 % right, so untrusted, unless the labels'
    # length says the 10 are never taken.
    pictures = pictures_labelled("ab", 40)
    teacher = Reads({f"{i}.png": "abx" if i < 10 else "ab" for i in range(40)})
    assert trust_teacher(teacher, pictures)["teacher_threshold"] == 1.0
    assert trust_teacher(teacher, pictures, frozenset({2}))["teacher_threshold"] == 0.99
    assert teacher_takes(Reading("ab", 0.99), 0.99, frozenset(), frozenset({2}))
    assert not teacher_takes(Reading("abx", 0.99), 0.99, frozenset(), frozenset({2}))
    assert not teacher_takes(Reading("ob", 0.99), 0.99, frozenset("o"), frozenset({2}))  # a doubtful character
    assert not teacher_takes(Reading("ab", 0.99), 1.0, frozenset(), None)  # an untrusted teacher
