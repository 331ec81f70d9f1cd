"""The generated segmentation set (reslib.shapes): deterministic for a seed, masks exact for
the shapes' geometry, cached under the data root; Oxford-IIIT Pet fails clearly offline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from reslib import shapes as S
from reslib.data import DatasetUnavailableError, Split


def _inside(shape: S.Shape, y: float, x: float) -> bool:
    """The shapes' geometry written again, point by point, without numpy."""
    if isinstance(shape, S.Ellipse):
        c, s = math.cos(shape.theta), math.sin(shape.theta)
        u, v = (x - shape.cx) * c + (y - shape.cy) * s, -(x - shape.cx) * s + (y - shape.cy) * c
        return (u / shape.a) ** 2 + (v / shape.b) ** 2 <= 1
    if isinstance(shape, S.Ring):
        return shape.inner <= math.dist((y, x), (shape.cy, shape.cx)) <= shape.outer
    if isinstance(shape, S.Line):
        # the distance to the segment: to its line where the foot falls on it, else to an end
        (ay, ax), (by, bx) = (shape.y0, shape.x0), (shape.y1, shape.x1)
        length = math.dist((ay, ax), (by, bx))
        along = ((y - ay) * (by - ay) + (x - ax) * (bx - ax)) / length
        if 0 <= along <= length:
            distance = abs((by - ay) * (x - ax) - (bx - ax) * (y - ay)) / length
        else:
            distance = min(math.dist((y, x), (ay, ax)), math.dist((y, x), (by, bx)))
        return distance <= shape.half_width
    # a convex polygon: the point is inside when its angle sum around the point is 2 pi
    corners = shape.corners
    total = 0.0
    for (y0, x0), (y1, x1) in zip(corners, corners[1:] + corners[:1], strict=True):
        a0, a1 = math.atan2(y0 - y, x0 - x), math.atan2(y1 - y, x1 - x)
        total += (a1 - a0 + math.pi) % (2 * math.pi) - math.pi
    return abs(total) > math.pi


def test_masks_are_exact_for_the_shapes_geometry() -> None:
    rng = np.random.default_rng(7)
    kinds, checked = set(), 0
    for _ in range(12):
        image, mask, drawn = S.draw(rng, 32)
        assert image.shape == mask.shape == (32, 32) and image.dtype == np.float32
        kinds |= {type(s) for s in drawn}
        for i in range(0, 32, 3):
            for j in range(0, 32, 3):
                y, x = i + 0.5, j + 0.5  # the pixel's centre
                label = 0
                for shape in drawn:  # later shapes are painted over earlier ones
                    if _inside(shape, y, x):
                        label = shape.label
                assert mask[i, j] == label, (i, j, drawn)
                checked += label > 0
    assert kinds == {S.Ellipse, S.Polygon, S.Line, S.Ring} and checked > 50


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    x0, y0 = S.generate(20, seed=3)
    x1, y1 = S.generate(20, seed=3)
    x2, y2 = S.generate(20, seed=4)
    assert np.array_equal(x0, x1) and np.array_equal(y0, y1)
    assert not np.array_equal(y0, y2)
    assert x0.shape == (20, 1, 32, 32) and y0.shape == (20, 32, 32)
    assert set(np.unique(y0)) == set(range(len(S.CLASSES)))


def test_brightness_does_not_give_the_class_away() -> None:
    x, y = S.generate(200, seed=0)
    means = [float(x[:, 0][y == c].mean()) for c in (1, 2)]
    assert max(means) - min(means) < 0.2  # the objects' classes have about the same mean


def test_split_is_cached_under_the_root_and_reloaded(tmp_path: Path) -> None:
    split = S.shapes(tmp_path, seed=1, num_train=16, num_test=8, size=16)
    assert isinstance(split, Split) and split.num_classes == 3
    assert split.x_train.shape == (16, 1, 16, 16) and split.x_train.dtype == torch.float32
    assert split.y_test.shape == (8, 16, 16) and split.y_test.dtype == torch.int64
    (cache,) = tmp_path.glob("shapes_*.npz")
    again = S.shapes(tmp_path, seed=1, num_train=16, num_test=8, size=16)
    assert torch.equal(again.x_train, split.x_train) and torch.equal(again.y_test, split.y_test)
    assert not torch.equal(split.y_train[:8], split.y_test)  # the test set has its own stream
    cache.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable"):
        rebuilt = S.shapes(tmp_path, seed=1, num_train=16, num_test=8, size=16)
    assert torch.equal(rebuilt.y_train, split.y_train)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(num_train=0), r"num_train must be an int >= 1"),
        (dict(size=8), r"size must be at least 16"),
        (dict(num_test=2.5), r"num_test must be an int >= 1"),
    ],
)
def test_bad_sizes_raise(tmp_path: Path, options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        S.shapes(tmp_path, **options)  # type: ignore[arg-type]


def test_oxford_pet_offline_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError, match=r"Oxford-IIIT Pet is not in .*quick"):
        S.oxford_pet(tmp_path, download=False)
