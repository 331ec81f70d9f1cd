"""Stochastic depth: Huang et al. 2016, "Deep Networks with Stochastic Depth" (arXiv
1603.09382), x_{l+1} = x_l + b_l F(x_l) with b_l ~ Bernoulli(1 - p_l) during training.

Two ways to draw b_l: :class:`DropPath` draws one per *sample* and multiplies the branch's
output (it regularises like the paper, but every branch is still computed); :class:`DropBranch`
draws one per *mini-batch*, as the paper does, and skips computing a dropped branch, which is
where the paper's training-time saving comes from. :func:`linear_decay` gives the paper's
drop probabilities p_l = (l / L) p_L.
"""

from __future__ import annotations

import torch
from torch import nn

from reslib.layers.checks import check_float, check_int


class DropPath(nn.Module):
    """Drop a residual branch for whole samples with probability ``p`` while training.

    Put it at the end of a branch F, so a dropped sample's block is its shortcut alone. The
    survivors are scaled by 1 / (1 - p) during training (the "inverted" form), so evaluation
    uses F unchanged; the paper instead scales by (1 - p) at test time - the same expectation.
    Shapes: any ``(B, ...)``, unchanged.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = check_float("p", p, low=0.0, high=1.0, high_open=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        # one draw per sample, broadcast over its other dimensions: (B, 1, 1, ...)
        mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device, dtype=x.dtype)
        return x * mask.bernoulli_(keep) / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def linear_decay(num_blocks: int, last: float = 0.5) -> list[float]:
    """Huang et al. 2016 (arXiv 1603.09382), Eq. 4: the drop probability of block l = 1..L,
    p_l = (l / L) p_L, so the survival probability falls linearly from 1 (the input) to
    1 - p_L (the last block; the paper's p_L = 0.5). Block 1's drop probability is p_L / L.

    Raises:
        ValueError: ``num_blocks < 1`` or ``last`` outside [0, 1).
    """
    check_int("num_blocks", num_blocks)
    check_float("last", last, low=0.0, high=1.0, high_open=True)
    return [last * (i + 1) / num_blocks for i in range(num_blocks)]


class DropBranch(nn.Module):
    """Huang et al. 2016 (arXiv 1603.09382): b F(x) with one b ~ Bernoulli(1 - p) for the
    whole mini-batch, and F not computed at all when b = 0.

    Wrap a residual branch in it: in training a dropped branch returns a 0-dim zero, which
    broadcasts in the block's join (``residual(x) + shortcut(x)``), so the block is its
    shortcut and the branch's layers never run, forward or backward. A kept branch is scaled by
    1 / (1 - p) (as :class:`DropPath`), so evaluation computes F unchanged. Draws use torch's
    global generator (seeded runs repeat; ``torch.utils.checkpoint`` replays them).
    """

    def __init__(self, branch: nn.Module, p: float = 0.0) -> None:
        super().__init__()
        self.branch = branch
        self.p = check_float("p", p, low=0.0, high=1.0, high_open=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return self.branch(x)
        if torch.rand(()).item() < self.p:  # one draw per mini-batch, on the CPU generator
            return x.new_zeros(())
        return self.branch(x) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
