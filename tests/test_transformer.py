"""The Transformer family: every wiring computes its equation, masking is causal, DeepNorm's
constants follow Wang et al. 2022, initialisation is what the config says."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from reslib.layers import LearnedScale, ResidualBlock, Scale, Zero, named_blocks
from reslib.models.base import count_parameters
from reslib.models.transformer import (
    NORM_PLACEMENTS,
    RESIDUALS,
    CausalSelfAttention,
    Transformer,
    TransformerConfig,
    deepnorm_constants,
)

VOCAB, T, D = 11, 10, 16


def build(**overrides: object) -> Transformer:
    torch.manual_seed(0)
    spec = dict(vocab_size=VOCAB, seq_len=T, d_model=D, n_heads=2, n_layers=3)
    return Transformer(TransformerConfig(**{**spec, **overrides}))  # type: ignore[arg-type]


WIRINGS = [
    (norm, residual)
    for norm in NORM_PLACEMENTS
    for residual in RESIDUALS
    if residual != "deepnorm" or norm == "post"
]


def tokens(batch: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("norm", "residual"), WIRINGS)
def test_every_wiring_gives_next_token_logits(norm: str, residual: str) -> None:
    model = build(norm=norm, residual=residual)
    assert model(tokens()).shape == (3, T, VOCAB)
    assert len(named_blocks(model)) == 2 * 3  # attention and MLP in each of the N layers


@pytest.mark.parametrize(("norm", "residual"), WIRINGS)
def test_each_block_computes_its_equation(norm: str, residual: str) -> None:
    model = build(norm=norm, residual=residual).eval()
    alpha = deepnorm_constants(3)[0]
    x = torch.randn(2, T, D)
    for _, block in named_blocks(model):
        assert isinstance(block, ResidualBlock)
        branch = block.residual
        if norm == "pre":  # F(LN(x)): the LayerNorm opens the branch
            assert isinstance(branch[0], nn.LayerNorm)
            f = branch[1]
        else:
            f = branch
        if residual == "rezero":
            f, scale = f[0], f[1]
            assert isinstance(scale, LearnedScale)
        else:
            scale = nn.Identity()
        inner = branch[0](x) if norm == "pre" else x
        fx = scale(f(inner))
        stream = {"add": x, "rezero": x, "deepnorm": alpha * x, "none": torch.zeros(())}[residual]
        expected = fx + stream
        if norm == "post":
            expected = nn.functional.layer_norm(expected, (D,))  # gamma 1, beta 0 at init
        torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-6)


def test_rezero_with_alpha_zero_is_exactly_the_identity() -> None:
    model = build(norm="none", residual="rezero")
    x = torch.randn(2, T, D)
    for _, block in named_blocks(model):
        assert torch.equal(block(x), x)
    # and the whole stack maps the embedding to the head unchanged
    h = tokens()
    with torch.no_grad():
        assert torch.equal(model(h), model.head(model.embed(h)))


def test_rezero_alphas_are_learned_from_zero() -> None:
    model = build(norm="none", residual="rezero")
    alphas = [m.weight for m in model.modules() if isinstance(m, LearnedScale)]
    assert len(alphas) == 6 and all(a.item() == 0.0 for a in alphas)
    nn.functional.cross_entropy(model(tokens()).flatten(0, 1), tokens(seed=2).flatten()).backward()
    assert all(a.grad is not None and a.grad.abs().item() > 0 for a in alphas)


@pytest.mark.parametrize("n", [1, 6, 18, 100, 1000])
def test_deepnorm_constants_follow_the_formula(n: int) -> None:
    alpha, beta = deepnorm_constants(n)
    assert alpha == pytest.approx((2 * n) ** 0.25)
    assert beta == pytest.approx((8 * n) ** -0.25)
    assert beta < 1 < alpha  # the shortcut is up-weighted, the branch's init down-weighted


def test_deepnorm_scales_the_shortcut_and_the_branch_init() -> None:
    n = 12
    model = build(norm="post", residual="deepnorm", n_layers=n, d_model=64)
    alpha, beta = deepnorm_constants(n)
    for _, block in named_blocks(model):
        assert isinstance(block.shortcut, Scale) and block.shortcut.factor == pytest.approx(alpha)
        assert isinstance(block.post, nn.LayerNorm)
    attn = model.layers[0].attn.residual
    assert isinstance(attn, CausalSelfAttention)
    xavier = math.sqrt(2 / (64 + 64))  # Xavier normal's std for a d x d layer
    assert attn.value.weight.std().item() == pytest.approx(beta * xavier, rel=0.1)
    assert attn.proj.weight.std().item() == pytest.approx(beta * xavier, rel=0.1)
    assert attn.query.weight.std().item() == pytest.approx(xavier, rel=0.1)  # gain 1


def test_gpt2_init_and_residual_scaling() -> None:
    plain, scaled = build(d_model=64), build(d_model=64, scale_residual_init=True)
    assert plain.layers[0].mlp.residual[1][0].weight.std().item() == pytest.approx(0.02, rel=0.1)
    ratio = scaled.branch_outputs()[0].weight.std() / plain.branch_outputs()[0].weight.std()
    assert ratio.item() == pytest.approx(1 / math.sqrt(2 * 3), rel=1e-5)
    assert len(plain.branch_outputs()) == 6


@pytest.mark.parametrize(("norm", "residual"), WIRINGS)
def test_a_future_token_cannot_change_an_earlier_output(norm: str, residual: str) -> None:
    model = build(norm=norm, residual=residual).eval()
    h = tokens()
    changed = h.clone()
    changed[:, 6] = (h[:, 6] + 1) % VOCAB
    with torch.no_grad():
        before, after = model(h), model(changed)
    assert torch.equal(before[:, :6], after[:, :6])
    assert not torch.equal(before[:, 6:], after[:, 6:])  # the change is seen from there on


def test_attention_only_and_the_skipless_twin() -> None:
    model = build(attention_only=True)
    assert len(named_blocks(model)) == 3
    twin = build(residual="none")
    assert all(isinstance(b.shortcut, Zero) for _, b in named_blocks(twin))
    assert count_parameters(twin) == count_parameters(build())


def test_pre_ln_has_a_final_norm_and_post_ln_none() -> None:
    assert isinstance(build(norm="pre").norm, nn.LayerNorm)
    assert isinstance(build(norm="post").norm, nn.Identity)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(norm="mid"), "unknown norm 'mid'"),
        (dict(residual="skip"), "unknown residual 'skip'"),
        (dict(init="he"), "unknown init 'he'"),
        (dict(norm="pre", residual="deepnorm"), "needs norm='post'"),
        (dict(d_model=10, n_heads=3), "multiple of n_heads"),
        (dict(n_layers=0), "n_layers must be an int >= 1"),
        (dict(attention_only=1), "attention_only must be True or False"),
    ],
)
def test_bad_configs_raise_clear_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**overrides)


def test_bad_inputs_raise_clear_errors() -> None:
    model = build()
    with pytest.raises(ValueError, match=r"integer tokens of shape \(batch, T\)"):
        model(torch.randn(2, T))
    with pytest.raises(ValueError, match="exceeds seq_len"):
        model(torch.zeros(2, T + 1, dtype=torch.long))


def test_seeded_builds_are_identical() -> None:
    a, b = build(), build()
    h = tokens()
    with torch.no_grad():
        assert torch.equal(a(h), b(h))
