"""Tests of reslib.models.preact: identity at zero-init, every variant of He et al. 2016b
(arXiv 1603.05027) Tables 1 and 2, gating gradients, clear errors and the parameter counts."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from reslib.layers import (
    NORMS,
    ChannelMask,
    Detached,
    GatedPath,
    PadShortcut,
    Projection,
    ResidualBlock,
    Scale,
    Zero,
    blocks,
)
from reslib.models import preact
from reslib.models.base import count_parameters
from reslib.models.preact import PLACEMENTS, SHORTCUT_OPS, UnitSpec, make_unit


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def paper_rounding(n: int) -> str:
    # the paper prints two decimals below one million and one decimal above
    return f"{n / 1e6:.2f}M" if n < 1_000_000 else f"{n / 1e6:.1f}M"


def norm_parameters(model: nn.Module) -> int:
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)
    return sum(p.numel() for m in model.modules() if isinstance(m, norms) for p in m.parameters())


def silent_parameters(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]


def stage_shapes(model: preact.PreActResNet, x: torch.Tensor) -> list[tuple[int, ...]]:
    h = model.stem(x if x.ndim == model.dim + 2 else x.unsqueeze(1))
    shapes = []
    for stage in model.stages:
        h = stage(h)
        shapes.append(tuple(h.shape[1:]))
    return shapes


def net_1d(depth: int, spec: UnitSpec, width: int = 4) -> preact.PreActResNet:
    return preact.preact_resnet(depth, spec=spec, width=width, in_channels=1)


# ---------------------------------------------------------------- identity at zero-init


@pytest.mark.parametrize(
    "spec, shape",
    [
        (UnitSpec(zero_init_last=True), (2, 16, 8, 8)),
        (UnitSpec(zero_init_last=True, norm="group"), (2, 16, 8, 8)),
        (UnitSpec(zero_init_last=True, norm="none"), (2, 16, 8, 8)),  # the last conv has a bias
        (UnitSpec(zero_init_last=True, bottleneck=True), (2, 64, 8, 8)),
        (UnitSpec(zero_init_last=True, dim=1), (3, 16, 40)),
        (UnitSpec(zero_init_last=True, placement="relu_only"), (2, 16, 8, 8)),
        (UnitSpec(zero_init_last=True, placement="relu_before_add"), (2, 16, 8, 8)),
    ],
)
@pytest.mark.parametrize("train", [True, False])
def test_zero_init_preactivation_unit_is_exactly_the_identity(spec, shape, train: bool) -> None:
    planes = shape[1] // spec.expansion
    block = make_unit(shape[1], planes, spec=spec).train(train)
    assert type(block) is ResidualBlock
    assert all(isinstance(m, nn.Identity) for m in (block.pre, block.shortcut, block.post))
    x = torch.randn(*shape)
    with torch.no_grad():
        assert torch.equal(block(x), x)  # x_{l+1} = x_l + 0
        assert torch.equal(block.skip_path(x), x)


@pytest.mark.parametrize("op", [None, *SHORTCUT_OPS])
@pytest.mark.parametrize("placement", ["original", "full"])
@pytest.mark.parametrize("train", [True, False])
def test_zero_init_unit_computes_exactly_its_skip_path(op, placement: str, train: bool) -> None:
    spec = UnitSpec(placement=placement, shortcut_op=op, zero_init_last=True, gate_bias=-1.0)
    for in_c, planes, stride in ((8, 8, 1), (4, 8, 2)):
        block = make_unit(in_c, planes, stride, spec=spec).train(train)
        x = torch.randn(2, in_c, 6, 6)
        with torch.no_grad():
            torch.manual_seed(1)  # the dropout shortcut draws the same mask both times
            y = block(x)
            torch.manual_seed(1)
            skip = block.skip_path(x)
        assert torch.equal(y, skip)
        assert torch.isfinite(y).all() and y.shape == (2, planes, 6 // stride, 6 // stride)
        if op in ("exclusive_gate", "shortcut_gate"):  # the gates keep W_g = 0, b_g = gate_bias
            gate = block.shortcut.gate
            assert not gate.conv.weight.any()
            assert torch.equal(gate.conv.bias, torch.full_like(gate.conv.bias, -1.0))


def test_zero_init_network_every_unit_is_its_skip_path() -> None:
    spec = UnitSpec(dim=1, zero_init_last=True)
    model = net_1d(20, spec)  # 3 units per stage
    h = model.stem(torch.randn(3, 1, 40))
    checked = identities = 0
    with torch.no_grad():
        for unit in blocks(model):
            assert torch.equal(unit(h), unit.skip_path(h))
            checked += 1
            plain_identity = all(
                isinstance(m, nn.Identity) for m in (unit.pre, unit.shortcut, unit.post)
            )
            if plain_identity:
                assert torch.equal(unit(h), h)
                identities += 1
            h = unit(h)
    assert checked == 9
    # the first unit shares its pre-activation with the stem's output; the first units of
    # stages 2 and 3 subsample and pad (option A); the other 6 are exactly the identity
    assert identities == 6


def test_default_init_is_not_the_identity() -> None:
    block = make_unit(8, 8).eval()  # eval: BN with its initial statistics (0, 1)
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        f = block.residual(x)
        y = block(x)
    assert torch.equal(y, f + x)  # the equation, exactly: nothing after the addition
    assert torch.isfinite(f).all()
    ratio = (f.norm() / x.norm()).item()  # He init: comparable to x, neither 0 nor exploding
    assert 0.2 < ratio < 5.0
    torch.testing.assert_close(y - x, f)


# ---------------------------------------------------------------- every variant


def _variants() -> list[tuple[object, str, str, str, str, bool]]:
    # (shortcut_op, shortcut, skip, placement, norm, bottleneck): every Table 1 shortcut_op
    # under the two placements of Table 1/3, the 1x1-conv shortcut (C) and the two controls,
    # every placement with every norm, and bottlenecks for every shortcut_op and placement
    ops = [None, *SHORTCUT_OPS]
    combos = {(op, "A", "identity", p, "batch", False) for op in ops for p in ("original", "full")}
    combos |= {
        (None, s, k, p, "batch", False)
        for s, k in (("C", "identity"), ("A", "none"), ("A", "detached"), ("C", "detached"))
        for p in ("original", "full")
    }
    combos |= {
        (None, "A", "identity", p, n, False) for p, n in itertools.product(PLACEMENTS, NORMS)
    }
    combos |= {(op, "B", "identity", "full", "batch", True) for op in ops}
    combos |= {(None, "B", "identity", p, "group", True) for p in PLACEMENTS}
    return sorted(combos, key=str)


@pytest.mark.parametrize("op, shortcut, skip, placement, norm, bottleneck", _variants())
def test_every_variant_builds_has_the_right_shapes_and_every_parameter_learns(
    op, shortcut: str, skip: str, placement: str, norm: str, bottleneck: bool
) -> None:
    spec = UnitSpec(
        bottleneck=bottleneck,
        placement=placement,  # type: ignore[arg-type]
        shortcut=shortcut,  # type: ignore[arg-type]
        shortcut_op=op,
        skip=skip,  # type: ignore[arg-type]
        norm=norm,  # type: ignore[arg-type]
        dim=1,
        gate_bias=-1.0,
    )
    model = net_1d(11 if bottleneck else 8, spec).train()  # one unit per stage
    x, y = torch.randn(4, 40), torch.randint(0, 10, (4,))
    e = 4 if bottleneck else 1
    assert stage_shapes(model, x) == [(4 * e, 40), (8 * e, 20), (16 * e, 10)]
    out = model(x)
    assert torch.isfinite(out).all()
    nn.functional.cross_entropy(out, y).backward()
    assert not silent_parameters(model)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # eval mode is deterministic, dropout included
        assert model(x).shape == (4, 10)


def test_2d_cifar_shapes_for_both_unit_types() -> None:
    x = torch.randn(2, 3, 32, 32)
    for model, widths in (
        (preact.preact_resnet(8), (16, 32, 64)),
        (preact.preact_resnet(11, spec=UnitSpec(bottleneck=True)), (64, 128, 256)),
    ):
        with torch.no_grad():
            assert stage_shapes(model, x) == [
                (widths[0], 32, 32),
                (widths[1], 16, 16),
                (widths[2], 8, 8),
            ]
            assert model(x).shape == (2, 10)


def test_dropout_shortcut_is_random_in_train_mode_and_the_identity_in_eval() -> None:
    block = make_unit(8, 8, spec=UnitSpec(shortcut_op="dropout"))
    x = torch.randn(4, 8, 4, 4)
    block.train()
    kept = block.shortcut(x) / x
    values = set(torch.unique(kept.round()).tolist())
    assert values == {0.0, 2.0}  # inverted dropout with p = 0.5: both outcomes occur
    block.eval()
    assert torch.equal(block.shortcut(x), x)
    assert torch.equal(block.skip_path(x), x)


# ---------------------------------------------------------------- the shortcut modules


def test_skip_paths_compute_what_table1_says() -> None:
    x = torch.randn(2, 8, 5, 5)

    def unit(**kwargs: object) -> ResidualBlock:
        return make_unit(8, 8, spec=UnitSpec(**kwargs)).eval()  # type: ignore[arg-type]

    torch.testing.assert_close(unit(shortcut_op="scale_shortcut").skip_path(x), 0.5 * x)
    both = unit(shortcut_op="scale_both", scale=0.3)
    torch.testing.assert_close(both.skip_path(x), 0.3 * x)
    torch.testing.assert_close(both.residual(x), 0.7 * both.residual[0](x))
    assert isinstance(both.residual[1], Scale) and both.residual[1].factor == 0.7

    for op, bias in (("exclusive_gate", -6.0), ("shortcut_gate", 0.0)):
        gated = unit(placement="original", shortcut_op=op, gate_bias=bias)
        assert isinstance(gated.shortcut, GatedPath) and gated.shortcut.carry
        g = torch.sigmoid(torch.tensor(bias))  # W_g = 0 at init: the bias alone sets the gate
        # the original unit has a ReLU after the addition: skip_path = relu((1 - g) x)
        torch.testing.assert_close(gated.skip_path(x), torch.relu((1 - g) * x))
        torch.testing.assert_close(gated.paths(x)[1], (1 - g) * x)
    exclusive = unit(placement="original", shortcut_op="exclusive_gate")
    assert isinstance(exclusive.residual, GatedPath) and not exclusive.residual.carry
    assert exclusive.residual.gate is exclusive.shortcut.gate  # one gate: g F(x) + (1 - g) x
    shortcut_only = unit(placement="original", shortcut_op="shortcut_gate")
    assert not isinstance(shortcut_only.residual, GatedPath)
    original = unit(placement="original")
    assert count_parameters(exclusive) == count_parameters(original) + 8 * 8 + 8  # W_g, b_g once
    assert count_parameters(shortcut_only) == count_parameters(original) + 8 * 8 + 8

    partial = unit(shortcut_op="partial", skip_fraction=0.25)
    assert isinstance(partial.shortcut[-1], ChannelMask)
    out = partial.skip_path(x)
    assert torch.equal(out[:, :2], x[:, :2]) and not out[:, 2:].any()
    pool = unit(shortcut_op="avgpool")
    torch.testing.assert_close(pool.skip_path(torch.ones_like(x)), torch.ones_like(x))
    torch.testing.assert_close(
        pool.skip_path(x), nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    )
    assert torch.equal(unit(shortcut_op="relu").skip_path(x), torch.relu(x))
    none = unit(skip="none")
    assert isinstance(none.shortcut, Zero) and float(none.skip_path(x)) == 0.0
    assert torch.equal(none(x), none.residual(x))  # contributes exactly zero
    detached = unit(skip="detached")
    assert isinstance(detached.shortcut[0], Detached)
    xg = x.clone().requires_grad_()
    assert torch.equal(detached.skip_path(xg), x) and not detached.skip_path(xg).requires_grad
    conv = unit(shortcut="C")  # Table 1's 1x1 conv shortcut, in every unit
    assert isinstance(conv.shortcut, Projection) and isinstance(conv.pre, nn.Sequential)
    torch.testing.assert_close(conv.skip_path(x), conv.shortcut(conv.pre(x)))


def test_detached_skip_passes_values_but_no_gradient_in_a_unit() -> None:
    x = torch.randn(2, 8, 5, 5)
    grads = {}
    for skip in ("identity", "none", "detached"):
        torch.manual_seed(0)
        block = make_unit(8, 8, spec=UnitSpec(skip=skip)).eval()  # type: ignore[arg-type]
        xg = x.clone().requires_grad_()
        block(xg).sum().backward()
        grads[skip] = xg.grad
    assert torch.equal(grads["detached"], grads["none"])
    torch.testing.assert_close(grads["identity"] - grads["none"], torch.ones_like(x))


@pytest.mark.parametrize("op", ["exclusive_gate", "shortcut_gate"])
@pytest.mark.parametrize("reshape", [False, True])
def test_gating_passes_gradcheck(op: str, reshape: bool) -> None:
    in_channels, planes, stride = (2, 3, 2) if reshape else (3, 3, 1)
    spec = UnitSpec(placement="original", shortcut_op=op, dim=1, gate_bias=-1.0)  # type: ignore[arg-type]
    block = make_unit(in_channels, planes, stride, spec=spec).double().train()
    gate = block.shortcut.gate
    with torch.no_grad():
        gate.conv.weight.normal_(0, 0.5)  # away from the zero init: a gate that depends on x
    x = torch.randn(4, in_channels, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))
    params = (
        gate.conv.weight.detach().clone().requires_grad_(),
        gate.conv.bias.detach().clone().requires_grad_(),
    )

    def with_gate(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        values = {"shortcut.gate.conv.weight": w, "shortcut.gate.conv.bias": b}
        if op == "exclusive_gate":  # the same gate also sits on the branch
            values |= {"residual.gate.conv.weight": w, "residual.gate.conv.bias": b}
        return torch.func.functional_call(block, values, (x.detach(),))

    assert torch.autograd.gradcheck(with_gate, params)


# ---------------------------------------------------------------- placements (Table 2)


@pytest.mark.parametrize(
    "placement, branch, after",
    [
        ("original", ["conv1", "norm1", "act1", "conv2", "norm2"], ["act1"]),
        ("bn_after_add", ["conv1", "norm1", "act1", "conv2"], ["norm1", "act1"]),
        ("relu_before_add", ["conv1", "norm1", "act1", "conv2", "norm2", "act2"], []),
        ("relu_only", ["act1", "conv1", "norm1", "act2", "conv2", "norm2"], []),
        ("full", ["norm1", "act1", "conv1", "norm2", "act2", "conv2"], []),
    ],
)
def test_placements_put_bn_and_relu_where_table2_says(placement, branch, after) -> None:
    block = make_unit(8, 8, spec=UnitSpec(placement=placement))
    assert type(block) is ResidualBlock and isinstance(block.pre, nn.Identity)
    assert [name for name, _ in block.residual.named_children()] == branch
    if after:
        assert [name for name, _ in block.post.named_children()] == after
    else:
        assert isinstance(block.post, nn.Identity)
    x = torch.randn(2, 8, 4, 4)
    block.eval()
    with torch.no_grad():
        torch.testing.assert_close(block(x), block.post(block.residual(x) + x))


def test_projection_shortcut_reads_the_preactivated_input() -> None:
    model = preact.preact_resnet(11, spec=UnitSpec(bottleneck=True))
    checked = 0
    for unit in (model.stages[0][0], model.stages[1][0]):  # 16 -> 64 and 64 -> 128 channels
        assert type(unit) is ResidualBlock
        assert [name for name, _ in unit.pre.named_children()] == ["norm1", "act1"]
        assert isinstance(unit.residual[0], nn.Conv2d)  # the branch starts at its conv
        assert isinstance(unit.shortcut, Projection)
        assert isinstance(unit.shortcut.bn, nn.Identity)  # a bare 1x1 conv, as the authors
        x = torch.randn(2, unit.pre.norm1.num_features, 8, 8)
        with torch.no_grad():
            unit.eval()
            h = unit.pre(x)
            torch.testing.assert_close(unit(x), unit.residual(h) + unit.shortcut(h))
            torch.testing.assert_close(unit.skip_path(x), unit.shortcut(h))
        checked += 1
    assert checked == 2
    # the first basic unit after the stem also shares its pre-activation (appendix of the paper)
    net110 = preact.preact_resnet110()
    first = net110.stages[0][0]
    assert isinstance(first.pre, nn.Sequential) and isinstance(first.shortcut, nn.Identity)
    # identity units keep BN -> ReLU inside the branch, so the shortcut stays clean
    assert isinstance(net110.stages[0][1].residual[0], nn.BatchNorm2d)
    assert isinstance(net110.stages[0][1].pre, nn.Identity)
    # option A where the shape changes in a basic net: padding, no pre-activation to share
    assert isinstance(net110.stages[1][0].shortcut, PadShortcut)


def test_pre_activation_nets_end_with_an_extra_activation() -> None:
    head = preact.preact_resnet(8).head
    assert isinstance(head.norm, nn.BatchNorm2d) and isinstance(head.act, nn.ReLU)
    original = preact.preact_resnet(8, spec=UnitSpec(placement="original"))
    assert not hasattr(original.head, "norm") and not hasattr(original.head, "act")
    assert [name for name, _ in original.stem.named_children()] == ["conv", "norm", "act"]
    assert [name for name, _ in preact.preact_resnet(8).stem.named_children()] == ["conv"]


# ---------------------------------------------------------------- normalisation


def test_norm_choices_reach_every_layer() -> None:
    kinds = {
        "batch": nn.BatchNorm1d,
        "group": nn.GroupNorm,
        "layer": nn.GroupNorm,
    }
    for norm, cls in kinds.items():
        model = net_1d(8, UnitSpec(norm=norm, dim=1))  # type: ignore[arg-type]
        norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.GroupNorm))]
        assert len(norms) == 7 and all(type(m) is cls for m in norms)  # 3 units x 2 + head
        if norm == "layer":
            assert all(m.num_groups == 1 for m in norms)
    model = net_1d(8, UnitSpec(norm="none", dim=1))
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.GroupNorm)) for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert all(m.bias is not None for m in convs)  # without a norm the convs need their bias


def test_no_inplace_activations() -> None:
    model = preact.preact_resnet(11, spec=UnitSpec(bottleneck=True, placement="original"))
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert relus and not any(m.inplace for m in relus)


# ---------------------------------------------------------------- bad input


def test_unknown_variant_names_raise_and_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="expected one of scale_both, scale_shortcut"):
        UnitSpec(shortcut_op="gated")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="original, bn_after_add, relu_before_add"):
        UnitSpec(placement="post")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch, group, layer, none"):
        UnitSpec(norm="instance")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown shortcut 'conv1x1': expected one of A, B, C"):
        UnitSpec(shortcut="conv1x1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown skip 'gated': expected one of identity, none"):
        UnitSpec(skip="gated")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        UnitSpec(activation="swish")
    with pytest.raises(ValueError, match="unknown dim 3"):
        UnitSpec(dim=3)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("scale", math.nan, "scale must be a finite number, got nan"),
        ("scale", math.inf, "scale must be a finite number, got inf"),
        ("gate_bias", math.nan, "gate_bias must be a finite number"),
        ("dropout", 1.0, r"dropout must be in \[0.0, 1.0\), got 1.0"),
        ("dropout", -0.1, r"dropout must be in \[0.0, 1.0\)"),
        ("skip_fraction", 0.0, r"skip_fraction must be in \(0.0, 1.0\], got 0.0"),
        ("skip_fraction", 1.5, r"skip_fraction must be in \(0.0, 1.0\]"),
    ],
)
def test_bad_numbers_in_the_spec_raise_naming_the_field(field, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        UnitSpec(**{field: value})


@pytest.mark.parametrize(
    "depth, bottleneck", [(110 + 1, True), (56 + 1, False), (10, False), (0, True), (20.0, False)]
)
def test_depth_must_fit_the_unit_type(depth, bottleneck: bool) -> None:
    with pytest.raises(ValueError, match=r"9n \+ 2" if bottleneck else r"6n \+ 2"):
        preact.preact_resnet(depth, spec=UnitSpec(bottleneck=bottleneck))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: preact.preact_resnet(8, in_channels=0), "in_channels must be an int >= 1, got 0"),
        (lambda: preact.preact_resnet(8, width=2.5), "width must be an int >= 1, got 2.5"),
        (lambda: preact.preact_resnet(8, num_classes=0), "num_classes must be an int >= 1"),
        (lambda: make_unit(8, 8, stride=0), "stride must be an int >= 1, got 0"),
        (lambda: make_unit(0, 8), "in_channels must be an int >= 1, got 0"),
        (lambda: make_unit(8, True), "planes must be an int >= 1, got True"),
    ],
)
def test_impossible_sizes_raise(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_wrong_input_shape_raises() -> None:
    with pytest.raises(ValueError, match=r"\(batch, 1, L\) or \(batch, L\), got \(2, 3, 40\)"):
        net_1d(8, UnitSpec(dim=1))(torch.randn(2, 3, 40))
    with pytest.raises(ValueError, match=r"\(batch, 3, H, W\), got \(2, 3, 32\)"):
        preact.preact_resnet(8)(torch.randn(2, 3, 32))


# ---------------------------------------------------------------- parameter counts


def test_preact_resnet110_has_the_parameters_of_resnet110() -> None:
    with torch.device("meta"):
        model = preact.preact_resnet110()
    assert [len(stage) for stage in model.stages] == [18, 18, 18]
    assert paper_rounding(count_parameters(model)) == "1.7M"  # He et al. 2016a Table 6
    # reordering BN and ReLU moves BN parameters around but keeps their total (ResNet-110,
    # option A, has 1,727,962 parameters: tests/test_resnet.py)
    assert count_parameters(model) == 1_727_962
    with torch.device("meta"):  # the builder forces basic units whatever the spec says
        forced = preact.preact_resnet110(spec=UnitSpec(bottleneck=True, placement="original"))
    assert count_parameters(forced) == 1_727_962


def test_preact_resnet164_parameters_match_the_paper() -> None:
    with torch.device("meta"):
        model = preact.preact_resnet164()
    assert [len(stage) for stage in model.stages] == [18, 18, 18]
    assert model.out_channels == 256
    assert count_parameters(model) == 1_703_258
    assert paper_rounding(count_parameters(model)) == "1.7M"  # He et al. 2016b Table 3


def test_preact_resnet1001_parameters_match_the_paper_without_norm_parameters() -> None:
    with torch.device("meta"):  # no memory, no forward pass
        model = preact.preact_resnet1001()
    assert [len(stage) for stage in model.stages] == [111, 111, 111]
    total = count_parameters(model)
    # the authors' released architecture (resnet-1k-layers) has 10.33M parameters in all; the
    # paper's "10.2M" is the count without BN's 0.15M scales and shifts
    assert total == 10_327_706
    assert paper_rounding(total - norm_parameters(model)) == "10.2M"


def test_shortcut_option_c_adds_a_projection_to_every_unit() -> None:
    with torch.device("meta"):
        a = preact.preact_resnet(20, spec=UnitSpec(placement="original"))
        c = preact.preact_resnet(20, spec=UnitSpec(placement="original", shortcut="C"))
    units = list(blocks(c))
    assert len(units) == 9 and all(isinstance(u.shortcut, Projection) for u in units)
    # per unit: a 1x1 conv and its BN (original placement: the projection is normalised)
    widths = [(16, 16)] * 3 + [(16, 32)] + [(32, 32)] * 2 + [(32, 64)] + [(64, 64)] * 2
    assert count_parameters(c) - count_parameters(a) == sum(i * o + 2 * o for i, o in widths)


# ---------------------------------------------------------------- skip paths across depth


def test_skip_path_chains_scale_by_lambda_per_unit() -> None:
    spec = UnitSpec(dim=1, shortcut_op="scale_shortcut", scale=0.5)
    model = net_1d(26, spec)
    units = list(model.stages[0])[1:]  # 3 shape-keeping units after the shared first one
    assert len(units) == 3
    x = torch.randn(2, 4, 40)
    h = x
    with torch.no_grad():
        for unit in units:
            h = unit.skip_path(h)
    torch.testing.assert_close(h, 0.5 ** len(units) * x)  # lambda^L
    first = model.stages[0][0]  # BN -> ReLU shared with the shortcut, then 0.5 x
    with torch.no_grad():
        torch.testing.assert_close(first.skip_path(x), 0.5 * first.pre(x))
    post = make_unit(4, 4, spec=UnitSpec(placement="original", dim=1))
    assert torch.equal(post.skip_path(x), torch.relu(x))  # f sits on the path
