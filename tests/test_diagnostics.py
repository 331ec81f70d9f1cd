"""reslib.diagnostics: hooks, gradient norms, recorded gradients, activation statistics and the
block-level tools (branch norms, lesions, block gradients, skip retention), measured from outside
a model that must be left exactly as it was."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslib import diagnostics
from reslib.layers import ResidualBlock, Scale, blocks, named_blocks
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


def _half_sum_of_squares(out: torch.Tensor, _y: torch.Tensor) -> torch.Tensor:
    return 0.5 * (out**2).sum()


LINEAR_NAMES = [
    "stem.0",
    "blocks.0.residual.0",
    "blocks.1.residual.0",
    "blocks.2.residual.0",
    "head",
]
BLOCK_NAMES = ["blocks.0", "blocks.1", "blocks.2"]


# ---------------------------------------------------------------- hooks


def test_hooked_calls_the_hook_and_removes_it_on_exit_and_on_error() -> None:
    model = _model()
    seen: list[str] = []
    with diagnostics.hooked([("head", model.head)], lambda n, m, i, o: seen.append(n)):
        assert not _no_hooks_left(model)
        model(_batch()[0])
    assert seen == ["head"] and _no_hooks_left(model)
    with pytest.raises(RuntimeError, match="inside"):
        with diagnostics.hooked([("stem", model.stem)], lambda n, m, i, o: None, "forward_pre"):
            assert model.stem._forward_pre_hooks
            raise RuntimeError("inside")
    assert _no_hooks_left(model)


def test_hooked_return_value_replaces_the_output() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    x = torch.randn(4, 3)
    with diagnostics.hooked([("0", model[0])], lambda n, m, i, o: torch.zeros_like(o)):
        assert torch.equal(model(x), model[1](torch.zeros(4, 3)))
    assert torch.equal(model(x), model[1](model[0](x)))


def test_preserved_state_restores_buffers_and_modes_also_on_error() -> None:
    model = _model(norm="batch").train()
    model.blocks[1].eval()
    state = copy.deepcopy(model.state_dict())
    modes = {n: m.training for n, m in model.named_modules()}
    with pytest.raises(RuntimeError, match="boom"):
        with diagnostics.preserved_state(model):
            model(_batch()[0])  # updates the running statistics
            model.eval()
            raise RuntimeError("boom")
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert {n: m.training for n, m in model.named_modules()} == modes


def test_check_layers_rejects_empty_lists_and_strangers() -> None:
    model = _model()
    layers = [("head", model.head)]
    assert diagnostics.check_layers(model, layers) is layers
    with pytest.raises(ValueError, match="no layers to measure"):
        diagnostics.check_layers(model, [])
    with pytest.raises(ValueError, match="not part of the model: other"):
        diagnostics.check_layers(model, [("head", model.head), ("other", nn.Linear(2, 2))])


def test_capture_outputs_and_inputs_remove_their_hooks() -> None:
    model, (x, _) = _model(), _batch()
    with diagnostics.capture_outputs(model, [("head", model.head)]) as outputs:
        out = model(x)
    with diagnostics.capture_inputs(model, [("head", model.head)]) as inputs:
        model(x)
    assert torch.equal(outputs["head"], out)
    assert torch.equal(model.head(inputs["head"]), out)
    assert _no_hooks_left(model)


# ---------------------------------------------------------------- gradient norms


def test_weight_layers_in_definition_order() -> None:
    assert [name for name, _ in diagnostics.weight_layers(_model())] == LINEAR_NAMES


def test_gradient_norms_equal_a_hand_computed_gradient() -> None:
    """out = w1 (W0 x), L = 1/2 sum out^2 with W0 = [1, 2], w1 = 3, x = [[1, 1], [0, 2]]:
    h = [3, 4], out = [9, 12], dL/dout = out, dL/dw1 = sum out h = 75, dL/dh = 3 out = [27, 36],
    dL/dW0 = sum_b dL/dh_b x_b = [27, 99]."""
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.Linear(1, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 2.0]]))
        model[1].weight.fill_(3.0)
    x, y = torch.tensor([[1.0, 1.0], [0.0, 2.0]]), torch.zeros(2, 1)
    by_weight = diagnostics.gradient_norms(model, x, y, _half_sum_of_squares)
    by_output = diagnostics.gradient_norms(model, x, y, _half_sum_of_squares, wrt="output")
    assert list(by_weight) == list(by_output) == ["0", "1"]
    assert by_weight["0"] == pytest.approx(math.sqrt(27**2 + 99**2), rel=1e-6)
    assert by_weight["1"] == pytest.approx(75.0, rel=1e-6)
    assert by_output["0"] == pytest.approx(45.0, rel=1e-6)  # ||[27, 36]||
    assert by_output["1"] == pytest.approx(15.0, rel=1e-6)  # ||[9, 12]||
    assert all(p.grad is None for p in model.parameters())  # param.grad untouched


@pytest.mark.parametrize("wrt", ["weight", "output"])
def test_gradient_norms_one_finite_positive_value_per_linear_layer(wrt: str) -> None:
    norms = diagnostics.gradient_norms(_model(), *_batch(), wrt=wrt)  # type: ignore[arg-type]
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


def test_a_layer_that_runs_but_does_not_reach_the_loss_has_zero_gradient() -> None:
    class Detour(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.detached = nn.Linear(3, 2), nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x) + self.detached(x).detach()

    x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    for wrt in ("weight", "output"):
        norms = diagnostics.gradient_norms(Detour(), x, y, wrt=wrt)  # type: ignore[arg-type]
        assert norms["detached"] == 0.0 and norms["used"] > 0


def test_unknown_wrt_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'weight' or 'output'.*'bias'"):
        diagnostics.gradient_norms(_model(), *_batch(), wrt="bias")  # type: ignore[arg-type]


def test_gradient_norms_reject_layers_it_cannot_measure() -> None:
    model, (x, y) = _model(), _batch()
    with pytest.raises(ValueError, match="no layers to measure"):
        diagnostics.gradient_norms(nn.Sequential(nn.ReLU()), x, y)
    with pytest.raises(ValueError, match="not part of the model: stranger"):
        diagnostics.gradient_norms(model, x, y, layers=[("stranger", nn.Linear(16, 16))])
    relu = [("act", model.stem[1])]
    with pytest.raises(ValueError, match="wrt='weight' needs layers with a weight: act"):
        diagnostics.gradient_norms(model, x, y, layers=relu)
    assert diagnostics.gradient_norms(model, x, y, layers=relu, wrt="output")["act"] > 0
    model.unused = nn.Linear(16, 16)  # part of the model, never called in forward
    for wrt in ("weight", "output"):
        with pytest.raises(ValueError, match="did not run in the forward pass: unused"):
            diagnostics.gradient_norms(model, x, y, layers=[("unused", model.unused)], wrt=wrt)  # type: ignore[arg-type]
    assert _no_hooks_left(model)


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

    diagnostics.gradient_norms(model, x, y, wrt=wrt)  # type: ignore[arg-type]

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
    layers = diagnostics.weight_layers(model)
    batches = [_batch(seed) for seed in range(3)]
    expected = [diagnostics.gradient_norms(model, x, y, wrt="output") for x, y in batches]
    with diagnostics.record_gradients(model, layers) as norms:
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
    with pytest.raises(ValueError, match="not part of the model"):
        with diagnostics.record_gradients(model, [("x", nn.Linear(2, 2))]):
            pass


# ---------------------------------------------------------------- activation statistics


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
    assert list(linear) == LINEAR_NAMES
    assert all(s.zero_fraction == 0.0 for s in linear.values())  # pre-activations are not 0
    assert _no_hooks_left(model)


def test_activation_stats_saturation() -> None:
    stats = diagnostics.ActivationStats.of(torch.tensor([-1.0, 0.995, 0.5, 0.0]))
    assert stats.saturated_fraction == 0.5 and stats.zero_fraction == 0.25
    assert stats.mean == pytest.approx(0.12375)
    assert diagnostics.ActivationStats.of(torch.tensor([3.0])).std == 0.0


def test_activation_stats_reject_layers_that_did_not_run_or_are_strangers() -> None:
    model, (x, _) = _model(), _batch()
    model.unused = nn.Linear(16, 16)
    with pytest.raises(ValueError, match="did not run in the forward pass: unused"):
        diagnostics.activation_stats(model, x, layers=[("unused", model.unused)])
    with pytest.raises(ValueError, match="not part of the model: stranger"):
        diagnostics.activation_stats(model, x, layers=[("stranger", nn.ReLU())])
    assert _no_hooks_left(model)


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


# ---------------------------------------------------------------- block-level tools


def _chain(*shortcuts: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*(ResidualBlock(nn.Linear(4, 4), s) for s in shortcuts))


def test_branch_norms_equal_the_hand_computed_ratio() -> None:
    torch.manual_seed(0)
    stem, block = nn.Linear(3, 4), ResidualBlock(nn.Linear(4, 4))
    model = nn.Sequential(stem, block).train()
    x = torch.randn(5, 3)
    ratios = diagnostics.branch_norms(model, x)
    with torch.no_grad():
        h = stem(x)
        expected = (block.residual(h).norm() / h.norm()).item()
    assert list(ratios) == ["1"]
    assert ratios["1"] == pytest.approx(expected, rel=1e-6)
    assert model.training and _no_hooks_left(model)


def test_branch_norms_zero_for_zero_init_blocks_and_model_restored() -> None:
    model = _model(norm="batch", skip="identity").train()
    model.blocks[1].zero_init_last()
    x, _ = _batch()
    state = copy.deepcopy(model.state_dict())
    ratios = diagnostics.branch_norms(model, x)
    assert list(ratios) == BLOCK_NAMES
    assert ratios["blocks.1"] == 0.0
    assert all(math.isfinite(r) and r > 0 for n, r in ratios.items() if n != "blocks.1")
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.training and _no_hooks_left(model)
    with pytest.raises(ValueError, match="has no blocks"):
        diagnostics.branch_norms(nn.Sequential(nn.Linear(12, 5)), x)


def test_lesion_makes_blocks_compute_their_skip_path_and_restores_the_model() -> None:
    model = _chain(Scale(0.5), nn.Identity(), nn.Identity()).eval()
    first, second, third = blocks(model)
    x = torch.randn(6, 4)
    with torch.no_grad():
        before = model(x)
        with diagnostics.lesion(model, [first, third]) as lesioned:
            assert lesioned is model
            inside = model(x)
        after = model(x)
    with torch.no_grad():
        expected = second(0.5 * x)  # block 1 -> 0.5 x; block 3 -> its identity skip path
    assert torch.equal(inside, expected)
    assert not torch.equal(inside, before)
    assert torch.equal(before, after) and _no_hooks_left(model)


def test_lesion_restores_the_model_when_the_body_raises() -> None:
    model = _chain(nn.Identity(), nn.Identity())
    with pytest.raises(RuntimeError, match="inside"):
        with diagnostics.lesion(model, list(blocks(model))[:1]):
            raise RuntimeError("inside")
    assert _no_hooks_left(model)


def test_lesion_rejects_non_blocks_and_blocks_of_another_model() -> None:
    model, other = _chain(nn.Identity()), _chain(nn.Identity())
    with pytest.raises(ValueError, match="lesion\\(\\) takes blocks .*got Linear"):
        with diagnostics.lesion(model, [model[0].residual]):
            pass
    with pytest.raises(ValueError, match="ResidualBlock to lesion is not part of the model"):
        with diagnostics.lesion(model, [other[0]]):
            pass
    assert _no_hooks_left(model) and _no_hooks_left(other)


def test_block_gradients_keys_are_the_block_names_in_order() -> None:
    model = _model(skip="identity")
    x, y = _batch()
    norms = diagnostics.block_gradients(model, x, y)
    assert list(norms) == [name for name, _ in named_blocks(model)] == BLOCK_NAMES
    assert all(math.isfinite(v) and v > 0 for v in norms.values())
    expected = diagnostics.gradient_norms(model, x, y, layers=named_blocks(model), wrt="output")
    assert norms == pytest.approx(expected)


def test_skip_retention_of_identity_and_scaled_chains() -> None:
    x = torch.randn(8, 4)
    identity = list(blocks(_chain(nn.Identity(), nn.Identity(), nn.Identity())))
    assert diagnostics.skip_retention(identity, x) == pytest.approx([1.0, 1.0, 1.0])
    scaled = list(blocks(_chain(Scale(0.5), Scale(0.5), Scale(0.5), Scale(0.5))))
    assert diagnostics.skip_retention(scaled, x) == pytest.approx([0.5**k for k in range(1, 5)])
    assert (
        diagnostics.skip_retention(list(blocks(_model(skip="none"))), x.repeat(1, 4)) == [0.0] * 3
    )
