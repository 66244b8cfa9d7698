"""What the report and the dashboard compute from a store, in one place so both show the same
numbers: run selection, loss-law fits, IsoFLOP, hyperparameter laws and the plan.

Each step that can fail for a reason the user must hear (too few runs, a law that cannot be
identified) returns an :class:`Outcome` with the message instead of raising, so one failing fit
does not hide the rest of a report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from scalinglab.errors import InputError, NotIdentifiable, ScalingLabError
from scalinglab.fit import IsoFlopResult
from scalinglab.fit.result import FitResult
from scalinglab.fit.validate import RollingForward
from scalinglab.laws.hparams import PUBLISHED_HPARAM_LAWS, HparamLaw
from scalinglab.laws.registry import get_law, list_laws
from scalinglab.results import short_repr
from scalinglab.runs.schema import parse_tag_filters  # noqa: F401  (re-exported: server, tests)
from scalinglab.runs.select import select_runs
from scalinglab.stats import DEFAULT_BOOTSTRAP
from scalinglab.summary import tidy_warnings

T = TypeVar("T")


def loss_laws() -> list[str]:
    """Catalogue laws the report and the dashboard can fit to runs (inputs among N, D, C)."""
    return [name for name in list_laws()
            if (law := get_law(name)).fittable and set(law.inputs) <= {"N", "D", "C"}]
#: fewest lr × batch runs at one (N, D) that count as a grid worth a heatmap
MIN_GRID_RUNS = 9
#: fewest compute budgets among a law's runs for the report to roll it forward unasked: two to
#: fit on and one to predict is the least that says anything about extrapolation
MIN_ROLLING_BUDGETS = 3
#: compute cut-offs the report fits below (the library's and ``fit select``'s default)
ROLLING_STEPS = 6
_STAGES = {"starts": "optimising from every start", "bootstrap": "bootstrap resamples"}


@dataclass
class Outcome(Generic[T]):
    """A result, or the one-line reason there is none (shown instead of numbers)."""

    value: T | None = None
    error: str | None = None
    #: the error is a refusal because what the result needs is not identified
    #: (:class:`~scalinglab.errors.NotIdentifiable`): a reason to show, not a failure
    not_identified: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None


def attempt(fn: Callable[[], T]) -> Outcome[T]:
    """Run ``fn``; the library's refusals (any :class:`ScalingLabError`) become messages."""
    try:
        return Outcome(fn())
    except ScalingLabError as exc:
        return Outcome(error=str(exc), not_identified=isinstance(exc, NotIdentifiable))


def loss_runs(runs: pd.DataFrame, inputs: tuple[str, ...] = ("N", "D"), *,
              best_per_point: bool = False, group_by: tuple[str, ...] = ()) -> pd.DataFrame:
    """The runs that inform a loss law, by the one rule (:func:`scalinglab.runs.select.select_runs`)."""
    if runs.empty:
        return runs
    return select_runs(runs, inputs, best_per_point=best_per_point, group_by=group_by).frame


#: ``progress(stage, done, total)``: what a long computation is doing (the report shows it)
Progress = Callable[[str, int, int], None]


def fit_loss_law(
    runs: pd.DataFrame, law: str = "chinchilla", bootstrap: int = DEFAULT_BOOTSTRAP, holdout: int = 0,
    seed: int = 0, *, best_per_point: bool = False, group_by: tuple[str, ...] = (),
    source: str = "", progress: Progress | None = None, starts: int | None = None,
    warm: FitResult | None = None,
) -> FitResult:
    """Fit a loss law to the runs the selection rule keeps; raises as the fit engine does.
    ``starts``/``warm``: a lighter fit (the law's start grid thinned to about ``starts``
    points, a previous fit's estimate first), as an adaptive study's fits between rounds."""
    from scalinglab.fit import fit_law
    from scalinglab.fit.loss import drop_lossless

    spec = get_law(law)
    if runs.empty:
        raise InputError("no finished runs match this filter; nothing to fit", source=source or None)
    # the selection would drop runs without a loss silently, leaving the fit an empty frame
    runs, lossless = drop_lossless(runs, source=source or None)
    chosen = select_runs(runs, spec.inputs, best_per_point=best_per_point, group_by=group_by)
    grid = None
    if starts is not None or warm is not None:
        from scalinglab.design.simulate import start_grid

        frame = chosen.frame
        grid = start_grid(spec, {k: frame[k].to_numpy(float) for k in spec.inputs},
                          frame["loss"].to_numpy(float), starts, warm)
    stage = None if progress is None else (
        lambda what, done, total: progress(f"fitting {law}: {_STAGES.get(what, what)}", done, total))
    fit = fit_law(spec, chosen.frame, bootstrap=bootstrap, holdout_top=holdout, seed=seed,
                  source=source, progress=stage, starts=grid)
    fit.notes[:0] = lossless + chosen.notes
    return fit


