"""Residual networks: He et al. 2016, "Deep Residual Learning for Image Recognition"
(arXiv 1512.03385), y = relu(F(x, {W_i}) + W_s x).

Each block owns ``residual`` (F: conv-BN-ReLU-conv-BN, or the 1x1-3x3-1x1 bottleneck) and
``shortcut`` (W_s), so ``forward`` is the equation in one line. The shortcut is

* option ``"A"``: the identity; where the shape changes, strided subsampling and zero-padded
  channels - no parameters, so a ResNet and its plain twin have identical parameter counts;
* option ``"B"``: a 1x1 projection + BN only where the shape changes, the identity elsewhere
  (torchvision's ResNets);
* option ``"C"``: a 1x1 projection + BN in every block;

and ``skip`` turns the same stack into its controls: ``"none"`` replaces every shortcut by
:class:`~reslib.models.plain.Zero` (the plain network, H(x) = F(x)) and ``"detached"`` puts
:class:`~reslib.models.plain.Detached` in front of it (a shortcut in the forward pass only).

One implementation serves images and sequences: the convolution and normalisation classes are
parameters (``nn.Conv2d``/``nn.BatchNorm2d`` for CIFAR and ImageNet, ``nn.Conv1d``/
``nn.BatchNorm1d`` for MNIST-1D).

>>> model = resnet56(num_classes=10, shortcut="A")  # 0.85M parameters, He et al. Table 6
>>> twin = plain56()  # the same 56 layers without the additions, same parameter count
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from reslib.models.plain import SKIPS, Detached, Zero, check_choice, make_activation

Shortcut = Literal["A", "B", "C"]
Skip = Literal["identity", "none", "detached"]
SHORTCUTS = ("A", "B", "C")
ConvLayer = type[nn.Conv1d] | type[nn.Conv2d]
NormLayer = Callable[[int], nn.Module]

# conv, norm and global pool for each number of spatial dimensions
LAYERS_BY_DIM: dict[int, tuple[ConvLayer, NormLayer, Callable[[int], nn.Module]]] = {
    1: (nn.Conv1d, nn.BatchNorm1d, nn.AdaptiveAvgPool1d),
    2: (nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d),
}


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
        self.extra, self.stride = out_channels - in_channels, stride

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
        conv_layer: ConvLayer = nn.Conv2d,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__(
            OrderedDict(
                conv=conv_layer(in_channels, out_channels, 1, stride=stride, bias=False),
                bn=norm_layer(out_channels),
            )
        )


def make_shortcut(
    in_channels: int,
    out_channels: int,
    stride: int = 1,
    *,
    shortcut: Shortcut = "A",
    skip: Skip = "identity",
    conv_layer: ConvLayer = nn.Conv2d,
    norm_layer: NormLayer = nn.BatchNorm2d,
) -> nn.Module:
    """The shortcut of one block: option A/B/C, or the plain/forward-only controls via ``skip``."""
    check_choice("shortcut", shortcut, SHORTCUTS)
    check_choice("skip", skip, SKIPS)
    if skip == "none":
        return Zero()  # the plain twin: no addition at all, whatever the option
    reshapes = stride != 1 or in_channels != out_channels
    if shortcut == "C" or (shortcut == "B" and reshapes):
        path: nn.Module = Projection(
            in_channels, out_channels, stride, conv_layer=conv_layer, norm_layer=norm_layer
        )
    elif reshapes:
        path = PadShortcut(in_channels, out_channels, stride)
    else:
        path = nn.Identity()
    # forward-only: the values pass, the gradient to x does not (a projection still learns)
    return nn.Sequential(Detached(), path) if skip == "detached" else path


def he_init_(module: nn.Module) -> None:
    """He (Kaiming) normal init of every conv, fan_out as torchvision (arXiv 1502.01852)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class ResidualBlock(nn.Module):
    """He et al. 2016 (arXiv 1512.03385), y = act(F(x) + shortcut(x)): one residual block.

    The base of :class:`BasicBlock` and :class:`Bottleneck`, which build ``residual`` (F, ending
    in its last normalisation layer) and ``shortcut``; ``forward`` is the equation.
    """

    expansion = 1

    def __init__(self, residual: nn.Sequential, shortcut: nn.Module, activation: str) -> None:
        super().__init__()
        self.residual = residual
        self.shortcut = shortcut
        self.act = make_activation(activation)
        he_init_(self)  # BN starts at gamma = 1, beta = 0 (torch's default)

    def zero_init_(self) -> None:
        """Zero the last norm's gamma (Goyal et al. 2017, arXiv 1706.02677): F(x) = 0 at init."""
        nn.init.zeros_(self.residual[-1].weight)  # F ends in BN: gamma = 0 makes F(x) = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.residual(x) + self.shortcut(x))


