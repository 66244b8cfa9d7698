"""Log-space parametrisations of the loss laws and the Huber objective on log residuals.

The formulas live in :mod:`scalinglab.laws.loss`; this module only re-expresses each law's
*logarithm* in parameters that make the fit well conditioned (Besiroglu et al. 2024 fit
``log L = LSE(a - alpha log N, b - beta log D, e)`` rather than ``L`` itself: scale parameters
become additive, positivity is automatic, and residuals are relative errors). Each model maps a
batch of parameter vectors ``theta`` (S, P) to log-predictions (S, n) and back-propagates a
weight matrix to a gradient (S, P); :class:`HuberObjective` combines them with the data into the
``fg(theta, rows)`` that :func:`scalinglab.fit.optimize.batched_lbfgs` minimises.
``tests/test_fit_objective.py`` checks ``exp(log_predict)`` against ``Law.fn`` so the two never
drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from scalinglab.laws.base import Law

#: Huber threshold on log-loss residuals used by Hoffmann et al. 2022 and Besiroglu et al. 2024
HUBER_DELTA = 1e-3


class LogModel(Protocol):
    """A law's logarithm in a fitting parametrisation ``theta`` (same order as the law's params)."""

    law: Law
    #: which entries of theta are logs of the law's parameters
    log_params: tuple[bool, ...]

    def forward(self, theta: np.ndarray, offset: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """``log L - offset`` (S, n) at each row of ``theta`` (S, P), and a context for ``vjp``."""
        ...

    def vjp(self, ctx: Any, weights: np.ndarray) -> np.ndarray:
        """``sum_i weights[s, i] * d logL[s, i] / d theta[s]``, shape (S, P)."""
        ...


def to_params(log_params: tuple[bool, ...], theta: np.ndarray) -> np.ndarray:
    """Fitting coordinates -> the law's parameters, row-wise (S, P) or a single (P,)."""
    theta = np.asarray(theta, dtype=float)
    with np.errstate(over="ignore"):
        return np.where(np.asarray(log_params), np.exp(theta), theta)


class _Scratch:
    """Reusable (rows x runs) buffers.

    The objective is called thousands of times on blocks of the same shape; fresh temporaries
    of that size are returned to the OS and faulted back in by malloc, which was measured to
    double the cost of a call. Buffers are reused: a model's context is valid until its next call.
    """

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def __call__(self, name: str, rows: int, cols: int) -> np.ndarray:
        buf = self._bufs.get(name)
        if buf is None or buf.shape[0] < rows or buf.shape[1] != cols:
            buf = self._bufs[name] = np.empty((rows, cols))
        return buf[:rows]


class _Column:
    """One input column; when values repeat, powers are computed once per distinct value."""

    def __init__(self, x: np.ndarray) -> None:
        self.log_x = np.log(x)
        values, inverse = np.unique(self.log_x, return_inverse=True)
        self.lo, self.hi = float(values[0]), float(values[-1])
        self.gather = len(values) <= 0.25 * len(x)
        self.values = values if self.gather else self.log_x
        self.inverse = inverse
        # [1, log x] as rows: (a - shift, -alpha) @ design is the exponent, in one BLAS call
        self.design = np.vstack([np.ones_like(self.values), self.values])
        # one-hot (n, m): sums per-run weights into per-value weights with one BLAS call
        self.onehot = np.eye(len(values))[inverse] if self.gather else None


@dataclass
class _SumCtx:
    e0: np.ndarray
    terms: list[np.ndarray]
    total: np.ndarray


