"""Initialisers for very deep residual nets (chapter 9): Fixup's rescaling rule, zero-init
branches give the identity, and the ReZero/SkipInit scalar."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from reslib.layers import (
    LearnedScale,
    ResidualBlock,
    fixup_init_,
    fixup_scale,
    init_weights,
)


def _branch(width: int = 32, layers: int = 2) -> nn.Sequential:
    parts: list[nn.Module] = []
    for _ in range(layers):
        parts += [nn.ReLU(), nn.Linear(width, width)]
    return nn.Sequential(*parts)


def test_fixup_scale_is_the_papers_rule() -> None:
    # L^(-1/(2m-2)): m = 2 gives 1/sqrt(L), m = 3 (a bottleneck) the fourth root
    assert fixup_scale(100, 2) == pytest.approx(0.1)
    assert fixup_scale(16, 3) == pytest.approx(0.5)
    assert fixup_scale(1, 2) == 1.0
    assert fixup_scale(54, 2) == pytest.approx(54**-0.5)


@pytest.mark.parametrize("args", [(0, 2), (10, 1), (10, 0), (2.0, 2), (True, 2)])
def test_fixup_scale_rejects_impossible_sizes(args) -> None:
    with pytest.raises(ValueError, match="num_branches|layers_per_branch"):
        fixup_scale(*args)


def test_fixup_init_scales_all_but_the_last_layer_and_zeroes_the_last_and_the_head() -> None:
    torch.manual_seed(0)
    width, n = 256, 64
    branches = [_branch(width, layers=3) for _ in range(n)]
    head = nn.Linear(width, 10)
    scale = fixup_init_(branches, head=head)
    assert scale == pytest.approx(fixup_scale(n, 3)) == pytest.approx(64**-0.25)
    first = torch.cat([b[1].weight.flatten() for b in branches])
    # He init has std sqrt(2 / fan_in); Fixup multiplies it by the scale
    assert first.std().item() == pytest.approx(scale * math.sqrt(2 / width), rel=0.02)
    for b in branches:
        assert b[3].weight.std().item() == pytest.approx(scale * math.sqrt(2 / width), rel=0.1)
        assert torch.count_nonzero(b[5].weight) == 0 and torch.count_nonzero(b[5].bias) == 0
        assert all(torch.count_nonzero(b[i].bias) == 0 for i in (1, 3))
    assert torch.count_nonzero(head.weight) == 0 and torch.count_nonzero(head.bias) == 0


def test_fixup_init_makes_every_block_the_identity() -> None:
    torch.manual_seed(0)
    stack = nn.Sequential(*(ResidualBlock(_branch()) for _ in range(20)))
    init_weights(stack, "kaiming")
    fixup_init_([b.residual for b in stack])
    x = torch.randn(8, 32)
    assert torch.equal(stack(x), x)


def test_fixup_init_rejects_empty_uneven_and_single_layer_branches() -> None:
    with pytest.raises(ValueError, match="at least one"):
        fixup_init_([])
    with pytest.raises(ValueError, match="same number"):
        fixup_init_([_branch(layers=2), _branch(layers=3)])
    with pytest.raises(ValueError, match="layers_per_branch"):
        fixup_init_([_branch(layers=1)])


@pytest.mark.parametrize("norm_last", [False, True])
def test_zero_init_last_gives_the_identity_with_or_without_a_final_batchnorm(norm_last) -> None:
    # Goyal et al.'s zero-gamma (a final BN) and a zeroed last linear layer: both F(x) = 0
    torch.manual_seed(0)
    parts = [nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16)]
    block = ResidualBlock(nn.Sequential(*parts, *([nn.BatchNorm1d(16)] if norm_last else [])))
    block.zero_init_last()
    x = torch.randn(8, 16)
    assert torch.equal(block(x), x)
    # the zeroed layer still learns: its gradient is not zero
    block(x).pow(2).sum().backward()
    last = block.residual[-1]
    assert last.weight.grad is not None


def test_rezero_scalar_starts_as_the_identity_and_receives_a_gradient() -> None:
    # SkipInit / ReZero: x + alpha F(x) with alpha = 0; only alpha gets a gradient at first
    torch.manual_seed(0)
    block = ResidualBlock(nn.Sequential(_branch(), LearnedScale(0.0)))
    x = torch.randn(8, 32)
    assert torch.equal(block(x), x)
    (block(x) * torch.randn(8, 32)).sum().backward()
    alpha = block.residual[1].weight
    assert alpha.grad is not None and alpha.grad.abs().item() > 0
    assert all(p.grad.abs().sum() == 0 for p in block.residual[0].parameters())
