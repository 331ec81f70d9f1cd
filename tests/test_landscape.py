"""reslib.diagnostics.landscape: filter-normalised directions and loss slices."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslib.diagnostics import filter_normalized_direction, loss_slice


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(1, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3)
    )


def test_directions_match_each_filters_norm_and_skip_biases() -> None:
    model = small_net()
    d = filter_normalized_direction(model, generator=torch.Generator().manual_seed(1))
    conv, fc = model[0].weight, model[4].weight
    assert torch.allclose(
        d["0.weight"].flatten(1).norm(dim=1), conv.detach().flatten(1).norm(dim=1)
    )
    assert torch.allclose(d["4.weight"].norm(dim=1), fc.detach().norm(dim=1))
    for name in ("0.bias", "1.weight", "1.bias", "4.bias"):
        assert torch.count_nonzero(d[name]) == 0


def test_directions_of_2d_convolutions_are_normalised_per_output_channel() -> None:
    conv = nn.Conv2d(3, 5, 3)
    d = filter_normalized_direction(conv, generator=torch.Generator().manual_seed(0))
    want = conv.weight.detach().flatten(1).norm(dim=1)
    assert torch.allclose(d["weight"].flatten(1).norm(dim=1), want)


def test_loss_slice_is_the_loss_at_the_moved_weights_and_restores_them() -> None:
    model = small_net()
    x, y = torch.randn(16, 1, 8), torch.randint(0, 3, (16,))
    model.train()
    state = copy.deepcopy(model.state_dict())
    g = torch.Generator().manual_seed(2)
    d1, d2 = (filter_normalized_direction(model, generator=g) for _ in range(2))

    def loss(m: nn.Module) -> float:
        return F.cross_entropy(m(x), y).item()

    line = loss_slice(model, loss, [d1], [0.0, 0.5])
    grid = loss_slice(model, loss, [d1, d2], torch.linspace(-1, 1, 3))
    assert line.shape == (2,) and grid.shape == (3, 3)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.training
    # by hand: the loss at theta + 0.5 d1, with batch statistics
    moved = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in moved.named_parameters():
            p.add_(0.5 * d1[name])
    assert line[1].item() == pytest.approx(loss(moved), rel=1e-5)
    assert line[0].item() == pytest.approx(grid[1, 1].item(), rel=1e-6)
    assert line[0].item() == pytest.approx(loss(copy.deepcopy(model)), rel=1e-6)


def test_loss_slice_restores_the_weights_when_the_loss_raises() -> None:
    model = small_net()
    state = copy.deepcopy(model.state_dict())
    d = filter_normalized_direction(model)

    def broken(_m: nn.Module) -> float:
        raise RuntimeError("loss failed")

    with pytest.raises(RuntimeError, match="loss failed"):
        loss_slice(model, broken, [d], [1.0])
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_loss_slice_rejects_bad_directions_and_grids() -> None:
    model = small_net()
    d = filter_normalized_direction(model)
    with pytest.raises(ValueError, match="one or two directions"):
        loss_slice(model, lambda m: 0.0, [d, d, d], [0.0])
    with pytest.raises(ValueError, match="steps is empty"):
        loss_slice(model, lambda m: 0.0, [d], [])
    with pytest.raises(ValueError, match="one tensor per parameter"):
        loss_slice(model, lambda m: 0.0, [{"0.weight": d["0.weight"]}], [0.0])
    wrong = dict(d, **{"4.weight": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="has shape"):
        loss_slice(model, lambda m: 0.0, [wrong], [0.0])
