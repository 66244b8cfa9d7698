"""A small decoder-only transformer, and how its parameters and FLOPs are counted.

Pre-norm blocks (RMSNorm), rotary or learned positions, PyTorch's fused SDPA attention, a GELU
MLP, tied or untied embeddings, no biases. Counting is pure arithmetic on the config, so plans
can size models without building them; a test checks it against the built module.

N is the *non-embedding* parameter count (Kaplan et al. 2020; Hoffmann et al. 2022 count the
same way): token embedding, learned position table and an untied output head are embedding
parameters, reported separately. Everything else (attention, MLP, norms) is N.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from scalinglab.errors import ParameterError
from scalinglab.sweep.schema import MODEL_RULES, settle, shape_problem

Positions = Literal["rope", "learned"]


@dataclass(frozen=True)
class ModelConfig:
    d_model: int
    n_layers: int
    n_heads: int
    seq_len: int = 128
    vocab_size: int = 256
    ffn_ratio: float = 4.0
    positions: Positions = "rope"
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        # the plan file's rules (sweep/schema.py), so a config built in Python and one read
        # from a plan are held to the same standard; a few microseconds, cheap enough for the
        # shape search, which builds hundreds
        problem = settle(self, MODEL_RULES) or shape_problem(
            self.d_model, self.n_heads, self.positions)
        if problem is None and self.d_ff < 1:
            problem = ("ffn_ratio", f"{self.ffn_ratio} x d_model = {self.d_model} leaves an MLP "
                       "of width 0")
        if problem:
            raise ParameterError(f"{problem[0]} {problem[1]}", problem[0])

    @property
    def d_ff(self) -> int:
        return int(round(self.ffn_ratio * self.d_model))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def non_embedding_params(cfg: ModelConfig) -> int:
    """N: per block q,k,v,o (4 d^2) + MLP (2 d d_ff) + two RMSNorm gains; plus the final norm."""
    d = cfg.d_model
    per_block = 4 * d * d + 2 * d * cfg.d_ff + 2 * d
    return cfg.n_layers * per_block + d


def embedding_params(cfg: ModelConfig) -> int:
    """Token table, learned position table when used, and the output head when untied."""
    n = cfg.vocab_size * cfg.d_model
    if cfg.positions == "learned":
        n += cfg.seq_len * cfg.d_model
    if not cfg.tie_embeddings:
        n += cfg.vocab_size * cfg.d_model
    return n


def flops_per_token(cfg: ModelConfig, attention: bool = False) -> float:
    """Training FLOPs per token: 6N, or with ``attention`` also the score and value products.

    The attention term is 6 * 2 * n_layers * seq_len * d_model (forward 2 * 2 * L * T * d for
    QK^T and AV, times three for forward + backward), the convention of PaLM's MFU appendix
    (no discount for the causal mask). The output head is not counted in either, as in 6ND.
    """
    base = 6.0 * non_embedding_params(cfg)
    if attention:
        base += 12.0 * cfg.n_layers * cfg.seq_len * cfg.d_model
    return base


def model_flops_per_token(cfg: ModelConfig) -> float:
    """FLOPs per token for MFU: 6 x all matmul weights (incl. the head) + the attention term."""
    matmul = non_embedding_params(cfg) + cfg.vocab_size * cfg.d_model
    return 6.0 * matmul + 12.0 * cfg.n_layers * cfg.seq_len * cfg.d_model


# -- the module ---------------------------------------------------------------------------------


def _rope_tables(seq_len: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv)
    return angles.cos(), angles.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding on (batch, heads, time, head_dim), pairs split in halves."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, naive: bool = False) -> None:
        super().__init__()
        self.n_heads, self.head_dim, self.naive = cfg.n_heads, cfg.head_dim, naive
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if rope is not None:
            cos, sin = rope[0][:t], rope[1][:t]
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        if self.naive:  # the textbook form, kept as the benchmark's reference
            att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            y = att.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, naive: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(cfg.d_model)
        self.attn = Attention(cfg, naive)
        self.norm2 = nn.RMSNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_ff, bias=False),
            nn.GELU(approximate="tanh"),
            nn.Linear(cfg.d_ff, cfg.d_model, bias=False),
        )

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """Decoder-only LM; ``forward(idx, targets)`` returns logits, or the mean loss with targets."""

    def __init__(self, cfg: ModelConfig, naive_attention: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model) if cfg.positions == "learned" else None
        self.blocks = nn.ModuleList(Block(cfg, naive_attention) for _ in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        if cfg.positions == "rope":
            cos, sin = _rope_tables(cfg.seq_len, cfg.head_dim)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        for block in self.blocks:  # GPT-2's scaled init of the residual projections
            for proj in (block.attn.out, block.mlp[2]):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(idx)
        if self.pos is not None:
            x = x + self.pos(torch.arange(idx.shape[1], device=idx.device))
        rope = (self.rope_cos, self.rope_sin) if self.pos is None else None
        for block in self.blocks:
            x = block(x, rope)
        logits = self.head(self.norm(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))

    def count_parameters(self) -> dict[str, int]:
        """Counted from the built module (shared weights once): the check on the arithmetic."""
        embedding_ids = {id(self.embed.weight), id(self.head.weight)}
        if self.pos is not None:
            embedding_ids.add(id(self.pos.weight))
        seen: set[int] = set()
        out = {"non_embedding": 0, "embedding": 0}
        for p in self.parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            out["embedding" if id(p) in embedding_ids else "non_embedding"] += p.numel()
        return out
