import pytest

from captcha_nb.core.config import TrainConfig
from captcha_nb.core.schedule import learning_rate, schedule_progress
from captcha_nb.core.start import Progress


def test_learning_rate_warms_up_then_decays():
    assert learning_rate(1.0, 0.0, 0.1) < learning_rate(1.0, 0.05, 0.1) < learning_rate(1.0, 0.1, 0.1) == 1.0
    assert learning_rate(1.0, 1.0, 0.1) == pytest.approx(0.01)


def test_the_peak_rate_is_held_through_the_plateau_then_decays_over_what_is_left():
    config = TrainConfig(warmup_fraction=0.1)
    flat = Progress(plateau_seconds=None)
    assert schedule_progress(config, flat, elapsed=5.0, budget=100.0) == pytest.approx(0.05)  # warming up
    assert schedule_progress(config, flat, elapsed=60.0, budget=100.0) == pytest.approx(0.1)  # held at the peak
    escaped = Progress(plateau_seconds=60.0)
    assert schedule_progress(config, escaped, elapsed=60.0, budget=100.0) == pytest.approx(0.1)
    assert schedule_progress(config, escaped, elapsed=80.0, budget=100.0) == pytest.approx(0.55)
    assert schedule_progress(config, escaped, elapsed=100.0, budget=100.0) == pytest.approx(1.0)


def test_a_warm_start_decays_from_the_end_of_the_warm_up():
    config = TrainConfig(warmup_fraction=0.1, init_from="model.pt")
    assert schedule_progress(config, Progress(plateau_seconds=None), elapsed=55.0, budget=100.0) == pytest.approx(0.55)


def test_a_new_lowest_validation_loss_counts_as_learning_even_without_a_better_reading():
    from captcha_nb.core.schedule import still_learning

    history = [{"val_loss": 0.9}, {"val_loss": 0.6}, {"val_loss": 0.7}]
    assert still_learning([], 5.0)
    assert still_learning(history, 0.59)
    assert not still_learning(history, 0.6) and not still_learning(history, 0.65)
