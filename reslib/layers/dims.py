"""Layer classes by number of spatial dimensions, so one builder serves sequences and images.

``dim=0`` is a feature vector ``(B, F)``, ``dim=1`` a sequence ``(B, C, L)``, ``dim=2`` an image
``(B, C, H, W)``; every tensor is channels-first.
"""

from __future__ import annotations

from torch import nn

from reslib.layers.checks import check_choice

ConvLayer = type[nn.Conv1d] | type[nn.Conv2d]

CONV: dict[int, ConvLayer] = {1: nn.Conv1d, 2: nn.Conv2d}
BATCH_NORM: dict[int, type[nn.BatchNorm1d] | type[nn.BatchNorm2d]] = {
    0: nn.BatchNorm1d,
    1: nn.BatchNorm1d,
    2: nn.BatchNorm2d,
}
AVG_POOL: dict[int, type[nn.AvgPool1d] | type[nn.AvgPool2d]] = {1: nn.AvgPool1d, 2: nn.AvgPool2d}
GLOBAL_POOL: dict[int, type[nn.AdaptiveAvgPool1d] | type[nn.AdaptiveAvgPool2d]] = {
    1: nn.AdaptiveAvgPool1d,
    2: nn.AdaptiveAvgPool2d,
}
SPATIAL_DIMS = tuple(CONV)


def conv_layer(dim: int) -> ConvLayer:
    """``nn.Conv1d`` or ``nn.Conv2d``."""
    return CONV[check_choice("dim", dim, CONV)]


def global_pool(dim: int) -> nn.Module:
    """Global average pooling to one position: ``(B, C, *S) -> (B, C, 1...)``."""
    return GLOBAL_POOL[check_choice("dim", dim, GLOBAL_POOL)](1)
