"""Densely connected networks: Huang, Liu, van der Maaten, Weinberger 2017, "Densely Connected
Convolutional Networks" (arXiv 1608.06993), x_l = H_l([x_0, x_1, ..., x_{l-1}]).

Each dense layer is a :class:`~reslib.layers.ConcatBlock` whose ``residual`` is H_l (BN-ReLU-
conv, or the "B" bottleneck BN-ReLU-1x1-BN-ReLU-3x3) and whose shortcut is the identity, so
``forward`` is ``cat([x, F(x)])``: the layer hands on everything it read plus ``k`` new channels
(the growth rate). Unrolled over a block, layer l reads the concatenation of the block input
and all earlier layers' outputs, the equation above. Transitions (BN-ReLU-1x1 conv-2x2 average
pool) between blocks compress the channels by theta ("C").

``memory_efficient=True`` recomputes, in the backward pass, the part of each layer that reads the
wide concatenation (BN-ReLU-1x1 with a bottleneck, the whole layer without) instead of storing
its activations (Pleiss et al. 2017, "Memory-Efficient Implementation of DenseNets",
arXiv 1707.06990), through ``torch.utils.checkpoint`` with ``use_reentrant=False``.

One implementation serves images (``dim=2``) and sequences (``dim=1``, MNIST-1D).

>>> model = densenet_bc100()  # DenseNet-BC (L=100, k=12): 0.8M parameters, Huang et al. Table 2
>>> imagenet = densenet121()  # torchvision's layout: 7,978,856 parameters
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Literal, TypedDict

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from reslib.layers import (
    ConcatBlock,
    buffers_kept,
    check_choice,
    check_float,
    check_int,
    conv_layer,
    global_pool,
    make_activation,
)
from reslib.layers.dims import AVG_POOL, BATCH_NORM, CONV
from reslib.models.base import StagedNet, Unpack

CheckpointScope = Literal["branch", "bottleneck"]
WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)


class DenseBranch(nn.Module):
    """H_l of a dense layer, ``(B, C_in, *S) -> (B, k, *S)`` (Huang et al. 2017, arXiv 1608.06993):
    BN-ReLU-3x3 conv, or with a bottleneck BN-ReLU-1x1 (to ``bn_size * k``)-BN-ReLU-3x3.

    The module names (``norm1``, ``conv1``, ``norm2``, ``conv2``) are torchvision's, so its
    weights load by name. ``memory_efficient`` recomputes the branch (``checkpoint_scope=
    "branch"``) or only :meth:`reads_concat` (``"bottleneck"``) in the backward pass instead of
    storing its activations; the output and the gradients are the same either way.
    """

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        *,
        bottleneck: bool,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        activation: str = "relu",
        dim: int = 2,
    ) -> None:
        super().__init__()
        conv, norm = conv_layer(dim), BATCH_NORM[dim]
        self.bottleneck, self.memory_efficient = bottleneck, memory_efficient
        self.checkpoint_scope: CheckpointScope = "branch"
        inner = bn_size * growth_rate if bottleneck else in_channels
        self.norm1, self.act1 = norm(in_channels), make_activation(activation)
        if bottleneck:
            self.conv1 = conv(in_channels, inner, 1, bias=False)
            self.norm2, self.act2 = norm(inner), make_activation(activation)
            self.conv2 = conv(inner, growth_rate, 3, padding=1, bias=False)
        else:  # the 3x3 conv reads the concatenation itself
            self.conv1 = conv(in_channels, growth_rate, 3, padding=1, bias=False)
        # torchvision applies dropout after the last conv; no module (and no key) without it
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()

    def reads_concat(self, x: torch.Tensor) -> torch.Tensor:
        """BN-ReLU-conv1 on the concatenation: ``(B, C_in, *S) -> (B, bn_size * k or k, *S)``."""
        return self.conv1(self.act1(self.norm1(x)))

    def rest(self, h: torch.Tensor) -> torch.Tensor:
        """What follows conv1: BN-ReLU-3x3 with a bottleneck, nothing without."""
        return self.conv2(self.act2(self.norm2(h))) if self.bottleneck else h

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """H(x) without dropout: ``(B, C_in, *S) -> (B, k, *S)``."""
        return self.rest(self.reads_concat(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.memory_efficient and torch.is_grad_enabled() and x.requires_grad):
            return self.drop(self.branch(x))
        # store only x and recompute in the backward pass (Pleiss et al. 2017)
        part = self.reads_concat if self.checkpoint_scope == "bottleneck" else self.branch
        h = checkpoint(part, x, use_reentrant=False, context_fn=self._contexts)
        return self.drop(self.rest(h) if part == self.reads_concat else h)

    def _contexts(self) -> tuple[AbstractContextManager[None], AbstractContextManager[None]]:
        return nullcontext(), self._statistics_kept()

    def _statistics_kept(self) -> AbstractContextManager[None]:
        """The recomputation must not count the batch twice in BatchNorm's running statistics
        (torchvision's memory-efficient DenseNet does): restore them after it."""
        return buffers_kept(self)


class LayerOptions(TypedDict, total=False):
    bottleneck: bool
    bn_size: int
    drop_rate: float
    memory_efficient: bool
    activation: str
    dim: int


class DenseLayer(ConcatBlock):
    """Huang et al. 2017 (arXiv 1608.06993): y = [x, H(x)], k new channels on top of x.

    A :class:`~reslib.layers.ConcatBlock` with the identity shortcut and nothing after the join,
    so ``zero_init_last`` (H(x) = 0: the new channels start at zero), ``skip_path`` and lesions
    work as for every other block. ``options`` go to :class:`DenseBranch` (a bottleneck by
    default). Shapes: ``(B, C, *S) -> (B, C + k, *S)``.
    """

    def __init__(self, in_channels: int, growth_rate: int, **options: Unpack[LayerOptions]):
        check_int("in_channels", in_channels), check_int("growth_rate", growth_rate)
        check_int("bn_size", options.get("bn_size", 4))
        check_float("drop_rate", options.get("drop_rate", 0.0), low=0, high=1, high_open=True)
        check_choice("dim", options.get("dim", 2), CONV)
        options.setdefault("bottleneck", True)
        super().__init__(DenseBranch(in_channels, growth_rate, **options), dim=1)  # type: ignore[misc]
        self.out_channels = in_channels + growth_rate  # shortcut, post: nn.Identity()


class DenseBlock(nn.Sequential):
    """``num_layers`` dense layers: ``(B, C, *S) -> (B, C + num_layers * k, *S)``. Layer l reads
    the block input and the k channels of each earlier layer (Huang et al. 2017, Eq. 2)."""

    def __init__(
        self, in_channels: int, num_layers: int, growth_rate: int, **options: Unpack[LayerOptions]
    ) -> None:
        check_int("layers per block", num_layers)
        layers = [
            DenseLayer(in_channels + i * growth_rate, growth_rate, **options)
            for i in range(num_layers)
        ]
        super().__init__(*layers)
        self.out_channels = in_channels + num_layers * growth_rate


class Transition(nn.Sequential):
    """Between dense blocks: BN-ReLU-1x1 conv to ``out_channels`` (theta * C: compression "C"),
    then 2x average pooling. ``(B, C, *S) -> (B, out_channels, *S / 2)``."""

    def __init__(self, in_channels: int, out_channels: int, *, activation: str, dim: int):
        super().__init__(
            OrderedDict(
                norm=BATCH_NORM[dim](in_channels),
                act=make_activation(activation),
                conv=conv_layer(dim)(in_channels, out_channels, 1, bias=False),
                pool=AVG_POOL[dim](2, stride=2),
            )
        )


class DenseNet(StagedNet):
    """A stem, dense blocks joined by transitions, BN-ReLU, global pooling and a classifier.

    ``stages[i]`` is ``Sequential(block=DenseBlock, transition=Transition)`` (the last stage has
    no transition); the head is ``norm -> act -> pool -> flatten -> fc``.

    Args:
        block_config: dense layers per block.
        growth_rate: k, the channels each layer adds.
        stem: maps the input to ``stem_channels`` channels.
        stem_channels: channels entering the first block.
        num_classes: outputs of the classifier.
        compression: theta in (0, 1]: a transition keeps ``floor(theta * C)`` channels ("C").
        in_channels: input channels (checked in ``forward``).
        options: for every dense layer - ``bottleneck`` ("B", default True: a 1x1 conv to
            ``bn_size * k`` channels, ``bn_size=4``, before each 3x3), ``drop_rate`` (dropout
            after each layer; 0.2 in the paper without augmentation), ``memory_efficient``
            (recompute the branch in the backward pass), ``activation`` (everywhere, "relu"),
            ``dim`` (2 for images ``(B, C, H, W)``, 1 for sequences ``(B, C, L)``).
    """

    def __init__(
        self,
        block_config: Sequence[int],
        growth_rate: int,
        *,
        stem: nn.Module,
        stem_channels: int,
        num_classes: int,
        compression: float = 0.5,
        in_channels: int = 3,
        **options: Unpack[LayerOptions],
    ) -> None:
        dim, activation = options.get("dim", 2), options.get("activation", "relu")
        super().__init__(dim=dim, in_channels=in_channels)
        check_choice("dim", dim, CONV)
        check_float("compression", compression, low=0, high=1, low_open=True)
        make_activation(activation)  # an unknown name fails here, with the valid ones
        if not block_config:
            raise ValueError("block_config needs at least one dense block, got an empty one")
        self.growth_rate, self.block_config = growth_rate, list(block_config)
        self.stem = stem
        stages, channels = [], stem_channels
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(channels, num_layers, growth_rate, **options)
            parts: dict[str, nn.Module] = {"block": block}
            channels = block.out_channels
            if i < len(block_config) - 1:
                out = int(compression * channels)  # floor, as the paper's and torchvision's code
                parts["transition"] = Transition(channels, out, activation=activation, dim=dim)
                channels = out
            stages.append(nn.Sequential(OrderedDict(parts)))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            OrderedDict(
                norm=BATCH_NORM[dim](channels),
                act=make_activation(activation),
                pool=global_pool(dim),
                flatten=nn.Flatten(),
                fc=nn.Linear(channels, check_int("num_classes", num_classes)),
            )
        )
        self.out_channels = channels
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's initialisation: He-normal convs (fan_in), BN gamma 1 and beta 0,
        zero linear biases (the linear weights keep torch's default)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.ones_(m.weight), nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def set_memory_efficient(
        self, enabled: bool = True, *, scope: CheckpointScope = "branch"
    ) -> DenseNet:
        """Switch every dense layer's checkpointing on or off (the weights stay); returns self.

        ``scope="branch"`` (what ``memory_efficient=True`` builds) recomputes the whole H(x),
        so a layer keeps nothing but its input; ``"bottleneck"`` recomputes only BN-ReLU-1x1,
        as torchvision does, and keeps the bottleneck's 4k channels as well.
        """
        check_choice("scope", scope, ("branch", "bottleneck"))
        for m in self.modules():
            if isinstance(m, DenseBranch):
                m.memory_efficient, m.checkpoint_scope = enabled, scope
        return self


