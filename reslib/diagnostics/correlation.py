"""Shattered gradients: how the input gradient changes between nearby inputs.

Balduzzi et al. 2017, "The Shattered Gradients Problem: If resnets are the answer, then what is
the question?" (arXiv 1702.08591), Sec. 2: for inputs ``x_1 .. x_N`` along a line, the gradient
``g_i = d f(x_i) / d x`` of a deep plain net looks like white noise, with autocorrelation
``r(delta) = sum_i g~_i g~_{i+delta} / sum_i g~_i^2`` (``g~`` centred) near zero for every lag
``delta >= 1``, while a residual net's gradient stays correlated over many neighbours.

* :func:`input_gradients` - ``d f(x)_unit / d x`` for every input of a batch, one at a time.
* :func:`autocorrelation` - ``r(delta)`` of a sequence of gradients, ``delta = 0 .. max_lag``.
* :func:`gradient_correlation` - the two together: the diagnostic the chapters call.
"""

from __future__ import annotations

import torch
from torch import nn

from reslib.diagnostics.hooks import preserved_state
from reslib.layers.checks import check_int


def input_gradients(model: nn.Module, x: torch.Tensor, *, unit: int = 0) -> torch.Tensor:
    """``d model(x)[i, unit] / d x_i`` for every row ``x_i`` of ``x``, shape ``x.shape``.

    Taken in eval mode, so that BatchNorm uses its running statistics and each example's
    output depends on that example alone; the model's buffers, modes and ``.grad`` are left
    as they were.

    Raises:
        ValueError: ``unit`` is not an output of the model.
    """
    check_int("unit", unit, minimum=0)
    with preserved_state(model):
        model.eval()
        inp = x.detach().clone().requires_grad_(True)
        out = model(inp)
        if out.ndim != 2 or unit >= out.shape[1]:
            raise ValueError(
                f"unit {unit} is not an output: the model returns shape {tuple(out.shape)}, "
                f"expected (batch, outputs) with more than {unit} outputs"
            )
        # rows are independent in eval mode, so the gradient of the sum is each row's gradient
        (grad,) = torch.autograd.grad(out[:, unit].sum(), inp)
    return grad


def autocorrelation(g: torch.Tensor, max_lag: int) -> list[float]:
    """``r(delta)`` for ``delta = 0 .. max_lag`` of the sequence ``g`` (shape ``(N, *D)``).

    Each coordinate is centred over the ``N`` points; ``r(0) = 1``. For white noise
    ``r(delta)`` is near 0 for every ``delta >= 1``; for a smooth function of the position it
    stays near 1.

    Raises:
        ValueError: ``max_lag`` is not below ``N``, or the sequence is constant.
    """
    check_int("max_lag", max_lag, minimum=0)
    flat = g.detach().reshape(g.shape[0], -1).double()  # (N, D)
    if max_lag >= flat.shape[0]:
        raise ValueError(
            f"max_lag must be below the number of points {flat.shape[0]}, got {max_lag}"
        )
    centred = flat - flat.mean(dim=0)
    power = (centred * centred).sum()
    if power == 0:
        raise ValueError("the gradients are the same at every point: no correlation to measure")
    n = flat.shape[0]
    return [((centred[: n - d] * centred[d:]).sum() / power).item() for d in range(max_lag + 1)]


def gradient_correlation(
    model: nn.Module, x: torch.Tensor, *, max_lag: int, unit: int = 0
) -> list[float]:
    """Autocorrelation ``r(delta)``, ``delta = 0 .. max_lag``, of the input gradients along
    the ordered inputs ``x`` (Balduzzi et al. 2017, Fig. 1); the model is left as it was."""
    return autocorrelation(input_gradients(model, x, unit=unit), max_lag)
