"""Designs a sweep can run: candidate runs as real shapes and step counts, and plans of them.

An adaptive design picks among runs that can actually be trained: a model size is a shape
(:func:`scalinglab.sweep.shapes.shape_for`, so N is the shape's own non-embedding count, not the
target's), and a token count is a whole number of optimiser steps of the batch. The learning rate
and batch of each run come from the sweep's defaults, or from a hyperparameter law (Step Law,
DeepSeek, or one fitted with ``scalinglab hparams fit``) evaluated at the run's (N, D), the batch
rounded to whole sequences and the lr moved with it by the square-root rule for Adam, as the
planner does. Proposals become ordinary sweep plans (:class:`scalinglab.sweep.plan.SweepPlan`):
TOML a person can read and edit before running.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scalinglab.errors import ParameterError
from scalinglab.laws.hparams import SQRT_RULE_ADAM, HparamLaw
from scalinglab.sweep.data import DataSpec
from scalinglab.sweep.model import ModelConfig, non_embedding_params
from scalinglab.sweep.plan import Defaults, RunSpec, SweepPlan


@dataclass
class SweepCandidates:
    """Runs that could be trained next: their specs and (N, D, C) as arrays."""

    specs: list[RunSpec]
    N: np.ndarray
    D: np.ndarray

    @property
    def C(self) -> np.ndarray:
        return 6.0 * self.N * self.D

    def __len__(self) -> int:
        return len(self.specs)


@dataclass(frozen=True)
class SweepSpace:
    """Candidate runs of a sweep: shapes for ``n_sizes`` target sizes, each trained on token
    counts of ``n_tpp`` tokens-per-parameter values, kept where the run's compute lies in
    ``compute`` (FLOPs, 6ND), its tokens are at most ``max_tokens`` and its non-embedding
    parameters at most ``max_params``.

    ``max_tokens`` bounds wall time where FLOPs do not: a model of a few thousand parameters
    runs at about the same tokens per second as one ten times larger on a CPU (measured in the
    demo's store: 10-24k tokens/s from N = 49k to 3k under load), so a FLOP-cheap run of a tiny
    model on many tokens is among the slowest. ``max_params`` keeps the design where the sweep's
    recipe is trusted: at one fixed lr, runs far larger than it was tuned for scatter about any
    law (the demo's store: residuals of 6-12% above 3e4 parameters at lr 1e-2, 2% below)."""

    compute: tuple[float, float]
    tokens_per_param: tuple[float, float] = (2.0, 2000.0)
    defaults: Defaults = field(default_factory=Defaults)
    data: DataSpec = field(default_factory=DataSpec)
    hparams: HparamLaw | None = None
    n_sizes: int = 24
    n_tpp: int = 17
    name: str = "auto"
    max_tokens: float | None = None
    max_params: float | None = None

    def __post_init__(self) -> None:
        lo, hi = self.compute
        tlo, thi = self.tokens_per_param
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ParameterError(f"compute must be a range 0 < low <= high, not {self.compute}",
                                 "compute")
        if not 0 < tlo <= thi:
            raise ParameterError("tokens_per_param must be a range 0 < low <= high, not "
                                 f"{self.tokens_per_param}", "tokens_per_param")

    def _settings(self, model: ModelConfig, D: float) -> tuple[int, float, int]:
        """(tokens per step, lr, steps) for a run of ``model`` on about ``D`` tokens."""
        seq = self.defaults.seq_len
        lr, batch = self.defaults.lr, float(self.defaults.batch_tokens)
        if self.hparams is not None:
            N = non_embedding_params(model)
            pred = self.hparams.predict(N, D)
            law_lr, law_batch = float(np.asarray(pred["lr"])), float(np.asarray(pred["batch_tokens"]))
            batch = max(1, round(law_batch / seq)) * seq
            lr = float(SQRT_RULE_ADAM.predict(lr=law_lr, batch_tokens=law_batch,
                                              new_batch_tokens=batch))
        per_step = max(1, int(batch) // seq) * seq
        steps = max(self.defaults.min_steps, int(round(D / per_step)))
        return per_step, lr, steps

    def spec(self, model: ModelConfig, D: float) -> RunSpec:
        """The run of ``model`` on about ``D`` tokens, with the space's training settings."""
        per_step, lr, steps = self._settings(model, D)
        train = self.defaults.train(steps, lr=lr, batch_tokens=per_step)
        n = non_embedding_params(model)
        return RunSpec(model, train, self.data, {"sweep": self.name},
                       budget=float(f"{6.0 * n * steps * per_step:.4g}"))

    def candidates(self) -> SweepCandidates:
        (clo, chi), (tlo, thi) = self.compute, self.tokens_per_param
        n_lo, n_hi = math.sqrt(clo / (6.0 * thi)), math.sqrt(chi / (6.0 * tlo))
        if self.max_params is not None:
            n_hi = min(n_hi, float(self.max_params))
        seen: set[tuple[int, int]] = set()
        models: list[ModelConfig] = []
        for target in np.geomspace(n_lo, max(n_hi, n_lo), self.n_sizes):
            model = self.defaults.shape(float(target))
            key = (model.d_model, model.n_layers)
            if key not in seen:
                seen.add(key)
                models.append(model)
        specs, points = [], set()
        for model in models:
            n = non_embedding_params(model)
            for tpp in np.geomspace(tlo, thi, self.n_tpp):
                spec = self.spec(model, tpp * n)
                key2 = (spec.N, spec.D)
                ok = (clo * 0.999 <= spec.C <= chi * 1.001 and tlo * 0.5 <= spec.D / spec.N <= thi * 2
                      and (self.max_tokens is None or spec.D <= self.max_tokens)
                      and (self.max_params is None or spec.N <= self.max_params))
                if ok and key2 not in points:
                    points.add(key2)
                    specs.append(spec)
        if not specs:
            raise ParameterError(f"no shape and step count gives a run of {clo:.3g} to {chi:.3g} "
                                 f"FLOPs at {tlo:g} to {thi:g} tokens per parameter; widen the "
                                 "compute range", "compute")
        return SweepCandidates(specs, np.array([s.N for s in specs], float),
                               np.array([s.D for s in specs], float))


def plan_of(specs: Sequence[RunSpec], data: DataSpec, defaults: Defaults, name: str,
            notes: Sequence[str] = ()) -> SweepPlan:
    """A sweep plan (kind ``design``) of these runs, tagged with the sweep's name."""
    runs = [RunSpec(s.model, s.train, s.data, {**s.tags, "sweep": name}, s.budget) for s in specs]
    return SweepPlan(name, "design", runs, data, defaults.recorded(), list(notes))


def defaults_of(plan: SweepPlan) -> Defaults:
    """The :class:`Defaults` a plan's ``[defaults]`` table records (the rest as built in)."""
    known = set(Defaults.__dataclass_fields__)
    return Defaults(**{k: v for k, v in plan.defaults.items() if k in known})
