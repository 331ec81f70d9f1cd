"""MobileNetV2: inverted residuals with linear bottlenecks.

Sandler, Howard, Zhu, Zhmoginov, Chen 2018, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks" (arXiv 1801.04381): a block expands a narrow input x (c channels) by a factor t,
filters it depthwise and projects it back to a narrow output *without* an activation,
y = x + BN(W_p * ReLU6(BN(DW(ReLU6(BN(W_e * x)))))). The skip joins the *narrow* tensors (the
bottlenecks), the reverse of ResNet's bottleneck block, which joins the wide ones - hence
"inverted". Only blocks that keep their shape (stride 1, c_in = c_out) have a skip.

A block with a skip is a :class:`~reslib.layers.ResidualBlock` whose ``residual`` holds
``expand`` (a 1x1 convolution, absent when t = 1), ``depthwise`` (a 3x3 convolution with one
filter per channel) and ``project`` (the 1x1 back to the bottleneck); its ``shortcut`` is the
identity. A block without one (where the shape changes, or everywhere with ``skip="none"``) is an
:class:`Unjoined` block, y = F(x), with the same ``residual``: the weights have the same names
either way, and the diagnostics' block tools (lesions, branch norms) see only the blocks that
have a skip. ``linear_bottleneck=False`` puts a ReLU6 on the projection's output (the
paper's ablation, Fig. 6a). The layer sizes, initialisation and parameter count are
torchvision's (``mobilenet_v2()``: 3,504,872 parameters), and
:func:`reslib.models.torchvision_weights.load_mobilenet_v2` loads its weights.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from reslib.layers import (
    ResidualBlock,
    check_choice,
    check_float,
    check_int,
    conv_layer,
    global_pool,
)
from reslib.layers.dims import BATCH_NORM
from reslib.models.base import channels_first_input

MobileSkip = Literal["identity", "none"]
MOBILE_SKIPS: tuple[str, ...] = ("identity", "none")

# (t, c, n, s): expansion factor, output channels, blocks, stride of the first (Table 2)
IMAGENET_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never below 90% of ``value``
    (the channel rounding of the paper's code and torchvision)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvNormAct(nn.Sequential):
    """conv -> BatchNorm -> ReLU6 (``act=False``: no activation), 'same' padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        *,
        groups: int = 1,
        dim: int = 2,
        act: bool = True,
    ) -> None:
        conv = conv_layer(dim)(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=groups,
            bias=False,
        )
        norm = BATCH_NORM[dim](out_channels)
        layers: OrderedDict[str, nn.Module] = OrderedDict(conv=conv, bn=norm)
        if act:
            layers["act"] = nn.ReLU6()
        super().__init__(layers)


class Unjoined(nn.Module):
    """An inverted block without a skip: y = F(x), F held as ``residual`` like a block's."""

    def __init__(self, residual: nn.Module) -> None:
        super().__init__()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x)


def inverted_residual(
    in_channels: int,
    out_channels: int,
    stride: int,
    expand_ratio: int,
    *,
    skip: MobileSkip = "identity",
    linear_bottleneck: bool = True,
    dim: int = 2,
) -> ResidualBlock | Unjoined:
    """One inverted residual block, ``(B, c_in, *S) -> (B, c_out, *S / stride)``: a
    :class:`~reslib.layers.ResidualBlock` with the identity as its shortcut when
    ``skip="identity"`` and the block keeps its shape, an :class:`Unjoined` block otherwise (the
    paper has no skip there).
    """
    hidden = round(in_channels * expand_ratio)
    branch: OrderedDict[str, nn.Module] = OrderedDict()
    if expand_ratio != 1:
        branch["expand"] = ConvNormAct(in_channels, hidden, 1, dim=dim)
    branch["depthwise"] = ConvNormAct(hidden, hidden, 3, stride, groups=hidden, dim=dim)
    # the linear bottleneck: no activation on the narrow output, unless the ablation asks
    branch["project"] = ConvNormAct(hidden, out_channels, 1, dim=dim, act=not linear_bottleneck)
    residual = nn.Sequential(branch)
    if skip == "identity" and stride == 1 and in_channels == out_channels:
        return ResidualBlock(residual, nn.Identity())  # y = x + F(x)
    return Unjoined(residual)


