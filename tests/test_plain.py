"""reslib.models.plain: the plain nets, their residual twins and the shortcut modules."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslib.models.plain import (
    ACTIVATIONS,
    INITS,
    NORMS,
    SKIPS,
    Block,
    DeepConv1d,
    DeepMLP,
    Detached,
    Subsample,
    Zero,
    init_weights,
    make_activation,
    shortcut,
)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("norm", NORMS)
def test_mlp_output_shape(skip: str, norm: str) -> None:
    model = DeepMLP(40, 10, width=16, depth=3, norm=norm, skip=skip)  # type: ignore[arg-type]
    assert model(torch.randn(5, 40)).shape == (5, 10)


@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("norm", NORMS)
def test_conv1d_output_shape(skip: str, norm: str) -> None:
    model = DeepConv1d(1, 10, width=8, depth=4, norm=norm, skip=skip)  # type: ignore[arg-type]
    assert model(torch.randn(5, 40)).shape == (5, 10)  # (B, L) for one channel
    assert model(torch.randn(5, 1, 40)).shape == (5, 10)
    two = DeepConv1d(2, 3, width=8, depth=2, skip=skip)  # type: ignore[arg-type]
    assert two(torch.randn(4, 2, 17)).shape == (4, 3)


def test_conv1d_downsampling_blocks_halve_the_length() -> None:
    model = DeepConv1d(1, 10, width=8, depth=6, skip="identity")  # every 2 blocks, at most twice
    lengths: list[int] = []
    for block in model.blocks:
        block.register_forward_hook(lambda m, i, o: lengths.append(o.shape[-1]))
    model(torch.randn(3, 40))
    assert lengths == [40, 40, 20, 20, 10, 10]
    strides = [block.residual[0].stride[0] for block in model.blocks]
    assert strides == [1, 1, 2, 1, 2, 1]
    # only the downsampling blocks subsample their (parameter-free) shortcut
    subsampled = [
        isinstance(block.shortcut[-1], Subsample)
        if isinstance(block.shortcut, nn.Sequential)
        else False
        for block in model.blocks
    ]
    assert subsampled == [s == 2 for s in strides]
    odd = DeepConv1d(1, 10, width=8, depth=3, downsample_every=1)  # 41 -> 21 -> 11
    lengths.clear()
    for block in odd.blocks:
        block.register_forward_hook(lambda m, i, o: lengths.append(o.shape[-1]))
    odd(torch.randn(2, 41))
    assert lengths == [41, 21, 11]


# --- gradients ---------------------------------------------------------------------------------


def _all_params_get_gradients(model: nn.Module, x: torch.Tensor) -> None:
    F.cross_entropy(model(x), torch.arange(len(x)) % 10).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
        assert p.grad.abs().sum() > 0, f"{name} received a zero gradient"


@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("norm", NORMS)
def test_every_mlp_parameter_gets_a_gradient(skip: str, norm: str) -> None:
    torch.manual_seed(0)
    model = DeepMLP(40, 10, width=16, depth=3, norm=norm, skip=skip)  # type: ignore[arg-type]
    _all_params_get_gradients(model, torch.randn(8, 40))


@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("norm", NORMS)
def test_every_conv1d_parameter_gets_a_gradient(skip: str, norm: str) -> None:
    torch.manual_seed(0)
    model = DeepConv1d(1, 10, width=8, depth=6, norm=norm, skip=skip)  # type: ignore[arg-type]
    _all_params_get_gradients(model, torch.randn(8, 40))


# --- twins -------------------------------------------------------------------------------------


def test_plain_and_residual_mlps_have_identical_parameters() -> None:
    shapes = {
        skip: [(n, p.shape) for n, p in DeepMLP(40, 10, depth=5, skip=skip).named_parameters()]
        for skip in SKIPS
    }
    assert shapes["none"] == shapes["identity"] == shapes["detached"]
    assert _count(DeepMLP(40, 10, width=16, depth=3)) == 40 * 16 + 16 + 3 * (16 * 16 + 16) + 170


def test_plain_and_residual_conv1d_twins_have_identical_parameters() -> None:
    # with and without downsampling: the stride-2 shortcut subsamples, it does not project
    for every in (4, 2):
        twins = {
            skip: DeepConv1d(1, 10, width=8, depth=6, downsample_every=every, skip=skip)
            for skip in SKIPS
        }
        assert _count(twins["none"]) == _count(twins["identity"]) == _count(twins["detached"])


def test_subsample_shortcut_matches_a_strided_convolution_length() -> None:
    for length in (40, 41):
        x = torch.randn(2, 3, length)
        conv = nn.Conv1d(3, 3, 3, stride=2, padding=1)
        assert Subsample(2)(x).shape == conv(x).shape
    assert torch.equal(
        Subsample(2, dims=2)(torch.arange(16.0).view(1, 1, 4, 4)),
        torch.tensor([[[[0.0, 2.0], [8.0, 10.0]]]]),
    )


def test_zeroed_residual_branch_makes_the_block_the_identity() -> None:
    torch.manual_seed(0)
    model = DeepMLP(12, 3, width=12, depth=4, skip="identity")
    for block in model.blocks:
        nn.init.zeros_(block.residual[0].weight)
        nn.init.zeros_(block.residual[0].bias)
    h = torch.randn(6, 12)
    assert torch.equal(model.blocks(h), h)
    plain = DeepMLP(12, 3, width=12, depth=4, skip="none")
    for block in plain.blocks:
        nn.init.zeros_(block.residual[0].weight)
        nn.init.zeros_(block.residual[0].bias)
    assert torch.equal(plain.blocks(h), torch.zeros_like(h))  # the plain twin loses the signal


def test_zero_gamma_makes_a_conv_block_the_identity() -> None:
    model = DeepConv1d(1, 10, width=8, depth=3, downsample_every=3, norm="batch", skip="identity")
    for block in model.blocks:
        nn.init.zeros_(block.residual[1].weight)  # BatchNorm gamma = 0: F(x) = relu(0) = 0
    h = torch.randn(4, 8, 20)
    assert torch.equal(model.blocks(h), h)


# --- the shortcut modules ----------------------------------------------------------------------


def test_detached_passes_the_value_but_no_gradient() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    out = Detached()(x)
    assert torch.equal(out, x) and not out.requires_grad

    branch = nn.Linear(4, 4)
    grads = {}
    for skip in SKIPS:
        x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
        Block(branch, skip)(x).sum().backward()
        grads[skip] = x.grad
    assert torch.equal(grads["detached"], grads["none"])  # only the branch's gradient
    assert torch.allclose(grads["identity"] - grads["none"], torch.ones(3, 4))  # d(sum x)/dx


def test_detached_block_forward_equals_the_residual_block() -> None:
    torch.manual_seed(0)
    res = DeepMLP(12, 3, width=8, depth=3, skip="identity")
    det = DeepMLP(12, 3, width=8, depth=3, skip="detached")
    det.load_state_dict(res.state_dict())
    x = torch.randn(5, 12)
    assert torch.equal(res(x), det(x))


def test_zero_contributes_nothing() -> None:
    x = torch.randn(2, 3, 5)
    assert torch.equal(x + Zero()(x), x)
    branch = nn.Conv1d(3, 3, 3, padding=1)
    assert torch.equal(Block(branch, "none")(x), branch(x))
    assert Zero()(x).shape == () and float(Zero()(x)) == 0.0


def test_shortcut_by_name() -> None:
    assert isinstance(shortcut("none"), Zero)
    assert isinstance(shortcut("identity"), nn.Identity)
    assert isinstance(shortcut("detached"), Detached)


# --- errors ------------------------------------------------------------------------------------


def test_wrong_input_shapes_name_the_expected_shape() -> None:
    with pytest.raises(ValueError, match=r"\(batch, 40\).*\(5, 39\)"):
        DeepMLP(40, 10, width=8, depth=1)(torch.randn(5, 39))
    with pytest.raises(ValueError, match=r"\(batch, 40\)"):
        DeepMLP(40, 10, width=8, depth=1)(torch.randn(5, 1, 40))
    with pytest.raises(ValueError, match=r"\(batch, 2, length\).*\(5, 40\)"):
        DeepConv1d(2, 10, width=8, depth=1)(torch.randn(5, 40))
    with pytest.raises(ValueError, match=r"\(batch, 1, length\) or \(batch, length\)"):
        DeepConv1d(1, 10, width=8, depth=1)(torch.randn(5, 3, 40))


@pytest.mark.parametrize("cls", [DeepMLP, DeepConv1d])
@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        (dict(depth=0), "depth"),
        (dict(depth=-2), "depth"),
        (dict(depth=2.0), "depth"),
        (dict(width=0), "width"),
    ],
)
def test_non_positive_sizes_are_rejected(cls: type, kwargs: dict[str, object], what: str) -> None:
    with pytest.raises(ValueError, match=f"{what} must be a positive int"):
        cls(4, 10, **kwargs)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        cls(4, 0)


def test_even_kernel_is_rejected() -> None:
    with pytest.raises(ValueError, match="kernel_size must be a positive odd int"):
        DeepConv1d(1, 10, kernel_size=4)


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


def test_activations_are_fresh_and_not_in_place() -> None:
    for name in ACTIVATIONS:
        a, b = make_activation(name), make_activation(name)
        assert a is not b
        assert not getattr(a, "inplace", False)


def test_init_schemes() -> None:
    torch.manual_seed(0)
    layer = nn.Sequential(nn.Linear(1000, 500))
    init_weights(layer, "kaiming")
    assert layer[0].weight.std().item() == pytest.approx((2 / 1000) ** 0.5, rel=0.02)
    assert torch.equal(layer[0].bias, torch.zeros(500))
    init_weights(layer, "xavier")
    assert layer[0].weight.std().item() == pytest.approx((2 / 1500) ** 0.5, rel=0.02)
    before = layer[0].weight.clone()
    init_weights(layer, "default")
    assert torch.equal(layer[0].weight, before)  # "default" keeps torch's initialisation
