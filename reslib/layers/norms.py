"""The one table of normalisations, one meaning per name, for channels-first tensors.

* ``"batch"`` - BatchNorm (Ioffe & Szegedy 2015, arXiv 1502.03167): each channel over the batch
  and the positions, so a sample's output depends on its batch companions.
* ``"group"`` - GroupNorm (Wu & He 2018, arXiv 1803.08494): each sample on its own, over groups
  of channels (:func:`group_count`) and all positions.
* ``"layer"`` - each sample on its own over *all* its channels and positions: GroupNorm with one
  group, which is how Wu & He define LayerNorm for conv nets. On a feature vector ``(B, F)`` it
  is exactly ``nn.LayerNorm(F)``. (A Transformer normalises each token over its features: that
  is ``nn.LayerNorm(d_model)`` on channels-last ``(B, T, d)`` tensors, used by that family.)
* ``"none"`` - the identity.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from reslib.layers.checks import check_choice, check_int
from reslib.layers.dims import BATCH_NORM

Norm = Literal["batch", "group", "layer", "none"]
NORMS: tuple[str, ...] = ("batch", "group", "layer", "none")


def group_count(channels: int) -> int:
    """GroupNorm's groups for ``channels``: the largest divisor <= min(32, channels // 2), so a
    group holds at least two channels and there are at most Wu & He's 32."""
    for groups in range(min(32, max(1, channels // 2)), 0, -1):
        if channels % groups == 0:
            return groups
    return 1


def make_norm(name: str, channels: int, dim: int = 2) -> nn.Module:
    """The normalisation ``name`` (one of :data:`NORMS`) for ``channels`` channels.

    Args:
        name: ``"batch" | "group" | "layer" | "none"``.
        channels: channels (or features, for ``dim=0``).
        dim: spatial dimensions of the input: 0 ``(B, F)``, 1 ``(B, C, L)``, 2 ``(B, C, H, W)``.
    """
    check_choice("norm", name, NORMS)
    check_int("channels", channels)
    check_choice("dim", dim, BATCH_NORM)
    if name == "batch":
        return BATCH_NORM[dim](channels)
    if name == "group":
        return nn.GroupNorm(group_count(channels), channels)
    if name == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()
