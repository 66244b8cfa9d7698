"""Benchmark accuracy against training compute directly, when no loss is available.

The curve is a sigmoid in ``log10 C`` between a floor and a ceiling, ``acc = chance + (1 -
chance) / (1 + exp(-s (log10 C - x0)))`` (Owen 2024, "How predictable is language model
benchmark performance?"): the floor is the benchmark's chance level (0.25 for four-way multiple
choice, 0 for open answers) and the ceiling 1, both fixed by default, so only the slope ``s``
and midpoint ``x0`` are fitted; ``chance=None`` fits the floor too.

``fit_below=C`` splits the models: the curve is fitted to those trained with at most ``C``
FLOPs and scored on the larger ones (mean absolute error, with the interval the fit's bootstrap
gives it), the test of whether small models predict big ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from scalinglab.downstream.link_fit import LinkFit, fit_link
from scalinglab.downstream.links import SIGMOID_LINK
from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.results import Result
from scalinglab.stats import Estimate, quiet_runtime_warnings
from scalinglab.summary import Summary, Table, format_number, merge_places

X_NAME = "log10(C)"


def split_by_compute(C: np.ndarray, fit_below: float | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Boolean masks (train, test) and how many rows have no compute (in neither, when split)."""
    C = np.asarray(C, dtype=float)
    known = np.isfinite(C) & (C > 0)
    if fit_below is None:
        return known, np.zeros_like(known), int((~known).sum())
    if not (np.isfinite(fit_below) and fit_below > 0):
        raise ParameterError("fit_below must be a positive number of FLOPs", "fit_below")
    return known & (C <= fit_below), known & (C > fit_below), int((~known).sum())


def held_out_scores(
    predict: np.ndarray, draws: np.ndarray | None, actual: np.ndarray, level: float,
    partial_draws: bool = False,
) -> tuple[list[Estimate], Estimate | None, np.ndarray | None]:
    """Predictions with intervals for held-out models, their mean absolute error with an
    interval, and the per-draw MAE (None without draws).

    The interval is that of the MAE recomputed under every bootstrap draw of the fit: how much
    the fit's uncertainty moves the error. It sits mostly above the point MAE (a perturbed fit
    is rarely better than the best one); it is not a sampling interval over held-out models.
    ``partial_draws``: a draw may lack predictions for some models (NaN, e.g. a family absent
    from a resample); its MAE is then over the models it predicts.
    """
    ests = [Estimate.from_draws(predict[i], None if draws is None else draws[:, i], level)
            for i in range(len(actual))]
    if not len(actual):
        return ests, None, None
    mae_draws = None
    if draws is not None:
        err = np.abs(draws - actual[None, :])
        if partial_draws:
            with np.errstate(all="ignore"):
                mae_draws = np.where(np.isfinite(err).any(axis=1),
                                     np.nansum(err, axis=1) / np.maximum(np.isfinite(err).sum(axis=1), 1),
                                     np.nan)
        else:
            mae_draws = np.mean(err, axis=1)
    return ests, Estimate.from_draws(float(np.mean(np.abs(predict - actual))), mae_draws, level), mae_draws


