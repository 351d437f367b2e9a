import numpy as np
import pytest
import torch

from captcha_nb.core.ctc import Alphabet, beam_search, ctc_loss, encode_targets, greedy_decode, min_time_steps


def one_hot_path(path, num_classes, peak=0.9):
    """A (T, C) probability matrix whose argmax follows the given class path."""
    probs = np.full((len(path), num_classes), (1 - peak) / (num_classes - 1))
    for t, c in enumerate(path):
        probs[t, c] = peak
    return probs


def test_greedy_merges_repeats_before_dropping_blanks():
    # classes: 0 blank, 1 '8', 2 'x'. Path "8 8 - 8 x x" reads "88x", not "8x" nor "888x".
    probs = one_hot_path([1, 1, 0, 1, 2, 2], 3)
    (decoding,) = greedy_decode(probs[None])
    assert decoding.classes == [1, 1, 2]
    assert len(decoding.confidences) == 3
    assert decoding.frames[0] in (0, 1) and decoding.frames[1] == 3


def test_greedy_all_blank_is_empty_with_zero_confidence():
    (decoding,) = greedy_decode(one_hot_path([0, 0, 0], 4)[None])
    assert decoding.classes == [] and decoding.confidence == 0.0


def test_greedy_confidence_is_the_runs_best_frame():
    probs = np.array([[0.1, 0.6, 0.3], [0.05, 0.9, 0.05], [0.8, 0.1, 0.1]])
    (decoding,) = greedy_decode(probs[None])
    assert decoding.classes == [1]
    assert decoding.confidences == pytest.approx([0.9])
    assert decoding.frames == [1]


def test_beam_search_beats_greedy_when_paths_share_a_prefix():
    # Best single path is blank-blank (0.36), but "a" has total probability 0.64 over three paths.
    probs = np.array([[0.6, 0.4], [0.6, 0.4]])
    (greedy,) = greedy_decode(probs[None])
    assert greedy.classes == []
    classes, log_p = beam_search(probs, beam_width=4)
    assert classes == [1]
    assert np.exp(log_p) == pytest.approx(0.64)


def test_beam_search_keeps_doubled_characters():
    probs = one_hot_path([1, 0, 1, 2], 3, peak=0.97)
    classes, _ = beam_search(probs, beam_width=5)
    assert classes == [1, 1, 2]


def test_beam_search_agrees_with_greedy_on_confident_input():
    rng = np.random.default_rng(0)
    path = rng.integers(0, 5, size=12)
    probs = one_hot_path(path, 5, peak=0.99)
    (greedy,) = greedy_decode(probs[None])
    assert beam_search(probs, beam_width=8)[0] == greedy.classes


def test_min_time_steps_counts_doubled_pairs():
    assert min_time_steps("abcde") == 5
    assert min_time_steps("a88b8") == 6
    assert min_time_steps("8888") == 7


def test_ctc_loss_handles_variable_lengths_and_impossible_targets():
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 4, requires_grad=True)
    targets = torch.tensor([1, 2, 3, 1, 1, 1, 1, 1, 1, 1, 1])  # lengths 3, 1, 7 (7 cannot fit in 6 steps)
    loss = ctc_loss(logits, targets, torch.tensor([3, 1, 7]))
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_ctc_loss_is_float32_under_half_precision_logits():
    logits = torch.randn(2, 5, 3).to(torch.bfloat16)
    loss = ctc_loss(logits, torch.tensor([1, 2, 2]), torch.tensor([2, 1]))
    assert loss.dtype == torch.float32


def test_beam_alternatives_rank_the_readings_with_their_probabilities():
    from captcha_nb.core.ctc import beam_alternatives

    probs = np.array([[0.6, 0.4], [0.6, 0.4]])
    readings = beam_alternatives(probs, beam_width=4, top=3)
    assert [classes for classes, _ in readings] == [[1], [], [1, 1]]
    assert [np.exp(p) for _, p in readings] == pytest.approx([0.64, 0.36, 0.0], abs=1e-9)


def test_runner_ups_name_the_best_other_character_at_each_peak():
    from captcha_nb.core.ctc import runner_ups

    # classes: blank, 'a', 'b', 'c'; at the peak of 'a' the model also considered 'c'.
    probs = np.array([[0.1, 0.7, 0.05, 0.15], [0.9, 0.04, 0.03, 0.03], [0.05, 0.05, 0.85, 0.05]])
    (decoding,) = greedy_decode(probs[None])
    assert runner_ups(probs, decoding.frames, decoding.classes) == [(3, pytest.approx(0.15)), (1, pytest.approx(0.05))]

def test_alphabet_reserves_class_zero_for_blank():
    alphabet = Alphabet.from_labels(["b2a", "22c"])
    assert alphabet.chars == "2abc"
    assert alphabet.num_classes == 5
    assert alphabet.encode("a2") == [2, 1]
    assert alphabet.decode([2, 0, 1]) == "a2"


def test_alphabet_names_unknown_characters():
    with pytest.raises(ValueError, match="Z"):
        Alphabet("abc").encode("aZ")
    assert not Alphabet("abc").can_encode("aZ")


def test_targets_are_concatenated_with_lengths():
    targets, lengths = encode_targets(["ab", "b"], Alphabet("ab"))
    assert targets.tolist() == [1, 2, 2] and lengths.tolist() == [2, 1]
