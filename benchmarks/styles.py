"""Style benchmark: the default recipe, unchanged, trained on every captcha style in a folder with the same budget.

A style is either a `<name>_train/` + `<name>_test/` pair (used as given: the recipe splits `_train` into train and
validation, and `_test` is scored once at the end) or a single `<name>/` folder (the recipe's own three-way split).
Each training runs in its own process with exactly the user's command (`python -m captcha_nb train --data D
--run-dir R --max-minutes M --seed S`), so peak memory is that run's own.

    python benchmarks/styles.py --data ../shared/data ../shared/data/styles            # 6 minutes, seeds 0 1 2
    python benchmarks/styles.py --data DIR --minutes 3 --seeds 0 --workers 2           # two runs at a time
    python benchmarks/styles.py --quick                                                # two tiny synthetic styles

Run again with the same --out, it keeps the runs that finished (their folder holds metrics.json) and trains the rest,
so an interrupted benchmark resumes and a disturbed run is redone by deleting its folder.

Writes reports/benchmarks/styles-<date>/{results.json,results.md,plot.png}; --publish also puts the table in
reports/BENCHMARKS.md. Times to 90/95/99 % are training seconds at the end of the first epoch whose *validation*
accuracy reached the level (the test split is only scored once); plateau seconds are those until the first correct
validation reading.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from captcha_nb import REPORTS_DIR
from captcha_nb.sources.files import IMAGE_SUFFIXES, LABELS_FILE
from captcha_nb.sources.synth import generate
from captcha_nb.views import plots
from captcha_nb.views.compare import STYLE_CURVES, seconds_to
from captcha_nb.workflows.runs import replace_section

LEVELS = (0.90, 0.95, 0.99)
UNLABELLED = "_unlabelled"  # a style's pool of pictures nobody labelled, beside its _train and _test folders
BENCHMARKS_MD = REPORTS_DIR / "BENCHMARKS.md"
STYLES_HEADING = "## Captcha styles"


def has_images(folder: Path) -> bool:
    return (folder / LABELS_FILE).is_file() or any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def find_styles(roots: list[Path]) -> dict[str, tuple[Path, Path | None]]:
    """name -> (training folder, test folder or None when the recipe splits the folder itself)."""
    styles = {}
    for root in roots:
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            name = folder.name
            if name.endswith("_train") and (root / f"{name[:-6]}_test").is_dir():
                styles[name[:-6]] = (folder, root / f"{name[:-6]}_test")
            elif not name.endswith(("_test", UNLABELLED)) and has_images(folder):
                styles[name] = (folder, None)
    return styles


def run_one(style: str, train: Path, test: Path | None, seed: int, minutes: float, out: Path, threads: int,
            options: tuple[str, ...] = (), name: str | None = None) -> dict:
    """Train with the default command (plus `options`) in a child process, then score the test folder (if any) once."""
    name = name or f"{style}-seed{seed}"
    run_dir = out / "runs" / name
    log = out / "runs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "captcha_nb", "train", "--data", str(train), "--run-dir", str(run_dir),
               "--max-minutes", str(minutes), "--seed", str(seed), "--no-progress", *options]
    if test is not None:
        command += ["--test-fraction", "0"]  # the style's own test folder is the test split
    if threads:
        command += ["--num-threads", str(threads)]
    if not (run_dir / "metrics.json").is_file():  # a run that finished earlier is scored again, not retrained
        if run_dir.exists():
            shutil.rmtree(run_dir)  # half-written by an interrupted benchmark
        with open(log, "w") as f:
            done = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            return {"style": style, "seed": seed, "status": f"failed (exit {done.returncode}, see {log.name})"}
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    if test is not None:
        scored = subprocess.run([sys.executable, "-m", "captcha_nb", "evaluate", "--checkpoint",
                                 str(run_dir / "model.pt"), "--data", str(test), "--device", "cpu"],
                                capture_output=True, text=True, check=True)
        result = json.loads(scored.stdout.strip().splitlines()[-1])
        accuracy, cer, n_test = result["seq_accuracy"], result["cer"], result["n"]
    else:
        accuracy, cer, n_test = metrics["test_seq_accuracy"], metrics["test_cer"], metrics["n_test"]
    history = pd.read_csv(run_dir / "history.csv")
    return {
        "style": style, "seed": seed, "status": "finished", "test_seq_accuracy": accuracy, "test_cer": cer,
        "n_train": metrics["n_train"], "n_val": metrics["n_val"], "n_test": n_test,
        "val_seq_accuracy": metrics["val_seq_accuracy"],
        **{f"time_to_{int(level * 100)}": seconds_to(history, level) for level in LEVELS},
        "plateau_seconds": metrics["plateau_seconds"], "epochs": metrics["epochs_run"],
        "train_seconds": metrics["train_seconds"], "stopped_because": metrics["stopped_because"],
        "input": "x".join(map(str, metrics["input_size"])) + (" located" if metrics["input"].get("locate") else ""),
        "crop": metrics["input"]["crop"], "model": metrics["model"],
        "final_train_loss": metrics.get("final_train_loss"), "val_loss": metrics["val_loss"],
        "augment_strength": metrics.get("augment_strength"),
        "parameters": metrics["parameters"], "peak_memory_mb": metrics["peak_memory_mb"],
    }


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per style: the median over seeds, and every seed's test accuracy."""
    finished = results[results["status"] == "finished"]
    numeric = ["test_seq_accuracy", "test_cer", "time_to_90", "time_to_95", "time_to_99", "plateau_seconds",
               "epochs", "train_seconds", "final_train_loss", "val_loss", "augment_strength", "peak_memory_mb"]
    table = finished.groupby("style")[numeric].median()
    table.insert(0, "seeds (test accuracy)", finished.groupby("style").apply(
        lambda g: ", ".join(f"{a:.3f}" for a in g.sort_values("seed")["test_seq_accuracy"]), include_groups=False))
    table.insert(1, "model", finished.groupby("style")["model"].first())
    table.insert(2, "input", finished.groupby("style")["input"].first())
    table.insert(3, "n_train", finished.groupby("style")["n_train"].first())
    table.insert(4, "n_test", finished.groupby("style")["n_test"].first())
    table["parameters"] = finished.groupby("style")["parameters"].first()
    return table


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def quick_styles(out: Path) -> list[Path]:
    """Two tiny synthetic styles: one folder the recipe splits, one train/test pair with light text on dark."""
    root = out / "synthetic"
    generate(root / "plain", 120, alphabet="abcd23", length=(3, 5), size=(100, 32), seed=1)
    generate(root / "dark_train", 60, alphabet="abcd23", length=4, size=(96, 32), seed=2, look="dark")
    generate(root / "dark_test", 20, alphabet="abcd23", length=4, size=(96, 32), seed=3, look="dark")
    return [root]


