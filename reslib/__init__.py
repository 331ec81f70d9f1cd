"""reslib: residual connections, measured.

The library behind the textbook: blocks whose ``forward`` reads like their equations, an
explicit trainer that runs on a GPU or the CPU, and hook-based diagnostics of gradient flow.

>>> import reslib
>>> run = reslib.setup(seed=0)  # picks the quick/full profile and prints the provenance line
"""

__version__ = "0.1.0"

from reslib import data, diagnostics, layers, models, papers, plot
from reslib.profiles import (
    ClaimError,
    RunInfo,
    active,
    by_profile,
    claim,
    default_device,
    default_profile,
    provenance,
    seed_everything,
    setup,
)
from reslib.train import Accuracy, History, MeanIoU, StopTraining, TrainConfig, evaluate, fit

__all__ = [
    "Accuracy",
    "ClaimError",
    "History",
    "MeanIoU",
    "RunInfo",
    "StopTraining",
    "TrainConfig",
    "__version__",
    "active",
    "by_profile",
    "claim",
    "data",
    "default_device",
    "default_profile",
    "diagnostics",
    "evaluate",
    "fit",
    "layers",
    "models",
    "papers",
    "plot",
    "provenance",
    "seed_everything",
    "setup",
]