class SumOfPowers:
    """``L = E + sum_k A_k x_k^-alpha_k`` as ``log L = LSE(e, a_k - alpha_k log x_k)``.

    theta = ``(e, a_1..a_K, alpha_1..alpha_K)``, which is the parameter order of Chinchilla
    ``(E, A, B, alpha, beta)`` and of the one-variable power law ``(E, A, alpha)``. The LSE is
    shifted by each row's largest exponent (known from the ends of each input's range, so it
    costs no pass over the data) and no start overflows however wild. This is the hot loop of
    the multi-start fit: exponents and gradient sums are small matrix products and everything
    else is in place, since each pass over the (starts x runs) block costs about as much as
    the arithmetic in it.
    """

    def __init__(self, law: Law, inputs: Mapping[str, np.ndarray]) -> None:
        self.law = law
        k = len(law.inputs)
        if law.param_names != ("E", *"AB"[:k], *("alpha", "beta")[:k]):
            raise ValueError(f"law {law.name!r} is not of the form E + sum A_k x_k^-alpha_k")
        self.k = k
        self.log_params = (True,) * (1 + k) + (False,) * k
        self.columns = [_Column(np.asarray(inputs[name], dtype=float)) for name in law.inputs]
        self.n = len(self.columns[0].log_x)
        self.ones = np.ones(self.n)
        self.scratch = _Scratch()

    def forward(self, theta: np.ndarray, offset: np.ndarray | None = None) -> tuple[np.ndarray, _SumCtx]:
        """``log L - offset`` (offset per run, e.g. the observed log loss) and the context."""
        k = self.k
        shift = theta[:, 0].copy()
        for j, col in enumerate(self.columns):
            a, alpha = theta[:, 1 + j], theta[:, 1 + k + j]
            np.maximum(shift, a - alpha * np.where(alpha >= 0, col.lo, col.hi), out=shift)
        e0 = np.exp(theta[:, 0] - shift)
        rows, buf = len(theta), self.scratch
        terms = []
        total = buf("total", rows, self.n)
        for j, col in enumerate(self.columns):
            coef = np.stack([theta[:, 1 + j] - shift, -theta[:, 1 + k + j]], axis=1)
            t = np.matmul(coef, col.design, out=buf(f"term{j}", rows, col.design.shape[1]))
            np.exp(t, out=t)
            if col.gather:
                t_all = np.take(t, col.inverse, axis=1, out=buf("spread", rows, self.n))
            else:
                t_all = t
            if j == 0:
                np.add(t_all, e0[:, None], out=total)
            else:
                total += t_all
            terms.append(t)
        lp = np.log(total, out=buf("lp", rows, self.n))
        # + shift - offset as one small matrix product rather than two broadcast passes
        shift_offset = np.matmul(
            np.stack([shift, -np.ones_like(shift)], axis=1),
            np.vstack([np.ones(self.n), np.zeros(self.n) if offset is None else offset]),
            out=buf("spread", rows, self.n),
        )
        lp += shift_offset
        return lp, _SumCtx(e0, terms, total)

    def vjp(self, ctx: _SumCtx, weights: np.ndarray) -> np.ndarray:
        """Gradient; overwrites ``weights`` and the context (both are scratch by then)."""
        k = self.k
        r = np.divide(weights, ctx.total, out=weights)
        out = np.empty((r.shape[0], 1 + 2 * k))
        out[:, 0] = ctx.e0 * (r @ self.ones)  # a matrix-vector product sums rows fastest
        for j, (col, term) in enumerate(zip(self.columns, ctx.terms, strict=True)):
            p = np.multiply(term, r @ col.onehot if col.gather else r, out=term)
            sums = p @ col.design.T
            out[:, 1 + j] = sums[:, 0]
            out[:, 1 + k + j] = -sums[:, 1]
        return out


@dataclass
class _KaplanCtx:
    w1: np.ndarray
    u: np.ndarray
    t1: np.ndarray
    lse: np.ndarray
    alpha_n: np.ndarray
    alpha_d: np.ndarray


