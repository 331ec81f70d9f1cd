"""Residual networks: He et al. 2016, "Deep Residual Learning for Image Recognition"
(arXiv 1512.03385), y = relu(F(x, {W_i}) + W_s x).

Each block is a :class:`~reslib.layers.ResidualBlock` whose ``residual`` is F (conv-BN-ReLU-
conv-BN, or the 1x1-3x3-1x1 bottleneck), whose ``shortcut`` is W_s and whose ``post`` is the
ReLU after the addition, so ``forward`` is the equation in one line. ``shortcut`` picks option
A, B or C for W_s and ``skip`` turns the same stack into its controls (``"none"``: the plain
twin; ``"detached"``: forward-only), as :mod:`reslib.layers.shortcuts` defines them.

One implementation serves images and sequences: ``dim=2`` builds Conv2d/BatchNorm2d nets for
CIFAR and ImageNet, ``dim=1`` the same nets with Conv1d/BatchNorm1d for MNIST-1D.

>>> model = resnet56(num_classes=10, shortcut="A")  # 0.85M parameters, He et al. Table 6
>>> twin = plain56()  # the same 56 layers without the additions, same parameter count
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypedDict

from torch import nn

from reslib.layers import (
    SHORTCUTS,
    SKIPS,
    ResidualBlock,
    Shortcut,
    Skip,
    check_choice,
    check_int,
    conv_layer,
    global_pool,
    init_weights,
    make_activation,
    make_shortcut,
)
from reslib.layers.dims import BATCH_NORM, CONV
from reslib.models.base import StagedNet, Unpack, check_stages, cifar_units

NormLayer = Callable[[int], nn.Module]


class HeBlock(ResidualBlock):
    """He et al. 2016 (arXiv 1512.03385): y = relu(F(x) + W_s x), the base of
    :class:`BasicBlock` and :class:`Bottleneck`, which say what F is (:meth:`branch`).

    Args:
        in_channels: channels of x.
        planes: channels inside F (the block outputs ``planes * expansion``).
        stride: 2 halves the resolution.
        shortcut: W_s where the shape changes: option ``"A"``, ``"B"`` or ``"C"``;
            ``None``: the class's default (A for basic blocks, B for bottlenecks).
        skip: ``"identity"``, ``"none"`` (plain twin) or ``"detached"``.
        zero_init_last: zero F's last BN gamma, so the block starts as relu(W_s x).
        activation: the non-linearity inside F and after the addition.
        dim: 2 for images ``(B, C, H, W)``, 1 for sequences ``(B, C, L)``.
        norm_layer: builds F's normalisation from a channel count (BatchNorm by default).
    """

    expansion: int  # output channels per plane, set by each block type
    default_shortcut: Shortcut

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: Shortcut | None = None,
        skip: Skip = "identity",
        zero_init_last: bool = False,
        activation: str = "relu",
        dim: int = 2,
        norm_layer: NormLayer | None = None,
    ) -> None:
        for what, value in (("in_channels", in_channels), ("planes", planes), ("stride", stride)):
            check_int(what, value)
        norm = norm_layer or BATCH_NORM[check_choice("dim", dim, CONV)]
        out = planes * self.expansion
        residual = self.branch(in_channels, planes, stride, dim=dim, norm=norm, act=activation)
        shortcut_path = make_shortcut(
            in_channels,
            out,
            stride,
            shortcut=shortcut or self.default_shortcut,
            skip=skip,
            dim=dim,
            norm_layer=norm,
        )
        super().__init__(residual, shortcut_path, post=make_activation(activation))
        # fan_out, as torchvision and the authors' code; BN starts at gamma = 1, beta = 0
        init_weights(self, "kaiming", mode="fan_out")
        if zero_init_last:
            self.zero_init_last()

    def branch(
        self, in_channels: int, planes: int, stride: int, *, dim: int, norm: NormLayer, act: str
    ) -> nn.Sequential:
        """F, ending in its last normalisation layer."""
        raise NotImplementedError


class BasicBlock(HeBlock):
    """He et al. 2016 (arXiv 1512.03385) basic block, y = relu(F(x) + W_s x) with
    F = BN(conv3x3(relu(BN(conv3x3(x))))); the first conv carries the stride.

    Shapes: ``(B, in_channels, *S) -> (B, planes, *S / stride)``.
    """

    expansion = 1
    default_shortcut: Shortcut = "A"

    def branch(
        self, in_channels: int, planes: int, stride: int, *, dim: int, norm: NormLayer, act: str
    ) -> nn.Sequential:
        conv = conv_layer(dim)
        return nn.Sequential(
            OrderedDict(
                conv1=conv(in_channels, planes, 3, stride=stride, padding=1, bias=False),
                bn1=norm(planes),
                act1=make_activation(act),
                conv2=conv(planes, planes, 3, padding=1, bias=False),
                bn2=norm(planes),
            )
        )


class Bottleneck(HeBlock):
    """He et al. 2016 (arXiv 1512.03385) bottleneck, y = relu(F(x) + W_s x) with
    F = 1x1 (reduce) -> 3x3 -> 1x1 (expand x4), each conv followed by BN (ReLU between).

    The stride sits on the 3x3 conv, as in torchvision ("ResNet v1.5"), not on the first 1x1.
    Shapes: ``(B, in_channels, *S) -> (B, 4 * planes, *S / stride)``.
    """

    expansion = 4
    default_shortcut: Shortcut = "B"

    def branch(
        self, in_channels: int, planes: int, stride: int, *, dim: int, norm: NormLayer, act: str
    ) -> nn.Sequential:
        conv, out = conv_layer(dim), planes * self.expansion
        return nn.Sequential(
            OrderedDict(
                conv1=conv(in_channels, planes, 1, bias=False),
                bn1=norm(planes),
                act1=make_activation(act),
                conv2=conv(planes, planes, 3, stride=stride, padding=1, bias=False),
                bn2=norm(planes),
                act2=make_activation(act),
                conv3=conv(planes, out, 1, bias=False),
                bn3=norm(out),
            )
        )


BlockType = type[BasicBlock] | type[Bottleneck]


class ResNet(StagedNet):
    """A stem, stages of residual blocks, global average pooling and a linear classifier.

    Stage ``i`` has ``layers[i]`` blocks of ``planes[i]`` planes; every stage after the first
    halves the spatial size with a stride-2 first block (He et al. 2016, arXiv 1512.03385).

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage.
        planes: planes per stage (a bottleneck outputs 4x as many channels).
        stem: maps the input to ``stem_channels`` channels.
        stem_channels: the stem's output channels.
        num_classes: outputs of the classifier.
        dim: spatial dimensions (2: images (B, C, H, W); 1: sequences (B, C, L)).
        in_channels: input channels (checked in ``forward``).
        shortcut, skip, zero_init_last, activation: passed to every block.
    """

    def __init__(
        self,
        block: BlockType,
        layers: Sequence[int],
        planes: Sequence[int],
        *,
        stem: nn.Module,
        stem_channels: int,
        num_classes: int,
        dim: int = 2,
        in_channels: int = 3,
        shortcut: Shortcut = "A",
        skip: Skip = "identity",
        zero_init_last: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__(dim=dim, in_channels=in_channels)
        check_choice("shortcut", shortcut, SHORTCUTS)
        check_choice("skip", skip, SKIPS)
        check_stages(layers, planes)
        self.block_type, self.planes = block, list(planes)
        # what every block of this net is built with, so append_blocks() can match it
        self.block_options = dict(shortcut=shortcut, skip=skip, activation=activation, dim=dim)
        self.stem = stem
        stages, channels = [], stem_channels
        for i, (count, width) in enumerate(zip(layers, planes, strict=True)):
            stage = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                options = dict(zero_init_last=zero_init_last, **self.block_options)
                stage.append(block(channels, width, stride, **options))  # type: ignore[arg-type]
                channels = width * block.expansion
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            OrderedDict(
                pool=global_pool(dim),
                flatten=nn.Flatten(),
                fc=nn.Linear(channels, check_int("num_classes", num_classes)),
            )
        )
        self.out_channels = channels
        init_weights(self.stem, "kaiming", mode="fan_out")  # the blocks initialise themselves


def append_blocks(
    model: ResNet, count: int, *, stage: int = -1, zero_init_last: bool = True
) -> list[ResidualBlock]:
    """Grow a (trained) :class:`ResNet` by ``count`` blocks at the end of ``stage``.

    The new blocks match the stage's width and the net's block type and options. With
    ``zero_init_last`` (the default) each starts as the identity, relu(0 + x) = x, so the grown
    net computes exactly what it computed before (He et al. 2016, arXiv 1512.03385: "the added
    layers are identity mappings"). Returns the new blocks, on the model's device.
    """
    check_int("count", count)
    if not -len(model.stages) <= stage < len(model.stages):
        raise ValueError(f"stage must index one of the {len(model.stages)} stages, got {stage}")
    planes = model.planes[stage]
    channels = planes * model.block_type.expansion
    reference = next(model.parameters())
    new = [
        model.block_type(
            channels, planes, 1, zero_init_last=zero_init_last, **model.block_options
        ).to(reference.device, reference.dtype)
        for _ in range(count)
    ]
    for block in new:
        block.train(model.training)  # an eval-mode model grows eval-mode blocks
        model.stages[stage].append(block)
    return new


def _stem(conv: nn.Module, norm: nn.Module, activation: str, *extra: nn.Module) -> nn.Sequential:
    act = make_activation(activation)
    parts: list[tuple[str, nn.Module]] = [("conv", conv), ("bn", norm), ("act", act)]
    return nn.Sequential(OrderedDict(parts + [("pool", m) for m in extra]))


def cifar_resnet(
    depth: int,
    *,
    num_classes: int = 10,
    shortcut: Shortcut = "A",
    skip: Skip = "identity",
    zero_init_last: bool = False,
    width: int = 16,
    in_channels: int = 3,
    dim: int = 2,
    activation: str = "relu",
) -> ResNet:
    """The CIFAR-10 ResNet of He et al. 2016 (arXiv 1512.03385, Sec. 4.2): 6n + 2 layers.

    A 3x3 conv stem with ``width`` filters, three stages of n basic blocks with ``width``,
    2 ``width`` and 4 ``width`` filters on 32/16/8-pixel maps (16/32/64 in the paper), global
    average pooling and a linear classifier. ``dim=1`` builds the same net for sequences
    ((B, L) or (B, C, L) inputs).

    Raises:
        ValueError: ``depth`` is not 6n + 2, or an unknown option.
    """
    n = cifar_units(depth, layers_per_unit=2)
    check_int("width", width), check_int("in_channels", in_channels)
    check_choice("dim", dim, BATCH_NORM)
    stem = _stem(
        conv_layer(dim)(in_channels, width, 3, padding=1, bias=False),
        BATCH_NORM[dim](width),
        activation,
    )
    return ResNet(
        BasicBlock,
        [n, n, n],
        [width, 2 * width, 4 * width],
        stem=stem,
        stem_channels=width,
        num_classes=num_classes,
        dim=dim,
        in_channels=in_channels,
        shortcut=shortcut,
        skip=skip,
        zero_init_last=zero_init_last,
        activation=activation,
    )


class CifarOptions(TypedDict, total=False):
    num_classes: int
    shortcut: Shortcut
    skip: Skip
    zero_init_last: bool
    width: int
    in_channels: int
    dim: int
    activation: str


def _plain(depth: int, options: CifarOptions) -> ResNet:
    if "skip" in options:
        raise ValueError(f"plain{depth} is the skip='none' twin; use cifar_resnet({depth}, ...)")
    return cifar_resnet(depth, skip="none", **options)


def resnet20(**options: Unpack[CifarOptions]) -> ResNet:
    """ResNet-20 for CIFAR-10 (He et al. 2016, Table 6): 0.27M parameters, 8.75% error."""
    return cifar_resnet(20, **options)


def resnet32(**options: Unpack[CifarOptions]) -> ResNet:
    """ResNet-32 for CIFAR-10 (He et al. 2016, Table 6): 0.46M parameters, 7.51% error."""
    return cifar_resnet(32, **options)


def resnet44(**options: Unpack[CifarOptions]) -> ResNet:
    """ResNet-44 for CIFAR-10 (He et al. 2016, Table 6): 0.66M parameters, 7.17% error."""
    return cifar_resnet(44, **options)


def resnet56(**options: Unpack[CifarOptions]) -> ResNet:
    """ResNet-56 for CIFAR-10 (He et al. 2016, Table 6): 0.85M parameters, 6.97% error."""
    return cifar_resnet(56, **options)


def resnet110(**options: Unpack[CifarOptions]) -> ResNet:
    """ResNet-110 for CIFAR-10 (He et al. 2016, Table 6): 1.7M parameters, 6.43% error."""
    return cifar_resnet(110, **options)


def resnet1202(**options: Unpack[CifarOptions]) -> ResNet:
    """ResNet-1202 for CIFAR-10 (He et al. 2016, Table 6): 19.4M parameters, 7.93% error."""
    return cifar_resnet(1202, **options)


def plain20(**options: Unpack[CifarOptions]) -> ResNet:
    """Plain-20: ResNet-20 without the additions, y = relu(F(x)); option A's parameters."""
    return _plain(20, options)


def plain56(**options: Unpack[CifarOptions]) -> ResNet:
    """Plain-56: ResNet-56 without the additions, y = relu(F(x)); option A's parameters."""
    return _plain(56, options)


# ImageNet (He et al. 2016, Table 1), laid out as torchvision's resnet18..152.
IMAGENET_LAYOUTS: dict[int, tuple[BlockType, list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


def imagenet_resnet(
    depth: int,
    *,
    num_classes: int = 1000,
    shortcut: Shortcut = "B",
    skip: Skip = "identity",
    zero_init_last: bool = False,
) -> ResNet:
    """The ImageNet ResNet of He et al. 2016 (arXiv 1512.03385, Table 1), y = relu(F(x) + W_s x).

    7x7/2 conv stem and 3x3/2 max-pool, four stages of 64/128/256/512 planes (basic blocks for
    18/34 layers, v1.5 bottlenecks for 50/101/152). With the default option B the parameter
    count equals torchvision's, and :func:`reslib.models.torchvision_weights.load_resnet` loads
    its weights.
    """
    block, layers = IMAGENET_LAYOUTS[check_choice("ImageNet ResNet depth", depth, IMAGENET_LAYOUTS)]
    stem = _stem(
        nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(64),
        "relu",
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    return ResNet(
        block,
        layers,
        [64, 128, 256, 512],
        stem=stem,
        stem_channels=64,
        num_classes=num_classes,
        shortcut=shortcut,
        skip=skip,
        zero_init_last=zero_init_last,
    )


class ImageNetOptions(TypedDict, total=False):
    num_classes: int
    shortcut: Shortcut
    skip: Skip
    zero_init_last: bool


def resnet18(**options: Unpack[ImageNetOptions]) -> ResNet:
    """ResNet-18 for ImageNet (He et al. 2016, Table 1): torchvision's layout, 11,689,512."""
    return imagenet_resnet(18, **options)


def resnet34(**options: Unpack[ImageNetOptions]) -> ResNet:
    """ResNet-34 for ImageNet (He et al. 2016, Table 1): torchvision's layout, 21,797,672."""
    return imagenet_resnet(34, **options)


def resnet50(**options: Unpack[ImageNetOptions]) -> ResNet:
    """ResNet-50 for ImageNet (He et al. 2016, Table 1): torchvision's layout, 25,557,032."""
    return imagenet_resnet(50, **options)


def resnet101(**options: Unpack[ImageNetOptions]) -> ResNet:
    """ResNet-101 for ImageNet (He et al. 2016, Table 1): torchvision's layout, 44,549,160."""
    return imagenet_resnet(101, **options)


def resnet152(**options: Unpack[ImageNetOptions]) -> ResNet:
    """ResNet-152 for ImageNet (He et al. 2016, Table 1): torchvision's layout, 60,192,808."""
    return imagenet_resnet(152, **options)
