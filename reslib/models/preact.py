"""Pre-activation residual networks: He et al. 2016, "Identity Mappings in Deep Residual
Networks" (arXiv 1603.05027), x_{l+1} = x_l + F(x_l).

With an identity shortcut and nothing after the addition, unrolling the recursion gives::

    x_L     = x_l + sum_{i=l}^{L-1} F(x_i)
    dL/dx_l = dL/dx_L * (1 + d/dx_l sum_{i=l}^{L-1} F(x_i))

The "1" carries the gradient from any unit to any earlier one unchanged. Anything placed on the
shortcut (a scale, a gate, a convolution, dropout) or after the addition (a ReLU, a BN) multiplies
that path once per unit, so over many units it shrinks or grows geometrically. This module builds
the paper's full pre-activation unit (BN -> ReLU -> conv, twice; or three times in a bottleneck)
and, to measure that argument, every alternative the paper tried:

* ``shortcut`` - the shortcut variants of Table 1 (:data:`SHORTCUT_VARIANTS`): ``"identity"``,
  constant scaling (``"scale_both"``, ``"scale_shortcut"``), gating (``"exclusive_gate"``,
  ``"shortcut_gate"``), ``"conv1x1"``, ``"dropout"``; plus non-linear or partial skips
  (``"relu"``, ``"avgpool"``, ``"partial"``) and the controls ``"none"`` (plain) and
  ``"detached"`` (forward only);
* ``placement`` - where BN and ReLU sit (Table 2, :data:`PLACEMENTS`): ``"original"``,
  ``"bn_after_add"``, ``"relu_before_add"``, ``"relu_only"``, ``"full"``;
* ``norm`` - the normalisation (:data:`NORMS`): ``"batch"``, ``"group"``, ``"layer"`` (GroupNorm
  with one group) or ``"none"``.

Each variant is a small module on the shortcut or the branch, so every unit's ``forward`` stays
the equation: :class:`PreActBlock` computes ``residual(x) + shortcut(x)``, :class:`PostActBlock`
``after(residual(x) + shortcut(x))``. Where a shortcut has weights (a projection), it reads the
*pre-activated* input, as in the authors' code: the unit is then ``nn.Sequential(pre, block)``
with the shared BN -> ReLU in ``pre`` (:func:`make_unit`).

>>> model = preact_resnet164()  # 1.7M parameters, He et al. 2016b Table 3
>>> ablation = preact_resnet110(placement="original", shortcut="exclusive_gate", gate_bias=-6.0)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from reslib.models.plain import Detached, Zero, check_choice, make_activation
from reslib.models.resnet import LAYERS_BY_DIM, Projection, ResNet, make_shortcut

ShortcutVariant = Literal[
    "identity",
    "scale_both",
    "scale_shortcut",
    "exclusive_gate",
    "shortcut_gate",
    "conv1x1",
    "dropout",
    "relu",
    "avgpool",
    "partial",
    "none",
    "detached",
]
Placement = Literal["original", "bn_after_add", "relu_before_add", "relu_only", "full"]
NormName = Literal["batch", "group", "layer", "none"]
Option = Literal["A", "B"]

SHORTCUT_VARIANTS: tuple[str, ...] = ShortcutVariant.__args__  # type: ignore[attr-defined]
PLACEMENTS: tuple[str, ...] = Placement.__args__  # type: ignore[attr-defined]
NORMS: tuple[str, ...] = NormName.__args__  # type: ignore[attr-defined]
OPTIONS: tuple[str, ...] = ("A", "B")
# placements whose unit ends at the addition, so its branch starts with the activation
PRE_PLACEMENTS = ("relu_only", "full")


# ---------------------------------------------------------------- normalisation


def group_count(channels: int) -> int:
    """GroupNorm's groups for ``channels``: the largest divisor <= min(32, channels // 2), so a
    group holds at least two channels and there are at most Wu & He's (arXiv 1803.08494) 32."""
    for groups in range(min(32, max(1, channels // 2)), 0, -1):
        if channels % groups == 0:
            return groups
    return 1


def make_norm(name: str, channels: int, dim: int = 2) -> nn.Module:
    """``"batch"`` (BatchNorm1d/2d), ``"group"`` (GroupNorm, :func:`group_count` groups),
    ``"layer"`` (GroupNorm with one group: LayerNorm over channels and positions) or ``"none"``.

    BatchNorm normalises each channel over the batch, so its statistics are noisy for small
    batches; GroupNorm and LayerNorm normalise each sample on its own.
    """
    check_choice("norm", name, NORMS)
    check_choice("dim", dim, tuple(LAYERS_BY_DIM))
    if name == "batch":
        return LAYERS_BY_DIM[dim][1](channels)
    if name == "group":
        return nn.GroupNorm(group_count(channels), channels)
    if name == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


# ---------------------------------------------------------------- shortcut modules


class Scale(nn.Module):
    """Multiply by a constant: h(x) = lambda x (Table 1, "constant scaling")."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * x

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class Gate(nn.Module):
    """g(x) = sigmoid(W_g x + b_g), a 1x1 convolution per unit (Table 1, gating).

    A negative ``bias`` b_g starts the gate near 0, so 1 - g(x), the shortcut's share, near 1
    (b_g = -6: 1 - g = 0.9975).
    Shapes: ``(B, C_in, *S) -> (B, C_out, *S / stride)``, values in (0, 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        bias: float = -6.0,
        dim: int = 2,
    ) -> None:
        super().__init__()
        self.conv = LAYERS_BY_DIM[dim][0](in_channels, out_channels, 1, stride=stride, bias=True)
        self.initial_bias = bias
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # W_g = 0: the gate starts at sigmoid(b_g) everywhere, so b_g alone sets how much of
        # x the shortcut carries at initialisation; W_g still receives a gradient and learns
        nn.init.zeros_(self.conv.weight)
        nn.init.constant_(self.conv.bias, self.initial_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


class Gated(nn.Module):
    """``g(x) * path(x)``, or ``(1 - g(x)) * path(x)`` when ``carry`` (the shortcut's share).

    Exclusive gating gives the *same* :class:`Gate` to the branch (g F(x)) and the shortcut
    ((1 - g) x), so the two paths share W_g, b_g; the gate is evaluated once on each path.
    """

    def __init__(self, path: nn.Module, gate: Gate, *, carry: bool) -> None:
        super().__init__()
        self.path, self.gate, self.carry = path, gate, carry

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gate(x)  # (B, C_out, *S)
        return (1 - g if self.carry else g) * self.path(x)

    def extra_repr(self) -> str:
        return "(1 - g(x)) * path(x)" if self.carry else "g(x) * path(x)"


class ChannelMask(nn.Module):
    """A partial skip: the first ``keep`` of ``channels`` channels pass, the rest are zeroed."""

    mask: torch.Tensor

    def __init__(self, channels: int, fraction: float) -> None:
        super().__init__()
        self.keep = max(1, round(fraction * channels))
        mask = torch.zeros(channels)
        mask[: self.keep] = 1.0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (C,) -> (1, C, 1, ...) to broadcast over the batch and the positions
        return x * self.mask.view(1, -1, *([1] * (x.ndim - 2)))

    def extra_repr(self) -> str:
        return f"keep={self.keep} of {self.mask.numel()} channels"


# ---------------------------------------------------------------- units


class PreActBlock(nn.Module):
    """He et al. 2016 (arXiv 1603.05027) unit with nothing after the addition:
    x_{l+1} = h(x_l) + F(x_l); with h the identity, x_{l+1} = x_l + F(x_l).

    In the full pre-activation unit F = conv(ReLU(BN(conv(ReLU(BN(x)))))).
    """

    def __init__(self, residual: nn.Module, shortcut: nn.Module) -> None:
        super().__init__()
        self.residual = residual
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class PostActBlock(nn.Module):
    """He et al. 2016 (arXiv 1603.05027) unit with an after-addition activation f:
    x_{l+1} = f(h(x_l) + F(x_l)), f = ReLU ("original", the ResNet of arXiv 1512.03385) or
    BN -> ReLU ("bn_after_add"). f sits on the shortcut path of every later unit.
    """

    def __init__(self, residual: nn.Module, shortcut: nn.Module, after: nn.Module) -> None:
        super().__init__()
        self.residual = residual
        self.shortcut = shortcut
        self.after = after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after(self.residual(x) + self.shortcut(x))


@dataclass(frozen=True)
class UnitSpec:
    """Everything that varies between the units of He et al. 2016 (arXiv 1603.05027).

    Attributes:
        bottleneck: 1x1 -> 3x3 -> 1x1 (x4 channels) instead of two 3x3 convolutions.
        placement: where BN and ReLU sit (Table 2), one of :data:`PLACEMENTS`.
        shortcut: the shortcut variant (Table 1 and more), one of :data:`SHORTCUT_VARIANTS`.
        norm: ``"batch" | "group" | "layer" | "none"``.
        option: the shortcut where the shape changes: ``"A"`` (zero-padded identity, no
            parameters) or ``"B"`` (1x1 projection); ``None``: A for basic units, B for
            bottlenecks, as in the papers' CIFAR nets.
        dim: 2 for images (B, C, H, W), 1 for sequences (B, C, L).
        activation: the non-linearity (``"relu"`` in the paper).
        scale: lambda of constant scaling (h(x) = lambda x; the branch gets 1 - lambda with
            ``"scale_both"``).
        gate_bias: b_g, the initial bias of the gates.
        dropout: drop probability on the ``"dropout"`` shortcut.
        skip_fraction: the share of channels a ``"partial"`` shortcut carries.
        zero_init: zero the branch's last weight layer, so F(x) = 0 at initialisation.
    """

    bottleneck: bool = False
    placement: Placement = "full"
    shortcut: ShortcutVariant = "identity"
    norm: NormName = "batch"
    option: Option | None = None
    dim: int = 2
    activation: str = "relu"
    scale: float = 0.5
    gate_bias: float = -6.0
    dropout: float = 0.5
    skip_fraction: float = 0.5
    zero_init: bool = False

    def __post_init__(self) -> None:
        check_choice("placement", self.placement, PLACEMENTS)
        check_choice("shortcut", self.shortcut, SHORTCUT_VARIANTS)
        check_choice("norm", self.norm, NORMS)
        if self.option is not None:
            check_choice("option", self.option, OPTIONS)
        check_choice("dim", self.dim, tuple(LAYERS_BY_DIM))
        make_activation(self.activation)  # raises ValueError listing the valid names
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.skip_fraction <= 1:
            raise ValueError(f"skip_fraction must be in (0, 1], got {self.skip_fraction}")

    @property
    def expansion(self) -> int:
        return 4 if self.bottleneck else 1

    @property
    def pre_activation(self) -> bool:
        """Whether the unit ends at the addition and its branch starts with the activation."""
        return self.placement in PRE_PLACEMENTS

    @property
    def reshape_option(self) -> Option:
        return self.option or ("B" if self.bottleneck else "A")


def _branch_tokens(placement: str, convs: int) -> tuple[list[str], list[str]]:
    """The branch F and the after-addition f as layer kinds, e.g. full pre-activation with two
    convs: (["norm", "act", "conv", "norm", "act", "conv"], [])."""
    core: list[str] = []
    for _ in range(convs):
        core += ["conv", "norm", "act"]
    core = core[:-1]  # conv-norm-act ... conv-norm: the original branch, ending in its BN
    return {
        "original": (core, ["act"]),
        "bn_after_add": (core[:-1], ["norm", "act"]),
        "relu_before_add": (core + ["act"], []),
        "relu_only": (["act"] + core, []),
        "full": (["norm", "act"] + core[:-1], []),
    }[placement]


def _layers(
    tokens: Sequence[str],
    convs: Sequence[tuple[int, int, int, int]],
    channels: int,
    spec: UnitSpec,
    counts: dict[str, int] | None = None,
) -> tuple[OrderedDict[str, nn.Module], int]:
    """Build the named layers for ``tokens``; ``convs`` lists (in, out, kernel, stride) per conv.

    Layers are numbered per kind (``norm1, act1, conv1, norm2, ...``); returns them and the
    channel count at the end.
    """
    conv_layer = LAYERS_BY_DIM[spec.dim][0]
    counts = {} if counts is None else counts
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for kind in tokens:
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "conv":
            c_in, c_out, k, stride = convs[counts["conv"] - 1]
            module: nn.Module = conv_layer(
                c_in, c_out, k, stride=stride, padding=k // 2, bias=spec.norm == "none"
            )
            channels = c_out
        elif kind == "norm":
            module = make_norm(spec.norm, channels, spec.dim)
        else:
            module = make_activation(spec.activation)
        layers[f"{kind}{counts[kind]}"] = module
    return layers, channels


def _shortcut_and_branch(
    branch: nn.Module, in_channels: int, out_channels: int, stride: int, spec: UnitSpec
) -> tuple[nn.Module, nn.Module]:
    """Wrap the branch F and build the shortcut h for ``spec.shortcut``: (residual, shortcut)."""
    conv_layer = LAYERS_BY_DIM[spec.dim][0]

    def norm_layer(c: int) -> nn.Module:
        # a pre-activation projection is a bare conv: the next unit normalises the sum
        return nn.Identity() if spec.pre_activation else make_norm(spec.norm, c, spec.dim)

    def base(option: str = spec.reshape_option) -> nn.Module:
        return make_shortcut(
            in_channels,
            out_channels,
            stride,
            shortcut=option,  # type: ignore[arg-type]
            conv_layer=conv_layer,
            norm_layer=norm_layer,
        )

    def gate() -> Gate:
        return Gate(in_channels, out_channels, stride, bias=spec.gate_bias, dim=spec.dim)

    name = spec.shortcut
    if name == "identity":
        return branch, base()
    if name == "none":
        return branch, Zero()
    if name == "detached":
        return branch, nn.Sequential(Detached(), base())
    if name == "scale_both":
        return nn.Sequential(branch, Scale(1 - spec.scale)), nn.Sequential(
            base(), Scale(spec.scale)
        )
    if name == "scale_shortcut":
        return branch, nn.Sequential(base(), Scale(spec.scale))
    if name == "exclusive_gate":
        g = gate()  # shared: g F(x) + (1 - g) x
        return Gated(branch, g, carry=False), Gated(base(), g, carry=True)
    if name == "shortcut_gate":
        return branch, Gated(base(), gate(), carry=True)
    if name == "conv1x1":
        return branch, base("C")
    if name == "dropout":
        return branch, nn.Sequential(base(), nn.Dropout(spec.dropout))
    if name == "relu":
        return branch, nn.Sequential(base(), make_activation(spec.activation))
    if name == "avgpool":
        pool = (nn.AvgPool1d, nn.AvgPool2d)[spec.dim - 1](3, 1, 1, count_include_pad=False)
        return branch, nn.Sequential(base(), pool)
    # "partial": only some channels skip
    return branch, nn.Sequential(base(), ChannelMask(out_channels, spec.skip_fraction))


def _projects(in_channels: int, out_channels: int, stride: int, spec: UnitSpec) -> bool:
    """Whether the shortcut has a 1x1 projection (option B where the shape changes, or
    ``"conv1x1"`` everywhere)."""
    if spec.shortcut in ("none", "conv1x1"):
        return spec.shortcut == "conv1x1"
    return spec.reshape_option == "B" and (stride != 1 or in_channels != out_channels)


def _he_init(modules: Iterator[nn.Module]) -> None:
    for m in modules:
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            # He init (arXiv 1502.01852), fan_out as torchvision and the authors' code
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def make_unit(
    in_channels: int,
    planes: int,
    stride: int = 1,
    *,
    spec: UnitSpec = UnitSpec(),
    share_preactivation: bool | None = None,
) -> nn.Module:
    """One residual unit of He et al. 2016 (arXiv 1603.05027) as ``spec`` describes it.

    Returns a :class:`PreActBlock` (``residual(x) + shortcut(x)``) or a :class:`PostActBlock`
    (``after(residual(x) + shortcut(x))``). For a pre-activation placement whose shortcut
    projects, the branch's leading BN -> ReLU moves in front of both paths and the result is
    ``nn.Sequential(pre=..., block=PreActBlock)``, so the projection reads the pre-activated
    input (the authors' code; also used for the first unit after the stem).

    Args:
        in_channels: channels of x_l.
        planes: channels of the 3x3 convolutions (the unit outputs ``planes * expansion``).
        stride: 2 halves the resolution (on the first 3x3 conv).
        spec: the unit's variant.
        share_preactivation: force (True) or forbid (False) the shared pre-activation; ``None``
            shares exactly when the shortcut projects.

    Shapes: ``(B, in_channels, *S) -> (B, planes * expansion, *S / stride)``.
    """
    if min(in_channels, planes, stride) < 1:
        raise ValueError(
            f"in_channels, planes and stride must be >= 1, got {in_channels}, {planes}, {stride}"
        )
    out = planes * spec.expansion
    # (in, out, kernel, stride) of each conv; the stride sits on the 3x3 conv (as torchvision)
    convs = (
        [(in_channels, planes, 1, 1), (planes, planes, 3, stride), (planes, out, 1, 1)]
        if spec.bottleneck
        else [(in_channels, planes, 3, stride), (planes, out, 3, 1)]
    )
    tokens, after_tokens = _branch_tokens(spec.placement, len(convs))
    pre_tokens = tokens[: tokens.index("conv")]  # the pre-activation: [norm, act], [act] or []
    counts: dict[str, int] = {}
    pre, _ = _layers(pre_tokens, convs, in_channels, spec, counts)
    body, _ = _layers(tokens[len(pre_tokens) :], convs, in_channels, spec, counts)
    after, _ = _layers(after_tokens, convs, out, spec, {})

    _he_init(iter(body.values()))
    if spec.zero_init:
        last = [m for m in body.values() if getattr(m, "weight", None) is not None][-1]
        nn.init.zeros_(last.weight)  # F(x) = 0: the unit starts as its shortcut
        if getattr(last, "bias", None) is not None:
            nn.init.zeros_(last.bias)

    share = bool(pre) and (
        _projects(in_channels, out, stride, spec)
        if share_preactivation is None
        else share_preactivation
    )
    residual = nn.Sequential(body if share else OrderedDict([*pre.items(), *body.items()]))
    residual, shortcut = _shortcut_and_branch(residual, in_channels, out, stride, spec)
    for m in shortcut.modules():
        if isinstance(m, Projection):
            _he_init(m.modules())

    if after:
        return PostActBlock(residual, shortcut, nn.Sequential(after))
    block = PreActBlock(residual, shortcut)
    if share:
        return nn.Sequential(OrderedDict(pre=nn.Sequential(pre), block=block))
    return block


def shortcut_path(unit: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What x_l contributes to x_{l+1} through the shortcut alone, with the branch F removed.

    For a pre-activation unit that is h(x_l) (the identity: x_l itself); after an
    after-addition activation f it is f(h(x_l)); a shared pre-activation runs first. Chaining
    it over units shows what anything on the shortcut does across depth, e.g. lambda^L for
    constant scaling.
    """
    if isinstance(unit, PostActBlock):
        return unit.after(unit.shortcut(x))
    if isinstance(unit, PreActBlock):
        return unit.shortcut(x)
    if isinstance(unit, nn.Sequential) and isinstance(getattr(unit, "block", None), PreActBlock):
        return unit.block.shortcut(unit.pre(x))
    raise ValueError(f"expected a unit built by make_unit, got {type(unit).__name__}")


# ---------------------------------------------------------------- networks


class PreActResNet(nn.Module):
    """A stem, stages of residual units, global average pooling and a linear classifier.

    For the pre-activation placements the stem is a bare convolution: its BN -> ReLU is the
    first unit's (shared) pre-activation, and one more pre-activation follows the last unit,
    before pooling (He et al. 2016, arXiv 1603.05027, appendix). Stage ``i`` has ``layers[i]``
    units of ``planes[i]`` planes; every stage after the first halves the resolution.

    Args:
        layers: units per stage.
        planes: planes per stage (a bottleneck outputs 4x as many channels).
        spec: the variant of every unit.
        stem_channels: output channels of the stem convolution.
        num_classes: outputs of the classifier.
        in_channels: input channels (checked in ``forward``).
    """

    # the same input check as the post-activation ResNet: (B, L) gains its channel axis
    prepare = ResNet.prepare

    def __init__(
        self,
        layers: Sequence[int],
        planes: Sequence[int],
        *,
        spec: UnitSpec = UnitSpec(),
        stem_channels: int = 16,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(layers) != len(planes) or not layers or min(layers) < 1:
            raise ValueError(
                f"need one positive unit count per stage, got layers={list(layers)} "
                f"for planes={list(planes)}"
            )
        if min(num_classes, stem_channels, in_channels) < 1:
            raise ValueError("num_classes, stem_channels and in_channels must be >= 1")
        conv_layer, _, pool = LAYERS_BY_DIM[spec.dim]
        self.spec, self.dim, self.in_channels = spec, spec.dim, in_channels
        stem: OrderedDict[str, nn.Module] = OrderedDict(
            conv=conv_layer(in_channels, stem_channels, 3, padding=1, bias=spec.norm == "none")
        )
        if not spec.pre_activation:  # ResNet v1: conv -> BN -> ReLU, then the units
            stem["norm"] = make_norm(spec.norm, stem_channels, spec.dim)
            stem["act"] = make_activation(spec.activation)
        self.stem = nn.Sequential(stem)
        _he_init(self.stem.modules())

        stages, channels = [], stem_channels
        for i, (count, width) in enumerate(zip(layers, planes, strict=True)):
            units = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                first = i == 0 and j == 0  # its pre-activation follows the stem, before the split
                units.append(
                    make_unit(
                        channels,
                        width,
                        stride,
                        spec=spec,
                        share_preactivation=True if first and spec.pre_activation else None,
                    )
                )
                channels = width * spec.expansion
            stages.append(nn.Sequential(*units))
        self.stages = nn.Sequential(*stages)

        head: OrderedDict[str, nn.Module] = OrderedDict()
        if spec.placement == "full":  # the extra activation after the last addition
            head["norm"] = make_norm(spec.norm, channels, spec.dim)
        if spec.pre_activation:
            head["act"] = make_activation(spec.activation)
        head.update(pool=pool(1), flatten=nn.Flatten(), fc=nn.Linear(channels, num_classes))
        self.head = nn.Sequential(head)
        self.out_channels = channels

    def units(self) -> Iterator[nn.Module]:
        """Every residual unit, input to output."""
        for stage in self.stages:
            yield from stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(self.prepare(x))))


def _depth_to_units(depth: int, bottleneck: bool) -> int:
    per_unit = 9 if bottleneck else 6  # 3 stages x (3 or 2) weight layers per unit
    if not isinstance(depth, int) or depth < per_unit + 2 or (depth - 2) % per_unit:
        examples = "11, 20, 164, 1001" if bottleneck else "8, 20, 56, 110"
        raise ValueError(
            f"a CIFAR {'bottleneck' if bottleneck else 'basic'} ResNet has {per_unit}n + 2 "
            f"layers ({examples}, ...), got {depth!r}"
        )
    return (depth - 2) // per_unit


def preact_resnet(
    depth: int,
    *,
    num_classes: int = 10,
    bottleneck: bool = False,
    placement: Placement = "full",
    shortcut: ShortcutVariant = "identity",
    norm: NormName = "batch",
    option: Option | None = None,
    width: int = 16,
    in_channels: int = 3,
    dim: int = 2,
    activation: str = "relu",
    zero_init_residual: bool = False,
    scale: float = 0.5,
    gate_bias: float = -6.0,
    dropout: float = 0.5,
    skip_fraction: float = 0.5,
) -> PreActResNet:
    """The CIFAR ResNets of He et al. 2016 (arXiv 1603.05027), x_{l+1} = x_l + F(x_l).

    A 3x3 stem with ``width`` filters, three stages of n units of ``width``, 2 ``width`` and
    4 ``width`` planes on 32/16/8-pixel maps, global average pooling and a linear classifier:
    6n + 2 layers with basic units (ResNet-110), 9n + 2 with bottlenecks (ResNet-164, -1001,
    whose stages output 64/128/256 channels). ``dim=1`` builds the same net for sequences.
    ``placement``, ``shortcut``, ``norm`` and the numbers after them choose the variant
    (see :class:`UnitSpec`); the defaults build the paper's full pre-activation net.

    Raises:
        ValueError: the depth does not fit the unit type, or an unknown variant name (the
            message lists the valid ones).
    """
    spec = UnitSpec(
        bottleneck=bottleneck,
        placement=placement,
        shortcut=shortcut,
        norm=norm,
        option=option,
        dim=dim,
        activation=activation,
        scale=scale,
        gate_bias=gate_bias,
        dropout=dropout,
        skip_fraction=skip_fraction,
        zero_init=zero_init_residual,
    )
    n = _depth_to_units(depth, bottleneck)
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    return PreActResNet(
        [n, n, n],
        [width, 2 * width, 4 * width],
        spec=spec,
        stem_channels=width,
        num_classes=num_classes,
        in_channels=in_channels,
    )


def preact_resnet1d(
    depth: int,
    *,
    num_classes: int = 10,
    width: int = 8,
    in_channels: int = 1,
    bottleneck: bool = False,
    placement: Placement = "full",
    shortcut: ShortcutVariant = "identity",
    norm: NormName = "batch",
    option: Option | None = None,
    zero_init_residual: bool = False,
    scale: float = 0.5,
    gate_bias: float = -6.0,
    dropout: float = 0.5,
    skip_fraction: float = 0.5,
) -> PreActResNet:
    """:func:`preact_resnet` with Conv1d layers and narrow stages, for sequences such as
    MNIST-1D: (B, L) or (B, in_channels, L) -> (B, num_classes)."""
    return preact_resnet(
        depth,
        num_classes=num_classes,
        bottleneck=bottleneck,
        placement=placement,
        shortcut=shortcut,
        norm=norm,
        option=option,
        width=width,
        in_channels=in_channels,
        dim=1,
        zero_init_residual=zero_init_residual,
        scale=scale,
        gate_bias=gate_bias,
        dropout=dropout,
        skip_fraction=skip_fraction,
    )


def _named(depth: int, bottleneck: bool, doc: str) -> Callable[..., PreActResNet]:
    def build(
        *,
        num_classes: int = 10,
        placement: Placement = "full",
        shortcut: ShortcutVariant = "identity",
        norm: NormName = "batch",
        option: Option | None = None,
        zero_init_residual: bool = False,
        scale: float = 0.5,
        gate_bias: float = -6.0,
        dropout: float = 0.5,
        skip_fraction: float = 0.5,
    ) -> PreActResNet:
        return preact_resnet(
            depth,
            num_classes=num_classes,
            bottleneck=bottleneck,
            placement=placement,
            shortcut=shortcut,
            norm=norm,
            option=option,
            zero_init_residual=zero_init_residual,
            scale=scale,
            gate_bias=gate_bias,
            dropout=dropout,
            skip_fraction=skip_fraction,
        )

    build.__name__ = build.__qualname__ = f"preact_resnet{depth}"
    build.__doc__ = doc
    return build


preact_resnet110 = _named(
    110,
    False,
    "ResNet-110 with full pre-activation units, He et al. 2016 (arXiv 1603.05027), "
    "x_{l+1} = x_l + F(x_l): 1.7M parameters; CIFAR-10 error 6.37% (Table 3; original 6.61%). "
    "The other keywords build the Table 1/2 variants; see :func:`preact_resnet`.",
)
preact_resnet164 = _named(
    164,
    True,
    "ResNet-164 (bottleneck) with full pre-activation units, He et al. 2016 "
    "(arXiv 1603.05027), x_{l+1} = x_l + F(x_l): 1.7M parameters; CIFAR-10 error 5.46% "
    "(Table 3; original 5.93%). See :func:`preact_resnet`.",
)
preact_resnet1001 = _named(
    1001,
    True,
    "ResNet-1001 (bottleneck) with full pre-activation units, He et al. 2016 "
    "(arXiv 1603.05027), x_{l+1} = x_l + F(x_l): 10.2M parameters; CIFAR-10 error 4.92% "
    "(Table 3; original 7.61%). See :func:`preact_resnet`.",
)


__all__ = [
    "NORMS",
    "OPTIONS",
    "PLACEMENTS",
    "SHORTCUT_VARIANTS",
    "ChannelMask",
    "Gate",
    "Gated",
    "PostActBlock",
    "PreActBlock",
    "PreActResNet",
    "Scale",
    "UnitSpec",
    "group_count",
    "make_norm",
    "make_unit",
    "preact_resnet",
    "preact_resnet1d",
    "preact_resnet110",
    "preact_resnet164",
    "preact_resnet1001",
    "shortcut_path",
]
