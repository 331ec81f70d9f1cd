"""One test for every model family: a new family adds one line to FAMILIES and gets them all.

Each entry builds a tiny model and says what it eats. The tests hold the conventions of
DESIGN.md for every family at once: output shapes, a gradient for every parameter, the block
protocol (zero-init blocks compute exactly their skip path, the identity where the shortcut is
the identity; a model whose branches are all zero computes what its lesioned self computes),
full backward hooks (no in-place operations), plain twins with their parent's parameter
count, a state-dict round trip, and unknown names that raise a ValueError listing the valid
ones.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from reslib.diagnostics import capture_inputs, lesion
from reslib.layers import Block, ResidualBlock, named_blocks
from reslib.models import (
    densenet,
    graph,
    highway,
    mobilenet,
    plain,
    preact,
    resnet,
    transformer,
    unet,
)
from reslib.models.base import count_parameters


@dataclass(frozen=True)
class Family:
    """A builder at a tiny size: ``build(**overrides)`` -> model taking ``input_shape``."""

    build: Callable[..., nn.Module]
    input_shape: tuple[int, ...]
    num_classes: int
    twin: dict[str, Any] | None  # the overrides that build the plain twin (None: no twin)
    bad_name: dict[str, Any]  # overrides with an unknown name, which must raise ValueError
    dense: bool = False  # dense prediction: the output keeps the input's spatial size


def _preact(**spec: Any) -> Callable[..., nn.Module]:
    def build(**overrides: Any) -> nn.Module:
        depth = 20 if spec.get("bottleneck") else 14  # two units per stage
        return preact.preact_resnet(
            depth, spec=preact.UnitSpec(dim=1, **{**spec, **overrides}), width=4, in_channels=1
        )

    return build


def _tiny_bottleneck_resnet(**overrides: Any) -> nn.Module:
    stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    return resnet.ResNet(
        resnet.Bottleneck, [1, 2], [2, 4], stem=stem, stem_channels=8, num_classes=5, **overrides
    )


class _Tokens(nn.Module):
    """Turn the family test's float input (B, T) into tokens of a vocabulary of 7."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() * 3).long() % 7


class _LastToken(nn.Module):
    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -1]  # (B, T, V) -> (B, V): the next-token logits at the end


def _transformer(**spec: Any) -> Callable[..., nn.Module]:
    def build(**overrides: Any) -> nn.Module:
        cfg = transformer.TransformerConfig(
            vocab_size=7, seq_len=6, d_model=8, n_heads=2, n_layers=2, **{**spec, **overrides}
        )
        return nn.Sequential(_Tokens(), transformer.Transformer(cfg), _LastToken())

    return build


# a ring of 6 nodes: the graph network's fixed graph (its input is (6 nodes, 12 features))
_RING = torch.roll(torch.eye(6), 1, dims=1) + torch.roll(torch.eye(6), -1, dims=1)

