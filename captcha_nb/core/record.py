"""metrics.json: what a finished run records, the headline first (test when there is a test split), then how training
went, where it started, what its input and pool were."""

from __future__ import annotations

from captcha_nb import project_relative
from captcha_nb.core.device import peak_memory_mb
from captcha_nb.core.model import count_parameters
from captcha_nb.core.rundir import RunDir
from captcha_nb.sources.download import resolve_data_dir


def write_metrics(run, stopped_because: str, test: dict) -> dict:
    """metrics.json: the headline (test when there is a test split), how training went, and where it started from."""
    config, run_dir, data, progress = run.config, run.run_dir, run.data, run.progress
    best = progress.best
    headline = "test" if test["n_test"] else "validation"
    if data.labels_from == "teacher":
        headline = "agreement with the teacher"  # no human label: validation is the teacher's readings
    metrics = {
        "model": run.model_name,
        "seed": config.seed,
        "headline": headline,
        "seq_accuracy": test["test_seq_accuracy"] if test["n_test"] else best["val_seq_accuracy"],
        **test,
        "n_train": len(data.train),
        "n_val": len(data.val),
        "val_seq_accuracy": best["val_seq_accuracy"],
        "val_cer": best.get("val_cer"),
        "val_loss": best["val_loss"],
        "best_epoch": best.get("best_epoch"),
        "best_weights": best.get("weights"),
        "epochs_run": len(progress.history),
        "train_seconds": progress.history[-1]["seconds"] if progress.history else 0.0,
        "plateau_seconds": progress.plateau_seconds,
        "augment_strength": progress.augment_strength,
        "final_train_loss": progress.history[-1]["train_loss"] if progress.history else None,
        "stopped_because": stopped_because,
        "parameters": count_parameters(run.model),
        "input_size": [data.spec.height, data.spec.width],
        "input": data.spec.to_dict(),
        "input_reasons": data.input_reasons,
        "alphabet": data.alphabet.chars,
        "device": str(run.device),
        "peak_memory_mb": peak_memory_mb(),
        "data_fingerprint": data.split.get("fingerprint"),
        "labels_from": data.labels_from,
        **data.teacher,
        "pool": pool_record(data.pool, progress.history),
        # Paths relative to the project, so a committed run names no machine's folders.
        "config": {**config.to_dict(), "data_dir": project_relative(resolve_data_dir(config.data_dir)),
                   "run_dir": project_relative(run_dir),
                   "init_from": project_relative(config.init_from) if config.init_from else None},
    }
    RunDir(run_dir).write_metrics(metrics)
    return metrics


def pool_record(pool, history: list[dict]) -> dict:
    """The pool's size and rounds, each round with the best validation accuracy and lowest validation loss the run
    reached until the next round: how the pool moved the validation curve."""
    if pool is None:
        return {"pictures": 0, "in_use": 0, "rounds": []}
    summary = pool.summary()
    starts = [r["at_seconds"] for r in summary["rounds"]] + [float("inf")]
    for number, round_ in enumerate(summary["rounds"]):
        rows = [row for row in history if starts[number] <= row["seconds"] < starts[number + 1]]
        round_["val_seq_accuracy_until_next"] = max((row["val_seq_accuracy"] for row in rows), default=None)
        round_["val_loss_until_next"] = min((row["val_loss"] for row in rows), default=None)
    return summary
