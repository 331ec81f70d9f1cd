"""reslib.train: one explicit training loop, and what it needs around it.

========================  ==================================================================
``config``                :class:`TrainConfig`, checked field by field when it is made
``schedule``              the optimiser it names and :func:`lr_factor` (warm-up, schedules)
``metrics``               :class:`Accuracy` over any class dimension, :class:`MeanIoU`,
                          :class:`BoundaryF1`
``history``               :class:`History` (per-epoch numbers), :class:`StopTraining`
``checkpoint``            checkpoints tied to their run, checksummed, written atomically
``precision``             the precision policy: fp32, TF32, bf16 or fp16 per GPU and model
``runtime``               device, channels_last, the compile mode, loader checks
``step``                  one training step, in CUDA graphs where shapes allow
``distributed``           ``torchrun``: DistributedDataParallel, sharded data, rank 0 writes
``recipes``               named training recipes (He et al.'s CIFAR-10 schedule, ...)
``loop``                  :func:`fit` and :func:`evaluate`
========================  ==================================================================

The trainer imports no model family: it trains any ``nn.Module``.
"""

from reslib.train.checkpoint import Checkpoint
from reslib.train.config import COMPILE_MODES, GRAPHS_ONLY, OPTIMIZERS, SCHEDULES, TrainConfig
from reslib.train.history import History, StopTraining
from reslib.train.loop import evaluate, fit
from reslib.train.metrics import Accuracy, BoundaryF1, MeanIoU, Metric
from reslib.train.precision import PRECISIONS, choose_precision
from reslib.train.schedule import lr_factor

__all__ = [
    "COMPILE_MODES",
    "GRAPHS_ONLY",
    "OPTIMIZERS",
    "PRECISIONS",
    "SCHEDULES",
    "Accuracy",
    "BoundaryF1",
    "Checkpoint",
    "History",
    "MeanIoU",
    "Metric",
    "StopTraining",
    "TrainConfig",
    "choose_precision",
    "evaluate",
    "fit",
    "lr_factor",
]