def benchmark_parser(description: str, kind: str, minutes: float, quick: str) -> argparse.ArgumentParser:
    """The options every benchmark over the captcha styles shares (this one and labels.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", nargs="*", default=[], help="folders whose sub-folders are styles")
    parser.add_argument("--styles", nargs="*", help="only these style names")
    parser.add_argument("--minutes", type=float, default=minutes, help="training budget per run")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--out", help=f"output folder (default: reports/benchmarks/{kind}-<date>)")
    parser.add_argument("--publish", action="store_true", help="put the table in reports/BENCHMARKS.md")
    return parser


def output_folder(out: str | None, kind: str) -> tuple[Path, str]:
    """The folder a benchmark writes to (created), and the time stamp that names it by default."""
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H%M")
    folder = Path(out).resolve() if out else REPORTS_DIR / "benchmarks" / f"{kind}-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder, stamp


def chosen_styles(roots: list[Path], names: list[str] | None) -> dict[str, tuple[Path, Path | None]]:
    """The styles found in `roots`, only those named when names are given; none found is one clear error."""
    styles = find_styles(roots)
    if names:
        missing = sorted(set(names) - set(styles))
        if missing:
            raise SystemExit(f"--styles {' '.join(missing)}: not found in {', '.join(map(str, roots))}")
        styles = {name: styles[name] for name in names}
    if not styles:
        raise SystemExit(f"no captcha styles found in {', '.join(map(str, roots))}")
    return styles


def main(argv: list[str] | None = None) -> Path:
    parser = benchmark_parser(__doc__.splitlines()[0], "styles", minutes=6.0,
                              quick="two tiny synthetic styles, seconds per run")
    parser.add_argument("--workers", type=int, default=1, help="runs at a time (each gets cores / workers threads)")
    args = parser.parse_args(argv)

    out, stamp = output_folder(args.out, "styles")
    roots = quick_styles(out) if args.quick else [Path(d) for d in args.data]
    minutes, seeds = (0.15, [0]) if args.quick else (args.minutes, args.seeds)
    styles = chosen_styles(roots, args.styles)
    threads = max(1, (os.cpu_count() or 1) // args.workers) if args.workers > 1 else 0
    jobs = [(name, *folders, seed) for name, folders in styles.items() for seed in seeds]
    print(f"{len(jobs)} runs of {minutes} min: {', '.join(styles)}; seeds {seeds}", file=sys.stderr)
    with ThreadPoolExecutor(args.workers) as pool:
        rows = list(pool.map(lambda j: run_one(*j, minutes, out, threads), jobs))
    for row in rows:
        print(json.dumps(row), file=sys.stderr)

    results = pd.DataFrame(rows)
    command = "python benchmarks/styles.py " + " ".join(argv if argv is not None else sys.argv[1:])
    payload = {"date": stamp, "machine": machine(), "minutes": minutes, "seeds": seeds, "workers": args.workers,
               "command": command.strip(), "styles": {k: [str(v[0]), str(v[1]) if v[1] else None]
                                                      for k, v in styles.items()},
               "results": rows}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    table = summary(results)
    text = (f"# Captcha styles, {stamp}\n\nMachine: {payload['machine']}; {args.workers} run(s) at a time. "
            f"Budget {minutes} min per run; seeds {seeds}. Command: `{payload['command']}`.\n\n"
            f"Medians over seeds:\n\n{table.round(3).to_markdown()}\n\nEvery run:\n\n"
            f"{results.round(3).to_markdown(index=False)}\n")
    (out / "results.md").write_text(text)
    curves = {f"{r['style']} seed {r['seed']}": pd.read_csv(out / "runs" / f"{r['style']}-seed{r['seed']}" /
                                                            "history.csv")
              for r in rows if r["status"] == "finished"}
    write_curves(curves, out)
    plots.save(plots.accuracy_over_time(curves), out, "plot")
    first_seed = {name.split(" seed ")[0]: history for name, history in curves.items() if name.endswith(f"seed {seeds[0]}")}
    plots.save(plots.loss_gap(first_seed), out, "losses")
    if args.publish and not args.quick:
        publish(out, payload, table)
    print(out)
    return out


def write_curves(curves: dict[str, pd.DataFrame], out: Path) -> None:
    """Every run's learning curve in one small CSV beside the table, so notebook 03 can draw which styles overfit
    from a clone, where the runs' own folders (checkpoints included) are not committed."""
    columns = ["epoch", "seconds", "train_loss", "val_loss", "val_seq_accuracy", "augment_strength"]
    frames = []
    for name, history in curves.items():
        style, seed = name.split(" seed ")
        frames.append(history[[c for c in columns if c in history]].assign(style=style, seed=int(seed)))
    table = pd.concat(frames, ignore_index=True)
    table[["style", "seed", *[c for c in columns if c in table]]].round(5).to_csv(out / STYLE_CURVES, index=False)


def publish(out: Path, payload: dict, table: pd.DataFrame) -> None:
    """Replace the styles section of reports/BENCHMARKS.md with this run's table."""
    relative = out.relative_to(REPORTS_DIR)
    section = (f"{STYLES_HEADING}\n\nLatest: `{relative}`, measured on {payload['machine']} with "
               f"{payload['workers']} run(s) at a time, {payload['minutes']} minutes per run, seeds {payload['seeds']}. "
               f"Command: `{payload['command']}`.\n\n{table.round(3).to_markdown()}\n\n"
               f"![validation accuracy against training time]({relative}/plot.png)\n\n"
               f"Training loss (dashed) against validation loss, seed {payload['seeds'][0]}: a wide gap is "
               f"overfitting, two high curves underfitting.\n\n![train and validation loss]({relative}/losses.png)\n")
    replace_section(BENCHMARKS_MD, STYLES_HEADING, section)


if __name__ == "__main__":
    main()
