"""GPU smoke check of the sweep runner's training path (bf16 autocast, fused AdamW, compile).

    PYTHONPATH=src python scripts/gpu_check.py
"""

import time

from scalinglab.sweep.data import load_corpus
from scalinglab.sweep.shapes import shape_for
from scalinglab.sweep.train import TrainConfig, train

corpus = load_corpus()
print(corpus.describe())
for n, compile in ((1e6, False), (1e7, False), (1e7, True)):
    cfg = shape_for(n, seq_len=256)
    t0 = time.perf_counter()
    r = train(cfg, TrainConfig(lr=3e-3, batch_tokens=32 * 256, steps=300), corpus, device="cuda",
              compile=compile)
    print(f"N={n:.0e} d{cfg.d_model} L{cfg.n_layers} compile={compile}: train {r.train_loss:.3f} "
          f"ema {r.ema_loss:.3f} held-out {r.eval_loss:.3f}, {r.tokens_per_s:,.0f} tok/s, "
          f"peak {r.peak_mem_bytes / 2**20:.0f} MiB, wall {time.perf_counter() - t0:.1f} s")
