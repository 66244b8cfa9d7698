"""Prove a design before trusting it: repeated simulated studies from a known law, fitted by the
real engine.

A simulated study draws each run's loss from a known law (any catalogue instance, e.g.
``hoffmann2022``, or a saved fit) with log-normal noise, lays the runs out by a design (an
IsoFLOP grid, an N x D grid, or the adaptive loop, which fits and proposes round after round
exactly as ``scalinglab sweep auto`` does), fits the law with :func:`scalinglab.fit.fit_arrays`
and its bootstrap, and compares what the fit says at the target budget with the truth. Over
``repeats`` studies this measures each design's bias, interval width and coverage for
``L(target)``, ``N_opt(target)`` and ``D_opt(target)``, and the spend it actually used.

Noise: each run's log loss is the law's plus ``sigma`` times a standard normal draw that belongs
to its (N, D) point (what a retrained seed does not change: shape, data order, misfit of the law)
plus ``seed_spread`` times one that belongs to the run (seed to seed). Without replicates the two
add in quadrature.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scalinglab.design.layouts import GridLayout, IsoflopLayout
from scalinglab.design.loop import AdaptiveSettings, next_step, seed_positions
from scalinglab.design.targets import FIGURES, check_allocatable, check_budget, truth_at
from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.fit.result import FitResult
from scalinglab.laws.base import Law, LawInstance, Provenance
from scalinglab.laws.registry import get_law
from scalinglab.results import Result, short_repr
from scalinglab.summary import Summary, Table, format_number

#: ``progress(done, total)`` after each simulated study
Progress = Callable[[int, int], None]


# -- the truth and the noise -----------------------------------------------------------------


def resolve_truth(spec: str | Path | LawInstance | FitResult) -> LawInstance:
    """A published law by name (``hoffmann2022``, ``besiroglu2024``), a saved fit (its point
    estimate is the truth), or a LawInstance (the one resolver)."""
    from scalinglab.laws.resolve import resolve

    law = resolve(spec, "loss_law", param="truth")
    return law.instance if isinstance(law, FitResult) else law


@dataclass(frozen=True)
class Noise:
    """Log-normal noise of a run's loss: per point (``sigma``) and per seed (``seed_spread``)."""

    sigma: float = 0.01
    seed_spread: float = 0.0

    def __post_init__(self) -> None:
        for name in ("sigma", "seed_spread"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ParameterError(f"{name} must be >= 0, not {v:g}", name)

    def observe(self, truth: LawInstance, N: np.ndarray, D: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        """Simulated losses of runs at (N, D); replicates of a point share its point noise."""
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        clean = np.asarray(truth.predict(N=N, D=D), dtype=float)
        _, point = np.unique(np.round(np.column_stack([np.log(N), np.log(D)]), 9), axis=0,
                             return_inverse=True)
        point = np.asarray(point).ravel()
        z_point = rng.standard_normal(int(point.max()) + 1 if len(point) else 0)[point]
        z_seed = rng.standard_normal(len(N))
        return clean * np.exp(self.sigma * z_point + self.seed_spread * z_seed)

    def to_dict(self) -> dict[str, float]:
        return {"sigma": self.sigma, "seed_spread": self.seed_spread}


# -- fitting a study -------------------------------------------------------------------------


@dataclass(frozen=True)
class Fitting:
    """How every simulated study is fitted: the real engine with these settings.

    ``starts``: None for the law's own grid, or an int to thin it to about that many points
    (tests and quick looks).
    """

    law: str = "chinchilla"
    bootstrap: int = 200
    starts: int | None = None
    seed: int = 0

    def law_obj(self) -> Law:
        return get_law(self.law)

    def fit(self, N: np.ndarray, D: np.ndarray, loss: np.ndarray, seed: int,
            bootstrap: int | None = None, warm: FitResult | None = None,
            starts: int | None | str = "default",
            run_ids: Sequence[str] | None = None) -> FitResult:
        """Fit the runs; ``bootstrap`` and ``starts`` override the settings (a loop's fits
        between rounds are lighter), ``warm`` adds a previous fit's estimate as a start."""
        from scalinglab.fit.loss import fit_arrays

        law = self.law_obj()
        inputs = {"N": N, "D": D}
        n_starts = self.starts if starts == "default" else starts
        return fit_arrays(law, inputs, loss, bootstrap=self.bootstrap if bootstrap is None
                          else bootstrap, seed=seed, starts=start_grid(law, inputs, loss, n_starts, warm),
                          run_ids=run_ids)


def start_grid(law: Law, inputs: Mapping[str, np.ndarray], loss: np.ndarray,
               n_starts: int | None = None, warm: FitResult | None = None) -> np.ndarray | None:
    """The starts of a lighter fit (a loop's fits between rounds): the law's own grid thinned to
    about ``n_starts`` points, with ``warm``'s estimate (a previous fit of the same law) first;
    None (the law's whole grid, as ``fit_law`` uses by default) when neither is asked."""
    if n_starts is None and warm is None:
        return None
    grid = law.starting_points(inputs, loss)
    if n_starts is not None:
        grid = grid[:: max(1, math.ceil(len(grid) / int(n_starts)))]
    theta = None if warm is None or warm.law is not law else _theta(law, inputs, warm.params)
    if theta is not None:
        grid = np.vstack([theta, grid])
    return np.asarray(grid)


def _theta(law: Law, inputs: Mapping[str, np.ndarray], params: Mapping[str, float]
           ) -> np.ndarray | None:
    """``params`` in the law's fitting coordinates (None where a log-parameter is not > 0)."""
    is_log = law.log_model(inputs).log_params
    values = [float(params[k]) for k in law.param_names]
    if not all(math.isfinite(v) and (v > 0 or not lg) for v, lg in zip(values, is_log, strict=True)):
        return None
    return np.array([math.log(v) if lg else v for v, lg in zip(values, is_log, strict=True)])


# -- designs ---------------------------------------------------------------------------------


@dataclass
class Study:
    """One simulated study: its runs, their losses, and how the design got there."""

    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray
    rounds: int = 0
    stop: str | None = None
    #: relative width of L(target)'s interval at each round's fit (adaptive designs), and the
    #: width each round's proposal expected the next fit to have
    widths: list[float] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)

    @property
    def spent(self) -> float:
        return float(np.sum(6.0 * self.N * self.D))


@dataclass(frozen=True)
class FixedDesign:
    """A design laid out in advance (an IsoFLOP grid or an N x D grid)."""

    name: str
    layout: IsoflopLayout | GridLayout

    @property
    def label(self) -> str:
        return self.layout.label()

    def study(self, truth: LawInstance, noise: Noise, spend: float, target: float,
              rng: np.random.Generator, fitting: Fitting) -> Study:
        N, D = self.layout.runs(spend)
        return Study(N, D, noise.observe(truth, N, D, rng))


@dataclass(frozen=True)
class AdaptiveDesign:
    """The adaptive loop: seed, fit, propose, run, ... (:mod:`scalinglab.design.loop`)."""

    name: str = "adaptive"
    settings: AdaptiveSettings = AdaptiveSettings()

    @property
    def label(self) -> str:
        s = self.settings
        return (f"adaptive: {s.seed.n_runs}-run seed, {s.k} runs a round, at most {s.max_runs} "
                f"runs, criterion {s.criterion}")

    def study(self, truth: LawInstance, noise: Noise, spend: float, target: float,
              rng: np.random.Generator, fitting: Fitting) -> Study:
        s = self.settings
        N, D = seed_positions(s, spend)
        loss = noise.observe(truth, N, D, rng)
        candidates = s.space(spend).points()
        fit, widths, expected, rounds = None, [], [], 0
        # the fits between rounds are never heavier than the final one
        starts = s.starts if fitting.starts is None else min(s.starts or fitting.starts,
                                                             fitting.starts)
        bootstrap = min(s.bootstrap, fitting.bootstrap)
        while True:
            fit = fitting.fit(N, D, loss, seed=rounds, bootstrap=max(bootstrap, 20), warm=fit,
                              starts=starts)
            step = next_step(s, fit, (N, D), float(np.sum(6 * N * D)), spend, target, candidates)
            widths.append(step.loss_width)
            if step.stop is not None:
                return Study(N, D, loss, rounds, step.stop, widths, expected)
            assert step.proposal is not None
            expected.append(step.proposal.width("loss", after=True))
            n_new = np.array([r.N for r in step.proposal.runs])
            d_new = np.array([r.D for r in step.proposal.runs])
            N, D = np.r_[N, n_new], np.r_[D, d_new]
            # new points get fresh noise; the rng stream continues
            loss = np.r_[loss, noise.observe(truth, n_new, d_new, rng)]
            rounds += 1


Design = FixedDesign | AdaptiveDesign


def default_designs(settings: AdaptiveSettings | None = None) -> list[Design]:
    """What `simulate` compares unless told otherwise: the IsoFLOP grid `sweep plan isoflop`
    would lay out (5 budgets x3 apart, 7 sizes over 16x), an N x D grid of as many runs, and
    the adaptive loop."""
    return [FixedDesign("isoflop", IsoflopLayout()),
            FixedDesign("grid", GridLayout(sizes=6, tokens=6)),
            AdaptiveDesign("adaptive", settings or AdaptiveSettings())]


# -- outcomes and metrics --------------------------------------------------------------------


@dataclass
class Outcome:
    """What one simulated study's fit says at the target (NaN where it could not)."""

    __repr__ = short_repr  # one short line, not every field

    design: str
    budget: float
    repeat: int
    spent: float = float("nan")
    n_runs: int = 0
    values: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    unidentified: tuple[str, ...] = ()
    rounds: int = 0
    error: str | None = None
    #: adaptive studies: L(target)'s relative width at each round's fit, and what each
    #: round's proposal expected of the next (how well the proposals' reasons are calibrated)
    widths: list[float] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"design": self.design, "budget": self.budget, "repeat": self.repeat,
                "spent": self.spent, "n_runs": self.n_runs,
                "values": {k: list(v) for k, v in self.values.items()},
                "unidentified": list(self.unidentified), "rounds": self.rounds,
                "error": self.error, "widths": list(self.widths), "expected": list(self.expected)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Outcome:
        return cls(design=str(d["design"]), budget=float(d["budget"]), repeat=int(d["repeat"]),
                   spent=_f(d.get("spent")), n_runs=int(d.get("n_runs", 0)),
                   values={k: tuple(_f(x) for x in v) for k, v in (d.get("values") or {}).items()},
                   unidentified=tuple(d.get("unidentified", ())), rounds=int(d.get("rounds", 0)),
                   error=d.get("error"), widths=[_f(x) for x in d.get("widths", [])],
                   expected=[_f(x) for x in d.get("expected", [])])


def _f(x: Any) -> float:
    return float("nan") if x is None else float(x)


def figure_metrics(outcomes: Sequence[Outcome], figure: str, truth: float) -> dict[str, float]:
    """Relative bias and 95% interval width, and coverage, of one figure over the studies that
    were fitted: ``bias = mean((estimate - truth) / truth)``, ``ci_width = mean((hi - lo) /
    truth)``, ``coverage = share of intervals holding the truth``."""
    rows = np.array([o.values[figure] for o in outcomes if figure in o.values], dtype=float)
    if not len(rows):
        return {"bias": float("nan"), "ci_width": float("nan"), "coverage": float("nan")}
    value, lo, hi = rows.T
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    with np.errstate(all="ignore"):
        return {"bias": float(np.nanmean((value - truth) / truth)),
                "ci_width": float(np.mean((hi[has_ci] - lo[has_ci]) / truth)) if has_ci.any()
                else float("nan"),
                "coverage": float(np.mean((lo[has_ci] <= truth) & (truth <= hi[has_ci])))
                if has_ci.any() else float("nan")}


@dataclass(repr=False)
class SimulationResult(Result):
    """Every simulated study, and per design and spend the metrics the issue asks for.

    A :class:`~scalinglab.results.Result`: ``save`` keeps every study (its raw material, as a
    fit keeps its draws) and ``load_result`` reads it back. It used no runs of a store."""

    kind: ClassVar[str] = "simulation"

    truth: LawInstance
    fit_law: str
    target: float
    truth_values: dict[str, float]
    noise: Noise
    repeats: int
    seed: int
    budgets: list[float]
    designs: dict[str, str]
    outcomes: list[Outcome]
    fitting: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = float("nan")

    def metrics(self, design: str, budget: float) -> dict[str, Any]:
        """``{"spend", "loss": {...}, "N_opt": {...}, "D_opt": {...}, ...}`` for one design at one
        spend (``spend`` is the mean FLOPs the studies used)."""
        rows = [o for o in self.outcomes if o.design == design and o.budget == budget]
        fitted = [o for o in rows if o.error is None]
        out: dict[str, Any] = {
            "spend": float(np.mean([o.spent for o in rows])) if rows else float("nan")}
        for fig in FIGURES:
            out[fig] = figure_metrics(fitted, fig, self.truth_values[fig])
        out["runs"] = float(np.mean([o.n_runs for o in rows])) if rows else float("nan")
        out["fitted"] = len(fitted)
        out["failed"] = len(rows) - len(fitted)
        out["unidentified"] = float(np.mean([bool(o.unidentified) for o in fitted])) if fitted \
            else float("nan")
        return out

    def calibration(self, design: str = "adaptive") -> float:
        """Median of realised / expected relative width of L(target) after a round, over every
        round of every study of ``design`` (1: the proposals' expected intervals are right)."""
        ratios = [w / e for o in self.outcomes if o.design == design
                  for w, e in zip(o.widths[1:], o.expected, strict=False)
                  if np.isfinite(w) and np.isfinite(e) and e > 0]
        return float(np.median(ratios)) if ratios else float("nan")

    def ratio(self, design: str, baseline: str, figure: str, budget: float | None = None) -> float:
        """Mean interval width of ``baseline`` over that of ``design`` (> 1: ``design`` narrower)."""
        b = self.budgets[-1] if budget is None else budget
        a, base = self.metrics(design, b)[figure], self.metrics(baseline, b)[figure]
        return float(base["ci_width"] / a["ci_width"]) if a["ci_width"] else float("nan")

    @property
    def run_ids(self) -> tuple[str, ...]:  # type: ignore[override]
        return ()

    @property
    def level(self) -> float:  # type: ignore[override]
        return float(self.fitting.get("level", 0.95))

    @property
    def warnings(self) -> list[str]:  # type: ignore[override]
        failed = sum(o.error is not None for o in self.outcomes)
        return [f"{failed} simulated studies could not be fitted (counted as 'fitted' x/y)"] \
            if failed else []

    @property
    def notes(self) -> list[str]:  # type: ignore[override]
        return []

    def to_dict(self, include_draws: bool = False, include_studies: bool = False) -> dict[str, Any]:
        """``include_draws`` (what ``save`` asks) or ``include_studies``: every study too."""
        include_studies = include_studies or include_draws
        top = self.budgets[-1]
        out: dict[str, Any] = {
            "kind": self.kind,
            "designs": {d: self.metrics(d, top) for d in self.designs},
            "truth": self.truth.to_dict(), "fit_law": self.fit_law, "target": self.target,
            "truth_at_target": dict(self.truth_values), "noise": self.noise.to_dict(),
            "repeats": self.repeats, "seed": self.seed, "budgets": list(self.budgets),
            "labels": dict(self.designs), "fitting": dict(self.fitting),
            "by_spend": [{"budget": b, "designs": {d: self.metrics(d, b) for d in self.designs}}
                         for b in self.budgets],
            "wall_time_s": self.wall_time_s,
        }
        if include_studies:
            out["studies"] = [o.to_dict() for o in self.outcomes]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimulationResult:
        """Rebuild from ``to_dict(include_studies=True)``."""
        t = data["truth"]
        truth = get_law(t["law"]).with_params(t["params"], label=t.get("label", ""),
                                              provenance=Provenance.from_dict(t.get("provenance")))
        return cls(truth=truth, fit_law=str(data["fit_law"]), target=float(data["target"]),
                   truth_values={k: float(v) for k, v in data["truth_at_target"].items()},
                   noise=Noise(**data["noise"]), repeats=int(data["repeats"]),
                   seed=int(data["seed"]), budgets=[float(b) for b in data["budgets"]],
                   designs=dict(data["labels"]),
                   outcomes=[Outcome.from_dict(o) for o in data.get("studies", [])],
                   fitting=dict(data.get("fitting", {})),
                   wall_time_s=_f(data.get("wall_time_s")))

    def summary(self) -> Summary:
        tables = []
        for b in self.budgets:
            t = Table(f"spend {format_number(b)} FLOPs", ["design", "FLOPs used", "runs",
                      "L bias", "L width", "L coverage", "N_opt bias", "N_opt width",
                      "N_opt coverage", "D_opt width", "fitted"])
            for d in self.designs:
                m = self.metrics(d, b)
                t.add_row(d, m["spend"], m["runs"], _pct(m["loss"]["bias"]),
                          _pct(m["loss"]["ci_width"]), _pct(m["loss"]["coverage"], 0),
                          _pct(m["N_opt"]["bias"]), _pct(m["N_opt"]["ci_width"]),
                          _pct(m["N_opt"]["coverage"], 0), _pct(m["D_opt"]["ci_width"]),
                          f"{m['fitted']}/{m['fitted'] + m['failed']}")
            tables.append(t)
        tv = self.truth_values
        facts = [("truth", f"{self.truth.label}: " + ", ".join(
                     f"{k}={format_number(v)}" for k, v in self.truth.params.items())),
                 ("at the target", f"L={format_number(tv['loss'])}, N_opt={format_number(tv['N_opt'])}, "
                  f"D_opt={format_number(tv['D_opt'])}"),
                 ("noise", f"log-normal sigma {self.noise.sigma:g}"
                  + (f", seed spread {self.noise.seed_spread:g}" if self.noise.seed_spread else "")),
                 ("fitted with", f"{self.fit_law}, {self.fitting.get('bootstrap')} bootstrap "
                  f"resamples, {self.repeats} studies per design and spend (seed {self.seed})")]
        facts += [(f"design {d}", label) for d, label in self.designs.items()]
        notes = ["bias and width are relative to the truth; width is the mean of (hi - lo) / "
                 f"truth of the {self.fitting.get('level', 0.95):.0%} intervals; coverage is the "
                 "share of intervals holding the truth"]
        warnings = self.warnings
        return Summary(title=f"simulated studies for C = {format_number(self.target)}",
                       tables=tables, facts=facts, notes=notes, warnings=warnings,
                       data=self.to_dict())

    def __repr__(self) -> str:
        return (f"<SimulationResult {self.truth.label}, target {self.target:.3g}, "
                f"{len(self.designs)} designs x {len(self.budgets)} spends x {self.repeats} studies>")



def _pct(x: float, digits: int = 1) -> str:
    return "-" if not np.isfinite(x) else f"{x:.{digits}%}"


# -- running the studies ---------------------------------------------------------------------


def run_study(design: Design, truth: LawInstance, noise: Noise, budget: float, target: float,
              repeat: int, seed: int, fitting: Fitting, budget_index: int = 0) -> Outcome:
    """One simulated study of ``design``, fitted; a study that cannot be fitted is an outcome
    with its error, not an exception."""
    rng = np.random.default_rng([seed, budget_index, repeat])
    out = Outcome(design.name, budget, repeat)
    try:
        study = design.study(truth, noise, budget, target, rng, fitting)
        out.spent, out.n_runs, out.rounds = study.spent, len(study.N), study.rounds
        out.widths, out.expected = list(study.widths), list(study.expected)
        fit = fitting.fit(study.N, study.D, study.loss, seed=seed * 100_003 + repeat)
    except (NotIdentifiable, ArithmeticError) as exc:
        out.error = str(exc)
        return out
    opt = fit.optimum(target)
    for name, est in (("loss", opt.loss), ("N_opt", opt.N), ("D_opt", opt.D)):
        lo, hi = est.ci if est.ci is not None else (float("nan"), float("nan"))
        out.values[name] = (est.value, lo, hi)
    out.unidentified = tuple(fit.unidentified)
    return out


def _task(payload: dict[str, Any]) -> dict[str, Any]:
    """A worker's study (plain data in and out: laws hold functions, which do not pickle)."""
    t = payload["truth"]
    truth = get_law(t["law"]).with_params(t["params"], label=t["label"])
    out = run_study(payload["design"], truth, payload["noise"], payload["budget"],
                    payload["target"], payload["repeat"], payload["seed"], payload["fitting"],
                    payload["budget_index"])
    return out.to_dict()


def simulate(
    truth: str | Path | LawInstance | FitResult = "besiroglu2024",
    designs: Sequence[Design] | None = None,
    spend: float | Sequence[float] = 1e21,
    target: float = 1e24,
    *,
    repeats: int = 50,
    seed: int = 0,
    noise: Noise = Noise(),
    law: str | None = None,
    bootstrap: int = 200,
    starts: int | None = None,
    workers: int = 1,
    progress: Progress | None = None,
) -> SimulationResult:
    """Run ``repeats`` simulated studies of every design at every spend and measure them.

    ``truth`` is the law the runs come from; ``law`` the law fitted (default: the truth's own,
    another law studies misspecification). Studies are deterministic for a given ``seed`` (each
    one's noise comes from the stream ``(seed, spend index, repeat)``, shared by the designs),
    and ``workers`` > 1 runs them in that many processes.
    """
    import time

    inst = resolve_truth(truth)
    check_allocatable(inst.law)
    fit_law = get_law(law or inst.law.name)
    check_allocatable(fit_law)
    target = check_budget(target, "target")
    budgets = sorted(check_budget(s, "spend") for s in np.atleast_1d(np.asarray(spend, float)))
    if int(repeats) != repeats or repeats < 1:
        raise ParameterError(f"repeats must be a whole number >= 1, not {repeats}", "repeats")
    if bootstrap < 2:
        raise ParameterError(f"bootstrap must be >= 2 to give intervals, not {bootstrap}",
                             "bootstrap")
    designs = list(designs) if designs is not None else default_designs()
    names = [d.name for d in designs]
    if len(set(names)) < len(names):
        raise ParameterError(f"design names must differ, not {names}", "designs")
    fitting = Fitting(fit_law.name, int(bootstrap), starts, seed)
    tasks = [(d, b, bi, r) for bi, b in enumerate(budgets) for d in designs for r in range(repeats)]
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    if workers <= 1:
        for i, (d, b, bi, r) in enumerate(tasks):
            outcomes.append(run_study(d, inst, noise, b, target, r, seed, fitting, bi))
            if progress is not None:
                progress(i + 1, len(tasks))
    else:
        outcomes = _parallel(tasks, inst, noise, target, seed, fitting, workers, progress)
    order = {n: i for i, n in enumerate(names)}
    outcomes.sort(key=lambda o: (o.budget, order[o.design], o.repeat))
    return SimulationResult(
        truth=inst, fit_law=fit_law.name, target=target, truth_values=truth_at(inst, target),
        noise=noise, repeats=int(repeats), seed=seed, budgets=budgets,
        designs={d.name: d.label for d in designs}, outcomes=outcomes,
        fitting={"law": fit_law.name, "bootstrap": int(bootstrap), "starts": starts,
                 "level": 0.95}, wall_time_s=round(time.perf_counter() - started, 2))


def _parallel(tasks: list[tuple[Design, float, int, int]], truth: LawInstance, noise: Noise,
              target: float, seed: int, fitting: Fitting, workers: int,
              progress: Progress | None) -> list[Outcome]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if get_law(truth.law.name) is not truth.law:
        raise ParameterError("workers > 1 needs a truth whose law is in the catalogue (it is "
                             "rebuilt by name in each worker)", "workers")
    # one BLAS thread per worker: the fit's small matrix products gain nothing from more, and
    # oversubscribed cores made timings erratic (measured in benchmarks/bench_fit.py)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    t = {"law": truth.law.name, "params": dict(truth.params), "label": truth.label}
    ctx = multiprocessing.get_context("spawn")
    out: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=int(workers), mp_context=ctx) as pool:
        futures = [pool.submit(_task, {"design": d, "truth": t, "noise": noise, "budget": b,
                                       "target": target, "repeat": r, "seed": seed,
                                       "fitting": fitting, "budget_index": bi})
                   for d, b, bi, r in tasks]
        for i, fut in enumerate(as_completed(futures)):
            out.append(Outcome.from_dict(fut.result()))
            if progress is not None:
                progress(i + 1, len(tasks))
    return out
