"""Coverage against the number of samples: Large Language Monkeys' exponentiated power law.

Brown et al. 2024 ("Large Language Monkeys: Scaling Inference Compute with Repeated Sampling")
find that coverage (pass@k over problems) follows ``log coverage(k) = a k^b`` (``a, b < 0``)
over four orders of magnitude of k, i.e. ``coverage = exp(a k^b)``, rising towards 1. The law is
fitted by least squares on log coverage at the observed k (the unbiased pass@k of
:mod:`scalinglab.testtime.passk`), started from the straight line ``log(-log cov) = log(-a) + b
log k``; the bootstrap resamples problems, recomputes the whole coverage curve and refits.

``samples_for(X)`` inverts it: ``k = (log X / a)^(1/b)`` samples for coverage X. The law's
approach to 1 is an assumption beyond the largest k observed (problems no sample ever solved may
stay unsolved); the result says when an answer is extrapolated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from scalinglab.downstream.curvefit import batched_lm, best_rows
from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.laws.base import Law, Provenance
from scalinglab.stats import Estimate, bootstrap_weights, percentile_interval
from scalinglab.summary import Summary, Table, format_number
from scalinglab.testtime.counts import ProblemCounts
from scalinglab.testtime.passk import _ProblemsResult, default_ks, fewest_samples, pass_at_k


def _coverage(x: Mapping[str, np.ndarray], p: Mapping[str, Any]) -> np.ndarray:
    return np.exp(p["a"] * x["k"] ** p["b"])


COVERAGE_LAW = Law(
    name="exp_power_coverage",
    formula="coverage = exp(a * k^b)",
    inputs=("k",),
    output="coverage",
    param_names=("a", "b"),
    fn=_coverage,
    bounds={"a": (-1e3, 0.0), "b": (-10.0, 0.0)},
    provenance=Provenance(
        source="Brown et al. 2024, 'Large Language Monkeys: Scaling Inference Compute with "
        "Repeated Sampling', section 3 (exponentiated power law of coverage)",
        url="https://arxiv.org/abs/2407.21787",
        units="k: samples per problem; coverage: fraction of problems solved by any sample",
    ),
)


def _log_law(theta: np.ndarray, k: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return theta[:, :1] * k[None, :] ** theta[:, 1:2]


def _line_start(k: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """(a, b) from the straight line through log(-log cov) against log k (0 < cov < 1)."""
    ok = (cov > 0) & (cov < 1)
    if ok.sum() >= 2:
        b, log_neg_a = np.polyfit(np.log(k[ok]), np.log(-np.log(cov[ok])), 1)
        return np.array([-np.exp(log_neg_a), min(b, -1e-3)])
    return np.array([np.log(max(float(np.mean(cov)), 1e-6)), -0.3])


def _fit_rows(k: np.ndarray, log_cov: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit every row of ``log_cov`` (R, m) from each of ``starts`` (S, 2): best (R, 2), cost (R,)."""
    r, s = log_cov.shape[0], len(starts)
    lo = np.array([COVERAGE_LAW.bounds["a"][0], COVERAGE_LAW.bounds["b"][0]])
    hi = np.array([COVERAGE_LAW.bounds["a"][1], COVERAGE_LAW.bounds["b"][1]])
    ok = np.isfinite(log_cov)
    y = np.where(ok, log_cov, 0.0)
    res = batched_lm(lambda th, rows: _log_law(th, k), np.tile(starts, (r, 1)), np.repeat(y, s, axis=0),
                     weights=np.repeat(ok.astype(float), s, axis=0), lower=lo, upper=hi)
    pick = best_rows(res.cost, r)
    return res.x[pick], res.cost[pick]


