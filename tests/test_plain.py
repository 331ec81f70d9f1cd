"""reslib.models.plain: the plain nets and their residual twins, built from the ground floor's
ResidualBlock with a Zero, identity or detached shortcut."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslib.layers import (
    ACTIVATIONS,
    INITS,
    NORMS,
    SKIPS,
    Detached,
    PadShortcut,
    ResidualBlock,
    Zero,
    blocks,
)
from reslib.models.base import count_parameters
from reslib.models.plain import DeepConv1d, DeepMLP

SHORTCUT_TYPES = {
    "none": [Zero],
    "identity": [nn.Identity],
    "detached": [Detached, nn.Identity],  # make_shortcut puts Detached in front of the path
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _block_lengths(model: DeepConv1d, x: torch.Tensor) -> list[int]:
    lengths: list[int] = []
    handles = [
        b.register_forward_hook(lambda m, i, o: lengths.append(o.shape[-1])) for b in model.blocks
    ]
    model(x)
    for h in handles:
        h.remove()
    return lengths


# --- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("norm", NORMS)
def test_mlp_output_shape_and_blocks(skip: str, norm: str) -> None:
    model = DeepMLP(40, 10, width=16, depth=3, norm=norm, skip=skip)  # type: ignore[arg-type]
    assert model(torch.randn(5, 40)).shape == (5, 10)
    found = list(blocks(model))
    assert len(found) == 3 and all(type(b) is ResidualBlock for b in found)
    for b in found:
        parts = list(b.shortcut) if isinstance(b.shortcut, nn.Sequential) else [b.shortcut]
        assert [type(m) for m in parts] == SHORTCUT_TYPES[skip]


@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("norm", NORMS)
def test_conv1d_output_shape(skip: str, norm: str) -> None:
    model = DeepConv1d(1, 10, width=8, depth=4, norm=norm, skip=skip)  # type: ignore[arg-type]
    assert model(torch.randn(5, 40)).shape == (5, 10)  # (B, L) for one channel
    assert model(torch.randn(5, 1, 40)).shape == (5, 10)
    two = DeepConv1d(2, 3, width=8, depth=2, skip=skip)  # type: ignore[arg-type]
    assert two(torch.randn(4, 2, 17)).shape == (4, 3)
    assert len(list(blocks(model))) == 4


def test_conv1d_downsampling_blocks_halve_the_length() -> None:
    model = DeepConv1d(1, 10, width=8, depth=6, skip="identity")  # every 2 blocks, at most twice
    assert _block_lengths(model, torch.randn(3, 40)) == [40, 40, 20, 20, 10, 10]
    strides = [block.residual[0].stride[0] for block in model.blocks]
    assert strides == [1, 1, 2, 1, 2, 1]
    # only the downsampling blocks subsample their (parameter-free) shortcut: option A without
    # padding, since the width stays the same
    subsampled = [isinstance(block.shortcut, PadShortcut) for block in model.blocks]
    assert subsampled == [s == 2 for s in strides]
    assert all(b.shortcut.extra == 0 for b in model.blocks if isinstance(b.shortcut, PadShortcut))
    odd = DeepConv1d(1, 10, width=8, depth=3, downsample_every=1)  # 41 -> 21 -> 11
    assert _block_lengths(odd, torch.randn(2, 41)) == [41, 21, 11]
    many = DeepConv1d(1, 10, width=8, depth=8, downsample_every=1)  # halves at most twice
    assert _block_lengths(many, torch.randn(2, 40)) == [40, 20, 10, 10, 10, 10, 10, 10]


def test_detached_downsampling_shortcut_subsamples_behind_the_detach() -> None:
    model = DeepConv1d(1, 10, width=8, depth=3, downsample_every=1, skip="detached")
    shortcut = model.blocks[1].shortcut
    assert isinstance(shortcut, nn.Sequential)
    assert [type(m) for m in shortcut] == [Detached, PadShortcut]
    x = torch.randn(2, 8, 10, requires_grad=True)
    out = shortcut(x)
    assert torch.equal(out, x[:, :, ::2]) and not out.requires_grad


# --- gradients ---------------------------------------------------------------------------------


def _all_params_get_gradients(model: nn.Module, x: torch.Tensor) -> None:
    F.cross_entropy(model(x), torch.arange(len(x)) % 10).backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not silent, f"no gradient for {silent}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("norm", NORMS)
def test_every_mlp_parameter_gets_a_gradient(skip: str, norm: str) -> None:
    model = DeepMLP(40, 10, width=16, depth=3, norm=norm, skip=skip)  # type: ignore[arg-type]
    _all_params_get_gradients(model, torch.randn(8, 40))


@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("norm", NORMS)
def test_every_conv1d_parameter_gets_a_gradient(skip: str, norm: str) -> None:
    model = DeepConv1d(1, 10, width=8, depth=6, norm=norm, skip=skip)  # type: ignore[arg-type]
    _all_params_get_gradients(model, torch.randn(8, 40))


# --- twins -------------------------------------------------------------------------------------


def test_plain_and_residual_mlps_have_identical_parameters() -> None:
    shapes = {
        skip: [(n, p.shape) for n, p in DeepMLP(40, 10, depth=5, skip=skip).named_parameters()]
        for skip in SKIPS
    }
    assert shapes["none"] == shapes["identity"] == shapes["detached"]
    # stem 40*16 + 16, three hidden 16*16 + 16, head 16*10 + 10
    assert count_parameters(DeepMLP(40, 10, width=16, depth=3)) == 656 + 3 * 272 + 170


def test_plain_and_residual_conv1d_twins_have_identical_parameters() -> None:
    # with and without downsampling: the stride-2 shortcut subsamples, it does not project
    for every in (4, 2):
        counts = {
            skip: count_parameters(
                DeepConv1d(1, 10, width=8, depth=6, downsample_every=every, skip=skip)
            )
            for skip in SKIPS
        }
        assert counts["none"] == counts["identity"] == counts["detached"]
    # stem conv 1*8*3 + BN 16; six blocks of 8*8*3 + 16; head 8*10 + 10 (BN: no conv bias)
    assert counts["none"] == 24 + 16 + 6 * (192 + 16) + 90


def test_layer_norm_in_the_mlp_is_layernorm_over_the_features() -> None:
    model = DeepMLP(12, 3, width=8, depth=1, norm="layer")
    norm = model.blocks[0].residual[1]
    h = 3 * torch.randn(5, 8) + 2
    torch.testing.assert_close(norm(h), F.layer_norm(h, (8,)), atol=1e-6, rtol=1e-5)


def test_zeroed_residual_branch_makes_the_block_the_identity() -> None:
    model = DeepMLP(12, 3, width=12, depth=4, skip="identity")
    for block in model.blocks:
        block.zero_init_last()
        assert not block.residual[0].weight.any() and not block.residual[0].bias.any()
    h = torch.randn(6, 12)
    assert torch.equal(model.blocks(h), h)
    plain = DeepMLP(12, 3, width=12, depth=4, skip="none")
    for block in plain.blocks:
        block.zero_init_last()
    assert torch.equal(plain.blocks(h), torch.zeros_like(h))  # the plain twin loses the signal


def test_zero_gamma_makes_a_conv_block_the_identity() -> None:
    model = DeepConv1d(1, 10, width=8, depth=3, downsample_every=3, norm="batch", skip="identity")
    for block in model.blocks:
        block.zero_init_last()  # BatchNorm gamma = beta = 0: F(x) = relu(0) = 0
        assert not block.residual[1].weight.any()
        assert block.residual[0].weight.any()  # the conv before it is untouched
    h = torch.randn(4, 8, 20)
    assert torch.equal(model.blocks(h), h)
    x = torch.randn(4, 8, 20)
    for block in model.blocks:
        assert torch.equal(block(x), block.skip_path(x))


def test_detached_block_forward_equals_the_residual_block() -> None:
    res = DeepMLP(12, 3, width=8, depth=3, skip="identity")
    det = DeepMLP(12, 3, width=8, depth=3, skip="detached")
    det.load_state_dict(res.state_dict())
    x = torch.randn(5, 12)
    assert torch.equal(res(x), det(x))


def test_plain_block_computes_only_its_branch() -> None:
    model = DeepConv1d(1, 10, width=4, depth=2, skip="none")
    x = torch.randn(2, 4, 9)
    for block in model.blocks:
        assert torch.equal(block(x), block.residual(x))
        assert float(block.skip_path(x)) == 0.0


# --- errors ------------------------------------------------------------------------------------


def test_wrong_input_shapes_name_the_expected_shape() -> None:
    with pytest.raises(
        ValueError, match=r"DeepMLP expects input of shape \(batch, 40\).*\(5, 39\)"
    ):
        DeepMLP(40, 10, width=8, depth=1)(torch.randn(5, 39))
    with pytest.raises(ValueError, match=r"\(batch, 40\), got \(5, 1, 40\)"):
        DeepMLP(40, 10, width=8, depth=1)(torch.randn(5, 1, 40))
    with pytest.raises(
        ValueError, match=r"DeepConv1d expects input of shape \(batch, 2, L\).*\(5, 40\)"
    ):
        DeepConv1d(2, 10, width=8, depth=1)(torch.randn(5, 40))
    with pytest.raises(ValueError, match=r"\(batch, 1, L\) or \(batch, L\), got \(5, 3, 40\)"):
        DeepConv1d(1, 10, width=8, depth=1)(torch.randn(5, 3, 40))


@pytest.mark.parametrize("cls", [DeepMLP, DeepConv1d])
@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        (dict(depth=0), "depth"),
        (dict(depth=-2), "depth"),
        (dict(depth=2.0), "depth"),
        (dict(depth=True), "depth"),
        (dict(width=0), "width"),
        (dict(width=2.5), "width"),
    ],
)
def test_non_positive_sizes_are_rejected(cls: type, kwargs: dict[str, object], what: str) -> None:
    with pytest.raises(ValueError, match=f"{what} must be an int >= 1, got {kwargs[what]!r}"):
        cls(4, 10, **kwargs)
    with pytest.raises(ValueError, match="num_classes must be an int >= 1, got 0"):
        cls(4, 0)


def test_bad_channels_kernel_and_downsampling_are_rejected() -> None:
    with pytest.raises(ValueError, match="in_features must be an int >= 1, got 0"):
        DeepMLP(0, 10)
    with pytest.raises(ValueError, match="in_channels must be an int >= 1, got 0"):
        DeepConv1d(0, 10)
    with pytest.raises(ValueError, match="kernel_size must be odd, got 4"):
        DeepConv1d(1, 10, kernel_size=4)
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1, got 0"):
        DeepConv1d(1, 10, kernel_size=0)
    with pytest.raises(ValueError, match="downsample_every must be an int >= 1, got -1"):
        DeepConv1d(1, 10, downsample_every=-1)


@pytest.mark.parametrize("cls", [DeepMLP, DeepConv1d])
@pytest.mark.parametrize(
    ("option", "valid"),
    [("activation", ACTIVATIONS), ("init", INITS), ("norm", NORMS), ("skip", SKIPS)],
)
def test_unknown_names_list_the_valid_ones(cls: type, option: str, valid: object) -> None:
    with pytest.raises(ValueError) as info:
        cls(4, 10, width=4, depth=1, **{option: "bogus"})
    message = str(info.value)
    assert f"unknown {option} 'bogus'" in message
    assert all(name in message for name in valid)  # type: ignore[attr-defined]


def test_no_inplace_activations() -> None:
    for model in (DeepMLP(4, 2, width=4, depth=2), DeepConv1d(1, 2, width=4, depth=2)):
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        assert len(relus) == 3 and not any(m.inplace for m in relus)


def test_init_is_applied_to_every_weight_layer() -> None:
    model = DeepMLP(1000, 10, width=500, depth=1, init="kaiming")
    assert model.stem[0].weight.std().item() == pytest.approx((2 / 1000) ** 0.5, rel=0.03)
    assert model.blocks[0].residual[0].weight.std().item() == pytest.approx(
        (2 / 500) ** 0.5, rel=0.03
    )
    assert not model.head.bias.any()
    xavier = DeepMLP(1000, 10, width=500, depth=1, init="xavier")
    assert xavier.stem[0].weight.std().item() == pytest.approx((2 / 1500) ** 0.5, rel=0.03)
