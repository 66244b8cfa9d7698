"""The fitting objective: a robust loss of log residuals, batched over starts and resamples.

The law's logarithm in its fitting parametrisation lives with the law
(:mod:`scalinglab.laws.logspace`); this module only combines it with the data into the
``fg(theta, rows)`` that :func:`scalinglab.fit.optimize.batched_lbfgs` minimises: Huber on
log-loss residuals, as Hoffmann et al. 2022 and Besiroglu et al. 2024 fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scalinglab.laws.base import Law
from scalinglab.laws.logspace import LogModel, Scratch, to_params

__all__ = ["HUBER_DELTA", "HuberObjective", "huber", "log_model", "to_params"]

#: Huber threshold on log-loss residuals used by Hoffmann et al. 2022 and Besiroglu et al. 2024
HUBER_DELTA = 1e-3

#: elements (rows x runs) of one block of the objective's work arrays: 2**16 doubles (512 KB
#: each) stay in cache; measured 8-12 ns per element from 64 to 25,000 runs, where a fixed 512
#: rows per block (100 MB arrays at 25,000 runs) took 50-90 ns
BLOCK_ELEMENTS = 1 << 16

#: row-wise dot products of two (k, n) arrays; np.vecdot (numpy >= 2) is the fastest
_rowdot = getattr(np, "vecdot", None) or (lambda a, b: np.einsum("ij,ij->i", a, b))


def log_model(law: Law, inputs: Mapping[str, np.ndarray]) -> LogModel:
    """The law's own fitting parametrisation, bound to the runs' inputs."""
    return law.log_model(inputs)


def huber(r: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    """Huber loss: ``r^2/2`` within ``delta`` of zero, ``delta (|r| - delta/2)`` beyond."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


class HuberObjective:
    """``sum_i w_i Huber_delta(log Lhat_i - log L_i) / delta`` and its gradient, batched.

    Dividing by ``delta`` makes the objective about the sum of absolute log residuals (order 1
    instead of order 1e-3), so L-BFGS-B's relative tolerances mean the same thing as on a
    well-scaled problem; the minimiser is unchanged. ``weights`` (R, n), when given, are
    per-resample run multiplicities and ``row_weights`` (S,) picks each start's resample: the
    bootstrap never copies data. ``chunk`` (rows per block of work arrays) defaults to what keeps
    a block within :data:`BLOCK_ELEMENTS`, whatever the number of runs.
    """

    def __init__(
        self,
        model: LogModel,
        loss: np.ndarray,
        delta: float = HUBER_DELTA,
        weights: np.ndarray | None = None,
        row_weights: np.ndarray | None = None,
        chunk: int | None = None,
    ) -> None:
        self.model = model
        self.log_loss = np.log(np.asarray(loss, dtype=float))
        self.delta = delta
        self.weights = weights
        self.row_weights = row_weights
        #: rows per block: as many as keep a block within BLOCK_ELEMENTS
        self.chunk = chunk or max(1, BLOCK_ELEMENTS // max(len(self.log_loss), 1))
        self.scratch = Scratch()

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """``log Lhat - log L`` per run at each row of ``theta`` (a fresh array)."""
        return self.model.forward(np.atleast_2d(theta), self.log_loss)[0].copy()

    def __call__(self, theta: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Objective values (k,) and gradients (k, P); the gradients are column-major, so that
        their transpose, which the batched optimiser works with, is contiguous."""
        n = len(theta)
        f, g = np.empty(n), np.empty(theta.shape, order="F")
        with np.errstate(all="ignore"):  # wild trial points give inf, which line searches reject
            prep = self.model.prepare(theta)
            # blocks of rows keep the (rows x runs) work arrays in cache
            for i in range(0, n, self.chunk):
                sl = slice(i, min(i + self.chunk, n))
                self._block(prep, sl, rows[sl], f[sl], g[sl])
        return f, g

    def _block(self, prep: Any, sl: slice, rows: np.ndarray, f: np.ndarray, g: np.ndarray) -> None:
        r, ctx = self.model.forward_rows(prep, sl, self.log_loss)
        delta = self.delta
        # Huber/delta = z r - delta z^2 / 2 with z = clip(r/delta, -1, 1), and its derivative is
        # z; computed with c = delta z = clip(r, -delta, delta), which saves the scaling pass
        c = np.clip(r, -delta, delta, out=self.scratch("z", *r.shape))
        cw = c
        if self.weights is not None:
            w = self.weights if self.row_weights is None else np.take(
                self.weights, self.row_weights[rows], axis=0, out=self.scratch("w", *r.shape))
            cw = np.multiply(c, w, out=self.scratch("zw", *r.shape))
        np.multiply(_rowdot(cw, r) - 0.5 * _rowdot(cw, c), 1.0 / delta, out=f)
        self.model.vjp(ctx, cw, out=g)
        g *= 1.0 / delta
