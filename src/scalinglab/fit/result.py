"""The result of fitting a loss law: estimate, bootstrap draws, intervals, derived figures, checks.

Modelled on statsmodels' and lmfit's result objects: everything a planner, a report or a plot
needs is on the result. It knows the runs it used (``run_ids``) and held out (``heldout_ids``),
gives intervals for any figure of its parameters (``interval``, ``predict_interval``,
``optimum``), and renders itself through ``summary()`` for the CLI, the report and the dashboard.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.fit.derived import Optimum, as_budgets
from scalinglab.fit.forward import forward_moved
from scalinglab.laws.base import ArrayLike, Law, LawInstance, Provenance
from scalinglab.results import Result, without_held
from scalinglab.stats import Estimate, percentile_interval
from scalinglab.summary import NotIdentified, Summary, Table, format_interval, format_number

__all__ = ["FitAt", "FitInfo", "FitResult", "Holdout", "NotIdentifiable", "Optimum"]


@dataclass(frozen=True)
class FitInfo:
    """How the fit was made (shown in summaries, kept in JSON)."""

    objective: str
    optimizer: str
    n_starts: int
    n_converged: int
    n_reached_best: int
    n_bootstrap_starts: int
    seed: int
    #: the multi-start search: runs the grid was screened on, starts screened and polished, basins
    search: Mapping[str, Any] | None = None
    #: the bootstrap's bookkeeping: resamples refitted, moved to another basin, audited, escalated
    bootstrap: Mapping[str, Any] | None = None
    #: the estimator (``{"kind": "huber", "delta": 1e-3}``) and how runs were weighted
    estimator: Mapping[str, Any] | None = None
    weights: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["estimator"] = None if self.estimator is None else dict(self.estimator)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FitInfo | None:
        if not data:
            return None
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Holdout:
    """The largest-compute runs, held out of the fit and predicted from the rest."""

    run_ids: tuple[str, ...]
    inputs: Mapping[str, np.ndarray]
    compute: np.ndarray
    observed: np.ndarray
    predicted: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    #: the band a new run's loss falls in (parameter uncertainty plus run-to-run noise)
    new_lo: np.ndarray | None = None
    new_hi: np.ndarray | None = None

    @property
    def abs_rel_err(self) -> np.ndarray:
        return np.abs(self.predicted - self.observed) / self.observed

    @property
    def mean_abs_rel_err(self) -> float:
        return float(self.abs_rel_err.mean())

    @property
    def max_abs_rel_err(self) -> float:
        return float(self.abs_rel_err.max())

    def to_dict(self) -> dict[str, Any]:
        err = self.abs_rel_err
        runs = []
        for i in np.argsort(self.compute, kind="stable"):
            row: dict[str, Any] = {"run_id": self.run_ids[i]}
            row |= {k: float(v[i]) for k, v in self.inputs.items()}
            row |= {"C": float(self.compute[i]), "loss": float(self.observed[i]),
                    "predicted": float(self.predicted[i]), "lo": float(self.lo[i]),
                    "hi": float(self.hi[i]), "abs_rel_err": float(err[i]),
                    "inside_interval": bool(self.lo[i] <= self.observed[i] <= self.hi[i])}
            if self.new_lo is not None and self.new_hi is not None:
                row |= {"new_run_lo": float(self.new_lo[i]), "new_run_hi": float(self.new_hi[i]),
                        "inside_new_run_interval": bool(self.new_lo[i] <= self.observed[i]
                                                        <= self.new_hi[i])}
            runs.append(row)
        return {"k": len(self.run_ids), "mean_abs_rel_err": self.mean_abs_rel_err,
                "max_abs_rel_err": self.max_abs_rel_err, "runs": runs}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, inputs: Sequence[str]) -> Holdout | None:
        if not data or not data.get("runs"):
            return None
        runs = data["runs"]

        def col(key: str) -> np.ndarray:
            return np.array([float("nan") if r.get(key) is None else r[key] for r in runs], float)

        return cls(run_ids=tuple(str(r.get("run_id", f"heldout-{i + 1}")) for i, r in enumerate(runs)),
                   inputs={k: col(k) for k in inputs if k in runs[0]}, compute=col("C"),
                   observed=col("loss"), predicted=col("predicted"), lo=col("lo"), hi=col("hi"),
                   new_lo=col("new_run_lo") if "new_run_lo" in runs[0] else None,
                   new_hi=col("new_run_hi") if "new_run_hi" in runs[0] else None)


@dataclass(repr=False)
class FitResult(Result):
    """A fitted loss law. ``draws`` are bootstrap draws of the parameters, shape (K, P)."""

    kind: ClassVar[str] = "loss_fit"

    law: Law
    params: dict[str, float]
    run_ids: tuple[str, ...]
    objective: float
    draws: np.ndarray | None = None
    level: float = 0.95
    #: std of residuals of log-loss (natural log) at the point estimate
    residual_std: float = float("nan")
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: parameters these runs do not pin down (estimate or draws at the bounds, decades-wide)
    unidentified: tuple[str, ...] = ()
    #: input ranges of the runs fitted, e.g. {"N": (lo, hi), "D": (lo, hi)}
    data_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    compute_range: tuple[float, float] | None = None
    holdout: Holdout | None = None
    info: FitInfo | None = None
    source: str = ""
    #: runs left out before fitting (``drop_highest``)
    dropped_ids: tuple[str, ...] = ()
    #: what the residuals say about misfit and noise (:func:`scalinglab.fit.residuals.residual_structure`,
    #: as its ``to_dict()``): structure by M and N, replicate noise, the noise floor
    residual_structure: dict[str, Any] | None = None
    #: parameters held fixed rather than fitted (a given offset, one taken from another law
    #: without draws), with where each came from ("given", "from the chinchilla law of x"). Those
    #: kept in ``params`` and ``draws`` are one number in every draw: they get no interval
    #: (``ci``, :meth:`conf_int`, ``to_dict``) and read as held (:meth:`Estimate.held`)
    held: dict[str, str] = field(default_factory=dict)

    # -- the estimate ----------------------------------------------------------------------

    @property
    def heldout_ids(self) -> tuple[str, ...]:
        return () if self.holdout is None else self.holdout.run_ids

    @property
    def n_draws(self) -> int:
        return 0 if self.draws is None else int(len(self.draws))

    @property
    def instance(self) -> LawInstance:
        return self.law.with_params(
            self.params,
            provenance=Provenance(source=f"fitted by scalinglab on {self.n_runs} runs"
                                  + (f" of {self.source}" if self.source else ""),
                                  valid_range=self.data_range),
            label=f"{self.law.name} (fitted)",
        )

    def _at(self, data: Any, inputs: dict[str, ArrayLike]) -> dict[str, ArrayLike]:
        """The law's inputs from ``data`` (a DataFrame or a dict holding them; a keyword wins)."""
        if data is None:
            return inputs
        from scalinglab.values import as_columns

        cols = as_columns(data, [k for k in self.law.inputs if k not in inputs], "data")
        return {k: np.asarray(cols[k], dtype=float) for k in self.law.inputs if k not in inputs} | inputs

    def predict(self, data: Any = None, /, **inputs: ArrayLike) -> np.ndarray:
        """The fitted law at ``inputs`` (``res.predict(N=1e9, D=2e10)``) or at the rows of
        ``data``, a DataFrame or dict with the law's inputs as columns (``res.predict(runs)``):
        a notebook's table, as :meth:`CurveFit.predict` and ``JointFit.predict`` take theirs."""
        return self.law(self.params, **self._at(data, inputs))

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        return without_held(self.law.param_names, self.draws, self.held)

    def draw_columns(self) -> dict[str, np.ndarray]:
        """Draws by parameter name, each (K,): laws broadcast over them."""
        if self.draws is None:
            return {}
        return {k: self.draws[:, i] for i, k in enumerate(self.law.param_names)}

    def draw_params(self) -> list[dict[str, float]]:
        """Each draw as a parameter dict (for per-draw computations that do not broadcast)."""
        if self.draws is None:
            return []
        return [dict(zip(self.law.param_names, row, strict=True)) for row in self.draws]

    @property
    def ci(self) -> dict[str, tuple[float, float]]:
        """Percentile bootstrap interval of each parameter (empty without bootstrap), the ones
        :attr:`held` fixed left out."""
        return self._own_intervals(self.level)

    def estimates(self) -> dict[str, Estimate]:
        """Each parameter as an :class:`Estimate`, flagged where the runs do not identify it
        (one :attr:`held` fixed: no interval, and its note says where it came from)."""
        ci = self.ci
        return {k: Estimate.held(v, self.held[k], self.level) if k in self.held
                else Estimate(v, *(ci.get(k) or (None, None)), level=self.level,
                              identified=k not in self.unidentified)
                for k, v in self.params.items()}

    # -- derived figures -------------------------------------------------------------------

    def depends_on_unidentified(self, names: Sequence[str]) -> str | None:
        bad = [n for n in names if n in self.unidentified]
        return f"depends on {', '.join(bad)}, which these runs do not identify" if bad else None

    def interval(self, fn: Callable[[Mapping[str, Any]], Any], uses: Sequence[str] | None = None,
                 vectorised: bool = True) -> Estimate:
        """``fn(params)`` at the estimate with its percentile interval over the draws.

        ``fn`` is called once on arrays of draws when ``vectorised`` (laws broadcast), else once per
        draw. ``uses`` (default: every parameter) decides whether the figure is identified.
        """
        note = self.depends_on_unidentified(self.law.param_names if uses is None else uses)
        value = float(np.asarray(fn(self.params), dtype=float))
        if not self.n_draws:
            return Estimate(value, level=self.level, identified=note is None, note=note)
        with np.errstate(all="ignore"):  # extreme draws give inf: they are spread, not errors
            if vectorised:
                draws = np.asarray(fn(self.draw_columns()), dtype=float)
            else:
                draws = np.array([_finite_or_nan(fn, p) for p in self.draw_params()], dtype=float)
        return Estimate.from_draws(value, draws, self.level, identified=note is None, note=note)

    def predict_interval(self, data: Any = None, /, new_run: bool = False,
                         **inputs: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point prediction and the percentile band over bootstrap draws (NaN band without draws),
        at ``inputs`` or at the rows of ``data`` as for :meth:`predict`.

        By default this is the *parameter* uncertainty of the law's curve: where the law itself
        lies. With ``new_run=True`` it is where a new run's loss will fall: each draw's
        prediction is also spread by the run-to-run noise seen in the fit (log-normal with
        :attr:`noise_std`), so the band is wider by about that noise.
        """
        inputs = self._at(data, inputs)
        point = self.predict(**inputs)
        if not self.n_draws:
            if new_run and np.isfinite(self.noise_std):
                z = _normal_quantile((1 + self.level) / 2)
                return point, point * np.exp(-z * self.noise_std), point * np.exp(z * self.noise_std)
            return point, point * np.nan, point * np.nan
        cols = {k: v.reshape((-1,) + (1,) * np.ndim(point)) for k, v in self.draw_columns().items()}
        with np.errstate(all="ignore"):  # extreme draws overflow to inf: they still count
            draws = self.law(cols, **inputs)
            if new_run and np.isfinite(self.noise_std):
                z = _NOISE_Z.reshape((1, -1) + (1,) * np.ndim(point))
                draws = (np.log(draws)[:, None] + self.noise_std * z).reshape((-1,) + np.shape(point))
                draws = np.exp(draws)
        lo, hi = percentile_interval(draws, self.level)
        return point, lo, hi

    @property
    def noise_std(self) -> float:
        """Run-to-run noise of log loss: the residual std, corrected for the parameters fitted
        (``sqrt(n / (n - p))``)."""
        n, p = self.n_runs, len(self.law.param_names)
        if n <= p or not np.isfinite(self.residual_std):
            return float("nan")
        return float(self.residual_std * np.sqrt(n / (n - p)))

    def optimum(self, C: float, inference_tokens: float = 0.0,
                fixed: Mapping[str, float] | None = None) -> Optimum:
        """Compute-optimal N, D, tokens per parameter and loss at budget ``C``, with intervals.

        Uses the law's closed form where it has one (vectorised over draws), else a numerical
        optimisation per draw (:func:`scalinglab.laws.loss.compute_optimum`).
        """
        from scalinglab.fit.derived import optimum_at
        from scalinglab.values import positive_number

        return optimum_at(self, positive_number(C, "C"),
                          positive_number(inference_tokens, "inference_tokens", zero=True), fixed)

    def derived(self, compute: Sequence[float] | None = None,
                at: Sequence[Mapping[str, float]] = ()) -> dict[str, Any]:
        """The law's derived figures, the optimum at each budget of ``compute`` (default: the
        largest run's compute) and the loss at each point of ``at``, all with intervals."""
        from scalinglab.fit.derived import derived_figures

        return derived_figures(self, compute=compute, at=at)

    # -- serialisation ---------------------------------------------------------------------

    def to_dict(self, include_draws: bool = False, compute: Sequence[float] | None = None,
                at: Sequence[Mapping[str, float]] = ()) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "law": self.law.name,
            "formula": self.law.formula,
            "inputs": list(self.law.inputs),
            "params": {k: float(v) for k, v in self.params.items()},
            "ci": {k: [lo, hi] for k, (lo, hi) in self.ci.items()},
            "level": self.level,
            "n_runs": self.n_runs,
            "n_bootstrap": self.n_draws,
            "objective": float(self.objective),
            "residual_std": float(self.residual_std),
            "unidentified": list(self.unidentified),
            "data_range": {k: list(v) for k, v in self.data_range.items()},
            "compute_range": None if self.compute_range is None else list(self.compute_range),
            "holdout": None if self.holdout is None else self.holdout.to_dict(),
            "fit": None if self.info is None else self.info.to_dict(),
            "derived": self.derived(compute, at),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "source": self.source,
            "run_ids": list(self.run_ids),
            "heldout_ids": list(self.heldout_ids),
            "dropped_ids": list(self.dropped_ids),
            "noise_std": self.noise_std,
            "residual_structure": self.residual_structure,
            "law_spec": self.law.to_dict(),
        }
        c = getattr(self.law, "constraint", None)
        if c is not None:
            # every parameter of the base law, the fixed and tied ones included (``params``
            # holds only what was fitted), with how each was set
            full = c.expand(self.params)
            out["all_params"] = {k: float(v) for k, v in full.items()}
            out["param_status"] = {k: "fixed" if k in c.fix else f"tied to {c.tie[k]}"
                                   if k in c.tie else "fitted" for k in full}
        if self.held:
            out["held"] = dict(self.held)
        if include_draws and self.draws is not None:
            out["draws"] = np.asarray(self.draws).tolist()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FitResult:
        """Rebuild a result saved with ``to_dict(include_draws=True)`` (e.g. ``fit --save``)."""
        from scalinglab.laws.registry import law_from_dict

        law = law_from_dict(data)
        draws = data.get("draws", data.get("boot"))  # "boot": files saved before 0.2
        n_runs = int(data.get("n_runs", 0))
        run_ids = tuple(str(x) for x in data.get("run_ids") or
                        (f"run-{i + 1}" for i in range(n_runs)))
        crange = data.get("compute_range")
        return cls(
            law=law,
            # null: a non-finite value (JSON has none), read back as NaN
            params={k: math.nan if v is None else float(v) for k, v in data["params"].items()},
            run_ids=run_ids,
            objective=_float(data.get("objective")),
            draws=None if draws is None else np.asarray(draws, dtype=float),
            level=float(data.get("level", 0.95)),
            residual_std=_float(data.get("residual_std")),
            warnings=list(data.get("warnings", [])),
            notes=list(data.get("notes", [])),
            unidentified=tuple(data.get("unidentified", [])),
            data_range={k: (float(v[0]), float(v[1])) for k, v in (data.get("data_range") or {}).items()},
            compute_range=None if not crange else (float(crange[0]), float(crange[1])),
            holdout=Holdout.from_dict(data.get("holdout"), law.inputs),
            info=FitInfo.from_dict(data.get("fit")),
            source=str(data.get("source", "")),
            dropped_ids=tuple(str(x) for x in data.get("dropped_ids") or ()),
            residual_structure=data.get("residual_structure"),
            held={str(k): str(v) for k, v in (data.get("held") or {}).items()},
        )

    # -- presentation ----------------------------------------------------------------------

    def at(self, compute: float | Sequence[float] | None = None,
           points: Sequence[Mapping[str, float]] = ()) -> FitAt:
        """This fit read at the budgets ``compute`` (the optimum at each; default: the largest
        run's compute) and the input ``points`` (the loss at each): a result of its own
        (:class:`FitAt`), so what a command shows is what ``save()`` keeps and
        :func:`~scalinglab.results.load_result` renders again."""
        return FitAt.of(self, compute, points)

    def summary(self, compute: Sequence[float] | None = None,
                at: Sequence[Mapping[str, float]] = ()) -> Summary:
        """Parameters, derived figures, fit quality and warnings, for any renderer
        (``compute``/``at``: the same as ``self.at(compute, at).summary()``)."""
        if compute or at:
            return self.at(compute, at).summary()
        return self._summary(None, ())

    def _summary(self, compute: Sequence[float] | None,
                 at: Sequence[Mapping[str, float]]) -> Summary:
        pct = f"{round(self.level * 100)}% interval"
        params = Table("parameters", ["parameter", "estimate", pct], symbols=True)
        estimates = self.estimates()
        for name, est in estimates.items():
            value = est.value if est.identified else NotIdentified(est.value)
            params.add_row(name, value, est.note if est.fixed else format_interval(est.ci))
        c = self.law.constraint
        if c is not None:  # the base law's other parameters, as the constraint sets them
            for k, v in c.tie.items():
                if v in estimates:
                    params.add_row(k, estimates[v].value, f"tied to {v}")
            for k, v in c.fix.items():
                params.add_row(k, float(v), f"fixed: {self.held[k]}" if k in self.held else "fixed")
        # C = 6ND holds for the optimum of a law of N and D; a law of N and P (ScaleBench's
        # parallel law) read at --at points was headed "derived (C = 6ND)" too
        derived = Table("derived (C = 6ND)" if {"N", "D"} <= set(self.law.inputs) else "derived",
                        ["figure", "estimate", pct])
        d = self.derived(compute, at)
        for fig in self.law.derived:
            if fig.name in d:
                _derived_row(derived, fig.name.replace("_", " "), d[fig.name])
        for entry in d.get("at_compute", []):
            for key in ("N_opt", "D_opt", "tokens_per_param", "loss"):
                _derived_row(derived, f"{key.replace('_', ' ')} at C={format_number(entry['C'])}",
                             entry[key])
        for entry in d.get("predictions", []):
            where = ", ".join(f"{k}={format_number(entry[k])}" for k in self.law.inputs)
            _derived_row(derived, f"loss at {where}", entry["loss"])
            if "loss_new_run" in entry:
                _derived_row(derived, "  a new run there", entry["loss_new_run"])
        rs = self.residual_structure or {}
        floor = rs.get("noise_floor")
        facts = [("residual std of log loss", format_number(self.residual_std)),
                 ("objective", f"{self.objective:.6g}"
                  + (f" ({self.info.objective})" if self.info else ""))]
        if self.info is not None and self.info.search and self.info.search.get("scale") == "linear":
            sr = self.info.search
            facts[0] = ("residual std (linear scale)", format_number(self.residual_std))
            # select=forward may choose a shallower basin on purpose: the count is of the
            # starts that reached it (forward_select), and the line says which it counts
            moved = forward_moved((self.info.estimator or {}).get("forward"))
            facts.append(("search", f"{self.info.n_starts} Sobol starts screened, {sr['n_polished']} "
                          f"polished, {self.info.n_reached_best} reached "
                          f"{'the chosen basin' if moved else 'the best optimum'}; "
                          f"{', '.join(sr['linear']) or 'no parameter'} solved by linear least squares"))
        elif self.info is not None and self.info.search:
            sr = self.info.search
            facts.append(("search", f"{self.info.n_starts} starts screened on {sr['screen_runs']} "
                          f"runs, {sr['n_polished']} polished on all, {sr['n_basins']} distinct "
                          "basin(s)"))
        if self.holdout is not None:
            h = self.holdout
            facts.append(("holdout", f"the {len(h.run_ids)} largest-compute runs, predicted from the "
                          f"rest: mean |rel err| {h.mean_abs_rel_err:.2%}, max {h.max_abs_rel_err:.2%}"
                          + (f" - within noise (floor {floor:.2%}, {rs.get('noise_floor_source')})"
                             if floor is not None and h.mean_abs_rel_err <= floor else "")))
            if h.new_lo is not None and h.new_hi is not None and self.n_draws:
                inside = np.mean((h.new_lo <= h.observed) & (h.observed <= h.new_hi))
                inside_p = np.mean((h.lo <= h.observed) & (h.observed <= h.hi))
                facts.append(("holdout inside interval", f"{inside_p:.0%} in the parameter band, "
                              f"{inside:.0%} in the new-run band"))
        if rs.get("tests") and any(t["p"] < 0.01 for t in rs["tests"]):
            # the spread is misfit, not run-to-run noise: say so rather than call it noise
            worst = min(rs["tests"], key=lambda t: t["p"])
            facts.append(("residual spread", f"misfit, not noise: structured by {worst['by']} "
                          f"(p = {worst['p']:.2g}); {format_number(rs['within_std'])} left inside groups"))
        elif np.isfinite(self.noise_std):
            linear = bool(self.info and self.info.search and self.info.search.get("scale") == "linear")
            facts.append((f"residual spread, corrected for parameters ({'loss' if linear else 'log loss'})",
                          format_number(self.noise_std) + ("" if not rs.get("tests") else
                                                           " (no structure by " + ", ".join(
                                                               t["by"] for t in rs["tests"]) + ")")))
        if rs.get("replicate_std") is not None:
            facts.append(("seed noise from replicate runs", f"{format_number(rs['replicate_std'])} "
                          f"({rs['n_replicate_sets']} sets)"))
        if floor is not None:
            facts.append(("noise floor", f"{floor:.3%} of loss ({rs.get('noise_floor_source')}): "
                          "errors below it are within noise"))
        if self.dropped_ids:
            facts.append(("left out", f"{len(self.dropped_ids)} highest-loss runs"))
        title = (f"{self.law.name}: {self.law.formula}   ({self.n_runs} runs"
                 + (f", {self.source}" if self.source else "") + ")")
        return Summary(title=title, tables=[params] + ([derived] if derived.rows else []),
                       facts=facts, notes=list(self.notes),
                       warnings=[*self.warnings, *_extrapolations(d)], data=self.to_dict())

    def _repr_items(self) -> list[str]:
        ps = " ".join(f"{k}={format_number(v)}" for k, v in self.params.items())
        return [self.law.name, ps, f"{self.n_draws} draws"]

    def __repr__(self) -> str:
        return super().__repr__().replace(f"{self.n_runs} runs, {self.law.name}, ",
                                          f"{self.law.name}, {self.n_runs} runs, ", 1)