@torch.no_grad()
def feature_reuse(block: DenseBlock, reader: nn.Module | None = None) -> torch.Tensor:
    """The paper's Fig. 5 for one trained block: entry (s, l) is the mean absolute weight that layer
    l's first conv puts on the channels of source s (0: the block input, s >= 1: layer s's k
    new channels); NaN where s >= l can not be read. Shape ``(n + 1 or n + 2, n + 1)`` for a
    block of n layers: one row per reading layer 1..n, plus a last row for ``reader`` (the
    transition's or the head's conv/linear, reading all n + 1 sources) when it is given.
    """
    layers = list(block)
    if not layers or not all(isinstance(m, DenseLayer) for m in layers):
        raise ValueError("feature_reuse() takes a DenseBlock of DenseLayers")
    weights = [layer.residual.conv1.weight for layer in layers]  # type: ignore[union-attr]
    readers = [m for m in (reader or nn.Identity()).modules() if isinstance(m, WEIGHTED)]
    if reader is not None and not readers:
        raise ValueError(f"{type(reader).__name__} has no conv or linear layer to read features")
    first, k = weights[0].shape[1], layers[0].out_channels - weights[0].shape[1]
    bounds = [0] + [first + i * k for i in range(len(layers) + 1)]  # each source's channels
    heat = torch.full((len(layers) + bool(readers), len(layers) + 1), float("nan"))
    for row, w in enumerate(weights + [m.weight for m in readers[:1]]):
        per_input = w.abs().transpose(0, 1).flatten(1).mean(1)  # (C_in,): mean |w| per channel
        for s in range(row + 1):  # layer row + 1 reads sources 0..row; the reader all n + 1
            heat[row, s] = per_input[bounds[s] : bounds[s + 1]].mean()
    return heat


