"""Timing GPU work honestly: CUDA events around the work, and the median of several runs."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


class Timer:
    """CUDA events on a GPU (they time the GPU's work, not the launch), else the wall clock."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __enter__(self) -> Timer:
        if self.cuda:
            torch.cuda.synchronize()
            self.start, self.end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            self.end.record()
            torch.cuda.synchronize()
            self.seconds = self.start.elapsed_time(self.end) / 1000
        else:
            self.seconds = time.perf_counter() - self.t0


def median_seconds(work: Callable[[], object], device: torch.device, repeats: int) -> float:
    """The median time of ``repeats`` runs of ``work``: robust to one slow run."""
    times = []
    for _ in range(repeats):
        with Timer(device) as timer:
            work()
        times.append(timer.seconds)
    return sorted(times)[len(times) // 2]
