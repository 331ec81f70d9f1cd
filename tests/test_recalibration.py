"""reslib.diagnostics.recalibration: test-time BatchNorm statistics (Schneider et al. 2020,
arXiv 2006.16971), in place or inside a context that restores the model."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from reslib.diagnostics import batch_norms, recalibrate_bn, recalibrated
from reslib.models.resnet import cifar_resnet


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(3 * 8 * 8, 4),
        nn.BatchNorm1d(4),
    )


def _batches(shift: float = 2.0, n: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [shift + 3 * torch.randn(16, 2, 8, 8, generator=g) for _ in range(n)]


def test_recalibration_estimates_the_mean_of_per_batch_statistics() -> None:
    model = _net().eval()
    batches = _batches()
    used = recalibrate_bn(model, [(b, torch.zeros(16)) for b in batches])  # (x, y) pairs work
    assert used == 3
    with torch.no_grad():
        h = [model[0](b) for b in batches]
    bn = model[1]
    torch.testing.assert_close(bn.running_mean, torch.stack([t.mean((0, 2, 3)) for t in h]).mean(0))
    expected_var = torch.stack([t.var((0, 2, 3), unbiased=True) for t in h]).mean(0)
    torch.testing.assert_close(bn.running_var, expected_var)
    assert not model.training and all(not m.training for m in model.modules())
    assert bn.momentum == 0.1  # restored


def test_source_weight_mixes_old_and_new_statistics() -> None:
    base = _net().eval()
    old = {n: (m.running_mean.clone(), m.running_var.clone()) for n, m in batch_norms(base)}
    new_model, mixed = copy.deepcopy(base), copy.deepcopy(base)
    recalibrate_bn(new_model, _batches())
    recalibrate_bn(mixed, _batches(), source_weight=0.25)
    for (name, m), (_, n) in zip(batch_norms(mixed), batch_norms(new_model), strict=True):
        torch.testing.assert_close(m.running_mean, 0.25 * old[name][0] + 0.75 * n.running_mean)
        torch.testing.assert_close(m.running_var, 0.25 * old[name][1] + 0.75 * n.running_var)
    kept = copy.deepcopy(base)
    recalibrate_bn(kept, _batches(), source_weight=1.0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(kept.state_dict().values(), base.state_dict().values(), strict=True)
    )


def test_the_context_restores_the_model_and_changes_predictions_inside() -> None:
    model = cifar_resnet(8, width=4, in_channels=2, num_classes=3)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 2, 8, 8))  # some training statistics
    model.eval()
    before = copy.deepcopy(model.state_dict())
    x = _batches(shift=5.0)[0]
    with torch.no_grad():
        out_before = model(x)
    with recalibrated(model, _batches(shift=5.0)):
        assert not model.training
        with torch.no_grad():
            assert not torch.allclose(model(x), out_before)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training
    model.train()
    with recalibrated(model, _batches()):
        pass
    assert model.training


def test_bad_input_is_explained_and_leaves_the_model_alone() -> None:
    model = _net()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="empty"):
        recalibrate_bn(model, [])
    with pytest.raises(ValueError, match="source_weight"):
        recalibrate_bn(model, _batches(), source_weight=1.5)
    with pytest.raises(ValueError, match="tensors or"):
        recalibrate_bn(model, ["not a tensor"])
    with pytest.raises(ValueError, match="no BatchNorm"):
        recalibrate_bn(nn.Linear(2, 2), _batches())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training and model[1].momentum == 0.1
