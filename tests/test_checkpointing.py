"""Checkpointed segments (Chen et al. 2016, arXiv 1604.06174): outputs and gradients equal to
the plain forward pass, fewer saved activations, BatchNorm statistics counted once."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from reslib.diagnostics import saved_activation_bytes
from reslib.layers import CheckpointedSequential, DropPath, ResidualBlock, buffers_kept


def _stack(n: int = 12, width: int = 16, norm: bool = False, drop: float = 0.0) -> nn.Sequential:
    def branch() -> nn.Sequential:
        parts = [nn.Linear(width, width), nn.GELU(), nn.Linear(width, width)]
        if norm:
            parts.insert(1, nn.BatchNorm1d(width))
        return nn.Sequential(*parts, DropPath(drop))

    return nn.Sequential(*(ResidualBlock(branch()) for _ in range(n)))


def _grads(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    x = x.clone().requires_grad_(True)
    out = model(x)
    out.square().mean().backward()
    return out.detach(), [x.grad, *(p.grad for p in model.parameters())]


@pytest.mark.parametrize("segments", [1, 3, 5, 12])
@pytest.mark.parametrize("norm", [False, True])
def test_checkpointed_outputs_and_gradients_equal_the_plain_forward(segments, norm) -> None:
    torch.manual_seed(0)
    plain = _stack(norm=norm)
    checkpointed = CheckpointedSequential(copy.deepcopy(plain), segments)
    x = torch.randn(8, 16)
    out_a, grads_a = _grads(plain, x)
    out_b, grads_b = _grads(checkpointed, x)
    assert torch.allclose(out_a, out_b, atol=1e-6)
    for a, b in zip(grads_a, grads_b, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_random_draws_are_replayed_in_the_recomputation() -> None:
    plain = _stack(drop=0.5)
    checkpointed = CheckpointedSequential(copy.deepcopy(plain), 4)
    x = torch.randn(8, 16)
    torch.manual_seed(1)
    out_a, grads_a = _grads(plain, x)
    torch.manual_seed(1)
    out_b, grads_b = _grads(checkpointed, x)
    assert torch.allclose(out_a, out_b, atol=1e-6)
    for a, b in zip(grads_a, grads_b, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_batchnorm_statistics_are_updated_once() -> None:
    torch.manual_seed(0)
    plain = _stack(norm=True)
    checkpointed = CheckpointedSequential(copy.deepcopy(plain), 3)
    x = torch.randn(8, 16)
    _grads(plain, x), _grads(checkpointed, x)
    for (name, a), (_, b) in zip(
        plain.state_dict().items(), checkpointed.blocks.state_dict().items(), strict=True
    ):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_checkpointing_saves_fewer_activations_and_is_plain_without_gradients() -> None:
    torch.manual_seed(0)
    plain = _stack(n=16)
    x = torch.randn(32, 16, requires_grad=True)
    full = saved_activation_bytes(plain, x).bytes
    kept = saved_activation_bytes(CheckpointedSequential(plain, 4), x).bytes
    assert kept < full / 2
    with torch.no_grad():
        assert torch.equal(CheckpointedSequential(plain, 4)(x), plain(x))
    unchecked = CheckpointedSequential(plain, 4)
    unchecked.enabled = False
    assert saved_activation_bytes(unchecked, x).bytes == full


def test_bounds_cover_every_block_once() -> None:
    stack = CheckpointedSequential(_stack(n=10), 3)
    bounds = stack.bounds()
    assert bounds[0][0] == 0 and bounds[-1][1] == 10 and len(bounds) == 3
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))


@pytest.mark.parametrize("segments", [0, 13, 2.0])
def test_rejects_impossible_segment_counts(segments) -> None:
    with pytest.raises(ValueError, match="segments"):
        CheckpointedSequential(_stack(n=12), segments)


def test_buffers_kept_restores_running_statistics() -> None:
    norm = nn.BatchNorm1d(4)
    before = copy.deepcopy(norm.state_dict())
    with buffers_kept(norm):
        norm(torch.randn(8, 4) + 3)
    for key, value in norm.state_dict().items():
        assert torch.equal(value, before[key])
