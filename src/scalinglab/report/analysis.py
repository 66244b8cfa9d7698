"""What the report and the dashboard compute from a store, in one place so both show the same
numbers: run selection, loss-law fits, IsoFLOP, hyperparameter laws and the plan.

Each step that can fail for a reason the user must hear (too few runs, a law that cannot be
identified) returns an :class:`Outcome` with the message instead of raising, so one failing fit
does not hide the rest of a report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from scalinglab.clikit import UserError
from scalinglab.fit import IsoFlopResult
from scalinglab.fit.result import FitResult, NotIdentifiable
from scalinglab.laws.hparams import PUBLISHED_HPARAM_LAWS, HparamLaw

T = TypeVar("T")

#: loss laws offered in the report and the dashboard (names of ``laws.loss.LOSS_LAWS``)
LOSS_LAWS = ("chinchilla", "kaplan", "power_C", "power_N", "power_D")
#: fewest lr × batch runs at one (N, D) that count as a grid worth a heatmap
MIN_GRID_RUNS = 9


@dataclass
class Outcome(Generic[T]):
    """A result, or the one-line reason there is none (shown instead of numbers)."""

    value: T | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None


def attempt(fn: Callable[[], T]) -> Outcome[T]:
    """Run ``fn``; user-facing failures (UserError, NotIdentifiable, ValueError) become messages."""
    try:
        return Outcome(fn())
    except UserError as exc:
        return Outcome(error=exc.message)
    except (NotIdentifiable, ValueError) as exc:
        return Outcome(error=str(exc))


def parse_tag_filters(items: Iterable[str] | str | None) -> dict[str, str]:
    """``["dataset:c4", "sweep=a"]`` (or one comma-separated string) -> ``{"dataset": "c4", ...}``."""
    if items is None:
        return {}
    if isinstance(items, str):
        items = [items]
    out: dict[str, str] = {}
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            sep = ":" if ":" in part else "="
            key, found, value = part.partition(sep)
            if not found or not key.strip() or not value.strip():
                raise UserError(f"tag filter {part!r}: write KEY:VALUE, e.g. dataset:c4")
            out[key.strip()] = value.strip()
    return out


def loss_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that inform a loss law: at each (N, D), the runs of its best (lr, batch) setting.

    An lr × batch grid holds many runs at one (N, D), nearly all mistuned; the law describes
    well-tuned training, so only the best setting (lowest mean loss) counts. Replicates of one
    setting (seeds) all count: keeping only the luckiest would bias the law low.
    """
    if runs.empty:
        return runs
    cols = [c for c in ("lr", "batch_tokens") if c in runs]
    setting = [runs["N"], runs["D"], *(runs[c].fillna(-1.0) for c in cols)]
    mean = runs.groupby(setting)["loss"].transform("mean")
    best = mean.groupby([runs["N"], runs["D"]]).transform("min")
    return runs[mean <= best].sort_values(["C", "N"]).reset_index(drop=True)


def fit_loss_law(
    runs: pd.DataFrame, law: str = "chinchilla", bootstrap: int = 200, holdout: int = 0,
    seed: int = 0,
) -> FitResult:
    """Fit a loss law to runs with the fit engine; raises NotIdentifiable/UserError as it does."""
    from scalinglab.fit import fit_law

    if law not in LOSS_LAWS:
        raise UserError(f"unknown loss law {law!r}; choose from {list(LOSS_LAWS)}")
    data = loss_runs(runs)
    if len(data) == 0:
        raise UserError("no finished runs match this filter; nothing to fit")
    return fit_law(law, data, bootstrap=bootstrap, holdout_top=holdout, seed=seed)


def fit_isoflop(runs: pd.DataFrame, bootstrap: int = 200, seed: int = 0) -> IsoFlopResult:
    """IsoFLOP (Approaches 1 and 2) fit of the runs' compute-optimal N and D."""
    from scalinglab.fit import fit_isoflop as fit
    from scalinglab.fit import group_budgets  # the fit's own grouping, to see what it will see

    data = loss_runs(runs)
    if len(data) == 0:
        raise UserError("no finished runs match this filter; nothing to fit")
    # a store mixes sweeps: a lone run (say an lr x batch grid's point) is not an IsoFLOP profile
    group, _ = group_budgets(data["C"].to_numpy(float))
    sizes = data.groupby(group)["N"].nunique()
    keep = np.isin(group, sizes.index[sizes >= 3])
    result = fit(data[keep].reset_index(drop=True), bootstrap=bootstrap, seed=seed)
    if not keep.all():
        result.notes.append(f"{int((~keep).sum())} run(s) at budgets with fewer than 3 model "
                            "sizes left out (not an IsoFLOP profile)")
    return result


def grid_keys(runs: pd.DataFrame, min_runs: int = MIN_GRID_RUNS) -> list[tuple[float, float]]:
    """(N, D) points swept over lr and batch (at least ``min_runs`` runs, 3+ values of each)."""
    df = runs.dropna(subset=["lr", "batch_tokens"])
    out = []
    for (n, d), g in df.groupby(["N", "D"]):
        if len(g) >= min_runs and g["lr"].nunique() >= 3 and g["batch_tokens"].nunique() >= 3:
            out.append((float(n), float(d)))
    return sorted(out, key=lambda k: (-len(df[(df["N"] == k[0]) & (df["D"] == k[1])]), k))


