"""Highway networks: Srivastava, Greff and Schmidhuber 2015, "Highway Networks" (arXiv
1505.00387) and "Training Very Deep Networks" (arXiv 1507.06228),
y = T(x) * F(x) + C(x) * x with T(x) = sigmoid(W_T x + b_T).

Each layer has two gates. The **transform gate** T decides, per unit and per example, how much
of the layer's new value F(x) (the paper's H) to use; the **carry gate** C how much of the input
to keep. The paper ties them, C = 1 - T (``carry="coupled"``), so that a closed transform gate
(T -> 0) copies the input through, and initialises b_T negative (-1 to -3 for its deep MLPs), so
that every layer starts close to a copy and the signal and its gradient cross many layers.
``carry="uncoupled"`` gives the carry gate its own weights, C(x) = sigmoid(W_C x + b_C): with
T = C = 1 it is the residual block F(x) + x, which the coupled gate can never reach.

Every layer is a block of the shared protocol (:mod:`reslib.layers.blocks`): ``residual`` is F,
``gate`` is T, ``shortcut`` is what is carried (``nn.Identity()``; option A or B where a conv
stage changes shape; :class:`~reslib.layers.Zero` for the plain twin, ``skip="none"``, which
leaves y = T(x) * F(x), with the same parameters). So lesions, branch norms and zero-init work
as for every family: a lesioned layer computes its skip path C(x) * x (not x: the paper's own
lesion closes the gate instead), and ``zero_init_last`` makes F = 0 (for activations with
phi(0) = 0).

>>> net = HighwayMLP(40, 10, width=50, depth=50, gate_bias=-2.0)  # Fig. 1, on MNIST-1D
>>> conv = highway_cifar(20, width=match_width(270_000, lambda w: highway_cifar(20, width=w)))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from reslib.layers import (
    SHORTCUTS,
    SKIPS,
    Activation,
    Block,
    GatedBlock,
    Init,
    Norm,
    Shortcut,
    Skip,
    check_choice,
    check_float,
    check_int,
    conv_layer,
    global_pool,
    init_weights,
    make_activation,
    make_norm,
    make_shortcut,
)
from reslib.models.base import (
    BlockMLP,
    StagedNet,
    check_stages,
    cifar_units,
    count_parameters,
)

Carry = Literal["coupled", "uncoupled"]
CARRIES: tuple[str, ...] = ("coupled", "uncoupled")

__all__ = [
    "CARRIES",
    "Carry",
    "HighwayConvNet",
    "HighwayGate",
    "HighwayMLP",
    "UncoupledHighwayBlock",
    "highway_cifar",
    "highway_layer",
    "match_width",
    "transform_gates",
]


class HighwayGate(nn.Module):
    """A gate of a highway layer: sigmoid(W x + b), values in (0, 1), one per unit or channel.

    ``layer`` computes W x without a bias (a ``Linear`` or a convolution); the bias b is a
    parameter of its own, so that weight initialisers, which zero layer biases, leave the
    chosen starting value ``bias`` alone. Shapes: ``(B, C_in, *S) -> (B, C_out, *S')``.
    """

    def __init__(self, layer: nn.Module, channels: int, *, bias: float) -> None:
        super().__init__()
        self.layer = layer
        self.initial_bias = check_float("gate_bias", bias)
        self.bias = nn.Parameter(torch.full((check_int("channels", channels),), self.initial_bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.layer(x)  # (B, C, *S)
        # b has one value per channel: (C,) -> (1, C, 1, ...) to broadcast over the positions
        return torch.sigmoid(z + self.bias.view(1, -1, *([1] * (z.ndim - 2))))

    def extra_repr(self) -> str:
        return f"initial_bias={self.initial_bias}"


class UncoupledHighwayBlock(Block):
    """Srivastava et al. 2015 (arXiv 1505.00387), Eq. 2: y = T(x) F(x) + C(x) x, with a carry
    gate C of its own weights instead of 1 - T. T = C = 1 is the residual block F(x) + x.
    """

    def __init__(
        self,
        residual: nn.Module,
        gate: nn.Module,
        carry: nn.Module,
        shortcut: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.pre, self.post = nn.Identity(), nn.Identity()
        self.residual = residual
        self.gate, self.carry = gate, carry
        self.shortcut = nn.Identity() if shortcut is None else shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(x) * self.residual(x) + self.carry(x) * self.shortcut(x)

    def paths(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gate(x) * self.residual(x), self.carry(x) * self.shortcut(x)

    def skip_path(self, x: torch.Tensor) -> torch.Tensor:
        return self.carry(x) * self.shortcut(x)


def highway_layer(
    in_channels: int,
    out_channels: int | None = None,
    *,
    dim: int = 0,
    kernel_size: int = 3,
    stride: int = 1,
    gate_bias: float = -2.0,
    carry: Carry = "coupled",
    skip: Skip = "identity",
    shortcut: Shortcut = "A",
    activation: Activation = "tanh",
    norm: Norm = "none",
) -> Block:
    """One highway layer, y = T(x) F(x) + (1 - T(x)) x (or C(x) x when ``carry="uncoupled"``).

    Args:
        in_channels: features (``dim=0``) or channels of the input.
        out_channels: of the output (default ``in_channels``); where it or ``stride`` changes
            the shape, ``shortcut`` says how the carried input is reshaped.
        dim: 0 for feature vectors ``(B, F)`` (``nn.Linear``), 1 for ``(B, C, L)``, 2 for
            ``(B, C, H, W)`` (convolutions of ``kernel_size``, for F and the gates alike).
        gate_bias: b_T, the transform gate's initial bias; negative values start the layer
            close to a copy of its input (sigmoid(-2) = 0.12). The uncoupled carry gate
            starts at -b_T, so both begin as the coupled pair does.
        carry: ``"coupled"`` (C = 1 - T) or ``"uncoupled"`` (C has its own weights).
        skip: ``"identity"`` (carry the input), ``"none"`` (the plain twin, y = T(x) F(x)) or
            ``"detached"`` (carry the input forwards, no gradient backwards).
        shortcut: where the shape changes, ``"A"`` (subsample and zero-pad, no parameters, as
            the CIFAR ResNets) or ``"B"`` (a 1x1 projection); ``"C"`` projects in every layer.
        activation: phi in F(x) = phi(norm(W_F x + b_F)).
        norm: normalisation inside F (one of :data:`reslib.layers.NORMS`).
    """
    check_choice("carry", carry, CARRIES)
    check_choice("skip", skip, SKIPS)
    check_choice("shortcut", shortcut, SHORTCUTS)
    check_choice("dim", dim, (0, 1, 2))
    out = check_int("out_channels", out_channels or in_channels)
    check_int("in_channels", in_channels), check_int("stride", stride)
    if dim == 0 and (stride != 1 or out != in_channels):
        raise ValueError("a fully connected highway layer keeps its width: out_channels == in")

    def weights(bias: bool) -> nn.Module:  # W x: what F and each gate compute first
        if dim == 0:
            return nn.Linear(in_channels, out, bias=bias)
        if check_int("kernel_size", kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        conv = conv_layer(dim)
        return conv(
            in_channels, out, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias
        )

    branch = nn.Sequential(
        weights(norm == "none"), make_norm(norm, out, dim), make_activation(activation)
    )
    carried = make_shortcut(
        in_channels, out, stride, shortcut=shortcut, skip=skip, dim=max(dim, 1)
    )  # nn.Identity, option A/B where the shape changes, Zero or Detached
    gate = HighwayGate(weights(False), out, bias=gate_bias)
    if carry == "coupled":
        return GatedBlock(branch, gate, carried)
    return UncoupledHighwayBlock(
        branch, gate, HighwayGate(weights(False), out, bias=-gate_bias), carried
    )


class HighwayMLP(BlockMLP):
    """The fully connected highway network of Srivastava et al. 2015 (arXiv 1505.00387, Fig. 1):
    a plain layer to ``width`` units, ``depth`` highway layers, a linear classifier.

    Args:
        in_features: length of each input vector (40 for MNIST-1D).
        num_classes: outputs.
        width: units per layer (the paper: 50 for its thin highway nets).
        depth: highway layers (each has two weight matrices: W_F and W_T).
        gate_bias, carry, skip, activation, norm: as in :func:`highway_layer`.
        init: weight initialiser (:func:`reslib.layers.init_weights`); gate biases keep
            ``gate_bias``.

    Shapes: (B, in_features) -> (B, num_classes).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        width: int = 50,
        depth: int = 10,
        gate_bias: float = -2.0,
        carry: Carry = "coupled",
        skip: Skip = "identity",
        activation: Activation = "tanh",
        norm: Norm = "none",
        init: Init = "xavier",
    ) -> None:
        super().__init__(
            in_features,
            num_classes,
            width=width,
            depth=depth,
            block=lambda: highway_layer(
                width, gate_bias=gate_bias, carry=carry, skip=skip, activation=activation, norm=norm
            ),
            activation=activation,
            init=init,
        )


