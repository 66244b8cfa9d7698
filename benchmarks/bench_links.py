"""Time the batched link fit (every start and bootstrap resample in one Levenberg-Marquardt batch)
against a loop of ``scipy.optimize.least_squares`` calls doing the same fits.

    python benchmarks/bench_links.py [--metrics M] [--bootstrap K]

Both sides fit Gadre et al.'s ``Err = eps - k exp(-gamma L)`` to M synthetic metric columns of 35
runs each (the shape of Gadre et al.'s 46-task table), from the same starting grid, then refit K
bootstrap resamples (weights = resample counts) from the full fit's optimum. The scipy side is
a careful plain loop: one ``least_squares`` call (trust-region reflective, analytic shapes, same
bounds) per start and per resample. Reported: wall time of each, the ratio, and the largest
relative difference of the fitted costs (the two must find the same optima). Single-threaded BLAS.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import least_squares  # noqa: E402

from scalinglab.downstream import EXP_LINK, fit_links  # noqa: E402
from scalinglab.stats import bootstrap_weights  # noqa: E402


def synthetic(m: int, n: int = 35, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    L = np.sort(rng.uniform(2.4, 6.1, n))
    metrics = {}
    for j in range(m):
        p = {"eps": rng.uniform(0.5, 0.95), "k": rng.uniform(0.5, 5.0), "gamma": rng.uniform(0.3, 1.5)}
        metrics[f"err_{j}"] = EXP_LINK.law(p, L=L) + rng.normal(0, 0.01, n)
    return L, metrics


def scipy_loop(L: np.ndarray, metrics: dict[str, np.ndarray], bootstrap: int, seed: int) -> dict[str, float]:
    lo, hi = EXP_LINK.bounds()
    w = bootstrap_weights(len(L), bootstrap, np.random.default_rng(seed))
    costs = {}
    for name, y in metrics.items():
        starts = np.clip(EXP_LINK.starts({"L": L}, y, {}), lo, hi)
        best = None
        for s in starts:
            r = least_squares(lambda p, y=y: p[0] - p[1] * np.exp(-p[2] * L) - y, s, bounds=(lo, hi))
            if best is None or r.cost < best.cost:
                best = r
        costs[name] = best.cost
        for row in w:
            sw = np.sqrt(row)
            least_squares(lambda p, y=y, sw=sw: sw * (p[0] - p[1] * np.exp(-p[2] * L) - y), best.x,
                          bounds=(lo, hi))
    return costs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metrics", type=int, default=46)
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()
    L, metrics = synthetic(args.metrics)

    t0 = time.perf_counter()
    table = fit_links(L, metrics, "exp", bootstrap=args.bootstrap, seed=0)
    t_batch = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref = scipy_loop(L, metrics, args.bootstrap, seed=0)
    t_loop = time.perf_counter() - t0

    diffs = []
    for name, fit in table.fits.items():
        resid = EXP_LINK.evaluate(fit.theta[None, :], {"L": L})[0] - metrics[name]
        diffs.append((0.5 * np.sum(resid**2) - ref[name]) / ref[name])
    fits = args.metrics * (1 + args.bootstrap)
    print(f"{args.metrics} metrics x (1 + {args.bootstrap} resamples) = {fits} fits of 35 points")
    print(f"batched Levenberg-Marquardt: {t_batch:.2f} s")
    print(f"scipy least_squares loop:    {t_loop:.2f} s")
    print(f"ratio: {t_loop / t_batch:.1f}x")
    print(f"full-fit cost, batched vs scipy (relative): min {min(diffs):+.2e}, max {max(diffs):+.2e} "
          "(negative: the batch found a lower optimum)")


if __name__ == "__main__":
    main()
