"""The result of fitting a law: point estimate, bootstrap draws, intervals, diagnostics.

Modelled on statsmodels' result objects: everything a planner, a report or a plot needs is on
the result, and ``to_dict`` is the JSON the CLI prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalinglab.laws.base import ArrayLike, Law, LawInstance, Provenance


class NotIdentifiable(ValueError):
    """The data cannot pin down the law's parameters; the message says why."""


@dataclass
class FitResult:
    law: Law
    params: dict[str, float]
    n_runs: int
    objective: float
    #: bootstrap draws of the parameters, shape (K, len(law.param_names)); None without bootstrap
    draws: np.ndarray | None = None
    level: float = 0.95
    #: std of residuals of log-loss (natural log) at the point estimate
    residual_std: float = float("nan")
    warnings: list[str] = field(default_factory=list)
    #: ``{"k": .., "mean_abs_rel_err": .., "max_abs_rel_err": .., "runs": [...]}`` when held out
    holdout: dict[str, Any] | None = None
    #: input ranges seen in the data, e.g. {"N": (lo, hi), "D": (lo, hi)}
    data_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def instance(self) -> LawInstance:
        return self.law.with_params(
            self.params,
            provenance=Provenance(
                source=f"fitted by scalinglab on {self.n_runs} runs",
                valid_range=self.data_range,
            ),
            label=f"{self.law.name} (fitted)",
        )

    def predict(self, **inputs: ArrayLike) -> np.ndarray:
        return self.law(self.params, **inputs)

    def draw_params(self) -> list[dict[str, float]]:
        if self.draws is None:
            return []
        return [dict(zip(self.law.param_names, row, strict=True)) for row in self.draws]

    def _quantiles(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha = (1.0 - self.level) / 2.0
        with np.errstate(invalid="ignore"):  # inf draws: the percentile is inf, not a warning
            return np.nanquantile(values, alpha, axis=0), np.nanquantile(values, 1.0 - alpha, axis=0)

    @property
    def ci(self) -> dict[str, tuple[float, float]]:
        """Percentile bootstrap interval of each parameter (empty without bootstrap)."""
        if self.draws is None or len(self.draws) == 0:
            return {}
        lo, hi = self._quantiles(self.draws)
        return {
            k: (float(lo[i]), float(hi[i])) for i, k in enumerate(self.law.param_names)
        }

    def predict_interval(self, **inputs: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point prediction and percentile band over bootstrap draws."""
        point = self.predict(**inputs)
        if self.draws is None or len(self.draws) == 0:
            return point, point * np.nan, point * np.nan
        with np.errstate(all="ignore"):  # extreme draws overflow to inf: they still count
            draws = np.stack([self.law(p, **inputs) for p in self.draw_params()])
        lo, hi = self._quantiles(draws)
        return point, lo, hi

    def derived_interval(self, fn) -> tuple[Any, Any, Any]:
        """Apply ``fn(params_dict) -> float|array`` to the estimate and every bootstrap draw."""
        point = fn(self.params)
        if self.draws is None or len(self.draws) == 0:
            return point, None, None
        draws = np.asarray([fn(p) for p in self.draw_params()], dtype=float)
        lo, hi = self._quantiles(draws)
        return point, lo, hi

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        out = {
            "law": self.law.name,
            "formula": self.law.formula,
            "params": {k: float(v) for k, v in self.params.items()},
            "ci": {k: [lo, hi] for k, (lo, hi) in self.ci.items()},
            "level": self.level,
            "n_runs": self.n_runs,
            "n_bootstrap": 0 if self.draws is None else int(len(self.draws)),
            "objective": float(self.objective),
            "residual_std": float(self.residual_std),
            "data_range": {k: list(v) for k, v in self.data_range.items()},
            "holdout": self.holdout,
            "warnings": list(self.warnings),
            **self.extra,
        }
        if include_draws and self.draws is not None:
            out["draws"] = np.asarray(self.draws).tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitResult:
        """Rebuild a result saved with ``to_dict(include_draws=True)`` (e.g. ``fit --save``)."""
        from scalinglab.laws.loss import get_loss_law

        law = get_loss_law(data["law"])
        boot = data.get("draws", data.get("boot"))  # "boot": files saved before 0.2
        known = {
            "law", "formula", "params", "ci", "level", "n_runs", "n_bootstrap", "objective",
            "residual_std", "data_range", "holdout", "warnings", "boot", "draws",
        }
        return cls(
            law=law,
            params={k: float(v) for k, v in data["params"].items()},
            n_runs=int(data.get("n_runs", 0)),
            objective=float(data.get("objective") or float("nan")),
            draws=None if boot is None else np.asarray(boot, dtype=float),
            level=float(data.get("level", 0.95)),
            residual_std=float(data.get("residual_std") or float("nan")),
            warnings=list(data.get("warnings", [])),
            holdout=data.get("holdout"),
            data_range={k: tuple(v) for k, v in (data.get("data_range") or {}).items()},
            extra={k: v for k, v in data.items() if k not in known},
        )
