"""A small causal Transformer whose residual stream can be rewired: Post-LN, Pre-LN, ReZero,
DeepNorm, or no skip at all.

Every layer reads from and writes to one running sum, the *residual stream* x_l, through two
sub-layers, attention and an MLP. Where the normalisation and the addition sit is the choice
(``norm`` x ``residual`` of :class:`TransformerConfig`), one line each:

* Post-LN: x_{l+1} = LN(x_l + F(x_l)) (Vaswani et al. 2017, arXiv 1706.03762);
* Pre-LN: x_{l+1} = x_l + F(LN(x_l)) (Xiong et al. 2020, arXiv 2002.04745);
* ReZero: x_{l+1} = x_l + alpha_l F(x_l), alpha_l = 0 at init (Bachlechner et al. 2020,
  arXiv 2003.04887);
* DeepNorm: x_{l+1} = LN(alpha x_l + F(x_l)) (Wang et al. 2022, arXiv 2203.00555);
* no skip: x_{l+1} = F(x_l), with the norm where it was (Dong et al. 2021, arXiv 2103.03404,
  on what attention does without it).

Each sub-layer is a :class:`~reslib.layers.ResidualBlock`, ``post(residual(x) + shortcut(x))``:
Pre-LN puts the LayerNorm at the start of ``residual``, Post-LN and DeepNorm make it ``post``,
ReZero ends ``residual`` with a :class:`~reslib.layers.LearnedScale` at 0, DeepNorm's shortcut
is :class:`~reslib.layers.Scale` (alpha) and the skip-less twin's is
:class:`~reslib.layers.Zero`. So lesions, branch norms and zero-init work on it unchanged.

DeepNorm's constants for a decoder-only stack of N layers (Wang et al. 2022, Table 1):
alpha = (2N)^(1/4) on the shortcut, and beta = (8N)^(-1/4) as the Xavier gain of the value,
output and MLP weights (the query and key weights keep gain 1).

>>> model = Transformer(TransformerConfig(vocab_size=12, seq_len=16, norm="post"))
>>> logits = model(torch.randint(0, 12, (8, 16)))  # (B, T) tokens -> (B, T, V) logits
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from reslib.layers import LearnedScale, ResidualBlock, Scale, Zero, check_choice, check_int

TransformerNorm = Literal["post", "pre", "none"]
TransformerResidual = Literal["add", "rezero", "deepnorm", "none"]
TransformerInit = Literal["gpt2", "xavier"]
NORM_PLACEMENTS: tuple[str, ...] = ("post", "pre", "none")
RESIDUALS: tuple[str, ...] = ("add", "rezero", "deepnorm", "none")
TRANSFORMER_INITS: tuple[str, ...] = ("gpt2", "xavier")


def deepnorm_constants(n_layers: int) -> tuple[float, float]:
    """DeepNorm's (alpha, beta) for a decoder-only stack of ``n_layers`` layers (Wang et al.
    2022, arXiv 2203.00555, Table 1): alpha = (2N)^(1/4), beta = (8N)^(-1/4)."""
    n = check_int("n_layers", n_layers)
    return (2 * n) ** 0.25, (8 * n) ** -0.25


@dataclass(frozen=True)
class TransformerConfig:
    """The size and the wiring of a :class:`Transformer`, checked when it is made.

    Attributes:
        vocab_size: tokens in the vocabulary V (input and output).
        seq_len: the longest sequence T (learned positional embeddings).
        d_model: the width d of the residual stream.
        n_heads: attention heads; ``d_model`` must be a multiple.
        n_layers: N, layers of attention + MLP (2N sub-layers, 2N blocks).
        mlp_ratio: the MLP's hidden width is ``mlp_ratio * d_model``.
        norm: where LayerNorm sits: ``"post"`` (after the addition), ``"pre"`` (at the start
            of each branch, plus one before the head) or ``"none"``.
        residual: how the branch joins the stream: ``"add"`` (x + F), ``"rezero"``
            (x + alpha F, alpha learned from 0), ``"deepnorm"`` (alpha x + F with Post-LN) or
            ``"none"`` (F alone: the skip-less twin, same parameters).
        init: ``"gpt2"`` (weights N(0, 0.02)) or ``"xavier"`` (Xavier normal, as the original
            Transformer); DeepNorm always uses Xavier with its gain beta.
        scale_residual_init: GPT-2's scaling of each branch's last weight by 1/sqrt(2N).
        attention_only: no MLP sub-layers (the "pure attention" nets of Dong et al. 2021).
    """

    vocab_size: int
    seq_len: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 4
    mlp_ratio: int = 4
    norm: TransformerNorm = "pre"
    residual: TransformerResidual = "add"
    init: TransformerInit = "gpt2"
    scale_residual_init: bool = False
    attention_only: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "seq_len", "d_model", "n_heads", "n_layers", "mlp_ratio"):
            check_int(name, getattr(self, name))
        check_choice("norm", self.norm, NORM_PLACEMENTS)
        check_choice("residual", self.residual, RESIDUALS)
        check_choice("init", self.init, TRANSFORMER_INITS)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})"
            )
        if self.residual == "deepnorm" and self.norm != "post":
            raise ValueError(
                f"residual='deepnorm' is LN(alpha x + F(x)) and needs norm='post', got "
                f"norm={self.norm!r}"
            )
        for name in ("scale_residual_init", "attention_only"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")


class CausalSelfAttention(nn.Module):
    """softmax(Q K^T / sqrt(d_head) + causal mask) V, then the output projection.

    ``(B, T, d) -> (B, T, d)``. The projection is registered last, so zeroing a branch's "last
    layer" zeroes exactly what it writes to the stream.
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape

        def heads(z: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, heads, T, d / heads)
            return z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # token t sees 0..t only
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Sequential):
    """The position-wise MLP: Linear(d, r d) -> GELU -> Linear(r d, d), token by token."""

    def __init__(self, d_model: int, ratio: int) -> None:
        hidden = ratio * d_model
        super().__init__(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))


