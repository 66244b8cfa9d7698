"""A bigger model or more samples? Coverage at a fixed inference budget per problem.

Each option is a model with its fitted coverage law (:class:`~scalinglab.testtime.coverage.
CoverageFit`) and a cost model. A sample of a model with ``N`` parameters costs about ``2 N``
FLOPs per token (the forward pass; Kaplan et al. 2020), for the prompt's tokens and the
generated ones. With ``share_prompt`` (the default) the prompt is processed once and its KV cache
serves every sample, as in Large Language Monkeys' batched sampling, so k samples cost
``2 N (prompt + k generated)``; without it ``2 N k (prompt + generated)``. The budget then buys
``k`` samples of each model, and the comparison is of ``coverage(k)`` with intervals.

Not modelled: attention FLOPs and memory bandwidth, which Kinetics (Sadhukhan et al. 2025)
shows can dominate the cost of long generations; pass ``flops_per_token`` to override ``2 N``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from scalinglab.errors import ParameterError
from scalinglab.results import Result
from scalinglab.stats import Estimate
from scalinglab.summary import Summary, Table
from scalinglab.testtime.coverage import CoverageFit, _log_law


@dataclass(frozen=True)
class SampleCost:
    """Inference FLOPs of drawing samples from a model for one problem."""

    params: float
    prompt_tokens: float
    generated_tokens: float
    share_prompt: bool = True
    flops_per_token: float | None = None

    def __post_init__(self) -> None:
        if not (self.params > 0 and self.generated_tokens > 0 and self.prompt_tokens >= 0):
            raise ParameterError("params and generated_tokens must be positive and prompt_tokens "
                                 "at least 0", "params", "generated_tokens", "prompt_tokens")

    @property
    def per_token(self) -> float:
        return self.flops_per_token if self.flops_per_token is not None else 2.0 * self.params

    def flops(self, k: Any) -> np.ndarray:
        k = np.asarray(k, dtype=float)
        if self.share_prompt:
            return self.per_token * (self.prompt_tokens + k * self.generated_tokens)
        return self.per_token * k * (self.prompt_tokens + self.generated_tokens)

    def samples_within(self, budget: Any) -> np.ndarray:
        """Whole samples per problem that ``budget`` FLOPs buy (0 where not even one)."""
        b = np.asarray(budget, dtype=float) / self.per_token
        k = (b - self.prompt_tokens) / self.generated_tokens if self.share_prompt else \
            b / (self.prompt_tokens + self.generated_tokens)
        # a relative nudge so that a budget of exactly k samples (rounded down in floating point) buys k
        return np.maximum(np.floor(k * (1 + 1e-12)), 0).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "prompt_tokens": self.prompt_tokens,
                "generated_tokens": self.generated_tokens, "share_prompt": self.share_prompt,
                "flops_per_token": self.flops_per_token}


@dataclass(frozen=True)
class Option:
    """A model to sample from: its name, coverage law and cost."""

    name: str
    coverage: CoverageFit
    cost: SampleCost


@dataclass(repr=False)
class BudgetComparison(Result):
    """Coverage of each option at each budget. ``rows[i]`` is one budget: per option ``k``,
    ``coverage`` (Estimate, None when the budget buys no sample), ``extrapolated``; the best
    option by point estimate and ``p_best``, the share of paired bootstrap draws in which it
    is best (draws of different models are independent, so they are paired at random)."""

    kind: ClassVar[str] = "budget_comparison"

    options: list[Option]
    budgets: np.ndarray
    rows: list[dict[str, Any]]
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def curve(self, budgets: Any) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per option ``(k, point, lo, hi)`` of coverage over ``budgets``, for figures (NaN where
        a budget buys no sample)."""
        out = {}
        for o in self.options:
            k = o.cost.samples_within(budgets)
            point, lo, hi = (np.full(k.shape, np.nan) for _ in range(3))
            ok = k >= 1
            if ok.any():
                point[ok], lo[ok], hi[ok] = o.coverage.curve(k[ok])
            out[o.name] = (k, point, lo, hi)
        return out

    def _repr_items(self) -> list[str]:
        return [f"{len(self.options)} options at {len(self.budgets)} budgets"]

    def __repr__(self) -> str:
        return f"<BudgetComparison {', '.join(self._repr_items())}>"

    def _interval_parts(self) -> dict[str, Result]:
        return {o.name: o.coverage for o in self.options}  # "<option>.<parameter>"

    def summary(self) -> Summary:
        cols = ["budget (FLOPs/problem)"]
        for o in self.options:
            cols += [f"{o.name}: k", f"{o.name}: coverage"]
        cols += ["best", "share of draws best"]
        t = Table(f"coverage at a fixed inference budget ({self.level:.0%} intervals)", cols)
        for r in self.rows:
            cells: list[Any] = [r["budget"]]
            for o in self.options:
                e = r["options"][o.name]
                cells += [e["k"], e["coverage"] if e["coverage"] is not None else "no sample"]
            cells += [r["best"] or "-", r["p_best"]]
            t.add_row(*cells)
        costs = Table("cost model", ["option", "parameters", "prompt tokens", "generated tokens",
                                     "prompt shared", "FLOPs per token"])
        for o in self.options:
            costs.add_row(o.name, o.cost.params, o.cost.prompt_tokens, o.cost.generated_tokens,
                          "yes" if o.cost.share_prompt else "no", o.cost.per_token)
        return Summary(title="a bigger model or more samples?", tables=[t, costs],
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        rows = []
        for r in self.rows:
            rows.append({"budget": r["budget"], "best": r["best"], "p_best": r["p_best"],
                         "options": {name: {"k": e["k"], "extrapolated": e["extrapolated"],
                                            "coverage": None if e["coverage"] is None else e["coverage"].to_dict()}
                                     for name, e in r["options"].items()}})
        return {"kind": self.kind, "level": self.level,
                "options": [{"name": o.name, "cost": o.cost.to_dict(),
                             "coverage": o.coverage.to_dict(include_draws)} for o in self.options],
                "rows": rows, "warnings": list(self.warnings), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BudgetComparison:
        level = float(data.get("level", 0.95))
        options = [Option(o["name"], CoverageFit.from_dict(o["coverage"]),
                          SampleCost(**o["cost"])) for o in data["options"]]
        rows = []
        for r in data["rows"]:
            rows.append({"budget": r["budget"], "best": r["best"], "p_best": r["p_best"],
                         "options": {n: {"k": e["k"], "extrapolated": e["extrapolated"],
                                         "coverage": None if e["coverage"] is None
                                         else Estimate.from_dict(e["coverage"], level)}
                                     for n, e in r["options"].items()}})
        return cls(options=options, budgets=np.array([r["budget"] for r in rows], float), rows=rows,
                   level=level, warnings=list(data.get("warnings", [])), notes=list(data.get("notes", [])))


def compare_at_budget(
    options: Sequence[Option], budgets: Sequence[float] | float, *, seed: int = 0,
) -> BudgetComparison:
    """For each budget (FLOPs per problem), how many samples each option affords and the coverage
    they reach; which option is best, and in what share of bootstrap draws."""
    if len(options) < 1:
        raise ParameterError("give at least one option", "options")
    names = [o.name for o in options]
    if len(set(names)) != len(names):
        raise ParameterError(f"option names must differ: {names}", "options")
    budgets_arr = np.atleast_1d(np.asarray(budgets, dtype=float))
    if np.any(~np.isfinite(budgets_arr) | (budgets_arr <= 0)):
        raise ParameterError("budgets must be positive numbers of FLOPs", "budgets")
    level = options[0].coverage.level
    rng = np.random.default_rng(seed)
    n_draws = min((len(o.coverage.draws) for o in options if o.coverage.draws is not None), default=0)
    pick = {o.name: (rng.permutation(len(o.coverage.draws))[:n_draws] if o.coverage.draws is not None
                     else None) for o in options}
    rows = []
    warnings: list[str] = []
    for b in budgets_arr:
        entry: dict[str, Any] = {"budget": float(b), "options": {}}
        points, draws = {}, {}
        for o in options:
            k = int(o.cost.samples_within(b))
            if k < 1:
                entry["options"][o.name] = {"k": 0, "coverage": None, "extrapolated": False}
                continue
            est = o.coverage.estimate(float(k))
            entry["options"][o.name] = {"k": k, "coverage": est, "extrapolated": k > o.coverage.max_k}
            points[o.name] = est.value
            if n_draws and pick[o.name] is not None:
                draws[o.name] = np.exp(_log_law(o.coverage.draws[pick[o.name]], np.array([float(k)])))[:, 0]
        best = max(points, key=lambda n: points[n]) if points else None
        p_best = None
        if best is not None and len(draws) == len(points) and n_draws:
            stacked = np.column_stack([draws[n] for n in points])
            ok = np.all(np.isfinite(stacked), axis=1)
            if ok.any():
                winner = np.array(list(points))[np.argmax(stacked[ok], axis=1)]
                p_best = float(np.mean(winner == best))
        entry["best"], entry["p_best"] = best, p_best
        rows.append(entry)
    extrap = sorted({n for r in rows for n, e in r["options"].items() if e["extrapolated"]})
    if extrap:
        warnings.append(f"{', '.join(extrap)}: some budgets buy more samples than were observed; their "
                        "coverage is the law's extrapolation")
    return BudgetComparison(options=list(options), budgets=budgets_arr, rows=rows, level=level,
                            warnings=warnings,
                            notes=["FLOPs per sample: 2N per token (forward pass only; attention and "
                                   "memory traffic not modelled)"] if any(
                                       o.cost.flops_per_token is None for o in options) else [])


__all__ = ["BudgetComparison", "Option", "SampleCost", "compare_at_budget"]
