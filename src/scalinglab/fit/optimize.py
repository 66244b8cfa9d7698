"""Batched L-BFGS: many independent minimisations advanced together, one numpy call per step.

Multi-start fitting (thousands of starts, then bootstrap resamples x a few starts) spends its
time in Python overhead when each start is a separate ``scipy.optimize.minimize`` call. Here the
``S`` problems share every array operation: each round evaluates the objective once on a
``(k, P)`` batch holding one trial point of every start still running, and each start keeps its
own history, its own weak-Wolfe line search (bisection/expansion, Lewis & Overton 2013) and its
own convergence test. Starts are not kept in lockstep: one whose line search needs another
trial takes it in the next round while the others go on with their next iterations, so every
evaluation is a full batch, and a start that has converged leaves the batch and costs nothing
more. The stopping rules mirror L-BFGS-B's (``pgtol`` on the largest gradient component,
``factr`` on the relative decrease), so results are comparable to scipy's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

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
    """``fg`` at the columns of ``x`` (P, k); gradients come back as columns too (P, k)."""
    f, g = fg(x.T, rows)
    g = np.ascontiguousarray(np.asarray(g, dtype=float).T)
    f = np.where(np.isfinite(f) & np.isfinite(g).all(axis=0), f, np.inf)
    return f, g


def _cols(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Columns ``idx`` of ``a`` along its last axis, C-contiguous (``a[..., idx]`` would come
    back in column-major order, which makes every later row operation strided)."""
    return np.take(a, idx, axis=-1)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-wise dot products of two (P, k) arrays."""
    return np.einsum("ij,ij->j", a, b)


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
    ``callback(n_finished, n_starts)`` is called after every round (for progress bars).

    State is kept column-wise, (., K) for K starts, so that per-start dot products and updates
    run along contiguous rows of K. Every round evaluates one trial point of every start still
    running; the starts whose line search ends that round update their histories and get new
    directions together (gathered, two-loop recursion, scattered back). Finished starts are
    evaluated no more and their columns are dropped as they accumulate. Each start's history
    holds its last ``memory`` iterations' (s, y, 1/s.y), an empty triple (which drops out of
    the recursion) where the curvature test failed.
    """
    # trial points can be wild, and columns not in use hold junk: inf and NaN are expected
    # along the way and dealt with explicitly
    with np.errstate(all="ignore"):
        return _batched_lbfgs(fg, x0, memory, max_iter, gtol, ftol, max_linesearch, c1, c2, callback)


@dataclass
class _Columns:
    """The state of the starts still in the batch, one column per start (arrays (..., k)).

    Every field is indexed by start along its last axis, so :meth:`take` compacts them all at
    once: there is no list of arrays to keep in step by hand.
    """

    #: (k,) batch rows of the columns
    ids: np.ndarray
    #: (k,) still running (an ended start stays until the next compaction)
    alive: np.ndarray
    #: (P, k) current points, values (k,), gradients (P, k)
    x: np.ndarray
    f: np.ndarray
    g: np.ndarray
    #: (P, k) search directions, their slopes g.d (k,), and whether each used the history
    d: np.ndarray
    gd: np.ndarray
    has_hist: np.ndarray
    #: (memory, 2P + 1, k): hist[slot] = (s, y, rho) of one pair, rho = 0 marking an empty one
    hist: np.ndarray
    #: (k,) pairs held, and s.y / y.y of the newest pair (0 until there is one)
    n_pairs: np.ndarray
    gamma: np.ndarray
    #: the line search: trial step t and trials so far (k,); bracket ends lo = (t, f, phi', g)
    #: (3 + P, k) and hi = (t, f, phi') (3, k); the latest trial (3 + P, k)
    t: np.ndarray
    trials: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    trial: np.ndarray

    @property
    def k(self) -> int:
        return self.ids.size

    def take(self, keep: np.ndarray) -> _Columns:
        """The columns ``keep``, in that order (every field, contiguous)."""
        return _Columns(**{f.name: _cols(getattr(self, f.name), keep) for f in fields(self)})


