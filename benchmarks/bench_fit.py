"""Time the batched multi-start Chinchilla fit against a loop of scipy L-BFGS-B calls.

    python benchmarks/bench_fit.py [--quick] [--naive-starts K | --full] [--repeats R]

Both sides minimise the same objective (sum of Huber(1e-3)/1e-3 of log-loss residuals of
``log L = LSE(a - alpha log N, b - beta log D, e)``) with an analytic gradient, from the same
starts (Besiroglu et al.'s 4,500-point grid), on the same synthetic runs (~250 runs from
Besiroglu's fitted law with 1% log-normal noise, IsoFLOP layout), with the same stopping rules
(L-BFGS-B's defaults). The scipy side gets a plain single-start numpy objective, as a careful
straightforward implementation would write it. By default scipy runs a random subset of the
starts and its time is extrapolated linearly to the whole grid (stated in the output); ``--full``
runs them all. Also times the complete fit: grid + 200-resample bootstrap + derived figures.
BLAS is pinned to one thread for both sides (see below); timings are single-core.
"""

from __future__ import annotations

import os

# Both sides single-threaded: the scipy loop's 250-element dot products otherwise go through a
# multithreaded BLAS, and on a shared 2-core machine that made them erratic (10x slower and more).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from scalinglab.fit import besiroglu_grid, fit_chinchilla  # noqa: E402
from scalinglab.fit.objective import HUBER_DELTA, HuberObjective, log_model  # noqa: E402
from scalinglab.fit.optimize import batched_lbfgs  # noqa: E402
from scalinglab.fit.synthetic import isoflop_runs  # noqa: E402
from scalinglab.laws.loss import CHINCHILLA  # noqa: E402

SingleFG = Callable[[np.ndarray], tuple[float, np.ndarray]]


def single_start_objective(N: np.ndarray, D: np.ndarray, loss: np.ndarray,
                           delta: float = HUBER_DELTA) -> SingleFG:
    """The objective and gradient for one parameter vector, written plainly for scipy."""
    log_n, log_d, log_l = np.log(N), np.log(D), np.log(loss)

    def fg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        e, a, b, alpha, beta = theta
        t1, t2 = a - alpha * log_n, b - beta * log_d
        m = np.maximum(np.maximum(t1, t2), e)
        u0, u1, u2 = np.exp(e - m), np.exp(t1 - m), np.exp(t2 - m)
        s = u0 + u1 + u2
        r = m + np.log(s) - log_l
        z = np.clip(r / delta, -1.0, 1.0)
        q = z / s
        grad = np.array([q @ u0, q @ u1, q @ u2, -(q * u1) @ log_n, -(q * u2) @ log_d])
        return float(np.sum(z * (r - 0.5 * delta * z))), grad

    return fg


