"""Stochastic depth: Huang et al. 2016, "Deep Networks with Stochastic Depth" (arXiv
1603.09382), x_{l+1} = x_l + b_l F(x_l) with b_l ~ Bernoulli(1 - p_l) during training."""

from __future__ import annotations

import torch
from torch import nn

from reslib.layers.checks import check_float


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
