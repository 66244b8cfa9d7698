"""The loss landscape of one (N, D) group over (ln lr, ln batch), and its plateau.

Step Law reports the landscape as convex with a broad optimum. Near the optimum a convex quadratic
``L(x) = L* + 1/2 (x - x*)' H (x - x*)`` in ``x = (ln lr, ln batch_tokens)`` describes it, so its
minimiser is a less noisy estimate of the optimum than the single best run, and the set within
eps of ``L*`` (an ellipse) is the plateau. Only runs within ``window`` of the group's best loss
are fitted: further out the landscape is not quadratic (it rises steeply at high lr).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import NotIdentifiable

#: windows tried in turn when a narrower one leaves too few runs or a non-convex fit
WINDOWS = (0.02, 0.04, 0.08, np.inf)
MIN_RUNS = 8


def _design(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)


@dataclass(frozen=True, eq=False)
class Landscape:
    """A convex quadratic fit of one group's loss; coordinates are centred at ``center``."""

    N: float
    D: float
    coef: np.ndarray  # (6,) over [1, u, v, u^2, uv, v^2] of the centred coordinates
    center: np.ndarray  # (2,) mean (ln lr, ln batch) of the fitted runs
    window: float
    n_fit: int
    best_loss: float
    best_lr: float
    best_batch: float
    lr_range: tuple[float, float]
    batch_range: tuple[float, float]
    residual_std: float

    @property
    def hessian(self) -> np.ndarray:
        c = self.coef
        return np.array([[2 * c[3], c[4]], [c[4], 2 * c[5]]])

    @property
    def argmin(self) -> np.ndarray:
        """(ln lr*, ln batch*) of the quadratic."""
        c = self.coef
        return self.center + np.linalg.solve(self.hessian, -c[1:3])

    @property
    def optimum(self) -> dict[str, float]:
        u, v = self.argmin
        return {"lr": float(np.exp(u)), "batch_tokens": float(np.exp(v)),
                "loss": float(self.loss_at(np.exp(u), np.exp(v)))}

    def loss_at(self, lr: Any, batch_tokens: Any) -> np.ndarray:
        u = np.log(np.asarray(lr, dtype=float)) - self.center[0]
        v = np.log(np.asarray(batch_tokens, dtype=float)) - self.center[1]
        return _design(u, v) @ self.coef

    def excess(self, lr: Any, batch_tokens: Any) -> np.ndarray:
        """Relative excess loss over the surface's minimum, ``(L(x) - L*) / L*`` (>= 0)."""
        opt = self.optimum["loss"]
        return (self.loss_at(lr, batch_tokens) - opt) / opt

    def inside_grid(self, lr: float, batch_tokens: float) -> bool:
        return bool(self.lr_range[0] <= lr <= self.lr_range[1]
                    and self.batch_range[0] <= batch_tokens <= self.batch_range[1])

    def plateau(self, eps: float = 0.0025) -> dict[str, Any]:
        """The region within ``eps`` (relative) of the optimum: an ellipse, given by its extent.

        ``1/2 d' H d <= eps L*`` reaches ``|d_u| <= sqrt(2 eps L* (H^-1)_uu)`` along ln lr (and
        likewise along ln batch); those bounds are where lr or batch may be set alone.
        """
        opt = self.optimum
        inv = np.linalg.inv(self.hessian)
        r = 2.0 * eps * opt["loss"]
        du, dv = np.sqrt(r * inv[0, 0]), np.sqrt(r * inv[1, 1])
        return {
            "eps": eps,
            "lr": [opt["lr"] * np.exp(-du), opt["lr"] * np.exp(du)],
            "batch_tokens": [opt["batch_tokens"] * np.exp(-dv), opt["batch_tokens"] * np.exp(dv)],
            "lr_factor": float(np.exp(du)),
            "batch_factor": float(np.exp(dv)),
        }

    def to_dict(self, eps: float = 0.0025) -> dict[str, Any]:
        return {
            "N": self.N,
            "D": self.D,
            "optimum": self.optimum,
            "best_run": {"lr": self.best_lr, "batch_tokens": self.best_batch,
                         "loss": self.best_loss},
            "plateau": self.plateau(eps),
            "hessian": self.hessian.tolist(),
            "window": self.window,
            "n_fit": self.n_fit,
            "residual_std": self.residual_std,
            "optimum_inside_grid": self.inside_grid(*self.argmin_exp),
        }

    @property
    def argmin_exp(self) -> tuple[float, float]:
        u, v = self.argmin
        return float(np.exp(u)), float(np.exp(v))


