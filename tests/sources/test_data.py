import warnings

import pytest
import torch
from PIL import Image

from captcha_nb.core.ctc import Alphabet
from captcha_nb.sources import data, download, synth
from captcha_nb.sources.data import DataError
from captcha_nb.sources.geometry import InputSpec
from captcha_nb.sources.input_rules import decide_input_spec


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
    assert download.resolve_data_dir(explicit) == explicit
    assert download.resolve_data_dir() == from_env
    monkeypatch.setenv("CAPTCHA_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="CAPTCHA_DATA_DIR"):
        download.resolve_data_dir()


def test_resolution_falls_back_to_project_data_then_download(tmp_path, monkeypatch):
    monkeypatch.delenv("CAPTCHA_DATA_DIR", raising=False)
    monkeypatch.setattr(download, "DATA_ROOT", tmp_path)
    (tmp_path / "captcha_images_v2").mkdir()
    assert download.resolve_data_dir() == tmp_path / "captcha_images_v2"
    (tmp_path / "captcha_images_v2").rmdir()
    with pytest.raises(DataError, match="no data set found"):
        download.resolve_data_dir(download=False)


def test_images_are_decoded_once_into_a_cached_uint8_tensor(tiny_dir):
    dataset = data.load_dataset(tiny_dir)
    first = dataset.tensor(InputSpec(32, 96))
    assert first.dtype == torch.uint8 and first.shape == (40, 1, 32, 96)
    assert dataset.tensor(InputSpec(32, 96)) is first
    assert dataset.tensor(InputSpec(32, 96, channels=3, ink=False)).shape == (40, 3, 32, 96)
    # A subset shares the decoded rows instead of decoding again.
    subset = dataset.subset(dataset.names[5:7])
    assert torch.equal(subset.tensor(InputSpec(32, 96)), first[5:7])


def test_listing_a_data_set_reads_headers_not_pixels(tiny_dir, monkeypatch):
    decoded = []
    original = data.open_image
    monkeypatch.setattr(data, "open_image", lambda *a, **k: decoded.append(a) or original(*a, **k))
    dataset = data.load_dataset(tiny_dir)
    assert len(dataset.sizes) == 40 and dataset.sizes[0] == (100, 32) and not decoded


def test_large_sets_decode_in_parallel_with_the_same_result(tiny_dir, monkeypatch):
    dataset = data.load_dataset(tiny_dir)
    serial = dataset.tensor(InputSpec(32, 96))
    monkeypatch.setattr(data, "PARALLEL_FROM", 10)
    parallel, failed = data.decode_inputs(dataset.paths, InputSpec(32, 96))
    assert torch.equal(parallel, serial) and failed == []


def test_a_file_that_fails_to_decode_is_named_and_the_rest_are_read(tmp_path):
    Image.new("RGB", (40, 20), "white").save(tmp_path / "good1.png")
    Image.new("RGB", (40, 20), "black").save(tmp_path / "bad1.png")
    (tmp_path / "bad1.png").write_bytes((tmp_path / "bad1.png").read_bytes()[:60])  # the header survives
    dataset = data.load_dataset(tmp_path)
    with pytest.warns(UserWarning, match="bad1.png"):
        images = dataset.tensor(InputSpec(16, 32))
    assert images.shape == (2, 1, 16, 32) and dataset.unreadable == {"bad1.png"}
    assert dataset.readable().names == ["good1.png"]


def test_oversized_pictures_are_refused_from_the_header(tmp_path):
    Image.new("L", (4000, 3000), 255).save(tmp_path / "huge1.png")
    Image.new("RGB", (40, 20), "white").save(tmp_path / "small1.png")
    with pytest.warns(UserWarning, match=r"huge1.png: 4000x3000 pixels"):
        dataset = data.load_dataset(tmp_path, max_pixels=1_000_000)
    assert dataset.names == ["small1.png"]
    with pytest.raises(data.ImageTooLarge, match="huge1.png"):
        data.open_image(tmp_path / "huge1.png", max_pixels=1_000_000)


def test_unicode_labels_from_a_utf8_labels_csv(tmp_path):
    Image.new("RGB", (40, 20), "white").save(tmp_path / "a.png")
    Image.new("RGB", (40, 20), "white").save(tmp_path / "b.png")
    (tmp_path / "labels.csv").write_bytes("\ufefffilename,label\na.png,жЯ42\nb.png,漢字3\n".encode("utf-8"))
    dataset = data.load_dataset(tmp_path)
    assert dataset.labels == ["жЯ42", "漢字3"]
    assert Alphabet.from_labels(dataset.labels).encode("Я") == [Alphabet.from_labels(dataset.labels).chars.index("Я") + 1]


@pytest.mark.parametrize(
    "alphabet,length,size,grey",
    [
        ("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", (4, 8), (160, 50), False),  # upper case, 30+ symbols, mixed lengths
        ("0123456789", (4, 4), (72, 24), True),  # tiny grey images
        ("abcdefghkmnpqrstuvwxyz", (6, 8), (700, 80), False),  # wide colour images
    ],
)
def test_other_captcha_styles_load_with_an_input_decided_from_them(tmp_path, alphabet, length, size, grey):
    synth.generate(tmp_path, 12, alphabet=alphabet, length=length, size=size, seed=3, grey=grey)
    dataset = data.load_dataset(tmp_path)
    spec = decide_input_spec(dataset.sizes, dataset.labels, dataset.sample_images(12), time_stride=4).spec
    assert 20 <= spec.width / max(len(label) for label in dataset.labels) <= 48
    assert set("".join(dataset.labels)) <= set(alphabet)
    assert dataset.tensor(spec).shape == (12, 1, spec.height, spec.width)


def test_split_is_deterministic_and_disjoint():
    names = [f"{i:03d}.png" for i in range(400)]
    split = data.split_names(names, 0.2, seed=7, test_fraction=0.25)
    assert split == data.split_names(list(reversed(names)), 0.2, seed=7, test_fraction=0.25)
    assert (len(split.train), len(split.val), len(split.test)) == (220, 80, 100)
    assert set(split.train) | set(split.val) | set(split.test) == set(names)
    assert not set(split.train) & set(split.val) and not (set(split.train) | set(split.val)) & set(split.test)
    assert data.split_names(names, 0.2, seed=8, test_fraction=0.25).val != split.val


def test_the_test_split_does_not_move_when_the_validation_share_changes():
    names = [f"{i:03d}.png" for i in range(400)]
    assert data.split_names(names, 0.1, 3, 0.2).test == data.split_names(names, 0.3, 3, 0.2).test


def test_too_few_images_for_a_test_split_give_none():
    names = [f"{i:03d}.png" for i in range(100)]
    split = data.split_names(names, 0.2, seed=1, test_fraction=0.3)  # 30 < MIN_TEST_IMAGES
    assert split.test == [] and len(split.val) == 20


def test_split_round_trips_through_json(tmp_path):
    data.save_split(tmp_path / "split.json", data.Split(["a.png"], ["b.png"], ["c.png"]), seed=3)
    assert data.load_split(tmp_path / "split.json") == {"seed": 3, "train": ["a.png"], "val": ["b.png"],
                                                         "test": ["c.png"]}
    with pytest.raises(DataError, match="does not exist"):
        data.load_split(tmp_path / "missing.json")


def test_fingerprint_changes_with_content(tmp_path):
    Image.new("RGB", (8, 8), "white").save(tmp_path / "a.png")
    before = data.fingerprint([tmp_path / "a.png"])
    Image.new("RGB", (8, 8), "black").save(tmp_path / "a.png")
    assert data.fingerprint([tmp_path / "a.png"]) != before


def test_the_pool_is_every_picture_the_labels_do_not_name(tmp_path, tiny_dir):
    import shutil

    from captcha_nb.sources.data import load_dataset, load_pool

    folder, other = tmp_path / "half", tmp_path / "other"
    folder.mkdir()
    other.mkdir()
    pictures = sorted(tiny_dir.glob("*.png"))
    for i, picture in enumerate(pictures[:5]):
        shutil.copy(picture, folder / f"{i}.png")
    (folder / "labels.csv").write_text("filename,label\n0.png,abcd\n1.png,dcba\n")
    shutil.copy(pictures[6], other / "0.png")  # the same name in another folder is another picture
    (other / "huge.png").write_bytes(b"\x89PNG not really")
    labelled = load_dataset(folder)
    with pytest.warns(UserWarning, match="huge.png"):
        pool = load_pool([folder, other], labelled.paths)
    assert sorted(str(p.relative_to(tmp_path)) for p in pool.paths) == ["half/2.png", "half/3.png", "half/4.png",
                                                                        "other/0.png"]
    assert pool.labels == [""] * 4
    assert pool.tensor(InputSpec(32, 96)).dtype == torch.uint8
