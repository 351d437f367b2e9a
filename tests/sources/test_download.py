import io
import zipfile

import pytest
from PIL import Image

from captcha_nb.sources import download
from captcha_nb.sources.data import DataError


def png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return path


def test_archive_is_installed_from_its_image_folder(tmp_path):
    archive = make_zip(tmp_path / "d.zip", {"captcha_images_v2/ab12c.png": png_bytes(),
                                            "captcha_images_v2/xy34z.png": png_bytes(),
                                            "__MACOSX/captcha_images_v2/._ab12c.png": b"junk"})
    final = download.install_archive(archive, tmp_path / "data")
    assert final == tmp_path / "data" / "captcha_images_v2"
    assert sorted(p.name for p in final.iterdir()) == ["ab12c.png", "xy34z.png"]
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["captcha_images_v2"]  # no temporary left behind


@pytest.mark.parametrize("evil", ["../evil.png", "/tmp/evil.png", "a/../../evil.png", "..\\evil.png"])
def test_zip_slip_members_are_refused_and_nothing_is_installed(tmp_path, evil):
    archive = make_zip(tmp_path / "bad.zip", {"ok/ab12c.png": png_bytes(), evil: png_bytes()})
    with pytest.raises(DataError, match="unsafe"):
        download.install_archive(archive, tmp_path / "data")
    assert not (tmp_path / "data" / "captcha_images_v2").exists()
    assert not (tmp_path / "evil.png").exists()
    assert list((tmp_path / "data").iterdir()) == []


def test_offline_download_says_how_to_proceed(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(download.urllib.request, "urlopen", refuse)
    with pytest.raises(DataError) as error:
        download.download_dataset(tmp_path)
    message = str(error.value)
    assert "CAPTCHA_DATA_DIR" in message and "synth" in message
    assert list(tmp_path.iterdir()) == []  # the temporary download is gone


def test_existing_data_set_is_not_downloaded_again(tmp_path, monkeypatch):
    (tmp_path / "captcha_images_v2").mkdir()
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: pytest.fail("should not download"))
    assert download.download_dataset(tmp_path) == tmp_path / "captcha_images_v2"
