"""Rebuilding a shared style from its sources: byte for byte, checked, and nothing half written on failure."""

import filecmp
import hashlib
import urllib.error
from pathlib import Path, PurePosixPath

import pytest

from captcha_nb import PROJECT_ROOT
from captcha_nb.sources import styles
from captcha_nb.sources.styles import Source, SourceError, read_sources, rebuild_style

SHARED_STYLES = PROJECT_ROOT.parent / "shared" / "data" / "styles"


def mirror_of(rows: list[Source], files: dict[str, bytes], root: Path) -> Path:
    """A local mirror laid out as the repositories are: root/<repository>/<commit>/<path>."""
    for s in rows:
        target = root / s.repository / s.commit / PurePosixPath(s.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[s.path])
    return root


def made_up(tmp_path, n: int = 3) -> tuple[list[Source], Path]:
    files = {f"pics/{i}.png": f"picture {i}".encode() for i in range(n)}
    rows = [Source("toy", "train" if i else "unlabelled", f"{i:05d}.png", "ab" if i else "", "someone/repo", "c0ffee",
                   path, hashlib.sha256(content).hexdigest()) for i, (path, content) in enumerate(files.items())]
    return rows, mirror_of(rows, files, tmp_path / "mirror")


def test_a_style_is_rebuilt_from_a_mirror_with_its_labels(tmp_path):
    rows, mirror = made_up(tmp_path)
    folders = rebuild_style("toy", tmp_path / "out", str(mirror), rows, progress=False)
    assert [f.name for f in folders] == ["toy_train", "toy_unlabelled"]
    assert (tmp_path / "out" / "toy_train" / "labels.csv").read_bytes() == b"filename,label\r\n00001.png,ab\r\n" \
        b"00002.png,ab\r\n"
    assert (tmp_path / "out" / "toy_unlabelled" / "00000.png").read_bytes() == b"picture 0"
    assert not (tmp_path / "out" / "toy_unlabelled" / "labels.csv").exists()


def test_a_file_that_is_not_the_one_listed_leaves_nothing_behind(tmp_path):
    rows, mirror = made_up(tmp_path)
    (mirror / "someone/repo/c0ffee/pics/2.png").write_bytes(b"tampered")
    with pytest.raises(SourceError, match="pics/2.png does not match its sha256"):
        rebuild_style("toy", tmp_path / "out", str(mirror), rows, progress=False)
    assert not list((tmp_path / "out").iterdir())


def test_offline_is_one_clear_error_and_nothing_written(tmp_path, monkeypatch):
    rows, _ = made_up(tmp_path)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(styles.urllib.request, "urlopen", offline)
    with pytest.raises(SourceError, match="cannot fetch someone/repo/pics/0.png from raw.githubusercontent.com"):
        rebuild_style("toy", tmp_path / "out", None, rows, progress=False)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_listed_name_that_climbs_out_of_its_folder_is_refused(tmp_path):
    rows, mirror = made_up(tmp_path, 1)
    rows = [Source(**{**rows[0].__dict__, "filename": "../escape.png"})]
    with pytest.raises(SourceError, match="refusing"):
        rebuild_style("toy", tmp_path / "out", str(mirror), rows, progress=False)
    assert not (tmp_path / "escape.png").exists()


@pytest.mark.skipif(not SHARED_STYLES.is_dir(), reason="the shared styles are not beside the project")
def test_the_kelab_folders_are_rebuilt_byte_identical_to_the_shared_copy(tmp_path):
    rows = [s for s in read_sources() if s.style == "kelab"]
    files = {s.path: (SHARED_STYLES / f"kelab_{s.split}" / s.filename).read_bytes() for s in rows}
    mirror = mirror_of(rows, files, tmp_path / "mirror")
    folders = rebuild_style("kelab", tmp_path / "out", str(mirror), progress=False)
    for folder in folders:
        shared = SHARED_STYLES / folder.name
        names = sorted(p.name for p in shared.iterdir())
        assert sorted(p.name for p in folder.iterdir()) == names
        match, mismatch, errors = filecmp.cmpfiles(shared, folder, names, shallow=False)
        assert not mismatch and not errors, (folder.name, mismatch[:3], errors[:3])
