"""The unrolled view of a residual network: paths, deletions, re-orderings, path gradients.

Veit, Wilber, Belongie 2016, "Residual Networks Behave Like Ensembles of Relatively Shallow
Networks" (arXiv 1605.06431), Eq. 3-6: unrolling ``x_{i+1} = x_i + F_i(x_i)`` over ``n`` blocks
gives ``2^n`` paths from input to output, one per subset of the blocks whose branch a path goes
through, and ``C(n, k)`` of them have length ``k``.

* :func:`path_counts` - ``C(n, k)`` for ``k = 0 .. n``: the binomial path-length distribution.
* :func:`bypass` - delete blocks outright (``y = x``), the only deletion a plain net allows;
  :func:`reslib.diagnostics.lesion` removes only the residual branch.
* :func:`swapped` - exchange blocks of the same shape, as in Veit et al.'s re-ordering test.
* :func:`path_gradients` - the gradient at the input carried by paths of one length, with the
  paper's sampling method.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reslib.diagnostics.blocks import own_blocks
from reslib.diagnostics.gradients import LossFn
from reslib.diagnostics.hooks import hooked, preserved_state
from reslib.layers.blocks import Block, ResidualBlock, named_blocks
from reslib.layers.checks import check_int


def path_counts(n: int) -> list[int]:
    """``C(n, k)`` for ``k = 0 .. n``: how many of the ``2^n`` paths through ``n`` residual
    blocks pass through exactly ``k`` residual branches (Veit et al. 2016, Eq. 6)."""
    check_int("n", n, minimum=0)
    return [math.comb(n, k) for k in range(n + 1)]


@contextmanager
def bypass(model: nn.Module, blocks: Iterable[Block]) -> Iterator[nn.Module]:
    """Inside the context each of ``blocks`` is deleted: it returns its input, ``y = x``.

    In a residual net whose shortcut is the identity (and whose ``post`` keeps non-negative
    inputs, as ReLU does) this equals :func:`~reslib.diagnostics.lesion`; in a plain net, whose
    skip path is zero, it is the fair comparison: the layer is removed and its neighbours are
    joined. The hooks go away on exit.

    Raises:
        ValueError: an entry is not a block of ``model``, or (during the forward pass) a
            deleted block would change the shape of its input.
    """
    chosen = own_blocks(model, blocks, "bypass")

    def identity(name: str, _block: nn.Module, inputs: tuple[Any, ...], out: Any) -> Any:
        x = inputs[0]
        if isinstance(out, torch.Tensor) and out.shape != x.shape:
            raise ValueError(
                f"block {name} maps {tuple(x.shape)} to {tuple(out.shape)}: a block that changes "
                "the shape cannot be deleted; use lesion() to keep its shortcut"
            )
        return x

    with hooked([(str(i), b) for i, b in enumerate(chosen)], identity):
        yield model


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    *path, leaf = name.split(".")
    parent = model.get_submodule(".".join(path)) if path else model
    return parent, leaf


@contextmanager
def swapped(model: nn.Module, pairs: Sequence[tuple[str, str]]) -> Iterator[nn.Module]:
    """Inside the context the blocks of each ``(name_a, name_b)`` pair trade places.

    Veit et al. (Sec. 4.3) swap random pairs of blocks of one stage at test time: a net that is
    an ensemble of paths degrades smoothly, a chain of dependent layers would not. Names are
    those of :func:`reslib.layers.named_blocks`; pairs are applied in order and undone in
    reverse on exit, so the model is left as it was.

    Raises:
        ValueError: a name is not a block of ``model``.
    """
    known = dict(named_blocks(model))
    for a, b in pairs:
        for name in (a, b):
            if name not in known:
                raise ValueError(f"{name!r} is not a block of the model; blocks: {sorted(known)}")
    done: list[tuple[str, str]] = []

    def exchange(a: str, b: str) -> None:
        (pa, la), (pb, lb) = _parent(model, a), _parent(model, b)
        block_a, block_b = pa.get_submodule(la), pb.get_submodule(lb)
        setattr(pa, la, block_b)
        setattr(pb, lb, block_a)

    try:
        for a, b in pairs:
            exchange(a, b)
            done.append((a, b))
        yield model
    finally:
        for a, b in reversed(done):
            exchange(a, b)


def path_gradients(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    length: int,
    *,
    samples: int = 10,
    loss_fn: LossFn = F.cross_entropy,
    generator: torch.Generator | None = None,
) -> list[float]:
    """``||dLoss/dx||`` at the input carried by paths of ``length`` residual branches.

    Veit et al.'s sampling method (Sec. 5): the forward pass is the whole network's; in the
    backward pass ``length`` blocks, drawn at random, pass the gradient through their residual
    branch only and the others through their shortcut only, so the gradient measured at the
    input is that of one path of this length. One value per sample (one random draw of blocks
    each). Works on :class:`~reslib.layers.ResidualBlock` models, in eval mode (BatchNorm's
    running statistics); the model's state and ``.grad`` are left untouched.

    Raises:
        ValueError: the model has no residual blocks, another kind of block, or ``length`` is
            out of range.
    """
    found = [b for _, b in named_blocks(model)]
    if not found or not all(isinstance(b, ResidualBlock) for b in found):
        raise ValueError("path_gradients() needs a model whose blocks are all ResidualBlocks")
    n = len(found)
    check_int("length", length, minimum=0)
    check_int("samples", samples)
    if length > n:
        raise ValueError(f"a path through {n} blocks has length 0 .. {n}, got {length}")
    through_branch: set[int] = set()

    def one_path(_name: str, block: Any, inputs: tuple[Any, ...], _out: Any) -> Any:
        branch, shortcut = block.paths(inputs[0])
        if id(block) in through_branch:
            return block.post(branch + shortcut.detach())
        return block.post(branch.detach() + shortcut)

    norms = []
    with preserved_state(model), hooked([(str(i), b) for i, b in enumerate(found)], one_path):
        model.eval()
        for _ in range(samples):
            chosen = torch.randperm(n, generator=generator)[:length].tolist()
            through_branch.clear()
            through_branch.update(id(found[i]) for i in chosen)
            inp = x.detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss_fn(model(inp), y), inp)
            norms.append(grad.norm().item())
    return norms