@dataclass(repr=False)
class BenchmarkFit(Result):
    """A benchmark's sigmoid in log-compute, fitted below ``fit_below`` and scored above it.

    ``test`` rows: ``id``, ``C``, ``actual``, ``predicted`` (an Estimate), ``abs_err``.
    """

    kind: ClassVar[str] = "benchmark_fit"

    link: LinkFit
    fit_below: float | None
    test: list[dict[str, Any]] = field(default_factory=list)
    mae: Estimate | None = None
    n_without_compute: int = 0
    mae_draws: np.ndarray | None = None
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return self.link.metric

    @property
    def run_ids(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.link.run_ids

    @property
    def heldout_ids(self) -> tuple[str, ...]:
        return tuple(str(r["id"]) for r in self.test)

    def predict(self, C: Any) -> np.ndarray:
        return self.link.predict(np.log10(np.asarray(C, dtype=float)))

    def curve(self, C: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(point, lo, hi)`` of the metric over FLOPs ``C``, for figures."""
        return self.link.curve(np.log10(np.atleast_1d(np.asarray(C, dtype=float))))

    @property
    def extrapolation_region(self) -> tuple[float, float] | None:
        """FLOPs beyond what the curve was fitted on, up to the largest scored model."""
        top = 10.0 ** self.link.data_range[1]
        hi = max([top, *(r["C"] for r in self.test)])
        return (top, hi) if hi > top else None

    def _repr_items(self) -> list[str]:
        items = [self.metric]
        if self.mae is not None:
            items.append(f"MAE above {format_number(self.fit_below)} FLOPs {self.mae:.3g}")
        return items

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        return self.link._param_draws()  # the link over compute is what it fitted

    def summary(self) -> Summary:
        s = self.link.summary()
        tables = list(s.tables)
        if self.test:
            t = Table(f"models above {format_number(self.fit_below)} FLOPs (not fitted)",
                      ["model", "C", "actual", "predicted", "abs error"])
            for r in self.test:
                t.add_row(r["id"], r["C"], r["actual"], r["predicted"], r["abs_err"])
            tables.append(t)
        facts = list(s.facts)
        if self.mae is not None:
            facts.append(("mean absolute error on held-out models", f"{self.mae}"))
        return Summary(title=f"{self.metric} vs log10 compute", tables=tables, facts=facts,
                       notes=[*self.link.notes, *self.notes], warnings=[*self.link.warnings, *self.warnings],
                       data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        out = {
            "kind": self.kind, "metric": self.metric, "fit_below": self.fit_below,
            "level": self.level, "link": self.link.to_dict(include_draws),
            "test": [{**r, "predicted": r["predicted"].to_dict()} for r in self.test],
            "mae": None if self.mae is None else self.mae.to_dict(),
            "n_without_compute": self.n_without_compute,
            "warnings": list(self.warnings), "notes": list(self.notes),
        }
        if include_draws and self.mae_draws is not None:
            out["mae_draws"] = self.mae_draws.tolist()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchmarkFit:
        level = float(data.get("level", 0.95))
        return cls(
            link=LinkFit.from_dict(data["link"]),
            fit_below=None if data.get("fit_below") is None else float(data["fit_below"]),
            test=[{**r, "predicted": Estimate.from_dict(r["predicted"], level)} for r in data.get("test", [])],
            mae=None if data.get("mae") is None else Estimate.from_dict(data["mae"], level),
            n_without_compute=int(data.get("n_without_compute", 0)),
            mae_draws=None if data.get("mae_draws") is None else np.asarray(data["mae_draws"], float),
            level=level, warnings=list(data.get("warnings", [])), notes=list(data.get("notes", [])),
        )


def fit_benchmark(
    C: Any,
    y: Any,
    *,
    metric: str = "accuracy",
    chance: float | None = 0.0,
    ceiling: float | None = 1.0,
    fit_below: float | None = None,
    model_ids: Sequence[str] | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> BenchmarkFit:
    """Fit ``y = chance + (ceiling - chance) sigmoid(s (log10 C - x0))`` to models at or below
    ``fit_below`` FLOPs and score it on the models above.

    ``chance``/``ceiling`` None: fitted instead of fixed. Models without a compute value (NaN)
    are left out (counted in ``n_without_compute``), as are models without a score.
    """
    C = np.asarray(C, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if len(C) != len(y):
        raise ParameterError(f"C has {len(C)} values but y has {len(y)}", "C", "y")
    ids = np.array([str(m) for m in model_ids]) if model_ids is not None else np.arange(len(C)).astype(str)
    if len(ids) != len(C):
        raise ParameterError(f"{len(ids)} model_ids for {len(C)} models", "model_ids")
    scored = np.isfinite(y)
    train, test, n_nocompute = split_by_compute(np.where(scored, C, np.nan), fit_below)
    n_nocompute = int((scored & ~(np.isfinite(C) & (C > 0))).sum())
    fixed = {k: v for k, v in (("lo", chance), ("hi", ceiling)) if v is not None}
    if int(train.sum()) == 0:
        raise NotIdentifiable(f"no model with a score and compute at or below {fit_below:.3g} FLOPs")
    link = fit_link(np.log10(C[train]), y[train], SIGMOID_LINK, metric=metric, x_name=X_NAME,
                    fixed=fixed, bootstrap=bootstrap, seed=seed, run_ids=list(ids[train]), level=level)
    xt = np.log10(C[test])
    pred = np.atleast_1d(link.predict(xt)) if test.any() else np.zeros(0)
    draws = link.predict_draws(xt) if test.any() and link.draws is not None else None
    ests, mae, mae_draws = held_out_scores(pred, draws, y[test], level)
    rows = [{"id": str(i), "C": float(c), "actual": float(a), "predicted": e, "abs_err": float(abs(p - a))}
            for i, c, a, e, p in zip(ids[test], C[test], y[test], ests, pred, strict=True)]
    notes = []
    if n_nocompute:
        notes.append(f"{n_nocompute} models without a compute value were left out")
    return BenchmarkFit(link=link, fit_below=fit_below, test=rows, mae=mae,
                        n_without_compute=n_nocompute, mae_draws=mae_draws, level=level, notes=notes,
                        warnings=shape_warnings(link, y[train]))


def shape_warnings(link: LinkFit, y: np.ndarray) -> list[str]:
    """What the fitted sigmoid in compute cannot be trusted for: a curve that falls as compute
    grows (TruthfulQA's, whose floor came out [-11.4, 0.37]), or one whose direction the draws
    do not settle, and a ceiling far above every score (the bend and the ceiling are then
    assumed, not seen)."""
    out = []
    est = link.param_estimates()
    s = est["s"]
    lo, hi = link.params["lo"], link.params["hi"]
    rising = (hi - lo) * s.value
    if rising < 0:
        out.append(f"not monotone in compute as assumed: the fitted sigmoid falls as compute grows "
                   f"(s = {s:.3g}); bigger models are predicted to score lower, which the sigmoid "
                   "was not meant to say; read its extrapolation as unknown")
    elif s.ci is not None and s.ci[0] < 0 < s.ci[1]:
        out.append(f"the direction of the trend is not settled: the slope's interval s = {s:.3g} "
                   "spans 0")
    top = float(np.max(y)) if len(y) else float("nan")
    if "hi" in link.fixed and np.isfinite(top) and hi > lo and top < lo + 0.5 * (hi - lo):
        out.append(f"the ceiling {hi:g} is far above every score (at most {top:.3g}, less than halfway "
                   f"from the floor {lo:g}): the sigmoid's bend and its ceiling are assumed, not "
                   "seen; set a ceiling per metric (--ceiling NAME=VALUE) or read far "
                   "extrapolations as unknown")
    return out


def compute_outliers(C: Any, scores: Mapping[str, Any], model_ids: Sequence[str],
                     decades: float = 2.0) -> list[str]:
    """Models whose training compute is far from what their scores say (a FLOPs value ~1000x
    off: BTLM-3B's 627 "T" tokens in the ObsScaling table).

    A capability index (each benchmark standardised, averaged over those a model has) is
    regressed robustly (Theil-Sen) on log10 C; a model more than ``decades`` from that trend,
    and more than 4 median absolute deviations, is named. A model whose scores are below the
    median capability is only flagged when its compute looks too *large*: near chance level
    the scores cannot show a model ahead of the trend."""
    from scipy.stats import theilslopes

    x = np.log10(np.asarray(C, dtype=float).ravel())
    cols = [np.asarray(v, dtype=float).ravel() for v in scores.values()]
    if len(x) < 8 or not cols:
        return []
    Z = np.column_stack([(c - np.nanmean(c)) / (np.nanstd(c) or 1.0) for c in cols])
    with np.errstate(all="ignore"), quiet_runtime_warnings():
        cap = np.nanmean(Z, axis=1)
    ok = np.isfinite(x) & np.isfinite(cap)
    if ok.sum() < 8:
        return []
    slope, icpt, _, _ = theilslopes(cap[ok], x[ok])
    if not slope > 0:
        return []
    off = np.full(len(x), np.nan)
    off[ok] = x[ok] - (cap[ok] - icpt) / slope  # decades of compute beyond what the scores show
    mad = float(np.nanmedian(np.abs(off[ok] - np.nanmedian(off[ok]))))
    median_cap = float(np.nanmedian(cap[ok]))
    out = []
    for i in np.flatnonzero(ok):
        big = abs(off[i]) > max(decades, 4 * mad)
        if big and (off[i] > 0 or cap[i] >= median_cap):
            out.append(f"{model_ids[i]}: its compute {10 ** x[i]:.3g} FLOPs is {10 ** abs(off[i]):.3g}x "
                       f"{'more' if off[i] > 0 else 'less'} than its scores suggest ({off[i]:+.2g} decades "
                       "from the trend of the benchmarks with compute): check the value (units of "
                       "tokens or parameters?); one such model moves every fit in compute")
    return out


@dataclass(repr=False)
class BenchmarkTable(Result):
    """One :class:`BenchmarkFit` per benchmark (and, with families, one observational fit each:
    see :mod:`scalinglab.downstream.observational`), summarised in one table."""

    kind: ClassVar[str] = "benchmark_table"

    fits: dict[str, BenchmarkFit]
    fit_below: float | None
    observational: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def run_ids(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(dict.fromkeys(r for f in self.fits.values() for r in f.run_ids))

    def __getitem__(self, metric: str) -> BenchmarkFit:
        return self.fits[metric]

    def _repr_items(self) -> list[str]:
        return [f"{len(self.fits)} benchmarks"]

    def _interval_parts(self) -> dict[str, Result]:
        return dict(self.fits)  # "<metric>.<parameter>"

    def summary(self) -> Summary:
        cols = ["benchmark", "floor", "s", "x0 (log10 FLOPs)", "fitted on", "held out",
                "MAE sigmoid(log C)"]
        if self.observational:
            # each comparison on the same models: the observational prediction from scores with
            # the sigmoid on every held-out model; from compute (families seen in training only)
            # with the sigmoid on those same models
            cols += ["MAE observational", "models (from compute)", "MAE obs. from compute",
                     "MAE sigmoid, same models"]
        t = Table("benchmark vs compute" + (f", fitted at or below {format_number(self.fit_below)} FLOPs"
                                             if self.fit_below else ""), cols)
        for name, f in self.fits.items():
            est = f.link.param_estimates()
            row = [name, est["lo"], est["s"], est["x0"],
                   len(f.link.x), len(f.test), f.mae]
            if self.observational:
                obs = self.observational.get(name)
                n_c = None if obs is None else sum(r["from_compute"] is not None for r in obs.test)
                row += [None if obs is None else obs.mae_scores, n_c,
                        None if obs is None else obs.mae_compute,
                        None if obs is None else obs.mae_baseline_compute]
            t.add_row(*row)
        for name, obs in self.observational.items():
            if name not in self.fits:  # no FLOPs: the observational prediction alone
                n_u = sum(r["actual"] is not None for r in obs.unplaced)
                t.add_row(name, obs.link_params.get("lo"), None, None, len(obs.run_ids), n_u, None,
                          obs.mae_scores or obs.mae_unplaced, None, None, None)
        tables = [t]
        for name, obs in self.observational.items():
            if name not in self.fits and obs.unplaced:
                ut = Table(f"{name} predicted from its predictors", ["model", "why", "actual", "from scores"])
                for r in obs.unplaced:
                    ut.add_row(r["id"], r["why"], r["actual"], r["from_scores"])
                tables.append(ut)
        if self.failed:
            ft = Table("not fitted", ["benchmark", "why"])
            for m, why in self.failed.items():
                ft.add_row(m, why)
            tables.append(ft)
        warnings = list(self.warnings) + [f"{m}: {w}" for m, f in self.fits.items()
                                          for w in [*f.link.warnings, *f.warnings]]
        warnings += [f"{m} (observational): {w}" for m, o in self.observational.items() for w in o.warnings]
        # the text output keeps every note (models left out, families unseen in training)
        notes = list(self.notes) + [f"{m}: {n}" for m, f in self.fits.items() for n in [*f.link.notes, *f.notes]]
        notes += [f"{m} (observational): {n}" for m, o in self.observational.items() for n in o.notes]
        return Summary(title="benchmarks vs compute", tables=tables, notes=merge_places(notes),
                       warnings=warnings, data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        return {
            "kind": self.kind, "fit_below": self.fit_below, "level": self.level,
            "fits": {m: f.to_dict(include_draws) for m, f in self.fits.items()},
            "observational": {m: o.to_dict(include_draws) for m, o in self.observational.items()},
            "failed": dict(self.failed), "warnings": list(self.warnings), "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchmarkTable:
        from scalinglab.results import (
            result_from_dict,  # by kind: observational.py builds on this module
        )

        return cls(
            fits={m: BenchmarkFit.from_dict(d) for m, d in data["fits"].items()},
            fit_below=None if data.get("fit_below") is None else float(data["fit_below"]),
            observational={m: result_from_dict({"kind": "observational_fit", **d}) for m, d in (data.get("observational") or {}).items()},
            failed=dict(data.get("failed") or {}), level=float(data.get("level", 0.95)),
            warnings=list(data.get("warnings", [])), notes=list(data.get("notes", [])),
        )


def fit_benchmarks(
    C: Any,
    metrics: Mapping[str, Any],
    *,
    chance: float | Mapping[str, float | None] | None = 0.0,
    ceiling: float | Mapping[str, float | None] | None = 1.0,
    fit_below: float | None = None,
    model_ids: Sequence[str] | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> BenchmarkTable:
    """:func:`fit_benchmark` for every metric (``chance`` and ``ceiling`` per metric as
    mappings); a metric that cannot be fitted is listed in ``failed``. Models whose compute is
    far from what their scores say are named in the warnings (:func:`compute_outliers`)."""
    fits: dict[str, BenchmarkFit] = {}
    failed: dict[str, str] = {}
    ids = [str(m) for m in model_ids] if model_ids is not None else [str(i) for i in range(len(np.ravel(C)))]
    warnings = compute_outliers(C, metrics, ids)
    for name, values in metrics.items():
        floor = chance.get(name, 0.0) if isinstance(chance, Mapping) else chance
        top = ceiling.get(name, 1.0) if isinstance(ceiling, Mapping) else ceiling
        try:
            fits[name] = fit_benchmark(C, values, metric=name, chance=floor, ceiling=top,
                                       fit_below=fit_below, model_ids=model_ids,
                                       bootstrap=bootstrap, seed=seed, level=level)
        except NotIdentifiable as exc:
            failed[name] = str(exc)
    return BenchmarkTable(fits=fits, fit_below=fit_below, failed=failed, level=level,
                          warnings=warnings)


__all__ = ["BenchmarkFit", "BenchmarkTable", "fit_benchmark", "fit_benchmarks", "split_by_compute"]
