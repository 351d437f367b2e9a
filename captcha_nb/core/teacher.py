"""A teacher: an existing reader whose readings of the unlabelled pictures start a run (`train --teacher`).

Two kinds: ddddocr, the field's most-used pretrained reader (an optional extra: `pip install captcha_nb[teacher]`),
and a run of ours (`--teacher runs/old`). Either reads a picture to (text, confidence) restricted to the run's
alphabet: ddddocr's per-frame probabilities over its 8,210 symbols are cut down to blank and the alphabet's
characters (both cases of a letter merged when the alphabet has only one) before the best path is taken, which its own
`set_ranges` does not do (it drops characters after the argmax, so a frame that wanted 'O' emits nothing instead of
'0'). ddddocr reads about 40 pictures a second here, so its readings are kept in a cache keyed by the picture's bytes
and the alphabet: a pool is paid for once.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from captcha_nb.core.ctc import Alphabet, Decoding, greedy_decode
from captcha_nb.core.evaluation import Reading

DDDDOCR = "ddddocr"
# Where teachers' readings are kept between runs; $CAPTCHA_NB_CACHE moves it.
CACHE_DIR = Path(os.environ.get("CAPTCHA_NB_CACHE", Path.home() / ".cache" / "captcha_nb"))


def restricted_reading(probs: np.ndarray, columns: list[list[int]]) -> Decoding:
    """The best path of (T, C) probabilities after keeping only blank (column 0) and the alphabet's columns.

    `columns[k]` lists the source columns that character k of the alphabet collects (its upper and lower case when
    the alphabet does not tell them apart); the kept mass is renormalised frame by frame."""
    kept = np.stack([probs[:, 0]] + [probs[:, c].sum(axis=1) for c in columns], axis=1)
    kept = kept / np.clip(kept.sum(axis=1, keepdims=True), 1e-12, None)
    return greedy_decode(torch.from_numpy(kept[None].astype(np.float32)))[0]


class DdddocrTeacher:
    name = DDDDOCR

    def __init__(self, alphabet: Alphabet, cache_dir: Path = CACHE_DIR):
        try:
            import ddddocr
        except ImportError:
            raise ValueError("teacher='ddddocr' needs the ddddocr package: pip install 'captcha_nb[teacher]'") from None
        self.alphabet = alphabet
        self.ocr = ddddocr.DdddOcr(show_ad=False, beta=True)
        version = getattr(ddddocr, "__version__", "1")
        key = hashlib.sha256(alphabet.chars.encode()).hexdigest()[:12]
        self.cache_path = cache_dir / f"ddddocr-{version}-{key}.jsonl"
        self.columns: list[list[int]] | None = None

    def _columns(self, charset: Sequence[str]) -> list[list[int]]:
        where = {symbol: i for i, symbol in enumerate(charset)}
        columns = []
        for char in self.alphabet.chars:
            cases = {char} if char.upper() in self.alphabet.chars and char.lower() in self.alphabet.chars and \
                char.upper() != char.lower() else {char, char.upper(), char.lower()}
            columns.append(sorted(where[c] for c in cases if c in where))
        return columns

    def read_one(self, path: Path) -> Reading:
        result = self.ocr.classification(path.read_bytes(), probability=True)
        if self.columns is None:
            self.columns = self._columns(result["charset"])
        probs = np.asarray(result["probabilities"], dtype=np.float32).reshape(-1, len(result["charset"]))
        decoding = restricted_reading(probs, self.columns)
        return Reading(self.alphabet.decode(decoding.classes), decoding.confidence)

    def read(self, paths: Sequence[Path], progress: bool = False) -> list[Reading | None]:
        """Each picture's reading (None for one that ddddocr cannot read, named in a warning), from the cache when
        the same bytes were read before; new readings are appended to the cache as they are made."""
        cached = {}
        if self.cache_path.is_file():
            for line in self.cache_path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    cached[entry["sha256"]] = Reading(entry["text"], entry["confidence"])
                except (ValueError, KeyError):
                    continue  # a line cut short by a killed run; it is read again
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        readings: list[Reading | None] = []
        with open(self.cache_path, "a", encoding="utf-8") as cache:
            for path in tqdm(paths, desc="ddddocr reading", unit="img", disable=not progress, leave=False):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if digest not in cached:
                    try:
                        cached[digest] = self.read_one(path)
                    except Exception as error:  # ddddocr raises its own types for a picture it cannot read
                        warnings.warn(f"{path}: the teacher cannot read it ({error}); skipped")
                        readings.append(None)
                        continue
                    cache.write(json.dumps({"sha256": digest, **cached[digest].__dict__}, ensure_ascii=False) + "\n")
                readings.append(cached[digest])
        return readings


class RunTeacher:
    """A trained run of ours (a run folder or its model.pt) reading at its own input size."""

    def __init__(self, path: str | os.PathLike, alphabet: Alphabet, device: torch.device):
        from captcha_nb.core.checkpoint import (
            build_saved_model,
            read_checkpoint,
            saved_input,
        )
        from captcha_nb.core.rundir import checkpoint_of

        checkpoint = checkpoint_of(path)
        payload = read_checkpoint(checkpoint)
        self.name = str(checkpoint)
        self.model = build_saved_model(payload, checkpoint).to(device)
        self.spec = saved_input(payload)
        self.temperature = payload.get("temperature", 1.0)
        own = Alphabet(payload["alphabet"])
        # Its classes that the run's alphabet keeps; a character it cannot emit is simply never read.
        self.columns = [[own.chars.index(c) + 1] if c in own.chars else [] for c in alphabet.chars]
        self.alphabet = alphabet

    def read(self, paths: Sequence[Path], progress: bool = False) -> list[Reading | None]:
        from captcha_nb.core.model import batched_logits
        from captcha_nb.sources.data import decode_inputs

        images, failed = decode_inputs(paths, self.spec, progress=progress)
        probs = (batched_logits(self.model, images) / self.temperature).softmax(-1).numpy()
        readings = []
        for row, frames in enumerate(probs):
            if row in failed:
                readings.append(None)
                continue
            padded = np.concatenate([frames, np.zeros((len(frames), 1), np.float32)], axis=1)
            columns = [c if c else [padded.shape[1] - 1] for c in self.columns]  # the zero column: never read
            decoding = restricted_reading(padded, columns)
            readings.append(Reading(self.alphabet.decode(decoding.classes), decoding.confidence))
        return readings


def open_teacher(name: str, alphabet: Alphabet, device: torch.device):
    return DdddocrTeacher(alphabet) if name == DDDDOCR else RunTeacher(name, alphabet, device)
