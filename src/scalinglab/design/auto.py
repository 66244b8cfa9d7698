"""``scalinglab sweep auto``: seed a small design, train, fit, design the next runs, train, ...
until the target's interval is tight enough or the spend is used.

The loop's decisions are :func:`scalinglab.design.loop.next_step`, the same that simulated
studies make (``scalinglab simulate --designs adaptive``). Everything it does is on disk in its
folder, so it resumes like any sweep:

- ``round-00.toml`` (the seed), ``round-01.toml``, ...: each round's runs as an ordinary sweep
  plan, written before any of its runs is trained;
- ``auto.json``: the study (target, spend, settings) and what each round saw.

A rerun first runs every round plan already written, in order (the sweep runner skips the runs
the store holds, so a kill loses only the runs in flight and no finished run is repeated), and
then goes on deciding. Which runs belong to the study is decided by their ids (those of its
plans), not by tags, so a store may hold other sweeps beside it.

This module holds the loop's pieces (configuration, state, seed design, round plans); the loop
itself, which asks the Study for the runs and the fits, is :func:`scalinglab.study.auto.run_auto`
(the study layer sits above the engines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.design.loop import AdaptiveSettings, Step
from scalinglab.design.propose import Proposal
from scalinglab.design.sweeps import SweepCandidates, SweepSpace, plan_of
from scalinglab.design.targets import check_allocatable, check_budget
from scalinglab.errors import InputError, NotIdentifiable, ParameterError
from scalinglab.fit.identify import MAX_DECADES, MAX_EXPONENT_WIDTH
from scalinglab.fit.result import FitResult
from scalinglab.laws.hparams import HparamLaw
from scalinglab.laws.registry import get_law
from scalinglab.results import short_repr
from scalinglab.safefile import read_json, write_output
from scalinglab.sweep.data import DataSpec
from scalinglab.sweep.plan import Defaults, SweepPlan
from scalinglab.sweep.runner import SweepReport

STATE_FILE = "auto.json"
STATE_VERSION = 1
#: ``on_round(summary)`` after each fit: the round's runs, spend, intervals and next runs
RoundCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class AutoConfig:
    """One adaptive study of real runs.

    Runs are shaped and trained with ``defaults`` on ``data``, with lr and batch from
    ``hparams`` when given; the candidates range from ``settings.smallest`` x the spend to the
    spend (or ``largest``), at ``settings.tokens_per_param``, of at most ``max_tokens`` tokens
    and ``max_params`` parameters.
    ``seed_plan``, when given, is the first round instead of the settings' seed layout (e.g. an
    IsoFLOP sweep already run: its runs are skipped and used). ``run_options`` go to
    :func:`scalinglab.sweep.runner.run_plan` (device, workers...).
    """

    target: float
    spend: float
    out: Path
    settings: AdaptiveSettings = AdaptiveSettings(smallest=1e-3, tokens_per_param=(2.0, 2000.0))
    defaults: Defaults = field(default_factory=Defaults)
    data: DataSpec = field(default_factory=DataSpec)
    hparams: HparamLaw | None = None
    law: str = "chinchilla"
    final_bootstrap: int = 200
    name: str = "auto"
    run_options: dict[str, Any] = field(default_factory=dict)
    fit_seed: int = 0
    seed_plan: SweepPlan | None = None
    largest: float | None = None
    max_tokens: float | None = None
    max_params: float | None = None

    def __post_init__(self) -> None:
        check_budget(self.target, "target")
        check_budget(self.spend, "spend")
        check_allocatable(get_law(self.law))

    def sweep_space(self, largest: float | None = None) -> SweepSpace:
        """The runs this study may choose from (up to ``largest`` FLOPs, default the spend)."""
        top = largest or self.largest or self.spend
        return SweepSpace((min(self.spend * self.settings.smallest, top), top),
                          self.settings.tokens_per_param, self.defaults, self.data, self.hparams,
                          name=self.name, max_tokens=self.max_tokens,
                          max_params=self.max_params)


@dataclass
class AutoResult:
    """What the loop did: its rounds, the final fit, why it stopped, and what is still unknown."""

    __repr__ = short_repr  # one short line, not every field

    out: Path
    target: float
    spend: float
    spent: float
    plans: list[Path]
    history: list[dict[str, Any]]
    sweep: SweepReport
    fit: FitResult | None = None
    stop: str | None = None
    error: str | None = None
    remedy: Proposal | None = None
    interrupted: bool = False

    @property
    def unidentified(self) -> tuple[str, ...]:
        return () if self.fit is None else tuple(self.fit.unidentified)

    def identification(self) -> str:
        """In words: is every parameter identified, and if not, what would identify the rest."""
        if self.fit is None:
            return f"no law was fitted: {self.error or self.stop}"
        law = self.fit.law
        if not self.fit.unidentified:
            return (f"every {law.name} parameter ({', '.join(law.param_names)}) is identified by "
                    f"these {self.fit.n_runs} runs")
        names = self.fit.unidentified
        still = ", ".join(names)
        text = f"{still} {'is' if len(names) == 1 else 'are'} not identified by these " \
               f"{self.fit.n_runs} runs"
        r = self.remedy
        if r is None or not r.runs:
            return text + (f"; {r.warnings[0]}" if r is not None and r.warnings else "")
        runs = "; ".join(f"N={p.N:.3g}, D={p.D:.3g} (C={p.C:.3g})" for p in r.runs)
        moves = [m for m in (_spread_change(n, r, n in law.exponents) for n in names) if m]
        text += (f". The {len(r.runs)} runs that would most narrow "
                 f"{'them' if len(names) > 1 else 'it'} are {runs}, {r.cost:.3g} FLOPs in all"
                 + (f"; they would take {', '.join(moves)}" if moves else "")
                 + f" (identified: under {MAX_DECADES:g} decades for a scale, under "
                 f"{MAX_EXPONENT_WIDTH:g} wide for an exponent)")
        rest = [n for n in names if n not in r.identified_after]
        if r.identified_after:
            text += f"; expected to identify {', '.join(r.identified_after)}"
        if rest:
            text += f"; {', '.join(rest)} would need more runs than these"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "target": self.target, "spend": self.spend,
                "spent": self.spent, "plans": [str(p) for p in self.plans],
                "rounds": self.history, "stop": self.stop, "error": self.error,
                "interrupted": self.interrupted, "sweep": self.sweep.to_dict(),
                "unidentified": list(self.unidentified), "identification": self.identification(),
                "remedy": None if self.remedy is None else self.remedy.to_dict(),
                "fit": None if self.fit is None else self.fit.to_dict(compute=[self.target])}


def _spread_change(name: str, remedy: Proposal, exponent: bool) -> str:
    """``"E from 6.6 to 4.1 decades"`` (or ``"alpha from 2.05 to 1.2 wide"``), or ``""``."""
    before, after = remedy.before.get(name), remedy.after.get(name)
    if before is None or after is None or before.ci is None or after.ci is None:
        return ""
    if not np.all(np.isfinite([*before.ci, *after.ci])):
        return ""  # never "nan to nan decades": an interval the draws cannot give is left out
    if exponent:
        return f"{name} from {before.ci[1] - before.ci[0]:.2g} to {after.ci[1] - after.ci[0]:.2g} wide"
    if min(before.ci) <= 0 or min(after.ci) <= 0:
        return ""
    span = [float(np.log10(e.ci[1] / e.ci[0])) for e in (before, after)]
    return f"{name} from {span[0]:.2g} to {span[1]:.2g} decades"


# -- state -------------------------------------------------------------------------------------


def state_path(out: Path) -> Path:
    return out / STATE_FILE


def load_state(config: AutoConfig) -> dict[str, Any]:
    path = state_path(config.out)
    if not path.exists():
        return {"version": STATE_VERSION, "name": config.name, "target": config.target,
                "spend": config.spend, "law": config.law, "settings": config.settings.to_dict(),
                "rounds": [], "notes": []}
    try:
        state = read_json(path)  # bounded: a regular file, its size and depth
    except InputError as exc:
        raise InputError(f"{exc.detail}; delete it to start the study afresh",
                         source=str(path)) from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or \
            not isinstance(state.get("rounds"), list):
        raise InputError("not a `sweep auto` state file this version can resume", source=str(path))
    _check_state(state, str(path))
    for key in ("target", "spend"):
        if float(state.get(key, 0)) != float(getattr(config, key)):
            state.setdefault("notes", []).append(
                f"{key} changed from {float(state[key]):.4g} to {getattr(config, key):.4g} on "
                f"resuming; the rounds already run are kept")
            state[key] = getattr(config, key)
    return state


def _check_state(state: dict[str, Any], source: str) -> None:
    """The fields a resumed study does arithmetic with or opens, checked first (pydantic): one
    line naming the field, not a traceback from deep in the loop."""
    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    class Round(BaseModel):
        model_config = ConfigDict(extra="allow")
        plan: str = Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00]+$")

    class State(BaseModel):
        model_config = ConfigDict(extra="allow")
        target: float = Field(gt=0, allow_inf_nan=False)
        spend: float = Field(gt=0, allow_inf_nan=False)
        rounds: list[Round]
        notes: list[str] = []

    try:
        State.model_validate(state)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ()))
        raise InputError(f"field {field!r}: {err.get('msg', 'invalid')}; delete it to start the "
                         "study afresh", source=source) from None


def save_state(config: AutoConfig, state: dict[str, Any]) -> None:
    from scalinglab.serialize import to_json

    # atomic (a kill leaves the old state or the new, never half); never through a symlink
    write_output(state_path(config.out), to_json(state) + "\n")


def save_plan(plan: SweepPlan, path: Path) -> Path:
    return plan.save(path)  # atomic, by write_output


# -- the loop ------------------------------------------------------------------------------------


def seed_plan(config: AutoConfig, candidates: SweepCandidates) -> SweepPlan:
    """The seed: the candidate runs nearest the settings' small IsoFLOP layout at
    ``seed_fraction`` of the spend. Small budgets can collapse onto the smallest shapes, so the
    fraction is doubled (up to half the spend) until the seed can identify the law."""
    s = config.settings
    law = get_law(config.law)
    fraction, why = s.seed_fraction, ""
    while fraction <= 0.5:
        N, D = s.seed.runs(config.spend * fraction)
        picks = nearest_distinct(candidates, N, D)
        try:
            law.check_identifiable({"N": candidates.N[picks], "D": candidates.D[picks]})
        except NotIdentifiable as exc:
            why, fraction = str(exc), fraction * 2
            continue
        notes = [] if fraction == s.seed_fraction else [
            f"the seed got {fraction:.0%} of the spend (not {s.seed_fraction:.0%}): smaller "
            "budgets collapse onto too few distinct shapes"]
        return plan_of([candidates.specs[i] for i in picks], config.data, config.defaults,
                       config.name, notes=[f"seed of `sweep auto` (target C={config.target:.3g}, "
                                           f"spend {config.spend:.3g})", *notes])
    raise ParameterError(f"a spend of {config.spend:.3g} FLOPs is too small for a seed design "
                         f"that can identify the {law.name} law with these shapes ({why}); "
                         "raise spend", "spend")


def nearest_distinct(candidates: SweepCandidates, N: np.ndarray, D: np.ndarray) -> list[int]:
    """For each position (in order), the nearest candidate in log N and log D not yet taken."""
    ln, ld = np.log(candidates.N), np.log(candidates.D)
    taken: list[int] = []
    for n, d in zip(np.log(N), np.log(D), strict=True):
        dist = (ln - n) ** 2 + (ld - d) ** 2
        dist[taken] = np.inf
        taken.append(int(np.argmin(dist)))
    return taken


def merge_reports(total: SweepReport, part: SweepReport) -> None:
    total.planned += part.planned
    total.skipped += part.skipped
    total.finished += part.finished
    total.failed += part.failed
    total.errors.update(part.errors)
    total.wall_time_s = round(total.wall_time_s + part.wall_time_s, 2)
    total.interrupted = total.interrupted or part.interrupted


def next_plan(config: AutoConfig, space: SweepSpace, candidates: SweepCandidates, step: Step,
               index: int) -> SweepPlan:
    assert step.proposal is not None
    specs = [candidates.specs[r.index] for r in step.proposal.runs]
    return plan_of(specs, space.data, space.defaults, config.name,
                   notes=[f"round {index} of `sweep auto` (target C={config.target:.3g}): "
                          + step.proposal.reason()])
