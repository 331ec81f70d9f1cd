"""reslib.train: one explicit training loop, and what it needs around it.

========================  ==================================================================
``config``                :class:`TrainConfig`, checked field by field when it is made
``schedule``              the optimiser it names and :func:`lr_factor` (warm-up, schedules)
``metrics``               :class:`Accuracy` over any class dimension, :class:`MeanIoU`,
                          :class:`BoundaryF1`
``history``               :class:`History` (per-epoch numbers), :class:`StopTraining`
``checkpoint``            checkpoints tied to their run, checksummed, written atomically
``runtime``               device, autocast, channels_last, compile, loader checks
``loop``                  :func:`fit` and :func:`evaluate`
========================  ==================================================================

The trainer imports no model family: it trains any ``nn.Module``.
"""

from reslib.train.checkpoint import Checkpoint
from reslib.train.config import COMPILE_MODES, OPTIMIZERS, SCHEDULES, TrainConfig
from reslib.train.history import History, StopTraining
from reslib.train.loop import evaluate, fit
from reslib.train.metrics import Accuracy, BoundaryF1, MeanIoU, Metric
from reslib.train.runtime import autocast_dtype
from reslib.train.schedule import lr_factor

__all__ = [
    "COMPILE_MODES",
    "OPTIMIZERS",
    "SCHEDULES",
    "Accuracy",
    "BoundaryF1",
    "Checkpoint",
    "History",
    "MeanIoU",
    "Metric",
    "StopTraining",
    "TrainConfig",
    "autocast_dtype",
    "evaluate",
    "fit",
    "lr_factor",
]
