"""reslib.diagnostics: gradient norms, recorded gradients and activation statistics, measured from
outside a model that must be left exactly as it was."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslib import diagnostics
from reslib.models.plain import DeepMLP


def _model(seed: int = 0, **kwargs: object) -> DeepMLP:
    torch.manual_seed(seed)
    return DeepMLP(12, 5, width=16, depth=3, **kwargs)  # type: ignore[arg-type]


def _batch(seed: int = 0, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 12, generator=g), torch.randint(5, (n,), generator=g)


def _no_hooks_left(model: nn.Module) -> bool:
    return all(
        not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks)
        and not m._backward_pre_hooks
        for m in model.modules()
    )


LINEAR_NAMES = [
    "stem.0",
    "blocks.0.residual.0",
    "blocks.1.residual.0",
    "blocks.2.residual.0",
    "head",
]


def test_weight_layers_in_definition_order() -> None:
    assert [name for name, _ in diagnostics.weight_layers(_model())] == LINEAR_NAMES


@pytest.mark.parametrize("wrt", ["weight", "output"])
def test_gradient_norms_one_finite_positive_value_per_linear_layer(wrt: str) -> None:
    norms = diagnostics.gradient_norms(_model(), *_batch(), wrt=wrt)
    assert list(norms) == LINEAR_NAMES
    assert all(math.isfinite(v) and v > 0 for v in norms.values())


def test_gradient_norms_match_a_manual_backward_pass() -> None:
    model, (x, y) = _model(), _batch()
    reference = copy.deepcopy(model)
    outputs: dict[str, torch.Tensor] = {}
    for name, module in diagnostics.weight_layers(reference):
        module.register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o))
    out = reference(x)
    for o in outputs.values():
        o.retain_grad()
    F.cross_entropy(out, y).backward()
    modules = dict(reference.named_modules())

    by_weight = diagnostics.gradient_norms(model, x, y, wrt="weight")
    by_output = diagnostics.gradient_norms(model, x, y, wrt="output")
    for name in LINEAR_NAMES:
        assert by_weight[name] == pytest.approx(modules[name].weight.grad.norm().item(), rel=1e-5)
        assert by_output[name] == pytest.approx(outputs[name].grad.norm().item(), rel=1e-5)


def test_gradient_norms_with_chosen_layers_and_loss() -> None:
    model, (x, _) = _model(), _batch()
    chosen = [("last", model.head)]
    norms = diagnostics.gradient_norms(
        model, x, torch.zeros(len(x), 5), lambda out, t: F.mse_loss(out, t), layers=chosen
    )
    assert list(norms) == ["last"] and norms["last"] > 0


def test_unknown_wrt_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'weight' or 'output'.*'bias'"):
        diagnostics.gradient_norms(_model(), *_batch(), wrt="bias")


def test_a_model_without_weight_layers_is_rejected() -> None:
    with pytest.raises(ValueError, match="no layers to measure"):
        diagnostics.gradient_norms(nn.Sequential(nn.ReLU()), *_batch())


@pytest.mark.parametrize("wrt", ["weight", "output"])
def test_gradient_norms_leave_the_model_exactly_as_it_was(wrt: str) -> None:
    model = _model(norm="batch").train()
    model.blocks[1].eval()  # a mixed-mode model: each module's own flag must survive
    x, y = _batch()
    with torch.no_grad():
        model(x)  # give the BatchNorm layers non-trivial running statistics
    model.head.weight.grad = torch.randn_like(model.head.weight)  # an optimiser's pending grad
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    state = copy.deepcopy(model.state_dict())
    modes = {n: m.training for n, m in model.named_modules()}

    diagnostics.gradient_norms(model, x, y, wrt=wrt)

    after = model.state_dict()
    assert after.keys() == state.keys()
    assert all(torch.equal(after[k], state[k]) for k in state)  # incl. running stats, counters
    assert {n: m.training for n, m in model.named_modules()} == modes
    for name, p in model.named_parameters():
        if grads[name] is None:
            assert p.grad is None, name
        else:
            assert torch.equal(p.grad, grads[name]), name
    assert _no_hooks_left(model)


def test_hooks_and_state_are_restored_when_the_forward_fails() -> None:
    model = _model(norm="batch")
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="expects input of shape"):
        diagnostics.gradient_norms(model, torch.randn(4, 7), torch.zeros(4, dtype=torch.long))
    assert _no_hooks_left(model)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_record_gradients_one_norm_per_backward_per_layer() -> None:
    model = _model()
    batches = [_batch(seed) for seed in range(3)]
    expected = [diagnostics.gradient_norms(model, x, y, wrt="output") for x, y in batches]
    with diagnostics.record_gradients(model) as norms:
        assert not _no_hooks_left(model)
        for x, y in batches:
            F.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            model(batches[0][0])  # no graph, nothing to record
    assert _no_hooks_left(model)
    assert list(norms) == LINEAR_NAMES
    for name in LINEAR_NAMES:
        assert len(norms[name]) == 3
        recorded = [t.item() for t in norms[name]]
        assert recorded == pytest.approx([e[name] for e in expected], rel=1e-5)
    F.cross_entropy(model(batches[0][0]), batches[0][1]).backward()
    assert all(len(v) == 3 for v in norms.values())  # nothing recorded after the context


def test_capture_outputs_removes_its_hooks() -> None:
    model, (x, _) = _model(), _batch()
    with diagnostics.capture_outputs(model, [("head", model.head)]) as outputs:
        out = model(x)
    assert torch.equal(outputs["head"], out)
    assert _no_hooks_left(model)


def test_activation_stats_of_relu_layers() -> None:
    model, (x, _) = _model(), _batch(n=64)
    relus = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.ReLU)]
    manual: dict[str, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(lambda m, i, o, n=n: manual.__setitem__(n, o)) for n, m in relus
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()

    stats = diagnostics.activation_stats(model, x, layers=relus)
    assert list(stats) == [n for n, _ in relus] and len(stats) == 4
    for name, s in stats.items():
        h = manual[name]
        assert s.zero_fraction == pytest.approx((h == 0).float().mean().item())
        assert 0.1 < s.zero_fraction < 0.9  # ReLU zeroes roughly half the units at init
        assert s.mean == pytest.approx(h.mean().item(), rel=1e-5) and s.mean > 0
        assert s.std == pytest.approx(h.std().item(), rel=1e-5)
    linear = diagnostics.activation_stats(model, x)  # default: the weight layers' outputs
    assert all(s.zero_fraction == 0.0 for s in linear.values())  # pre-activations are not 0
    assert _no_hooks_left(model)


def test_activation_stats_saturation() -> None:
    stats = diagnostics.ActivationStats.of(torch.tensor([-1.0, 0.995, 0.5, 0.0]))
    assert stats.saturated_fraction == 0.5 and stats.zero_fraction == 0.25


def test_activation_stats_preserve_batchnorm_statistics() -> None:
    model, (x, _) = _model(norm="batch"), _batch()
    state = copy.deepcopy(model.state_dict())
    diagnostics.activation_stats(model, x)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.training


def test_gradients_vanish_in_a_deep_sigmoid_net() -> None:
    """Physics: sigma' <= 1/4, so each plain sigmoid layer shrinks the backward signal; the
    identity shortcut gives the gradient a path around those factors."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 40), torch.randint(10, (64,))
    ratios = {}
    for skip in ("none", "identity"):
        torch.manual_seed(0)
        model = DeepMLP(40, 10, width=32, depth=8, activation="sigmoid", init="xavier", skip=skip)
        norms = diagnostics.gradient_norms(model, x, y)
        ratios[skip] = norms["stem.0"] / norms["head"]
    assert ratios["none"] < 1e-4  # measured about 3e-6
    assert ratios["identity"] > 100 * ratios["none"]  # measured about 1.7e-2
