"""How far ddddocr can be trusted as a teacher: its restricted reading of labelled pictures, right or wrong by
confidence, on the shared styles and on two synthetic styles it cannot read (Cyrillic, case-sensitive 8 characters),
with what the trust rule (`core/trust.py`) decides for each.

    python benchmarks/teacher_trust.py --data ../shared/data ../shared/data/styles     # about a minute per style

Readings are cached (core/teacher.py), so a second run costs seconds. Prints a table per style; writes nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from captcha_nb.core.ctc import Alphabet
from captcha_nb.core.pseudo import confidence_threshold, plausible
from captcha_nb.core.teacher import DdddocrTeacher
from captcha_nb.core.trust import (
    doubtful_characters,
    teacher_takes,
    teacher_threshold,
    trust_teacher,
)
from captcha_nb.sources.data import load_dataset
from captcha_nb.sources.synth import generate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from styles import chosen_styles  # noqa: E402

LEVELS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
FEW, DRAWS = 45, 3  # the training labels of a 50-label run, drawn three times
SIMULATED = 200  # draws of FEW labels for the threshold's spread
SYNTHETIC = {"cyrillic-5": ("абвгдежзиклмнопрстуфхцчшщыэюя", 5),
             "case-sensitive-8": ("abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", 8)}


def by_confidence(name: str, folder: Path, limit: int) -> None:
    data = load_dataset(folder)
    pictures = data.subset(data.names[:limit])
    teacher = DdddocrTeacher(Alphabet("".join(sorted(set("".join(data.labels))))))
    readings = teacher.read(pictures.paths)
    right = [r is not None and r.text == label for r, label in zip(readings, pictures.labels)]
    print(f"{name}: {len(right)} labelled pictures, {sum(right) / len(right):.1%} read right")
    for level in LEVELS:
        kept = [ok for ok, r in zip(right, readings) if r is not None and r.confidence >= level]
        print(f"  confidence >= {level:.2f}: {len(kept) / len(right):6.1%} kept, {sum(kept) / max(len(kept), 1):6.1%} right")
    # Of the confident readings, how many have the right length, and how right those are character by character.
    sure = [(r.text, label) for r, label in zip(readings, pictures.labels) if r is not None and r.confidence >= 0.9]
    fit = [(text, label) for text, label in sure if len(text) == len(label)]
    chars = sum(len(label) for _, label in fit)
    print(f"  confidence >= 0.90: {len(fit) / max(len(sure), 1):.1%} of the right length, those "
          f"{sum(a == b for text, label in fit for a, b in zip(text, label)) / max(chars, 1):.1%} right by character")
    print(f"  the trust rule: {trust_teacher(teacher, pictures, frozenset(map(len, pictures.labels)))}")
    # The doubtful characters on every labelled picture, and what a user with 45 training labels would find.
    print(f"  doubtful on all {len(right)}: {doubtful_characters(readings, pictures.labels)}")
    for draw in range(DRAWS):
        rows = random.Random(draw).sample(range(len(right)), min(FEW, len(right)))
        found = doubtful_characters([readings[i] for i in rows], [pictures.labels[i] for i in rows])
        print(f"  doubtful on {len(rows)} (draw {draw}): {found}")
    small_draws(readings, pictures.labels, right)


def small_draws(readings: list, labels: list[str], right: list[bool]) -> None:
    """What round 0 takes from the teacher when a user has FEW training labels: over many draws, the threshold the
    trust rule measures on the draw, and how many of the other pictures' readings it takes and how many of those are
    right (the other pictures stand for the pool; their labels are hidden from the rule). Three times: with the
    threshold as measured (pseudo.confidence_threshold), as the rule takes it (trust.teacher_threshold, with its
    floor), and with the floor and the labels' lengths (pseudo.plausible) as round 0 applies them."""
    if len(right) < 2 * FEW:
        return
    for rule, by_length in ((confidence_threshold, False), (teacher_threshold, False), (teacher_threshold, True)):
        print(f"  {rule.__name__}{' + lengths' if by_length else ''}:", end="")
        draws_of(rule, by_length, readings, labels, right)


def draws_of(rule, by_length: bool, readings: list, labels: list[str], right: list[bool]) -> None:
    outcomes = []
    for draw in range(SIMULATED):
        rows = set(random.Random(1000 + draw).sample(range(len(right)), FEW))
        lengths = frozenset(len(labels[i]) for i in rows) if by_length else None
        measured = [i for i in rows if readings[i] and plausible(readings[i].text, lengths)]
        threshold, _ = rule([readings[i].confidence for i in measured], [right[i] for i in measured])
        doubtful = frozenset(doubtful_characters([readings[i] for i in rows], [labels[i] for i in rows]))
        taken = [right[i] for i, r in enumerate(readings)
                 if i not in rows and teacher_takes(r, threshold, doubtful, lengths)]
        outcomes.append((len(taken) / (len(right) - FEW), sum(taken) / max(len(taken), 1) if taken else None))
    shares = sorted(share for share, _ in outcomes)
    precisions = sorted(p for _, p in outcomes if p is not None)
    print(f"  {SIMULATED} draws of {FEW} labels: the pool share taken in round 0 median {shares[len(shares) // 2]:.1%}"
          f" (nothing in {sum(p is None for _, p in outcomes)}); right among those taken: median "
          f"{precisions[len(precisions) // 2]:.1%}, worst {precisions[0]:.1%}, worst tenth "
          f"{precisions[len(precisions) // 10]:.1%}" if precisions else "  nothing taken in any draw")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=[], help="folders holding the styles (as benchmarks/styles.py)")
    parser.add_argument("--styles", nargs="*", help="only these styles")
    parser.add_argument("--limit", type=int, default=1000, help="labelled pictures read per style (default: 1000)")
    args = parser.parse_args(argv)
    if args.data:
        for name, (train, _) in chosen_styles([Path(d) for d in args.data], args.styles).items():
            by_confidence(name, train, args.limit)
    root = Path(tempfile.mkdtemp())
    for name, (alphabet, length) in SYNTHETIC.items():
        folder = generate(root / name, 100, alphabet=alphabet, length=(length, length), size=(200, 60), seed=3)
        by_confidence(f"synthetic {name}", folder, 100)


if __name__ == "__main__":
    main()