FAMILIES: dict[str, Family] = {
    "mlp": Family(
        lambda **o: plain.DeepMLP(
            12, 3, width=8, depth=3, **{"norm": "layer", "skip": "identity", **o}
        ),
        (4, 12),
        3,
        dict(skip="none"),
        dict(norm="bogus"),
    ),
    "mlp-batchnorm": Family(
        lambda **o: plain.DeepMLP(
            12, 3, width=8, depth=3, norm="batch", **{"skip": "identity", **o}
        ),
        (4, 12),
        3,
        dict(skip="none"),
        dict(activation="bogus"),
    ),
    "conv1d": Family(
        lambda **o: plain.DeepConv1d(1, 3, width=4, depth=4, **{"skip": "identity", **o}),
        (4, 16),
        3,
        dict(skip="none"),
        dict(skip="bogus"),
    ),
    "resnet-cifar-2d": Family(
        lambda **o: resnet.cifar_resnet(8, width=4, num_classes=5, **o),
        (2, 3, 16, 16),
        5,
        dict(skip="none"),
        dict(shortcut="D"),
    ),
    "resnet-cifar-1d-B": Family(
        lambda **o: resnet.cifar_resnet(8, width=4, dim=1, in_channels=1, shortcut="B", **o),
        (3, 20),
        10,
        None,
        dict(skip="bogus"),
    ),
    "resnet-bottleneck": Family(
        _tiny_bottleneck_resnet,
        (2, 3, 16, 16),
        5,
        dict(skip="none", shortcut="A"),
        dict(activation="bogus"),
    ),
    "preact-full": Family(_preact(), (3, 20), 10, dict(skip="none"), dict(norm="bogus")),
    "preact-original": Family(
        _preact(placement="original"), (3, 20), 10, dict(skip="none"), dict(placement="bogus")
    ),
    "preact-bottleneck-group": Family(
        _preact(bottleneck=True, norm="group"), (3, 20), 10, None, dict(shortcut_op="bogus")
    ),
    "preact-exclusive-gate": Family(
        _preact(placement="original", shortcut_op="exclusive_gate"),
        (3, 20),
        10,
        None,
        dict(skip="bogus"),
    ),
    "preact-conv1x1-detached": Family(
        _preact(shortcut="C", skip="detached"),
        (3, 20),
        10,
        None,
        dict(shortcut="D"),
    ),
    "highway-mlp": Family(
        lambda **o: highway.HighwayMLP(12, 3, width=8, depth=3, **o),
        (4, 12),
        3,
        dict(skip="none"),
        dict(carry="bogus"),
    ),
    "highway-mlp-uncoupled": Family(
        lambda **o: highway.HighwayMLP(12, 3, width=8, depth=3, **{"carry": "uncoupled", **o}),
        (4, 12),
        3,
        dict(skip="none"),
        dict(activation="bogus"),
    ),
    "highway-conv1d": Family(
        lambda **o: highway.HighwayConvNet(
            (1, 2), (4, 8), dim=1, in_channels=1, num_classes=3, **o
        ),
        (4, 16),
        3,
        dict(skip="none"),
        dict(norm="bogus"),
    ),
    "highway-cifar-2d": Family(
        lambda **o: highway.highway_cifar(8, width=4, num_classes=5, **o),
        (2, 3, 16, 16),
        5,
        dict(skip="none"),
        dict(skip="bogus"),
    ),
    "densenet-1d": Family(
        lambda **o: densenet.cifar_densenet(7, 4, dim=1, in_channels=1, num_classes=3, **o),
        (3, 20),
        3,
        None,
        dict(activation="bogus"),
    ),
    "densenet-bc-2d": Family(
        lambda **o: densenet.cifar_densenet(10, 4, bottleneck=True, compression=0.5, **o),
        (2, 3, 16, 16),
        10,
        None,
        dict(dim=3),
    ),
    "densenet-bc-memory-efficient": Family(
        lambda **o: densenet.cifar_densenet(
            10, 4, bottleneck=True, compression=0.5, memory_efficient=True, **o
        ),
        (2, 3, 16, 16),
        10,
        None,
        dict(activation="bogus"),
    ),
    "transformer-pre-ln": Family(
        _transformer(norm="pre"), (3, 6), 7, dict(residual="none"), dict(norm="bogus")
    ),
    "transformer-post-ln": Family(
        _transformer(norm="post"), (3, 6), 7, dict(residual="none"), dict(residual="bogus")
    ),
    "transformer-deepnorm": Family(
        _transformer(norm="post", residual="deepnorm"), (3, 6), 7, None, dict(init="bogus")
    ),
    "unet-concat": Family(
        lambda **o: unet.unet(1, 3, depth=3, width=4, **o),
        (2, 1, 8, 8),
        3,
        dict(skip="none"),
        dict(skip="bogus"),
        dense=True,
    ),
    "unet-add-interpolate": Family(
        lambda **o: unet.unet(
            1, 3, depth=3, width=4, **{"skip": "add", "upsample": "interpolate", **o}
        ),
        (2, 1, 8, 8),
        3,
        dict(skips=(False, False)),
        dict(upsample="bogus"),
        dense=True,
    ),
    "mobilenet-v2": Family(
        lambda **o: mobilenet.mobilenet_v2(
            5, 0.25, setting=((1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 2, 1)), stem_stride=1, **o
        ),
        (2, 3, 16, 16),
        5,
        dict(skip="none"),
        dict(skip="bogus"),
    ),
    "mobilenet-v2-1d-relu6": Family(
        lambda **o: mobilenet.mobilenet_v2(
            3, 0.25, setting=((6, 8, 2, 1),), in_channels=1, dim=1, linear_bottleneck=False, **o
        ),
        (3, 20),
        3,
        dict(skip="none"),
        dict(skip="bogus"),
    ),
    "graph-resgcn": Family(
        lambda **o: graph.graph_net(_RING, 12, 3, width=8, depth=3, **o),
        (6, 12),
        3,
        dict(skip="none"),
        dict(norm="bogus"),
    ),
    "unet-none-group": Family(
        lambda **o: unet.unet(2, 3, depth=3, width=4, **{"skip": "none", "norm": "group", **o}),
        (2, 2, 8, 8),
        3,
        None,
        dict(norm="bogus"),
        dense=True,
    ),
}
NAMES = list(FAMILIES)


