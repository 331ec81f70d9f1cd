"""Initialisers, applied from outside to any module tree."""

from __future__ import annotations

from typing import Literal

from torch import nn

from reslib.layers.checks import check_choice

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
