"""Multi-start search whose cost grows with the runs, not with runs x starts.

Besiroglu et al. 2024 minimise the Huber objective from each of 4,500 starting points and keep
the best optimum; run one by one on every run that costs starts x runs x iterations, and it is
what made a 25,000-run fit take minutes. Here the grid is only *screened*, on a few runs, and
the full data see a handful of candidates:

1. **Screen** every start on a subsample of at most :data:`SCREEN_RUNS` runs spread evenly
   over the ranks of the loss (all runs when there are fewer): :data:`SCREEN_ITER` ``[0]``
   iterations for every start, then the best :data:`SCREEN_KEEP` of them on to
   :data:`SCREEN_ITER` ``[1]``, with loose tolerances. Only where a start is heading matters.
2. **Cluster**: of the screened points within :data:`BASIN_WINDOW` of the best, up to
   :data:`MAX_BASINS` representatives, first the best mutually distinct ones, then, for the
   rest, the points farthest from those already chosen, so both ends of a long valley are
   tried. (On Porian et al.'s ``rw_base_long_kaplan_kaplan_train`` the subsample's eight best
   points all lay along the E -> 0 valley; polished with L-BFGS-B's tolerances they stopped
   0.04% above the interior optimum the full grid finds, and only farther candidates reached
   it. Polished tightly, as below, the valley's points reach it too: the farthest points are
   insurance for a valley that ends in a basin of its own.)
3. **Polish** the representatives on all runs with tight tolerances (:data:`POLISH_FTOL`),
   and merge those that meet.

The screen costs starts x :data:`SCREEN_RUNS` x a few iterations whatever the number of runs,
the polish a few starts x runs; ``benchmarks/bench_fit.py`` checks the optimum against the
full grid on every run (Epoch's Chinchilla extraction, Porian et al.'s configurations,
synthetic data with near-tied basins).

The bootstrap (:func:`bootstrap`) starts every resample at the point estimate, all resamples
in one batch, in coordinates whitened at the estimate (:func:`whitening`): a resample's
optimum is a small move from the full data's, so that is where its search belongs. A resample
can *leave the basin*, and three things catch it:

- **rival basins**: every other polished basin whose objective difference from the best, on
  all runs, is less than :data:`COMPETE_Z` of its resampling standard deviation is a second
  warm start for every resample (a resample keeps the better of its fits);
- **suspects**: a resample whose fit did not converge, or whose draw is far out in the draws'
  distribution (robust z above :data:`OUTLIER_Z`), is refitted from a small multi-start
  (:func:`restart_starts`: every polished basin and grid points from the best basin's
  catchment, as the full-restart bootstrap starts every resample), keeping the better fit;
- **the audit**: :data:`AUDIT` resamples, evenly spaced, are refitted that way whatever the
  checks say. If one of those the checks let through finds a better optimum elsewhere, they
  missed one, and every resample is refitted from the multi-start instead (the full-restart
  bootstrap), which the result records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalinglab.fit.objective import LogModel, ObjectiveSpec
from scalinglab.fit.optimize import CONVERGED_FTOL, BatchResult, batched_lbfgs
from scalinglab.stats import bootstrap_weights

#: ``progress(stage, done, total)``: "starts" during the screen, "bootstrap" over resamples
Progress = Callable[[str, int, int], None]
#: builds a law's log-space model on given inputs (a subsample of the runs, or all of them)
ModelFactory = Callable[[Mapping[str, np.ndarray]], LogModel]

#: runs in the screening subsample; the screen's cost is proportional. With 64 the search
#: found the full grid's optimum on every data set tried (Epoch's extraction of the Chinchilla
#: runs, Porian et al.'s ten configurations, synthetic runs from 250 to 25,000 and the
#: two-basin case of ``twin_basin_runs``); 32 did too on the real ones in an earlier version
#: of the screen, with fewer screened points inside the window
SCREEN_RUNS = 64
#: L-BFGS iterations for every start, then at most for the survivors. After 30 iterations
#: only 1 of 225 survivors was within 30% of the best on Besiroglu-style synthetic runs and on
#: Epoch's; by 100 nearly all have converged (loosely) and 20-40 are
SCREEN_ITER = (4, 100)
#: share of the starts that survive the first screening stage (at least SCREEN_MIN_KEEP)
SCREEN_KEEP = 0.05
SCREEN_MIN_KEEP = 100
#: loose tolerances of the screen: it ranks basins, it does not resolve them
SCREEN_FTOL, SCREEN_GTOL = 1e-6, 1e-3
#: screened points whose subsample objective is within this fraction of the best are
#: candidates (a 64-run subsample's ranking of two basins is only good to tens of percent)
BASIN_WINDOW = 0.3
#: candidates polished on all runs: half the best distinct ones, half the farthest from them
MAX_BASINS = 8
#: two points are distinct when some coordinate differs by more than this x (1 + |x|)
DISTINCT = 0.05
#: tight tolerances for the polish and for every bootstrap fit. With L-BFGS-B's (ftol 2.2e-9)
#: a single run stops early along the flat valleys of these objectives (the full grid's best
#: start is the best converged of ~1,300 that end in its basin): on Epoch's runs, 46 of 100
#: resamples warm-started that way stopped more than 1e-6 (relative) above their optimum,
#: up to 1.1 away in log B; with these, none did (at most 5e-12), for 30% more evaluations
POLISH_FTOL, POLISH_GTOL = 1e-13, 1e-7

#: iteration limit of a bootstrap fit. Warm-started fits take 10-40 iterations (90th
#: percentile under 40 on 60-250 runs); a resample whose optimum runs off towards a boundary
#: (E -> 0, say) keeps making small progress for ~900, and was measured to make up most of a
#: 60-run bootstrap's time. It stops here, is counted as not converged, and is refitted
BOOT_MAX_ITER = 300
#: grid points from the best basin's catchment among the multi-start for suspect resamples
RESTART_GRID = 4
#: a draw whose robust z (|x - median| / (1.4826 MAD)) exceeds this in any coordinate is refit
OUTLIER_Z = 6.0
#: another basin is a second warm start for every resample when its objective difference
#: from the best, on all runs, is less than this many resampling standard deviations of it
COMPETE_Z = 8.0
#: resamples refitted from the multi-start whatever the checks say, to test the checks
AUDIT = 8
#: resample weights are handled in blocks of about this many (resamples x runs) elements
BOOT_BLOCK_ELEMENTS = 1 << 23


# -- the point estimate --------------------------------------------------------------------------


@dataclass
class PointFit:
    """The best optimum on all runs and the basins the search kept.

    ``x`` and ``f`` are the best optimum (fitting coordinates; objective in Huber/delta units);
    ``basins_x``/``basins_f`` every distinct polished optimum, best first (``basins_x[0]`` is
    ``x``); ``catchment`` the starts whose screen ended in the best basin.
    """

    x: np.ndarray
    f: float
    basins_x: np.ndarray
    basins_f: np.ndarray
    catchment: np.ndarray
    n_starts: int
    screen_runs: int
    #: starts carried on to the second screening stage
    n_screened: int
    #: candidates polished on all runs
    n_polished: int
    #: screened starts that converged within the screen's iterations
    n_converged: int
    #: rows x runs evaluated, screen and polish: a machine-independent cost
    n_elements: int
    #: the final polish's stopping status (see :mod:`scalinglab.fit.optimize`)
    status: int = CONVERGED_FTOL

    @property
    def n_reached_best(self) -> int:
        """Screened starts that ended in the best basin."""
        return len(self.catchment)

    @property
    def converged(self) -> bool:
        return self.status <= CONVERGED_FTOL


def screen_rows(loss: np.ndarray, m: int = SCREEN_RUNS) -> np.ndarray:
    """Indices of ``m`` runs spread evenly over the ranks of the loss (all runs if ``n <= m``),
    from the lowest loss to the highest, so the screen sees the whole range the law must span."""
    n = len(loss)
    if n <= m:
        return np.arange(n)
    order = np.argsort(loss, kind="stable")
    return np.sort(order[np.round(np.linspace(0, n - 1, m)).astype(int)])


def search(
    make_model: ModelFactory,
    inputs: Mapping[str, np.ndarray],
    loss: np.ndarray,
    starts: np.ndarray,
    *,
    spec: ObjectiveSpec = ObjectiveSpec(),
    model: LogModel | None = None,
    progress: Progress | None = None,
) -> PointFit:
    """The best optimum over ``starts`` (S, P) of the Huber objective on all runs: screen,
    cluster, polish (see the module docstring). ``model`` is ``make_model(inputs)`` if the caller
    has it already. Where no start gives a finite objective, ``f`` is inf."""
    loss = np.asarray(loss, dtype=float)
    starts = np.atleast_2d(np.asarray(starts, dtype=float))
    n, n_starts = len(loss), len(starts)
    model = make_model(inputs) if model is None else model
    rows = screen_rows(loss)
    sub_model = model if len(rows) == n else make_model({k: np.asarray(v)[rows] for k, v in inputs.items()})
    sub = spec.subset(rows).make(sub_model, loss[rows])
    m = len(rows)

    def stage1_progress(done: int, total: int) -> None:
        if progress is not None:
            progress("starts", done, total)

    # 1. screen: a few iterations for every start, the best on for some more
    # (a history as long as the iterations holds every pair they make: the same steps as
    # L-BFGS-B's 10, for less copying)
    first = batched_lbfgs(sub, starts, memory=SCREEN_ITER[0], max_iter=SCREEN_ITER[0], ftol=SCREEN_FTOL,
                          gtol=SCREEN_GTOL, callback=stage1_progress)
    f1 = np.where(np.isfinite(first.f), first.f, np.inf)
    n_keep = min(n_starts, max(SCREEN_MIN_KEEP, int(np.ceil(SCREEN_KEEP * n_starts))))
    keep = np.argsort(f1, kind="stable")[:n_keep]
    keep = keep[np.isfinite(f1[keep])]
    elements = first.n_evals * m

    def nothing(n_screened: int = 0) -> PointFit:
        nan = np.full(starts.shape[1], np.nan)
        return PointFit(nan, np.inf, nan[None], np.array([np.inf]), starts[:0], n_starts, m, n_screened,
                        0, 0, elements)

    if not keep.size:
        return nothing()
    second = batched_lbfgs(sub, first.x[keep], max_iter=SCREEN_ITER[1], ftol=SCREEN_FTOL, gtol=SCREEN_GTOL)
    elements += second.n_evals * m

    # 2. candidates: distinct points near the bottom, best first, then the farthest
    cand = representatives(second.x, second.f)
    if not cand.size:
        return nothing(len(keep))

    # 3. polish on all runs, tightly, and merge candidates that meet
    full = spec.make(model, loss)
    pol = minimize(full, model, second.x[cand], ftol=POLISH_FTOL, gtol=POLISH_GTOL)
    elements += pol.n_evals * n
    basins_x, basins_f, members = _distinct_optima(pol)
    if not np.isfinite(basins_f[0]):
        return nothing(len(keep))
    best_i = members[0][0]
    if progress is not None:
        progress("starts", n_starts, n_starts)

    # the starts whose screen ended in the best basin: nearest to a candidate that polished to it
    caught = _nearest(second.x, second.x[cand])
    in_best = np.isin(caught, members[0]) & np.isfinite(second.f)
    in_best &= second.f <= second.f[cand[0]] + BASIN_WINDOW * abs(second.f[cand[0]])
    catchment = starts[keep[in_best]]
    return PointFit(
        x=basins_x[0].copy(), f=float(basins_f[0]), basins_x=basins_x, basins_f=basins_f,
        catchment=catchment, n_starts=n_starts, screen_runs=m, n_screened=len(keep),
        n_polished=len(cand), n_converged=int(second.converged.sum()), n_elements=int(elements),
        status=int(pol.status[best_i]),
    )


def representatives(x: np.ndarray, f: np.ndarray, k: int = MAX_BASINS, window: float = BASIN_WINDOW,
                    tol: float = DISTINCT, spread: bool = True) -> np.ndarray:
    """Indices of up to ``k`` points, among those with ``f`` within ``window`` (relative) of the
    best: the best mutually distinct ones for half of the places (all of them if not
    ``spread``), then repeatedly the point farthest from every one chosen (distance: the
    largest coordinate difference, scaled by ``1 + |x|`` of the best point), until ``k`` or
    until every point is within ``tol``."""
    ok = np.flatnonzero(np.isfinite(f))
    if not ok.size:
        return ok
    best = f[ok].min()
    cand = ok[f[ok] <= best + window * max(abs(best), 1e-300)]
    cand = cand[np.argsort(f[cand], kind="stable")]
    xs = x[cand] / (1.0 + np.abs(x[cand[0]]))
    chosen = [0]
    dist = _maxdist(xs, xs[0])
    for i in range(1, len(cand)):
        if len(chosen) >= ((k + 1) // 2 if spread else k):
            break
        if dist[i] > tol:
            chosen.append(i)
            dist = np.minimum(dist, _maxdist(xs, xs[i]))
    while len(chosen) < k:
        j = int(np.argmax(dist))
        if dist[j] <= tol:
            break
        chosen.append(j)
        dist = np.minimum(dist, _maxdist(xs, xs[j]))
    return cand[chosen]


def _maxdist(xs: np.ndarray, point: np.ndarray) -> np.ndarray:
    return np.max(np.abs(xs - point), axis=1)


def _nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (scaled max-norm) of each row of ``x``."""
    scale = 1.0 + np.abs(centres[0])
    d = np.max(np.abs(x[:, None, :] - centres[None, :, :]) / scale, axis=2)
    return np.argmin(np.where(np.isfinite(d), d, np.inf), axis=1)


