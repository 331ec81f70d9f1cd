"""Measurements taken from outside the model: gradient flow, activations and blocks.

Everything here attaches hooks inside a context manager and removes them on exit (one
mechanism, :func:`~reslib.diagnostics.hooks.hooked`); the one-shot measurements also restore
the model's buffers and train/eval mode, so a model is left exactly as it was. Nothing here
imports a model family: block-level tools work on any model through the block protocol of
:mod:`reslib.layers.blocks`.
"""

from reslib.diagnostics.blocks import block_gradients, branch_norms, lesion, skip_retention
from reslib.diagnostics.correlation import autocorrelation, gradient_correlation, input_gradients
from reslib.diagnostics.gradcam import grad_cam, mass_inside
from reslib.diagnostics.gradients import (
    WEIGHT_LAYERS,
    ActivationStats,
    activation_stats,
    gradient_norms,
    weight_layers,
)
from reslib.diagnostics.hooks import (
    capture_inputs,
    capture_outputs,
    check_layers,
    hooked,
    preserved_state,
    record_gradients,
)
from reslib.diagnostics.landscape import filter_normalized_direction, loss_slice
from reslib.diagnostics.memory import SavedMemory, saved_activation_bytes
from reslib.diagnostics.paths import bypass, path_counts, path_gradients, swapped
from reslib.diagnostics.readout import intermediate_readout
from reslib.diagnostics.recalibration import batch_norms, recalibrate_bn, recalibrated

__all__ = [
    "WEIGHT_LAYERS",
    "ActivationStats",
    "SavedMemory",
    "activation_stats",
    "autocorrelation",
    "batch_norms",
    "block_gradients",
    "branch_norms",
    "bypass",
    "capture_inputs",
    "capture_outputs",
    "check_layers",
    "filter_normalized_direction",
    "grad_cam",
    "gradient_correlation",
    "gradient_norms",
    "hooked",
    "input_gradients",
    "intermediate_readout",
    "lesion",
    "loss_slice",
    "mass_inside",
    "path_counts",
    "path_gradients",
    "preserved_state",
    "recalibrate_bn",
    "recalibrated",
    "record_gradients",
    "saved_activation_bytes",
    "skip_retention",
    "swapped",
    "weight_layers",
]