def _stem(conv: nn.Module, norm: nn.Module, activation: str, *pool: nn.Module) -> nn.Sequential:
    parts: list[tuple[str, nn.Module]] = [("conv", conv), ("norm", norm)]
    parts.append(("act", make_activation(activation)))
    return nn.Sequential(OrderedDict(parts + [("pool", m) for m in pool]))


def cifar_densenet(
    depth: int,
    growth_rate: int = 12,
    *,
    bottleneck: bool = False,
    compression: float = 1.0,
    num_classes: int = 10,
    num_blocks: int = 3,
    drop_rate: float = 0.0,
    memory_efficient: bool = False,
    activation: str = "relu",
    in_channels: int = 3,
    dim: int = 2,
) -> DenseNet:
    """The CIFAR DenseNets of Huang et al. 2017 (arXiv 1608.06993, Sec. 4.2), x_l = H_l([x_0..]).

    A 3x3 conv stem (16 channels, or 2k with a bottleneck), ``num_blocks`` (3 in the paper)
    dense blocks of n layers each with transitions between them, BN-ReLU, global pooling and a
    linear classifier. ``depth`` L counts the weight layers: L = num_blocks * n * w + num_blocks
    + 1 with w = 2 convs per layer with a bottleneck, 1 without (3n + 4 and 6n + 4 for three
    blocks: L = 40 gives 12 layers per block, DenseNet-BC L = 100 gives 16).

    Raises:
        ValueError: ``depth`` does not have that form, or an unknown option.
    """
    check_int("growth_rate", growth_rate), check_int("num_blocks", num_blocks)
    per_layer = 2 if bottleneck else 1
    fixed = num_blocks + 1  # stem conv, transitions' convs, classifier
    is_int = isinstance(depth, int) and not isinstance(depth, bool)
    if not is_int or depth <= fixed or (depth - fixed) % (num_blocks * per_layer):
        step = num_blocks * per_layer
        examples = ", ".join(str(step * n + fixed) for n in (1, 2, 4, 12, 16))
        raise ValueError(
            f"a CIFAR DenseNet of {num_blocks} blocks{' with bottlenecks' if bottleneck else ''} "
            f"has {step}n + {fixed} layers ({examples}, ...), got {depth!r}"
        )
    n = (depth - fixed) // (num_blocks * per_layer)
    check_choice("dim", dim, CONV)
    stem_channels = 2 * growth_rate if bottleneck else 16
    stem = _stem(
        conv_layer(dim)(
            check_int("in_channels", in_channels), stem_channels, 3, padding=1, bias=False
        ),
        BATCH_NORM[dim](stem_channels),
        activation,
    )
    layer = LayerOptions(bottleneck=bottleneck, drop_rate=drop_rate, activation=activation)
    return DenseNet(
        [n] * num_blocks,
        growth_rate,
        stem=stem,
        stem_channels=stem_channels,
        num_classes=num_classes,
        compression=compression,
        in_channels=in_channels,
        memory_efficient=memory_efficient,
        dim=dim,
        **layer,
    )


