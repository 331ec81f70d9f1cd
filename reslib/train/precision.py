"""Which number format the training steps use, chosen per GPU generation.

The policy (``TrainConfig(precision="auto")``), decided by measurement:

=========================  ==========  ========================================================
device                     precision   why
=========================  ==========  ========================================================
CPU (or any non-CUDA)      ``fp32``    autocast on the CPU is slower for these nets
CUDA, compute capability   ``fp32``    no tensor cores to gain from
< 7.0
CUDA 7.x (V100, T4)        ``fp16``    tensor cores run fp16 only; a T4 does fp32 at 1/8 of its
                                       fp16 rate. Never bf16: a T4 *reports* bf16 support
                                       (``torch.cuda.is_bf16_supported()``) but emulates it
CUDA >= 8.0 (A100, H100)   ``bf16``    with the step in CUDA graphs, bf16 was the fastest at
                                       every model size measured on an H200: ResNet-20 at
                                       batch 512 +15% over TF32, ResNet-110 at batch 256 +5%,
                                       and +38% with inductor's fusion (benchmarks/results)
=========================  ==========  ========================================================

The model's size does not enter: the one place where it did - eager steps of a small,
launch-bound net, where autocast's extra cast kernels cost more than its faster matmuls - is
gone now that the steps replay as CUDA graphs. ``tf32`` (fp32 storage, matmuls and convolutions
on TF32 tensor cores) and strict ``fp32`` remain available by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Literal

import torch

Precision = Literal["fp32", "tf32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "tf32", "bf16", "fp16")
_AUTOCAST: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def choose_precision(device: torch.device) -> Precision:
    """The policy above: the precision ``TrainConfig(precision="auto")`` trains in on ``device``."""
    if device.type != "cuda":
        return "fp32"
    major, _ = torch.cuda.get_device_capability(device)
    return "fp32" if major < 7 else "fp16" if major < 8 else "bf16"


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """``requested`` itself, or :func:`choose_precision` for ``"auto"``.

    An explicit GPU format on the CPU falls back to ``fp32`` (the same config runs anywhere);
    an explicit ``bf16`` on a GPU older than compute capability 8.0 is refused, since such a
    GPU emulates it.
    """
    if requested == "auto":
        return choose_precision(device)
    if device.type != "cuda":
        return "fp32"
    if requested == "bf16" and torch.cuda.get_device_capability(device)[0] < 8:
        name = torch.cuda.get_device_name(device)
        raise ValueError(
            f"precision='bf16' on {name} (compute capability < 8.0): this GPU has no bf16 "
            "tensor cores and would emulate it slowly; use precision='auto' (fp16 here)"
        )
    return requested  # type: ignore[return-value]


def autocast(device: torch.device, precision: Precision) -> AbstractContextManager[Any]:
    """Autocast to bf16 or fp16 when ``precision`` asks for it; otherwise a no-op."""
    dtype = _AUTOCAST.get(precision)
    if dtype is None or device.type != "cuda":
        return nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def make_scaler(precision: Precision, device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 (whose range is too small for some gradients)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16" and device.type == "cuda")


@contextmanager
def matmul_precision(device: torch.device, precision: Precision) -> Iterator[None]:
    """On CUDA, TF32 matmuls and convolutions for ``tf32`` and strict fp32 for ``fp32``; the
    previous settings are restored afterwards.

    bf16 and fp16 leave the settings as they are, and so does the CPU (it has no TF32).
    """
    if device.type != "cuda" or precision not in ("fp32", "tf32"):
        yield
        return
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    allow = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
