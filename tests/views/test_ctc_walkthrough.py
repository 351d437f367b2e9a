from pathlib import Path

import numpy as np
import pytest

from captcha_nb.views import ctc_walkthrough as ctc


def test_the_built_captcha_is_read_differently_by_the_best_path_and_the_best_labelling():
    log_probs, alphabet = ctc.built_disagreement()
    table = ctc.decoder_table(log_probs, alphabet, beam_width=5)
    assert table["reading"].iloc[0] == "" and table["path probability"].iloc[0] == pytest.approx(0.125)
    assert table["reading"].iloc[1] == "a" and table["label probability"].iloc[1] == pytest.approx(0.524)
    # every beam reading shows its own best path: a is read best by one frame of a, blanks elsewhere (0.5 x 0.5 x 0.4)
    assert table["path probability"].iloc[1] == pytest.approx(0.1) and not table.isna().any().any()


def test_a_real_reading_agrees_with_torch_and_has_2l_plus_1_states(recogniser, tiny_set):
    index = ctc.doubled_letter_index(tiny_set)
    reading = ctc.read_captcha(recogniser, tiny_set, index)
    check = ctc.lattice_check(reading)
    assert check["difference"] < 1e-6 and check["states"] == 2 * len(reading.truth) + 1
    assert ctc.alpha_table(reading).shape == (check["frames"], check["states"])
    fresh = ctc.untrained_reading(reading, recogniser.model_name)
    # Gradients sum to zero over the classes of every frame: softmax and posteriors are both distributions.
    assert np.allclose(ctc.gradient(fresh).sum(axis=1), 0, atol=1e-9)


def test_the_shown_captcha_is_the_first_with_a_doubled_character():
    from captcha_nb.sources.data import CaptchaSet

    labels = ["abcd", "abbc", "aabc"]
    dataset = CaptchaSet([Path(f"{label}.png") for label in labels], labels, [(10, 10)] * 3)
    assert ctc.doubled_letter_index(dataset) == 1
    assert ctc.doubled_letter_index(CaptchaSet([Path("x.png")], ["abc"], [(10, 10)])) == 0


def test_snapshots_record_every_epoch_of_a_short_run(tiny_dir, tiny_set):
    snapshots, metrics = ctc.plateau_run(tiny_dir, tiny_set.images[:2], minutes=0.05)
    assert len(snapshots.epochs) == metrics["epochs_run"] >= 1
    table = snapshots.argmax_table(picture=1)
    assert len(table) == len(snapshots.epochs) and set("".join(table.to_numpy().ravel())) <= set("-" + metrics["alphabet"])
    assert 0 <= snapshots.blank_share().iloc[0] <= 1


def test_the_plateau_is_shown_at_the_epochs_where_the_reading_changes():
    def snap(epoch, path):  # one picture, frames follow `path` over the classes of "-ab"
        probs = np.full((1, len(path), 3), 0.05)
        for t, c in enumerate(path):
            probs[0, t, c] = 0.9
        return {"epoch": epoch, "seconds": float(epoch), "val_seq_accuracy": 0.0, "probs": probs, "alphabet": "ab"}

    paths = [[0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 2], [1, 0, 2]]
    snapshots = ctc.FrameSnapshots(Path("unused"), [], [snap(e, p) for e, p in enumerate(paths, start=1)])
    assert len(snapshots.argmax_table()) == 7
    assert list(snapshots.argmax_table(changes_only=True).index) == ["1 (1 s)", "4 (4 s)", "6 (6 s)", "7 (7 s)"]
    points = snapshots.turning_points()
    assert list(points.index) == [1, 4, 6, 7] and list(points["reads"]) == ["(nothing)", "a", "ab", "ab"]
    assert points.loc[1, "blank share"] == 1.0 and points.loc[6, "blank share"] == pytest.approx(1 / 3, abs=1e-3)