def _distinct_optima(res: BatchResult) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Polished points merged where they met (same optimum): the optima, best first, their
    objectives, and for each which polished points it holds. Non-finite ones are left out."""
    order = [i for i in np.argsort(res.f, kind="stable") if np.isfinite(res.f[i])]
    xs: list[np.ndarray] = []
    fs: list[float] = []
    members: list[list[int]] = []
    for i in order:
        for j, c in enumerate(xs):
            same_f = abs(res.f[i] - fs[j]) <= 1e-8 * max(abs(fs[j]), 1.0)
            if same_f and np.max(np.abs(res.x[i] - c) / (1.0 + np.abs(c))) <= 1e-3:
                members[j].append(int(i))
                break
        else:
            xs.append(res.x[i].copy())
            fs.append(float(res.f[i]))
            members.append([int(i)])
    if not xs:
        return np.full((1, res.x.shape[1]), np.nan), np.array([np.inf]), [[]]
    return np.array(xs), np.array(fs), members


# -- conditioning ------------------------------------------------------------------------------


def whitening(model: LogModel, x: np.ndarray) -> np.ndarray:
    """A (P, P) matrix ``T`` such that in the coordinates ``u`` of ``theta = x + u @ T`` the
    log-predictions' Jacobian at ``x`` has orthonormal columns (Gauss-Newton whitening).

    The fitting coordinates are badly conditioned (``a`` and ``alpha`` move ``a - alpha log N``
    together, with ``log N`` near 20): J^T J has a condition number near 1e6 at a Chinchilla
    optimum. L-BFGS is not invariant to that, so it is undone: measured on 2,500 synthetic runs,
    warm-started bootstrap fits took 13 objective evaluations instead of 60 and ended at the same
    optima (never more than 2e-14 above, relative). The Jacobian is a central difference of the
    model's forward pass; directions the data cannot see (tiny eigenvalues) are floored so the
    map stays invertible. Identity where the Jacobian is not finite.
    """
    x = np.asarray(x, dtype=float)
    P = len(x)
    h = 1e-6 * (1.0 + np.abs(x))
    pts = np.concatenate([x + np.diag(h), x - np.diag(h)])
    with np.errstate(all="ignore"):
        lp = model.forward(pts)[0]
        J = (lp[:P] - lp[P:]) / (2.0 * h[:, None])  # (P, n)
    if not np.all(np.isfinite(J)):
        return np.eye(P)
    lam, V = np.linalg.eigh(J @ J.T / J.shape[1])
    if not np.all(np.isfinite(lam)) or lam.max() <= 0:
        return np.eye(P)
    lam = np.maximum(lam, lam.max() * 1e-12)
    return (V / np.sqrt(lam)).T


class _Whitened:
    """``fg`` in whitened coordinates: row i of the batch is ``theta = origin_i + u @ T_i``."""

    def __init__(self, fg: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
                 origin: np.ndarray, T: np.ndarray) -> None:
        self.fg, self.origin, self.T = fg, origin, T

    def theta(self, u: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return self.origin[rows] + np.einsum("kp,kpq->kq", u, self.T[rows])

    def __call__(self, u: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f, g = self.fg(self.theta(u, rows), rows)
        return f, np.einsum("kq,kpq->kp", g, self.T[rows])


def minimize(
    fg: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]], model: LogModel,
    x0: np.ndarray, frame: np.ndarray | None = None, **options: Any,
) -> BatchResult:
    """:func:`batched_lbfgs` from ``x0``, each start in coordinates whitened at its row of
    ``frame`` (default: at its own start; distinct points are whitened once). Whiten near an
    optimum: at a far grid point the Jacobian can be nearly singular, and starts whitened there
    were measured to take 40 times the evaluations. ``x`` comes back in fitting coordinates;
    ``grad`` stays in the whitened ones (it is only a convergence record)."""
    x0 = np.atleast_2d(np.asarray(x0, dtype=float))
    frame = x0 if frame is None else np.broadcast_to(np.asarray(frame, dtype=float), x0.shape)
    uniq, inverse = np.unique(frame, axis=0, return_inverse=True)
    T = np.stack([whitening(model, u) for u in uniq])[inverse.ravel()]
    wfg = _Whitened(fg, x0, T)
    res = batched_lbfgs(wfg, np.zeros_like(x0), **options)
    res.x = wfg.theta(res.x, np.arange(len(x0)))
    return res


# -- the bootstrap -------------------------------------------------------------------------------


def restart_starts(point: PointFit, n_grid: int = RESTART_GRID) -> np.ndarray:
    """The multi-start for a resample: the estimate and every other distinct basin, plus
    ``n_grid`` starts spread through the best basin's catchment (some of the grid's breadth at a
    fraction of its cost)."""
    pick = point.catchment[np.unique(np.linspace(0, len(point.catchment) - 1,
                                                 min(n_grid, len(point.catchment))).round().astype(int))] \
        if len(point.catchment) else point.catchment
    finite = point.basins_x[np.isfinite(point.basins_f)]
    return np.vstack([finite, pick]) if len(pick) else finite


def restart_bootstrap(
    model: LogModel, loss: np.ndarray, starts: np.ndarray, weights: np.ndarray,
    spec: ObjectiveSpec = ObjectiveSpec(), progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Best optimum (fitting coordinates) and objective of every resample (rows of ``weights``)
    over all ``starts``, resamples x starts in one batch: the full-restart bootstrap. Rows whose
    every start failed come back as NaN with objective inf."""
    k, s = len(weights), len(starts)
    if k == 0:
        return np.empty((0, starts.shape[1])), np.empty(0)
    objective = spec.make(model, loss, weights, row_weights=np.repeat(np.arange(k), s))
    callback = None if progress is None else (lambda done, total: progress("bootstrap", done // s, k))
    res = batched_lbfgs(objective, np.tile(starts, (k, 1)), callback=callback)
    f = np.where(np.isfinite(res.f), res.f, np.inf).reshape(k, s)
    best = np.argmin(f, axis=1)
    out = res.x.reshape(k, s, -1)[np.arange(k), best]
    fb = f[np.arange(k), best]
    out[~np.isfinite(fb)] = np.nan
    return out, fb


@dataclass
class BootstrapFit:
    """Draws (fitting coordinates, NaN where a resample could not be fitted) and how they were
    found: which resamples were refitted from the multi-start and why."""

    theta: np.ndarray
    #: objective of each draw on its resample
    f: np.ndarray
    #: per resample: refitted from the multi-start
    refit: np.ndarray
    #: why resamples were suspected: counts by reason ("not converged", "outlier", "near basin")
    reasons: dict[str, int] = field(default_factory=dict)
    #: other basins every resample was also started from
    rivals: int = 0
    #: audited resamples, and how many of those the multi-start improved (left their basin)
    audited: int = 0
    audit_moved: int = 0
    #: every resample was refitted from the multi-start because the audit caught a miss
    escalated: bool = False
    #: resamples whose multi-start found a better optimum elsewhere than the warm fit's
    moved: int = 0
    n_elements: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "method": "warm start from the estimate" + (f" and {self.rivals} rival basin(s)" if self.rivals else "")
                      + ("; every resample refitted from a multi-start" if self.escalated
                         else "; suspect resamples refitted from a multi-start"),
            "refitted": int(self.refit.sum()),
            "left_basin": self.moved,
            "suspected": dict(self.reasons),
            "audited": self.audited,
            "audit_left_basin": self.audit_moved,
            "escalated": self.escalated,
        }


def bootstrap(
    model: LogModel,
    loss: np.ndarray,
    point: PointFit,
    n_draws: int,
    rng: np.random.Generator,
    *,
    spec: ObjectiveSpec = ObjectiveSpec(),
    audit: int = AUDIT,
    progress: Progress | None = None,
    counts: np.ndarray | None = None,
    refit_suspects: bool = True,
) -> BootstrapFit:
    """``n_draws`` bootstrap fits, warm-started from ``point.x`` (see the module docstring).

    Resample weights come from :func:`scalinglab.stats.bootstrap_weights` with ``rng``, drawn
    block by block (the same stream as drawing them at once) and kept as small integers, so
    1,000 resamples of 25,000 runs hold 25 MB of counts rather than 200 MB of floats.
    ``counts`` (``n_draws`` x runs), when given, are the resamples instead (e.g. whole clusters
    of rows drawn together); ``rng`` is then not used. ``refit_suspects=False`` leaves the
    suspect resamples as their warm fits, marked in ``refit``, for a caller that refits them
    its own way (no multi-start here; pass ``audit=0`` too).
    """
    loss = np.asarray(loss, dtype=float)
    n, P = len(loss), len(point.x)
    if counts is None:
        counts = _draw_counts(n, n_draws, rng)
    elif counts.shape != (n_draws, n):
        raise ValueError(f"counts must be ({n_draws}, {n}), not {counts.shape}")
    theta = np.full((n_draws, P), np.nan)
    f_best = np.full(n_draws, np.inf)
    suspect = np.zeros(n_draws, dtype=bool)
    moved = np.zeros(n_draws, dtype=bool)
    reasons = {"not converged": 0, "outlier": 0}
    # every resample starts at the estimate and at each basin it could plausibly prefer; the
    # audited ones also from the multi-start, in the same batch (one run of the optimiser)
    warm = np.vstack([point.x[None], _rival_basins(model, loss, point, spec)])
    starts = restart_starts(point)
    audited = np.zeros(n_draws, dtype=bool)
    if n_draws and audit > 0:
        audited[np.unique(np.linspace(0, n_draws - 1, min(audit, n_draws)).round().astype(int))] = True
    audit_moved = np.zeros(n_draws, dtype=bool)
    block = max(1, BOOT_BLOCK_ELEMENTS // max(n, 1))
    elements = 0
    for b0 in range(0, n_draws, block):
        k = min(n_draws, b0 + block) - b0
        sl = slice(b0, b0 + k)
        aud = np.flatnonzero(audited[sl])
        # rows: (resample, start) for the warm starts of all, then the multi-starts of the audited
        row_of = np.concatenate([np.repeat(np.arange(k), len(warm)), np.repeat(aud, len(starts))])
        x0 = np.concatenate([np.tile(warm, (k, 1)), np.tile(starts, (len(aud), 1))])
        is_warm = np.arange(len(x0)) < k * len(warm)
        obj = spec.make(model, loss, counts[sl], row_weights=row_of)
        callback = None if progress is None else (
            lambda done, total, b0=b0, k=k: progress("bootstrap", b0 + done * k // total, n_draws))
        res = minimize(obj, model, x0, frame=point.x, ftol=POLISH_FTOL, gtol=POLISH_GTOL,
                       max_iter=BOOT_MAX_ITER, callback=callback)
        elements += res.n_evals * n
        f = np.where(np.isfinite(res.f), res.f, np.inf)
        w_row = _best_rows(row_of, f, is_warm, k)
        fw = np.where(w_row >= 0, f[w_row], np.inf)
        ok = np.isfinite(fw)
        theta[sl][ok] = res.x[w_row[ok]]
        f_best[sl] = fw
        moved[sl] = ok & (w_row % len(warm) != 0)  # a rival basin won
        bad = ~ok | ~res.converged[np.maximum(w_row, 0)]
        suspect[sl] |= bad
        reasons["not converged"] += int(bad.sum())
        if len(aud):
            a_row = _best_rows(row_of, f, ~is_warm, k)[aud]
            fa, xa = f[a_row], res.x[a_row]
            better = fa < f_best[sl][aud]
            # the multi-start found another optimum, lower by more than polishing noise
            far = np.max(np.abs(xa - theta[sl][aud]) / (1.0 + np.abs(xa)), axis=1) > 1e-2
            lower = fa < f_best[sl][aud] - 1e-6 * np.maximum(np.abs(f_best[sl][aud]), 1.0)
            audit_moved[b0 + aud] = lower & (far | ~ok[aud])
            idx = b0 + aud[better]
            theta[idx], f_best[idx] = xa[better], fa[better]

    # draws far out in the draws' own distribution
    out = _outliers(theta) & ~suspect
    reasons["outlier"] = int(out.sum())
    suspect |= out
    # only a resample the checks let through counts against them
    missed = int((audit_moved & ~suspect).sum())
    refit = suspect | audited
    escalated = bool(missed)
    # suspects, or, when the audit caught a miss, every resample not refitted yet
    again = np.flatnonzero(~audited if escalated else suspect & ~audited)
    if not refit_suspects:
        again = again[:0]
    more, elements = _refit(model, loss, counts, again, starts, theta, f_best, spec, elements, point.x)
    if escalated:
        refit[:] = True
    if progress is not None:
        progress("bootstrap", n_draws, n_draws)
    return BootstrapFit(theta=theta, f=f_best, refit=refit, reasons={k: v for k, v in reasons.items() if v},
                        rivals=len(warm) - 1, audited=int(audited.sum()), audit_moved=missed,
                        escalated=escalated, moved=int((moved | more | audit_moved).sum()),
                        n_elements=int(elements))


def _best_rows(row_of: np.ndarray, f: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """For each of ``k`` resamples, the row (among ``mask``) with the lowest ``f``; -1 if none
    is finite."""
    fm = np.where(mask, f, np.inf)
    order = np.lexsort((fm, row_of))  # by resample, then objective
    r = row_of[order]
    first = order[np.concatenate([[True], r[1:] != r[:-1]])] if len(order) else order
    best = np.full(k, -1)
    best[row_of[first]] = np.where(np.isfinite(fm[first]), first, -1)
    return best


def _draw_counts(n: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """(n_draws, n) resample counts as the smallest unsigned integers that hold them."""
    block = max(1, BOOT_BLOCK_ELEMENTS // max(n, 1))
    parts = []
    for b0 in range(0, n_draws, block):
        w = bootstrap_weights(n, min(block, n_draws - b0), rng)
        parts.append(w.astype(np.uint8) if w.max(initial=0) <= 255 else w.astype(np.uint32))
    if not parts:
        return np.zeros((0, n), dtype=np.uint8)
    dtype = np.result_type(*parts)
    return np.concatenate([p.astype(dtype, copy=False) for p in parts])


def _rival_basins(model: LogModel, loss: np.ndarray, point: PointFit, spec: ObjectiveSpec) -> np.ndarray:
    """The other polished basins that a resample could prefer: those whose objective difference
    from the estimate on all runs is less than COMPETE_Z resampling standard deviations of it
    (with multinomial weights that sd is about the root sum of squares of the per-run
    differences)."""
    others = point.basins_x[1:][np.isfinite(point.basins_f[1:])]
    if not len(others):
        return others
    obj = spec.make(model, loss)
    h_best = spec.per_run(obj, point.x[None])[0]
    h = spec.per_run(obj, others)
    d = h - h_best
    z = d.sum(axis=1) / np.maximum(np.sqrt((d * d).sum(axis=1)), 1e-300)
    return others[z < COMPETE_Z]


def _outliers(theta: np.ndarray) -> np.ndarray:
    """Rows with a robust z above OUTLIER_Z in some coordinate (NaN rows are not outliers)."""
    ok = np.all(np.isfinite(theta), axis=1)
    if ok.sum() < 10:
        return np.zeros(len(theta), dtype=bool)
    med = np.median(theta[ok], axis=0)
    mad = 1.4826 * np.median(np.abs(theta[ok] - med), axis=0)
    z = np.abs(theta - med) / np.maximum(mad, 1e-12 * (1.0 + np.abs(med)))
    return ok & (z > OUTLIER_Z).any(axis=1)


def _refit(
    model: LogModel, loss: np.ndarray, counts: np.ndarray, which: np.ndarray, starts: np.ndarray,
    theta: np.ndarray, f: np.ndarray, spec: ObjectiveSpec, elements: int, frame: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Refit resamples ``which`` from ``starts`` (and their warm fit), in place on ``theta``
    and ``f`` where that is better, in coordinates whitened at ``frame`` (the estimate);
    returns which resamples moved to another optimum (better by more than polishing noise,
    and elsewhere)."""
    moved = np.zeros(len(theta), dtype=bool)
    n = len(loss)
    block = max(1, BOOT_BLOCK_ELEMENTS // max(n, 1))
    for b0 in range(0, len(which), block):
        idx = which[b0 : b0 + block]
        own = theta[idx]
        # each resample's own warm fit is one of its starts, so a refit never loses ground
        s = np.concatenate([np.repeat(starts[None], len(idx), axis=0), own[:, None]], axis=1)
        has_own = np.all(np.isfinite(own), axis=1)
        s[~has_own, -1] = starts[0]
        k, m = len(idx), s.shape[1]
        obj = spec.make(model, loss, counts[idx], row_weights=np.repeat(np.arange(k), m))
        res = minimize(obj, model, s.reshape(k * m, -1), frame=frame, ftol=POLISH_FTOL, gtol=POLISH_GTOL,
                       max_iter=BOOT_MAX_ITER)
        elements += res.n_evals * n
        fr = np.where(np.isfinite(res.f), res.f, np.inf).reshape(k, m)
        best = np.argmin(fr, axis=1)
        fb = fr[np.arange(k), best]
        xb = res.x.reshape(k, m, -1)[np.arange(k), best]
        better = fb < f[idx]
        far = np.max(np.abs(xb - own) / (1.0 + np.abs(own)), axis=1) > 1e-2
        moved[idx] = (fb < f[idx] - 1e-6 * np.maximum(np.abs(f[idx]), 1.0)) & (far | ~has_own)
        theta[idx[better]], f[idx[better]] = xb[better], fb[better]
    return moved, elements
