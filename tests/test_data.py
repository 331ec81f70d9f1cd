"""reslib.data: offline MNIST-1D, CIFAR-10 failure mode, synthetic images, augmentation, loader."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

import mnist1d.data
import numpy as np
import pytest
import torch

from reslib import data
from reslib.data import DatasetUnavailableError, Split, TensorLoader, random_crop_flip


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every attempt to open a connection fails at once, as on a machine without network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# --- MNIST-1D ----------------------------------------------------------------------------------


def test_mnist1d_reference_split(mnist1d_split: Split, data_root: Path) -> None:
    s = mnist1d_split
    assert s.x_train.shape == (4000, 40) and s.x_test.shape == (1000, 40)
    assert s.y_train.shape == (4000,) and s.y_test.shape == (1000,)
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    assert s.num_classes == 10
    assert set(s.y_train.tolist()) == set(range(10)) and set(s.y_test.tolist()) <= set(range(10))
    # without a root it caches under $RESLIB_DATA (the conftest points it at a temp folder)
    assert os.environ[data.DATA_ENV] == str(data_root)
    assert (data_root / "mnist1d_seed42_n5000.npz").is_file()


def test_mnist1d_is_deterministic(tmp_path: Path) -> None:
    a = data.mnist1d(tmp_path / "a", num_samples=100)
    b = data.mnist1d(tmp_path / "b", num_samples=100)  # generated again, not read from a's cache
    assert a.x_train.shape == (80, 40) and a.x_test.shape == (20, 40)
    for t, u in zip(
        (a.x_train, a.y_train, a.x_test, a.y_test),
        (b.x_train, b.y_train, b.x_test, b.y_test),
        strict=True,
    ):
        assert torch.equal(t, u)
    c = data.mnist1d(tmp_path / "c", num_samples=100, seed=1)
    assert not torch.equal(a.x_train, c.x_train)


def test_mnist1d_reuses_its_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = data.mnist1d(tmp_path, num_samples=100)
    assert [p.name for p in tmp_path.iterdir()] == ["mnist1d_seed42_n100.npz"]  # no temp file

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("make_dataset was called although the cache exists")

    monkeypatch.setattr(mnist1d.data, "make_dataset", must_not_run)
    again = data.mnist1d(tmp_path, num_samples=100)
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_test, again.y_test)
    with pytest.raises(AssertionError, match="make_dataset was called"):
        data.mnist1d(tmp_path, num_samples=200)  # another size is not cached: it generates


def test_mnist1d_generates_without_network(tmp_path: Path, no_network: None) -> None:
    with pytest.raises(OSError, match="blocked"):  # the block is in force
        socket.create_connection(("example.com", 80))
    s = data.mnist1d(tmp_path, num_samples=100)
    assert s.x_train.shape == (80, 40)


def test_mnist1d_preserves_global_rng_state(tmp_path: Path) -> None:
    random.seed(123)
    np.random.seed(123)
    py_state, np_state = random.getstate(), np.random.get_state()
    data.mnist1d(tmp_path, num_samples=100)  # make_dataset itself reseeds both with 42
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]


def test_mnist1d_rejects_tiny_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 10"):
        data.mnist1d(tmp_path, num_samples=5)


# --- CIFAR-10 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("download", [True, False])
def test_cifar10_without_network_raises_a_helpful_error(
    tmp_path: Path, no_network: None, download: bool
) -> None:
    with pytest.raises(DatasetUnavailableError) as info:
        data.cifar10(tmp_path, download=download, timeout=5.0)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "cifar-10-python.tar.gz" in message and "RESLIB_PROFILE=quick" in message
    assert socket.getdefaulttimeout() is None  # the temporary socket timeout was undone


# --- synthetic images --------------------------------------------------------------------------


def test_synthetic_images_shapes_and_determinism() -> None:
    s = data.synthetic_images(20, 6, shape=(1, 8, 8), num_classes=3, seed=1)
    assert s.x_train.shape == (20, 1, 8, 8) and s.x_test.shape == (6, 1, 8, 8)
    assert s.y_train.shape == (20,) and s.num_classes == 3
    assert int(s.y_train.min()) >= 0 and int(s.y_train.max()) < 3
    again = data.synthetic_images(20, 6, shape=(1, 8, 8), num_classes=3, seed=1)
    assert torch.equal(s.x_train, again.x_train) and torch.equal(s.y_test, again.y_test)
    with pytest.raises(ValueError, match="num_classes"):
        data.synthetic_images(4, 4, num_classes=1)


def test_split_checks_lengths_and_moves() -> None:
    with pytest.raises(ValueError, match="3 inputs but 2 labels"):
        Split(torch.zeros(3, 2), torch.zeros(2), torch.zeros(1, 2), torch.zeros(1), num_classes=2)
    s = data.synthetic_images(4, 2, shape=(1, 4, 4), num_classes=2).to("meta")
    assert s.x_train.device.type == "meta" and s.num_classes == 2


def test_normalize_per_channel() -> None:
    x = torch.ones(2, 3, 4, 4)
    out = data.normalize(x, (1.0, 0.0, 0.5), (1.0, 2.0, 0.25))
    assert torch.allclose(out[:, 0], torch.zeros(2, 4, 4))
    assert torch.allclose(out[:, 1], torch.full((2, 4, 4), 0.5))
    assert torch.allclose(out[:, 2], torch.full((2, 4, 4), 2.0))


# --- random_crop_flip --------------------------------------------------------------------------


def _all_crops_and_flips(img: torch.Tensor, padding: int) -> list[torch.Tensor]:
    """Every image random_crop_flip may return for ``img`` (C, H, W), by brute force."""
    _, h, w = img.shape
    padded = torch.nn.functional.pad(img, (padding,) * 4)
    crops = [
        padded[:, dy : dy + h, dx : dx + w]
        for dy in range(2 * padding + 1)
        for dx in range(2 * padding + 1)
    ]
    return crops + [c.flip(2) for c in crops]


def test_random_crop_flip_is_a_padded_crop_or_its_mirror() -> None:
    x = torch.randn(16, 2, 5, 6)
    out = random_crop_flip(x, padding=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype and out.is_contiguous()
    for img, aug in zip(x, out, strict=True):
        assert any(torch.equal(aug, c) for c in _all_crops_and_flips(img, 2))
    assert not torch.equal(out, x)  # with 16 images, some were moved or mirrored


def test_random_crop_flip_without_padding_only_flips() -> None:
    x = torch.randn(32, 3, 4, 4)
    out = random_crop_flip(x, padding=0, generator=torch.Generator().manual_seed(0))
    same = [torch.equal(a, b) for a, b in zip(out, x, strict=True)]
    mirrored = [torch.equal(a, b.flip(2)) for a, b in zip(out, x, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert any(same) and any(mirrored)  # both outcomes occur in 32 fair coin flips (seeded)


def test_random_crop_flip_is_seeded() -> None:
    x = torch.randn(8, 3, 8, 8)
    a = random_crop_flip(x, generator=torch.Generator().manual_seed(5))
    b = random_crop_flip(x, generator=torch.Generator().manual_seed(5))
    c = random_crop_flip(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_random_crop_flip_keeps_channels_last() -> None:
    x = torch.randn(4, 3, 6, 6).contiguous(memory_format=torch.channels_last)
    out = random_crop_flip(x, padding=1)
    assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 3, 4, 8, 8)])
def test_random_crop_flip_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        random_crop_flip(torch.zeros(shape))


def test_random_crop_flip_rejects_negative_padding() -> None:
    with pytest.raises(ValueError, match="padding"):
        random_crop_flip(torch.zeros(1, 1, 4, 4), padding=-1)


# --- TensorLoader ------------------------------------------------------------------------------


def _loader(n: int = 10, **kwargs: object) -> TensorLoader:
    x = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3)  # row i holds i
    return TensorLoader(x, torch.arange(n), **kwargs)  # type: ignore[arg-type]


def test_loader_length_with_and_without_drop_last() -> None:
    assert len(_loader(10, batch_size=4)) == 3
    assert len(_loader(10, batch_size=4, drop_last=True)) == 2
    assert len(_loader(8, batch_size=4, drop_last=True)) == 2
    assert [len(y) for _, y in _loader(10, batch_size=4)] == [4, 4, 2]
    assert [len(y) for _, y in _loader(10, batch_size=4, drop_last=True)] == [4, 4]


def test_loader_in_order_without_shuffle() -> None:
    ys = torch.cat([y for _, y in _loader(10, batch_size=3)])
    assert ys.tolist() == list(range(10))


def test_shuffled_loader_covers_each_sample_once_and_keeps_pairs() -> None:
    loader = _loader(23, batch_size=5, shuffle=True, seed=0)
    epochs = []
    for _ in range(2):
        xs, ys = zip(*loader, strict=True)
        x, y = torch.cat(xs), torch.cat(ys)
        assert sorted(y.tolist()) == list(range(23))
        assert torch.equal(x[:, 0].long(), y)  # inputs stay with their labels
        epochs.append(y.tolist())
    assert epochs[0] != list(range(23)) and epochs[0] != epochs[1]  # reshuffled each epoch


def test_shuffled_loader_is_reproducible() -> None:
    def orders(seed: int) -> list[list[int]]:
        loader = _loader(20, batch_size=4, shuffle=True, seed=seed)
        return [torch.cat([y for _, y in loader]).tolist() for _ in range(3)]

    assert orders(1) == orders(1)
    assert orders(1) != orders(2)


def test_loader_applies_augment_to_inputs_only() -> None:
    loader = _loader(6, batch_size=4, augment=lambda x: -x)
    x, y = next(iter(loader))
    assert torch.equal(x[:, 0], -y.float())


def test_loader_errors() -> None:
    with pytest.raises(ValueError, match="x has 3 samples but y has 2"):
        TensorLoader(torch.zeros(3, 2), torch.zeros(2), batch_size=1)
    with pytest.raises(ValueError, match="batch_size"):
        TensorLoader(torch.zeros(3, 2), torch.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="one device"):
        TensorLoader(torch.zeros(3, 2), torch.zeros(3, device="meta"), batch_size=1)
    with pytest.raises(ValueError, match="empty"):
        TensorLoader(torch.zeros(0, 2), torch.zeros(0), batch_size=1)


def test_loaders_builds_a_shuffled_train_and_an_ordered_test_loader() -> None:
    split = data.synthetic_images(10, 7, shape=(1, 2, 2), num_classes=2)
    train, test = data.loaders(split, batch_size=4, seed=3)
    assert train.shuffle and not test.shuffle
    assert len(train) == 3 and len(test) == 1  # the test batch defaults to 4 x batch_size
    assert torch.equal(torch.cat([y for _, y in test]), split.y_test)


# --- defects of issue 10 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [b"", b"PK\x03\x04 truncated zip", b"\x93NUMPY not an npz"],
    ids=["empty", "bad-zip", "npy-header"],
)
def test_a_corrupted_mnist1d_cache_is_named_and_regenerated(tmp_path: Path, garbage: bytes) -> None:
    good = data.mnist1d(tmp_path, num_samples=100)
    cache = tmp_path / "mnist1d_seed42_n100.npz"
    cache.write_bytes(garbage)
    with pytest.warns(UserWarning, match=r"mnist1d_seed42_n100\.npz is unreadable.*regenerating"):
        again = data.mnist1d(tmp_path, num_samples=100)
    assert torch.equal(good.x_train, again.x_train) and torch.equal(good.y_test, again.y_test)
    with np.load(cache) as d:  # the cache was written again, readable
        assert d["x"].shape == (80, 40)


def test_normalize_checks_the_channel_count() -> None:
    grey = torch.ones(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"1-channel images but statistics for 3"):
        data.normalize(grey, data.CIFAR10_MEAN, data.CIFAR10_STD)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        data.normalize(torch.ones(3, 4, 4), data.CIFAR10_MEAN, data.CIFAR10_STD)
    with pytest.raises(ValueError, match="std must be > 0"):
        data.normalize(grey, (0.5,), (0.0,))
    assert torch.equal(data.normalize(grey, (0.5,), (0.5,)), torch.ones(2, 1, 4, 4))


@pytest.mark.parametrize(
    ("y_train", "message"),
    [
        (torch.tensor([0.0, 1.0, 1.0]), r"train labels must be integer.*float32"),
        (torch.tensor([0, 1, 2]), r"train labels must lie in \[0, num_classes\) = \[0, 2\).*2"),
        (torch.tensor([-1, 0, 1]), r"train labels.*from -1 to 1"),
    ],
)
def test_split_rejects_float_and_out_of_range_labels(y_train: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Split(torch.zeros(3, 2), y_train, torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), 2)


def test_split_checks_the_test_labels_and_num_classes() -> None:
    x, y = torch.zeros(3, 2), torch.tensor([0, 1, 1])
    with pytest.raises(ValueError, match=r"test labels must lie in .*from 5 to 5"):
        Split(x, y, torch.zeros(1, 2), torch.tensor([5]), num_classes=2)
    with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
        Split(x, y, x, y, num_classes=2.0)  # type: ignore[arg-type]
    seg = Split(x, torch.zeros(3, 4, 4, dtype=torch.long), x, torch.ones(3, 4, 4).long(), 2)
    assert seg.y_test.shape == (3, 4, 4)  # per-pixel labels are labels too


def test_loaders_name_the_empty_split() -> None:
    x, y = torch.zeros(3, 2), torch.tensor([0, 1, 1])
    empty = Split(x, y, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), num_classes=2)
    with pytest.raises(ValueError, match="the test split is empty"):
        data.loaders(empty, batch_size=2)
    with pytest.raises(ValueError, match="the train split is empty"):
        data.loaders(Split(x[:0], y[:0], x, y, num_classes=2), batch_size=2)