class HighwayConvNet(StagedNet):
    """A convolutional highway network in the layout of the CIFAR ResNets: a stem convolution,
    stages of highway conv layers (the first of each later stage halves the resolution and
    widens, carrying its input through option A or B), global pooling and a linear layer.

    Args:
        layers: highway layers per stage.
        widths: channels per stage.
        dim: 2 for images, 1 for sequences.
        in_channels, num_classes: input channels and outputs.
        kernel_size, gate_bias, carry, skip, shortcut, activation, norm: as in
            :func:`highway_layer`.
        init: weight initialiser (He et al.'s ``"kaiming"`` by default, for ReLU).

    Shapes: ``(B, in_channels, *S) -> (B, num_classes)``.
    """

    def __init__(
        self,
        layers: tuple[int, ...] = (3, 3, 3),
        widths: tuple[int, ...] = (16, 32, 64),
        *,
        dim: int = 2,
        in_channels: int = 3,
        num_classes: int = 10,
        kernel_size: int = 3,
        gate_bias: float = -1.0,
        carry: Carry = "coupled",
        skip: Skip = "identity",
        shortcut: Shortcut = "A",
        activation: Activation = "relu",
        norm: Norm = "batch",
        init: Init = "kaiming",
    ) -> None:
        super().__init__(dim=check_choice("dim", dim, (1, 2)), in_channels=in_channels)
        check_stages(layers, widths, unit="layer", width_name="widths")
        pad = check_int("kernel_size", kernel_size) // 2
        stem = conv_layer(dim)(
            in_channels, widths[0], kernel_size, padding=pad, bias=norm == "none"
        )
        self.stem = nn.Sequential(
            stem, make_norm(norm, widths[0], dim), make_activation(activation)
        )
        stages, previous = [], widths[0]
        for i, (count, width) in enumerate(zip(layers, widths, strict=True)):
            stage = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                stage.append(
                    highway_layer(
                        previous, width, dim=dim, kernel_size=kernel_size, stride=stride,
                        gate_bias=gate_bias, carry=carry, skip=skip, shortcut=shortcut,
                        activation=activation, norm=norm,
                    )
                )  # fmt: skip
                previous = width
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            global_pool(dim),
            nn.Flatten(),
            nn.Linear(widths[-1], check_int("num_classes", num_classes)),
        )
        init_weights(self, init)


