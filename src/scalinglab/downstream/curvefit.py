"""Least squares for small nonlinear laws: many starts and many bootstrap resamples in one batch.

A downstream link has two to six parameters and is fitted to tens of points, but it is fitted
hundreds of times (every bootstrap resample, every metric column, every benchmark). Calling
``scipy.optimize.least_squares`` once per start and resample costs about a millisecond of Python
overhead per call; here every row of ``theta`` (a start, or a resample's start) takes its own
Levenberg-Marquardt steps together, as numpy array operations, so 46 metrics x 200 resamples take
seconds. The tests check it against ``scipy.optimize.least_squares`` optimum by optimum.

The objective of row ``r`` is ``0.5 * sum_i w[r, i] * (f(theta_r)_i - y_i)^2``: bootstrap
resamples are rows of counts (:func:`scalinglab.stats.bootstrap_weights`), not copied data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: ``predict(theta, rows) -> (len(theta), n)``: the law at parameter rows ``theta`` (k, P) for the
#: data of batch rows ``rows`` (k,); rows matter only when each resample has its own inputs
Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LsqBatch:
    """Optimum of every row: parameters ``x`` (k, P), cost ``cost`` (k,) (half the weighted sum
    of squares; inf where the row never reached a finite value), Levenberg-Marquardt iterations."""

    x: np.ndarray
    cost: np.ndarray
    n_iter: int


def batched_lm(
    predict: Predict,
    theta0: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    free: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    max_iter: int = 300,
    ftol: float = 1e-12,
    xtol: float = 1e-10,
) -> LsqBatch:
    """Levenberg-Marquardt (Marquardt's diagonal scaling) for every row of ``theta0`` at once.

    ``y`` is (n,) or one target per row (k, n); ``weights`` (k, n) are per-row point weights
    (default 1); ``lower``/``upper`` (P,) bounds,
    enforced by projecting each step; ``free`` (P,) a mask of the parameters to optimise (the
    others stay at their ``theta0`` value). The Jacobian is by forward differences. A row stops
    when a step lowers its cost by less than ``ftol`` relative, moves it by less than ``xtol``
    relative, or when no step lowers it any more.
    """
    theta = np.array(theta0, dtype=float, copy=True)
    k, p = theta.shape
    n = np.shape(y)[-1]
    y = np.broadcast_to(np.asarray(y, dtype=float), (k, n))
    w = np.ones((k, n)) if weights is None else np.broadcast_to(np.asarray(weights, float), (k, n))
    sw = np.sqrt(w)
    lo = np.full(p, -np.inf) if lower is None else np.asarray(lower, float)
    hi = np.full(p, np.inf) if upper is None else np.asarray(upper, float)
    free_idx = np.arange(p) if free is None else np.flatnonzero(np.asarray(free, bool))
    rows = np.arange(k) if rows is None else np.asarray(rows)
    theta = np.clip(theta, lo, hi)

    def residuals(th: np.ndarray, idx: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return sw[idx] * (predict(th, rows[idx]) - y[idx])

    def half_ss(r: np.ndarray) -> np.ndarray:
        c = 0.5 * np.sum(r * r, axis=1)
        return np.where(np.isfinite(c), c, np.inf)

    all_idx = np.arange(k)
    r = residuals(theta, all_idx)
    cost = half_ss(r)
    lam = np.full(k, 1e-3)
    active = np.isfinite(cost) & (free_idx.size > 0)
    eps = np.sqrt(np.finfo(float).eps)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        th, r_now = theta[idx], r[idx]
        jac = np.empty((idx.size, n, free_idx.size))
        for j, col in enumerate(free_idx):
            h = eps * np.maximum(np.abs(th[:, col]), 1.0)
            # step inward at an upper bound, so the difference stays inside the box
            h = np.where(th[:, col] + h > hi[col], -h, h)
            tp = th.copy()
            tp[:, col] += h
            jac[:, :, j] = (residuals(tp, idx) - r_now) / h[:, None]
        jac = np.where(np.isfinite(jac), jac, 0.0)
        g = np.einsum("knp,kn->kp", jac, r_now)
        a = np.einsum("knp,knq->kpq", jac, jac)
        # active set: a parameter at a bound whose descent direction (-g) points out of the box
        # takes no step. Projecting the full step instead moves the others along a direction
        # solved for a move that the clip then removes; near such a corner the row stalls, its
        # steps failing until the damping gives up (the OLMo ladder's MMLU link, ceiling held at
        # 1: cost 0.004292 where the bounded optimum, scipy's least_squares, is 0.004077)
        th_f = th[:, free_idx]
        blocked = (((th_f <= lo[free_idx]) & (g > 0)) | ((th_f >= hi[free_idx]) & (g < 0)))
        keep = ~blocked
        a = a * keep[:, :, None] * keep[:, None, :]
        g = np.where(keep, g, 0.0)
        diag = np.einsum("kpp->kp", a)
        diag = np.where(keep, diag, 1.0)  # a blocked row of the system: step = 0
        damp = lam[idx, None] * np.maximum(diag, 1e-12 * (1.0 + diag.max(axis=1, keepdims=True)))
        a_d = a + np.einsum("kp,pq->kpq", np.where(keep, damp, 1.0), np.eye(free_idx.size))
        try:
            step = np.linalg.solve(a_d, -g[..., None])[..., 0]
        except np.linalg.LinAlgError:  # a singular row: fall back row by row
            step = np.stack([np.linalg.lstsq(a_d[i], -g[i], rcond=None)[0] for i in range(idx.size)])
        new = th.copy()
        new[:, free_idx] = np.clip(th[:, free_idx] + step, lo[free_idx], hi[free_idx])
        r_new = residuals(new, idx)
        c_new = half_ss(r_new)
        better = c_new < cost[idx]
        moved = np.max(np.abs(new[:, free_idx] - th[:, free_idx])
                       / (np.abs(th[:, free_idx]) + xtol), axis=1)
        gain = (cost[idx] - c_new) / np.maximum(cost[idx], 1e-300)
        upd = idx[better]
        theta[upd], r[upd], cost[upd] = new[better], r_new[better], c_new[better]
        lam[upd] = np.maximum(lam[upd] / 3.0, 1e-12)
        lam[idx[~better]] *= 4.0
        done = (better & ((gain < ftol) | (moved < xtol))) | (lam[idx] > 1e12)
        active[idx[done]] = False
    return LsqBatch(x=theta, cost=cost, n_iter=it)


def best_rows(cost: np.ndarray, groups: int) -> np.ndarray:
    """Index (into a (groups * starts,) batch laid out group-major) of each group's best start."""
    c = np.asarray(cost).reshape(groups, -1)
    return np.argmin(c, axis=1) + np.arange(groups) * c.shape[1]


__all__ = ["LsqBatch", "Predict", "batched_lm", "best_rows"]
