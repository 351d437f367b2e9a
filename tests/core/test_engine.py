import csv
import json
import math

import pytest
import torch

from captcha_nb import project_relative
from captcha_nb.core.config import TrainConfig
from captcha_nb.core.ctc import Alphabet
from captcha_nb.core.device import select_device
from captcha_nb.core.engine import HISTORY_COLUMNS, RunExistsError, fit, train_one_epoch
from captcha_nb.core.evaluation import evaluate
from captcha_nb.core.model import build_model
from captcha_nb.core.prepare import TrainingData
from captcha_nb.core.schedule import learning_rate
from captcha_nb.core.start import Progress, Training
from captcha_nb.sources import synth
from captcha_nb.sources.geometry import InputSpec


def test_fit_writes_the_run_directory(trained_run):
    run_dir = trained_run.run_dir
    for name in ["model.pt", "last.pt", "history.csv", "metrics.json", "split.json"]:
        assert (run_dir / name).is_file(), name
    with open(run_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and list(rows[0]) == HISTORY_COLUMNS
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_train"] == 30 and metrics["n_val"] == 10
    assert 0 <= metrics["val_seq_accuracy"] <= 1 and metrics["epochs_run"] == 2
    split = json.loads((run_dir / "split.json").read_text())
    assert sorted(split["val"]) == sorted(trained_run.val_names)
    assert not set(split["train"]) & set(split["val"])


def test_a_second_run_never_overwrites_the_first(trained_run):
    before = (trained_run.run_dir / "model.pt").read_bytes()
    config = TrainConfig(data_dir=json.loads((trained_run.run_dir / "split.json").read_text())["data_dir"],
                         run_dir=str(trained_run.run_dir), epochs=1, progress=False)
    with pytest.raises(RunExistsError):
        fit(config)
    assert (trained_run.run_dir / "model.pt").read_bytes() == before


def test_resume_continues_from_the_last_epoch(tmp_path, tiny_dir):
    config = TrainConfig(data_dir=str(tiny_dir), run_dir=str(tmp_path / "r"), epochs=1, batch_size=8,
                         progress=False, val_fraction=0.25)
    fit(config)
    split_before = (tmp_path / "r" / "split.json").read_text()
    config.epochs, config.resume = 3, True
    result = fit(config)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert (tmp_path / "r" / "split.json").read_text() == split_before


def test_training_reduces_the_loss_on_a_tiny_set(tiny_dir):
    from captcha_nb.sources.data import load_dataset

    torch.manual_seed(0)
    dataset = load_dataset(tiny_dir)
    alphabet = Alphabet.from_labels(dataset.labels)
    spec = InputSpec(32, 96)
    images = dataset.tensor(spec)
    data = TrainingData(dataset, dataset, None, {}, alphabet, spec, images, images)
    model = build_model("crnn", alphabet.num_classes, 32, 96)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    before = evaluate(model, images, dataset.labels, alphabet).loss
    generator = torch.Generator().manual_seed(0)
    config = TrainConfig(batch_size=8, progress=False)
    run = Training(config, tiny_dir, data, model, optimizer, None, torch.device("cpu"), Progress(), "crnn")
    for _ in range(4):
        train_one_epoch(run, generator, schedule=lambda fraction: 3e-3)
    assert evaluate(model, images, dataset.labels, alphabet).loss < before


def test_unknown_characters_are_errors_not_crashes(tiny_dir):
    from captcha_nb.sources.data import load_dataset

    dataset = load_dataset(tiny_dir)
    alphabet = Alphabet.from_labels(dataset.labels)
    model = build_model("crnn", alphabet.num_classes, 32, 96)
    labels = list(dataset.labels)
    labels[0] = "ZZZZ"
    result = evaluate(model, dataset.tensor(InputSpec(32, 96)), labels, alphabet)
    assert result.predictions[0] != "ZZZZ"
    assert math.isfinite(result.loss) and len(result.predictions) == len(labels)


def test_early_stopping_waits_for_the_first_correct_reading(tmp_path, tiny_dir):
    # With no patience at all and a model that never reads a captcha in 3 epochs, the run must not stop early:
    # CTC's flat start is not convergence.
    config = TrainConfig(data_dir=str(tiny_dir), run_dir=str(tmp_path / "p"), epochs=3, batch_size=8,
                         progress=False, patience_fraction=0.0, lr=1e-5, val_fraction=0.25)
    result = fit(config)
    assert result.metrics["val_seq_accuracy"] == 0
    assert result.stopped_because == "epochs" and len(result.history) == 3


def test_wall_clock_budget_stops_the_run(tmp_path, tiny_dir):
    config = TrainConfig(data_dir=str(tiny_dir), run_dir=str(tmp_path / "t"), batch_size=8,
                         progress=False, max_minutes=0.0001, val_fraction=0.25)
    result = fit(config)
    assert result.stopped_because == "max_minutes" and len(result.history) == 1
    # The budget is checked between batches too, so a large epoch cannot overrun it by much.
    assert result.history[0]["seconds"] < 5


def test_callbacks_see_decoded_predictions(tmp_path, tiny_dir):
    seen = []
    config = TrainConfig(data_dir=str(tiny_dir), run_dir=str(tmp_path / "c"), epochs=1, batch_size=8,
                         progress=False, val_fraction=0.25)
    fit(config, callbacks=[seen.append])
    (report,) = seen
    assert report.row["epoch"] == 1
    assert len(report.evaluation.predictions) == len(report.val_names) == 10


def test_same_seed_same_result(tmp_path, tiny_dir):
    results = []
    for name in ["a", "b"]:
        config = TrainConfig(data_dir=str(tiny_dir), run_dir=str(tmp_path / name), epochs=1, batch_size=8,
                             progress=False, val_fraction=0.25, seed=4)
        results.append(fit(config).history[0]["train_loss"])
    assert results[0] == pytest.approx(results[1], rel=1e-5)


def test_labels_too_long_for_the_width_fail_before_training(tmp_path):
    synth.generate(tmp_path / "long", 6, alphabet="ab", length=(8, 8), size=(60, 40), seed=0)
    config = TrainConfig(data_dir=str(tmp_path / "long"), run_dir=str(tmp_path / "r"), epochs=1, progress=False,
                         val_fraction=0.34, img_width=16)
    with pytest.raises(ValueError, match="time steps"):
        fit(config)
    assert not (tmp_path / "r" / "model.pt").exists()


def test_inferred_width_is_widened_to_fit_long_labels(tmp_path):
    # 8 characters in a square image: the aspect ratio alone would give 8 time steps, too few for doubled letters.
    synth.generate(tmp_path / "square", 6, alphabet="ab", length=(8, 8), size=(40, 40), seed=0)
    config = TrainConfig(data_dir=str(tmp_path / "square"), run_dir=str(tmp_path / "r"), epochs=1, progress=False,
                         val_fraction=0.34)
    metrics = fit(config).metrics
    height, width = metrics["input_size"]
    assert width // 4 >= 9
    # metrics.json says why: the width rule and the label it served.
    assert metrics["input_reasons"]["longest_label"] == 8 and metrics["input_reasons"]["width"].endswith(f": {width}")


def test_auto_device_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    assert select_device("cpu") == torch.device("cpu")


def test_show_predictions_prints_truth_beside_prediction(tmp_path, tiny_dir, capsys):
    from captcha_nb.core.callbacks import ShowPredictions

    config = TrainConfig(data_dir=str(tiny_dir), run_dir=str(tmp_path / "s"), epochs=1, batch_size=8,
                         progress=False, val_fraction=0.25)
    result = fit(config, callbacks=[ShowPredictions(n=3)])
    out = capsys.readouterr().out
    assert "epoch   1" in out and out.count("→") == 3
    assert result.val_names[0] in [p.name for p in tiny_dir.iterdir()]


def test_no_epoch_cap_by_default_and_the_schedule_follows_the_clock():
    config = TrainConfig()
    assert config.epochs is None and config.target_accuracy is None
    assert learning_rate(1e-3, 0.5, 0.05) < 1e-3 and learning_rate(1e-3, 1.0, 0.05) == pytest.approx(1e-5)


def test_three_way_split_scores_the_test_images_once_at_the_end(tmp_path):
    synth.generate(tmp_path / "d", 400, alphabet="abcd23", length=4, size=(64, 24), seed=5)
    config = TrainConfig(data_dir=str(tmp_path / "d"), run_dir=str(tmp_path / "r"), epochs=1, batch_size=16,
                         progress=False)
    metrics = fit(config).metrics
    split = json.loads((tmp_path / "r" / "split.json").read_text())
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (300, 40, 60)
    assert metrics["headline"] == "test" and metrics["n_test"] == 60
    assert metrics["seq_accuracy"] == metrics["test_seq_accuracy"] and 0 <= metrics["test_cer"]
    for key in ("plateau_seconds", "peak_memory_mb", "input", "best_weights"):
        assert key in metrics
    # Run files name the data as project_relative does, so a report's paths do not depend on the machine.
    assert split["data_dir"] == metrics["config"]["data_dir"] == project_relative(tmp_path / "d")


def test_the_best_checkpoint_prefers_accuracy_then_loss():
    from captcha_nb.core.evaluation import Evaluation
    from captcha_nb.core.schedule import better

    def ev(acc, loss):
        return Evaluation(loss, acc, 0.0, [], [], [])

    incumbent = {"val_seq_accuracy": 0.9, "val_loss": 0.5}
    assert better(ev(0.95, 0.9), incumbent) and better(ev(0.9, 0.4), incumbent)
    assert not better(ev(0.9, 0.6), incumbent) and not better(ev(0.85, 0.1), incumbent)


def test_convergence_stops_a_run_only_after_it_has_started_reading():
    from captcha_nb.core.evaluation import Evaluation
    from captcha_nb.core.schedule import stop_reason

    config = TrainConfig(patience_fraction=0.25)
    evaluation = Evaluation(1.0, 0.5, 0.1, [], [], [])
    flat = Progress(epoch=5, elapsed=50.0, plateau_seconds=None, improved_at=0.0)
    assert stop_reason(config, flat, evaluation, budget=100.0) is None
    learning = Progress(epoch=5, elapsed=50.0, plateau_seconds=10.0, improved_at=20.0)
    assert stop_reason(config, learning, evaluation, budget=100.0) == "converged"
    learning.improved_at = 40.0
    assert stop_reason(config, learning, evaluation, budget=100.0) is None


def test_a_second_writer_is_refused_while_the_first_holds_the_run(tmp_path, tiny_dir):
    import subprocess
    import sys

    from captcha_nb.core.runlock import RunLockedError, run_lock

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from captcha_nb.core.runlock import run_lock\n"
        f"with run_lock({str(tmp_path / 'r')!r}):\n    print('locked', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        config = TrainConfig(data_dir=str(tiny_dir), run_dir=str(tmp_path / "r"), epochs=1, progress=False,
                             val_fraction=0.25)
        with pytest.raises(RunLockedError, match=f"process {holder.pid}"):
            fit(config)
        assert not (tmp_path / "r" / "model.pt").exists()
    finally:
        holder.kill()
        holder.wait()
    # The holder was killed without releasing the lock: a stale lock is taken over.
    with run_lock(tmp_path / "r"):
        pass