def _built(name: str, seed: int = 0, **overrides: Any) -> tuple[nn.Module, torch.Tensor]:
    family = FAMILIES[name]
    torch.manual_seed(seed)
    model = family.build(**overrides)
    return model, torch.randn(family.input_shape)


@pytest.mark.parametrize("name", NAMES)
def test_output_shape(name: str) -> None:
    model, x = _built(name)
    spatial = tuple(x.shape[2:]) if FAMILIES[name].dense else ()
    assert model(x).shape == (x.shape[0], FAMILIES[name].num_classes, *spatial)


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_receives_a_finite_gradient(name: str) -> None:
    model, x = _built(name)
    model(x).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    nonzero = sum(bool(p.grad.abs().sum() > 0) for p in model.parameters())
    assert nonzero >= 0.9 * len(list(model.parameters()))


@pytest.mark.parametrize("name", NAMES)
def test_zero_init_blocks_compute_exactly_their_skip_path(name: str) -> None:
    model, x = _built(name)
    model.eval()
    found = named_blocks(model)
    assert found, "the family's blocks must follow reslib.layers.Block"
    with torch.no_grad(), capture_inputs(model, found) as inputs:
        model(x)
    identity_shortcuts = 0
    for block_name, block in found:
        block.zero_init_last()
        h = inputs[block_name]
        with torch.no_grad():
            assert torch.equal(block(h), block.skip_path(h)), block_name
            if isinstance(block.pre, nn.Identity) and isinstance(block.shortcut, nn.Identity):
                identity_shortcuts += 1
                if isinstance(block, ResidualBlock):  # a highway layer carries (1 - T(x)) x
                    assert torch.equal(block(h), block.post(h)), block_name  # post(0 + x)
    assert identity_shortcuts > 0 or FAMILIES[name].twin is None


@pytest.mark.parametrize("name", NAMES)
def test_a_net_of_zero_branches_equals_its_lesioned_self(name: str) -> None:
    model, x = _built(name)
    model.eval()
    every_block = [b for _, b in named_blocks(model)]
    with torch.no_grad():
        intact = model(x)
        with lesion(model, every_block):
            lesioned = model(x)
        assert torch.equal(model(x), intact)  # leaving the context restores the model
        assert not torch.equal(lesioned, intact)
        for block in every_block:
            block.zero_init_last()
        assert torch.equal(model(x), lesioned)


@pytest.mark.parametrize("name", NAMES)
def test_full_backward_hooks_reach_every_block(name: str) -> None:
    model, x = _built(name)
    x.requires_grad_(True)  # so the hooks of the first layers fire for their inputs too
    seen: list[str] = []
    handles = [
        m.register_full_backward_hook(lambda *_, n=n: seen.append(n))
        for n, m in model.named_modules()
        if isinstance(m, Block) or not list(m.children())
    ]
    model(x).sum().backward()  # an in-place op under a full backward hook raises here
    for h in handles:
        h.remove()
    assert {n for n, _ in named_blocks(model)} <= set(seen)


@pytest.mark.parametrize("name", [n for n in NAMES if FAMILIES[n].twin is not None])
def test_plain_twin_has_exactly_the_parent_parameter_count(name: str) -> None:
    family = FAMILIES[name]
    parent, _ = _built(name)
    twin, _ = _built(name, **family.twin)  # type: ignore[arg-type]
    assert count_parameters(twin) == count_parameters(parent)
    assert repr(twin) != repr(parent)  # and it is a different network


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name: str) -> None:
    model, x = _built(name, seed=0)
    other, _ = _built(name, seed=1)
    model.eval(), other.eval()
    with torch.no_grad():
        assert not torch.equal(model(x), other(x))
        other.load_state_dict(copy.deepcopy(model.state_dict()))
        assert torch.equal(model(x), other(x))


@pytest.mark.parametrize("name", NAMES)
def test_unknown_names_raise_listing_the_valid_ones(name: str) -> None:
    bad = FAMILIES[name].bad_name
    ((key, value),) = bad.items()
    with pytest.raises(ValueError, match=rf"unknown {key} {value!r}: expected one of \w+"):
        FAMILIES[name].build(**bad)