@dataclass(repr=False)
class CoverageFit(_ProblemsResult):
    """``coverage(k) = exp(a k^b)`` fitted to a benchmark's pass@k curve, with draws over problems.

    ``ks``/``observed`` are the points it was fitted to (observed carries the problem-bootstrap
    interval of each), ``run_ids`` the problem ids. ``targets`` are coverages the result also
    answers "how many samples?" for (:meth:`samples_for`), saved with it and marked in figures.
    """

    kind: ClassVar[str] = "coverage_fit"

    params: dict[str, float]
    draws: np.ndarray | None
    ks: np.ndarray
    observed: list[Estimate]
    run_ids: tuple[str, ...]
    model: str | None = None
    residual_std: float = float("nan")
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: tuple[float, ...] = ()

    @property
    def max_k(self) -> int:
        return int(np.max(self.ks))

    def predict(self, k: Any) -> np.ndarray:
        theta = np.array([[self.params["a"], self.params["b"]]])
        kk = np.atleast_1d(np.asarray(k, dtype=float))
        out = np.exp(_log_law(theta, kk))[0]
        return out if np.ndim(k) else out[0]

    def curve(self, k: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(point, lo, hi)`` of coverage at each ``k`` (extrapolated beyond ``max_k``)."""
        kk = np.atleast_1d(np.asarray(k, dtype=float))
        point = self.predict(kk)
        if self.draws is None or not len(self.draws):
            return point, np.full_like(point, np.nan), np.full_like(point, np.nan)
        lo, hi = percentile_interval(np.exp(_log_law(self.draws, kk)), self.level)
        return point, lo, hi

    def estimate(self, k: float) -> Estimate:
        point, lo, hi = self.curve([k])
        ok = self.draws is not None and len(self.draws)
        return Estimate(float(point[0]), float(lo[0]) if ok else None, float(hi[0]) if ok else None,
                        self.level, note=None if k <= self.max_k else
                        f"extrapolated beyond the largest k observed ({self.max_k})")

    def samples_for(self, coverage: float) -> Estimate:
        """Samples per problem for ``coverage`` (0 < coverage < 1): ``(log X / a)^(1/b)``."""
        if not 0.0 < coverage < 1.0:
            raise ParameterError(f"coverage must be strictly between 0 and 1, not {coverage}", "coverage")

        def k_for(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            with np.errstate(all="ignore"):
                k = (np.log(coverage) / a) ** (1.0 / b)
            return np.where((a < 0) & (b < 0), np.maximum(k, 1.0), np.inf)

        value = float(k_for(np.array(self.params["a"]), np.array(self.params["b"])))
        draws = None if self.draws is None else k_for(self.draws[:, 0], self.draws[:, 1])
        note = None if value <= self.max_k else (
            f"extrapolated: more than the {self.max_k} samples per problem observed")
        return Estimate.from_draws(value, draws, self.level, note=note)

    def _repr_items(self) -> list[str]:
        return [f"log coverage = {self.params['a']:.4g} k^{self.params['b']:.4g}"]

    def summary(self) -> Summary:
        est = {n: Estimate.from_draws(self.params[n], None if self.draws is None else self.draws[:, i],
                                      self.level) for i, n in enumerate(("a", "b"))}
        pt = Table(COVERAGE_LAW.formula, ["parameter", "estimate"])
        for n, e in est.items():
            pt.add_row(n, e)
        ct = Table("coverage: observed (unbiased pass@k) and fitted", ["k", "observed", "fitted"])
        for k, obs in zip(self.ks, self.observed, strict=True):
            ct.add_row(int(k), obs, self.estimate(float(k)))
        tables = [pt, ct]
        if self.targets:
            st = Table("samples per problem for a coverage", ["coverage", "samples k", ""])
            for t in self.targets:
                est = self.samples_for(t)
                st.add_row(t, est, est.note or "")
            tables.append(st)
        return Summary(title="coverage vs samples (Large Language Monkeys)" +
                       (f": {self.model}" if self.model else ""), tables=tables,
                       facts=[("problems", str(len(self.run_ids))),
                              ("residual std of log coverage", format_number(self.residual_std))],
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        return (tuple(self.params), self.draws)

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        ci = {}
        if self.draws is not None and len(self.draws):
            lo, hi = percentile_interval(self.draws, self.level)
            ci = {"a": [float(lo[0]), float(hi[0])], "b": [float(lo[1]), float(hi[1])]}
        out: dict[str, Any] = {
            "kind": self.kind, "formula": COVERAGE_LAW.formula, "model": self.model,
            "params": dict(self.params), "ci": ci, "level": self.level,
            "points": [{"k": int(k), "observed": o.to_dict()} for k, o in zip(self.ks, self.observed, strict=True)],
            "n_problems": len(self.run_ids), "residual_std": self.residual_std,
            "n_bootstrap": 0 if self.draws is None else len(self.draws),
            "warnings": list(self.warnings), "notes": list(self.notes),
        }
        if self.targets:
            out["samples_for"] = [{"coverage": t, **self.samples_for(t).to_dict()} for t in self.targets]
        if include_draws:
            out["run_ids"] = list(self.run_ids)
            if self.draws is not None:
                out["draws"] = self.draws.tolist()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CoverageFit:
        level = float(data.get("level", 0.95))
        pts = data.get("points", [])
        return cls(params={k: float(v) for k, v in data["params"].items()},
                   draws=None if data.get("draws") is None else np.asarray(data["draws"], float),
                   ks=np.array([p["k"] for p in pts], dtype=np.int64),
                   observed=[Estimate.from_dict(p["observed"], level) for p in pts],
                   run_ids=tuple(data.get("run_ids", [str(i) for i in range(int(data.get("n_problems", 0)))])),
                   model=data.get("model"), residual_std=float(data.get("residual_std") or float("nan")),
                   level=level, warnings=list(data.get("warnings", [])), notes=list(data.get("notes", [])),
                   targets=tuple(float(r["coverage"]) for r in data.get("samples_for") or []))


def fit_coverage(
    data: ProblemCounts,
    k: Sequence[int] | None = None,
    *,
    bootstrap: int = 500,
    seed: int = 0,
    level: float = 0.95,
) -> CoverageFit:
    """Fit ``log coverage = a k^b`` to the unbiased pass@k at ``k`` (default 1, 2, 4, ... up to
    the fewest samples per problem), with a bootstrap over problems.

    Raises :class:`NotIdentifiable` with fewer than 3 distinct k, or when no k has coverage
    strictly between 0 and 1 (a curve that is flat at 0 or 1 has no exponent).
    """
    ks = default_ks(data.min_samples) if k is None else np.unique(np.asarray(k, dtype=np.int64))
    if len(ks) < 3:
        raise NotIdentifiable(f"{len(ks)} values of k cannot identify a and b with a check of fit: "
                              "need at least 3 (draw more samples per problem)"
                              + (fewest_samples(data) if k is None else ""))
    per = pass_at_k(data.n, data.c, ks)
    cov = per.mean(axis=0)
    if not np.any((cov > 0) & (cov < 1)):
        raise NotIdentifiable("coverage is 0 or 1 at every k: the curve has no slope to fit")
    kf = ks.astype(float)
    with np.errstate(divide="ignore"):
        log_cov = np.log(cov)
    starts = np.array([_line_start(kf, cov), [-1.0, -0.5], [-0.1, -0.2]])
    best, _ = _fit_rows(kf, log_cov[None, :], starts)
    theta = best[0]
    ok = np.isfinite(log_cov)
    resid = _log_law(theta[None, :], kf[ok])[0] - log_cov[ok]
    warnings, notes = [], []
    if (~ok).any():
        notes.append(f"k = {', '.join(str(int(v)) for v in ks[~ok])}: coverage 0, left out of the fit")
    draws = None
    observed_draws = None
    if bootstrap > 0:
        w = bootstrap_weights(data.n_problems, bootstrap, np.random.default_rng(seed))
        observed_draws = w @ per / data.n_problems
        with np.errstate(divide="ignore"):
            log_b = np.log(observed_draws)
        draws, cost = _fit_rows(kf, log_b, np.vstack([theta, starts[:1]]))
        draws = draws.copy()
        draws[~np.isfinite(cost) | (np.isfinite(log_b).sum(axis=1) < 2)] = np.nan
    observed = [Estimate.from_draws(cov[j], None if observed_draws is None else observed_draws[:, j], level)
                for j in range(len(ks))]
    if theta[1] > -1e-3:
        warnings.append(f"the fitted exponent b = {theta[1]:.3g} is at 0: coverage does not rise with k "
                        "here; samples-for-coverage answers are meaningless")
    never = int(np.sum(data.c == 0))
    if never:
        notes.append(f"{never} of {data.n_problems} problems were never solved; the law assumes they "
                     "would be with enough samples")
    return CoverageFit(params={"a": float(theta[0]), "b": float(theta[1])}, draws=draws, ks=ks,
                       observed=observed, run_ids=data.problem_ids, model=data.model,
                       residual_std=float(np.std(resid)) if resid.size else float("nan"),
                       level=level, warnings=warnings, notes=notes)


__all__ = ["COVERAGE_LAW", "CoverageFit", "fit_coverage"]
