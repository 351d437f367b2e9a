"""Command line: `python -m captcha_nb {train,predict,evaluate,synth,download,export,runs,report,sweep,inspect}`.

The command and option names are a contract other tools rely on; add options, never rename them.
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import sys
import typing
import warnings
from dataclasses import MISSING, fields
from pathlib import Path

from captcha_nb import NOTEBOOKS
from captcha_nb.sources.files import IMAGE_SUFFIXES


def _warning_line(message, category, filename, lineno, file=None, line=None):
    # One plain line per skipped file is easier to read in a terminal than Python's default warning format.
    print(f"warning: {message}", file=sys.stderr)


def cmd_train(args) -> int:
    from captcha_nb.core.config import TrainConfig
    from captcha_nb.core.engine import fit

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    result = fit(config)
    print(json.dumps(result.metrics, ensure_ascii=False))
    return 0


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model into a run directory")
    add_config_options(p)
    p.set_defaults(func=cmd_train)


def optional(convert):
    """An argparse type that also accepts 'None' (any case), for fields whose default lets the data decide."""

    def parse(text: str):
        return None if text.lower() == "none" else convert(text)

    parse.__name__ = convert.__name__
    return parse


def yes_or_no(text: str) -> bool:
    """An argparse type for a yes/no option that may also be left to the data ('None')."""
    lowered = text.lower()
    if lowered in ("yes", "true", "1", "on"):
        return True
    if lowered in ("no", "false", "0", "off"):
        return False
    raise ValueError(f"{text!r} is not yes or no")


def add_config_options(parser: argparse.ArgumentParser, config_class=None) -> None:
    """One option per TrainConfig field, with the field's default and help: the defaults are written only there.

    The option follows the field's type: a bool is a --flag/--no-flag, an optional field also takes 'None', and a
    list-valued field is repeated (`--unlabelled A --unlabelled B`)."""
    if config_class is None:
        from captcha_nb.core.config import TrainConfig as config_class

    converters = {int: int, float: float, str: str, bool: yes_or_no}
    for f, kind in config_field_types(config_class):
        flag = f.metadata.get("cli", "--" + f.name.replace("_", "-"))
        text = f.metadata["help"]
        default = f.default_factory() if f.default is MISSING else f.default
        described = text if "default" in text or f.name == "run_dir" else f"{text} (default: {default})"
        args = typing.get_args(kind)
        base = next((a for a in args if a is not type(None)), kind) if args and type(None) in args else kind
        if base is bool and kind is bool:
            parser.add_argument(flag, dest=f.name, default=default, action=argparse.BooleanOptionalAction, help=text)
        elif typing.get_origin(base) in (list, tuple):
            parser.add_argument(flag, dest=f.name, default=default, action=collect(typing.get_origin(base)),
                                type=converters[typing.get_args(base)[0]], help=described)
        else:
            convert = converters[base]
            parser.add_argument(flag, dest=f.name, default=default, required=f.name == "run_dir",
                                type=optional(convert) if base is not kind else convert, help=described)


def collect(kind: type) -> type[argparse.Action]:
    """An action for a repeated option whose values make a list or a tuple, as the config field is typed."""

    class Collect(argparse.Action):
        def __call__(self, parser, namespace, value, option_string=None):
            setattr(namespace, self.dest, kind([*getattr(namespace, self.dest), value]))

    return Collect


def config_field_types(config_class) -> list:
    """(field, its type) for every field of a config dataclass, the types resolved from their annotations."""
    hints = typing.get_type_hints(config_class)
    return [(f, hints[f.name]) for f in fields(config_class)]


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given, and the image files inside any directory, sorted."""
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            found.append(path)
    return found


def cmd_predict(args) -> int:
    from captcha_nb.serving.predict import predict_files

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["path", "prediction", "confidence"])
    failures = 0
    from captcha_nb.core.device import select_device

    device = select_device(args.device)
    for path, prediction, error in predict_files(args.checkpoint, expand_paths(args.paths), device=device,
                                                 beam_width=args.beam_width, max_pixels=args.max_image_pixels):
        if error:
            failures += 1
            writer.writerow([str(path), "", ""])
            print(f"error: {path}: {error}", file=sys.stderr)
        else:
            writer.writerow([str(path), prediction.text, f"{prediction.confidence:.4f}"])
    return 1 if failures else 0


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="read captchas: prints CSV lines path,prediction,confidence")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("paths", nargs="+", help="image files or directories of images")
    p.add_argument("--device", default="auto", help="'auto' (cuda, then mps, then cpu), 'cpu', 'cuda', ...")
    p.add_argument("--beam-width", type=int, default=0, help="0 for greedy decoding, >1 for prefix beam search")
    add_pixel_limit(p)
    p.set_defaults(func=cmd_predict)