class CifarOptions(TypedDict, total=False):
    num_classes: int
    drop_rate: float
    memory_efficient: bool
    activation: str
    in_channels: int
    dim: int


def densenet40(**options: Unpack[CifarOptions]) -> DenseNet:
    """DenseNet (L=40, k=12) for CIFAR (Huang et al. 2017, Table 2): 1.0M parameters, 7.00% /
    5.24% error on C10 / C10+."""
    return cifar_densenet(40, 12, **options)


def densenet_bc100(**options: Unpack[CifarOptions]) -> DenseNet:
    """DenseNet-BC (L=100, k=12) for CIFAR (Huang et al. 2017, Table 2): 0.8M parameters,
    5.92% / 4.51% error on C10 / C10+."""
    return cifar_densenet(100, 12, bottleneck=True, compression=0.5, **options)


# ImageNet (Huang et al. 2017, Table 1), laid out as torchvision's densenet121..201:
# (growth rate, stem channels, layers per block)
IMAGENET_LAYOUTS: dict[int, tuple[int, int, tuple[int, ...]]] = {
    121: (32, 64, (6, 12, 24, 16)),
    161: (48, 96, (6, 12, 36, 24)),
    169: (32, 64, (6, 12, 32, 32)),
    201: (32, 64, (6, 12, 48, 32)),
}