def test_augmentation_rises_only_while_the_model_overfits_after_the_plateau():
    from captcha_nb.core.schedule import GAP_STEP, next_strength

    config = TrainConfig()
    reading = Progress(plateau_seconds=10.0, augment_strength=1.0)
    assert next_strength(config, reading, train_loss=0.04, val_loss=0.13) == 1.0 + GAP_STEP  # securimage's end
    assert next_strength(config, reading, train_loss=0.001, val_loss=0.003) == 1.0  # tiny losses are no gap
    assert next_strength(config, reading, train_loss=0.5, val_loss=0.6) == 1.0
    flat = Progress(plateau_seconds=None, augment_strength=1.0)
    assert next_strength(config, flat, train_loss=0.04, val_loss=0.13) == 1.0  # not before the first reading
    assert next_strength(TrainConfig(augment_strength=2.0), reading, train_loss=0.04, val_loss=0.13) == 2.0


def test_init_from_fine_tunes_on_another_style_and_grows_the_alphabet(tmp_path, trained_run, tiny_dir):
    from captcha_nb.core.checkpoint import read_checkpoint

    # "The site changed its captcha": new pictures, two characters the first model never saw.
    changed = synth.generate(tmp_path / "changed", 40, alphabet="abcd23xy", length=(4, 6), size=(100, 32), seed=7)
    start = trained_run.run_dir / "model.pt"
    old = read_checkpoint(start)
    config = TrainConfig(data_dir=str(changed), run_dir=str(tmp_path / "tuned"), init_from=str(start), epochs=1,
                         batch_size=8, progress=False, val_fraction=0.25, max_minutes=5)
    metrics = fit(config).metrics
    assert metrics["alphabet"].startswith(old["alphabet"]) and set(metrics["new_characters"]) <= set("xy")
    assert metrics["init_from"] and metrics["input"] == old["input"] and metrics["model"] == old["model_name"]
    tuned = read_checkpoint(tmp_path / "tuned" / "model.pt")
    assert tuned["alphabet"] == metrics["alphabet"]


