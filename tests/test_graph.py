"""Residual GCNs and the community-graph task: the normalised adjacency's properties, one layer
equals its equation, the plain twin's features over-smooth at depth while the residual net's
do not, the task's statistics, determinism and clear errors."""

from __future__ import annotations

import pytest
import torch

from reslib import graphs
from reslib.layers import Zero, named_blocks
from reslib.models import graph
from reslib.models.base import count_parameters


def _ring(n: int = 6) -> torch.Tensor:
    a = torch.zeros(n, n)
    for i in range(n):
        a[i, (i + 1) % n] = a[(i + 1) % n, i] = 1.0
    return a


def test_normalized_adjacency_is_symmetric_with_eigenvalue_one() -> None:
    task = graphs.community_graph(60, 3, p_in=0.2, p_out=0.02, train_per_class=2, seed=1)
    a_hat = graph.normalized_adjacency(task.adjacency)
    torch.testing.assert_close(a_hat, a_hat.T)
    eig = torch.linalg.eigvalsh(a_hat.double())
    assert eig.max().item() == pytest.approx(1.0, abs=1e-6) and eig.min().item() > -1.0
    # a ring: every node has degree 2, so A-hat = (A + I) / 3
    torch.testing.assert_close(graph.normalized_adjacency(_ring()), (_ring() + torch.eye(6)) / 3)


def test_one_block_is_its_equation() -> None:
    torch.manual_seed(0)
    model = graph.graph_net(_ring(), 5, 2, width=4, depth=1)
    block = model.blocks[0]
    h = torch.randn(6, 4)
    conv = block.residual.conv
    a_hat = (_ring() + torch.eye(6)) / 3
    expected = h + torch.relu(a_hat @ (h @ conv.linear.weight.T + conv.linear.bias))
    torch.testing.assert_close(block(h), expected)


def test_dirichlet_energy_is_zero_on_the_fixed_direction_and_positive_otherwise() -> None:
    a = graphs.community_graph(40, 2, p_in=0.3, p_out=0.05, train_per_class=2).adjacency
    a_hat = graph.normalized_adjacency(a)
    smooth = (a.sum(1) + 1).sqrt()[:, None] * torch.ones(1, 3)  # A-hat's fixed point
    assert graph.dirichlet_energy(smooth, a_hat).item() == pytest.approx(0.0, abs=1e-5)
    assert graph.dirichlet_energy(torch.randn(40, 3), a_hat).item() > 0.3


def test_the_plain_twin_over_smooths_and_the_residual_net_does_not() -> None:
    task = graphs.community_graph(90, 3, p_in=0.15, p_out=0.02, seed=0)
    a_hat = graph.normalized_adjacency(task.adjacency)
    energies = {}
    for skip in ("identity", "none"):
        torch.manual_seed(0)
        model = graph.graph_net(task.adjacency, 16, 3, width=16, depth=32, skip=skip)
        with torch.no_grad():
            h = model.blocks(model.stem(task.features))
        energies[skip] = graph.dirichlet_energy(h, a_hat).item()
    # both smooth at initialisation (the branches are as large as the stream), but the plain
    # twin's nodes end up numerically on one direction and the skip keeps 10x more spread
    assert energies["none"] < 1e-5 and energies["identity"] > 10 * energies["none"]


def test_plain_twin_has_the_same_parameters_and_only_zero_shortcuts() -> None:
    twin = graph.graph_net(_ring(), 5, 2, width=4, depth=3, skip="none")
    assert all(isinstance(b.shortcut, Zero) for _, b in named_blocks(twin))
    parent = graph.graph_net(_ring(), 5, 2, width=4, depth=3)
    assert count_parameters(twin) == count_parameters(parent)


def test_community_graph_statistics_and_determinism() -> None:
    task = graphs.community_graph(300, 3, p_in=0.05, p_out=0.005, seed=3)
    again = graphs.community_graph(300, 3, p_in=0.05, p_out=0.005, seed=3)
    assert torch.equal(task.adjacency, again.adjacency)
    assert torch.equal(task.features, again.features)
    assert torch.equal(task.adjacency, task.adjacency.T) and task.adjacency.diagonal().sum() == 0
    assert int(task.train_mask.sum()) == 30 and not bool((task.train_mask & task.test_mask).any())
    assert task.homophily > 0.75  # p_in / (p_in + 2 p_out) = 0.83 expected
    assert 3 < task.mean_degree < 8  # 99 * 0.05 + 200 * 0.005 = 5.95 expected


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: graph.normalized_adjacency(torch.ones(3, 4)), r"must be \(N, N\)"),
        (lambda: graph.normalized_adjacency(torch.triu(torch.ones(3, 3))), "symmetric"),
        (lambda: graph.graph_net(_ring(), 5, 2, skip="dense"), "unknown skip"),
        (lambda: graph.graph_net(_ring(), 5, 2, norm="group"), "unknown norm"),
        (lambda: graph.graph_net(_ring(), 5, 2)(torch.randn(5, 5)), r"shape \(6, 5\)"),
        (lambda: graphs.community_graph(10, 3, train_per_class=5), "cannot hold"),
        (lambda: graphs.community_graph(p_in=1.5), "p_in must be"),
    ],
)
def test_bad_arguments_raise(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
