"""How right a label benchmark's pseudo-labels were, against the labels the benchmark hid (development data only: the
recipe never reads them). The rest of a `_train` folder is matched by the benchmark's own draw; an `_unlabelled`
picture by the text its source path carries in `sources.csv`.

    python benchmarks/pseudo_precision.py reports/benchmarks/labels-2026-12-01-pool
"""
import csv
import glob
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labels import pools  # noqa: E402
from styles import find_styles  # noqa: E402

from captcha_nb.sources.data import read_labels  # noqa: E402

styles = find_styles([Path("../shared/data"), Path("../shared/data/styles")])
src = {}
for line in csv.DictReader(open("../shared/data/styles/sources.csv", encoding="utf-8")):
    src[(line["style"], line["split"], line["filename"])] = line
for run in sorted(glob.glob(sys.argv[1] + "/runs/*/pseudo_labels.csv")):
    name = Path(run).parent.name
    style, n, seed, arm = name.rsplit("-", 3)
    count, seed = int(n[1:]), int(seed[4:])
    train, test = styles[style]
    pool, _ = pools(train, test, Path("/tmp/pp"), style) if test is None else (read_labels(train), test)
    drawn = random.Random(seed).sample(pool, count)
    taken = {p for p, _ in drawn}
    rest = [pair for pair in pool if pair[0] not in taken]
    right = total = 0
    for row in csv.DictReader(open(run)):
        path = Path(row["picture"])
        folder = path.parent.name
        if folder.endswith("_unlabelled"):
            key = (style, "unlabelled", path.name)
            truth = None
            s = src.get(key)
            if s:
                truth = re.split(r"[-_.]", Path(s["path"]).name)[0].lower()
        else:
            truth = rest[int(path.stem)][1]
        if truth is None:
            continue
        total += 1
        right += row["reading"] == truth
    print(name, f"{right}/{total} = {right/max(total,1):.3f}")
