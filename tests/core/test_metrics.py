import math

import pytest

from captcha_nb.core.metrics import character_error_rate, sequence_accuracy


def test_sequence_accuracy_counts_exact_matches_only():
    assert sequence_accuracy(["abc", "abd", "x"], ["abc", "abc", "x"]) == pytest.approx(2 / 3)


def test_cer_is_edit_distance_over_total_truth_length():
    # one substitution, one deletion, one insertion over 3 + 3 + 2 characters
    assert character_error_rate(["abx", "ab", "xyz"], ["abc", "abc", "xy"]) == pytest.approx(3 / 8)


def test_cer_of_empty_prediction_is_one():
    assert character_error_rate([""], ["88xy"]) == 1.0


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError):
        sequence_accuracy(["a"], ["a", "b"])


def test_no_labels_gives_nan():
    assert math.isnan(sequence_accuracy([], []))
