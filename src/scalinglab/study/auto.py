"""``sweep auto`` through the Study: train a round, ask the Study for the study's runs and its
fitted law, let :func:`scalinglab.design.loop.next_step` design the next round, train it, ...

The loop's pieces (its configuration, state file, seed design and round plans) are the design
engine's (:mod:`scalinglab.design.auto`); what it asks of the runs goes through one
:class:`~scalinglab.study.Study` over the store, as every face's questions do: the study's runs
(those of its plans, by run id, so a store may hold other sweeps beside it) and the law fitted
to them by the one selection rule -- lighter between rounds (the start grid thinned, the last
round's estimate first), and at the end exactly the fit ``scalinglab fit`` and the report make
of the same runs (``Study.fit`` with the law's whole start grid, seed ``fit_seed``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.design.auto import (
    AutoConfig,
    AutoResult,
    RoundCallback,
    load_state,
    merge_reports,
    next_plan,
    save_plan,
    save_state,
    seed_plan,
    state_path,
)
from scalinglab.design.loop import next_step, summarise_round
from scalinglab.design.propose import propose
from scalinglab.errors import InputError, NotIdentifiable, ScalingLabError
from scalinglab.fit.result import FitResult
from scalinglab.runs.store import RunStore
from scalinglab.study.study import Study
from scalinglab.sweep.plan import SweepPlan, load_plan
from scalinglab.sweep.runner import Progress, SweepReport, run_plan


def study_of(store: RunStore, plans: list[SweepPlan], config: AutoConfig) -> Study:
    """The Study of an adaptive study's runs: those of its ``plans`` (by run id; the list is
    read at each question, so a round appended is in), each answer cached until the store or
    the number of rounds changes."""
    def mine(frame: pd.DataFrame) -> pd.DataFrame:
        ids = {r.run_id for p in plans for r in p.runs}
        return frame[frame["run_id"].isin(ids)].reset_index(drop=True)

    return Study(store, filter=mine, state_suffix=lambda: f"-round{len(plans)}",
                 bootstrap=config.final_bootstrap, seed=config.fit_seed)


def _fit(study: Study, config: AutoConfig, **options: Any) -> FitResult:
    finished = study.runs()
    if finished.empty:
        raise NotIdentifiable("no run of the study has finished yet")
    # a finished run without a loss informs no fit; were every one so, the fit would raise
    # NothingToFit (an InputError), which the loop does not catch: a study still waiting for
    # losses is not identified yet, not bad input
    if "loss" not in finished or not finished["loss"].notna().any():
        raise NotIdentifiable(f"none of the study's {len(finished)} finished runs has a loss")
    return study.fit(config.law, **options)  # type: ignore[no-any-return]


def run_auto(config: AutoConfig, store: RunStore, progress: Progress | None = None,
             on_round: RoundCallback | None = None) -> AutoResult:
    """Run (or resume) the adaptive study ``config`` describes, writing runs into ``store``."""
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    state = load_state(config)
    s = config.settings
    space = config.sweep_space()
    plan_paths = [out / r["plan"] for r in state["rounds"]]
    missing = [p for p in plan_paths if not p.exists()]
    if missing:
        raise InputError(f"the study's round plan {missing[0].name} is missing; restore it or "
                         "delete the folder to start afresh", source=str(state_path(out)))
    plans = [load_plan(p) for p in plan_paths]
    candidates = space.candidates()
    if not plans:
        seed = config.seed_plan if config.seed_plan is not None else seed_plan(config, candidates)
        path = save_plan(seed, out / "round-00.toml")
        state["rounds"].append({"plan": path.name})
        save_state(config, state)
        plans, plan_paths = [seed], [path]
    study = study_of(store, plans, config)
    total = SweepReport(planned=0)
    started = time.perf_counter()
    result = AutoResult(out, config.target, config.spend, 0.0, plan_paths, [], total)

    def train(plan: SweepPlan, path: Path) -> bool:
        rep = run_plan(plan, store, progress=progress, source=str(path), **config.run_options)
        merge_reports(total, rep)
        return not rep.interrupted

    for plan, path in zip(plans, plan_paths, strict=True):
        if not train(plan, path):
            result.interrupted = True
            return result
    fit: FitResult | None = None
    while True:
        spent = float(sum(r.C for p in plans for r in p.runs))
        result.spent = spent
        try:
            fit = _fit(study, config, bootstrap=s.bootstrap, seed=config.fit_seed + len(plans),
                       starts=s.starts, warm=fit)
        except NotIdentifiable as exc:
            result.error = f"the study's runs cannot be fitted: {exc}"
            break
        every = study.runs(status=None)
        made = (every["N"].to_numpy(float), every["D"].to_numpy(float))
        step = next_step(s, fit, made, spent, config.spend, config.target,
                         (candidates.N, candidates.D), cost=candidates.C)
        summary = summarise_round(len(plans) - 1, step, config.spend, config.target)
        result.history.append(summary)
        state["rounds"][len(plans) - 1]["summary"] = summary
        save_state(config, state)
        if on_round is not None:
            on_round(summary)
        if step.stop is not None:
            result.stop = step.stop
            break
        plan = next_plan(config, space, candidates, step, len(plans))
        path = save_plan(plan, out / f"round-{len(plans):02d}.toml")
        state["rounds"].append({"plan": path.name, "reason": step.proposal.reason()
                                if step.proposal else ""})
        save_state(config, state)
        plans.append(plan)
        plan_paths.append(path)
        if not train(plan, path):
            result.interrupted = True
            return result
    result.plans = plan_paths
    _finish(config, study, result)
    state["stop"], state["error"] = result.stop, result.error
    state["identification"] = result.identification()
    save_state(config, state)
    total.wall_time_s = round(time.perf_counter() - started, 2)
    return result


def _finish(config: AutoConfig, study: Study, result: AutoResult) -> None:
    """The final fit, and what would identify the parameters it leaves unidentified. The fit is
    the Study's (``fit_law`` with its defaults: the law's whole start grid, no warm start, seed
    ``fit_seed``), so it is the fit ``scalinglab fit`` and the report make of the same runs."""
    try:
        fit = _fit(study, config)
    except NotIdentifiable as exc:
        result.error = result.error or f"the study's runs cannot be fitted: {exc}"
        return
    result.fit = fit
    if not fit.unidentified:
        return
    # what would identify the rest: the runs that most narrow those parameters, with as much
    # again as the study spent (candidates up to that size)
    every = study.runs(status=None)
    extra = max(config.spend, result.spent)
    try:
        cands = config.sweep_space(largest=extra).candidates()
        result.remedy = propose(
            fit, (every["N"].to_numpy(float), every["D"].to_numpy(float)), config.target, extra,
            (cands.N, cands.D), k=config.settings.k, aim={p: 1.0 for p in fit.unidentified},
            criterion=config.settings.criterion, cost=cands.C)
    except (ScalingLabError, ValueError, np.linalg.LinAlgError) as exc:
        result.remedy = None
        fit.notes.append(f"no design for the unidentified parameters: {exc}")


__all__ = ["run_auto", "study_of"]
