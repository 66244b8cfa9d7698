"""The adaptive loop's decisions: seed a small design, then after each fit either stop or say
which runs come next. The same decisions drive a simulated study
(:mod:`scalinglab.design.simulate`) and a real one (``scalinglab sweep auto``,
:mod:`scalinglab.design.auto`), so what the simulation proves is what the sweep runs.

Each round spends at most ``round_fraction`` of what is left (all of it when the remaining run
slots fit in one round), so early rounds, decided on little data, cannot commit the whole budget;
the ``k`` runs of a round are picked by expected reduction of the target's spread per FLOP, a run
slot being priced at the spend left per slot left (a limit of ``max_runs`` runs makes a slot
worth that much, so the loop does not fritter the budget on many tiny runs). The last round has
no later use for the FLOPs it leaves, so it picks by expected reduction alone, within what is
left: measured in simulation, pricing it like the others left ~45% of the spend unused (a
20-run study at 1e20 FLOPs took three runs of 1e-4 of the spend and one of 0.1 in its last round).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalinglab.design.layouts import FlopSpace, IsoflopLayout
from scalinglab.design.propose import DEFAULT_AIM, Criterion, Proposal, propose
from scalinglab.design.targets import check_budget
from scalinglab.errors import ParameterError
from scalinglab.fit.result import FitResult

#: the default seed: 3 budgets a factor 4 apart, 3 sizes over 8x each (9 runs, enough distinct
#: N and D for the 5 Chinchilla parameters)
SEED_LAYOUT = IsoflopLayout(budgets=3, sizes=3, ratio=4.0, span=8.0)


@dataclass(frozen=True)
class AdaptiveSettings:
    """How an adaptive study proceeds (every field has a measured or argued default).

    - ``k``: runs per round; ``max_runs``: the most runs in all (seed included);
    - ``seed``/``seed_fraction``: the first design and the share of the spend it gets;
    - ``round_fraction``: the most of the remaining spend one round may use;
    - ``aim``: the figures at the target whose variance the design reduces, with weights;
    - ``criterion``: ``draws`` (the bootstrap ensemble) or ``fisher`` (linearised);
    - ``bootstrap``/``starts``: resamples of the fits between rounds, and about how many points
      of the law's start grid they use (None: the whole grid, which the engine screens; each
      also starts from the previous round's estimate);
    - ``until_ci``: stop once the relative width of L(target)'s interval is below this and
      every parameter is identified (None: use the whole spend);
    - ``smallest``/``tokens_per_param``: the candidate runs (a simulation's domain): run
      compute from ``smallest`` x the spend up, tokens per parameter in the range.
    """

    k: int = 4
    max_runs: int = 40
    seed: IsoflopLayout = SEED_LAYOUT
    seed_fraction: float = 0.05
    round_fraction: float = 0.5
    aim: tuple[tuple[str, float], ...] = tuple(DEFAULT_AIM.items())
    criterion: Criterion = "draws"
    bootstrap: int = 200
    starts: int | None = None
    until_ci: float | None = None
    smallest: float = 1e-4
    tokens_per_param: tuple[float, float] = (1.0, 1000.0)

    def __post_init__(self) -> None:
        if int(self.k) != self.k or self.k < 1:
            raise ParameterError(f"k must be a whole number >= 1, not {self.k}", "k")
        if self.max_runs < self.seed.n_runs + 1:
            raise ParameterError(f"max_runs ({self.max_runs}) must exceed the seed's "
                                 f"{self.seed.n_runs} runs", "max_runs")
        for name in ("seed_fraction", "round_fraction"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ParameterError(f"{name} must be in (0, 1], not {v:g}", name)
        if self.until_ci is not None and not self.until_ci > 0:
            raise ParameterError(f"until_ci must be a positive fraction, not {self.until_ci:g}",
                                 "until_ci")
        if self.bootstrap < 20 and self.criterion == "draws":
            raise ParameterError("the draws criterion needs bootstrap >= 20", "bootstrap")

    @property
    def aim_weights(self) -> dict[str, float]:
        return dict(self.aim)

    def space(self, spend: float) -> FlopSpace:
        return FlopSpace.for_spend(spend, self.smallest, self.tokens_per_param)

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "max_runs": self.max_runs, "seed": self.seed.label(),
                "seed_fraction": self.seed_fraction, "round_fraction": self.round_fraction,
                "aim": self.aim_weights, "criterion": self.criterion,
                "bootstrap": self.bootstrap, "starts": self.starts, "until_ci": self.until_ci,
                "smallest": self.smallest, "tokens_per_param": list(self.tokens_per_param)}


def seed_positions(settings: AdaptiveSettings, spend: float) -> tuple[np.ndarray, np.ndarray]:
    """The seed design's runs for a study of total ``spend``."""
    return settings.seed.runs(check_budget(spend, "spend") * settings.seed_fraction)


@dataclass
class Step:
    """One decision of the loop: the fit it was made on, and the next runs or why it stops."""

    fit: FitResult
    spent: float
    proposal: Proposal | None = None
    stop: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def loss_width(self) -> float:
        """Relative width of L(target)'s interval at this step (NaN without one)."""
        return float("nan") if self.proposal is None else self.proposal.width("loss")


def relative_width(fit: FitResult, target: float) -> tuple[float, bool]:
    """``(hi - lo) / value`` of L(target)'s interval, and whether it is identified."""
    est = fit.optimum(target).loss
    if est.ci is None or not est.value:
        return float("inf"), est.identified
    return float((est.ci[1] - est.ci[0]) / abs(est.value)), est.identified


def next_step(
    settings: AdaptiveSettings,
    fit: FitResult,
    runs: tuple[Sequence[float], Sequence[float]],
    spent: float,
    spend: float,
    target: float,
    candidates: tuple[np.ndarray, np.ndarray],
    cost: np.ndarray | None = None,
) -> Step:
    """Stop, or propose the next round, after fitting the study's runs so far.

    ``runs`` are the (N, D) of every run made (finished or not: failed runs are not repeated),
    ``spent`` their compute; ``candidates`` the runs that could be made next (with ``cost``, by
    default 6ND).
    """
    n_runs = len(runs[0])
    left = float(spend) - float(spent)
    width, identified = relative_width(fit, target)
    if settings.until_ci is not None and width <= settings.until_ci and identified \
            and not fit.unidentified:
        return Step(fit, spent, stop=f"the {fit.level:.0%} interval of the loss at the target is "
                    f"{width:.2%} wide, within {settings.until_ci:.2%}")
    slots = settings.max_runs - n_runs
    if slots <= 0:
        return Step(fit, spent, stop=f"{n_runs} runs made, the most allowed ({settings.max_runs})")
    c = 6.0 * np.asarray(candidates[0]) * np.asarray(candidates[1]) if cost is None else cost
    if left < float(np.min(c)):
        return Step(fit, spent, stop=f"the spend is used: {left:.3g} FLOPs left, less than the "
                    f"smallest candidate run ({float(np.min(c)):.3g})")
    k = min(settings.k, slots)
    last = slots <= settings.k
    budget = left if last else left * settings.round_fraction
    if budget < float(np.min(c)):
        budget = left
    proposal = propose(fit, runs, target, budget, candidates, k=k,
                       price=float("inf") if last else left / slots,
                       aim=settings.aim_weights, criterion=settings.criterion, cost=c)
    if not proposal.runs:
        return Step(fit, spent, proposal=proposal,
                    stop=proposal.warnings[0] if proposal.warnings else "nothing left to learn")
    return Step(fit, spent, proposal=proposal)


def summarise_round(index: int, step: Step, spend: float, target: float) -> dict[str, Any]:
    """What one round looked like, for progress lines and the loop's history."""
    opt = step.fit.optimum(target)
    return {"round": index, "runs": step.fit.n_runs, "spent": step.spent,
            "spent_fraction": step.spent / spend if spend else float("nan"),
            "loss": opt.loss.to_dict(), "N_opt": opt.N.to_dict(),
            "loss_width": relative_width(step.fit, target)[0],
            "unidentified": list(step.fit.unidentified),
            "next": [] if step.proposal is None else [r.to_dict() for r in step.proposal.runs],
            "stop": step.stop}


def aim_from(spec: str | Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    """``"loss,N_opt"`` or ``{"loss": 2, "N_opt": 1}`` -> the settings' aim (weights >= 0)."""
    if spec is None:
        return tuple(DEFAULT_AIM.items())
    if isinstance(spec, str):
        names = [s.strip() for s in spec.split(",") if s.strip()]
        if not names:
            raise ParameterError("aim names no figure (e.g. loss,N_opt)", "aim")
        return tuple((n, 1.0) for n in names)
    return tuple((str(k), float(v)) for k, v in spec.items())
