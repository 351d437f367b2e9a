"""An ipywidgets prediction inspector: browse a split's captchas, filter to errors or low confidence, upload your own.

Everything it shows is held in widget values (HTML text, PNG bytes), so tests drive it by calling its methods and
button handlers without a browser.
"""

from __future__ import annotations

import html
import io
import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd

from captcha_nb.core.ctc import beam_alternatives, runner_ups
from captcha_nb.serving.inference import Recogniser
from captcha_nb.sources.data import CaptchaSet, ImageTooLarge, open_image
from captcha_nb.views import plots
from captcha_nb.views.analysis import predict_dataset

FILTERS = ("all", "errors", "low confidence")


def figure_png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def confidence_html(text: str, confidences: list[float]) -> str:
    """Each character shaded by its confidence: dark is sure, pale and red is unsure."""
    cells = []
    for char, confidence in zip(text, confidences):
        colour = "#c0392b" if confidence < 0.5 else "#e67e22" if confidence < 0.9 else "#1e8449"
        cells.append(f"<span title='{confidence:.3f}' style='font:bold 22px monospace;color:{colour};"
                     f"padding:0 2px'>{html.escape(char)}</span><sub>{confidence:.2f}</sub>")
    return "".join(cells) or "<i>(nothing read)</i>"


def hesitation_html(prediction, alphabet, beam_width: int = 10, top: int = 3) -> str:
    """Where the model hesitated: the runner-up character at each character it read, and the best few readings of
    beam search with their probabilities (all from the calibrated probabilities)."""
    if prediction.probs is None:
        return ""
    # The frames belong to the greedy reading; a beam-search reading of another length has no runner-ups to show.
    classes = alphabet.encode(prediction.text) if len(prediction.frames) == len(prediction.text) else []
    cells = [f"<td style='padding:0 6px;text-align:center'><code>{html.escape(char)}</code><br>"
             f"<small>{html.escape(alphabet.decode([other]))} {p:.3f}</small></td>"
             for char, (other, p) in zip(prediction.text, runner_ups(prediction.probs, prediction.frames, classes))]
    readings = [f"<code>{html.escape(alphabet.decode(c)) or '∅'}</code> {math.exp(logp):.3f}"
                for c, logp in beam_alternatives(prediction.probs, beam_width, top)]
    return (f"<table style='display:inline-table'><tr><th style='padding-right:6px'>runner-up</th>{''.join(cells)}"
            f"</tr></table><br>top readings (beam search): {' · '.join(readings)}")


def show_picture(widget, png: bytes) -> None:
    """Show a PNG in an Image widget, or hide the widget while there is nothing to show."""
    widget.value = png
    widget.layout.display = None if png else "none"


