"""Run profiles, seeding, provenance and checked claims.

Every chapter starts with :func:`setup`, which picks the *quick* profile (CPU, offline data,
about a minute) or the *full* profile (GPU, the papers' datasets and depths), seeds every random
generator and prints one provenance line. :func:`by_profile` keeps a chapter's sizes in one
visible cell, and :func:`claim` turns each sentence the text makes about a result into a check
that fails loudly when the numbers stop supporting it.
"""

from __future__ import annotations

import math
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal, TypeVar, cast

import numpy as np
import torch

Profile = Literal["quick", "full"]
PROFILES: tuple[Profile, ...] = ("quick", "full")
PROFILE_ENV = "RESLIB_PROFILE"
SEED_ENV = "RESLIB_SEED"

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
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        elapsed = time.time() - self.started
        seed = "unset" if self.seed is None else self.seed
        return (
            f"reslib {reslib_version()} · torch {torch.__version__} · {self.device_name} · "
            f"profile={self.profile} · seed={seed} · threads={torch.get_num_threads()} · "
            f"{stamp} · {elapsed:.1f} s since setup"
        )


_active: RunInfo | None = None


def reslib_version() -> str:
    """``reslib.__version__``, read from the package already in ``sys.modules``.

    A submodule runs only after its package was imported, and importing the package from
    inside it would make a cycle (the import rules forbid it).
    """
    return str(sys.modules[__name__.rpartition(".")[0]].__version__)


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


SEED_LIMIT = 2**32  # NumPy's legacy seeding accepts [0, 2**32)


