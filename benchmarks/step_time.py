"""Time of one training step and of one validation pass, in channels-last memory (what `build_model` returns) and in
the default contiguous layout, at the inputs the style table chose.

    python benchmarks/step_time.py              # about two minutes on 2 cores
    python benchmarks/step_time.py --publish    # and put the table in reports/BENCHMARKS.md

A step is what the engine does per batch: forward, CTC loss, backward, AdamW. Inputs are random (the arithmetic, and so
the time, does not depend on the pixels); each figure is the median of --repeats timed steps after three warm-up
steps, on the CPU with the threads torch picks. The budget of a run is minutes of wall clock, so a faster step is more
epochs inside the same budget; this is the measurement behind the layout chosen in `captcha_nb/core/model.py`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from captcha_nb.core.config import TrainConfig
from captcha_nb.core.ctc import ctc_loss
from captcha_nb.core.model import batched_logits, build_model
from captcha_nb.serving.speed import latency_ms
from captcha_nb.workflows.runs import replace_section

sys.path.insert(0, str(Path(__file__).resolve().parent))
from styles import BENCHMARKS_MD, machine  # noqa: E402

HEADING = "## Step time and memory layout"
DEFAULTS = TrainConfig()  # the batch size, learning rate and weight decay a run trains with
BATCH = DEFAULTS.batch_size
VALIDATION_IMAGES = 256
WARM_UP = 3
# (style whose input it is, height, width, classes with the blank, label length): the inputs of the style table.
SHAPES = [
    ("captcha_images_v2", 32, 128, 20, 5),
    ("kelab", 32, 96, 37, 4),
    ("securimage", 48, 144, 37, 6),
    ("varlen", 32, 224, 37, 6),
]
LAYOUTS = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last}


def measure(model_name: str, height: int, width: int, classes: int, length: int, layout, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_model(model_name, classes, height, width).to(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=DEFAULTS.lr, weight_decay=DEFAULTS.weight_decay)
    images = torch.randn(BATCH, 1, height, width).to(memory_format=layout)
    targets = torch.randint(1, classes, (BATCH, length))
    lengths = torch.full((BATCH,), length)

    def step() -> None:
        loss = ctc_loss(model(images), targets, lengths)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    train = latency_ms(step, repeats=repeats, warmup=WARM_UP)
    pictures = torch.randint(0, 256, (VALIDATION_IMAGES, 1, height, width), dtype=torch.uint8)
    validate = latency_ms(lambda: batched_logits(model, pictures), repeats=max(1, repeats // 3), warmup=WARM_UP)
    return {"step_ms": train["median_ms"], "validate_ms": validate["median_ms"]}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="crnn")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--publish", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for style, height, width, classes, length in SHAPES:
        times = {name: measure(args.model, height, width, classes, length, layout, args.repeats)
                 for name, layout in LAYOUTS.items()}
        old, new = times["contiguous"], times["channels-last"]
        rows.append(f"| {style} | {height}x{width} | {old['step_ms']:.0f} → {new['step_ms']:.0f} ms | "
                    f"{old['validate_ms']:.0f} → {new['validate_ms']:.0f} ms |")
        print(rows[-1], flush=True)
    header = f"| input of | input | training step (batch {BATCH}) | validating {VALIDATION_IMAGES} pictures |"
    table = "\n".join([header, "|---|---|---|---|", *rows])
    print(table)
    if args.publish:
        section = (f"{HEADING}\n\n`python benchmarks/step_time.py --publish` on {machine()}, "
                   f"torch {torch.__version__}, model `{args.model}`: median of {args.repeats} steps, "
                   f"contiguous → channels-last (the layout `build_model` returns)."
                   f"\n\n{table}\n")
        replace_section(BENCHMARKS_MD, HEADING, section)
    return rows


if __name__ == "__main__":
    main()