class BasicBlock(ResidualBlock):
    """He et al. 2016 (arXiv 1512.03385) basic block, y = relu(F(x) + W_s x) with
    F = BN(conv3x3(relu(BN(conv3x3(x))))); the first conv carries the stride.

    Shapes: ``(B, in_channels, *S) -> (B, planes, *S / stride)``.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: Shortcut = "A",
        skip: Skip = "identity",
        zero_init_residual: bool = False,
        activation: str = "relu",
        conv_layer: ConvLayer = nn.Conv2d,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        out = planes * self.expansion
        residual = nn.Sequential(
            OrderedDict(
                conv1=conv_layer(in_channels, planes, 3, stride=stride, padding=1, bias=False),
                bn1=norm_layer(planes),
                act1=make_activation(activation),
                conv2=conv_layer(planes, out, 3, padding=1, bias=False),
                bn2=norm_layer(out),
            )
        )
        path = make_shortcut(
            in_channels,
            out,
            stride,
            shortcut=shortcut,
            skip=skip,
            conv_layer=conv_layer,
            norm_layer=norm_layer,
        )
        super().__init__(residual, path, activation)
        if zero_init_residual:
            self.zero_init_()


class Bottleneck(ResidualBlock):
    """He et al. 2016 (arXiv 1512.03385) bottleneck, y = relu(F(x) + W_s x) with
    F = 1x1 (reduce) -> 3x3 -> 1x1 (expand x4), each conv followed by BN (ReLU between).

    The stride sits on the 3x3 conv, as in torchvision ("ResNet v1.5"), not on the first 1x1.
    Shapes: ``(B, in_channels, *S) -> (B, 4 * planes, *S / stride)``.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: Shortcut = "B",
        skip: Skip = "identity",
        zero_init_residual: bool = False,
        activation: str = "relu",
        conv_layer: ConvLayer = nn.Conv2d,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        out = planes * self.expansion
        residual = nn.Sequential(
            OrderedDict(
                conv1=conv_layer(in_channels, planes, 1, bias=False),
                bn1=norm_layer(planes),
                act1=make_activation(activation),
                conv2=conv_layer(planes, planes, 3, stride=stride, padding=1, bias=False),
                bn2=norm_layer(planes),
                act2=make_activation(activation),
                conv3=conv_layer(planes, out, 1, bias=False),
                bn3=norm_layer(out),
            )
        )
        path = make_shortcut(
            in_channels,
            out,
            stride,
            shortcut=shortcut,
            skip=skip,
            conv_layer=conv_layer,
            norm_layer=norm_layer,
        )
        super().__init__(residual, path, activation)
        if zero_init_residual:
            self.zero_init_()