def fit_hparams(runs: pd.DataFrame, bootstrap: int = 200, seed: int = 0) -> HparamLaw:
    """Fit optimal lr and batch laws (Step Law's procedure) from the store's lr × batch grids."""
    from scalinglab.hparams.fit import fit_hparam_law
    from scalinglab.hparams.grid import grid_from_frame

    keys = grid_keys(runs)
    if not keys:
        raise NotIdentifiable("no lr × batch grid in these runs: sweep lr and batch at a few (N, D)")
    inside = pd.Series(list(zip(runs["N"], runs["D"], strict=True)), index=runs.index).isin(keys)
    frame = runs.loc[inside, ["N", "D", "lr", "batch_tokens", "loss"]].reset_index(drop=True)
    result = fit_hparam_law(grid_from_frame(frame, source="store"), n_boot=bootstrap, seed=seed)
    return result.law(name="fitted")


def hparam_laws(runs: pd.DataFrame, bootstrap: int = 200, seed: int = 0
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
    """A budget worth planning when none is given: 100x the largest run's compute, rounded."""
    if runs.empty:
        return 1e21
    return float(10 ** math.ceil(math.log10(runs["C"].max() * 100)))


def make_plan(compute: float, fit: FitResult | None, hparams: HparamLaw | None = None) -> Any:
    """The planner's plan at ``compute`` with this fit (else Hoffmann 2022) and lr/batch law."""
    from scalinglab.plan.planner import make_plan as plan

    kwargs: dict[str, Any] = {"compute": compute}
    if fit is not None:
        kwargs["loss_law"] = fit
    if hparams is not None:
        kwargs["hparams_law"] = hparams
    return plan(**kwargs)


def collect_curves(store: Any, runs: pd.DataFrame, max_curves: int = 40) -> dict[str, pd.DataFrame]:
    """Loss curves (``store.curve``) of up to ``max_curves`` runs, spread evenly over compute."""
    if runs.empty:
        return {}
    ids = runs.sort_values("C")["run_id"].tolist()
    if len(ids) > max_curves * 3:  # runs without curves are skipped; look at a few more
        ids = [ids[i] for i in np.linspace(0, len(ids) - 1, max_curves * 3).astype(int)]
    curves = {rid: c for rid in ids if not (c := store.curve(rid)).empty}
    if len(curves) > max_curves:
        keep = np.linspace(0, len(curves) - 1, max_curves).astype(int)
        curves = {k: curves[k] for k in np.array(list(curves))[keep]}
    return curves


@dataclass
class Summary:
    """Everything a report shows, computed once."""

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

    @property
    def primary_fit(self) -> FitResult | None:
        """The first law that fitted: the one the plan and the figures use."""
        return next((o.value for o in self.fits.values() if o.ok), None)


def summarise(
    store: Any,
    tags: Mapping[str, str] | None = None,
    laws: Iterable[str] = ("chinchilla",),
    compute: float | None = None,
    bootstrap: int = 200,
    holdout: int = 0,
    seed: int = 0,
) -> Summary:
    """Fit, plan and collect warnings for the runs of ``store`` (a RunStore) matching ``tags``."""
    tags = dict(tags or {})
    runs = store.runs(tags=tags or None)
    every = store.runs(status=None, tags=tags or None)
    other = every[every["status"] != "finished"].reset_index(drop=True)
    counts = {str(k): int(v) for k, v in every["status"].value_counts().items()}
    warnings: list[str] = []
    fits = {law: attempt(lambda law=law: fit_loss_law(runs, law, bootstrap, holdout, seed))
            for law in laws}
    for law, outcome in fits.items():
        if outcome.error:
            warnings.append(f"{law}: {outcome.error}")
        elif outcome.value is not None:
            warnings += [f"{law}: {w}" for w in outcome.value.warnings]
    iso = attempt(lambda: fit_isoflop(runs, bootstrap, seed))
    if iso.error:
        warnings.append(f"IsoFLOP: {iso.error}")
    elif iso.value is not None:
        warnings += [f"IsoFLOP: {w}" for w in iso.value.warnings]
    hp, hp_error = hparam_laws(runs, bootstrap, seed)
    if hp_error:
        warnings.append(f"fitted lr/batch law: {hp_error}")
    budget = float(compute) if compute is not None else default_budget(runs)
    summary = Summary(
        store=str(getattr(store, "path", store)), tags=tags, runs=runs, other_runs=other,
        counts=counts, fits=fits, isoflop=iso, hparams=hp, hparams_error=hp_error,
        grids=grid_keys(runs), compute=budget, plan=Outcome(), warnings=warnings,
    )
    summary.plan = attempt(lambda: make_plan(budget, summary.primary_fit, hp.get("fitted")))
    if summary.plan.ok:
        warnings += [f"plan: {w}" for w in summary.plan.value.warnings]
    elif summary.plan.error:
        warnings.append(f"plan: {summary.plan.error}")
    return summary
