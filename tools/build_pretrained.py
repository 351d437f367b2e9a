"""Build the general checkpoint that `train --pretrained yes` starts from: a CRNN trained on synthetic captchas.

    python tools/build_pretrained.py [--images 30000] [--minutes 20] [--fonts '/usr/share/fonts/truetype/*/*.ttf']

The pictures come from `captcha_nb.sources.synth` in every font the glob finds (on Debian: DejaVu and Liberation, 38
faces), over digits and both cases of the Latin letters, 4-7 characters, plain, dark and pale looks, so the CNN has
seen glyph shapes in many faces before it meets a style with a few thousand labelled pictures. The run is an ordinary
`captcha_nb train` run (32 rows high: the height most styles get, so the GRU's weights fit them too); its model.pt is
copied to captcha_nb/pretrained/synthetic.pt with a synthetic.json that says how it was built and how well it reads
its own held-out synthetic test split. Nothing here runs in the tests: the file is built once and committed.
"""

from __future__ import annotations

import argparse
import glob
import json
import string
from pathlib import Path

from captcha_nb import project_relative
from captcha_nb.core.checkpoint import atomic_save, read_checkpoint
from captcha_nb.core.config import TrainConfig
from captcha_nb.core.engine import fit
from captcha_nb.sources import synth

PROJECT = Path(__file__).resolve().parents[1]
TARGET = PROJECT / "captcha_nb" / "pretrained" / "synthetic.pt"
ALPHABET = string.digits + string.ascii_lowercase + string.ascii_uppercase


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30000)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--fonts", default="/usr/share/fonts/truetype/*/*.ttf")
    parser.add_argument("--work", default=str(PROJECT / "build" / "pretrain"), help="scratch folder (data and run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", default=str(TARGET), help="where the checkpoint goes (default: the package's)")
    args = parser.parse_args(argv)

    fonts = sorted(glob.glob(args.fonts))
    if not fonts:
        raise SystemExit(f"--fonts {args.fonts!r} matches no font file")
    work = Path(args.work)
    if work.exists():
        raise SystemExit(f"{work} exists: remove it or pass another --work, so no earlier build is mixed in")
    data = synth.generate(work / "data", args.images, alphabet=ALPHABET, length=(4, 7), size=(200, 60),
                          seed=args.seed, look="mixed", fonts=fonts)
    result = fit(TrainConfig(data_dir=str(data), run_dir=str(work / "run"), img_height=32,
                             max_minutes=args.minutes, seed=args.seed))
    metrics = result.metrics
    target = Path(args.target)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = read_checkpoint(result.run_dir / "model.pt")
    # The committed file names no machine's folders: the scratch paths become project-relative.
    for key in ("data_dir", "run_dir"):
        payload["config"][key] = project_relative(payload["config"][key])
    atomic_save(payload, target)
    target.with_suffix(".json").write_text(json.dumps({
        "built_by": "python tools/build_pretrained.py " + " ".join(
            f"--{k} {v}" for k, v in (("images", args.images), ("minutes", args.minutes), ("seed", args.seed))),
        "fonts": [Path(f).name for f in fonts], "alphabet": ALPHABET, "length": [4, 7], "size": [200, 60],
        "look": "mixed", "test_seq_accuracy": metrics.get("test_seq_accuracy"),
        "plateau_seconds": metrics.get("plateau_seconds"), "epochs": metrics.get("epochs_run"),
    }, indent=2) + "\n")
    print(f"wrote {target} (synthetic test accuracy {metrics.get('test_seq_accuracy')})")
    return target


if __name__ == "__main__":
    main()
