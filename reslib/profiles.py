"""Run profiles, seeding, provenance and checked claims.

Every chapter starts with :func:`setup`, which picks the *quick* profile (CPU, offline data,
about a minute) or the *full* profile (GPU, the papers' datasets and depths), seeds every random
generator and prints one provenance line. :func:`by_profile` keeps a chapter's sizes in one
visible cell, and :func:`claim` turns each sentence the text makes about a result into a check
that fails loudly when the numbers stop supporting it.
"""

from __future__ import annotations

import os
import platform
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal, TypeVar, cast

import numpy as np
import torch

Profile = Literal["quick", "full"]
PROFILES: tuple[Profile, ...] = ("quick", "full")
PROFILE_ENV = "RESLIB_PROFILE"

T = TypeVar("T")


class ClaimError(AssertionError):
    """Raised by :func:`claim` when a statement made in the text no longer holds."""


@dataclass(frozen=True)
class RunInfo:
    """Where and how a chapter runs: everything a printed number needs for its provenance."""

    profile: Profile
    seed: int | None  # None: setup() was never called, so nothing was seeded
    device: torch.device
    started: float = field(default_factory=time.time)

    @property
    def device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"

    def provenance(self) -> str:
        """One line: versions, device, profile, seed, and the wall time since :func:`setup`."""
        from reslib import __version__

        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        elapsed = time.time() - self.started
        seed = "unset" if self.seed is None else self.seed
        return (
            f"reslib {__version__} · torch {torch.__version__} · {self.device_name} · "
            f"profile={self.profile} · seed={seed} · threads={torch.get_num_threads()} · "
            f"{stamp} · {elapsed:.1f} s since setup"
        )


_active: RunInfo | None = None


def _check_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r}: expected one of {', '.join(PROFILES)} "
            f"(set {PROFILE_ENV}=quick or {PROFILE_ENV}=full)"
        )
    return cast(Profile, name)


def default_profile() -> Profile:
    """``$RESLIB_PROFILE`` if set, else ``full`` when CUDA is available and ``quick`` otherwise."""
    name = os.environ.get(PROFILE_ENV, "").strip()
    if name:
        return _check_profile(name)
    return "full" if torch.cuda.is_available() else "quick"


def default_device() -> torch.device:
    """The first CUDA device when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def setup(seed: int = 0, profile: str | None = None, *, verbose: bool = True) -> RunInfo:
    """Choose the profile and device, seed everything and print the provenance line.

    Args:
        seed: seeds Python, NumPy and torch.
        profile: ``"quick"`` or ``"full"``; defaults to :func:`default_profile`.
        verbose: print the provenance line.

    On the CPU this also calls ``torch.set_flush_denormal(True)``: the activations of deep
    plain nets shrink into subnormal floats, which the CPU handles 10-100x more slowly. The quick
    profile on the CPU also uses one thread, which is faster for its small models. On a GPU
    it turns on ``torch.backends.cudnn.benchmark``, since batches keep one shape.
    """
    global _active
    chosen = _check_profile(profile) if profile is not None else default_profile()
    device = default_device()
    seed_everything(seed)
    if device.type == "cpu":
        torch.set_flush_denormal(True)
        if chosen == "quick":
            # The quick profile's small models spend more time synchronising threads than
            # computing: chapter 1 ran in 63 s on one thread and 113 s on two (2-core machine).
            torch.set_num_threads(1)
    else:
        # every chapter feeds batches of one fixed shape: let cuDNN time its kernels once
        torch.backends.cudnn.benchmark = True
    _active = RunInfo(profile=chosen, seed=seed, device=device)
    if verbose:
        print(_active.provenance())
    return _active


def active() -> RunInfo:
    """The :class:`RunInfo` of the last :func:`setup` call.

    Without one, the default profile and device, unseeded: asking never reseeds a run.
    """
    if _active is not None:
        return _active
    return RunInfo(profile=default_profile(), seed=None, device=default_device())


def provenance() -> str:
    """The provenance line of the active run, for printing under a result."""
    return active().provenance()


def by_profile(*, quick: T, full: T) -> T:
    """Return ``quick`` or ``full`` according to the active profile.

    >>> cfg = by_profile(quick=dict(depths=[8, 32]), full=dict(depths=[20, 56]))
    """
    return quick if active().profile == "quick" else full


def claim(description: str, condition: bool | torch.Tensor | np.bool_, detail: str = "") -> None:
    """Check a statement the text makes about a result.

    Prints ``✓ description`` (with ``detail``, e.g. the measured numbers) when ``condition``
    holds, and raises :class:`ClaimError` naming the statement when it does not, so a notebook
    whose text no longer matches its numbers fails in CI.
    """
    if isinstance(condition, torch.Tensor):
        if condition.numel() != 1:
            raise ValueError(
                f"claim {description!r}: condition must be a single boolean, "
                f"got a tensor of shape {tuple(condition.shape)}"
            )
        condition = bool(condition.item())
    suffix = f"  ({detail})" if detail else ""
    if not bool(condition):
        raise ClaimError(f"✗ claim failed: {description}{suffix}")
    print(f"✓ {description}{suffix}")