def cmd_evaluate(args) -> int:
    from captcha_nb.core.device import select_device
    from captcha_nb.core.evaluation import evaluate
    from captcha_nb.serving.inference import load_model
    from captcha_nb.sources.data import load_dataset

    recogniser = load_model(args.checkpoint, device=select_device(args.device))
    dataset = load_dataset(args.data, max_pixels=args.max_image_pixels)
    images = dataset.tensor(recogniser.spec)
    result = evaluate(recogniser.model, images, dataset.labels, recogniser.alphabet)
    unknown = sum(not recogniser.alphabet.can_encode(label) for label in dataset.labels)
    print(json.dumps({**result.summary(), "unreadable_labels": unknown, "unreadable_images": len(dataset.unreadable),
                      "data": str(args.data), "checkpoint": str(args.checkpoint)}, ensure_ascii=False))
    return 0


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint on every image of a directory: one JSON line")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--device", default="auto")
    add_pixel_limit(p)
    p.set_defaults(func=cmd_evaluate)


def cmd_synth(args) -> int:
    from captcha_nb.sources.synth import DEFAULT_ALPHABET, generate

    low, _, high = args.length.partition("-")
    out = generate(args.out, args.n, alphabet=args.alphabet or DEFAULT_ALPHABET, length=(int(low), int(high or low)),
                   size=(args.width, args.height), seed=args.seed, look=args.look)
    print(f"wrote {args.n} captchas to {out}")
    return 0


def add_synth(sub) -> None:
    p = sub.add_parser("synth", help="generate labelled synthetic captchas")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alphabet")
    p.add_argument("--length", default="4-6", help="label length or range, e.g. 5 or 4-8")
    p.add_argument("--width", type=int, default=200)
    p.add_argument("--height", type=int, default=50)
    p.add_argument("--look", default="plain", help="plain, dark, pale or tall (a strip of a taller canvas)")
    p.set_defaults(func=cmd_synth)


def cmd_download(args) -> int:
    from captcha_nb import DATA_ROOT
    from captcha_nb.sources.download import download_dataset

    if args.style:
        from captcha_nb.sources.styles import read_sources, rebuild_style, style_names

        sources = read_sources()
        for style in style_names(sources) if args.style == "all" else [args.style]:
            for folder in rebuild_style(style, Path(args.dest) if args.dest else DATA_ROOT / "styles",
                                        args.source_root, sources):
                print(folder)
        return 0
    print(download_dataset(Path(args.dest) if args.dest else DATA_ROOT))
    return 0


def add_download(sub) -> None:
    p = sub.add_parser("download", help="download captcha_images_v2, or rebuild a shared captcha style (--style)")
    p.add_argument("--dest", help="parent directory (default: the project's data/, or data/styles/ with --style)")
    p.add_argument("--style", help="rebuild this style's _train, _test and _unlabelled folders from their public "
                                   "sources, every file checked against its sha256; 'all' for every style")
    p.add_argument("--source-root", help="a local mirror laid out as ROOT/<repository>/<commit>/<path>, instead of "
                                         "the repositories' raw files")
    p.set_defaults(func=cmd_download)


def cmd_export(args) -> int:
    from captcha_nb.serving.export import export

    print(export(args.checkpoint, args.format, args.out))
    return 0


def add_export(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--format", choices=["onnx", "torchscript", "bundle"], required=True,
                   help="bundle: a folder with model.onnx, reader.json and read_captcha.py (onnxruntime only)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)


def cmd_runs(args) -> int:
    from captcha_nb import REPORTS_DIR
    from captcha_nb.views.compare import render, runs_table

    reports = Path(args.reports) if args.reports else REPORTS_DIR
    print(render(runs_table(reports / args.sweep if args.sweep else None, reports), args.format))
    return 0


def add_runs(sub) -> None:
    p = sub.add_parser("runs", help="list the runs in reports/ (newest first) or of one sweep, with their results")
    p.add_argument("--reports", help="reports directory (default: the project's reports/)")
    p.add_argument("--sweep", metavar="ID", help="only the runs of reports/<ID>/, a sweep's folder")
    p.add_argument("--format", default="table", choices=["table", "csv", "markdown", "json"],
                   help="how to print the table (default: table)")
    p.set_defaults(func=cmd_runs)


def cmd_report(args) -> int:
    from captcha_nb.workflows.runs import run_report

    overrides = dict(kv.split("=", 1) for kv in args.param)
    run_dir = run_report(overrides, notebooks=args.notebooks or None, run_id=args.run_id)
    print(f"report written to {run_dir}")
    from captcha_nb.core.rundir import RunDir

    if RunDir(run_dir).metrics.is_file():
        print(RunDir(run_dir).metrics.read_text())
    return 0


def add_report(sub) -> None:
    p = sub.add_parser("report", help="run the notebooks with papermill into a new reports/<run-id>/")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="notebook parameter, e.g. -p epochs=5")
    p.add_argument("--notebooks", nargs="*", default=list(NOTEBOOKS),
                   help=f"notebook file names to run, in order (default: {' '.join(NOTEBOOKS)})")
    p.add_argument("--run-id", help="name of the report folder (default: date and time, then -1, -2 ... if taken)")
    p.set_defaults(func=cmd_report)