def highway_cifar(depth: int, *, width: int = 16, **options: object) -> HighwayConvNet:
    """A CIFAR highway net of ``depth`` = 3n + 2 weight layers (stem, 3n highway layers, the
    classifier), with ``width``, 2 ``width``, 4 ``width`` channels per stage.

    Each highway layer has two k x k convolutions (F and T), as many weights as a ResNet
    basic block, so at equal depth and width it has about twice a ResNet's parameters; pick
    ``width`` with :func:`match_width` to compare at equal parameter count. ``options`` go to
    :class:`HighwayConvNet`.
    """
    n = cifar_units(depth, 1)
    widths = (check_int("width", width), 2 * width, 4 * width)
    return HighwayConvNet((n, n, n), widths, **options)  # type: ignore[arg-type]


def match_width(
    target: int, build: Callable[[int], nn.Module], *, low: int = 1, high: int = 1024
) -> int:
    """The width in [low, high] whose ``build(width)`` has the parameter count closest to
    ``target`` (counted on the meta device, so without memory or initialisation).

    Raises:
        ValueError: ``target`` or the bounds are not positive ints, or low > high.
    """
    check_int("target", target), check_int("low", low), check_int("high", high, minimum=low)

    def count(width: int) -> int:
        with torch.device("meta"):
            return count_parameters(build(width))

    while low < high:  # the count grows with the width: bisect for the first width >= target
        mid = (low + high) // 2
        low, high = (mid + 1, high) if count(mid) < target else (low, mid)
    return min((low - 1, low) if low > 1 else (low,), key=lambda w: abs(count(w) - target))


def transform_gates(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, T)`` for the transform gate of every highway layer in ``model``, input to
    output: feed them to :func:`reslib.diagnostics.capture_outputs` to read T(x_l)."""
    return [
        (f"{name}.gate", m.gate)
        for name, m in model.named_modules()
        if isinstance(m, (GatedBlock, UncoupledHighwayBlock))
    ]
