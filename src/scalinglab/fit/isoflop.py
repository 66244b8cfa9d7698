"""Hoffmann et al. 2022's Approaches 1 and 2: compute-optimal N and D from runs grouped by budget.

Approach 1 takes the lowest-loss run at each compute budget; Approach 2 finds the minimum of an
IsoFLOP profile of loss against ``ln N`` at each budget: the vertex of a fitted parabola
(Hoffmann et al.), or with ``method="akima"`` the minimum of an Akima interpolation of
``ln loss`` against ``ln N`` on a fine grid, as Porian et al. 2024 ("Resolving Discrepancies in
Compute-Optimal Scaling of Language Models") do, since a parabola is biased on wide, asymmetric
slices. Either way the optima are then fitted as power laws ``N_opt = k_N C^a`` and
``D_opt = k_D C^b`` in log-log.

Intervals come from resampling runs *within* budgets, so every resample keeps the design (the
same budgets), which is the variability a re-run of the same sweep would show. Said out loud,
never silently:

- a budget with fewer than 3 model sizes tells nothing about where the optimum lies (its best
  run is an edge), so Approach 1 skips it (with one run per budget Approach 1 would otherwise
  report the runs' own N-C line, e.g. ``a = 1 [1, 1]``);
- a profile with no interior minimum is excluded from Approach 2;
- a parabola whose vertex lies below the best observed run by more than the noise (twice the
  run-to-run noise, estimated from neighbouring sizes (budgets with 5 or more), not from the
  parabola's own residuals,
  which would count its lack of fit as noise) is a poor description of that slice: a warning
  says so and suggests the Akima method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from scalinglab.errors import InputError, NotIdentifiable, ParameterError
from scalinglab.fit.compare import Comparison
from scalinglab.results import Result, short_repr, stack_draws
from scalinglab.stats import (
    MIN_USABLE_DRAWS,
    Estimate,
    bootstrap_weights,
    check_count,
    check_level,
    percentile_interval,
)
from scalinglab.summary import Summary, Table, format_interval, format_number
from scalinglab.values import as_mapping, as_table

#: runs whose compute agrees within this many decades (26%) belong to one budget
DEFAULT_TOL_DEX = 0.1
#: grouped by C, a budget whose runs' compute spans more than this ratio is a pseudo-budget
PSEUDO_SPREAD = 1.05


def group_budgets(
    C: Any, labels: Any = None, tol_dex: float = DEFAULT_TOL_DEX
) -> tuple[np.ndarray, np.ndarray]:
    """Assign runs to compute budgets: ``(group index per run, budget FLOPs per group)``.

    With ``labels`` (a budget column or tag), runs sharing a label form a budget, whose value is
    the label when it is a number and the geometric mean of its runs' C otherwise. Without,
    runs are sorted by C and a new budget starts whenever C exceeds the current budget's first
    run by more than ``tol_dex`` decades (so a budget spans at most ``tol_dex``); its value is
    the geometric mean of its runs' C. Budgets are numbered in increasing compute.
    """
    c = np.asarray(C, dtype=float)
    if labels is not None:
        keys = pd.Series(np.asarray(labels, dtype=object)).astype(str).str.strip()
        codes, uniques = pd.factorize(keys)
        values = np.empty(len(uniques))
        for g, label in enumerate(uniques):
            try:
                values[g] = float(label)
            except ValueError:
                values[g] = float(np.exp(np.log(c[codes == g]).mean()))
    else:
        order = np.argsort(c, kind="stable")
        log_c = np.log10(c[order])
        codes = np.empty(len(c), dtype=int)
        g, start = -1, -np.inf
        for i, lc in zip(order, log_c, strict=True):
            if lc - start > tol_dex:
                g, start = g + 1, lc
            codes[i] = g
        values = np.array([np.exp(np.log(c[codes == k]).mean()) for k in range(g + 1)])
    rank = np.argsort(values, kind="stable")
    remap = np.empty_like(rank)
    remap[rank] = np.arange(len(rank))
    return remap[codes], values[rank]


@dataclass
class BudgetFit:
    """One compute budget: its IsoFLOP parabola (Approach 2) and its best run (Approach 1)."""

    __repr__ = short_repr  # one short line, not every field

    C: float
    n_runs: int
    N_range: tuple[float, float]
    #: ``loss = c0 + c1 ln N + c2 (ln N)^2``; NaN when fewer than 3 model sizes
    coef: tuple[float, float, float]
    #: "ok", or why the vertex is not used
    status: str
    N_opt: float = float("nan")
    D_opt: float = float("nan")
    loss_opt: float = float("nan")
    best: dict[str, Any] = field(default_factory=dict)
    #: the runs of this budget
    run_ids: tuple[str, ...] = ()
    #: distinct model sizes at this budget
    n_sizes: int = 0
    #: "ok", or why Approach 1 does not use this budget's best run
    approach1_status: str = "ok"
    #: best observed loss minus the profile's minimum (how far the vertex undercuts the runs)
    gap: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def loss_at(self, N: Any) -> np.ndarray:
        """The parabola at ``N`` (for plotting the IsoFLOP curve)."""
        x = np.log(np.asarray(N, dtype=float))
        c0, c1, c2 = self.coef
        return c0 + c1 * x + c2 * x * x

    def to_dict(self) -> dict[str, Any]:
        return {
            "C": self.C, "n_runs": self.n_runs, "N_range": list(self.N_range),
            "coef": list(self.coef), "status": self.status, "N_opt": self.N_opt,
            "D_opt": self.D_opt, "loss_opt": self.loss_opt, "best": dict(self.best),
            "run_ids": list(self.run_ids), "n_sizes": self.n_sizes,
            "approach1_status": self.approach1_status, "gap": self.gap,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BudgetFit:
        return cls(C=float(d["C"]), n_runs=int(d["n_runs"]), N_range=tuple(d["N_range"]),
                   coef=tuple(_nan(x) for x in d["coef"]), status=str(d["status"]),
                   N_opt=_nan(d.get("N_opt")), D_opt=_nan(d.get("D_opt")),
                   loss_opt=_nan(d.get("loss_opt")), best=dict(d.get("best") or {}),
                   run_ids=tuple(d.get("run_ids") or ()), n_sizes=int(d.get("n_sizes") or 0),
                   approach1_status=str(d.get("approach1_status") or "ok"),
                   gap=_nan(d.get("gap")))


@dataclass
class AllocationLaw:
    """``N_opt = exp(log_kn) C^a`` and ``D_opt = exp(log_kd) C^b`` with bootstrap draws."""

    __repr__ = short_repr  # one short line, not every field

    approach: int
    a: float
    b: float
    log_kn: float
    log_kd: float
    n_budgets: int
    #: draws of (a, b, log_kn, log_kd), shape (K, 4); NaN rows where a resample had < 2 budgets
    draws: np.ndarray | None = None
    level: float = 0.95

    @property
    def interval_problem(self) -> str | None:
        """Why the draws give no honest interval (None when they do, or when there are none):
        most resamples unusable, or every usable one the same exponent (a zero-width interval
        from 2 budgets with 95% of resamples unusable printed as 0.648 [0.648, 0.648])."""
        if self.draws is None or not len(self.draws):
            return None
        ok = np.isfinite(self.draws[:, 0])
        if ok.mean() < MIN_USABLE_DRAWS:
            return f"only {ok.mean():.0%} of {len(ok)} resamples kept 2 usable budgets"
        lo, hi = percentile_interval(self.draws[ok, :2], self.level)
        if np.all(hi - lo <= 1e-9 * np.maximum(1.0, np.abs([self.a, self.b]))):
            return (f"every usable resample gives the same exponents ({self.n_budgets} budgets, "
                    "each with one possible optimum): the spread is not measured")
        return None

    @property
    def ci(self) -> dict[str, tuple[float, float]]:
        if self.draws is None or not np.isfinite(self.draws).any() or self.interval_problem:
            return {}
        lo, hi = percentile_interval(self.draws, self.level)
        return {k: (float(lo[i]), float(hi[i])) for i, k in enumerate(("a", "b", "log_kn", "log_kd"))}

    def exponent_draws(self) -> dict[str, np.ndarray]:
        """Exponent draws by name (for histograms)."""
        if self.draws is None:
            return {}
        return {"a": self.draws[:, 0], "b": self.draws[:, 1]}

    def n_opt(self, C: Any) -> np.ndarray:
        return np.exp(self.log_kn + self.a * np.log(np.asarray(C, dtype=float)))

    def d_opt(self, C: Any) -> np.ndarray:
        return np.exp(self.log_kd + self.b * np.log(np.asarray(C, dtype=float)))

    def _band(self, C: Any, slope: int, icpt: int) -> tuple[np.ndarray, Any, Any]:
        point = np.exp([self.a, self.b][slope] * np.log(np.asarray(C, dtype=float))
                       + [self.log_kn, self.log_kd][icpt - 2])
        if self.draws is None or self.interval_problem:
            return point, None, None
        log_c = np.log(np.atleast_1d(np.asarray(C, dtype=float)))
        with np.errstate(all="ignore"):
            draws = np.exp(self.draws[:, icpt, None] + self.draws[:, slope, None] * log_c[None, :])
        lo, hi = percentile_interval(draws, self.level)
        return point, lo.reshape(np.shape(point)), hi.reshape(np.shape(point))

    def n_opt_interval(self, C: Any) -> tuple[np.ndarray, Any, Any]:
        """``N_opt(C)`` with its percentile band over the draws (None without draws)."""
        return self._band(C, 0, 2)

    def d_opt_interval(self, C: Any) -> tuple[np.ndarray, Any, Any]:
        """``D_opt(C)`` with its percentile band over the draws (None without draws)."""
        return self._band(C, 1, 3)

    def optimum(self, C: float) -> dict[str, Estimate]:
        """``{"N_opt", "D_opt"}`` at budget ``C`` as :class:`Estimate`s."""
        out = {}
        for key, (point, lo, hi) in (("N_opt", self.n_opt_interval(C)), ("D_opt", self.d_opt_interval(C))):
            out[key] = Estimate(float(point), None if lo is None else float(lo),
                                None if hi is None else float(hi), self.level,
                                note=None if self.interval_problem is None else
                                "no interval: see the exponents")
        return out

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        ci = self.ci
        out = {
            "approach": self.approach,
            "N_opt_exponent": self.a,
            "D_opt_exponent": self.b,
            "N_opt_coef": float(np.exp(self.log_kn)),
            "D_opt_coef": float(np.exp(self.log_kd)),
            "log_kn": self.log_kn,
            "log_kd": self.log_kd,
            "ci": {
                "N_opt_exponent": list(ci["a"]) if ci else None,
                "D_opt_exponent": list(ci["b"]) if ci else None,
            },
            "n_budgets": self.n_budgets,
            "n_bootstrap": 0 if self.draws is None else len(self.draws),
            **({"no_interval": self.interval_problem} if self.interval_problem else {}),
            "formula": "N_opt = N_opt_coef * C^N_opt_exponent; D_opt = D_opt_coef * C^D_opt_exponent",
        }
        if include_draws and self.draws is not None:
            out["draws"] = self.draws.tolist()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, level: float = 0.95) -> AllocationLaw | None:
        if not d:
            return None
        draws = d.get("draws")
        return cls(approach=int(d["approach"]), a=float(d["N_opt_exponent"]),
                   b=float(d["D_opt_exponent"]),
                   log_kn=float(d.get("log_kn", np.log(d["N_opt_coef"]))),
                   log_kd=float(d.get("log_kd", np.log(d["D_opt_coef"]))),
                   n_budgets=int(d["n_budgets"]),
                   draws=None if draws is None else np.asarray(draws, dtype=float), level=level)


@dataclass(repr=False)
class IsoFlopResult(Result):
    """Per-budget parabolas and the Approach 1 and 2 allocation laws.

    ``run_ids`` are the runs used and ``budget_of[i]`` the index (into ``budgets``) of run i's
    budget, so figures and reports never regroup runs themselves.
    """

    kind: ClassVar[str] = "isoflop"

    budgets: list[BudgetFit]
    approach1: AllocationLaw | None
    approach2: AllocationLaw | None
    run_ids: tuple[str, ...] = ()
    budget_of: tuple[int, ...] = ()
    warnings: list[str] = field(default_factory=list)
    level: float = 0.95
    notes: list[str] = field(default_factory=list)
    source: str = ""
    #: how Approach 2 finds each budget's minimum: "parabola" or "akima"
    method: str = "parabola"
    #: run-to-run noise of the loss (pseudo-residuals within budgets; what vertex gaps are judged by)
    noise: float = float("nan")
    #: N_opt of one method against another's, ratio and interval (``fit isoflop --compare``,
    #: :func:`scalinglab.fit.compare.compare_n_opt`): kept so a saved result shows them again
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def approaches(self) -> list[AllocationLaw]:
        return [a for a in (self.approach1, self.approach2) if a is not None]

    def budget_of_run(self) -> dict[str, float]:
        """Each run's budget (FLOPs) by run id."""
        return {rid: self.budgets[g].C for rid, g in zip(self.run_ids, self.budget_of, strict=True)}

    def optimum(self, C: float) -> dict[str, dict[str, Estimate]]:
        """``{"approach1": {"N_opt", "D_opt"}, "approach2": {...}}`` at budget ``C``."""
        return {f"approach{a.approach}": a.optimum(C) for a in self.approaches}

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        """Each approach's allocation-law draws (``approach2.a`` is the N_opt exponent,
        ``approach2.b`` the D_opt one), where they give an honest interval (see
        :attr:`AllocationLaw.interval_problem`)."""
        return stack_draws([([f"approach{law.approach}.{k}" for k in ("a", "b", "log_kn", "log_kd")],
                             law.draws) for law in self.approaches if not law.interval_problem])

    def to_dict(self, include_draws: bool = False, compute: Sequence[float] | None = None) -> dict[str, Any]:
        cs = list(compute) if compute else ([max(b.C for b in self.budgets)] if self.budgets else [])
        return {
            "kind": self.kind,
            "method": "IsoFLOP (Hoffmann et al. 2022, Approaches 1 and 2)",
            "approach2_method": self.method,
            "noise": self.noise,
            "n_runs": self.n_runs,
            "n_budgets": len(self.budgets),
            "level": self.level,
            "budgets": [b.to_dict() for b in self.budgets],
            "approach1": None if self.approach1 is None else self.approach1.to_dict(include_draws),
            "approach2": None if self.approach2 is None else self.approach2.to_dict(include_draws),
            "at_compute": [{"C": float(c), **{k: {n: e.to_dict() for n, e in v.items()}
                                              for k, v in self.optimum(float(c)).items()}}
                           for c in cs],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "source": self.source,
            "run_ids": list(self.run_ids),
            "budget_of": list(self.budget_of),
            **({"comparisons": [c.to_dict() for c in self.comparisons]} if self.comparisons else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IsoFlopResult:
        level = float(d.get("level", 0.95))
        return cls(budgets=[BudgetFit.from_dict(b) for b in d.get("budgets", [])],
                   approach1=AllocationLaw.from_dict(d.get("approach1"), level),
                   approach2=AllocationLaw.from_dict(d.get("approach2"), level),
                   run_ids=tuple(d.get("run_ids") or ()), budget_of=tuple(d.get("budget_of") or ()),
                   warnings=list(d.get("warnings", [])), level=level,
                   notes=list(d.get("notes", [])), source=str(d.get("source", "")),
                   method=str(d.get("approach2_method") or "parabola"), noise=_nan(d.get("noise")),
                   comparisons=[Comparison.from_dict(c) for c in d.get("comparisons") or ()])

    def at(self, compute: float | Sequence[float] | None = None) -> IsoFlopAt:
        """This result read at the budgets ``compute`` (each approach's allocation there;
        default: the largest budget): a result of its own (:class:`IsoFlopAt`), so what a
        command shows is what ``save()`` keeps."""
        return IsoFlopAt.of(self, compute)

    def summary(self, compute: Sequence[float] | None = None) -> Summary:
        """Budgets, the allocation laws and the allocation at ``compute`` (the same as
        ``self.at(compute).summary()``; default: the largest budget)."""
        if compute:
            return self.at(compute).summary()
        return self._summary(None)

    def _summary(self, compute: Sequence[float] | None) -> Summary:
        where = "vertex" if self.method == "parabola" else "Akima minimum"
        budgets = Table("budgets", ["C", "runs", "sizes", f"N_opt ({where})", "loss there",
                                    "below best run", "best run N", "Approach 2", "Approach 1"])
        for b in self.budgets:
            budgets.add_row(b.C, b.n_runs, b.n_sizes, b.N_opt if b.ok else None,
                            b.loss_opt if b.ok else None, b.gap if b.ok else None,
                            b.best.get("N"), "ok" if b.ok else f"excluded: {b.status}",
                            "ok" if b.approach1_status == "ok" else f"skipped: {b.approach1_status}")
        pct = f"{round(self.level * 100)}% interval"
        laws = Table("N_opt ∝ C^a, D_opt ∝ C^b", ["approach", "budgets", "a", pct, "b", pct])
        for law in self.approaches:
            ci = law.ci
            why = law.interval_problem
            laws.add_row(law.approach, law.n_budgets, law.a,
                         f"no interval: {why}" if why else format_interval(ci.get("a")), law.b,
                         "(same)" if why else format_interval(ci.get("b")))
        at = Table("compute-optimal allocation", ["approach", "C", "N_opt", "D_opt"])
        cs = list(compute) if compute else ([max(b.C for b in self.budgets)] if self.budgets else [])
        for c in cs:
            for name, est in self.optimum(float(c)).items():
                at.add_row(name.replace("approach", "Approach "), float(c), est["N_opt"], est["D_opt"])
        title = (f"IsoFLOP budgets ({self.n_runs} runs" + (f", {self.source}" if self.source else "")
                 + f"; Approach 2 by {self.method})")
        return Summary(title=title, tables=[budgets, laws] + ([at] if at.rows else []),
                       facts=[("compare", c.verdict()) for c in self.comparisons],
                       notes=list(self.notes), warnings=list(self.warnings),
                       data=self.to_dict())

    def _repr_items(self) -> list[str]:
        items = [f"{len(self.budgets)} budgets"]
        items += [f"approach {a.approach}: a={a.a:.3f}" for a in self.approaches]
        return items


@dataclass(repr=False)
class IsoFlopAt(IsoFlopResult):
    """An IsoFLOP result read at given budgets (``iso.at(compute=...)``): the result itself
    plus the budgets, so ``summary()``, ``to_dict()`` and ``save()`` all hold the allocation
    there (``fit isoflop --compute C --save F`` writes one)."""

    kind: ClassVar[str] = "isoflop_at"

    #: budgets (FLOPs); empty: the largest budget, as a plain result shows
    compute: tuple[float, ...] = ()

    @classmethod
    def of(cls, result: IsoFlopResult, compute: float | Sequence[float] | None = None) -> IsoFlopAt:
        import dataclasses

        from scalinglab.fit.derived import as_budgets

        cs = as_budgets(compute)
        base = {f.name: getattr(result, f.name) for f in dataclasses.fields(IsoFlopResult)}
        return cls(**base, compute=cs)

    def to_dict(self, include_draws: bool = False, compute: Sequence[float] | None = None) -> dict[str, Any]:
        if compute:
            return self.at(compute).to_dict(include_draws)
        out = super().to_dict(include_draws, compute=list(self.compute) or None)
        return {**out, "kind": self.kind, "read_at": {"compute": list(self.compute)}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IsoFlopAt:
        return cls.of(IsoFlopResult.from_dict(d), (d.get("read_at") or {}).get("compute") or None)

    def summary(self, compute: Sequence[float] | None = None) -> Summary:
        if compute:
            return self.at(compute).summary()
        return self._summary(list(self.compute) or None)

    def _repr_items(self) -> list[str]:
        where = "; ".join(f"C={format_number(c)}" for c in self.compute) or "the largest budget"
        return [*super()._repr_items(), f"at {where}"]


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


# -- the arithmetic, vectorised over resamples ------------------------------------------------


def _parabolas(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares ``y = c0 + c1 x + c2 x^2`` for each weight row; NaN if < 3 sizes.

    ``x`` is centred first (conditioning); the returned coefficients are in the original ``x``.
    """
    m = x.mean()
    xc = x - m
    powers = xc[None, :] ** np.arange(5)[:, None]  # (5, n)
    mom = w @ powers.T  # (K, 5)
    rhs = w @ (powers[:3] * y[None, :]).T  # (K, 3)
    A = np.stack([mom[:, i : i + 3] for i in range(3)], axis=1)  # (K, 3, 3)
    distinct = np.unique(x, return_inverse=True)[1]
    n_sizes = ((w > 0) @ np.eye(distinct.max() + 1)[distinct] > 0).sum(axis=1)
    ok = n_sizes >= 3
    coef = np.full((len(w), 3), np.nan)
    if ok.any():
        coef[ok] = np.linalg.solve(A[ok], rhs[ok][:, :, None])[:, :, 0]
    c0, c1, c2 = coef.T
    # expand c0 + c1 (x - m) + c2 (x - m)^2
    return np.stack([c0 - c1 * m + c2 * m * m, c1 - 2 * c2 * m, c2], axis=1)


def _vertex(coef: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ln N`` at the parabola's minimum and a status code (0 ok, 1 opens down, 2 outside, 3 NaN)."""
    c0, c1, c2 = coef.T
    with np.errstate(all="ignore"):
        xv = -c1 / (2 * c2)
    status = np.where(~np.isfinite(c2), 3, np.where(c2 <= 0, 1, np.where((xv < lo) | (xv > hi), 2, 0)))
    return np.where(status == 0, xv, np.nan), status


def _loglog(log_c: np.ndarray, log_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise OLS ``log_v = slope log_c + icpt`` over finite entries; NaN with < 2 budgets."""
    ok = np.isfinite(log_v) & np.isfinite(log_c)
    log_c = np.where(ok, log_c, 0.0)
    w = ok.astype(float)
    n = w.sum(axis=1)
    v = np.where(ok, log_v, 0.0)
    with np.errstate(all="ignore"):
        mc = (w * log_c).sum(axis=1) / n
        mv = v.sum(axis=1) / n
        dc = np.where(ok, log_c - mc[:, None], 0.0)
        var = (dc * dc).sum(axis=1)
        slope = (dc * (v - mv[:, None])).sum(axis=1) / var
        icpt = mv - slope * mc
    bad = (n < 2) | (var <= 1e-12)
    return np.where(bad, np.nan, slope), np.where(bad, np.nan, icpt)


_WHY = {1: "the parabola opens downward (no minimum)",
        2: "the profile's minimum is outside the sampled N range",
        3: "fewer than 3 distinct model sizes"}


#: Approach 1 needs this many model sizes at a budget (fewer: the best run is an edge)
MIN_SIZES = 3
#: a vertex more than this many noise stds below the best run is flagged
GAP_NOISE = 2.0
#: points of the fine grid per interval between sampled sizes (Porian et al. use 25)
AKIMA_POINTS = 25
METHODS = ("parabola", "akima")


def fit_isoflop(
    frame: pd.DataFrame,
    *,
    bootstrap: int = 200,
    seed: int = 0,
    budget: str | None = None,
    tol_dex: float = DEFAULT_TOL_DEX,
    level: float = 0.95,
    columns: Mapping[str, str] | None = None,
    source: str = "",
    method: str = "parabola",
    flop_convention: Any = None,
) -> IsoFlopResult:
    """Approaches 1 and 2 on runs with ``N``, ``loss`` and ``D`` or ``C`` (the other is derived).

    ``budget`` names a column (or a key of a ``tags`` column) that labels each run's budget;
    otherwise runs are grouped by C (:func:`group_budgets`). ``columns`` maps scalinglab's names
    to the frame's; a ``run_id`` column names the runs (else ``row-1``, ...). ``method`` is how
    Approach 2 finds each budget's minimum: ``"parabola"`` (Hoffmann et al.) or ``"akima"``
    (Porian et al.: Akima interpolation of ln loss against ln N, minimum on a fine grid; the
    interval from resampling runs within budgets). Raises :class:`NotIdentifiable` when fewer
    than 2 budgets are usable by either approach.

    A C column given beside N and D, and a numeric budget column, are checked against ``6ND``
    (:func:`scalinglab.fit.consistency.check_flops`; ``flop_convention`` accepts another).
    """
    from scalinglab.fit.consistency import check_flops, d_exponent_note
    from scalinglab.fit.loss import complete_columns

    if method not in METHODS:
        raise ParameterError(f"method must be one of {list(METHODS)}, not {method!r}", "method")
    frame = as_table(frame, "frame")
    columns = as_mapping(columns, "columns", "{'N': 'params', 'loss': 'final_loss'}")
    given_c = {"N", "D", "C"} <= set(frame.rename(columns={v: k for k, v in (columns or {}).items()}).columns)
    df, notes = complete_columns(frame, ("N", "D", "C"), columns)
    ids = (df["run_id"].astype(str).tolist() if "run_id" in df.columns
           else [f"row-{i + 1}" for i in range(len(df))])
    n_all, d_all, c_all, y_all = (df[k].to_numpy(float) for k in ("N", "D", "C", "loss"))
    for name, v in (("N", n_all), ("D", d_all), ("C", c_all), ("loss", y_all)):
        bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)))
        if bad.size:
            raise InputError(f"must be positive and finite, not {float(v[bad[0]]):g}",
                             source=source or None, row=f"run {bad[0] + 1}", column=name)
    bootstrap = check_count(bootstrap, "bootstrap")
    check_level(level)
    labels = None
    if budget is not None:
        if budget in df.columns:
            labels = df[budget].to_numpy()
        else:  # a store's runs keep imported extra columns and tags in dicts
            for holder in ("extra", "tags"):
                if holder in df.columns:
                    found = df[holder].map(lambda t: t.get(budget) if isinstance(t, dict)
                                           else None).to_numpy()
                    if not pd.isna(found).any():
                        labels = found
                        break
        if labels is None or pd.isna(labels).any():
            raise ParameterError(f"budget {budget!r} is neither a column, an extra column nor a "
                                 "tag of every run", "budget")
    group, values = group_budgets(c_all, labels, tol_dex)
    warnings: list[str] = []
    checks = []
    if given_c:
        checks.append(check_flops(n_all, d_all, c_all, column=(columns or {}).get("C") or
                                  frame.attrs.get("source_columns", {}).get("C", "C"),
                                  flop_convention=flop_convention))
    if labels is not None and np.isfinite(pd.to_numeric(pd.Series(labels), errors="coerce")).all():
        checks.append(check_flops(n_all, d_all, values[group], column=budget, what="budget",
                                  flop_convention=flop_convention))
    for check in checks:
        warnings += check.warnings
        notes += check.notes
    if labels is None:
        notes.append(f"runs grouped into {len(values)} budgets by C (within {tol_dex:g} decades)")
        spread = np.array([c_all[group == g].max() / c_all[group == g].min() for g in range(len(values))])
        if spread.size and spread.max() > PSEUDO_SPREAD:  # no budget: nothing to warn of
            worst = int(np.argmax(spread))
            warnings.append(
                f"the runs' compute is scattered, not on IsoFLOP budgets: grouped by C into "
                f"{len(values)} pseudo-budgets, compute varies by up to {spread.max() - 1:.0%} inside "
                f"one (C={values[worst]:.3g}; {int((spread > PSEUDO_SPREAD).sum())} budgets over "
                f"{PSEUDO_SPREAD - 1:.0%}). An IsoFLOP profile assumes one compute per budget, so a "
                "vertex here mixes model size with compute; give a budget column, or trust a loss-law "
                "fit (Approach 3) for such runs")
    if method == "akima":
        notes.append("Approach 2 by Akima interpolation of ln loss against ln N (Porian et al. "
                     "2024), minimum on a grid of 25 points per sampled interval")

    rng = np.random.default_rng(seed)
    budgets: list[BudgetFit] = []
    # per budget: full-data fit in row 0, resamples in rows 1..K
    k = max(bootstrap, 0)
    v_opt = np.full((k + 1, len(values)), np.nan)  # ln N_opt (Approach 2)
    best_n = np.full((k + 1, len(values)), np.nan)  # ln N, ln D, ln C of the best run (Approach 1)
    best_d = np.full_like(best_n, np.nan)
    best_c = np.full_like(best_n, np.nan)
    ssr, dof = 0.0, 0
    skipped1: list[str] = []
    skipped_edge: list[str] = []
    for g, c in enumerate(values):
        idx = np.flatnonzero(group == g)
        x, y = np.log(n_all[idx]), y_all[idx]
        # resampling within the budget keeps the design: every resample has the same budgets
        w = np.vstack([np.ones((1, len(idx))), bootstrap_weights(len(idx), k, rng)])
        coef = _parabolas(x, y, w)
        masked = np.where(w > 0, x[None, :], np.nan)
        lo, hi = np.nanmin(masked, axis=1), np.nanmax(masked, axis=1)
        if method == "akima":
            xv, yv, status = _akima_minima(x, y, w)
        else:
            xv, status = _vertex(coef, lo, hi)
            yv = np.full(len(w), np.nan)
        v_opt[:, g] = xv
        sizes = _n_sizes(x, w)
        pick = np.argmin(np.where(w > 0, y[None, :], np.inf), axis=1)
        # Approach 1 uses a budget (in the data and in each resample) only with >= 3 sizes and
        # a best run strictly inside the sampled sizes: a best run at an edge is a bound on the
        # optimum, not an estimate of it (Approach 2 likewise drops a profile whose minimum is
        # outside the sampled range). Kept, a censored budget drags the exponent: on Porian et
        # al.'s rw_base_long_kaplan_attention_train the smallest budget's best run is the
        # smallest model, and a fell to 0.669 [0.594, 0.694] (published 0.717, by Akima).
        interior = (x[pick] > lo) & (x[pick] < hi)
        use1 = (sizes >= MIN_SIZES) & interior
        best_n[:, g] = np.where(use1, x[pick], np.nan)
        best_d[:, g] = np.where(use1, np.log(d_all[idx][pick]), np.nan)
        best_c[:, g] = np.where(use1, np.log(c_all[idx][pick]), np.nan)
        n_sizes = int(sizes[0])
        b = BudgetFit(C=float(c), n_runs=len(idx), N_range=(float(n_all[idx].min()), float(n_all[idx].max())),
                      coef=tuple(float(v) for v in coef[0]), status="ok" if status[0] == 0 else _WHY[int(status[0])],
                      best={"N": float(n_all[idx][pick[0]]), "D": float(d_all[idx][pick[0]]),
                            "C": float(c_all[idx][pick[0]]), "loss": float(y[pick[0]]),
                            "run_id": ids[idx[pick[0]]]},
                      run_ids=tuple(ids[i] for i in idx), n_sizes=n_sizes,
                      approach1_status=(
                          f"{n_sizes} model size{'s' if n_sizes != 1 else ''} (needs {MIN_SIZES})"
                          if n_sizes < MIN_SIZES else "ok" if interior[0] else
                          f"best run is the {'smallest' if x[pick[0]] == lo[0] else 'largest'} "
                          "model sampled"))
        if method == "akima":
            b.coef = (float("nan"),) * 3
        e2, m = _pseudo_residuals(x, y)
        ssr, dof = ssr + e2, dof + m
        if b.ok:
            b.N_opt = float(np.exp(xv[0]))
            b.D_opt = float(c / (6.0 * b.N_opt))
            b.loss_opt = float(b.loss_at(b.N_opt)) if method == "parabola" else float(yv[0])
            b.gap = float(b.best["loss"] - b.loss_opt)
        else:
            warnings.append(f"budget C={c:.3g} ({len(idx)} runs) excluded from Approach 2: {b.status}")
        if n_sizes < MIN_SIZES:
            skipped1.append(f"C={c:.3g}")
        elif not interior[0]:
            edge = "smallest" if x[pick[0]] == x.min() else "largest"
            skipped_edge.append(f"C={c:.3g} ({edge})")
        budgets.append(b)
    if skipped1:
        warnings.append(f"Approach 1 skips {len(skipped1)} of {len(values)} budgets with fewer than "
                        f"{MIN_SIZES} model sizes ({', '.join(skipped1[:8])}"
                        f"{' ...' if len(skipped1) > 8 else ''}): their best run is an edge of "
                        "what was sampled, not an optimum")
    if skipped_edge:
        warnings.append(f"Approach 1 skips {len(skipped_edge)} of {len(values)} budgets whose best "
                        f"run is the smallest or largest model sampled ({', '.join(skipped_edge[:8])}"
                        f"{' ...' if len(skipped_edge) > 8 else ''}): the optimum may lie outside "
                        "the sampled sizes, so that run bounds it rather than estimates it")
    noise = float(np.sqrt(ssr / dof)) if dof > 0 else float("nan")
    if np.isfinite(noise):
        notes.append(f"run-to-run noise of the loss, from neighbouring sizes within budgets: {noise:.3g}")
    if method == "parabola" and np.isfinite(noise):
        for b in budgets:
            if b.ok and b.gap > GAP_NOISE * noise:
                warnings.append(
                    f"budget C={b.C:.3g}: the parabola's vertex (loss {b.loss_opt:.4g}) is "
                    f"{b.gap:.3g} below the best observed run ({b.best['loss']:.4g}), more than "
                    f"{GAP_NOISE:g}x the noise ({noise:.2g}): a parabola does not describe this "
                    "IsoFLOP slice; its N_opt is suspect (try the akima method)")

    log_c = np.log(values)[None, :]
    a2 = _allocation(2, np.broadcast_to(log_c, v_opt.shape), v_opt,
                     np.log(values)[None, :] - np.log(6.0) - v_opt, level)
    a1 = _allocation(1, best_c, best_n, best_d, level)
    if a2 is None and a1 is None:
        reasons = "; ".join(f"C={b.C:.3g}: {b.status}" for b in budgets if not b.ok) or "only one budget"
        raise NotIdentifiable(
            f"IsoFLOP needs at least 2 compute budgets with an interior loss minimum (and 3 "
            f"model sizes); found {len(values)} budget(s) ({reasons})"
        )
    if a2 is None:
        warnings.append("Approach 2 needs at least 2 budgets whose profile has an interior minimum")
    if a1 is None:
        warnings.append(f"Approach 1 needs at least 2 budgets with {MIN_SIZES} or more model sizes "
                        "and a best run inside them; it is not reported")
    for check in checks:
        why = d_exponent_note(check, None if a1 is None else a1.b, None if a2 is None else a2.b)
        if why:
            notes.append(why)
            break
    for a in (a1, a2):
        if a is not None and a.draws is not None:
            failed = float(np.mean(~np.isfinite(a.draws[:, 0])))
            if failed > 0.05:
                warnings.append(f"Approach {a.approach}: {failed:.0%} of resamples left fewer than 2 usable budgets")
    return IsoFlopResult(budgets=budgets, approach1=a1, approach2=a2, run_ids=tuple(ids),
                         budget_of=tuple(int(g) for g in group), warnings=warnings, level=level,
                         notes=notes, source=source, method=method, noise=noise)


def _pseudo_residuals(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Run-to-run noise on one IsoFLOP slice, without a model of the profile: how far each run
    lies from the cubic through its two neighbours on either side in ln N (pseudo-residuals in
    the manner of Gasser, Sroka & Jennen-Steinmetz 1986, one order higher), scaled so that
    noise of std sigma gives sigma^2 on average. A smooth profile contributes only its fourth
    derivative; a parabola's residuals would count its lack of fit as noise (measured: 0.05 on
    a noise-free, steeply asymmetric slice, against 0.001 here; 0.0077 for noise of 0.009).
    ``(sum of scaled squares, count)``; runs at one size are averaged first."""
    values, inverse = np.unique(x, return_inverse=True)
    m = len(values)
    if m < 5:
        return 0.0, 0
    mean = np.bincount(inverse, weights=y) / np.bincount(inverse)
    total = 0.0
    for i in range(2, m - 2):
        nb = np.array([i - 2, i - 1, i + 1, i + 2])
        xs = values[nb]
        lag = np.array([np.prod([(values[i] - xs[q]) / (xs[p] - xs[q]) for q in range(4) if q != p])
                        for p in range(4)])
        e = mean[i] - lag @ mean[nb]
        total += float(e * e / (1.0 + lag @ lag))
    return total, m - 4


def _n_sizes(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Distinct model sizes with positive weight, per weight row."""
    inverse = np.unique(x, return_inverse=True)[1]
    return ((w > 0) @ np.eye(inverse.max() + 1)[inverse] > 0).sum(axis=1)


def _akima_minima(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per weight row: ``ln N`` and loss at the minimum of an Akima interpolation of ``ln loss``
    against ``ln N`` (runs at one size averaged with their weights), and a status code as
    :func:`_vertex` gives (0 ok, 2 minimum at an end of the sampled sizes, 3 < 3 sizes).

    The grid is geometric in N with 25 points per interval between sampled sizes, and a minimum
    at either end of it is no interior optimum (as Porian et al.'s ``interp_flop`` decides).
    """
    from scipy.interpolate import Akima1DInterpolator

    values, inverse = np.unique(x, return_inverse=True)
    onehot = np.eye(len(values))[inverse]  # (n, m)
    wsum = w @ onehot  # (K, m)
    with np.errstate(all="ignore"):
        mean_log = (w * np.log(y)[None, :]) @ onehot / wsum
    xv = np.full(len(w), np.nan)
    yv = np.full(len(w), np.nan)
    status = np.full(len(w), 3)
    for r in range(len(w)):
        present = wsum[r] > 0
        if present.sum() < MIN_SIZES:
            continue
        xs, ys = values[present], mean_log[r, present]
        grid = np.linspace(xs[0], xs[-1], (len(xs) - 1) * AKIMA_POINTS)
        curve = Akima1DInterpolator(xs, ys)(grid)
        i = int(np.argmin(curve))
        if i in (0, len(grid) - 1):
            status[r] = 2
            continue
        xv[r], yv[r], status[r] = grid[i], float(np.exp(curve[i])), 0
    return xv, yv, status


def _allocation(
    approach: int, log_c: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, level: float
) -> AllocationLaw | None:
    """Power laws in log-log for the full data (row 0) and each resample (rows 1..)."""
    a, kn = _loglog(log_c, log_n)
    b, kd = _loglog(log_c, np.where(np.isfinite(log_n), log_d, np.nan))
    if not np.isfinite(a[0]):
        return None
    draws = np.stack([a[1:], b[1:], kn[1:], kd[1:]], axis=1) if len(a) > 1 else None
    return AllocationLaw(approach=approach, a=float(a[0]), b=float(b[0]), log_kn=float(kn[0]),
                         log_kd=float(kd[0]), n_budgets=int(np.isfinite(log_n[0]).sum()),
                         draws=draws, level=level)
