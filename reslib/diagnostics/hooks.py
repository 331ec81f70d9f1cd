"""Hooks, attached from outside inside a context manager and removed on exit.

Model code never knows it is measured: every tool in :mod:`reslib.diagnostics` goes through
:func:`hooked`, and the one-shot measurements also restore the model's buffers (BatchNorm
running statistics) and train/eval mode with :func:`preserved_state`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, Literal

import torch
from torch import nn

Layers = Sequence[tuple[str, nn.Module]]
HookKind = Literal["forward", "forward_pre"]


def check_layers(model: nn.Module, layers: Layers) -> Layers:
    """Return ``layers`` if each module is part of ``model`` and there is at least one.

    A module outside the model would never run, and its measurement would silently read as
    zero (a "vanished" gradient) or be missing; this says so instead.
    """
    if not layers:
        raise ValueError("no layers to measure: pass layers=[(name, module), ...]")
    own = {id(m) for m in model.modules()}
    strangers = [name for name, m in layers if id(m) not in own]
    if strangers:
        raise ValueError(f"these layers are not part of the model: {', '.join(strangers)}")
    return layers


@contextmanager
def hooked(
    layers: Layers,
    hook: Callable[[str, nn.Module, tuple[Any, ...], Any], Any],
    kind: HookKind = "forward",
) -> Iterator[None]:
    """Call ``hook(name, module, inputs, output)`` (``output`` is None for ``"forward_pre"``)
    on every forward pass of each layer inside the context; a non-None return replaces the
    layer's output (or its inputs, for ``"forward_pre"``). The hooks go away on exit."""
    with ExitStack() as stack:
        for name, module in layers:
            if kind == "forward":

                def fwd(m: nn.Module, inputs: tuple[Any, ...], out: Any, name: str = name) -> Any:
                    return hook(name, m, inputs, out)

                handle = module.register_forward_hook(fwd)
            else:

                def pre(m: nn.Module, inputs: tuple[Any, ...], name: str = name) -> Any:
                    return hook(name, m, inputs, None)

                handle = module.register_forward_pre_hook(pre)
            stack.callback(handle.remove)
        yield


@contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Restore the model's buffers (e.g. BatchNorm running statistics) and modes on exit."""
    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    modes = {name: m.training for name, m in model.named_modules()}
    try:
        yield model
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(saved[name])
        for name, m in model.named_modules():
            m.training = modes[name]


@contextmanager
def capture_outputs(model: nn.Module, layers: Layers) -> Iterator[dict[str, torch.Tensor]]:
    """Collect each layer's output of the forward passes run inside the context.

    Yields a dict ``name -> output`` (the latest forward pass).
    """
    outputs: dict[str, torch.Tensor] = {}

    def store(name: str, _m: nn.Module, _inputs: tuple[Any, ...], out: Any) -> None:
        outputs[name] = out

    with hooked(check_layers(model, layers), store):
        yield outputs


@contextmanager
def capture_inputs(model: nn.Module, layers: Layers) -> Iterator[dict[str, torch.Tensor]]:
    """Collect each layer's (first) input of the forward passes run inside the context."""
    inputs: dict[str, torch.Tensor] = {}

    def store(name: str, _m: nn.Module, args: tuple[Any, ...], _out: Any) -> None:
        inputs[name] = args[0]

    with hooked(check_layers(model, layers), store, kind="forward_pre"):
        yield inputs


@contextmanager
def record_gradients(model: nn.Module, layers: Layers) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Record ``||dLoss/d output||`` of each layer for every backward pass inside the context.

    Use it around ordinary training steps; it yields ``name -> [norm per backward]`` with the
    norms kept on the device (no host sync).
    """
    norms: dict[str, list[torch.Tensor]] = {name: [] for name, _ in layers}

    def on_forward(name: str, _m: nn.Module, _inputs: tuple[Any, ...], out: Any) -> None:
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.register_hook(lambda g: norms[name].append(g.detach().norm()))

    with hooked(check_layers(model, layers), on_forward):
        yield norms
