"""Design over a pool: which of the runs we could afford teaches the most about the target region.

A *pool* is a table of runnable experiments (a law's inputs, no outcome yet), each with a cost
(an expression over its columns, ``6*N*D``, ``N*E``, ...) and some rows marked as the *target*:
the region the law must predict (a filter, or the costliest rows). :func:`design_pool` proposes
the next runs from the pool, and :func:`replay` runs the whole sequential loop on a pool whose
outcomes a table already holds, revealing each outcome only once the run is chosen.

Each round:

1. **Identification first.** Until the observed runs number ``ceil((P + 1) / outputs)`` for a
   law of ``P`` parameters and its fit's information matrix has full rank, there is no fit to
   trust, so runs are picked to make the law identifiable: greedily by the expected gain in
   ``log det`` of the Fisher information (D-optimal) per unit cost, averaged over draws from the
   law's own starting grid (a Bayesian D-optimal design), so the first runs spread over every
   input the law needs rather than sitting at the cheapest corner.
2. **Then the fit's error in the target region.** By default (``discrepancy``) the runs are
   chosen for the expected squared error, over the target rows, of the least-squares fit we will
   actually make, with the law's *discrepancy* (what its form cannot express, a smooth Gaussian
   process over its inputs whose variance starts at the outcomes' and shrinks to the residuals')
   counted: runs near the target correct it, far cheap runs can dilute the correction and are
   then never bought (:mod:`scalinglab.design.robust`). Each round keeps the better of the
   greedy choices by reduction per unit cost and by reduction alone. Without it (and with
   ``criterion="draws"`` or a law of several outputs, where the discrepancy joins the belief
   below as further latent directions):
   the law is fitted to the runs observed; its
   uncertainty about every prediction in the target region and at every candidate is put in
   latent linear-Gaussian form (the bootstrap ensemble's centred predictions, or the Fisher
   information at the estimate with a weak prior from the bounds), and
   :class:`~scalinglab.design.greedy.Belief` picks runs by the expected reduction of the summed
   predictive variance over the target rows per unit cost (the V-optimal criterion of
   experimental design, Fedorov 1972), each pick conditioning the next.

The same greedy engine serves the (N, D) designs of ``design next`` and ``sweep auto``
(:mod:`scalinglab.design.spread`). Nothing here depends on a law's name: a :class:`PoolModel` is
anything that predicts the pool's rows for many parameter vectors and fits observed rows;
:class:`LawModel` wraps any law of the catalogue or a formula, fitted by :func:`fit_law`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import pandas as pd

from scalinglab.design.greedy import Belief, better_of, greedy_picks
from scalinglab.design.robust import LsqProblem, choose_lsq, correlation
from scalinglab.errors import InputError, NotIdentifiable, ParameterError
from scalinglab.results import Result
from scalinglab.runs.cells import is_missing_cell, not_a_number, show_cell
from scalinglab.summary import Summary, Table
from scalinglab.values import as_mapping, as_table

Criterion = Literal["draws", "fisher"]

#: a new run's noise is never taken below this share of the outcome's scale (a perfect fit of a
#: few runs must not promise noiseless runs); seed noise on final loss is 0.02-0.1% of loss
MIN_NOISE_SHARE = 1e-3
#: prior draws the identification phase averages its D-optimal gain over
PRIOR_DRAWS = 16
#: draws kept for an ensemble belief (winsorised at these percentiles, so a few wild draws of a
#: weakly identified fit do not dominate the covariance)
WINSOR = (2.5, 97.5)
#: the discrepancy's correlation length, in standard deviations of each (log) input over the
#: pool: runs a standard deviation from a target row share e^-1/2 of its discrepancy
DISCREPANCY_LENGTH = 1.0
#: target rows the discrepancy is represented at (a spread subsample; its low-rank form is exact
#: there, so the objective's discrepancy part is exact at these rows)
DISCREPANCY_RANK = 32


# -- the pool: cost and target ---------------------------------------------------------------


def _as_cost(parse: Any, text: str) -> Any:
    """Run the formula parser on a cost; its refusal names ``cost`` (so the command line says
    ``--cost``), not ``formula``, the parameter of the law it was written for."""
    try:
        return parse()
    except ParameterError as exc:
        said, named = str(exc), f"formula {text!r}"
        message = said.replace(named, f"cost {text!r}", 1) if named in said else f"cost {text!r}: {said}"
        raise ParameterError(message, "cost") from None


def _numbers(frame: pd.DataFrame, column: str, source: str, why: str = "") -> np.ndarray:
    """A pool column as floats. The first cell that is not a finite number is an error naming
    its row and column; ``why`` says what the number was for, after "is not a number"."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{not_a_number(frame[column].iloc[i])}{why}", source=source,
                         row=f"row {i + 1}", column=column)
    return values


def cost_of(frame: pd.DataFrame, expr: str, source: str = "pool") -> np.ndarray:
    """The cost of every row: ``expr`` over the frame's columns in the formula language
    (``6*N*D``, ``N*E``, ``6*N_dense*D1 + 6*N_active*D2``; parsed by an AST whitelist, never
    evaluated). Every cost must be a finite positive number."""
    from scalinglab.laws.formula import compile_expressions, names_in, parse_formula

    text = str(expr).strip()
    if not text:
        raise ParameterError("cost must be an expression over the pool's columns, e.g. 6*N*D",
                             "cost")
    names = _as_cost(lambda: names_in(text), text)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ParameterError(f"cost {text!r} names {missing}, which are not columns of {source} "
                             f"(its columns: {[str(c) for c in frame.columns]})", "cost")
    if names:
        parsed = _as_cost(lambda: parse_formula(text, inputs=names, params=()), text)
        env = {n: _numbers(frame, n, source, f", so the cost {text!r} cannot be computed")
               for n in names}
        with np.errstate(all="ignore"):
            value = np.broadcast_to(np.asarray(compile_expressions([parsed.expr], ())(env)[0],
                                               dtype=float), (len(frame),)).copy()
    else:  # a constant cost: every run costs the same
        from scalinglab.laws.formula import _parse_tree, _to_sympy

        with np.errstate(all="ignore"):
            value = np.full(len(frame), float(_as_cost(lambda: _to_sympy(_parse_tree(text), {}, text), text)))
    bad = ~(np.isfinite(value) & (value > 0))
    if bad.any():
        i = int(np.argmax(bad))
        cells = ", ".join(f"{n}={_plain(frame[n].iloc[i])!r}" for n in names)
        raise InputError(f"cost {text!r} is {value[i]:g} here ({cells}); every run must cost a "
                         "finite positive amount", source=source, row=f"row {i + 1}",
                         column=names[0] if len(names) == 1 else None)
    return value


_TOP = re.compile(r"^\s*top\s*[:=]?\s*([0-9.]+)\s*(%?)\s*$", re.IGNORECASE)


