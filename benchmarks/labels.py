"""How many must I label? Test accuracy against the number of labelled training images, from scratch and pretrained.

For every style (found as in benchmarks/styles.py), every count and every seed, the seed draws `count` labelled
images from the style's training pool into a folder of their own, and the default command trains on them with the
same budget, once per start: from scratch (`--pretrained no`), from the package's synthetic checkpoint
(`--pretrained yes`), and with the unlabelled pool (`pool`: the style's `_unlabelled` folder plus the undrawn rest of
its training pictures, labels hidden) with or without ddddocr as the teacher (`teacher`, `pool`). Count 0 runs the
teacher arm alone. Every run is scored once on the style's test folder, and ddddocr's own zero-shot reading of that
folder, called as a user calls it (`set_ranges` + `classification`), is measured beside them. A style without a
`_test` folder (the captcha_images_v2 copy) has a fixed 15 % of its images held out as its test folder first, the
same for every seed.

    python benchmarks/labels.py --data ../shared/data ../shared/data/styles           # 2 minutes per run
    python benchmarks/labels.py --data ../shared/data --styles captcha_images_v2 --counts 50 100 200 --seeds 0
    python benchmarks/labels.py --quick                                                # a tiny synthetic style

Run again with the same --out, it keeps the runs that finished, and its table holds every run of the folder (an
earlier call's at the same budget too). Writes reports/benchmarks/labels-<date>/
{results.json,results.md,plot.png}; --publish puts the table in reports/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
from pathlib import Path

import pandas as pd

from captcha_nb import REPORTS_DIR
from captcha_nb.sources.data import LABELS_FILE, read_labels
from captcha_nb.sources.synth import generate
from captcha_nb.views import plots
from captcha_nb.workflows.runs import replace_section

sys.path.insert(0, str(Path(__file__).resolve().parent))
from styles import (  # noqa: E402
    BENCHMARKS_MD,
    UNLABELLED,
    benchmark_parser,
    chosen_styles,
    machine,
    output_folder,
    run_one,
    write_curves,
)

HEADING = "## How many labels"
STARTS = {"scratch": ("--pretrained", "no", "--no-pseudo-labels"),
          "pretrained": ("--pretrained", "yes", "--no-pseudo-labels"),
          "pool": ("--pretrained", "yes"),
          "teacher": ("--pretrained", "yes", "--teacher", "ddddocr")}
WITH_POOL = {"pool", "teacher"}
HELD_OUT = 0.15  # share of a style without a test folder that becomes its test folder
HOLD_OUT_SEED = 12345  # one fixed draw, so every seed and count is scored on the same pictures


def write_folder(folder: Path, pairs: list[tuple[Path, str]], labelled: bool = True) -> Path:
    """Copy the pictures into `folder`, with a labels.csv unless `labelled` is false; written once and reused."""
    if folder.is_dir():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    rows = []
    for number, (path, label) in enumerate(pairs):
        name = f"{number:05d}{path.suffix.lower()}"
        shutil.copyfile(path, partial / name)
        rows.append([name, label])
    if labelled:
        with open(partial / LABELS_FILE, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([["filename", "label"], *rows])
    partial.rename(folder)
    return folder


def ddddocr_zero_shot(test: Path, chars: str) -> float | None:
    """ddddocr on the test folder as a new user calls it: set_ranges with the style's symbols in both cases, then
    classification, lower-cased when the style's labels are; None when ddddocr is not installed."""
    try:
        import ddddocr
    except ImportError:
        return None
    ocr = ddddocr.DdddOcr(show_ad=False, beta=True)
    ocr.set_ranges("".join(sorted(set(chars) | set(chars.upper()) | set(chars.lower()))))
    pairs = read_labels(test)
    lower = all(label == label.lower() for _, label in pairs)
    right = 0
    for path, label in pairs:
        text = ocr.classification(path.read_bytes())
        right += (text.lower() if lower else text) == label
    return right / len(pairs)


