"""The training loop: :func:`fit`, one epoch at a time, and :func:`evaluate`.

The loop is written to be read. On CUDA it uses autocast (bf16 where the GPU supports it, else
fp16 with a gradient scaler), channels_last for conv nets and, on request, ``torch.compile``; on
the CPU those steps are skipped. Losses and metric counts accumulate on the device and are read
once per epoch, so a step never waits for the host. A non-finite loss stops training with an
error that names the epoch and step, and a checkpoint written after every epoch lets an
interrupted run (a Colab disconnect) resume where it stopped.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence
from itertools import islice

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import TqdmWarning

from reslib.profiles import provenance
from reslib.train.checkpoint import Checkpoint, RunState
from reslib.train.config import TrainConfig
from reslib.train.history import History, StopTraining
from reslib.train.metrics import Accuracy, Metric, Totals
from reslib.train.runtime import (
    autocast,
    check_epoch_length,
    check_reiterable,
    epoch_length,
    make_scaler,
    model_device,
    prepare,
    to_device,
)
from reslib.train.schedule import make_optimizer, set_lr

with warnings.catch_warnings():
    # Without ipywidgets tqdm.auto falls back to a text bar, which reads well in the static book.
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[History, nn.Module], None]

DEFAULT_CONFIG = TrainConfig()
ACCURACY = Accuracy()  # over dim 1: (B, C) logits and (B, C, H, W) segmentation logits


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Batch],
    loss_fn: LossFn = F.cross_entropy,
    *,
    metric: Metric = ACCURACY,
    amp: bool = True,
) -> tuple[float, float]:
    """Mean loss and ``metric`` (accuracy by default) of ``model`` over ``loader`` in eval mode.

    The model's train/eval mode is restored afterwards. Accuracy is ``nan`` for float targets.
    """
    device = model_device(model)
    was_training = model.training
    model.eval()
    totals = Totals(metric, device)
    try:
        for step, (x, y) in enumerate(loader):
            x, y = to_device(x, y, device)
            with autocast(device, amp):
                out = model(x)
                loss = loss_fn(out, y)
            totals.add(step, loss, out, y)
    finally:
        model.train(was_training)
    if totals.samples == 0:
        raise ValueError(
            "evaluate() got a loader that yielded no batches (an empty loader, or a one-shot "
            "iterator already used up)"
        )
    loss_value, metric_value, _ = totals.read()
    return loss_value, metric_value


def train_epoch(
    step_model: nn.Module,
    loader: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loss_fn: LossFn,
    totals: Totals,
    config: TrainConfig,
    *,
    epoch: int,
    steps: int,
    channels_last: bool,
) -> float:
    """One pass of at most ``steps`` batches; returns the last step's learning rate."""
    device = totals.loss.device
    params = [p for group in optimizer.param_groups for p in group["params"]]
    lr, step = config.lr, -1
    for step, (x, y) in enumerate(islice(loader, steps)):
        lr = set_lr(optimizer, config, epoch * steps + step, config.epochs * steps)
        x, y = to_device(x, y, device, channels_last)
        with autocast(device, config.amp):
            out = step_model(x)
            loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(params, config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        totals.add(step, loss, out, y)
    check_epoch_length(step + 1, steps, epoch)
    return lr


def _nan_error(epoch: int, step: int, steps: int, lr: float, saved: Checkpoint | None) -> str:
    where = f"at epoch {epoch + 1}, step {step + 1} of {steps} (lr {lr:.3g})"
    # name a checkpoint only if one exists: in the first epoch of a fresh run none was written
    last = f". The last good checkpoint is {saved.path}" if saved and saved.exists() else ""
    return (
        f"the training loss became NaN or infinite {where}; try a smaller learning rate, "
        f"warmup_steps or grad_clip{last}"
    )


def fit(
    model: nn.Module,
    train_loader: Iterable[Batch],
    config: TrainConfig = DEFAULT_CONFIG,
    *,
    test_loader: Iterable[Batch] | None = None,
    loss_fn: LossFn = F.cross_entropy,
    metric: Metric = ACCURACY,
    callbacks: Sequence[Callback] = (),
    checkpoint: str | os.PathLike[str] | None = None,
    resume_changes: Collection[str] = (),
    steps_per_epoch: int | None = None,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Train ``model`` in place and return its :class:`History`.

    Args:
        model: the network; it trains on the device its parameters are on.
        train_loader: yields ``(x, y)`` batches: a :class:`reslib.data.TensorLoader`, a
            ``DataLoader`` or a list; re-iterable when ``config.epochs > 1``.
        config: optimiser, schedule and safety settings.
        test_loader: evaluated after every epoch when given.
        loss_fn: ``loss_fn(output, y)``, cross-entropy by default.
        metric: what History records besides the loss: :class:`Accuracy` over dim 1 by
            default; ``Accuracy(class_dim=-1)`` for ``(B, T, V)`` sequence logits,
            ``MeanIoU(num_classes)`` for segmentation.
        callbacks: called as ``cb(history, model)`` after every epoch; raise
            :class:`StopTraining` to end early.
        checkpoint: file written after every epoch; if it exists, training resumes from it.
            It must come from the same model (class, ``repr`` and shapes), config and metric,
            and pass its checksum. A resume continues bitwise-identically from the last epoch
            boundary; :mod:`reslib.train.checkpoint` lists what cannot be restored (the
            position inside an epoch, an iterable dataset's own state, worker processes).
        resume_changes: names of ``TrainConfig`` fields (or ``"metric"``) allowed to differ
            from the checkpoint's, e.g. ``("epochs",)`` to train a finished run further. The
            new values apply from the resumed epoch on: the schedule is recomputed at the
            current step, a new momentum or weight decay applies to the restored optimiser,
            and a new ``optimizer`` starts with a fresh state. ``"model"`` accepts a model
            whose ``repr`` differs while its keys and shapes match.
        steps_per_epoch: batches per epoch, which sizes the schedule; defaults to
            ``len(train_loader)`` and is required for a loader without a length.
        progress: show a tqdm bar over epochs.
        desc: the progress bar's label.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the message names epoch and step).
        ValueError: the checkpoint belongs to another model or config or is damaged; or the
            loader is empty, has no length or is used up after one epoch.
        OSError: a checkpoint could not be written (its partial file is removed).
    """
    device = model_device(model)
    check_reiterable(train_loader, "train_loader", config.epochs)
    if test_loader is not None:
        check_reiterable(test_loader, "test_loader", config.epochs)
    steps = epoch_length(train_loader, steps_per_epoch)
    step_model, channels_last = prepare(model, config, device)
    optimizer, scaler = make_optimizer(model, config), make_scaler(config, device)
    saved = Checkpoint(checkpoint, model, config, metric.name) if checkpoint else None
    run = RunState(model, optimizer, scaler, train_loader, device)
    history, start = History(metric=metric.name), 0
    if saved is not None and saved.exists():
        history, start = saved.resume(run, resume_changes)
    seconds_before, started = (history.seconds or [0.0])[-1], time.perf_counter()
    bar = tqdm(
        range(start, config.epochs),
        desc=desc,
        disable=not progress,
        initial=start,
        total=config.epochs,
        mininterval=1.0,
    )
    model.train()
    for epoch in bar:
        totals = Totals(metric, device)
        lr = train_epoch(
            step_model,
            train_loader,
            optimizer,
            scaler,
            loss_fn,
            totals,
            config,
            epoch=epoch,
            steps=steps,
            channels_last=channels_last,
        )
        train_loss, train_metric, bad_step = totals.read()  # the one host sync of the epoch
        if bad_step is not None:
            raise FloatingPointError(_nan_error(epoch, bad_step, steps, lr, saved))
        test = None
        if test_loader is not None:
            test = evaluate(model, test_loader, loss_fn, metric=metric, amp=config.amp)
        seconds = seconds_before + time.perf_counter() - started
        history.add_epoch(epoch + 1, (train_loss, train_metric), test, lr, seconds)
        history.provenance = provenance()
        bar.set_postfix({"loss": f"{train_loss:.4f}"}, refresh=False)
        if saved is not None:
            saved.save(run, epoch + 1, history)
        try:
            for callback in callbacks:
                callback(history, model)
        except StopTraining:
            break
    bar.close()
    return history
