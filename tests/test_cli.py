"""The CLI's command and option names are a contract: these tests call them exactly as users and tools do."""

import csv
import io
import json
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from captcha_nb.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["predict", "--help"]])
def test_help_answers_without_importing_torch(argv):
    # Asking the command line what it can do should take a moment, not the two seconds torch takes to import.
    probe = ("import runpy, sys\n"
             f"sys.argv = ['captcha_nb', *{argv!r}]\n"
             "try:\n    runpy.run_module('captcha_nb', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "usage:" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "False"


def test_train_writes_the_contracted_files(tmp_path, tiny_dir, capsys):
    code, out, _ = run(capsys, "train", "--data", tiny_dir, "--run-dir", tmp_path / "r", "--epochs", 1,
                       "--max-minutes", 2, "--seed", 3, "--model", "crnn")
    assert code == 0
    for name in ["model.pt", "history.csv", "metrics.json", "split.json"]:
        assert (tmp_path / "r" / name).is_file()
    assert json.loads(out.strip().splitlines()[-1])["seed"] == 3


def test_every_config_field_is_an_option(tmp_path, tiny_dir, capsys):
    code, out, _ = run(capsys, "train", "--data", tiny_dir, "--run-dir", tmp_path / "r", "--epochs", 1,
                       "--val-fraction", 0.25, "--test-fraction", 0, "--img-height", "None", "--no-augment",
                       "--ema-decay", "none", "--batch-size", 8, "--no-progress")
    config = json.loads(out.strip().splitlines()[-1])["config"]
    assert code == 0 and config["val_fraction"] == 0.25 and config["augment"] is False
    assert config["ema_decay"] is None and config["img_height"] is None


def test_train_refuses_an_unknown_model_with_one_line(tmp_path, tiny_dir, capsys):
    code, _, err = run(capsys, "train", "--data", tiny_dir, "--run-dir", tmp_path / "r", "--model", "bogus")
    assert code == 2 and "model='bogus'" in err and "Traceback" not in err


def test_predict_reads_files_and_directories_and_survives_bad_files(tmp_path, trained_run, tiny_dir, capsys):
    images = tmp_path / "imgs"
    shutil.copytree(tiny_dir, images)
    (images / "broken.png").write_bytes(b"garbage")
    extra = tmp_path / "single.png"
    Image.open(next(tiny_dir.glob("*.png"))).save(extra)
    code, out, err = run(capsys, "predict", "--checkpoint", trained_run.run_dir / "model.pt", images, extra,
                         tmp_path / "missing.png")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["path", "prediction", "confidence"]
    by_path = {row[0]: row for row in rows[1:]}
    assert len(by_path) == 40 + 3
    assert by_path[str(images / "broken.png")][1:] == ["", ""]
    assert by_path[str(tmp_path / "missing.png")][1:] == ["", ""]
    good = by_path[str(extra)]
    assert 0.0 <= float(good[2]) <= 1.0
    assert "broken.png" in err and "missing.png" in err
    assert code == 1


def test_evaluate_prints_one_json_line(trained_run, tiny_dir, capsys):
    code, out, _ = run(capsys, "evaluate", "--checkpoint", trained_run.run_dir / "model.pt", "--data", tiny_dir)
    assert code == 0
    (line,) = out.strip().splitlines()
    result = json.loads(line)
    assert result["n"] == 40 and 0 <= result["seq_accuracy"] <= 1 and result["cer"] >= 0


def test_evaluate_scores_unknown_characters_as_errors(tmp_path, trained_run, tiny_dir, capsys):
    data = tmp_path / "d"
    data.mkdir()
    for i, path in enumerate(sorted(tiny_dir.glob("*.png"))[:3]):
        shutil.copy(path, data / ("ZZZZ.png" if i == 0 else path.name))
    code, out, _ = run(capsys, "evaluate", "--checkpoint", trained_run.run_dir / "model.pt", "--data", data)
    result = json.loads(out)
    assert code == 0 and result["n"] == 3 and result["unreadable_labels"] == 1 and result["seq_accuracy"] <= 2 / 3


def test_evaluate_rejects_a_non_checkpoint(tmp_path, tiny_dir, capsys):
    (tmp_path / "x.pt").write_text("nope")
    code, _, err = run(capsys, "evaluate", "--checkpoint", tmp_path / "x.pt", "--data", tiny_dir)
    assert code == 2 and "x.pt" in err


def test_synth_writes_n_images(tmp_path, capsys):
    code, _, _ = run(capsys, "synth", "--out", tmp_path / "s", "--n", 5, "--seed", 2)
    assert code == 0 and len(list((tmp_path / "s").glob("*.png"))) == 5


def test_download_offline_is_one_clear_error(tmp_path, capsys, monkeypatch):
    from captcha_nb.sources import download

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    code, _, err = run(capsys, "download", "--dest", tmp_path)
    assert code == 2 and "CAPTCHA_DATA_DIR" in err


@pytest.mark.parametrize(
    "alphabet,length,size",
    [
        ("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", "4-8", (160, 50)),  # upper case, 32 symbols, mixed lengths
        ("0123456789", "4", (72, 24)),  # tiny images
        ("abcdefghkmnpqrstuvwxyz", "6-8", (700, 80)),  # wide colour images
    ],
)
def test_other_captcha_styles_train_with_the_same_command(tmp_path, capsys, alphabet, length, size):
    data = tmp_path / "data"
    assert run(capsys, "synth", "--out", data, "--n", 16, "--alphabet", alphabet, "--length", length,
               "--width", size[0], "--height", size[1])[0] == 0
    code, out, _ = run(capsys, "train", "--data", data, "--run-dir", tmp_path / "run", "--epochs", 1,
                       "--batch-size", 8)
    metrics = json.loads(out.strip().splitlines()[-1])
    height, width = metrics["input_size"]
    assert code == 0 and set(metrics["alphabet"]) <= set(alphabet)
    longest = int(length.split("-")[-1])
    assert 20 <= width / longest <= 48 and 32 <= height <= 64  # the geometry rules, not one data set's numbers
    code, out, _ = run(capsys, "evaluate", "--checkpoint", tmp_path / "run" / "model.pt", "--data", data)
    assert code == 0 and json.loads(out)["n"] == 16


def test_runs_lists_reports(tmp_path, capsys):
    assert run(capsys, "runs", "--reports", tmp_path)[1].strip() == "no runs yet"


def test_a_huge_picture_is_refused_by_its_header_and_the_rest_are_read(tmp_path, trained_run, tiny_dir, capsys):
    # 12000x9000 pixels in a few kilobytes: refused before a single pixel is decoded, named with its size.
    Image.new("L", (12000, 9000), 255).save(tmp_path / "huge.png", optimize=True)
    good = next(tiny_dir.glob("*.png"))
    code, out, err = run(capsys, "predict", "--checkpoint", trained_run.run_dir / "model.pt", tmp_path / "huge.png",
                         good)
    rows = {row[0]: row for row in csv.reader(io.StringIO(out))}
    assert code == 1 and rows[str(tmp_path / "huge.png")][1:] == ["", ""] and rows[str(good)][2]
    assert "huge.png: 12000x9000 pixels" in err and "max_image_pixels" in err


def test_list_and_optional_fields_become_options_from_their_types(tmp_path):
    import argparse
    from dataclasses import dataclass, field

    from captcha_nb.cli import add_config_options, build_parser, config_field_types

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    args = train.parse_args(["--run-dir", "r", "--unlabelled", "a", "--unlabelled", "b", "--teacher", "ddddocr",
                             "--alphabet", "0123", "--no-pseudo-labels"])
    assert args.unlabelled == ["a", "b"] and args.teacher == "ddddocr" and args.alphabet == "0123"
    assert args.pseudo_labels is False
    assert train.parse_args(["--run-dir", "r"]).unlabelled == []
    assert train.parse_args(["--run-dir", "r", "--teacher", "None"]).teacher is None

    @dataclass
    class Other:  # a config with a tuple-typed field is parsed by the same rules
        run_dir: str = field(default="x", metadata={"help": "run folder"})
        sizes: tuple[int, ...] = field(default=(), metadata={"help": "sizes"})

    assert [kind for _, kind in config_field_types(Other)] == [str, tuple[int, ...]]
    parser = argparse.ArgumentParser()
    add_config_options(parser, Other)
    assert parser.parse_args(["--run-dir", "r", "--sizes", "3", "--sizes", "4"]).sizes == (3, 4)
    assert parser.parse_args(["--run-dir", "r"]).sizes == ()


def test_every_default_a_help_text_names_is_the_parsers_own():
    """A help text that says "(default: X)" must name the default the parser really has."""
    import re

    from captcha_nb.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    checked = 0
    for name, command in commands.items():
        for action in command._actions:
            said = re.search(r"\(default: ([^)]*)\)", action.help or "")
            if not said or action.default is None:
                continue
            shown = said.group(1)
            if isinstance(action.default, (list, tuple)):
                assert all(str(item) in shown for item in action.default) or (not action.default and "none" in shown), \
                    (name, action.dest, shown)
            elif isinstance(action.default, bool):
                continue  # --flag/--no-flag: argparse shows the state itself
            else:
                assert str(action.default) in shown, (name, action.dest, shown, action.default)
            checked += 1
    assert checked >= 15  # the test must have looked at the options, not skipped them all
