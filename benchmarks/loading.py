"""Data loading at scale: time and peak memory to list and decode 1k, 10k and 100k synthetic 200x80 captchas.

    python benchmarks/loading.py                     # 1k, 10k, 100k; about five minutes on 2 cores
    python benchmarks/loading.py --sizes 1000 5000

10,000 distinct captchas are generated once; the larger sets repeat them under other file names (hard links, listed in
a labels.csv), which costs the loader exactly what distinct files would: every file is opened and decoded. Each size
is measured in a fresh process, so its peak resident memory is its own. Prints a markdown table; --publish puts it in
reports/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from captcha_nb import REPORTS_DIR
from captcha_nb.sources.synth import generate
from captcha_nb.workflows.runs import replace_section

BENCHMARKS_MD = REPORTS_DIR / "BENCHMARKS.md"
HEADING = "## Loading data at scale"
DISTINCT = 10_000

MEASURE = """
import json, sys, time
from captcha_nb.sources.data import load_dataset
from captcha_nb.core.device import peak_memory_mb
from captcha_nb.core.prepare import decide_input
from captcha_nb.core.config import TrainConfig
started = time.perf_counter()
dataset = load_dataset(sys.argv[1])
listed = time.perf_counter()
spec = decide_input(TrainConfig(), dataset).spec
images = dataset.tensor(spec)
done = time.perf_counter()
print(json.dumps({"images": len(dataset), "list_seconds": round(listed - started, 1),
                  "decode_seconds": round(done - listed, 1), "input": f"{spec.height}x{spec.width}",
                  "tensor_mb": round(images.numel() / 2**20, 1),
                  "peak_memory_mb": peak_memory_mb()}))
"""


def build(root: Path, size: int, distinct: Path) -> Path:
    """A folder of `size` captchas: the distinct ones, hard-linked again under new names as often as needed."""
    folder = root / f"n{size}"
    folder.mkdir()
    sources = sorted(distinct.glob("*.png"))
    rows = ["filename,label"]
    for i in range(size):
        source = sources[i % len(sources)]
        name = f"{i:06d}.png"
        os.link(source, folder / name)
        rows.append(f"{name},{source.stem}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10_000, 100_000])
    parser.add_argument("--publish", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        distinct = generate(root / "distinct", min(DISTINCT, max(args.sizes)), length=5, size=(200, 80), seed=0)
        for size in args.sizes:
            folder = build(root, size, distinct)
            done = subprocess.run([sys.executable, "-c", MEASURE, str(folder)], capture_output=True, text=True,
                                  check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    table = ["| images | list (s) | decode (s) | input | tensor (MB) | peak memory (MB) |", "|---|---|---|---|---|---|"]
    table += [f"| {r['images']:,} | {r['list_seconds']} | {r['decode_seconds']} | {r['input']} | {r['tensor_mb']} | "
              f"{r['peak_memory_mb']} |" for r in rows]
    text = "\n".join(table)
    print(text)
    if args.publish:
        section = (f"{HEADING}\n\nSynthetic 200x80 captchas of 5 characters, `python benchmarks/loading.py`, on "
                   f"{os.cpu_count()} cores. Listing reads the file headers only; decoding writes each picture "
                   f"straight into the model-sized uint8 tensor (in parallel from 2,000 images on), so memory grows "
                   f"with that tensor, not with the decoded full-size pictures.\n\n{text}\n")
        replace_section(BENCHMARKS_MD, HEADING, section)
    return rows


if __name__ == "__main__":
    main()
