"""Tests of reslib.models.highway: the layer is its equation (Srivastava et al. 2015, arXiv
1505.00387), y = T(x) F(x) + (1 - T(x)) x, coupled and uncoupled, fully connected and
convolutional; gate biases survive initialisation; the plain twin; parameter counts and
matching; clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from reslib.diagnostics import capture_outputs, lesion
from reslib.layers import GatedBlock, PadShortcut, Projection, Zero, named_blocks
from reslib.models import highway, resnet
from reslib.models.base import count_parameters
from reslib.models.highway import HighwayGate, UncoupledHighwayBlock, highway_layer


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("dim, shape", [(0, (5, 6)), (1, (5, 6, 9)), (2, (5, 6, 7, 7))])
def test_coupled_layer_computes_its_equation(dim: int, shape: tuple[int, ...]) -> None:
    layer = highway_layer(6, dim=dim, gate_bias=-1.5)
    assert isinstance(layer, GatedBlock) and isinstance(layer.gate, HighwayGate)
    x = torch.randn(shape)
    t, f = layer.gate(x), layer.residual(x)
    torch.testing.assert_close(layer(x), t * f + (1 - t) * x)
    assert t.shape == x.shape and bool(((t > 0) & (t < 1)).all())


def test_uncoupled_layer_has_its_own_carry_gate() -> None:
    layer = highway_layer(6, carry="uncoupled", gate_bias=-2.0)
    assert isinstance(layer, UncoupledHighwayBlock)
    x = torch.randn(4, 6)
    t, c, f = layer.gate(x), layer.carry(x), layer.residual(x)
    torch.testing.assert_close(layer(x), t * f + c * x)
    torch.testing.assert_close(layer.skip_path(x), c * x)
    assert layer.carry.initial_bias == 2.0  # starts like the coupled pair: C = 1 - T at W = 0
    coupled = highway_layer(6)
    assert count_parameters(layer) == count_parameters(coupled) + 6 * 6 + 6


def test_uncoupled_gates_open_give_the_residual_block() -> None:
    # T = C = 1 (large biases, zero gate weights): y = F(x) + x, the residual block
    layer = highway_layer(6, carry="uncoupled", gate_bias=60.0)
    with torch.no_grad():
        layer.gate.layer.weight.zero_()
        layer.carry.layer.weight.zero_()
        layer.carry.bias.fill_(60.0)
    x = torch.randn(4, 6)
    torch.testing.assert_close(layer(x), layer.residual(x) + x)


def test_gate_bias_survives_the_initialiser_and_sets_the_gate() -> None:
    net = highway.HighwayMLP(8, 3, width=5, depth=4, gate_bias=-3.0, init="kaiming")
    gates = highway.transform_gates(net)
    assert len(gates) == 4
    assert all(bool((g.bias == -3.0).all()) for _, g in gates)
    # with zero gate weights, every T is sigmoid(b_T)
    for _, g in gates:
        nn.init.zeros_(g.layer.weight)
    with torch.no_grad(), capture_outputs(net, gates) as t:
        net(torch.randn(7, 8))
    expected = 1 / (1 + math.exp(3.0))
    assert all(torch.allclose(v, torch.full_like(v, expected)) for v in t.values())


def test_a_closed_transform_gate_copies_the_input() -> None:
    layer = highway_layer(6, gate_bias=-60.0)  # sigmoid(-60) ~ 1e-26
    with torch.no_grad():
        layer.gate.layer.weight.zero_()
    x = torch.randn(4, 6)
    torch.testing.assert_close(layer(x), x)


def test_plain_twin_drops_the_carry_path_only() -> None:
    parent = highway.HighwayMLP(8, 3, width=5, depth=3)
    torch.manual_seed(0)
    twin = highway.HighwayMLP(8, 3, width=5, depth=3, skip="none")
    assert all(isinstance(b.shortcut, Zero) for _, b in named_blocks(twin))
    assert count_parameters(twin) == count_parameters(parent)
    layer, x = named_blocks(twin)[0][1], torch.randn(4, 5)
    torch.testing.assert_close(layer(x), layer.gate(x) * layer.residual(x))  # y = T(x) F(x)


def test_lesion_keeps_the_carried_input() -> None:
    net = highway.HighwayMLP(8, 3, width=5, depth=3, gate_bias=-1.0).eval()
    block = named_blocks(net)[1][1]
    x = torch.randn(4, 8)
    with torch.no_grad(), capture_outputs(net, [("stem", net.stem)]) as out:
        net(x)
        h = net.blocks[0](out["stem"])
        with lesion(net, [block]):
            lesioned = net(x)
        expected = net.head(net.blocks[2]((1 - block.gate(h)) * h))
    torch.testing.assert_close(lesioned, expected)


@pytest.mark.parametrize("dim", [1, 2])
def test_conv_net_shapes_and_projected_carry(dim: int) -> None:
    net = highway.HighwayConvNet((2, 2, 2), (4, 8, 16), dim=dim, in_channels=3, num_classes=5)
    x = torch.randn((2, 3) + (16,) * dim)
    assert net(x).shape == (2, 5)
    first_of_stage = [stage[0] for stage in net.stages]
    assert isinstance(first_of_stage[0].shortcut, nn.Identity)
    assert all(isinstance(b.shortcut, PadShortcut) for b in first_of_stage[1:])  # option A
    projected = highway.HighwayConvNet((1, 1), (4, 8), dim=dim, shortcut="B")
    assert isinstance(projected.stages[1][0].shortcut, Projection)


def test_cifar_builder_depth_and_parameters() -> None:
    with torch.device("meta"):
        net = highway.highway_cifar(20, width=16)  # 3 x 6 highway layers + stem + classifier
        res = resnet.cifar_resnet(20)
        weight_layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    # stem + head + 18 layers x (F, T); option A carries without weights
    assert len(weight_layers) == 2 + 18 * 2
    # a highway layer holds two 3x3 convs, as a basic block does: about 2x ResNet-20's count
    assert 1.8 < count_parameters(net) / count_parameters(res) < 2.3
    with pytest.raises(ValueError, match="3n \\+ 2"):
        highway.highway_cifar(21)


def test_match_width_finds_the_closest_count() -> None:
    target = 270_000

    def build(w: int) -> nn.Module:
        return highway.highway_cifar(20, width=w)

    width = highway.match_width(target, build)
    with torch.device("meta"):
        counts = {w: count_parameters(build(w)) for w in (width - 1, width, width + 1)}
    assert abs(counts[width] - target) <= min(abs(c - target) for c in counts.values())
    assert 0.9 < counts[width] / target < 1.1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(carry="both"), r"unknown carry 'both': expected one of coupled, uncoupled"),
        (dict(skip="gated"), r"unknown skip 'gated': expected one of identity"),
        (dict(gate_bias=math.inf), r"gate_bias must be a finite number"),
        (dict(dim=3), r"unknown dim 3: expected one of 0, 1, 2"),
        (dict(dim=1, kernel_size=2), r"kernel_size must be odd"),
        (dict(out_channels=7), r"keeps its width"),
    ],
)
def test_bad_options_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        highway_layer(6, **kwargs)  # type: ignore[arg-type]


def test_bad_builder_options_raise() -> None:
    with pytest.raises(ValueError, match="one layer count per stage"):
        highway.HighwayConvNet((2, 2), (4, 8, 16))
    with pytest.raises(ValueError, match="width must be an int"):
        highway.HighwayMLP(8, 3, width=0)
    with pytest.raises(ValueError, match="unknown dim 0"):
        highway.HighwayConvNet(dim=0)
    with pytest.raises(ValueError, match="target must be an int"):
        highway.match_width(0, lambda w: nn.Linear(w, w))
