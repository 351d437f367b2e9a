import warnings

import pytest
import torch
from PIL import Image

from captcha_nb import data, synth
from captcha_nb.data import Alphabet, DataError


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


def test_labels_come_from_file_stems(tiny_dir):
    dataset = data.load_dataset(tiny_dir)
    assert len(dataset) == 40
    assert all(path.stem == label for path, label in zip(dataset.paths, dataset.labels))
    assert {len(label) for label in dataset.labels} == {4, 5, 6}


def test_labels_csv_overrides_file_names(tmp_path):
    for i, colour in enumerate(["white", "black"]):
        Image.new("RGB", (40, 20), colour).save(tmp_path / f"img{i}.png")
    (tmp_path / "labels.csv").write_text("filename,label\nimg0.png,AB12\nimg1.png,ZZ9\n")
    dataset = data.load_dataset(tmp_path)
    assert dataset.labels == ["AB12", "ZZ9"]


def test_corrupt_and_non_image_files_are_named_and_skipped(tmp_path):
    Image.new("RGB", (40, 20), "white").save(tmp_path / "good1.png")
    (tmp_path / "broken1.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "notes.txt").write_text("hello")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = data.load_dataset(tmp_path)
    assert dataset.labels == ["good1"]
    messages = " ".join(str(w.message) for w in caught)
    assert "broken1.png" in messages and "notes.txt" in messages


def test_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no usable images"):
        data.load_dataset(tmp_path)


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.load_dataset(tmp_path / "nope")


def test_resolution_order(tmp_path, monkeypatch):
    explicit, from_env = tmp_path / "a", tmp_path / "b"
    explicit.mkdir()
    from_env.mkdir()
    monkeypatch.setenv("CAPTCHA_DATA_DIR", str(from_env))
    assert data.resolve_data_dir(explicit) == explicit
    assert data.resolve_data_dir() == from_env
    monkeypatch.setenv("CAPTCHA_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="CAPTCHA_DATA_DIR"):
        data.resolve_data_dir()


def test_resolution_falls_back_to_project_data_then_download(tmp_path, monkeypatch):
    monkeypatch.delenv("CAPTCHA_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DATA_ROOT", tmp_path)
    (tmp_path / "captcha_images_v2").mkdir()
    assert data.resolve_data_dir() == tmp_path / "captcha_images_v2"
    (tmp_path / "captcha_images_v2").rmdir()
    with pytest.raises(DataError, match="no data set found"):
        data.resolve_data_dir(download=False)


def test_images_are_decoded_once_into_a_cached_uint8_tensor(tiny_dir):
    dataset = data.load_dataset(tiny_dir)
    first = dataset.tensor(32, 96, 1)
    assert first.dtype == torch.uint8 and first.shape == (40, 1, 32, 96)
    assert dataset.tensor(32, 96, 1) is first
    assert dataset.tensor(32, 96, 3).shape == (40, 3, 32, 96)


def test_input_size_keeps_the_aspect_ratio():
    assert data.infer_image_size([(200, 50)] * 3) == (32, 128)
    assert data.infer_image_size([(72, 24)]) == (32, 96)
    assert data.infer_image_size([(700, 80)]) == (32, 280)
    assert data.infer_image_size([(200, 50)], height=48, width=200) == (48, 200)
    assert data.infer_image_size([(50, 50)], min_time_steps=12) == (32, 48)


@pytest.mark.parametrize(
    "alphabet,length,size,grey",
    [
        ("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", (4, 8), (160, 50), False),  # upper case, 30+ symbols, mixed lengths
        ("0123456789", (4, 4), (72, 24), True),  # tiny grey images
        ("abcdefghkmnpqrstuvwxyz", (6, 8), (700, 80), False),  # wide colour images
    ],
)
def test_other_captcha_styles_load_with_sizes_inferred(tmp_path, alphabet, length, size, grey):
    synth.generate(tmp_path, 12, alphabet=alphabet, length=length, size=size, seed=3, grey=grey)
    dataset = data.load_dataset(tmp_path)
    height, width = data.infer_image_size(dataset.sizes)
    assert width / height == pytest.approx(size[0] / size[1], rel=0.1)
    assert set("".join(dataset.labels)) <= set(alphabet)
    assert dataset.tensor(height, width).shape == (12, 1, height, width)


def test_split_is_deterministic_and_disjoint():
    names = [f"{i:03d}.png" for i in range(100)]
    train, val = data.split_names(names, 0.2, seed=7)
    assert (train, val) == data.split_names(list(reversed(names)), 0.2, seed=7)
    assert len(val) == 20 and not set(train) & set(val) and set(train) | set(val) == set(names)
    assert data.split_names(names, 0.2, seed=8)[1] != val


def test_split_round_trips_through_json(tmp_path):
    data.save_split(tmp_path / "split.json", ["a.png"], ["b.png"], seed=3)
    assert data.load_split(tmp_path / "split.json") == {"seed": 3, "train": ["a.png"], "val": ["b.png"]}
    with pytest.raises(DataError, match="does not exist"):
        data.load_split(tmp_path / "missing.json")


def test_targets_are_concatenated_with_lengths():
    targets, lengths = data.encode_targets(["ab", "b"], Alphabet("ab"))
    assert targets.tolist() == [1, 2, 2] and lengths.tolist() == [2, 1]


def test_fingerprint_changes_with_content(tmp_path):
    Image.new("RGB", (8, 8), "white").save(tmp_path / "a.png")
    before = data.fingerprint([tmp_path / "a.png"])
    Image.new("RGB", (8, 8), "black").save(tmp_path / "a.png")
    assert data.fingerprint([tmp_path / "a.png"]) != before
