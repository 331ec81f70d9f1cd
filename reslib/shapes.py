"""Segmentation data: generated shapes with exact masks (offline), and Oxford-IIIT Pet.

The quick profile of the U-Net chapter (Ronneberger et al. 2015, arXiv 1505.04597) needs a
segmentation task that runs on a CPU in seconds and where *boundaries and thin structures*
matter. :func:`shapes` draws it from a seed: every image holds a few ellipses, convex polygons,
thin lines and rings on a textured background, with Gaussian noise; the mask labels each pixel
by the shape that covers its centre, exactly (the same geometry draws the image and the mask,
later shapes on top). The classes are

===  ==============  ===========================================================
0    background
1    solid           filled ellipses (rotated) and convex polygons (3 to 6 corners)
2    thin            lines and rings, 1 to 2 pixels wide
===  ==============  ===========================================================

A shape's brightness and texture are drawn independently of its class, so a pixel's class
cannot be read from its value: the net must see the shape around it (a large receptive
field) and place its edge to the pixel (fine detail) - the two things a U-Net combines.

The full profile uses torchvision's Oxford-IIIT Pet with its trimaps (:func:`oxford_pet`),
downloaded into the data root; offline it raises :class:`reslib.data.DatasetUnavailableError`.
Both are cached under the data root (:func:`reslib.data.default_root`) as ``.npz`` files.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from reslib.data import (
    DatasetUnavailableError,
    Split,
    cached_arrays,
    data_dir,
    download_timeout,
    normalize,
    stand_in,
)

__all__ = [
    "CLASSES",
    "PET_CLASSES",
    "Ellipse",
    "Line",
    "Polygon",
    "Ring",
    "Shape",
    "draw",
    "generate",
    "oxford_pet",
    "shapes",
]

CLASSES = ("background", "solid", "thin")
PET_CLASSES = ("pet", "background", "border")  # the trimap's labels 1, 2, 3 minus one
_VERSION = 3  # bump when the generator changes, so old caches are not read


@dataclass(frozen=True)
class Ellipse:
    """A filled ellipse: centre (cy, cx), semi-axes a (along angle ``theta``) and b."""

    cy: float
    cx: float
    a: float
    b: float
    theta: float
    label: int = 1

    def contains(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.theta), math.sin(self.theta)
        u = (x - self.cx) * c + (y - self.cy) * s
        v = -(x - self.cx) * s + (y - self.cy) * c
        return (u / self.a) ** 2 + (v / self.b) ** 2 <= 1


@dataclass(frozen=True)
class Polygon:
    """A filled convex polygon, corners ``(y, x)`` counter-clockwise in (x, y) coordinates."""

    corners: tuple[tuple[float, float], ...]
    label: int = 1

    def contains(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        inside = np.ones(np.broadcast(y, x).shape, dtype=bool)
        n = len(self.corners)
        for i in range(n):  # on the left of every edge (the cross product is >= 0)
            (y0, x0), (y1, x1) = self.corners[i], self.corners[(i + 1) % n]
            inside &= (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= 0
        return inside


@dataclass(frozen=True)
class Line:
    """A thin line: the points within ``half_width`` of the segment (y0, x0)-(y1, x1)."""

    y0: float
    x0: float
    y1: float
    x1: float
    half_width: float
    label: int = 2

    def contains(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        dy, dx = self.y1 - self.y0, self.x1 - self.x0
        t = np.clip(((y - self.y0) * dy + (x - self.x0) * dx) / (dy * dy + dx * dx), 0, 1)
        return np.hypot(y - (self.y0 + t * dy), x - (self.x0 + t * dx)) <= self.half_width


@dataclass(frozen=True)
class Ring:
    """An annulus: the points at distance in [inner, outer] from the centre (cy, cx)."""

    cy: float
    cx: float
    inner: float
    outer: float
    label: int = 2

    def contains(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        r = np.hypot(y - self.cy, x - self.cx)
        return (r >= self.inner) & (r <= self.outer)


Shape = Ellipse | Polygon | Line | Ring


def _random_shape(rng: np.random.Generator, size: int) -> Shape:
    s = size / 32  # the sizes below are for 32x32 images
    cy, cx = rng.uniform(0.15 * size, 0.85 * size, 2)
    kind = rng.integers(4)
    if kind == 0:
        a, b = rng.uniform(2.5 * s, 8 * s, 2)
        return Ellipse(cy, cx, a, b, rng.uniform(0, math.pi))
    if kind == 1:  # corners on a circle (so convex), each jittered within its 1/n of it
        n, radius = int(rng.integers(3, 7)), rng.uniform(4 * s, 9 * s)
        step = 2 * math.pi / n
        angles = rng.uniform(0, step) + step * (np.arange(n) + rng.uniform(-0.3, 0.3, n))
        corners = tuple((cy + radius * math.sin(t), cx + radius * math.cos(t)) for t in angles)
        return Polygon(corners)
    if kind == 2:
        length, angle = rng.uniform(10 * s, 24 * s), rng.uniform(0, math.pi)
        dy, dx = 0.5 * length * math.sin(angle), 0.5 * length * math.cos(angle)
        return Line(cy - dy, cx - dx, cy + dy, cx + dx, rng.uniform(0.5, 0.9) * s)
    outer = rng.uniform(4 * s, 9 * s)
    return Ring(cy, cx, outer - rng.uniform(1.0, 2.0) * s, outer)


def _texture(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    """A random sinusoidal grating: stripes of random period, direction and phase."""
    period, angle = rng.uniform(3, 12) * size / 32, rng.uniform(0, math.pi)
    phase = 2 * math.pi / period * (x * math.cos(angle) + y * math.sin(angle))
    return np.sin(phase + rng.uniform(0, 2 * math.pi))


def draw(
    rng: np.random.Generator, size: int = 32, *, max_shapes: int = 4, noise: float = 0.15
) -> tuple[np.ndarray, np.ndarray, list[Shape]]:
    """One image (size, size) float32, its mask (size, size) int64 and the shapes drawn.

    Shapes are painted in order, each over the ones before; a pixel belongs to a shape when
    its centre (i + 0.5, j + 0.5) does, so the mask is exact for the shapes' geometry.
    """
    y, x = np.mgrid[0:size, 0:size] + 0.5  # pixel centres, (size, size) each
    background = rng.uniform(-0.5, 0.5)
    image = background + 0.2 * _texture(rng, y, x, size)
    mask = np.zeros((size, size), dtype=np.int64)
    drawn = [_random_shape(rng, size) for _ in range(int(rng.integers(2, max_shapes + 1)))]
    for shape in drawn:
        inside = shape.contains(y, x)
        # brightness and texture independent of the class, darker or brighter than the
        # background by a clear step
        level = background + (1.0 if rng.random() < 0.5 else -1.0) * rng.uniform(0.8, 1.4)
        fill = level + 0.2 * _texture(rng, y, x, size)
        image = np.where(inside, fill, image)
        mask = np.where(inside, shape.label, mask)
    image = image + noise * rng.standard_normal((size, size))
    return image.astype(np.float32), mask, drawn


def generate(num: int, *, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``num`` images (num, 1, size, size) and masks (num, size, size), from ``seed`` alone."""
    rng = np.random.default_rng(seed)
    images = np.empty((num, 1, size, size), dtype=np.float32)
    masks = np.empty((num, size, size), dtype=np.int64)
    for i in range(num):
        images[i, 0], masks[i], _ = draw(rng, size)
    return images, masks