def pools(train: Path, test: Path | None, out: Path, style: str) -> tuple[list[tuple[Path, str]], Path]:
    """The labelled pictures counts are drawn from, and the folder the runs are scored on."""
    pairs = read_labels(train)
    if test is not None:
        return pairs, test
    shuffled = random.Random(HOLD_OUT_SEED).sample(pairs, len(pairs))
    cut = round(HELD_OUT * len(pairs))
    return shuffled[cut:], write_folder(out / "folders" / f"{style}-test", shuffled[:cut])


def write_run_curves(rows: list[dict], out: Path) -> None:
    """Every trained run's validation curve (curves.csv, curves.png) and each cell's first seed's losses
    (losses.png), so that a cell that misses its target shows how it learnt from a clone, without the runs."""
    curves = {}
    for row in rows:
        history = out / "runs" / f"{row['style']}-n{row['labelled']}-seed{row['seed']}-{row['start']}" / "history.csv"
        if row["status"] == "finished" and history.is_file():
            curves[f"{row['style']}-n{row['labelled']}-{row['start']} seed {row['seed']}"] = pd.read_csv(history)
    if not curves:
        return
    write_curves(curves, out)
    plots.save(plots.accuracy_over_time(curves), out, "curves")
    first = {}
    for name, history in curves.items():
        first.setdefault(name.split(" seed ")[0], history)
    plots.save(plots.loss_gap(first), out, "losses")


