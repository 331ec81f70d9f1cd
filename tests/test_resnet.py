"""Tests of reslib.models.resnet: shapes, parameter counts, weight loading, gradients, init."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import reslib
from reslib.data import loaders, random_crop_flip, synthetic_images
from reslib.models import plain, resnet
from reslib.models.resnet import count_parameters

CIFAR_DEPTHS = (20, 32, 44, 56, 110)
# He et al. 2016, Table 6, parameters as printed in the paper
TABLE6 = {20: "0.27M", 32: "0.46M", 44: "0.66M", 56: "0.85M", 110: "1.7M", 1202: "19.4M"}
TORCHVISION = {
    18: 11_689_512,
    34: 21_797_672,
    50: 25_557_032,
    101: 44_549_160,
    152: 60_192_808,
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def stage_shapes(model: resnet.ResNet, x: torch.Tensor) -> list[tuple[int, ...]]:
    h = model.stem(model.prepare(x))
    shapes = []
    for stage in model.stages:
        h = stage(h)
        shapes.append(tuple(h.shape[1:]))
    return shapes


def paper_rounding(n: int) -> str:
    # the paper prints two decimals below one million and one decimal above
    return f"{n / 1e6:.2f}M" if n < 1_000_000 else f"{n / 1e6:.1f}M"


# ---------------------------------------------------------------- shapes and downsampling


@pytest.mark.parametrize("depth", CIFAR_DEPTHS)
@pytest.mark.parametrize("family", ["resnet", "plain"])
def test_cifar_builders_shapes_and_stage_downsampling(family: str, depth: int) -> None:
    model = getattr(resnet, f"{family}{depth}")(num_classes=7)
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 7)
    assert stage_shapes(model, x) == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert sum(len(stage) for stage in model.stages) == (depth - 2) // 2


@pytest.mark.parametrize("depth", [18, 50])  # one per block type; 34/101/152 only add blocks
def test_imagenet_builders_shapes_and_stage_downsampling(depth: int) -> None:
    model = getattr(resnet, f"resnet{depth}")(num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert model(x).shape == (1, 5)
        shapes = stage_shapes(model, x)
    expansion = 1 if depth < 50 else 4
    # the stem (7x7/2 conv, 3x3/2 max-pool) takes 64 -> 16, then stages 2..4 halve it
    assert shapes == [
        (64 * expansion, 16, 16),
        (128 * expansion, 8, 8),
        (256 * expansion, 4, 4),
        (512 * expansion, 2, 2),
    ]


@pytest.mark.parametrize("builder", [resnet.resnet1d, resnet.plain1d])
def test_1d_variants_shapes_and_stage_downsampling(builder) -> None:
    model = builder(14, width=4, num_classes=10)
    x = torch.randn(3, 40)  # MNIST-1D: (B, L)
    assert model(x).shape == (3, 10)
    assert model(x.unsqueeze(1)).shape == (3, 10)
    assert stage_shapes(model, x) == [(4, 40), (8, 20), (16, 10)]
    assert all(isinstance(m, nn.Conv1d) for m in model.modules() if "Conv" in type(m).__name__)


# ---------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("depth", sorted(TABLE6))
def test_cifar_parameter_counts_match_he_et_al_table6(depth: int) -> None:
    model = resnet.cifar_resnet(depth)  # no forward pass: ResNet-1202 is slow on a CPU
    assert [len(stage) for stage in model.stages] == [(depth - 2) // 6] * 3
    assert paper_rounding(count_parameters(model)) == TABLE6[depth]


def test_cifar_exact_parameter_counts() -> None:
    # option A: 3x3 convs, BN and the classifier only; pinned so a change is noticed
    assert count_parameters(resnet.resnet20()) == 269_722
    assert count_parameters(resnet.resnet56()) == 853_018
    assert count_parameters(resnet.resnet110()) == 1_727_962


@pytest.mark.parametrize("depth", CIFAR_DEPTHS)
def test_plain_twin_has_the_parameter_count_of_option_a(depth: int) -> None:
    twin = getattr(resnet, f"plain{depth}")()
    assert count_parameters(twin) == count_parameters(getattr(resnet, f"resnet{depth}")())
    assert all(isinstance(b.shortcut, plain.Zero) for b in twin.blocks())


def test_plain1d_twin_has_the_parameter_count_of_resnet1d() -> None:
    assert count_parameters(resnet.plain1d(20, width=8)) == count_parameters(
        resnet.resnet1d(20, width=8)
    )


@pytest.mark.parametrize("depth", sorted(TORCHVISION))
def test_imagenet_parameter_counts_equal_torchvision(depth: int) -> None:
    ours = getattr(resnet, f"resnet{depth}")()
    theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    assert count_parameters(ours) == count_parameters(theirs) == TORCHVISION[depth]
    assert [len(stage) for stage in ours.stages] == [
        len(getattr(theirs, f"layer{i}")) for i in range(1, 5)
    ]


def test_shortcut_options_parameters() -> None:
    a, b, c = (resnet.resnet20(shortcut=s) for s in "ABC")
    shortcut_params = [[count_parameters(blk.shortcut) for blk in m.blocks()] for m in (a, b, c)]
    assert sum(shortcut_params[0]) == 0  # option A: no parameters at all
    assert all(isinstance(blk.shortcut, (nn.Identity, resnet.PadShortcut)) for blk in a.blocks())
    # option B: projections exactly where the shape changes (first block of stages 2 and 3)
    assert [n > 0 for n in shortcut_params[1]] == [
        i > 0 and j == 0 for i, stage in enumerate(b.stages) for j in range(len(stage))
    ]
    assert all(n > 0 for n in shortcut_params[2])  # option C: everywhere
    # B adds 16*32 + 2*32 + 32*64 + 2*64 weights, C adds 1x1 convs to all 9 blocks
    assert count_parameters(b) - count_parameters(a) == 16 * 32 + 64 + 32 * 64 + 128
    assert count_parameters(a) < count_parameters(b) < count_parameters(c)


# ---------------------------------------------------------------- torchvision weights


def randomised(model: nn.Module) -> nn.Module:
    """Random weights *and* BN statistics, so a mis-mapped BN key cannot go unnoticed."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
            elif t.is_floating_point():
                t.normal_(0, 0.1 if t.ndim > 1 else 0.5)
    return model


