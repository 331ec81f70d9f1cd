"""reslib.plot: figures from histories and gradient norms (rendered off-screen by conftest)."""

from __future__ import annotations

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
        train_metric=[0.5] * n,
        test_loss=[v * 1.1 for v in losses] if test else [],
        test_metric=[0.4] * n if test else [],
        lr=[0.1] * n,
        seconds=[float(i) for i in range(1, n + 1)],
    )


def test_each_line_is_the_history_it_was_given() -> None:
    a, b = _history([2.0, 1.0, 0.5]), _history([3.0, 0.25])
    ax = plot.training_curves({"a": a, "b": b}, "test_loss")
    lines = {line.get_label(): line for line in ax.get_lines()}
    for label, history in (("a", a), ("b", b)):
        assert list(lines[label].get_xdata()) == history.epoch
        assert list(lines[label].get_ydata()) == history.test_loss


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
    assert plot.training_curves(runs, "test_metric").get_yscale() == "linear"
    assert plot.training_curves(runs, "test_loss", log=False).get_yscale() == "linear"
    assert plot.training_curves(runs, "train_metric", log=True).get_yscale() == "log"


def test_training_curves_draw_into_a_given_axes() -> None:
    fig, (left, right) = plt.subplots(1, 2)
    ax = plot.training_curves({"a": _history([1.0, 0.5])}, "test_loss", ax=right, title="T")
    assert ax is right and len(right.get_lines()) == 1 and not left.get_lines()
    assert right.get_title() == "T"


def test_unknown_metric_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'val_loss'.*train_loss.*test_metric"):
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


def test_metric_axes_name_the_runs_metric() -> None:
    h = _history([1.0, 0.5])
    h.metric = "mean IoU"
    ax = plot.training_curves({"u-net": h}, "test_metric")
    assert ax.get_ylabel() == "test mean IoU" and list(ax.get_lines()[0].get_ydata()) == [0.4] * 2
    other = _history([1.0, 0.5])
    with pytest.raises(ValueError, match=r"different metrics.*accuracy.*mean IoU"):
        plot.training_curves({"a": other, "b": h}, "test_metric")


def test_gradient_norms_accept_a_mapping_of_layer_names_to_norms() -> None:
    norms = {"plain": {"blocks.0": 1e-4, "blocks.1": 1e-2, "head": 1.0}, "res": [0.5, 0.6, 0.7]}
    ax = plot.gradient_norms(norms)
    assert list(ax.get_lines()[0].get_ydata()) == [1e-4, 1e-2, 1.0]  # values, not names
    assert list(ax.get_lines()[1].get_ydata()) == [0.5, 0.6, 0.7]


@pytest.mark.parametrize("values", [["a", "b"], "abc", [None]])
def test_gradient_norms_reject_what_is_not_a_number(values: object) -> None:
    with pytest.raises(ValueError, match=r"gradient norms of 'x' must be numbers"):
        plot.gradient_norms({"x": values})  # type: ignore[dict-item]


def test_a_table_is_html_in_a_notebook_and_aligned_text_elsewhere() -> None:
    t = plot.table(["net", "loss"], [["plain-32", 2.3], ["resnet-32", "0.01"]], caption="cap",
                   note="reslib 0.1.0 · seed=0")  # fmt: skip
    text = str(t).splitlines()
    assert text[0] == "cap" and text[1].split() == ["net", "loss"] and text[-1].endswith("seed=0")
    assert text[3].split() == ["plain-32", "2.3"]  # every cell shown as str(cell)
    html = t._repr_html_()
    assert html.count("<tr>") == 3 and "<caption" in html and "seed=0" in html
    assert 'text-align:right;padding:0.2em 0.6em">2.3<' in html  # numbers right-aligned
    assert "max-width:100%" in html  # never wider than the page
    assert "&lt;b&gt;" in plot.table(["x"], [["<b>"]])._repr_html_()  # text is escaped


def test_a_ledger_has_the_four_columns_and_rows_must_fit_the_header() -> None:
    led = plot.ledger([["ResNet-56 test error", "6.97%", "—", "not run here"]])
    assert led.header == plot.LEDGER_HEADER and led.caption == "Reproduction ledger"
    with pytest.raises(ValueError, match=r"rows\[0\] has 1 cells, the header 4"):
        plot.ledger([["only one"]])
    with pytest.raises(ValueError, match="at least one column"):
        plot.table([], [])
