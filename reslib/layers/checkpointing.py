"""Activation checkpointing over segments of a sequential stack: Chen, Xu, Zhang & Guestrin
2016, "Training Deep Nets with Sublinear Memory Cost" (arXiv 1604.06174).

Split n blocks into k segments and keep, for the backward pass, only each segment's input; the
backward pass recomputes one segment's forward at a time. What autograd stores falls from n
blocks' activations to k segment inputs plus one segment's activations (n / k blocks), about
k + n / k, smallest at k = sqrt(n); the price is one extra forward pass. It is what makes a
1,000-layer net fit (He et al. 2016b trained ResNet-1001 on two GPUs without it).

The recomputation goes through ``torch.utils.checkpoint.checkpoint`` with
``use_reentrant=False``; random draws (dropout, DropPath) are replayed exactly, and BatchNorm's
running statistics are restored after the replay so a batch is counted once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from reslib.layers.checks import check_int


@contextmanager
def buffers_kept(module: nn.Module) -> Iterator[None]:
    """Restore every buffer of ``module`` (BatchNorm's running statistics and batch count) on
    exit: a recomputed forward pass must not update them a second time."""
    kept = [b.clone() for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(module.buffers(), kept, strict=True):
                buffer.copy_(value)


class CheckpointedSequential(nn.Module):
    """``blocks`` run in order, in ``segments`` checkpointed segments while gradients are on.

    The result and every gradient equal those of ``blocks(x)`` (the same operations, run once
    more in the backward pass); in evaluation or under ``torch.no_grad()`` it is ``blocks(x)``.
    The blocks keep their names under ``.blocks``, so a state dict differs from the bare stack's
    only by that prefix. Shapes: whatever ``blocks`` maps.

    Raises:
        ValueError: ``segments`` is not between 1 and the number of blocks.
    """

    def __init__(self, blocks: nn.Sequential, segments: int) -> None:
        super().__init__()
        check_int("segments", segments)
        if segments > len(blocks):
            raise ValueError(f"segments must be at most the {len(blocks)} blocks, got {segments}")
        self.blocks = blocks
        self.segments = segments
        self.enabled = True

    def bounds(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of each segment: near-equal runs of consecutive blocks."""
        n, k = len(self.blocks), self.segments
        edges = [round(i * n / k) for i in range(k + 1)]
        return list(zip(edges[:-1], edges[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.enabled and torch.is_grad_enabled()):
            return self.blocks(x)
        for start, stop in self.bounds():
            segment = self.blocks[start:stop]
            x = checkpoint(
                segment, x, use_reentrant=False, context_fn=lambda s=segment: _contexts(s)
            )
        return x

    def extra_repr(self) -> str:
        return f"segments={self.segments}"


def _contexts(
    segment: nn.Module,
) -> tuple[AbstractContextManager[None], AbstractContextManager[None]]:
    # (forward, recomputation): only the recomputation must leave the buffers as it found them
    return nullcontext(), buffers_kept(segment)
