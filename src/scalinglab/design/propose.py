"""The next runs: which (N, D) most narrow the target's interval per FLOP, and why.

:func:`propose` takes a fitted law, a target budget, a set of candidate runs with their costs
and a spend, and returns a :class:`Proposal`: the runs chosen greedily by expected reduction of
the target's spread per FLOP (:mod:`scalinglab.design.spread`), each figure's interval now and
the interval expected after the runs, and whether the parameters these runs do not yet identify
would be identified by them. The candidates are anything with an (N, D): a log grid for a
simulation (:class:`~scalinglab.design.layouts.FlopSpace`), the shapes and step counts a sweep
can realise (:mod:`scalinglab.design.sweeps`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from scalinglab.design.layouts import near_existing
from scalinglab.design.spread import TARGET_FIGURES, Choice, Spread
from scalinglab.design.targets import check_allocatable, check_budget
from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.fit.identify import MAX_DECADES, MAX_EXPONENT_WIDTH
from scalinglab.fit.result import FitResult
from scalinglab.results import Result
from scalinglab.stats import Estimate
from scalinglab.summary import Summary, Table, format_number

Criterion = Literal["draws", "fisher"]
#: what a design aims at by default: L(target) and N_opt(target) count equally
DEFAULT_AIM: Mapping[str, float] = {"loss": 1.0, "N_opt": 1.0}
#: a pick that removes less than this share of the objective is not worth its FLOPs
MIN_GAIN = 1e-4


@dataclass(frozen=True)
class ProposedRun:
    """One proposed run: its position, its cost and the share of the objective it removes."""

    N: float
    D: float
    gain: float
    index: int = -1

    @property
    def C(self) -> float:
        return 6.0 * self.N * self.D

    @property
    def tokens_per_param(self) -> float:
        return self.D / self.N

    def to_dict(self) -> dict[str, Any]:
        return {"N": self.N, "D": self.D, "C": self.C, "tokens_per_param": self.tokens_per_param,
                "gain": self.gain}


@dataclass(repr=False)
class Proposal(Result):
    """The next runs of a study and the intervals they are expected to leave.

    ``before`` holds each figure at the target (``loss``, ``N_opt``, ``D_opt``) and each law
    parameter as estimated now; ``after`` the same with the interval expected once ``runs`` are
    added (the point estimate kept, each side of the interval scaled by the expected shrinking
    of the spread, in log space).
    """

    kind: ClassVar[str] = "design_proposal"

    target: float
    runs: list[ProposedRun]
    before: dict[str, Estimate]
    after: dict[str, Estimate]
    spend: float
    criterion: str
    aim: dict[str, float]
    noise_std: float
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    law: str = ""
    unidentified: tuple[str, ...] = ()
    #: parameters not identified now that these runs are expected to identify
    identified_after: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def cost(self) -> float:
        return float(sum(r.C for r in self.runs))

    def width(self, name: str, after: bool = False) -> float:
        """Relative width ``(hi - lo) / value`` of a figure's interval (NaN without one)."""
        est = (self.after if after else self.before).get(name)
        if est is None or est.ci is None or not est.value:
            return float("nan")
        return float((est.ci[1] - est.ci[0]) / abs(est.value))

    def reason(self) -> str:
        """One line: what the runs are expected to do to the target's interval."""
        parts = []
        for name in TARGET_FIGURES:
            if name in self.before and self.aim.get(name, 0) > 0:
                parts.append(f"{name} at C={format_number(self.target)}: "
                             f"{_iv(self.before[name])} -> expected {_iv(self.after[name])}")
        spend = f"{len(self.runs)} runs, {self.cost:.3g} of {self.spend:.3g} FLOPs"
        return f"{spend}; " + "; ".join(parts)

    # -- Result ------------------------------------------------------------------------------

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        return {
            "kind": self.kind, "law": self.law, "target": self.target, "spend": self.spend,
            "cost": self.cost, "criterion": self.criterion, "aim": dict(self.aim),
            "noise_std": self.noise_std, "level": self.level,
            "runs": [r.to_dict() for r in self.runs],
            "before": {k: v.to_dict() for k, v in self.before.items()},
            "after": {k: v.to_dict() for k, v in self.after.items()},
            "unidentified": list(self.unidentified),
            "identified_after": list(self.identified_after),
            "reason": self.reason(), "run_ids": list(self.run_ids),
            "warnings": list(self.warnings), "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Proposal:
        level = float(data.get("level", 0.95))
        return cls(
            target=float(data["target"]),
            runs=[ProposedRun(float(r["N"]), float(r["D"]), float(r.get("gain", 0.0)))
                  for r in data.get("runs", [])],
            before={k: Estimate.from_dict(v, level) for k, v in data.get("before", {}).items()},
            after={k: Estimate.from_dict(v, level) for k, v in data.get("after", {}).items()},
            spend=float(data["spend"]), criterion=str(data.get("criterion", "")),
            aim={k: float(v) for k, v in data.get("aim", {}).items()},
            noise_std=float(data.get("noise_std", float("nan"))),
            run_ids=tuple(data.get("run_ids", ())), level=level, law=str(data.get("law", "")),
            unidentified=tuple(data.get("unidentified", ())),
            identified_after=tuple(data.get("identified_after", ())),
            warnings=list(data.get("warnings", [])), notes=list(data.get("notes", [])),
        )

    def summary(self) -> Summary:
        pct = f"{round(self.level * 100)}% interval"
        runs = Table("proposed runs", ["N", "D", "C (FLOPs)", "tokens/param", "share of spread removed"])
        for r in self.runs:
            runs.add_row(r.N, r.D, r.C, r.tokens_per_param, f"{r.gain:.1%}")
        figs = Table(f"at C = {format_number(self.target)}", ["figure", "now", pct,
                                                               f"expected {pct} after"])
        for name, est in self.before.items():
            after = self.after.get(name)
            figs.add_row(name, est.value if est.identified else "not identified",
                         _iv(est), _iv(after) if after is not None else "-")
        facts = [("spend", f"{self.cost:.4g} of {self.spend:.4g} FLOPs in {len(self.runs)} runs"),
                 ("criterion", f"expected reduction of the variance of "
                  f"{' and '.join('log ' + k for k, w in self.aim.items() if w > 0)} per FLOP, "
                  f"from the {self.criterion}"),
                 ("noise of a new run", f"{self.noise_std:.3g} (std of log loss, effective)")]
        return Summary(title=f"next runs for C = {format_number(self.target)} ({self.law}, "
                       f"{self.n_runs} runs so far)", tables=[runs, figs], facts=facts,
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def _repr_items(self) -> list[str]:
        return [f"{len(self.runs)} proposed", f"{self.cost:.3g} FLOPs",
                f"loss width {self.width('loss'):.3g} -> {self.width('loss', after=True):.3g}"]


def _iv(est: Estimate | None) -> str:
    if est is None or est.ci is None:
        return "-"
    return f"[{format_number(est.ci[0])}, {format_number(est.ci[1])}]"


def _scaled(est: Estimate, ratio: float, log: bool) -> Estimate:
    """``est`` with each side of its interval scaled by ``ratio`` about the estimate."""
    if est.ci is None or not np.isfinite(ratio):
        return est
    v, (lo, hi) = est.value, est.ci
    if log and v > 0 and lo > 0 and hi > 0:
        lo, hi = v * (lo / v) ** ratio, v * (hi / v) ** ratio
    else:
        lo, hi = v - (v - lo) * ratio, v + (hi - v) * ratio
    return Estimate(v, float(lo), float(hi), est.level, est.identified, est.note)


def _identified_after(fit: FitResult, spread: Spread, choice: Choice) -> tuple[str, ...]:
    """Unidentified parameters whose expected interval after the runs meets the identification
    rule of the fit (:data:`~scalinglab.fit.loss.MAX_DECADES`, ``MAX_EXPONENT_WIDTH``)."""
    out = []
    ci = fit.ci
    for i, name in enumerate(fit.law.param_names):
        if name not in fit.unidentified or name not in ci:
            continue
        lo, hi = ci[name]
        r = choice.ratio(name)
        if not np.isfinite(r):
            continue
        is_log = spread.log_scale[len(TARGET_FIGURES) + i]
        if is_log and lo > 0 and hi > 0:
            if np.log10(hi / lo) * r <= MAX_DECADES:
                out.append(name)
        elif not is_log and (hi - lo) * r <= MAX_EXPONENT_WIDTH:
            out.append(name)
    return tuple(out)


def spread_of(fit: FitResult, target: float, cand_N: np.ndarray, cand_D: np.ndarray,
              run_N: np.ndarray, run_D: np.ndarray, aim: Mapping[str, float] = DEFAULT_AIM,
              criterion: Criterion = "draws") -> Spread:
    """The fit's joint spread over the target figures and the candidates (draws, else Fisher)."""
    if criterion not in ("draws", "fisher"):
        raise ParameterError(f"criterion must be 'draws' or 'fisher', not {criterion!r}",
                             "criterion")
    if criterion == "draws":
        try:
            return Spread.from_draws(fit, target, cand_N, cand_D, aim)
        except NotIdentifiable as exc:
            spread = Spread.from_fisher(fit, run_N, run_D, target, cand_N, cand_D, aim)
            spread.notes.append(f"designed from the Fisher information instead of the draws: {exc}")
            return spread
    return Spread.from_fisher(fit, run_N, run_D, target, cand_N, cand_D, aim)


def propose(
    fit: FitResult,
    runs: tuple[Sequence[float], Sequence[float]],
    target: float,
    spend: float,
    candidates: tuple[np.ndarray, np.ndarray],
    *,
    k: int = 4,
    price: float | None = None,
    aim: Mapping[str, float] = DEFAULT_AIM,
    criterion: Criterion = "draws",
    cost: np.ndarray | None = None,
) -> Proposal:
    """Choose up to ``k`` of ``candidates`` (arrays N, D) costing at most ``spend`` FLOPs in all.

    ``runs`` are the (N, D) of the runs ``fit`` was fitted on. Each pick maximises the expected
    reduction of ``sum_f aim[f] Var[log f] / Var_now[log f]`` (``f`` among ``loss`` and ``N_opt``
    at ``target``, or any law parameter) per FLOP, where a run costs its compute ``6ND`` (or
    ``cost``) plus ``price``: by default ``spend / k``, the share of the spend one of the ``k``
    runs stands for, so that a run too small to teach anything is not preferred for being cheap.
    Candidates next to a run already made are left out. A proposal with no runs says why in its
    warnings.
    """
    check_allocatable(fit.law)
    target = check_budget(target, "target")
    spend = check_budget(spend, "spend")
    if int(k) != k or k < 1:
        raise ParameterError(f"k must be a whole number >= 1, not {k}", "k")
    cand_N, cand_D = (np.asarray(a, dtype=float).ravel() for a in candidates)
    if len(cand_N) != len(cand_D) or not len(cand_N):
        raise ParameterError("candidates must be two equal, non-empty arrays (N, D)", "candidates")
    run_N, run_D = (np.asarray(a, dtype=float).ravel() for a in runs)
    if len(run_N) != len(run_D) or not len(run_N):
        raise ParameterError("runs must be two equal, non-empty arrays (N, D)", "runs")
    c = 6.0 * cand_N * cand_D if cost is None else np.asarray(cost, dtype=float)
    free = ~near_existing(cand_N, cand_D, run_N, run_D)
    spread = spread_of(fit, target, cand_N, cand_D, run_N, run_D, aim, criterion)
    choice = spread.choose(c, spend, int(k), price=spend / k if price is None else float(price),
                           available=free, min_gain=MIN_GAIN)
    chosen = [ProposedRun(float(cand_N[j]), float(cand_D[j]), g, j)
              for j, g in zip(choice.picks, choice.gains, strict=True)]
    before = _before(fit, target)
    after = {}
    for name, est in before.items():
        key = "N_opt" if name == "D_opt" else name  # log D_opt = log(C/6) - log N_opt
        is_log = spread.log_scale[spread.names.index(key)] if key in spread.names else True
        after[name] = _scaled(est, choice.ratio(key), is_log)
    warnings, notes = [], list(spread.notes)
    if not chosen:
        smallest = float(np.min(c[free])) if free.any() else float("nan")
        warnings.append(f"no run fits the spend: the smallest candidate costs {smallest:.3g} "
                        f"FLOPs of {spend:.3g}" if smallest > spend else
                        "no candidate run is expected to narrow the interval")
    ident = _identified_after(fit, spread, choice)
    still = [p for p in fit.unidentified if p not in ident]
    if fit.unidentified:
        notes.append(("these runs are expected to identify " + ", ".join(ident) + "; " if ident
                      else "") + (f"{', '.join(still)} would remain unidentified" if still else
                                  "every parameter would then be identified"))
    return Proposal(target=target, runs=chosen, before=before, after=after, spend=spend,
                    criterion=spread.source, aim=dict(aim),
                    noise_std=float(np.sqrt(spread.noise_var)), run_ids=tuple(fit.run_ids),
                    level=fit.level, law=fit.law.name, unidentified=tuple(fit.unidentified),
                    identified_after=ident, warnings=warnings, notes=notes)


def _before(fit: FitResult, target: float) -> dict[str, Estimate]:
    """Each figure at the target and each parameter, as the fit states them now."""
    opt = fit.optimum(target)
    out = {"loss": opt.loss, "N_opt": opt.N, "D_opt": opt.D}
    out |= fit.estimates()
    return out
