"""GPU check of the sweep runner: the training path, and several runs sharing one GPU.

    PYTHONPATH=src python scripts/gpu_check.py            # about 2-4 minutes on one H100/H200
    PYTHONPATH=src python scripts/gpu_check.py --quick    # the training path only

1. Training path: bf16 autocast, fused AdamW, torch.compile; compile time is reported apart
   from tokens/s (``compile_s``), and a compiled run must reach the eager run's loss.
2. Sharing, local backend: ``gpus_per_run=0.25`` starts 4 worker processes on cuda:0; every
   result lands once, and the runs' [started_at, ended_at] spans overlap (at most 4 at once).
3. Sharing, Ray (if installed): ``num_gpus=0.25`` per task, the same checks.

Exit code 1 if a check fails. Throughput against one-at-a-time is measured by
``benchmarks/bench_sweep_share.py --device cuda``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from scalinglab.runs.store import RunStore
from scalinglab.sweep.data import DataSpec, load_corpus
from scalinglab.sweep.plan import RunSpec, SweepPlan
from scalinglab.sweep.shapes import shape_for
from scalinglab.sweep.train import TrainConfig, train

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        failures.append(what)


def max_overlap(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    depth = best = 0
    for _, d in edges:
        depth += d
        best = max(best, depth)
    return best


def training_path(corpus_spec: DataSpec) -> None:
    print("1. training path")
    corpus = load_corpus(corpus_spec)
    print(f"  {corpus.describe()}")
    losses = {}
    for n, compile in ((1e6, False), (1e7, False), (1e7, True)):
        cfg = shape_for(n, seq_len=256)
        t0 = time.perf_counter()
        r = train(cfg, TrainConfig(lr=3e-3, batch_tokens=32 * 256, steps=300), corpus,
                  device="cuda", compile=compile)
        losses[(n, compile)] = r.eval_loss
        print(f"  N={n:.0e} d{cfg.d_model} L{cfg.n_layers} compile={compile}: train "
              f"{r.train_loss:.3f} held-out {r.eval_loss:.3f}, {r.tokens_per_s:,.0f} tok/s "
              f"(compile/warm-up {r.compile_s:.1f} s apart), peak "
              f"{r.peak_mem_bytes / 2**20:.0f} MiB, wall {time.perf_counter() - t0:.1f} s")
    check(abs(losses[(1e7, True)] - losses[(1e7, False)]) < 0.05,
          "the compiled run reaches the eager run's held-out loss (within 0.05 nats)")


def sharing(corpus_spec: DataSpec, backend: str) -> None:
    print(f"2. four runs sharing cuda:0 ({backend} backend, gpus_per_run=0.25)" if backend == "local"
          else f"3. four runs sharing a GPU ({backend} backend, num_gpus=0.25)")
    from scalinglab.sweep.runner import run_plan

    runs = [RunSpec(shape_for(n, seq_len=256),
                    TrainConfig(lr=3e-3, batch_tokens=16 * 256, steps=400, eval_tokens=16_384),
                    corpus_spec, {"sweep": "gpu-check"})
            for n in (1e6, 2e6, 3e6, 5e6, 1e6 * 1.5, 4e6, 2.5e6, 6e6)]
    plan = SweepPlan("gpu-check", "custom", runs, corpus_spec)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "s.duckdb")
        device = "cuda:0" if backend == "local" else "cuda"
        t0 = time.perf_counter()
        report = run_plan(plan, store, backend=backend, device=device,  # type: ignore[arg-type]
                          gpus_per_run=0.25)
        wall = time.perf_counter() - t0
        every = store.runs(status=None)
        check(report.failed == 0 and report.finished == len(runs),
              f"{report.finished}/{len(runs)} finished, {report.failed} failed "
              f"{report.errors if report.failed else ''}")
        check(sorted(every["run_id"]) == sorted(r.run_id for r in runs), "every result landed once")
        spans = [(e["started_at"], e["ended_at"]) for e in every["extra"] if "ended_at" in e]
        overlap = max_overlap(spans)
        check(2 <= overlap <= 4, f"runs overlapped: at most {overlap} at once (want 2-4)")
        tokens = sum(e.get("tokens", 0) for e in every["extra"])
        compile_s = [e.get("compile_s", 0.0) for e in every["extra"]]
        print(f"  {tokens:,} tokens in {wall:.1f} s: {tokens / wall:,.0f} tok/s aggregate; "
              f"warm-up {min(compile_s):.2f}-{max(compile_s):.2f} s per run, outside tokens/s")
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the training path only")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this check needs a GPU")
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
          f"{torch.cuda.device_count()} GPU(s)")
    spec = DataSpec()
    training_path(spec)
    if not args.quick:
        sharing(spec, "local")
        try:
            import ray  # noqa: F401
        except ImportError:
            print("3. Ray not installed: skipped")
        else:
            sharing(spec, "ray")
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
