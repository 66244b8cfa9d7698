"""Batched L-BFGS: many independent minimisations advanced together, one numpy call per step.

Multi-start fitting (thousands of starts, then bootstrap resamples x a few starts) spends its
time in Python overhead when each start is a separate ``scipy.optimize.minimize`` call. Here the
``S`` problems share every array operation: the objective is evaluated on a ``(k, P)`` batch of
the still-active starts, the two-loop recursion runs over all of them at once, and each start
keeps its own history, its own weak-Wolfe line search (bisection/expansion, Lewis & Overton
2013) and its own convergence test, so a start that has converged leaves the active set and
costs nothing more. The stopping rules mirror L-BFGS-B's (``pgtol`` on the largest gradient
component, ``factr`` on the relative decrease), so results are comparable to scipy's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: ``fg(x, rows) -> (f, g)``: objective values (k,) and gradients (k, P) at ``x`` (k, P);
#: ``rows`` (k,) are the indices of these starts in the batch (for per-start data weights).
BatchObjective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

CONVERGED_GTOL, CONVERGED_FTOL, MAX_ITER, LINE_SEARCH_FAILED, NONFINITE_START = range(5)
STATUS_TEXT = {
    CONVERGED_GTOL: "gradient below gtol",
    CONVERGED_FTOL: "relative decrease below ftol",
    MAX_ITER: "iteration limit",
    LINE_SEARCH_FAILED: "line search found no decrease",
    NONFINITE_START: "objective not finite at the start",
}


@dataclass
class BatchResult:
    """Per-start outcome: final point, value, gradient, iterations and why it stopped."""

    x: np.ndarray
    f: np.ndarray
    grad: np.ndarray
    n_iter: np.ndarray
    status: np.ndarray
    #: total rows evaluated (one row = one start at one point), a cost measure
    n_evals: int

    @property
    def converged(self) -> np.ndarray:
        return self.status <= CONVERGED_FTOL


def _evaluate(fg: BatchObjective, x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        f, g = fg(x, rows)
    f = np.where(np.isfinite(f) & np.all(np.isfinite(g), axis=1), f, np.inf)
    return f, g


def batched_lbfgs(
    fg: BatchObjective,
    x0: np.ndarray,
    *,
    memory: int = 10,
    max_iter: int = 1000,
    gtol: float = 1e-5,
    ftol: float = 2.220446049250313e-09,
    max_linesearch: int = 30,
    c1: float = 1e-4,
    c2: float = 0.9,
    callback: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Minimise ``S`` problems from starts ``x0`` (S, P) with L-BFGS, all in one batch.

    Defaults are L-BFGS-B's (memory 10, ``pgtol`` 1e-5, ``factr`` 1e7 x machine epsilon).
    A start stops when its largest gradient component is <= ``gtol``, when an accepted step
    lowers f by <= ``ftol * max(|f|, |f_new|, 1)``, at ``max_iter`` iterations, or when the
    line search fails twice running (once with history, once along the steepest descent).
    ``callback(n_finished, n_starts)`` is called after every iteration (for progress bars).

    Live starts advance in lockstep, so their (s, y) histories share one ring position; a
    start that skips an update (curvature test failed) stores an empty pair there. State is
    kept only for live starts and compacted when a quarter of them have finished, so the cost
    of an iteration follows the number of starts still running.
    """
    x_out = np.array(x0, dtype=float, copy=True)
    n_start, n_par = x_out.shape
    f_out, g_out = _evaluate(fg, x_out, np.arange(n_start))
    n_evals = n_start
    n_iter = np.zeros(n_start, dtype=int)
    status = np.full(n_start, -1)
    status[~np.isfinite(f_out)] = NONFINITE_START
    status[np.isfinite(f_out) & (np.abs(g_out).max(axis=1) <= gtol)] = CONVERGED_GTOL

    ids = np.flatnonzero(status < 0)  # batch rows of the live state below
    x, f, g = x_out[ids], f_out[ids], g_out[ids]
    # slot-major histories, so each slot is one contiguous (starts, P) block
    s_hist = np.zeros((memory, ids.size, n_par))
    y_hist = np.zeros((memory, ids.size, n_par))
    rho = np.zeros((memory, ids.size))  # 0 marks an empty slot: it drops out of the recursion
    gamma = np.zeros(ids.size)  # s.y / y.y of the newest pair; 0 until there is one
    live = np.ones(ids.size, dtype=bool)
    it = 0
    while live.any():
        # two-loop recursion (Nocedal & Wright alg. 7.4), newest pair first
        slots = [(it - 1 - i) % memory for i in range(min(it, memory))]
        q = g.copy()
        alphas = []
        for j in slots:
            a_j = rho[j] * np.einsum("ij,ij->i", s_hist[j], q)
            q -= a_j[:, None] * y_hist[j]
            alphas.append(a_j)
        gnorm = np.sqrt(np.einsum("ij,ij->i", g, g))
        has_hist = gamma > 0
        # initial inverse Hessian s.y / y.y (N&W 7.20); without history a unit-length step
        q *= np.where(has_hist, gamma, 1.0 / np.maximum(gnorm, 1e-300))[:, None]
        for j, a_j in zip(reversed(slots), reversed(alphas), strict=True):
            b_j = rho[j] * np.einsum("ij,ij->i", y_hist[j], q)
            q += s_hist[j] * (a_j - b_j)[:, None]
        d = np.negative(q, out=q)
        gd = np.einsum("ij,ij->i", g, d)
        bad = ~(gd < 0) | ~np.all(np.isfinite(d), axis=1)
        if bad.any():  # not a descent direction: forget the history, go downhill
            d[bad] = -g[bad] / np.maximum(gnorm[bad], 1e-300)[:, None]
            gd[bad] = -gnorm[bad]
            rho[:, bad], gamma[bad], has_hist[bad] = 0.0, 0.0, False

        # weak Wolfe line search, each start on its own bracket [lo, hi], with safeguarded
        # quadratic interpolation inside it and secant extrapolation beyond it
        k = ids.size
        t = np.ones(k)
        lo = np.zeros(k)
        hi = np.full(k, np.inf)
        f_new, g_new = f.copy(), g.copy()
        f_lo, g_lo, dphi_lo = f.copy(), g.copy(), gd.copy()
        f_hi, dphi_hi = np.full(k, np.inf), np.zeros(k)
        done = np.zeros(k, dtype=bool)
        searching = np.flatnonzero(live)
        for _ in range(max_linesearch):
            ft, gt = _evaluate(fg, x[searching] + t[searching, None] * d[searching], ids[searching])
            n_evals += searching.size
            dphi = np.einsum("ij,ij->i", gt, d[searching])
            armijo = ft <= f[searching] + c1 * t[searching] * gd[searching]
            ok = armijo & (dphi >= c2 * gd[searching])
            acc = searching[ok]
            f_new[acc], g_new[acc], done[acc] = ft[ok], gt[ok], True
            shrink = searching[~armijo]
            hi[shrink], f_hi[shrink], dphi_hi[shrink] = t[shrink], ft[~armijo], dphi[~armijo]
            grow = armijo & ~ok
            gs = searching[grow]
            lo[gs], f_lo[gs], g_lo[gs], dphi_lo[gs] = t[gs], ft[grow], gt[grow], dphi[grow]
            searching = searching[~ok]
            if not searching.size:
                break
            i = searching
            t[i] = _next_step(lo[i], hi[i], f_lo[i], dphi_lo[i], f_hi[i], dphi_hi[i], gd[i])
        # out of trials: keep the best sufficient-decrease point if there was one
        partial = live & ~done & (lo > 0)
        f_new[partial], g_new[partial], t[partial] = f_lo[partial], g_lo[partial], lo[partial]
        moved = live & (done | partial)
        failed = live & ~moved

        step = t[:, None] * d
        y_new = g_new - g
        sy = np.einsum("ij,ij->i", step, y_new)
        yy = np.einsum("ij,ij->i", y_new, y_new)
        push = moved & (sy > 1e-10 * yy)
        slot = it % memory
        s_hist[slot] = np.where(push[:, None], step, 0.0)
        y_hist[slot] = np.where(push[:, None], y_new, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho[slot] = np.where(push, 1.0 / sy, 0.0)
            gamma = np.where(push, sy / yy, gamma)

        # a failure with history is retried along the steepest descent; a second one is final
        new_status = np.full(k, -1)
        retry = failed & has_hist
        rho[:, retry], gamma[retry] = 0.0, 0.0
        new_status[failed & ~has_hist] = LINE_SEARCH_FAILED
        scale = np.maximum(np.maximum(np.abs(f), np.abs(f_new)), 1.0)
        new_status[moved & (f - f_new <= ftol * scale)] = CONVERGED_FTOL
        new_status[moved & (np.abs(g_new).max(axis=1) <= gtol)] = CONVERGED_GTOL
        x[moved] += step[moved]
        f[moved], g[moved] = f_new[moved], g_new[moved]
        n_iter[ids[live]] += 1
        new_status[live & (new_status < 0) & (n_iter[ids] >= max_iter)] = MAX_ITER
        it += 1

        ended = live & (new_status >= 0)
        if ended.any():
            e = ids[ended]
            x_out[e], f_out[e], g_out[e], status[e] = x[ended], f[ended], g[ended], new_status[ended]
            live &= ~ended
            if live.sum() < 0.75 * k:
                keep = np.flatnonzero(live)
                ids, x, f, g, live = ids[keep], x[keep], f[keep], g[keep], live[keep]
                s_hist, y_hist, rho, gamma = s_hist[:, keep], y_hist[:, keep], rho[:, keep], gamma[keep]
        if callback is not None:
            callback(n_start - int(live.sum()), n_start)
    return BatchResult(x=x_out, f=f_out, grad=g_out, n_iter=n_iter, status=status, n_evals=n_evals)


def _next_step(
    lo: np.ndarray, hi: np.ndarray, f_lo: np.ndarray, dphi_lo: np.ndarray, f_hi: np.ndarray,
    dphi_hi: np.ndarray, dphi0: np.ndarray,
) -> np.ndarray:
    """Next trial step of a weak Wolfe search, per start.

    With a bracket, the minimiser of the cubic matching ``phi`` and ``phi'`` at both ends
    (Nocedal & Wright eq. 3.59; the quadratic through ``phi(lo), phi'(lo), phi(hi)`` where the
    cubic has none), kept in the middle 80% of the bracket; a non-finite ``phi(hi)`` means:
    step back hard. Without a bracket, the zero of the secant of ``phi'`` through ``0`` and
    ``lo``, kept within ``[2 lo, 10 lo]``.
    """
    with np.errstate(all="ignore"):
        width = hi - lo
        d1 = dphi_lo + dphi_hi - 3.0 * (f_hi - f_lo) / width
        d2 = np.sqrt(d1 * d1 - dphi_lo * dphi_hi)
        cubic = hi - width * (dphi_hi + d2 - d1) / (dphi_hi - dphi_lo + 2.0 * d2)
        quad = lo - dphi_lo * width**2 / (2.0 * (f_hi - f_lo - dphi_lo * width))
        guess = np.where(np.isfinite(cubic), cubic, np.where(np.isfinite(quad), quad, lo + 0.5 * width))
        inside = np.clip(guess, lo + 0.1 * width, hi - 0.1 * width)
        inside = np.where(np.isfinite(f_hi), inside, lo + 0.1 * width)
        secant = lo * dphi0 / (dphi0 - dphi_lo)
        beyond = np.clip(np.nan_to_num(secant, nan=2.0 * lo, posinf=10.0 * lo), 2.0 * lo, 10.0 * lo)
    return np.where(np.isfinite(hi), inside, beyond)
