"""Block-level tools, for any model whose blocks follow the protocol of
:mod:`reslib.layers.blocks` - whatever the family.

* :func:`branch_norms` - ``||F(x)|| / ||h(x)||`` per block: is a block used, or bypassed?
* :func:`lesion` - remove blocks' residual branches at test time (Veit, Wilber, Belongie 2016,
  "Residual Networks Behave Like Ensembles of Relatively Shallow Networks", arXiv 1605.06431).
* :func:`block_gradients` - ``||dLoss/dx_l||`` at every block's output.
* :func:`skip_retention` - what a chain of skip paths keeps of its input (He et al. 2016b,
  arXiv 1603.05027, Sec. 3: anything on the shortcut multiplies once per block).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reslib.diagnostics.gradients import LossFn, gradient_norms
from reslib.diagnostics.hooks import capture_inputs, hooked, preserved_state
from reslib.layers.blocks import Block, named_blocks


def _blocks_of(model: nn.Module) -> list[tuple[str, Block]]:
    found = named_blocks(model)
    if not found:
        raise ValueError(
            f"{type(model).__name__} has no blocks: block tools need modules that follow the "
            "block protocol of reslib.layers.blocks"
        )
    return found


@torch.no_grad()
def branch_norms(model: nn.Module, x: torch.Tensor, *, eval_mode: bool = True) -> dict[str, float]:
    """``||F(x_l)|| / ||h(x_l)||`` for every block, on the inputs the blocks see for ``x``.

    The two terms are what the block joins (:meth:`~reslib.layers.Block.paths`): a ratio near
    0 means the block passes its input on almost unchanged; a plain twin's ``Zero`` shortcut
    gives ``inf`` (nothing but the branch). Measured in eval mode by default
    (BatchNorm's running statistics); the model's state is restored afterwards.
    """
    found = _blocks_of(model)
    with preserved_state(model), capture_inputs(model, found) as inputs:
        if eval_mode:
            model.eval()
        model(x)
        ratios = {}
        for name, block in found:
            branch, shortcut = block.paths(inputs[name])
            ratios[name] = (branch.norm() / shortcut.norm()).item()
    return ratios


def own_blocks(model: nn.Module, blocks: Iterable[nn.Module], tool: str) -> list[nn.Module]:
    """``blocks`` as a list, after checking each is a :class:`~reslib.layers.Block` of ``model``
    (``tool`` names the caller in the error)."""
    chosen = list(blocks)
    own = {id(m) for m in model.modules()}
    for block in chosen:
        if not isinstance(block, Block):
            raise ValueError(
                f"{tool}() takes blocks (reslib.layers.Block), got {type(block).__name__}"
            )
        if id(block) not in own:
            raise ValueError(f"a {type(block).__name__} to {tool} is not part of the model")
    return chosen


@contextmanager
def lesion(model: nn.Module, blocks: Iterable[Block]) -> Iterator[nn.Module]:
    """Inside the context, each of ``blocks`` computes only its skip path: its residual branch
    is removed, as in Veit et al. 2016 (arXiv 1605.06431). The model is restored on exit.

    >>> with lesion(model, [list(reslib.layers.blocks(model))[3]]):
    ...     loss, acc = reslib.evaluate(model, test_loader)
    """
    chosen = own_blocks(model, blocks, "lesion")

    def skip_only(_name: str, block: nn.Module, inputs: tuple[Any, ...], _out: Any) -> Any:
        return block.skip_path(inputs[0])  # type: ignore[operator]

    with hooked([(str(i), b) for i, b in enumerate(chosen)], skip_only):
        yield model


def block_gradients(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = F.cross_entropy
) -> dict[str, float]:
    """``||dLoss/dx_l||`` at the output of every block for one batch, input to output."""
    return gradient_norms(model, x, y, loss_fn, layers=_blocks_of(model), wrt="output")


@torch.no_grad()
def skip_retention(blocks: Sequence[Block], x: torch.Tensor) -> list[float]:
    """r_k = <h_k, x> / <x, x> for the chain h_k = skip_path_k(... skip_path_1(x)).

    The share of ``x`` that survives ``k`` blocks when only their skip paths are used: 1 for
    identity shortcuts, lambda^k for a shortcut scaled by lambda. ``x`` is the input of the
    first block of ``blocks``; all blocks must keep the shape.
    """
    h, kept = x, []
    for block in blocks:
        h = block.skip_path(h)
        kept.append(((h * x).sum() / (x * x).sum()).item())
    return kept
