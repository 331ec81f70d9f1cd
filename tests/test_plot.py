"""reslib.plot: figures from histories and gradient norms (rendered off-screen by conftest)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes

from reslib import plot
from reslib.train import History


def _history(losses: list[float], test: bool = True) -> History:
    n = len(losses)
    return History(
        epoch=list(range(1, n + 1)),
        train_loss=losses,
        train_acc=[0.5] * n,
        test_loss=[v * 1.1 for v in losses] if test else [],
        test_acc=[0.4] * n if test else [],
        lr=[0.1] * n,
        seconds=[float(i) for i in range(1, n + 1)],
    )


def test_backend_is_agg() -> None:
    assert matplotlib.get_backend().lower() == "agg"


def test_training_curves_one_line_per_run_on_a_log_scale() -> None:
    runs = {"plain-20": _history([2.0, 1.0, 0.5]), "resnet-20": _history([2.0, 0.5, 0.1])}
    ax = plot.training_curves(runs)
    assert isinstance(ax, Axes)
    assert [line.get_label() for line in ax.get_lines()] == ["plain-20", "resnet-20"]
    assert list(ax.get_lines()[1].get_ydata()) == [2.0, 0.5, 0.1]
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "train loss"


def test_accuracy_is_linear_and_log_can_be_forced() -> None:
    runs = {"a": _history([1.0, 0.5])}
    assert plot.training_curves(runs, "test_acc").get_yscale() == "linear"
    assert plot.training_curves(runs, "test_loss", log=False).get_yscale() == "linear"
    assert plot.training_curves(runs, "train_acc", log=True).get_yscale() == "log"


def test_training_curves_draw_into_a_given_axes() -> None:
    fig, (left, right) = plt.subplots(1, 2)
    ax = plot.training_curves({"a": _history([1.0, 0.5])}, "test_loss", ax=right, title="T")
    assert ax is right and len(right.get_lines()) == 1 and not left.get_lines()
    assert right.get_title() == "T"


def test_unknown_metric_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'val_loss'.*train_loss.*test_acc"):
        plot.training_curves({"a": _history([1.0])}, "val_loss")


def test_missing_test_metrics_are_explained() -> None:
    with pytest.raises(ValueError, match="no test_loss"):
        plot.training_curves({"a": _history([1.0], test=False)}, "test_loss")


def test_gradient_norms_one_line_per_net_on_a_log_scale() -> None:
    norms = {"sigmoid": [1e-6, 1e-3, 1.0], "relu": [0.5, 0.6, 0.7], "tanh": (0.1, 0.2, 0.3)}
    ax = plot.gradient_norms(norms)
    assert isinstance(ax, Axes)
    assert [line.get_label() for line in ax.get_lines()] == ["sigmoid", "relu", "tanh"]
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]
    assert list(ax.get_lines()[0].get_ydata()) == [1e-6, 1e-3, 1.0]
    assert ax.get_yscale() == "log"