@pytest.mark.parametrize("depth", [18, 50])
def test_loading_torchvision_weights_gives_identical_outputs(depth: int) -> None:
    theirs = randomised(getattr(torchvision.models, f"resnet{depth}")(weights=None)).eval()
    ours = getattr(resnet, f"resnet{depth}")()
    returned = resnet.load_torchvision_state_dict(ours, theirs.state_dict())
    assert returned is ours
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_loading_mismatched_weights_raises() -> None:
    r18 = torchvision.models.resnet18(weights=None).state_dict()
    r34 = resnet.resnet34()
    with pytest.raises(ValueError, match="missing"):
        resnet.load_torchvision_state_dict(r34, r18)
    with pytest.raises(ValueError, match="unexpected"):  # option A has no downsample weights
        resnet.load_torchvision_state_dict(resnet.resnet18(shortcut="A"), r18)
    with pytest.raises(ValueError, match="wrong shape"):
        resnet.load_torchvision_state_dict(resnet.resnet18(num_classes=10), r18)
    with pytest.raises(ValueError, match="not a torchvision ResNet"):
        resnet.load_torchvision_state_dict(resnet.resnet18(), {"features.0.weight": r18["fc.bias"]})


def test_torchvision_key_mapping() -> None:
    assert resnet.torchvision_key("conv1.weight") == "stem.conv.weight"
    assert resnet.torchvision_key("bn1.running_mean") == "stem.bn.running_mean"
    assert resnet.torchvision_key("layer3.4.bn2.bias") == "stages.2.4.residual.bn2.bias"
    assert (
        resnet.torchvision_key("layer2.0.downsample.0.weight") == "stages.1.0.shortcut.conv.weight"
    )
    assert resnet.torchvision_key("layer4.0.downsample.1.weight") == "stages.3.0.shortcut.bn.weight"
    assert resnet.torchvision_key("fc.weight") == "head.fc.weight"


# ---------------------------------------------------------------- gradients and init


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: resnet.resnet20(shortcut="A"), (4, 3, 32, 32)),
        (lambda: resnet.resnet20(shortcut="B"), (4, 3, 32, 32)),
        (lambda: resnet.resnet20(shortcut="C"), (4, 3, 32, 32)),
        (lambda: resnet.resnet20(skip="detached", shortcut="B"), (4, 3, 32, 32)),
        (resnet.plain20, (4, 3, 32, 32)),
        (lambda: resnet.resnet18(num_classes=10), (2, 3, 64, 64)),
        (lambda: resnet.resnet50(num_classes=10), (2, 3, 64, 64)),
        (lambda: resnet.resnet1d(14, width=4), (4, 40)),
    ],
)
def test_every_parameter_receives_a_gradient(make, shape) -> None:
    model = make()
    x, y = torch.randn(*shape), torch.randint(0, 10, (shape[0],))
    nn.functional.cross_entropy(model(x), y).backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not silent


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: resnet.resnet20(zero_init_residual=True), (2, 3, 32, 32)),
        (lambda: resnet.resnet20(zero_init_residual=True, shortcut="B"), (2, 3, 32, 32)),
        (lambda: resnet.resnet50(zero_init_residual=True), (2, 3, 32, 32)),
        (lambda: resnet.resnet1d(20, width=8, zero_init_residual=True), (2, 40)),
    ],
)
@pytest.mark.parametrize("train", [True, False])
def test_zero_init_residual_makes_every_block_the_identity(make, shape, train: bool) -> None:
    model = make().train(train)
    h = model.stem(model.prepare(torch.randn(*shape)))
    with torch.no_grad():
        for block in model.blocks():
            assert not block.residual[-1].weight.any()  # the last BN's gamma
            x = torch.relu(torch.randn_like(h) + h)  # a non-negative block input
            if isinstance(block.shortcut, nn.Identity):
                assert torch.equal(block(x), x)  # relu(0 + x) = x for x >= 0
            else:  # where the shape changes the block reduces to its shortcut
                assert torch.equal(block(x), block.act(block.shortcut(x)))
            h = block(h)


