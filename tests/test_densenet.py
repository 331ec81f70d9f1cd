"""DenseNet (Huang et al. 2017): counts against the paper and torchvision, torchvision weights,
the memory-efficient mode's equivalence, shapes, the dense layer as a ConcatBlock, feature reuse.

The family-wide conventions (gradients, zero-init, lesions, hooks, state dicts, unknown names)
are held by tests/test_families.py.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from reslib.layers import ConcatBlock
from reslib.models import densenet
from reslib.models.base import count_parameters
from reslib.models.torchvision_weights import densenet_key, load_densenet


def _meta_count(builder, **options) -> int:  # type: ignore[no-untyped-def]
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        return count_parameters(builder(**options))


def test_cifar_counts_round_to_the_paper() -> None:
    # Huang et al. 2017, Table 2: DenseNet (L=40, k=12) 1.0M, DenseNet-BC (L=100, k=12) 0.8M
    counts = _meta_count(densenet.densenet40), _meta_count(densenet.densenet_bc100)
    assert [f"{n / 1e6:.1f}M" for n in counts] == ["1.0M", "0.8M"]
    assert counts == (1_019_754, 769_210)


@pytest.mark.parametrize("depth", [121, 161, 169, 201])
def test_imagenet_counts_equal_torchvision(depth: int) -> None:
    ours = _meta_count(getattr(densenet, f"densenet{depth}"))
    theirs = _meta_count(getattr(torchvision.models, f"densenet{depth}"), weights=None)
    assert ours == theirs
    if depth == 121:
        assert ours == 7_978_856


def _randomised_torchvision_densenet121() -> nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.densenet121(weights=None)  # random init, no download
    with torch.no_grad():  # BN statistics other than 0/1, so eval mode really uses them
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
    return model.eval()


def _old_style(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's first checkpoints: ``denselayer1.norm.1.weight`` for ``norm1.weight``."""
    renamed = {}
    for key, value in state.items():
        for part in ("norm1", "conv1", "norm2", "conv2"):
            if "denselayer" in key:
                key = key.replace(f".{part}.", f".{part[:-1]}.{part[-1]}.")
        renamed[key] = value
    return renamed


@pytest.mark.parametrize("old_keys", [False, True], ids=["keys", "old-style keys"])
def test_torchvision_weights_give_torchvision_outputs(old_keys: bool) -> None:
    theirs = _randomised_torchvision_densenet121()
    state = theirs.state_dict()
    if old_keys:
        state = _old_style(state)
        assert "features.denseblock1.denselayer1.norm.1.weight" in state
    ours = load_densenet(densenet.densenet121(), state).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
        ours.set_memory_efficient(True)  # the same weights, the same function
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_densenet_keys() -> None:
    assert densenet_key("features.conv0.weight") == "stem.conv.weight"
    assert (
        densenet_key("features.denseblock2.denselayer3.norm.1.running_var")
        == "stages.1.block.2.residual.norm1.running_var"
    )
    assert densenet_key("features.transition3.conv.weight") == "stages.2.transition.conv.weight"
    assert densenet_key("features.norm5.bias") == "head.norm.bias"
    assert densenet_key("classifier.weight") == "head.fc.weight"
    with pytest.raises(ValueError, match="not a torchvision DenseNet"):
        densenet_key("layer1.0.conv1.weight")


def test_a_state_dict_of_another_depth_is_refused() -> None:
    with torch.device("meta"):
        state = torchvision.models.densenet161(weights=None).state_dict()
        model = densenet.densenet121()
    with pytest.raises(ValueError, match="does not fit this model.*same depth"):
        load_densenet(model, state)


def _pair(builder, scope: str = "branch", **options):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    plain = builder(**options)
    efficient = builder(**options)
    efficient.load_state_dict(plain.state_dict())
    efficient.set_memory_efficient(True, scope=scope)  # type: ignore[arg-type]
    return plain, efficient


@pytest.mark.parametrize(
    ("builder", "shape", "scope"),
    [
        (
            lambda: densenet.cifar_densenet(16, 6, bottleneck=True, compression=0.5),
            (4, 3, 16, 16),
            "branch",
        ),
        (
            lambda: densenet.cifar_densenet(16, 6, bottleneck=True, compression=0.5),
            (4, 3, 16, 16),
            "bottleneck",
        ),
        (lambda: densenet.cifar_densenet(10, 4, dim=1, in_channels=1), (4, 24), "branch"),
    ],
    ids=["bc-2d-branch", "bc-2d-bottleneck", "1d"],
)
def test_memory_efficient_equals_plain_in_outputs_and_gradients(builder, shape, scope) -> None:  # type: ignore[no-untyped-def]
    plain, efficient = _pair(builder, scope)
    x = torch.randn(shape)
    outputs, grads = [], []
    for model in (plain, efficient):  # training mode: BatchNorm uses (and updates) batch stats
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        out.square().sum().backward()
        outputs.append(out.detach())
        grads.append([xi.grad] + [p.grad for p in model.parameters()])
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=1e-6)
    for g_eff, g_plain in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(g_eff, g_plain, rtol=1e-5, atol=1e-6)
    for b_eff, b_plain in zip(efficient.buffers(), plain.buffers(), strict=True):
        torch.testing.assert_close(b_eff, b_plain)  # running stats updated once, not twice


