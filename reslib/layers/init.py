"""Initialisers, applied from outside to any module tree: He/Xavier, zero-init of a branch's
last layer (Goyal et al. 2017), and Fixup's depth-dependent rescaling (Zhang et al. 2019)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from reslib.layers.checks import check_choice, check_int

Init = Literal["kaiming", "xavier", "default"]
INITS: tuple[str, ...] = ("kaiming", "xavier", "default")
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def init_weights(
    module: nn.Module, init: str = "kaiming", *, mode: Literal["fan_in", "fan_out"] = "fan_in"
) -> None:
    """Initialise every linear/conv weight of ``module``; their biases to zero.

    * ``"kaiming"`` - He et al. 2015 (arXiv 1502.01852), N(0, 2 / fan): chosen so that ReLU
      layers keep the variance of their signal, Var[h_l] = Var[h_{l-1}]. ``mode="fan_out"``
      keeps the gradient's variance instead (torchvision's ResNets and the papers' code).
    * ``"xavier"`` - Glorot & Bengio 2010: N(0, 2 / (fan_in + fan_out)), derived for units that
      are linear around zero (tanh, sigmoid's centre).
    * ``"default"`` - leave torch's own (uniform, scaled by 1 / sqrt(fan_in)).
    """
    check_choice("init", init, INITS)
    check_choice("mode", mode, ("fan_in", "fan_out"))
    if init == "default":
        return
    for m in module.modules():
        if isinstance(m, WEIGHT_LAYERS):
            if init == "kaiming":
                nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            else:
                nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def zero_last_layer_(module: nn.Module) -> nn.Module:
    """Zero the weight (and bias) of the last layer in ``module`` that has a weight.

    When that layer is the last thing the branch computes - a BatchNorm's gamma (Goyal et al.
    2017, arXiv 1706.02677), a conv, or ReZero's alpha - the branch outputs exactly zero.

    Raises:
        ValueError: nothing in ``module`` has a weight.
    """
    for m in reversed(list(module.modules())):
        weight = getattr(m, "weight", None)
        if isinstance(weight, nn.Parameter):
            nn.init.zeros_(weight)
            bias = getattr(m, "bias", None)
            if isinstance(bias, nn.Parameter):
                nn.init.zeros_(bias)
            return m
    raise ValueError(f"{type(module).__name__} has no layer with a weight to zero")


def fixup_scale(num_branches: int, layers_per_branch: int) -> float:
    """Fixup's rescaling factor, Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual
    Learning Without Normalization" (arXiv 1901.09321): L^(-1 / (2m - 2)).

    ``L`` residual branches of ``m`` weight layers each: scaling all but the last layer of every
    branch by this factor (and zeroing the last) keeps the size of each branch's first update,
    and so of the whole network's, independent of the depth ``L`` (the paper's Section 3).

    Raises:
        ValueError: ``num_branches < 1`` or ``layers_per_branch < 2`` (with one layer the
            exponent is undefined; Fixup zeroes such a branch and scales nothing).
    """
    check_int("num_branches", num_branches)
    check_int("layers_per_branch", layers_per_branch, minimum=2)
    return float(num_branches) ** (-1.0 / (2 * layers_per_branch - 2))


def _weight_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, WEIGHT_LAYERS)]


def fixup_init_(branches: Sequence[nn.Module], *, head: nn.Module | None = None) -> float:
    """Fixup (Zhang et al. 2019, arXiv 1901.09321) on the residual branches of a network with
    no normalisation: W <- L^(-1 / (2m - 2)) W_He for each branch's layers but the last, and
    the last (and the classifier ``head``, if given) set to zero.

    Rules 1 and 2 of the paper: every block starts as the identity, and once the last layers
    move, a branch's contribution is the size of one branch in a net of depth 1. Rule 3, the
    scalar biases and multiplier, is part of the architecture (a ``LearnedScale(1.0)`` at the
    end of the branch; linear/conv biases subsume the scalar biases). Biases are zeroed; each
    branch must have the same number m >= 2 of linear/conv layers.

    Returns:
        The factor applied, :func:`fixup_scale` (L, m).

    Raises:
        ValueError: no branches, a branch with fewer than two weight layers, or branches with
            different numbers of them.
    """
    if not branches:
        raise ValueError("fixup_init_ needs at least one residual branch")
    layers = [_weight_layers(b) for b in branches]
    counts = sorted({len(found) for found in layers})
    if len(counts) != 1:
        raise ValueError(f"every branch needs the same number of linear/conv layers, got {counts}")
    scale = fixup_scale(len(branches), counts[0])
    with torch.no_grad():
        for found in layers:
            for m in found:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                m.weight.mul_(scale)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            zero_last_layer_(found[-1])
    if head is not None:
        zero_last_layer_(head)
    return scale
