"""The demo's job: from nothing to a fitted law and a plan, on a laptop CPU.

Trains a tiny IsoFLOP sweep of real transformers on the default corpus (the Python standard
library's source) into a DuckDB store, then lets the adaptive design (``sweep auto``) spend the
rest of its budget on the runs that most narrow the prediction at the budget it will plan; fits
Chinchilla's law with bootstrap intervals and the IsoFLOP approaches, checks the law by fitting
it without the largest budget and predicting that budget's best loss, plans a 100x larger
budget, says which parameters the runs leave unidentified and what would identify them, and
writes figures and a report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from scalinglab.design.auto import AutoConfig, AutoResult
from scalinglab.errors import ScalingLabError
from scalinglab.results import Result, short_repr
from scalinglab.runs.store import RunStore
from scalinglab.safefile import write_output
from scalinglab.study.auto import run_auto
from scalinglab.summary import Summary, Table, format_interval, format_number, tidy_warnings
from scalinglab.sweep.plan import Defaults, SweepPlan, isoflop_plan
from scalinglab.sweep.runner import Progress, SweepReport

#: budgets (FLOPs, 6ND) and model sizes: ~5 min (full) and ~1 min (quick) on 2 CPU cores
FULL_BUDGETS = (3e10, 7e10, 1.6e11, 3.6e11)
QUICK_BUDGETS = (1.5e10, 4.5e10, 1.35e11)
#: centre of the sizes: byte-level models this small are compute-optimal far beyond 20 tokens
#: per (non-embedding) parameter; centring at 20 puts every budget's minimum at the smallest size
TOKENS_PER_PARAM = 100.0


def demo_isoflop_plan(quick: bool = False) -> SweepPlan:
    """The demo's sweep: budgets a factor ~3 apart, models spanning 16x around 20 tokens/param."""
    defaults = Defaults(seq_len=128, batch_tokens=1024, lr=1e-2,
                        eval_tokens=65_536 if not quick else 32_768, min_steps=20)
    budgets = QUICK_BUDGETS if quick else FULL_BUDGETS
    return isoflop_plan(list(budgets), sizes=3 if quick else 5, span=8.0 if quick else 12.0,
                        tokens_per_param=TOKENS_PER_PARAM, defaults=defaults,
                        name="demo-quick" if quick else "demo")


def demo_design(seed: SweepPlan, name: str, out: Path, quick: bool, device: str,
                workers: int, bootstrap: int) -> AutoConfig:
    """The demo's adaptive study: the IsoFLOP ``seed`` first, then rounds of runs that most
    narrow L and N_opt at 1e14 FLOPs (the budget the demo plans: 100x its largest run, so no run
    exceeds 1e12) per FLOP, within about the compute of the demo's former 18-run grid
    (``--quick``: one round of 2 runs). Byte-level models this small are best at ~100-150 tokens
    per parameter, so runs range over 10-1500; and at the demo's one lr (1e-2) models above 3e4
    parameters scatter about any law (residuals of 6-12% against 2% below, measured on a 25-run
    demo store), so runs stay below that size."""
    from scalinglab.design.loop import AdaptiveSettings
    from scalinglab.design.sweeps import defaults_of, plan_of

    settings = AdaptiveSettings(k=2 if quick else 4, max_runs=len(seed.runs) + (2 if quick else 16),
                                smallest=3e-3, tokens_per_param=(10.0, 1500.0))
    tagged = plan_of(seed.runs, seed.data, defaults_of(seed), name, seed.notes)
    return AutoConfig(target=1e14, spend=seed.total_compute * 1.5 if quick else 2.9e12,
                      out=out / "design", settings=settings, defaults=defaults_of(seed),
                      data=seed.data, name=name, seed_plan=tagged,
                      run_options={"device": device, "workers": workers},
                      final_bootstrap=bootstrap, largest=1e12, max_params=3e4)