def test_memory_efficient_recomputes_in_the_backward_pass() -> None:
    plain, efficient = _pair(lambda: densenet.cifar_densenet(10, 4, bottleneck=True))
    calls: dict[str, int] = {}
    for name, model in (("plain", plain), ("efficient", efficient)):
        first = model.stages[0].block[0].residual.conv1  # type: ignore[union-attr]
        calls[name] = 0
        handle = first.register_forward_hook(lambda *_, n=name: calls.__setitem__(n, calls[n] + 1))
        model(torch.randn(2, 3, 8, 8)).sum().backward()
        handle.remove()
    assert calls == {"plain": 1, "efficient": 2}
    with torch.no_grad():  # nothing to recompute without gradients: no checkpoint at all
        efficient(torch.randn(2, 3, 8, 8))


def test_shapes_growth_and_compression() -> None:
    model = densenet.cifar_densenet(22, 5, bottleneck=True, compression=0.5, num_classes=7)
    assert model.block_config == [3, 3, 3]  # 6n + 4 = 22
    x = model.stem(torch.randn(2, 3, 16, 16))
    assert x.shape == (2, 10, 16, 16)  # 2k stem channels with a bottleneck
    block = model.stages[0].block
    for layer in block:
        y = layer(x)
        assert y.shape == (2, x.shape[1] + 5, 16, 16)  # each layer adds k channels
        assert torch.equal(y[:, : x.shape[1]], x)  # and passes on what it read, unchanged
        x = y
    assert model.stages[0].transition(x).shape == (2, 12, 8, 8)  # floor(0.5 * 25), halved
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    assert isinstance(block[0], ConcatBlock)
    assert isinstance(block[0].shortcut, nn.Identity) and isinstance(block[0].post, nn.Identity)
    assert not hasattr(densenet.cifar_densenet(10, 4).stages[0].block[0].residual, "conv2")


def test_zero_init_layer_appends_zero_channels() -> None:
    layer = densenet.DenseLayer(6, 3, dim=1).eval()
    layer.zero_init_last()
    x = torch.randn(2, 6, 10)
    with torch.no_grad():
        assert torch.equal(layer(x), torch.cat([x, torch.zeros(2, 3, 10)], dim=1))


def test_bad_sizes_raise_with_the_valid_forms() -> None:
    with pytest.raises(ValueError, match=r"6n \+ 4 layers \(10, 16, 28, 76, 100, ...\), got 42"):
        densenet.cifar_densenet(42, bottleneck=True)
    with pytest.raises(ValueError, match=r"3n \+ 4 layers"):
        densenet.cifar_densenet(41)
    with pytest.raises(ValueError, match=r"compression must be in \(0"):
        densenet.cifar_densenet(40, compression=0.0)
    with pytest.raises(ValueError, match="growth_rate must be an int >= 1"):
        densenet.cifar_densenet(40, 0)
    with pytest.raises(ValueError, match="unknown ImageNet DenseNet depth 122"):
        densenet.imagenet_densenet(122)
    with pytest.raises(ValueError, match="unknown scope 'all'"):
        densenet.densenet40().set_memory_efficient(True, scope="all")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expects input of shape"):
        densenet.densenet40()(torch.randn(2, 1, 8, 8))


def test_feature_reuse_reads_the_first_conv_per_source() -> None:
    torch.manual_seed(0)
    model = densenet.cifar_densenet(10, 3, dim=1, in_channels=1)  # 2 layers per block
    block = model.stages[0].block
    heat = densenet.feature_reuse(block, model.stages[0].transition)
    assert heat.shape == (3, 3)
    assert torch.isnan(heat[0, 1:]).all() and torch.isnan(heat[1, 2])  # not readable yet
    assert not torch.isnan(heat[2]).any()  # the transition reads every source
    w = block[1].residual.conv1.weight  # layer 2 reads 16 input channels + layer 1's 3
    torch.testing.assert_close(heat[1, 1], w[:, 16:19].abs().mean())
    torch.testing.assert_close(heat[1, 0], w[:, :16].abs().mean())
    with pytest.raises(ValueError, match="takes a DenseBlock"):
        densenet.feature_reuse(nn.Sequential(nn.Linear(2, 2)))  # type: ignore[arg-type]
