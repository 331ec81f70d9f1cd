"""Measurements of gradient flow and activations, taken from outside the model.

Everything here attaches hooks inside a context manager and removes them on exit, and the
one-shot measurements also restore the model's buffers (BatchNorm running statistics) and its
train/eval mode, so a model is left exactly as it was: model code never knows it is measured.

Gradients are taken with ``torch.autograd.grad``, which never touches ``param.grad``, so a
measurement in the middle of training does not disturb the optimiser either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
Layers = Sequence[tuple[str, nn.Module]]


def weight_layers(
    model: nn.Module, types: tuple[type[nn.Module], ...] = WEIGHT_LAYERS
) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every linear and convolution layer, in definition order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, types)]


def _resolve(model: nn.Module, layers: Layers | None) -> Layers:
    chosen = weight_layers(model) if layers is None else layers
    if not chosen:
        raise ValueError(
            "no layers to measure: the model has no Linear/Conv layers; "
            "pass layers=[(name, module), ...]"
        )
    return chosen


@contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Restore the model's buffers (e.g. BatchNorm running statistics) and mode on exit."""
    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    modes = {name: m.training for name, m in model.named_modules()}
    try:
        yield model
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(saved[name])
        for name, m in model.named_modules():
            m.training = modes[name]


@contextmanager
def capture_outputs(
    model: nn.Module, layers: Layers | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """Collect each layer's output of the forward passes run inside the context.

    Yields a dict ``name -> output`` (the latest forward pass); the hooks go away on exit.
    """
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in _resolve(model, layers):

        def store(_m: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
            outputs[name] = out

        handles.append(module.register_forward_hook(store))
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()


@contextmanager
def record_gradients(
    model: nn.Module, layers: Layers | None = None
) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Record ``||dLoss/d output||`` of each layer for every backward pass inside the context.

    Use it around ordinary training steps; it yields ``name -> [norm per backward]`` with the
    norms kept on the device (no host sync), and removes its hooks on exit.
    """
    norms: dict[str, list[torch.Tensor]] = {name: [] for name, _ in _resolve(model, layers)}
    handles = []
    for name, module in _resolve(model, layers):

        def on_forward(_m: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
            if out.requires_grad:
                out.register_hook(lambda g, name=name: norms[name].append(g.detach().norm()))

        handles.append(module.register_forward_hook(on_forward))
    try:
        yield norms
    finally:
        for h in handles:
            h.remove()


def gradient_norms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
    *,
    layers: Layers | None = None,
    wrt: str = "weight",
) -> dict[str, float]:
    """The gradient norm at each layer for one batch, leaving the model exactly as it was.

    Args:
        wrt: ``"weight"`` for ``||dLoss/dW_l||`` (what the optimiser sees) or ``"output"`` for
            ``||dLoss/dh_l||``, the gradient signal arriving at layer ``l`` from above.

    The model stays in its current mode (train mode: BatchNorm uses batch statistics), and its
    running statistics and ``.grad`` fields are untouched.
    """
    if wrt not in ("weight", "output"):
        raise ValueError(f"wrt must be 'weight' or 'output', got {wrt!r}")
    chosen = _resolve(model, layers)
    with preserved_state(model), capture_outputs(model, chosen) as outputs:
        loss = loss_fn(model(x), y)
        if wrt == "weight":
            targets = [m.weight for _, m in chosen]
        else:
            targets = [outputs[name] for name, _ in chosen]
        grads = torch.autograd.grad(loss, targets, allow_unused=True)
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
    """
    with preserved_state(model), capture_outputs(model, layers) as outputs:
        model(x)
    return {name: ActivationStats.of(h) for name, h in outputs.items()}
