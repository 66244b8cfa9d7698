"""Runs chosen for the fit we will actually make, on a law that may be wrong.

:class:`~scalinglab.design.greedy.Belief` scores a run by how much it narrows the law's
parameters where the target's predictions depend on them. That is the right score when the law
is true. When it is not (every law of ScaleBench's eight tasks misses its own held-out top slice
when fitted to all its runs: moe 0.11, vocab -1.0 on the training split's costliest 10%), the
least-squares fit of the runs bought is pulled towards wherever most of those runs sit, and a
hundred cheap runs far from the target outvote the few near it. The score here is the expected
squared error of that least-squares fit over the target rows, noise and the law's discrepancy
included (the integrated mean squared error of Box & Draper 1959, with the discrepancy a smooth
Gaussian process as in Kennedy & O'Hagan 2001)::

    y(x) = f(x; theta) + delta(x) + eps,   delta ~ GP(0, tau2 k),   eps ~ N(0, s2)
    theta_hat - theta ~= W^-1 J_S' (delta_S + eps_S),    W = J_S'J_S + R
    MSPE(S) = sum_t E[(J_t (theta_hat - theta) - delta_t)^2]
            = tr(W^-1 F W^-1 Q) - 2 tau2 tr(W^-1 H) + tau2 |T|

with ``F = J_T'J_T``, ``Q = J_S'(tau2 K_SS + s2 I)J_S`` and ``H = J_S' K_ST J_T``. A run near the
target lowers it (the fit absorbs the discrepancy there); a run far from it can raise it (it
dilutes that correction), so it is never bought, however cheap. With ``tau2 = 0`` it is the
V-optimal criterion of the least-squares fit. Adding candidate ``c`` changes ``W``, ``Q`` and
``H`` by rank one, so every candidate's new value is a handful of ``P``-vector products
(``O(M P^2)`` for ``M`` candidates and ``P`` parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.design.greedy import better_of, greedy_picks


def correlation(a: np.ndarray, b: np.ndarray, length: float) -> np.ndarray:
    """Squared-exponential correlation between the rows of ``a`` (n, d) and ``b`` (m, d)."""
    d2 = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    return np.exp(-0.5 * d2 / length**2)


@dataclass
class LsqProblem:
    """Linearised rows at the estimate, one output each: ``obs`` (n, P) of the runs made,
    ``target`` (T, P), ``cand`` (M, P), and each one's coordinates ``x_*`` (standardised
    inputs, for the discrepancy's correlation of length ``length``); the discrepancy's variance
    ``tau2``, the noise ``s2``, and ``ridge`` (P, P), a weak prior's precision times ``s2``,
    so that ``W`` is never singular."""

    obs: np.ndarray
    target: np.ndarray
    cand: np.ndarray
    x_obs: np.ndarray
    x_target: np.ndarray
    x_cand: np.ndarray
    tau2: float
    s2: float
    ridge: np.ndarray
    length: float = 1.0

    def __post_init__(self) -> None:
        self._k_ct = correlation(self.x_cand, self.x_target, self.length)     # (M, T)
        self._hv = self._k_ct @ self.target                                   # sum_t k_ct J_t
        self._f = self.target.T @ self.target

    def _parts(self, chosen: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                 np.ndarray]:
        """``A = W^-1``, ``Q``, ``H`` and ``J_S' Sigma_{S,c}`` for the runs made plus
        ``chosen``."""
        r = np.asarray(chosen, dtype=int)
        j = np.vstack([self.obs, self.cand[r]])
        xs = np.vstack([self.x_obs, self.x_cand[r]])
        k_ss = correlation(xs, xs, self.length)
        a = np.linalg.pinv(j.T @ j + self.ridge, hermitian=True)
        q = j.T @ (self.tau2 * k_ss + self.s2 * np.eye(len(j))) @ j
        h = j.T @ correlation(xs, self.x_target, self.length) @ self.target
        qv = self.tau2 * correlation(self.x_cand, xs, self.length) @ j
        return a, q, h, qv

    def mspe(self, chosen: list[int] | None = None) -> float:
        """The expected summed squared error over the target rows of the least-squares fit of
        the runs made plus candidates ``chosen``."""
        a, q, h, _ = self._parts(list(chosen or []))
        return float(np.sum((a @ self._f @ a) * q) - 2.0 * self.tau2 * np.trace(a @ h)
                     + self.tau2 * len(self.target))

    def reductions(self, chosen: list[int]) -> tuple[np.ndarray, float]:
        """How much adding each candidate to the runs made and ``chosen`` would lower
        :meth:`mspe`, and its current value. Negative: that run would make the fit worse."""
        a, q, h, qv = self._parts(chosen)
        tau2, f, c = self.tau2, self._f, self.cand
        afa, fa, af = a @ f @ a, f @ a, a @ f
        tr_ah = float(np.trace(a @ h))
        const = tau2 * len(self.target)
        base = float(np.sum(afa * q)) - 2.0 * tau2 * tr_ah + const
        u = c @ a                                              # A c, row by row
        cu = np.sum(c * u, axis=1)
        d = 1.0 + cu                                           # W'^-1 = A - u u' / d

        def quad(x: np.ndarray, m: np.ndarray, y: np.ndarray) -> np.ndarray:
            return np.sum(x * (y @ m.T), axis=1)              # x' M y, row by row

        uf_u = quad(u, f, u)

        def czv(v: np.ndarray) -> np.ndarray:                  # c' Z v, Z = W'^-1 F W'^-1
            uv = np.sum(u * v, axis=1)
            return (quad(c, afa, v) - (cu * quad(u, fa, v) + quad(c, af, u) * uv) / d
                    + cu * uf_u * uv / d**2)

        # tr(Z Q') with Q' = Q + qv c' + c qv' + (tau2 + s2) c c'
        var = (float(np.sum(afa * q)) - 2.0 * quad(u, fa @ q, u) / d
               + uf_u * quad(u, q, u) / d**2 + 2.0 * czv(qv) + (tau2 + self.s2) * czv(c))
        hu = np.sum(self._hv * u, axis=1)
        cross = tr_ah + hu - (quad(u, h, u) + cu * hu) / d      # tr(W'^-1 H')
        after = var - 2.0 * tau2 * cross + const
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(after), base - after, -np.inf), base


def choose_lsq(problem: LsqProblem, cost: np.ndarray, budget: float, k: int, *,
               cost_power: float = 1.0, rival: bool = True, min_gain: float = 1e-4
               ) -> tuple[list[int], list[float], float, float]:
    """Greedily pick up to ``k`` candidates of total cost ``<= budget`` that lower the fit's
    expected target error the most per ``cost ** cost_power`` (and, with ``rival``, also by
    the reduction alone, keeping whichever choice ends lower). A candidate that would lower it
    by less than ``min_gain`` of its current value is never picked. Returns the picks, each
    one's share removed, and the value before and after."""
    cost = np.asarray(cost, dtype=float)
    start = problem.mspe([])
    scale = abs(start) if start != 0 else 1.0

    def choose(power: float) -> tuple[list[int], list[float], float, float]:
        picks, shares = greedy_picks(lambda chosen: problem.reductions(chosen)[0] / scale, cost,
                                     budget, k, power=power, min_gain=min_gain)
        return picks, shares, start, problem.mspe(picks)

    return better_of(choose, lambda got: got[3], cost_power, rival)[0]