def target_mask(frame: pd.DataFrame, cost: np.ndarray, target: str, source: str = "pool"
                ) -> np.ndarray:
    """Which rows form the target region: ``top:10%`` (the costliest tenth), ``top:25`` (the 25
    costliest rows), or a filter in the ``--where`` language (``N >= 1e9 AND D > 1e11``)."""
    text = str(target).strip()
    if not text:
        raise ParameterError("target must be 'top:10%', 'top:K' or a filter", "target")
    m = _TOP.match(text)
    n = len(frame)
    if m:
        value = float(m.group(1))
        k = math.ceil(n * value / 100.0) if m.group(2) else int(value)
        if not (m.group(2) and 0 < value < 100 or not m.group(2) and value == int(value)
                and 0 < k < n):
            raise ParameterError(f"target {text!r}: give top:P% with 0 < P < 100 or top:K with "
                                 f"0 < K < {n} (the pool has {n} rows)", "target")
        k = min(max(k, 1), n - 1)
        order = np.argsort(-np.asarray(cost, dtype=float), kind="stable")
        mask = np.zeros(n, bool)
        mask[order[:k]] = True
        return mask
    from scalinglab.runs.where import filter_frame

    marked = frame.reset_index(drop=True)
    kept = filter_frame(marked, text)
    mask = np.zeros(n, bool)
    mask[kept.index.to_numpy()] = True
    if not mask.any():
        raise ParameterError(f"target {text!r} matches no row of {source}", "target")
    if mask.all():
        raise ParameterError(f"target {text!r} matches every row of {source}; nothing is left to "
                             "choose runs from", "target")
    return mask


# -- what a design needs from a law -----------------------------------------------------------


@dataclass
class Fitted:
    """A fit of observed rows: the estimate ``theta`` (P,) in fitting coordinates, bootstrap
    ``draws`` (K, P) when there are, the new-run noise variance of one output, and the
    parameters the runs do not pin down."""

    theta: np.ndarray
    noise_var: float
    draws: np.ndarray | None = None
    unidentified: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    result: Any = None
    #: other local optima that fit about as well (K, P), and each one's weight (K,) with the
    #: estimate's: rival basins whose predictions disagree in the target region
    modes: np.ndarray | None = None
    mode_weights: np.ndarray | None = None