def sublayer(branch: nn.Module, cfg: TransformerConfig) -> ResidualBlock:
    """One sub-layer as a block, ``post(residual(x) + shortcut(x))``, wired by ``cfg``."""
    d = cfg.d_model
    if cfg.residual == "rezero":
        branch = nn.Sequential(branch, LearnedScale(0.0))  # alpha F(x), alpha = 0 at init
    if cfg.norm == "pre":
        branch = nn.Sequential(nn.LayerNorm(d), branch)  # F(LN(x))
    shortcut: nn.Module = {
        "add": nn.Identity(),
        "rezero": nn.Identity(),
        "deepnorm": Scale(deepnorm_constants(cfg.n_layers)[0]),
        "none": Zero(),
    }[cfg.residual]
    post = nn.LayerNorm(d) if cfg.norm == "post" else None
    return ResidualBlock(branch, shortcut, post=post)


class TransformerLayer(nn.Module):
    """Attention, then the MLP: two blocks, each reading and writing the residual stream."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attn = sublayer(CausalSelfAttention(cfg.d_model, cfg.n_heads), cfg)
        self.mlp = (
            nn.Identity() if cfg.attention_only else sublayer(MLP(cfg.d_model, cfg.mlp_ratio), cfg)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, T, d)
        x = self.attn(x)
        return self.mlp(x)


class Transformer(nn.Module):
    """A decoder-only (causal) Transformer: tokens ``(B, T)`` -> next-token logits ``(B, T, V)``.

    Token and learned position embeddings start the residual stream, N
    :class:`TransformerLayer` update it, and a linear head reads it (after a final LayerNorm
    with Pre-LN, as in GPT-2, so the head sees a normalised stream).
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.positions = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.layers = nn.Sequential(*(TransformerLayer(cfg) for _ in range(cfg.n_layers)))
        self.norm = nn.LayerNorm(cfg.d_model) if cfg.norm == "pre" else nn.Identity()
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2's N(0, 0.02) (or Xavier) everywhere, biases 0; the branches' last weights
        scaled by 1/sqrt(2N) if asked; DeepNorm's Xavier gain beta on value, output and MLP."""
        cfg = self.cfg
        xavier = cfg.init == "xavier" or cfg.residual == "deepnorm"
        for m in self.modules():
            if isinstance(m, nn.Embedding) or (isinstance(m, nn.Linear) and not xavier):
                nn.init.normal_(m.weight, std=0.02)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)
        if cfg.scale_residual_init:
            # 2N branches add to the stream: keep the sum's variance from growing with N
            with torch.no_grad():
                for last in self.branch_outputs():
                    last.weight.mul_(1 / math.sqrt(2 * cfg.n_layers))
        if cfg.residual == "deepnorm":
            beta = deepnorm_constants(cfg.n_layers)[1]
            for layer in self.layers:
                for m in layer.modules():
                    if isinstance(m, CausalSelfAttention):
                        nn.init.xavier_normal_(m.value.weight, gain=beta)
                        nn.init.xavier_normal_(m.proj.weight, gain=beta)
                    elif isinstance(m, MLP):
                        for linear in (m[0], m[2]):
                            nn.init.xavier_normal_(linear.weight, gain=beta)

    def branch_outputs(self) -> list[nn.Linear]:
        """The last linear layer of every branch: what writes into the residual stream."""
        found: list[nn.Linear] = []
        for layer in self.layers:
            for block in (layer.attn, layer.mlp):
                if isinstance(block, ResidualBlock):
                    found.append(
                        [m for m in block.residual.modules() if isinstance(m, nn.Linear)][-1]
                    )
        return found

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """x_0 = token + position embedding, ``(B, T) -> (B, T, d)``."""
        if tokens.ndim != 2 or tokens.is_floating_point():
            raise ValueError(
                f"Transformer expects integer tokens of shape (batch, T), got "
                f"{tuple(tokens.shape)} of dtype {tokens.dtype}"
            )
        if tokens.shape[1] > self.cfg.seq_len:
            raise ValueError(
                f"sequence length {tokens.shape[1]} exceeds seq_len={self.cfg.seq_len}"
            )
        return self.tokens(tokens) + self.positions.weight[: tokens.shape[1]]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.layers(self.embed(tokens))))  # (B, T, V)
