"""The transformer: parameter and FLOP counts match hand arithmetic and the built module."""

from __future__ import annotations

import pytest
import torch

from scalinglab.errors import ParameterError
from scalinglab.sweep.model import (
    ModelConfig,
    Transformer,
    embedding_params,
    flops_per_token,
    non_embedding_params,
)
from scalinglab.sweep.shapes import head_dim_for, shape_for


def test_hand_computed_counts_for_a_two_layer_tied_rope_model():
    cfg = ModelConfig(d_model=64, n_layers=2, n_heads=2, seq_len=128, vocab_size=256)
    # per block: qkv+out 4*64^2 = 16384, MLP 2*64*256 = 32768, two RMSNorm gains 128
    assert non_embedding_params(cfg) == 2 * (16384 + 32768 + 128) + 64 == 98624
    assert embedding_params(cfg) == 256 * 64
    assert Transformer(cfg).count_parameters() == {"non_embedding": 98624, "embedding": 16384}


def test_untied_head_and_learned_positions_count_as_embedding_parameters():
    cfg = ModelConfig(d_model=64, n_layers=2, n_heads=2, seq_len=128, vocab_size=256,
                      positions="learned", tie_embeddings=False)
    assert non_embedding_params(cfg) == 98624  # unchanged: N excludes every table
    assert embedding_params(cfg) == 2 * 256 * 64 + 128 * 64
    assert Transformer(cfg).count_parameters() == {"non_embedding": 98624,
                                                   "embedding": 2 * 256 * 64 + 128 * 64}


@pytest.mark.parametrize("d,layers,heads,ffn", [(96, 3, 3, 4.0), (128, 1, 4, 2.5), (32, 4, 2, 8.0)])
def test_counting_agrees_with_the_module_for_other_shapes(d, layers, heads, ffn):
    cfg = ModelConfig(d_model=d, n_layers=layers, n_heads=heads, ffn_ratio=ffn, vocab_size=300)
    counted = Transformer(cfg).count_parameters()
    assert counted == {"non_embedding": non_embedding_params(cfg), "embedding": embedding_params(cfg)}


def test_flops_are_6N_per_token_plus_the_attention_term():
    cfg = ModelConfig(d_model=64, n_layers=2, n_heads=2, seq_len=128)
    assert flops_per_token(cfg) == 6 * 98624
    assert flops_per_token(cfg, attention=True) == 6 * 98624 + 12 * 2 * 128 * 64


def test_invalid_shapes_are_refused():
    with pytest.raises(ParameterError, match="n_heads 3 does not divide d_model = 64"):
        ModelConfig(d_model=64, n_layers=1, n_heads=3)
    with pytest.raises(ParameterError, match="positions must be one of"):
        ModelConfig(d_model=64, n_layers=1, n_heads=2, positions="alibi")  # type: ignore[arg-type]


def test_forward_gives_logits_and_a_loss_near_log_vocab_at_init():
    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=2, seq_len=16, vocab_size=64)
    torch.manual_seed(0)
    model = Transformer(cfg)
    idx = torch.randint(0, 64, (3, 16))
    assert model(idx).shape == (3, 16, 64)
    targets = torch.randint(0, 64, (3, 16))
    with torch.no_grad():
        assert float(model(idx, targets)) == pytest.approx(torch.log(torch.tensor(64.0)).item(), rel=0.05)


def test_sdpa_and_the_textbook_attention_compute_the_same_function():
    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, seq_len=16, vocab_size=64)
    torch.manual_seed(0)
    fast = Transformer(cfg)
    naive = Transformer(cfg, naive_attention=True)
    naive.load_state_dict(fast.state_dict())
    idx = torch.randint(0, 64, (2, 16))
    torch.testing.assert_close(fast(idx), naive(idx), atol=1e-5, rtol=1e-4)


def test_attention_is_causal():
    cfg = ModelConfig(d_model=32, n_layers=1, n_heads=2, seq_len=8, vocab_size=16)
    model = Transformer(cfg)
    a = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    b = a.clone()
    b[0, -1] = 0  # changing the last token must not change earlier predictions
    torch.testing.assert_close(model(a)[0, :-1], model(b)[0, :-1])


@pytest.mark.parametrize("target", [1e4, 1e5, 1e6, 1e7, 1.25e8])
def test_shapes_hit_the_target_N_with_heads_dividing_the_width(target):
    cfg = shape_for(target)
    n = non_embedding_params(cfg)
    assert target / 2 < n < target * 2
    assert cfg.d_model % cfg.n_heads == 0 and cfg.head_dim == head_dim_for(cfg.d_model)
    assert 16 <= cfg.d_model / cfg.n_layers <= 256  # a sensible aspect ratio