def test_default_init_is_not_the_identity() -> None:
    block = resnet.BasicBlock(8, 8)
    x = torch.relu(torch.randn(2, 8, 6, 6))
    assert not torch.allclose(block(x), x)


def test_option_a_shortcut_subsamples_and_zero_pads() -> None:
    pad = resnet.PadShortcut(2, 5, stride=2)
    x = torch.randn(1, 2, 4, 4)
    y = pad(x)
    assert y.shape == (1, 5, 2, 2)
    assert torch.equal(y[:, :2], x[:, :, ::2, ::2])
    assert not y[:, 2:].any()
    assert pad(torch.randn(1, 2, 6)).shape == (1, 5, 3)  # also 1-D


def test_detached_shortcut_same_forward_no_gradient_through_the_skip() -> None:
    residual = resnet.resnet20()
    detached = resnet.resnet20(skip="detached")
    detached.load_state_dict(residual.state_dict())  # option A: identical parameters
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(detached(x), residual(x))
    block = detached.stages[0][0]
    h = torch.randn(2, 16, 8, 8, requires_grad=True)
    assert torch.equal(block.shortcut(h), h)
    assert not block.shortcut(h).requires_grad  # values pass forward, nothing flows back


def test_no_inplace_activations() -> None:
    for model in (resnet.resnet20(), resnet.resnet50()):
        assert all(not m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("depth", [7, 19, 21, 0, -4])
def test_depth_not_6n_plus_2_raises(depth: int) -> None:
    with pytest.raises(ValueError, match="6n \\+ 2"):
        resnet.cifar_resnet(depth)
    with pytest.raises(ValueError, match="6n \\+ 2"):
        resnet.resnet1d(depth)


def test_unknown_options_raise_and_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="expected one of A, B, C"):
        resnet.resnet20(shortcut="D")
    with pytest.raises(ValueError, match="skip"):
        resnet.resnet20(skip="gated")
    with pytest.raises(ValueError, match="18, 34, 50, 101, 152"):
        resnet.imagenet_resnet(19)
    with pytest.raises(ValueError, match="option A can only add channels"):
        resnet.PadShortcut(8, 4)


def test_wrong_input_shape_raises() -> None:
    with pytest.raises(ValueError, match=r"\(batch, 3, H, W\)"):
        resnet.resnet20()(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(batch, 1, L\)"):
        resnet.resnet1d(8, width=4)(torch.randn(2, 40, 2, 2))


# ---------------------------------------------------------------- the full-profile path


def test_full_profile_training_path_runs_and_loss_decreases() -> None:
    """reslib.fit on CIFAR-shaped data with the paper's augmentation and SGD recipe."""
    split = synthetic_images(256, 64, shape=(3, 16, 16), num_classes=2, seed=0)
    train, test = loaders(split, batch_size=32, augment=random_crop_flip, seed=0)
    model = resnet.cifar_resnet(20, num_classes=2, width=8)
    config = reslib.TrainConfig(
        epochs=6,
        lr=0.1,
        optimizer="sgd",
        momentum=0.9,
        weight_decay=1e-4,
        schedule="multistep",
        milestones=(0.5, 0.75),
    )
    history = reslib.fit(model, train, config, test_loader=test, progress=False)
    assert len(history) == 6
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.test_acc[-1] > 0.75  # well above chance (2 classes) on held-out data


# ---------------------------------------------------------------- growing a trained net


def test_append_blocks_keeps_the_function_and_matches_the_stage() -> None:
    model = resnet.resnet1d(14, width=4).eval()
    x = torch.randn(5, 40)
    with torch.no_grad():
        before = model(x)
        new = resnet.append_blocks(model, 2)
        after = model(x)
    assert len(new) == 2 and len(model.stages[-1]) == 4
    assert all(isinstance(b.residual.conv1, nn.Conv1d) for b in new)
    assert torch.equal(before, after)  # zero-init blocks are the identity
    resnet.append_blocks(model, 1, stage=0, zero_init_residual=False)
    assert model(x).shape == (5, 10)
    with pytest.raises(ValueError, match="count"):
        resnet.append_blocks(model, 0)
    with pytest.raises(ValueError, match="stage"):
        resnet.append_blocks(model, 1, stage=3)
