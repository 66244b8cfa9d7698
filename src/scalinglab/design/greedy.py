"""The one design engine: greedy choice of runs by expected variance reduction per unit cost.

Every design in scalinglab (the (N, D) proposals of ``design next`` and ``sweep auto``, and the
pool designs of ``design pool``) describes what it is unsure of as a linear-Gaussian belief in a
latent space of dimension ``R``::

    figures we aim at   g = g0 + G w        (T rows of G, one per figure)
    a candidate's runs  y_j = y0_j + C_j w + noise       (C_j: O x R, one row per output)
    w ~ N(0, S)

``w`` is the law's parameters in their fitting coordinates (a Fisher / Laplace belief, ``S`` the
inverse information) or the coefficients of a bootstrap ensemble (``G`` and ``C`` the centred
draws, ``S = I``). Observing candidate ``j`` conditions ``w`` on ``O`` noisy linear views,
the Kalman update ``S <- S - S C_j' (C_j S C_j' + s2 I)^-1 C_j S``, and removes
``tr(K_j C_j S F S C_j')`` of the objective ``tr(F S)`` with ``F = G' W G``, so the gain of every
candidate is a small quadratic form and a batch is chosen greedily, each pick conditioning the
next. The cost of a round is ``O(M O^2 R^2)`` for ``M`` candidates, independent of the number
of aimed-at figures.

Every design's greedy loop is :func:`greedy_picks` (gain per cost under a budget, each pick
conditioning the next) and :func:`better_of` (the rival choice by gain alone): the variance
design here, the discrepancy design (:mod:`scalinglab.design.robust`) and the identification
start of the pool design (:func:`scalinglab.design.pool.identification_picks`) differ only in
how they score a candidate given the picks before it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def best_affordable(gain: np.ndarray, cost: np.ndarray, left: float, *, allowed: np.ndarray,
                    power: float = 1.0, price: float = 0.0, min_gain: float = 0.0) -> int | None:
    """The candidate to buy next: among those ``allowed``, affordable from ``left`` and removing
    more than ``min_gain``, the one with the most gain per ``(cost + price) ** power`` (gain alone
    at ``power = 0`` or ``price = inf``); None when there is none: each step of
    :func:`greedy_picks`."""
    if np.isinf(price) or power == 0:
        value = gain
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = gain / np.maximum(cost + price, 1e-300) ** power
    ok = allowed & (cost <= left * (1 + 1e-12)) & (gain > min_gain)
    score = np.where(ok, value, -np.inf)
    j = int(np.argmax(score))
    return j if np.isfinite(score[j]) else None


def greedy_picks(gains_given: Callable[[list[int]], np.ndarray], cost: np.ndarray, budget: float,
                 k: int, *, allowed: np.ndarray | None = None, power: float = 1.0,
                 price: float = 0.0, min_gain: float = 0.0) -> tuple[list[int], list[float]]:
    """The one greedy loop of every design: up to ``k`` candidates of total ``cost <= budget``,
    each the :func:`best_affordable` by its gain given the picks before it
    (``gains_given(picks)``, one value per candidate, called with the growing list of picks).
    Returns the picks in order and each one's gain when it was picked."""
    cost = np.asarray(cost, dtype=float)
    free = np.ones(len(cost), bool) if allowed is None else np.asarray(allowed, bool).copy()
    picks: list[int] = []
    gains: list[float] = []
    left = float(budget)
    for _ in range(int(k)):
        g = gains_given(picks)
        j = best_affordable(g, cost, left, allowed=free, power=power, price=price,
                            min_gain=min_gain)
        if j is None:
            break
        picks.append(j)
        gains.append(float(g[j]))
        free[j] = False
        left -= float(cost[j])
    return picks, gains


def better_of(choose: Callable[[float], T], after: Callable[[T], float], power: float,
              rival: bool = True) -> tuple[T, bool]:
    """``choose(power)`` (gain per ``cost ** power``), or, with ``rival`` and ``power > 0``,
    ``choose(0)`` (gain alone) when that ends at a lower ``after`` objective. The cost-benefit
    greedy alone can be arbitrarily worse under a budget; the better of the two is within a
    constant factor of the best choice for a submodular gain (Krause & Guestrin 2005, Leskovec
    et al. 2007). Returns the choice kept and whether it is the gain-alone one."""
    best = choose(power)
    if rival and power > 0:
        alone = choose(0.0)
        if after(alone) < after(best):
            return alone, True
    return best, False

