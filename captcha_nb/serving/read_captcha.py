"""Read captchas with an exported captcha_nb bundle. Needs only onnxruntime, numpy and pillow.

    python read_captcha.py IMAGE [IMAGE ...]      # prints path,text,confidence as CSV

or from Python, with this folder on the path:

    from read_captcha import BundleReader
    reader = BundleReader("path/to/bundle")
    text, confidence = reader.read(PIL.Image.open("captcha.png"))

The bundle holds model.onnx, reader.json (alphabet, input rules, temperature, decoder) and captcha_geometry.py, the
very module that prepared the pictures in training, so a picture is cropped, sized and turned into ink exactly as the
model learnt it. This file is written by `python -m captcha_nb export --format bundle` and is not imported by
captcha_nb itself.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from captcha_geometry import InputSpec, to_input  # noqa: E402  (ships beside this file)

FORMAT = "captcha_nb.bundle/1"
MAX_IMAGE_PIXELS = 4_000_000  # as in training: a picture that declares more is refused from its header


def open_rgb(path) -> Image.Image:
    """A picture file as RGB, transparency flattened onto white, as captcha_nb opens it."""
    with Image.open(path) as image:
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise ValueError(f"{path}: {image.width}x{image.height} pixels is more than a captcha may have")
        image.load()
        if image.mode in ("RGBA", "LA", "P", "PA"):
            image = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
        return image.convert("RGB")


class BundleReader:
    def __init__(self, folder: str | Path = HERE):
        folder = Path(folder)
        self.config = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
        if self.config.get("format") != FORMAT:
            raise ValueError(f"{folder / 'reader.json'} is not a {FORMAT} file")
        self.alphabet = self.config["alphabet"]
        self.spec = InputSpec.from_dict(self.config["input"])
        self.temperature = float(self.config["temperature"])
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])

    def read_many(self, pictures: list[Image.Image]) -> list[tuple[str, float]]:
        if not pictures:
            return []
        pixels = np.stack([to_input(p.convert("RGB"), self.spec) for p in pictures]).astype(np.float32)
        logits = self.session.run(["logits"], {"images": pixels / 127.5 - 1.0})[0].astype(np.float64)
        return [self.greedy(sample / self.temperature) for sample in logits]

    def read(self, picture: Image.Image) -> tuple[str, float]:
        return self.read_many([picture])[0]

    def greedy(self, logits: np.ndarray) -> tuple[str, float]:
        """Best path: the likeliest class per frame, repeats merged, blanks (class 0) dropped. The confidence is the
        product over characters of each run's highest probability."""
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        best, peaks = probs.argmax(axis=-1), probs.max(axis=-1)
        text, confidences, previous = [], [], 0
        for c, p in zip(best.tolist(), peaks.tolist()):
            if c != 0 and c == previous:
                confidences[-1] = max(confidences[-1], p)
            elif c != 0:
                text.append(self.alphabet[c - 1])
                confidences.append(p)
            previous = c
        return "".join(text), float(np.prod(confidences)) if confidences else 0.0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    reader = BundleReader()
    writer = csv.writer(sys.stdout)
    writer.writerow(["path", "prediction", "confidence"])
    failed = 0
    for path in argv:
        try:
            text, confidence = reader.read(open_rgb(path))
        except Exception as error:  # one bad file is named and the rest are still read
            print(f"{path}: {error}", file=sys.stderr)
            writer.writerow([path, "", ""])
            failed += 1
            continue
        writer.writerow([path, text, f"{confidence:.6f}"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
