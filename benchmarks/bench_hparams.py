"""Time the vectorised hparam bootstrap against a loop of per-resample regressions.

    python benchmarks/bench_hparams.py [GRID.csv] [--n-boot 1000]

Uses the Step Law dense grid when it is present (``../shared/data``), else a synthetic grid of
the same shape. Both paths fit the same 1,000 resamples (identical weight matrix); the loop
materialises each resample's rows and calls ``numpy.linalg.lstsq``, as a straightforward
implementation would. Prints both times, the ratio (target >= 20x) and the largest difference.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from scalinglab.hparams.bootstrap import weighted_lstsq_batch
from scalinglab.hparams.fit import group_optima
from scalinglab.hparams.grid import grid_from_frame, read_grid
from scalinglab.hparams.synthetic import synthetic_grid
from scalinglab.laws.hparams import LR_ND, design_row
from scalinglab.stats import bootstrap_weights

DENSE = (Path(__file__).resolve().parents[2] / "shared" / "data" / "steplaw"
         / "dense_lr_bs_loss.csv")


def loop_bootstrap(X: np.ndarray, y: np.ndarray, W: np.ndarray) -> np.ndarray:
    out = np.empty((len(W), X.shape[1]))
    for k, w in enumerate(W):
        idx = np.repeat(np.arange(len(y)), w.astype(int))
        out[k] = np.linalg.lstsq(X[idx], y[idx], rcond=None)[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("grid", nargs="?", default=str(DENSE))
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if Path(args.grid).exists():
        grid, name = read_grid(args.grid), args.grid
    else:
        grid, name = grid_from_frame(synthetic_grid(noise=0.001), source="synthetic"), "synthetic grid"
    f = group_optima(grid, "threshold").frame
    X = design_row(LR_ND, f["N"].to_numpy(), f["D"].to_numpy())
    y = np.log(f["lr"].to_numpy())
    W = bootstrap_weights(len(y), args.n_boot, np.random.default_rng(0))

    def best_time(fn) -> tuple[float, np.ndarray]:
        times, out = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = fn(X, y, W)
            times.append(time.perf_counter() - t0)
        return min(times), out

    t_vec, b_vec = best_time(weighted_lstsq_batch)
    t_loop, b_loop = best_time(loop_bootstrap)
    diff = float(np.nanmax(np.abs(b_vec - b_loop)))
    print(f"data: {name}: {len(y)} threshold-kept runs, {args.n_boot} resamples, lr on (N, D)")
    print(f"vectorised (matmul + batched solve): {1e3 * t_vec:8.2f} ms")
    print(f"loop of lstsq per resample:          {1e3 * t_loop:8.2f} ms")
    print(f"speed-up: {t_loop / t_vec:.1f}x (target >= 20x); max |difference| = {diff:.2e}")
    if not diff < 1e-8:
        raise SystemExit("vectorised and loop bootstraps disagree")


if __name__ == "__main__":
    main()