def test_warm_start_keeps_the_old_classes_rows_and_adds_fresh_ones(trained_run):
    from captcha_nb.core.warmstart import read_warm_start

    warm = read_warm_start(trained_run.run_dir / "model.pt")
    grown = warm.grown_alphabet(["zz" + warm.alphabet.chars])
    assert grown.chars == warm.alphabet.chars + "z"
    model = build_model(warm.model_name, grown.num_classes, warm.spec.height, warm.spec.width)
    warm.load_into(model)
    weight = model.state_dict()["classifier.1.weight"]
    assert torch.equal(weight[: warm.alphabet.num_classes], warm.state_dict["classifier.1.weight"])
    other = build_model("crnn_large", grown.num_classes, warm.spec.height, warm.spec.width)
    with pytest.raises(ValueError, match="cannot grow|do not fit"):
        warm.load_into(other)


def test_pretrained_transfer_matches_rows_by_character_and_skips_what_the_height_changes(trained_run):
    from captcha_nb.core.warmstart import read_warm_start, transfer

    source = read_warm_start(trained_run.run_dir / "model.pt")
    # Another style: its own alphabet, in another order, with one character the source never saw; a taller input.
    chars = source.alphabet.chars
    alphabet = Alphabet("z" + chars[::-1])
    taller = build_model(source.model_name, alphabet.num_classes, source.spec.height + 16, source.spec.width)
    done = transfer(source, taller, alphabet)
    weights = taller.state_dict()
    old = source.state_dict["classifier.1.weight"]
    for row, char in enumerate(alphabet.chars, start=1):
        if char in chars:
            assert torch.equal(weights["classifier.1.weight"][row], old[chars.index(char) + 1])
    assert torch.equal(weights["classifier.1.weight"][0], old[0])  # blank keeps blank's row
    assert torch.equal(weights["features.0.0.weight"], source.state_dict["features.0.0.weight"])
    assert "gru.weight_ih_l0" in done["pretrained_skipped"]  # sized by the input height
    assert done["pretrained_characters"] == len(chars)


def test_a_run_can_start_pretrained_and_says_so(tmp_path, tiny_dir, trained_run, monkeypatch):
    from captcha_nb.core import start

    # The shipped checkpoint is stood in for by the tiny run's, so the test does not depend on the committed file.
    monkeypatch.setattr(start, "read_pretrained",
                        lambda name: start.read_warm_start(trained_run.run_dir / "model.pt"))
    config = TrainConfig(data_dir=str(tiny_dir), run_dir=str(tmp_path / "pre"), pretrained=True, epochs=1,
                         batch_size=8, progress=False, val_fraction=0.25, max_minutes=5)
    metrics = fit(config).metrics
    assert metrics["pretrained"] and metrics["pretrained_tensors"] > 0 and metrics["init_from"] is None
    assert metrics["start"] == "pretrained"
    scratch = fit(TrainConfig(**{**config.to_dict(), "run_dir": str(tmp_path / "scratch"), "pretrained": False}))
    assert scratch.metrics["pretrained"] is None and scratch.metrics["start"] == "scratch"
