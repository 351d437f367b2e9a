import numpy as np
import pytest
import torch

from captcha_nb.core import calibration
from captcha_nb.core.ctc import Alphabet

ALPHABET = Alphabet("ab")


def overconfident_logits(n: int = 200, seed: int = 0):
    """Readings of one character that are right 70 % of the time, with logits that claim about 99 %."""
    rng = np.random.default_rng(seed)
    logits = torch.full((n, 3, 3), -4.0)
    labels = []
    for i in range(n):
        read = 1 + i % 2
        right = rng.random() < 0.7
        labels.append(ALPHABET.decode([read if right else 3 - read]))
        logits[i, 0, 0] = logits[i, 2, 0] = 4.0  # blanks around the character
        logits[i, 1, read] = 4.0
        logits[i, 1, 3 - read] = -1.0
    return logits, labels


def test_the_fitted_temperature_softens_overconfident_readings_and_cuts_the_calibration_error():
    logits, labels = overconfident_logits()
    temperature = calibration.fit_temperature(logits, labels, ALPHABET)
    assert temperature > 1.5
    assert calibration.mean_nll(logits, labels, ALPHABET, temperature) < calibration.mean_nll(logits, labels, ALPHABET, 1)
    errors = calibration.calibration_errors(logits, labels, ALPHABET, temperature)
    assert errors["ece"] < errors["ece_raw"] / 2


def test_temperature_never_changes_a_reading():
    logits, labels = overconfident_logits(50)
    _, right_raw = calibration.confidences_and_correct(logits, labels, ALPHABET, 1.0)
    _, right_hot = calibration.confidences_and_correct(logits, labels, ALPHABET, 4.0)
    assert (right_raw == right_hot).all()


def test_expected_calibration_error_of_perfect_and_of_overconfident_readings():
    confidences = np.array([0.95] * 10 + [0.55] * 10)
    assert calibration.expected_calibration_error(confidences, np.array([1] * 10 + [1] * 5 + [0] * 5)) == \
        pytest.approx(0.5 * 0.05 + 0.5 * 0.05)
    assert calibration.expected_calibration_error(np.array([0.99] * 4), np.array([0, 0, 1, 1])) == pytest.approx(0.49)
    rows = calibration.reliability(confidences, np.ones(20))
    assert sum(r["count"] for r in rows) == 20 and rows[9]["count"] == 10


def test_training_saves_the_temperature_and_reports_calibration(trained_run):
    from captcha_nb.serving.inference import load_model

    recogniser = load_model(trained_run.run_dir / "model.pt")
    assert recogniser.temperature == trained_run.metrics["temperature"] > 0
    for key in ("val_ece_raw", "val_ece"):
        assert 0 <= trained_run.metrics[key] <= 1


def test_a_validation_split_without_misreads_leaves_the_temperature_at_one(tmp_path, monkeypatch):
    from captcha_nb.core.checkpoint import atomic_save, make_payload, read_checkpoint
    from captcha_nb.core.model import build_model
    from captcha_nb.sources.geometry import InputSpec

    class Perfect(torch.nn.Module):
        """Reads 'a' at every picture with near certainty: a split of 'a's is read without error."""

        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))  # so the model has a device

        def forward(self, images):
            logits = torch.full((images.shape[0], 3, 3), -6.0)
            logits[:, 0, 0] = logits[:, 2, 0] = logits[:, 1, 1] = 6.0
            return logits

    spec = InputSpec(32, 12)
    model = build_model("crnn", 3, 32, 12)
    atomic_save(make_payload(model, "crnn", ALPHABET, spec, {}, {}), tmp_path / "model.pt")
    monkeypatch.setattr(calibration, "build_saved_model", lambda payload, path: Perfect())
    images = torch.zeros(20, 1, 32, 12, dtype=torch.uint8)
    result = calibration.calibrate_checkpoint(tmp_path / "model.pt", images, ["a"] * 20, ALPHABET,
                                              torch.device("cpu"))
    assert result["temperature"] == 1.0 and "0 misread" in result["temperature_fit"]
    assert read_checkpoint(tmp_path / "model.pt")["temperature"] == 1.0
    labels = ["b"] * 5 + ["a"] * 15  # five misreads: now the split has something to say
    result = calibration.calibrate_checkpoint(tmp_path / "model.pt", images, labels, ALPHABET, torch.device("cpu"))
    assert result["temperature"] > 1.0 and "fitted on 5" in result["temperature_fit"]
