"""What the charts of downstream and test-time results draw: points, fitted curves, bands and
regions, taken from the result objects (their stored points and their ``curve()``), shared by
the interactive charts (:mod:`scalinglab.report.charts`) and the static figures
(:mod:`scalinglab.report.figures`).

Three views:

- :func:`link_views`: a loss-to-metric link (:class:`~scalinglab.downstream.LinkFit`, or every
  metric of a :class:`~scalinglab.downstream.LinkTable`): the models it was fitted to, the
  fitted link over the loss range and its bootstrap band;
- :func:`benchmark_view`: a metric against training compute
  (:class:`~scalinglab.downstream.BenchmarkFit`): the models fitted (at or below the cut-off)
  and those scored (above it), the curve with its band, the floor and ceiling, and the compute
  beyond the largest fitted model, where the curve is an extrapolation;
- :func:`coverage_view`: coverage against samples per problem
  (:class:`~scalinglab.testtime.CoverageFit` or :class:`~scalinglab.testtime.PassAtK`): the
  observed unbiased pass@k with its interval, the fitted law with its band, and the samples the
  result says a target coverage needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: points on every fitted curve
GRID_POINTS = 160
#: a link's curve runs this fraction of the data's range past each end
LINK_MARGIN = 0.05


@dataclass
class LinkView:
    """One metric's link: points ``(x, y)`` (one per model, ``run_ids``), the curve ``point`` over
    ``grid`` and its band ``[lo, hi]`` (NaN without draws)."""

    metric: str
    x_name: str
    formula: str
    x: np.ndarray
    y: np.ndarray
    run_ids: tuple[str, ...]
    grid: np.ndarray
    point: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    level: float
    identified: bool = True

    @property
    def has_band(self) -> bool:
        return bool(np.isfinite(self.lo).any())


def _link_view(fit: Any) -> LinkView:
    lo_x, hi_x = fit.data_range
    pad = LINK_MARGIN * (hi_x - lo_x or abs(lo_x) or 1.0)
    grid = np.linspace(lo_x - pad, hi_x + pad, GRID_POINTS)
    point, lo, hi = fit.curve(grid)
    return LinkView(metric=fit.metric, x_name=fit.x_name, formula=fit.form.law.formula,
                    x=np.asarray(fit.x, float), y=np.asarray(fit.y, float),
                    run_ids=tuple(fit.run_ids), grid=grid, point=point, lo=lo, hi=hi,
                    level=fit.level, identified=not fit.unidentified)


def link_views(result: Any) -> list[LinkView]:
    """One view per metric: a ``LinkFit`` gives one, a ``LinkTable`` one per fitted metric."""
    fits = list(result.fits.values()) if hasattr(result, "fits") else [result]
    return [_link_view(f) for f in fits]


@dataclass
class BenchmarkView:
    """A benchmark against compute. ``fitted_*``: the models the curve was fitted to;
    ``scored_*``: the models above the cut-off, with the curve's prediction ``[pred_lo, pred_hi]``;
    ``extrapolation``: the FLOPs beyond the largest fitted model up to the chart's end."""

    metric: str
    fitted_C: np.ndarray
    fitted_y: np.ndarray
    fitted_ids: tuple[str, ...]
    scored_C: np.ndarray
    scored_y: np.ndarray
    scored_pred: np.ndarray
    scored_lo: np.ndarray
    scored_hi: np.ndarray
    scored_ids: tuple[str, ...]
    grid: np.ndarray
    point: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    floor: float
    ceiling: float
    fit_below: float | None
    extrapolation: tuple[float, float]
    mae: Any = None
    level: float = 0.95
    #: other predictions of the scored models, e.g. an observational fit's: (name, C, value, lo, hi)
    others: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def has_band(self) -> bool:
        return bool(np.isfinite(self.lo).any())


def _interval(est: Any) -> tuple[float, float, float]:
    if est is None:
        return float("nan"), float("nan"), float("nan")
    lo = float("nan") if est.lo is None else est.lo
    hi = float("nan") if est.hi is None else est.hi
    return float(est.value), lo, hi


