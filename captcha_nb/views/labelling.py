"""The labelling loop's widget: one unlabelled captcha at a time, keyboard first, every label on disk at once.

With a trained run, or before there is one a teacher (ddddocr, `label --teacher ddddocr`), every unlabelled picture
is read first: its reading is pre-filled and the least confident come first, so a person's time goes where the model is unsure; the most confident can be looked over in a
grid and accepted together. Keys, in the text box: Enter saves what is typed, Enter on an empty box skips the
picture, and `<` then Enter undoes the last save (the buttons do the same). Saved labels go to the folder's
labels.csv through `LabelStore`, which forces each to disk before the next picture shows.

Like the inspector, everything shown is held in widget values, so tests drive it by calling its methods.
"""

from __future__ import annotations

import asyncio
import html
import io
import warnings
from pathlib import Path

import ipywidgets as widgets

from captcha_nb.serving.inference import Recogniser
from captcha_nb.sources.data import open_image
from captcha_nb.sources.labelstore import LabelStore

UNDO_KEY = "<"
# ipywidgets sends one value update at a time and queues the rest, while Enter's submit event goes at once: in the
# browser test a label typed at machine speed arrived as its first letter. Half a second lets the queue drain.
SUBMIT_DELAY_SECONDS = 0.5
GRID_SIZE = 12  # confident readings shown at once for a batch accept
CONFIDENT = 0.9  # readings at least this confident are offered for a batch accept


def demo_folder(n: int = 12, seed: int = 0) -> Path:
    """A temporary folder of synthetic captchas under neutral names: what a site's captchas look like on arrival."""
    import tempfile

    from captcha_nb.sources.synth import generate

    drawn = generate(Path(tempfile.mkdtemp(prefix="captcha-labelling-")) / "drawn", n, seed=seed)
    folder = drawn.parent / "unlabelled"
    folder.mkdir()
    for i, path in enumerate(sorted(drawn.glob("*.png"))):
        path.rename(folder / f"captcha_{i:03d}.png")
    return folder


def progress_table(store: LabelStore):
    """How far labelling has come: labelled, still to label, and the labels' lengths and characters."""
    import pandas as pd

    labels = list(store.labels.values())
    return pd.DataFrame([{
        "pictures": len(store.images()), "labelled": len(labels), "to label": len(store.unlabelled()),
        "characters seen": "".join(sorted(set("".join(labels)))),
        "label lengths": ", ".join(str(n) for n in sorted({len(label) for label in labels})),
    }])


def doubtful_pseudo_labels(run_dir: str | Path | None, n: int = 12):
    """The run's least confident pseudo-labels (its pseudo_labels.csv), the pictures worth a person's look next:
    label those, train again. An empty table when there is no run or it had no pool."""
    import pandas as pd

    from captcha_nb.core.rundir import RunDir

    path = RunDir(run_dir).pseudo_labels if run_dir else None
    if path is None or not path.is_file():
        return pd.DataFrame(columns=["picture", "reading", "confidence", "round", "source"])
    table = pd.read_csv(path, dtype={"reading": str}, keep_default_na=False)
    table["picture"] = [Path(p).name for p in table["picture"]]
    return table.sort_values("confidence").head(n).reset_index(drop=True)