def check_seed(seed: object) -> int:
    """``seed`` if it is an int in ``[0, 2**32)`` (what every generator accepts), else ValueError.

    Checked before anything is seeded, so a bad seed never leaves some generators reseeded.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    return seed


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def seed_from_env(default: int) -> int:
    """``$RESLIB_SEED`` as a seed if it is set, else ``default``: a reader or CI reruns a
    whole chapter with another seed (``RESLIB_SEED=3 make test``) without editing it."""
    text = os.environ.get(SEED_ENV, "").strip()
    if not text:
        return default
    try:
        return check_seed(int(text))
    except ValueError:
        raise ValueError(
            f"{SEED_ENV}={text!r} is not a seed: expected an int in [0, 2**32)"
        ) from None


def setup(seed: int = 0, profile: str | None = None, *, verbose: bool = True) -> RunInfo:
    """Choose the profile and device, seed everything and print the provenance line.

    Args:
        seed: seeds Python, NumPy and torch; ``$RESLIB_SEED``, when set, takes its place.
        profile: ``"quick"`` or ``"full"``; defaults to :func:`default_profile`.
        verbose: print the provenance line.

    On the CPU this also calls ``torch.set_flush_denormal(True)``: the activations of deep
    plain nets shrink into subnormal floats, which the CPU handles 10-100x more slowly. The quick
    profile on the CPU also uses one thread, which is faster for its small models. On a GPU
    it turns on ``torch.backends.cudnn.benchmark``, since batches keep one shape.
    """
    global _active
    seed = seed_from_env(check_seed(seed))
    chosen = _check_profile(profile) if profile is not None else default_profile()
    device = default_device()
    seed_everything(seed)
    _claims.update(check=0, finding=0)
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


ClaimKind = Literal["check", "finding"]
CLAIM_KINDS: tuple[ClaimKind, ...] = ("check", "finding")
_claims: dict[str, int] = {"check": 0, "finding": 0}


def claim_counts() -> dict[str, int]:
    """How many claims of each kind this process evaluated since :func:`setup`.

    >>> claim_counts()  # doctest: +SKIP
    {'check': 3, 'finding': 2}
    """
    return dict(_claims)


def _as_bool(description: str, condition: object) -> bool:
    """``condition`` as a Python bool, accepting only real booleans.

    Anything merely truthy is refused: a generator, a lambda, ``[False]`` or the string
    ``"False"`` are all truthy, so ``bool()`` would report them as a claim that holds.
    """
    if isinstance(condition, (bool, np.bool_)):
        return bool(condition)
    if isinstance(condition, (torch.Tensor, np.ndarray)):
        shape = tuple(condition.shape)
        if math.prod(shape) != 1:
            raise ValueError(
                f"claim {description!r}: condition must be a single boolean, got an array of "
                f"shape {shape}; reduce it first, e.g. with .all() or .any()"
            )
        is_bool = condition.dtype == (torch.bool if isinstance(condition, torch.Tensor) else bool)
        if is_bool:
            return bool(condition.item())
        kind = f"{type(condition).__name__} of dtype {condition.dtype}"
    else:
        kind = type(condition).__name__
    raise TypeError(
        f"claim {description!r}: condition must be a boolean (a Python bool, a numpy bool or a "
        f"one-element boolean tensor), got {kind} {condition!r:.60}; write the comparison "
        f"itself, e.g. claim(..., loss_a < loss_b)"
    )


def claim(
    description: str,
    condition: bool | np.bool_ | np.ndarray | torch.Tensor,
    detail: str = "",
    *,
    kind: ClaimKind = "finding",
) -> None:
    """Check a statement the text makes about a result.

    Prints ``✓ [kind] description`` (with ``detail``, e.g. the measured numbers) when
    ``condition`` holds. When it does not:

    * a **check** (the code does what its equation says) always raises :class:`ClaimError`;
    * a **finding** (an experimental result that could have come out otherwise) raises in the
      quick profile, which CI runs, so a book whose text no longer matches its numbers fails;
      in the full profile it prints a visible ``✗ [finding]`` line with its numbers and the
      notebook goes on, since a reader's longer run on other hardware may legitimately differ.

    Args:
        description: the sentence of the text being checked.
        condition: a real boolean (Python, numpy or a one-element boolean tensor); anything
            else raises ``TypeError``, since a merely truthy object would always "hold".
        detail: the measured numbers, printed with the verdict.
        kind: ``"check"`` or ``"finding"`` (see above); counted by :func:`claim_counts`.
    """
    if kind not in CLAIM_KINDS:
        raise ValueError(f"claim kind must be one of {CLAIM_KINDS}, got {kind!r}")
    holds = _as_bool(description, condition)
    _claims[kind] += 1
    suffix = f"  ({detail})" if detail else ""
    if holds:
        _show(ClaimLine("✓", kind, description, detail))
    elif kind == "finding" and active().profile == "full":
        _show(ClaimLine("✗", kind, f"did not hold in this run: {description}", detail))
    else:
        raise ClaimError(f"✗ [{kind}] claim failed: {description}{suffix}")


@dataclass(frozen=True)
class ClaimLine:
    """A claim's verdict as the reader sees it: a compact badge in HTML (a notebook, the
    rendered book) and the plain line ``✓ [kind] description  (detail)`` everywhere else."""

    mark: str  # "✓" or "✗"
    kind: str
    description: str
    detail: str = ""

    def __str__(self) -> str:
        suffix = f"  ({self.detail})" if self.detail else ""
        return f"{self.mark} [{self.kind}] {self.description}{suffix}"

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:  # IPython's text form
        printer.text(str(self))  # type: ignore[attr-defined]

    def _repr_html_(self) -> str:
        from html import escape

        colour = {"✓": "#1e7d32", "✗": "#c0392b"}[self.mark]
        detail = (
            f' <span style="opacity:0.75;font-size:0.92em">({escape(self.detail)})</span>'
            if self.detail else ""
        )  # fmt: skip
        # one line that wraps inside the page; the badge names the verdict and the kind
        return (
            f'<div class="reslib-claim" style="margin:0.2em 0;line-height:1.5;'
            f'overflow-wrap:anywhere"><span style="display:inline-block;padding:0 0.5em;'
            f"border-radius:0.8em;background:{colour};color:#fff;font-size:0.85em;"
            f'font-weight:600;white-space:nowrap">{self.mark} {escape(self.kind)}</span> '
            f"{escape(self.description)}{detail}</div>"
        )


def _show(line: ClaimLine) -> None:
    """Display ``line`` as HTML with a text fallback inside IPython; print it elsewhere."""
    shell = None
    if "IPython" in sys.modules:  # never import IPython just to find out it is not running
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None:
        print(line, flush=True)
        return
    from IPython.display import display

    display(line)
