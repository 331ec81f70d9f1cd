"""Where and how the steps run: device, memory layout, compilation, and the checks that a
loader can feed a run of several epochs. (Precision has its own module, :mod:`.precision`.)"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from reslib.train.config import GRAPHS_ONLY, TrainConfig


def model_device(model: nn.Module) -> torch.device:
    """The device of the first parameter (the CPU for a model without any)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def use_channels_last(model: nn.Module, cfg: TrainConfig, device: torch.device) -> bool:
    """Put a 2-D conv net in channels_last (in place) where ``cfg`` asks (by default on CUDA);
    return whether input batches should be made channels_last too."""
    has_conv2d = any(isinstance(m, nn.Conv2d) for m in model.modules())
    wanted = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    if wanted and has_conv2d:
        model.to(memory_format=torch.channels_last)
    return wanted and has_conv2d


# Inductor's fusion (mode "reduce-overhead") made a ResNet-20 step at batch 512 2.4 ms faster
# than CUDA graphs of the eager kernels on an H200 (0.405 vs 0.644 s per 50,000 images, bf16)
# but took 17 s to compile: it pays for itself after about 7,000 steps.
FUSION_MIN_STEPS = 7_000


def compile_mode(
    cfg: TrainConfig, device: torch.device, distributed: bool, planned_steps: int = 0
) -> str | None:
    """The ``torch.compile`` setting the steps use, or ``None`` for eager.

    ``"auto"`` on a single GPU records the step in CUDA graphs: of the eager kernels
    (``"cudagraphs"``, seconds to set up) for a run of fewer than :data:`FUSION_MIN_STEPS`
    ``planned_steps``, and fused by inductor (``"reduce-overhead"``, about 20 s to compile,
    each step faster) for a longer one. It stays eager on the CPU (whose steps are not
    launch-bound) and under DistributedDataParallel (whose gradient all-reduce runs between
    the backward kernels a graph would capture).
    """
    if cfg.compile == "auto":
        if device.type != "cuda" or distributed:
            return None
        return "reduce-overhead" if planned_steps >= FUSION_MIN_STEPS else GRAPHS_ONLY
    if cfg.compile is False:
        return None
    return "default" if cfg.compile is True else str(cfg.compile)


def to_device(
    x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    if channels_last and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def check_reiterable(loader: Iterable[Any], name: str, passes: int) -> None:
    """Refuse a one-shot iterator (a generator) that would have to feed several passes."""
    if passes > 1 and isinstance(loader, Iterator):
        raise ValueError(
            f"{name} is a one-shot iterator ({type(loader).__name__}): it is used up after "
            f"the first epoch, so the other {passes - 1} would train or test on nothing. Pass "
            "a re-iterable loader: a DataLoader, a reslib.data.TensorLoader or a list of batches"
        )


def epoch_length(loader: Iterable[Any], given: int | None) -> int:
    """The number of steps an epoch of ``loader`` takes, which sizes the schedule.

    ``len(loader)``, or ``given`` for a loader without a length (or to cut each epoch short).
    """
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, int) or given < 1:
            raise ValueError(f"steps_per_epoch must be an int >= 1, got {given!r}")
        return given
    if not hasattr(loader, "__len__"):
        raise ValueError(
            f"train_loader ({type(loader).__name__}) has no len(), so the schedule cannot be "
            "sized; pass fit(..., steps_per_epoch=N) with the number of batches per epoch"
        )
    n = len(loader)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("train_loader is empty (len 0): there is nothing to train on")
    return n


def check_epoch_length(steps: int, expected: int, epoch: int) -> None:
    """An epoch that yields fewer batches than the schedule was sized for is an error."""
    if steps == expected:
        return
    if steps == 0:
        why = (
            "it is empty"
            if epoch == 0
            else "a one-shot iterator (a generator) is used up after its first pass"
        )
        raise ValueError(f"train_loader yielded no batches in epoch {epoch + 1}: {why}")
    raise ValueError(
        f"train_loader yielded {steps} batches in epoch {epoch + 1}, but the schedule was sized "
        f"for {expected} per epoch (len(train_loader) or steps_per_epoch); pass the number of "
        "batches it really yields as steps_per_epoch"
    )
