import pytest
import torch

from captcha_nb.views import explore

LABELS = ["ab88c", "xyzab", "aab", "abcd"]


def test_overview_counts_and_alphabet(tiny_set):
    table = explore.overview(tiny_set)
    assert table["images"] == 40 and table["alphabet"] == "23abcd"
    assert (table["shortest label"], table["longest label"]) == (4, 6)


def test_length_and_character_frequencies():
    assert explore.length_distribution(LABELS).to_dict() == {3: 1, 4: 1, 5: 2}
    freq = explore.character_frequency(LABELS)
    assert freq["a"] == 5 and freq["8"] == 2 and freq.sum() == sum(map(len, LABELS))


def test_position_frequency_is_per_position():
    table = explore.position_frequency(LABELS)
    assert table.loc["a", 1] == 3 and table.loc["a", 4] == 1 and table.loc["8", 3] == 1
    assert table.to_numpy().sum() == sum(map(len, LABELS))


def test_doubled_share():
    assert explore.doubled_share(LABELS) == pytest.approx(0.5)


def test_image_formats_reads_sizes_and_modes(tiny_set):
    table = explore.image_formats(tiny_set.paths)
    assert table.to_dict("records") == [{"width": 100, "height": 32, "mode": "RGB", "images": 40}]


def test_pixel_statistics():
    images = torch.tensor([[[[0, 255]]], [[[255, 255]]]], dtype=torch.uint8)
    stats = explore.pixel_statistics(images)
    assert stats.loc[0, "mean"] == pytest.approx(191.25) and stats.loc[0, "min"] == 0


def test_split_summary():
    labels = {"a.png": "aa1", "b.png": "b2c", "c.png": "ccc"}
    table = explore.split_summary(["a.png", "b.png"], ["c.png"], labels)
    assert table.loc["train", "images"] == 2 and table.loc["validation", "doubled share"] == 1.0
