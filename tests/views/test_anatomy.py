import torch

from captcha_nb.core.model import build_model
from captcha_nb.serving import speed
from captcha_nb.views import anatomy


def test_stage_shapes_end_in_per_step_class_scores():
    model = build_model("crnn", 20, 32, 128)
    table = anatomy.stage_shapes(model, torch.zeros(2, 1, 32, 128))
    assert table["shape"].iloc[0] == (2, 1, 32, 128)
    assert table["shape"].iloc[-1] == (2, 32, 20)
    assert ("sequence of T steps (B, T, features)", (2, 32, 256)) in list(table.itertuples(index=False, name=None))


def test_parameter_table_sums_to_total():
    table = anatomy.parameter_table(build_model("seed", 20, 75, 300)).set_index("part")["parameters"]
    assert table.drop("total").sum() == table["total"]


def test_time_step_table():
    table = anatomy.time_step_table(["a88b8"], widths=[16, 24])
    assert table["time steps T"].tolist() == [4, 6]
    assert table.iloc[:, 2].tolist() == [False, True]


def test_speed_helpers_measure_something():
    model = build_model("crnn", 5, 32, 32)
    run = speed.torch_runner(model, torch.zeros(4, 1, 32, 32))
    stats = speed.latency_ms(run, repeats=5, warmup=1)
    assert 0 < stats["median_ms"] <= stats["p95_ms"]
    assert speed.throughput(run, 4, min_seconds=0.05) > 0


def test_compare_lists_each_model():
    small = build_model("crnn", 5, 32, 32)
    table = anatomy.compare({"a": (small, torch.zeros(2, 1, 32, 32))}, repeats=2)
    assert table.loc["a", "time steps"] == 8 and table.loc["a", "parameters"] > 0
