"""Schematic diagrams of blocks: boxes, arrows, a "+" join and labels, in one style.

The book draws every architecture the way He et al. draw the residual block ("Deep Residual
Learning for Image Recognition", arXiv:1512.03385, Fig. 2: y = F(x) + x): data flows top to
bottom through a column of layers, and the shortcut leaves the input on the side and meets the
column again at a "+". Every chapter uses this module, so all its schematics share one look:
one colour per kind of layer, one arrow style, one font, drawn on an opaque white card that
reads the same in the book's light and dark themes.

One data unit is one inch, so the text (in points) always fits its box whatever the panel
holds. A figure of several panels side by side::

    from reslib import diagrams
    plain, res = diagrams.panels(2, titles=["plain", "residual"])
    for d in (plain, res):
        x, *layers = d.column(["x", ("weight layer", "weight"), ("ReLU", "act"),
                               ("weight layer", "weight")], x=0.0, top=0.0)
    out = res.join(0.0, layers[-1].y - 0.7)
    res.arrow(layers[-1], out)
    res.skip(x, out, text="identity")
    fig = diagrams.finish(plain, res)

Nothing here trains or reads a model: the drawings are schematics, not traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

from reslib.layers import check_choice, check_float

Kind = Literal["io", "weight", "norm", "act", "shortcut", "gate", "op", "plain"]
Side = Literal["top", "bottom", "left", "right"]
Point = tuple[float, float]

# One fill per kind of layer, light enough that dark text reads on it; the card behind the
# drawing is white in both of the book's themes, so these never sit on a dark page.
FILLS: dict[str, str] = {
    "io": "#eeeeee",  # the input and output of a block
    "weight": "#cfe2f3",  # conv / linear layers: the weights that learn F
    "norm": "#fff2cc",  # BatchNorm, GroupNorm, LayerNorm
    "act": "#d9ead3",  # ReLU, tanh, sigmoid
    "shortcut": "#fce5cd",  # what sits on the shortcut: a projection, padding, a gate
    "gate": "#e6d9f2",  # a learned gate (Highway)
    "op": "#f4cccc",  # an operation that joins or splits paths (concat, pool)
    "plain": "#ffffff",
}
KINDS: tuple[str, ...] = tuple(FILLS)
INK = "#222222"  # text and the main path
SKIP = "#c0392b"  # the shortcut path: the one thing a reader should find first
MUTED = "#555555"  # annotations
CARD = "#ffffff"
FONT_SIZE = 9.0
GAP = 0.3  # vertical gap between consecutive boxes of a column, in inches
MARGIN = 0.25  # around the drawing, in inches


def text_width(text: str) -> float:
    """About how wide ``text`` is at the diagrams' font size, in inches, plus padding."""
    return 0.075 * len(text) + 0.3


@dataclass(frozen=True)
class Node:
    """A drawn box or join: its centre ``(x, y)`` and its size, in inches."""

    x: float
    y: float
    w: float
    h: float
    text: str = ""

    def anchor(self, side: Side) -> Point:
        """The middle of one side, where an arrow starts or ends."""
        check_choice("side", side, ("top", "bottom", "left", "right"))
        dx = {"left": -self.w / 2, "right": self.w / 2}.get(side, 0.0)
        dy = {"bottom": -self.h / 2, "top": self.h / 2}.get(side, 0.0)
        return (self.x + dx, self.y + dy)


def _facing(node: Node, towards: Point) -> Point:
    """The anchor of ``node`` on the side that faces ``towards`` (arrows meet boxes square)."""
    dx, dy = towards[0] - node.x, towards[1] - node.y
    # compare in units of the box's half-size, so a wide box is left by its top or bottom
    if abs(dx) / max(node.w, 1e-9) > abs(dy) / max(node.h, 1e-9):
        return node.anchor("right" if dx > 0 else "left")
    return node.anchor("top" if dy > 0 else "bottom")