def main(argv: list[str] | None = None) -> Path:
    parser = benchmark_parser(__doc__.splitlines()[0], "labels", minutes=2.0,
                              quick="one tiny synthetic style, seconds per run")
    parser.add_argument("--counts", type=int, nargs="*", default=[0, 50, 100, 200, 400],
                        help="labelled training images per run (the whole pool is added as 'all'; 0: the teacher "
                             "alone)")
    parser.add_argument("--all", action=argparse.BooleanOptionalAction, default=True,
                        help="add a run on every labelled picture of the style (default: yes)")
    parser.add_argument("--starts", nargs="*", default=["scratch", "pretrained", "teacher"], choices=list(STARTS),
                        help="scratch and pretrained: the labels alone; pool: with the unlabelled pictures; teacher: "
                             "with them and ddddocr, trusted as far as the rule lets it (default: scratch pretrained "
                             "teacher)")
    args = parser.parse_args(argv)

    out, stamp = output_folder(args.out, "labels")
    if args.quick:
        roots = [out / "synthetic"]
        generate(roots[0] / "plain", 60, alphabet="abcd23", length=(3, 4), size=(100, 32), seed=1)
    else:
        roots = [Path(d) for d in args.data]
    minutes, seeds, counts = (0.05, [0], [20]) if args.quick else (args.minutes, args.seeds, args.counts)
    starts = ["scratch", "pretrained", "pool"] if args.quick else args.starts
    styles = chosen_styles(roots, args.styles)

    rows = []
    for style, (train, test) in styles.items():
        pool, test_folder = pools(train, test, out, style)
        chars = "".join(sorted(set("".join(label for _, label in pool))))
        rows.append({"style": style, "labelled": 0, "start": "ddddocr zero-shot", "seed": 0, "status": "finished",
                     "test_seq_accuracy": ddddocr_zero_shot(test_folder, chars)})
        extra = train.parent / f"{style}{UNLABELLED}"
        for count in sorted({c for c in counts if c < len(pool)} | ({len(pool)} if args.all else set())):
            for seed in seeds:
                drawn = random.Random(seed).sample(pool, count)
                taken = {path for path, _ in drawn}
                rest = [pair for pair in pool if pair[0] not in taken]
                # With no label, the data folder is every training picture with its labels hidden.
                folder = write_folder(out / "folders" / f"{style}-n{count}-seed{seed}", drawn or rest, count > 0)
                unlabelled = [write_folder(out / "folders" / f"{style}-rest-n{count}-seed{seed}", rest, False)] \
                    if rest and count else []
                unlabelled += [extra] if extra.is_dir() else []
                for start in starts if count else [s for s in starts if s == "teacher"]:
                    # With no label the teacher needs to be told the style's symbols, as a user would.
                    options = STARTS[start] + (("--alphabet", chars) if start == "teacher" else ())
                    if start in WITH_POOL:
                        options += tuple(a for folder in unlabelled for a in ("--unlabelled", str(folder)))
                    name = f"{style}-n{count}-seed{seed}-{start}"
                    print(f"{name}: {minutes} min", file=sys.stderr)
                    row = run_one(style, folder, test_folder, seed, minutes, out, 0, options, name)
                    rows.append({**row, "labelled": count, "start": start})
    # The copies are only there for the runs; the runs' split.json files name them.
    shutil.rmtree(out / "folders", ignore_errors=True)

    command = ("python benchmarks/labels.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    rows, commands = with_earlier_calls(out, rows, minutes, command)
    results = pd.DataFrame(rows)
    payload = {"date": stamp, "machine": machine(), "minutes": minutes, "seeds": sorted({r["seed"] for r in rows}),
               "counts": counts, "command": " ; ".join(commands), "commands": commands, "results": rows}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    table = summary(results)
    (out / "results.md").write_text(
        f"# How many labels, {stamp}\n\nMachine: {payload['machine']}. Budget {minutes} min per run; "
        f"seeds {payload['seeds']}. "
        f"Command: `{payload['command']}`.\n\nMedian test accuracy over seeds (each seed's in brackets):\n\n"
        f"{table.to_markdown(index=False)}\n\nEvery run:\n\n{results.round(3).to_markdown(index=False)}\n")
    plots.save(plots.accuracy_by_labels(results), out, "plot")
    write_run_curves(rows, out)
    if args.publish and not args.quick:
        publish(out, payload, table)
    print(out)
    return out


def run_key(row: dict) -> tuple:
    return row["style"], row["labelled"], row["start"], row["seed"]


def with_earlier_calls(out: Path, rows: list[dict], minutes: float, command: str) -> tuple[list[dict], list[str]]:
    """This call's rows after those an earlier call at the same budget wrote to the same folder and this call did
    not repeat, and every call's command: a folder filled by several calls (more seeds, another style) tables all of
    its runs, not only the last call's."""
    earlier = out / "results.json"
    previous = json.loads(earlier.read_text(encoding="utf-8")) if earlier.is_file() else {}
    if previous.get("minutes") != minutes:
        return rows, [command]
    repeated = {run_key(row) for row in rows}
    kept = [row for row in previous["results"] if run_key(row) not in repeated]
    commands = previous.get("commands", [previous["command"]])
    return kept + rows, commands if command in commands else commands + [command]


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Rows: style and labelled count; columns: each start's median test accuracy with every seed's."""
    finished = results[results["status"] == "finished"]

    def cell(group: pd.DataFrame) -> str:
        seeds = ", ".join(f"{a:.3f}" for a in group.sort_values("seed")["test_seq_accuracy"].astype(float))
        return f"{group['test_seq_accuracy'].median():.3f} ({seeds})"

    table = finished.groupby(["style", "labelled", "start"]).apply(cell, include_groups=False).unstack("start")
    return table.reset_index().rename_axis(columns=None)


def publish(out: Path, payload: dict, table: pd.DataFrame) -> None:
    relative = out.relative_to(REPORTS_DIR)
    section = (f"{HEADING}\n\nLatest: `{relative}`, measured on {payload['machine']}, one run at a time, "
               f"{payload['minutes']} minutes per run, seeds {payload['seeds']}. Command: `{payload['command']}`.\n\n"
               f"Test accuracy, median over seeds (each seed's in brackets):\n\n{table.to_markdown(index=False)}\n\n"
               f"![test accuracy against labelled images]({relative}/plot.png)\n")
    replace_section(BENCHMARKS_MD, HEADING, section)


if __name__ == "__main__":
    main()
