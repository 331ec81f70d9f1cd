"""The U-Net family (reslib.models.unet): shapes, parameter counts, the three skips as
blocks, per-scale skips, and clear errors. The family-wide conventions (gradients, zero-init,
lesions, hooks, plain twins, state dicts) are in tests/test_families.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reslib.diagnostics import branch_norms, lesion
from reslib.layers import ConcatBlock, ResidualBlock, Zero
from reslib.models import unet as U
from reslib.models.base import count_parameters


def _meta_count(**options: object) -> int:
    with torch.device("meta"):  # shapes only
        return count_parameters(U.unet(**options))  # type: ignore[arg-type]


@pytest.mark.parametrize("upsample", U.UPSAMPLINGS)
@pytest.mark.parametrize("skip", U.SKIPS)
def test_output_keeps_the_image_size(skip: str, upsample: str) -> None:
    torch.manual_seed(0)
    model = U.unet(3, 5, depth=3, width=4, skip=skip, upsample=upsample)  # type: ignore[arg-type]
    assert model(torch.randn(2, 3, 16, 24)).shape == (2, 5, 16, 24)


def test_a_grey_image_without_channel_axis_is_accepted() -> None:
    model = U.unet(1, 2, depth=2, width=4)
    assert model(torch.randn(2, 8, 8)).shape == (2, 2, 8, 8)


def test_paper_sized_counts_and_the_difference_between_concat_and_add() -> None:
    concat = _meta_count(in_channels=3, num_classes=2)
    add = _meta_count(in_channels=3, num_classes=2, skip="add")
    none = _meta_count(in_channels=3, num_classes=2, skip="none")
    assert concat == 31_037_698  # 5 scales, 64..1024 channels, padded convs with BatchNorm
    assert none == concat  # the plain twin concatenates zeros: the same layers
    # add: each decoder's first 3x3 conv reads c_s instead of 2 c_s channels (no bias: BN)
    assert concat - add == sum(9 * c * c for c in (64, 128, 256, 512))


def test_levels_are_blocks_nested_finest_first() -> None:
    model = U.unet(1, 2, depth=4, width=4)
    levels = model.levels()
    assert len(levels) == 3 and levels[0] is model.body
    assert all(isinstance(level, ConcatBlock) for level in levels)
    assert levels[1] in list(levels[0].residual.children())
    add = U.unet(1, 2, depth=4, width=4, skip="add").levels()
    assert all(isinstance(level, ResidualBlock) for level in add)


def test_level_computes_its_equation() -> None:
    torch.manual_seed(0)
    model = U.unet(1, 2, depth=2, width=4).eval()
    level, e = model.body, torch.randn(2, 4, 8, 8)  # e: encoder features at scale 0
    with torch.no_grad():
        expected = level.post(torch.cat([e, level.residual(e)], dim=1))  # D([e, U(.)])
        assert torch.equal(level(e), expected)
    add = U.unet(1, 2, depth=2, width=4, skip="add").eval().body
    with torch.no_grad():
        assert torch.equal(add(e), add.post(e + add.residual(e)))


def test_per_scale_skips_remove_exactly_the_chosen_scales() -> None:
    concat = U.unet(1, 2, depth=4, width=4, skips=(True, False, True)).levels()
    assert [isinstance(lv.shortcut, U.ZerosLike) for lv in concat] == [False, True, False]
    add = U.unet(1, 2, depth=4, width=4, skip="add", skips=(False, True, True)).levels()
    assert [isinstance(lv.shortcut, Zero) for lv in add] == [True, False, False]
    # removing a skip keeps every layer: the count is the intact net's
    assert _meta_count(depth=4, width=4, skips=(True, False, True)) == _meta_count(depth=4, width=4)


def test_without_skips_the_output_does_not_depend_on_the_encoders_features() -> None:
    torch.manual_seed(0)
    model = U.unet(1, 2, depth=3, width=4, skip="none").eval()
    level, e = model.body, torch.randn(2, 4, 8, 8, requires_grad=True)
    out = level.post(torch.cat([level.shortcut(e), torch.zeros(2, 4, 8, 8)], dim=1))
    out.sum().backward()
    assert e.grad is None  # no path from e through the (zero) shortcut


def test_zero_init_last_makes_every_level_its_skip_path() -> None:
    torch.manual_seed(0)
    model = U.unet(1, 3, depth=3, width=4, skip="add", zero_init_last=True).eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad(), lesion(model, model.levels()):
        lesioned = model(x)
    with torch.no_grad():
        assert torch.equal(model(x), lesioned)
        e = model.stem(x)
        assert torch.equal(model.body(e), model.body.post(e))  # post(0 + e)


def test_branch_norms_see_every_level() -> None:
    torch.manual_seed(0)
    model = U.unet(1, 2, depth=3, width=4, skip="add")
    norms = branch_norms(model, torch.randn(2, 1, 8, 8))
    assert len(norms) == 2 and all(0 < v < float("inf") for v in norms.values())


def test_the_interpolating_upsampler_is_bilinear_then_conv() -> None:
    up = U.unet(1, 2, depth=2, width=4, upsample="interpolate").body.residual[-1]
    assert isinstance(up, nn.Sequential) and isinstance(up[0], nn.Upsample)
    assert isinstance(up[1], nn.Conv2d) and up[1].kernel_size == (3, 3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(skip="residual"), r"unknown skip 'residual': expected one of concat, add, none"),
        (dict(upsample="nearest"), r"unknown upsample 'nearest': expected one of transpose"),
        (dict(depth=1), r"depth must be an int >= 2"),
        (dict(width=0), r"width must be an int >= 1"),
        (dict(depth=3, skips=(True,)), r"skips needs one bool per level, finest first: 2"),
        (dict(depth=3, skips=(1, 0)), r"skips needs one bool per level"),
        (dict(skip="none", skips=(True, False, False, False)), r'skip="none" has no skips'),
    ],
)
def test_bad_options_raise_clearly(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        U.unet(**options)  # type: ignore[arg-type]


def test_input_size_must_divide_by_the_pooling() -> None:
    model = U.unet(1, 2, depth=3, width=4)
    with pytest.raises(ValueError, match=r"divisible by 4, got \(10, 12\)"):
        model(torch.randn(1, 1, 10, 12))
    with pytest.raises(ValueError, match=r"UNet expects input of shape \(batch, 1, H, W\)"):
        model(torch.randn(1, 3, 8, 8))
