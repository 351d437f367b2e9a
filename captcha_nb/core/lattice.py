"""CTC's alignment lattice, written to be read: how a frames x classes probability matrix becomes the probability of
a label, and where the loss pushes each frame.

This is the teaching twin of `torch.nn.functional.ctc_loss` (which training uses; the tests check both agree). Given
per-frame log-probabilities `log_probs` (T, C) with class 0 the blank, and a label as classes (1-based):

1. Extend the label with blanks, `- a - b - b -`: 2L + 1 states. A path through the lattice visits one state per frame.
2. From state s a path may stay, step to s + 1, or skip to s + 2; the skip is allowed only onto a character that
   differs from the one two states back, so `b - b` cannot be jumped over: a doubled character needs a blank between.
3. The forward variable alpha[t, s] is the log-probability of all path prefixes that reach state s at frame t.
   The label's probability is the sum over paths ending in the last blank or the last character.
4. The backward variable beta does the same from the end; alpha + beta gives each state's share of the label's
   probability at every frame (its posterior), and the loss's gradient on the logits is softmax - posterior.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLANK = 0


def extend_with_blanks(label: Sequence[int]) -> list[int]:
    """[a, b, b] -> [-, a, -, b, -, b, -]: the 2L + 1 lattice states, as classes."""
    states = [BLANK]
    for c in label:
        states += [c, BLANK]
    return states


def can_skip(states: Sequence[int], s: int) -> bool:
    """Whether a path may jump from state s - 2 straight to s: only onto a character unlike the one before it."""
    return s >= 2 and states[s] != BLANK and states[s] != states[s - 2]


def moves(states: Sequence[int]) -> list[tuple[int, int]]:
    """Every allowed (from, to) move between states in one frame: stay, step, and the skips `can_skip` allows."""
    allowed = []
    for s in range(len(states)):
        allowed.append((s, s))
        if s >= 1:
            allowed.append((s - 1, s))
        if can_skip(states, s):
            allowed.append((s - 2, s))
    return allowed


def forward(log_probs: np.ndarray, label: Sequence[int]) -> np.ndarray:
    """alpha (T, 2L + 1) in log space; -inf where no path can be."""
    states = extend_with_blanks(label)
    steps, size = log_probs.shape[0], len(states)
    alpha = np.full((steps, size), -np.inf)
    alpha[0, 0] = log_probs[0, states[0]]  # a path starts in the first blank ...
    if size > 1:
        alpha[0, 1] = log_probs[0, states[1]]  # ... or on the first character
    for t in range(1, steps):
        for s in range(size):
            incoming = [alpha[t - 1, s]]
            if s >= 1:
                incoming.append(alpha[t - 1, s - 1])
            if can_skip(states, s):
                incoming.append(alpha[t - 1, s - 2])
            alpha[t, s] = np.logaddexp.reduce(incoming) + log_probs[t, states[s]]
    return alpha


def best_path(log_probs: np.ndarray, label: Sequence[int]) -> tuple[list[int], float]:
    """The single most probable path that reads `label` (the forward recursion with max for sum, then back along
    the choices), as classes per frame, and its log-probability; ([], -inf) when no path of T frames reads it."""
    states = extend_with_blanks(label)
    steps, size = log_probs.shape[0], len(states)
    score = np.full((steps, size), -np.inf)
    came_from = np.zeros((steps, size), dtype=int)
    score[0, 0] = log_probs[0, states[0]]
    if size > 1:
        score[0, 1] = log_probs[0, states[1]]
    for t in range(1, steps):
        for s in range(size):
            incoming = [s] + ([s - 1] if s >= 1 else []) + ([s - 2] if can_skip(states, s) else [])
            came_from[t, s] = max(incoming, key=lambda previous: score[t - 1, previous])
            score[t, s] = score[t - 1, came_from[t, s]] + log_probs[t, states[s]]
    ends = [size - 1] + ([size - 2] if size > 1 else [])
    state = max(ends, key=lambda s: score[-1, s])
    if score[-1, state] == -np.inf:
        return [], -np.inf
    visited = [state]
    for t in range(steps - 1, 0, -1):
        visited.append(came_from[t, visited[-1]])
    return [states[s] for s in reversed(visited)], float(score[-1, state])


def backward(log_probs: np.ndarray, label: Sequence[int]) -> np.ndarray:
    """beta (T, 2L + 1) in log space: all path suffixes from state s at frame t to the end, frame t excluded."""
    states = extend_with_blanks(label)
    steps, size = log_probs.shape[0], len(states)
    beta = np.full((steps, size), -np.inf)
    beta[-1, -1] = 0.0
    if size > 1:
        beta[-1, -2] = 0.0
    for t in range(steps - 2, -1, -1):
        for s in range(size):
            outgoing = [beta[t + 1, s] + log_probs[t + 1, states[s]]]
            if s + 1 < size:
                outgoing.append(beta[t + 1, s + 1] + log_probs[t + 1, states[s + 1]])
            if s + 2 < size and can_skip(states, s + 2):
                outgoing.append(beta[t + 1, s + 2] + log_probs[t + 1, states[s + 2]])
            beta[t, s] = np.logaddexp.reduce(outgoing)
    return beta


def label_log_probability(log_probs: np.ndarray, label: Sequence[int]) -> float:
    """log p(label | frames): the paths that end in the last blank plus those that end on the last character."""
    alpha = forward(log_probs, label)
    ends = alpha[-1, -2:] if alpha.shape[1] > 1 else alpha[-1, -1:]
    return float(np.logaddexp.reduce(ends))


def class_posteriors(log_probs: np.ndarray, label: Sequence[int]) -> np.ndarray:
    """(T, C): at each frame, the share of the label's probability that passes through each class."""
    states = extend_with_blanks(label)
    occupancy = forward(log_probs, label) + backward(log_probs, label) - label_log_probability(log_probs, label)
    posteriors = np.zeros(log_probs.shape)
    for s, c in enumerate(states):
        posteriors[:, c] += np.exp(occupancy[:, s])
    return posteriors


def logit_gradient(log_probs: np.ndarray, label: Sequence[int]) -> np.ndarray:
    """d(-log p(label)) / d(logits), frame by frame: positive pushes a class down, negative pulls it up."""
    return np.exp(log_probs) - class_posteriors(log_probs, label)
