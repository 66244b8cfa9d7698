"""Fit the optimal AdamW timescale as a power law in tokens per parameter (Power Lines).

Bergsma et al. 2025 find that the best ``tau = B / (lr * lambda * D)`` (the EMA timescale of
AdamW as a fraction of the run) falls as a power law in ``D / N``. From a weight-decay sweep at
several (N, D): each run's tau follows from the timescale law; each group's optimal tau is the
minimiser of a parabola in ln tau through its runs near the best (the best run's tau when the
parabola is not convex or falls outside the swept range); ln tau_opt is then regressed on
ln(D/N), with a group bootstrap for intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from scalinglab.errors import NotIdentifiable
from scalinglab.hparams.bootstrap import weighted_lstsq_batch
from scalinglab.hparams.grid import Grid
from scalinglab.laws.base import LawInstance, Provenance
from scalinglab.laws.hparams import ADAMW_TIMESCALE, TAU_LAW
from scalinglab.results import Result
from scalinglab.stats import bootstrap_weights, check_count, check_level, percentile_interval
from scalinglab.summary import Summary, Table, format_interval


def group_tau_opt(tau: np.ndarray, loss: np.ndarray, window: float = 0.02) -> tuple[float, str]:
    """One group's optimal tau and how it was found ("parabola" or "best run")."""
    best = int(np.argmin(loss))
    keep = loss <= loss[best] * (1.0 + window)
    x = np.log(tau[keep])
    if len(np.unique(x)) >= 3:
        c2, c1, _ = np.polyfit(x, loss[keep], 2)
        if c2 > 0:
            x_opt = -c1 / (2.0 * c2)
            if np.log(tau).min() <= x_opt <= np.log(tau).max():
                return float(np.exp(x_opt)), "parabola"
    return float(tau[best]), "best run"


@dataclass(repr=False)
class TauFit(Result):
    """``tau_opt = exp(intercept) * (D/N)^coef_TPP`` with bootstrap draws."""

    kind: ClassVar[str] = "tau_fit"

    law: LawInstance
    draws: np.ndarray | None
    groups: list[dict[str, Any]]
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    data_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ci(self) -> dict[str, list[float]]:
        if self.draws is None or len(self.draws) == 0:
            return {}
        lo, hi = percentile_interval(self.draws, self.level)
        return {k: [float(lo[i]), float(hi[i])] for i, k in enumerate(self.law.law.param_names)}

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        return (tuple(self.law.law.param_names), self.draws)

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "formula": self.law.law.formula,
            "params": dict(self.law.params),
            "prefactor": float(np.exp(self.law.params["intercept"])),
            "ci": self.ci,
            "level": self.level,
            "n_groups": len(self.groups),
            "n_runs": self.n_runs,
            "groups": self.groups,
            "data_range": {k: list(v) for k, v in self.data_range.items()},
            "warnings": self.warnings,
            "notes": self.notes,
            "run_ids": list(self.run_ids),
        }
        if include_draws and self.draws is not None:
            out["draws"] = self.draws.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TauFit:
        rng = {k: (float(v[0]), float(v[1])) for k, v in (data.get("data_range") or {}).items()}
        law = TAU_LAW.with_params(
            data["params"],
            provenance=Provenance(source="fitted optimal AdamW timescale", valid_range=rng),
            label="fitted tau",
        )
        draws = data.get("draws", data.get("boot"))  # "boot": files saved before 0.2
        return cls(law=law, draws=None if draws is None else np.asarray(draws, dtype=float),
                   groups=list(data.get("groups", [])),
                   run_ids=tuple(str(x) for x in data.get("run_ids") or ()),
                   level=float(data.get("level", 0.95)), data_range=rng,
                   warnings=list(data.get("warnings", [])), notes=list(data.get("notes", [])))

    def summary(self) -> Summary:
        pct = f"{round(self.level * 100)}% interval"
        table = Table("tau_opt = exp(intercept) * (D/N)^coef_TPP", ["coefficient", "estimate", pct])
        ci = self.ci
        for k, v in self.law.params.items():
            table.add_row(k, v, format_interval(ci.get(k)))
        facts = [("prefactor", f"{np.exp(self.law.params['intercept']):.4g}")]
        return Summary(title=f"optimal AdamW timescale ({len(self.groups)} groups, {self.n_runs} runs)",
                       tables=[table], facts=facts, notes=list(self.notes),
                       warnings=list(self.warnings), data=self.to_dict())

    def _repr_items(self) -> list[str]:
        return [f"{len(self.groups)} groups", f"coef_TPP={self.law.params['coef_TPP']:.3f}"]


def fit_tau_law(
    grid: Grid, n_boot: int = 1000, seed: int = 0, window: float = 0.02, level: float = 0.95
) -> TauFit:
    """Fit ``ln tau_opt = intercept + coef_TPP ln(D/N)`` from a grid with a weight_decay column."""
    n_boot = check_count(n_boot, "n_boot")
    check_level(level)
    f = grid.frame
    if "weight_decay" not in f.columns:
        raise NotIdentifiable("the grid has no weight_decay column")
    warnings = list(grid.notes)
    zero = f["weight_decay"] <= 0
    if zero.any():
        warnings.append(f"{int(zero.sum())} runs with weight_decay = 0 (tau infinite) left out")
        f = f[~zero]
    tau_all = ADAMW_TIMESCALE.predict(batch_tokens=f["batch_tokens"].to_numpy(float),
                                      lr=f["lr"].to_numpy(float),
                                      weight_decay=f["weight_decay"].to_numpy(float),
                                      D=f["D"].to_numpy(float))
    f = f.assign(tau=tau_all)
    groups: list[dict[str, Any]] = []
    for (N, D), g in f.groupby(["N", "D"], sort=True):
        tau, how = group_tau_opt(g["tau"].to_numpy(float), g["loss"].to_numpy(float), window)
        groups.append({"N": float(N), "D": float(D), "TPP": float(D / N), "tau_opt": tau,
                       "how": how, "n_runs": int(len(g))})
    tpp = np.array([g["TPP"] for g in groups])
    if len(np.unique(tpp)) < 3:
        raise NotIdentifiable(
            f"tau_opt vs D/N needs at least 3 distinct D/N values; the grid has {len(np.unique(tpp))}"
        )
    X = np.stack([np.ones_like(tpp), np.log(tpp)], axis=1)
    y = np.log([g["tau_opt"] for g in groups])
    W = np.ones((1, len(y)))
    if n_boot > 0:
        W = np.vstack([W, bootstrap_weights(len(y), n_boot, np.random.default_rng(seed))])
    beta = weighted_lstsq_batch(X, y, W)
    rng = {"TPP": (float(tpp.min()), float(tpp.max()))}
    law = TAU_LAW.with_params(
        {"intercept": beta[0, 0], "coef_TPP": beta[0, 1]},
        provenance=Provenance(source=f"fitted optimal AdamW timescale on {len(groups)} groups",
                              valid_range=rng),
        label="fitted tau",
    )
    from scalinglab.hparams.fit import run_ids_of

    return TauFit(law=law, draws=beta[1:] if n_boot > 0 else None, groups=groups,
                  run_ids=tuple(run_ids_of(f)), level=level, data_range=rng, warnings=warnings)