@dataclass
class Belief:
    """``target`` (T, R) factor rows of the aimed-at figures, ``cand`` (M, O, R) of each
    candidate's outputs, ``cov`` (R, R) of the latent ``w``, ``noise_var`` of one output of a new
    run, ``weights`` (T,) of the figures (default 1: the objective is the summed variance)."""

    target: np.ndarray
    cand: np.ndarray
    cov: np.ndarray
    noise_var: float
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.target = np.atleast_2d(np.asarray(self.target, dtype=float))
        cand = np.asarray(self.cand, dtype=float)
        self.cand = cand[:, None, :] if cand.ndim == 2 else cand
        self.cov = np.atleast_2d(np.asarray(self.cov, dtype=float))
        w = np.ones(len(self.target)) if self.weights is None else np.asarray(self.weights, float)
        self.weights = w
        self._F = (self.target.T * w) @ self.target

    @property
    def n_candidates(self) -> int:
        return len(self.cand)

    def objective(self, cov: np.ndarray | None = None) -> float:
        """``sum_t w_t Var[g_t]``, the weighted variance of the aimed-at figures."""
        return float(np.sum(self._F * (self.cov if cov is None else cov)))

    def target_variances(self, cov: np.ndarray | None = None) -> np.ndarray:
        cov = self.cov if cov is None else cov
        return np.einsum("tr,rs,ts->t", self.target, cov, self.target)

    def gains(self, cov: np.ndarray | None = None) -> np.ndarray:
        """Absolute reduction of :meth:`objective` if each candidate were observed now."""
        cov = self.cov if cov is None else cov
        cs = self.cand @ cov                                   # (M, O, R) = C_j S
        o = self.cand.shape[1]
        if o == 1:                                             # the common case, no solves
            c1, s1 = cs[:, 0, :], self.cand[:, 0, :]
            with np.errstate(all="ignore"):
                g = np.einsum("mr,mr->m", c1 @ self._F, c1) / (np.einsum("mr,mr->m", c1, s1)
                                                               + self.noise_var)
        else:
            a = np.einsum("mor,mpr->mop", cs @ self._F, cs)    # C_j S F S C_j'
            s = np.einsum("mor,mpr->mop", cs, self.cand) + self.noise_var * np.eye(o)
            g = np.trace(np.linalg.solve(s, a), axis1=1, axis2=2)
        return np.where(np.isfinite(g), np.maximum(g, 0.0), 0.0)

    def condition(self, j: int, cov: np.ndarray | None = None) -> np.ndarray:
        """The latent covariance once candidate ``j`` is observed."""
        cov = self.cov if cov is None else cov
        c = self.cand[j]                                       # (O, R)
        cs = c @ cov
        s = cs @ c.T + self.noise_var * np.eye(len(c))
        out = cov - cs.T @ np.linalg.solve(s, cs)
        return 0.5 * (out + out.T)

    def choose(self, cost: np.ndarray, budget: float, k: int, *, price: float = 0.0,
               cost_power: float = 1.0, available: np.ndarray | None = None,
               min_gain: float = 0.0) -> Picks:
        """Greedily pick up to ``k`` candidates of total cost ``<= budget``, each maximising its
        gain (the share of the objective it removes, given the picks before it) per
        ``(cost + price) ** cost_power``; ``price = inf`` (or ``cost_power = 0``) picks by gain
        alone. A candidate that would remove less than ``min_gain`` is never picked."""
        base = self.objective()
        scale = base if base > 0 else 1.0
        state = {"cov": self.cov.copy(), "n": 0}

        def gains_given(picks: list[int]) -> np.ndarray:
            for j in picks[state["n"]:]:                  # condition on the newest picks
                state["cov"] = self.condition(j, state["cov"])
            state["n"] = len(picks)
            return self.gains(state["cov"]) / scale

        picks, gains = greedy_picks(gains_given, cost, budget, k, allowed=available,
                                    power=cost_power, price=price, min_gain=max(min_gain, 0.0))
        cov = state["cov"]
        for j in picks[state["n"]:]:
            cov = self.condition(j, cov)
        cost = np.asarray(cost, dtype=float)
        return Picks(picks, gains, self.target_variances(), self.target_variances(cov),
                     base, self.objective(cov), float(cost[picks].sum()) if picks else 0.0, cov)


@dataclass
class Picks:
    """The candidates picked (indices, in order), each one's share of the objective removed when
    it was picked, each figure's variance and the objective before and after all of them."""

    picks: list[int]
    gains: list[float]
    var_before: np.ndarray
    var_after: np.ndarray
    objective_before: float
    objective_after: float
    cost: float
    cov_after: np.ndarray

    @property
    def share_removed(self) -> float:
        if not self.objective_before > 0:
            return 0.0
        return float(1.0 - self.objective_after / self.objective_before)


def factor(cov: np.ndarray, rel_tol: float = 1e-12) -> np.ndarray:
    """``L`` with ``L L' = cov`` (eigenvectors scaled; null directions dropped), so a belief
    given as one joint covariance can be put in latent form with ``S = I``."""
    cov = 0.5 * (np.asarray(cov, dtype=float) + np.asarray(cov, dtype=float).T)
    vals, vecs = np.linalg.eigh(cov)
    keep = vals > rel_tol * max(float(vals.max(initial=0.0)), 1e-300)
    return vecs[:, keep] * np.sqrt(vals[keep])
