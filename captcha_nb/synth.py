"""Synthetic captchas from the `captcha` package, for tests and for machines without the real data set.

Images are written as `<label>.png`, the same layout as captcha_images_v2, so everything else treats them alike.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import captcha.image
from captcha.image import ImageCaptcha

# The real data set's alphabet, so that synthetic runs exercise the same classes.
DEFAULT_ALPHABET = "2345678bcdefgmnpwxy"


class _SeededSecrets:
    """Stands in for the `secrets` module that captcha >= 0.7 draws with, so that a seed fixes the pictures."""

    def __init__(self, seed: int):
        self._rng = random.Random(seed)

    def randbelow(self, n: int) -> int:
        return self._rng.randrange(n)

    def randbits(self, k: int) -> int:
        return self._rng.getrandbits(k)

    def choice(self, seq):
        return self._rng.choice(seq)


@contextlib.contextmanager
def seeded_captcha(seed: int):
    """Make the captcha package's drawing repeatable: older versions use `random`, newer ones `secrets`."""
    random.seed(seed)
    original = getattr(captcha.image, "secrets", None)
    if original is not None:
        captcha.image.secrets = _SeededSecrets(seed)
    try:
        yield
    finally:
        if original is not None:
            captcha.image.secrets = original


def random_label(rng: random.Random, alphabet: str, length: tuple[int, int]) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(*length)))


def generate(
    out_dir: str | Path,
    n: int,
    alphabet: str = DEFAULT_ALPHABET,
    length: int | tuple[int, int] = (4, 6),
    size: tuple[int, int] = (200, 50),
    seed: int = 0,
    grey: bool = False,
) -> Path:
    """Write n labelled captchas of size (width, height) into out_dir; labels are unique and of the given length range."""
    if n < 1:
        raise ValueError(f"n={n} must be positive")
    lengths = (length, length) if isinstance(length, int) else tuple(length)
    possible = sum(len(alphabet) ** k for k in range(lengths[0], lengths[1] + 1))
    if n > possible:
        raise ValueError(f"n={n} is more than the {possible} distinct labels of that alphabet and length")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    width, height = size
    font_size = max(12, int(height * 0.8))
    generator = ImageCaptcha(width=width, height=height, font_sizes=(font_size, font_size + 2))
    seen: set[str] = set()
    with seeded_captcha(seed):
        for _ in range(n):
            label = random_label(rng, alphabet, lengths)
            while label in seen:
                label = random_label(rng, alphabet, lengths)
            seen.add(label)
            image = generator.generate_image(label)
            if grey:
                image = image.convert("L")
            image.save(out_dir / f"{label}.png")
    return out_dir
