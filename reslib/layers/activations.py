"""The one table of activations. Each name builds a fresh, never in-place module: the
diagnostics' full backward hooks need the tensors an in-place op would overwrite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import nn

from reslib.layers.checks import check_choice

Activation = Literal["relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu", "identity"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,  # Clevert et al. 2015 (arXiv 1511.07289), alpha = 1
    "leaky_relu": nn.LeakyReLU,  # slope 0.01 for x < 0
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (one of :data:`ACTIVATIONS`)."""
    return ACTIVATIONS[check_choice("activation", name, ACTIVATIONS)]()
