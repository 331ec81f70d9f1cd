"""What a run reports besides its loss: accuracy over any class dimension, and mean IoU.

A metric turns each batch into a small tensor of *counts* on the device (correct and total
labels; per-class intersections and unions) that add up over an epoch; the value is computed
once from the epoch's totals. So a step never waits on the host, and mean IoU is the IoU of the
whole epoch's pixels rather than an average of per-batch IoUs (which would weight a batch with
one pixel of a class as much as a batch full of it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from reslib.layers.checks import check_int
from reslib.train.distributed import all_reduce_max, all_reduce_sum


@runtime_checkable
class Metric(Protocol):
    """A metric accumulated as counts: ``value(sum of counts(out, y) over batches)``."""

    @property
    def name(self) -> str:
        """What it measures, for History and figures, e.g. ``"accuracy"``."""
        ...

    def zeros(self, device: torch.device) -> torch.Tensor:
        """The empty total, the shape :meth:`counts` returns."""
        ...

    def counts(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One batch's counts (on ``out``'s device; never read on the host)."""
        ...

    def value(self, total: list[float]) -> float:
        """The metric from an epoch's total counts, flattened to floats."""
        ...


def _predictions(out: torch.Tensor, y: torch.Tensor, class_dim: int) -> torch.Tensor:
    """Arg-max over ``class_dim``, after checking that ``y`` has ``out``'s shape without it."""
    if not -out.ndim <= class_dim < out.ndim:
        raise ValueError(
            f"class_dim={class_dim} is not a dim of logits of shape {tuple(out.shape)}"
        )
    dim = class_dim % out.ndim
    expected = tuple(s for i, s in enumerate(out.shape) if i != dim)
    if expected != tuple(y.shape):
        raise ValueError(
            f"with class_dim={class_dim}, logits of shape {tuple(out.shape)} need labels of "
            f"shape {expected}, got {tuple(y.shape)}; sequence logits (B, T, V) take "
            "class_dim=-1, segmentation logits (B, C, H, W) class_dim=1"
        )
    return out.argmax(dim=class_dim)


