"""One explicit training loop: :func:`fit`, :func:`evaluate` and the :class:`History` they fill.

The loop is written to be read. On CUDA it uses autocast (bf16 where the GPU supports it, else
fp16 with a gradient scaler), channels_last for conv nets and, on request, ``torch.compile``; on
the CPU those steps are skipped. Losses and accuracies accumulate on the device and are read once
per epoch, so a step never waits for the host. A non-finite loss stops training with an error
that names the epoch and step, and a checkpoint written after every epoch lets an interrupted
run (a Colab disconnect) resume where it stopped.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import TqdmWarning

with warnings.catch_warnings():
    # Without ipywidgets tqdm.auto falls back to a text bar, which reads well in the static book.
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[["History", nn.Module], None]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "multistep")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser, schedule and the numerical safety nets.

    Attributes:
        epochs: passes over the training loader.
        lr: peak learning rate.
        optimizer: ``"sgd"`` (with ``momentum``, Nesterov off), ``"adam"`` or ``"adamw"``.
        weight_decay: L2 penalty (decoupled for AdamW).
        schedule: ``"constant"``, ``"cosine"`` (to zero) or ``"multistep"`` (lr / 10 at each
            fraction of training in ``milestones``, as He et al. 2016 at 32k and 48k of 64k).
        warmup_steps: linear warm-up from 0 over this many steps.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping).
        amp: autocast on CUDA (bf16 if supported, else fp16 with a GradScaler); no-op on CPU.
        channels_last: NHWC memory layout for conv nets; ``None`` means "on CUDA".
        compile: wrap the model in ``torch.compile`` (opt-in: compiling takes a while); a string
            picks the mode, e.g. ``"reduce-overhead"`` (CUDA graphs: fewer kernel launches,
            which matters for small nets that leave the GPU waiting on Python).
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
    amp: bool = True
    channels_last: bool | None = None
    compile: bool | str = False

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}: expected one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}: expected one of {SCHEDULES}")
        if any(not 0 < m < 1 for m in self.milestones):
            raise ValueError(
                f"milestones are fractions of training in (0, 1), got {self.milestones}"
            )
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")


@dataclass
class History:
    """Per-epoch metrics of one :func:`fit` run, plus the provenance of the run."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # the rate of each epoch's last step
    seconds: list[float] = field(default_factory=list)  # cumulative wall time
    provenance: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(**{f.name: d[f.name] for f in fields(cls)})

    def __len__(self) -> int:
        return len(self.epoch)

    def summary(self) -> str:
        """The last epoch's numbers and the run's provenance, ready to print under a result."""
        if not self.epoch:
            return "no epochs trained"
        parts = [f"epoch {self.epoch[-1]}", f"train loss {self.train_loss[-1]:.4f}"]
        if self.test_loss:
            parts += [f"test loss {self.test_loss[-1]:.4f}", f"test acc {self.test_acc[-1]:.3f}"]
        parts.append(f"{self.seconds[-1]:.1f} s")
        return " · ".join(parts) + (f"\n  [{self.provenance}]" if self.provenance else "")


