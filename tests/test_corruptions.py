"""reslib.corruptions: CIFAR-10-C's noise, blur and contrast (Hendrycks & Dietterich 2019,
arXiv 1903.12261), made on the fly in torch."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from reslib.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    blur,
    corrupt,
    gaussian_kernel,
    severity_grid,
    severity_value,
)


def _images(n: int = 4, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


def test_severity_zero_is_clean_and_every_corruption_stays_in_range() -> None:
    x = _images()
    for kind in CORRUPTIONS:
        assert corrupt(x, kind, 0) is x
        for s in range(1, 6):
            out = corrupt(x, kind, s, generator=torch.Generator().manual_seed(s))
            assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
            assert not torch.equal(out, x)


def test_noise_has_cifar10c_sigma_and_is_reproducible() -> None:
    x = torch.full((64, 1, 32, 32), 0.5)  # far from the clip, so the noise is all there is
    for s, sigma in enumerate(SEVERITIES["gaussian_noise"], start=1):
        out = corrupt(x, "gaussian_noise", s, generator=torch.Generator().manual_seed(0))
        assert abs((out - x).std().item() - sigma) < 0.03 * sigma
        again = corrupt(x, "gaussian_noise", s, generator=torch.Generator().manual_seed(0))
        assert torch.equal(out, again)
    assert severity_value("gaussian_noise", 5) == 0.10


def test_contrast_shrinks_each_channel_towards_its_mean() -> None:
    x = 0.25 + 0.5 * _images()
    out = corrupt(x, "contrast", 5)
    c = SEVERITIES["contrast"][4]
    mean = x.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(out, (x - mean) * c + mean)
    torch.testing.assert_close(out.mean(dim=(2, 3)), x.mean(dim=(2, 3)))
    torch.testing.assert_close(out.std(dim=(2, 3)), c * x.std(dim=(2, 3)))


def test_blur_matches_torchvision_and_keeps_constants() -> None:
    x = _images(size=20)
    for s, sigma in enumerate(SEVERITIES["gaussian_blur"], start=1):
        r = gaussian_kernel(sigma).numel() // 2
        assert r == int(4 * sigma + 0.5)
        ours = corrupt(x, "gaussian_blur", s)
        theirs = TF.gaussian_blur(x, [2 * r + 1] * 2, [sigma] * 2)
        # torchvision reflects at the border, we repeat the edge: compare the interior
        torch.testing.assert_close(ours[..., r:-r, r:-r], theirs[..., r:-r, r:-r])
    assert torch.allclose(blur(torch.full((1, 2, 9, 9), 0.3), 1.0), torch.tensor(0.3))
    seq = torch.rand(2, 1, 40)  # sequences blur along their one axis
    assert corrupt(seq, "gaussian_blur", 5).shape == seq.shape
    torch.testing.assert_close(gaussian_kernel(0.7).sum(), torch.tensor(1.0))


def test_normalised_data_is_corrupted_in_pixel_space() -> None:
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    x01 = _images()
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    out = corrupt((x01 - m) / s, "contrast", 3, mean=mean, std=std)
    torch.testing.assert_close(out * s + m, corrupt(x01, "contrast", 3))


def test_severity_grid_makes_every_pair_and_each_independently() -> None:
    x = _images()
    grid = severity_grid(x, severities=(1, 3), seed=2)
    assert sorted(grid) == sorted((k, s) for k in CORRUPTIONS for s in (1, 3))
    alone = severity_grid(x, kinds=("gaussian_noise",), severities=(3,), seed=2)
    assert torch.equal(alone["gaussian_noise", 3], grid["gaussian_noise", 3])


def test_bad_input_is_explained() -> None:
    x = _images()
    with pytest.raises(ValueError, match="unknown corruption 'fog'"):
        corrupt(x, "fog", 1)
    with pytest.raises(ValueError, match=r"severity must be an int in 1\.\.5"):
        corrupt(x, "contrast", 6)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(N, C, L\)"):
        corrupt(x[0, 0], "contrast", 1)
    with pytest.raises(ValueError, match="both mean and std"):
        corrupt(x, "contrast", 1, mean=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="one mean and one std"):
        corrupt(x, "contrast", 1, mean=(0.5,), std=(0.2,))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        gaussian_kernel(0.0)
    with pytest.raises(ValueError, match="must not be empty"):
        severity_grid(x, kinds=())