def _valid(y: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    return torch.ones_like(y, dtype=torch.bool) if ignore_index is None else y != ignore_index


@dataclass(frozen=True)
class Accuracy:
    """The fraction of integer labels matched by the arg-max over ``class_dim``.

    ``class_dim=1`` covers ``(B, C)`` logits and ``(B, C, H, W)`` segmentation logits with
    ``(B, H, W)`` labels; sequence logits ``(B, T, V)`` with ``(B, T)`` labels need
    ``class_dim=-1`` (with the default, a ``T == V`` batch would be scored along the wrong
    axis without any shape error). Labels equal to ``ignore_index`` (e.g. padding) are not
    counted. Float targets (regression, soft labels) have no accuracy: the value is ``nan``.
    """

    class_dim: int = 1
    ignore_index: int | None = None
    name: str = "accuracy"

    def zeros(self, device: torch.device) -> torch.Tensor:
        return torch.zeros(2, dtype=torch.long, device=device)  # [correct, counted]

    def counts(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.is_floating_point():
            return self.zeros(out.device)
        valid = _valid(y, self.ignore_index)
        hits = (_predictions(out, y, self.class_dim) == y) & valid
        return torch.stack([hits.sum(), valid.sum()])

    def value(self, total: list[float]) -> float:
        correct, counted = total
        return correct / counted if counted else math.nan


@dataclass(frozen=True)
class MeanIoU:
    """Mean intersection over union of ``num_classes`` classes, over the whole epoch.

    For each class c, IoU = #{pred = c and y = c} / #{pred = c or y = c}, counted over every
    labelled position of the epoch; the mean is over the classes present in the prediction or
    the target (a class absent from both has no IoU). Labels equal to ``ignore_index`` are left
    out; every other label must lie in ``[0, num_classes)``.
    """

    num_classes: int
    class_dim: int = 1
    ignore_index: int | None = None
    name: str = "mean IoU"

    def __post_init__(self) -> None:
        check_int("num_classes", self.num_classes, minimum=2)

    def zeros(self, device: torch.device) -> torch.Tensor:
        # rows: intersection, predicted area, labelled area, per class
        return torch.zeros(3, self.num_classes, dtype=torch.long, device=device)

    def counts(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.is_floating_point():
            raise ValueError(f"MeanIoU needs integer class labels, got dtype {y.dtype}")
        pred = _predictions(out, y, self.class_dim).flatten()
        valid = _valid(y, self.ignore_index).flatten()
        # ignored positions get class 0 with weight 0: index_add_ has a fixed output size, so
        # nothing here waits on the device (boolean indexing would)
        target = torch.where(valid, y.flatten(), 0)
        weight = valid.long()
        total = self.zeros(out.device)
        total[0].index_add_(0, target, weight * (pred == target))
        total[1].index_add_(0, pred, weight)
        total[2].index_add_(0, target, weight)
        return total

    def value(self, total: list[float]) -> float:
        c = self.num_classes
        inter, pred, label = total[:c], total[c : 2 * c], total[2 * c :]
        ious = [i / (p + t - i) for i, p, t in zip(inter, pred, label, strict=True) if p + t > 0]
        return sum(ious) / len(ious) if ious else math.nan


class Totals:
    """Device-side sums over one pass of a loader: loss × samples, metric counts, samples,
    and the first step whose loss was not finite (-1 while there is none)."""

    def __init__(self, metric: Metric, device: torch.device) -> None:
        self.metric, self.samples = metric, 0
        self.loss = torch.zeros((), device=device)
        self.counts = metric.zeros(device)
        self.first_bad_step = torch.full((), -1, dtype=torch.long, device=device)

    def add(self, step: int, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        """Add one batch (``loss`` is its mean over the batch); no host sync."""
        loss = loss.detach().float()
        is_first_bad = ~torch.isfinite(loss) & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(is_first_bad, step, self.first_bad_step)
        self.loss = self.loss + loss * y.shape[0]
        self.counts = self.counts + self.metric.counts(out.detach(), y)
        self.samples += y.shape[0]

    def read(self, across_processes: bool = False) -> tuple[float, float, int | None]:
        """Mean loss, metric value and the first bad step (``None``: all finite).

        The one host sync of a pass: everything is read in a single transfer. With
        ``across_processes`` the sums are first all-reduced over a ``torchrun`` process group,
        so every process reads the numbers of the whole (global) pass.
        """
        samples = torch.tensor([float(self.samples)], dtype=torch.float64, device=self.loss.device)
        sums = torch.cat([self.loss.double().reshape(1), samples, self.counts.flatten().double()])
        bad = self.first_bad_step.double().reshape(1)
        if across_processes:
            sums, bad = all_reduce_sum(sums), all_reduce_max(bad)
        values = torch.cat([bad, sums]).tolist()
        first_bad, loss_sum, n = int(values[0]), values[1], values[2]
        return (
            loss_sum / max(n, 1),
            self.metric.value(values[3:]),
            (first_bad if first_bad >= 0 else None),
        )


def _boundaries(masks: torch.Tensor) -> torch.Tensor:
    """The boundary pixels of one-hot masks (B, C, H, W): in the mask, with one of their eight
    neighbours outside it. The image's edge is not a boundary (max-pooling pads with -inf)."""
    masks = masks.float()
    eroded = 1 - torch.nn.functional.max_pool2d(1 - masks, 3, stride=1, padding=1)
    return (masks - eroded) > 0


def _near(points: torch.Tensor, tolerance: int) -> torch.Tensor:
    """Pixels within Chebyshev distance ``tolerance`` of a True pixel of ``points``."""
    if tolerance == 0:
        return points
    window = 2 * tolerance + 1
    return torch.nn.functional.max_pool2d(points.float(), window, stride=1, padding=tolerance) > 0


@dataclass(frozen=True)
class BoundaryF1:
    """Mean boundary F-score over ``num_classes`` classes, within ``tolerance`` pixels.

    Csurka, Larlus, Perronnin 2013 ("What is a good evaluation measure for semantic
    segmentation?", BMVC): F = 2 P R / (P + R), where for class c the precision P is the share
    of the predicted boundary of c lying within ``tolerance`` pixels (Chebyshev distance) of the
    true boundary of c, and the recall R the share of the true boundary lying within
    ``tolerance`` of the predicted one. A boundary pixel is a pixel of the class with one of its
    eight neighbours outside it. Counts add up over the whole epoch on the device; the mean is
    over the classes with a boundary in the prediction or the target, and a class with a
    boundary on one side only scores 0. Mean IoU rewards getting the bulk of an object right;
    this measures the edges, where a net without skips blurs.

    Segmentation logits only: ``(B, C, H, W)`` with ``(B, H, W)`` labels (``class_dim=1``).
    Pixels labelled ``ignore_index`` count for no class: they are outside every true mask, and
    no boundary pixel is counted on them.
    """

    num_classes: int
    tolerance: int = 1
    class_dim: int = 1
    ignore_index: int | None = None
    name: str = "boundary F1"

    def __post_init__(self) -> None:
        check_int("num_classes", self.num_classes, minimum=2)
        check_int("tolerance", self.tolerance, minimum=0)

    def zeros(self, device: torch.device) -> torch.Tensor:
        # rows: predicted boundary near the true one, predicted boundary, true boundary near
        # the predicted one, true boundary; per class
        return torch.zeros(4, self.num_classes, dtype=torch.long, device=device)

    def counts(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.is_floating_point():
            raise ValueError(f"BoundaryF1 needs integer class labels, got dtype {y.dtype}")
        pred = _predictions(out, y, self.class_dim)
        if pred.ndim != 3:
            raise ValueError(
                f"BoundaryF1 needs (B, C, H, W) logits and (B, H, W) labels, got labels of "
                f"shape {tuple(y.shape)}"
            )
        valid = _valid(y, self.ignore_index).unsqueeze(1)  # (B, 1, H, W)
        classes = torch.arange(self.num_classes, device=out.device).view(1, -1, 1, 1)
        pred_edge = _boundaries(pred.unsqueeze(1) == classes) & valid  # (B, C, H, W)
        true_edge = _boundaries((y.unsqueeze(1) == classes) & valid) & valid
        hits_pred = pred_edge & _near(true_edge, self.tolerance)
        hits_true = true_edge & _near(pred_edge, self.tolerance)
        parts = (hits_pred, pred_edge, hits_true, true_edge)
        return torch.stack([p.sum(dim=(0, 2, 3)) for p in parts])  # (4, C)

    def value(self, total: list[float]) -> float:
        c = self.num_classes
        rows = [total[i * c : (i + 1) * c] for i in range(4)]
        scores = []
        for hit_p, n_p, hit_t, n_t in zip(*rows, strict=True):
            if n_p + n_t == 0:
                continue  # no boundary of this class anywhere: no score
            precision = hit_p / n_p if n_p else 0.0
            recall = hit_t / n_t if n_t else 0.0
            total_pr = precision + recall
            scores.append(2 * precision * recall / total_pr if total_pr else 0.0)
        return sum(scores) / len(scores) if scores else math.nan
