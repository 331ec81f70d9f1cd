"""Which number format the training steps use, chosen per GPU and model size.

The policy (``TrainConfig(precision="auto")``), from measurements on the book's nets:

=========================  ==========  ========================================================
device                     precision   why
=========================  ==========  ========================================================
CPU (or any non-CUDA)      ``fp32``    autocast on the CPU is slower for these nets
CUDA, compute capability   ``fp32``    no tensor cores to gain from
< 7.0
CUDA 7.x (V100, T4)        ``fp16``    tensor cores run fp16 only; a T4 does fp32 at 1/8 of its
                                       fp16 rate. Never bf16: a T4 *reports* bf16 support
                                       (``torch.cuda.is_bf16_supported()``) but emulates it
CUDA >= 8.0 (A100, H100),  ``tf32``    the book's ResNets are launch- and bandwidth-bound:
small model                            autocast's casts cost more than its faster matmuls
                                       (ResNet-20/56/110 on an H200, benchmarks/results)
CUDA >= 8.0, large model   ``bf16``    compute-bound: bf16 tensor cores, fp32's range, no
                                       gradient scaler
=========================  ==========  ========================================================

"Large" is :data:`LARGE_MODEL_PARAMETERS` or more parameters. ``tf32`` is fp32 storage whose
matmuls and convolutions round their inputs to TF32 on tensor cores (10-bit mantissa); it is
what PyTorch already does for cuDNN convolutions by default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Literal

import torch
from torch import nn

Precision = Literal["fp32", "tf32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "tf32", "bf16", "fp16")
LARGE_MODEL_PARAMETERS = 20_000_000  # from the precision sweep (python -m reslib.bench --sweep)
_AUTOCAST: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def choose_precision(device: torch.device, model: nn.Module | None = None) -> Precision:
    """The policy above: the precision ``TrainConfig(precision="auto")`` trains ``model`` in.

    Args:
        device: where the steps run; only CUDA devices get anything but ``fp32``.
        model: sized by its parameter count; ``None`` counts as a small model.
    """
    if device.type != "cuda":
        return "fp32"
    major, _ = torch.cuda.get_device_capability(device)
    if major < 7:
        return "fp32"
    if major < 8:
        return "fp16"
    size = sum(p.numel() for p in model.parameters()) if model is not None else 0
    return "bf16" if size >= LARGE_MODEL_PARAMETERS else "tf32"


def resolve_precision(requested: str, device: torch.device, model: nn.Module) -> Precision:
    """``requested`` itself, or :func:`choose_precision` for ``"auto"``.

    An explicit GPU format on the CPU falls back to ``fp32`` (the same config runs anywhere);
    an explicit ``bf16`` on a GPU older than compute capability 8.0 is refused, since such a
    GPU emulates it.
    """
    if requested == "auto":
        return choose_precision(device, model)
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
