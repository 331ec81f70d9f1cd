"""U-Net: skip connections that cross an encoder-decoder.

Ronneberger, Fischer, Brox 2015, "U-Net: Convolutional Networks for Biomedical Image
Segmentation" (arXiv 1505.04597): the decoder at scale s reads the encoder's features there,
d_s = D_s([e_s, U(d_{s+1})]) - the concatenation brings back the detail that pooling removed.

Every scale but the coarsest is one block of the ground floor (:mod:`reslib.layers.blocks`):

* ``shortcut`` carries the encoder's features e_s at that scale (``(B, c_s, H_s, W_s)``);
* ``residual`` is pool -> the encoder at scale s + 1 -> the level below -> upsample, so the
  levels nest like the letter U, and its output U(.) has the shortcut's shape;
* ``post`` is the decoder's two 3x3 convolutions D_s.

The skip (``skip=``) says how the two paths join, and nothing else changes:

=========  =====================================  =============================================
skip       level                                  decoder input
=========  =====================================  =============================================
"concat"   :class:`~reslib.layers.ConcatBlock`      ``[e_s, U(.)]``, 2 c_s channels (the paper)
"add"      :class:`~reslib.layers.ResidualBlock`    ``e_s + U(.)``, c_s channels
"none"     :class:`~reslib.layers.ConcatBlock`      ``[0, U(.)]``: the concat net's plain twin
=========  =====================================  =============================================

"add" needs e_s and U(.) to have the same channels; the up-sampling already maps c_{s+1} to
c_s channels (as the paper's up-convolution halves them), so it costs nothing, and its decoder's
first convolution reads c_s instead of 2 c_s channels: 9 c_s^2 fewer weights per scale.
"none" keeps the concat net's layers and feeds zeros where the encoder's features were
(:class:`ZerosLike`), so it has *exactly* the concat net's parameter count (the weights that
read the zeros never receive a gradient); the plain twin of "add" is ``skip="add"`` with every
``skips`` entry False, where the shortcut is :class:`~reslib.layers.Zero`. Either way, a
lesion (:func:`reslib.diagnostics.lesion`), branch norms and ``zero_init_last`` (which zeroes
the up-sampling, after which a level computes exactly its skip path) work unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from reslib.layers import (
    Activation,
    Block,
    ConcatBlock,
    Init,
    Norm,
    ResidualBlock,
    Zero,
    check_choice,
    check_int,
    init_weights,
    make_activation,
    make_norm,
)
from reslib.models.base import channels_first_input

__all__ = ["SKIPS", "UPSAMPLINGS", "UNet", "ZerosLike", "unet"]

UNetSkip = Literal["concat", "add", "none"]
SKIPS: tuple[str, ...] = ("concat", "add", "none")
Upsampling = Literal["transpose", "interpolate"]
UPSAMPLINGS: tuple[str, ...] = ("transpose", "interpolate")


class ZerosLike(nn.Module):
    """The shortcut of a concatenating plain twin: zeros of the input's shape, no gradient.

    (:class:`reslib.layers.Zero` returns a scalar, which an addition broadcasts but a
    concatenation cannot take.)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def _double_conv(c_in: int, c_out: int, norm: str, activation: str) -> nn.Sequential:
    """(conv3x3 -> norm -> activation) x 2, padded so the size is kept (the paper's convs are
    unpadded and crop the skip instead; padding keeps every scale's sizes equal)."""
    bias = norm == "none"  # a bias before a normalisation is cancelled by it
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias),
        make_norm(norm, c_out, 2),
        make_activation(activation),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias),
        make_norm(norm, c_out, 2),
        make_activation(activation),
    )


def _upsample(c_in: int, c_out: int, upsample: str) -> nn.Module:
    """2x up-sampling from ``c_in`` to ``c_out`` channels; its last layer is a conv with a
    bias, so zeroing it (``zero_init_last``) makes the branch output exactly zero."""
    if upsample == "transpose":  # the paper's 2x2 "up-convolution"
        return nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(c_in, c_out, 3, padding=1),
    )


