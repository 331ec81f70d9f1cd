"""Common corruptions, made on the fly: Hendrycks & Dietterich 2019, "Benchmarking Neural
Network Robustness to Common Corruptions and Perturbations" (arXiv 1903.12261):
x_tilde = clip(c_s(x), 0, 1) for a corruption c at severity s in 1..5.

CIFAR-10-C stores 15 corruptions x 5 severities of the CIFAR-10 test set. This module makes
three of them in torch, on any device, from a seed - so any test set (CIFAR-10, or the
generated images of the quick profile) can be shifted without a download. The constants are
CIFAR-10-C's, for images in [0, 1]:

==================  ========================================  ===============================
corruption          c_s(x)                                    s = 1, 2, 3, 4, 5
==================  ========================================  ===============================
``gaussian_noise``  x + sigma z, z ~ N(0, 1) per pixel        sigma = .04, .06, .08, .09, .10
``gaussian_blur``   Gaussian filter of width sigma (pixels)   sigma = .4, .6, .7, .8, 1
``contrast``        (x - m) c + m, m = image's channel mean   c = .75, .5, .4, .3, .15
==================  ========================================  ===============================

Severity 0 returns the clean input. Normalised data (``(x01 - mean) / std``, as
:func:`reslib.data.cifar10` returns) is corrupted in [0, 1] when ``mean`` and ``std`` are
given and normalised again. Images are ``(N, C, H, W)``; sequences ``(N, C, L)`` work too
(the blur runs along the one axis).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "contrast")
# CIFAR-10-C's constants (make_cifar_c.py of Hendrycks & Dietterich), severities 1..5
SEVERITIES: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
}


def severity_value(kind: str, severity: int) -> float:
    """The constant of ``kind`` at ``severity`` (1..5): sigma, blur width or contrast factor."""
    if kind not in SEVERITIES:
        raise ValueError(f"unknown corruption {kind!r}: expected one of {CORRUPTIONS}")
    if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an int in 1..5 (0 for clean), got {severity!r}")
    return SEVERITIES[kind][severity - 1]


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """The normalised 1-D Gaussian of width ``sigma``, truncated at 4 sigma (as SciPy and
    scikit-image): ``2 r + 1`` taps with r = int(4 sigma + 0.5)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    r = int(4 * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).float()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of every channel of ``(N, C, *S)``, borders repeated ("nearest",
    scikit-image's default)."""
    k = gaussian_kernel(sigma).to(x.device, x.dtype)
    r, channels, spatial = k.numel() // 2, x.shape[1], x.ndim - 2
    out = x
    for axis in range(spatial):  # one 1-D pass per spatial axis
        shape = [1] * spatial
        shape[axis] = k.numel()
        weight = k.view(1, 1, *shape).repeat(channels, 1, *([1] * spatial))
        pad = [0, 0] * spatial
        pad[2 * (spatial - 1 - axis)] = pad[2 * (spatial - 1 - axis) + 1] = r  # F.pad: last first
        conv = F.conv2d if spatial == 2 else F.conv1d
        out = conv(F.pad(out, pad, mode="replicate"), weight, groups=channels)
    return out


def corrupt(
    x: torch.Tensor,
    kind: str,
    severity: int,
    *,
    generator: torch.Generator | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> torch.Tensor:
    """``x`` corrupted by ``kind`` at ``severity`` (CIFAR-10-C's constants; see the module
    docstring), clipped to [0, 1] as CIFAR-10-C is.

    Args:
        x: images ``(N, C, H, W)`` or sequences ``(N, C, L)`` in [0, 1], or normalised with
            ``mean`` and ``std``.
        kind: one of :data:`CORRUPTIONS`.
        severity: 1..5, or 0 for the clean input (returned as it is).
        generator: the random stream of the noise (on ``x``'s device), for reproducible sets.
        mean, std: per-channel statistics ``x`` was normalised with; the corruption is applied
            to ``x * std + mean`` and the result normalised again.

    Raises:
        ValueError: an unknown corruption, a severity outside 0..5, a shape other than
            ``(N, C, H, W)`` or ``(N, C, L)``, or statistics that do not match the channels.
    """
    if x.ndim not in (3, 4):
        raise ValueError(f"expected (N, C, H, W) or (N, C, L), got shape {tuple(x.shape)}")
    if severity == 0 and not isinstance(severity, bool) and kind in SEVERITIES:
        return x
    c = severity_value(kind, severity)
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std (the data's normalisation), or neither")
    if mean is not None and std is not None:
        if not len(mean) == len(std) == x.shape[1] or any(not s > 0 for s in std):
            raise ValueError(
                f"need one mean and one std > 0 per channel ({x.shape[1]}), got {mean}, {std}"
            )
        view = (1, -1) + (1,) * (x.ndim - 2)
        m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(view)
        s = torch.tensor(std, dtype=x.dtype, device=x.device).view(view)
        return (corrupt(x * s + m, kind, severity, generator=generator) - m) / s
    if kind == "gaussian_noise":
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        out = x + c * z
    elif kind == "gaussian_blur":
        out = blur(x, c)
    else:  # contrast: shrink every channel towards its own mean over the image
        centre = x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)
        out = (x - centre) * c + centre
    return out.clamp(0.0, 1.0)


def severity_grid(
    x: torch.Tensor,
    kinds: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    *,
    seed: int = 0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict[tuple[str, int], torch.Tensor]:
    """Every ``(kind, severity)`` version of ``x``: a CIFAR-10-C-like set made on the fly.

    The noise of each ``(kind, severity)`` comes from its own generator seeded from ``seed``,
    so a set is the same whichever others are made with it.
    """
    out = {}
    for i, kind in enumerate(kinds):
        for severity in severities:
            g = torch.Generator(device=x.device).manual_seed(seed * 1009 + 10 * i + severity)
            out[kind, severity] = corrupt(x, kind, severity, generator=g, mean=mean, std=std)
    if not out:
        raise ValueError("kinds and severities must not be empty")
    return out
