"""Shortcut paths h(x): what a block adds its residual branch F(x) to.

Two words, one meaning each (the book's glossary):

* ``skip`` - *whether and how the paths join*: ``"identity"`` (the residual net),
  ``"none"`` (the plain twin: :class:`Zero`, so H(x) = F(x)) or ``"detached"`` (a forward-only
  shortcut: :class:`Detached`, values pass but no gradient).
* ``shortcut`` - *how the shortcut is built where the shape changes*, He et al. 2016
  (arXiv 1512.03385): option ``"A"`` (:class:`PadShortcut`: subsample and zero-pad, no
  parameters), ``"B"`` (a :class:`Projection` only where the shape changes) or ``"C"`` (a
  projection in every block).

The other modules are what He et al. 2016b (arXiv 1603.05027, Table 1) put on a shortcut:
:class:`Scale`, :class:`Gate` with :class:`GatedPath`, and :class:`ChannelMask` for a partial
skip.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from reslib.layers.checks import check_choice, check_float, check_int
from reslib.layers.dims import BATCH_NORM, conv_layer

Skip = Literal["identity", "none", "detached"]
Shortcut = Literal["A", "B", "C"]
SKIPS: tuple[str, ...] = ("identity", "none", "detached")
SHORTCUTS: tuple[str, ...] = ("A", "B", "C")
NormLayer = Callable[[int], nn.Module]


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


class PadShortcut(nn.Module):
    """Option A: the identity, subsampled by ``stride`` and zero-padded to ``out_channels``.

    ``(B, C_in, *S) -> (B, C_out, *S / stride)``. No parameters: the extra channels are zeros.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"option A can only add channels ({in_channels} -> {out_channels}); "
                "use shortcut='B' or 'C' to reduce them"
            )
        self.extra, self.stride = out_channels - in_channels, check_int("stride", stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.ndim - 2
        x = x[(slice(None), slice(None)) + (slice(None, None, self.stride),) * spatial]
        # F.pad lists (before, after) pairs from the last dim backwards; the channels are dim 1
        return F.pad(x, (0, 0) * spatial + (0, self.extra))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, zero_channels={self.extra}"


class Projection(nn.Sequential):
    """Options B/C: W_s x as a strided 1x1 convolution followed by normalisation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        dim: int = 2,
        norm_layer: NormLayer | None = None,
    ) -> None:
        norm = (norm_layer or BATCH_NORM[dim])(out_channels)
        conv = conv_layer(dim)(in_channels, out_channels, 1, stride=stride, bias=False)
        super().__init__(OrderedDict(conv=conv, bn=norm))


def make_shortcut(
    in_channels: int,
    out_channels: int,
    stride: int = 1,
    *,
    shortcut: Shortcut = "A",
    skip: Skip = "identity",
    dim: int = 2,
    norm_layer: NormLayer | None = None,
) -> nn.Module:
    """The shortcut of one block: option A/B/C (``shortcut``), or a control (``skip``).

    ``skip="none"`` gives :class:`Zero` whatever the option (the plain twin);
    ``skip="detached"`` puts :class:`Detached` in front (a projection still learns).
    ``norm_layer`` builds the projection's normalisation (``nn.Identity`` for a bare 1x1 conv).
    """
    check_choice("shortcut", shortcut, SHORTCUTS)
    check_choice("skip", skip, SKIPS)
    for what, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        check_int(what, value)
    check_int("stride", stride)
    if skip == "none":
        return Zero()
    reshapes = stride != 1 or in_channels != out_channels
    if shortcut == "C" or (shortcut == "B" and reshapes):
        path: nn.Module = Projection(
            in_channels, out_channels, stride, dim=dim, norm_layer=norm_layer
        )
    elif reshapes:
        path = PadShortcut(in_channels, out_channels, stride)
    else:
        path = nn.Identity()
    return nn.Sequential(Detached(), path) if skip == "detached" else path


class Scale(nn.Module):
    """Multiply by a constant: h(x) = lambda x (He et al. 2016b, Table 1, "constant scaling")."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = check_float("factor", factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * x

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class Gate(nn.Module):
    """g(x) = sigmoid(W_g x + b_g), a 1x1 convolution (He et al. 2016b, Table 1, gating).

    ``W_g`` starts at zero, so the gate starts at sigmoid(b_g) everywhere and ``bias`` alone sets
    how much it lets through at initialisation (b_g = -6: g = 0.0025); W_g still learns.
    Shapes: ``(B, C_in, *S) -> (B, C_out, *S / stride)``, values in (0, 1).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, *, bias: float, dim: int = 2
    ) -> None:
        super().__init__()
        self.conv = conv_layer(dim)(in_channels, out_channels, 1, stride=stride, bias=True)
        self.initial_bias = check_float("gate bias", bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.conv.weight)
        nn.init.constant_(self.conv.bias, self.initial_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


class GatedPath(nn.Module):
    """``g(x) * path(x)``, or ``(1 - g(x)) * path(x)`` when ``carry`` (the shortcut's share).

    Exclusive gating gives the *same* :class:`Gate` to the branch (g F(x)) and the shortcut
    ((1 - g) x), so both share W_g and b_g.
    """

    def __init__(self, path: nn.Module, gate: Gate, *, carry: bool) -> None:
        super().__init__()
        # the gate is registered first, so the path's layers come last in .modules(): zeroing
        # the "last layer" of a gated branch zeroes F, not the gate
        self.gate, self.path, self.carry = gate, path, carry

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gate(x)  # (B, C_out, *S)
        return (1 - g if self.carry else g) * self.path(x)

    def extra_repr(self) -> str:
        return "(1 - g(x)) * path(x)" if self.carry else "g(x) * path(x)"


class ChannelMask(nn.Module):
    """A partial skip: the first ``fraction`` of the channels pass, the rest are zeroed."""

    mask: torch.Tensor

    def __init__(self, channels: int, fraction: float) -> None:
        super().__init__()
        check_float("fraction", fraction, low=0.0, high=1.0, low_open=True)
        self.keep = max(1, round(fraction * check_int("channels", channels)))
        mask = torch.zeros(channels)
        mask[: self.keep] = 1.0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (C,) -> (1, C, 1, ...) to broadcast over the batch and the positions
        return x * self.mask.view(1, -1, *([1] * (x.ndim - 2)))

    def extra_repr(self) -> str:
        return f"keep={self.keep} of {self.mask.numel()} channels"
