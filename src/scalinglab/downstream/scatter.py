"""The link's model-to-model scatter: what a chained interval must add to parameter uncertainty.

A link fitted across models (task loss -> accuracy, say) has two kinds of uncertainty. Its
parameters are uncertain (the bootstrap draws carry that), and a *new model* does not sit on the
curve: models with the same task loss differ in accuracy by a spread that no amount of fitting
removes. An interval for a model not yet trained must carry both, or it covers the curve, not
the model (the OLMo ladder's 7B lies ~1 point of accuracy off a curve whose parameter band is a
fraction of that).

:func:`model_scatter` measures that spread from one residual per model (its last point, or its
mean), so checkpoints of one model do not count as many models; :func:`add_scatter` adds it to a
draw matrix, a fresh normal deviate per draw and point. Shared with ``downstream.chain``'s chained
intervals (issue 24) so both use one definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def model_scatter(residuals: Any, models: Sequence[Any] | None = None, *, last: bool = True) -> float:
    """Standard deviation of the link's residuals across models (ddof = 1).

    ``models`` labels each residual (checkpoints of one model share a label): each model
    contributes one residual, its last (``last=True``, the points are in training order) or its
    mean. Without labels every residual is a model. NaN with fewer than 2 models.
    """
    r = np.asarray(residuals, dtype=float).ravel()
    if models is not None:
        labels = list(models)
        if len(labels) != len(r):
            raise ValueError(f"{len(labels)} model labels for {len(r)} residuals")
        per: dict[Any, list[float]] = {}
        for lab, v in zip(labels, r, strict=True):
            if np.isfinite(v):
                per.setdefault(lab, []).append(float(v))
        r = np.array([vs[-1] if last else float(np.mean(vs)) for vs in per.values()])
    r = r[np.isfinite(r)]
    return float(np.std(r, ddof=1)) if len(r) >= 2 else float("nan")


def add_scatter(draws: np.ndarray, sd: float, rng: np.random.Generator,
                min_samples: int = 4000) -> np.ndarray:
    """``draws`` (K, m) plus an independent N(0, sd) per entry (unchanged if sd is not finite).

    Each draw is repeated until there are at least ``min_samples`` rows, each copy with its own
    deviate: with 50-200 bootstrap draws a single deviate per draw leaves the tails of the
    scatter to a handful of samples (measured: 60 draws gave a 95% width 25% short of
    2 x 1.96 sd), and the percentile interval of the sum would be as noisy."""
    draws = np.asarray(draws, dtype=float)
    if not np.isfinite(sd) or sd <= 0 or not len(draws):
        return draws
    reps = max(1, -(-min_samples // len(draws)))
    tiled = np.repeat(draws, reps, axis=0)
    return tiled + rng.normal(0.0, sd, size=tiled.shape)


__all__ = ["add_scatter", "model_scatter"]
