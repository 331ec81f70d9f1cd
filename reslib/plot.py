"""Figures from a :class:`~reslib.train.History` and from diagnostics. Nothing here trains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from reslib.train import History

METRICS = ("train_loss", "train_metric", "test_loss", "test_metric")


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
    """One line per run of ``metric`` against epoch; losses on a log scale by default.

    ``metric`` is a History field: ``"train_loss"``, ``"test_loss"``, ``"train_metric"`` or
    ``"test_metric"``; the axis names the runs' metric, e.g. "test accuracy".
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")
    ax = _axes(ax)
    names = {h.metric for h in histories.values()}
    if metric.endswith("_metric") and len(names) > 1:
        raise ValueError(f"the runs measure different metrics ({sorted(names)}); plot them apart")
    label_text = metric.replace("_", " ")
    if metric.endswith("_metric") and names:
        label_text = label_text.replace("metric", names.pop())
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
    ax.set_ylabel(label_text)
    ax.set_title(title or label_text)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def gradient_norms(
    norms: Mapping[str, Sequence[float] | Mapping[str, float]],
    *,
    ax: Axes | None = None,
    title: str = "gradient norm per layer",
    xlabel: str = "layer (input → output)",
) -> Axes:
    """Gradient norm against layer index on a log scale, one line per network.

    Each network's norms are a sequence of floats, input to output, or a mapping of layer
    name to norm (what :func:`reslib.diagnostics.gradient_norms` returns), read in its order.
    """
    ax = _axes(ax)
    for label, values in norms.items():
        ys = _norm_values(label, values)
        ax.plot(range(1, len(ys) + 1), ys, label=label, marker=".")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("‖∂L/∂W‖")
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return ax


def _norm_values(label: str, values: Mapping[str, float] | Sequence[float]) -> list[float]:
    """The norms as floats: a mapping's values in order (plotting it as a sequence would plot
    its keys, the layer names); anything that is not a number raises."""
    ys = list(values.values()) if isinstance(values, Mapping) else list(values)
    bad = [v for v in ys if isinstance(v, (str, bytes)) or not isinstance(v, (int, float, Real))]
    if isinstance(values, (str, bytes)) or bad:
        raise ValueError(
            f"gradient norms of {label!r} must be numbers (a sequence, or a mapping of layer "
            f"name to norm), got {bad[:3] if bad else values!r}"
        )
    return [float(v) for v in ys]
