import csv
import shutil

import pytest

from captcha_nb.sources.data import load_dataset
from captcha_nb.sources.labelstore import LabelStore


@pytest.fixture
def unlabelled(neutral_copies):
    return neutral_copies(6)


def rows(folder):
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_each_save_is_on_disk_at_once_and_a_new_store_continues_from_it(unlabelled):
    store = LabelStore.open(unlabelled)
    assert len(store.unlabelled()) == 6
    store.save("000.png", "ab12")
    store.save("001.png", "Жж")  # any alphabet
    assert rows(unlabelled) == [["filename", "label"], ["000.png", "ab12"], ["001.png", "Жж"]]
    again = LabelStore.open(unlabelled)
    assert again.labels == {"000.png": "ab12", "001.png": "Жж"} and len(again.unlabelled()) == 4


def test_undo_removes_only_the_last_save(unlabelled):
    store = LabelStore.open(unlabelled)
    store.save("000.png", "ab12")
    store.save("001.png", "cd34")
    assert store.undo() == ("001.png", "cd34")
    assert rows(unlabelled)[1:] == [["000.png", "ab12"]] and LabelStore.open(unlabelled).labels == {"000.png": "ab12"}
    assert store.undo() == ("000.png", "ab12") and store.undo() is None


def test_bad_labels_and_double_saves_are_refused(unlabelled):
    store = LabelStore.open(unlabelled)
    store.save("000.png", "ab")
    with pytest.raises(ValueError, match="already labelled"):
        store.save("000.png", "cd")
    with pytest.raises(ValueError, match="one line"):
        store.save("001.png", "a\nb")


def test_training_reads_what_was_labelled(unlabelled):
    store = LabelStore.open(unlabelled)
    for name in ("000.png", "002.png", "004.png"):
        store.save(name, "abcd")
    assert sorted(load_dataset(unlabelled).names) == ["000.png", "002.png", "004.png"]


def test_names_written_in_the_runs_alphabet_count_as_labels_and_are_kept(tmp_path, tiny_dir):
    folder = tmp_path / "mixed"
    shutil.copytree(tiny_dir, folder)
    shutil.copy(next(tiny_dir.glob("*.png")), folder / "photo_001.png")  # '_', 'p', 'h', 'o' are not in the alphabet
    store = LabelStore.open(folder, alphabet="abcd23")
    assert [p.name for p in store.unlabelled()] == ["photo_001.png"]
    assert len(rows(folder)) == len(list(tiny_dir.glob("*.png"))) + 1  # written down, so training keeps them


def test_a_folder_that_is_not_there_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        LabelStore.open(tmp_path / "nowhere")
