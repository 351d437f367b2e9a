import pandas as pd
import pytest

from captcha_nb.views import analysis
from captcha_nb.views.analysis import MISSING


def test_aligned_pairs_cover_substitutions_insertions_deletions():
    assert analysis.aligned_pairs("abc", "abc") == [("a", "a"), ("b", "b"), ("c", "c")]
    assert analysis.aligned_pairs("abc", "axc") == [("a", "a"), ("b", "x"), ("c", "c")]
    assert analysis.aligned_pairs("a88b", "a8b") == [("a", "a"), ("8", "8"), ("8", MISSING), ("b", "b")]
    assert analysis.aligned_pairs("ab", "abz") == [("a", "a"), ("b", "b"), (MISSING, "z")]
    assert analysis.aligned_pairs("ab", "") == [("a", MISSING), ("b", MISSING)]


def test_confusion_matrix_counts_every_true_character():
    matrix = analysis.confusion_matrix(["abc", "a88b"], ["abd", "a8b"], alphabet="8abcd")
    assert matrix.loc["c", "d"] == 1 and matrix.loc["8", MISSING] == 1 and matrix.loc["a", "a"] == 2
    assert matrix.drop(index=MISSING).to_numpy().sum() == 7
    top = analysis.top_confusions(matrix)
    assert set(map(tuple, top[["truth", "prediction"]].to_numpy())) == {("c", "d"), ("8", MISSING)}


def test_position_accuracy():
    table = analysis.position_accuracy(["abc", "abd"], ["abc", "axd"])
    assert table["accuracy"].to_dict() == {1: 1.0, 2: 0.5, 3: 1.0}


def test_coverage_rejects_the_least_confident_first():
    table = analysis.coverage_table([0.9, 0.1, 0.8, 0.2], [True, False, True, True], steps=4)
    assert table["coverage"].tolist() == [1.0, 0.75, 0.5, 0.25]
    assert table["accuracy"].tolist() == [0.75, 1.0, 1.0, 1.0]
    assert table["threshold"].iloc[1] == pytest.approx(0.2)


def test_closest_calls_put_errors_first_then_the_least_confident_correct_readings():
    table = pd.DataFrame({"name": list("abcde"), "confidence": [0.9, 0.2, 0.5, 0.99, 0.7],
                          "correct": [True, True, False, True, False]})
    assert analysis.closest_calls(table, 4)["name"].tolist() == ["c", "e", "b", "a"]
    # A split read without an error still shows where the model was least sure.
    perfect = table.assign(correct=True)
    assert analysis.closest_calls(perfect, 2)["name"].tolist() == ["b", "c"]


def test_predict_dataset_and_decoder_comparison(recogniser, tiny_set):
    table, predictions = analysis.predict_dataset(recogniser, tiny_set)
    assert len(table) == len(predictions) == 40
    assert predictions[0].probs.shape == (recogniser.width // 4, recogniser.alphabet.num_classes)
    assert (table["correct"] == (table["truth"] == table["prediction"])).all()
    assert len(analysis.error_table(table)) == (~table["correct"]).sum()
    decoders = analysis.compare_decoders(recogniser, tiny_set, beam_widths=(0, 3))
    assert list(decoders.index) == ["greedy", "beam 3"]
    beam_table, _ = analysis.predict_dataset(recogniser, tiny_set, beam_width=3)
    assert decoders.loc["beam 3", "seq_accuracy"] == pytest.approx(beam_table["correct"].mean())
    assert set(analysis.disagreements(table, beam_table).columns) == {"name", "truth", "prediction_a", "prediction_b"}


def test_calibration_bins_raw_and_calibrated_confidences(recogniser, tiny_set):
    bins, errors = analysis.calibration(recogniser, tiny_set)
    assert set(bins["confidences"]) == {"raw", "calibrated"} and len(bins) == 20
    assert bins.groupby("confidences")["count"].sum().tolist() == [len(tiny_set)] * 2
    assert set(errors) == {"raw", "calibrated"} and all(0 <= e <= 1 for e in errors.values())