def fit_isoflop(runs: pd.DataFrame, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0, *,
                best_per_point: bool = False, group_by: tuple[str, ...] = (),
                source: str = "") -> IsoFlopResult:
    """IsoFLOP (Approaches 1 and 2) fit of the runs' compute-optimal N and D."""
    from scalinglab.fit import fit_isoflop as fit
    from scalinglab.fit import group_budgets  # the fit's own grouping, to see what it will see

    if runs.empty:
        raise InputError("no finished runs match this filter; nothing to fit", source=source or None)
    data = select_runs(runs, ("N", "D"), best_per_point=best_per_point, group_by=group_by).frame
    # a store mixes sweeps: a lone run (say an lr x batch grid's point) is not an IsoFLOP profile
    group, _ = group_budgets(data["C"].to_numpy(float))
    sizes = data.groupby(group)["N"].nunique()
    keep = np.isin(group, sizes.index[sizes >= 3])
    if not keep.any():
        # runs at scattered compute (e.g. many sizes at one D) form no IsoFLOP profile at all
        raise NotIdentifiable("no IsoFLOP fit: no compute budget holds 3 or more model sizes")
    result = fit(data[keep].reset_index(drop=True), bootstrap=bootstrap, seed=seed, source=source)
    if not keep.all():
        result.notes.append(f"{int((~keep).sum())} run(s) at budgets with fewer than 3 model "
                            "sizes left out (not an IsoFLOP profile)")
    return result


def compute_budgets(frame: pd.DataFrame) -> int:
    """How many compute budgets the runs fall into, grouped as IsoFLOP and the rolling-forward
    cut-offs group them (:func:`scalinglab.fit.group_budgets`)."""
    from scalinglab.fit import group_budgets

    if frame.empty or "C" not in frame:
        return 0
    C = frame["C"].to_numpy(float)
    C = C[np.isfinite(C) & (C > 0)]
    return len(group_budgets(C)[1]) if len(C) else 0


def rolling_check(
    runs: pd.DataFrame, law: str = "chinchilla", bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0, *,
    best_per_point: bool = False, group_by: tuple[str, ...] = (), source: str = "",
    steps: int = ROLLING_STEPS, min_budgets: int = MIN_ROLLING_BUDGETS,
    progress: Progress | None = None,
) -> RollingForward:
    """Rolling-forward evaluation of ``law`` (:func:`scalinglab.fit.validate.rolling_forward`) on
    the runs the selection rule keeps for it, with the fit's bootstrap and seed: the report and
    the dashboard's pinned fits both call this, so they show the same numbers.

    Each of up to ``steps`` cut-offs fits on the budgets below it, at least 3 of them
    (``fit select``'s default) where the runs have 4 or more budgets, else all but the last:
    with 3 budgets, one cut-off fits on 2 and predicts the third. Raises
    :class:`~scalinglab.errors.NotIdentifiable` when the runs have fewer than ``min_budgets``
    budgets (saying how many they have), as the engine does when no cut-off can be fitted.
    """
    from scalinglab.fit.loss import drop_lossless
    from scalinglab.fit.validate import rolling_forward

    spec = get_law(law)
    if runs.empty:
        raise InputError("no finished runs match this filter; nothing to evaluate",
                         source=source or None)
    runs, lossless = drop_lossless(runs, source=source or None)
    chosen = select_runs(runs, spec.inputs, best_per_point=best_per_point, group_by=group_by)
    n = compute_budgets(chosen.frame)
    if n < max(min_budgets, 2):
        raise NotIdentifiable(
            f"rolling-forward evaluation needs at least {max(min_budgets, 2)} compute budgets "
            f"among the runs {law} is fitted to (fit on the smaller, predict the larger); "
            f"these {len(chosen.frame)} runs have {n}")
    stage = None if progress is None else (
        lambda what, done, total: progress(f"rolling {law} forward: {_STAGES.get(what, what)}",
                                           done, total))
    result = rolling_forward(spec, chosen.frame, bootstrap=bootstrap, seed=seed, source=source,
                             min_train=max(1, min(3, n - 1)), steps=steps, progress=stage)
    result.notes[:0] = lossless + chosen.notes
    return result


