"""What to train with: :class:`TrainConfig`, checked when it is made, not mid-run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from reslib.train.precision import PRECISIONS

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "multistep")
# torch.compile's modes; True means the default mode, False no compilation and "auto" CUDA
# graphs (GRAPHS_ONLY) on CUDA, eager elsewhere
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# CUDA graphs without the inductor compiler (torch.compile(backend="cudagraphs")): graphs of
# the eager kernels, which record in seconds where inductor compiles for tens of seconds
GRAPHS_ONLY = "cudagraphs"


def _check_int(name: str, value: object, minimum: int) -> None:
    # bool is an int subclass; epochs=True is a mistake, not 1
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_real(name: str, value: object, *, positive: bool) -> None:
    """A finite real number, > 0 when ``positive`` else >= 0 (nan and inf fail both)."""
    bound = "> 0" if positive else ">= 0"
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > 0 if positive else value >= 0)
    )
    if not ok:
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser, schedule and the numerical safety nets.

    Every field is checked on construction and a bad value raises ``ValueError`` naming the
    field and its allowed range, so a typo fails before a long run starts, not during it.

    Attributes:
        epochs: passes over the training loader (an int >= 1).
        lr: peak learning rate (finite, > 0).
        optimizer: ``"sgd"`` (with ``momentum``, Nesterov off), ``"adam"`` or ``"adamw"``.
        momentum: SGD momentum (finite, >= 0); unused by Adam.
        weight_decay: L2 penalty (decoupled for AdamW; finite, >= 0).
        schedule: ``"constant"``, ``"cosine"`` (to zero) or ``"multistep"`` (lr / 10 at each
            fraction of training in ``milestones``, as He et al. 2016 at 32k and 48k of 64k).
        milestones: fractions of training in (0, 1) for ``"multistep"``.
        warmup_steps: linear warm-up from 0 over this many steps.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping).
        precision: ``"auto"`` (the policy of :mod:`reslib.train.precision`: bf16 on an
            A100/H100-class GPU, fp16 with a gradient scaler on a T4 or V100, fp32 on the CPU),
            or one of ``"fp32"``, ``"tf32"``, ``"bf16"``, ``"fp16"``. GPU formats fall back to
            fp32 on the CPU.
        channels_last: NHWC memory layout for conv nets; ``None`` means "on CUDA".
        compile: ``"auto"`` (the default) records the training step in CUDA graphs on a GPU
            (one launch replays the whole forward and backward pass, which matters for small
            nets that leave the GPU waiting on Python): ``"cudagraphs"`` for short runs,
            ``"reduce-overhead"`` for runs long enough to repay its compile time
            (:func:`reslib.train.runtime.compile_mode`); it runs eagerly on the CPU and under
            DistributedDataParallel. ``"cudagraphs"`` records the eager
            kernels without compiling new ones (seconds to set up); ``"reduce-overhead"`` also
            fuses kernels with inductor (faster steps, tens of seconds to compile); ``True``
            or another mode of :data:`COMPILE_MODES` compiles anywhere; ``False`` never
            compiles. A compilation that fails falls back to eager with a warning.
        sync_batchnorm: under ``torchrun`` with several processes, turn BatchNorm layers into
            ``SyncBatchNorm`` (statistics over the global batch, not each process's share); it
            matters when the per-GPU batch is small. Ignored in a single process.
    """

    epochs: int = 10
    lr: float = 1e-3
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: Literal["constant", "cosine", "multistep"] = "constant"
    milestones: tuple[float, ...] = (0.5, 0.75)
    warmup_steps: int = 0
    grad_clip: float | None = None
    precision: Literal["auto", "fp32", "tf32", "bf16", "fp16"] = "auto"
    channels_last: bool | None = None
    compile: bool | str = "auto"
    sync_batchnorm: bool = False

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1)
        _check_real("lr", self.lr, positive=True)
        _check_real("momentum", self.momentum, positive=False)
        _check_real("weight_decay", self.weight_decay, positive=False)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}: expected one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}: expected one of {SCHEDULES}")
        # a list would make the frozen config unhashable and compare unequal to its checkpoint
        object.__setattr__(self, "milestones", tuple(self.milestones))
        if any(not isinstance(m, (int, float)) or not 0 < m < 1 for m in self.milestones):
            raise ValueError(
                f"milestones are fractions of training in (0, 1), got {self.milestones}"
            )
        _check_int("warmup_steps", self.warmup_steps, 0)
        if self.grad_clip is not None:
            _check_real("grad_clip", self.grad_clip, positive=True)
        if self.precision not in ("auto", *PRECISIONS):
            raise ValueError(
                f"unknown precision {self.precision!r}: expected 'auto' or one of {PRECISIONS}"
            )
        for name in ("channels_last", "sync_batchnorm"):
            value = getattr(self, name)
            if not isinstance(value, bool) and not (name == "channels_last" and value is None):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        modes = ("auto", GRAPHS_ONLY, *COMPILE_MODES)
        if not isinstance(self.compile, bool) and self.compile not in modes:
            raise ValueError(
                f"unknown compile mode {self.compile!r}: expected False, True or one of {modes}"
            )

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what a checkpoint stores to recognise its run)."""
        return asdict(self)
