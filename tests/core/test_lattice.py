import numpy as np
import pytest
import torch
import torch.nn.functional as F

from captcha_nb.core import lattice


def random_log_probs(steps: int, classes: int, seed: int) -> np.ndarray:
    logits = torch.randn(steps, classes, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2
    return logits.log_softmax(-1).numpy()


def torch_loss(log_probs: np.ndarray, label: list[int]) -> float:
    lp = torch.from_numpy(log_probs).unsqueeze(1)  # (T, 1, C)
    return float(F.ctc_loss(lp, torch.tensor([label]), torch.tensor([lp.shape[0]]), torch.tensor([len(label)]),
                            reduction="sum"))


def test_blanks_surround_every_character_and_doubles_cannot_be_skipped():
    states = lattice.extend_with_blanks([3, 5, 5])
    assert states == [0, 3, 0, 5, 0, 5, 0]
    assert (1, 3) in lattice.moves(states) and (3, 5) not in lattice.moves(states)  # 5 - 5: the blank is needed
    assert (2, 4) not in lattice.moves(states)  # never skip onto a blank


@pytest.mark.parametrize("label", [[1, 2, 3], [2, 2], [1, 1, 1, 2], [4], [3, 1, 3, 3, 2]])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_lattice_gives_torchs_ctc_loss_on_random_frames(label, seed):
    log_probs = random_log_probs(12, 6, seed)
    assert -lattice.label_log_probability(log_probs, label) == pytest.approx(torch_loss(log_probs, label), abs=1e-5)


def test_the_lattice_gives_torchs_loss_on_a_real_models_frames(recogniser, tiny_set):
    images = tiny_set.tensor(recogniser.spec)[:4]
    probs = recogniser.probabilities(images, temperature=1.0).double()
    for sample, label in zip(probs, tiny_set.labels[:4]):
        classes = recogniser.alphabet.encode(label)
        log_probs = sample.clamp_min(1e-30).log().log_softmax(-1).numpy()
        assert -lattice.label_log_probability(log_probs, classes) == pytest.approx(torch_loss(log_probs, classes),
                                                                                  abs=1e-5)


def test_the_gradient_is_softmax_minus_posterior_as_autograd_finds():
    logits = torch.randn(10, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64, requires_grad=True)
    label = [2, 2, 4]
    loss = F.ctc_loss(logits.log_softmax(-1).unsqueeze(1), torch.tensor([label]), torch.tensor([10]),
                      torch.tensor([3]), reduction="sum")
    loss.backward()
    ours = lattice.logit_gradient(logits.detach().log_softmax(-1).numpy(), label)
    assert np.allclose(ours, logits.grad.numpy(), atol=1e-6)
    assert np.allclose(lattice.class_posteriors(logits.detach().log_softmax(-1).numpy(), label).sum(1), 1.0)


def test_a_label_longer_than_the_frames_allow_has_no_path():
    log_probs = random_log_probs(3, 4, 0)
    assert lattice.label_log_probability(log_probs, [1, 1, 2]) == -np.inf  # needs 4 frames: 1 - 1 2


def collapse(path: list[int]) -> list[int]:
    merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
    return [c for c in merged if c != lattice.BLANK]


@pytest.mark.parametrize("label", [[1], [1, 2], [2, 2], [1, 2, 1]])
def test_the_best_path_of_a_label_is_the_likeliest_of_all_paths_that_read_it(label):
    import itertools

    log_probs = random_log_probs(5, 3, seed=len(label) * 7 + sum(label))
    readers = [(sum(log_probs[t, c] for t, c in enumerate(p)), list(p))
               for p in itertools.product(range(3), repeat=5) if collapse(list(p)) == label]
    path, log_p = lattice.best_path(log_probs, label)
    assert collapse(path) == label and log_p == pytest.approx(max(readers)[0])


def test_a_label_too_long_for_the_frames_has_no_path():
    assert lattice.best_path(random_log_probs(2, 3, seed=1), [1, 1]) == ([], -np.inf)