class ResNet(nn.Module):
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
        shortcut, skip, zero_init_residual, activation: passed to every block.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
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
        zero_init_residual: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        check_choice("dim", dim, tuple(LAYERS_BY_DIM))
        check_choice("shortcut", shortcut, SHORTCUTS)
        check_choice("skip", skip, SKIPS)
        if len(layers) != len(planes) or not layers or min(layers) < 1:
            raise ValueError(
                f"need one positive block count per stage, got layers={list(layers)} "
                f"for planes={list(planes)}"
            )
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        conv_layer, norm_layer, pool = LAYERS_BY_DIM[dim]
        self.dim, self.in_channels = dim, in_channels
        self.block_type, self.planes = block, list(planes)
        # what every block of this net is built with, so append_blocks() can match it
        self.block_options = dict(
            shortcut=shortcut,
            skip=skip,
            activation=activation,
            conv_layer=conv_layer,
            norm_layer=norm_layer,
        )
        self.stem = stem
        stages, channels = [], stem_channels
        for i, (count, width) in enumerate(zip(layers, planes, strict=True)):
            blocks = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(
                    block(
                        channels,
                        width,
                        stride,
                        zero_init_residual=zero_init_residual,
                        **self.block_options,
                    )
                )
                channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            OrderedDict(pool=pool(1), flatten=nn.Flatten(), fc=nn.Linear(channels, num_classes))
        )
        self.out_channels = channels
        he_init_(self.stem)  # the blocks initialise themselves

    def blocks(self) -> Iterator[ResidualBlock]:
        """Every residual block, input to output."""
        for stage in self.stages:
            yield from stage

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Check the input's shape; (B, L) sequences gain their channel axis when C is 1."""
        if x.ndim == self.dim + 1 and self.in_channels == 1:
            x = x.unsqueeze(1)  # (B, *S) -> (B, 1, *S)
        if x.ndim != self.dim + 2 or x.shape[1] != self.in_channels:
            spatial = ("H", "W") if self.dim == 2 else ("L",)
            raise ValueError(
                f"{type(self).__name__} expects input of shape "
                f"(batch, {self.in_channels}, {', '.join(spatial)}), got {tuple(x.shape)}"
            )
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(self.prepare(x))))


