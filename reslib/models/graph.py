"""Residual graph convolutional networks on a dense, normalised adjacency.

Kipf & Welling 2017, "Semi-Supervised Classification with Graph Convolutional Networks"
(arXiv 1609.02907): a layer mixes every node with its neighbours, H' = act(Â H W), with
Â = D^(-1/2) (A + I) D^(-1/2). Repeating Â smooths the node features towards one direction
(Li, Han, Wu 2018, arXiv 1801.07606: "over-smoothing"), so deep plain GCNs make all nodes look
alike. Li, Müller, Thabet, Ghanem 2019, "DeepGCNs: Can GCNs Go as Deep as CNNs?"
(arXiv 1904.03751) add the ResNet skip, H_(l+1) = F(H_l) + H_l (ResGCN), and train 56 layers.

Every layer here is a :class:`~reslib.layers.ResidualBlock`: ``residual`` is
:class:`GraphConv` -> norm -> activation, ``shortcut`` the identity (``skip="identity"``) or
:class:`~reslib.layers.Zero` (``skip="none"``, the plain GCN with the same weights). The graph
is part of the model (one fixed graph, transductive node classification): a
:class:`Propagation` module holds Â as a buffer, shared by all layers. :func:`dirichlet_energy`
measures how smooth the node features are (0: every node carries the same normalised vector).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
from torch import nn

from reslib.layers import (
    ResidualBlock,
    Zero,
    check_choice,
    check_int,
    init_weights,
    make_activation,
)

GraphSkip = Literal["identity", "none"]
GRAPH_SKIPS: tuple[str, ...] = ("identity", "none")
GRAPH_NORMS: tuple[str, ...] = ("none", "layer", "batch")


def normalized_adjacency(adjacency: torch.Tensor, *, self_loops: bool = True) -> torch.Tensor:
    """Â = D^(-1/2) (A + I) D^(-1/2) for a dense symmetric ``(N, N)`` adjacency A (Kipf &
    Welling's renormalisation; ``self_loops=False`` leaves out the I).

    Raises:
        ValueError: A is not square, not symmetric, or has negative entries.
    """
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"the adjacency must be (N, N), got {tuple(adjacency.shape)}")
    a = adjacency.float()
    if not torch.equal(a, a.T) or bool((a < 0).any()):
        raise ValueError("the adjacency must be symmetric with non-negative entries")
    if self_loops:
        a = a + torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
    degree = a.sum(dim=1)
    inv_sqrt = torch.where(degree > 0, degree.rsqrt(), torch.zeros_like(degree))
    return inv_sqrt[:, None] * a * inv_sqrt[None, :]


def dirichlet_energy(h: torch.Tensor, adjacency_norm: torch.Tensor) -> torch.Tensor:
    """The normalised Dirichlet energy tr(H^T (I - Â) H) / tr(H^T H) of node features
    ``h`` ``(N, F)``: 0 when every node's feature is the same up to the factor sqrt(d_i + 1)
    (the fixed direction of Â), larger the more neighbours differ (Cai & Wang 2020,
    arXiv 2006.13318)."""
    smooth = (h * (adjacency_norm @ h)).sum()
    total = h.square().sum()
    return (total - smooth) / total


class Propagation(nn.Module):
    """H -> Â H for one fixed graph (Â a buffer, not saved in the state dict)."""

    adjacency: torch.Tensor

    def __init__(self, adjacency_norm: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("adjacency", adjacency_norm.detach().clone(), persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.adjacency @ h  # (N, N) @ (N, F) -> (N, F)


class GraphConv(nn.Module):
    """One GCN layer without its activation: H -> Â H W + b (``(N, F_in) -> (N, F_out)``)."""

    def __init__(self, propagate: Propagation, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.propagate = propagate

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.propagate(self.linear(h))


def _norm(name: str, width: int) -> nn.Module:
    return {"none": nn.Identity, "layer": nn.LayerNorm, "batch": nn.BatchNorm1d}[name](width)


class GraphNet(nn.Module):
    """input linear -> ``depth`` residual GCN blocks -> linear classifier, per node.

    Shapes: ``(N, in_features) -> (N, num_classes)`` for the N nodes of the model's graph.
    Build it with :func:`graph_net`.
    """

    def __init__(
        self,
        adjacency: torch.Tensor,
        in_features: int,
        num_classes: int,
        *,
        width: int,
        depth: int,
        skip: GraphSkip,
        norm: str,
        activation: str,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.propagate = Propagation(normalized_adjacency(adjacency))
        self.stem = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(
            *(
                ResidualBlock(
                    nn.Sequential(
                        OrderedDict(
                            conv=GraphConv(self.propagate, width, width),
                            norm=_norm(norm, width),
                            act=make_activation(activation),
                        )
                    ),
                    nn.Identity() if skip == "identity" else Zero(),
                )
                for _ in range(depth)
            )
        )
        self.head = nn.Linear(width, num_classes)
        init_weights(self, "kaiming")

    @property
    def num_nodes(self) -> int:
        """N, the nodes of the graph the model was built on."""
        return self.propagate.adjacency.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape != (self.num_nodes, self.in_features):
            raise ValueError(
                f"GraphNet expects node features of shape ({self.num_nodes}, "
                f"{self.in_features}), got {tuple(x.shape)}"
            )
        return self.head(self.blocks(self.stem(x)))


def graph_net(
    adjacency: torch.Tensor,
    in_features: int,
    num_classes: int,
    *,
    width: int = 32,
    depth: int = 4,
    skip: GraphSkip = "identity",
    norm: str = "none",
    activation: str = "relu",
) -> GraphNet:
    """A residual GCN (ResGCN, Li et al. 2019, arXiv 1904.03751): H_(l+1) = H_l + act(norm(Â
    H_l W_l)) on the graph of the dense ``(N, N)`` ``adjacency``; ``skip="none"`` is the plain
    GCN (Kipf & Welling 2017) with the same weights. ``norm`` is ``"none"``, ``"layer"`` or
    ``"batch"`` (BatchNorm over the nodes).

    Raises:
        ValueError: an unknown name, a bad size or adjacency.
    """
    check_choice("skip", skip, GRAPH_SKIPS)
    check_choice("norm", norm, GRAPH_NORMS)
    for what, value in (
        ("in_features", in_features),
        ("num_classes", num_classes),
        ("width", width),
        ("depth", depth),
    ):
        check_int(what, value)
    return GraphNet(
        adjacency,
        in_features,
        num_classes,
        width=width,
        depth=depth,
        skip=skip,
        norm=norm,
        activation=activation,
    )
