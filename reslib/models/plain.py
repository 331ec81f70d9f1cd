"""Deep networks with an optional skip: the control group of every experiment.

A plain network and its residual twin are the *same* stack of blocks; only the block's shortcut
differs. Every block computes ``self.residual(x) + self.shortcut(x)``, where the shortcut is

* ``nn.Identity()`` - the residual network, H(x) = F(x) + x (He et al. 2016, arXiv 1512.03385);
* :class:`Zero` - the plain network, H(x) = F(x): the addition contributes nothing;
* :class:`Detached` - a forward-only skip, F(x) + stop_gradient(x): the identity carries the
  signal forward but no gradient backward.

So "plain vs residual" compares exactly one thing: whether the identity path exists.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Literal, TypeVar

import torch
from torch import nn

Activation = Literal["relu", "tanh", "sigmoid", "gelu", "identity"]
Init = Literal["kaiming", "xavier", "default"]
Norm = Literal["none", "batch", "layer"]
Skip = Literal["none", "identity", "detached"]
T = TypeVar("T")

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}
INITS = ("kaiming", "xavier", "default")
NORMS = ("none", "batch", "layer")
SKIPS = ("none", "identity", "detached")


class Zero(nn.Module):
    """The shortcut of a plain network: contributes nothing, passes no gradient.

    Returns a scalar zero, which broadcasts against the residual whatever its shape.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(())


class Detached(nn.Module):
    """A forward-only shortcut: the identity in the forward pass, no gradient backwards."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach()


class Subsample(nn.Module):
    """Keep every ``stride``-th position along the last axes: a parameter-free shortcut for a
    block that halves the resolution without changing the width (He et al. 2016, option A)."""

    def __init__(self, stride: int = 2, dims: int = 1) -> None:
        super().__init__()
        self.stride, self.dims = stride, dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = (..., *([slice(None, None, self.stride)] * self.dims))
        return x[index]


def shortcut(skip: str) -> nn.Module:
    """The shortcut module for ``skip`` in ``"none" | "identity" | "detached"``."""
    return {"none": Zero, "identity": nn.Identity, "detached": Detached}[
        check_choice("skip", skip, SKIPS)
    ]()


def check_choice(what: str, value: T, valid: Collection[T] | Mapping[T, object]) -> T:
    """Return ``value`` if it is one of ``valid``, else raise a ValueError listing the options."""
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}: expected one of {', '.join(map(str, valid))}")
    return value


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (never in-place: hooks need the original tensor)."""
    return ACTIVATIONS[check_choice("activation", name, ACTIVATIONS)]()


def _positive(what: str, value: int) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return value


def init_weights(model: nn.Module, init: str) -> None:
    """Initialise every linear/conv weight; biases to zero.

    * ``"kaiming"`` - He et al. 2015 (arXiv 1502.01852): N(0, 2 / fan_in), derived so that ReLU
      layers keep the variance of their signal: Var[h_l] = Var[h_{l-1}].
    * ``"xavier"`` - Glorot & Bengio 2010: N(0, 2 / (fan_in + fan_out)), derived for units that
      are linear around zero (tanh, sigmoid's centre).
    * ``"default"`` - torch's own (uniform, scaled by 1 / sqrt(fan_in)).
    """
    check_choice("init", init, INITS)
    if init == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            if init == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Block(nn.Module):
    """One weight layer, its normalisation and activation, with a chosen shortcut.

    ``forward`` is the equation: H(x) = F(x) + shortcut(x).
    """

    def __init__(self, residual: nn.Module, skip: str = "none") -> None:
        super().__init__()
        self.residual = residual
        self.shortcut = shortcut(skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


def _norm1d(norm: str, width: int, *, channels_first: bool) -> nn.Module:
    check_choice("norm", norm, NORMS)
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm == "layer":
        # over features (MLP) or over channels and positions (conv), one group = LayerNorm
        return nn.GroupNorm(1, width) if channels_first else nn.LayerNorm(width)
    return nn.Identity()


class DeepMLP(nn.Module):
    """A deep fully connected net: input layer, ``depth`` hidden blocks, output layer.

    Each hidden block is Linear -> norm -> activation, wrapped in a shortcut (``skip``), so
    ``DeepMLP(..., skip="identity")`` is the residual twin h + act(norm(W h)) of the plain net.

    Args:
        in_features: length of each input vector (40 for MNIST-1D).
        num_classes: outputs.
        width: hidden units per layer.
        depth: number of hidden blocks (each one weight layer).
        activation: ``"relu" | "tanh" | "sigmoid" | "gelu" | "identity"``.
        init: ``"kaiming" | "xavier" | "default"``.
        norm: ``"none" | "batch" | "layer"``.
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
        super().__init__()
        self.in_features = _positive("in_features", in_features)
        for what, value in (("num_classes", num_classes), ("width", width), ("depth", depth)):
            _positive(what, value)
        self.stem = nn.Sequential(nn.Linear(in_features, width), make_activation(activation))
        self.blocks = nn.Sequential(
            *(
                Block(
                    nn.Sequential(
                        nn.Linear(width, width),
                        _norm1d(norm, width, channels_first=False),
                        make_activation(activation),
                    ),
                    skip,
                )
                for _ in range(depth)
            )
        )
        self.head = nn.Linear(width, num_classes)
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"DeepMLP expects input of shape (batch, {self.in_features}), got {tuple(x.shape)}"
            )
        return self.head(self.blocks(self.stem(x)))


class DeepConv1d(nn.Module):
    """A deep 1-D convolutional net for sequences such as MNIST-1D.

    Stem conv -> ``depth`` blocks of Conv1d -> norm -> activation (each wrapped in a
    shortcut, ``skip``), with the sequence halved by a stride-2 block after every
    ``depth // 3`` blocks -> global average pool -> linear. A block that downsamples keeps
    every other position on its shortcut (:class:`Subsample`), so the plain and residual twins
    have exactly the same parameters.

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
        self.in_channels = _positive("in_channels", in_channels)
        for what, value in (("num_classes", num_classes), ("width", width), ("depth", depth)):
            _positive(what, value)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")
        every = downsample_every or max(1, depth // 3)
        pad = kernel_size // 2
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, width, kernel_size, padding=pad, bias=norm == "none"),
            _norm1d(norm, width, channels_first=True),
            make_activation(activation),
        )
        blocks = []
        for i in range(depth):
            stride = 2 if i > 0 and i % every == 0 and i // every <= 2 else 1
            residual = nn.Sequential(
                nn.Conv1d(
                    width, width, kernel_size, stride=stride, padding=pad, bias=norm == "none"
                ),
                _norm1d(norm, width, channels_first=True),
                make_activation(activation),
            )
            block = Block(residual, skip)
            if stride == 2 and skip != "none":
                # the width is unchanged, so the shortcut only needs to drop every other position:
                # no parameters, and the plain and residual twins stay exactly the same size
                block.shortcut = nn.Sequential(block.shortcut, Subsample(2))
            blocks.append(block)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(width, num_classes)
        )
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2 and self.in_channels == 1:
            x = x.unsqueeze(1)  # (B, L) -> (B, 1, L)
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"DeepConv1d expects input of shape (batch, {self.in_channels}, length)"
                + (" or (batch, length)" if self.in_channels == 1 else "")
                + f", got {tuple(x.shape)}"
            )
        return self.head(self.blocks(self.stem(x)))
