"""Synthetic runs for the report tests: a known Chinchilla law plus noise, an lr × batch grid
with a known optimum, and loss curves, so figures and reports have real structure to show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.laws.loss import HOFFMANN_2022
from scalinglab.runs.store import RunStore

TRUE = dict(HOFFMANN_2022.params)
GRID_N, GRID_D = 2.0e7, 4.0e8
GRID_LR_OPT, GRID_BATCH_OPT = 2.0e-3, 2.6e5


def isoflop_runs(
    budgets: tuple[float, ...] = (1e16, 3e16, 1e17, 3e17, 1e18),
    per_budget: int = 7,
    noise: float = 0.006,
    seed: int = 0,
    dataset: str = "synthetic",
) -> pd.DataFrame:
    """IsoFLOP design: at each compute budget, N spans a decade around the Chinchilla optimum."""
    rng = np.random.default_rng(seed)
    rows = []
    a, b = TRUE["alpha"], TRUE["beta"]
    for C in budgets:
        G = (a * TRUE["A"] / (b * TRUE["B"])) ** (1 / (a + b))
        n_opt = G * (C / 6) ** (b / (a + b))
        for N in n_opt * np.geomspace(0.25, 4.0, per_budget):
            D = C / (6 * N)
            loss = float(HOFFMANN_2022.predict(N=N, D=D)) * float(np.exp(rng.normal(0, noise)))
            rows.append({"N": N, "D": D, "C": 6 * N * D, "loss": loss,
                         "tags": {"dataset": dataset, "sweep": "isoflop"}})
    return pd.DataFrame(rows)


def hparam_grid(seed: int = 1, n_lr: int = 7, n_batch: int = 6) -> pd.DataFrame:
    """An lr × batch grid at one (N, D); loss is a tilted convex bowl in (log lr, log B)."""
    rng = np.random.default_rng(seed)
    base = float(HOFFMANN_2022.predict(N=GRID_N, D=GRID_D))
    rows = []
    for lr in GRID_LR_OPT * np.geomspace(1 / 8, 8, n_lr):
        for batch in GRID_BATCH_OPT * np.geomspace(1 / 6, 6, n_batch):
            u, v = np.log(lr / GRID_LR_OPT), np.log(batch / GRID_BATCH_OPT)
            loss = base * (1 + 0.012 * u**2 + 0.006 * v**2 - 0.004 * u * v)
            loss *= float(np.exp(rng.normal(0, 0.001)))
            rows.append({"N": GRID_N, "D": GRID_D, "C": 6 * GRID_N * GRID_D, "loss": loss,
                         "lr": lr, "batch_tokens": batch,
                         "tags": {"dataset": "synthetic", "sweep": "hparams"}})
    return pd.DataFrame(rows)


def curve_for(N: float, D: float, points: int = 40, seed: int = 0) -> list[dict[str, float]]:
    """A plausible training curve ending at the law's loss for (N, D)."""
    rng = np.random.default_rng(seed)
    tokens = np.geomspace(D / 200, D, points)
    loss = HOFFMANN_2022.predict(N=N, D=tokens) + 2.0 * (tokens / D) ** -0.05 - 2.0
    loss = loss * np.exp(rng.normal(0, 0.004, points))
    return [{"step": i + 1, "tokens": float(t), "loss": float(x)}
            for i, (t, x) in enumerate(zip(tokens, loss, strict=True))]


def all_runs(seed: int = 0, per_budget: int = 7) -> pd.DataFrame:
    """Both designs, with curves for the IsoFLOP runs, ready for ``RunStore.import_frame``."""
    iso = isoflop_runs(per_budget=per_budget, seed=seed)
    iso["curve"] = [curve_for(n, d, seed=i) for i, (n, d) in enumerate(zip(iso["N"], iso["D"], strict=True))]
    return pd.concat([iso, hparam_grid(seed + 1)], ignore_index=True)


def make_store(path: Path) -> Path:
    """A store with 35 IsoFLOP runs (with curves), a 42-run lr × batch grid and a failed run."""
    with RunStore(path) as store:
        store.import_frame(all_runs(), source="synthetic")
        store.add_run({"run_id": "crashed", "N": 1e7, "D": 1e8, "status": "failed",
                       "error": "CUDA out of memory", "tags": {"dataset": "synthetic"}})
    return path


def synthetic_fit(runs: pd.DataFrame, held: int = 3, unidentified: tuple[str, ...] = ()):
    """A FitResult at the true parameters with spread-out draws, as a bootstrap would give, the
    ``held`` largest-compute runs held out (predicted 0.4% high)."""
    from scalinglab.fit.result import FitResult, Holdout
    from scalinglab.laws.loss import CHINCHILLA

    rng = np.random.default_rng(0)
    point = np.array([TRUE[k] for k in CHINCHILLA.param_names])
    draws = point * np.exp(rng.normal(0, 0.03, size=(200, len(point))))
    runs = runs.sort_values("C", kind="stable")
    top = runs.iloc[len(runs) - held:]
    obs = top["loss"].to_numpy()
    return FitResult(
        law=CHINCHILLA, params=dict(TRUE), run_ids=tuple(runs["run_id"].iloc[:len(runs) - held]),
        objective=0.0, draws=draws, residual_std=0.006, unidentified=unidentified,
        holdout=Holdout(run_ids=tuple(top["run_id"]), inputs={"N": top["N"].to_numpy(),
                        "D": top["D"].to_numpy()}, compute=top["C"].to_numpy(), observed=obs,
                        predicted=obs * 1.004, lo=obs * 0.99, hi=obs * 1.01) if held else None,
        data_range={"N": (runs["N"].min(), runs["N"].max()), "D": (runs["D"].min(), runs["D"].max())},
        compute_range=(float(runs["C"].min()), float(runs["C"].max())),
    )
