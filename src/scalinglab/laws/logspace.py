"""Laws in log space: the fitting parametrisations that make multi-start fits well conditioned.

Besiroglu et al. 2024 fit ``log L = LSE(a - alpha log N, b - beta log D, e)`` rather than ``L``
itself: scale parameters become additive, positivity is automatic, and residuals are relative
errors. A law declares which of these models is its fitting parametrisation
(:attr:`scalinglab.laws.base.Law.parametrisation`), so nothing downstream needs to know which law
it is fitting. Each model maps a batch of parameter vectors ``theta`` (S, P) to log-predictions
(S, n) and back-propagates a weight matrix to a gradient (S, P); the objective in
:mod:`scalinglab.fit.objective` combines them with the data. ``tests/test_fit_objective.py``
checks ``exp(log_predict)`` against ``Law.fn`` so the two never drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy.linalg.blas import dgemm

if TYPE_CHECKING:
    from scalinglab.laws.base import Law

#: exponents up to this are safe from overflow (exp(709.8) is the largest finite double)
_SAFE_EXP = 700.0

#: inputs with at most this many distinct values compute their powers once per value
_MAX_GATHER = 16


class LogModel(Protocol):
    """A law's logarithm in a fitting parametrisation ``theta`` (same order as the law's params)."""

    law: Law
    #: which entries of theta are logs of the law's parameters
    log_params: tuple[bool, ...]

    def forward(self, theta: np.ndarray, offset: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """``log L - offset`` (S, n) at each row of ``theta`` (S, P), and a context for ``vjp``."""
        ...

    def prepare(self, theta: np.ndarray) -> Any:
        """Whatever per-row work ``forward_rows`` can share across blocks of one batch."""
        ...

    def forward_rows(self, prep: Any, rows: slice, offset: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """``forward`` for ``rows`` of the batch that ``prep`` was prepared for."""
        ...

    def vjp(self, ctx: Any, weights: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``sum_i weights[s, i] * d logL[s, i] / d theta[s]``, shape (S, P), into ``out`` if given."""
        ...


def to_params(log_params: tuple[bool, ...], theta: np.ndarray) -> np.ndarray:
    """Fitting coordinates -> the law's parameters, row-wise (S, P) or a single (P,)."""
    theta = np.asarray(theta, dtype=float)
    with np.errstate(over="ignore"):
        return np.where(np.asarray(log_params), np.exp(theta), theta)


class Scratch:
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
        # Gathering was measured no faster even at 4-8 distinct values, 2-4x slower from 32 on,
        # and its one-hot below grows as runs x values (1.25 GB at 25,000 runs with 6,250
        # values): it is kept only where the one-hot is small.
        self.gather = len(values) <= min(0.25 * len(x), _MAX_GATHER)
        self.values = values if self.gather else self.log_x
        self.inverse = inverse
        # [1, log x] as rows: (a - shift, -alpha) @ design is the exponent, in one BLAS call
        self.design = np.vstack([np.ones_like(self.values), self.values])
        # one-hot (n, m): sums per-run weights into per-value weights with one BLAS call
        self.onehot = np.eye(len(values))[inverse] if self.gather else None


@dataclass
class _SumPrep:
    #: exp(e - shift) per row, or None where that is 1 for every row
    e0: np.ndarray | None
    #: (K + 1, rows, 2): each term's (a_j - shift, -alpha_j), then (shift, -1)
    coef: np.ndarray


@dataclass
class _SumCtx:
    #: exp(e - shift) per row, or None where that is 1 for every row
    e0: np.ndarray | None
    terms: list[np.ndarray]
    total: np.ndarray