@dataclass(repr=False)
class Extrapolation(Result):
    """The held-out check: the law fitted without the largest budget, asked for that budget's
    best loss (what a person planning that budget would be told), against the best run there."""

    kind: ClassVar[str] = "heldout_check"

    budget: float
    predicted: float
    interval: tuple[float, float] | None
    observed: float
    n_fit_runs: int
    law: str = "chinchilla"
    run_ids: tuple[str, ...] = ()
    heldout: tuple[str, ...] = ()
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def heldout_ids(self) -> tuple[str, ...]:
        return self.heldout

    @property
    def rel_error(self) -> float:
        return (self.predicted - self.observed) / self.observed

    @property
    def inside(self) -> bool | None:
        return None if self.interval is None else self.interval[0] <= self.observed <= self.interval[1]

    def headline(self) -> str:
        iv = "" if self.interval is None else " " + format_interval(self.interval)
        return (f"fitted without the {format_number(self.budget, 3)}-FLOP budget, {self.law} predicts "
                f"its best loss {format_number(self.predicted)}{iv}; measured "
                f"{format_number(self.observed)} ({self.rel_error:+.2%})")

    def summary(self) -> Summary:
        pct = f"{round(self.level * 100)}% interval"
        t = Table(f"The largest budget, held out of the {self.law} fit",
                  ["held-out budget (FLOPs)", "runs fitted", "predicted best loss", pct,
                   "measured best loss", "error", "inside the interval"])
        t.add_row(self.budget, self.n_fit_runs, self.predicted, format_interval(self.interval),
                  self.observed, f"{self.rel_error:+.2%}",
                  "-" if self.inside is None else ("yes" if self.inside else "no"))
        notes = ["the prediction is the law's loss at its compute-optimal (N, D) for that budget; "
                 "the measurement is the best of the budget's runs, which sample N around it, so a "
                 "sweep too coarse to hit the optimum reads a little above the prediction",
                 *self.notes]
        return Summary(title=f"Held-out check: {self.headline()}", tables=[t], notes=notes,
                       warnings=list(self.warnings), data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        return {"kind": self.kind, "law": self.law, "budget": self.budget,
                "predicted_best_loss": self.predicted, "interval": self.interval,
                "observed_best_loss": self.observed, "rel_error": self.rel_error,
                "inside_interval": self.inside, "n_fit_runs": self.n_fit_runs,
                "run_ids": list(self.run_ids), "heldout_ids": list(self.heldout),
                "level": self.level, "warnings": list(self.warnings), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Extrapolation:
        iv = data.get("interval")
        return cls(budget=float(data["budget"]), predicted=float(data["predicted_best_loss"]),
                   interval=None if iv is None else (float(iv[0]), float(iv[1])),
                   observed=float(data["observed_best_loss"]), n_fit_runs=int(data["n_fit_runs"]),
                   law=str(data.get("law", "chinchilla")),
                   run_ids=tuple(data.get("run_ids", ())), heldout=tuple(data.get("heldout_ids", ())),
                   level=float(data.get("level", 0.95)), warnings=list(data.get("warnings", [])),
                   notes=list(data.get("notes", [])))

    def _repr_items(self) -> list[str]:
        return [f"budget {self.budget:.3g}", f"error {self.rel_error:+.2%}"]


@dataclass
class DemoResult:
    """What the demo did and every file it wrote (:meth:`files`)."""

    __repr__ = short_repr  # one short line, not every field
    _repr_keys = ("out_dir", "report_path", "larger_plan_path", "figures", "warnings")
    out_dir: Path
    plan_path: Path
    store_path: Path
    report_path: Path
    figures: dict[str, Path]
    sweep: SweepReport
    summary: Any
    extrapolation: Extrapolation | None
    extrapolation_error: str | None = None
    warnings: list[str] = field(default_factory=list)
    design: AutoResult | None = None
    #: the plan for the 100x larger budget, as JSON (``plan_path`` is the starting sweep's TOML)
    larger_plan_path: Path | None = None

    def files(self) -> list[tuple[str, Path]]:
        """Every file (and folder of files) the demo wrote, with what it is, in reading order."""
        out = [("report (open in a browser)", self.report_path)]
        if self.larger_plan_path is not None:
            out.append(("plan for the 100x larger budget", self.larger_plan_path))
        out += [("run store (scalinglab runs/serve --store)", self.store_path),
                ("starting IsoFLOP sweep (TOML)", self.plan_path)]
        if self.design is not None:
            out.append((f"adaptive rounds' plans and state ({len(self.design.plans)} rounds)",
                        self.design.out))
        if self.figures:
            folder = next(iter(self.figures.values())).parent
            out.append((f"figures ({len(self.figures)} PNG)", folder))
        return out

    def to_dict(self) -> dict[str, Any]:
        s = self.summary
        fit = s.primary_fit
        iso = s.isoflop.value
        return {
            "out_dir": self.out_dir, "plan": self.plan_path, "store": self.store_path,
            "larger_plan": self.larger_plan_path,
            "report": self.report_path, "figures": {k: str(v) for k, v in self.figures.items()},
            "sweep": self.sweep.to_dict(),
            "fit": fit.to_dict() if fit is not None else None,
            "fit_error": next((o.error for o in s.fits.values() if o.error), None),
            "isoflop": iso.to_dict() if iso is not None else None,
            "isoflop_error": s.isoflop.error,
            "extrapolation": self.extrapolation.to_dict() if self.extrapolation else None,
            "extrapolation_error": self.extrapolation_error,
            "plan_for_larger_budget": s.plan.value.to_dict() if s.plan.ok else None,
            # why there is no plan: a refusal (what is not identified, and which runs would
            # identify it) rather than a plan built on parameters the runs leave open
            "plan_refused": None if s.plan.ok else s.plan.error,
            # refused, or given with figures (its loss) that are no estimates
            "plan_not_identified": bool(s.plan.not_identified
                                        or (s.plan.ok and s.plan.value.not_identified)),
            "design": self.design.to_dict() if self.design else None,
            "identification": self.design.identification() if self.design else None,
            "warnings": self.warnings,
        }


def extrapolation_check(runs: pd.DataFrame, bootstrap: int = 100, seed: int = 0,
                        law: str = "chinchilla") -> Extrapolation:
    """Fit the law on every budget but the largest; predict the largest budget's best loss.

    The runs are chosen by the same rule as every other fit (:mod:`scalinglab.runs.select`).
    The prediction is the law's loss at its compute-optimal (N, D) for that budget, which is what
    a user planning that budget would be told; the observation is the best run there.
    """
    from scalinglab.errors import NotIdentifiable
    from scalinglab.fit import group_budgets
    from scalinglab.study.analysis import fit_loss_law

    group, values = group_budgets(runs["C"].to_numpy(float))
    top = int(group.max())
    if top < 2:
        raise NotIdentifiable("the held-out check needs at least 3 budgets (2 to fit, 1 to predict)")
    fit = fit_loss_law(runs[group < top].reset_index(drop=True), law, bootstrap, 0, seed)
    budget = float(values[top])
    loss = fit.optimum(budget).loss
    held = runs[group == top]
    return Extrapolation(budget, loss.value, loss.ci, float(held["loss"].min()), fit.n_runs,
                         law=law, run_ids=fit.run_ids, level=fit.level,
                         heldout=tuple(held["run_id"].astype(str)) if "run_id" in held else (),
                         warnings=list(fit.warnings))


def analyse(store: RunStore, tags: dict[str, str], bootstrap: int, seed: int = 0,
            progress: Any = None, compute: float | None = None
            ) -> tuple[Any, Extrapolation | None, str | None]:
    """The demo's fits, the same as ``report`` and the dashboard make (``summarise``), and its
    held-out check; ``(summary, extrapolation, why there is none)``."""
    from scalinglab.study import Study

    summary = Study(store, tags=tags, bootstrap=bootstrap, seed=seed).summarise(progress=progress,
                                                                                compute=compute)
    if progress is not None:
        progress("held-out check: fitting without the largest budget", 0, 0)
    try:
        return summary, extrapolation_check(summary.runs, bootstrap=bootstrap, seed=seed), None
    except ScalingLabError as exc:  # reported, not fatal: the rest of the demo stands
        return summary, None, str(exc)


def run_demo(out_dir: str | Path = "scalinglab-demo", quick: bool = False, device: str = "cpu",
             bootstrap: int | None = None, progress: Progress | None = None,
             analysis_progress: Any = None, on_round: Any = None) -> DemoResult:
    """The whole job; resumable (a rerun skips the runs already in ``out_dir/runs.duckdb``).

    ``progress`` follows the sweep; ``on_round(summary)`` hears each adaptive round's fit and
    what it decided (:func:`scalinglab.design.loop.summarise_round`);
    ``analysis_progress(stage, done, total)`` the fits, the held-out check and the report after it.
    """
    from scalinglab.report.html import render_report, save_figures

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = demo_isoflop_plan(quick=True)  # the seed: 9 runs, about a minute on 2 cores
    plan_path = plan.save(out / "plan.toml")
    store = RunStore(out / "runs.duckdb")
    workers = min(4, os.cpu_count() or 1) if device == "cpu" else 1
    name = "demo-quick" if quick else "demo"
    k = bootstrap if bootstrap is not None else (100 if quick else 200)
    config = demo_design(plan, name, out, quick, device, workers, k)
    design = run_auto(config, store, progress=progress, on_round=on_round)
    sweep = design.sweep
    if sweep.interrupted:
        raise KeyboardInterrupt
    summary, extrapolation, extrapolation_error = analyse(store, {"sweep": name}, k,
                                                          progress=analysis_progress)
    # the report is written after the held-out check, so it carries the demo's headline
    if extrapolation is not None:
        summary.validation.append(extrapolation)
    elif extrapolation_error:
        summary.warnings.append(f"held-out check: {extrapolation_error}")
    report_path = out / "report.html"
    write_output(report_path, render_report(summary, store, title="scalinglab demo",
                                            progress=analysis_progress))
    figures = save_figures(store, out / "figures", summary=summary, progress=analysis_progress)
    warnings = list(summary.warnings)
    if design.unidentified or design.fit is None:
        warnings.append(design.identification())
    warnings = tidy_warnings(warnings)
    larger = None
    if summary.plan.ok:  # the plan the demo prints, saved where it says
        from scalinglab.clikit import to_json

        larger = out / "plan.json"
        larger.write_text(to_json(summary.plan.value.to_dict()) + "\n", encoding="utf-8")
    return DemoResult(out, plan_path, store.path, report_path, figures, sweep, summary,
                      extrapolation, extrapolation_error, warnings, design, larger)
