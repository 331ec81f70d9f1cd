"""Datasets and loaders.

Quick-profile data is generated offline: MNIST-1D comes from the ``mnist1d`` package's
``make_dataset`` (never its pickle download) and is cached under ``data/`` as a plain ``.npz``.
Full-profile data are torchvision datasets downloaded into ``data/``; when a download is
impossible they raise :class:`DatasetUnavailableError` saying what to do instead of hanging.

Every dataset is returned as a :class:`Split` of tensors, and :class:`TensorLoader` batches them
where they live. On a GPU the whole set sits in device memory and is augmented there in batches
(:func:`random_crop_flip`), so a training step never waits on the host.
"""

from __future__ import annotations

import os
import random
import socket
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from pickle import UnpicklingError
from zipfile import BadZipFile

import numpy as np
import torch
import torch.nn.functional as F

DATA_ENV = "RESLIB_DATA"
# RESLIB_STAND_IN=1: a dataset that cannot be had is replaced by generated data of its shape,
# with a warning - for running the full profile's code on a machine without a network (the
# numbers then say nothing about the dataset; benchmarks/full_profile.py reports them as such)
STAND_IN_ENV = "RESLIB_STAND_IN"

# Per-channel statistics of the CIFAR-10 training set (computed over its 50,000 images).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class DatasetUnavailableError(RuntimeError):
    """A dataset is neither on disk nor downloadable; the message says how to get it."""


def stand_in(error: DatasetUnavailableError, make: Callable[[], Split]) -> Split:
    """Raise ``error``, unless ``$RESLIB_STAND_IN`` is ``1``: then warn and return ``make()``,
    generated data shaped like the missing dataset."""
    if os.environ.get(STAND_IN_ENV) != "1":
        raise error
    warnings.warn(f"{STAND_IN_ENV}=1: using generated stand-in data, because {error}", stacklevel=3)
    print(f"STAND-IN DATA: {str(error).split(' is not in ')[0]}", flush=True)
    return make()


@dataclass(frozen=True)
class Split:
    """A train/test pair of tensors: ``x`` of shape (N, ...) and integer labels ``y`` of (N,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    def __post_init__(self) -> None:
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise ValueError(f"num_classes must be an int >= 1, got {self.num_classes!r}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {self.num_classes}")
        for x, y, part in (
            (self.x_train, self.y_train, "train"),
            (self.x_test, self.y_test, "test"),
        ):
            if x.shape[0] != y.shape[0]:
                raise ValueError(
                    f"{part} split has {x.shape[0]} inputs but {y.shape[0]} labels; "
                    "expected one label per input"
                )
            _check_labels(y, self.num_classes, part)

    def to(self, device: torch.device | str) -> Split:
        """The same split on ``device``."""
        return Split(
            *(t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test)),
            num_classes=self.num_classes,
        )


def _check_labels(y: torch.Tensor, num_classes: int, part: str) -> None:
    """Integer class labels in ``[0, num_classes)``: float labels or an out-of-range class
    would otherwise surface later as a CUDA assert or a silently wrong accuracy."""
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(
            f"{part} labels must be integer class indices, got dtype {y.dtype}; "
            "convert them with .long()"
        )
    if y.numel() == 0 or y.device.type == "meta":  # meta tensors have no values to check
        return
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"{part} labels must lie in [0, num_classes) = [0, {num_classes}), "
            f"got values from {low} to {high}"
        )


def default_root() -> Path:
    """Where datasets are cached: ``$RESLIB_DATA``, else the ``data/`` folder of the book
    repository that contains the working directory, else ``./data``."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "_toc.yml").is_file() and (folder / "reslib").is_dir():
            return folder / "data"
    return cwd / "data"


def data_dir(root: str | os.PathLike[str] | None) -> Path:
    """``root``, or :func:`default_root` when it is ``None``; created if missing."""
    path = Path(root) if root is not None else default_root()
    path.mkdir(parents=True, exist_ok=True)
    return path


def mnist1d(
    root: str | os.PathLike[str] | None = None, *, seed: int = 42, num_samples: int = 5000
) -> Split:
    """MNIST-1D (Greydanus 2020): 10 classes of length-40 sequences, generated offline.

    Uses ``mnist1d.data.make_dataset`` with the package's default arguments (80/20 split),
    so ``seed=42, num_samples=5000`` is the reference dataset: 4,000 train and 1,000 test
    sequences. Inputs are (N, 40) float32; the result is cached in ``root``.
    """
    if num_samples < 10:
        raise ValueError(f"num_samples must be at least 10, got {num_samples}")
    cache = data_dir(root) / f"mnist1d_seed{seed}_n{num_samples}.npz"
    arrays = cached_arrays(cache, lambda: _make_mnist1d(seed, num_samples))
    return Split(
        x_train=torch.from_numpy(arrays["x"].astype(np.float32)),
        y_train=torch.from_numpy(arrays["y"].astype(np.int64)),
        x_test=torch.from_numpy(arrays["x_test"].astype(np.float32)),
        y_test=torch.from_numpy(arrays["y_test"].astype(np.int64)),
        num_classes=10,
    )


