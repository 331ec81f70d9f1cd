"""reslib.diagrams: schematic block drawings (rendered off-screen by conftest)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import Circle, FancyBboxPatch

from reslib import diagrams


def _residual_block() -> tuple[diagrams.Diagram, list[diagrams.Node], diagrams.Node]:
    (d,) = diagrams.panels(1, titles=["residual"])
    nodes = d.column(["x", ("weight layer", "weight"), ("ReLU", "act"), ("weight layer", "weight")])
    out = d.join(0.0, nodes[-1].y - 0.6)
    d.arrow(nodes[-1], out)
    d.skip(nodes[0], out, text="identity")
    return d, nodes, out


def test_a_column_stacks_boxes_top_to_bottom_with_one_arrow_between_each_pair() -> None:
    d, nodes, _ = _residual_block()
    assert [n.text for n in nodes] == ["x", "weight layer", "ReLU", "weight layer"]
    ys = [n.y for n in nodes]
    assert ys == sorted(ys, reverse=True)  # data flows down
    for upper, lower in zip(nodes, nodes[1:], strict=False):  # boxes do not overlap
        assert upper.anchor("bottom")[1] > lower.anchor("top")[1]
    boxes = [p for p in d.ax.patches if isinstance(p, FancyBboxPatch)]
    joins = [p for p in d.ax.patches if isinstance(p, Circle)]
    assert len(boxes) == 4 and len(joins) == 1
    # three arrows down the column, one into the join, one at the end of the skip
    assert len([t for t in d.ax.texts if getattr(t, "arrow_patch", None) is not None]) == 5
    plt.close("all")


def test_each_kind_has_its_own_fill() -> None:
    (d,) = diagrams.panels(1)
    for i, kind in enumerate(diagrams.KINDS):
        d.box(kind, 0.0, -0.6 * i, kind=kind)
    fills = {p.get_facecolor() for p in d.ax.patches}
    assert len(fills) == len(diagrams.KINDS)
    plt.close("all")


def test_finish_makes_one_data_unit_one_inch_and_keeps_every_box_inside() -> None:
    d, nodes, out = _residual_block()
    fig = diagrams.finish(d)
    x0, x1 = d.ax.get_xlim()
    y0, y1 = d.ax.get_ylim()
    pos = d.ax.get_position()
    width, height = fig.get_size_inches()
    assert (x1 - x0) == pytest.approx(pos.width * width)
    assert (y1 - y0) == pytest.approx(pos.height * height)
    for n in [*nodes, out]:
        assert x0 < n.anchor("left")[0] and n.anchor("right")[0] < x1
        assert y0 < n.anchor("bottom")[1] and n.anchor("top")[1] < y1
    plt.close("all")


def test_a_skip_with_a_box_returns_it_beside_the_column_and_a_dashed_skip_is_dashed() -> None:
    (d,) = diagrams.panels(1)
    x, conv = d.column(["x", ("3x3 conv", "weight")])
    out = d.join(0.0, conv.y - 0.6)
    proj = d.skip(x, out, box="1x1 conv", dashed=True)
    assert proj is not None and proj.x > x.anchor("right")[0]
    assert out.y < proj.y < x.y
    assert any(line.get_linestyle() == "--" for line in d.ax.get_lines())
    plt.close("all")


def test_panels_sit_side_by_side_with_their_tops_aligned() -> None:
    a, b = diagrams.panels(2, titles=["plain", "residual"])
    a.column(["x", ("layer", "weight")])
    b.column(["x", ("layer", "weight"), ("layer", "weight"), ("layer", "weight")])
    fig = diagrams.finish(a, b, caption="two panels")
    pa, pb = a.ax.get_position(), b.ax.get_position()
    assert pa.x1 == pytest.approx(pb.x0)
    assert pa.y1 == pytest.approx(pb.y1)
    assert {t.get_text() for t in fig.texts} == {"plain", "residual", "two panels"}
    plt.close("all")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda d: d.box("x", 0, 0, kind="conv"), "unknown kind 'conv'"),
        (lambda d: d.box("x", 0, 0, w=0), "w must be in"),
        (lambda d: d.join(0, 0, r=-1), "r must be in"),
        (
            lambda d: d.skip(diagrams.Node(0, 0, 1, 1), diagrams.Node(0, -2, 1, 1), side="up"),
            "unknown side",
        ),
        (lambda d: d.label("F", 0, 0, ha="middle"), "unknown ha"),
    ],
)
def test_bad_input_is_named(call, match: str) -> None:  # type: ignore[no-untyped-def]
    (d,) = diagrams.panels(1)
    with pytest.raises(ValueError, match=match):
        call(d)
    plt.close("all")


def test_panels_and_finish_refuse_what_they_cannot_draw() -> None:
    with pytest.raises(ValueError, match="one title per panel"):
        diagrams.panels(2, titles=["only one"])
    with pytest.raises(ValueError, match="n must be a positive int"):
        diagrams.panels(0)
    with pytest.raises(ValueError, match="at least one diagram"):
        diagrams.finish()
    a = diagrams.panels(1)[0]
    b = diagrams.panels(1)[0]
    with pytest.raises(ValueError, match="one figure"):
        diagrams.finish(a, b)
    plt.close("all")


def test_a_block_draws_the_join_and_shortcut_and_its_plain_twin_has_neither() -> None:
    res, plain = diagrams.panels(2)
    layers = [("conv", "weight"), ("BN", "norm")]
    nodes = res.block(layers, post=[("ReLU", "act")])
    assert [n.text for n in nodes] == ["$x$", "conv", "BN", "+", "ReLU"]
    twin = plain.block(layers, skip="none", post=[("ReLU", "act")])
    assert [n.text for n in twin] == ["$x$", "conv", "BN", "ReLU"]
    assert not [p for p in plain.ax.patches if isinstance(p, Circle)]
    assert len([p for p in res.ax.patches if isinstance(p, Circle)]) == 1
    with pytest.raises(ValueError, match="unknown skip 'gated'"):
        res.block(layers, skip="gated")
    plt.close("all")
