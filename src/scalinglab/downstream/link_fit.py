"""Fitting a loss-to-metric link, one metric or many, as result objects.

:func:`fit_link` fits one metric against the loss (Gadre et al.'s exponential or a sigmoid) and
returns a :class:`LinkFit`; :func:`fit_links` fits many metric columns against the same loss
column and returns a :class:`LinkTable`, one table for all of them (the 46 task errors of
Gadre et al. in one call). A metric that cannot be fitted is listed with its reason; the others
go on.

Every metric of one table is resampled with the same bootstrap weights (same rows, same seed),
so draw ``j`` of every metric comes from the same resample of models: averages of metrics, and
their intervals, can be formed draw by draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from scalinglab.downstream.links import LinkForm, fit_form, get_link
from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.laws.base import LawInstance, Provenance
from scalinglab.results import Result, without_held
from scalinglab.stats import Estimate, bootstrap_weights, percentile_interval
from scalinglab.summary import Summary, Table, format_number


def _form(link: str | LinkForm) -> LinkForm:
    return get_link(link) if isinstance(link, str) else link


@dataclass(repr=False)
class LinkFit(Result):
    """A fitted link ``metric = f(x)`` (x: a loss, or log10 of compute) with bootstrap draws.

    ``draws`` has one row per resample and one column per parameter of ``form`` (fixed ones
    constant); rows of NaN are resamples that could not identify the link. ``x`` and ``y`` are
    the points it was fitted to, for figures.
    """

    kind: ClassVar[str] = "link_fit"

    form: LinkForm
    metric: str
    x_name: str
    params: dict[str, float]
    draws: np.ndarray | None
    x: np.ndarray
    y: np.ndarray
    run_ids: tuple[str, ...] = ()
    fixed: dict[str, float] = field(default_factory=dict)
    residual_std: float = float("nan")
    unidentified: dict[str, str] = field(default_factory=dict)
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: parameters held at a declared bound (:attr:`LinkForm.enforced`), each with where: the
    #: bound, not the points, decides them (said beside the value, not as not identified). Those
    #: that no draw moves off it either are :attr:`held`
    at_bound: dict[str, str] = field(default_factory=dict)

    # -- predictions --------------------------------------------------------------------------

    @property
    def theta(self) -> np.ndarray:
        return np.array([self.params[k] for k in self.form.param_names])

    @property
    def data_range(self) -> tuple[float, float]:
        return float(np.min(self.x)), float(np.max(self.x))

    @property
    def dof(self) -> int:
        """Degrees of freedom of the residual spread: points less free parameters (at least 1)."""
        return max(len(self.x) - (len(self.form.param_names) - len(self.fixed)), 1)

    @property
    def value_range(self) -> tuple[float, float] | None:
        """(0, 1) when every fitted value lies in [0, 1] (an error rate, an accuracy): values
        outside it are impossible. None for a metric on another scale."""
        if len(self.y) and float(np.min(self.y)) >= 0.0 and float(np.max(self.y)) <= 1.0:
            return 0.0, 1.0
        return None

    def scatter(self, size: Any, rng: np.random.Generator) -> np.ndarray:
        """Draws of the model-to-model scatter about the link: ``residual_std`` times Student's
        t with :attr:`dof` degrees of freedom (the spread is itself estimated from few points;
        t is the predictive distribution of a new point's residual for a linear fit). Zeros when
        the spread is unknown."""
        if not np.isfinite(self.residual_std) or self.residual_std <= 0:
            return np.zeros(size)
        return self.residual_std * rng.standard_t(self.dof, size=size)

    @property
    def instance(self) -> LawInstance:
        lo, hi = self.data_range
        return self.form.law.with_params(self.params, provenance=Provenance(
            source=f"fitted by scalinglab on {len(self.x)} points ({self.metric} vs {self.x_name})",
            valid_range={self.form.law.inputs[0]: (lo, hi)}), label=f"{self.metric} link")

    def _inputs(self, x: Any) -> dict[str, np.ndarray]:
        return {self.form.law.inputs[0]: np.atleast_1d(np.asarray(x, dtype=float))}

    def predict(self, x: Any) -> np.ndarray:
        """The metric at ``x`` (the link's own input: the loss, or log10 C)."""
        out = self.form.evaluate(self.theta[None, :], self._inputs(x))[0]
        return out if np.ndim(x) else out[0]

    def predict_draws(self, x: Any) -> np.ndarray:
        """(K, len(x)) the metric at ``x`` under every bootstrap draw (empty without draws).

        ``x`` may also be (K, m): draw ``j`` evaluated at row ``j``, as the chained prediction
        pairs loss draws with link draws."""
        if self.draws is None or not len(self.draws):
            return np.zeros((0, np.size(x)))
        x = np.asarray(x, dtype=float)
        xin = x if x.ndim == 2 else np.atleast_1d(x)[None, :]
        out = self.form.evaluate(self.draws, {self.form.law.inputs[0]: xin})
        out[~np.all(np.isfinite(self.draws), axis=1)] = np.nan
        return out

    def curve(self, x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(point, lo, hi)`` over a grid of ``x``: the fitted link and its band, for figures."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        point = self.predict(x)
        draws = self.predict_draws(x)
        if not len(draws):
            return point, np.full_like(point, np.nan), np.full_like(point, np.nan)
        lo, hi = percentile_interval(draws, self.level)
        return point, lo, hi

    def estimate(self, x: float) -> Estimate:
        """The metric at one ``x`` with its interval."""
        return Estimate.from_draws(float(self.predict(float(x))),
                                   None if self.draws is None else self.predict_draws([float(x)])[:, 0],
                                   self.level)

    @property
    def held(self) -> dict[str, str]:
        """Parameters a declared bound holds in the estimate and in every bootstrap draw, each with
        where (its :attr:`at_bound` entry): the bound decides them, not the points. Like a
        :attr:`fixed` one (and as :attr:`FitResult.held <scalinglab.fit.result.FitResult.held>`)
        they get no interval in ``ci``, :meth:`conf_int` or ``to_dict`` and read as held
        (:meth:`Estimate.held`), not as "1 [1, 1]", a value measured exactly (the ladder's
        ceiling with all 20 draws at 1). One that some draw moves off its bound keeps its
        interval. Read from ``at_bound`` and the draws, so files written before it say it too."""
        names = self.form.param_names
        return {k: where for k, where in self.at_bound.items()
                if k in names and k not in self.fixed and _all_at(
                    None if self.draws is None else self.draws[:, names.index(k)], self.params[k])}

    @property
    def ci(self) -> dict[str, tuple[float, float]]:
        """Each fitted parameter's interval; none for a :attr:`fixed` or :attr:`held` one (its
        draws are one number)."""
        return self._own_intervals(self.level)

    def param_estimates(self) -> dict[str, Estimate]:
        out = {}
        held = self.held
        for i, name in enumerate(self.form.param_names):
            if name in self.fixed:  # held, not fitted: said beside the value, with no interval
                out[name] = Estimate.held(self.params[name], level=self.level)
                continue
            if name in held:  # held at its declared bound in the estimate and every draw
                out[name] = Estimate.held(self.params[name], held[name], self.level)
                continue
            draws = None if self.draws is None else self.draws[:, i]
            out[name] = Estimate.from_draws(self.params[name], draws, self.level,
                                            identified=name not in self.unidentified,
                                            note=self.unidentified.get(name, self.at_bound.get(name)))
        return out

    # -- result contract ----------------------------------------------------------------------

    def _repr_items(self) -> list[str]:
        ps = ", ".join(f"{k}={format_number(v)}" for k, v in self.params.items())
        return [f"{self.metric} ~ {self.form.key}({self.x_name}): {ps}"]

    def summary(self) -> Summary:
        table = Table(f"{self.metric} = {self.form.law.formula}", ["parameter", "estimate"])
        for name, est in self.param_estimates().items():
            table.add_row(name, est)
        lo, hi = self.data_range
        facts = [("points", str(len(self.x))), (f"{self.x_name} range", f"[{format_number(lo)}, "
                 f"{format_number(hi)}]"), ("residual std", format_number(self.residual_std)),
                 ("bootstrap draws", str(0 if self.draws is None else len(self.draws)))]
        return Summary(title=f"link: {self.metric} from {self.x_name} ({self.form.key})",
                       tables=[table], facts=facts, notes=list(self.notes),
                       warnings=list(self.warnings), data=self.to_dict())

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        """The fitted parameters' draws: a fixed or held one's column is one number, no interval."""
        return without_held(self.form.param_names, self.draws, {**self.fixed, **self.held})

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "link": self.form.key,
            "formula": self.form.law.formula,
            "metric": self.metric,
            "x": self.x_name,
            "params": dict(self.params),
            "ci": {k: list(v) for k, v in self.ci.items()},
            "fixed": dict(self.fixed),
            "level": self.level,
            "n_points": len(self.x),
            "n_bootstrap": 0 if self.draws is None else len(self.draws),
            "residual_std": self.residual_std,
            "data_range": list(self.data_range),
            "unidentified": dict(self.unidentified),
            "at_bound": dict(self.at_bound),
            # those of them no draw moves off the bound: no entry in "ci" (files written before
            # this key gave them a zero-width one; loaded, they are read from at_bound and draws)
            "held": self.held,
            # the form's declared limits (the ladder's bounded sigmoid), which its key does not name
            "enforced": {k: list(v) for k, v in self.form.limits.items()},
            "run_ids": list(self.run_ids),
            "points": {"x": self.x.tolist(), "y": self.y.tolist()},
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }
        if include_draws and self.draws is not None:
            out["draws"] = self.draws.tolist()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkFit:
        draws = data.get("draws")
        form = get_link(str(data["link"]))
        if data.get("enforced"):  # files written before it was kept load with the key's form
            form = form.with_limits(data["enforced"])
        return cls(
            form=form,
            metric=str(data["metric"]),
            x_name=str(data.get("x", "x")),
            params={k: float(v) for k, v in data["params"].items()},
            draws=None if draws is None else np.asarray(draws, dtype=float),
            x=np.asarray(data["points"]["x"], dtype=float),
            y=np.asarray(data["points"]["y"], dtype=float),
            run_ids=tuple(str(r) for r in data.get("run_ids", [])),
            fixed={k: float(v) for k, v in (data.get("fixed") or {}).items()},
            residual_std=float(data.get("residual_std") or float("nan")),
            unidentified=dict(data.get("unidentified") or {}),
            level=float(data.get("level", 0.95)),
            warnings=list(data.get("warnings", [])),
            notes=list(data.get("notes", [])),
            at_bound=dict(data.get("at_bound") or {}),
        )


def _all_at(draws: np.ndarray | None, value: float) -> bool:
    """Whether every finite draw (if any were made) is ``value``: a parameter that never moves."""
    if draws is None or not draws.size:
        return True
    finite = draws[np.isfinite(draws)]
    return bool(finite.size) and bool(np.allclose(finite, value, rtol=1e-9, atol=1e-12))


def fit_link(
    x: Any,
    y: Any,
    link: str | LinkForm = "exp",
    *,
    metric: str = "metric",
    x_name: str = "loss",
    fixed: Mapping[str, float] | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    cluster: Any = None,
    run_ids: Sequence[str] | None = None,
    level: float = 0.95,
    always: Any = None,
) -> LinkFit:
    """Fit ``metric = link(x)`` by least squares, with a bootstrap over points for intervals.

    Parameters
    ----------
    x, y : array-like
        The link's input (a loss, or log10 of compute) and the metric, one value per run.
    link : ``"exp"`` (Gadre et al.), ``"sigmoid"``, or a :class:`LinkForm`.
    fixed : parameters held at given values, e.g. ``{"lo": 0.25, "hi": 1.0}`` for a sigmoid
        between chance level and 1.
    cluster : optional unit label per point; the bootstrap then resamples whole units (e.g. all
        checkpoints of one model together).
    run_ids : ids of the runs (or models), kept on the result.
    always : optional boolean mask of points that every bootstrap resample keeps once (an
        anchor such as the ladder's "zero loss gives the task's maximum", which is not a
        sampled run and must not be resampled like one).

    Raises
    ------
    NotIdentifiable
        Fewer distinct points than free parameters plus one, or a constant metric.
    """
    form = _form(link)
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if len(x) != len(y):
        raise ParameterError(f"x has {len(x)} values but y has {len(y)}", "x", "y")
    if run_ids is not None and len(run_ids) != len(x):
        raise ParameterError(f"{len(run_ids)} run_ids for {len(x)} points", "run_ids")
    weights = None
    notes: list[str] = []
    if cluster is not None and bootstrap > 0:
        labels = np.asarray(cluster)
        _, unit = np.unique(labels, return_inverse=True)
        weights = bootstrap_weights(int(unit.max()) + 1, bootstrap, np.random.default_rng(seed),
                                    unit_of_row=unit.ravel())
        notes.append(f"bootstrap over {int(unit.max()) + 1} clusters, not over points")
    if always is not None and bootstrap > 0:
        fixed_rows = np.asarray(always, dtype=bool).ravel()
        if len(fixed_rows) != len(x):
            raise ParameterError(f"{len(fixed_rows)} values in always for {len(x)} points", "always")
        if weights is None:
            free = np.flatnonzero(~fixed_rows)
            weights = np.ones((bootstrap, len(x)))
            weights[:, free] = bootstrap_weights(len(free), bootstrap, np.random.default_rng(seed))
        weights[:, fixed_rows] = 1.0
    raw = fit_form(form, {form.law.inputs[0]: x}, y, fixed=fixed, bootstrap=bootstrap, seed=seed,
                   weights=weights, level=level)
    warnings = list(raw.warnings)
    if len(y) and np.min(y) >= 0.0 and np.max(y) <= 1.0:
        warnings.extend(_impossible_asymptotes(form, raw.params, raw.draws, dict(fixed or {}), level))
    return LinkFit(
        form=form, metric=metric, x_name=x_name,
        params=dict(zip(form.param_names, raw.params.tolist(), strict=True)),
        draws=raw.draws, x=x, y=y,
        run_ids=tuple(str(r) for r in run_ids) if run_ids is not None else tuple(
            str(i) for i in range(len(x))),
        fixed=dict(fixed or {}), residual_std=raw.residual_std, unidentified=raw.unidentified,
        level=level, warnings=warnings, notes=notes, at_bound=raw.at_bound,
    )


def _impossible_asymptotes(form: LinkForm, params: np.ndarray, draws: np.ndarray | None,
                           fixed: Mapping[str, float], level: float) -> list[str]:
    """Warnings for asymptotes of a [0, 1] metric whose estimate or interval leaves [0, 1]
    (Gadre et al.'s ``eps`` above 1 from a link fitted on 6 points): the curve then heads for
    values no model can have, so predictions far from the points are not to be trusted."""
    out = []
    for name in form.asymptotes:
        if name in fixed or name not in form.param_names:
            continue
        i = form.param_names.index(name)
        value = float(params[i])
        lo = hi = value
        if draws is not None and len(draws):
            col = draws[:, i][np.isfinite(draws[:, i])]
            if col.size:
                lo_, hi_ = percentile_interval(col, level)
                lo, hi = min(lo, float(lo_)), max(hi, float(hi_))
        if lo < 0.0 or hi > 1.0:
            where = "estimate" if not 0.0 <= value <= 1.0 else f"{level:.0%} interval"
            out.append(f"{name} = {value:.4g} [{lo:.4g}, {hi:.4g}]: the {where} leaves [0, 1], where "
                       f"this metric lives, so the link heads for impossible values away from its "
                       f"points; fix {name} or treat predictions beyond the points as unknown")
    return out


@dataclass(repr=False)
class LinkTable(Result):
    """Links of many metrics to one input (``x_name``), fitted together; ``failed`` says why a
    metric has no link. Index it by metric name."""

    kind: ClassVar[str] = "link_table"

    fits: dict[str, LinkFit]
    x_name: str
    failed: dict[str, str] = field(default_factory=dict)
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, metric: str) -> LinkFit:
        return self.fits[metric]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.fits.values())

    def __len__(self) -> int:
        return len(self.fits)

    def curve(self, metric: str, x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.fits[metric].curve(x)

    def _repr_items(self) -> list[str]:
        items = [f"{len(self.fits)} metrics from {self.x_name}"]
        if self.failed:
            items.append(f"{len(self.failed)} not fitted")
        return items

    def _interval_parts(self) -> dict[str, Result]:
        return dict(self.fits)  # "<metric>.<parameter>"

    def summary(self) -> Summary:
        forms = {f.form.key: f.form for f in self.fits.values()}
        tables = []
        for key, form in forms.items():
            fits = [f for f in self.fits.values() if f.form.key == key]
            table = Table(f"{form.law.formula}  ({self.x_name} -> metric)",
                          ["metric", "points", *form.param_names, "residual std"])
            for f in fits:
                est = f.param_estimates()
                table.add_row(f.metric, len(f.x), *(est[k] for k in form.param_names), f.residual_std)
            tables.append(table)
        if self.failed:
            t = Table("not fitted", ["metric", "why"])
            for m, why in self.failed.items():
                t.add_row(m, why)
            tables.append(t)
        warnings = list(self.warnings) + [f"{m}: {w}" for m, f in self.fits.items() for w in f.warnings]
        return Summary(title=f"downstream links: {len(self.fits)} metrics from {self.x_name}",
                       tables=tables, notes=list(self.notes), warnings=warnings, data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "x": self.x_name,
            "level": self.level,
            "run_ids": list(self.run_ids),
            "fits": {m: f.to_dict(include_draws) for m, f in self.fits.items()},
            "failed": dict(self.failed),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkTable:
        return cls(
            fits={m: LinkFit.from_dict(d) for m, d in data["fits"].items()},
            x_name=str(data.get("x", "x")),
            failed=dict(data.get("failed") or {}),
            run_ids=tuple(str(r) for r in data.get("run_ids", [])),
            level=float(data.get("level", 0.95)),
            warnings=list(data.get("warnings", [])),
            notes=list(data.get("notes", [])),
        )


def fit_links(
    x: Any,
    metrics: Mapping[str, Any],
    link: str | LinkForm = "exp",
    *,
    x_name: str = "loss",
    fixed: Mapping[str, float] | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    cluster: Any = None,
    run_ids: Sequence[str] | None = None,
    level: float = 0.95,
) -> LinkTable:
    """Fit one link per metric (``metrics``: name -> values, NaN for a run without it).

    Runs where a metric is missing are left out of that metric's fit (said in its notes). A
    metric that cannot be identified is reported in ``failed`` instead of stopping the others.
    """
    x = np.asarray(x, dtype=float).ravel()
    ids = np.array([str(r) for r in run_ids]) if run_ids is not None else np.arange(len(x)).astype(str)
    labels = None if cluster is None else np.asarray(cluster)
    fits: dict[str, LinkFit] = {}
    failed: dict[str, str] = {}
    complete = True
    for name, values in metrics.items():
        y = np.asarray(values, dtype=float).ravel()
        if len(y) != len(x):
            raise ParameterError(f"metric {name!r} has {len(y)} values for {len(x)} runs", "metrics")
        keep = np.isfinite(y) & np.isfinite(x)
        complete = complete and bool(keep.all())
        try:
            fit = fit_link(x[keep], y[keep], link, metric=name, x_name=x_name, fixed=fixed,
                           bootstrap=bootstrap, seed=seed,
                           cluster=None if labels is None else labels[keep],
                           run_ids=list(ids[keep]), level=level)
        except NotIdentifiable as exc:
            failed[name] = str(exc)
            continue
        if not keep.all():
            fit.notes.append(f"{int((~keep).sum())} runs without a value were left out")
        fits[name] = fit
    return LinkTable(fits=fits, x_name=x_name, failed=failed, run_ids=tuple(ids), level=level,
                     notes=[] if len(fits) < 2 or not complete else [
                         "every metric uses the same bootstrap resamples of the runs, so draws "
                         "can be combined across metrics"])


__all__ = ["LinkFit", "LinkTable", "fit_link", "fit_links"]
