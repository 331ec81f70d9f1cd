"""MobileNetV2 against torchvision: the exact parameter count, the same outputs after loading
a (randomly initialised) torchvision state dict, skips only where the shape is kept, the linear
bottleneck switch, and clear errors. No weights are downloaded."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from reslib.layers import named_blocks
from reslib.models import mobilenet
from reslib.models.base import count_parameters
from reslib.models.torchvision_weights import load_mobilenet_v2, mobilenet_v2_key


def _randomise_norms(model: nn.Module) -> None:
    # BatchNorm at (1, 0) with unit statistics hides key mix-ups: give each one its own values
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=g) + 0.5
            m.bias.data = 0.1 * torch.randn(c, generator=g)
            m.running_mean = 0.1 * torch.randn(c, generator=g)
            m.running_var = torch.rand(c, generator=g) + 0.5


def test_parameter_count_equals_torchvision_exactly() -> None:
    with torch.device("meta"):
        ours, theirs = mobilenet.mobilenet_v2(), torchvision.models.mobilenet_v2(weights=None)
    assert count_parameters(ours) == count_parameters(theirs) == 3_504_872
    with torch.device("meta"):
        ours = mobilenet.mobilenet_v2(num_classes=10, width_mult=0.5)
        theirs = torchvision.models.mobilenet_v2(weights=None, num_classes=10, width_mult=0.5)
    assert count_parameters(ours) == count_parameters(theirs)


@pytest.mark.parametrize("width_mult", [1.0, 0.35])
def test_loaded_torchvision_weights_give_the_same_outputs(width_mult: float) -> None:
    torch.manual_seed(0)
    theirs = torchvision.models.mobilenet_v2(weights=None, width_mult=width_mult, num_classes=7)
    _randomise_norms(theirs)
    ours = mobilenet.mobilenet_v2(num_classes=7, width_mult=width_mult)
    load_mobilenet_v2(ours, theirs.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = theirs.eval()(x), ours.eval()(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_a_state_dict_of_another_width_is_refused() -> None:
    theirs = torchvision.models.mobilenet_v2(weights=None, width_mult=0.5)
    with pytest.raises(ValueError, match="wrong shape"):
        load_mobilenet_v2(mobilenet.mobilenet_v2(), theirs.state_dict())
    with pytest.raises(ValueError, match="not a torchvision MobileNetV2"):
        mobilenet_v2_key("layer1.0.conv1.weight", [True])


def test_skips_join_only_blocks_that_keep_their_shape() -> None:
    model = mobilenet.mobilenet_v2()
    assert len(model.blocks) == 17
    joined = [b for _, b in named_blocks(model)]
    assert len(joined) == 10  # 17 blocks, 7 that change stride or width
    assert all(isinstance(b.shortcut, nn.Identity) for b in joined)
    plain = mobilenet.mobilenet_v2(skip="none")
    assert named_blocks(plain) == [] and len(plain.blocks) == 17
    assert count_parameters(plain) == count_parameters(model)
    assert plain.state_dict().keys() == model.state_dict().keys()  # the same weights load


def test_linear_bottleneck_switch_adds_relu6_to_every_projection_only() -> None:
    linear = mobilenet.mobilenet_v2(linear_bottleneck=True)
    relu = mobilenet.mobilenet_v2(linear_bottleneck=False)
    assert (
        sum(isinstance(m, nn.ReLU6) for m in relu.modules())
        == sum(isinstance(m, nn.ReLU6) for m in linear.modules()) + 17
    )
    assert all(not hasattr(b.residual.project, "act") for b in linear.blocks)


def test_small_sequence_network_runs_on_mnist1d_shapes() -> None:
    model = mobilenet.mobilenet_v2(
        10, 0.25, setting=((1, 8, 1, 1), (6, 12, 2, 2)), in_channels=1, stem_stride=1, dim=1
    )
    assert model(torch.randn(5, 40)).shape == (5, 10)
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 1, L\)"):
        model(torch.randn(5, 2, 40))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(skip="detached"), "unknown skip"),
        (dict(dim=3), "unknown dim"),
        (dict(width_mult=0.0), "width_mult must be"),
        (dict(setting=((6, 24, 2),)), r"\(t, c, n, s\)"),
        (dict(setting=()), "at least one"),
        (dict(num_classes=0), "num_classes must be"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mobilenet.mobilenet_v2(**kwargs)


def test_make_divisible_rounds_like_the_paper() -> None:
    assert [mobilenet.make_divisible(v) for v in (32, 16 * 0.35, 24 * 0.35, 1280)] == [
        32,
        8,
        8,
        1280,
    ]
