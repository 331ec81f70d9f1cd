"""reslib.diagnostics.gradcam: Grad-CAM (Selvaraju et al. 2017, arXiv 1610.02391) at any block,
checked against an independent computation and against CAM, and leaving the model as it was."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslib.diagnostics import grad_cam, mass_inside
from reslib.layers import ResidualBlock, named_blocks
from reslib.models.resnet import cifar_resnet


class Tiny(nn.Module):
    """stem conv -> one residual block -> global average pool -> linear."""

    def __init__(self, dim: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if dim == 2 else nn.Conv1d
        norm = nn.BatchNorm2d if dim == 2 else nn.BatchNorm1d
        self.stem = nn.Sequential(conv(1, 4, 3, padding=1), norm(4), nn.ReLU())
        branch = nn.Sequential(
            conv(4, 4, 3, padding=1), norm(4), nn.ReLU(), conv(4, 4, 3, padding=1)
        )
        self.block = ResidualBlock(branch, post=nn.ReLU())
        self.head = nn.Linear(4, 3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(2).mean(dim=2))


def _tiny(dim: int = 2, seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    model = Tiny(dim)
    model.train()
    with torch.no_grad():  # non-trivial running statistics, so eval mode matters
        for _ in range(3):
            model(torch.randn(8, 1, *([6, 7] if dim == 2 else [9])))
    return model


def _no_hooks_left(model: nn.Module) -> bool:
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return sum(len(getattr(m, kind)) for m in model.modules() for kind in kinds) == 0


def _by_hand(model: Tiny, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Grad-CAM from its definition, without hooks: alpha_k = mean dy^c/dA_k."""
    model.eval()
    a = model.features(x)  # (B, K, *S)
    y = model.head(a.flatten(2).mean(dim=2)).gather(1, target[:, None]).sum()
    (g,) = torch.autograd.grad(y, a)
    alpha = g.flatten(2).mean(dim=2)
    weighted = alpha.view(*alpha.shape, *([1] * (a.ndim - 2))) * a
    return F.relu(weighted.sum(dim=1)).detach()


@pytest.mark.parametrize("dim", [2, 1])
def test_grad_cam_matches_the_definition_and_cam_in_closed_form(dim: int) -> None:
    model = _tiny(dim)
    x = torch.randn(
        5, 1, *([6, 7] if dim == 2 else [9]), generator=torch.Generator().manual_seed(1)
    )
    target = torch.tensor([0, 1, 2, 1, 0])
    cams = grad_cam(model, x, target=target)
    assert list(cams) == ["block"]  # the default: every block of the block protocol
    expected = _by_hand(copy.deepcopy(model), x, target)
    torch.testing.assert_close(cams["block"], expected, rtol=1e-5, atol=1e-6)
    # with global average pooling and one linear layer, dy^c/dA_k = w_ck / |S| everywhere,
    # so Grad-CAM is CAM (Zhou et al. 2016) divided by the number of positions
    model.eval()
    with torch.no_grad():
        a = model.features(x)
        w = model.head.weight[target]  # (B, K)
        cam = F.relu((w.view(*w.shape, *([1] * dim)) * a).sum(dim=1)) / a[0, 0].numel()
    torch.testing.assert_close(cams["block"], cam, rtol=1e-5, atol=1e-6)
    assert cams["block"].shape == (5, *x.shape[2:]) and (cams["block"] >= 0).all()


@pytest.mark.parametrize("training", [True, False])
def test_grad_cam_restores_the_model(training: bool) -> None:
    model = cifar_resnet(8, width=4, in_channels=1, num_classes=3)
    model.train(training)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5) if p.ndim > 1 else None
    before = copy.deepcopy(model.state_dict())
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    modes = {n: m.training for n, m in model.named_modules()}
    cams = grad_cam(model, torch.randn(4, 1, 16, 16), resize=True)
    assert list(cams) == [name for name, _ in named_blocks(model)]
    assert all(c.shape == (4, 16, 16) for c in cams.values())
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    for n, p in model.named_parameters():
        assert (p.grad is None) if grads[n] is None else torch.equal(p.grad, grads[n])
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert _no_hooks_left(model)


def test_grad_cam_restores_the_model_when_it_fails() -> None:
    model = cifar_resnet(8, width=4, in_channels=1, num_classes=3)
    model.train()
    with pytest.raises(ValueError, match="classes must lie"):
        grad_cam(model, torch.randn(2, 1, 8, 8), target=7)
    assert model.training and _no_hooks_left(model)


def test_grad_cam_picks_named_layers_targets_and_explains_bad_input() -> None:
    model = cifar_resnet(8, width=4, in_channels=1, num_classes=3)
    x = torch.randn(3, 1, 16, 16)
    cams = grad_cam(model, x, layers=["stages.2.0", "stem"], target=2)
    assert list(cams) == ["stages.2.0", "stem"]
    assert cams["stages.2.0"].shape == (3, 4, 4) and cams["stem"].shape == (3, 16, 16)
    # the predicted class is the default target
    model.eval()
    predicted = model(x).argmax(dim=1)
    torch.testing.assert_close(
        grad_cam(model, x, layers=["stages.1.0"])["stages.1.0"],
        grad_cam(model, x, layers=["stages.1.0"], target=predicted)["stages.1.0"],
    )
    with pytest.raises(ValueError, match="no layer named 'nope'.*stages.0.0"):
        grad_cam(model, x, layers=["nope"])
    with pytest.raises(ValueError, match="list of names"):
        grad_cam(model, x, layers="stem")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Grad-CAM needs \(B, K, \*S\)"):
        grad_cam(model, x, layers=["head.flatten"])
    with pytest.raises(ValueError, match="target must be"):
        grad_cam(model, x, target=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="no blocks"):
        grad_cam(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), x)


def test_mass_inside_scores_concentration() -> None:
    cam = torch.zeros(3, 4, 4)
    cam[0, :2, :2] = 1.0  # all inside
    cam[1] = 1.0  # spread evenly: the mask's area share
    mask = torch.zeros(3, 4, 4)
    mask[:, :2, :2] = 1
    share = mass_inside(cam, mask)
    torch.testing.assert_close(share, torch.tensor([1.0, 0.25, 0.0]))  # an empty map scores 0
    with pytest.raises(ValueError, match="same shape"):
        mass_inside(cam, mask[:, :2])
