"""reslib.train metrics: accuracy over any class dimension, mean IoU over a whole epoch."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from reslib.data import TensorLoader
from reslib.train import Accuracy, MeanIoU, evaluate
from reslib.train.metrics import Totals


def _value(metric: Accuracy | MeanIoU, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    totals = Totals(metric, torch.device("cpu"))
    for step, (out, y) in enumerate(batches):
        totals.add(step, torch.zeros(()), out, y)
    return totals.read()[1]


def test_accuracy_of_class_logits() -> None:
    out = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    assert _value(Accuracy(), [(out, torch.tensor([0, 1, 1]))]) == pytest.approx(2 / 3)


def test_sequence_accuracy_when_t_equals_v() -> None:
    """(B, T, V) logits with T == V: scoring along dim 1 raises no shape error but is wrong."""
    g = torch.Generator().manual_seed(0)
    b, t, v = 4, 5, 5
    out = torch.randn(b, t, v, generator=g)
    y = torch.randint(v, (b, t), generator=g)
    expected = (out.argmax(-1) == y).float().mean().item()
    assert _value(Accuracy(class_dim=-1), [(out, y)]) == pytest.approx(expected)
    assert _value(Accuracy(class_dim=2), [(out, y)]) == pytest.approx(expected)
    wrong = (out.argmax(1) == y).float().mean().item()  # what dim 1 gives
    assert wrong != pytest.approx(expected)


def test_sequence_accuracy_ignores_padding() -> None:
    out = torch.zeros(1, 3, 4)
    out[0, :, 2] = 1.0  # predicts token 2 everywhere
    y = torch.tensor([[2, 1, -100]])
    assert _value(Accuracy(class_dim=-1, ignore_index=-100), [(out, y)]) == pytest.approx(0.5)


def test_segmentation_accuracy_over_pixels() -> None:
    out = torch.zeros(2, 3, 2, 2)
    out[:, 1] = 1.0  # every pixel predicted class 1
    y = torch.tensor([[[1, 1], [0, 2]], [[1, 1], [1, 1]]])
    assert _value(Accuracy(), [(out, y)]) == pytest.approx(6 / 8)


def test_accuracy_rejects_labels_of_the_wrong_shape() -> None:
    with pytest.raises(
        ValueError, match=r"class_dim=1.*\(2, 3, 4\).*labels of shape \(2, 4\), got \(2, 3\)"
    ):
        Accuracy().counts(torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"class_dim=3 is not a dim of logits of shape \(2, 3\)"):
        Accuracy(class_dim=3).counts(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))


def test_accuracy_of_float_targets_is_nan() -> None:
    assert math.isnan(_value(Accuracy(), [(torch.zeros(2, 2), torch.zeros(2, 2))]))


def test_mean_iou_over_the_epoch_not_per_batch() -> None:
    # batch 1: class 0 everywhere, predicted right: IoU(0) = 1
    # batch 2: one pixel of class 1 predicted as 0
    def seg(pred: list[int]) -> torch.Tensor:
        return nn.functional.one_hot(torch.tensor(pred), 2).float().T[None]  # (1, 2, N)

    batches = [
        (seg([0, 0, 0, 0]), torch.tensor([[0, 0, 0, 0]])),
        (seg([0, 1, 1, 1]), torch.tensor([[1, 1, 1, 1]])),
    ]
    # epoch totals: class 0: inter 4, pred 5, label 4 -> 4/5; class 1: inter 3, union 4 -> 3/4
    assert _value(MeanIoU(2), batches) == pytest.approx((4 / 5 + 3 / 4) / 2)
    per_batch = (1.0 + (0 / 1 + 3 / 4) / 2) / 2  # what averaging batch IoUs would give
    assert _value(MeanIoU(2), batches) != pytest.approx(per_batch)


def test_mean_iou_skips_absent_classes_and_ignored_pixels() -> None:
    out = torch.zeros(1, 4, 3)
    out[0, 0] = 1.0  # predicts class 0
    y = torch.tensor([[0, 0, 255]])
    # class 0 only: inter 2, union 2 (the ignored pixel is not counted); classes 1-3 absent
    assert _value(MeanIoU(4, ignore_index=255), [(out, y)]) == 1.0
    assert math.isnan(_value(MeanIoU(4, ignore_index=255), [(out[..., 2:], y[..., 2:])]))


def test_mean_iou_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        MeanIoU(1)
    with pytest.raises(ValueError, match="integer class labels"):
        MeanIoU(2).counts(torch.zeros(1, 2, 3), torch.zeros(1, 3))


def test_evaluate_with_a_sequence_metric() -> None:
    class Tokens(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.one_hot(x, 6).float()  # (B, T) -> (B, T, V), perfect logits

    x = torch.randint(6, (5, 6))  # T == V == 6
    loader = TensorLoader(x, x, batch_size=2)

    def seq_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(out.transpose(1, 2), y)

    _, acc = evaluate(Tokens(), loader, seq_loss, metric=Accuracy(class_dim=-1))
    assert acc == 1.0