def benchmark_view(result: Any) -> BenchmarkView:
    """The view of a ``BenchmarkFit``: the grid runs half a decade past the smallest and the
    largest model, so the region beyond the fitted models always shows."""
    link = result.link
    fitted_C = 10.0 ** np.asarray(link.x, float)
    test = result.test
    scored_C = np.array([r["C"] for r in test], float)
    pred = np.array([_interval(r["predicted"]) for r in test], float).reshape(-1, 3)
    top_fitted = float(fitted_C.max())
    span_hi = max([top_fitted, *scored_C.tolist()])
    grid = np.geomspace(float(fitted_C.min()) / 10 ** 0.5, span_hi * 10 ** 0.5, GRID_POINTS)
    point, lo, hi = result.curve(grid)
    params = link.params
    return BenchmarkView(
        metric=result.metric, fitted_C=fitted_C, fitted_y=np.asarray(link.y, float),
        fitted_ids=tuple(link.run_ids), scored_C=scored_C,
        scored_y=np.array([r["actual"] for r in test], float), scored_pred=pred[:, 0],
        scored_lo=pred[:, 1], scored_hi=pred[:, 2], scored_ids=tuple(str(r["id"]) for r in test),
        grid=grid, point=point, lo=lo, hi=hi, floor=float(params["lo"]), ceiling=float(params["hi"]),
        fit_below=result.fit_below, extrapolation=(top_fitted, float(grid[-1])), mae=result.mae,
        level=result.level)


def observational_view(result: Any) -> BenchmarkView | None:
    """An observational fit drawn over its baseline (a sigmoid in log-compute on the same
    models), its own predictions of the scored models beside the baseline's; None without a
    baseline (no compute)."""
    if result.baseline is None:
        return None
    view = benchmark_view(result.baseline)
    for key, name in (("from_scores", "observational: from the other benchmarks"),
                      ("from_compute", "observational: from compute and family")):
        rows = [r for r in result.test if r.get(key) is not None]
        if rows:
            vals = np.array([_interval(r[key]) for r in rows], float).reshape(-1, 3)
            view.others.append((name, np.array([r["C"] for r in rows], float), vals[:, 0],
                                vals[:, 1], vals[:, 2]))
    return view


@dataclass
class CoverageView:
    """Coverage against k: observed pass@k at ``ks`` with ``[obs_lo, obs_hi]``; the fitted law
    over ``grid`` with its band (None for pass@k alone); ``targets``: (coverage, Estimate of k)."""

    title: str
    ks: np.ndarray
    observed: np.ndarray
    obs_lo: np.ndarray
    obs_hi: np.ndarray
    max_k: int
    level: float
    grid: np.ndarray | None = None
    point: np.ndarray | None = None
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    formula: str = ""
    targets: list[tuple[float, Any]] = field(default_factory=list)

    @property
    def has_band(self) -> bool:
        return self.lo is not None and bool(np.isfinite(self.lo).any())


def coverage_view(result: Any) -> CoverageView:
    """The view of a ``CoverageFit`` (observed points, the law, its targets) or a ``PassAtK``
    (observed points only). The law is drawn past the largest k observed, to the largest
    target's k where one asks for more (at most 100 times further)."""
    level = result.level
    ks = np.asarray(result.ks, dtype=float)
    model = f" ({result.model})" if getattr(result, "model", None) else ""
    if hasattr(result, "samples_for"):
        obs = np.array([_interval(o) for o in result.observed], float).reshape(-1, 3)
        targets = [(t, result.samples_for(t)) for t in getattr(result, "targets", ())]
        reach = [e.value for _, e in targets if np.isfinite(e.value)]
        top = min(max([ks.max() * 4, *(1.3 * v for v in reach)]), ks.max() * 100)
        grid = np.geomspace(1.0, max(top, 2.0), GRID_POINTS)
        point, lo, hi = result.curve(grid)
        from scalinglab.testtime.coverage import COVERAGE_LAW

        p = result.params
        return CoverageView(title=f"Coverage vs samples per problem{model}", ks=ks, observed=obs[:, 0],
                            obs_lo=obs[:, 1], obs_hi=obs[:, 2], max_k=result.max_k, level=level,
                            grid=grid, point=point, lo=lo, hi=hi,
                            formula=f"{COVERAGE_LAW.formula}, a = {p['a']:.4g}, b = {p['b']:.4g}",
                            targets=targets)
    obs = np.array([_interval(result.estimate(int(k))) for k in result.ks], float).reshape(-1, 3)
    return CoverageView(title=f"pass@k vs samples per problem{model}", ks=ks, observed=obs[:, 0],
                        obs_lo=obs[:, 1], obs_hi=obs[:, 2], max_k=result.max_k, level=level)


__all__ = ["BenchmarkView", "CoverageView", "LinkView", "benchmark_view", "coverage_view",
           "link_views", "observational_view"]
