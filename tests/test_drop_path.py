"""Stochastic depth (Huang et al. 2016, arXiv 1603.09382): DropPath's eval-mode identity and
1 / (1 - p) scaling, DropBranch skipping the branch, and the linear decay rule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reslib.layers import DropBranch, DropPath, ResidualBlock, linear_decay


def test_linear_decay_is_the_papers_rule() -> None:
    rates = linear_decay(4)
    assert rates == pytest.approx([0.125, 0.25, 0.375, 0.5])
    rates = linear_decay(54, last=0.5)  # ResNet-110: 54 blocks
    assert rates[-1] == 0.5 and rates[0] == pytest.approx(0.5 / 54)
    steps = [b - a for a, b in zip(rates, rates[1:], strict=False)]
    assert max(steps) == pytest.approx(min(steps))  # linear
    assert linear_decay(3, last=0.0) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("args", [(0, 0.5), (4, 1.0), (4, -0.1), (4, float("nan"))])
def test_linear_decay_rejects_bad_input(args) -> None:
    with pytest.raises(ValueError):
        linear_decay(*args)


def test_drop_path_eval_identity_and_inverted_scaling() -> None:
    torch.manual_seed(0)
    drop = DropPath(0.25)
    x = torch.randn(4096, 3, 5) + 2.0
    assert torch.equal(drop.eval()(x), x)
    y = drop.train()(x)
    kept = (y != 0).flatten(1).any(dim=1)
    # a kept sample is scaled by exactly 1 / (1 - p), a dropped one is all zero
    assert torch.allclose(y[kept], x[kept] / 0.75)
    assert torch.count_nonzero(y[~kept]) == 0
    assert (~kept).float().mean().item() == pytest.approx(0.25, abs=0.03)


def test_drop_branch_skips_the_branch_for_the_whole_batch() -> None:
    torch.manual_seed(0)
    calls = []
    branch = nn.Linear(8, 8)
    branch.register_forward_hook(lambda m, i, o: calls.append(1))
    block = ResidualBlock(DropBranch(branch, p=0.5))
    x = torch.randn(16, 8)
    outputs = [block(x) for _ in range(400)]
    dropped = [torch.equal(y, x) for y in outputs]
    assert len(calls) == dropped.count(False)  # a dropped branch never ran
    assert sum(dropped) / 400 == pytest.approx(0.5, abs=0.08)
    with torch.no_grad():
        full = branch(x)
    kept = next(y for y, d in zip(outputs, dropped, strict=True) if not d)
    assert torch.allclose(kept, x + full / 0.5)
    block.eval()
    assert torch.allclose(block(x), x + branch(x))


def test_drop_branch_gradient_flows_only_through_kept_branches() -> None:
    torch.manual_seed(3)
    block = ResidualBlock(DropBranch(nn.Linear(8, 8), p=0.5))
    x = torch.randn(4, 8, requires_grad=True)
    for _ in range(20):
        block.zero_grad()
        y = block(x)
        y.sum().backward()
        weight_grad = block.residual.branch.weight.grad
        if torch.equal(y, x):
            assert weight_grad is None or torch.count_nonzero(weight_grad) == 0
        else:
            assert torch.count_nonzero(weight_grad) > 0


def test_drop_branch_at_p_zero_is_the_branch_and_rejects_bad_p() -> None:
    branch = nn.Linear(4, 4)
    x = torch.randn(2, 4)
    assert torch.equal(DropBranch(branch, 0.0)(x), branch(x))
    for p in (1.0, -0.1):
        with pytest.raises(ValueError, match="p"):
            DropBranch(branch, p)