class PredictionInspector:
    """Browse a recogniser's readings of a data set (usually the validation split) one captcha at a time."""

    def __init__(self, recogniser: Recogniser, dataset: CaptchaSet, low_confidence: float = 0.9):
        self.recogniser = recogniser
        self.dataset = dataset
        if len(dataset):  # with no captchas to browse (only uploads), there is nothing to probe the fast path with
            recogniser.use_fastest(dataset.tensor(recogniser.spec)[:64])
        self.table, self.predictions = predict_dataset(recogniser, dataset)
        self.position = 0

        self.filter = widgets.ToggleButtons(options=FILTERS, value="all", description="show")
        self.threshold = widgets.FloatSlider(value=low_confidence, min=0.0, max=1.0, step=0.01,
                                             description="low below", continuous_update=False)
        self.previous_button = widgets.Button(description="◀ previous")
        self.next_button = widgets.Button(description="next ▶")
        self.counter = widgets.HTML()
        self.info = widgets.HTML()
        # Pictures start hidden: an Image widget without a value shows the browser's broken-image icon.
        self.picture = widgets.Image(format="png", layout=widgets.Layout(display="none"))
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="your image")
        self.upload_info = widgets.HTML()
        self.upload_picture = widgets.Image(format="png", layout=widgets.Layout(display="none"))

        self.previous_button.on_click(self.previous)
        self.next_button.on_click(self.next)
        self.filter.observe(self._on_filter_change, names="value")
        self.threshold.observe(self._on_filter_change, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.widget = widgets.VBox([
            widgets.HBox([self.filter, self.threshold]),
            widgets.HBox([self.previous_button, self.next_button, self.counter]),
            self.info,
            self.picture,
            widgets.HTML("<b>Read your own captcha</b>"),
            self.upload,
            self.upload_info,
            self.upload_picture,
        ])
        self.update()

    # ----------------------------------------------------------------------------------------------------------------
    # Which images are shown

    def visible(self) -> list[int]:
        """Row numbers that pass the current filter."""
        table = self.table
        if self.filter.value == "errors":
            mask = ~table["correct"]
        elif self.filter.value == "low confidence":
            mask = table["confidence"] < self.threshold.value
        else:
            mask = pd.Series(True, index=table.index)
        return table.index[mask].tolist()

    def _on_filter_change(self, change=None) -> None:
        self.position = 0
        self.update()

    def next(self, button=None) -> None:
        self.position += 1
        self.update()

    def previous(self, button=None) -> None:
        self.position -= 1
        self.update()

    # ----------------------------------------------------------------------------------------------------------------
    # Drawing

    @property
    def current(self) -> int | None:
        """Row number of the captcha on show, or None when the filter leaves nothing."""
        rows = self.visible()
        if not rows:
            return None
        self.position %= len(rows)
        return rows[self.position]

    def update(self) -> None:
        rows = self.visible()
        row = self.current
        if row is None:
            self.counter.value = f"0 of 0 ({self.filter.value})"
            self.info.value = "<i>No captcha matches this filter.</i>"
            show_picture(self.picture, b"")
            return
        self.counter.value = f"{self.position + 1} of {len(rows)} ({self.filter.value})"
        record = self.table.loc[row]
        prediction = self.predictions[row]
        verdict = "<b style='color:#1e8449'>right</b>" if record["correct"] else "<b style='color:#c0392b'>wrong</b>"
        self.info.value = (
            f"<code>{html.escape(record['name'])}</code> — truth <code>{html.escape(record['truth'])}</code>, "
            f"read <code>{html.escape(record['prediction'])}</code> ({verdict}, confidence "
            f"{record['confidence']:.3f})<br>{confidence_html(prediction.text, prediction.char_confidences)}"
            f"<br>{hesitation_html(prediction, self.recogniser.alphabet)}"
        )
        figure = plots.alignment(self.dataset.images[row], prediction.probs, self.recogniser.alphabet,
                                 title=f"truth {record['truth']}  read {record['prediction']}")
        show_picture(self.picture, figure_png(figure))

    # ----------------------------------------------------------------------------------------------------------------
    # Uploads

    def predict_bytes(self, content: bytes, name: str = "upload") -> str:
        """Read an uploaded image; shows and returns the reading, or a message naming the file if it is unusable."""
        try:
            image = open_image(io.BytesIO(content), name=name)
        except ImageTooLarge as error:
            self.upload_info.value = f"<b style='color:#c0392b'>{html.escape(str(error))}</b>"
            show_picture(self.upload_picture, b"")
            return ""
        except Exception as error:
            self.upload_info.value = (f"<b style='color:#c0392b'>{html.escape(name)} is not a readable image</b> "
                                      f"({html.escape(error.__class__.__name__)})")
            show_picture(self.upload_picture, b"")
            return ""
        prediction = self.recogniser.predict_images([image], keep_probs=True)[0]
        self.upload_info.value = (f"<code>{html.escape(name)}</code> reads <code>{html.escape(prediction.text)}</code> "
                                  f"(confidence {prediction.confidence:.3f})<br>"
                                  f"{confidence_html(prediction.text, prediction.char_confidences)}"
                                  f"<br>{hesitation_html(prediction, self.recogniser.alphabet)}")
        figure = plots.alignment(image, prediction.probs, self.recogniser.alphabet, title=f"read {prediction.text}")
        show_picture(self.upload_picture, figure_png(figure))
        return prediction.text

    def _on_upload(self, change) -> None:
        for item in change["new"]:
            self.predict_bytes(bytes(item["content"]), item.get("name", "upload"))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class FrameStepper:
    """Step through a reading frame by frame (and, given snapshots of a training run, epoch by epoch): which pixels
    each frame sees and what it emits. Plain ipywidgets, so it works in Jupyter and in the Voilà apps alike."""

    def __init__(self, picture, probs_by_epoch: dict[str, "np.ndarray"], alphabet):
        self.picture, self.alphabet = picture, alphabet
        self.probs_by_epoch = probs_by_epoch
        frames = next(iter(probs_by_epoch.values())).shape[0]
        self.frame = widgets.IntSlider(value=0, min=0, max=frames - 1, description="frame")
        self.epoch = widgets.SelectionSlider(options=list(probs_by_epoch), description="weights",
                                             layout=widgets.Layout(width="60%",
                                                                   display=None if len(probs_by_epoch) > 1 else "none"))
        self.view = widgets.Image(format="png", layout=widgets.Layout(display="none"))
        self.frame.observe(self.update, names="value")
        self.epoch.observe(self.update, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.frame, self.epoch]), self.view])
        self.update()

    def update(self, change=None) -> None:
        probs = self.probs_by_epoch[self.epoch.value]
        figure = plots.frame_view(self.picture, probs, self.frame.value, self.alphabet,
                                  title=f"{self.epoch.value}: frame {self.frame.value} of {probs.shape[0]}")
        show_picture(self.view, figure_png(figure))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
