"""Training throughput and model FLOPs utilisation, against a naive eager reference.

    python benchmarks/bench_train.py                       # CPU: the demo's model sizes
    python benchmarks/bench_train.py --device cuda --compile    # GPU: ~125M params, context 1024

Each size is timed twice in the same run, on the same random tokens, model and batch:
  * scalinglab: the sweep runner's training step (fused SDPA attention; on CUDA bf16 autocast,
    fused AdamW and, with --compile, torch.compile);
  * naive: the same model with textbook attention (explicit T x T scores and mask), fp32, eager,
    a per-parameter AdamW loop (foreach=False) -- what a straightforward first version would do.
Warm-up steps (where torch.compile compiles) are timed apart and left out of tokens/s.
MFU = tokens/s x model FLOPs per token / peak, with model FLOPs per token = 6 x (non-embedding
+ output-head weights) + 12 x layers x context x width (PaLM's appendix B convention). The peak
is the accelerator's dense bf16 figure (H100/H200 SXM: 989.5 TFLOP/s), or --peak-tflops.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from scalinglab.sweep.model import (
    ModelConfig,
    Transformer,
    embedding_params,
    model_flops_per_token,
    non_embedding_params,
)
from scalinglab.sweep.shapes import shape_for
from scalinglab.sweep.train import TrainConfig, optimizer_for

PEAK_BF16_TFLOPS = {"H100": 989.5, "H200": 989.5, "H800": 989.5, "A100": 312.0, "L4": 121.0}

#: GPT-2 small's shape (12 x 768, 12 heads, context 1024, vocabulary 50257 padded to 50304):
#: 85M non-embedding + 39M embedding = 124M parameters
GPT2_SMALL = ModelConfig(d_model=768, n_layers=12, n_heads=12, seq_len=1024, vocab_size=50304)


def peak_flops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v * 1e12 for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def time_steps(cfg: ModelConfig, batch: int, device: torch.device, naive: bool, compile: bool,
               steps: int, warmup: int) -> tuple[float, float]:
    """Tokens per second of full training steps (forward, backward, clip, AdamW), and the
    seconds the warm-up steps took (compilation, with --compile), which the rate leaves out."""
    torch.manual_seed(0)
    model = Transformer(cfg, naive_attention=naive).to(device)
    tcfg = TrainConfig(lr=1e-3, batch_tokens=batch * cfg.seq_len, steps=steps)
    if naive:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=False)
    else:
        opt = optimizer_for(model, tcfg, device)
    step_model = torch.compile(model) if compile and not naive else model
    use_bf16 = device.type == "cuda" and not naive
    x = torch.randint(0, cfg.vocab_size, (batch, cfg.seq_len), device=device)
    y = torch.randint(0, cfg.vocab_size, (batch, cfg.seq_len), device=device)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
            loss = step_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    t_warm = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return steps * batch * cfg.seq_len / (time.perf_counter() - t0), t0 - t_warm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile the scalinglab side")
    ap.add_argument("--sizes", default=None,
                    help="target non-embedding N, comma-separated (default: GPT-2 small on CUDA, "
                         "the demo's sizes on CPU)")
    ap.add_argument("--seq-len", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None, help="sequences per step")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--no-naive", action="store_true", help="skip the reference (big models)")
    args = ap.parse_args()

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    seq_len = args.seq_len or (1024 if cuda else 128)
    batch = args.batch or (32 if cuda else 8)
    steps = args.steps or (30 if cuda else 20)
    warmup = args.warmup or (8 if cuda else 3)
    if args.sizes:
        configs = [shape_for(float(s), seq_len=seq_len) for s in args.sizes.split(",")]
    elif cuda:
        configs = [replace(GPT2_SMALL, seq_len=seq_len)]
    else:
        configs = [shape_for(n, seq_len=seq_len) for n in (3e3, 1.2e4, 5e4, 1e5)]
    peak = peak_flops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; context {seq_len}, batch {batch} "
          f"sequences; {steps} timed steps after {warmup} warm-up"
          + (f"; peak {peak / 1e12:.1f} TFLOP/s bf16" if peak else ""))
    header = (f"{'model':>26} {'params':>14} {'scalinglab tok/s':>17} {'MFU':>6} {'warm-up s':>9} "
              f"{'naive tok/s':>12} {'MFU':>6} {'ratio':>6}")
    print(header)
    for cfg in configs:
        fpt = model_flops_per_token(cfg)
        fast, warm_s = time_steps(cfg, batch, device, naive=False, compile=args.compile,
                                  steps=steps, warmup=warmup)
        slow = None if args.no_naive else time_steps(cfg, batch, device, naive=True,
                                                     compile=False, steps=steps, warmup=warmup)[0]

        def mfu(tps: float | None, fpt: float = fpt) -> str:
            return f"{tps * fpt / peak:6.1%}" if peak and tps else f"{'-':>6}"

        shape = f"d{cfg.d_model} L{cfg.n_layers} h{cfg.n_heads} V{cfg.vocab_size}"
        params = f"{non_embedding_params(cfg) / 1e6:.2f}M+{embedding_params(cfg) / 1e6:.2f}M"
        ratio = f"{fast / slow:5.2f}x" if slow else f"{'-':>6}"
        slow_s = f"{slow:12,.0f}" if slow else f"{'-':>12}"
        print(f"{shape:>26} {params:>14} {fast:17,.0f} {mfu(fast)} {warm_s:9.2f} {slow_s} "
              f"{mfu(slow)} {ratio}")


if __name__ == "__main__":
    main()