def scipy_loop(fg: SingleFG, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs, fs = np.empty_like(starts), np.empty(len(starts))
    with np.errstate(all="ignore"):
        for i, x0 in enumerate(starts):
            res = minimize(fg, x0, jac=True, method="L-BFGS-B")
            xs[i], fs[i] = res.x, res.fun
    return xs, fs


def best_of(repeats: int, fn: Callable[[], object]) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small version: 80 runs, 450 starts")
    ap.add_argument("--naive-starts", type=int, default=None,
                    help="random subset of starts for the scipy loop (default 600; 100 with --quick)")
    ap.add_argument("--full", action="store_true", help="run the scipy loop over every start")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the batched timings (best kept)")
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()

    runs = isoflop_runs(per_budget=10, noise=0.01, seed=0)
    grid = besiroglu_grid()
    n_boot = args.bootstrap
    if args.quick:
        runs = runs.iloc[::3].reset_index(drop=True)
        grid = grid[::10]
        n_boot = min(n_boot, 20)
    N, D, loss = (runs[k].to_numpy() for k in ("N", "D", "loss"))
    n_naive = len(grid) if args.full else min(len(grid), args.naive_starts or (100 if args.quick else 600))
    subset = np.sort(np.random.default_rng(0).choice(len(grid), n_naive, replace=False))

    model = log_model(CHINCHILLA, {"N": N, "D": D})
    batched = HuberObjective(model, loss)
    single = single_start_objective(N, D, loss)
    probe = grid[subset[:5]] + 0.1
    fb, gb = batched(probe, np.arange(len(probe)))
    for x, f, g in zip(probe, fb, gb, strict=True):  # both sides minimise the same function
        fs, gs = single(x)
        assert np.isclose(fs, f, rtol=1e-10) and np.allclose(gs, g, rtol=1e-8, atol=1e-10)

    print(f"data: {len(runs)} synthetic runs (Besiroglu 2024 law, 1% noise); grid: {len(grid)} starts")
    t_batch, res = best_of(args.repeats, lambda: batched_lbfgs(batched, grid))
    t_batch_sub, res_sub = best_of(args.repeats, lambda: batched_lbfgs(batched, grid[subset]))
    t0 = time.perf_counter()
    xs, fs = scipy_loop(single, grid[subset])
    t_naive_sub = time.perf_counter() - t0
    t_naive = t_naive_sub * len(grid) / n_naive

    # same optimum: best objective and parameters, and start by start on the subset
    ours_best, theirs_best = res.x[np.argmin(res.f)], xs[np.argmin(fs)]
    f_ours, f_theirs = res.f.min(), fs.min()
    same_f = abs(f_ours - f_theirs) <= 1e-6 * max(abs(f_theirs), 1.0)
    same_x = np.allclose(ours_best, theirs_best, atol=2e-3, rtol=1e-3)
    per_start = np.isclose(res_sub.f, fs, rtol=1e-6, atol=1e-9)
    print(f"best objective  batched {f_ours * HUBER_DELTA:.10g}  scipy {f_theirs * HUBER_DELTA:.10g}  "
          f"(sum of Huber; {'same' if same_f else 'DIFFERENT'})")
    names = ("log E", "log A", "log B", "alpha", "beta")
    print("best params     " + "  ".join(f"{k}={a:.5f}/{b:.5f}" for k, a, b in
                                        zip(names, ours_best, theirs_best, strict=True))
          + f"  ({'same' if same_x else 'DIFFERENT'} to 1e-3)")
    print(f"start by start: {per_start.mean():.1%} of the {n_naive} subset starts end at the same "
          f"objective (the rest: different local optima of a non-convex problem from far-off starts)")
    scope = "all starts" if n_naive == len(grid) else \
        f"a random subset of {n_naive} starts, extrapolated linearly x{len(grid) / n_naive:.2f}"
    print(f"scipy L-BFGS-B loop: {t_naive_sub:.2f} s for {n_naive} starts "
          f"({1e3 * t_naive_sub / n_naive:.2f} ms/start) -> {t_naive:.1f} s for {len(grid)} ({scope})")
    print(f"batched L-BFGS:      {t_batch:.2f} s for {len(grid)} starts "
          f"({res.n_iter.mean():.1f} iterations/start, {res.n_evals / len(grid):.1f} evaluations/start); "
          f"{t_batch_sub:.2f} s for the {n_naive}-start subset")
    print(f"speed-up: x{t_naive / t_batch:.1f} on the grid; x{t_naive_sub / t_batch_sub:.1f} on the subset "
          "(same starts, measured both sides)")

    t_fit, fit = best_of(1, lambda: fit_chinchilla(N, D, loss, bootstrap=n_boot, seed=0, starts=grid))
    p, ci = fit.params, fit.ci
    print(f"complete fit (grid + {n_boot}-resample bootstrap x {fit.extra['fit']['n_bootstrap_starts']} "
          f"starts + derived figures): {t_fit:.2f} s")
    print("  " + "  ".join(f"{k}={p[k]:.4g} [{ci[k][0]:.4g}, {ci[k][1]:.4g}]" for k in p))


if __name__ == "__main__":
    main()
