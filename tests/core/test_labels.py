import pytest

from captcha_nb.core.labels import Alphabet, encode_targets


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
