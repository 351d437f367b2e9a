"""The benchmark script in quick mode: checks the structure of what it writes, never its speed."""

import importlib.util
import json
import shutil

import pandas as pd
import pytest

from captcha_nb import PROJECT_ROOT
from captcha_nb.views.compare import gap_table, style_curves

pytestmark = pytest.mark.slow  # notebooks, sweeps, benchmarks or training run end to end


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", PROJECT_ROOT / "benchmarks" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark_writes_results_table_and_plot(tmp_path):
    bench = load_bench()
    out = bench.main(["--quick", "--out", str(tmp_path / "b"), "--threads", "2"])
    payload = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in payload["results"]] == ["crnn", "seed"]
    for row in payload["results"]:
        assert set(row["time_to"]) == {"0.90", "0.95", "0.98", "0.99"}
        assert row["parameters"] > 0 and row["torch_batch_images_per_s"] > 0 and row["onnx_single_p95_ms"] > 0
        assert row["onnx_matches_torch"] is True
    assert "| crnn | 0 |" in (out / "results.md").read_text()
    assert (out / "accuracy_vs_time.png").stat().st_size > 1000


def test_included_rows_must_come_from_the_same_data_and_machine(tmp_path):
    bench = load_bench()
    earlier = tmp_path / "2026-01-01" / "results.json"
    earlier.parent.mkdir()
    earlier.write_text(json.dumps({"data_dir": str(tmp_path), "machine": "m", "results": [
        {"model": "seed", "seed": 0}, {"model": "crnn", "seed": 0}]}))
    rows = bench.included_rows(earlier, str(tmp_path), "m", measured={"crnn"})
    assert rows == [{"model": "seed", "seed": 0, "source": "2026-01-01"}]
    with pytest.raises(SystemExit, match="another machine"):
        bench.included_rows(earlier, str(tmp_path), "other", measured=set())


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_style_benchmark_writes_one_row_per_style_and_seed(tmp_path):
    styles = load_script("styles")
    out = styles.main(["--quick", "--out", str(tmp_path / "s")])
    payload = json.loads((out / "results.json").read_text())
    assert set(payload["styles"]) == {"plain", "dark"}
    assert payload["styles"]["dark"][1].endswith("dark_test")  # a _train/_test pair is used as given
    rows = {r["style"]: r for r in payload["results"]}
    for row in rows.values():
        assert row["status"] == "finished", row
        for key in ("test_seq_accuracy", "test_cer", "time_to_90", "time_to_95", "time_to_99", "plateau_seconds",
                    "epochs", "input", "parameters", "peak_memory_mb"):
            assert key in row
        assert row["peak_memory_mb"] > 0 and row["parameters"] > 0
    assert rows["dark"]["n_test"] == 20  # the whole _test folder, scored once
    table_rows = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("| dark ")]
    assert len(table_rows) == 2 and (out / "plot.png").stat().st_size > 1000  # the medians table and every run

    folder, curves = style_curves(seed=0, reports_dir=tmp_path / "reports")
    assert folder is None and curves == {}  # nothing published there yet
    published = tmp_path / "reports" / "benchmarks" / "styles-2026-01-01"
    published.parent.mkdir(parents=True)
    shutil.copytree(out, published)
    folder, curves = style_curves(seed=0, reports_dir=tmp_path / "reports")
    assert folder == published and set(curves) == {"plain", "dark"}
    assert {"seconds", "train_loss", "val_loss"} <= set(curves["dark"].columns) and len(curves["dark"]) >= 1
    assert set(gap_table(curves).index) == {"plain", "dark"}


def test_loading_benchmark_measures_each_size_in_its_own_process():
    loading = load_script("loading")
    (row,) = loading.main(["--sizes", "60"])
    assert row["images"] == 60 and row["peak_memory_mb"] > 0 and row["tensor_mb"] > 0