class SumOfPowers:
    """``L = E + sum_k A_k x_k^-alpha_k`` as ``log L = LSE(e, a_k - alpha_k log x_k)``.

    theta = ``(e, a_1..a_K, alpha_1..alpha_K)``, which is the parameter order of Chinchilla
    ``(E, A, B, alpha, beta)`` and of the one-variable power law ``(E, A, alpha)``. The LSE is
    shifted by ``e``, so that the constant's term is exactly 1, or, in a row where another term
    could then overflow, by that row's largest exponent (known from the ends of each input's
    range, so it costs no pass over the data): no start overflows however wild. This is the hot
    loop of the multi-start fit: exponents and gradient sums are small matrix products and
    everything else is in place on contiguous blocks, since each pass over the (starts x runs)
    block costs about as much as the arithmetic in it.
    """

    def __init__(self, law: Law, inputs: Mapping[str, np.ndarray]) -> None:
        self.law = law
        k = len(law.inputs)
        if len(law.param_names) != 1 + 2 * k:
            raise ValueError(f"law {law.name!r}: a sum of {k} power terms has {1 + 2 * k} parameters "
                             "(constant, then one scale per input, then one exponent per input)")
        self.k = k
        self.log_params = (True,) * (1 + k) + (False,) * k
        self.columns = [_Column(np.asarray(inputs[name], dtype=float)) for name in law.inputs]
        self.n = len(self.columns[0].log_x)
        self.ones = np.ones(self.n)
        self.scratch = Scratch()
        self._design_cache: tuple[np.ndarray | None, np.ndarray] | None = None

    def forward(self, theta: np.ndarray, offset: np.ndarray | None = None) -> tuple[np.ndarray, _SumCtx]:
        """``log L - offset`` (offset per run, e.g. the observed log loss) and the context."""
        return self.forward_rows(self.prepare(theta), slice(None), offset)

    def prepare(self, theta: np.ndarray) -> _SumPrep:
        """Per-row work of :meth:`forward` for a whole batch, so blocks of it only make passes."""
        k, rows = self.k, len(theta)
        e = theta[:, 0]
        # largest exponent of each row over the data, at an end of each input's range
        top = None
        for j, col in enumerate(self.columns):
            a, alpha = theta[:, 1 + j], theta[:, 1 + k + j]
            t_j = a - np.minimum(alpha * col.lo, alpha * col.hi)
            top = t_j if top is None else np.maximum(top, t_j, out=top)
        # shift by e unless another term could then overflow (NaN rows go the general way)
        over = np.subtract(top, e, out=top)
        if rows and over.max() <= _SAFE_EXP:
            e0, shift = None, e
        else:
            shift = np.where(over <= _SAFE_EXP, e, over + e)
            e0 = np.exp(e - shift)
        # (a_j - shift, -alpha_j) for each term, then (shift, -1): exponents and the final
        # shift come from small matrix products with [1; log x] and [1; offset]
        coef = np.empty((k + 1, rows, 2))
        np.subtract(theta[:, 1 : 1 + k].T, shift, out=coef[:k, :, 0])
        np.negative(theta[:, 1 + k :].T, out=coef[:k, :, 1])
        coef[k, :, 0], coef[k, :, 1] = shift, -1.0
        return _SumPrep(e0, coef)

    def forward_rows(
        self, prep: _SumPrep, rows: slice, offset: np.ndarray | None = None,
    ) -> tuple[np.ndarray, _SumCtx]:
        """:meth:`forward` for ``rows`` of the batch that ``prep`` was prepared for."""
        coef = prep.coef[:, rows]
        e0 = None if prep.e0 is None else prep.e0[rows]
        n_rows, buf = coef.shape[1], self.scratch
        terms = []
        total = buf("total", n_rows, self.n)
        for j, col in enumerate(self.columns):
            t = np.matmul(coef[j], col.design, out=buf(f"term{j}", n_rows, col.design.shape[1]))
            np.exp(t, out=t)
            t_all = np.take(t, col.inverse, axis=1, out=buf("spread", n_rows, self.n)) if col.gather else t
            if j > 0:
                total += t_all
            elif e0 is None:
                np.add(t_all, 1.0, out=total)
            else:
                np.add(t_all, e0[:, None], out=total)
            terms.append(t)
        lp = np.log(total, out=buf("lp", n_rows, self.n))
        # + shift - offset as one small matrix product added in place (BLAS C += A B, on the
        # transposes: lp is C-ordered, BLAS is column-major), rather than two broadcast passes
        lp = dgemm(1.0, self._offset_design(offset).T, coef[self.k].T, beta=1.0, c=lp.T, overwrite_c=True).T
        return lp, _SumCtx(e0, terms, total)

    def _offset_design(self, offset: np.ndarray | None) -> np.ndarray:
        """``[1; offset]`` (2, n), cached for the offset the objective passes on every call."""
        cached = self._design_cache
        if cached is None or cached[0] is not offset:
            rows = np.vstack([self.ones, np.zeros(self.n) if offset is None else offset])
            self._design_cache = cached = (offset, rows)
        return cached[1]

    def vjp(self, ctx: _SumCtx, weights: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Gradient (into ``out`` if given); overwrites ``weights`` and the context (both are
        scratch by then)."""
        k = self.k
        r = np.divide(weights, ctx.total, out=weights)
        if out is None:
            out = np.empty((r.shape[0], 1 + 2 * k))
        rs = r @ self.ones  # a matrix-vector product sums rows fastest
        out[:, 0] = rs if ctx.e0 is None else ctx.e0 * rs
        for j, (col, term) in enumerate(zip(self.columns, ctx.terms, strict=True)):
            p = np.multiply(term, r @ col.onehot if col.gather else r, out=term)
            sums = p @ col.design.T
            out[:, 1 + j] = sums[:, 0]
            np.negative(sums[:, 1], out=out[:, 1 + k + j])
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

    def prepare(self, theta: np.ndarray) -> np.ndarray:
        return theta  # nothing to share between blocks

    def forward_rows(
        self, prep: np.ndarray, rows: slice, offset: np.ndarray | None = None,
    ) -> tuple[np.ndarray, _KaplanCtx]:
        return self.forward(prep[rows], offset)

    def vjp(self, ctx: _KaplanCtx, weights: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        ww1 = weights * ctx.w1
        if out is None:
            out = np.empty((weights.shape[0], 4))
        out[:, 0] = ww1.sum(axis=1) * ctx.alpha_n
        out[:, 1] = (weights.sum(axis=1) - ww1.sum(axis=1)) * ctx.alpha_d
        out[:, 2] = (ww1 * ctx.u).sum(axis=1)
        out[:, 3] = (weights * ctx.lse).sum(axis=1) - (ww1 * ctx.t1).sum(axis=1)
        return out