def grid_keys(runs: pd.DataFrame, min_runs: int = MIN_GRID_RUNS) -> list[tuple[float, float]]:
    """(N, D) points swept over lr and batch (at least ``min_runs`` runs, 3+ values of each)."""
    df = runs.dropna(subset=["lr", "batch_tokens"])
    out = []
    for (n, d), g in df.groupby(["N", "D"]):
        if len(g) >= min_runs and g["lr"].nunique() >= 3 and g["batch_tokens"].nunique() >= 3:
            out.append((float(n), float(d)))
    return sorted(out, key=lambda k: (-len(df[(df["N"] == k[0]) & (df["D"] == k[1])]), k))


def fit_hparams(runs: pd.DataFrame, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> HparamLaw:
    """Fit optimal lr and batch laws (Step Law's procedure) from the store's lr × batch grids."""
    from scalinglab.hparams.fit import as_grid, fit_hparam_law

    keys = grid_keys(runs)
    if not keys:
        raise NotIdentifiable("no lr × batch grid in these runs: sweep lr and batch at a few (N, D)")
    inside = pd.Series(list(zip(runs["N"], runs["D"], strict=True)), index=runs.index).isin(keys)
    cols = ["N", "D", "lr", "batch_tokens", "loss"] + (["run_id"] if "run_id" in runs else [])
    grid = as_grid(runs.loc[inside, cols].reset_index(drop=True), source="store")
    result = fit_hparam_law(grid, n_boot=bootstrap, seed=seed)
    return result.law(name="fitted")


def hparam_laws(runs: pd.DataFrame, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0
                ) -> tuple[dict[str, HparamLaw], str | None]:
    """Published lr/batch laws plus the store's fitted one (or why it could not be fitted)."""
    laws = dict(PUBLISHED_HPARAM_LAWS)
    fitted = attempt(lambda: fit_hparams(runs, bootstrap, seed))
    if fitted.ok:
        assert fitted.value is not None
        laws["fitted"] = fitted.value
    return laws, fitted.error


def predictions_at(laws: Mapping[str, HparamLaw], N: float, D: float) -> dict[str, tuple[float, float]]:
    """Each law's predicted optimum ``(lr, batch_tokens)`` at (N, D)."""
    out = {}
    for name, law in laws.items():
        p = law.predict(N, D)
        out[name] = (float(np.asarray(p["lr"])), float(np.asarray(p["batch_tokens"])))
    return out


def default_budget(runs: pd.DataFrame) -> float:
    """A budget worth planning when none is given: 100x the largest run's compute, to one
    significant digit (1.2e18 -> 1e20; rounding the exponent up, as this once did, planned up
    to 1000x)."""
    if runs.empty:
        return 1e21
    return float(f"{float(runs['C'].max()) * 100:.1g}")


@dataclass(frozen=True)
class RunContext:
    """How the runs were trained, so a plan is made (and read) in their terms: a loss law
    measured at sequence length 128 and a 1,024-token batch predicts losses for such runs."""

    n_runs: int
    seq_lens: tuple[int, ...]
    batches: tuple[float, ...]
    lr_range: tuple[float, float] | None

    @property
    def seq_len(self) -> int | None:
        """The runs' sequence length: the most common one (None when no run records it)."""
        return self.seq_lens[0] if self.seq_lens else None

    @property
    def batch_tokens(self) -> float | None:
        """The runs' batch in tokens when they all share one (an IsoFLOP sweep at a fixed
        batch); None when they vary (a grid, whose batch the lr/batch law then decides)."""
        return self.batches[0] if len(self.batches) == 1 else None


def run_context(runs: pd.DataFrame) -> RunContext:
    """The sequence lengths (most common first), batches and lr range of ``runs``."""
    def values(col: str) -> pd.Series:
        return runs[col].dropna() if col in runs else pd.Series(dtype=float)

    seq = values("seq_len")
    seq_lens = tuple(int(v) for v in seq.value_counts().index) if len(seq) else ()
    batches = tuple(sorted(float(v) for v in values("batch_tokens").unique()))
    lr = values("lr")
    return RunContext(n_runs=len(runs), seq_lens=seq_lens, batches=batches,
                      lr_range=(float(lr.min()), float(lr.max())) if len(lr) else None)


def make_plan(compute: float, fit: FitResult | None, hparams: HparamLaw | None = None, *,
              seq_len: int | None = None, batch_tokens: float | None = None) -> Any:
    """The planner's plan at ``compute`` with this fit (else Hoffmann 2022) and lr/batch law,
    at ``seq_len`` (default 2048) and, when given, a fixed ``batch_tokens``."""
    from scalinglab.plan.planner import make_plan as plan

    kwargs: dict[str, Any] = {"compute": compute}
    if fit is not None:
        kwargs["loss_law"] = fit
    if hparams is not None:
        kwargs["hparams_law"] = hparams
    if seq_len is not None:
        kwargs["seq_len"] = int(seq_len)
    if batch_tokens is not None:
        kwargs["batch_tokens"] = float(batch_tokens)
    return plan(**kwargs)


def collect_curves(store: Any, runs: pd.DataFrame, max_curves: int = 40) -> dict[str, pd.DataFrame]:
    """Loss curves of up to ``max_curves`` runs, spread evenly over compute (one query)."""
    if runs.empty:
        return {}
    ids = runs.sort_values("C")["run_id"].astype(str).tolist()
    if len(ids) > max_curves * 3:  # runs without curves are skipped; look at a few more
        ids = [ids[i] for i in np.linspace(0, len(ids) - 1, max_curves * 3).astype(int)]
    curves = store.curves(ids)
    curves = {rid: curves[rid] for rid in ids if rid in curves and not curves[rid].empty}
    if len(curves) > max_curves:
        keep = np.linspace(0, len(curves) - 1, max_curves).astype(int)
        curves = {k: curves[k] for k in np.array(list(curves))[keep]}
    return curves


@dataclass
class Summary:
    """Everything a report shows, computed once."""

    __repr__ = short_repr  # one short line, not every field

    store: str
    tags: dict[str, str]
    runs: pd.DataFrame
    other_runs: pd.DataFrame
    counts: dict[str, int]
    fits: dict[str, Outcome[FitResult]]
    isoflop: Outcome[IsoFlopResult]
    hparams: dict[str, HparamLaw]
    hparams_error: str | None
    grids: list[tuple[float, float]]
    compute: float
    plan: Outcome[Any]
    warnings: list[str] = field(default_factory=list)
    #: how the runs were trained (sequence length, batch, lr)
    context: RunContext | None = None
    #: the plan's sequence length and batch, and where each came from
    plan_seq_len: int = 2048
    plan_batch: float | None = None
    plan_basis: str = ""
    #: checks of the laws against runs they were not fitted on (results with ``summary()``:
    #: the demo's held-out budget, a rolling-forward evaluation)
    validation: list[Any] = field(default_factory=list)
    #: saved results shown as sections of their own (``report --result``: see
    #: :mod:`scalinglab.report.saved`)
    results: list[Any] = field(default_factory=list)
    #: rolling-forward evaluation of each fitted law (:func:`rolling_check`), or why there is
    #: none; ``None`` when not asked for (``report --no-rolling``)
    rolling: dict[str, Outcome[RollingForward]] | None = None
    #: the ``where`` filter the runs passed (beside ``tags``), so a report can say it
    where: str | None = None

    @property
    def filter_text(self) -> str:
        """The runs' filter as a person reads it: the tags and the ``where`` expression, or
        ``""`` for every run."""
        return ", ".join([*(f"{k}={v}" for k, v in self.tags.items()),
                          *([f"where {self.where}"] if self.where else [])])

    @property
    def primary_fit(self) -> FitResult | None:
        """The first law that fitted: the one the plan and the figures use."""
        return next((o.value for o in self.fits.values() if o.ok), None)

    @property
    def primary_law(self) -> str | None:
        return next((law for law, o in self.fits.items() if o.ok), None)


def summarise(
    store: Any,
    tags: Mapping[str, str] | None = None,
    laws: Iterable[str] = ("chinchilla",),
    compute: float | None = None,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    holdout: int = 0,
    seed: int = 0,
    best_per_point: bool = False,
    group_by: tuple[str, ...] = (),
    seq_len: int | None = None,
    batch_tokens: float | None = None,
    progress: Progress | None = None,
    rolling: bool | None = None,
    where: str | None = None,
) -> Summary:
    """Fit, plan and collect warnings for the runs of ``store`` (a RunStore) matching ``tags``
    and the filter ``where`` (the store's safe ``--where`` language).

    Runs are chosen for each law by the one selection rule (see :mod:`scalinglab.runs.select`),
    the same as ``scalinglab fit --store`` and the dashboard use. The plan is made at the runs'
    sequence length and, when they share one, their batch (see :class:`RunContext`), unless
    ``seq_len`` / ``batch_tokens`` say otherwise. ``progress(stage, done, total)`` hears what is
    being computed.

    ``rolling``: evaluate each fitted law rolling forward in compute (:func:`rolling_check`, same
    runs, bootstrap and seed as its fit). ``None`` (the default) does it when the law's runs span
    at least :data:`MIN_ROLLING_BUDGETS` budgets and otherwise records why not; ``True`` tries
    with as few as 2 budgets; ``False`` leaves it out.
    """
    def say(stage: str) -> None:
        if progress is not None:
            progress(stage, 0, 0)

    say("reading runs")
    tags = dict(tags or {})
    runs = store.runs(tags=tags or None, where=where)
    every = store.runs(status=None, tags=tags or None, where=where)
    other = every[every["status"] != "finished"].reset_index(drop=True)
    counts = {str(k): int(v) for k, v in every["status"].value_counts().items()}
    warnings: list[str] = []
    source = str(getattr(store, "path", store))
    fits = {law: attempt(lambda law=law: fit_loss_law(runs, law, bootstrap, holdout, seed,
                                                      best_per_point=best_per_point,
                                                      group_by=group_by, source=source,
                                                      progress=progress))
            for law in laws}
    for law, outcome in fits.items():
        if outcome.error:
            warnings.append(f"{law}: {outcome.error}")
        elif outcome.value is not None:
            warnings += [f"{law}: {w}" for w in outcome.value.warnings]
    rolled: dict[str, Outcome[RollingForward]] | None = None
    if rolling is not False:
        rolled = {}
        for law, outcome in fits.items():
            if not outcome.ok:
                continue  # the fit's own section says why
            say(f"rolling {law} forward in compute")
            rolled[law] = attempt(lambda law=law: rolling_check(
                runs, law, bootstrap, seed, best_per_point=best_per_point, group_by=group_by,
                source=source, min_budgets=MIN_ROLLING_BUDGETS if rolling is None else 2,
                progress=progress))
            if rolled[law].ok and rolled[law].value is not None:
                warnings += [f"{law} rolling forward: {w}" for w in rolled[law].value.warnings]
    say("fitting IsoFLOP parabolas")
    iso = attempt(lambda: fit_isoflop(runs, bootstrap, seed, best_per_point=best_per_point,
                                      group_by=group_by, source=source))
    if iso.error:
        warnings.append(f"IsoFLOP: {iso.error}")
    elif iso.value is not None:
        warnings += [f"IsoFLOP: {w}" for w in iso.value.warnings]
    say("fitting lr and batch laws")
    hp, hp_error = hparam_laws(runs, bootstrap, seed)
    if hp_error:
        warnings.append(f"fitted lr/batch law: {hp_error}")
    budget = float(compute) if compute is not None else default_budget(runs)
    context = run_context(runs)
    plan_seq = int(seq_len) if seq_len else (context.seq_len or 2048)
    plan_batch = float(batch_tokens) if batch_tokens else context.batch_tokens
    basis = [f"sequence length {plan_seq} ("
             + ("given" if seq_len else "the runs'" if context.seq_len else "default: the runs "
                "record none") + ")"]
    if batch_tokens:
        basis.append(f"batch {plan_batch:,.0f} tokens (given)")
    elif plan_batch is not None:
        basis.append(f"batch {plan_batch:,.0f} tokens (every run's), the lr moved to it from "
                     "the lr/batch law by the square-root rule")
    else:
        basis.append("batch from the lr/batch law (the runs' batches vary)" if context.batches
                     else "batch from the lr/batch law (the runs record none)")
    summary = Summary(
        store=str(getattr(store, "path", store)), tags=tags, runs=runs, other_runs=other,
        counts=counts, fits=fits, isoflop=iso, hparams=hp, hparams_error=hp_error,
        grids=grid_keys(runs), compute=budget, plan=Outcome(), warnings=warnings,
        context=context, plan_seq_len=plan_seq, plan_batch=plan_batch, plan_basis="; ".join(basis),
        rolling=rolled, where=where or None,
    )
    say("planning")
    summary.plan = attempt(lambda: make_plan(budget, summary.primary_fit, hp.get("fitted"),
                                             seq_len=plan_seq, batch_tokens=plan_batch))
    if summary.plan.ok:
        warnings += [f"plan: {w}" for w in summary.plan.value.warnings]
    elif summary.plan.error:
        warnings.append(f"plan: {summary.plan.error}")
    summary.warnings[:] = tidy_warnings(warnings)  # each once, the gravest first
    return summary