def _batched_lbfgs(
    fg: BatchObjective, x0: np.ndarray, memory: int, max_iter: int, gtol: float, ftol: float,
    max_linesearch: int, c1: float, c2: float, callback: Callable[[int, int], None] | None,
) -> BatchResult:
    x_out = np.array(x0, dtype=float, copy=True)
    n_start, n_par = x_out.shape
    f0, g0 = _evaluate(fg, np.ascontiguousarray(x_out.T), np.arange(n_start))
    f_out, g_out = f0, np.ascontiguousarray(g0.T)
    n_evals = n_start
    n_iter = np.zeros(n_start, dtype=int)
    status = np.full(n_start, -1)
    status[~np.isfinite(f_out)] = NONFINITE_START
    status[np.isfinite(f_out) & (np.abs(g_out).max(axis=1) <= gtol)] = CONVERGED_GTOL

    P = n_par
    ids = np.flatnonzero(status < 0)
    k = ids.size
    f, g, gamma = f_out[ids], _cols(g0, ids), np.zeros(k)
    hist = np.zeros((memory, 2 * P + 1, k))
    d, gd, has_hist = _direction(g, hist[:0, :P], hist[:0, P : 2 * P], hist[:0, 2 * P], gamma)
    # every line search starts from the bracket (0, f, g.d, g) .. (inf, inf, 0) with t = 1
    s = _Columns(
        ids=ids, alive=np.ones(k, dtype=bool), x=np.ascontiguousarray(x_out[ids].T), f=f, g=g,
        d=d, gd=gd, has_hist=has_hist, hist=hist, n_pairs=np.zeros(k, dtype=int), gamma=gamma,
        t=np.ones(k), trials=np.zeros(k, dtype=int),
        lo=np.concatenate([np.zeros((1, k)), f[None], gd[None], g]), hi=np.repeat(_HI0, k, axis=1),
        trial=np.empty((3 + P, k)),
    )
    n_alive = k
    n_round = 0
    while n_alive:
        xt = s.x + s.t * s.d
        if n_alive == k:
            ft, gt = _evaluate(fg, xt, s.ids)
        else:
            a = np.flatnonzero(s.alive)
            fa, ga = _evaluate(fg, _cols(xt, a), s.ids[a])
            ft, gt = np.full(k, np.inf), np.zeros((P, k))
            ft[a], gt[:, a] = fa, ga
        n_evals += n_alive
        s.trials += 1
        trial = s.trial
        trial[0], trial[1], trial[3:] = s.t, ft, gt
        dphi = trial[2]
        np.einsum("ij,ij->j", gt, s.d, out=dphi)
        armijo = ft <= s.f + c1 * s.t * s.gd
        ok = armijo & (dphi >= c2 * s.gd)
        np.copyto(s.hi, trial[:3], where=~armijo)
        np.copyto(s.lo, trial, where=armijo & ~ok)
        done = ok | (s.trials >= max_linesearch)
        done &= s.alive
        searching = np.flatnonzero(s.alive & ~done)
        if searching.size:
            lo_s, hi_s = _cols(s.lo[:3], searching), _cols(s.hi, searching)
            s.t[searching] = _next_step(lo_s[0], hi_s[0], lo_s[1], lo_s[2], hi_s[1], hi_s[2], s.gd[searching])
        if not done.any():
            n_round += 1
            if callback is not None:
                callback(n_start - n_alive, n_start)
            continue

        # iterations that end this round: accept the Wolfe point, or after the last trial the
        # best sufficient-decrease point if there was one
        moved = done & (ok | (s.lo[0] > 0))
        new = np.where(ok, trial, s.lo)
        f_new, g_new = new[1], new[3:]
        step = np.where(moved, new[0], 0.0) * s.d
        y_new = g_new - s.g
        sy, yy = _dot(step, y_new), _dot(y_new, y_new)
        push = moved & (sy > 1e-10 * yy)

        # a failure with history is retried along the steepest descent; a second one is final
        new_status = np.full(k, -1)
        failed = done & ~moved
        new_status[failed & ~s.has_hist] = LINE_SEARCH_FAILED
        scale = np.maximum(np.maximum(np.abs(s.f), np.abs(f_new)), 1.0)
        new_status[moved & (s.f - f_new <= ftol * scale)] = CONVERGED_FTOL
        new_status[moved & (np.abs(g_new).max(axis=0) <= gtol)] = CONVERGED_GTOL
        s.x += step
        np.copyto(s.f, f_new, where=moved)
        np.copyto(s.g, g_new, where=moved)
        n_iter[s.ids[done]] += 1
        new_status[done & (new_status < 0) & (n_iter[s.ids] >= max_iter)] = MAX_ITER

        ended = new_status >= 0
        if ended.any():
            e, je = s.ids[ended], np.flatnonzero(ended)
            x_out[e], f_out[e], g_out[e], status[e] = _cols(s.x, je).T, s.f[je], _cols(s.g, je).T, new_status[je]
            s.alive &= ~ended
            n_alive = int(s.alive.sum())
        go = np.flatnonzero(done & ~ended)
        if go.size:
            _next_iteration(s, go, n_round, memory, step, y_new, sy, yy, push, failed)
        n_round += 1
        if n_alive < 0.88 * k:  # finished starts are dropped once they are an eighth of the batch
            s = s.take(np.flatnonzero(s.alive))
            k = s.k
        if callback is not None:
            callback(n_start - n_alive, n_start)
    return BatchResult(x=x_out, f=f_out, grad=g_out, n_iter=n_iter, status=status, n_evals=n_evals)


