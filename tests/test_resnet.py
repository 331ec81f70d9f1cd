"""Tests of reslib.models.resnet and reslib.models.torchvision_weights: shapes, parameter counts,
weight loading, gradients, zero-init and growing a net."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import reslib
from reslib.data import loaders, random_crop_flip, synthetic_images
from reslib.layers import Detached, PadShortcut, Projection, Zero, blocks
from reslib.models import resnet
from reslib.models.base import channels_first_input, count_parameters
from reslib.models.torchvision_weights import load_resnet, resnet_key
from reslib.papers import HE2016_TABLE6

CIFAR_DEPTHS = (20, 32, 44, 56, 110)
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
    x = channels_first_input(x, dim=model.dim, in_channels=model.in_channels, model="ResNet")
    h = model.stem(x)
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
@pytest.mark.parametrize("skip", ["identity", "none"])
def test_cifar_builders_shapes_and_stage_downsampling(skip: str, depth: int) -> None:
    model = resnet.cifar_resnet(depth, num_classes=7, skip=skip).eval()  # type: ignore[arg-type]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (1, 7)
        assert stage_shapes(model, x) == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert sum(len(stage) for stage in model.stages) == (depth - 2) // 2
    assert len(list(blocks(model))) == (depth - 2) // 2


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


@pytest.mark.parametrize("skip", ["identity", "none"])
def test_1d_nets_shapes_and_stage_downsampling(skip: str) -> None:
    model = resnet.cifar_resnet(14, width=4, num_classes=10, dim=1, in_channels=1, skip=skip)
    x = torch.randn(3, 40)  # MNIST-1D: (B, L)
    assert model(x).shape == (3, 10)
    assert model(x.unsqueeze(1)).shape == (3, 10)
    assert stage_shapes(model, x) == [(4, 40), (8, 20), (16, 10)]
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    assert len(convs) == 13 and all(isinstance(m, nn.Conv1d) for m in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


# ---------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("depth", sorted(HE2016_TABLE6))
def test_cifar_parameter_counts_match_he_et_al_table6(depth: int) -> None:
    with torch.device("meta"):  # no memory, no forward pass: ResNet-1202 is large
        model = resnet.cifar_resnet(depth)
    assert [len(stage) for stage in model.stages] == [(depth - 2) // 6] * 3
    assert paper_rounding(count_parameters(model)) == HE2016_TABLE6[depth].params


def test_cifar_exact_parameter_counts() -> None:
    # option A: 3x3 convs, BN and the classifier only; pinned so a change is noticed
    with torch.device("meta"):
        assert count_parameters(resnet.resnet20()) == 269_722
        assert count_parameters(resnet.resnet56()) == 853_018
        assert count_parameters(resnet.resnet110()) == 1_727_962


@pytest.mark.parametrize("depth", CIFAR_DEPTHS)
def test_plain_twin_has_the_parameter_count_of_option_a(depth: int) -> None:
    with torch.device("meta"):
        twin = resnet.cifar_resnet(depth, skip="none")
        residual = getattr(resnet, f"resnet{depth}")()
    assert count_parameters(twin) == count_parameters(residual)
    twin_blocks = list(blocks(twin))
    assert len(twin_blocks) == (depth - 2) // 2
    assert all(isinstance(b.shortcut, Zero) for b in twin_blocks)


@pytest.mark.parametrize("depth", [20, 56])
def test_named_plain_builders_are_the_skip_none_twins(depth: int) -> None:
    twin = getattr(resnet, f"plain{depth}")(num_classes=5, width=4)
    reference = resnet.cifar_resnet(depth, num_classes=5, width=4, skip="none")
    assert [(n, p.shape) for n, p in twin.named_parameters()] == [
        (n, p.shape) for n, p in reference.named_parameters()
    ]
    assert all(isinstance(b.shortcut, Zero) for b in blocks(twin))
    assert len(list(blocks(twin))) == (depth - 2) // 2


def test_1d_plain_twin_has_the_parameter_count_of_the_1d_resnet() -> None:
    counts = [
        count_parameters(resnet.cifar_resnet(20, width=8, dim=1, skip=skip))
        for skip in ("identity", "none", "detached")
    ]
    assert counts[0] == counts[1] == counts[2]


@pytest.mark.parametrize("depth", sorted(TORCHVISION))
def test_imagenet_parameter_counts_equal_torchvision(depth: int) -> None:
    with torch.device("meta"):
        ours = getattr(resnet, f"resnet{depth}")()
        theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    assert count_parameters(ours) == count_parameters(theirs) == TORCHVISION[depth]
    assert [len(stage) for stage in ours.stages] == [
        len(getattr(theirs, f"layer{i}")) for i in range(1, 5)
    ]
    assert list(ours.state_dict()) == [resnet_key(k) for k in theirs.state_dict()]


def test_shortcut_options_parameters() -> None:
    with torch.device("meta"):
        a, b, c = (resnet.resnet20(shortcut=s) for s in "ABC")
    shortcut_params = [[count_parameters(blk.shortcut) for blk in blocks(m)] for m in (a, b, c)]
    assert [len(p) for p in shortcut_params] == [9, 9, 9]
    assert sum(shortcut_params[0]) == 0  # option A: no parameters at all
    assert [type(blk.shortcut) for blk in blocks(a)] == [nn.Identity] * 3 + (
        [PadShortcut] + [nn.Identity] * 2
    ) * 2
    # option B: projections exactly where the shape changes (first block of stages 2 and 3)
    assert [type(blk.shortcut) for blk in blocks(b)] == [nn.Identity] * 3 + (
        [Projection] + [nn.Identity] * 2
    ) * 2
    assert all(isinstance(blk.shortcut, Projection) for blk in blocks(c))  # option C: everywhere
    # B adds 16*32 + 2*32 + 32*64 + 2*64 weights; C adds a 1x1 conv + BN to the other 7 blocks
    assert count_parameters(b) - count_parameters(a) == 16 * 32 + 64 + 32 * 64 + 128
    assert count_parameters(c) - count_parameters(b) == 2 * (16 * 16 + 32) + 2 * (
        32 * 32 + 64
    ) + 2 * (64 * 64 + 128) + (16 * 16 + 32)


def test_bottleneck_defaults_to_option_b_and_basic_to_a() -> None:
    assert isinstance(resnet.Bottleneck(64, 64).shortcut, Projection)  # 64 -> 256 channels
    assert isinstance(resnet.BasicBlock(16, 32, 2).shortcut, PadShortcut)
    assert isinstance(resnet.BasicBlock(16, 32, 2, shortcut="B").shortcut, Projection)
    assert isinstance(resnet.Bottleneck(256, 64).shortcut, nn.Identity)
    block = resnet.Bottleneck(16, 8, 2, dim=1)
    assert block(torch.randn(2, 16, 10)).shape == (2, 32, 5)
    assert block.residual.conv2.stride == (2,)  # v1.5: the stride sits on the 3x3 conv


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
    before = ours.stages[0][0].residual.conv1.weight.clone()
    returned = load_resnet(ours, theirs.state_dict())
    assert returned is ours
    assert not torch.equal(ours.stages[0][0].residual.conv1.weight, before)  # it did load
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_loading_mismatched_weights_raises() -> None:
    r18 = torchvision.models.resnet18(weights=None).state_dict()
    with torch.device("meta"):
        r34, a18, r18_10 = (
            resnet.resnet34(),
            resnet.resnet18(shortcut="A"),
            resnet.resnet18(num_classes=10),
        )
    with pytest.raises(ValueError, match=r"same depth.*missing \['stages\.0\.2\."):
        load_resnet(r34, r18)
    with pytest.raises(ValueError, match=r"unexpected \['stages\.1\.0\.shortcut"):  # option A
        load_resnet(a18, r18)
    with pytest.raises(ValueError, match=r"wrong shape \['head\.fc\.bias: \(1000,\) vs \(10,\)"):
        load_resnet(r18_10, r18)
    with pytest.raises(ValueError, match="'features.0.weight' is not a torchvision ResNet"):
        load_resnet(resnet.resnet18(), {"features.0.weight": r18["fc.bias"]})


def test_resnet_key_mapping() -> None:
    assert resnet_key("conv1.weight") == "stem.conv.weight"
    assert resnet_key("bn1.running_mean") == "stem.bn.running_mean"
    assert resnet_key("layer1.0.conv1.weight") == "stages.0.0.residual.conv1.weight"
    assert resnet_key("layer3.4.bn2.bias") == "stages.2.4.residual.bn2.bias"
    assert resnet_key("layer2.0.downsample.0.weight") == "stages.1.0.shortcut.conv.weight"
    assert resnet_key("layer4.0.downsample.1.weight") == "stages.3.0.shortcut.bn.weight"
    assert resnet_key("layer4.2.bn3.num_batches_tracked") == (
        "stages.3.2.residual.bn3.num_batches_tracked"
    )
    assert resnet_key("fc.weight") == "head.fc.weight"
    with pytest.raises(ValueError, match="'classifier.weight' is not a torchvision ResNet"):
        resnet_key("classifier.weight")


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
        (lambda: resnet.cifar_resnet(14, width=4, dim=1, in_channels=1), (4, 40)),
        (lambda: resnet.cifar_resnet(8, width=4, activation="tanh"), (4, 3, 16, 16)),
    ],
)
def test_every_parameter_receives_a_gradient(make, shape) -> None:
    model = make()
    x, y = torch.randn(*shape), torch.randint(0, 10, (shape[0],))
    nn.functional.cross_entropy(model(x), y).backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not silent
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(
    "make, shape, identities",
    [
        (lambda: resnet.resnet20(zero_init_last=True), (2, 3, 32, 32), 7),
        (lambda: resnet.resnet20(zero_init_last=True, shortcut="B"), (2, 3, 32, 32), 7),
        (lambda: resnet.resnet20(zero_init_last=True, shortcut="C"), (2, 3, 32, 32), 0),
        (lambda: resnet.resnet50(zero_init_last=True), (2, 3, 32, 32), 12),
        (
            lambda: resnet.cifar_resnet(20, width=8, dim=1, in_channels=1, zero_init_last=True),
            (2, 40),
            7,
        ),
    ],
)
@pytest.mark.parametrize("train", [True, False])
def test_zero_init_last_makes_every_block_its_skip_path(
    make, shape, identities: int, train: bool
) -> None:
    model = make().train(train)
    x = torch.randn(*shape)
    h = model.stem(channels_first_input(x, dim=model.dim, in_channels=model.in_channels, model=""))
    checked = identity_checked = 0
    with torch.no_grad():
        for block in blocks(model):
            assert not block.residual[-1].weight.any()  # the last BN's gamma (and beta)
            assert not block.residual[-1].bias.any()
            x = torch.relu(torch.randn_like(h) + h)  # a non-negative block input
            assert torch.equal(block(x), block.skip_path(x))
            checked += 1
            if isinstance(block.shortcut, nn.Identity):
                assert torch.equal(block(x), x)  # relu(0 + x) = x for x >= 0
                identity_checked += 1
            h = block(h)
    assert checked == len(list(blocks(model))) and checked > 0
    assert identity_checked == identities


def test_default_init_is_not_the_identity() -> None:
    block = resnet.BasicBlock(8, 8).eval()  # eval: BN with its initial statistics (0, 1)
    x = torch.relu(torch.randn(2, 8, 6, 6))
    with torch.no_grad():
        f = block.residual(x)
        y = block(x)
    assert torch.equal(y, torch.relu(f + x))  # the equation, exactly
    assert torch.isfinite(f).all()
    # He init keeps the scale: the branch is comparable to its input, neither 0 nor exploding
    ratio = (f.norm() / x.norm()).item()
    assert 0.2 < ratio < 5.0
    assert 0.1 < ((y - x).norm() / x.norm()).item() < 5.0


def test_zero_init_last_on_an_existing_block() -> None:
    block = resnet.BasicBlock(4, 8, 2).eval()
    x = torch.randn(2, 4, 6, 6)
    assert not torch.equal(block(x), block.skip_path(x))
    block.zero_init_last()
    assert torch.equal(block(x), block.skip_path(x))
    assert torch.equal(block.skip_path(x), torch.relu(block.shortcut(x)))


def test_detached_shortcut_same_forward_no_gradient_through_the_skip() -> None:
    residual = resnet.resnet20()
    detached = resnet.resnet20(skip="detached")
    detached.load_state_dict(residual.state_dict())  # option A: identical parameters
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(detached(x), residual(x))
    block = detached.stages[0][0]
    assert isinstance(block.shortcut[0], Detached)
    h = torch.randn(2, 16, 8, 8, requires_grad=True)
    assert torch.equal(block.shortcut(h), h)
    assert not block.shortcut(h).requires_grad  # values pass forward, nothing flows back
    assert torch.equal(block.skip_path(h), torch.relu(h))


def test_plain_block_contributes_no_skip() -> None:
    block = resnet.plain20().stages[1][0].eval()  # the reshaping block: no padding either
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(block(x), torch.relu(block.residual(x)))
    assert float(block.skip_path(x)) == 0.0


def test_no_inplace_activations() -> None:
    for model in (resnet.resnet20(), resnet.resnet50()):
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        assert relus and not any(m.inplace for m in relus)


def test_activation_reaches_the_stem() -> None:
    model = resnet.cifar_resnet(8, width=4, activation="tanh")
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("depth", [7, 19, 21, 0, -4, 20.0, True])
def test_depth_not_6n_plus_2_raises(depth) -> None:
    with pytest.raises(ValueError, match=r"6n \+ 2 layers .*got " + repr(depth)):
        resnet.cifar_resnet(depth)
    with pytest.raises(ValueError, match=r"6n \+ 2"):
        resnet.cifar_resnet(depth, dim=1)


def test_unknown_options_raise_and_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown shortcut 'D': expected one of A, B, C"):
        resnet.resnet20(shortcut="D")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown skip 'gated': expected one of identity, none"):
        resnet.resnet20(skip="gated")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="18, 34, 50, 101, 152"):
        resnet.imagenet_resnet(19)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        resnet.resnet20(activation="swish")
    with pytest.raises(ValueError, match="unknown dim 3"):
        resnet.resnet20(dim=3)
    with pytest.raises(ValueError, match="plain20 is the skip='none' twin"):
        resnet.plain20(skip="identity")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: resnet.resnet20(in_channels=0), "in_channels must be an int >= 1, got 0"),
        (lambda: resnet.resnet20(width=2.5), "width must be an int >= 1, got 2.5"),
        (lambda: resnet.resnet20(width=0), "width must be an int >= 1, got 0"),
        (lambda: resnet.resnet20(num_classes=0), "num_classes must be an int >= 1, got 0"),
        (lambda: resnet.BasicBlock(8, 8, stride=0), "stride must be an int >= 1, got 0"),
        (lambda: resnet.Bottleneck(8, 0), "planes must be an int >= 1, got 0"),
        (lambda: resnet.BasicBlock(True, 8), "in_channels must be an int >= 1, got True"),
    ],
)
def test_impossible_sizes_raise(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_wrong_input_shape_raises() -> None:
    with pytest.raises(ValueError, match=r"\(batch, 3, H, W\), got \(2, 1, 32, 32\)"):
        resnet.resnet20()(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(batch, 3, H, W\), got \(3, 32, 32\)"):
        resnet.resnet20()(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match=r"\(batch, 1, L\) or \(batch, L\), got \(2, 40, 2, 2\)"):
        resnet.cifar_resnet(8, width=4, dim=1, in_channels=1)(torch.randn(2, 40, 2, 2))


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
    assert history.metric == "accuracy"
    assert history.test_metric[-1] > 0.75  # well above chance (2 classes) on held-out data


# ---------------------------------------------------------------- growing a trained net


@pytest.mark.parametrize("train", [False, True])
def test_append_blocks_keeps_the_function_and_matches_the_stage(train: bool) -> None:
    model = resnet.cifar_resnet(14, width=4, dim=1, in_channels=1).train(train)
    x = torch.randn(5, 40)
    with torch.no_grad():
        before = model(x)
        new = resnet.append_blocks(model, 2)
        after = model(x)
    assert len(new) == 2 and len(model.stages[-1]) == 4
    assert [b for b in model.stages[-1]][-2:] == new
    assert all(isinstance(b.residual.conv1, nn.Conv1d) for b in new)
    assert all(b.residual.conv1.in_channels == 16 for b in new)
    assert torch.equal(before, after)  # zero-init blocks are the identity
    first = resnet.append_blocks(model, 1, stage=0, zero_init_last=False)
    assert first[0].residual.bn2.weight.all() and len(model.stages[0]) == 3
    assert model(x).shape == (5, 10)
    with pytest.raises(ValueError, match="count must be an int >= 1, got 0"):
        resnet.append_blocks(model, 0)
    with pytest.raises(ValueError, match="stage must index one of the 3 stages, got 3"):
        resnet.append_blocks(model, 1, stage=3)


def test_append_blocks_to_an_imagenet_bottleneck_net_and_options() -> None:
    model = resnet.resnet50(num_classes=3, shortcut="C").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        (block,) = resnet.append_blocks(model, 1, stage=1)
        # option C: the new block projects too, so it is relu(W_s x), not the identity
        assert isinstance(block.shortcut, Projection) and block.residual.conv3.out_channels == 512
        assert not torch.equal(model(x), before)
    plain = resnet.plain20().eval()
    (twin,) = resnet.append_blocks(plain, 1)
    assert isinstance(twin.shortcut, Zero)  # the plain twin stays plain


def test_append_blocks_to_an_eval_model_adds_eval_blocks() -> None:
    model = resnet.cifar_resnet(8, width=4, dim=1, in_channels=1).eval()
    new = resnet.append_blocks(model, 1, zero_init_last=False)
    assert not any(m.training for m in new[0].modules())
