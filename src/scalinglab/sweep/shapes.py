"""Choosing a transformer shape for a target parameter count.

Kaplan et al. 2020 found loss nearly flat in the aspect ratio d_model/n_layers over a wide range
around ~50-100, so a sweep should vary N while keeping the shape sensible: width a multiple of
the head dimension (heads divide the width), and an aspect ratio near a target (64 by default,
GPT-2's). Among the shapes whose N is close to the target, the one nearest that aspect wins.
"""

from __future__ import annotations

import math

from scalinglab.errors import ParameterError
from scalinglab.sweep.model import ModelConfig, non_embedding_params

#: cost of each factor 2 of aspect-ratio miss beyond the first (in squared log units of N): a
#: factor-2 miss is free, since loss is flat there (Kaplan et al. 2020, figure 5)
ASPECT_WEIGHT = 0.05


def head_dim_for(d_model: int) -> int:
    """Heads of 64 for wide models, 32 for small ones, 16 for the tiniest."""
    return 64 if d_model >= 512 else 32 if d_model >= 64 else 16


def candidate_widths(max_width: int = 8192) -> list[int]:
    widths = []
    d = 16
    while d <= max_width:
        if d % head_dim_for(d) == 0:
            widths.append(d)
        d += 16
    return widths


def shape_for(target_n: float, aspect: float = 64.0, seq_len: int = 128, vocab_size: int = 256,
              ffn_ratio: float = 4.0, positions: str = "rope", tie_embeddings: bool = True,
              max_layers: int = 48) -> ModelConfig:
    """The shape whose non-embedding N is near ``target_n`` with d_model/n_layers near ``aspect``."""
    if not (target_n > 0 and math.isfinite(target_n)):
        raise ParameterError(f"target_n must be a positive finite number, not {float(target_n)!r}",
                             "target_n")
    if not (aspect > 0 and math.isfinite(aspect)):
        raise ParameterError(f"aspect must be a positive finite number, not {float(aspect)!r}",
                             "aspect")
    best, best_score = None, math.inf
    for layers in range(1, max_layers + 1):
        for d in candidate_widths():
            cfg = ModelConfig(d_model=d, n_layers=layers, n_heads=d // head_dim_for(d),
                              seq_len=seq_len, vocab_size=vocab_size, ffn_ratio=ffn_ratio,
                              positions=positions, tie_embeddings=tie_embeddings)  # type: ignore[arg-type]
            miss = math.log(non_embedding_params(cfg) / target_n)
            if miss > 1.0:  # wider only gets bigger
                break
            off = max(0.0, abs(math.log2(d / layers / aspect)) - 1.0)
            score = miss**2 + ASPECT_WEIGHT * off**2
            if score < best_score:
                best, best_score = cfg, score
    if best is None:  # below the smallest shape: take it (the plan notes the miss)
        width = candidate_widths()[0]
        return ModelConfig(d_model=width, n_layers=1, n_heads=width // head_dim_for(width),
                           seq_len=seq_len, vocab_size=vocab_size, ffn_ratio=ffn_ratio,
                           positions=positions, tie_embeddings=tie_embeddings)  # type: ignore[arg-type]
    return best
