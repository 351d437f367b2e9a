import numpy as np
import pandas as pd
from PIL import Image

from captcha_nb.core.ctc import Alphabet
from captcha_nb.views import plots


def test_every_figure_renders_and_saves(tmp_path):
    image = Image.new("RGB", (100, 32), "white")
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [3.0, 1.0], "val_loss": [3.1, 1.2],
                            "val_seq_accuracy": [0.0, 0.5], "val_cer": [1.0, 0.3], "seconds": [1.0, 2.0]})
    probs = np.full((25, 4), 0.05)
    probs[:, 0] = 0.85
    probs[5, :] = [0.05, 0.85, 0.05, 0.05]
    figures = {
        "grid": plots.image_grid([image] * 3, ["a", "b", "c"], ncols=2, colors=["green", "red", "green"]),
        "bar": plots.bar_chart(pd.Series({"a": 1, "b": 2}, name="count"), "title"),
        "heatmap": plots.heatmap(pd.DataFrame([[1, 0], [2, 3]]), "t"),
        "curves": plots.training_curves(history),
        "time": plots.accuracy_over_time({"run": history}),
        "coverage": plots.coverage_curve(pd.DataFrame({"coverage": [1.0, 0.5], "accuracy": [0.9, 1.0]})),
        "alignment": plots.alignment(image, probs, Alphabet("abc"), "a"),
    }
    for name, figure in figures.items():
        path = plots.save(figure, tmp_path / "figures", name)
        assert path.stat().st_size > 1000, name
    assert plots.save(figures["bar"], None, "x") is None


def test_label_counts_wrap_three_panels_a_row():
    results = pd.DataFrame([{"style": style, "start": start, "labelled": count, "test_seq_accuracy": 0.5}
                            for style in "abcde" for start in ("scratch", "pretrained") for count in (50, 100)])
    figure = plots.accuracy_by_labels(results)
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == list("abcde")
    assert len(figure.axes) == 6  # two rows of three, the sixth panel hidden
