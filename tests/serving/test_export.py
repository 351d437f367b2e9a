import numpy as np
import pytest
import torch

from captcha_nb.core.ctc import greedy_decode
from captcha_nb.core.model import to_float
from captcha_nb.serving.export import export, load_exported


@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_exported_model_reads_like_the_pytorch_model(tmp_path, trained_run, recogniser, tiny_set, fmt, suffix):
    path = export(trained_run.run_dir / "model.pt", fmt, tmp_path / f"model{suffix}")
    run, info = load_exported(path)
    assert info["alphabet"] == recogniser.alphabet.chars
    assert (info["height"], info["width"], info["in_channels"]) == (recogniser.height, recogniser.width, 1)
    assert info["preprocessing"] == recogniser.spec.to_dict()
    images = to_float(tiny_set.tensor(recogniser.spec))
    with torch.inference_mode():
        expected = recogniser.model(images).softmax(-1)
    exported = torch.from_numpy(run(images.numpy())).softmax(-1)
    decode = lambda probs: [d.classes for d in greedy_decode(probs)]
    assert decode(exported) == decode(expected)
    assert np.allclose(exported.numpy(), expected.numpy(), atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left behind


def test_unknown_format_is_refused(trained_run, tmp_path):
    with pytest.raises(ValueError, match="format='tflite'"):
        export(trained_run.run_dir / "model.pt", "tflite", tmp_path / "m")


def test_cli_export(trained_run, tmp_path, capsys):
    from captcha_nb.cli import main

    assert main(["export", "--checkpoint", str(trained_run.run_dir / "model.pt"), "--format", "onnx",
                 "--out", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 10_000


def test_fastest_backend_reads_exactly_like_pytorch(trained_run, tiny_set):
    from captcha_nb.serving.inference import load_model

    reference = load_model(trained_run.run_dir / "model.pt")
    fast = load_model(trained_run.run_dir / "model.pt")
    images = tiny_set.tensor(fast.spec)
    assert fast.use_fastest(images[:8]) == "onnx"
    expected = reference.predict_tensor(images)
    got = fast.predict_tensor(images)
    assert [p.text for p in got] == [p.text for p in expected]
    assert np.allclose([p.confidence for p in got], [p.confidence for p in expected], atol=1e-4)


def test_fastest_backend_falls_back_to_torch_when_onnxruntime_is_missing(trained_run, tiny_set, monkeypatch):
    import sys

    from captcha_nb.serving.inference import load_model

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    recogniser = load_model(trained_run.run_dir / "model.pt")
    assert recogniser.use_fastest(tiny_set.tensor(recogniser.spec)[:4]) == "torch"
    assert recogniser.predict_tensor(tiny_set.tensor(recogniser.spec)[:2])


def test_fastest_backend_is_decided_once(trained_run, tiny_set, monkeypatch):
    from captcha_nb.serving import onnx_backend
    from captcha_nb.serving.inference import load_model

    recogniser = load_model(trained_run.run_dir / "model.pt")
    calls = []
    monkeypatch.setattr(onnx_backend, "onnx_bytes", lambda r: calls.append(1) or (_ for _ in ()).throw(RuntimeError()))
    images = tiny_set.tensor(recogniser.spec)[:4]
    assert recogniser.use_fastest(images) == "torch" and recogniser.use_fastest(images) == "torch"
    assert len(calls) == 1