class KaplanLog:
    """Kaplan et al. 2020: ``log L = alpha_D * LSE(rho (n_c - log N), d_c - log D)``.

    theta = ``(n_c, d_c, alpha_N, alpha_D)`` with ``n_c = log N_c``, ``d_c = log D_c`` and
    ``rho = alpha_N / alpha_D``. A non-positive ``alpha_D`` has no meaning (the ratio flips), so
    it evaluates to +inf and the line search steps back.
    """

    log_params = (True, True, False, False)

    def __init__(self, law: Law, inputs: Mapping[str, np.ndarray]) -> None:
        self.law = law
        self.log_n = np.log(np.asarray(inputs["N"], dtype=float))
        self.log_d = np.log(np.asarray(inputs["D"], dtype=float))

    def forward(self, theta: np.ndarray, offset: np.ndarray | None = None) -> tuple[np.ndarray, _KaplanCtx]:
        nc, dc, an, ad = (theta[:, i, None] for i in range(4))
        ad = np.where(ad > 0, ad, np.nan)
        u = nc - self.log_n[None, :]
        t1 = (an / ad) * u
        lse = np.logaddexp(t1, dc - self.log_d[None, :])
        w1 = np.exp(t1 - lse)
        lp = ad * lse - (0.0 if offset is None else offset)
        return np.where(np.isnan(lp), np.inf, lp), _KaplanCtx(w1, u, t1, lse, an[:, 0], ad[:, 0])

    def vjp(self, ctx: _KaplanCtx, weights: np.ndarray) -> np.ndarray:
        ww1 = weights * ctx.w1
        out = np.empty((weights.shape[0], 4))
        out[:, 0] = ww1.sum(axis=1) * ctx.alpha_n
        out[:, 1] = (weights.sum(axis=1) - ww1.sum(axis=1)) * ctx.alpha_d
        out[:, 2] = (ww1 * ctx.u).sum(axis=1)
        out[:, 3] = (weights * ctx.lse).sum(axis=1) - (ww1 * ctx.t1).sum(axis=1)
        return out


def log_model(law: Law, inputs: Mapping[str, np.ndarray]) -> LogModel:
    """The fitting parametrisation of a loss law, bound to the runs' inputs."""
    if law.name == "kaplan":
        return KaplanLog(law, inputs)
    if law.name == "chinchilla" or law.name.startswith("power_"):
        return SumOfPowers(law, inputs)
    raise ValueError(f"no log-space parametrisation for law {law.name!r}")


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
    bootstrap never copies data.
    """

    def __init__(
        self,
        model: LogModel,
        loss: np.ndarray,
        delta: float = HUBER_DELTA,
        weights: np.ndarray | None = None,
        row_weights: np.ndarray | None = None,
        chunk: int = 256,
    ) -> None:
        self.model = model
        self.log_loss = np.log(np.asarray(loss, dtype=float))
        self.delta = delta
        self.weights = weights
        self.row_weights = row_weights
        self.chunk = chunk
        self.scratch = _Scratch()

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """``log Lhat - log L`` per run at each row of ``theta`` (a fresh array)."""
        return self.model.forward(np.atleast_2d(theta), self.log_loss)[0].copy()

    def __call__(self, theta: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):  # wild trial points give inf, which line searches reject
            if len(theta) <= self.chunk:
                return self._block(theta, rows)
            # blocks of rows keep the (rows x runs) work arrays in cache: about 1.5x faster
            parts = [self._block(theta[i : i + self.chunk], rows[i : i + self.chunk])
                     for i in range(0, len(theta), self.chunk)]
        return np.concatenate([f for f, _ in parts]), np.concatenate([g for _, g in parts])

    def _block(self, theta: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, ctx = self.model.forward(theta, self.log_loss)
        z = np.multiply(r, 1.0 / self.delta, out=self.scratch("z", *r.shape))
        np.clip(z, -1.0, 1.0, out=z)
        zw = z
        if self.weights is not None:
            w = self.weights if self.row_weights is None else np.take(
                self.weights, self.row_weights[rows], axis=0, out=self.scratch("w", *r.shape))
            zw = np.multiply(z, w, out=self.scratch("zw", *r.shape))
        # Huber/delta = z r - delta z^2 / 2 with z = clip(r/delta, -1, 1); its derivative is z
        f = np.einsum("ij,ij->i", zw, r) - 0.5 * self.delta * np.einsum("ij,ij->i", zw, z)
        return f, self.model.vjp(ctx, zw)
