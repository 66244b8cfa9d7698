"""Hoffmann et al. 2022's Approaches 1 and 2: compute-optimal N and D from runs grouped by budget.

Approach 1 takes the lowest-loss run at each compute budget; Approach 2 fits a parabola of loss
against ``ln N`` at each budget (an IsoFLOP profile) and takes its vertex. Either way the
optima are then fitted as power laws ``N_opt = k_N C^a`` and ``D_opt = k_D C^b`` in log-log.
Intervals come from resampling runs *within* budgets, so every resample keeps the design (the
same budgets), which is the variability a re-run of the same sweep would show. A parabola with
no interior minimum says nothing about the optimum; such budgets are excluded, out loud.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.fit.result import NotIdentifiable

#: runs whose compute agrees within this many decades (26%) belong to one budget
DEFAULT_TOL_DEX = 0.1


def group_budgets(
    C: Any, labels: Any = None, tol_dex: float = DEFAULT_TOL_DEX
) -> tuple[np.ndarray, np.ndarray]:
    """Assign runs to compute budgets: ``(group index per run, budget FLOPs per group)``.

    With ``labels`` (a budget column or tag), runs sharing a label form a budget, whose value is
    the label when it is a number and the geometric mean of its runs' C otherwise. Without,
    runs are sorted by C and a new budget starts whenever C exceeds the current budget's first
    run by more than ``tol_dex`` decades (so a budget spans at most ``tol_dex``); its value is
    the geometric mean of its runs' C. Budgets are numbered in increasing compute.
    """
    c = np.asarray(C, dtype=float)
    if labels is not None:
        keys = pd.Series(np.asarray(labels, dtype=object)).astype(str).str.strip()
        codes, uniques = pd.factorize(keys)
        values = np.empty(len(uniques))
        for g, label in enumerate(uniques):
            try:
                values[g] = float(label)
            except ValueError:
                values[g] = float(np.exp(np.log(c[codes == g]).mean()))
    else:
        order = np.argsort(c, kind="stable")
        log_c = np.log10(c[order])
        codes = np.empty(len(c), dtype=int)
        g, start = -1, -np.inf
        for i, lc in zip(order, log_c, strict=True):
            if lc - start > tol_dex:
                g, start = g + 1, lc
            codes[i] = g
        values = np.array([np.exp(np.log(c[codes == k]).mean()) for k in range(g + 1)])
    rank = np.argsort(values, kind="stable")
    remap = np.empty_like(rank)
    remap[rank] = np.arange(len(rank))
    return remap[codes], values[rank]


@dataclass
class BudgetFit:
    """One compute budget: its IsoFLOP parabola (Approach 2) and its best run (Approach 1)."""

    C: float
    n_runs: int
    N_range: tuple[float, float]
    #: ``loss = c0 + c1 ln N + c2 (ln N)^2``; NaN when fewer than 3 model sizes
    coef: tuple[float, float, float]
    #: "ok", or why the vertex is not used
    status: str
    N_opt: float = float("nan")
    D_opt: float = float("nan")
    loss_opt: float = float("nan")
    best: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def loss_at(self, N: Any) -> np.ndarray:
        """The parabola at ``N`` (for plotting the IsoFLOP curve)."""
        x = np.log(np.asarray(N, dtype=float))
        c0, c1, c2 = self.coef
        return c0 + c1 * x + c2 * x * x

    def to_dict(self) -> dict[str, Any]:
        return {
            "C": self.C, "n_runs": self.n_runs, "N_range": list(self.N_range),
            "coef": list(self.coef), "status": self.status, "N_opt": self.N_opt,
            "D_opt": self.D_opt, "loss_opt": self.loss_opt, "best": dict(self.best),
        }


@dataclass
class AllocationLaw:
    """``N_opt = exp(log_kn) C^a`` and ``D_opt = exp(log_kd) C^b`` with bootstrap draws."""

    approach: int
    a: float
    b: float
    log_kn: float
    log_kd: float
    n_budgets: int
    #: draws of (a, b, log_kn, log_kd), shape (K, 4); NaN rows where a resample had < 2 budgets
    draws: np.ndarray | None = None
    level: float = 0.95

    def _q(self, values: np.ndarray) -> tuple[Any, Any]:
        q = (1.0 - self.level) / 2.0
        return np.nanquantile(values, q, axis=0), np.nanquantile(values, 1.0 - q, axis=0)

    @property
    def ci(self) -> dict[str, tuple[float, float]]:
        if self.draws is None or not np.isfinite(self.draws).any():
            return {}
        lo, hi = self._q(self.draws)
        return {k: (float(lo[i]), float(hi[i])) for i, k in enumerate(("a", "b", "log_kn", "log_kd"))}

    def exponent_draws(self) -> dict[str, np.ndarray]:
        """Exponent draws by name (for histograms)."""
        if self.draws is None:
            return {}
        return {"a": self.draws[:, 0], "b": self.draws[:, 1]}

    def n_opt(self, C: Any) -> np.ndarray:
        return np.exp(self.log_kn + self.a * np.log(np.asarray(C, dtype=float)))

    def d_opt(self, C: Any) -> np.ndarray:
        return np.exp(self.log_kd + self.b * np.log(np.asarray(C, dtype=float)))

    def n_opt_interval(self, C: Any) -> tuple[np.ndarray, Any, Any]:
        """``N_opt(C)`` with its percentile band over the draws (None without draws)."""
        point = self.n_opt(C)
        if self.draws is None:
            return point, None, None
        log_c = np.log(np.atleast_1d(np.asarray(C, dtype=float)))
        draws = np.exp(self.draws[:, 2, None] + self.draws[:, 0, None] * log_c[None, :])
        lo, hi = self._q(draws)
        return point, lo.reshape(np.shape(point)), hi.reshape(np.shape(point))

    def to_dict(self) -> dict[str, Any]:
        ci = self.ci
        return {
            "approach": self.approach,
            "N_opt_exponent": self.a,
            "D_opt_exponent": self.b,
            "N_opt_coef": float(np.exp(self.log_kn)),
            "D_opt_coef": float(np.exp(self.log_kd)),
            "ci": {
                "N_opt_exponent": list(ci["a"]) if ci else None,
                "D_opt_exponent": list(ci["b"]) if ci else None,
            },
            "n_budgets": self.n_budgets,
            "n_bootstrap": 0 if self.draws is None else len(self.draws),
            "formula": "N_opt = N_opt_coef * C^N_opt_exponent; D_opt = D_opt_coef * C^D_opt_exponent",
        }


@dataclass
class IsoFlopResult:
    """Per-budget parabolas and the Approach 1 and 2 allocation laws."""

    budgets: list[BudgetFit]
    approach1: AllocationLaw | None
    approach2: AllocationLaw | None
    n_runs: int
    warnings: list[str] = field(default_factory=list)
    level: float = 0.95
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "IsoFLOP (Hoffmann et al. 2022, Approaches 1 and 2)",
            "n_runs": self.n_runs,
            "n_budgets": len(self.budgets),
            "level": self.level,
            "budgets": [b.to_dict() for b in self.budgets],
            "approach1": None if self.approach1 is None else self.approach1.to_dict(),
            "approach2": None if self.approach2 is None else self.approach2.to_dict(),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


# -- the arithmetic, vectorised over resamples ------------------------------------------------


def _parabolas(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares ``y = c0 + c1 x + c2 x^2`` for each weight row; NaN if < 3 sizes.

    ``x`` is centred first (conditioning); the returned coefficients are in the original ``x``.
    """
    m = x.mean()
    xc = x - m
    powers = xc[None, :] ** np.arange(5)[:, None]  # (5, n)
    mom = w @ powers.T  # (K, 5)
    rhs = w @ (powers[:3] * y[None, :]).T  # (K, 3)
    A = np.stack([mom[:, i : i + 3] for i in range(3)], axis=1)  # (K, 3, 3)
    distinct = np.unique(x, return_inverse=True)[1]
    n_sizes = ((w > 0) @ np.eye(distinct.max() + 1)[distinct] > 0).sum(axis=1)
    ok = n_sizes >= 3
    coef = np.full((len(w), 3), np.nan)
    if ok.any():
        coef[ok] = np.linalg.solve(A[ok], rhs[ok][:, :, None])[:, :, 0]
    c0, c1, c2 = coef.T
    # expand c0 + c1 (x - m) + c2 (x - m)^2
    return np.stack([c0 - c1 * m + c2 * m * m, c1 - 2 * c2 * m, c2], axis=1)


