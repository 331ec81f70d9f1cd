"""Figures from a :class:`~reslib.train.History` and from diagnostics, and results as tables
(:func:`table`, the reproduction :func:`ledger`) that show as HTML in the book. Nothing here
trains; schematic drawings of blocks are in :mod:`reslib.diagrams`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
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


LEDGER_HEADER = ("result", "paper", "ours, quick profile", "full profile")


@dataclass(frozen=True)
class Table:
    """Rows shown as an HTML table in a notebook or the book (wrapping inside the page, never
    wider than it) and as aligned plain text in a terminal or under nbval.

    Make one with :func:`table` or :func:`ledger`; a cell that ends with it displays it.
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    note: str = ""  # printed under the table, e.g. the provenance line

    def __str__(self) -> str:
        cells = [self.header, *self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.header))]
        lines = [self.caption] if self.caption else []
        for k, row in enumerate(cells):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:  # IPython's text form
        printer.text(str(self))  # type: ignore[attr-defined]

    def _repr_html_(self) -> str:
        def cell(tag: str, text: str, i: int) -> str:
            # numbers right-aligned, as in the papers' tables; the first column names the row
            numeric = i > 0 and _looks_numeric(text)
            align = "right" if numeric else "left"
            return f'<{tag} style="text-align:{align};padding:0.2em 0.6em">{escape(text)}</{tag}>'

        head = "".join(cell("th", h, i) for i, h in enumerate(self.header))
        body = "".join(
            "<tr>" + "".join(cell("td", c, i) for i, c in enumerate(row)) + "</tr>"
            for row in self.rows
        )
        caption = (
            f'<caption style="caption-side:top;text-align:left;font-weight:600">'
            f"{escape(self.caption)}</caption>" if self.caption else ""
        )  # fmt: skip
        note = (
            f'<div style="font-size:0.8em;opacity:0.75;overflow-wrap:anywhere">'
            f"{escape(self.note)}</div>" if self.note else ""
        )  # fmt: skip
        return (
            f'<div class="reslib-table" style="max-width:100%;overflow-x:auto">'
            f'<table style="border-collapse:collapse;max-width:100%;overflow-wrap:anywhere">'
            f"{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}</div>"
        )


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").replace("×", "").replace("x", "").strip()
    stripped = stripped.lstrip("+-−~≈<>").rstrip("MK").strip()
    try:
        float(stripped)
    except ValueError:
        return text.strip() in ("—", "–", "fail")
    return True


def table(
    header: Sequence[str], rows: Sequence[Sequence[object]], *, caption: str = "", note: str = ""
) -> Table:
    """A :class:`Table`; every cell is shown as ``str(cell)``, so format numbers first.

    >>> table(["net", "loss"], [["plain-32", "2.30"], ["resnet-32", "0.01"]], caption="MNIST-1D")
    """
    head = tuple(str(h) for h in header)
    if not head:
        raise ValueError("header must name at least one column")
    body = tuple(tuple(str(c) for c in row) for row in rows)
    for i, row in enumerate(body):
        if len(row) != len(head):
            raise ValueError(f"rows[{i}] has {len(row)} cells, the header {len(head)}: {row!r}")
    return Table(head, body, caption, note)


def ledger(rows: Sequence[Sequence[object]], *, caption: str = "", note: str = "") -> Table:
    """The chapter's reproduction ledger: one row per paper result, with the paper's number,
    ours in the quick profile and the full profile's status (:data:`LEDGER_HEADER`)."""
    return table(LEDGER_HEADER, rows, caption=caption or "Reproduction ledger", note=note)
