"""The fitting objective: a robust loss of log residuals, batched over starts and resamples.

The law's logarithm in its fitting parametrisation lives with the law
(:mod:`scalinglab.laws.logspace`); this module only combines it with the data into the
``fg(theta, rows)`` that :func:`scalinglab.fit.optimize.batched_lbfgs` minimises. The estimator
is chosen (:class:`Estimator`): Huber on log-loss residuals (default, delta 1e-3, as Hoffmann et
al. 2022 and Besiroglu et al. 2024 fit), least squares, or an asymmetric Huber that penalises
over-prediction more than under-prediction (a law that must not promise a loss the runs did
not reach). Per-run weights multiply each run's term.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from scalinglab.laws.base import Law
from scalinglab.laws.logspace import LogModel, Scratch, to_params

__all__ = ["ESTIMATORS", "HUBER_DELTA", "Estimator", "HuberObjective", "Objective", "huber",
           "log_model", "make_estimator", "to_params"]

#: Huber threshold on log-loss residuals used by Hoffmann et al. 2022 and Besiroglu et al. 2024
HUBER_DELTA = 1e-3
#: the estimators a fit may use
ESTIMATORS = ("huber", "mse", "asymmetric")
#: default factor on over-predicting residuals of the asymmetric estimator
OVER_PENALTY = 4.0


@dataclass(frozen=True)
class Estimator:
    """How residuals ``r = log Lhat - log L`` are scored.

    ``huber``: ``r^2/2`` within ``delta``, ``delta (|r| - delta/2)`` beyond (robust to outliers);
    ``mse``: ``r^2/2`` everywhere; ``asymmetric``: Huber, times ``over_penalty`` where the law
    over-predicts (``r > 0``). The objective is divided by ``delta`` in every case, which keeps
    it of order one for the optimiser's tolerances without changing the minimiser.
    """

    kind: str = "huber"
    delta: float = HUBER_DELTA
    over_penalty: float = OVER_PENALTY

    @property
    def clip(self) -> float:
        return np.inf if self.kind == "mse" else self.delta

    def rho(self, r: np.ndarray) -> np.ndarray:
        """The score of each residual (unscaled)."""
        r = np.asarray(r, dtype=float)
        out = 0.5 * r * r if self.kind == "mse" else huber(r, self.delta)
        if self.kind == "asymmetric":
            out = np.where(r > 0, self.over_penalty * out, out)
        return out

    def describe(self) -> str:
        if self.kind == "mse":
            return "squared log-loss residuals"
        text = f"Huber(delta={self.delta:g}) losses of log-loss residuals"
        if self.kind == "asymmetric":
            text += f", over-predictions weighted x{self.over_penalty:g}"
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind != "mse":
            out["delta"] = self.delta
        if self.kind == "asymmetric":
            out["over_penalty"] = self.over_penalty
        return out


def make_estimator(loss: str | Estimator = "huber", delta: float = HUBER_DELTA,
                   over_penalty: float = OVER_PENALTY, param: str = "loss") -> Estimator:
    """An :class:`Estimator` from its name, checked (``param`` names the argument in errors)."""
    from scalinglab.errors import ParameterError

    if isinstance(loss, Estimator):
        return loss
    kind = str(loss).strip().lower()
    if kind not in ESTIMATORS:
        raise ParameterError(f"{param} must be one of {list(ESTIMATORS)}, not {loss!r}", param)
    if not (np.isfinite(delta) and delta > 0):
        raise ParameterError(f"delta must be a positive number, not {delta:g}", "delta")
    if not (np.isfinite(over_penalty) and over_penalty > 0):
        raise ParameterError(f"over_penalty must be a positive number, not {over_penalty:g}",
                             "over_penalty")
    return Estimator(kind, float(delta), float(over_penalty))

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


class Objective:
    """``sum_i w_i rho(log Lhat_i - log L_i) / delta`` and its gradient, batched.

    ``rho`` is the :class:`Estimator`'s (default Huber with ``delta``). Dividing by ``delta``
    makes the Huber objective about the sum of absolute log residuals (order 1 instead of order
    1e-3), so L-BFGS-B's relative tolerances mean the same thing as on a well-scaled problem;
    the minimiser is unchanged. ``weights`` (R, n), when given, are per-resample run
    multiplicities (times per-run weights) and ``row_weights`` (S,) picks each start's
    resample: the bootstrap never copies data. Without ``row_weights`` a single row of
    ``weights`` (1, n) weights every start alike. ``chunk`` (rows per block of work arrays)
    defaults to what keeps a block within :data:`BLOCK_ELEMENTS`, whatever the number of runs.
    """

    def __init__(
        self,
        model: LogModel,
        loss: np.ndarray,
        delta: float = HUBER_DELTA,
        weights: np.ndarray | None = None,
        row_weights: np.ndarray | None = None,
        chunk: int | None = None,
        estimator: Estimator | None = None,
    ) -> None:
        self.model = model
        self.log_loss = np.log(np.asarray(loss, dtype=float))
        self.estimator = estimator or Estimator("huber", delta)
        self.delta = self.estimator.delta
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
        delta, est = self.delta, self.estimator
        # Huber/delta = z r - delta z^2 / 2 with z = clip(r/delta, -1, 1), and its derivative is
        # z; computed with c = delta z = clip(r, -delta, delta), which saves the scaling pass.
        # Least squares is the same with no clipping; the asymmetric estimator multiplies both
        # the score and its derivative by the penalty where r > 0, i.e. it weights c.
        c = np.clip(r, -est.clip, est.clip, out=self.scratch("z", *r.shape))
        cw = c
        if est.kind == "asymmetric":
            cw = np.multiply(c, np.where(r > 0, est.over_penalty, 1.0), out=self.scratch("zp", *r.shape))
        if self.weights is not None:
            w = self.weights if self.row_weights is None else np.take(
                self.weights, self.row_weights[rows], axis=0, out=self.scratch("w", *r.shape))
            cw = np.multiply(cw, w, out=self.scratch("zw", *r.shape))
        np.multiply(_rowdot(cw, r) - 0.5 * _rowdot(cw, c), 1.0 / delta, out=f)
        self.model.vjp(ctx, cw, out=g)
        g *= 1.0 / delta


#: the name the fit engine has always used (the objective was Huber only before estimators)
HuberObjective = Objective


@dataclass(frozen=True)
class ObjectiveSpec:
    """What a fit minimises, apart from the model: the estimator and optional per-run weights.

    The search and the bootstrap build many objectives (on a subsample of the runs, on blocks of
    resamples); this is how each gets the same estimator and weights. ``counts`` (R, n), when
    given, are resample multiplicities, multiplied by the per-run weights.
    """

    estimator: Estimator = Estimator()
    run_weights: np.ndarray | None = None

    @property
    def delta(self) -> float:
        return self.estimator.delta

    def make(self, model: LogModel, loss: np.ndarray, counts: np.ndarray | None = None,
             row_weights: np.ndarray | None = None) -> Objective:
        w = self.run_weights
        if counts is None:
            weights = None if w is None else w[None, :]
        else:
            weights = counts.astype(float) if w is None else counts * w[None, :]
        return Objective(model, loss, self.delta, weights=weights, row_weights=row_weights,
                         estimator=self.estimator)

    def subset(self, rows: np.ndarray) -> ObjectiveSpec:
        """The same objective on ``rows`` of the runs (for the screen on a subsample)."""
        return self if self.run_weights is None else ObjectiveSpec(self.estimator, self.run_weights[rows])

    def per_run(self, obj: Objective, theta: np.ndarray) -> np.ndarray:
        """Each run's term of the objective (score / delta, weighted) at rows of ``theta``."""
        terms = self.estimator.rho(obj.residuals(theta)) / self.delta
        return terms if self.run_weights is None else terms * self.run_weights[None, :]
