"""How right a label benchmark's pseudo-labels were, against the labels the benchmark hid (development data only: the
recipe never reads them). The rest of a `_train` folder is matched by the benchmark's own draw; an `_unlabelled`
picture by the text its source path carries in `sources.csv`.

For the model's own pseudo-labels (source `self`) it also splits them by whether ddddocr, restricted to the run's
alphabet, read the same text (the rule `SECOND_OPINION` in core/pseudo.py); ddddocr's readings come from its cache, so
this costs nothing after a teacher run.

    python benchmarks/pseudo_precision.py reports/benchmarks/labels-2026-12-01-pool
"""
import csv
import glob
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hidden_rest import hidden_rest  # noqa: E402
from styles import find_styles  # noqa: E402


def precision(rows: list[tuple[str, str]]) -> str:
    right = sum(reading == truth for reading, truth in rows)
    return f"{right}/{len(rows)} = {right / max(len(rows), 1):.3f}"


def teacher_texts(run_dir: Path, originals: list[Path]) -> list[str | None] | None:
    try:
        from captcha_nb.core.ctc import Alphabet
        from captcha_nb.core.teacher import DdddocrTeacher
    except ImportError:
        return None
    alphabet = Alphabet(json.loads((run_dir / "metrics.json").read_text())["alphabet"])
    return [r.text if r else None for r in DdddocrTeacher(alphabet).read(originals)]


styles = find_styles([Path("../shared/data"), Path("../shared/data/styles")])
src = {}
for line in csv.DictReader(open("../shared/data/styles/sources.csv", encoding="utf-8")):
    src[(line["style"], line["split"], line["filename"])] = line
for run in sorted(glob.glob(sys.argv[1] + "/runs/*/pseudo_labels.csv")):
    name = Path(run).parent.name
    style, n, seed, arm = name.rsplit("-", 3)
    count, seed = int(n[1:]), int(seed[4:])
    rest = hidden_rest(style, count, seed, styles)
    every, own, originals = [], [], []
    for row in csv.DictReader(open(run)):
        path = Path(row["picture"])
        if path.parent.name.endswith("_unlabelled"):
            original, s = path, src.get((style, "unlabelled", path.name))
            truth = re.split(r"[-_.]", Path(s["path"]).name)[0].lower() if s else None
        else:
            original, truth = rest[int(path.stem)]
        if truth is None:
            continue
        every.append((row["reading"], truth))
        if row["source"] == "self":
            own.append((row["reading"], truth))
            originals.append(original)
    line = f"{name}: all {precision(every)}"
    texts = teacher_texts(Path(run).parent, originals) if own else None
    if texts is not None:
        agreed = [pair for pair, text in zip(own, texts) if text == pair[0]]
        not_agreed = [pair for pair, text in zip(own, texts) if text != pair[0]]
        line += f"; own {precision(own)}, ddddocr agrees {precision(agreed)}, does not {precision(not_agreed)}"
    print(line)
