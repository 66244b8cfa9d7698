"""Synthetic repeated-sampling data whose coverage follows a known law, for tests and examples.

Coverage is an average over problems of ``1 - (1 - p)^k`` for per-problem success rates p.
For a target law ``coverage(k) = exp(a k^b)`` we find a distribution of p that produces it:
non-negative weights on a grid of p (logit-spaced, so very hard problems are represented) that
reproduce the law at 80 log-spaced k up to ``k_max``, by non-negative least squares (with
``a=-1.2, b=-0.35`` the mixture matches the law to 3e-14). Problems then draw their p from that
mixture and their correct counts from a binomial: real sampling noise on an exactly known curve.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from scalinglab.errors import ParameterError
from scalinglab.testtime.counts import ProblemCounts


def difficulty_mixture(a: float, b: float, k_max: int = 10_000, n_grid: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """``(p, weight)``: success rates and their probabilities such that the mean of
    ``1 - (1 - p)^k`` is ``exp(a k^b)`` for 1 <= k <= ``k_max``."""
    if not (a < 0 and b < 0):
        raise ParameterError("a coverage law rising to 1 needs a < 0 and b < 0", "a", "b")
    ks = np.unique(np.geomspace(1, k_max, 80).round())
    p = 1.0 / (1.0 + np.exp(-np.linspace(-16.0, 8.0, n_grid)))
    M = -np.expm1(ks[:, None] * np.log1p(-p[None, :]))
    target = np.exp(a * ks**b)
    A = np.vstack([M, 1e3 * np.ones(len(p))])
    w, _ = nnls(A, np.append(target, 1e3), maxiter=20 * n_grid)
    keep = w > 0
    return p[keep], w[keep] / w[keep].sum()


def simulate_counts(
    a: float, b: float, *, n_problems: int = 500, n_samples: int = 1000,
    rng: np.random.Generator | None = None, k_max: int | None = None,
) -> ProblemCounts:
    """Per-problem counts: p from :func:`difficulty_mixture`, ``c ~ Binomial(n_samples, p)``."""
    rng = np.random.default_rng(0) if rng is None else rng
    p, w = difficulty_mixture(a, b, k_max=k_max or max(n_samples, 10))
    rates = rng.choice(p, size=n_problems, p=w)
    c = rng.binomial(n_samples, rates)
    return ProblemCounts(tuple(f"p{i}" for i in range(n_problems)), np.full(n_problems, n_samples),
                         c.astype(np.int64), source="synthetic")


__all__ = ["difficulty_mixture", "simulate_counts"]