class ImageNetOptions(TypedDict, total=False):
    num_classes: int
    drop_rate: float
    memory_efficient: bool


def imagenet_densenet(depth: int, **options: Unpack[ImageNetOptions]) -> DenseNet:
    """The ImageNet DenseNet-BC of Huang et al. 2017 (arXiv 1608.06993, Table 1): 7x7/2 conv and
    3x3/2 max-pool stem, four dense blocks with bottlenecks (4k) and compression 0.5. Its
    parameter count equals torchvision's, and
    :func:`reslib.models.torchvision_weights.load_densenet` loads its weights."""
    k, stem_channels, config = IMAGENET_LAYOUTS[
        check_choice("ImageNet DenseNet depth", depth, IMAGENET_LAYOUTS)
    ]
    stem = _stem(
        nn.Conv2d(3, stem_channels, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(stem_channels),
        "relu",
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    options.setdefault("num_classes", 1000)
    return DenseNet(config, k, stem=stem, stem_channels=stem_channels, **options)  # type: ignore[misc]


def densenet121(**options: Unpack[ImageNetOptions]) -> DenseNet:
    """DenseNet-121 (Huang et al. 2017, Table 1): torchvision's layout, 7,978,856 parameters."""
    return imagenet_densenet(121, **options)


def densenet161(**options: Unpack[ImageNetOptions]) -> DenseNet:
    """DenseNet-161 (k=48; Huang et al. 2017, Table 1): torchvision's layout, 28,681,000."""
    return imagenet_densenet(161, **options)


def densenet169(**options: Unpack[ImageNetOptions]) -> DenseNet:
    """DenseNet-169 (Huang et al. 2017, Table 1): torchvision's layout, 14,149,480 parameters."""
    return imagenet_densenet(169, **options)


def densenet201(**options: Unpack[ImageNetOptions]) -> DenseNet:
    """DenseNet-201 (Huang et al. 2017, Table 1): torchvision's layout, 20,013,928 parameters."""
    return imagenet_densenet(201, **options)