@dataclass(repr=False)
class FitAt(FitResult):
    """A fit read at given budgets and points (``fit.at(compute=..., points=...)``): the fit
    itself (it is one, so everything that takes a fit takes it) plus where it was read, so its
    ``summary()``, ``to_dict()`` and ``save()`` all hold the optimum at each budget of
    ``compute`` and the loss at each of ``points``. ``fit ... --compute C --at N=..,D=..
    --save F`` writes one, and ``load_result(F).summary()`` renders what the command showed.

    The derived figures are recomputed from the saved draws (the same draws give the same
    figures), and written beside them under ``derived`` for readers of the JSON."""

    kind: ClassVar[str] = "loss_fit_at"

    #: budgets (FLOPs) of the optimum; empty: the largest run's compute, as a plain fit shows
    compute: tuple[float, ...] = ()
    #: points of the law's inputs at which the loss is predicted
    points: tuple[dict[str, float], ...] = ()

    @classmethod
    def of(cls, fit: FitResult, compute: float | Sequence[float] | None = None,
           points: Sequence[Mapping[str, float]] = ()) -> FitAt:
        """``fit`` (a plain fit, or one already read somewhere: its fit is kept, its points
        replaced) read at ``compute`` and ``points``."""
        import dataclasses

        cs = as_budgets(compute)
        pts = tuple({str(k): float(v) for k, v in p.items()} for p in points)
        for p in pts:
            if set(p) != set(fit.law.inputs):
                raise ParameterError(f"a point gives {', '.join(p) or 'nothing'}; the "
                                     f"{fit.law.name} law takes {', '.join(fit.law.inputs)}",
                                     "points")
        base = {f.name: getattr(fit, f.name) for f in dataclasses.fields(FitResult)}
        return cls(**base, compute=cs, points=pts)

    @property
    def fit(self) -> FitResult:
        """The fit alone (a plain :class:`FitResult`, no points)."""
        import dataclasses

        return FitResult(**{f.name: getattr(self, f.name) for f in dataclasses.fields(FitResult)})

    def to_dict(self, include_draws: bool = False, compute: Sequence[float] | None = None,
                at: Sequence[Mapping[str, float]] = ()) -> dict[str, Any]:
        if compute or at:  # read elsewhere: that reading's dict
            return self.at(compute, at).to_dict(include_draws)
        out = super().to_dict(include_draws, compute=list(self.compute) or None,
                              at=self.points)
        return {**out, "kind": self.kind,
                "read_at": {"compute": list(self.compute), "points": [dict(p) for p in self.points]}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FitAt:
        where = data.get("read_at") or {}
        return cls.of(FitResult.from_dict(data), where.get("compute") or None,
                      where.get("points") or ())

    def summary(self, compute: Sequence[float] | None = None,
                at: Sequence[Mapping[str, float]] = ()) -> Summary:
        if compute or at:
            return self.at(compute, at).summary()
        return self._summary(list(self.compute) or None, self.points)

    def _repr_items(self) -> list[str]:
        where = [f"C={format_number(c)}" for c in self.compute]
        where += [",".join(f"{k}={format_number(v)}" for k, v in p.items()) for p in self.points]
        return [*super()._repr_items(), f"at {'; '.join(where) or 'the largest run'}"]


def _extrapolations(derived: Mapping[str, Any]) -> list[str]:
    """The warnings of figures read outside the runs fitted (each once, in the order shown)."""
    out: dict[str, None] = {}
    for entry in [*derived.get("at_compute", []), *derived.get("predictions", [])]:
        for w in entry.get("extrapolation", []):
            out[w] = None
    return list(out)


def _derived_row(table: Table, name: str, entry: Mapping[str, Any]) -> None:
    value = entry.get("value")
    cell: Any = value if entry.get("identified", True) else NotIdentified(value)
    held = Estimate.from_dict(entry).fixed if "value" in entry else False
    table.add_row(name, cell, entry["note"] if held else format_interval(entry.get("ci")))


def _finite_or_nan(fn: Callable[[Mapping[str, Any]], Any], p: Mapping[str, float]) -> float:
    if not all(math.isfinite(v) for v in p.values()):
        return float("nan")
    try:
        return float(fn(p))
    except (ArithmeticError, ValueError, ParameterError):
        return float("nan")


def _float(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _normal_quantile(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def _noise_quantiles(m: int = 40) -> np.ndarray:
    """``m`` standard-normal quantiles at the midpoints of ``m`` equal-probability bins: a
    deterministic sample of the noise, so the same fit always gives the same band."""
    from scipy.stats import norm

    return norm.ppf((np.arange(m) + 0.5) / m)


_NOISE_Z = _noise_quantiles()
