"""The block protocol: one shape for every skip connection in the book.

A block joins two paths: the **residual branch** ``self.residual`` (F, the layers that learn)
and the **shortcut** ``self.shortcut`` (h: ``nn.Identity()``, a projection, :class:`Zero` for
the plain twin - never ``None`` plus an ``if``). Where it has them, a block also owns a shared
pre-activation ``self.pre`` (read by both paths) and a post-join part ``self.post``; both are
``nn.Identity()`` otherwise. Three joins cover every family:

========================  ===============================================  ==================
block                     forward                                          families
========================  ===============================================  ==================
:class:`ResidualBlock`    ``post(residual(x) + shortcut(x))``              ResNet (post=ReLU),
                                                                           pre-activation,
                                                                           Pre-LN / Post-LN
                                                                           (post=LayerNorm),
                                                                           ReZero, DeepNorm,
                                                                           U-Net "add"
:class:`GatedBlock`       ``t * residual(x) + (1 - t) * shortcut(x)``      Highway
:class:`ConcatBlock`      ``post(cat([shortcut(x), residual(x)]))``        DenseNet, U-Net
                                                                           "concat"
========================  ===============================================  ==================

(ReZero is ``residual = Sequential(F, LearnedScale(0))``; DeepNorm is ``shortcut = Scale(alpha)``
and ``post = LayerNorm``; a U-Net level's residual is pool -> the next level -> upsample.)

Every block answers the same three questions, which the diagnostics use without knowing the
family:

* :meth:`Block.paths` - the two terms just before the join (for branch vs identity norms);
* :meth:`Block.skip_path` - the block's output with the residual branch removed (a lesion,
  Veit et al. 2016, arXiv 1605.06431);
* :meth:`Block.zero_init_last` - zero the branch's last layer, after which the block computes
  exactly its skip path (the identity, where the shortcut, ``pre`` and ``post`` are).

:func:`named_blocks` finds every block in any model.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from reslib.layers.init import zero_last_layer_


def _identity_if_none(module: nn.Module | None) -> nn.Module:
    return nn.Identity() if module is None else module


class Block(nn.Module):
    """The protocol every skip-connection block follows (see the module docstring).

    Subclasses set ``residual``, ``shortcut``, ``pre`` and ``post`` and write ``forward`` as
    their equation; :meth:`paths` and :meth:`skip_path` say how the two paths meet.
    """

    residual: nn.Module
    shortcut: nn.Module
    pre: nn.Module
    post: nn.Module

    def paths(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(branch, shortcut)``: the two terms as they enter the join, for input ``x``."""
        raise NotImplementedError

    def skip_path(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output for ``x`` with the residual branch F removed."""
        raise NotImplementedError

    def zero_init_last(self) -> None:
        """Zero the last weighted layer of the residual branch, so F(x) = 0 and the block
        computes exactly :meth:`skip_path` (Goyal et al. 2017, arXiv 1706.02677)."""
        zero_last_layer_(self.residual)


class ResidualBlock(Block):
    """He et al. 2016 (arXiv 1512.03385): y = post(F(x) + h(x)), with x = pre(input).

    ``post`` is ReLU in the original ResNet, nothing in the pre-activation unit (He et al.
    2016b, arXiv 1603.05027) and LayerNorm in a Post-LN Transformer; ``pre`` is a BN -> ReLU
    that both paths read when the shortcut has weights.
    """

    def __init__(
        self,
        residual: nn.Module,
        shortcut: nn.Module | None = None,
        *,
        pre: nn.Module | None = None,
        post: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.pre = _identity_if_none(pre)
        self.residual = residual
        self.shortcut = _identity_if_none(shortcut)
        self.post = _identity_if_none(post)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)  # the shared pre-activation (nn.Identity when there is none)
        return self.post(self.residual(x) + self.shortcut(x))

    def paths(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pre(x)
        return self.residual(x), self.shortcut(x)

    def skip_path(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.shortcut(self.pre(x)))


class GatedBlock(Block):
    """Srivastava et al. 2015 (arXiv 1505.00387): y = T(x) H(x) + (1 - T(x)) x.

    ``gate`` computes the transform gate T (values in (0, 1)); the carry gate is 1 - T, and the
    residual path H is ``residual``. ``shortcut`` carries x (the identity, or a projection where
    the shape changes).
    """

    def __init__(
        self, residual: nn.Module, gate: nn.Module, shortcut: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.pre, self.post = nn.Identity(), nn.Identity()
        self.residual = residual
        self.gate = gate
        self.shortcut = _identity_if_none(shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.gate(x)
        return t * self.residual(x) + (1 - t) * self.shortcut(x)

    def paths(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.gate(x)
        return t * self.residual(x), (1 - t) * self.shortcut(x)

    def skip_path(self, x: torch.Tensor) -> torch.Tensor:
        return (1 - self.gate(x)) * self.shortcut(x)


class ConcatBlock(Block):
    """Huang et al. 2017 (arXiv 1608.06993): y = post([h(x), F(x)]), joined along channels.

    A dense layer is ``post = nn.Identity()`` and ``shortcut = nn.Identity()``; a U-Net level
    concatenates the encoder's features (the shortcut) with the upsampled decoder (the residual)
    and ``post`` is the decoder's convolutions.
    """

    def __init__(
        self,
        residual: nn.Module,
        shortcut: nn.Module | None = None,
        *,
        post: nn.Module | None = None,
        dim: int = 1,
    ) -> None:
        super().__init__()
        self.pre = nn.Identity()
        self.residual = residual
        self.shortcut = _identity_if_none(shortcut)
        self.post = _identity_if_none(post)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(torch.cat([self.shortcut(x), self.residual(x)], dim=self.dim))

    def paths(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.residual(x), self.shortcut(x)

    def skip_path(self, x: torch.Tensor) -> torch.Tensor:
        # the branch's channels are still there, as zeros: the next layer sees the same shape
        f = self.residual(x)
        return self.post(torch.cat([self.shortcut(x), torch.zeros_like(f)], dim=self.dim))


class LearnedScale(nn.Module):
    """y = alpha x with a learned scalar alpha: ReZero's gate on a residual branch
    (Bachlechner et al. 2020, arXiv 2003.04887), x + alpha F(x) with alpha = 0 at init."""

    def __init__(self, initial: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(float(initial)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x


def named_blocks(model: nn.Module) -> list[tuple[str, Block]]:
    """``(name, block)`` for every :class:`Block` in ``model``, input to output (definition
    order); nested blocks (a U-Net level inside another) are all listed."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, Block)]


def blocks(model: nn.Module) -> Iterator[Block]:
    """Every :class:`Block` in ``model``, in definition order."""
    for _, block in named_blocks(model):
        yield block