class UNet(nn.Module):
    """A 2-D U-Net (Ronneberger et al. 2015, arXiv 1505.04597): d_s = D_s([e_s, U(d_{s+1})]).

    ``stem`` is the encoder at the finest scale, ``body`` the outermost level (a block that
    holds all the others, see the module docstring) and ``head`` the 1x1 convolution to the
    classes. Build it with :func:`unet`.

    Shapes: (B, in_channels, H, W) -> (B, num_classes, H, W), with H and W divisible by
    2^(depth - 1).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        depth: int,
        width: int,
        skip: UNetSkip,
        skips: Sequence[bool],
        upsample: Upsampling,
        norm: Norm,
        activation: Activation,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.depth = depth
        self.stem = _double_conv(in_channels, width, norm, activation)  # e_0
        self.body = self._level(0, width, skip, skips, upsample, norm, activation)
        self.head = nn.Conv2d(width, num_classes, 1)

    def _level(
        self,
        s: int,
        width: int,
        skip: str,
        skips: Sequence[bool],
        upsample: str,
        norm: str,
        activation: str,
    ) -> nn.Module:
        c, c_next = width * 2**s, width * 2 ** (s + 1)  # channels double at every scale
        inner: list[nn.Module] = [nn.MaxPool2d(2), _double_conv(c, c_next, norm, activation)]
        if s + 2 < self.depth:  # the coarsest scale (the bottleneck) has no level of its own
            inner.append(self._level(s + 1, width, skip, skips, upsample, norm, activation))
        inner.append(_upsample(c_next, c, upsample))
        residual = nn.Sequential(*inner)  # (B, c, H, W) -> (B, c, H, W)
        if skip == "add":
            shortcut = nn.Identity() if skips[s] else Zero()
            return ResidualBlock(residual, shortcut, post=_double_conv(c, c, norm, activation))
        shortcut = nn.Identity() if skips[s] and skip == "concat" else ZerosLike()
        return ConcatBlock(residual, shortcut, post=_double_conv(2 * c, c, norm, activation))

    def levels(self) -> list[Block]:
        """The levels from the finest scale (index 0, full resolution) to the coarsest."""
        found: list[Block] = []
        level: nn.Module | None = self.body
        while isinstance(level, Block):
            found.append(level)
            level = next((m for m in level.residual.children() if isinstance(m, Block)), None)
        return found

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = channels_first_input(x, dim=2, in_channels=self.in_channels, model="UNet")
        factor = 2 ** (self.depth - 1)
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(
                f"a UNet of depth {self.depth} needs H and W divisible by {factor}, "
                f"got {tuple(x.shape[-2:])}"
            )
        return self.head(self.body(self.stem(x)))  # (B, num_classes, H, W)


def unet(
    in_channels: int = 1,
    num_classes: int = 2,
    *,
    depth: int = 5,
    width: int = 64,
    skip: UNetSkip = "concat",
    skips: Sequence[bool] | None = None,
    upsample: Upsampling = "transpose",
    norm: Norm = "batch",
    activation: Activation = "relu",
    init: Init = "kaiming",
    zero_init_last: bool = False,
) -> UNet:
    """A U-Net (Ronneberger et al. 2015, arXiv 1505.04597): d_s = D_s([e_s, U(d_{s+1})]).

    The defaults are the paper's sizes (5 scales, 64 to 1024 channels), with padded
    convolutions and BatchNorm.

    Args:
        in_channels: input channels.
        num_classes: output channels (one logit per class and pixel).
        depth: number of scales, >= 2 (the input's and depth - 1 pooled ones).
        width: channels at the finest scale; they double at every coarser scale.
        skip: how encoder and decoder join at each scale: ``"concat" | "add" | "none"``.
        skips: one bool per level, finest first (``depth - 1`` of them): False removes that
            scale's skip (a :class:`ZerosLike` shortcut for concat, ``Zero`` for add), so
            single scales can be taken out. ``None``: every skip of ``skip``.
        upsample: ``"transpose"`` (2x2 transposed conv, the paper) or ``"interpolate"``
            (bilinear x2, then a 3x3 conv).
        norm: one of :data:`reslib.layers.NORMS`; activation: of :data:`reslib.layers.ACTIVATIONS`.
        init: ``"kaiming" | "xavier" | "default"`` for the convolutions.
        zero_init_last: zero every level's up-sampling, so each level starts as its skip path.
    """
    check_choice("skip", skip, SKIPS)
    check_choice("upsample", upsample, UPSAMPLINGS)
    check_int("num_classes", num_classes)
    check_int("width", width)
    check_int("depth", depth, minimum=2)
    if skips is None:
        skips = [skip != "none"] * (depth - 1)
    skips = list(skips)
    if len(skips) != depth - 1 or not all(isinstance(k, bool) for k in skips):
        raise ValueError(
            f"skips needs one bool per level, finest first: {depth - 1} for depth={depth}, "
            f"got {skips!r}"
        )
    if skip == "none" and any(skips):
        raise ValueError(f'skip="none" has no skips to select; got skips={skips!r}')
    model = UNet(
        in_channels,
        num_classes,
        depth=depth,
        width=width,
        skip=skip,
        skips=skips,
        upsample=upsample,
        norm=norm,
        activation=activation,
    )
    init_weights(model, init)
    if zero_init_last:
        for level in model.levels():
            level.zero_init_last()
    return model