def _vertex(coef: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ln N`` at the parabola's minimum and a status code (0 ok, 1 opens down, 2 outside, 3 NaN)."""
    c0, c1, c2 = coef.T
    with np.errstate(all="ignore"):
        xv = -c1 / (2 * c2)
    status = np.where(~np.isfinite(c2), 3, np.where(c2 <= 0, 1, np.where((xv < lo) | (xv > hi), 2, 0)))
    return np.where(status == 0, xv, np.nan), status


def _loglog(log_c: np.ndarray, log_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise OLS ``log_v = slope log_c + icpt`` over finite entries; NaN with < 2 budgets."""
    ok = np.isfinite(log_v)
    w = ok.astype(float)
    n = w.sum(axis=1)
    v = np.where(ok, log_v, 0.0)
    with np.errstate(all="ignore"):
        mc = (w * log_c).sum(axis=1) / n
        mv = v.sum(axis=1) / n
        dc = np.where(ok, log_c - mc[:, None], 0.0)
        var = (dc * dc).sum(axis=1)
        slope = (dc * (v - mv[:, None])).sum(axis=1) / var
        icpt = mv - slope * mc
    bad = (n < 2) | (var <= 1e-12)
    return np.where(bad, np.nan, slope), np.where(bad, np.nan, icpt)


_WHY = {1: "the parabola opens downward (no minimum)",
        2: "the parabola's vertex is outside the sampled N range",
        3: "fewer than 3 distinct model sizes"}


def fit_isoflop(
    frame: pd.DataFrame,
    *,
    bootstrap: int = 200,
    seed: int = 0,
    budget: str | None = None,
    tol_dex: float = DEFAULT_TOL_DEX,
    level: float = 0.95,
) -> IsoFlopResult:
    """Approaches 1 and 2 on runs with ``N``, ``loss`` and ``D`` or ``C`` (the other is derived).

    ``budget`` names a column (or a key of a ``tags`` column) that labels each run's budget;
    otherwise runs are grouped by C (:func:`group_budgets`). Raises :class:`NotIdentifiable`
    when fewer than 2 budgets are usable by either approach.
    """
    from scalinglab.fit.loss import complete_columns

    df, notes = complete_columns(frame, ("N", "D", "C"))
    n_all, d_all, c_all, y_all = (df[k].to_numpy(float) for k in ("N", "D", "C", "loss"))
    for name, v in (("N", n_all), ("D", d_all), ("C", c_all), ("loss", y_all)):
        bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)))
        if bad.size:
            raise ValueError(f"{name} must be positive and finite; run {bad[0] + 1} has {name} = {float(v[bad[0]]):g}")
    labels = None
    if budget is not None:
        if budget in df.columns:
            labels = df[budget].to_numpy()
        elif "tags" in df.columns:
            labels = df["tags"].map(lambda t: (t or {}).get(budget)).to_numpy()
        if labels is None or pd.isna(labels).any():
            raise ValueError(f"budget {budget!r} is neither a column nor a tag of every run")
    group, values = group_budgets(c_all, labels, tol_dex)
    if labels is None:
        notes.append(f"runs grouped into {len(values)} budgets by C (within {tol_dex:g} decades)")

    rng = np.random.default_rng(seed)
    warnings: list[str] = []
    budgets: list[BudgetFit] = []
    # per budget: full-data fit in row 0, resamples in rows 1..K
    k = max(bootstrap, 0)
    v_opt = np.full((k + 1, len(values)), np.nan)  # ln N_opt (Approach 2)
    best_n = np.full((k + 1, len(values)), np.nan)  # ln N, ln D, ln C of the best run (Approach 1)
    best_d = np.full_like(best_n, np.nan)
    best_c = np.full_like(best_n, np.nan)
    for g, c in enumerate(values):
        idx = np.flatnonzero(group == g)
        x, y = np.log(n_all[idx]), y_all[idx]
        w = np.ones((1, len(idx)))
        if k:
            draws = rng.integers(0, len(idx), size=(k, len(idx)))
            w = np.vstack([w, np.stack([np.bincount(r, minlength=len(idx)) for r in draws])])
        coef = _parabolas(x, y, w)
        masked = np.where(w > 0, x[None, :], np.nan)
        xv, status = _vertex(coef, np.nanmin(masked, axis=1), np.nanmax(masked, axis=1))
        v_opt[:, g] = xv
        pick = np.argmin(np.where(w > 0, y[None, :], np.inf), axis=1)
        best_n[:, g], best_d[:, g], best_c[:, g] = x[pick], np.log(d_all[idx][pick]), np.log(c_all[idx][pick])
        b = BudgetFit(C=float(c), n_runs=len(idx), N_range=(float(n_all[idx].min()), float(n_all[idx].max())),
                      coef=tuple(float(v) for v in coef[0]), status="ok" if status[0] == 0 else _WHY[int(status[0])],
                      best={"N": float(n_all[idx][pick[0]]), "D": float(d_all[idx][pick[0]]),
                            "C": float(c_all[idx][pick[0]]), "loss": float(y[pick[0]])})
        if b.ok:
            b.N_opt = float(np.exp(xv[0]))
            b.D_opt = float(c / (6.0 * b.N_opt))
            b.loss_opt = float(b.loss_at(b.N_opt))
        else:
            warnings.append(f"budget C={c:.3g} ({len(idx)} runs) excluded from Approach 2: {b.status}")
        if x[pick[0]] in (x.min(), x.max()) and len(np.unique(x)) > 1:
            edge = "smallest" if x[pick[0]] == x.min() else "largest"
            warnings.append(f"budget C={c:.3g}: the best run is the {edge} model, so Approach 1's "
                            "optimum may lie outside the sampled sizes")
        budgets.append(b)

    log_c = np.log(values)[None, :]
    a2 = _allocation(2, np.broadcast_to(log_c, v_opt.shape), v_opt,
                     np.log(values)[None, :] - np.log(6.0) - v_opt, level)
    a1 = _allocation(1, best_c, best_n, best_d, level)
    if a2 is None and a1 is None:
        reasons = "; ".join(f"C={b.C:.3g}: {b.status}" for b in budgets if not b.ok) or "only one budget"
        raise NotIdentifiable(
            f"IsoFLOP needs at least 2 compute budgets with an interior loss minimum; found "
            f"{len(values)} budget(s) ({reasons})"
        )
    if a2 is None:
        warnings.append("Approach 2 needs at least 2 budgets whose parabola has an interior minimum")
    for a in (a1, a2):
        if a is not None and a.draws is not None:
            failed = float(np.mean(~np.isfinite(a.draws[:, 0])))
            if failed > 0.05:
                warnings.append(f"Approach {a.approach}: {failed:.0%} of resamples left fewer than 2 usable budgets")
    return IsoFlopResult(budgets=budgets, approach1=a1, approach2=a2, n_runs=len(df),
                         warnings=warnings, level=level, notes=notes)


def _allocation(
    approach: int, log_c: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, level: float
) -> AllocationLaw | None:
    """Power laws in log-log for the full data (row 0) and each resample (rows 1..)."""
    a, kn = _loglog(log_c, log_n)
    b, kd = _loglog(log_c, np.where(np.isfinite(log_n), log_d, np.nan))
    if not np.isfinite(a[0]):
        return None
    boot = np.stack([a[1:], b[1:], kn[1:], kd[1:]], axis=1) if len(a) > 1 else None
    return AllocationLaw(approach=approach, a=float(a[0]), b=float(b[0]), log_kn=float(kn[0]),
                         log_kd=float(kd[0]), n_budgets=int(np.isfinite(log_n[0]).sum()),
                         draws=boot, level=level)
