"""The boundary F-score (reslib.train.metrics.BoundaryF1) against hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from reslib.train.metrics import BoundaryF1, MeanIoU


def logits(labels: torch.Tensor, num_classes: int = 2) -> torch.Tensor:
    """One-hot "logits" (B, C, H, W) whose arg-max is ``labels`` (B, H, W)."""
    return torch.nn.functional.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()


def square(left: int) -> torch.Tensor:
    """A 6x6 image with a 4x4 square of class 1 at rows 1-4 and columns left..left+3."""
    y = torch.zeros(1, 6, 6, dtype=torch.long)
    y[0, 1:5, left : left + 4] = 1
    return y


def test_a_square_shifted_by_one_pixel_by_hand() -> None:
    target, pred = square(1), square(2)
    # true boundary of class 1: the square's 16 pixels minus its 2x2 interior = 12.
    # predicted square touches the image's right edge, which is no boundary: its interior
    # (all 8 neighbours inside or off the image) is rows 2-3, columns 3-5, so 16 - 6 = 10.
    # Exact matches: rows 1 and 4, columns 2-4 (6 pixels) - on both sides.
    exact = BoundaryF1(2, tolerance=0).counts(logits(pred), target)
    assert exact[:, 1].tolist() == [6, 10, 6, 12]
    # within one pixel every boundary pixel of either side has a partner
    near = BoundaryF1(2, tolerance=1).counts(logits(pred), target)
    assert near[:, 1].tolist() == [10, 10, 12, 12]


def test_value_is_the_mean_f_score_over_classes_with_a_boundary() -> None:
    metric = BoundaryF1(3, tolerance=0)
    # class 1: P = 6/10, R = 6/12 -> F = 2 * 0.6 * 0.5 / 1.1; class 0: P = 1, R = 0.5 -> 2/3;
    # class 2 has no boundary anywhere and is left out of the mean
    # rows of the (4, C) counts: hits of the prediction, its boundary, hits of the target, its
    # boundary; class 0 has (4, 4, 4, 8), class 1 (6, 10, 6, 12), class 2 nothing
    total = [4, 6, 0, 4, 10, 0, 4, 6, 0, 8, 12, 0]
    expected = (2 * 0.6 * 0.5 / 1.1 + 2 / 3) / 2
    assert metric.value([float(v) for v in total]) == pytest.approx(expected)


def test_perfect_and_empty_predictions() -> None:
    target = square(1)
    metric = BoundaryF1(2)
    assert metric.value(metric.counts(logits(target), target).flatten().tolist()) == 1.0
    # all background: class 1 has no predicted boundary (F = 0), and the background ring
    # (the 20 pixels around the square) has none either, since the image edge is no boundary
    empty = metric.counts(logits(torch.zeros_like(target)), target)
    assert empty[:, 0].tolist() == [0, 0, 0, 20] and empty[:, 1].tolist() == [0, 0, 0, 12]
    assert metric.value(empty.flatten().tolist()) == 0.0
    uniform = torch.zeros_like(target)
    assert math.isnan(metric.value(metric.counts(logits(uniform), uniform).flatten().tolist()))


def test_counts_add_up_over_batches() -> None:
    torch.manual_seed(0)
    y = torch.randint(0, 3, (6, 8, 8))
    out = torch.randn(6, 3, 8, 8)
    metric = BoundaryF1(3, tolerance=1)
    parts = metric.counts(out[:2], y[:2]) + metric.counts(out[2:], y[2:])
    assert torch.equal(parts, metric.counts(out, y))
    assert metric.zeros(torch.device("cpu")).shape == parts.shape == (4, 3)


def test_ignored_pixels_count_for_no_class() -> None:
    target = square(1)
    target[0, 1, 1] = 255  # one corner of the square is unlabelled
    counts = BoundaryF1(2, tolerance=0, ignore_index=255).counts(logits(square(1)), target)
    # the true square lost its corner (1, 1), so the interior pixel (2, 2) now touches a
    # pixel outside it and joins the boundary: still 12; the prediction loses the corner: 11
    assert counts[3, 1] == 12 and counts[1, 1] == 11
    assert counts[2, 1] == 11  # every true boundary pixel but (2, 2) is a predicted one


def test_mean_iou_on_the_shifted_square_by_hand() -> None:
    # class 1: 12 common pixels of 16 + 16 - 12 = 20; class 0: 16 of 20 + 20 - 16 = 24
    metric = MeanIoU(2)
    iou = metric.value(metric.counts(logits(square(2)), square(1)).flatten().tolist())
    assert iou == pytest.approx((12 / 20 + 16 / 24) / 2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(num_classes=1), r"num_classes must be an int >= 2"),
        (dict(num_classes=2, tolerance=-1), r"tolerance must be an int >= 0"),
        (dict(num_classes=2, tolerance=1.5), r"tolerance must be an int >= 0"),
    ],
)
def test_bad_options_raise(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BoundaryF1(**options)  # type: ignore[arg-type]


def test_it_needs_segmentation_shapes_and_integer_labels() -> None:
    metric = BoundaryF1(3)
    with pytest.raises(ValueError, match=r"needs \(B, C, H, W\) logits"):
        metric.counts(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"integer class labels"):
        metric.counts(torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4))
