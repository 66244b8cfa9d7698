"""Loss-curve laws: the loss at every step of a run as a function of its learning-rate schedule.

Two laws, each data that owns its maths (parameters, their starting grid, the features a schedule
gives, values and gradients); the fitting engine is :mod:`scalinglab.fit.curves`.

**Multi-power law** (Luo et al., ICLR 2025, "A Multi-Power Law for Loss Curve Prediction Across
Learning Rate Schedules")::

    L(t) = L0 + A * S(t)^-alpha - LD(t)
    LD(t) = B * sum_{p < k <= t} (lr[k-1] - lr[k]) * G(lr[k]^-gamma * (S(t) - S(k-1)))
    G(x) = 1 - (C x + 1)^-beta

with ``S(t)`` the lr summed over steps ``0..t`` (the paper's ``S1(t) + S_W``: warmup included) and
``p`` the end of the warmup (the first step at the peak lr), so the loss reduction counts the lr's
changes after the warmup, decreases and any later increase alike.

**Momentum law** (Tissue et al. 2024, arXiv 2408.11029, "Scaling Law with Learning Rate
Annealing")::

    L(t) = L0 + A * S(t)^-alpha - C * S2(t),   S2(t) = sum_{p < i <= t} m_i,
    m_i = lambda * m_{i-1} + (lr[i-1] - lr[i])

with the decay factor lambda a setting of the law (0.999, the paper's choice), not a parameter.

**How LD is computed.** Exactly, LD at one step is a sum over every earlier step whose lr changed:
for a 24,000-step cosine logged every 128 steps that is ~2 million terms per evaluation, too many
for thousands of fit evaluations. The terms are smooth in k except near ``k = t``, so the steps
before ``t`` are grouped by their distance ``t - k``: one group per step for the nearest
``NEAR`` steps, then groups growing geometrically (each ``ratio`` times wider than its distance
allows). A group enters with its summed lr change and, as its representative, the change-weighted
means of ``lr[k]`` and ``S(k-1)`` (increases and decreases kept apart, so weights never cancel).
The running sums themselves are exact. ``ratio=None`` gives the exact sum (one group per step).
Measured on the released cosine and WSD schedules: ratio 1.1 (the fit's) changes L by < 5e-6
relatively (1e-5 in loss, a tenth of the runs' seed noise), ratio 1.05 (predictions) by < 1e-6
(``tests/test_laws_curves.py``), with ~80 and ~160 terms per step instead of up to 72,000.
Where the lr rises again after the warmup (a second cycle), LD is the difference of the rises'
and the falls' terms and their errors add: 2e-5 (fit) and 1.2e-5 (prediction) measured for a
re-warmup over 500 steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.signal import lfilter

from scalinglab.errors import ParameterError
from scalinglab.laws.schedules import Schedule

__all__ = ["CURVE_LAWS", "CurveDesign", "CurveLaw", "MomentumLaw", "MultiPowerLaw", "StackedLaw",
           "get_curve_law", "list_curve_laws"]

#: distances (in steps) below which every step is its own group
NEAR = 16
#: group growth used when fitting, and when predicting (see the module docstring for the error)
FIT_RATIO = 1.1
PREDICT_RATIO = 1.05
#: the lr under ``lr^-gamma`` is floored at this share of the schedule's peak (a decay to exactly
#: zero would otherwise give 0 * inf)
LR_FLOOR = 1e-3
#: elements (rows of theta x grouped terms) per work array of the decay sum. It used to make
#: every array for all rows at once: 100 bootstrap rows x 51,858 terms (two 72,000-step curves
#: and one of 24,000) is 41 MB an array, ~20 of them live (a 910 MB peak), and the sparse
#: product's transposed copy of them was a quarter of the fit's CPU time. Measured per
#: evaluation with gradient at 100 rows: 2**12-2**15 alike (90 ms), 2**20 225 ms, all rows at
#: once 1,350 ms; the values are bit for bit the same (each row's terms summed in one order).
DECAY_CHUNK = 1 << 15
#: grouped terms one design holds in :meth:`CurveLaw.designs` (``value``, predictions): the
#: authors' exact sum (``ratio=None``) on the 546 logged steps of a 72,000-step cosine is 20.2
#: million terms, 2.3 GB to prepare in one design and 3 GB with its evaluation (tracemalloc);
#: in slices of 2**20 terms (~40 MB a design) it is the same numbers
DESIGN_TERMS = 1 << 20


@dataclass(frozen=True, eq=False)
class CurveDesign:
    """What a law needs of some schedules at some steps, computed once per fit or prediction.

    ``point_run`` maps each point (a step of a run) to its run; ``S`` is the summed lr at each
    point; ``terms`` holds a law's own features (the multi-power law's grouped lr changes).
    """

    steps: np.ndarray
    point_run: np.ndarray
    S: np.ndarray
    terms: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.steps.size)


class CurveLaw:
    """A loss-curve law: parameters (all positive, fitted as logarithms), their starting grid and
    the law's value and gradient at a design."""

    name: ClassVar[str]
    params: ClassVar[tuple[str, ...]]
    formula: ClassVar[str]
    title: ClassVar[str]
    citation: ClassVar[str]
    #: where ``fit_curves(..., shrink=...)`` pulls parameters that few runs leave loose (a
    #: Gaussian prior on their logarithms); empty: the law has none
    prior_centre: ClassVar[Mapping[str, float]] = {}

    def settings(self) -> dict[str, Any]:
        return {}

    def prepare(self, schedules: Sequence[Schedule], steps: Sequence[np.ndarray],
                ratio: float | None = FIT_RATIO) -> CurveDesign:  # pragma: no cover
        raise NotImplementedError

    def evaluate(self, theta: np.ndarray, design: CurveDesign, grad: bool = True
                 ) -> tuple[np.ndarray, np.ndarray | None]:  # pragma: no cover
        """Loss (K, n) at log-parameters ``theta`` (K, P), and its gradient (K, n, P)."""
        raise NotImplementedError

    def starts(self, design: CurveDesign, loss: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Starting log-parameters (S, P), the linear parameters solved for each grid point."""
        raise NotImplementedError

    def identified(self, design: CurveDesign) -> list[str]:
        """Warnings about parameters the design cannot pin down (empty: all identified)."""
        return []

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.settings()}

    def describe(self) -> dict[str, Any]:
        """The catalogue's entry: name, formula, parameters, source (``fit laws`` lists it)."""
        return {"name": self.name, "formula": self.formula, "params": list(self.params),
                "inputs": ["step", "lr schedule"], "kind": "curve law",
                "provenance": {"source": self.citation}}

    def parts(self, theta: np.ndarray, design: CurveDesign) -> tuple[float, np.ndarray, np.ndarray]:
        """The loss at one log-parameter row split as ``level + power + rest``: the constant
        (L0), the power term (``A * S^-alpha``) and the schedule's decay term, each (n,) where
        arrays. Forecasts refit the level and the power term's scale to a run's own curve."""
        theta = np.asarray(theta, dtype=float)
        full = self.evaluate(theta[None], design, grad=False)[0][0]
        base = theta.copy()
        base[:2] = -np.inf  # L0 = A = 0: what is left is the decay term
        with np.errstate(divide="ignore", invalid="ignore"):
            rest = self.evaluate(base[None], design, grad=False)[0][0]
        level = float(np.exp(theta[0]))
        return level, full - rest - level, rest

    def points_per_design(self, schedule: Schedule, ratio: float | None) -> int:
        """How many steps of ``schedule`` one design may hold (:meth:`designs`); every step
        where the law's features do not grow with the schedule's length."""
        return max(1, schedule.steps)

    def designs(self, schedule: Schedule, steps: np.ndarray, ratio: float | None = PREDICT_RATIO
                ) -> Iterator[tuple[slice, CurveDesign]]:
        """``steps`` of one schedule in slices of at most :meth:`points_per_design` steps, each
        with its design: a point's loss depends on its own step alone, so evaluating slice by
        slice gives the whole design's values, bit for bit, in bounded memory."""
        steps = np.asarray(steps, dtype=np.int64)
        _base_design([schedule], [steps])  # bad steps: the whole range in the message, once
        per = self.points_per_design(schedule, ratio)
        for a in range(0, max(steps.size, 1), per):
            yield slice(a, a + per), self.prepare([schedule], [steps[a:a + per]], ratio)

    def value(self, params: Mapping[str, float], schedule: Schedule,
              steps: Sequence[int] | np.ndarray, ratio: float | None = PREDICT_RATIO) -> np.ndarray:
        """The law's loss at ``steps`` of ``schedule`` with ``params`` (a plain evaluation)."""
        theta = np.log([[float(params[p]) for p in self.params]])
        steps = np.asarray(steps, dtype=int)
        out = np.empty(steps.size)
        for sl, design in self.designs(schedule, steps, ratio):
            out[sl] = self.evaluate(theta, design, grad=False)[0][0]
        return out


def _base_design(schedules: Sequence[Schedule], steps: Sequence[np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(schedules) != len(steps):
        raise ParameterError("one array of steps per schedule", "steps")
    all_steps, runs, S = [], [], []
    for i, (sched, st) in enumerate(zip(schedules, steps, strict=True)):
        st = np.asarray(st, dtype=np.int64)
        if st.size and (st.min() < 0 or st.max() > sched.last_step):
            raise ParameterError(f"steps must lie in 0..{sched.last_step} (schedule "
                                 f"{sched.name!r}), not {int(st.min())}..{int(st.max())}", "steps")
        all_steps.append(st)
        runs.append(np.full(st.size, i))
        S.append(sched.cumulative[st])
    return np.concatenate(all_steps), np.concatenate(runs), np.concatenate(S)


def _distance_edges(max_distance: int, ratio: float | None) -> np.ndarray:
    """Group edges in distance ``t - k``: 0, 1, .., NEAR, then each group ``ratio - 1`` times
    its distance wide (every step its own group when ``ratio`` is None)."""
    if ratio is None:
        return np.arange(max_distance + 2)
    edges = list(range(min(NEAR, max_distance + 1) + 1))
    while edges[-1] <= max_distance:
        edges.append(max(edges[-1] + 1, int(np.ceil(edges[-1] * ratio))))
    return np.asarray(edges)


def grouped_changes(schedule: Schedule, steps: np.ndarray, ratio: float | None = FIT_RATIO,
                    warmup_terms: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The lr changes after the warmup that precede each of ``steps``, grouped by distance.

    Returns ``(point, lr_node, dS, weight)``, one row per non-empty group: the index into
    ``steps`` it belongs to, its change-weighted mean lr, ``S(t) - mean S(k-1)`` and its summed
    change ``lr[k-1] - lr[k]``. With ``ratio=None`` every change is its own row (exact).
    ``warmup_terms``: the warmup's rises count too (the authors' released code sums from step 1).
    """
    lr, S = schedule.lr, schedule.cumulative
    p = 0 if warmup_terms else schedule.peak_step
    w = np.zeros(lr.size)
    w[p + 1:] = lr[p:-1] - lr[p + 1:]
    S_prev = np.concatenate([[0.0], S[:-1]])
    eta = np.maximum(lr, LR_FLOOR * lr.max())
    steps = np.asarray(steps, dtype=np.int64)
    out: list[tuple[np.ndarray, ...]] = []
    for sign in (1.0, -1.0):
        ws = np.where(sign * w > 0, w, 0.0)
        if not ws.any():
            continue
        # prefix sums with a leading zero: P[k + 1] = sum_{j <= k}
        cw = np.concatenate([[0.0], np.cumsum(ws)])
        ce = np.concatenate([[0.0], np.cumsum(ws * eta)])
        cs = np.concatenate([[0.0], np.cumsum(ws * S_prev)])
        if ratio is None:
            # exact: every step k in (p, t] with a change, for every t
            ks = np.flatnonzero(ws)
            pt, kk = np.nonzero(ks[None, :] <= steps[:, None])
            k = ks[kk]
            out.append((pt, eta[k], S[steps[pt]] - S_prev[k], ws[k]))
            continue
        edges = _distance_edges(int(steps.max() - p) if steps.size else 0, ratio)
        # group j of point i holds k in (t - edges[j+1], t - edges[j]] and k > p
        hi = steps[:, None] - edges[None, :-1]
        lo = np.maximum(steps[:, None] - edges[None, 1:], p)
        valid = hi > lo
        hi, lo = np.where(valid, hi, 0) + 1, np.where(valid, lo, 0) + 1
        W = cw[hi] - cw[lo]
        nz = valid & (np.abs(W) > 0)
        pt, gj = np.nonzero(nz)
        Wn = W[pt, gj]
        e = (ce[hi[pt, gj]] - ce[lo[pt, gj]]) / Wn
        s = (cs[hi[pt, gj]] - cs[lo[pt, gj]]) / Wn
        # S(t) - S(k-1) > 0 for every k <= t, so for their weighted mean too; a group of tiny
        # changes (an lr decayed to ~1e-12, as a cosine to 0 ends) divides a difference of
        # prefix sums ~1e-19 off by its ~1e-12 weight, and the rounding took this below 0
        # (-1e-7): log1p of C eta^-gamma dS < -1, NaN bands at the last steps. Held just above
        # 0 (not at 0: a draw whose eta^-gamma overflows would make inf * 0 = NaN), so the term
        # adds at most its ~1e-12 weight; no other value moves (the released curves' fits are
        # the same bit for bit).
        out.append((pt, e, np.maximum(S[steps[pt]] - s, np.finfo(float).tiny), Wn))
    if not out:
        empty = np.zeros(0)
        return empty.astype(int), empty, empty, empty
    pt, e, dS, W = (np.concatenate(parts) for parts in zip(*out, strict=True))
    order = np.argsort(pt, kind="stable")
    return pt[order], e[order], dS[order], W[order]


class MultiPowerLaw(CurveLaw):
    """Luo et al. 2025's multi-power law (see the module docstring)."""

    name = "multipower"
    params = ("L0", "A", "alpha", "B", "C", "beta", "gamma")
    formula = ("L0 + A*S(t)^-alpha - B*sum_k (lr_(k-1) - lr_k)*(1 - (C*lr_k^-gamma*(S(t) - S(k-1))"
               " + 1)^-beta)")
    title = "multi-power law"
    citation = "Luo et al., ICLR 2025 (A Multi-Power Law for Loss Curve Prediction)"
    #: the decay term's shape, the centre of the starting grid (the paper's magnitudes): three
    #: 24k-step runs pin down B*G, not C, beta, gamma apiece (B and beta span 8.5 decades over
    #: block resamples of the released 25M runs, UNPINNED_DECADES in fit/curves.py)
    prior_centre = {"C": 2.0, "beta": 0.6, "gamma": 0.5}

    def __init__(self, warmup_terms: bool = False) -> None:
        self.warmup_terms = bool(warmup_terms)

    def settings(self) -> dict[str, Any]:
        return {"warmup_terms": self.warmup_terms} if self.warmup_terms else {}

    def points_per_design(self, schedule: Schedule, ratio: float | None) -> int:
        # a point holds at most one term per step with an lr change (exact) or two per group
        per_point = (schedule.steps if ratio is None
                     else 2 * _distance_edges(schedule.steps, ratio).size)
        return max(1, DESIGN_TERMS // max(per_point, 1))

    def prepare(self, schedules: Sequence[Schedule], steps: Sequence[np.ndarray],
                ratio: float | None = FIT_RATIO) -> CurveDesign:
        all_steps, runs, S = _base_design(schedules, steps)
        pts, etas, dSs, ws = [], [], [], []
        offset = 0
        for sched, st in zip(schedules, steps, strict=True):
            st = np.asarray(st, dtype=np.int64)
            if st.size:
                pt, e, dS, w = grouped_changes(sched, st, ratio, self.warmup_terms)
                pts.append(pt + offset)
                etas.append(e)
                dSs.append(dS)
                ws.append(w)
            offset += st.size
        pt = np.concatenate(pts) if pts else np.zeros(0, dtype=int)
        n = all_steps.size
        M = sp.csr_matrix((np.ones(pt.size), (pt, np.arange(pt.size))), shape=(n, pt.size))
        terms = {"M": M, "log_eta": np.log(np.concatenate(etas)) if etas else np.zeros(0),
                 "dS": np.concatenate(dSs) if dSs else np.zeros(0),
                 "w": np.concatenate(ws) if ws else np.zeros(0)}
        return CurveDesign(all_steps, runs, S, terms)

    def _decay(self, theta: np.ndarray, d: CurveDesign, grad: bool
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """LD/B (K, n) and, with ``grad``, its derivatives in log C, log beta, log gamma (3, K, n).

        The terms are worked through ``DECAY_CHUNK // terms`` rows of ``theta`` at a time (or,
        where one row has more terms than that, one row ``DECAY_CHUNK`` terms at a time), each
        column written straight into the (terms, columns) layout the sparse sum reads, so no
        (K, terms) array and no transposed copy of one is ever made (see ``DECAY_CHUNK``)."""
        t = d.terms
        K = theta.shape[0]
        m = t["w"].size
        if m == 0:
            return np.zeros((K, d.n)), (np.zeros((3, K, d.n)) if grad else None)
        C, beta, gamma = (np.exp(theta[:, i])[:, None] for i in (4, 5, 6))
        log_eta, dS, w = t["log_eta"][None, :], t["dS"][None, :], t["w"][None, :]
        cols = 4 if grad else 1
        G = np.empty((K, d.n))
        dG = np.empty((3, K, d.n)) if grad else None
        rows = max(1, min(K, DECAY_CHUNK // m))
        # a row with more terms than DECAY_CHUNK (a prediction's design: up to DESIGN_TERMS, 2**20)
        # is worked through DECAY_CHUNK terms at a time: its ~10 work arrays of 8 MB each,
        # freshly allocated, went to memory and back (and page-faulted) at every operation;
        # elementwise, so each value is the same. Measured on 1M terms, one row, no gradient:
        # 17 ms whole, 7 ms in blocks of 2**15 (the band at every step of a 72,000-step cosine
        # is 101 rows x 67 such designs)
        span = m if rows > 1 else min(m, DECAY_CHUNK)
        # the sum's input, (terms, cols * k) in C order: column j * k + r holds column j of row
        # r, written through a transposed view (products only, so each value is rounded as in a
        # fresh array; the exponentials and logarithms write to contiguous arrays as before)
        buf = np.empty(m * cols * rows)
        # the chain's work arrays, made once and written in place (out=): measured on 400k
        # terms a row, 2.6 -> 2.1 ms, the same values (the same operations in the same order)
        work = np.empty((6 if grad else 2, rows * span))
        for a in range(0, K, rows):
            b = min(K, a + rows)
            k = b - a
            lay = buf[:m * cols * k].reshape(m, cols * k)
            for i in range(0, m, span):
                e = slice(i, i + span)
                size = min(span, m - i)
                out = [lay[e, j * k:(j + 1) * k].T for j in range(cols)]
                expo, Cx, *more = (x[:k * size].reshape(k, size) for x in work)
                lu, v, wbv, q = more if grad else (expo, expo, None, None)  # one array, reused
                # a wild trial point overflows; the fit rejects its inf
                with np.errstate(over="ignore"):
                    np.multiply(-gamma[a:b], log_eta[:, e], out=expo)
                    np.exp(expo, out=Cx)
                    np.multiply(C[a:b], Cx, out=Cx)
                    np.multiply(Cx, dS[:, e], out=Cx)
                    np.log1p(Cx, out=lu)
                    np.multiply(-beta[a:b], lu, out=v)
                    np.exp(v, out=v)
                np.multiply(w[:, e], 1.0 - v, out=out[0])
                if wbv is not None and q is not None:
                    np.multiply(w[:, e], beta[a:b], out=wbv)
                    np.multiply(wbv, v, out=wbv)
                    np.multiply(wbv, Cx, out=q)
                    np.divide(q, np.add(1.0, Cx, out=v), out=q)  # v is spent: 1 + Cx in it
                    out[1][...] = q
                    np.multiply(wbv, lu, out=out[2])
                    np.multiply(q, expo, out=out[3])
            # (n, cols * k): each point's terms summed in their order, every column alike
            summed = t["M"] @ lay
            G[a:b] = summed[:, :k].T
            if dG is not None:
                for j in range(1, cols):
                    dG[j - 1, a:b] = summed[:, j * k:(j + 1) * k].T
        return G, dG

    def _combine(self, theta: np.ndarray, design: CurveDesign, G: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``L0 + A S^-alpha - B G`` at log-parameters ``theta`` (K, P) given the decay sum over B,
        ``G`` (K, n) (:meth:`_decay`): (loss, power term, LD)."""
        L0, A, alpha, B = (np.exp(theta[:, i])[:, None] for i in range(4))
        power = A * np.exp(-alpha * np.log(design.S)[None, :])
        LD = B * G
        return L0 + power - LD, power, LD

    def evaluate(self, theta: np.ndarray, design: CurveDesign, grad: bool = True
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        G, dG = self._decay(theta, design, grad)
        loss, power, LD = self._combine(theta, design, G)
        if not grad:
            return loss, None
        assert dG is not None
        L0, alpha, B = (np.exp(theta[:, i])[:, None] for i in (0, 2, 3))
        logS = np.log(design.S)[None, :]
        J = np.stack([np.broadcast_to(L0, loss.shape), power, -alpha * logS * power, -LD,
                      -B * dG[0], -B * dG[1], -B * dG[2]], axis=-1)
        return loss, J

    def parts(self, theta: np.ndarray, design: CurveDesign) -> tuple[float, np.ndarray, np.ndarray]:
        """:meth:`CurveLaw.parts` with the decay sum made once: it evaluated the law twice, the
        second time with L0 = A = 0 for the decay term alone, and the sum (nearly all of the
        cost) does not depend on L0 or A. The same arithmetic on the same sum, so the same
        numbers bit for bit; a forecast's draws (``fit.curves._transfer``) in half the time."""
        theta = np.asarray(theta, dtype=float)
        G, _ = self._decay(theta[None], design, grad=False)
        full = self._combine(theta[None], design, G)[0][0]
        base = theta.copy()
        base[:2] = -np.inf  # L0 = A = 0: what is left is the decay term
        with np.errstate(divide="ignore", invalid="ignore"):
            rest = self._combine(base[None], design, G)[0][0]
        level = float(np.exp(theta[0]))
        return level, full - rest - level, rest

    def identified(self, design: CurveDesign) -> list[str]:
        w = design.terms["w"]
        if w.size == 0 or not np.any(w):
            return ["no run in the fit changes its lr after the warmup: B, C, beta and gamma "
                    "(the decay term) are not identified, so predictions for decaying schedules "
                    "are not to be trusted"]
        return []

    def starts(self, design: CurveDesign, loss: np.ndarray) -> np.ndarray:
        """A grid over (alpha, C, beta, gamma); L0, A, B by least squares for each."""
        grid = np.array(np.meshgrid([0.3, 0.5, 0.8], [0.5, 2.0, 8.0], [0.3, 0.6, 1.2],
                                    [0.2, 0.5, 0.8], indexing="ij")).reshape(4, -1).T
        K = grid.shape[0]
        theta = np.zeros((K, 7))
        theta[:, [2, 4, 5, 6]] = np.log(grid)
        G, _ = self._decay(theta, design, grad=False)
        power = np.exp(-grid[:, [0]] * np.log(design.S)[None, :])
        out = np.empty((K, 7))
        for i in range(K):
            X = np.column_stack([np.ones(design.n), power[i], -G[i]])
            coef = _nonneg_lstsq(X, loss)
            out[i] = [coef[0], coef[1], grid[i, 0], coef[2], *grid[i, 1:]]
        out[:, 0] = np.clip(out[:, 0], 0.05 * loss.min(), 0.99 * loss.min())
        out[:, 1] = np.maximum(out[:, 1], 1e-3 * loss.min())
        out[:, 3] = np.maximum(out[:, 3], 1.0)
        return np.log(out)


class MomentumLaw(CurveLaw):
    """Tissue et al. 2024's law with an annealing momentum (see the module docstring)."""

    name = "momentum"
    params = ("L0", "A", "alpha", "C")
    formula = "L0 + A*S(t)^-alpha - C*S2(t), S2 = sum_i m_i, m_i = decay*m_(i-1) + lr_(i-1) - lr_i"
    title = "momentum law (Tissue et al.)"
    citation = "Tissue et al. 2024, arXiv 2408.11029 (Scaling Law with Learning Rate Annealing)"

    def __init__(self, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ParameterError(f"decay must be in [0, 1), not {decay!r}", "decay")
        self.decay = float(decay)

    def settings(self) -> dict[str, Any]:
        return {"decay": self.decay}

    def annealing_area(self, schedule: Schedule) -> np.ndarray:
        """``S2`` at every step, exactly (the momentum recursion as a linear filter)."""
        lr, p = schedule.lr, schedule.peak_step
        change = np.zeros(lr.size)
        change[p + 1:] = lr[p:-1] - lr[p + 1:]
        momentum = lfilter([1.0], [1.0, -self.decay], change)
        return np.cumsum(momentum)

    def prepare(self, schedules: Sequence[Schedule], steps: Sequence[np.ndarray],
                ratio: float | None = FIT_RATIO) -> CurveDesign:
        all_steps, runs, S = _base_design(schedules, steps)
        S2 = np.concatenate([self.annealing_area(s)[np.asarray(st, dtype=int)]
                             for s, st in zip(schedules, steps, strict=True)])
        return CurveDesign(all_steps, runs, S, {"S2": S2})

    def evaluate(self, theta: np.ndarray, design: CurveDesign, grad: bool = True
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        L0, A, alpha, C = (np.exp(theta[:, i])[:, None] for i in range(4))
        logS = np.log(design.S)[None, :]
        power = A * np.exp(-alpha * logS)
        anneal = C * design.terms["S2"][None, :]
        loss = L0 + power - anneal
        if not grad:
            return loss, None
        J = np.stack([np.broadcast_to(L0, loss.shape), power, -alpha * logS * power, -anneal],
                     axis=-1)
        return loss, J

    def identified(self, design: CurveDesign) -> list[str]:
        if not np.any(design.terms["S2"]):
            return ["no run in the fit changes its lr after the warmup: C (the annealing term) "
                    "is not identified"]
        return []

    def starts(self, design: CurveDesign, loss: np.ndarray) -> np.ndarray:
        alphas = np.array([0.2, 0.35, 0.5, 0.7, 1.0])
        out = np.empty((alphas.size, 4))
        for i, a in enumerate(alphas):
            X = np.column_stack([np.ones(design.n), design.S ** -a, -design.terms["S2"]])
            c = _nonneg_lstsq(X, loss)
            out[i] = [c[0], c[1], a, c[2]]
        out[:, 0] = np.clip(out[:, 0], 0.05 * loss.min(), 0.99 * loss.min())
        out[:, 1] = np.maximum(out[:, 1], 1e-3 * loss.min())
        out[:, 3] = np.maximum(out[:, 3], 1e-3)
        return np.log(out)


class StackedLaw(CurveLaw):
    """Several fitted curve laws averaged with fixed weights (stacking, Wolpert 1992; weights
    from each law's leave-one-run-out predictions, Yao et al. 2018): ``L = sum_k w_k L_k``.

    Its parameters are the components' own, each named ``label:param`` (``multipower:L0``,
    ``multipower~1:beta`` for the multi-power law fitted with shrink 1, ``momentum:C``); the
    weights are settings, not parameters: each component is fitted on its own
    (:func:`scalinglab.fit.curves.fit_curves` with ``law="stack"``), never jointly.
    """

    name = "stack"
    title = "stacked curve laws"
    citation = ("stacking of leave-one-run-out predictions (Wolpert 1992; Yao et al. 2018, "
                "Bayesian Analysis 13(3))")
    formula = "sum_k w_k L_k(t)"

    def __init__(self, components: Sequence[Mapping[str, Any]]) -> None:
        if not components:
            raise ParameterError("a stack needs at least one component", "components")
        self.labels = [str(c["label"]) for c in components]
        self.weights = np.asarray([float(c["weight"]) for c in components])
        if len(set(self.labels)) != len(self.labels):
            raise ParameterError("component labels must differ", "components")
        if (self.weights < 0).any() or not np.isclose(self.weights.sum(), 1.0):
            raise ParameterError("stack weights must be >= 0 and sum to 1", "components")
        self.laws = [c["law"] if isinstance(c["law"], CurveLaw) else law_from_dict(c["law"])
                     for c in components]
        sizes = [len(law.params) for law in self.laws]
        self.slices = [slice(a, a + n) for a, n in zip(np.cumsum([0, *sizes[:-1]]), sizes,
                                                       strict=True)]
        self.params = tuple(f"{lb}:{p}" for lb, law in zip(self.labels, self.laws, strict=True)
                            for p in law.params)  # type: ignore[misc]

    def settings(self) -> dict[str, Any]:
        return {"components": [{"label": lb, "weight": float(w), "law": law.to_dict()}
                               for lb, w, law in zip(self.labels, self.weights, self.laws,
                                                     strict=True)]}

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["components"] = self.settings()["components"]
        return out

    def points_per_design(self, schedule: Schedule, ratio: float | None) -> int:
        return min(law.points_per_design(schedule, ratio) for law in self.laws)

    def prepare(self, schedules: Sequence[Schedule], steps: Sequence[np.ndarray],
                ratio: float | None = FIT_RATIO) -> CurveDesign:
        designs = [law.prepare(schedules, steps, ratio) for law in self.laws]
        d = designs[0]
        return CurveDesign(d.steps, d.point_run, d.S, {"designs": designs})

    def components(self, theta: np.ndarray, design: CurveDesign) -> np.ndarray:
        """Each component's loss (k, K, n) at log-parameters ``theta`` (K, P)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        return np.stack([law.evaluate(theta[:, sl], d, grad=False)[0] for law, sl, d in
                         zip(self.laws, self.slices, design.terms["designs"], strict=True)])

    def evaluate(self, theta: np.ndarray, design: CurveDesign, grad: bool = True
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        loss = np.zeros((theta.shape[0], design.n))
        J = np.zeros((theta.shape[0], design.n, theta.shape[1])) if grad else None
        for w, law, sl, d in zip(self.weights, self.laws, self.slices, design.terms["designs"],
                                 strict=True):
            L, Jk = law.evaluate(theta[:, sl], d, grad)
            loss += w * L
            if J is not None and Jk is not None:
                J[:, :, sl] = w * Jk
        return loss, J

    def parts(self, theta: np.ndarray, design: CurveDesign) -> tuple[float, np.ndarray, np.ndarray]:
        level, power, rest = 0.0, np.zeros(design.n), np.zeros(design.n)
        for w, law, sl, d in zip(self.weights, self.laws, self.slices, design.terms["designs"],
                                 strict=True):
            lv, pw, rs = law.parts(np.asarray(theta)[sl], d)
            level, power, rest = level + w * lv, power + w * pw, rest + w * rs
        return level, power, rest

    def assign(self, n_draws: int) -> np.ndarray:
        """Which component each of ``n_draws`` bootstrap draws comes from: the draws split in
        proportion to the weights, in a fixed order (stratified, so every call and every
        schedule gets the same assignment and joint comparisons stay joint)."""
        u = (np.arange(n_draws) + 0.5) / max(n_draws, 1)
        return np.minimum(np.searchsorted(np.cumsum(self.weights), u), len(self.weights) - 1)

    def starts(self, design: CurveDesign, loss: np.ndarray) -> np.ndarray:
        raise ParameterError("a stack is not fitted as one law: fit_curves(law='stack') fits "
                             "each component on its own", "law")

    def identified(self, design: CurveDesign) -> list[str]:
        return [w for law, d in zip(self.laws, design.terms["designs"], strict=True)
                for w in law.identified(d)]


def _nonneg_lstsq(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with non-negative coefficients (a zero column gets a zero coefficient)."""
    from scipy.optimize import nnls

    scale = np.linalg.norm(X, axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(X / scale, y)
    return coef / scale


CURVE_LAWS: dict[str, type[CurveLaw]] = {"multipower": MultiPowerLaw, "momentum": MomentumLaw}


def get_curve_law(name: str | CurveLaw, **settings: Any) -> CurveLaw:
    """A curve law by name (``multipower``, ``momentum``), with its settings."""
    if isinstance(name, CurveLaw):
        return name
    from scalinglab.errors import did_you_mean

    if name not in CURVE_LAWS:
        raise ParameterError(f"unknown curve law {name!r}{did_you_mean(name, list(CURVE_LAWS))}; "
                             f"known: {', '.join(CURVE_LAWS)}", "law")
    return CURVE_LAWS[name](**settings)


def list_curve_laws() -> list[str]:
    return list(CURVE_LAWS)


def law_from_dict(data: Mapping[str, Any]) -> CurveLaw:
    settings = {k: v for k, v in data.items() if k != "name"}
    if data.get("name") == "stack":
        return StackedLaw(settings["components"])
    return get_curve_law(str(data["name"]), **settings)
