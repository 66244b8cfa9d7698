"""Spend the sweep budget where it teaches the most: adaptive design, proven in simulation.

- :mod:`~scalinglab.design.targets`: the figures at a target budget (L, N_opt, D_opt) per draw;
- :mod:`~scalinglab.design.spread`: how much a run would shrink their spread (bootstrap ensemble
  or Fisher information), and greedy batch choice per FLOP;
- :mod:`~scalinglab.design.layouts`: IsoFLOP and N x D grids for a spend, the candidate space;
- :mod:`~scalinglab.design.propose`: :func:`propose` -> :class:`Proposal` (the next runs, and why);
- :mod:`~scalinglab.design.loop`: the adaptive loop's decisions, shared by simulation and sweeps;
- :mod:`~scalinglab.design.simulate`: :func:`simulate` -> :class:`SimulationResult`.
"""

from scalinglab.design.layouts import FlopSpace, GridLayout, IsoflopLayout
from scalinglab.design.loop import AdaptiveSettings, next_step, seed_positions
from scalinglab.design.propose import Proposal, ProposedRun, propose
from scalinglab.design.simulate import (
    AdaptiveDesign,
    FixedDesign,
    Noise,
    SimulationResult,
    default_designs,
    resolve_truth,
    simulate,
)
from scalinglab.design.spread import Spread

__all__ = [
    "AdaptiveDesign",
    "AdaptiveSettings",
    "FixedDesign",
    "FlopSpace",
    "GridLayout",
    "IsoflopLayout",
    "Noise",
    "Proposal",
    "ProposedRun",
    "SimulationResult",
    "Spread",
    "default_designs",
    "next_step",
    "propose",
    "resolve_truth",
    "seed_positions",
    "simulate",
]
