"""Synthetic sequence tasks: seeded, causal (each label follows from the tokens up to it),
shaped for a causal Transformer, and with the baselines they document."""

from __future__ import annotations

import pytest
import torch

from reslib.sequences import (
    BLANK,
    SEPARATOR,
    copy_offset,
    modular_sum,
    position_baseline,
    sort_tokens,
)


def test_copy_offset_copies_k_tokens_back() -> None:
    task = copy_offset(n_train=64, n_test=16, seq_len=12, vocab=8, offset=3, seed=0)
    x, y = task.split.x_train, task.split.y_train
    assert x.shape == y.shape == (64, 12) and x.dtype == y.dtype == torch.long
    assert (y[:, :3] == BLANK).all() and torch.equal(y[:, 3:], x[:, :-3])
    assert x.min() >= 1 and x.max() < 8 and task.split.num_classes == 8
    expected = 3 / 12 + (9 / 12) / 7
    big = copy_offset(n_train=4000, n_test=4000, seq_len=12, vocab=8, offset=3, seed=1)
    assert position_baseline(big.split) == pytest.approx(expected, abs=0.02)


def test_sort_emits_the_sorted_prompt_one_token_at_a_time() -> None:
    task = sort_tokens(n_train=32, n_test=8, length=5, digits=6, seed=0)
    x, y = task.split.x_train, task.split.y_train
    assert x.shape == y.shape == (32, 10) and task.vocab_size == 8 and task.seq_len == 10
    prompt = x[:, :5]
    s = prompt.sort(dim=1).values
    assert (x[:, 5] == SEPARATOR).all() and torch.equal(x[:, 6:], s[:, :-1])  # teacher forcing
    assert (y[:, :5] == BLANK).all() and torch.equal(y[:, 5:], s)
    assert prompt.min() >= 2 and prompt.max() <= 7


def test_modular_sum_is_the_running_sum() -> None:
    task = modular_sum(n_train=16, n_test=4, seq_len=9, modulus=5, seed=0)
    x, y = task.split.x_train, task.split.y_train
    for t in range(9):
        assert torch.equal(y[:, t], x[:, : t + 1].sum(dim=1) % 5)


@pytest.mark.parametrize("make", [copy_offset, sort_tokens, modular_sum])
def test_tasks_are_seeded_and_train_differs_from_test(make) -> None:  # noqa: ANN001
    a, b, c = (make(n_train=20, n_test=20, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.split.x_train, b.split.x_train)
    assert not torch.equal(a.split.x_train, c.split.x_train)
    assert not torch.equal(a.split.x_train, a.split.x_test)
    assert a.optimal_accuracy == 1.0 and a.optimal_loss == 0.0
    assert 0.0 < position_baseline(a.split) < 1.0


def test_bad_sizes_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="offset"):
        copy_offset(n_train=4, n_test=4, seq_len=4, offset=4)
    with pytest.raises(ValueError, match="digits must be an int >= 2"):
        sort_tokens(n_train=4, n_test=4, digits=1)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        modular_sum(n_train=4, n_test=4, seed=-1)
    with pytest.raises(ValueError, match="n_train must be an int >= 1"):
        modular_sum(n_train=0, n_test=4)
