"""Rebuilding the shared captcha styles from their public sources (`download --style NAME`).

Every picture of the styles the benchmarks use is listed in `style_sources.csv.gz` (shipped with the package): its
style, split, file name, label, and the public GitHub repository, commit and path it came from, with the sha256 of
its bytes. Each file is fetched from the repository's raw files at that commit (or from a local mirror laid out as
`ROOT/<repository>/<commit>/<path>`), checked against its sha256, and written under its listed name; `labels.csv` is
written for the labelled splits. The folders are built beside the destination and renamed into place only when every
file of the style has arrived and matched, so a failure leaves nothing half written.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from captcha_nb.sources.files import LABELS_FILE

SOURCES = Path(__file__).with_name("style_sources.csv.gz")
RAW_URL = "https://raw.githubusercontent.com/{repository}/{commit}/{path}"
SPLITS = ("train", "test", "unlabelled")  # each a folder <style>_<split>; only the first two have labels
MAX_FILE_BYTES = 4_000_000  # a captcha is a few KB: a larger answer is not the file listed
TIMEOUT_SECONDS = 30


class SourceError(RuntimeError):
    """A style that cannot be rebuilt: unknown, unreachable, or a file that is not the one listed."""


@dataclass(frozen=True)
class Source:
    style: str
    split: str
    filename: str
    label: str
    repository: str
    commit: str
    path: str
    sha256: str


def read_sources(path: Path = SOURCES) -> list[Source]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return [Source(**row) for row in csv.DictReader(f)]


def style_names(sources: list[Source]) -> list[str]:
    return sorted({s.style for s in sources})


def fetcher(root: str | None) -> Callable[[Source], bytes]:
    """Bytes of a listed file: from the repository's raw files, or from a local mirror `root`."""
    if root:
        base = Path(root)
        return lambda s: (base / s.repository / s.commit / PurePosixPath(s.path)).read_bytes()

    def fetch(s: Source) -> bytes:
        url = RAW_URL.format(repository=s.repository, commit=s.commit, path=s.path)
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
            return answer.read(MAX_FILE_BYTES + 1)

    return fetch


def safe_name(name: str) -> str:
    """A listed file name, refused if it could land outside its folder."""
    if not name or PurePosixPath(name).name != name or name in (".", "..") or "\\" in name:
        raise SourceError(f"refusing the listed file name {name!r}")
    return name


def rebuild_style(style: str, dest: Path, root: str | None = None, sources: list[Source] | None = None,
                  progress: bool = True) -> list[Path]:
    """Build dest/<style>_<split>/ for every split the style has; return the folders. Existing folders are left
    alone (remove one to rebuild it)."""
    sources = read_sources() if sources is None else sources
    rows = [s for s in sources if s.style == style]
    if not rows:
        raise SourceError(f"--style {style!r} is not one of {', '.join(style_names(sources))}")
    dest = Path(dest)
    folders = [dest / f"{style}_{split}" for split in SPLITS if any(s.split == split for s in rows)]
    if all(folder.is_dir() for folder in folders):
        return folders
    partial = dest / f".{style}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    fetch = fetcher(root)
    try:
        for s in tqdm(rows, desc=f"{style} pictures", unit="file", disable=not progress):
            try:
                content = fetch(s)
            except (OSError, urllib.error.URLError) as error:
                where = root or "raw.githubusercontent.com"
                raise SourceError(f"cannot fetch {s.repository}/{s.path} from {where} ({error}); nothing was "
                                  f"written") from None
            if len(content) > MAX_FILE_BYTES or hashlib.sha256(content).hexdigest() != s.sha256:
                raise SourceError(f"{s.repository}@{s.commit[:8]}/{s.path} does not match its sha256; nothing was "
                                  f"written")
            target = partial / f"{style}_{s.split}" / safe_name(s.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        for split in SPLITS:
            labelled = [s for s in rows if s.split == split and s.label]
            if labelled:
                buffer = io.StringIO(newline="")
                writer = csv.writer(buffer)  # "\r\n" line ends, as the shared folders have them
                writer.writerow(["filename", "label"])
                writer.writerows([s.filename, s.label] for s in labelled)
                (partial / f"{style}_{split}" / LABELS_FILE).write_text(buffer.getvalue(), encoding="utf-8",
                                                                       newline="")
        for folder in folders:
            if not folder.is_dir():
                (partial / folder.name).rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folders
