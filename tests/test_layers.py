"""reslib.layers, the ground floor: input checks, the norm/activation/shortcut tables, option A
padding, projections, gates, the block protocol (residual, gated, concatenating), initialisers
and DropPath."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from reslib.layers import (
    ACTIVATIONS,
    INITS,
    NORMS,
    SHORTCUTS,
    SKIPS,
    ChannelMask,
    ConcatBlock,
    Detached,
    DropPath,
    Gate,
    GatedBlock,
    GatedPath,
    LearnedScale,
    PadShortcut,
    Projection,
    ResidualBlock,
    Scale,
    Zero,
    blocks,
    check_choice,
    check_float,
    check_int,
    conv_layer,
    global_pool,
    group_count,
    init_weights,
    make_activation,
    make_norm,
    make_shortcut,
    named_blocks,
    zero_last_layer_,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize("value", [True, False, 2.0, "3", None, 0, -1])
def test_check_int_rejects_bools_floats_and_small_values_naming_the_field(value) -> None:
    with pytest.raises(ValueError, match=r"^depth must be an int >= 1, got "):
        check_int("depth", value)


def test_check_int_accepts_ints_from_the_minimum() -> None:
    assert check_int("depth", 1) == 1
    assert check_int("padding", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=r"padding must be an int >= 0, got -1"):
        check_int("padding", -1, minimum=0)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "0.5", None])
def test_check_float_rejects_non_finite_and_non_numbers_naming_the_field(value) -> None:
    with pytest.raises(ValueError, match=r"^scale must be a finite number, got "):
        check_float("scale", value)


def test_check_float_bounds_open_and_closed() -> None:
    assert check_float("p", 0, low=0.0, high=1.0, high_open=True) == 0.0
    assert isinstance(check_float("p", 0, low=0.0, high=1.0), float)
    with pytest.raises(ValueError, match=r"p must be in \[0.0, 1.0\), got 1.0"):
        check_float("p", 1.0, low=0.0, high=1.0, high_open=True)
    with pytest.raises(ValueError, match=r"p must be in \[0.0, 1.0\), got -0.1"):
        check_float("p", -0.1, low=0.0, high=1.0, high_open=True)
    with pytest.raises(ValueError, match=r"fraction must be in \(0.0, 1.0\], got 0"):
        check_float("fraction", 0, low=0.0, high=1.0, low_open=True)
    assert check_float("fraction", 1, low=0.0, high=1.0, low_open=True) == 1.0


def test_check_choice_returns_the_value_or_lists_the_valid_ones() -> None:
    assert check_choice("norm", "group", NORMS) == "group"
    with pytest.raises(ValueError, match=r"unknown norm 'instance': expected one of batch, group"):
        check_choice("norm", "instance", NORMS)
    with pytest.raises(ValueError, match=r"unknown activation \['relu'\]"):  # unhashable
        check_choice("activation", ["relu"], ACTIVATIONS)


def test_check_choice_rejects_a_bool_for_an_int_choice() -> None:
    with pytest.raises(ValueError, match="dim"):
        conv_layer(True)  # type: ignore[arg-type]


# ---------------------------------------------------------------- norms and activations


def test_make_norm_table() -> None:
    assert isinstance(make_norm("batch", 8), nn.BatchNorm2d)
    assert isinstance(make_norm("batch", 8, dim=1), nn.BatchNorm1d)
    assert isinstance(make_norm("batch", 8, dim=0), nn.BatchNorm1d)
    group = make_norm("group", 64)
    assert isinstance(group, nn.GroupNorm) and group.num_groups == 32
    layer = make_norm("layer", 64)
    assert isinstance(layer, nn.GroupNorm) and layer.num_groups == 1
    assert isinstance(make_norm("none", 8), nn.Identity)
    assert [group_count(c) for c in (1, 2, 3, 6, 8, 16, 64, 256)] == [1, 1, 1, 3, 4, 8, 32, 32]
    for c in range(1, 130):  # each group holds >= 2 channels (but for one channel), <= 32 groups
        g = group_count(c)
        assert c % g == 0 and g <= 32 and (c // g >= 2 or c == 1), c


def test_layer_norm_on_feature_vectors_equals_nn_layernorm() -> None:
    ours, theirs = make_norm("layer", 12, dim=0), nn.LayerNorm(12)
    with torch.no_grad():  # the same random affine parameters in both
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            p.copy_(torch.randn_like(p))
            q.copy_(p)
    x = 3 * torch.randn(5, 12) + 1
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-6, rtol=1e-5)
    assert not torch.allclose(ours(x), x)  # it did normalise something


def test_make_norm_rejects_unknown_names_and_bad_sizes() -> None:
    with pytest.raises(ValueError, match="expected one of batch, group, layer, none"):
        make_norm("instance", 8)
    with pytest.raises(ValueError, match="channels must be an int >= 1, got 0"):
        make_norm("batch", 0)
    with pytest.raises(ValueError, match="unknown dim 3"):
        make_norm("batch", 8, dim=3)


def test_activations_are_fresh_not_in_place_and_named() -> None:
    expected = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU,
        "elu": nn.ELU,
        "leaky_relu": nn.LeakyReLU,
        "identity": nn.Identity,
    }
    assert set(ACTIVATIONS) == set(expected)
    for name, cls in expected.items():
        a, b = make_activation(name), make_activation(name)
        assert type(a) is cls and a is not b
        assert not getattr(a, "inplace", False)
    with pytest.raises(ValueError, match="unknown activation 'swish'") as info:
        make_activation("swish")
    assert all(name in str(info.value) for name in ACTIVATIONS)


def test_conv_layer_and_global_pool_by_dimension() -> None:
    assert conv_layer(1) is nn.Conv1d and conv_layer(2) is nn.Conv2d
    assert global_pool(1)(torch.randn(2, 3, 7)).shape == (2, 3, 1)
    assert global_pool(2)(torch.randn(2, 3, 5, 4)).shape == (2, 3, 1, 1)
    with pytest.raises(ValueError, match="unknown dim 3: expected one of 1, 2"):
        conv_layer(3)


# ---------------------------------------------------------------- shortcuts


def test_pad_shortcut_subsamples_and_zero_pads() -> None:
    pad = PadShortcut(2, 5, stride=2)
    x = torch.randn(1, 2, 4, 4)
    y = pad(x)
    assert y.shape == (1, 5, 2, 2)
    assert torch.equal(y[:, :2], x[:, :, ::2, ::2])
    assert not y[:, 2:].any()
    x1 = torch.randn(3, 2, 7)  # 1-D, odd length: the first of every two positions, 7 -> 4
    y1 = pad(x1)
    assert y1.shape == (3, 5, 4)
    assert torch.equal(y1[:, :2], x1[:, :, ::2]) and not y1[:, 2:].any()
    assert _count(pad) == 0
    same = PadShortcut(3, 3, stride=1)
    assert torch.equal(same(x1.repeat(1, 2, 1)[:, :3]), x1.repeat(1, 2, 1)[:, :3])
    # the length matches a strided 3x3 convolution, so both paths can be added
    for length in (40, 41):
        z = torch.randn(2, 3, length)
        assert PadShortcut(3, 3, 2)(z).shape == nn.Conv1d(3, 3, 3, stride=2, padding=1)(z).shape


def test_pad_shortcut_rejects_fewer_channels_and_bad_strides() -> None:
    with pytest.raises(ValueError, match="option A can only add channels"):
        PadShortcut(8, 4)
    with pytest.raises(ValueError, match="stride must be an int >= 1, got 0"):
        PadShortcut(4, 8, stride=0)


@pytest.mark.parametrize("dim, spatial", [(2, (8, 8)), (1, (8,))])
def test_projection_shape_and_parameters(dim: int, spatial: tuple[int, ...]) -> None:
    proj = Projection(4, 8, 2, dim=dim)
    x = torch.randn(2, 4, *spatial)
    assert proj(x).shape == (2, 8, *(s // 2 for s in spatial))
    assert isinstance(proj.conv, conv_layer(dim)) and proj.conv.bias is None
    assert _count(proj) == 4 * 8 + 2 * 8  # 1x1 conv + BN gamma and beta
    bare = Projection(4, 8, norm_layer=lambda c: nn.Identity(), dim=dim)
    assert isinstance(bare.bn, nn.Identity) and _count(bare) == 32


@pytest.mark.parametrize(
    "shortcut, in_c, out_c, stride, expected",
    [
        ("A", 4, 4, 1, nn.Identity),
        ("A", 4, 8, 2, PadShortcut),
        ("B", 4, 4, 1, nn.Identity),
        ("B", 4, 8, 2, Projection),
        ("B", 4, 4, 2, Projection),
        ("C", 4, 4, 1, Projection),
        ("C", 4, 8, 2, Projection),
    ],
)
def test_make_shortcut_options(shortcut, in_c, out_c, stride, expected) -> None:
    path = make_shortcut(in_c, out_c, stride, shortcut=shortcut)
    assert type(path) is expected
    x = torch.randn(2, in_c, 6, 6)
    assert path(x).shape == (2, out_c, 6 // stride, 6 // stride)
    assert isinstance(make_shortcut(in_c, out_c, stride, shortcut=shortcut, skip="none"), Zero)
    detached = make_shortcut(in_c, out_c, stride, shortcut=shortcut, skip="detached")
    assert isinstance(detached, nn.Sequential) and isinstance(detached[0], Detached)
    assert type(detached[1]) is expected


def test_make_shortcut_rejects_unknown_names_and_bad_sizes() -> None:
    with pytest.raises(ValueError, match="unknown shortcut 'D': expected one of A, B, C"):
        make_shortcut(4, 4, shortcut="D")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown skip 'gated': expected one of identity, none"):
        make_shortcut(4, 4, skip="gated")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stride must be an int >= 1, got 0"):
        make_shortcut(4, 4, 0)
    with pytest.raises(ValueError, match="in_channels must be an int >= 1, got 0"):
        make_shortcut(0, 4)
    with pytest.raises(ValueError, match="out_channels must be an int >= 1, got 2.5"):
        make_shortcut(4, 2.5)  # type: ignore[arg-type]
    assert SHORTCUTS == ("A", "B", "C") and SKIPS == ("identity", "none", "detached")


def test_zero_contributes_nothing_and_passes_no_gradient() -> None:
    x = torch.randn(2, 3, 5, requires_grad=True)
    z = Zero()(x)
    assert z.shape == () and float(z) == 0.0 and not z.requires_grad
    branch = nn.Conv1d(3, 3, 3, padding=1)
    assert torch.equal(ResidualBlock(branch, Zero())(x), branch(x))


def test_detached_passes_the_value_but_no_gradient() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    out = Detached()(x)
    assert torch.equal(out, x) and not out.requires_grad

    branch = nn.Linear(4, 4)
    grads = {}
    for skip in SKIPS:
        x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
        ResidualBlock(branch, make_shortcut(4, 4, skip=skip)).forward(x).sum().backward()
        grads[skip] = x.grad
    assert torch.equal(grads["detached"], grads["none"])  # only the branch's gradient
    torch.testing.assert_close(grads["identity"] - grads["none"], torch.ones(3, 4))  # d(sum x)/dx


def test_scale_multiplies_and_rejects_non_finite_factors() -> None:
    x = torch.randn(2, 3)
    assert torch.equal(Scale(0.5)(x), 0.5 * x)
    assert Scale(2).factor == 2.0 and _count(Scale(2)) == 0
    with pytest.raises(ValueError, match="factor must be a finite number, got nan"):
        Scale(math.nan)


def test_gate_starts_at_sigmoid_of_its_bias_and_gated_paths_share_it() -> None:
    gate = Gate(4, 6, 2, bias=-6.0)
    assert not gate.conv.weight.any()
    x = torch.randn(2, 4, 8, 8)
    g = gate(x)
    assert g.shape == (2, 6, 4, 4)
    torch.testing.assert_close(g, torch.full_like(g, 1 / (1 + math.exp(6.0))))
    with torch.no_grad():
        gate.conv.weight.normal_()
    g = gate(x)
    assert ((g > 0) & (g < 1)).all() and g.std() > 0  # now it depends on x
    path = PadShortcut(4, 6, 2)
    torch.testing.assert_close(GatedPath(path, gate, carry=True)(x), (1 - g) * path(x))
    torch.testing.assert_close(GatedPath(path, gate, carry=False)(x), g * path(x))
    gate.reset_parameters()
    assert not gate.conv.weight.any() and torch.equal(gate.conv.bias, torch.full((6,), -6.0))
    with pytest.raises(ValueError, match="gate bias must be a finite number"):
        Gate(4, 4, bias=math.inf)


def test_channel_mask_zeroes_the_right_channels() -> None:
    x = torch.randn(2, 8, 3, 3)
    mask = ChannelMask(8, 0.25)
    assert mask.keep == 2
    out = mask(x)
    assert torch.equal(out[:, :2], x[:, :2]) and not out[:, 2:].any()
    x1 = torch.randn(2, 8, 5)  # 1-D
    assert torch.equal(ChannelMask(8, 0.5)(x1)[:, :4], x1[:, :4])
    assert not ChannelMask(8, 0.5)(x1)[:, 4:].any()
    assert torch.equal(ChannelMask(8, 1.0)(x), x)
    assert ChannelMask(8, 0.01).keep == 1  # at least one channel passes
    assert "mask" not in ChannelMask(8, 0.5).state_dict()  # not saved: rebuilt from the spec
    for fraction in (0.0, 1.5, math.nan):
        with pytest.raises(ValueError, match="fraction must be"):
            ChannelMask(8, fraction)


# ---------------------------------------------------------------- the block protocol


def _linear(features: int = 4, bias: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.Linear(features, features, bias=bias), nn.Tanh(), nn.Linear(4, 4))


def test_residual_block_is_post_of_residual_plus_shortcut_of_pre() -> None:
    pre, post, shortcut = nn.Linear(4, 4), nn.Tanh(), Scale(0.5)
    block = ResidualBlock(_linear(), shortcut, pre=pre, post=post)
    x = torch.randn(3, 4)
    h = pre(x)
    torch.testing.assert_close(block(x), torch.tanh(block.residual(h) + 0.5 * h))
    branch, short = block.paths(x)
    torch.testing.assert_close(branch, block.residual(h))
    torch.testing.assert_close(short, 0.5 * h)
    torch.testing.assert_close(block.skip_path(x), torch.tanh(0.5 * h))
    plain = ResidualBlock(_linear())  # defaults: identities, never None
    assert all(isinstance(m, nn.Identity) for m in (plain.pre, plain.shortcut, plain.post))


def test_residual_block_zero_init_last_is_exactly_its_skip_path_and_the_identity() -> None:
    block = ResidualBlock(_linear(), Scale(0.5), pre=nn.Linear(4, 4), post=nn.Tanh())
    block.zero_init_last()
    x = torch.randn(3, 4)
    assert not block.residual[-1].weight.any() and not block.residual[-1].bias.any()
    assert torch.equal(block(x), block.skip_path(x))
    identity = ResidualBlock(_linear())
    identity.zero_init_last()
    assert torch.equal(identity(x), x)
    branch, shortcut = identity.paths(x)
    assert not branch.any() and torch.equal(shortcut, x)


def test_gated_block_obeys_the_protocol() -> None:
    gate = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid())
    block = GatedBlock(_linear(), gate)
    x = torch.randn(5, 4)
    t = gate(x)
    expected = t * block.residual(x) + (1 - t) * x
    torch.testing.assert_close(block(x), expected)
    branch, shortcut = block.paths(x)
    torch.testing.assert_close(branch + shortcut, expected)
    torch.testing.assert_close(block.skip_path(x), (1 - t) * x)
    block.zero_init_last()
    assert gate[0].weight.any()  # the gate is not the branch: it keeps its weights
    assert torch.equal(block(x), block.skip_path(x))
    projected = GatedBlock(
        nn.Linear(4, 6), nn.Sequential(nn.Linear(4, 6), nn.Sigmoid()), nn.Linear(4, 6)
    )
    assert projected(x).shape == (5, 6)


def test_concat_block_obeys_the_protocol() -> None:
    branch = nn.Conv1d(3, 2, 3, padding=1)
    block = ConcatBlock(branch)
    x = torch.randn(2, 3, 7)
    y = block(x)
    assert y.shape == (2, 5, 7)
    assert torch.equal(y[:, :3], x) and torch.equal(y[:, 3:], branch(x))
    f, h = block.paths(x)
    assert torch.equal(f, branch(x)) and torch.equal(h, x)
    skip = block.skip_path(x)
    assert skip.shape == y.shape and torch.equal(skip[:, :3], x) and not skip[:, 3:].any()
    post = nn.Conv1d(5, 4, 1)
    with_post = ConcatBlock(nn.Conv1d(3, 2, 3, padding=1), post=post)
    torch.testing.assert_close(
        with_post.skip_path(x), post(torch.cat([x, torch.zeros(2, 2, 7)], dim=1))
    )
    with_post.zero_init_last()
    assert torch.equal(with_post(x), with_post.skip_path(x))
    features = ConcatBlock(nn.Linear(4, 3), dim=-1)
    assert features(torch.randn(5, 4)).shape == (5, 7)


def test_learned_scale_is_rezero() -> None:
    scale = LearnedScale()
    assert scale.weight.item() == 0.0 and scale.weight.requires_grad
    x = torch.randn(3, 4)
    assert not scale(x).any()
    block = ResidualBlock(nn.Sequential(nn.Linear(4, 4), LearnedScale(0.7)))
    torch.testing.assert_close(block(x), x + 0.7 * block.residual[0](x))
    block.zero_init_last()  # the scalar alpha is the last weight: alpha = 0
    assert block.residual[1].weight.item() == 0.0 and block.residual[0].weight.any()
    assert torch.equal(block(x), x)


def test_named_blocks_finds_nested_blocks_in_definition_order() -> None:
    inner = ResidualBlock(nn.Linear(4, 4))
    outer = ResidualBlock(nn.Sequential(nn.Linear(4, 4), inner))
    gated = GatedBlock(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.Sigmoid()))
    model = nn.Sequential(
        nn.Linear(4, 4), outer, nn.ReLU(), gated, ConcatBlock(nn.Linear(4, 2), dim=-1)
    )
    found = named_blocks(model)
    assert [name for name, _ in found] == ["1", "1.residual.1", "3", "4"]
    assert [b for _, b in found] == [outer, inner, gated, model[4]]
    assert list(blocks(model)) == [b for _, b in found]
    assert named_blocks(nn.Sequential(nn.Linear(2, 2))) == []


# ---------------------------------------------------------------- initialisers


def test_init_schemes() -> None:
    layer = nn.Sequential(nn.Linear(1000, 500))
    init_weights(layer, "kaiming")
    assert layer[0].weight.std().item() == pytest.approx((2 / 1000) ** 0.5, rel=0.02)
    assert torch.equal(layer[0].bias, torch.zeros(500))
    init_weights(layer, "kaiming", mode="fan_out")
    assert layer[0].weight.std().item() == pytest.approx((2 / 500) ** 0.5, rel=0.02)
    init_weights(layer, "xavier")
    assert layer[0].weight.std().item() == pytest.approx((2 / 1500) ** 0.5, rel=0.02)
    before = layer[0].weight.clone()
    init_weights(layer, "default")
    assert torch.equal(layer[0].weight, before)  # "default" keeps torch's initialisation
    assert INITS == ("kaiming", "xavier", "default")
    with pytest.raises(ValueError, match="unknown init 'orthogonal': expected one of kaiming"):
        init_weights(layer, "orthogonal")
    with pytest.raises(ValueError, match="unknown mode 'fan_avg'"):
        init_weights(layer, mode="fan_avg")  # type: ignore[arg-type]


def test_zero_last_layer_zeroes_the_last_weighted_layer_only() -> None:
    branch = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    with torch.no_grad():
        branch[1].bias.fill_(0.3)
    assert zero_last_layer_(branch) is branch[1]
    assert not branch[1].weight.any() and not branch[1].bias.any()
    assert branch[0].weight.any()
    assert zero_last_layer_(nn.Sequential(nn.Linear(2, 2, bias=False))).bias is None
    with pytest.raises(ValueError, match="Sequential has no layer with a weight to zero"):
        zero_last_layer_(nn.Sequential(nn.ReLU(), Scale(0.5)))


# ---------------------------------------------------------------- DropPath


def test_drop_path_is_the_identity_in_eval_and_at_p_zero() -> None:
    x = torch.randn(4, 3, 5)
    drop = DropPath(0.5).eval()
    assert drop(x) is x
    assert DropPath(0.0).train()(x) is x
    assert "p=0.5" in repr(drop)


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, math.nan, True])
def test_drop_path_rejects_probabilities_outside_0_1(p) -> None:
    with pytest.raises(ValueError, match="^p must be"):
        DropPath(p)


@pytest.mark.parametrize("p", [0.25, 0.7])
def test_drop_path_drops_whole_samples_and_preserves_the_expectation(p: float) -> None:
    n = 20_000
    torch.manual_seed(1234)
    x = torch.rand(n, 2, 3) + 0.5  # strictly positive: a dropped sample is exactly zero
    y = DropPath(p).train()(x)
    ratio = y / x
    per_sample = ratio.flatten(1)
    # one decision per sample, the same for all its entries: 0 (dropped) or 1 / (1 - p) (kept)
    torch.testing.assert_close(per_sample, per_sample[:, :1].expand_as(per_sample))
    kept = per_sample[:, 0] != 0
    torch.testing.assert_close(per_sample[kept, 0], torch.full((int(kept.sum()),), 1 / (1 - p)))
    # Bernoulli counts: the dropped share is p and E[y / x] = 1, within 5 standard errors
    dropped = 1 - kept.float().mean().item()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert abs(per_sample[:, 0].mean().item() - 1) < 5 * math.sqrt(p / (1 - p) / n)


def test_drop_path_gradient_is_zero_for_dropped_samples() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 4, requires_grad=True)
    y = DropPath(0.5).train()(x)
    y.sum().backward()
    kept = y.detach().abs().sum(1) != 0
    assert 0 < kept.sum() < 64
    assert not x.grad[~kept].any()
    torch.testing.assert_close(x.grad[kept], torch.full_like(x.grad[kept], 2.0))