def append_blocks(
    model: ResNet, count: int, *, stage: int = -1, zero_init_residual: bool = True
) -> list[ResidualBlock]:
    """Grow a (trained) :class:`ResNet` by ``count`` blocks at the end of ``stage``.

    The new blocks match the stage's width and the net's block type and options. With
    ``zero_init_residual`` (the default) each starts as the identity, relu(0 + x) = x, so the
    grown net computes exactly what it computed before (He et al. 2016, arXiv 1512.03385: "the
    added layers are identity mappings"). Returns the new blocks; new parameters are on the
    model's device.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}")
    if not -len(model.stages) <= stage < len(model.stages):
        raise ValueError(f"stage must index one of the {len(model.stages)} stages, got {stage}")
    planes = model.planes[stage]
    channels = planes * model.block_type.expansion
    reference = next(model.parameters())
    new = [
        model.block_type(
            channels, planes, 1, zero_init_residual=zero_init_residual, **model.block_options
        ).to(reference.device, reference.dtype)
        for _ in range(count)
    ]
    for block in new:
        model.stages[stage].append(block)
    return new


def _stem(conv: nn.Module, norm: nn.Module, activation: str, *extra: nn.Module) -> nn.Sequential:
    parts: list[tuple[str, nn.Module]] = [("conv", conv), ("bn", norm)]
    parts.append(("act", make_activation(activation)))
    parts += [("pool", m) for m in extra]
    return nn.Sequential(OrderedDict(parts))


def cifar_resnet(
    depth: int,
    *,
    num_classes: int = 10,
    shortcut: Shortcut = "A",
    skip: Skip = "identity",
    zero_init_residual: bool = False,
    width: int = 16,
    in_channels: int = 3,
    dim: int = 2,
    activation: str = "relu",
) -> ResNet:
    """The CIFAR-10 ResNet of He et al. 2016 (arXiv 1512.03385, Sec. 4.2): 6n + 2 layers.

    A 3x3 conv stem with ``width`` filters, three stages of n basic blocks with ``width``,
    2 ``width`` and 4 ``width`` filters on 32/16/8-pixel maps (16/32/64 in the paper), global
    average pooling and a linear classifier. ``dim=1`` builds the same net for sequences.

    Raises:
        ValueError: ``depth`` is not 6n + 2, or an unknown option.
    """
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"a CIFAR ResNet has 6n + 2 layers (8, 14, 20, 32, 44, 56, 110, ...), got {depth!r}"
        )
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    check_choice("dim", dim, tuple(LAYERS_BY_DIM))
    conv_layer, norm_layer, _ = LAYERS_BY_DIM[dim]
    n = (depth - 2) // 6
    stem = _stem(
        conv_layer(in_channels, width, 3, padding=1, bias=False), norm_layer(width), activation
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
        zero_init_residual=zero_init_residual,
        activation=activation,
    )


def resnet1d(
    depth: int,
    *,
    num_classes: int = 10,
    width: int = 16,
    in_channels: int = 1,
    shortcut: Shortcut = "A",
    skip: Skip = "identity",
    zero_init_residual: bool = False,
) -> ResNet:
    """The CIFAR ResNet (6n + 2 layers) with Conv1d/BatchNorm1d, for sequences such as
    MNIST-1D: (B, L) or (B, in_channels, L) -> (B, num_classes)."""
    return cifar_resnet(
        depth,
        num_classes=num_classes,
        shortcut=shortcut,
        skip=skip,
        zero_init_residual=zero_init_residual,
        width=width,
        in_channels=in_channels,
        dim=1,
    )


def plain1d(depth: int, *, num_classes: int = 10, width: int = 16, in_channels: int = 1) -> ResNet:
    """The plain twin of :func:`resnet1d`: the same layers, no additions."""
    return resnet1d(
        depth, num_classes=num_classes, width=width, in_channels=in_channels, skip="none"
    )


def _cifar(depth: int, skip: Skip, doc: str) -> Callable[..., ResNet]:
    def build(
        *,
        num_classes: int = 10,
        shortcut: Shortcut = "A",
        zero_init_residual: bool = False,
        skip: Skip = skip,
    ) -> ResNet:
        return cifar_resnet(
            depth,
            num_classes=num_classes,
            shortcut=shortcut,
            skip=skip,
            zero_init_residual=zero_init_residual,
        )

    build.__name__ = build.__qualname__ = f"{'resnet' if skip == 'identity' else 'plain'}{depth}"
    build.__doc__ = doc
    return build


_TABLE6 = {20: "0.27M", 32: "0.46M", 44: "0.66M", 56: "0.85M", 110: "1.7M", 1202: "19.4M"}


def _resnet_doc(d: int) -> str:
    return (
        f"ResNet-{d} for CIFAR-10, He et al. 2016 (arXiv 1512.03385), y = relu(F(x) + x): "
        f"{_TABLE6[d]} parameters with option A (Table 6). See :func:`cifar_resnet`."
    )


def _plain_doc(d: int) -> str:
    return (
        f"Plain-{d} for CIFAR-10, He et al. 2016 (arXiv 1512.03385), y = relu(F(x)): ResNet-{d} "
        f"without the additions, and the same parameter count as option A."
    )


resnet20 = _cifar(20, "identity", _resnet_doc(20))
resnet32 = _cifar(32, "identity", _resnet_doc(32))
resnet44 = _cifar(44, "identity", _resnet_doc(44))
resnet56 = _cifar(56, "identity", _resnet_doc(56))
resnet110 = _cifar(110, "identity", _resnet_doc(110))
resnet1202 = _cifar(1202, "identity", _resnet_doc(1202))
plain20 = _cifar(20, "none", _plain_doc(20))
plain32 = _cifar(32, "none", _plain_doc(32))
plain44 = _cifar(44, "none", _plain_doc(44))
plain56 = _cifar(56, "none", _plain_doc(56))
plain110 = _cifar(110, "none", _plain_doc(110))


# ImageNet (He et al. 2016, Table 1), laid out as torchvision's resnet18..152.
_IMAGENET: dict[int, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
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
    zero_init_residual: bool = False,
) -> ResNet:
    """The ImageNet ResNet of He et al. 2016 (arXiv 1512.03385, Table 1), y = relu(F(x) + W_s x).

    7x7/2 conv stem and 3x3/2 max-pool, four stages of 64/128/256/512 planes (basic blocks for
    18/34 layers, v1.5 bottlenecks for 50/101/152). With the default option B the parameter
    count equals torchvision's, and :func:`load_torchvision_state_dict` loads its weights.
    """
    if depth not in _IMAGENET:
        raise ValueError(
            f"unknown ImageNet ResNet depth {depth!r}: expected one of "
            f"{', '.join(map(str, _IMAGENET))}"
        )
    block, layers = _IMAGENET[depth]
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
        zero_init_residual=zero_init_residual,
    )


def _imagenet(depth: int) -> Callable[..., ResNet]:
    def build(
        *,
        num_classes: int = 1000,
        shortcut: Shortcut = "B",
        skip: Skip = "identity",
        zero_init_residual: bool = False,
    ) -> ResNet:
        return imagenet_resnet(
            depth,
            num_classes=num_classes,
            shortcut=shortcut,
            skip=skip,
            zero_init_residual=zero_init_residual,
        )

    build.__name__ = build.__qualname__ = f"resnet{depth}"
    build.__doc__ = (
        f"ResNet-{depth} for ImageNet, He et al. 2016 (arXiv 1512.03385), "
        f"y = relu(F(x) + W_s x); torchvision's layout and parameter count. "
        f"See :func:`imagenet_resnet`."
    )
    return build


resnet18 = _imagenet(18)
resnet34 = _imagenet(34)
resnet50 = _imagenet(50)
resnet101 = _imagenet(101)
resnet152 = _imagenet(152)


# torchvision name -> reslib name, for the parts that differ (suffixes such as .weight and
# .running_mean carry over unchanged).
_TORCHVISION_KEYS: tuple[tuple[str, str], ...] = (
    (r"^conv1\.", "stem.conv."),
    (r"^bn1\.", "stem.bn."),
    (r"^layer(\d+)\.(\d+)\.(conv\d|bn\d)\.", "stages.{0}.{1}.residual.{2}."),
    (r"^layer(\d+)\.(\d+)\.downsample\.0\.", "stages.{0}.{1}.shortcut.conv."),
    (r"^layer(\d+)\.(\d+)\.downsample\.1\.", "stages.{0}.{1}.shortcut.bn."),
    (r"^fc\.", "head.fc."),
)


def torchvision_key(key: str) -> str:
    """The reslib name of a torchvision ResNet state-dict entry (``layer2.0.downsample.0.weight``
    -> ``stages.1.0.shortcut.conv.weight``).

    Raises:
        ValueError: ``key`` is not part of a torchvision ResNet.
    """
    for pattern, target in _TORCHVISION_KEYS:
        m = re.match(pattern, key)
        if m:
            groups = list(m.groups())
            if groups:
                groups[0] = str(int(groups[0]) - 1)  # torchvision counts stages from layer1
            return target.format(*groups) + key[m.end() :]
    raise ValueError(f"{key!r} is not a torchvision ResNet state-dict key")


def load_torchvision_state_dict(model: ResNet, state_dict: Mapping[str, torch.Tensor]) -> ResNet:
    """Load a torchvision ``resnet18..152`` state dict into a reslib :class:`ResNet`.

    Every key is renamed by an explicit mapping (:func:`torchvision_key`), then the names and
    shapes must match exactly; ``model`` is returned for chaining.

    Raises:
        ValueError: keys missing, left over or of the wrong shape (the message lists them).
    """
    mapped = {torchvision_key(k): v for k, v in state_dict.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(mapped))
    unexpected = sorted(set(mapped) - set(own))
    wrong = sorted(
        f"{k}: {tuple(mapped[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(mapped)
        if mapped[k].shape != own[k].shape
    )
    if missing or unexpected or wrong:
        raise ValueError(
            "the state dict does not fit this model (is it the same depth, with shortcut='B'?): "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, "
            f"wrong shape {wrong[:5]}{'...' if len(wrong) > 5 else ''}"
        )
    model.load_state_dict(mapped, strict=True)
    return model


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "SHORTCUTS",
    "BasicBlock",
    "Bottleneck",
    "PadShortcut",
    "ResidualBlock",
    "append_blocks",
    "Projection",
    "ResNet",
    "cifar_resnet",
    "count_parameters",
    "imagenet_resnet",
    "load_torchvision_state_dict",
    "make_shortcut",
    "plain1d",
    "plain20",
    "plain32",
    "plain44",
    "plain56",
    "plain110",
    "resnet1d",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet34",
    "resnet44",
    "resnet50",
    "resnet56",
    "resnet101",
    "resnet110",
    "resnet152",
    "resnet1202",
    "torchvision_key",
]
