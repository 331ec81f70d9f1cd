"""Deep networks with an optional skip: the control group of every experiment.

A plain network and its residual twin are the *same* stack of blocks; only the shortcut differs
(``skip``, see :mod:`reslib.layers.shortcuts`). Every block is a
:class:`~reslib.layers.ResidualBlock` computing ``residual(x) + shortcut(x)``, where the
shortcut is

* ``nn.Identity()`` - the residual network, H(x) = F(x) + x (He et al. 2016, arXiv 1512.03385);
* :class:`~reslib.layers.Zero` - the plain network, H(x) = F(x): the addition adds nothing;
* :class:`~reslib.layers.Detached` - a forward-only skip, F(x) + stop_gradient(x).

So "plain vs residual" compares exactly one thing: whether the identity path exists.
"""

from __future__ import annotations

import torch
from torch import nn

from reslib.layers import (
    Activation,
    Init,
    Norm,
    ResidualBlock,
    Skip,
    check_int,
    init_weights,
    make_activation,
    make_norm,
    make_shortcut,
)
from reslib.models.base import BlockMLP, channels_first_input


def _layer(weight: nn.Module, norm: str, width: int, dim: int, activation: str) -> nn.Sequential:
    """weight -> norm -> activation: one block's residual branch F."""
    return nn.Sequential(weight, make_norm(norm, width, dim), make_activation(activation))


class DeepMLP(BlockMLP):
    """A deep fully connected net: input layer, ``depth`` hidden blocks, output layer.

    Each hidden block is Linear -> norm -> activation wrapped in a shortcut (``skip``), so
    ``DeepMLP(..., skip="identity")`` is the residual twin h + act(norm(W h)) of the plain net.

    Args:
        in_features: length of each input vector (40 for MNIST-1D).
        num_classes: outputs.
        width: hidden units per layer.
        depth: number of hidden blocks (each one weight layer).
        activation: one of :data:`reslib.layers.ACTIVATIONS`.
        init: ``"kaiming" | "xavier" | "default"`` (:func:`reslib.layers.init_weights`).
        norm: one of :data:`reslib.layers.NORMS` (``"layer"`` is LayerNorm over the features).
        skip: ``"none"`` (plain), ``"identity"`` (residual) or ``"detached"`` (forward only).

    Shapes: (B, in_features) -> (B, num_classes).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        width: int = 128,
        depth: int = 8,
        activation: Activation = "relu",
        init: Init = "kaiming",
        norm: Norm = "none",
        skip: Skip = "none",
    ) -> None:
        super().__init__(
            in_features,
            num_classes,
            width=width,
            depth=depth,
            block=lambda: ResidualBlock(
                _layer(nn.Linear(width, width), norm, width, 0, activation),
                make_shortcut(width, width, skip=skip, dim=1),
            ),
            activation=activation,
            init=init,
        )


class DeepConv1d(nn.Module):
    """A deep 1-D convolutional net for sequences such as MNIST-1D.

    Stem conv -> ``depth`` blocks of Conv1d -> norm -> activation (each wrapped in a shortcut,
    ``skip``), with the sequence halved by a stride-2 block after every ``downsample_every``
    blocks (default ``depth // 3``, at most twice) -> global average pool -> linear. A block
    that downsamples keeps every other position on its shortcut (option A without padding), so
    the plain and residual twins have exactly the same parameters.

    Shapes: (B, in_channels, L) or (B, L) when ``in_channels == 1`` -> (B, num_classes).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        width: int = 32,
        depth: int = 8,
        kernel_size: int = 3,
        activation: Activation = "relu",
        init: Init = "kaiming",
        norm: Norm = "batch",
        skip: Skip = "none",
        downsample_every: int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        for what, value in (("num_classes", num_classes), ("width", width), ("depth", depth)):
            check_int(what, value)
        if check_int("kernel_size", kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        every = check_int("downsample_every", downsample_every or max(1, depth // 3))
        pad, bias = kernel_size // 2, norm == "none"
        self.stem = _layer(
            nn.Conv1d(in_channels, width, kernel_size, padding=pad, bias=bias),
            norm,
            width,
            1,
            activation,
        )
        blocks = []
        for i in range(depth):
            stride = 2 if i > 0 and i % every == 0 and i // every <= 2 else 1
            conv = nn.Conv1d(width, width, kernel_size, stride=stride, padding=pad, bias=bias)
            shortcut = make_shortcut(width, width, stride, skip=skip, dim=1)
            blocks.append(ResidualBlock(_layer(conv, norm, width, 1, activation), shortcut))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(width, num_classes)
        )
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = channels_first_input(x, dim=1, in_channels=self.in_channels, model="DeepConv1d")
        return self.head(self.blocks(self.stem(x)))
