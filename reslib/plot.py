"""Figures from a :class:`~reslib.train.History` and from diagnostics. Nothing here trains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from reslib.train import History

METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6, 4)) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def training_curves(
    histories: Mapping[str, History],
    metric: str = "train_loss",
    *,
    ax: Axes | None = None,
    log: bool | None = None,
    title: str | None = None,
) -> Axes:
    """One line per run of ``metric`` against epoch; losses on a log scale by default."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")
    ax = _axes(ax)
    for label, history in histories.items():
        values = getattr(history, metric)
        if not values:
            raise ValueError(f"run {label!r} has no {metric} (was a test loader passed to fit?)")
        ax.plot(
            history.epoch[: len(values)],
            values,
            label=label,
            marker="." if len(values) < 30 else None,
        )
    if log if log is not None else metric.endswith("loss"):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title or metric.replace("_", " "))
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def gradient_norms(
    norms: Mapping[str, Sequence[float]],
    *,
    ax: Axes | None = None,
    title: str = "gradient norm per layer",
    xlabel: str = "layer (input → output)",
) -> Axes:
    """Gradient norm against layer index on a log scale, one line per network."""
    ax = _axes(ax)
    for label, values in norms.items():
        ax.plot(range(1, len(values) + 1), list(values), label=label, marker=".")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("‖∂L/∂W‖")
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return ax