def cmd_sweep(args) -> int:
    import shlex

    from captcha_nb import REPORTS_DIR
    from captcha_nb.workflows import grid as grids
    from captcha_nb.workflows import sweep

    grid = grids.parse_grid(args.param)
    seeds = grids.parse_seeds(args.seeds)
    explicit = grids.read_grid_file(args.file) if args.file else None
    sets = grids.combinations(grid, seeds, explicit)
    command = shlex.join(["python", "-m", "captcha_nb", *args.argv])
    recorded_grid = {"parameters": grid, "seeds": seeds, "file": args.file, "runs": len(sets)}
    state = sweep.prepare_sweep(args.sweep_id, sets, args.notebooks,
                                Path(args.reports) if args.reports else REPORTS_DIR, command, recorded_grid)
    # `kill` (SIGTERM) stops a sweep as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        sweep.run_sweep(state, workers=args.workers, scheduler=args.scheduler)
    except KeyboardInterrupt:
        print(f"interrupted; {sweep.summary(state)}. Run the same command again to resume.", file=sys.stderr)
        return 130
    print(sweep.summary(state))
    failed = state.failed()
    for name, error in failed.items():
        last = error.strip().splitlines()[-1] if error.strip() else "no error text"
        print(f"failed: {name}: {last} (log: {state.sweep_dir / 'logs' / (name + '.log')})", file=sys.stderr)
    return 1 if failed else 0


def add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="run the notebooks over a grid of parameters and seeds into reports/<sweep-id>/")
    p.add_argument("--sweep-id", required=True, help="name of the sweep folder; the same id again resumes the sweep")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="notebook parameter and its values; the grid is the product of all -p and the seeds")
    p.add_argument("--seeds", help="seeds to repeat every combination with, e.g. 0,1,2")
    p.add_argument("--file", help="YAML or JSON list of explicit parameter sets, instead of -p")
    p.add_argument("--notebooks", nargs="+", default=list(NOTEBOOKS),
                   help=f"notebook file names to run per combination (default: {' '.join(NOTEBOOKS)})")
    p.add_argument("--workers", type=int, help="parallel runs on this machine (default: one per core, each run "
                                                "then gets cores / workers torch threads)")
    p.add_argument("--scheduler", help="address of a Dask scheduler, e.g. tcp://10.0.0.5:8786, to run on its workers")
    p.add_argument("--reports", help="reports directory (default: the project's reports/)")
    p.set_defaults(func=cmd_sweep)


def cmd_inspect(args) -> int:
    from captcha_nb.views.app import serve

    # `kill` stops the app as Ctrl-C does, so the Voilà server it started is stopped too rather than left running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return serve(args.run, args.port, args.data)


def add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="serve the prediction inspector as an app (Voilà) on localhost")
    p.add_argument("--run", help="a trained run folder (default: the newest under runs/ and reports/)")
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default: 8866, or a free one if it is taken)")
    p.add_argument("--data", help="the folder holding the run's validation images (default: the one its split.json "
                                  "records)")
    p.set_defaults(func=cmd_inspect)


def cmd_label(args) -> int:
    from captcha_nb.views.app import serve_labelling

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return serve_labelling(args.images, args.run, args.port, args.teacher, args.alphabet)


def add_label(sub) -> None:
    p = sub.add_parser("label", help="serve the labelling app (Voilà) on localhost for a folder of unlabelled captchas")
    p.add_argument("--images", required=True, help="the folder; labels are appended to its labels.csv as you save")
    p.add_argument("--run", help="a trained run whose readings are pre-filled, least confident first")
    p.add_argument("--teacher", help="with no run yet, a reader whose readings are pre-filled: 'ddddocr' (needs "
                                     "--alphabet)")
    p.add_argument("--alphabet", help="the characters the captchas use, for --teacher")
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default: 8866, or a free one if it is taken)")
    p.set_defaults(func=cmd_label)


def add_pixel_limit(parser: argparse.ArgumentParser) -> None:
    from captcha_nb.sources.files import MAX_IMAGE_PIXELS

    parser.add_argument("--max-image-pixels", type=int, default=MAX_IMAGE_PIXELS,
                        help=f"refuse pictures with more pixels than this, from their header (default: {MAX_IMAGE_PIXELS})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m captcha_nb", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_train, add_predict, add_evaluate, add_synth, add_download, add_export, add_runs, add_report, add_sweep, add_inspect, add_label):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # a sweep records the command that made it
    warnings.showwarning = _warning_line
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
