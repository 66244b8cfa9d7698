"""How much a run would teach: the expected shrinking of the target's spread, per run added.

The uncertainty of a fitted law is summarised, in log space, as one joint covariance over the
*tracked* figures (log L and log N_opt at the target budget, and the law's parameters in their
fitting coordinates) and the log-loss the law predicts at every *candidate* run. Observing a
candidate ``j`` with noise variance ``s2`` then shrinks each tracked variance by Gaussian
conditioning (the Kalman / Sherman-Morrison update of a linearised model)::

    Var[g | y_j] = Var[g] - Cov[g, f_j]^2 / (Var[f_j] + s2)

and the whole covariance by the same rank-one update, so a batch is chosen greedily, each pick
conditioning the next. Two estimates of the covariance are offered:

- ``from_draws``: the bootstrap draws themselves (an ensemble, as in ensemble Kalman filters):
  nonlinearity and skew of the fit are in it, nothing is linearised but the update. Columns are
  winsorised at the interval's own percentiles, so a few exploding draws of an unidentified fit
  do not dominate the covariance while its 95% spread is kept.
- ``from_fisher``: the linearised (Fisher) covariance at the estimate,
  ``s2 (J'J + s2 P^-1)^-1``, with a weak prior ``P`` from the law's bounds so that directions
  the runs cannot see have a finite, large variance instead of none.

``s2`` is the variance a new run adds. The fit minimises Huber(1e-3) of log residuals, which for
residuals of ~1% is least absolute deviations: its asymptotic variance is that of least squares
times ``pi/2`` for Gaussian errors (Koenker 2005, *Quantile Regression*, sec. 4.1), so a run's
effective noise is ``pi/2`` times the residual variance (corrected for the parameters fitted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from scalinglab.design.greedy import Belief, factor
from scalinglab.design.targets import figures_at
from scalinglab.errors import NotIdentifiable
from scalinglab.fit.result import FitResult
from scalinglab.laws.base import Law, LawInstance
from scalinglab.results import short_repr
from scalinglab.stats import percentile_interval

#: figures at the target that a design can aim at (the rest of the tracked list is parameters)
TARGET_FIGURES = ("loss", "N_opt")
#: a fit's residual std is floored here: a perfect fit of few runs must not promise zero noise
MIN_NOISE_STD = 1e-3
#: LAD (Huber with delta << noise) variance relative to least squares, for Gaussian errors
LAD_EFFICIENCY_FACTOR = np.pi / 2
#: fewest usable draws for an ensemble covariance of a 5-parameter law
MIN_DRAWS = 20


def new_run_variance(fit: FitResult) -> float:
    """The effective variance of one new run's log loss, for the update (see module docstring)."""
    n, p = fit.n_runs, len(fit.law.param_names)
    std = float(fit.residual_std) if np.isfinite(fit.residual_std) else MIN_NOISE_STD
    std *= np.sqrt(n / max(n - p, 1))
    return float(max(std, MIN_NOISE_STD) ** 2 * LAD_EFFICIENCY_FACTOR)


