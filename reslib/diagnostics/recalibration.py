"""Test-time BatchNorm recalibration: Schneider et al. 2020, "Improving robustness against
common corruptions by covariate shift adaptation" (arXiv 2006.16971):
mu = w mu_source + (1 - w) mu_target (and the same for the variance), w = N / (N + n).

A BatchNorm layer normalises with the running mean and variance it saw in training. When the
test inputs shift (noise, blur, lower contrast) those statistics no longer describe what
reaches the layer, and every layer after it sees wrongly scaled features. Recalibration
re-estimates the statistics on unlabelled batches of the shifted data - no labels, no gradient
step, only forward passes - and optionally mixes them with the training ones (``source_weight``
= w; Schneider et al. write it N / (N + n) for a prior of N source samples and n target ones).

* :func:`recalibrate_bn` overwrites the running statistics in place;
* :func:`recalibrated` does the same inside a context and restores the originals on exit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from reslib.diagnostics.hooks import preserved_state


def batch_norms(model: nn.Module) -> list[tuple[str, _BatchNorm]]:
    """``(name, layer)`` for every BatchNorm layer (1-D, 2-D, 3-D) that tracks statistics."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, _BatchNorm) and m.track_running_stats
    ]


def _inputs(batch: Any) -> torch.Tensor:
    """The input of a batch: the tensor itself, or the first item of ``(x, y)``."""
    if isinstance(batch, (tuple, list)) and batch:
        batch = batch[0]
    if not isinstance(batch, torch.Tensor):
        raise ValueError(f"batches must be tensors or (x, y) pairs, got {type(batch).__name__}")
    return batch


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Any], *, source_weight: float = 0.0) -> int:
    """Re-estimate every BatchNorm layer's running mean and variance on ``batches``, in place.

    The new statistics are the average over the batches of each batch's statistics
    (``momentum=None``, as PyTorch's cumulative average), then mixed with the old ones:
    ``source_weight * old + (1 - source_weight) * new``. Only the BatchNorm layers switch to
    train mode while the batches run (dropout and the like stay in eval mode); the model's
    modes, momenta and parameters are as before afterwards. No gradient is computed.

    Args:
        model: a model with BatchNorm layers.
        batches: tensors or ``(x, y)`` pairs (labels are ignored), e.g. a test loader.
        source_weight: w in [0, 1]: 0 uses only the new statistics, 1 keeps the old ones.

    Returns:
        The number of batches used.

    Raises:
        ValueError: the model has no BatchNorm layer with running statistics, ``batches`` is
            empty, or ``source_weight`` is outside [0, 1].
    """
    norms = batch_norms(model)
    if not norms:
        raise ValueError(f"{type(model).__name__} has no BatchNorm layer with running statistics")
    if not isinstance(source_weight, (int, float)) or not 0.0 <= source_weight <= 1.0:
        raise ValueError(f"source_weight must be a number in [0, 1], got {source_weight!r}")
    device = next(model.parameters(), norms[0][1].running_mean).device
    source = {name: (m.running_mean.clone(), m.running_var.clone()) for name, m in norms}
    momenta = {name: m.momentum for name, m in norms}
    count = 0
    with preserved_state(model):  # restores the modes (and buffers, which we set after it)
        model.eval()
        for _, m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
            m.train()
        try:
            for batch in batches:
                model(_inputs(batch).to(device))
                count += 1
        finally:
            new = {name: (m.running_mean.clone(), m.running_var.clone()) for name, m in norms}
            for name, m in norms:
                m.momentum = momenta[name]
    if count == 0:
        raise ValueError("batches is empty: recalibration needs at least one batch")
    w = float(source_weight)
    for name, m in norms:
        (mean_s, var_s), (mean_t, var_t) = source[name], new[name]
        m.running_mean.copy_(w * mean_s + (1 - w) * mean_t)
        m.running_var.copy_(w * var_s + (1 - w) * var_t)
    return count


@contextmanager
def recalibrated(
    model: nn.Module, batches: Iterable[Any], *, source_weight: float = 0.0
) -> Iterator[nn.Module]:
    """Inside the context the model uses BatchNorm statistics re-estimated on ``batches``
    (:func:`recalibrate_bn`); on exit every buffer and mode is restored.

    >>> with recalibrated(model, shifted_loader):
    ...     loss, acc = reslib.evaluate(model, shifted_loader)
    """
    with preserved_state(model):
        recalibrate_bn(model, batches, source_weight=source_weight)
        yield model
