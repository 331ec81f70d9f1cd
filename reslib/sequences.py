"""Synthetic sequence tasks for causal Transformers, generated offline from a seed.

Each task is next-token classification with one label per position: inputs ``x`` and labels
``y`` are long tensors of shape ``(N, T)``, ``y[:, t]`` depends only on ``x[:, :t+1]`` (so a
causal model can be perfect), and the labels of the positions that carry no question are the
blank token 0 (a model learns those from the position alone). Every task is deterministic
given the prompt, so the **optimal accuracy is 1 and the optimal loss is 0**; what a model
that ignores the tokens can reach, :func:`position_baseline`, tells learning from failure.

* :func:`copy_offset` - y_t = x_{t-k}: one attention head looking k tokens back.
* :func:`sort_tokens` - read n digits, a separator, then emit them sorted (fed back in, as a
  language model is): attention that compares and counts, in a few layers.
* :func:`modular_sum` - y_t = (x_0 + ... + x_t) mod p: a running sum, which needs the whole
  prefix at every position (hard for small Transformers; parity is the case p = 2).

>>> task = sort_tokens(n_train=2048, n_test=512, length=8, digits=10, seed=0)
>>> task.split.x_train.shape, task.vocab_size  # (2048, 16), 12
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from reslib.data import Split
from reslib.layers.checks import check_int

BLANK = 0  # the label of positions that ask nothing
SEPARATOR = 1  # sort_tokens: "now emit the sorted digits"


@dataclass(frozen=True)
class SequenceTask:
    """A generated task: its :class:`~reslib.data.Split` and what the numbers mean.

    Attributes:
        name: the task, e.g. ``"sort"``.
        split: ``x`` and ``y`` as ``(N, T)`` long tensors; ``num_classes`` is the vocabulary.
        vocab_size: tokens V, for inputs and labels alike.
        seq_len: T.
        optimal_accuracy: 1.0: every label is determined by the tokens up to it.
        optimal_loss: 0.0 (cross-entropy, nats per token) for the same reason.
    """

    name: str
    split: Split
    vocab_size: int
    seq_len: int
    optimal_accuracy: float = 1.0
    optimal_loss: float = 0.0


def position_baseline(split: Split) -> float:
    """Test accuracy of the best predictor that sees only the *position*: for each t, the
    training set's most frequent label at t. A model at this level has learned nothing from
    the tokens."""
    y_train, y_test = split.y_train, split.y_test  # (N, T)
    counts = torch.zeros(y_train.shape[1], split.num_classes, dtype=torch.long)
    counts.scatter_add_(1, y_train.T, torch.ones_like(y_train.T))  # (T, V) label counts
    guess = counts.argmax(dim=1)  # (T,)
    return (y_test == guess).float().mean().item()


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(check_int("seed", seed, minimum=0))


def _split(
    make: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]],
    n_train: int,
    n_test: int,
    seed: int,
    vocab: int,
) -> Split:
    check_int("n_train", n_train), check_int("n_test", n_test)
    g = _generator(seed)  # one stream: the test set follows the training set
    x_train, y_train = make(n_train, g)
    x_test, y_test = make(n_test, g)
    return Split(x_train, y_train, x_test, y_test, num_classes=vocab)


def copy_offset(
    *, n_train: int, n_test: int, seq_len: int = 16, vocab: int = 16, offset: int = 3, seed: int = 0
) -> SequenceTask:
    """Copy with an offset: x_t uniform over tokens 1..V-1, y_t = x_{t-k} for t >= k, else
    blank. Position-only baseline: k/T + (1 - k/T)/(V - 1)."""
    for name, value in (("seq_len", seq_len), ("vocab", vocab), ("offset", offset)):
        check_int(name, value, minimum=2 if name == "vocab" else 1)
    if offset >= seq_len:
        raise ValueError(f"offset ({offset}) must be smaller than seq_len ({seq_len})")

    def make(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(1, vocab, (n, seq_len), generator=g)  # (N, T)
        blank = torch.full((n, offset), BLANK, dtype=torch.long)
        return x, torch.cat([blank, x[:, :-offset]], dim=1)

    split = _split(make, n_train, n_test, seed, vocab)
    return SequenceTask("copy_offset", split, vocab, seq_len)


def sort_tokens(
    *, n_train: int, n_test: int, length: int = 8, digits: int = 10, seed: int = 0
) -> SequenceTask:
    """Sorting: the sequence ``a_1 .. a_n SEP s_1 .. s_n`` with s = sorted(a), fed as input
    without its last token (T = 2n); the label at SEP and after is the next sorted digit, the
    prompt's labels are blank. Digits are tokens 2..digits+1 (V = digits + 2)."""
    check_int("length", length), check_int("digits", digits, minimum=2)
    vocab = digits + 2

    def make(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.randint(2, vocab, (n, length), generator=g)  # (N, n)
        s = a.sort(dim=1).values
        sep = torch.full((n, 1), SEPARATOR, dtype=torch.long)
        full = torch.cat([a, sep, s], dim=1)  # (N, 2n + 1)
        blank = torch.full((n, length), BLANK, dtype=torch.long)
        return full[:, :-1], torch.cat([blank, s], dim=1)  # (N, 2n) each

    split = _split(make, n_train, n_test, seed, vocab)
    return SequenceTask("sort", split, vocab, 2 * length)


def modular_sum(
    *, n_train: int, n_test: int, seq_len: int = 16, modulus: int = 5, seed: int = 0
) -> SequenceTask:
    """Running sums: x_t uniform over 0..p-1, y_t = (x_0 + ... + x_t) mod p. Position-only
    baseline: 1/p (every running sum is uniform)."""
    check_int("seq_len", seq_len), check_int("modulus", modulus, minimum=2)

    def make(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, modulus, (n, seq_len), generator=g)
        return x, x.cumsum(dim=1) % modulus

    split = _split(make, n_train, n_test, seed, modulus)
    return SequenceTask("modular_sum", split, modulus, seq_len)
