"""Loss along random, filter-normalised directions around trained weights.

Li, Xu, Taylor, Studer, Goldstein 2018, "Visualizing the Loss Landscape of Neural Nets"
(arXiv 1712.09913), Sec. 4: plot ``f(a, b) = L(theta + a d_1 + b d_2)`` for random Gaussian
directions whose every filter is rescaled to the norm of the same filter of ``theta``,
``d_{i,j} <- d_{i,j} / ||d_{i,j}|| * ||theta_{i,j}||``; biases and normalisation parameters
get no direction (the paper's "ignore biasbn"), so the scale invariance that BatchNorm gives
the weights does not distort the picture.

* :func:`filter_normalized_direction` - one such direction, as a dict ``name -> tensor``.
* :func:`loss_slice` - the loss on a 1-D or 2-D grid of steps along directions; the weights
  are restored exactly afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from reslib.diagnostics.hooks import preserved_state

Direction = dict[str, torch.Tensor]


def filter_normalized_direction(
    model: nn.Module, *, generator: torch.Generator | None = None
) -> Direction:
    """A random direction in weight space with each filter scaled to its weight's norm.

    A "filter" is one output unit: one row of a linear layer, one output channel of a
    convolution. Parameters with one dimension (biases, BatchNorm's gain and shift) get zeros.
    """
    direction: Direction = {}
    for name, p in model.named_parameters():
        if p.ndim <= 1:
            direction[name] = torch.zeros_like(p)
            continue
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        dims = tuple(range(1, p.ndim))  # everything but the output unit: one filter
        own = torch.linalg.vector_norm(p.detach(), dim=dims, keepdim=True)
        scale = own / torch.linalg.vector_norm(d, dim=dims, keepdim=True).clamp_min(1e-12)
        direction[name] = d * scale
    return direction


def _check_direction(model: nn.Module, direction: Mapping[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    if set(direction) != set(params):
        missing = sorted(set(params) - set(direction))[:3]
        extra = sorted(set(direction) - set(params))[:3]
        raise ValueError(
            f"a direction needs one tensor per parameter of the model (missing {missing}, "
            f"unknown {extra}); make it with filter_normalized_direction(model)"
        )
    for name, d in direction.items():
        if d.shape != params[name].shape:
            raise ValueError(
                f"direction {name} has shape {tuple(d.shape)}, the parameter "
                f"{tuple(params[name].shape)}"
            )


@torch.no_grad()
def loss_slice(
    model: nn.Module,
    loss: Callable[[nn.Module], float],
    directions: Sequence[Mapping[str, torch.Tensor]],
    steps: Sequence[float],
    *,
    batch_statistics: bool = True,
) -> torch.Tensor:
    """``loss(model)`` at ``theta + a d_1`` (1-D) or ``theta + a d_1 + b d_2`` (2-D).

    Args:
        model: the trained network; its weights, buffers and modes are restored exactly on
            exit (also when ``loss`` raises).
        loss: computes the loss of the model as it stands, e.g. on a fixed batch.
        directions: one or two directions (:func:`filter_normalized_direction`).
        steps: the values of ``a`` (and of ``b``) on the grid.
        batch_statistics: evaluate in train mode, so that BatchNorm normalises with the
            batch's own statistics (the scale invariance that filter normalisation relies on;
            with frozen running statistics a rescaled filter changes the output). The running
            statistics this updates are put back afterwards. ``False``: eval mode.

    Returns:
        shape ``(len(steps),)`` for one direction; ``(len(steps), len(steps))`` for two, row
        ``i`` at ``a = steps[i]``, column ``j`` at ``b = steps[j]``.

    Raises:
        ValueError: not one or two directions, no steps, or a direction that does not fit.
    """
    if len(directions) not in (1, 2):
        raise ValueError(f"a slice takes one or two directions, got {len(directions)}")
    if len(steps) == 0:
        raise ValueError(
            "steps is empty: give the grid's coordinates, e.g. torch.linspace(-1, 1, 11)"
        )
    for d in directions:
        _check_direction(model, d)
    params = dict(model.named_parameters())
    theta = {name: p.detach().clone() for name, p in params.items()}
    grid = [(float(a),) for a in steps]
    if len(directions) == 2:
        grid = [(float(a), float(b)) for a in steps for b in steps]
    values = []
    with preserved_state(model):
        model.train(batch_statistics)
        try:
            for coords in grid:
                for name, p in params.items():
                    moved = theta[name]
                    for c, d in zip(coords, directions, strict=True):
                        moved = moved + c * d[name]
                    p.copy_(moved)
                values.append(float(loss(model)))
        finally:
            for name, p in params.items():
                p.copy_(theta[name])
    out = torch.tensor(values)
    return out if len(directions) == 1 else out.reshape(len(steps), len(steps))
