"""Synthetic lr x batch grids whose optimum follows a known law: for tests, demos and benchmarks.

Each (N, D) group's loss is a convex quadratic bowl in (ln lr, ln batch) around the law's
prediction, so every estimator has a right answer to recover.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scalinglab.laws.hparams import STEP_LAW, HparamLaw

DEFAULT_POINTS = tuple((N, D) for N in (2e8, 4e8, 8e8) for D in (5e9, 2e10, 8e10))


def synthetic_grid(
    law: HparamLaw = STEP_LAW,
    points: Sequence[tuple[float, float]] = DEFAULT_POINTS,
    lr_offsets: Sequence[float] = tuple(np.linspace(-1.5, 1.5, 13)),
    batch_offsets: Sequence[float] = tuple(np.linspace(-1.5, 1.5, 11)),
    curvature: tuple[float, float, float] = (0.004, 0.003, 0.001),
    base_loss: float = 2.5,
    noise: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Runs with columns N, D, lr, batch_tokens, loss.

    ``loss = L0 (1 + a du^2 + b dv^2 + c du dv) (1 + noise * e)``, with du, dv the offsets of
    ln lr and ln batch from the law's optimum, ``L0 = base_loss`` scaled gently down with N and D,
    and e standard normal. Offsets are in natural-log units around the optimum.
    """
    a, b, c = curvature
    rng = np.random.default_rng(seed)
    rows = []
    for N, D in points:
        pred = law.predict(N, D)
        u0, v0 = np.log(float(pred["lr"])), np.log(float(pred["batch_tokens"]))
        l0 = base_loss * (N / 1e8) ** -0.02 * (D / 1e10) ** -0.02
        for du in lr_offsets:
            for dv in batch_offsets:
                loss = l0 * (1 + a * du * du + b * dv * dv + c * du * dv)
                if noise:
                    loss *= 1 + noise * rng.standard_normal()
                rows.append({"N": N, "D": D, "lr": float(np.exp(u0 + du)),
                             "batch_tokens": float(np.exp(v0 + dv)), "loss": loss})
    return pd.DataFrame(rows)
