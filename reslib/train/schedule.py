"""The optimiser a :class:`TrainConfig` names and its learning-rate schedule.

The rate is set by hand before every step from the global step index (no ``LRScheduler``
object), so a resumed run needs only the step count to continue the schedule, and a
deliberately changed schedule on resume (see ``fit(resume_changes=...)``) takes effect at once.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from reslib.train.config import TrainConfig


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


def hyperparameters(cfg: TrainConfig) -> dict[str, Any]:
    """The optimiser's per-group settings other than the rate."""
    if cfg.optimizer == "sgd":
        return {"momentum": cfg.momentum, "weight_decay": cfg.weight_decay}
    return {"weight_decay": cfg.weight_decay}


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD, Adam or AdamW over the trainable parameters of ``model``."""
    params = [p for p in model.parameters() if p.requires_grad]
    kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    return kind[cfg.optimizer](params, lr=cfg.lr, **hyperparameters(cfg))


def set_lr(optimizer: torch.optim.Optimizer, cfg: TrainConfig, step: int, total: int) -> float:
    """Set the rate of ``step`` (0-based, counted over the whole run); return it.

    A Python float: setting it never waits on the device.
    """
    lr = cfg.lr * lr_factor(step, total, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
