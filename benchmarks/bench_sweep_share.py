"""Aggregate throughput of a small-model IsoFLOP sweep, k runs at a time against one at a time.

    python benchmarks/bench_sweep_share.py                          # CPU: small models, k = 2
    python benchmarks/bench_sweep_share.py --device cuda --k 4      # GPU: 20 runs, 1M-50M params
    python benchmarks/bench_sweep_share.py --device cuda --k 4 --backend ray   # Ray, 0.25 GPU/run

The sweep is ``isoflop_plan``'s: 4 budgets x 5 sizes, log-spaced so the 20 models span the
requested N range (GPU default 1M-50M non-embedding parameters; CPU 20k-200k). Sizes that
round to the same shape are planned once, so a narrow range can give fewer than 20 runs (the
header says how many). Each run is
trained on ``--token-scale`` of its IsoFLOP tokens (at least ``--min-steps`` steps), keeping the
sweep's mix of shapes and relative lengths (small models get the most tokens, as in a real
IsoFLOP sweep) while fitting in minutes; throughput is per token, so the ratio is the sweep's.
On the GPU defaults that is 46M tokens, 2.9 PFLOPs, 30-609 steps of 16,384 tokens per run.

Both modes train the same plan into fresh stores, in the same process run:
  * one at a time: ``run_plan(plan, store, device=...)``, one run after another in this
    process, with every CPU thread (what a user gets without sharing);
  * k at a time: ``--gpus-per-run 1/k`` on CUDA (k worker processes share the GPU, or Ray
    packs k tasks per GPU with ``--backend ray``), ``--workers k`` with one thread each on CPU.
Aggregate tokens/s = all tokens trained / the sweep's wall time, start to last result, with
process start-up, CUDA initialisation and compilation included (they are real costs of a
sweep). Per-run tokens/s exclude compile and warm-up (recorded apart as ``compile_s``).

Both modes use one GPU (cuda:0); with ``--backend ray`` on a multi-GPU machine, set
``CUDA_VISIBLE_DEVICES=0`` so Ray packs the runs on that one too. NVIDIA MPS
(``nvidia-cuda-mps-control -d``) lets the shared runs' kernels overlap rather than time-slice;
the header says whether it is on.

The target (issue 17) is >= 3x on a GPU for the small-model sweep. On the 2-core development
machine the CPU ratio is what two one-thread runs gain over one two-thread run.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from scalinglab.runs.store import RunStore
from scalinglab.sweep.data import DataSpec, load_corpus
from scalinglab.sweep.plan import Defaults, SweepPlan, isoflop_plan
from scalinglab.sweep.runner import run_plan


def sweep_plan(n_min: float, n_max: float, budgets: int, sizes: int, seq_len: int,
               batch_tokens: int, token_scale: float, min_steps: int) -> SweepPlan:
    """``budgets`` x ``sizes`` IsoFLOP runs whose N span [n_min, n_max], tokens scaled."""
    span = (n_max / n_min) ** (1 / 2)  # within-budget span; budget centres cover the rest
    centre_lo, centre_hi = n_min * math.sqrt(span), n_max / math.sqrt(span)
    centres = [centre_lo * (centre_hi / centre_lo) ** (i / max(1, budgets - 1))
               for i in range(budgets)]
    tpp = 20.0
    defaults = Defaults(seq_len=seq_len, batch_tokens=batch_tokens, lr=3e-3, eval_tokens=16_384,
                        min_steps=min_steps)
    plan = isoflop_plan([6 * tpp * c * c for c in centres], sizes=sizes, span=span,
                        tokens_per_param=tpp, defaults=defaults, name="bench-share")
    runs = [replace(r, train=replace(r.train, steps=max(min_steps, round(r.train.steps * token_scale))))
            for r in plan.runs]
    return replace(plan, runs=runs)


def timed(plan: SweepPlan, folder: Path, label: str, **kwargs: object) -> dict[str, object]:
    store = RunStore(folder / f"{label}.duckdb")
    t0 = time.perf_counter()
    report = run_plan(plan, store, **kwargs)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    runs = store.runs(status=None)
    store.close()
    if report.failed:
        sys.exit(f"{label}: {report.failed} runs failed: {next(iter(report.errors.values()))}")
    extra = runs["extra"]
    tokens = float(sum(e["tokens"] for e in extra))
    return {
        "label": label, "wall_s": wall, "tokens": tokens, "agg_tps": tokens / wall,
        "run_tps": statistics.median(e["tokens_per_s"] for e in extra),
        "compile_s": statistics.mean(e.get("compile_s", 0.0) for e in extra),
        "peak_mib": max(e["peak_mem_bytes"] for e in extra) / 2**20,
        "loss": dict(zip(runs["run_id"], runs["loss"], strict=True)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--k", type=int, default=None, help="runs at a time (default: 4 on CUDA, 2 on CPU)")
    ap.add_argument("--backend", default="local", choices=["local", "ray"])
    ap.add_argument("--compile", action="store_true", help="torch.compile every run (CUDA)")
    ap.add_argument("--n-min", type=float, default=None)
    ap.add_argument("--n-max", type=float, default=None)
    ap.add_argument("--budgets", type=int, default=4)
    ap.add_argument("--sizes", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=None)
    ap.add_argument("--batch-tokens", type=int, default=None)
    ap.add_argument("--token-scale", type=float, default=None,
                    help="share of each run's IsoFLOP tokens to train (default: 0.01 CUDA, 0.02 CPU)")
    ap.add_argument("--min-steps", type=int, default=None)
    ap.add_argument("--only-shared", action="store_true", help="skip the one-at-a-time reference")
    ap.add_argument("--reference-threads", type=int, default=None,
                    help="CPU threads of the one-at-a-time reference (default: every core)")
    args = ap.parse_args()

    cuda = args.device.startswith("cuda")
    if args.device == "cuda":
        args.device = "cuda:0"  # one GPU, shared or not: the ratio is per device
    k = args.k or (4 if cuda else 2)
    n_min = args.n_min or (1e6 if cuda else 2e4)
    n_max = args.n_max or (5e7 if cuda else 2e5)
    seq_len = args.seq_len or (256 if cuda else 64)
    batch = args.batch_tokens or (16_384 if cuda else 1_024)
    scale = args.token_scale or (0.01 if cuda else 0.02)
    min_steps = args.min_steps or (30 if cuda else 20)
    plan = sweep_plan(n_min, n_max, args.budgets, args.sizes, seq_len, batch, scale, min_steps)
    n = sorted(r.N for r in plan.runs)
    load_corpus(DataSpec())  # build the corpus cache once, outside both timings
    if cuda:
        name = torch.cuda.get_device_name(0)
        mps = "on" if os.path.exists("/tmp/nvidia-mps") else "off (contexts time-slice)"
        where = f"{name}, MPS {mps}"
    else:
        where = f"CPU, {os.cpu_count()} cores"
    load = os.getloadavg()[0]
    if load > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load:.1f} on {os.cpu_count()} cores: other work competes "
              "for the CPU and the timings below are not clean")
    print(f"device: {where}; torch {torch.__version__}; {len(plan.runs)} runs, N {n[0]:,}-{n[-1]:,} "
          f"(non-embedding), context {seq_len}, batch {batch:,} tokens, {scale:g} of IsoFLOP "
          f"tokens (>= {min_steps} steps), {sum(r.D for r in plan.runs):,} tokens in all")

    shared_kwargs: dict[str, object] = {"device": args.device, "compile": args.compile,
                                        "backend": args.backend}
    if cuda:
        shared_kwargs["gpus_per_run"] = 1.0 / k
    elif args.backend == "ray":
        import ray

        ray.init(num_cpus=k, include_dashboard=False, log_to_driver=False, configure_logging=False)
        shared_kwargs["cpus_per_run"] = 1
    else:
        shared_kwargs |= {"workers": k, "cpus_per_run": 1}

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = []
        if not args.only_shared:
            threads = args.reference_threads
            label = "one at a time" + (f" ({threads} thread{'s' if threads > 1 else ''})"
                                       if threads else "")
            results.append(timed(plan, folder, label, device=args.device, compile=args.compile,
                                 cpus_per_run=threads))
        how = (f"{args.backend}, {1 / k:g} GPU/run" if cuda else
               f"{args.backend}, {k} x 1 thread")
        results.append(timed(plan, folder, f"{k} at a time ({how})", **shared_kwargs))
    ref = results[0] if not args.only_shared else None
    print(f"{'mode':>34} {'wall s':>8} {'aggregate tok/s':>16} {'ratio':>6} {'median run tok/s':>17} "
          f"{'compile s':>9} {'peak MiB':>9}")
    for r in results:
        ratio = f"{r['agg_tps'] / ref['agg_tps']:5.2f}x" if ref else f"{'-':>6}"
        print(f"{r['label']:>34} {r['wall_s']:8.1f} {r['agg_tps']:16,.0f} {ratio} "
              f"{r['run_tps']:17,.0f} {r['compile_s']:9.2f} {r['peak_mib']:9.0f}")
    if ref and len(results) == 2:
        a, b = ref["loss"], results[1]["loss"]
        diff = max(abs(a[i] - b[i]) / a[i] for i in a)
        if diff == 0:
            print("held-out losses, one at a time vs shared: identical, bit for bit")
        else:
            why = ("the runs used different thread counts, so float sums differ in the last "
                   "bits" if not cuda else "bf16 kernels may differ run to run")
            print(f"held-out losses, one at a time vs shared: max relative difference "
                  f"{diff:.2e} ({why})")
        print(f"target (issue 17): >= 3x aggregate on a GPU; measured here: "
              f"{results[1]['agg_tps'] / ref['agg_tps']:.2f}x on {where}")


if __name__ == "__main__":
    main()
