"""Gradient norms and activation statistics per layer, for one batch.

Gradients are taken with ``torch.autograd.grad``, which never touches ``param.grad``, so a
measurement in the middle of training does not disturb the optimiser, and the model's buffers
and mode are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from reslib.diagnostics.hooks import Layers, capture_outputs, check_layers, preserved_state

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def weight_layers(
    model: nn.Module, types: tuple[type[nn.Module], ...] = WEIGHT_LAYERS
) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every linear and convolution layer, in definition order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, types)]


def gradient_norms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
    *,
    layers: Layers | None = None,
    wrt: Literal["weight", "output"] = "weight",
) -> dict[str, float]:
    """The gradient norm at each layer for one batch, leaving the model exactly as it was.

    Args:
        layers: ``(name, module)`` pairs; every linear/conv layer by default.
        wrt: ``"weight"`` for ``||dLoss/dW_l||`` (what the optimiser sees) or ``"output"`` for
            ``||dLoss/dh_l||``, the gradient signal arriving at layer ``l`` from above.

    The model stays in its current mode (train mode: BatchNorm uses batch statistics).

    Raises:
        ValueError: a layer is not part of the model, has no ``weight`` (``wrt="weight"``) or
            did not run in the forward pass (``wrt="output"``).
    """
    if wrt not in ("weight", "output"):
        raise ValueError(f"wrt must be 'weight' or 'output', got {wrt!r}")
    chosen = check_layers(model, weight_layers(model) if layers is None else layers)
    if wrt == "weight":
        unweighted = [
            n for n, m in chosen if not isinstance(getattr(m, "weight", None), nn.Parameter)
        ]
        if unweighted:
            raise ValueError(f"wrt='weight' needs layers with a weight: {', '.join(unweighted)}")
    with preserved_state(model), capture_outputs(model, chosen) as outputs:
        loss = loss_fn(model(x), y)
        silent = [name for name, _ in chosen if name not in outputs]
        if silent:
            raise ValueError(f"these layers did not run in the forward pass: {', '.join(silent)}")
        if wrt == "weight":
            targets = [m.weight for _, m in chosen]
        else:
            targets = [outputs[name] for name, _ in chosen]
        grads = torch.autograd.grad(loss, targets, allow_unused=True)
    # allow_unused: a layer can run yet not reach the loss (a detached path): its gradient is 0
    return {
        name: (g.norm().item() if g is not None else 0.0)
        for (name, _), g in zip(chosen, grads, strict=True)
    }


@dataclass(frozen=True)
class ActivationStats:
    """Summary of one layer's output over a batch."""

    mean: float
    std: float
    zero_fraction: float  # exactly zero: dead ReLU units
    saturated_fraction: float  # |h| >= 0.99: tanh units pinned near +-1 pass almost no gradient

    @classmethod
    def of(cls, h: torch.Tensor) -> ActivationStats:
        h = h.detach().float()
        return cls(
            mean=h.mean().item(),
            std=h.std().item() if h.numel() > 1 else 0.0,
            zero_fraction=(h == 0).float().mean().item(),
            saturated_fraction=(h.abs() >= 0.99).float().mean().item(),
        )


@torch.no_grad()
def activation_stats(
    model: nn.Module, x: torch.Tensor, *, layers: Layers | None = None
) -> dict[str, ActivationStats]:
    """Mean, spread, dead and saturated fractions of each layer's output for one batch.

    Pass activation modules (e.g. ``[(n, m) for n, m in model.named_modules()
    if isinstance(m, nn.Tanh)]``) to look after the non-linearity. The model is left unchanged.

    Raises:
        ValueError: a layer is not part of the model or did not run.
    """
    chosen = weight_layers(model) if layers is None else layers
    with preserved_state(model), capture_outputs(model, chosen) as outputs:
        model(x)
    silent = [name for name, _ in chosen if name not in outputs]
    if silent:
        raise ValueError(f"these layers did not run in the forward pass: {', '.join(silent)}")
    return {name: ActivationStats.of(outputs[name]) for name, _ in chosen}