# what np.load raises for a truncated, corrupted or foreign .npz file: a cache to regenerate
UNREADABLE_CACHE = (OSError, ValueError, KeyError, EOFError, BadZipFile, UnpicklingError)
SPLIT_KEYS = ("x", "y", "x_test", "y_test")  # the arrays of a cached train/test split


def cached_arrays(cache: Path, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The :data:`SPLIT_KEYS` arrays stored in the ``.npz`` file ``cache``; when it is missing or
    unreadable (a truncated or corrupted file: only a cache, so with a warning), ``make()``
    makes them and they are written for the next call."""
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as d:
                return {k: d[k] for k in SPLIT_KEYS}
        except UNREADABLE_CACHE as err:
            warnings.warn(
                f"the cache {cache} is unreadable ({type(err).__name__}: {err}); regenerating it",
                stacklevel=3,
            )
    arrays = make()
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp.npz")  # one per writing process
    np.savez(tmp, **{k: arrays[k] for k in SPLIT_KEYS})
    os.replace(tmp, cache)  # atomic: an interrupted run never leaves a half-written cache
    return arrays


def _make_mnist1d(seed: int, num_samples: int) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed, args.num_samples = seed, num_samples
    with _global_rng_preserved():  # make_dataset reseeds Python's and NumPy's global RNGs
        d = make_dataset(args)  # pure NumPy generation: no network, about a second
    return {k: d[k] for k in SPLIT_KEYS}


@contextmanager
def _global_rng_preserved() -> Iterator[None]:
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@contextmanager
def download_timeout(seconds: float) -> Iterator[None]:
    """A socket timeout for downloads in the block (torchvision's has none): no hang."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` for images of shape (N, C, H, W).

    The statistics must have one entry per channel: broadcasting 3-channel statistics over a
    1-channel batch would silently turn grey images into three-channel ones.
    """
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(x.shape)}")
    if not len(mean) == len(std) == x.shape[1]:
        raise ValueError(
            f"normalize got {x.shape[1]}-channel images but statistics for "
            f"{len(mean)} (mean) and {len(std)} (std) channels; expected one value per channel"
        )
    if any(not v > 0 for v in std):
        raise ValueError(f"std must be > 0 for every channel, got {std}")
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def cifar10(
    root: str | os.PathLike[str] | None = None, *, download: bool = True, timeout: float = 60.0
) -> Split:
    """CIFAR-10 (Krizhevsky 2009) via torchvision: 50,000 train / 10,000 test 32x32 images.

    Images are returned as normalised float32 tensors of shape (N, 3, 32, 32). Augmentation
    (pad 4, random crop, flip; He et al. 2016) is applied per batch by :func:`random_crop_flip`.

    Raises:
        DatasetUnavailableError: the files are absent and cannot be downloaded.
    """
    from torchvision.datasets import CIFAR10

    path = data_dir(root)
    try:
        with download_timeout(timeout):
            train = CIFAR10(str(path), train=True, download=download)
            test = CIFAR10(str(path), train=False, download=download)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; torchvision raises both
        missing = DatasetUnavailableError(
            f"CIFAR-10 is not in {path} and could not be downloaded ({err}). Connect to the "
            f"internet and rerun, or place cifar-10-python.tar.gz from "
            f"https://www.cs.toronto.edu/~kriz/cifar.html in {path}, "
            f"or run the quick profile (RESLIB_PROFILE=quick), which needs no download."
        )
        missing.__cause__ = err
        return stand_in(missing, lambda: synthetic_images(50_000, 10_000))

    def images(raw: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(raw).permute(0, 3, 1, 2).float().div_(255)  # (N, 3, 32, 32)
        return normalize(x, CIFAR10_MEAN, CIFAR10_STD)

    return Split(
        x_train=images(train.data),
        y_train=torch.tensor(train.targets, dtype=torch.int64),
        x_test=images(test.data),
        y_test=torch.tensor(test.targets, dtype=torch.int64),
        num_classes=10,
    )


def synthetic_images(
    num_train: int = 512,
    num_test: int = 128,
    *,
    shape: tuple[int, int, int] = (3, 32, 32),
    num_classes: int = 10,
    seed: int = 0,
) -> Split:
    """CIFAR-shaped random data with learnable labels: for tests and benchmarks, no download.

    Each class adds its own fixed random pattern to Gaussian noise, so a model can fit it.
    """
    if num_train < 1 or num_test < 1 or num_classes < 2:
        raise ValueError("need num_train >= 1, num_test >= 1 and num_classes >= 2")
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(num_classes, *shape, generator=g)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(num_classes, (n,), generator=g)
        return torch.randn(n, *shape, generator=g) + patterns[y], y

    x_train, y_train = sample(num_train)
    x_test, y_test = sample(num_test)
    return Split(x_train, y_train, x_test, y_test, num_classes=num_classes)


def random_crop_flip(
    x: torch.Tensor, *, padding: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Batched augmentation of He et al. 2016: zero-pad, random crop back, horizontal flip.

    Works on (B, C, H, W) tensors on any device, with one random offset and flip per image
    and no Python loop over images. ``generator`` must live on ``x``'s device.
    """
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(x.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    b, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))  # (B, C, H+2p, W+2p)
    dy = torch.randint(2 * padding + 1, (b, 1), device=x.device, generator=generator)
    dx = torch.randint(2 * padding + 1, (b, 1), device=x.device, generator=generator)
    rows = dy + torch.arange(h, device=x.device)  # (B, H)
    cols = dx + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    crops = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    crops = crops.permute(0, 3, 1, 2)
    flip = torch.rand(b, device=x.device, generator=generator) < 0.5
    out = torch.where(flip[:, None, None, None], crops.flip(3), crops)
    # the gather leaves NHWC strides; hand back the caller's layout (contiguous() rejects
    # preserve_format, so name it: channels_last only when x is channels_last and not NCHW)
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return out.contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )


