"""Principal components of benchmark scores, with missing scores filled in first.

Ruan et al. 2024 summarise a model's benchmark accuracies by a few principal components (the
first explains about 80% of the variance across public base models). Public tables have holes
(HumanEval is missing for some families, XWinograd for others), so scores are first imputed by
iterative low-rank reconstruction, as their code does: standardise, fill holes with the column
mean, then repeatedly replace the holes by a rank-r (affine: re-centred each time, as a PCA
is) reconstruction until it stops changing. Data that are exactly rank r are filled exactly. Both
the imputation and the components are fitted on the training models only and then applied to
the others, so a held-out model never shapes the axes it is scored on.

The components are of the raw (centred, not standardised) accuracies, as in their default; each
is signed so its loadings sum to a positive number (higher score = more capable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.errors import ParameterError


@dataclass(frozen=True)
class Imputer:
    """Low-rank imputation fitted on training rows: column means/scales and the rank-r basis."""

    mean: np.ndarray
    scale: np.ndarray
    basis: np.ndarray  # (p, r) orthonormal, in standardised units
    center: np.ndarray  # (p,) mean of the imputed training rows, in standardised units
    n_iter: int = 0

    def fill(self, X: np.ndarray, max_iter: int = 500, tol: float = 1e-8) -> np.ndarray:
        """``X`` with its NaN entries replaced by the rank-r reconstruction (observed entries kept)."""
        Z = (np.asarray(X, dtype=float) - self.mean) / self.scale
        miss = ~np.isfinite(Z)
        if not miss.any():
            return np.array(X, dtype=float)
        Z = np.where(miss, self.center, Z)
        for _ in range(max_iter):
            recon = self.center + ((Z - self.center) @ self.basis) @ self.basis.T
            change = np.max(np.abs(recon[miss] - Z[miss]))
            Z[miss] = recon[miss]
            if change < tol:
                break
        return Z * self.scale + self.mean


def fit_imputer(X: np.ndarray, rank: int = 1, max_iter: int = 1000, tol: float = 1e-8) -> tuple[Imputer, np.ndarray]:
    """Fit the imputation on ``X`` (rows: models; NaN: missing) and return it with ``X`` filled."""
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    if not 1 <= rank <= p:
        raise ParameterError(f"impute_rank must be between 1 and {p}, not {rank}", "impute_rank")
    observed = np.isfinite(X)
    if not observed.any(axis=0).all():
        empty = int(np.flatnonzero(~observed.any(axis=0))[0])
        raise ParameterError(f"column {empty} has no observed value to impute from", "X")
    mean = np.nanmean(X, axis=0)
    scale = np.nanstd(X, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Z = np.where(observed, (X - mean) / scale, 0.0)
    miss = ~observed
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is kept
        # an affine rank-r model: re-centre on the current fill, as a PCA does each time
        center = Z.mean(axis=0)
        basis = np.linalg.svd(Z - center, full_matrices=False)[2][:rank].T
        recon = center + ((Z - center) @ basis) @ basis.T
        change = float(np.max(np.abs(recon[miss] - Z[miss]))) if miss.any() else 0.0
        Z[miss] = recon[miss]
        if change < tol:
            break
    center = Z.mean(axis=0)
    basis = np.linalg.svd(Z - center, full_matrices=False)[2][:rank].T
    return Imputer(mean=mean, scale=scale, basis=basis, center=center, n_iter=it), Z * scale + mean


@dataclass(frozen=True)
class Components:
    """``scores = (X - mean) @ loadings``; ``explained`` is each component's share of variance."""

    mean: np.ndarray
    loadings: np.ndarray  # (p, k)
    explained: np.ndarray  # (k,)

    def scores(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=float) - self.mean) @ self.loadings


def fit_components(X: np.ndarray, k: int, weights: np.ndarray | None = None,
                   align: np.ndarray | None = None) -> Components:
    """The first ``k`` principal components of complete data ``X`` (rows weighted by ``weights``,
    e.g. bootstrap counts). ``align`` (p, k): flip each component to point the same way as the
    reference loadings (bootstrap draws stay comparable); otherwise loadings sum positive."""
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    if not 1 <= k <= p:
        raise ParameterError(f"n_components must be between 1 and {p} (the number of predictor "
                             f"benchmarks), not {k}", "n_components")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    total = w.sum()
    mean = w @ X / total
    C = (X - mean).T @ ((X - mean) * w[:, None]) / total
    vals, vecs = np.linalg.eigh(C)
    order = np.argsort(vals)[::-1]
    vals, vecs = np.clip(vals[order], 0.0, None), vecs[:, order]
    load = vecs[:, :k].copy()
    ref = align if align is not None else np.ones((p, k))
    signs = np.sign(np.sum(load * ref, axis=0))
    load *= np.where(signs == 0, 1.0, signs)
    explained = vals[:k] / vals.sum() if vals.sum() > 0 else np.full(k, np.nan)
    return Components(mean=mean, loadings=load, explained=explained)


__all__ = ["Components", "Imputer", "fit_components", "fit_imputer"]