def fit_landscape(group: pd.DataFrame, window: float = 0.02) -> Landscape:
    """Fit one group's convex quadratic on runs within ``window`` of its best loss.

    If that leaves fewer than ``MIN_RUNS`` runs, fewer than three distinct values on an axis, or
    a non-convex fit, the window is widened (2%, 4%, 8%, all runs); if none works the group is
    :class:`NotIdentifiable`.
    """
    lr = group["lr"].to_numpy(float)
    bt = group["batch_tokens"].to_numpy(float)
    loss = group["loss"].to_numpy(float)
    N, D = float(group["N"].iloc[0]), float(group["D"].iloc[0])
    best = int(np.argmin(loss))
    u_all, v_all = np.log(lr), np.log(bt)
    reason = "no runs"
    for w in [window, *[x for x in WINDOWS if x > window]]:
        keep = loss <= loss[best] * (1.0 + w)
        u, v = u_all[keep], v_all[keep]
        if keep.sum() < MIN_RUNS or len(np.unique(u)) < 3 or len(np.unique(v)) < 3:
            reason = f"{int(keep.sum())} runs within {w:.2%} of the best, too few distinct lr/batch"
            continue
        center = np.array([u.mean(), v.mean()])
        A = _design(u - center[0], v - center[1])
        coef, *_ = np.linalg.lstsq(A, loss[keep], rcond=None)
        H = np.array([[2 * coef[3], coef[4]], [coef[4], 2 * coef[5]]])
        if np.any(np.linalg.eigvalsh(H) <= 0):
            reason = f"the quadratic on runs within {w:.2%} of the best is not convex"
            continue
        resid = loss[keep] - A @ coef
        return Landscape(
            N=N, D=D, coef=coef, center=center, window=float(w), n_fit=int(keep.sum()),
            best_loss=float(loss[best]), best_lr=float(lr[best]), best_batch=float(bt[best]),
            lr_range=(float(lr.min()), float(lr.max())),
            batch_range=(float(bt.min()), float(bt.max())),
            residual_std=float(np.std(resid) / loss[best]),
        )
    raise NotIdentifiable(f"group N={N:.4g}, D={D:.4g}: cannot fit a convex landscape ({reason})")


def nearest_run_excess(group: pd.DataFrame, lr: float, batch_tokens: float) -> float:
    """Relative excess of the run nearest to (lr, batch) in log space over the group's best run.

    Model-free, but coarse (one grid step) and noisy: the best run's loss is itself the minimum of
    noisy values, so even a perfect prediction reads above zero.
    """
    d2 = (np.log(group["lr"].to_numpy(float)) - np.log(lr)) ** 2 + (
        np.log(group["batch_tokens"].to_numpy(float)) - np.log(batch_tokens)
    ) ** 2
    loss = group["loss"].to_numpy(float)
    return float(loss[int(np.argmin(d2))] / loss.min() - 1.0)


def _cubic_design(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v,
                     u**3, u * u * v, u * v * v, v**3], axis=-1)


@dataclass(frozen=True, eq=False)
class CubicReading:
    """A cubic in (ln lr, ln batch) over runs within 5% of a group's best: a second reading of
    the landscape that is not the quadratic the ``surface`` estimator fits, and can follow the
    asymmetry (steep at high lr, gentle at low lr). Read only inside the fitted runs' box."""

    coef: np.ndarray
    center: np.ndarray
    box: tuple[tuple[float, float], tuple[float, float]]
    loss_min: float

    def loss_at(self, lr: Any, batch_tokens: Any) -> np.ndarray:
        (u0, u1), (v0, v1) = self.box
        u = np.clip(np.log(np.asarray(lr, dtype=float)), u0, u1) - self.center[0]
        v = np.clip(np.log(np.asarray(batch_tokens, dtype=float)), v0, v1) - self.center[1]
        return _cubic_design(u, v) @ self.coef

    def excess(self, lr: Any, batch_tokens: Any) -> np.ndarray:
        return (self.loss_at(lr, batch_tokens) - self.loss_min) / self.loss_min


def fit_cubic_reading(group: pd.DataFrame, window: float = 0.05) -> CubicReading | None:
    """None when fewer than 15 runs lie within ``window``."""
    loss = group["loss"].to_numpy(float)
    keep = loss <= loss.min() * (1.0 + window)
    if keep.sum() < 15:
        return None
    u = np.log(group["lr"].to_numpy(float))[keep]
    v = np.log(group["batch_tokens"].to_numpy(float))[keep]
    center = np.array([u.mean(), v.mean()])
    coef, *_ = np.linalg.lstsq(_cubic_design(u - center[0], v - center[1]), loss[keep], rcond=None)
    box = ((float(u.min()), float(u.max())), (float(v.min()), float(v.max())))
    gu, gv = np.meshgrid(np.linspace(*box[0], 201), np.linspace(*box[1], 201))
    surface = _cubic_design(gu - center[0], gv - center[1]) @ coef
    return CubicReading(coef=coef, center=center, box=box, loss_min=float(surface.min()))