def _split(arrays: dict[str, np.ndarray], num_classes: int) -> Split:
    return Split(
        x_train=torch.from_numpy(arrays["x"]),
        y_train=torch.from_numpy(arrays["y"].astype(np.int64)),
        x_test=torch.from_numpy(arrays["x_test"]),
        y_test=torch.from_numpy(arrays["y_test"].astype(np.int64)),
        num_classes=num_classes,
    )


def shapes(
    root: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    num_train: int = 2000,
    num_test: int = 500,
    size: int = 32,
) -> Split:
    """Generated shapes for segmentation (see the module docstring): x (N, 1, size, size)
    float32, y (N, size, size) int64 with the 3 :data:`CLASSES`; deterministic for ``seed``
    (the test set comes from its own stream), cached in ``root``."""
    for what, value in (("num_train", num_train), ("num_test", num_test), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be an int >= 1, got {value!r}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    name = f"shapes_v{_VERSION}_seed{seed}_n{num_train}+{num_test}_s{size}.npz"

    def make() -> dict[str, np.ndarray]:
        x, y = generate(num_train, seed=seed, size=size)
        x_test, y_test = generate(num_test, seed=seed + 1_000_003, size=size)
        return dict(x=x, y=y, x_test=x_test, y_test=y_test)

    return _split(cached_arrays(data_dir(root) / name, make), len(CLASSES))


def _in_rgb(split: Split) -> Split:
    """Grey images repeated over 3 channels, as the pets' stand-in."""
    rgb = [x.expand(-1, 3, -1, -1).contiguous() for x in (split.x_train, split.x_test)]
    return Split(rgb[0], split.y_train, rgb[1], split.y_test, num_classes=split.num_classes)


# ImageNet statistics, the usual normalisation for natural photographs such as the pets
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def oxford_pet(
    root: str | os.PathLike[str] | None = None,
    *,
    size: int = 128,
    download: bool = True,
    timeout: float = 60.0,
) -> Split:
    """Oxford-IIIT Pet (Parkhi et al. 2012) trimaps via torchvision: 3,680 trainval / 3,669
    test photographs, resized to ``size`` x ``size`` (images bilinear, masks nearest).

    x is (N, 3, size, size) float32 normalised with ImageNet statistics; y (N, size, size)
    int64 with the 3 :data:`PET_CLASSES`. The resized arrays are cached in ``root``.

    Raises:
        DatasetUnavailableError: the files are absent and cannot be downloaded.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    path = data_dir(root)

    def unavailable(reason: str) -> DatasetUnavailableError:
        return DatasetUnavailableError(
            f"Oxford-IIIT Pet is not in {path} and could not be downloaded ({reason}). "
            f"Connect to the internet and rerun, or place images.tar.gz and "
            f"annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/ in "
            f"{path / 'oxford-iiit-pet'}, or run the quick profile (RESLIB_PROFILE=quick), "
            f"which needs no download."
        )

    def make() -> dict[str, np.ndarray]:
        if not download and not (path / "oxford-iiit-pet").is_dir():
            raise unavailable("download=False")  # fails fast, before importing torchvision
        from torchvision.datasets import OxfordIIITPet

        try:
            with download_timeout(timeout):
                parts = [
                    OxfordIIITPet(
                        str(path), split=s, target_types="segmentation", download=download
                    )
                    for s in ("trainval", "test")
                ]
        except (OSError, RuntimeError) as err:  # URLError is an OSError; torchvision raises both
            raise unavailable(str(err)) from err
        arrays = {}
        for part, key in zip(parts, ("", "_test"), strict=True):
            xs, ys = _resized(part, size)
            arrays["x" + key], arrays["y" + key] = xs, ys
        return arrays

    try:
        split = _split(cached_arrays(path / f"oxford_pet_s{size}.npz", make), len(PET_CLASSES))
    except DatasetUnavailableError as missing:  # shapes of the pets' size, in 3 channels
        split = stand_in(
            missing, lambda: _in_rgb(shapes(path, size=size, num_train=3680, num_test=3669))
        )
    return Split(
        normalize(split.x_train, IMAGENET_MEAN, IMAGENET_STD),
        split.y_train,
        normalize(split.x_test, IMAGENET_MEAN, IMAGENET_STD),
        split.y_test,
        num_classes=split.num_classes,
    )


def _resized(dataset: object, size: int) -> tuple[np.ndarray, np.ndarray]:
    """All (image, trimap) pairs of ``dataset`` as arrays (N, 3, size, size) in [0, 1] and
    labels (N, size, size) in {0, 1, 2}."""
    from PIL import Image

    xs = np.empty((len(dataset), 3, size, size), dtype=np.float32)  # type: ignore[arg-type]
    ys = np.empty((len(dataset), size, size), dtype=np.uint8)  # type: ignore[arg-type]
    for i, (image, trimap) in enumerate(dataset):  # type: ignore[call-overload]
        image = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        xs[i] = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255
        ys[i] = np.asarray(trimap.resize((size, size), Image.Resampling.NEAREST)) - 1
    return xs, ys
