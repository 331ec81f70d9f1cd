"""reslib.diagnostics.paths: path counts, deleting and swapping blocks, path gradients."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from reslib.diagnostics import bypass, lesion, path_counts, path_gradients, swapped
from reslib.layers import ResidualBlock, Zero, named_blocks


def linear_net(n: int = 4, skip: bool = True, d: int = 5) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        *(ResidualBlock(nn.Linear(d, d), None if skip else Zero()) for _ in range(n))
    )


def untouched(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    same = all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    no_hooks = not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    return same and no_hooks


def test_path_counts_are_binomial_and_sum_to_two_to_the_n() -> None:
    assert path_counts(0) == [1]
    assert path_counts(4) == [1, 4, 6, 4, 1]
    assert sum(path_counts(15)) == 2**15
    with pytest.raises(ValueError, match="n must be an int"):
        path_counts(-1)


def test_bypass_makes_blocks_the_identity_and_restores_the_model() -> None:
    model = linear_net(skip=False)
    x = torch.randn(3, 5)
    state = copy.deepcopy(model.state_dict())
    out = model(x)
    with bypass(model, list(model)):
        assert torch.equal(model(x), x)
    with bypass(model, [model[0]]):
        assert torch.allclose(model(x), model[3](model[2](model[1](x))))
    assert torch.equal(model(x), out) and untouched(model, state)


def test_bypass_equals_lesion_for_identity_shortcuts_without_post() -> None:
    model = linear_net()
    x = torch.randn(3, 5)
    with bypass(model, [model[1], model[2]]):
        a = model(x)
    with lesion(model, [model[1], model[2]]):
        b = model(x)
    assert torch.equal(a, b)


def test_bypass_rejects_strangers_and_shape_changes() -> None:
    model = linear_net()
    with pytest.raises(ValueError, match="not part of the model"):
        with bypass(model, [linear_net()[0]]):
            pass
    with pytest.raises(ValueError, match="takes blocks"):
        with bypass(model, [nn.Linear(5, 5)]):
            pass
    wide = nn.Sequential(ResidualBlock(nn.Linear(5, 7), nn.Linear(5, 7)))
    with pytest.raises(ValueError, match="cannot be deleted"):
        with bypass(wide, [wide[0]]):
            wide(torch.randn(2, 5))
    assert not wide[0]._forward_hooks


def test_swapped_exchanges_blocks_and_puts_them_back() -> None:
    model = linear_net()
    x = torch.randn(3, 5)
    blocks = list(model)
    state = copy.deepcopy(model.state_dict())
    with swapped(model, [("0", "2")]):
        assert model[0] is blocks[2] and model[2] is blocks[0]
        assert torch.allclose(model(x), blocks[3](blocks[0](blocks[1](blocks[2](x)))))
    assert list(model) == blocks and untouched(model, state)
    with pytest.raises(ValueError, match="not a block"):
        with swapped(model, [("0", "9")]):
            pass
    with pytest.raises(RuntimeError):
        with swapped(model, [("1", "3")]):
            raise RuntimeError("inside")
    assert list(model) == blocks


def test_path_gradients_of_a_linear_net_match_the_path_products() -> None:
    # one block: length 0 is the identity path (gradient dL/dx), length 1 the path through W
    torch.manual_seed(0)
    model = nn.Sequential(ResidualBlock(nn.Linear(3, 3, bias=False)))
    x, y = torch.randn(4, 3), torch.randint(0, 3, (4,))
    w = model[0].residual.weight.detach()

    def loss_fn(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(out, target)

    out = model(x).detach().requires_grad_(True)
    (g_out,) = torch.autograd.grad(loss_fn(out, y), out)
    assert math.isclose(
        path_gradients(model, x, y, 0, samples=1)[0], g_out.norm().item(), rel_tol=1e-5
    )
    assert math.isclose(
        path_gradients(model, x, y, 1, samples=1)[0], (g_out @ w).norm().item(), rel_tol=1e-5
    )


def test_path_gradients_leave_the_model_and_grads_untouched() -> None:
    model = nn.Sequential(
        ResidualBlock(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))), nn.Linear(4, 3)
    )
    model.train()
    state = copy.deepcopy(model.state_dict())
    g = torch.Generator().manual_seed(0)
    norms = path_gradients(
        model, torch.randn(8, 4), torch.randint(0, 3, (8,)), 1, samples=3, generator=g
    )
    assert len(norms) == 3 and all(v > 0 for v in norms)
    assert untouched(model, state) and model.training
    assert all(p.grad is None for p in model.parameters())


def test_path_gradients_reject_bad_input() -> None:
    model = linear_net(n=2)
    x, y = torch.randn(2, 5), torch.randint(0, 5, (2,))
    with pytest.raises(ValueError, match="length 0 .. 2"):
        path_gradients(model, x, y, 3)
    with pytest.raises(ValueError, match="ResidualBlocks"):
        path_gradients(nn.Linear(5, 5), x, y, 0)
    assert len(named_blocks(model)) == 2