def _point(p: Node | Point, towards: Point) -> Point:
    return _facing(p, towards) if isinstance(p, Node) else (float(p[0]), float(p[1]))


def _centre(p: Node | Point) -> Point:
    return (p.x, p.y) if isinstance(p, Node) else (float(p[0]), float(p[1]))


@dataclass
class Diagram:
    """One panel: draw with :meth:`box`, :meth:`join`, :meth:`arrow`, :meth:`skip`,
    :meth:`column` and :meth:`label`; :func:`finish` sizes and shows the figure."""

    ax: Axes
    title: str | None = None
    bounds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    _empty: bool = True

    def _grow(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self._empty:
            self.bounds, self._empty = [x0, y0, x1, y1], False
            return
        b = self.bounds
        self.bounds = [min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)]

    def box(
        self, text: str, x: float, y: float, *, kind: str = "weight", w: float = 1.5, h: float = 0.4
    ) -> Node:
        """A rounded box labelled ``text`` centred at ``(x, y)``, filled by its ``kind``."""
        check_choice("kind", kind, KINDS)
        w, h = check_float("w", w, low=0.05), check_float("h", h, low=0.05)
        w = max(w, text_width(text))  # a box is never narrower than its label
        patch = FancyBboxPatch(
            (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.06",
            facecolor=FILLS[kind], edgecolor=INK, linewidth=1.0, zorder=2,
        )  # fmt: skip
        self.ax.add_patch(patch)
        self.ax.text(x, y, text, ha="center", va="center", fontsize=FONT_SIZE, color=INK, zorder=3)
        self._grow(x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        return Node(x, y, w, h, text)

    def join(self, x: float, y: float, *, op: str = "+", r: float = 0.14) -> Node:
        """A circle where two paths meet: ``"+"`` adds, ``"×"`` gates, ``"c"`` concatenates."""
        r = check_float("r", r, low=0.02)
        self.ax.add_patch(Circle((x, y), r, facecolor=CARD, edgecolor=INK, lw=1.0, zorder=2))
        self.ax.text(x, y, op, ha="center", va="center", fontsize=FONT_SIZE + 2, color=INK,
                     zorder=3)  # fmt: skip
        self._grow(x - r, y - r, x + r, y + r)
        return Node(x, y, 2 * r, 2 * r, op)

    def label(
        self, text: str, x: float, y: float, *, ha: str = "center", color: str = MUTED,
        italic: bool = True, size: float = FONT_SIZE - 1,
    ) -> None:  # fmt: skip
        """Free text, e.g. ``"F(x)"`` beside the column or a shape such as ``"(B, 64, 32, 32)"``."""
        check_choice("ha", ha, ("left", "center", "right"))
        self.ax.text(x, y, text, ha=ha, va="center", fontsize=size, color=color,
                     style="italic" if italic else "normal", zorder=3)  # fmt: skip
        # text has no size in data units until drawn: reserve about 0.065 in per character
        half = 0.065 * len(text) / 2 + 0.05
        x0 = {"left": x, "center": x - half, "right": x - 2 * half}[ha]
        self._grow(x0, y - 0.12, x0 + 2 * half, y + 0.12)

    def arrow(
        self, start: Node | Point, end: Node | Point, *, via: Sequence[Point] = (),
        text: str | None = None, color: str = INK, dashed: bool = False,
    ) -> None:  # fmt: skip
        """An arrow from ``start`` to ``end`` through the corners ``via``; nodes are met on the
        side that faces the path. ``dashed`` marks a path that carries no gradient."""
        corners = [(float(p[0]), float(p[1])) for p in via]
        first = _point(start, corners[0] if corners else _centre(end))
        last = _point(end, corners[-1] if corners else first)
        points = [first, *corners, last]
        style = "--" if dashed else "-"
        xs, ys = zip(*points[:-1], strict=True)
        if len(points) > 2:
            self.ax.plot(xs, ys, color=color, lw=1.3, ls=style, zorder=1, solid_capstyle="butt")
        self.ax.annotate(
            "", xy=last, xytext=points[-2], zorder=1,
            arrowprops=dict(arrowstyle="-|>", color=color, lw=1.3, ls=style,
                            shrinkA=0, shrinkB=0, mutation_scale=11),
        )  # fmt: skip
        for x, y in points:
            self._grow(x, y, x, y)
        if text:
            (x0, y0), (x1, y1) = points[len(points) // 2 - 1], points[len(points) // 2]
            self.label(text, (x0 + x1) / 2 + 0.08, (y0 + y1) / 2, ha="left", color=color)

    def column(
        self, items: Sequence[str | tuple[str, str]], *, x: float = 0.0, top: float = 0.0,
        gap: float = GAP, w: float = 1.5, h: float = 0.4,
    ) -> list[Node]:  # fmt: skip
        """Boxes stacked top to bottom and joined by arrows: each item is a label (an ``"io"``
        box) or ``(label, kind)``. Returns the nodes, top first."""
        gap = check_float("gap", gap, low=0.0)
        # one width for the whole column, wide enough for its longest label
        w = max([w] + [text_width(i if isinstance(i, str) else i[0]) for i in items])
        nodes: list[Node] = []
        y = top
        for item in items:
            text, kind = (item, "io") if isinstance(item, str) else item
            nodes.append(self.box(text, x, y - h / 2, kind=kind, w=w, h=h))
            if len(nodes) > 1:
                self.arrow(nodes[-2], nodes[-1])
            y -= h + gap
        return nodes

    def skip(
        self, start: Node, end: Node, *, dx: float = 1.1, text: str | None = "identity",
        box: str | None = None, kind: str = "shortcut", dashed: bool = False,
        side: Literal["right", "left"] = "right",
    ) -> Node | None:  # fmt: skip
        """The shortcut: out of ``start``'s side, down beside the column, into ``end``'s side.

        ``box`` puts a labelled box on the shortcut (a projection, a gate) and returns it;
        ``dashed`` draws a path that carries no gradient (a detached, forward-only skip).
        """
        check_choice("side", side, ("right", "left"))
        sign = 1.0 if side == "right" else -1.0
        x0 = start.anchor(side)
        x_side = start.x + sign * (start.w / 2 + check_float("dx", dx, low=0.05))
        y_end = end.y
        kwargs = dict(color=SKIP, dashed=dashed)
        if box is None:
            self.arrow(x0, end.anchor(side), via=[(x_side, start.y), (x_side, y_end)], **kwargs)
            if text:
                self.label(text, x_side + sign * 0.1, (start.y + y_end) / 2,
                           ha="left" if side == "right" else "right", color=SKIP)  # fmt: skip
            return None
        mid = self.box(box, x_side + sign * text_width(box) / 2, (start.y + y_end) / 2, kind=kind)
        x_box = mid.x  # the path runs down the box's middle
        self.arrow(x0, mid, via=[(x_box, start.y)], **kwargs)
        self.arrow(mid, end.anchor(side), via=[(x_box, y_end)], **kwargs)
        return mid

    def block(
        self, layers: Sequence[str | tuple[str, str]], *, skip: str = "identity",
        shortcut: str | None = None, post: Sequence[str | tuple[str, str]] = (),
        label: str | None = r"$\mathcal{F}(x)$", source: str = r"$x$", x: float = 0.0,
        top: float = 0.0, op: str = "+", text: str | None = None,
    ) -> list[Node]:  # fmt: skip
        """A whole block: its input, the branch's ``layers``, the join, the ``post`` layers after
        it and the shortcut (returns every node, top first; the join is among them).

        ``skip`` is ``"identity"`` (the red shortcut, with a ``shortcut`` box if given),
        ``"detached"`` (the same, dashed: no gradient flows back), or ``"none"`` (the plain
        twin: no join, no shortcut). ``label`` names the branch on its left.
        """
        check_choice("skip", skip, ("identity", "detached", "none"))
        nodes = self.column([source, *layers], x=x, top=top)
        first, last = nodes[1] if len(nodes) > 1 else nodes[0], nodes[-1]
        if label and len(nodes) > 1:
            mid = (first.y + last.y) / 2
            self.label(label, x - last.w / 2 - 0.12, mid, ha="right")
        tail = last
        if skip != "none":
            join = self.join(x, last.y - last.h / 2 - GAP - 0.14, op=op)
            self.arrow(last, join)
            default = "identity" if shortcut is None else None
            self.skip(nodes[0], join, box=shortcut, dashed=skip == "detached",
                      text=text if text is not None else default)  # fmt: skip
            nodes.append(join)
            tail = join
        if post:
            rest = self.column(list(post), x=x, top=tail.y - tail.h / 2 - GAP)
            self.arrow(tail, rest[0])
            nodes.extend(rest)
        return nodes


def panels(
    n: int = 1, *, titles: Sequence[str] | None = None, ax: Axes | None = None
) -> list[Diagram]:
    """``n`` empty diagrams side by side (or one on a given ``ax``); draw, then :func:`finish`."""
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must give one title per panel: {n} panels, {len(titles)} titles")
    if ax is not None:
        if n != 1:
            raise ValueError(f"n must be 1 when an ax is given, got {n}")
        axes = [ax]
    else:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        fig = plt.figure(figsize=(3.0 * n, 3.0), facecolor=CARD)
        axes = [fig.add_axes((i / n, 0.0, 1.0 / n, 1.0)) for i in range(n)]
    out = []
    for i, a in enumerate(axes):
        a.set_axis_off()
        a.set_facecolor(CARD)
        out.append(Diagram(a, title=titles[i] if titles else None))
    return out


TITLE_SPACE = 0.35  # inches above the drawing for a panel's title


def finish(*diagrams: Diagram, caption: str | None = None) -> Figure:
    """Size the figure so one data unit is one inch, place the panels side by side (tops
    aligned), title them and return the figure (Jupyter shows it once, at the cell's end)."""
    if not diagrams:
        raise ValueError("finish needs at least one diagram")
    fig = diagrams[0].ax.figure
    if not isinstance(fig, Figure) or any(d.ax.figure is not fig for d in diagrams):
        raise ValueError("the diagrams must belong to one figure (make them with panels)")
    sizes = [(d.bounds[2] - d.bounds[0] + 2 * MARGIN, d.bounds[3] - d.bounds[1] + 2 * MARGIN)
             for d in diagrams]  # fmt: skip
    has_title = any(d.title for d in diagrams)
    top = TITLE_SPACE if has_title else 0.0
    bottom = 0.3 if caption else 0.0
    width = sum(w for w, _ in sizes)
    height = max(h for _, h in sizes) + top + bottom
    fig.set_size_inches(width, height)
    left = 0.0
    for d, (w, h) in zip(diagrams, sizes, strict=True):
        # the panel's axes is exactly its drawing plus margins; equal aspect keeps inches square
        d.ax.set_position((left / width, (height - top - h) / height, w / width, h / height))
        d.ax.set_xlim(d.bounds[0] - MARGIN, d.bounds[2] + MARGIN)
        d.ax.set_ylim(d.bounds[1] - MARGIN, d.bounds[3] + MARGIN)
        d.ax.set_aspect("equal")
        if d.title:
            fig.text((left + w / 2) / width, 1 - 0.2 / height, d.title, ha="center",
                     va="center", fontsize=FONT_SIZE + 1, weight="bold", color=INK)  # fmt: skip
        left += w
    if caption:
        fig.text(0.5, 0.15 / height, caption, ha="center", va="center", fontsize=FONT_SIZE - 1,
                 color=MUTED)  # fmt: skip
    return fig
