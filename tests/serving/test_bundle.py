"""The shipped reader reads exactly as `Reader` does, in a process where torch and captcha_nb cannot be imported."""

import csv
import io
import subprocess
import sys

import pytest

from captcha_nb import Reader
from captcha_nb.serving.export import export

BLOCKED = ("torch", "captcha_nb")


@pytest.fixture(scope="module")
def bundle(trained_run, tmp_path_factory):
    return export(trained_run.run_dir / "model.pt", "bundle", tmp_path_factory.mktemp("shipped") / "bundle")


def without(tmp_path, modules=BLOCKED) -> dict:
    """An environment whose PYTHONPATH first offers packages that refuse to be imported."""
    import os

    for name in modules:
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('{name} is not available to a bundle')\n")
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def test_the_bundle_holds_the_model_its_rules_and_a_standalone_reader(bundle):
    assert sorted(p.name for p in bundle.iterdir()) == ["captcha_geometry.py", "model.onnx", "read_captcha.py",
                                                        "reader.json"]


def test_the_bundle_reads_every_image_as_reader_does_without_torch(bundle, trained_run, tiny_dir, tmp_path):
    images = sorted(tiny_dir.glob("*.png"))
    expected = Reader.from_run(trained_run.run_dir, device="cpu").read_many(images)
    env = without(tmp_path)
    refused = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert "not available to a bundle" in refused.stderr  # the guard works, so the bundle below runs without torch
    done = subprocess.run([sys.executable, str(bundle / "read_captcha.py"), *map(str, images)], env=env,
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["path"] for r in rows] == [str(p) for p in images]
    assert [r["prediction"] for r in rows] == [e.text for e in expected]
    assert all(abs(float(r["confidence"]) - e.confidence) <= 1e-4 for r, e in zip(rows, expected))


def test_a_bad_file_is_named_and_the_rest_are_read(bundle, tiny_dir, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"no picture here")
    good = sorted(tiny_dir.glob("*.png"))[0]
    done = subprocess.run([sys.executable, str(bundle / "read_captcha.py"), str(broken), str(good)],
                          env=without(tmp_path / "blocked"), capture_output=True, text=True)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert done.returncode == 1 and "broken.png" in done.stderr
    assert rows[0]["prediction"] == "" and rows[1]["path"] == str(good)


def test_export_refuses_to_write_a_bundle_over_other_files(trained_run, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        export(trained_run.run_dir / "model.pt", "bundle", tmp_path)
