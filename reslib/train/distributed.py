"""Training on several processes with ``torchrun``: PyTorch's DistributedDataParallel.

``torchrun --nproc-per-node N script.py`` starts N copies of a script, one per GPU (or CPU
process), and tells each its ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``. After
:func:`init_from_env`, :func:`~reslib.train.fit` notices the process group and

* wraps the model in ``DistributedDataParallel``, which averages the gradients of the N
  processes during the backward pass, so every process takes the same step;
* expects each process's loader to yield its *shard* of every global batch (a
  :class:`reslib.data.TensorLoader` with ``shard=(rank, world_size)``: every process draws the
  same shuffle from the same seed and keeps every N-th sample of it, so the N shards of a batch
  are exactly the batch one process would have drawn);
* all-reduces the epoch's loss and metric sums (still one host sync per epoch), so every
  process holds the same :class:`~reslib.train.History`;
* lets only rank 0 show progress and write the checkpoint, which stores the unwrapped model
  and can be resumed by any number of processes.

Li et al. 2020, "PyTorch Distributed: Experiences on Accelerating Data Parallel Training"
(arXiv 2006.15704) describe the engine.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0: the process that prints, plots and writes files."""
    return rank() == 0


def init_from_env() -> torch.device:
    """Join the process group ``torchrun`` set up (a no-op without ``torchrun``); return the
    device this process trains on: ``cuda:LOCAL_RANK`` with NCCL, else the CPU with gloo."""
    if "WORLD_SIZE" not in os.environ or (dist.is_available() and dist.is_initialized()):
        return _local_device()
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed; run a single process")
    device = _local_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def _local_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def wrap(model: nn.Module, device: torch.device, *, sync_batchnorm: bool) -> nn.Module:
    """``model`` in DistributedDataParallel (and with SyncBatchNorm if asked), or ``model``
    itself in a single process.

    ``sync_batchnorm`` replaces the model's BatchNorm layers in place; their parameters and
    buffers keep their names, so checkpoints load either way.
    """
    if not is_distributed():
        return model
    if sync_batchnorm:
        if device.type != "cuda":
            raise ValueError(
                "sync_batchnorm=True needs CUDA (PyTorch's SyncBatchNorm has no CPU kernel); "
                "on the CPU each process normalises over its own share of the batch"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The sum of ``values`` over all processes (``values`` itself in a single process)."""
    if is_distributed():
        values = values.clone()
        dist.all_reduce(values)
    return values


def all_reduce_max(values: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum of ``values`` over all processes."""
    if is_distributed():
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values


def barrier() -> None:
    """Wait for every process (a no-op in a single process)."""
    if is_distributed():
        dist.barrier()
