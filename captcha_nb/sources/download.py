"""Finding the data set, and downloading captcha_images_v2 safely when there is none.

`resolve_data_dir` looks in order at the directory given, $CAPTCHA_DATA_DIR, data/captcha_images_v2, and only then
downloads.

The archive goes to a temporary file, is extracted into a temporary directory beside the destination (refusing
absolute paths and `..` members), and only then is renamed into place, so a half-finished download never looks like
a data set.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from captcha_nb import DATA_ROOT
from captcha_nb.sources.data import IMAGE_SUFFIXES, DataError
from captcha_nb.sources.synth import SYNTHETIC_MARKER, generate

DATASET_URL = "https://github.com/AakashKumarNain/CaptchaCracker/raw/master/captcha_images_v2.zip"
DATASET_NAME = "captcha_images_v2"

OFFLINE_HELP = (
    "Could not download {url} ({error}).\n"
    "Either place the images by hand in {dest} (one PNG per captcha, named by its text, e.g. 226md.png) "
    "or set CAPTCHA_DATA_DIR to a directory of them, or train on synthetic captchas: "
    "python -m captcha_nb synth --out data/synthetic --n 2000"
)


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip into dest, refusing any member that would land outside it (zip-slip)."""
    dest = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            name = PurePosixPath(member.filename.replace("\\", "/"))
            target = (dest / name).resolve()
            if name.is_absolute() or ".." in name.parts or not target.is_relative_to(dest):
                raise DataError(f"{archive}: refusing unsafe archive member {member.filename!r}")
        zf.extractall(dest)


def find_image_dir(root: Path) -> Path:
    """The directory under root holding the most images (archives often wrap them in a folder)."""
    best, best_count = None, 0
    for directory in [root, *[p for p in root.rglob("*") if p.is_dir() and "__MACOSX" not in p.parts]]:
        count = sum(1 for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if count > best_count:
            best, best_count = directory, count
    if best is None:
        raise DataError("the downloaded archive holds no images")
    return best


def install_archive(archive: Path, dest_root: Path, name: str = DATASET_NAME) -> Path:
    """Extract an archive and move its image folder to dest_root/name in one rename."""
    dest_root.mkdir(parents=True, exist_ok=True)
    final = dest_root / name
    with tempfile.TemporaryDirectory(dir=dest_root, prefix=f".{name}-") as tmp:
        safe_extract(archive, Path(tmp))
        images = find_image_dir(Path(tmp))
        if final.exists():
            raise DataError(f"{final} already exists; remove it to download again")
        images.rename(final)
    return final


def download_dataset(dest_root: Path, url: str = DATASET_URL, timeout: float = 60) -> Path:
    """Download and install the data set under dest_root; return its directory."""
    final = dest_root / DATASET_NAME
    if final.is_dir():
        return final
    dest_root.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest_root, prefix=".download-", suffix=".zip") as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, tmp)
            tmp.flush()
        except OSError as error:
            raise DataError(OFFLINE_HELP.format(url=url, error=error, dest=final)) from None
        return install_archive(Path(tmp.name), dest_root)


def resolve_data_dir(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Pick the data set directory: explicit argument, then $CAPTCHA_DATA_DIR, then data/captcha_images_v2, then download."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise DataError(f"data directory {path} does not exist")
        return path
    from_env = os.environ.get("CAPTCHA_DATA_DIR")
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_dir():
            raise DataError(f"CAPTCHA_DATA_DIR={from_env} is not a directory")
        return path
    default = DATA_ROOT / DATASET_NAME
    if default.is_dir():
        return default
    if not download:
        raise DataError(f"no data set found at {default}; pass a directory or set CAPTCHA_DATA_DIR")
    return download_dataset(DATA_ROOT)


# Offline and without data, every entry point falls back to this generated set, marked as synthetic.
SYNTHETIC_DIR = DATA_ROOT / "synthetic"
SYNTHETIC_SIZE = 1200


def data_or_synthetic(data_dir: str | None) -> tuple[Path, bool]:
    """The data set: the one given, else the usual resolution order (download included), else synthetic captchas.

    Returns the folder and whether it is synthetic. Offline and without data, every entry point (make run, the
    notebooks opened by hand, nbval) falls back to the same generated set, marked as synthetic.
    """
    try:
        return resolve_data_dir(data_dir), False
    except DataError as error:
        if data_dir:
            raise
        print(f"{error}\n\nNo data set is available, so this runs on SYNTHETIC captchas ({SYNTHETIC_DIR}); "
              f"reports and notebooks mark it as synthetic.", file=sys.stderr)
        if not (SYNTHETIC_DIR / SYNTHETIC_MARKER).exists():
            generate(SYNTHETIC_DIR, SYNTHETIC_SIZE, seed=0)
        return SYNTHETIC_DIR, True
