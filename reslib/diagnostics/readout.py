"""Read the classifier off intermediate blocks: does each block refine the prediction?

Jastrzebski, Arpit, Ballas, Verma, Che, Bengio 2018, "Residual Connections Encourage Iterative
Inference" (arXiv 1710.04773), Sec. 4: apply the network's final classifier ``head`` to the
output ``h_l`` of every block ``l`` of the last stage, ``p_l = softmax(head(h_l))``. In a
residual net each block moves ``h_l`` a small step, ``h_{l+1} = h_l + F_l(h_l)``, so ``p_l``
improves block by block; a plain net's intermediate features mean nothing to the final head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reslib.diagnostics.hooks import capture_outputs, preserved_state


@torch.no_grad()
def intermediate_readout(
    model: nn.Module,
    x: torch.Tensor,
    blocks: Sequence[tuple[str, nn.Module]],
    head: nn.Module,
) -> dict[str, torch.Tensor]:
    """``head(h_l)`` for the output ``h_l`` of each of ``blocks``, for the batch ``x``.

    Args:
        model: the network, run once on ``x`` in eval mode (its state is restored).
        x: a batch of inputs.
        blocks: ``(name, module)`` pairs, e.g. the blocks of the last stage from
            :func:`reslib.layers.named_blocks`; each output must have the shape ``head`` reads.
        head: the model's final classifier (a part of ``model``).

    Returns:
        ``name -> logits``, in the order of ``blocks``.

    Raises:
        ValueError: a block or the head is not part of the model, or the head cannot read a
            block's output.
    """
    own = {id(m) for m in model.modules()}
    if id(head) not in own:
        raise ValueError("the head must be the model's own classifier (a module of the model)")
    with preserved_state(model), capture_outputs(model, blocks) as outputs:
        model.eval()
        model(x)
        logits = {}
        for name, _ in blocks:
            try:
                logits[name] = head(outputs[name])
            except RuntimeError as err:
                raise ValueError(
                    f"the head cannot read the output of block {name} "
                    f"(shape {tuple(outputs[name].shape)}): {err}"
                ) from err
    return logits