def test_benchmark_sections_replace_only_their_own(tmp_path):
    from captcha_nb.workflows.runs import replace_section

    path = tmp_path / "B.md"
    path.write_text("# Benchmarks\n\nintro\n\n## A\n\nold a\n\n## B\n\nold b\n")
    replace_section(path, "## A", "## A\n\nnew a")
    replace_section(path, "## C", "## C\n\nnew c")
    text = path.read_text()
    assert "new a" in text and "old a" not in text and "old b" in text and "new c" in text and "intro" in text


def test_quick_label_benchmark_trains_each_count_from_scratch_pretrained_and_with_the_pool(tmp_path):
    labels = load_script("labels")
    out = labels.main(["--quick", "--out", str(tmp_path / "l")])
    payload = json.loads((out / "results.json").read_text())
    runs = {(r["labelled"], r["start"]): r for r in payload["results"]}
    # 60 pictures, 9 held out as the test folder: 20 labelled, then the whole pool of 51; each started three ways.
    # ddddocr's zero-shot reading of the test folder stands beside them, as a user would call it.
    assert set(runs) == {(0, "ddddocr zero-shot"), *((n, s) for n in (20, 51) for s in ("scratch", "pretrained", "pool"))}
    trained = {key: r for key, r in runs.items() if key[1] != "ddddocr zero-shot"}
    assert all(r["status"] == "finished" and r["n_test"] == 9 for r in trained.values())
    assert {r["n_train"] + r["n_val"] for r in trained.values()} == {20, 51}
    pooled = json.loads((out / "runs" / "plain-n20-seed0-pool" / "metrics.json").read_text())
    alone = json.loads((out / "runs" / "plain-n20-seed0-pretrained" / "metrics.json").read_text())
    assert pooled["pool"]["pictures"] == 51 - 20 and alone["pool"]["pictures"] == 0
    pretrained = json.loads((out / "runs" / "plain-n20-seed0-pretrained" / "metrics.json").read_text())
    assert pretrained["pretrained"] and pretrained["pretrained_tensors"] > 0
    assert (out / "plot.png").stat().st_size > 1000 and not (out / "folders").exists()
    # Every trained run's validation curve is kept beside the table, the runs' folders are not committed.
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["style"]) == {f"plain-n{n}-{s}" for n in (20, 51) for s in ("scratch", "pretrained", "pool")}
    assert (out / "curves.png").stat().st_size > 1000 and (out / "losses.png").stat().st_size > 1000


def test_a_label_benchmark_folder_filled_by_several_calls_tables_all_their_runs(tmp_path):
    labels = load_script("labels")
    row = {"style": "kelab", "labelled": 50, "start": "teacher", "status": "finished", "test_seq_accuracy": 0.9}
    earlier = [{**row, "seed": 0}, {**row, "seed": 1}]
    (tmp_path / "results.json").write_text(json.dumps({"minutes": 2.0, "command": "first", "results": earlier}))
    again = [{**row, "seed": 1, "test_seq_accuracy": 0.95}, {**row, "seed": 2}]
    rows, commands = labels.with_earlier_calls(tmp_path, again, 2.0, "second")
    # Seed 1 ran again: its new row replaces the old one; seed 0 is kept from the first call.
    assert [(r["seed"], r["test_seq_accuracy"]) for r in rows] == [(0, 0.9), (1, 0.95), (2, 0.9)]
    assert commands == ["first", "second"]
    # Runs at another budget are not this table's.
    assert labels.with_earlier_calls(tmp_path, again, 10.0, "third") == (again, ["third"])


def test_step_time_benchmark_times_both_memory_layouts():
    import torch

    step_time = load_script("step_time")
    for layout in step_time.LAYOUTS.values():
        times = step_time.measure("crnn", 32, 64, classes=5, length=3, layout=layout, repeats=1)
        assert times["step_ms"] > 0 and times["validate_ms"] > 0
    assert set(step_time.LAYOUTS.values()) == {torch.contiguous_format, torch.channels_last}
