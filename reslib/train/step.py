"""One optimisation step, compiled into CUDA graphs where it can be and eager where it cannot.

Small networks on a fast GPU are *launch-bound*: Python issues hundreds of small kernels per
step and the GPU waits for them. ``torch.compile(backend="cudagraphs")`` records the forward
and backward passes in CUDA graphs, which replay all their kernels with one launch
(``mode="reduce-overhead"`` also fuses the kernels with inductor, at a much longer compile).
Graphs need fixed shapes, so :class:`TrainStep` sends only batches of the first batch's shape
through the compiled model; any other batch (a short last batch) takes the eager model, which
shares its parameters. If compiling fails (an operation the compiler does not support, a missing C
compiler), the step warns once and stays eager for the rest of the run.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from reslib.train.config import GRAPHS_ONLY, TrainConfig
from reslib.train.precision import Precision, autocast

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# the compile settings that record CUDA graphs
GRAPH_MODES = ("reduce-overhead", "max-autotune", GRAPHS_ONLY)
COMPILE_STEPS = 3  # compiling, a warm-up run and recording the graphs: timed as compile time


class TrainStep:
    """Forward in ``precision``, backward through the gradient scaler, clip, update.

    Args:
        model: the module to train (wrapped in DistributedDataParallel under ``torchrun``).
        optimizer, scaler: what updates the parameters; the scaler is enabled only for fp16.
        config: gives ``grad_clip``.
        device: where the batches are.
        precision: the resolved format (never ``"auto"``).
        compile_mode: a ``torch.compile`` mode, ``"cudagraphs"`` (graphs of the eager kernels,
            no inductor), or ``None`` to stay eager.

    Attributes:
        compile_seconds: wall time of the first :data:`COMPILE_STEPS` compiled steps, which
            compile the model and record its graphs (0 when eager).
        fallback: why the step fell back to eager, or ``None``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        config: TrainConfig,
        device: torch.device,
        precision: Precision,
        compile_mode: str | None,
    ) -> None:
        self.model, self.optimizer, self.scaler = model, optimizer, scaler
        self.grad_clip, self.device, self.precision = config.grad_clip, device, precision
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.compiled: nn.Module | None = None
        if compile_mode == GRAPHS_ONLY:
            self.compiled = torch.compile(model, backend=GRAPHS_ONLY)  # type: ignore[assignment]
        elif compile_mode is not None:
            self.compiled = torch.compile(model, mode=compile_mode)  # type: ignore[assignment]
        self.graphs = compile_mode in GRAPH_MODES
        self.static_shape: torch.Size | None = None  # the one input shape the graphs serve
        self.compiled_steps = 0
        self.compile_seconds = 0.0
        self.fallback: str | None = None

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Train on one batch; return its (mean) loss and the model's output, on the device."""
        if self.compiled is None or not self._fits_graph(x):
            return self._step(self.model, x, y, loss_fn)
        if self.compiled_steps >= COMPILE_STEPS:
            self.compiled_steps += 1
            return self._step(self.compiled, x, y, loss_fn)
        started = self._synchronized_clock()
        try:
            result = self._step(self.compiled, x, y, loss_fn)
        except Exception as err:  # noqa: BLE001 - whatever the compiler raised: retry eagerly
            result = self._step(self.model, x, y, loss_fn)  # an error of the model raises here
            self._fall_back(err)  # the eager step worked: it was the compiler's failure
            return result
        self.compiled_steps += 1
        self.compile_seconds += self._synchronized_clock() - started
        return result

    def _fits_graph(self, x: torch.Tensor) -> bool:
        if self.static_shape is None:
            self.static_shape = x.shape
        return x.shape == self.static_shape

    def _synchronized_clock(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _fall_back(self, err: Exception) -> None:
        self.fallback = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        self.compiled = None
        warnings.warn(
            f"torch.compile failed ({self.fallback}); training eagerly instead (set "
            "TrainConfig(compile=False) to skip the attempt)",
            RuntimeWarning,
            stacklevel=4,
        )

    def _step(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graphs and model is self.compiled:
            # a new iteration: the previous replay's outputs may now be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        with autocast(self.device, self.precision):
            out = model(x)
            loss = loss_fn(out, y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss, out
