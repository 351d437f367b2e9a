"""How far a teacher is trusted: its readings are scored on the labelled training pictures, and round 0 takes only
those above the confidence where they are right often enough (never below a blind floor), at a length the labels
have, and without a character it is known to write wrongly. With no human label, only the blind floor holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from captcha_nb.core.pseudo import MIN_READINGS, confidence_threshold, plausible
from captcha_nb.sources.data import CaptchaSet

# With no human label to score the teacher on, its readings are taken above this confidence
# (reports/BENCHMARKS.md, "The unlabelled pool": ddddocr's confidence against its precision on labelled styles).
# Labels can raise the teacher's threshold but never lower it below this: on 200 draws of 45 kelab labels, the
# threshold they measured let through readings 87-92 % right in the worst tenth of draws, 95 % with this floor.
TEACHER_BLIND_THRESHOLD = 0.9
# A character the teacher writes is doubtful when, on the labelled pictures it read at the right length, it was wrong
# there at least DOUBT_MIN_WRONG times and right less than DOUBT_PRECISION of the time. ddddocr writes 'o' for kelab's
# '0' and 'l' for 'i' (on 1,000 kelab_train pictures its 'o' is right 66 % of the time, 53 of the wrong 56 zeros;
# its 'l' 82 %, 19 of the wrong 22 i's): agreeing with it there repeats its mistake. A teacher reading with a
# doubtful character is not taken, and a second opinion ignores those places. 45 labels find 'o' or 'l' in each of
# three draws (BENCHMARKS.md, "The unlabelled pool").
DOUBT_MIN_WRONG = 2
DOUBT_PRECISION = 0.9


def doubtful_characters(readings: Sequence, truths: Sequence[str]) -> dict[str, dict]:
    """The characters a reader writes in the wrong place too often to second anyone (DOUBT_MIN_WRONG,
    DOUBT_PRECISION), each with how often it was written and right; readings of another length say nothing."""
    written: dict[str, list[int]] = {}
    for reading, truth in zip(readings, truths):
        if reading is None or len(reading.text) != len(truth):
            continue
        for char, true_char in zip(reading.text, truth):
            counts = written.setdefault(char, [0, 0])
            counts[0] += 1
            counts[1] += char == true_char
    return {char: {"written": n, "right": right} for char, (n, right) in sorted(written.items())
            if n - right >= DOUBT_MIN_WRONG and right / n < DOUBT_PRECISION}


def teacher_threshold(confidences: list[float], correct: list[bool]) -> tuple[float, str]:
    """The confidence above which the teacher's readings are taken, measured on labelled ones: the run's own rule
    (pseudo.confidence_threshold), but never below TEACHER_BLIND_THRESHOLD. Too few readings to measure a level
    (under pseudo.MIN_READINGS) still say something: the teacher is trusted at the blind threshold only when it made
    readings there and every one was right (one that reads 0 of 100 Cyrillic captchas at their length is not)."""
    if len(confidences) < MIN_READINGS:
        above = [ok for confidence, ok in zip(confidences, correct) if confidence >= TEACHER_BLIND_THRESHOLD]
        if not above or not all(above):
            return 1.0, (f"{sum(above)} of the {len(above)} labelled readings at {TEACHER_BLIND_THRESHOLD} or more "
                         f"right: nothing kept")
        return TEACHER_BLIND_THRESHOLD, f"all {len(above)} labelled readings at {TEACHER_BLIND_THRESHOLD} or more right"
    threshold, how = confidence_threshold(confidences, correct)
    if threshold < TEACHER_BLIND_THRESHOLD:
        return TEACHER_BLIND_THRESHOLD, f"{how}, raised to the blind threshold"
    return threshold, how


def trust_teacher(reader, train: CaptchaSet, lengths: frozenset[int] | None = None) -> dict:
    """Score the teacher on the labelled training pictures and trust it as far as it reads them: its readings count
    above the confidence where they are right as often as the run's own must be (pseudo.confidence_threshold), and
    never below TEACHER_BLIND_THRESHOLD, except those with a character it writes wrongly too often
    (doubtful_characters) or of a length no label has (pseudo.plausible).

    The threshold is measured on every reading of a length the labels have, doubtful or not: measured on the fewer
    readings without a doubtful character, 45 labels left too few to reach PRECISION_TARGET and nothing was taken
    (kelab, 50 labels, seed 0)."""
    scored = reader.read(train.paths)
    correct = [r is not None and r.text == label for r, label in zip(scored, train.labels)]
    # A reading of a length no label has is never taken, so the threshold is measured without it.
    measured = [(r.confidence, ok) for r, ok in zip(scored, correct) if r and plausible(r.text, lengths)]
    threshold, how = teacher_threshold([c for c, _ in measured], [ok for _, ok in measured])
    return {"teacher_accuracy_on_labels": round(sum(correct) / max(len(correct), 1), 4),
            "teacher_scored_on": len(correct), "teacher_threshold": round(threshold, 4), "teacher_rule": how,
            "teacher_doubtful": doubtful_characters(scored, train.labels)}


def teacher_takes(reading, threshold: float, doubtful: frozenset[str], lengths: frozenset[int] | None) -> bool:
    """Whether round 0 takes a teacher's reading: confident enough (the trust rule's threshold, 1.0 when it is not
    trusted), at a length the labels have, and with no character it often writes wrongly (doubtful_characters)."""
    return (reading is not None and bool(reading.text) and threshold < 1.0 and reading.confidence >= threshold
            and plausible(reading.text, lengths) and not doubtful & set(reading.text))
