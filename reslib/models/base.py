"""What the model families share beyond the ground floor: counting and input shape checks."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import torch
from torch import nn

from reslib.layers.activations import make_activation
from reslib.layers.checks import check_int
from reslib.layers.init import init_weights

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover - Python 3.10: typing_extensions comes with torch
    from typing_extensions import Unpack

__all__ = [
    "BlockMLP",
    "StagedNet",
    "Unpack",
    "channels_first_input",
    "check_stages",
    "cifar_units",
    "count_parameters",
]


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters (works on the ``meta`` device, without memory)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def channels_first_input(
    x: torch.Tensor, *, dim: int, in_channels: int, model: str
) -> torch.Tensor:
    """Check a ``(B, C, *S)`` input with ``dim`` spatial axes and ``in_channels`` channels.

    A ``(B, *S)`` input gains its channel axis when ``in_channels`` is 1 (MNIST-1D sequences).

    Raises:
        ValueError: the shape does not fit; the message shows the expected one.
    """
    if x.ndim == dim + 1 and in_channels == 1:
        x = x.unsqueeze(1)  # (B, *S) -> (B, 1, *S)
    if x.ndim != dim + 2 or x.shape[1] != in_channels:
        spatial = {0: (), 1: ("L",), 2: ("H", "W")}[dim]
        expected = ", ".join(("batch", str(in_channels), *spatial))
        alternative = f" or (batch, {', '.join(spatial)})" if in_channels == 1 and dim else ""
        raise ValueError(
            f"{model} expects input of shape ({expected}){alternative}, got {tuple(x.shape)}"
        )
    return x


def cifar_units(depth: int, layers_per_unit: int) -> int:
    """Units per stage of a three-stage CIFAR net with ``depth`` = 3 n ``layers_per_unit`` + 2
    weight layers (He et al. 2016: 6n + 2 with basic blocks, 9n + 2 with bottlenecks).

    Raises:
        ValueError: ``depth`` does not have that form.
    """
    per_depth = 3 * layers_per_unit
    is_int = isinstance(depth, int) and not isinstance(depth, bool)
    if not is_int or depth < per_depth + 2 or (depth - 2) % per_depth:
        examples = ", ".join(str(per_depth * n + 2) for n in (1, 2, 3, 6, 18))
        raise ValueError(
            f"a CIFAR net of {layers_per_unit}-layer units has {per_depth}n + 2 layers "
            f"({examples}, ...), got {depth!r}"
        )
    return (depth - 2) // per_depth


class StagedNet(nn.Module):
    """stem -> stages -> head, with the input's shape checked first: the skeleton that the
    ResNet families share. Subclasses build ``stem``, ``stages`` (an ``nn.Sequential`` of
    ``nn.Sequential`` stages) and ``head``.
    """

    stem: nn.Module
    stages: nn.Sequential
    head: nn.Module

    def __init__(self, *, dim: int, in_channels: int) -> None:
        super().__init__()
        self.dim = dim
        self.in_channels = check_int("in_channels", in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = channels_first_input(
            x, dim=self.dim, in_channels=self.in_channels, model=type(self).__name__
        )
        return self.head(self.stages(self.stem(x)))


def check_stages(
    layers: Sequence[int], widths: Sequence[int], *, unit: str = "block", width_name: str = "planes"
) -> None:
    """Check one positive count of ``unit`` (blocks, or layers) and one positive width (the
    builder's argument ``width_name``) per stage."""
    if len(layers) != len(widths) or not layers:
        raise ValueError(f"need one {unit} count per stage: layers={layers}, {width_name}={widths}")
    for count, width in zip(layers, widths, strict=True):
        check_int(f"{unit}s per stage", count), check_int(f"{width_name} per stage", width)


class BlockMLP(nn.Module):
    """A linear layer to ``width`` units, ``depth`` blocks made by ``block()``, a linear
    classifier: the skeleton the fully connected families share (DeepMLP, HighwayMLP).

    Shapes: ``(B, in_features) -> (B, num_classes)``; the weights are initialised last, by
    :func:`reslib.layers.init_weights` with ``init``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        width: int,
        depth: int,
        block: Callable[[], nn.Module],
        activation: str,
        init: str,
    ) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        for what, value in (("num_classes", num_classes), ("width", width), ("depth", depth)):
            check_int(what, value)
        self.stem = nn.Sequential(nn.Linear(in_features, width), make_activation(activation))
        self.blocks = nn.Sequential(*(block() for _ in range(depth)))
        self.head = nn.Linear(width, num_classes)
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = channels_first_input(x, dim=0, in_channels=self.in_features, model=type(self).__name__)
        return self.head(self.blocks(self.stem(x)))
