"""reslib.diagnostics.readout: the final head applied to intermediate blocks."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from reslib.diagnostics import intermediate_readout
from reslib.layers import ResidualBlock, named_blocks


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(ResidualBlock(nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6))) for _ in range(3))
        )
        self.head = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


def test_readout_applies_the_head_to_each_blocks_output_and_restores_the_model() -> None:
    torch.manual_seed(0)
    model = Net().train()
    state = copy.deepcopy(model.state_dict())
    x = torch.randn(10, 6)
    logits = intermediate_readout(model, x, named_blocks(model), model.head)
    assert list(logits) == ["blocks.0", "blocks.1", "blocks.2"]
    model.eval()
    with torch.no_grad():
        assert torch.equal(logits["blocks.2"], model(x))
        assert torch.allclose(logits["blocks.0"], model.head(model.blocks[0](x)))
    model.train()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_readout_rejects_foreign_heads_and_unreadable_outputs() -> None:
    model = Net()
    x = torch.randn(4, 6)
    with pytest.raises(ValueError, match="own classifier"):
        intermediate_readout(model, x, named_blocks(model), nn.Linear(6, 4))
    with pytest.raises(ValueError, match="not part of the model"):
        intermediate_readout(model, x, [("stranger", nn.Linear(6, 6))], model.head)
    with pytest.raises(ValueError, match="cannot read the output"):
        intermediate_readout(model, x, [("head", model.head)], model.head)  # (B, 4) into 6
