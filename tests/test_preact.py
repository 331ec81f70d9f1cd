"""Tests of reslib.models.preact: identity at zero-init, every variant, gating gradients,
clear errors and the parameter counts of He et al. 2016b (arXiv 1603.05027)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from reslib.models import preact, resnet
from reslib.models.preact import (
    NORMS,
    PLACEMENTS,
    SHORTCUT_VARIANTS,
    Gated,
    PostActBlock,
    PreActBlock,
    UnitSpec,
    make_unit,
)
from reslib.models.resnet import count_parameters


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


# ---------------------------------------------------------------- identity at zero-init


@pytest.mark.parametrize(
    "spec, shape",
    [
        (UnitSpec(zero_init=True), (2, 16, 8, 8)),
        (UnitSpec(zero_init=True, norm="group"), (2, 16, 8, 8)),
        (UnitSpec(zero_init=True, norm="none"), (2, 16, 8, 8)),  # the last conv has a bias
        (UnitSpec(zero_init=True, bottleneck=True), (2, 64, 8, 8)),
        (UnitSpec(zero_init=True, dim=1), (3, 16, 40)),
    ],
)
@pytest.mark.parametrize("train", [True, False])
def test_zero_init_preactivation_unit_is_exactly_the_identity(spec, shape, train: bool) -> None:
    planes = shape[1] // spec.expansion
    block = make_unit(shape[1], planes, spec=spec).train(train)
    assert isinstance(block, PreActBlock) and isinstance(block.shortcut, nn.Identity)
    x = torch.randn(*shape)
    with torch.no_grad():
        assert torch.equal(block(x), x)  # x_{l+1} = x_l + 0


def test_zero_init_network_every_identity_unit_is_the_identity() -> None:
    model = preact.preact_resnet1d(20, width=4, zero_init_residual=True)
    h = model.stem(model.prepare(torch.randn(3, 40)))
    with torch.no_grad():
        for unit in model.units():
            if isinstance(unit, PreActBlock) and isinstance(unit.shortcut, nn.Identity):
                assert torch.equal(unit(h), h)
            h = unit(h)


def test_default_init_is_not_the_identity() -> None:
    block = make_unit(8, 8)
    x = torch.randn(2, 8, 6, 6)
    assert not torch.allclose(block(x), x)


# ---------------------------------------------------------------- every variant


def _variants() -> list[tuple[str, str, str, bool]]:
    # every shortcut variant under the two placements of Table 1/3, every placement with every
    # norm, and bottlenecks for every shortcut and placement: 61 small combinations
    combos = {(s, p, "batch", False) for s in SHORTCUT_VARIANTS for p in ("original", "full")}
    combos |= {("identity", p, n, False) for p, n in itertools.product(PLACEMENTS, NORMS)}
    combos |= {(s, "full", "batch", True) for s in SHORTCUT_VARIANTS}
    combos |= {("identity", p, "group", True) for p in PLACEMENTS}
    return sorted(combos)


@pytest.mark.parametrize("shortcut, placement, norm, bottleneck", _variants())
def test_every_variant_builds_has_the_right_shapes_and_every_parameter_learns(
    shortcut: str, placement: str, norm: str, bottleneck: bool
) -> None:
    model = preact.preact_resnet1d(
        11 if bottleneck else 8,  # one unit per stage
        width=4,
        bottleneck=bottleneck,
        placement=placement,  # type: ignore[arg-type]
        shortcut=shortcut,  # type: ignore[arg-type]
        norm=norm,  # type: ignore[arg-type]
        gate_bias=-1.0,
    ).train()  # the dropout shortcut is active in train mode only
    x, y = torch.randn(4, 40), torch.randint(0, 10, (4,))
    h = model.stem(model.prepare(x))
    shapes = []
    for stage in model.stages:
        h = stage(h)
        shapes.append(tuple(h.shape[1:]))
    e = 4 if bottleneck else 1
    assert shapes == [(4 * e, 40), (8 * e, 20), (16 * e, 10)]
    nn.functional.cross_entropy(model(x), y).backward()
    assert not silent_parameters(model)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # eval mode is deterministic, dropout included
        assert model(x).shape == (4, 10)


def test_2d_cifar_shapes_for_both_unit_types() -> None:
    x = torch.randn(2, 3, 32, 32)
    for model, widths in (
        (preact.preact_resnet(8), (16, 32, 64)),
        (preact.preact_resnet(11, bottleneck=True), (64, 128, 256)),
    ):
        h = model.stem(model.prepare(x))
        shapes = []
        for stage in model.stages:
            h = stage(h)
            shapes.append(tuple(h.shape[1:]))
        assert shapes == [(widths[0], 32, 32), (widths[1], 16, 16), (widths[2], 8, 8)]
        assert model(x).shape == (2, 10)


def test_dropout_shortcut_is_random_in_train_mode_and_the_identity_in_eval() -> None:
    block = make_unit(8, 8, spec=UnitSpec(shortcut="dropout"))
    x = torch.randn(2, 8, 4, 4)
    block.train()
    kept = block.shortcut(x)
    assert set(torch.unique(kept / x).round().tolist()) <= {0.0, 2.0}  # inverted dropout
    block.eval()
    assert torch.equal(block.shortcut(x), x)


# ---------------------------------------------------------------- the shortcut modules


def test_shortcut_modules_compute_what_table1_says() -> None:
    x = torch.randn(2, 8, 5, 5)
    spec = UnitSpec(placement="original")
    scale = make_unit(8, 8, spec=UnitSpec(placement="original", shortcut="scale_shortcut"))
    torch.testing.assert_close(scale.shortcut(x), 0.5 * x)
    both = make_unit(8, 8, spec=UnitSpec(placement="original", shortcut="scale_both", scale=0.3))
    torch.testing.assert_close(both.shortcut(x), 0.3 * x)
    torch.testing.assert_close(both.residual(x), 0.7 * both.residual[0](x))

    gated = make_unit(8, 8, spec=UnitSpec(placement="original", shortcut="exclusive_gate"))
    assert isinstance(gated.residual, Gated) and isinstance(gated.shortcut, Gated)
    assert gated.residual.gate is gated.shortcut.gate  # one gate: g F(x) + (1 - g) x
    g = torch.sigmoid(torch.tensor(-6.0))  # W_g = 0 at init: the bias alone sets the gate
    torch.testing.assert_close(gated.shortcut(x), (1 - g) * x)
    plain_twin = make_unit(8, 8, spec=spec)
    assert count_parameters(gated) == count_parameters(plain_twin) + 8 * 8 + 8  # W_g, b_g once

    partial = make_unit(8, 8, spec=UnitSpec(shortcut="partial", skip_fraction=0.25))
    out = partial.shortcut(x)
    assert torch.equal(out[:, :2], x[:, :2]) and not out[:, 2:].any()
    pool = make_unit(8, 8, spec=UnitSpec(shortcut="avgpool")).shortcut
    torch.testing.assert_close(pool(torch.ones_like(x)), torch.ones_like(x))  # keeps constants
    relu = make_unit(8, 8, spec=UnitSpec(shortcut="relu")).shortcut
    assert torch.equal(relu(x), torch.relu(x))
    assert not make_unit(8, 8, spec=UnitSpec(shortcut="none")).shortcut(x).any()
    detached = make_unit(8, 8, spec=UnitSpec(shortcut="detached")).shortcut
    assert not detached(x.requires_grad_()).requires_grad


@pytest.mark.parametrize("shortcut", ["exclusive_gate", "shortcut_gate"])
@pytest.mark.parametrize("reshape", [False, True])
def test_gating_passes_gradcheck(shortcut: str, reshape: bool) -> None:
    in_channels, planes, stride = (2, 3, 2) if reshape else (3, 3, 1)
    spec = UnitSpec(placement="original", shortcut=shortcut, dim=1, gate_bias=-1.0)  # type: ignore[arg-type]
    block = make_unit(in_channels, planes, stride, spec=spec).double().train()
    gate = (block.shortcut if shortcut == "shortcut_gate" else block.residual).gate
    with torch.no_grad():
        gate.conv.weight.normal_(0, 0.5)  # away from the zero init: a gate that depends on x
    x = torch.randn(4, in_channels, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))
    names = ["conv.weight", "conv.bias"]
    params = tuple(
        getattr(gate.conv, n.split(".")[1]).detach().clone().requires_grad_() for n in names
    )

    def with_gate(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        prefix = "shortcut.gate." if shortcut == "shortcut_gate" else "residual.gate."
        values = {prefix + "conv.weight": w, prefix + "conv.bias": b}
        if shortcut == "exclusive_gate":  # the same gate also sits on the shortcut
            values |= {"shortcut.gate.conv.weight": w, "shortcut.gate.conv.bias": b}
        return torch.func.functional_call(block, values, (x.detach(),))

    assert torch.autograd.gradcheck(with_gate, params)


# ---------------------------------------------------------------- placements (Table 2)


@pytest.mark.parametrize(
    "placement, branch, after, block_type",
    [
        ("original", ["conv1", "norm1", "act1", "conv2", "norm2"], ["act1"], PostActBlock),
        ("bn_after_add", ["conv1", "norm1", "act1", "conv2"], ["norm1", "act1"], PostActBlock),
        ("relu_before_add", ["conv1", "norm1", "act1", "conv2", "norm2", "act2"], [], PreActBlock),
        ("relu_only", ["act1", "conv1", "norm1", "act2", "conv2", "norm2"], [], PreActBlock),
        ("full", ["norm1", "act1", "conv1", "norm2", "act2", "conv2"], [], PreActBlock),
    ],
)
def test_placements_put_bn_and_relu_where_table2_says(placement, branch, after, block_type):
    block = make_unit(8, 8, spec=UnitSpec(placement=placement))
    assert type(block) is block_type
    assert [name for name, _ in block.residual.named_children()] == branch
    if after:
        assert [name for name, _ in block.after.named_children()] == after


def test_projection_shortcut_reads_the_preactivated_input() -> None:
    model = preact.preact_resnet(11, bottleneck=True)
    for unit in (model.stages[0][0], model.stages[1][0]):  # 16 -> 64 and 64 -> 128 channels
        assert isinstance(unit, nn.Sequential) and list(dict(unit.named_children())) == [
            "pre",
            "block",
        ]
        assert isinstance(unit.block.residual[0], nn.Conv2d)  # the branch starts at its conv
        assert isinstance(unit.block.shortcut, resnet.Projection)
        assert isinstance(unit.block.shortcut.bn, nn.Identity)  # a bare 1x1 conv, as the authors
        x = torch.randn(2, unit.pre.norm1.num_features, 8, 8)
        with torch.no_grad():
            unit.eval()
            h = unit.pre(x)
            torch.testing.assert_close(unit(x), unit.block.residual(h) + unit.block.shortcut(h))
    # the first basic unit after the stem also shares its pre-activation (appendix of the paper)
    first = preact.preact_resnet110().stages[0][0]
    assert isinstance(first, nn.Sequential) and isinstance(first.block.shortcut, nn.Identity)
    # identity units keep BN -> ReLU inside the branch, so the shortcut stays clean
    assert isinstance(preact.preact_resnet110().stages[0][1].residual[0], nn.BatchNorm2d)


def test_pre_activation_nets_end_with_an_extra_activation() -> None:
    head = preact.preact_resnet(8).head
    assert isinstance(head.norm, nn.BatchNorm2d) and isinstance(head.act, nn.ReLU)
    assert not hasattr(preact.preact_resnet(8, placement="original").head, "norm")


# ---------------------------------------------------------------- normalisation


def test_norm_choices() -> None:
    assert isinstance(preact.make_norm("batch", 8, dim=1), nn.BatchNorm1d)
    assert isinstance(preact.make_norm("batch", 8), nn.BatchNorm2d)
    group = preact.make_norm("group", 64)
    assert isinstance(group, nn.GroupNorm) and group.num_groups == 32
    layer = preact.make_norm("layer", 64)
    assert isinstance(layer, nn.GroupNorm) and layer.num_groups == 1
    assert isinstance(preact.make_norm("none", 8), nn.Identity)
    assert [preact.group_count(c) for c in (1, 2, 6, 8, 16, 64, 256)] == [1, 1, 3, 4, 8, 32, 32]
    model = preact.preact_resnet1d(8, width=4, norm="none")
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.GroupNorm)) for m in model.modules())


def test_no_inplace_activations() -> None:
    model = preact.preact_resnet(11, bottleneck=True, placement="original")
    assert all(not m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


# ---------------------------------------------------------------- bad input


def test_unknown_variant_names_raise_and_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="expected one of identity, scale_both, scale_shortcut"):
        preact.preact_resnet110(shortcut="gated")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="original, bn_after_add, relu_before_add"):
        preact.preact_resnet1d(8, placement="post")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch, group, layer, none"):
        UnitSpec(norm="instance")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected one of A, B"):
        UnitSpec(option="C")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="activation"):
        UnitSpec(activation="swish")
    with pytest.raises(ValueError, match="dropout"):
        UnitSpec(dropout=1.0)
    with pytest.raises(ValueError, match="skip_fraction"):
        UnitSpec(skip_fraction=0.0)


@pytest.mark.parametrize(
    "depth, bottleneck", [(110 + 1, True), (56 + 1, False), (10, False), (0, True)]
)
def test_depth_must_fit_the_unit_type(depth: int, bottleneck: bool) -> None:
    with pytest.raises(ValueError, match="9n \\+ 2" if bottleneck else "6n \\+ 2"):
        preact.preact_resnet(depth, bottleneck=bottleneck)


def test_wrong_input_shape_raises() -> None:
    with pytest.raises(ValueError, match=r"\(batch, 1, L\)"):
        preact.preact_resnet1d(8, width=4)(torch.randn(2, 3, 40))


# ---------------------------------------------------------------- parameter counts


def test_preact_resnet110_has_the_parameters_of_resnet110() -> None:
    model = preact.preact_resnet110()
    assert [len(stage) for stage in model.stages] == [18, 18, 18]
    assert paper_rounding(count_parameters(model)) == "1.7M"  # He et al. 2016a Table 6
    # reordering BN and ReLU moves BN parameters around but keeps their total
    assert count_parameters(model) == count_parameters(resnet.resnet110()) == 1_727_962


def test_preact_resnet164_parameters_match_the_paper() -> None:
    model = preact.preact_resnet164()
    assert [len(stage) for stage in model.stages] == [18, 18, 18]
    assert model.out_channels == 256
    assert count_parameters(model) == 1_703_258
    assert paper_rounding(count_parameters(model)) == "1.7M"  # He et al. 2016b Table 3


def test_preact_resnet1001_parameters_match_the_paper_without_norm_parameters() -> None:
    model = preact.preact_resnet1001()  # about a second; no forward pass
    assert [len(stage) for stage in model.stages] == [111, 111, 111]
    total = count_parameters(model)
    # the authors' released architecture (resnet-1k-layers) has 10.33M parameters in all; the
    # paper's "10.2M" is the count without BN's 0.15M scales and shifts
    assert total == 10_327_706
    assert paper_rounding(total - norm_parameters(model)) == "10.2M"


def test_shortcut_path_is_the_unit_without_its_branch() -> None:
    model = preact.preact_resnet1d(26, width=4, shortcut="scale_shortcut", scale=0.5)
    units = list(model.stages[0])[1:]  # 3 shape-keeping units after the shared first one
    x = torch.randn(2, 4, 40)
    h = x
    for unit in units:
        h = preact.shortcut_path(unit, h)
    torch.testing.assert_close(h, 0.5 ** len(units) * x)  # lambda^L
    first = model.stages[0][0]  # BN -> ReLU shared with the shortcut, then 0.5 x
    with torch.no_grad():
        torch.testing.assert_close(preact.shortcut_path(first, x), 0.5 * first.pre(x))
    post = make_unit(4, 4, spec=UnitSpec(placement="original", dim=1))
    assert torch.equal(preact.shortcut_path(post, x), torch.relu(x))  # f sits on the path
    with pytest.raises(ValueError, match="make_unit"):
        preact.shortcut_path(nn.Linear(4, 4), x)