class MobileNetV2(nn.Module):
    """stem -> inverted residual blocks -> 1x1 to ``last_channels`` -> pool -> dropout -> fc.

    Shapes: ``(B, in_channels, *S) -> (B, num_classes)`` (``(B, L)`` sequences are accepted
    when ``dim=1`` and ``in_channels=1``). Build it with :func:`mobilenet_v2`.
    """

    def __init__(
        self,
        setting: Sequence[tuple[int, int, int, int]],
        *,
        num_classes: int,
        width_mult: float,
        round_nearest: int,
        dropout: float,
        skip: MobileSkip,
        linear_bottleneck: bool,
        in_channels: int,
        stem_stride: int,
        dim: int,
    ) -> None:
        super().__init__()
        self.dim, self.in_channels = dim, in_channels
        channels = make_divisible(32 * width_mult, round_nearest)
        last = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        self.stem = ConvNormAct(in_channels, channels, 3, stem_stride, dim=dim)
        blocks = []
        for t, c, n, s in setting:
            out = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                blocks.append(
                    inverted_residual(
                        channels,
                        out,
                        s if i == 0 else 1,
                        t,
                        skip=skip,
                        linear_bottleneck=linear_bottleneck,
                        dim=dim,
                    )
                )
                channels = out
        self.blocks = nn.Sequential(*blocks)
        self.last = ConvNormAct(channels, last, 1, dim=dim)
        self.head = nn.Sequential(
            OrderedDict(
                pool=global_pool(dim),
                flatten=nn.Flatten(),
                dropout=nn.Dropout(dropout),
                fc=nn.Linear(last, num_classes),
            )
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's initialisation: Kaiming (fan-out) convolutions, BatchNorm (1, 0),
        the classifier N(0, 0.01) with zero bias."""
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = channels_first_input(x, dim=self.dim, in_channels=self.in_channels, model="MobileNetV2")
        return self.head(self.last(self.blocks(self.stem(x))))


def mobilenet_v2(
    num_classes: int = 1000,
    width_mult: float = 1.0,
    *,
    setting: Sequence[tuple[int, int, int, int]] = IMAGENET_SETTING,
    round_nearest: int = 8,
    dropout: float = 0.2,
    skip: MobileSkip = "identity",
    linear_bottleneck: bool = True,
    in_channels: int = 3,
    stem_stride: int = 2,
    dim: int = 2,
) -> MobileNetV2:
    """MobileNetV2 (Sandler et al. 2018, arXiv 1801.04381): y = x + F(x) on the bottlenecks.

    The defaults are the ImageNet network (torchvision's ``mobilenet_v2()``, 3,504,872
    parameters). ``setting`` lists ``(t, c, n, s)`` per stage (Table 2); ``stem_stride=1`` and a
    shorter setting suit 32x32 images or ``dim=1`` sequences (MNIST-1D). ``skip="none"`` is the
    plain twin (same weights, no additions); ``linear_bottleneck=False`` adds a ReLU6 to every
    projection (the paper's ablation).

    Raises:
        ValueError: an unknown ``skip`` or ``dim``, or a size that is not positive.
    """
    check_choice("skip", skip, MOBILE_SKIPS)
    check_choice("dim", dim, (1, 2))
    check_choice("linear_bottleneck", linear_bottleneck, (True, False))
    check_float("width_mult", width_mult, low=0.0, low_open=True)
    check_float("dropout", dropout, low=0.0, high=1.0, high_open=True)
    for what, value in (
        ("num_classes", num_classes),
        ("round_nearest", round_nearest),
        ("in_channels", in_channels),
        ("stem_stride", stem_stride),
    ):
        check_int(what, value)
    if not setting:
        raise ValueError("setting must list at least one (t, c, n, s) stage")
    for stage in setting:
        if len(stage) != 4:
            raise ValueError(f"each setting entry is (t, c, n, s), got {stage!r}")
        for what, value in zip(("t", "c", "n", "s"), stage, strict=True):
            check_int(f"setting {what}", value)
    return MobileNetV2(
        setting,
        num_classes=num_classes,
        width_mult=width_mult,
        round_nearest=round_nearest,
        dropout=dropout,
        skip=skip,
        linear_bottleneck=linear_bottleneck,
        in_channels=in_channels,
        stem_stride=stem_stride,
        dim=dim,
    )
