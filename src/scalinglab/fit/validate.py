"""Will it extrapolate? Rolling-forward evaluation of a loss law, and choosing among laws by it.

A law is fitted to predict runs bigger than the ones it saw, so that is how it is judged: for
each compute level in turn, fit on the runs at or below it and predict every run above it
(Porian et al. 2024 and Gadre et al. 2024 evaluate their laws this way). The errors are reported
by distance in compute (decades between the last fitted budget and the predicted run), with how
often the observed loss fell inside the parameter band (where the law lies) and inside the
new-run band (where a new run's loss falls: parameters plus run-to-run noise). A law that is
accurate one decade out but drifts two decades out says so here, not after the big run.

:func:`select_laws` runs the same evaluation for several candidate laws on the same cut-offs and
ranks them by their forward error, saying which to trust and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.fit.isoflop import DEFAULT_TOL_DEX, group_budgets
from scalinglab.laws.base import Law
from scalinglab.laws.registry import get_law
from scalinglab.results import Result
from scalinglab.summary import Summary, Table

#: distance bins (decades of compute beyond the last fitted budget)
DISTANCE_BINS = (0.0, 0.5, 1.0, 2.0, np.inf)


@dataclass(repr=False)
class RollingForward(Result):
    """Forward predictions of one law at successive compute cut-offs."""

    kind: ClassVar[str] = "rolling_forward"

    law: str
    formula: str
    #: one row per forward prediction (cutoff, run_id, C, decades, observed, predicted, bands)
    predictions: list[dict[str, Any]]
    #: one row per cut-off (cutoff, n_train, n_test, status)
    steps: list[dict[str, Any]]
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""
    n_params: int = 0
    #: the variable rolled forward in: C (compute, the default), N or D
    by: str = "C"

    @property
    def errors(self) -> np.ndarray:
        return np.array([p["abs_rel_err"] for p in self.predictions], dtype=float)

    @property
    def mean_abs_rel_err(self) -> float:
        e = self.errors
        return float(e.mean()) if e.size else float("nan")

    def _coverage(self, lo: str, hi: str, rows: Sequence[Mapping[str, Any]]) -> float:
        inside = [r[lo] <= r["observed"] <= r[hi] for r in rows
                  if r.get(lo) is not None and np.isfinite(r[lo])]
        return float(np.mean(inside)) if inside else float("nan")

    def by_distance(self, bins: Sequence[float] = DISTANCE_BINS) -> list[dict[str, Any]]:
        """Error and interval coverage per band of distance in compute (decades)."""
        out = []
        for a, b in zip(bins[:-1], bins[1:], strict=True):
            rows = [p for p in self.predictions if a < p["decades"] <= b or (a == 0 and p["decades"] == 0)]
            if not rows:
                continue
            err = np.array([r["abs_rel_err"] for r in rows])
            out.append({"decades": [a, b], "n": len(rows), "mean_abs_rel_err": float(err.mean()),
                        "max_abs_rel_err": float(err.max()),
                        "inside_parameter_band": self._coverage("lo", "hi", rows),
                        "inside_new_run_band": self._coverage("new_lo", "new_hi", rows)})
        return out

    def farthest_error(self) -> float:
        """Mean error over the farthest half of the forward predictions (by distance)."""
        if not self.predictions:
            return float("nan")
        d = np.array([p["decades"] for p in self.predictions])
        far = d >= np.median(d)
        return float(self.errors[far].mean())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        return {"kind": self.kind, "law": self.law, "formula": self.formula, "level": self.level,
                "by": self.by,
                "n_params": self.n_params, "mean_abs_rel_err": self.mean_abs_rel_err,
                "farthest_half_abs_rel_err": self.farthest_error(),
                "by_distance": self.by_distance(), "steps": list(self.steps),
                "predictions": list(self.predictions), "warnings": list(self.warnings),
                "notes": list(self.notes), "source": self.source, "run_ids": list(self.run_ids)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RollingForward:
        return cls(law=str(d["law"]), formula=str(d.get("formula", "")),
                   predictions=[dict(p) for p in d.get("predictions", [])],
                   steps=[dict(s) for s in d.get("steps", [])],
                   run_ids=tuple(d.get("run_ids") or ()), level=float(d.get("level", 0.95)),
                   warnings=list(d.get("warnings", [])), notes=list(d.get("notes", [])),
                   source=str(d.get("source", "")), n_params=int(d.get("n_params", 0)),
                   by=str(d.get("by", "C")))

    def summary(self) -> Summary:
        pct = f"{round(self.level * 100)}%"
        what = {"C": "compute", "N": "model size", "D": "tokens"}[self.by]
        table = Table(f"rolling-forward error of {self.law} by distance in {what}",
                      [f"decades of {self.by} beyond the fit", "predictions", "mean |rel err|", "max |rel err|",
                       f"inside {pct} parameter band", f"inside {pct} new-run band"])
        for row in self.by_distance():
            a, b = row["decades"]
            table.add_row(f"({a:g}, {b:g}]", row["n"], f"{row['mean_abs_rel_err']:.2%}",
                          f"{row['max_abs_rel_err']:.2%}", _pct(row["inside_parameter_band"]),
                          _pct(row["inside_new_run_band"]))
        steps = Table("cut-offs", ["fitted up to C", "runs fitted", "runs predicted", "status"])
        for s in self.steps:
            steps.add_row(s["cutoff"], s["n_train"], s["n_test"], s["status"])
        steps.columns[0] = f"fitted up to {self.by}"
        facts = [("mean |rel err| of all forward predictions", f"{self.mean_abs_rel_err:.2%}"),
                 ("... of the farthest half", f"{self.farthest_error():.2%}")]
        return Summary(title=f"{self.law}: {self.formula} (rolling forward, {self.n_runs} runs"
                       + (f", {self.source}" if self.source else "") + ")",
                       tables=[table, steps], facts=facts, notes=list(self.notes),
                       warnings=list(self.warnings), data=self.to_dict())

    def _repr_items(self) -> list[str]:
        return [self.law, f"{len(self.steps)} cut-offs", f"mean |rel err| {self.mean_abs_rel_err:.2%}"]


def _pct(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.0%}"


def cutoff_budgets(C: np.ndarray, *, min_train: int = 3, steps: int = 6,
                   tol_dex: float = DEFAULT_TOL_DEX) -> tuple[np.ndarray, list[int]]:
    """Budget index per run and the cut-offs: fit on budgets ``< k``, predict ``>= k``, for up
    to ``steps`` values of k spread from ``min_train`` to the last budget."""
    group, values = group_budgets(C, None, tol_dex)
    ks = list(range(min_train, len(values)))
    if not ks:
        raise NotIdentifiable(f"rolling-forward evaluation needs more than {min_train} compute "
                              f"budgets to fit on and one to predict; the runs have {len(values)}")
    if len(ks) > steps:
        ks = sorted({ks[int(round(i))] for i in np.linspace(0, len(ks) - 1, steps)})
    return group, ks


def rolling_forward(
    law: Law | str,
    frame: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    bootstrap: int = 50,
    seed: int = 0,
    level: float = 0.95,
    min_train: int = 3,
    steps: int = 6,
    tol_dex: float = DEFAULT_TOL_DEX,
    source: str = "",
    by: str = "C",
    **fit_options: Any,
) -> RollingForward:
    """Fit ``law`` below each compute cut-off and predict the runs above it.

    Runs are grouped into budgets by C (within ``tol_dex`` decades); each of up to ``steps``
    cut-offs fits on the budgets below it (at least ``min_train``) and predicts every run above.
    ``by="N"`` rolls forward in model size instead (fit on the smaller models, predict the
    bigger ones, distance in decades of N): the question when the big run is a bigger model
    trained for as many tokens per parameter as the small ones.
    ``fit_options`` go to :func:`scalinglab.fit.loss.fit_law` (``tie``, ``fix``, ``loss``,
    ``weights``, ...). A cut-off whose runs cannot identify the law is reported and skipped.
    """
    from scalinglab.fit.loss import complete_columns, fit_law

    law = get_law(law)
    if "holdout_top" in fit_options:
        raise ParameterError("rolling-forward evaluation holds out by compute itself; do not "
                             "give holdout_top", "holdout_top")
    df, notes = complete_columns(frame, law.inputs, columns)
    if by not in ("C", "N", "D"):
        raise ParameterError(f"by must be C, N or D, not {by!r}", "by")
    if by not in df.columns or "C" not in df.columns:
        raise ParameterError(f"rolling-forward evaluation by {by} needs each run's {by} and compute "
                             "C (or N and D)", "by")
    if "run_id" not in df.columns:
        df = df.assign(run_id=[f"row-{i + 1}" for i in range(len(df))])
    group, ks = cutoff_budgets(df[by].to_numpy(float), min_train=min_train, steps=steps,
                               tol_dex=tol_dex)
    predictions: list[dict[str, Any]] = []
    step_rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    fitted_law = law
    for k in ks:
        train, test = df[group < k].reset_index(drop=True), df[group >= k].reset_index(drop=True)
        cutoff = float(train[by].max())
        try:
            fit = fit_law(law, train, bootstrap=bootstrap, seed=seed, level=level, source=source,
                          **fit_options)
        except NotIdentifiable as exc:
            step_rows.append({"cutoff": cutoff, "n_train": len(train), "n_test": len(test),
                              "status": f"skipped: {exc}"})
            continue
        fitted_law = fit.law
        inputs = {x: test[x].to_numpy(float) for x in law.inputs}
        pred, lo, hi = fit.predict_interval(**inputs)
        _, nlo, nhi = fit.predict_interval(new_run=True, **inputs)
        obs = test["loss"].to_numpy(float)
        for i in range(len(test)):
            predictions.append({
                "cutoff": cutoff, "run_id": str(test["run_id"].iloc[i]),
                "C": float(test["C"].iloc[i]), by: float(test[by].iloc[i]),
                "decades": float(np.log10(test[by].iloc[i] / cutoff)),
                "observed": float(obs[i]), "predicted": float(pred[i]),
                "lo": float(lo[i]), "hi": float(hi[i]), "new_lo": float(nlo[i]),
                "new_hi": float(nhi[i]), "abs_rel_err": float(abs(pred[i] - obs[i]) / obs[i])})
        status = "ok" if not fit.unidentified else "ok; not identified: " + ", ".join(fit.unidentified)
        step_rows.append({"cutoff": cutoff, "n_train": len(train), "n_test": len(test),
                          "status": status})
    if not predictions:
        raise NotIdentifiable(f"the {law.name} law could not be fitted at any cut-off: "
                              + "; ".join(s["status"] for s in step_rows))
    skipped = [s for s in step_rows if s["status"].startswith("skipped")]
    if skipped:
        warnings.append(f"{len(skipped)} of {len(step_rows)} cut-offs could not identify the law "
                        "and were skipped")
    if by != "C":
        notes.append(f"rolled forward in {by}: fitted on the smaller {by}, predicted the larger")
    return RollingForward(law=fitted_law.name, formula=fitted_law.formula, predictions=predictions,
                          steps=step_rows, run_ids=tuple(df["run_id"].astype(str)), level=level,
                          warnings=warnings, notes=notes, source=source,
                          n_params=len(fitted_law.param_names), by=by)


@dataclass(repr=False)
class LawSelection(Result):
    """Candidate laws ranked by rolling-forward error, with the one to trust and why."""

    kind: ClassVar[str] = "law_selection"

    evaluations: list[RollingForward]
    recommended: str
    reason: str
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""
    #: laws that could not be evaluated at all, with why
    failed: dict[str, str] = field(default_factory=dict)
    #: mean forward error of each law on the predictions every law made (the fair comparison)
    scores: dict[str, float] = field(default_factory=dict)
    #: laws that are the same law as another (identical forward predictions): name -> that law
    identical: dict[str, str] = field(default_factory=dict)
    #: how far the evidence reaches: cut-offs, predictions, decades beyond the fit (max, median)
    reach: dict[str, Any] = field(default_factory=dict)

    def ranking(self) -> list[RollingForward]:
        """The distinct laws, best first (a law identical to another is listed once)."""
        return sorted([e for e in self.evaluations if e.law not in self.identical],
                      key=lambda e: (self.scores.get(e.law, e.mean_abs_rel_err), e.n_params))

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        return {"kind": self.kind, "recommended": self.recommended, "reason": self.reason,
                "ranking": [{"law": e.law, "n_params": e.n_params,
                             "mean_abs_rel_err": e.mean_abs_rel_err,
                             "common_abs_rel_err": self.scores.get(e.law),
                             "farthest_half_abs_rel_err": e.farthest_error(),
                             "by_distance": e.by_distance()} for e in self.ranking()],
                "evaluations": [e.to_dict() for e in self.evaluations], "failed": dict(self.failed),
                "scores": dict(self.scores), "identical": dict(self.identical),
                "reach": dict(self.reach),
                "level": self.level, "warnings": list(self.warnings), "notes": list(self.notes),
                "source": self.source, "run_ids": list(self.run_ids)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LawSelection:
        return cls(evaluations=[RollingForward.from_dict(e) for e in d.get("evaluations", [])],
                   recommended=str(d.get("recommended", "")), reason=str(d.get("reason", "")),
                   run_ids=tuple(d.get("run_ids") or ()), level=float(d.get("level", 0.95)),
                   warnings=list(d.get("warnings", [])), notes=list(d.get("notes", [])),
                   source=str(d.get("source", "")), failed=dict(d.get("failed") or {}),
                   scores={k: float(v) for k, v in (d.get("scores") or {}).items()},
                   identical=dict(d.get("identical") or {}), reach=dict(d.get("reach") or {}))

    def summary(self) -> Summary:
        pct = f"{round(self.level * 100)}%"
        table = Table("candidate laws by rolling-forward error",
                      ["rank", "law", "parameters", "mean |rel err| (common)", "all its predictions",
                       "farthest half", f"inside {pct} new-run band"])
        same: dict[str, list[str]] = {}
        for a, b in self.identical.items():
            same.setdefault(b, []).append(a)
        for i, e in enumerate(self.ranking(), start=1):
            cover = e._coverage("new_lo", "new_hi", e.predictions)
            table.add_row(i, e.law + "".join(f" = {o}" for o in same.get(e.law, [])), e.n_params, f"{self.scores.get(e.law, float('nan')):.2%}",
                          f"{e.mean_abs_rel_err:.2%}", f"{e.farthest_error():.2%}", _pct(cover))
        for name, why in self.failed.items():
            table.add_row("-", name, "-", "-", "-", "-", f"not evaluated: {why}")
        by = self.evaluations[0].by if self.evaluations else "C"
        what = {"C": "compute", "N": "model size", "D": "tokens"}[by]
        distance = Table(f"rolling-forward error by distance in {what}",
                         ["law", f"decades of {by} beyond the fit", "predictions", "mean |rel err|",
                          "max |rel err|", f"inside {pct} parameter band",
                          f"inside {pct} new-run band"])
        for e in self.ranking():
            for row in e.by_distance():
                a, b = row["decades"]
                distance.add_row(e.law, f"({a:g}, {b:g}]", row["n"], f"{row['mean_abs_rel_err']:.2%}",
                                 f"{row['max_abs_rel_err']:.2%}", _pct(row["inside_parameter_band"]),
                                 _pct(row["inside_new_run_band"]))
        return Summary(title=f"which law to trust ({self.n_runs} runs"
                       + (f", {self.source}" if self.source else "") + ")",
                       tables=[table, distance],
                       facts=[("recommended", f"{self.recommended}: {self.reason}")]
                       + ([("evidence", self.reach["text"])] if self.reach.get("text") else []),
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def _repr_items(self) -> list[str]:
        return [f"recommended {self.recommended}", f"{len(self.evaluations)} laws"]


def _identical(evaluations: Sequence[RollingForward], common: set[tuple[Any, Any]],
               rtol: float = 1e-4) -> dict[str, str]:
    """Laws whose forward predictions match another's everywhere (``chinchilla_tied`` and
    ``gadre2024`` are one law written two ways): name -> the first such law."""
    preds = [{(p["cutoff"], p["run_id"]): p["predicted"] for p in e.predictions} for e in evaluations]
    keys = sorted(common, key=str)
    out: dict[str, str] = {}
    for j in range(1, len(evaluations)):
        for i in range(j):
            if evaluations[i].law in out:
                continue
            a = np.array([preds[i][k] for k in keys])
            b = np.array([preds[j][k] for k in keys])
            if len(keys) and np.all(np.abs(a - b) <= rtol * np.abs(a)):
                out[evaluations[j].law] = evaluations[i].law
                break
    return out


def _reach(evaluations: Sequence[RollingForward], common: set[tuple[Any, Any]],
           target: float | None) -> tuple[dict[str, Any], list[str]]:
    """How far the compared predictions reach beyond their fits, and what that leaves unsaid."""
    e = evaluations[0]
    rows = [p for p in e.predictions if (p["cutoff"], p["run_id"]) in common]
    dec = np.array([p["decades"] for p in rows], dtype=float)
    cutoffs = sorted({p["cutoff"] for p in rows})
    by = e.by
    reach: dict[str, Any] = {"cutoffs": len(cutoffs), "predictions": len(rows),
                             "max_decades": float(dec.max()) if len(dec) else float("nan"),
                             "median_decades": float(np.median(dec)) if len(dec) else float("nan")}
    text = (f"{len(rows)} forward predictions from {len(cutoffs)} cut-off{'s' if len(cutoffs) != 1 else ''}, "
            f"up to {reach['max_decades']:.2g} decades of {by} beyond the fit (median "
            f"{reach['median_decades']:.2g})")
    warnings = []
    if len(cutoffs) == 1:
        warnings.append(f"the ranking rests on one cut-off ({len(rows)} predictions up to "
                        f"{reach['max_decades']:.2g} decades of {by} out): one split, not a trend; "
                        "treat the recommendation as a hint")
    if target is not None and len(cutoffs):
        top = max(float(p["cutoff"]) for p in rows)
        need = float(np.log10(target / top)) if target > 0 else float("nan")
        reach["target_decades"] = need
        text += f"; the question ({by} = {target:.3g}) is {need:.2g} decades beyond the last cut-off"
        if need > reach["max_decades"]:
            warnings.append(f"the evidence reaches {reach['max_decades']:.2g} decades of {by}; the "
                            f"question ({by} = {target:.3g}) is {need:.2g} decades out: beyond what "
                            "the ranking has tested")
    reach["text"] = text
    return reach, warnings


def select_laws(
    frame: pd.DataFrame,
    laws: Sequence[Law | str],
    target: float | None = None,
    **options: Any,
) -> LawSelection:
    """Rank candidate ``laws`` by rolling-forward error on the same cut-offs (``options`` as
    :func:`rolling_forward`'s) and recommend one.

    The recommendation is the law with the lowest mean forward error; when another law is within
    10% of it with fewer parameters, the simpler one is recommended instead (the data cannot
    tell them apart, and fewer parameters extrapolate more safely). A law whose new-run band
    covers far fewer forward runs than its level promises is said to be overconfident.
    """
    if not laws:
        raise ParameterError("give at least one law to compare", "laws")
    evaluations: list[RollingForward] = []
    failed: dict[str, str] = {}
    for law in laws:
        name = law.name if isinstance(law, Law) else str(law)
        try:
            evaluations.append(rolling_forward(law, frame, **options))
        except NotIdentifiable as exc:
            failed[name] = str(exc)
    if not evaluations:
        raise NotIdentifiable("no candidate law could be evaluated: "
                              + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    # compare on the forward predictions every law made (a law skipped at a cut-off would
    # otherwise be judged on easier or harder runs than the others)
    keys = [{(p["cutoff"], p["run_id"]) for p in e.predictions} for e in evaluations]
    common = set.intersection(*keys)
    if not common:
        raise NotIdentifiable("the candidate laws share no forward prediction to compare on")
    scores = {e.law: float(np.mean([p["abs_rel_err"] for p in e.predictions
                                    if (p["cutoff"], p["run_id"]) in common])) for e in evaluations}
    identical = _identical(evaluations, common)
    reach, reach_warnings = _reach(evaluations, common, target)
    ranked = sorted([e for e in evaluations if e.law not in identical],
                    key=lambda e: (scores[e.law], e.n_params))
    best = ranked[0]
    reason = (f"lowest mean forward error on the {len(common)} predictions every law made "
              f"({scores[best.law]:.2%}; {best.farthest_error():.2%} on its farthest half)")
    simpler = [e for e in ranked[1:] if e.n_params < best.n_params
               and scores[e.law] <= 1.1 * scores[best.law]]
    if simpler:
        alt = min(simpler, key=lambda e: (e.n_params, scores[e.law]))
        reason = (f"within 10% of the best forward error ({scores[alt.law]:.2%} vs "
                  f"{best.law}'s {scores[best.law]:.2%}) with fewer parameters "
                  f"({alt.n_params} vs {best.n_params})")
        best = alt
    cover = best._coverage("new_lo", "new_hi", best.predictions)
    level = best.level
    if np.isfinite(cover) and cover < level - 0.2:
        reason += (f"; but its {level:.0%} new-run band held only {cover:.0%} of the forward runs: "
                   "its intervals are overconfident beyond the fitted range")
    warnings = reach_warnings + [f"{e.law}: {w}" for e in evaluations for w in e.warnings]
    notes = [f"{a} is the same law as {b} (identical forward predictions): listed once, not as a rival"
             for a, b in identical.items()]
    return LawSelection(evaluations=evaluations, recommended=best.law, reason=reason,
                        run_ids=evaluations[0].run_ids, level=level, warnings=warnings, notes=notes,
                        source=evaluations[0].source, failed=failed, scores=scores,
                        identical=identical, reach=reach)


__all__ = ["DISTANCE_BINS", "LawSelection", "RollingForward", "cutoff_budgets", "rolling_forward",
           "select_laws"]
