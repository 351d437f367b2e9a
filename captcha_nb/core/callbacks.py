"""Callbacks for `engine.fit`: how a notebook watches training without the engine knowing about notebooks."""

from __future__ import annotations

from captcha_nb.core.engine import EpochReport

# Validation accuracies whose first crossing is worth a line: what a reader of the executed notebook wants to find.
MILESTONES = (0.5, 0.9, 0.99)


class ShowPredictions:
    """Print a static line at the moments that tell the story of a run, with a few validation captchas' decoded
    predictions beside their real text: the first epoch, the end of CTC's plateau (the first correct reading), and
    the last epoch (`finish`); a line without captchas when validation accuracy first crosses a milestone. A few
    lines, however many epochs the budget buys, so an executed notebook reads well when committed."""

    def __init__(self, n: int = 6):
        self.n = n
        self.best = 0.0
        self.last: EpochReport | None = None

    def line(self, report: EpochReport, why: str) -> None:
        row = report.row
        print(f"epoch {row['epoch']:3d} ({row['seconds']:5.0f} s, {why}): loss {row['train_loss']:.3f}, validation "
              f"accuracy {row['val_seq_accuracy']:.3f}, CER {row['val_cer']:.3f}")

    def samples(self, report: EpochReport) -> None:
        pairs = list(zip(report.evaluation.truths, report.evaluation.predictions))[: self.n]
        print("    " + "  ".join(f"{t}→{p or '∅'}{'✓' if t == p else '✗'}" for t, p in pairs))

    def __call__(self, report: EpochReport) -> None:
        accuracy = report.row["val_seq_accuracy"]
        if report.row["epoch"] == 1:
            self.line(report, "first epoch")
            self.samples(report)
        elif self.best == 0 and accuracy > 0:
            self.line(report, "end of the plateau")
            self.samples(report)
        elif crossed := [m for m in MILESTONES if self.best < m <= accuracy]:
            self.line(report, f"first at {crossed[-1]:.0%}")
        self.best = max(self.best, accuracy)
        self.last = report

    def finish(self) -> None:
        if self.last is not None:
            self.line(self.last, "last epoch")
            self.samples(self.last)
