"""reslib.diagnostics.correlation: input gradients and their autocorrelation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from reslib.diagnostics import autocorrelation, gradient_correlation, input_gradients


def test_input_gradients_of_a_known_function() -> None:
    model = nn.Linear(3, 2)
    x = torch.randn(5, 3)
    g = input_gradients(model, x, unit=1)
    assert torch.allclose(g, model.weight[1].detach().expand(5, 3))


def test_autocorrelation_of_smooth_and_white_sequences() -> None:
    t = torch.linspace(0, 1, 400)
    smooth = torch.sin(2 * torch.pi * t)
    r = autocorrelation(smooth, max_lag=3)
    assert r[0] == pytest.approx(1.0) and r[1] > 0.99
    noise = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    r = autocorrelation(noise, max_lag=5)
    assert r[0] == pytest.approx(1.0) and max(abs(v) for v in r[1:]) < 0.05
    # alternating signs: perfectly anti-correlated neighbours
    assert autocorrelation(torch.tensor([1.0, -1.0] * 50), 1)[1] == pytest.approx(-0.99)


def test_autocorrelation_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="max_lag must be below"):
        autocorrelation(torch.randn(4), max_lag=4)
    with pytest.raises(ValueError, match="same at every point"):
        autocorrelation(torch.ones(10), max_lag=2)


def test_gradient_correlation_leaves_the_model_as_it_was() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))
    model.train()
    state = copy.deepcopy(model.state_dict())
    x = torch.linspace(-2, 2, 64).unsqueeze(1)
    r = gradient_correlation(model, x, max_lag=4)
    assert len(r) == 5 and r[0] == pytest.approx(1.0)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.training and all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())


def test_input_gradients_rejects_a_missing_unit() -> None:
    with pytest.raises(ValueError, match="unit 3 is not an output"):
        input_gradients(nn.Linear(2, 2), torch.randn(4, 2), unit=3)
