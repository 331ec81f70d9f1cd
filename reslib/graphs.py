"""A synthetic node-classification task: a contextual stochastic block model, generated offline.

Each of ``num_nodes`` nodes belongs to one of ``num_classes`` communities; two nodes of the same
community are joined with probability ``p_in``, of different ones with ``p_out`` (Holland,
Laskey, Leinhardt 1983, the stochastic block model), and every node carries a noisy feature
vector x_i = mu_(y_i) + noise (Deshpande et al. 2018, arXiv 1807.09596: the *contextual* SBM).
Neither the graph nor the features alone give the labels cleanly: a graph network that averages
a node with its neighbours (mostly of its own class when p_in > p_out) denoises the features.
A few nodes per class are labelled for training; the rest are the test set (transductive, as in
Kipf & Welling 2017, arXiv 1609.02907).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reslib.layers.checks import check_float, check_int


@dataclass(frozen=True)
class GraphTask:
    """One graph with node features and labels.

    Attributes:
        adjacency: ``(N, N)`` symmetric 0/1 float matrix, no self-loops.
        features: ``(N, F)`` float node features.
        labels: ``(N,)`` int64 classes.
        train_mask: ``(N,)`` bool, the labelled nodes.
        test_mask: ``(N,)`` bool, the others.
        num_classes: how many classes.
    """

    adjacency: torch.Tensor
    features: torch.Tensor
    labels: torch.Tensor
    train_mask: torch.Tensor
    test_mask: torch.Tensor
    num_classes: int

    @property
    def homophily(self) -> float:
        """The share of edges whose two nodes have the same label."""
        i, j = self.adjacency.nonzero(as_tuple=True)
        return float((self.labels[i] == self.labels[j]).float().mean()) if i.numel() else 0.0

    @property
    def mean_degree(self) -> float:
        """Edges per node."""
        return float(self.adjacency.sum(dim=1).mean())


def community_graph(
    num_nodes: int = 300,
    num_classes: int = 3,
    *,
    p_in: float = 0.05,
    p_out: float = 0.005,
    feature_dim: int = 16,
    noise: float = 1.0,
    train_per_class: int = 10,
    seed: int = 0,
) -> GraphTask:
    """A contextual stochastic block model (see the module docstring); deterministic for
    ``seed``. Class means are random unit vectors; ``noise`` is the features' standard
    deviation around them; ``train_per_class`` nodes of each class are labelled.

    Raises:
        ValueError: a size or probability out of range, or too few nodes for the labels.
    """
    for what, value in (
        ("num_nodes", num_nodes),
        ("num_classes", num_classes),
        ("feature_dim", feature_dim),
        ("train_per_class", train_per_class),
    ):
        check_int(what, value)
    for what, p in (("p_in", p_in), ("p_out", p_out)):
        check_float(what, p, low=0.0, high=1.0)
    check_float("noise", noise, low=0.0)
    if num_nodes < num_classes * (train_per_class + 1):
        raise ValueError(
            f"{num_nodes} nodes cannot hold {train_per_class} labelled nodes per class and a "
            f"test set for {num_classes} classes"
        )
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_nodes) % num_classes
    labels = labels[torch.randperm(num_nodes, generator=g)]
    same = labels[:, None] == labels[None, :]
    p = torch.where(same, torch.tensor(p_in), torch.tensor(p_out))
    upper = torch.triu(torch.rand(num_nodes, num_nodes, generator=g) < p, diagonal=1)
    adjacency = (upper | upper.T).float()
    means = torch.randn(num_classes, feature_dim, generator=g)
    means = means / means.norm(dim=1, keepdim=True)
    features = means[labels] + noise * torch.randn(num_nodes, feature_dim, generator=g)
    train_mask = torch.zeros(num_nodes, dtype=torch.bool)
    for c in range(num_classes):
        members = (labels == c).nonzero().flatten()
        train_mask[members[:train_per_class]] = True
    return GraphTask(adjacency, features, labels, train_mask, ~train_mask, num_classes)