def _next_iteration(
    s: _Columns, go: np.ndarray, n_round: int, memory: int, step: np.ndarray, y_new: np.ndarray,
    sy: np.ndarray, yy: np.ndarray, push: np.ndarray, failed: np.ndarray,
) -> None:
    """Columns ``go`` finished an iteration in round ``n_round`` and go on: the new pair enters
    their histories, they get new directions and a fresh line search (in place on ``s``)."""
    P = s.x.shape[0]
    # the newest pair of every start sits in slot `n_round % memory`, the one before it in the
    # slot before, and so on, so ages cost no data movement; a start whose line search took
    # more than one trial has missed as many rounds and is rotated into place (starts grouped
    # by that lag, so each group is one roll)
    lag = (s.trials[go] - 1) % memory
    by_lag = np.argsort(lag, kind="stable")
    go, lag = go[by_lag], lag[by_lag]
    h_go, g_go = _cols(s.hist, go), _cols(s.g, go)
    cuts = [0, *(np.flatnonzero(np.diff(lag)) + 1), go.size]
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        if lag[a]:
            seg = h_go[:, :, a:b]
            seg[:] = np.concatenate((seg[-lag[a] :], seg[: -lag[a]]))
    n_on_time = cuts[1] if lag[0] == 0 else 0
    # the new pair (empty if the curvature test failed), and the clearing of the history for a
    # retry along the steepest descent
    slot = n_round % memory
    push_go, sy_go = push[go], sy[go]
    pair = h_go[slot]
    pair[:P], pair[P : 2 * P] = _cols(step, go), _cols(y_new, go)
    pair[2 * P] = 1.0 / sy_go
    pair[:, ~push_go] = 0.0
    gamma_go = np.where(push_go, sy_go / np.where(push_go, yy[go], 1.0), s.gamma[go])
    pairs_go = np.minimum(s.n_pairs[go] + 1, memory)
    clear = failed[go] & s.has_hist[go]
    if clear.any():
        h_go[:, 2 * P, clear], gamma_go[clear], pairs_go[clear] = 0.0, 0.0, 0
    n_use = int(pairs_go.max())
    order = [(n_round - i) % memory for i in range(n_use)]
    d_go, gd_go, hh_go = _direction(
        g_go, [h_go[j, :P] for j in order], [h_go[j, P : 2 * P] for j in order],
        [h_go[j, 2 * P] for j in order], gamma_go)
    forget = ~hh_go  # no history, or not a descent direction: history forgotten
    if forget.any():
        h_go[:, 2 * P, forget], gamma_go[forget], pairs_go[forget] = 0.0, 0.0, 0
    if clear.any() or forget.any():
        n_on_time = 0  # write all of it back
    s.hist[:, :, go[n_on_time:]] = h_go[:, :, n_on_time:]
    s.hist[slot, :, go[:n_on_time]] = h_go[slot, :, :n_on_time].T
    s.gamma[go], s.n_pairs[go] = gamma_go, pairs_go
    s.d[:, go], s.gd[go], s.has_hist[go] = d_go, gd_go, hh_go
    # a fresh line search from the new point
    s.t[go], s.trials[go] = 1.0, 0
    s.hi[:, go] = _HI0
    s.lo[0, go], s.lo[1, go], s.lo[2, go], s.lo[3:, go] = 0.0, s.f[go], gd_go, g_go


