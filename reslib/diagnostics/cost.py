"""What a forward pass costs at inference: peak activation memory (exact) and latency (timed).

A skip connection adds almost no arithmetic - one addition per element of a block's output -
but it keeps the block's input x alive until y = F(x) + x is formed, while a plain layer's input
can be freed as soon as the next layer has read it. Ding et al. 2021 ("RepVGG: Making VGG-style
ConvNets Great Again", arXiv 2101.03697) give this as the reason to fold the branches of a
trained multi-branch net into one plain convolution for deployment.

:func:`peak_activation_bytes` measures it without a GPU and without noise. It runs the forward
pass under a ``TorchDispatchMode`` that sees every tensor an operator returns, counts each new
storage's bytes while any tensor that uses it is alive (a weak reference reports when the last
one dies), and records the maximum of that running sum. Parameters, buffers and the input are
not operator outputs (nor are their views) and are left out; scratch space inside a kernel is
not visible and is not counted. The count follows Python's reference counting, so it is the
memory the eager program really holds, and it is the same on every run. With gradients on,
autograd keeps what it saves for backward (:func:`~reslib.diagnostics.memory.
saved_activation_bytes` counts that), so the peak grows with depth; under
``torch.inference_mode`` or ``no_grad`` it does not. On the ``meta`` device nothing is computed
and the count still holds (shapes are enough), so a large input costs nothing to measure.

:func:`latency` times the same forward pass (median and quartiles of repeated runs); it is
noisy on a shared machine, so report it, do not threshold it.
"""

from __future__ import annotations

import statistics
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from reslib.diagnostics.hooks import preserved_state
from reslib.diagnostics.memory import _storage_key

GradMode = Literal["inference", "no_grad", "grad"]
GRAD_MODES: tuple[str, ...] = ("inference", "no_grad", "grad")


@dataclass(frozen=True)
class PeakMemory:
    """The activation memory of one forward pass.

    Attributes:
        peak_bytes: the most bytes of operator outputs alive at one time.
        total_bytes: bytes of every storage the pass created (what a net that never freed
            anything would hold).
        retained_bytes: bytes still alive when the pass returned: the output, and with
            gradients on everything autograd saved for backward.
    """

    peak_bytes: int
    total_bytes: int
    retained_bytes: int

    @property
    def peak_megabytes(self) -> float:
        """:attr:`peak_bytes` in MB (10^6 bytes)."""
        return self.peak_bytes / 1e6


class _LiveStorages(TorchDispatchMode):
    """Counts the bytes of storages that operators created while a tensor still uses them."""

    def __init__(self, existing: set[tuple[str, int]]) -> None:
        super().__init__()
        self.existing = existing  # parameters, buffers, inputs: their views allocate nothing
        self.refs: dict[tuple[str, int], int] = {}  # storage -> live tensors that use it
        self.sizes: dict[tuple[str, int], int] = {}
        self.current = self.peak = self.total = 0

    def _release(self, key: tuple[str, int]) -> None:
        self.refs[key] -= 1
        if self.refs[key] == 0:
            del self.refs[key]
            self.current -= self.sizes.pop(key)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            key = _storage_key(t)
            if key in self.existing:
                continue
            if key not in self.refs:  # a new storage (a view or in-place op reuses one)
                nbytes = t.untyped_storage().nbytes()
                self.refs[key], self.sizes[key] = 0, nbytes
                self.current += nbytes
                self.total += nbytes
                self.peak = max(self.peak, self.current)
            self.refs[key] += 1
            weakref.finalize(t, self._release, key)
        return out


def _grad_context(mode: str) -> Any:
    return {
        "inference": torch.inference_mode,
        "no_grad": torch.no_grad,
        "grad": torch.enable_grad,
    }[mode]()


def peak_activation_bytes(
    model: nn.Module,
    *inputs: torch.Tensor,
    mode: GradMode = "inference",
    forward: Callable[..., Any] | None = None,
) -> PeakMemory:
    """Run ``model(*inputs)`` (or ``forward(*inputs)``) once and count the activation memory
    it holds (see the module docstring), under ``torch.inference_mode`` (``mode="inference"``),
    ``torch.no_grad`` or with gradients on (``"grad"``, as a forgotten ``no_grad`` runs).

    The model keeps its train/eval mode and its buffers are restored afterwards.

    >>> peak_activation_bytes(model.eval(), torch.randn(1, 3, 224, 224)).peak_megabytes

    Raises:
        ValueError: an unknown ``mode``.
    """
    if mode not in GRAD_MODES:
        raise ValueError(f"unknown mode {mode!r}: expected one of {', '.join(GRAD_MODES)}")
    held = (*model.parameters(), *model.buffers(), *inputs)
    counter = _LiveStorages({_storage_key(t) for t in held})
    with preserved_state(model), _grad_context(mode):
        with counter:
            out = (forward or model)(*inputs)
        retained = counter.current
        del out
    return PeakMemory(counter.peak, counter.total, retained)


@dataclass(frozen=True)
class Latency:
    """Wall-clock time of one forward pass over repeated runs, in milliseconds.

    Attributes:
        median_ms: the median run.
        q25_ms: the first quartile.
        q75_ms: the third quartile.
        runs: how many runs were timed (after the warm-up).
    """

    median_ms: float
    q25_ms: float
    q75_ms: float
    runs: int


def latency(
    model: nn.Module,
    *inputs: torch.Tensor,
    repeats: int = 20,
    warmup: int = 3,
    mode: GradMode = "inference",
) -> Latency:
    """Time ``model(*inputs)`` ``repeats`` times after ``warmup`` untimed runs (CPU; on CUDA
    each run is synchronised) under ``mode`` (as :func:`peak_activation_bytes`).

    Raises:
        ValueError: ``repeats`` < 2, ``warmup`` < 0 or an unknown ``mode``.
    """
    if repeats < 2 or warmup < 0:
        raise ValueError(f"need repeats >= 2 and warmup >= 0, got {repeats} and {warmup}")
    if mode not in GRAD_MODES:
        raise ValueError(f"unknown mode {mode!r}: expected one of {', '.join(GRAD_MODES)}")
    cuda = any(t.is_cuda for t in inputs)
    times = []
    with preserved_state(model), _grad_context(mode):
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(*inputs)
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(1e3 * (time.perf_counter() - start))
    q25, median, q75 = statistics.quantiles(times, n=4, method="inclusive")
    return Latency(median, q25, q75, repeats)
