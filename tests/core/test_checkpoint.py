import pytest
import torch

from captcha_nb.core.checkpoint import CheckpointError, atomic_save, read_checkpoint
from captcha_nb.serving.inference import load_model


def test_checkpoint_carries_alphabet_geometry_and_metrics(trained_run):
    payload = read_checkpoint(trained_run.run_dir / "model.pt")
    assert payload["alphabet"] == "23abcd"
    spec = payload["input"]
    assert (payload["height"], payload["width"]) == (spec["height"], spec["width"])
    assert spec["ink"] is True and spec["width"] / 6 >= 20  # six-character labels get 20 pixels per character
    assert payload["config"]["model"] == "crnn" and "val_seq_accuracy" in payload["metrics"]


def test_load_model_rebuilds_an_equivalent_model(trained_run):
    recogniser = load_model(trained_run.run_dir / "model.pt")
    assert recogniser.alphabet.chars == "23abcd"
    out = recogniser.model(torch.zeros(1, 1, recogniser.height, recogniser.width))
    assert out.shape == (1, recogniser.width // 4, 7)


def test_another_alphabet_is_refused(trained_run):
    with pytest.raises(CheckpointError, match="alphabet"):
        load_model(trained_run.run_dir / "model.pt", alphabet="xyz")


def test_non_checkpoint_files_are_refused(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a captcha_nb checkpoint"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_pickled_code_is_never_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('executed')",))

    torch.save({"format": "x", "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "evil.pt")


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "model.pt"
    atomic_save({"a": torch.ones(1)}, target)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save({"a": Unpicklable()}, target)
    assert torch.load(target, weights_only=True)["a"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_checkpoints_from_before_the_input_spec_still_load(trained_run, tmp_path):
    payload = read_checkpoint(trained_run.run_dir / "model.pt")
    del payload["input"]
    atomic_save(payload, tmp_path / "old.pt")
    recogniser = load_model(tmp_path / "old.pt")
    assert recogniser.spec.ink is False and recogniser.spec.crop is None
    assert (recogniser.height, recogniser.width) == (payload["height"], payload["width"])
