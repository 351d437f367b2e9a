"""Benchmark the default recogniser against the seed architecture on the same data, split and wall-clock budget.

Per model and seed: held-out sequence accuracy and CER at the end, the training wall time at which held-out accuracy
first reached 90 / 95 / 98 / 99 %, parameters, and CPU inference figures (batch throughput, single-image latency
median and p95 after warm-up) for PyTorch and for the exported ONNX model.

    python benchmarks/bench.py                      # full run: seeds 0 1 2, 10 minutes per training
    python benchmarks/bench.py --minutes 5 --seeds 0
    python benchmarks/bench.py --quick              # seconds, on synthetic data: proves the script works
    python benchmarks/bench.py --models crnn --include reports/benchmarks/<date>/results.json --publish
                                                    # measure one model, reuse another run's rows (same data, machine)

Writes reports/benchmarks/<date>/results.json, results.md and accuracy_vs_time.png; --publish also rewrites
reports/BENCHMARKS.md with the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from captcha_nb import REPORTS_DIR
from captcha_nb.core.config import TrainConfig
from captcha_nb.core.engine import fit
from captcha_nb.core.model import to_float
from captcha_nb.serving.export import export, load_exported
from captcha_nb.serving.inference import load_model
from captcha_nb.serving.speed import latency_ms, throughput, torch_runner
from captcha_nb.sources.data import load_dataset, load_split
from captcha_nb.sources.download import resolve_data_dir
from captcha_nb.sources.synth import generate
from captcha_nb.views import plots
from captcha_nb.views.compare import seconds_to
from captcha_nb.views.workspace import resolve_recorded
from captcha_nb.workflows.runs import replace_section

LEVELS = (0.90, 0.95, 0.98, 0.99)
HEADING = "## The default model against the seed architecture"


def inference_figures(run_dir: Path, batch_size: int, repeats: int, seconds: float) -> dict:
    """Throughput and latency on the CPU for the PyTorch model and its ONNX export, on held-out images."""
    recogniser = load_model(run_dir / "model.pt", device="cpu")
    split = load_split(run_dir / "split.json")
    val = load_dataset(resolve_recorded(split["data_dir"])).subset(split["val"])
    images = to_float(val.tensor(recogniser.spec))
    batch = images[:batch_size]
    if len(batch) < batch_size:  # small validation sets are tiled up to a full batch
        batch = batch.repeat((batch_size + len(batch) - 1) // len(batch), 1, 1, 1)[:batch_size]
    figures = {"torch_batch_images_per_s": throughput(torch_runner(recogniser.model, batch), batch_size, seconds)}
    figures.update({f"torch_single_{k}": v for k, v in
                    latency_ms(torch_runner(recogniser.model, batch[:1]), repeats=repeats).items()})
    with tempfile.TemporaryDirectory() as tmp:
        run_onnx, _ = load_exported(export(run_dir / "model.pt", "onnx", Path(tmp) / "model.onnx"))
        array = batch.numpy()
        figures["onnx_batch_images_per_s"] = throughput(lambda: run_onnx(array), batch_size, seconds)
        figures.update({f"onnx_single_{k}": v for k, v in
                        latency_ms(lambda: run_onnx(array[:1]), repeats=repeats).items()})
        with torch.inference_mode():
            same = np.allclose(run_onnx(array), recogniser.model(batch).numpy(), atol=1e-3)
        figures["onnx_matches_torch"] = bool(same)
    return figures


def included_rows(path: Path, data_dir: str, this_machine: str, measured: set[str]) -> list[dict]:
    """Rows of an earlier results.json for models not measured now; refused if data or machine differ."""
    earlier = json.loads(path.read_text())
    if Path(earlier["data_dir"]).resolve() != Path(data_dir).resolve() or earlier["machine"] != this_machine:
        raise SystemExit(f"{path} was measured on other data or another machine; it cannot share a table with this run")
    source = path.parent.name
    return [{**row, "source": source} for row in earlier["results"] if row["model"] not in measured]


def markdown_table(results: list[dict]) -> str:
    def seconds(value):
        return "not reached" if value is None else f"{value:.0f} s"

    lines = ["| model | seed | params | held-out acc | CER | 90 % | 95 % | 98 % | 99 % | epochs | "
             "torch img/s | ONNX img/s | latency median / p95 (torch) | latency median / p95 (ONNX) |",
             "|" + " --- |" * 14]
    for r in results:
        model = f"{r['model']} (from {r['source']})" if r.get("source") else r["model"]
        lines.append(
            f"| {model} | {r['seed']} | {r['parameters']:,} | {r['val_seq_accuracy']:.4f} | {r['val_cer']:.4f} | "
            + " | ".join(seconds(r["time_to"][f"{level:.2f}"]) for level in LEVELS)
            + f" | {r['epochs_run']} | {r['torch_batch_images_per_s']:.0f} | {r['onnx_batch_images_per_s']:.0f} | "
            f"{r['torch_single_median_ms']:.2f} / {r['torch_single_p95_ms']:.2f} ms | "
            f"{r['onnx_single_median_ms']:.2f} / {r['onnx_single_p95_ms']:.2f} ms |")
    return "\n".join(lines)


def summary(results: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(results)
    table["t99"] = [r["time_to"]["0.99"] for r in results]
    return table.groupby("model").agg(
        median_accuracy=("val_seq_accuracy", "median"), median_seconds_to_99=("t99", "median"),
        torch_images_per_s=("torch_batch_images_per_s", "median"), onnx_images_per_s=("onnx_batch_images_per_s", "median"),
        torch_latency_ms=("torch_single_median_ms", "median"), onnx_latency_ms=("onnx_single_median_ms", "median"))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data set (default: the usual resolution order)")
    parser.add_argument("--models", nargs="+", default=["crnn", "seed"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget per model and seed")
    parser.add_argument("--epochs", type=int, default=200, help="upper bound on epochs (the budget usually binds first)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the targets are for 2)")
    parser.add_argument("--out", help="output folder (default: reports/benchmarks/<date>)")
    parser.add_argument("--quick", action="store_true", help="tiny synthetic run that only proves the script works")
    parser.add_argument("--publish", action="store_true", help="also rewrite reports/BENCHMARKS.md")
    parser.add_argument("--include", nargs="*", default=[], metavar="RESULTS_JSON",
                        help="add the rows of earlier results.json files (same data and machine) to the table")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H%M")
    out = Path(args.out) if args.out else REPORTS_DIR / "benchmarks" / stamp
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        data_dir = generate(out / "synthetic", 40, length=(4, 5), size=(100, 32), seed=0)
        args.minutes, args.epochs, args.seeds = 0.5, 1, args.seeds[:1]
    else:
        data_dir = resolve_data_dir(args.data)
    repeats, seconds = (5, 0.1) if args.quick else (300, 3.0)

    results, curves = [], {}
    for model in args.models:
        for seed in args.seeds:
            run_dir = out / "runs" / f"{model}-seed{seed}"
            print(f"training {model} seed {seed} for at most {args.minutes} min ...", file=sys.stderr)
            config = TrainConfig(data_dir=str(data_dir), run_dir=str(run_dir), model=model, seed=seed,
                                 epochs=args.epochs, max_minutes=args.minutes, progress=False,
                                 batch_size=8 if args.quick else TrainConfig.batch_size,
                                 val_fraction=0.25 if args.quick else TrainConfig.val_fraction)
            result = fit(config)
            curves[f"{model} seed {seed}"] = pd.DataFrame(result.history)
            row = {"model": model, "seed": seed, **{k: result.metrics[k] for k in
                   ("parameters", "val_seq_accuracy", "val_cer", "epochs_run", "train_seconds", "stopped_because",
                    "n_train", "n_val", "input_size")},
                   "time_to": {f"{level:.2f}": seconds_to(pd.DataFrame(result.history), level)
                               for level in LEVELS}}
            row.update(inference_figures(run_dir, 64, repeats, seconds))
            results.append(row)
            print(json.dumps(row), file=sys.stderr)

    for earlier in args.include:
        results.extend(included_rows(Path(earlier), str(data_dir), machine(), {r["model"] for r in results}))
    payload = {"date": stamp, "machine": machine(), "data_dir": str(data_dir), "minutes": args.minutes,
               "quick": args.quick, "results": results}
    (out / "results.json").write_text(json.dumps(payload, indent=2))
    table = markdown_table(results)
    medians = summary(results)
    (out / "results.md").write_text(f"# Benchmark {stamp}\n\nMachine: {payload['machine']}. Budget: {args.minutes} "
                                    f"min per training.\n\n{table}\n\nMedians over seeds:\n\n```\n{medians.round(3).to_string()}\n```\n")
    plots.save(plots.accuracy_over_time(curves), out, "accuracy_vs_time")
    if args.publish and not args.quick:
        publish(out, payload, table, medians)
    print(out)
    return out


def publish(out: Path, payload: dict, table: str, medians: pd.DataFrame) -> None:
    relative = out.relative_to(REPORTS_DIR)
    sources = sorted({r["source"] for r in payload["results"] if r.get("source")})
    reused = (f" Rows marked \"from\" were measured by an earlier run of the same script on the same data and machine "
              f"({', '.join(sources)}) and reused rather than retrained." if sources else "")
    text = f"""{HEADING}

Latest: `{relative}` — measured on {payload['machine']}, CPU only, on the {payload['results'][0]['n_train']} +
{payload['results'][0]['n_val']} images of `{Path(payload['data_dir']).name}` (train + held-out split), with a budget of
{payload['minutes']} minutes of training per model and seed. Command: `make bench` (`python benchmarks/bench.py
--publish`). Times are training wall-clock seconds at the end of the first epoch that reached each held-out accuracy.{reused}

{table}

Medians over seeds:

```
{medians.round(3).to_string()}
```

![held-out accuracy against training time]({relative}/accuracy_vs_time.png)
"""
    replace_section(REPORTS_DIR / "BENCHMARKS.md", HEADING, text)


if __name__ == "__main__":
    main()
