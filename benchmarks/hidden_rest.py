"""How well each run of a label benchmark reads the training pictures whose labels the benchmark hid: the undrawn rest
of the style's `_train` folder (for captcha_images_v2, of its shared pictures outside the 140 hold-out), which the run
saw unlabelled in its pool. A figure to decide a rule on, never a headline: the headline is the `_test` folder, which
no decision may look at. Development data only (the recipe never reads these labels).

    python benchmarks/hidden_rest.py reports/benchmarks/labels-2026-12-02-patience-2min [--limit 500]
"""
import argparse
import glob
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labels import pools  # noqa: E402
from styles import find_styles  # noqa: E402

from captcha_nb.serving.predict import predict_files  # noqa: E402
from captcha_nb.sources.data import read_labels  # noqa: E402


def hidden_rest(style: str, count: int, seed: int, styles: dict) -> list[tuple[Path, str]]:
    """The labelled pictures the benchmark's draw of `count` (seed `seed`) left out, as labels.py draws them."""
    train, test = styles[style]
    pool = pools(train, test, Path("/tmp/hidden_rest"), style)[0] if test is None else read_labels(train)
    taken = {path for path, _ in random.Random(seed).sample(pool, count)}
    return [pair for pair in pool if pair[0] not in taken]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a label benchmark's output folder (with runs/)")
    parser.add_argument("--limit", type=int, default=500, help="score at most this many hidden pictures per run")
    args = parser.parse_args()
    styles = find_styles([Path("../shared/data"), Path("../shared/data/styles")])
    for model in sorted(glob.glob(args.folder + "/runs/*/model.pt")):
        name = Path(model).parent.name
        style, n, seed, _ = name.rsplit("-", 3)
        rest = hidden_rest(style, int(n[1:]), int(seed[4:]), styles)
        if not rest:
            continue
        rest = random.Random(0).sample(rest, min(args.limit, len(rest)))
        truths = dict(rest)
        right = sum(p is not None and p.text == truths[path] for path, p, _ in predict_files(model, list(truths)))
        print(f"{name}: {right}/{len(rest)} = {right / len(rest):.3f} of the hidden rest")


if __name__ == "__main__":
    main()
