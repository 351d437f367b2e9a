"""metrics.json's pool record: each round with what the validation curve did until the next one."""

import torch

from captcha_nb.core.pseudo import Pool
from captcha_nb.core.record import pool_record
from captcha_nb.sources.data import CaptchaSet


def test_each_round_says_how_far_validation_got_before_the_next():
    pool = Pool(CaptchaSet(["a.png"], [""], [(10, 10)]), torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
    pool.rounds = [{"round": 0, "source": "ddddocr", "at_seconds": 0.0}, {"round": 1, "source": "self",
                                                                          "at_seconds": 10.0}]
    history = [{"seconds": s, "val_seq_accuracy": a, "val_loss": l}
               for s, a, l in [(4, 0.5, 1.0), (8, 0.7, 0.8), (12, 0.9, 0.5), (16, 0.8, 0.6)]]
    rounds = pool_record(pool, history)["rounds"]
    assert [(r["val_seq_accuracy_until_next"], r["val_loss_until_next"]) for r in rounds] == [(0.7, 0.8), (0.9, 0.5)]
    assert "val_seq_accuracy_until_next" not in pool.rounds[0]  # the run's own record is left as it was
    assert pool_record(None, history) == {"pictures": 0, "in_use": 0, "rounds": []}
