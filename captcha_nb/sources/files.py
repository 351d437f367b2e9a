"""Files on disk: which names are pictures, how large a picture may be, and writing a file so that a crash never
leaves half of it (write beside the target, then rename over it).

Kept free of torch and numpy so that the command line can describe itself without importing them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
LABELS_FILE = "labels.csv"
# Captchas are small (captcha_images_v2 is 10,000 pixels, the largest style we know 62,400). A picture of more than
# this many pixels is refused from its header, before its pixels are decoded: a 24 KB PNG can declare 12000x9000.
MAX_IMAGE_PIXELS = 4_000_000


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary_path)`, then move the result onto `path` in one rename; on failure the old file stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    # mkstemp makes the file private (0600); a run file is meant to be read like any other, so it keeps the mode of
    # the file it replaces, or gets the usual 0644.
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, payload) -> Path:
    """JSON, UTF-8, human-readable, written atomically."""
    text = json.dumps(payload, indent=1, ensure_ascii=False, default=str)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
