"""Vectorised bootstrap of least squares: every resample's fit from one batched solve.

A bootstrap resample of rows is a vector of non-negative counts
(:func:`scalinglab.stats.bootstrap_weights`), so K resamples are a (K, n) weight matrix W and resample k's least-squares fit solves ``X' W_k X b = X' W_k y``. Building all
K normal equations with one matrix product and solving them as a stack replaces K calls to
``lstsq`` (``benchmarks/bench_hparams.py`` times the two).
"""

from __future__ import annotations

import numpy as np


def weighted_lstsq_batch(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, tol: float = 1e-10
) -> np.ndarray:
    """Coefficients (K, p) of the K weighted fits of y on X; NaN rows where X'WX is singular.

    ``X'W_kX`` for all k is one matrix product ``W @ (x_n x_n')``. Columns other than the first
    (the intercept) are centred first, which keeps the normal equations well conditioned for log
    features (ln D ~ 25), then the intercept is mapped back.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    W = np.atleast_2d(np.asarray(W, dtype=float))
    n, p = X.shape
    mu = X.mean(axis=0)
    mu[0] = 0.0
    Xc = X - mu
    A = (W @ (Xc[:, :, None] * Xc[:, None, :]).reshape(n, p * p)).reshape(-1, p, p)
    b = W @ (Xc * y[:, None])
    # A resample that drew too few distinct points leaves A singular. By Hadamard's inequality
    # det(A) / prod(diag A) lies in [0, 1] for A = X'WX and is ~0 exactly when columns collide.
    diag = np.einsum("kii->ki", A)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.linalg.det(A) / np.prod(diag, axis=1)
    ok = np.isfinite(ratio) & (ratio > tol)
    beta = np.full((len(W), p), np.nan)
    if ok.any():
        beta[ok] = np.linalg.solve(A[ok], b[ok][..., None])[..., 0]
    beta[:, 0] -= beta[:, 1:] @ mu[1:]
    return beta


def lstsq(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ordinary least squares via the same path (all weights one)."""
    return weighted_lstsq_batch(X, y, np.ones((1, len(y))))[0]