def _fitting_coordinates(law: Law, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Which parameters the law fits as logs (scales) and which as they are (exponents)."""
    return np.asarray(law.log_model(inputs).log_params, dtype=bool)


@dataclass
class Spread:
    """The joint covariance of tracked figures and candidate predictions, all in log space.

    ``cov`` is ``(T + M, T + M)``: the first ``T`` rows are the tracked figures (``names``), the
    other ``M`` the candidates' log-loss. ``weights`` (T,) say what a design aims at: the
    objective is ``sum_t w_t Var_t / Var_t(now)``, so each aimed-at figure counts by how much of
    its variance is removed.
    """

    __repr__ = short_repr  # one short line, not every field

    names: tuple[str, ...]
    cov: np.ndarray
    weights: np.ndarray
    noise_var: float
    source: str
    #: tracked figures kept as logs (their intervals scale multiplicatively)
    log_scale: tuple[bool, ...] = ()
    n_draws: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def n_tracked(self) -> int:
        return len(self.names)

    @property
    def n_candidates(self) -> int:
        return len(self.cov) - self.n_tracked

    def variances(self) -> dict[str, float]:
        return dict(zip(self.names, np.diag(self.cov)[: self.n_tracked].tolist(), strict=True))

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_draws(cls, fit: FitResult, C: float, cand_N: np.ndarray, cand_D: np.ndarray,
                   weights: Mapping[str, float], noise_var: float | None = None) -> Spread:
        """The bootstrap ensemble's covariance (needs a fit with draws)."""
        if fit.draws is None or fit.n_draws < MIN_DRAWS:
            raise NotIdentifiable(f"the fit has {fit.n_draws} bootstrap draws; a design from "
                                  f"draws needs at least {MIN_DRAWS} (fit with bootstrap)")
        law = fit.law
        ok = np.all(np.isfinite(fit.draws), axis=1)
        cols = {k: v[ok] for k, v in fit.draw_columns().items()}
        tracked, names, log_scale = _tracked(law, cols, C, _fitting_coordinates(
            law, {"N": cand_N[:1], "D": cand_D[:1]}))
        with np.errstate(all="ignore"):
            pred = np.log(law({k: v[:, None] for k, v in cols.items()}, N=cand_N[None, :],
                              D=cand_D[None, :]))
        z = np.column_stack([tracked, pred])
        finite = np.all(np.isfinite(z), axis=1)
        z = z[finite]
        if len(z) < MIN_DRAWS:
            raise NotIdentifiable(f"only {len(z)} of the fit's {fit.n_draws} bootstrap draws give "
                                  "finite target figures; the runs do not constrain the law enough "
                                  "to design from its draws (use the Fisher criterion)")
        lo, hi = percentile_interval(z, fit.level)
        z = np.clip(z, lo, hi)
        cov = np.atleast_2d(np.cov(z, rowvar=False))
        notes = []
        if len(z) < fit.n_draws:
            notes.append(f"{fit.n_draws - len(z)} of {fit.n_draws} draws left out (no finite "
                         "optimum at the target)")
        return cls(names, cov, _weights(names, weights), new_run_variance(fit)
                   if noise_var is None else float(noise_var), "bootstrap draws",
                   log_scale, int(len(z)), notes)

    @classmethod
    def from_fisher(cls, fit: FitResult, run_N: np.ndarray, run_D: np.ndarray, C: float,
                    cand_N: np.ndarray, cand_D: np.ndarray, weights: Mapping[str, float],
                    noise_var: float | None = None, replicates: np.ndarray | None = None
                    ) -> Spread:
        """The linearised covariance at the fit's estimate, with a weak prior from the bounds;
        ``replicates`` (per run, may be fractional) weigh the runs' information."""
        law = fit.law
        s2 = new_run_variance(fit) if noise_var is None else float(noise_var)
        is_log = _fitting_coordinates(law, {"N": run_N[:1], "D": run_D[:1]})
        theta = _to_theta(law, fit.params, is_log)

        def params_of(th: np.ndarray) -> dict[str, np.ndarray]:
            return {k: (np.exp(th[..., i]) if is_log[i] else th[..., i])
                    for i, k in enumerate(law.param_names)}

        def log_loss(th: np.ndarray, N: np.ndarray, D: np.ndarray) -> np.ndarray:
            p = {k: v[:, None] for k, v in params_of(th).items()}
            with np.errstate(all="ignore"):
                return np.log(law(p, N=N[None, :], D=D[None, :]))

        def tracked(th: np.ndarray) -> np.ndarray:
            return _tracked(law, params_of(th), C, is_log)[0]

        j_runs = _jacobian(lambda th: log_loss(th, run_N, run_D), theta)
        j_cand = _jacobian(lambda th: log_loss(th, cand_N, cand_D), theta)
        j_tr = _jacobian(tracked, theta)
        prior = _prior_precision(law, is_log)
        w = np.ones(len(j_runs)) if replicates is None else np.asarray(replicates, dtype=float)
        info = (j_runs.T * w) @ j_runs / s2 + prior
        cov_theta = np.linalg.pinv(info, hermitian=True)
        h = np.vstack([j_tr, j_cand])
        cov = h @ cov_theta @ h.T
        names, log_scale = _tracked_names(law, is_log)
        return cls(names, cov, _weights(names, weights), s2, "Fisher information at the estimate",
                   log_scale, 0, [])

    # -- choosing runs ---------------------------------------------------------------------

    def gains(self, cov: np.ndarray | None = None, base: np.ndarray | None = None) -> np.ndarray:
        """Objective reduction (in units of the objective's current value) of each candidate."""
        cov = self.cov if cov is None else cov
        t = self.n_tracked
        base = np.diag(self.cov)[:t] if base is None else base
        w = np.where(base > 0, self.weights / np.where(base > 0, base, 1.0), 0.0)
        cross = cov[:t, t:]
        var_f = np.diag(cov)[t:]
        with np.errstate(all="ignore"):
            g = (w[:, None] * cross**2).sum(axis=0) / (var_f + self.noise_var)
        return np.where(np.isfinite(g), np.maximum(g, 0.0), 0.0) / max(float(self.weights.sum()), 1e-300)

    def choose(self, cost: np.ndarray, budget: float, k: int, price: float = 0.0,
               available: np.ndarray | None = None, min_gain: float = 0.0) -> Choice:
        """Greedily pick up to ``k`` candidates of total cost ``<= budget``, each maximising its
        objective reduction per unit of ``cost + price`` given the picks before it.

        ``price`` is the cost a run carries beyond its FLOPs (e.g. the share of the spend a run
        slot stands for when the number of runs is limited); 0 gives pure reduction per FLOP,
        ``inf`` pure reduction (FLOPs then only have to fit the budget). A candidate that would
        remove less than ``min_gain`` of the objective is never picked.
        """
        t = self.n_tracked
        base = np.diag(self.cov)[:t].copy()
        # the one engine (design.greedy): the joint covariance in latent form, each tracked
        # figure weighted by its share of the objective
        latent = factor(self.cov)
        w = np.where(base > 0, self.weights / np.where(base > 0, base, 1.0), 0.0)
        belief = Belief(latent[:t], latent[t:], np.eye(latent.shape[1]), self.noise_var, w)
        got = belief.choose(np.asarray(cost, dtype=float), budget, k, price=price,
                            available=available, min_gain=min_gain)
        return Choice(picks=got.picks, gains=got.gains,
                      var_before=dict(zip(self.names, base.tolist(), strict=True)),
                      var_after=dict(zip(self.names, got.var_after.tolist(), strict=True)),
                      cost=got.cost)


@dataclass
class Choice:
    """The candidates picked (indices), each one's share of the objective removed when it was
    picked, and each tracked figure's variance before and after all of them."""

    picks: list[int]
    gains: list[float]
    var_before: dict[str, float]
    var_after: dict[str, float]
    cost: float

    def ratio(self, name: str) -> float:
        """Expected interval width after / before, for one tracked figure."""
        before, after = self.var_before.get(name, np.nan), self.var_after.get(name, np.nan)
        if not before > 0:
            return float("nan")
        return float(np.sqrt(max(after, 0.0) / before))


# -- helpers -------------------------------------------------------------------------------------


def _tracked_names(law: Law, is_log: np.ndarray) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    names = (*TARGET_FIGURES, *law.param_names)
    return names, (True,) * len(TARGET_FIGURES) + tuple(bool(x) for x in is_log)


def _tracked(law: Law, cols: Mapping[str, np.ndarray], C: float, is_log: np.ndarray
             ) -> tuple[np.ndarray, tuple[str, ...], tuple[bool, ...]]:
    """(K, T) tracked figures in log space: log L(C), log N_opt(C), then the parameters in their
    fitting coordinates."""
    figs = figures_at(law, cols, C)
    with np.errstate(all="ignore"):
        out = [np.log(figs["loss"]), np.log(figs["N_opt"])]
        for i, k in enumerate(law.param_names):
            v = np.atleast_1d(np.asarray(cols[k], dtype=float))
            out.append(np.log(v) if is_log[i] else v)
    names, log_scale = _tracked_names(law, is_log)
    return np.column_stack(out), names, log_scale


def _weights(names: tuple[str, ...], weights: Mapping[str, float]) -> np.ndarray:
    unknown = set(weights) - set(names)
    if unknown:
        from scalinglab.errors import ParameterError

        raise ParameterError(f"cannot aim a design at {sorted(unknown)}; it can aim at "
                             f"{list(names)}", "aim")
    w = np.array([float(weights.get(n, 0.0)) for n in names])
    if not (w >= 0).all() or not w.sum() > 0:
        from scalinglab.errors import ParameterError

        raise ParameterError("a design needs a positive weight on at least one figure", "aim")
    return w


def _to_theta(law: Law, params: Mapping[str, float], is_log: np.ndarray) -> np.ndarray:
    return np.array([np.log(params[k]) if is_log[i] else params[k]
                     for i, k in enumerate(law.param_names)], dtype=float)


def _jacobian(fn, theta: np.ndarray, rel: float = 1e-5) -> np.ndarray:
    """Central differences of ``fn`` (rows of theta -> (rows, M)) at ``theta``: (M, P)."""
    p = len(theta)
    h = rel * np.maximum(1.0, np.abs(theta))
    pts = np.vstack([theta + np.diag(h), theta - np.diag(h)])
    vals = np.asarray(fn(pts), dtype=float)
    return ((vals[:p] - vals[p:]) / (2.0 * h[:, None])).T


def _prior_precision(law: Law, is_log: np.ndarray) -> np.ndarray:
    """A weak Gaussian prior in fitting coordinates: sd a quarter of each parameter's bounds."""
    prec = []
    for i, k in enumerate(law.param_names):
        lo, hi = law.bounds.get(k, (1e-6, 1e6) if is_log[i] else (-10.0, 10.0))
        if is_log[i]:
            lo, hi = np.log(max(lo, 1e-12)), np.log(hi)
        sd = max((hi - lo) / 4.0, 1e-6)
        prec.append(1.0 / sd**2)
    return np.diag(prec)


@dataclass
class FisherDesign:
    """The linearised information that runs at fixed positions give about the target figures,
    at a known law instance: for screening and optimising designs without fitting anything.

    ``jac`` (M, P) is d log L / d theta at each run, ``grad`` (2, P) d log L(target) and
    d log N_opt(target) / d theta, in the law's fitting coordinates; a design is a vector of
    replicate counts per run (fractional counts describe a continuous design).
    """

    jac: np.ndarray
    grad: np.ndarray
    prior: np.ndarray
    noise_var: float

    @classmethod
    def at(cls, truth: LawInstance, N: np.ndarray, D: np.ndarray, target: float,
           sigma: float) -> FisherDesign:
        law = truth.law
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        is_log = _fitting_coordinates(law, {"N": N[:1], "D": D[:1]})
        theta = _to_theta(law, truth.params, is_log)

        def params_of(th: np.ndarray) -> dict[str, np.ndarray]:
            return {k: (np.exp(th[..., i]) if is_log[i] else th[..., i])
                    for i, k in enumerate(law.param_names)}

        def log_loss(th: np.ndarray) -> np.ndarray:
            p = {k: v[:, None] for k, v in params_of(th).items()}
            return np.log(law(p, N=N[None, :], D=D[None, :]))

        grad = _jacobian(lambda th: _tracked(law, params_of(th), target, is_log)[0], theta)
        return cls(_jacobian(log_loss, theta), grad[: len(TARGET_FIGURES)],
                   _prior_precision(law, is_log), float(sigma**2 * LAD_EFFICIENCY_FACTOR))

    def _cov(self, replicates: np.ndarray) -> np.ndarray:
        w = np.asarray(replicates, dtype=float)
        return np.linalg.inv((self.jac.T * w) @ self.jac / self.noise_var + self.prior)

    def variances(self, replicates: np.ndarray) -> np.ndarray:
        """Var of log L(target) and log N_opt(target) for this design, (2,)."""
        cov = self._cov(replicates)
        return np.einsum("tp,pq,tq->t", self.grad, cov, self.grad)

    def variance_gradient(self, replicates: np.ndarray) -> np.ndarray:
        """d Var_t / d replicates_j = -(g_t' S j_j)^2 / s2, (2, M)."""
        cov = self._cov(replicates)
        return -((self.grad @ cov @ self.jac.T) ** 2) / self.noise_var

    def widths(self, replicates: np.ndarray | None = None, level: float = 0.95) -> dict[str, float]:
        """Relative interval widths ``(hi - lo) / truth`` of L and N_opt at the target."""
        from scipy.stats import norm

        w = np.ones(len(self.jac)) if replicates is None else replicates
        z = float(norm.ppf(0.5 + level / 2))
        sd = np.sqrt(self.variances(w))
        return {k: float(np.exp(z * v) - np.exp(-z * v)) for k, v in zip(TARGET_FIGURES, sd, strict=True)}


def fisher_widths(truth: LawInstance, N: np.ndarray, D: np.ndarray, target: float,
                  sigma: float, level: float = 0.95, replicates: np.ndarray | None = None
                  ) -> dict[str, float]:
    """Relative interval widths ``(hi - lo) / truth`` of L and N_opt at ``target`` that the Fisher
    information of runs at (N, D) predicts, at the truth, for log-normal noise ``sigma`` and the
    engine's (LAD-like) fit: a screen for designs, with no fitting or simulation. ``replicates``
    weigh the runs (fractional counts describe a continuous design)."""
    return FisherDesign.at(truth, N, D, target, sigma).widths(replicates, level)
