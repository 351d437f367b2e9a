"""Callbacks for `engine.fit`: how a notebook watches training without the engine knowing about notebooks."""

from __future__ import annotations

from captcha_nb.core.engine import EpochReport


class ShowPredictions:
    """After every epoch, print a few validation captchas' decoded predictions beside their real text."""

    def __init__(self, n: int = 6):
        self.n = n

    def __call__(self, report: EpochReport) -> None:
        row, evaluation = report.row, report.evaluation
        print(f"epoch {row['epoch']:3d}  loss {row['train_loss']:.3f}  val acc {row['val_seq_accuracy']:.3f}  "
              f"CER {row['val_cer']:.3f}  ({row['seconds']:.0f}s)")
        pairs = list(zip(evaluation.truths, evaluation.predictions))[: self.n]
        print("    " + "  ".join(f"{t}→{p or '∅'}{'✓' if t == p else '✗'}" for t, p in pairs))
