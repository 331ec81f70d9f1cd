"""The training loop: :func:`fit`, one epoch at a time, and :func:`evaluate`.

The loop is written to be read. On CUDA the fastest configuration is the default: CUDA graphs
for the training step (:mod:`.step`), the precision of :mod:`.precision` and channels_last for
conv nets; the CPU trains eagerly in fp32. Losses and metric counts accumulate on the device and
are read once per epoch, so a step never waits for the host. Under ``torchrun`` the same loop
trains with DistributedDataParallel (:mod:`.distributed`). A non-finite loss stops training with
an error that names the epoch and step, and a checkpoint written after every epoch lets an
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
from reslib.train.distributed import is_distributed, is_main_process, world_size, wrap
from reslib.train.history import History, StopTraining
from reslib.train.metrics import Accuracy, Metric, Totals
from reslib.train.precision import (
    Precision,
    autocast,
    make_scaler,
    matmul_precision,
    resolve_precision,
)
from reslib.train.runtime import (
    check_epoch_length,
    check_reiterable,
    compile_mode,
    epoch_length,
    model_device,
    to_device,
    use_channels_last,
)
from reslib.train.schedule import make_optimizer, set_lr
from reslib.train.step import TrainStep

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
    precision: str = "auto",
    across_processes: bool = False,
) -> tuple[float, float]:
    """Mean loss and ``metric`` (accuracy by default) of ``model`` over ``loader`` in eval mode.

    The model's train/eval mode is restored afterwards. Accuracy is ``nan`` for float targets.
    ``precision`` is as in :class:`TrainConfig`. With ``across_processes`` (what :func:`fit`
    does under ``torchrun``) each process evaluates its shard of the loader and the numbers
    are summed over all processes.
    """
    device = model_device(model)
    resolved = resolve_precision(precision, device)
    was_training = model.training
    model.eval()
    totals = Totals(metric, device)
    try:
        with matmul_precision(device, resolved):
            for step, (x, y) in enumerate(loader):
                x, y = to_device(x, y, device)
                with autocast(device, resolved):
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
    loss_value, metric_value, _ = totals.read(across_processes)
    return loss_value, metric_value


def train_epoch(
    step: TrainStep,
    loader: Iterable[Batch],
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
    lr, i = config.lr, -1
    for i, (x, y) in enumerate(islice(loader, steps)):
        lr = set_lr(step.optimizer, config, epoch * steps + i, config.epochs * steps)
        x, y = to_device(x, y, device, channels_last)
        loss, out = step(x, y, loss_fn)
        totals.add(i, loss, out, y)
    check_epoch_length(i + 1, steps, epoch)
    return lr


def _nan_error(epoch: int, step: int, steps: int, lr: float, saved: Checkpoint | None) -> str:
    where = f"at epoch {epoch + 1}, step {step + 1} of {steps} (lr {lr:.3g})"
    # name a checkpoint only if one exists: in the first epoch of a fresh run none was written
    last = f". The last good checkpoint is {saved.path}" if saved and saved.exists() else ""
    return (
        f"the training loss became NaN or infinite {where}; try a smaller learning rate, "
        f"warmup_steps or grad_clip{last}"
    )


def _setup(precision: Precision, mode: str | None, step: TrainStep, distributed: bool) -> str:
    """How the steps ran, for History: precision, graphs or eager, processes."""
    if step.fallback:
        how = f"eager (compile failed: {step.fallback})"
    elif mode is None:
        how = "eager"
    else:
        how = f"CUDA graphs ({mode})" if step.graphs else f"torch.compile({mode})"
    processes = f" · DDP × {world_size()}" if distributed else ""
    return f"{precision} · {how}{processes}"


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
            :class:`StopTraining` to end early. Under ``torchrun`` they run on every process
            (each holds the same History); plot or print only where
            :func:`reslib.train.distributed.is_main_process`.
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
        progress: show a tqdm bar over epochs (on rank 0 only under ``torchrun``).
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
    distributed, main = is_distributed(), is_main_process()
    precision = resolve_precision(config.precision, device)
    channels_last = use_channels_last(model, config, device)
    optimizer, scaler = make_optimizer(model, config), make_scaler(precision, device)
    saved = Checkpoint(checkpoint, model, config, metric.name) if checkpoint else None
    run = RunState(model, optimizer, scaler, train_loader, device)
    history, start = History(metric=metric.name), 0
    if saved is not None and saved.exists():
        history, start = saved.resume(run, resume_changes)  # every process reads the file
    trained = wrap(model, device, sync_batchnorm=config.sync_batchnorm)
    mode = compile_mode(config, device, distributed, planned_steps=config.epochs * steps)
    step = TrainStep(trained, optimizer, scaler, config, device, precision, mode)
    seconds_before, compiling_before = (history.seconds or [0.0])[-1], history.compile_seconds
    started = time.perf_counter()
    bar = tqdm(
        range(start, config.epochs),
        desc=desc,
        disable=not progress or not main,
        initial=start,
        total=config.epochs,
        mininterval=1.0,
    )
    model.train()
    with matmul_precision(device, precision):
        for epoch in bar:
            totals = Totals(metric, device)
            lr = train_epoch(
                step,
                train_loader,
                loss_fn,
                totals,
                config,
                epoch=epoch,
                steps=steps,
                channels_last=channels_last,
            )
            # the one host sync of the epoch (after summing over the processes, if several)
            train_loss, train_metric, bad_step = totals.read(distributed)
            if bad_step is not None:
                raise FloatingPointError(_nan_error(epoch, bad_step, steps, lr, saved))
            test = None
            if test_loader is not None:
                test = evaluate(
                    model,
                    test_loader,
                    loss_fn,
                    metric=metric,
                    precision=precision,
                    across_processes=distributed,
                )
            # compiling is reported apart from training: seconds count the training alone
            elapsed = time.perf_counter() - started - step.compile_seconds
            history.add_epoch(
                epoch + 1, (train_loss, train_metric), test, lr, seconds_before + elapsed
            )
            history.compile_seconds = compiling_before + step.compile_seconds
            history.setup = _setup(precision, mode, step, distributed)
            history.provenance = provenance()
            bar.set_postfix({"loss": f"{train_loss:.4f}"}, refresh=False)
            if saved is not None and main:  # one writer: the checkpoint holds the whole run
                saved.save(run, epoch + 1, history)
            try:
                for callback in callbacks:  # on every process, so a StopTraining stops them all
                    callback(history, model)
            except StopTraining:
                break
    bar.close()
    return history