class TensorLoader:
    """Minibatches of tensors that already sit on their device.

    A lightweight replacement for ``DataLoader`` when the whole dataset fits in memory:
    shuffling is one ``randperm`` per epoch and batches are slices, so there is no per-sample
    Python and no host-to-device copy inside the training loop.

    Args:
        x, y: inputs (N, ...) and labels (N, ...) on the same device.
        batch_size: samples per batch.
        shuffle: reshuffle every epoch (seeded by ``seed``).
        drop_last: drop the final incomplete batch.
        augment: optional batched transform applied to each input batch.
        seed: seed of the shuffling generator, so loaders are reproducible on their own.
        shard: ``(rank, world_size)`` under ``torchrun``: ``batch_size`` is then the global
            batch, and this process gets rows ``rank, rank + world_size, ...`` of each one.
            Every process draws the same shuffle from the same seed, so the shards of a batch
            are exactly the batch a single process would train on.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        seed: int = 0,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        rank, world = shard
        if not 0 <= rank < world:
            raise ValueError(
                f"shard must be (rank, world_size) with 0 <= rank < world_size, got {shard}"
            )
        if batch_size % world:
            raise ValueError(
                f"batch_size {batch_size} (the global batch) does not split evenly over "
                f"{world} processes; use a multiple of {world}"
            )
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}")
        if x.device != y.device:
            raise ValueError(f"x is on {x.device} but y is on {y.device}; put both on one device")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if x.shape[0] == 0:
            raise ValueError("cannot batch an empty dataset")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.augment, self.shard = augment, (rank, world)
        self.generator = torch.Generator(device=x.device).manual_seed(seed)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def __len__(self) -> int:
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.x.shape[0]
        order = (
            torch.randperm(n, device=self.device, generator=self.generator)
            if self.shuffle
            else None
        )
        rank, world = self.shard
        for i in range(len(self)):
            start, stop = i * self.batch_size, min((i + 1) * self.batch_size, n)
            if start + rank >= stop:
                continue  # a short last batch with no row for this process
            rows = slice(start + rank, stop, world)  # this process's share of the batch
            index = order[rows] if order is not None else rows
            xb, yb = self.x[index], self.y[index]
            yield (self.augment(xb) if self.augment is not None else xb), yb


def loaders(
    split: Split,
    *,
    batch_size: int,
    device: torch.device | str | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    test_batch_size: int | None = None,
    seed: int = 0,
    shard: tuple[int, int] = (0, 1),
) -> tuple[TensorLoader, TensorLoader]:
    """Train and test :class:`TensorLoader` for ``split``, moved to ``device`` once.

    The training loader shuffles (and augments, if given); the test loader does neither.
    ``shard`` is as in :class:`TensorLoader` (both loaders are sharded).
    """
    for part, x in (("train", split.x_train), ("test", split.x_test)):
        if x.shape[0] == 0:
            raise ValueError(f"the {part} split is empty (0 samples): there is nothing to batch")
    if device is not None:
        split = split.to(device)
    train = TensorLoader(
        split.x_train,
        split.y_train,
        batch_size=batch_size,
        shuffle=True,
        augment=augment,
        seed=seed,
        shard=shard,
    )
    test_batch = test_batch_size or 4 * batch_size
    test = TensorLoader(split.x_test, split.y_test, batch_size=test_batch, shard=shard)
    return train, test