#: the upper end of a fresh bracket: (t, f, phi') = (inf, inf, 0)
_HI0 = np.array([[np.inf], [np.inf], [0.0]])


def _direction(
    g: np.ndarray, s_hist: Sequence[np.ndarray], y_hist: Sequence[np.ndarray],
    rho: Sequence[np.ndarray], gamma: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L-BFGS search directions (P, k) from gradients (P, k) and histories (m of (P, k)), newest
    pair first (two-loop recursion, Nocedal & Wright alg. 7.4), the slopes ``g.d`` and whether
    the history was used. Where the result is not a descent direction, or there is no history,
    the direction is the unit-length steepest descent."""
    q = g.copy()
    tmp = np.empty_like(q)
    alphas = []
    for s_i, y_i, rho_i in zip(s_hist, y_hist, rho, strict=True):  # newest first
        a_i = np.einsum("ij,ij,j->j", s_i, q, rho_i)
        q -= np.multiply(y_i, a_i, out=tmp)
        alphas.append(a_i)
    gnorm = np.sqrt(_dot(g, g))
    has_hist = gamma > 0
    # initial inverse Hessian s.y / y.y (N&W 7.20); without history a unit-length step
    q *= np.where(has_hist, gamma, 1.0 / np.maximum(gnorm, 1e-300))
    for s_i, y_i, rho_i, a_i in zip(*map(reversed, (s_hist, y_hist, rho, alphas)), strict=True):
        a_i -= np.einsum("ij,ij,j->j", y_i, q, rho_i)
        q += np.multiply(s_i, a_i, out=tmp)
    d = np.negative(q, out=q)
    gd = _dot(g, d)
    bad = ~(gd < 0) | ~np.isfinite(d).all(axis=0)
    if bad.any():  # not a descent direction: go downhill
        d[:, bad] = -g[:, bad] / np.maximum(gnorm[bad], 1e-300)
        gd[bad] = -gnorm[bad]
        has_hist &= ~bad
    return d, gd, has_hist


def _next_step(
    lo: np.ndarray, hi: np.ndarray, f_lo: np.ndarray, dphi_lo: np.ndarray, f_hi: np.ndarray,
    dphi_hi: np.ndarray, dphi0: np.ndarray,
) -> np.ndarray:
    """Next trial step of a weak Wolfe search, per start.

    With a bracket, the minimiser of the cubic matching ``phi`` and ``phi'`` at both ends
    (Nocedal & Wright eq. 3.59; the quadratic through ``phi(lo), phi'(lo), phi(hi)`` where the
    cubic has none), kept in the middle 80% of the bracket; a non-finite ``phi(hi)`` means:
    step back hard. Without a bracket, the zero of the secant of ``phi'`` through ``0`` and
    ``lo``, kept within ``[2 lo, 10 lo]`` (NaN -> ``2 lo``).
    """
    width = hi - lo
    d1 = dphi_lo + dphi_hi - 3.0 * (f_hi - f_lo) / width
    d2 = np.sqrt(d1 * d1 - dphi_lo * dphi_hi)
    cubic = hi - width * (dphi_hi + d2 - d1) / (dphi_hi - dphi_lo + 2.0 * d2)
    quad = lo - dphi_lo * width**2 / (2.0 * (f_hi - f_lo - dphi_lo * width))
    guess = np.where(np.isfinite(cubic), cubic, np.where(np.isfinite(quad), quad, lo + 0.5 * width))
    tenth = 0.1 * width
    inside = np.minimum(np.maximum(guess, lo + tenth), hi - tenth)
    inside = np.where(np.isfinite(f_hi), inside, lo + tenth)
    secant = lo * dphi0 / (dphi0 - dphi_lo)
    beyond = np.fmin(np.fmax(secant, 2.0 * lo), 10.0 * lo)
    return np.where(np.isfinite(hi), inside, beyond)