class PoolModel(Protocol):
    """A law bound to a pool: predictions of its outputs at pool rows for many parameter vectors
    (in fitting coordinates: logs of scale parameters, the rest as they are), and fits."""

    param_names: tuple[str, ...]
    n_outputs: int

    def predict(self, theta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(K, P) parameter vectors, row indices (n,) -> predictions (K, n, O)."""

    def fit(self, rows: np.ndarray, y: np.ndarray, *, seed: int, bootstrap: int,
            warm: np.ndarray | None = None, thorough: bool = False) -> Fitted:
        """Fit the observed ``rows`` with outcomes ``y`` (n, O); ``thorough`` for the fit a
        study ends with (a model may search less hard between rounds, warm-started)."""

    def prior(self, rows: np.ndarray, y: np.ndarray | None, k: int, seed: int) -> np.ndarray:
        """(k, P) plausible parameter vectors before (or beyond) the fit: the identification
        phase averages its criterion over them."""

    def prior_precision(self) -> np.ndarray:
        """(P, P) a weak prior's precision in fitting coordinates (from the bounds)."""


class LawModel:
    """Any scalinglab law (catalogue or formula) over a pool frame, fitted by :func:`fit_law`.

    ``columns`` maps the law's inputs to the pool's column names where they differ."""

    n_outputs = 1

    def __init__(self, law: Any, frame: pd.DataFrame, columns: Mapping[str, str] | None = None,
                 source: str = "pool") -> None:
        from scalinglab.laws.registry import get_law

        self.law = get_law(law) if isinstance(law, str) else law
        columns = dict(as_mapping(columns, "columns", "{'N': 'params'}"))
        missing = [x for x in self.law.inputs if columns.get(x, x) not in frame.columns]
        if missing:
            raise ParameterError(f"law {self.law.name!r} needs input(s) {missing}, which are not "
                                 f"columns of {source} (its columns: "
                                 f"{[str(c) for c in frame.columns]}); map them with columns",
                                 "columns")
        self.columns = columns
        self.inputs = {x: _numbers(frame, columns.get(x, x), source,
                                   f" (an input of law {self.law.name!r})")
                       for x in self.law.inputs}
        self.param_names = tuple(self.law.param_names)
        self.is_log = np.asarray(self.law.log_model_kinds(), dtype=bool)

    def _params(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        theta = np.atleast_2d(theta)
        return {k: (np.exp(theta[:, i]) if self.is_log[i] else theta[:, i])
                for i, k in enumerate(self.param_names)}

    def to_theta(self, params: Mapping[str, float]) -> np.ndarray:
        # a scale the fit put at exactly 0 is log 0 = -inf here, and exp(-inf) = 0 again in
        # _params: the same law, so no warning to leak into the replay's output
        with np.errstate(divide="ignore"):
            return np.array([np.log(params[k]) if self.is_log[i] else float(params[k])
                             for i, k in enumerate(self.param_names)])

    def predict(self, theta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        p = {k: v[:, None] for k, v in self._params(theta).items()}
        x = {k: v[None, np.asarray(rows, dtype=int)] for k, v in self.inputs.items()}
        with np.errstate(all="ignore"):
            out = np.asarray(self.law(p, **x), dtype=float)
        return np.broadcast_to(out, (len(np.atleast_2d(theta)), len(rows)))[:, :, None]

    def frame_of(self, rows: np.ndarray, y: np.ndarray) -> pd.DataFrame:
        data = {x: v[np.asarray(rows, dtype=int)] for x, v in self.inputs.items()}
        data["loss"] = np.asarray(y, dtype=float).reshape(len(rows), -1)[:, 0]
        data["run_id"] = [f"row-{int(r) + 1}" for r in rows]
        return pd.DataFrame(data)

    def fit(self, rows: np.ndarray, y: np.ndarray, *, seed: int, bootstrap: int,
            warm: np.ndarray | None = None, thorough: bool = False) -> Fitted:
        from scalinglab.fit.loss import fit_law

        result = fit_law(self.law, self.frame_of(rows, y), bootstrap=bootstrap, seed=seed,
                         source="observed runs")
        theta = self.to_theta(result.params)
        draws = None
        if result.draws is not None and len(result.draws):
            d = np.asarray(result.draws, dtype=float)
            ok = np.all(np.isfinite(d), axis=1) & np.all(d[:, self.is_log] > 0, axis=1)
            with np.errstate(all="ignore"):
                draws = np.where(self.is_log, np.log(np.abs(d[ok])), d[ok])
        pred = self.predict(theta, rows)[0, :, 0]
        return Fitted(theta, _noise_var(np.asarray(y, float).reshape(len(rows), -1), pred[:, None],
                                        len(theta)), draws, tuple(result.unidentified),
                      list(result.warnings), result)

    def prior(self, rows: np.ndarray, y: np.ndarray | None, k: int, seed: int) -> np.ndarray:
        x = {n: v[np.asarray(rows, dtype=int)] for n, v in self.inputs.items()}
        loss = np.ones(len(rows)) if y is None else np.asarray(y, float).reshape(len(rows), -1)[:, 0]
        starts = self.law.starting_points(x, loss)
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(starts), size=min(k, len(starts)), replace=False)
        return starts[pick]

    def features(self) -> np.ndarray:
        """(n, d) every pool row's inputs in the coordinates the discrepancy is smooth in."""
        return input_features(self.inputs)

    def prior_precision(self) -> np.ndarray:
        prec = []
        for i, k in enumerate(self.param_names):
            lo, hi = self.law.bounds.get(k, (1e-6, 1e6) if self.is_log[i] else (-10.0, 10.0))
            if self.is_log[i]:
                lo, hi = np.log(max(lo, 1e-12)), np.log(max(hi, 1e-12) * (1 + 1e-9))
            sd = max((float(hi) - float(lo)) / 4.0, 1e-6)
            prec.append(1.0 / sd**2)
        return np.diag(prec)


def _noise_var(y: np.ndarray, pred: np.ndarray, n_params: int) -> float:
    """The variance one new output is expected to add: the residual variance corrected for the
    parameters fitted, shrunk towards ``(MIN_NOISE_SHARE * scale)^2`` with the weight of two
    runs so that a fit of few runs (or none left over) does not promise noiseless runs."""
    y = np.asarray(y, dtype=float)
    r = (y - pred).ravel()
    r = r[np.isfinite(r)]
    scale = float(np.nanmean(np.abs(y))) if np.isfinite(y).any() else 1.0
    floor = (MIN_NOISE_SHARE * max(scale, 1e-12)) ** 2
    dof = max(len(r) - n_params, 0)
    return float(max((np.sum(r**2) + 2.0 * floor * 10.0) / (dof + 2.0), floor))


# -- misspecification: what the law cannot express --------------------------------------------


def input_features(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """(n, d) the law's inputs as standardised coordinates: the logarithm of an input that is
    positive and spans more than a factor of two (sizes, token counts, ratios), the input itself
    otherwise, each centred and divided by its standard deviation over the pool; constant inputs
    are dropped."""
    cols = []
    n = 0
    for v in inputs.values():
        v = np.asarray(v, dtype=float)
        n = len(v)
        if np.all(v > 0) and v.max() > 2.0 * v.min():
            v = np.log(v)
        sd = float(np.std(v))
        if np.isfinite(sd) and sd > 0:
            cols.append((v - v.mean()) / sd)
    return np.column_stack(cols) if cols else np.zeros((n, 0))


def discrepancy_var(y: np.ndarray, pred: np.ndarray, n_params: int) -> float:
    """How far the truth may stray from the best fit of the law: the posterior mean of that
    variance under a weak prior worth one run and centred on the outcomes' own variance (before
    the runs say otherwise, the law's form may be off by as much as the outcomes vary), updated
    by the fit's residuals with ``n - P`` degrees of freedom. Early on it is about the outcomes'
    variance, so runs near the target are valued; with many runs it is the residual variance, so
    a law that fits its runs to the noise stops paying for runs near the target."""
    y = np.asarray(y, dtype=float).reshape(len(y), -1)
    pred = np.asarray(pred, dtype=float).reshape(y.shape)
    r = (y - pred)
    ok = np.isfinite(r)
    spread = float(np.nanmean(np.nanvar(y, axis=0))) if len(y) > 1 else 0.0
    dof = max(int(ok.sum()) - n_params, 0)
    return float((spread + np.sum(r[ok] ** 2)) / (1.0 + dof))


def _spread_rows(x: np.ndarray, k: int) -> np.ndarray:
    """Up to ``k`` positions of ``x`` (n, d) spread over it (farthest-point order, from the
    row nearest the centre)."""
    n = len(x)
    if n <= k:
        return np.arange(n)
    first = int(np.argmin(np.sum((x - x.mean(axis=0)) ** 2, axis=1)))
    chosen = [first]
    dist = np.sum((x - x[first]) ** 2, axis=1)
    for _ in range(k - 1):
        j = int(np.argmax(dist))
        if dist[j] <= 0:
            break
        chosen.append(j)
        dist = np.minimum(dist, np.sum((x - x[j]) ** 2, axis=1))
    return np.array(chosen)


@dataclass
class Discrepancy:
    """The part of the outcome the law cannot express, ``delta(x)``, a smooth Gaussian process
    over the law's inputs (Kennedy & O'Hagan 2001): ``var`` its variance, squared-exponential
    correlation with length ``length`` over ``features`` (n, d) of every pool row. A run near
    the target region tells about the discrepancy there; a far one does not, however well it
    pins the parameters. Represented at up to :data:`DISCREPANCY_RANK` target rows, so it is
    a few latent directions more in the belief."""

    features: np.ndarray
    var: float
    length: float = DISCREPANCY_LENGTH

    def factors(self, target: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(phi, rest)``: ``phi`` (n, R) with ``phi phi'`` the discrepancy's covariance at
        ``rows`` through the inducing target rows, ``rest`` (n,) the variance of each row's own
        discrepancy that the low-rank form leaves out (independent noise of that run)."""
        target = np.asarray(target, dtype=int)
        z = self.features[target[_spread_rows(self.features[target], DISCREPANCY_RANK)]]
        x = self.features[np.asarray(rows, dtype=int)]
        kzz = correlation(z, z, self.length) + 1e-8 * np.eye(len(z))
        vals, vecs = np.linalg.eigh(kzz)
        keep = vals > 1e-8
        root = vecs[:, keep] / np.sqrt(vals[keep])            # kzz^-1 = root root'
        phi = correlation(x, z, self.length) @ root
        rest = np.clip(1.0 - np.sum(phi**2, axis=1), 0.0, 1.0)
        return np.sqrt(self.var) * phi, self.var * rest


def discrepancy_of(model: PoolModel, fitted: Fitted, observed: np.ndarray, y: np.ndarray
                   ) -> Discrepancy | None:
    """The discrepancy for a model that exposes its rows' ``features()``; None otherwise (or
    when its inputs are constant)."""
    feats = getattr(model, "features", None)
    if feats is None or not len(observed):
        return None
    x = np.asarray(feats(), dtype=float)
    if x.ndim != 2 or x.shape[1] == 0:
        return None
    pred = model.predict(fitted.theta[None, :], observed)[0]
    var = discrepancy_var(y, pred, len(fitted.theta))
    return Discrepancy(x, var) if np.isfinite(var) and var > 0 else None


def _with_discrepancy(jac: np.ndarray, rows_target: np.ndarray, rows: np.ndarray,
                      is_target: np.ndarray, disc: Discrepancy, noise_var: float
                      ) -> np.ndarray:
    """``jac`` (n, O, P) extended by the discrepancy's latent directions (one independent
    process per output), each run's rows scaled by ``sqrt(s2 / (s2 + rest))`` so that the
    discrepancy the low-rank form leaves out counts as that run's own noise."""
    phi, rest = disc.factors(rows_target, rows)
    n, o, _ = jac.shape
    r = phi.shape[1]
    block = np.zeros((n, o, o * r))
    for i in range(o):
        block[:, i, i * r:(i + 1) * r] = phi
    out = np.concatenate([jac, block], axis=-1)
    scale = np.where(is_target, 1.0, np.sqrt(noise_var / (noise_var + rest)))
    return out * scale[:, None, None]


# -- beliefs -----------------------------------------------------------------------------------


def jacobian(model: PoolModel, theta: np.ndarray, rows: np.ndarray, rel: float = 1e-5
             ) -> np.ndarray:
    """d prediction / d theta at ``rows``: (n, O, P); the model's own ``jacobian_at`` when it
    has one (analytic), else central differences batched in one call."""
    theta = np.asarray(theta, dtype=float)
    own = getattr(model, "jacobian_at", None)
    if own is not None:
        jac = np.asarray(own(theta, np.asarray(rows, dtype=int)), dtype=float)
        return np.where(np.isfinite(jac), jac, 0.0)
    p = len(theta)
    h = rel * np.maximum(1.0, np.abs(theta))
    # a log-scale parameter at exactly 0 (theta -inf) moves nothing: its column comes out NaN
    # (-inf + inf) and is zeroed below, as is inf - inf at a row that overflows
    with np.errstate(invalid="ignore"):
        pts = np.vstack([theta + np.diag(h), theta - np.diag(h)])
        vals = model.predict(pts, rows)                    # (2P, n, O)
        jac = np.moveaxis((vals[:p] - vals[p:]) / (2.0 * h[:, None, None]), 0, -1)
    return np.where(np.isfinite(jac), jac, 0.0)


def fisher_belief(model: PoolModel, fitted: Fitted, observed: np.ndarray, target: np.ndarray,
                  candidates: np.ndarray, discrepancy: Discrepancy | None = None) -> Belief:
    """The Laplace belief at the estimate: ``S = (J'J / s2 + prior)^-1`` in fitting
    coordinates, target and candidate rows linearised at the estimate; with a
    ``discrepancy``, its latent directions join the parameters' (conditioned on the observed
    runs the same way), so the objective is the target's predictive variance including what
    the law cannot express."""
    rows = np.concatenate([observed, target, candidates]).astype(int)
    jac = jacobian(model, fitted.theta, rows)
    n, t = len(observed), len(target)
    prior = model.prior_precision()
    if discrepancy is not None:
        is_target = np.zeros(len(rows), bool)
        is_target[n:n + t] = True
        jac = _with_discrepancy(jac, target, rows, is_target, discrepancy, fitted.noise_var)
        extra = jac.shape[-1] - len(prior)
        prior = np.block([[prior, np.zeros((len(prior), extra))],
                          [np.zeros((extra, len(prior))), np.eye(extra)]])
    j_obs = jac[:n].reshape(-1, jac.shape[-1])
    info = j_obs.T @ j_obs / fitted.noise_var + prior
    cov = np.linalg.pinv(info, hermitian=True)
    g, c = jac[n:n + t].reshape(-1, jac.shape[-1]), jac[n + t:]
    if fitted.modes is not None and len(fitted.modes) > 1:
        # rival basins: their disagreement is a further latent direction each, weighted by how
        # well each fits (the between-mode part of the predictive variance)
        w = np.asarray(fitted.mode_weights, dtype=float)
        w = w / w.sum()
        pred = model.predict(fitted.modes, rows[n:])          # (K, t + m, O)
        ok = np.all(np.isfinite(pred), axis=(1, 2))
        if ok.sum() > 1:
            pred, w = pred[ok], w[ok] / w[ok].sum()
            dev = (pred - np.einsum("k,kno->no", w, pred)) * np.sqrt(w)[:, None, None]
            dev = np.moveaxis(dev, 0, -1)                     # (t + m, O, K)
            g = np.hstack([g, dev[:t].reshape(-1, dev.shape[-1])])
            c = np.concatenate([c, dev[t:]], axis=-1)
            k = dev.shape[-1]
            cov = np.block([[cov, np.zeros((len(cov), k))], [np.zeros((k, len(cov))), np.eye(k)]])
    return Belief(g, c, cov, fitted.noise_var)


def ensemble_belief(model: PoolModel, fitted: Fitted, target: np.ndarray, candidates: np.ndarray,
                    discrepancy: Discrepancy | None = None, observed: np.ndarray | None = None
                    ) -> Belief:
    """The bootstrap ensemble's belief: centred draws' predictions (winsorised per row at the
    2.5/97.5 percentiles) as the latent factor, ``S = I``; a ``discrepancy`` joins as further
    latent directions, conditioned on the ``observed`` runs (independent of the draws)."""
    draws = fitted.draws
    if draws is None or len(draws) < 20:
        raise NotIdentifiable(f"{0 if draws is None else len(draws)} usable bootstrap draws; an "
                              "ensemble belief needs at least 20")
    rows = np.concatenate([target, candidates]).astype(int)
    pred = model.predict(draws, rows)                      # (K, n, O)
    ok = np.all(np.isfinite(pred), axis=(1, 2))
    pred = pred[ok]
    if len(pred) < 20:
        raise NotIdentifiable(f"only {len(pred)} bootstrap draws give finite predictions")
    lo, hi = np.percentile(pred, WINSOR, axis=0)
    pred = np.clip(pred, lo, hi)
    z = (pred - pred.mean(axis=0)) / np.sqrt(len(pred) - 1)
    z = np.moveaxis(z, 0, -1)                              # (n, O, K)
    t = len(target)
    cov = np.eye(z.shape[-1])
    if discrepancy is not None:
        seen = np.zeros(0, int) if observed is None else np.asarray(observed, dtype=int)
        all_rows = np.concatenate([seen, rows])
        is_target = np.zeros(len(all_rows), bool)
        is_target[len(seen):len(seen) + t] = True
        d = _with_discrepancy(np.zeros((len(all_rows), z.shape[1], 0)), target, all_rows,
                              is_target, discrepancy, fitted.noise_var)
        d_obs = d[:len(seen)].reshape(-1, d.shape[-1])
        dcov = np.linalg.pinv(np.eye(d.shape[-1]) + d_obs.T @ d_obs / fitted.noise_var,
                              hermitian=True)
        z = np.concatenate([z, d[len(seen):]], axis=-1)
        k = len(cov)
        cov = np.block([[cov, np.zeros((k, len(dcov)))], [np.zeros((len(dcov), k)), dcov]])
    return Belief(z[:t].reshape(-1, z.shape[-1]), z[t:], cov, fitted.noise_var)


# -- identification first ----------------------------------------------------------------------


def runs_to_identify(n_params: int, n_outputs: int = 1) -> int:
    """Observed runs needed before a fit can identify ``n_params`` parameters (one more
    observation than parameters, so the residual says something about the noise)."""
    return max(math.ceil((n_params + 1) / max(n_outputs, 1)), 1)


def identification_picks(model: PoolModel, observed: np.ndarray, y: np.ndarray | None,
                         candidates: np.ndarray, cost: np.ndarray, budget: float, k: int,
                         *, cost_power: float = 1.0, seed: int = 0,
                         theta: np.ndarray | None = None) -> tuple[list[int], list[float]]:
    """Up to ``k`` candidates (positions in ``candidates``) chosen greedily by the expected
    gain in ``log det`` of the information per ``cost ** cost_power``, averaged over prior draws
    of the parameters (and the current estimate ``theta`` when there is one)."""
    p = len(model.param_names)
    ref_rows = observed if len(observed) else candidates[: min(len(candidates), 64)]
    draws = model.prior(ref_rows, y if len(observed) else None, PRIOR_DRAWS, seed)
    if theta is not None:
        draws = np.vstack([theta[None, :], draws])
    prior = model.prior_precision()
    infos, jacs = [], []
    for th in draws:
        rows = np.concatenate([observed, candidates]).astype(int)
        jac = jacobian(model, th, rows)
        scale = np.sqrt(np.mean(jac**2)) if np.isfinite(jac).all() else 0.0
        if not scale > 0:
            continue
        jac = jac / scale                                  # per draw, the noise scale cancels
        j_obs = jac[: len(observed)].reshape(-1, p)
        infos.append(j_obs.T @ j_obs + 1e-6 * prior / max(np.mean(np.diag(prior)), 1e-300))
        jacs.append(jac[len(observed):])
    if not infos:
        return [], []
    invs = [np.linalg.pinv(m, hermitian=True) for m in infos]
    o = jacs[0].shape[1]
    state = {"n": 0}

    def gains_given(picks: list[int]) -> np.ndarray:
        for j in picks[state["n"]:]:                      # each draw's information gains run j
            for i, jac in enumerate(jacs):
                c = jac[j]
                s = c @ invs[i] @ c.T + np.eye(o)
                ic = invs[i] @ c.T
                invs[i] = invs[i] - ic @ np.linalg.solve(s, ic.T)
        state["n"] = len(picks)
        total = np.zeros(len(candidates))
        for inv, jac in zip(invs, jacs, strict=True):
            a = np.einsum("mor,rs,mps->mop", jac, inv, jac) + np.eye(o)
            sign, logdet = np.linalg.slogdet(a)
            total += np.where(sign > 0, logdet, 0.0)
        return total / len(invs)

    return greedy_picks(gains_given, cost, budget, k, power=cost_power, min_gain=1e-9)


# -- one round ---------------------------------------------------------------------------------


@dataclass
class PoolSettings:
    """How a pool design chooses. ``k``: most runs per round; ``cost_power``: gain per
    ``cost ** cost_power`` (1: per unit cost); ``criterion``: the belief (bootstrap ``draws`` or
    ``fisher``); ``bootstrap``: resamples of each fit for the draws; ``discrepancy``: count
    what the law cannot express (:class:`Discrepancy`) in the target's predictive variance;
    ``rival``: also choose by gain alone within the round's budget and keep whichever choice
    removes more of the target's variance (the cost-benefit greedy alone can be arbitrarily
    worse under a budget; the better of the two is within a constant factor of the best
    choice, Krause & Guestrin 2005, Leskovec et al. 2007)."""

    k: int = 8
    cost_power: float = 1.0
    criterion: Criterion = "fisher"
    bootstrap: int = 100
    min_gain: float = 1e-4
    seed: int = 0
    discrepancy: bool = True
    rival: bool = True

    def check(self) -> None:
        if int(self.k) != self.k or self.k < 1:
            raise ParameterError(f"k must be a whole number >= 1, not {self.k}", "k")
        if not (np.isfinite(self.cost_power) and self.cost_power >= 0):
            raise ParameterError(f"cost_power must be >= 0, not {self.cost_power}", "cost_power")
        if self.criterion not in ("draws", "fisher"):
            raise ParameterError(f"criterion must be 'draws' or 'fisher', not {self.criterion!r}",
                                 "criterion")


@dataclass
class Round:
    """What one round decided: ``picks`` (pool rows), the phase (``identify`` or ``variance``),
    each pick's gain, the target's summed predictive variance before and expected after, the
    fit it rests on (None in the identification phase before any fit)."""

    picks: list[int]
    gains: list[float]
    phase: str
    variance_before: float = float("nan")
    variance_after: float = float("nan")
    fitted: Fitted | None = None
    notes: list[str] = field(default_factory=list)


def next_round(model: PoolModel, cost: np.ndarray, target: np.ndarray, observed: np.ndarray,
               y: np.ndarray, budget: float, settings: PoolSettings,
               fitted: Fitted | None = None, warm: np.ndarray | None = None,
               exclude: np.ndarray | None = None) -> Round:
    """Choose the next runs of cost ``<= budget`` from the pool rows that are neither target
    rows, observed nor in ``exclude``. ``y`` (len(observed), O) are the observed outcomes."""
    settings.check()
    observed = np.asarray(observed, dtype=int)
    taken = np.zeros(len(cost), bool)
    taken[observed] = True
    if exclude is not None:
        taken[np.asarray(exclude, dtype=int)] = True
    free = ~target & ~taken
    rnd = _criterion_round(model, cost, target, observed, y, budget, settings, free, fitted, warm)
    if rnd.picks:
        rnd.picks = draw_replicates(replicate_groups(model, cost), rnd.picks, free,
                                    np.random.default_rng([settings.seed, len(observed)]))
    return rnd


def replicate_groups(model: PoolModel, cost: np.ndarray) -> np.ndarray:
    """(n,) a label per pool row, shared by rows that repeat one configuration: the same law
    inputs (``model.features()``) and the same cost. The design cannot tell such rows apart.
    A model that does not expose its rows' inputs has no replicates (each row its own label)."""
    feats = getattr(model, "features", None)
    if feats is None:
        return np.arange(len(cost))
    keys = np.column_stack([np.asarray(feats(), dtype=float), np.asarray(cost, dtype=float)])
    return np.unique(keys, axis=0, return_inverse=True)[1].ravel()


def draw_replicates(groups: np.ndarray, picks: list[int], free: np.ndarray,
                    rng: np.random.Generator) -> list[int]:
    """``picks`` with each row replaced by a row drawn at random among the ``free`` rows of its
    replicate group (not drawn already). Every criterion scores identical rows identically, so
    the greedy choice would otherwise always take a configuration's first row: in a replay that
    fixes one draw of the replicate noise for every seed (on ScaleBench's moe pool, whose
    configurations repeat 3 to 13 times with losses up to 0.2 apart, that one draw gave R² -0.90
    at 10% of the cost, where drawing the rows gives -0.24 on average over 10 seeds)."""
    free = np.asarray(free, bool).copy()
    out = []
    for r in picks:
        same = np.flatnonzero(free & (groups == groups[r]))
        j = int(rng.choice(same)) if len(same) else int(r)
        free[j] = False
        out.append(j)
    return out


def _criterion_round(model: PoolModel, cost: np.ndarray, target: np.ndarray,
                     observed: np.ndarray, y: np.ndarray, budget: float, settings: PoolSettings,
                     free: np.ndarray, fitted: Fitted | None = None,
                     warm: np.ndarray | None = None) -> Round:
    """:func:`next_round`'s choice by its criterion, among the ``free`` rows (neither target,
    observed nor excluded), before replicate rows are drawn."""
    cand = np.flatnonzero(free)
    if not len(cand):
        return Round([], [], "done", notes=["every run of the pool outside the target is observed"])
    c = cost[cand]
    tgt = np.flatnonzero(target)
    p = len(model.param_names)
    need = runs_to_identify(p, model.n_outputs)
    notes: list[str] = []
    if fitted is None and len(observed) >= need:
        try:
            fitted = model.fit(observed, y, seed=settings.seed,
                               bootstrap=settings.bootstrap if settings.criterion == "draws" else 0,
                               warm=warm)
        except NotIdentifiable as exc:
            notes.append(f"the law is not identified yet: {exc}")
    identified = fitted is not None and not fitted.unidentified and len(observed) >= need
    if not identified:
        still = need - len(observed)
        k = max(min(settings.k, still), 1) if still > 0 else settings.k
        picks, gains = identification_picks(
            model, observed, y, cand, c, budget, k, cost_power=settings.cost_power,
            seed=settings.seed, theta=None if fitted is None else fitted.theta)
        why = (f"{len(observed)} of the {need} runs a law of {p} parameters needs" if still > 0
               else f"{', '.join(fitted.unidentified)} not identified" if fitted is not None
               else "no fit yet")
        notes.append(f"identification first ({why}): runs chosen for the information they add "
                     "about the parameters (D-optimal per unit cost)")
        return Round([int(cand[j]) for j in picks], gains, "identify", fitted=fitted, notes=notes)
    assert fitted is not None
    disc = discrepancy_of(model, fitted, observed, y) if settings.discrepancy else None
    if disc is not None and model.n_outputs == 1 and settings.criterion == "fisher":
        return _lsq_round(model, fitted, observed, tgt, cand, c, budget, settings, disc, notes)
    belief: Belief | None = None
    if settings.criterion == "draws":
        try:
            belief = ensemble_belief(model, fitted, tgt, cand, disc, observed)
        except NotIdentifiable as exc:
            notes.append(f"designed from the Fisher information instead of the draws: {exc}")
    if belief is None:
        belief = fisher_belief(model, fitted, observed, tgt, cand, disc)
    got, alone = better_of(lambda power: belief.choose(c, budget, settings.k, cost_power=power,
                                                      min_gain=settings.min_gain),
                           lambda picks: picks.objective_after, settings.cost_power, settings.rival)
    if alone:
        notes.append("runs chosen by gain alone: within this round's budget they remove more of "
                     "the target's variance than the best per unit cost")
    return Round([int(cand[j]) for j in got.picks], got.gains, "variance",
                 float(got.objective_before), float(got.objective_after), fitted, notes)


def _lsq_round(model: PoolModel, fitted: Fitted, observed: np.ndarray, tgt: np.ndarray,
               cand: np.ndarray, c: np.ndarray, budget: float, settings: PoolSettings,
               disc: Discrepancy, notes: list[str]) -> Round:
    """The round by the least-squares fit's expected target error, discrepancy included
    (:mod:`scalinglab.design.robust`)."""
    rows = np.concatenate([observed, tgt, cand]).astype(int)
    jac = jacobian(model, fitted.theta, rows)[:, 0, :]
    n, t = len(observed), len(tgt)
    x = disc.features
    problem = LsqProblem(jac[:n], jac[n:n + t], jac[n + t:], x[observed], x[tgt], x[cand],
                         tau2=disc.var, s2=fitted.noise_var,
                         ridge=fitted.noise_var * model.prior_precision(), length=disc.length)
    picks, gains, before, after = choose_lsq(problem, c, budget, settings.k,
                                             cost_power=settings.cost_power,
                                             rival=settings.rival, min_gain=settings.min_gain)
    notes.append(f"runs chosen by the expected squared error of the fit over the target, the "
                 f"law's discrepancy included (its variance {disc.var:.3g}, the noise's "
                 f"{fitted.noise_var:.3g})")
    return Round([int(cand[j]) for j in picks], gains, "variance", before, after, fitted, notes)


# -- the proposal (a result) -------------------------------------------------------------------


@dataclass(repr=False)
class PoolProposal(Result):
    """The next runs from a pool, and why: the rows proposed (their pool row, inputs, cost and
    share of the target's predictive variance each removes), the phase, the spend."""

    kind: ClassVar[str] = "pool_proposal"

    runs: list[dict[str, Any]]
    phase: str
    budget: float
    spent: float
    law: str
    cost_expr: str
    target_expr: str
    n_target: int
    n_observed: int
    variance_before: float = float("nan")
    variance_after: float = float("nan")
    params: dict[str, float] = field(default_factory=dict)
    run_ids: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def cost(self) -> float:
        return float(sum(r["cost"] for r in self.runs))

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        return {"kind": self.kind, "law": self.law, "phase": self.phase, "budget": self.budget,
                "spent": self.spent, "cost": self.cost, "cost_expr": self.cost_expr,
                "target_expr": self.target_expr, "n_target": self.n_target,
                "n_observed": self.n_observed, "variance_before": self.variance_before,
                "variance_after": self.variance_after, "params": dict(self.params),
                "runs": [dict(r) for r in self.runs], "run_ids": list(self.run_ids),
                "warnings": list(self.warnings), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoolProposal:
        keys = ("runs", "phase", "budget", "spent", "law", "cost_expr", "target_expr",
                "n_target", "n_observed", "variance_before", "variance_after", "params")
        values = {k: data[k] for k in keys if k in data}
        for k in ("variance_before", "variance_after"):  # null: NaN (JSON has none)
            if k in values and values[k] is None:
                values[k] = float("nan")
        return cls(**values, run_ids=tuple(data.get("run_ids", ())),
                   warnings=list(data.get("warnings", [])), notes=list(data.get("notes", [])))

    def summary(self) -> Summary:
        cols = [k for k in (self.runs[0] if self.runs else {}) if k not in ("gain",)]
        table = Table("proposed runs", [*cols, "gain"])
        for r in self.runs:
            table.add_row(*[r[k] for k in cols], f"{r['gain']:.1%}" if self.phase == "variance"
                          else f"{r['gain']:.3g} nats")
        facts = [("phase", "identification first (D-optimal per unit cost)" if self.phase ==
                  "identify" else "expected reduction of the target's predictive variance per "
                  "unit cost"),
                 ("spend", f"{self.cost:.4g} now, {self.spent:.4g} before, of a budget of "
                  f"{self.budget:.4g} (cost = {self.cost_expr})"),
                 ("target", f"{self.n_target} rows ({self.target_expr})"),
                 ("observed", f"{self.n_observed} runs")]
        if np.isfinite(self.variance_before):
            facts.append(("target variance", f"{self.variance_before:.3g} -> expected "
                          f"{self.variance_after:.3g} (summed over the target rows)"))
        return Summary(title=f"next runs from the pool ({self.law})", tables=[table], facts=facts,
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def _repr_items(self) -> list[str]:
        return [f"{len(self.runs)} proposed", self.phase, f"cost {self.cost:.3g}"]


def design_pool(
    pool: pd.DataFrame,
    law: Any,
    *,
    cost: str,
    target: str,
    budget: float,
    observed: pd.DataFrame | None = None,
    outcome: str = "loss",
    columns: Mapping[str, str] | None = None,
    k: int = 8,
    criterion: Criterion = "fisher",
    cost_power: float = 1.0,
    bootstrap: int = 100,
    seed: int = 0,
    discrepancy: bool = True,
    source: str = "pool",
    model: PoolModel | None = None,
    observed_source: str = "observed",
) -> PoolProposal:
    """Propose the next runs from ``pool`` (a frame of runnable experiments: the law's inputs).

    ``cost`` is an expression over the pool's columns (``6*N*D``); ``target`` the region to
    predict (``top:10%`` of the cost, ``top:K`` rows, or a filter such as ``N >= 1e9``);
    ``budget`` the share (``0 < budget <= 1``) of the pool's total cost the study may spend in
    all, runs observed so far included. ``observed`` holds the runs already made: rows of the
    pool (same input values) with their ``outcome`` column. ``discrepancy`` (default) chooses
    for the least-squares fit's expected error over the target counting what the law cannot
    express (:mod:`scalinglab.design.robust`), and keeps the better of the choices by gain per
    cost and by gain alone; ``False`` trusts the law's form (V-optimal per unit cost). Returns a
    :class:`PoolProposal`;
    the proposed rows are ``proposal.runs`` (each with its pool row ``row``, 1-based).
    ``source`` and ``observed_source`` name the pool and the observed runs in errors (their
    files, on the command line).
    """
    frame = as_table(pool, "pool").reset_index(drop=True)
    if not len(frame):
        raise ParameterError("the pool has no rows", "pool")
    budget = float(budget)
    if not (0 < budget <= 1):
        raise ParameterError(f"budget must be a share of the pool's cost in (0, 1], not {budget:g}",
                             "budget")
    c = cost_of(frame, cost, source)
    tmask = target_mask(frame, c, target, source)
    model = model or LawModel(law, frame, columns, source)
    law_name = getattr(getattr(model, "law", None), "name", str(law))
    rows, y = match_observed(frame, observed, model, outcome, columns, observed_source) \
        if observed is not None and len(observed) else (np.zeros(0, int), np.zeros((0, model.n_outputs)))
    spent = float(c[rows].sum())
    total = budget * float(c.sum())
    left = total - spent
    settings = PoolSettings(k=k, cost_power=cost_power, criterion=criterion, bootstrap=bootstrap,
                            seed=seed, discrepancy=discrepancy, rival=discrepancy)
    warnings: list[str] = []
    if left <= 0:
        rnd = Round([], [], "done", notes=[f"the budget is spent: {spent:.4g} of {total:.4g}"])
    else:
        rnd = next_round(model, c, tmask, rows, y, left, settings)
        if not rnd.picks:
            smallest = float(c[~tmask].min())
            warnings.append(f"no run fits what is left of the budget ({left:.4g}; the cheapest "
                            f"costs {smallest:.4g})" if smallest > left else
                            "no run is expected to narrow the target's predictions")
    inputs = list(getattr(model, "inputs", {}) or [])
    out_cols = [columns.get(x, x) if columns else x for x in inputs] or [str(x) for x in frame.columns]
    runs = []
    for r, g in zip(rnd.picks, rnd.gains, strict=True):
        entry: dict[str, Any] = {"row": int(r) + 1}
        for col in out_cols:
            entry[col] = _plain(frame[col].iloc[r])
        entry["cost"] = float(c[r])
        entry["gain"] = float(g)
        runs.append(entry)
    params = {}
    if rnd.fitted is not None and isinstance(model, LawModel):
        params = {k: float(v[0]) for k, v in model._params(rnd.fitted.theta).items()}
    return PoolProposal(runs=runs, phase=rnd.phase, budget=total, spent=spent, law=law_name,
                        cost_expr=str(cost), target_expr=str(target), n_target=int(tmask.sum()),
                        n_observed=int(len(rows)), variance_before=rnd.variance_before,
                        variance_after=rnd.variance_after, params=params,
                        run_ids=tuple(f"row-{int(r) + 1}" for r in rows), warnings=warnings,
                        notes=rnd.notes)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def match_observed(pool: pd.DataFrame, observed: pd.DataFrame, model: PoolModel, outcome: str,
                   columns: Mapping[str, str] | None = None, source: str = "observed"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Pool rows of the observed runs (matched on the law's inputs, to 1e-9 relative) and their
    outcomes (n, 1). A ``row`` column (1-based, as a proposal writes it) is used when present
    and checked against the inputs."""
    inputs = list(getattr(model, "inputs", {}) or [])
    cols = [columns.get(x, x) if columns else x for x in inputs]
    if outcome not in observed.columns:
        raise InputError(f"no outcome column {outcome!r} (its columns: "
                         f"{[str(c) for c in observed.columns]})", source=source, column=outcome)
    missing = [c for c in cols if c not in observed.columns]
    if missing:
        raise InputError(f"missing input column(s) {missing}", source=source, column=missing[0])
    keys = np.column_stack([pd.to_numeric(pool[c], errors="coerce").to_numpy(float) for c in cols])
    seen = np.column_stack([pd.to_numeric(observed[c], errors="coerce").to_numpy(float)
                            for c in cols])
    y = pd.to_numeric(observed[outcome], errors="coerce").to_numpy(float)
    row_no = (pd.to_numeric(observed["row"], errors="coerce").to_numpy(float) if "row" in observed.columns
              else None)
    rows = np.empty(len(observed), dtype=int)
    for i in range(len(observed)):
        if not np.isfinite(y[i]):
            raise InputError(not_a_number(observed[outcome].iloc[i]), source=source,
                             row=f"row {i + 1}", column=outcome)
        close = np.all(np.isclose(keys, seen[i], rtol=1e-9, atol=0.0), axis=1)
        hits = np.flatnonzero(close)
        # a blank row cell gives no row: the run is matched on its inputs alone, as in a file
        # without a row column (it was refused as "'' is not a row of the pool")
        if row_no is not None and not is_missing_cell(cell := observed["row"].iloc[i]):
            r_1 = row_no[i]
            # a row that is not a pool row was a ValueError traceback (2.5) or ignored (999)
            if not (np.isfinite(r_1) and r_1 == int(r_1) and 1 <= r_1 <= len(pool)):
                raise InputError(f"{show_cell(cell)} is not a row of the pool (1 to {len(pool)})",
                                 source=source, row=f"row {i + 1}", column="row")
            r = int(r_1) - 1
            if r in hits:
                hits = np.array([r])
        if not len(hits):
            raise InputError("this run matches no row of the pool (on "
                             f"{', '.join(cols)})", source=source, row=f"row {i + 1}")
        free = [h for h in hits if h not in rows[:i]]
        rows[i] = free[0] if free else hits[0]
    return rows, y[:, None]


# -- replay: the sequential loop on a pool whose outcomes a table holds ----------------------


@dataclass
class ReplayStep:
    """The state at one budget: rows observed, their cost, the fit's estimate."""

    budget: float
    observed: list[int]
    spent: float
    theta: np.ndarray | None
    rounds: int


def replay(model: PoolModel, cost: np.ndarray, target: np.ndarray, outcomes: np.ndarray,
           budgets: Sequence[float], settings: PoolSettings | None = None,
           baseline: Literal["random", "cheapest"] | None = None, fit_final: bool = True,
           max_rounds: int = 40) -> list[ReplayStep]:
    """Run the sequential design on a pool whose ``outcomes`` (n, O) are known but revealed only
    once a run is chosen, stopping at each cumulative budget share in ``budgets`` (ascending,
    of the non-target rows' total cost, as ScaleBench counts) to record the fit.

    Rounds grow with the spend (each may use as much as has been spent so far, at least an
    quarter of the budget), so early rounds adapt quickly and later ones batch. ``baseline``
    replaces the design by ScaleBench's baselines, one run at a time: ``random`` (any run left;
    one that would overshoot the budget is carried to the next budget) or ``cheapest``."""
    settings = settings or PoolSettings()
    outcomes = np.asarray(outcomes, dtype=float).reshape(len(cost), -1)
    pool_cost = float(cost[~target].sum())
    observed: list[int] = []
    spent = 0.0
    rng = np.random.default_rng(settings.seed)
    fitted: Fitted | None = None
    steps: list[ReplayStep] = []
    rounds = 0
    pending: list[int] = []
    free = ~target.copy()
    for share in budgets:
        total = float(share) * pool_cost
        if baseline is not None:
            observed.extend(pending)
            spent += float(cost[pending].sum()) if pending else 0.0
            pending = []
            while spent < total and free.any():
                rows = np.flatnonzero(free)
                if baseline == "random":
                    j = int(rng.choice(rows))
                else:
                    low = cost[rows].min()
                    j = int(rng.choice(rows[cost[rows] <= low * (1 + 1e-12)]))
                free[j] = False
                if spent + cost[j] > total * (1 + 1e-12):
                    pending = [j]
                    break
                observed.append(j)
                spent += float(cost[j])
        while baseline is None and rounds < max_rounds:
            left = total - spent
            if left <= 0:
                break
            rounds += 1
            chunk = min(left, max(spent, total / 4.0))
            obs = np.asarray(observed, dtype=int)
            rnd = next_round(model, cost, target, obs, outcomes[obs], chunk, settings,
                             warm=None if fitted is None else fitted.theta)
            if not rnd.picks and chunk < left:
                rnd = next_round(model, cost, target, obs, outcomes[obs], left, settings,
                                 fitted=rnd.fitted)
            fitted = rnd.fitted
            if not rnd.picks:
                break
            observed.extend(int(p) for p in rnd.picks)
            spent += float(cost[rnd.picks].sum())
        theta = None
        if fit_final and observed:
            obs = np.asarray(observed, dtype=int)
            try:
                fitted = model.fit(obs, outcomes[obs], seed=settings.seed, bootstrap=0,
                                   warm=None if fitted is None else fitted.theta, thorough=True)
                theta = fitted.theta
            except NotIdentifiable:
                theta = None
        steps.append(ReplayStep(float(share), list(observed), spent, theta, rounds))
    return steps


def r_squared(y: np.ndarray, pred: np.ndarray) -> float:
    """R² clipped to [-1, 1], flattened over outputs (ScaleBench's score)."""
    y = np.asarray(y, dtype=float).ravel()
    pred = np.asarray(pred, dtype=float).ravel()
    if not np.all(np.isfinite(pred)):
        return -1.0
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot < 1e-30:
        return 1.0 if ss_res < 1e-30 else -1.0
    return float(np.clip(1.0 - ss_res / ss_tot, -1.0, 1.0))


@dataclass(repr=False)
class ReplayResult(Result):
    """A study replayed on a pool with known outcomes: target-region R² per budget share and
    selection (``ours``, ``random``, ``cheapest``), mean and std over seeds, and the runs and
    cost each used (means)."""

    kind: ClassVar[str] = "pool_replay"

    law: str
    cost_expr: str
    target_expr: str
    budgets: list[float]
    seeds: list[int]
    r2: dict[str, dict[str, list[float]]]
    runs_used: dict[str, dict[str, float]]
    n_target: int
    run_ids: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        table = {m: {b: {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": list(v),
                         "runs": self.runs_used[m][b]} for b, v in per.items()}
                 for m, per in self.r2.items()}
        return {"kind": self.kind, "law": self.law, "cost_expr": self.cost_expr,
                "target_expr": self.target_expr, "budgets": list(self.budgets),
                "seeds": list(self.seeds), "n_target": self.n_target, "r2": table,
                "warnings": list(self.warnings), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReplayResult:
        r2 = {m: {b: list(v["values"]) for b, v in per.items()} for m, per in data["r2"].items()}
        runs = {m: {b: float(v["runs"]) for b, v in per.items()} for m, per in data["r2"].items()}
        return cls(law=data["law"], cost_expr=data["cost_expr"], target_expr=data["target_expr"],
                   budgets=list(data["budgets"]), seeds=list(data["seeds"]), r2=r2, runs_used=runs,
                   n_target=int(data["n_target"]), warnings=list(data.get("warnings", [])),
                   notes=list(data.get("notes", [])))

    def summary(self) -> Summary:
        methods = list(self.r2)
        table = Table("target-region R² (mean ± std over seeds; runs used)",
                      ["budget", *methods])
        for b in self.budgets:
            key = f"{b:g}"
            table.add_row(key, *[f"{np.mean(self.r2[m][key]):.3f} ± {np.std(self.r2[m][key]):.3f}"
                                 f" ({self.runs_used[m][key]:.0f})" for m in methods])
        facts = [("target", f"{self.n_target} rows ({self.target_expr})"),
                 ("cost", self.cost_expr), ("seeds", str(len(self.seeds)))]
        return Summary(title=f"pool design replayed ({self.law})", tables=[table], facts=facts,
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def _repr_items(self) -> list[str]:
        last = f"{self.budgets[-1]:g}"
        return [f"R² at {last}: " + ", ".join(f"{m} {np.mean(v[last]):.3f}"
                                               for m, v in self.r2.items())]


def replay_study(
    table: pd.DataFrame,
    law: Any,
    *,
    cost: str,
    target: str,
    budgets: Sequence[float] = (0.01, 0.05, 0.1),
    seeds: Sequence[int] = (0,),
    outcome: str = "loss",
    columns: Mapping[str, str] | None = None,
    k: int = 8,
    criterion: Criterion = "fisher",
    cost_power: float = 1.0,
    baselines: Sequence[str] = ("random", "cheapest"),
    discrepancy: bool = True,
    source: str = "table",
    model: PoolModel | None = None,
) -> ReplayResult:
    """Replay a study on ``table`` (a pool whose ``outcome`` column is known): for each seed,
    the sequential design (and each baseline) spends the budget shares in turn, seeing an
    outcome only once it chose the run; each fit is scored by R² on the target rows."""
    frame = as_table(table, "table").reset_index(drop=True)
    if outcome not in frame.columns:
        raise ParameterError(f"{source} has no outcome column {outcome!r} to reveal (its "
                             f"columns: {[str(c) for c in frame.columns]})", "outcome")
    y = _numbers(frame, outcome, source)
    shares = sorted(float(b) for b in budgets)
    if not shares or shares[0] <= 0 or shares[-1] > 1:
        raise ParameterError("budgets must be shares of the pool's cost in (0, 1]", "budgets")
    c = cost_of(frame, cost, source)
    tmask = target_mask(frame, c, target, source)
    model = model or LawModel(law, frame, columns, source)
    tgt = np.flatnonzero(tmask)
    methods = ["ours", *baselines]
    r2: dict[str, dict[str, list[float]]] = {m: {f"{b:g}": [] for b in shares} for m in methods}
    runs: dict[str, dict[str, list[int]]] = {m: {f"{b:g}": [] for b in shares} for m in methods}
    for seed in seeds:
        for m in methods:
            steps = replay(model, c, tmask, y, shares,
                           PoolSettings(k=k, cost_power=cost_power, criterion=criterion,
                                        seed=int(seed), discrepancy=discrepancy,
                                        rival=discrepancy),
                           baseline=None if m == "ours" else m)  # type: ignore[arg-type]
            for s in steps:
                key = f"{s.budget:g}"
                pred = (model.predict(s.theta[None, :], tgt)[0] if s.theta is not None
                        else np.full((len(tgt), model.n_outputs), np.nan))
                r2[m][key].append(r_squared(y[tgt], pred[:, 0] if pred.shape[1] == 1 else pred))
                runs[m][key].append(len(s.observed))
    return ReplayResult(law=getattr(getattr(model, "law", None), "name", str(law)),
                        cost_expr=cost, target_expr=target, budgets=shares,
                        seeds=[int(s) for s in seeds], r2=r2,
                        runs_used={m: {b: float(np.mean(v)) for b, v in per.items()}
                                for m, per in runs.items()},
                        n_target=int(tmask.sum()),
                        notes=["budgets are shares of the non-target rows' total cost; the "
                               "target rows are never chosen, their outcomes only score the fits"])