def thumbnail_png(path: Path, height: int = 60) -> bytes:
    image = open_image(path)
    image = image.resize((max(1, round(image.width * height / image.height)), height))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Labeller:
    def __init__(self, folder: str | Path, recogniser: Recogniser | None = None, teacher=None):
        self.recogniser, self.teacher = recogniser, teacher  # a teacher: core.teacher's, reading files
        self.store = LabelStore.open(folder, recogniser.alphabet.chars if recogniser else None)
        self.readings: dict[str, tuple[str, float]] = {}
        self.queue = self.ranked(self.store.unlabelled())
        self.position = 0
        # The picture keeps its proportions: a flex column would otherwise stretch it to the width of the app.
        self.picture = widgets.Image(format="png", layout=widgets.Layout(
            height="90px", width="auto", align_self="flex-start", object_fit="contain"))
        # Every keystroke is sent to the kernel, and Enter is acted on a moment later (`later`): the browser sends
        # Enter's submit event ahead of the value updates still queued behind it.
        self.text = widgets.Text(placeholder="type the captcha, Enter saves", continuous_update=True,
                                 layout=widgets.Layout(width="320px"))
        self.note = widgets.HTML()
        self.counter = widgets.HTML()
        save, skip, undo = (widgets.Button(description=d) for d in ("Save (Enter)", "Skip (empty Enter)",
                                                                       f"Undo ({UNDO_KEY} Enter)"))
        save.on_click(lambda _: self.submit(self.text.value))
        skip.on_click(lambda _: self.skip())
        undo.on_click(lambda _: self.undo())
        with warnings.catch_warnings():
            # on_submit is the one event that fires on Enter even when the pre-filled text is left as it is.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.text.on_submit(lambda _: self.later(lambda: self.submit(self.text.value)))
        self.grid = widgets.HTML()
        accept = widgets.Button(description="Accept these confident readings")
        accept.on_click(lambda _: self.accept_confident())
        keys = widgets.HTML(f"<small>Enter saves · empty Enter skips · <code>{UNDO_KEY}</code> Enter undoes the last "
                            "save · every save is in labels.csv at once</small>")
        parts = [self.counter, self.picture, widgets.HBox([self.text, save, skip, undo]), self.note, keys]
        if recogniser is not None or teacher is not None:
            parts += [widgets.HTML("<h4>Confident readings</h4>"), self.grid, accept]
        self.widget = widgets.VBox(parts)
        self.show()

    @staticmethod
    def later(action) -> None:
        """Run `action` once the keystrokes still on their way have reached the kernel (at once outside a kernel)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            action()
            return
        loop.call_later(SUBMIT_DELAY_SECONDS, action)

    def ranked(self, paths: list[Path]) -> list[Path]:
        """Least confident first when a model or a teacher reads them; otherwise in name order."""
        if self.teacher is not None and paths:
            for path, reading in zip(paths, self.teacher.read(paths)):
                if reading is not None:
                    self.readings[path.name] = (reading.text, reading.confidence)
            return sorted(paths, key=lambda p: self.readings.get(p.name, ("", 2.0))[1])
        if self.recogniser is None or not paths:
            return paths
        readable = []
        for path in paths:
            try:
                readable.append((path, open_image(path)))
            except Exception:  # a broken file is offered last, with no reading, rather than stopping the app
                continue
        predictions = self.recogniser.predict_images([image for _, image in readable])
        for (path, _), prediction in zip(readable, predictions):
            self.readings[path.name] = (prediction.text, prediction.confidence)
        return sorted(paths, key=lambda p: self.readings.get(p.name, ("", 2.0))[1])

    @property
    def current(self) -> Path | None:
        return self.queue[self.position] if self.position < len(self.queue) else None

    def show(self) -> None:
        done, total = len(self.store.labels), len(self.store.images())
        self.counter.value = f"<b>{done} of {total} labelled</b> · {len(self.queue) - self.position} to go"
        path = self.current
        if path is None:
            self.picture.layout.display = "none"
            self.text.value = ""
            self.text.disabled = True
            self.note.value = "<b>All pictures are labelled or skipped.</b> Restart to see the skipped ones again."
        else:
            try:
                self.picture.value = thumbnail_png(path)
                self.picture.layout.display = None
            except Exception as error:
                self.picture.layout.display = "none"
                self.note.value = f"{html.escape(path.name)} cannot be shown ({error.__class__.__name__}); skip it"
            self.text.disabled = False
            reading = self.readings.get(path.name)
            self.text.value = reading[0] if reading else ""
            self.note.value = (f"{html.escape(path.name)}" +
                               (f" · {'the teacher' if self.teacher is not None else 'the model'} read "
                                f"<code>{html.escape(reading[0])}</code> at {reading[1]:.2f}"
                                if reading else ""))
        self.grid.value = self.grid_html()

    def submit(self, text: str) -> None:
        text = text.strip()
        if text == UNDO_KEY:
            self.undo()
        elif not text:
            self.skip()
        elif self.current is not None:
            self.store.save(self.current.name, text)
            self.position += 1
            self.show()
            outside = sorted(set(text) - set(self.recogniser.alphabet.chars)) if self.recogniser else []
            if outside:
                self.note.value += (f"<br><span style='color:#b9770e'>saved <code>{html.escape(text)}</code>: "
                                    f"{html.escape(''.join(outside))} not in the run's alphabet (training will add "
                                    f"it)</span>")

    def skip(self) -> None:
        if self.current is not None:
            self.position += 1
        self.show()

    def undo(self) -> None:
        undone = self.store.undo()
        if undone is None:
            self.show()
            return
        filename = undone[0]
        path = self.store.folder / filename
        # The undone picture comes back as the next one to label.
        if path in self.queue[: self.position]:
            self.queue.remove(path)
            self.position -= 1
        self.queue.insert(self.position, path)
        self.show()
        self.note.value += f"<br>undid <code>{html.escape(filename)}</code> = <code>{html.escape(undone[1])}</code>"

    def confident(self) -> list[Path]:
        waiting = self.queue[self.position :]
        chosen = [p for p in waiting if self.readings.get(p.name, ("", 0.0))[1] >= CONFIDENT]
        return sorted(chosen, key=lambda p: -self.readings[p.name][1])[:GRID_SIZE]

    def grid_html(self) -> str:
        import base64

        cells = []
        for path in self.confident():
            try:
                data = base64.b64encode(thumbnail_png(path, 40)).decode()
            except Exception:
                continue
            text, confidence = self.readings[path.name]
            cells.append(f"<div style='display:inline-block;margin:4px;text-align:center'>"
                         f"<img src='data:image/png;base64,{data}'><br><code>{html.escape(text)}</code> "
                         f"{confidence:.2f}</div>")
        return "".join(cells) or "<i>no reading above the confidence to accept in a batch</i>"

    def accept_confident(self) -> int:
        """Save the model's readings of the pictures in the grid; returns how many were saved."""
        chosen = self.confident()
        for path in chosen:
            self.store.save(path.name, self.readings[path.name][0])
            self.queue.remove(path)
        self.show()
        return len(chosen)
