"""Grad-CAM: Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization" (arXiv 1610.02391): L^c = ReLU(sum_k alpha_k^c A^k), with
alpha_k^c = mean over positions of dy^c/dA^k.

``A`` is the output of a chosen layer - here, by default, every block of the block protocol
(:func:`reslib.layers.named_blocks`), so one call maps what each block of a residual net and
of its plain twin responds to. ``A`` has shape ``(B, K, *S)``: images ``(B, K, H, W)`` or
sequences ``(B, K, L)``; the map has shape ``(B, *S)``, at the layer's own resolution (or the
input's, with ``resize=True``).

Like every tool in :mod:`reslib.diagnostics`, it attaches its hooks inside a context manager
(:func:`~reslib.diagnostics.hooks.capture_outputs`) and restores buffers and train/eval mode
(:func:`~reslib.diagnostics.hooks.preserved_state`); gradients come from
``torch.autograd.grad``, so no parameter's ``.grad`` changes.

At the last block of a net that ends in global average pooling and one linear layer,
y^c = sum_k w_ck mean(A^k) + b_c, so alpha_k^c = w_ck / n (n positions) and Grad-CAM is the class
activation map of Zhou et al. 2016 (arXiv 1512.04150) divided by the number of positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from reslib.diagnostics.hooks import Layers, capture_outputs, preserved_state
from reslib.layers.blocks import named_blocks

_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _choose_layers(model: nn.Module, layers: Sequence[str] | Layers | None) -> Layers:
    """``(name, module)`` pairs: every block by default, or the named submodules."""
    if layers is None:
        found = named_blocks(model)
        if not found:
            raise ValueError(
                f"{type(model).__name__} has no blocks (reslib.layers.named_blocks found none): "
                "name the layers to map, e.g. layers=['features.3']"
            )
        return found
    if isinstance(layers, str):
        raise ValueError(f"layers takes a list of names, got the string {layers!r}")
    modules = dict(model.named_modules())
    chosen: list[tuple[str, nn.Module]] = []
    for item in layers:
        if isinstance(item, str):
            if item not in modules or item == "":
                blocks = ", ".join(name for name, _ in named_blocks(model)) or "none"
                raise ValueError(f"the model has no layer named {item!r}; its blocks: {blocks}")
            chosen.append((item, modules[item]))
        else:
            chosen.append(item)
    if not chosen:
        raise ValueError("no layers to map: pass layers=None (every block) or a list of names")
    return chosen


def _targets(target: int | torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    """One class index per sample: the prediction, a class for all, or one each."""
    batch, classes = logits.shape
    if target is None:
        return logits.argmax(dim=1)
    if isinstance(target, int) and not isinstance(target, bool):
        t = torch.full((batch,), target, dtype=torch.long, device=logits.device)
    elif isinstance(target, torch.Tensor) and target.shape == (batch,):
        t = target.to(device=logits.device, dtype=torch.long)
    else:
        raise ValueError(
            f"target must be None (the predicted class), an int or a tensor of shape ({batch},)"
            f"; got {target!r}"
        )
    if t.numel() and (t.min() < 0 or t.max() >= classes):
        raise ValueError(f"target classes must lie in [0, {classes}), got {t.tolist()}")
    return t


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    *,
    layers: Sequence[str] | Layers | None = None,
    target: int | torch.Tensor | None = None,
    resize: bool = False,
    eval_mode: bool = True,
) -> dict[str, torch.Tensor]:
    """Grad-CAM maps ``L^c = ReLU(sum_k alpha_k^c A^k)`` of ``x`` at each layer, one per sample.

    Args:
        model: a classifier whose output is ``(B, classes)`` logits.
        x: the input batch.
        layers: names of submodules (or ``(name, module)`` pairs) whose outputs ``(B, K, *S)``
            are mapped; ``None`` maps every block found by :func:`reslib.layers.named_blocks`.
        target: the class ``c`` explained: ``None`` for each sample's predicted class, an int
            for one class for all, or a ``(B,)`` tensor of classes.
        resize: interpolate every map to ``x``'s spatial size (bilinear for images, linear for
            sequences), so maps of different blocks can be compared pixel by pixel.
        eval_mode: run in eval mode (BatchNorm's running statistics), so each sample's map
            depends on that sample alone; the model's mode is restored afterwards.

    Returns:
        ``name -> map`` of shape ``(B, *S)``, detached and non-negative, in the order of
        ``layers``.

    Raises:
        ValueError: an unknown layer name, a layer that does not run or whose output has no
            channel and position dimensions, logits that are not ``(B, classes)``, or a bad
            ``target``.
    """
    chosen = _choose_layers(model, layers)
    # a leaf input that needs a gradient: the graph exists even if every parameter is frozen
    inputs = x.detach().requires_grad_(True)
    with preserved_state(model), capture_outputs(model, chosen) as outputs, torch.enable_grad():
        if eval_mode:
            model.eval()
        logits = model(inputs)
        if logits.ndim != 2:
            raise ValueError(f"grad_cam needs (B, classes) logits, got {tuple(logits.shape)}")
        classes = _targets(target, logits)
        missing = [name for name, _ in chosen if name not in outputs]
        if missing:
            raise ValueError(f"these layers did not run in the forward pass: {missing}")
        maps = [outputs[name] for name, _ in chosen]
        for (name, _), a in zip(chosen, maps, strict=True):
            if not isinstance(a, torch.Tensor) or a.ndim < 3:
                shape = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
                raise ValueError(f"{name} outputs {shape}; Grad-CAM needs (B, K, *S)")
        # in eval mode the samples do not interact, so d(sum_b y_b)/dA_b = dy_b/dA_b
        score = logits.gather(1, classes[:, None]).sum()
        grads = torch.autograd.grad(score, maps, allow_unused=True)
    cams = {}
    for (name, _), a, g in zip(chosen, maps, grads, strict=True):
        a = a.detach()
        if g is None:  # the layer ran but does not reach the output: no evidence anywhere
            g = torch.zeros_like(a)
        alpha = g.flatten(2).mean(dim=2)  # (B, K): the spatial mean of dy^c/dA^k
        shape = alpha.shape + (1,) * (a.ndim - 2)
        cam = F.relu((alpha.view(shape) * a).sum(dim=1))  # (B, *S)
        if resize and cam.shape[1:] != x.shape[2:]:
            size = tuple(x.shape[2:])
            if len(size) != cam.ndim - 1 or len(size) not in _MODES:
                raise ValueError(f"cannot resize a {tuple(cam.shape)} map to {tuple(x.shape)}")
            mode = _MODES[len(size)]
            cam = F.interpolate(cam[:, None], size=size, mode=mode, align_corners=False)[:, 0]
        cams[name] = cam
    return cams


def mass_inside(cam: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The share of each map's mass that falls inside ``mask``: sum(cam * mask) / sum(cam).

    ``cam`` and ``mask`` have the same shape ``(B, *S)`` (resize the map first); a map that
    is zero everywhere scores 0. A map spread evenly scores the mask's area share, so the
    ratio of the two says how much more the map concentrates on the mask than chance.
    """
    if cam.shape != mask.shape:
        raise ValueError(
            f"cam {tuple(cam.shape)} and mask {tuple(mask.shape)} must have the same shape; "
            "pass resize=True to grad_cam for input-sized maps"
        )
    total = cam.flatten(1).sum(dim=1)
    inside = (cam * mask.to(cam.dtype)).flatten(1).sum(dim=1)
    return torch.where(total > 0, inside / total.clamp_min(1e-30), torch.zeros_like(total))