class StopTraining(Exception):
    """Raise from a callback to end :func:`fit` after the current epoch."""


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16; ``None`` (no autocast) on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: torch.device, enabled: bool) -> AbstractContextManager[Any]:
    dtype = autocast_dtype(device)
    if not enabled or dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _batch_metrics(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Correct predictions (on the device) and the number of labels they were checked against."""
    if y.is_floating_point():
        return torch.zeros((), device=out.device), 0
    return (out.argmax(dim=1) == y).sum(), y.numel()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Batch],
    loss_fn: LossFn = F.cross_entropy,
    *,
    amp: bool = True,
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` over ``loader`` in eval mode (restored afterwards).

    Accuracy is the fraction of integer labels matched by the arg-max over dim 1 (classes, or
    classes per pixel); it is ``nan`` for float targets.
    """
    device = _model_device(model)
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    samples = labels = 0
    try:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with _autocast(device, amp):
                out = model(x)
                loss = loss_fn(out, y)
            total_loss += loss.float() * x.shape[0]
            hits, n = _batch_metrics(out, y)
            correct += hits
            samples, labels = samples + x.shape[0], labels + n
    finally:
        model.train(was_training)
    if samples == 0:
        raise ValueError("evaluate() got an empty loader")
    acc = (correct / labels).item() if labels else math.nan
    return (total_loss / samples).item(), acc


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """The learning-rate multiplier at ``step``: linear warm-up, then the schedule."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = step / max(1, total_steps)
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if cfg.schedule == "multistep":
        return 0.1 ** sum(progress >= m for m in cfg.milestones)
    return 1.0


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a crash mid-save never corrupts the last good checkpoint


def _load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # unpickling errors come in several types
        raise ValueError(f"{path} is not a readable reslib checkpoint: {err}") from err
    missing = {"model", "optimizer", "epoch", "history"} - set(state)
    if missing:
        raise ValueError(f"{path} is not a reslib checkpoint (missing {sorted(missing)})")
    return state


def fit(
    model: nn.Module,
    train_loader: Iterable[Batch],
    config: TrainConfig = TrainConfig(),
    *,
    test_loader: Iterable[Batch] | None = None,
    loss_fn: LossFn = F.cross_entropy,
    callbacks: Sequence[Callback] = (),
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Train ``model`` in place and return its :class:`History`.

    Args:
        model: the network; it trains on the device its parameters are on.
        train_loader: yields ``(x, y)`` batches (for example a :class:`reslib.data.TensorLoader`).
        config: optimiser, schedule and safety settings.
        test_loader: evaluated after every epoch when given.
        loss_fn: ``loss_fn(output, y)``, cross-entropy by default.
        callbacks: called as ``cb(history, model)`` after every epoch; raise
            :class:`StopTraining` to end early.
        checkpoint: file written after every epoch; if it exists, training resumes from it.
        progress: show a tqdm bar over epochs.
        desc: the progress bar's label.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the message names epoch and step).
        ValueError: the checkpoint does not belong to this model.
    """
    from reslib.profiles import provenance

    device = _model_device(model)
    steps_per_epoch = len(train_loader) if hasattr(train_loader, "__len__") else None
    if steps_per_epoch == 0:
        raise ValueError("fit() got an empty training loader")
    has_conv2d = any(isinstance(m, nn.Conv2d) for m in model.modules())
    channels_last = (
        config.channels_last if config.channels_last is not None else device.type == "cuda"
    ) and has_conv2d
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if config.compile:
        mode = config.compile if isinstance(config.compile, str) else None
        step_model: nn.Module = torch.compile(model, mode=mode)  # type: ignore[assignment]
    else:
        step_model = model

    optimizer = _optimizer(model, config)
    total_steps = config.epochs * (steps_per_epoch or 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, config)
    )
    use_scaler = config.amp and autocast_dtype(device) == torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    params = [p for p in model.parameters() if p.requires_grad]

    history, start_epoch = History(), 0
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    if ckpt_path is not None and ckpt_path.exists():
        state = _load_checkpoint(ckpt_path, device)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise ValueError(
                f"checkpoint {ckpt_path} does not match this model "
                f"({str(err).splitlines()[0]}); delete it or pass another checkpoint path"
            ) from err
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history = History.from_dict(state["history"])
        start_epoch = state["epoch"]
        torch.set_rng_state(state["rng"].cpu())
        if "cuda_rng" in state and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
        if "loader_rng" in state and hasattr(train_loader, "generator"):
            train_loader.generator.set_state(state["loader_rng"].cpu())

    seconds_before = history.seconds[-1] if history.seconds else 0.0
    started = time.perf_counter()
    bar = tqdm(
        range(start_epoch, config.epochs),
        desc=desc,
        disable=not progress,
        initial=start_epoch,
        total=config.epochs,
        mininterval=1.0,
    )
    model.train()
    for epoch in bar:
        total_loss = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        # -1 until a step produces a non-finite loss; then that step's index (kept on device).
        first_bad_step = torch.full((), -1, dtype=torch.long, device=device)
        samples = labels = 0
        for step, (x, y) in enumerate(train_loader):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, config.amp):
                out = step_model(x)
                loss = loss_fn(out, y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step_lr = optimizer.param_groups[0]["lr"]  # a Python float: no sync
            scheduler.step()

            loss = loss.detach().float()
            is_first_bad = ~torch.isfinite(loss) & (first_bad_step < 0)
            first_bad_step = torch.where(is_first_bad, step, first_bad_step)
            total_loss += loss * x.shape[0]
            hits, n = _batch_metrics(out.detach(), y)
            correct += hits
            samples, labels = samples + x.shape[0], labels + n

        bad_step = int(first_bad_step.item())  # the one host sync of the epoch
        if bad_step >= 0:
            raise FloatingPointError(
                f"the training loss became NaN or infinite at epoch {epoch + 1}, "
                f"step {bad_step + 1} of {step + 1} "
                f"(lr {step_lr:.3g}); try a smaller learning rate, "
                f"warmup_steps or grad_clip"
                + (f". The last good checkpoint is {ckpt_path}" if ckpt_path else "")
            )
        history.epoch.append(epoch + 1)
        history.train_loss.append((total_loss / max(samples, 1)).item())
        history.train_acc.append((correct / labels).item() if labels else math.nan)
        if test_loader is not None:
            test_loss, test_acc = evaluate(model, test_loader, loss_fn, amp=config.amp)
            history.test_loss.append(test_loss)
            history.test_acc.append(test_acc)
        history.lr.append(step_lr)
        history.seconds.append(seconds_before + time.perf_counter() - started)
        history.provenance = provenance()
        postfix = {"loss": f"{history.train_loss[-1]:.4f}"}
        if history.test_acc:
            postfix["test_acc"] = f"{history.test_acc[-1]:.3f}"
        bar.set_postfix(postfix, refresh=False)

        if ckpt_path is not None:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch + 1,
                "history": history.as_dict(),
                "rng": torch.get_rng_state(),
            }
            if device.type == "cuda":
                state["cuda_rng"] = torch.cuda.get_rng_state(device)
            if hasattr(train_loader, "generator"):
                state["loader_rng"] = train_loader.generator.get_state()
            _save_checkpoint(ckpt_path, state)
        try:
            for callback in callbacks:
                callback(history, model)
        except StopTraining:
            break
    bar.close()
    return history
