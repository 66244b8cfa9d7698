"""Synthetic runs drawn from a known loss law, for tests, benchmarks and demos.

A fit is only trustworthy if it recovers parameters it was given; these generators make the
truth known. The default layout mimics an IsoFLOP study (several model sizes at each compute
budget), which is the shape of the data Chinchilla's three approaches were designed for.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from scalinglab.laws.base import LawInstance
from scalinglab.laws.loss import BESIROGLU_2024


def isoflop_runs(
    budgets: np.ndarray | list[float] | None = None,
    per_budget: int = 10,
    truth: LawInstance = BESIROGLU_2024,
    noise: float = 0.01,
    seed: int = 0,
    width: float = 1.2,
) -> pd.DataFrame:
    """Runs at each budget C with N log-spaced within ``width`` decades either side of N_opt(C).

    ``noise`` is the std of a multiplicative log-normal error on the loss. Columns: N, D, C, loss.
    """
    from scalinglab.laws.loss import compute_optimum

    rng = np.random.default_rng(seed)
    cs = np.geomspace(6e18, 3e22, 25) if budgets is None else np.asarray(budgets, dtype=float)
    rows = []
    for c in cs:
        n_opt, _ = compute_optimum(truth, float(c))
        for n in n_opt * np.logspace(-width, width, per_budget):
            rows.append((n, c / (6.0 * n), c))
    frame = pd.DataFrame(rows, columns=["N", "D", "C"])
    clean = truth.predict(N=frame["N"].to_numpy(), D=frame["D"].to_numpy())
    frame["loss"] = clean * np.exp(noise * rng.standard_normal(len(frame)))
    return frame


def random_runs(
    n_runs: int = 250,
    truth: LawInstance = BESIROGLU_2024,
    noise: float = 0.01,
    seed: int = 0,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Runs with N and D drawn log-uniformly from ``ranges`` (Chinchilla's by default)."""
    rng = np.random.default_rng(seed)
    ranges = dict(ranges or {"N": (7e7, 1.6e10), "D": (5e9, 5e11)})
    data = {k: np.exp(rng.uniform(*np.log(v), n_runs)) for k, v in ranges.items()}
    frame = pd.DataFrame(data)
    if {"N", "D"} <= set(frame.columns):
        frame["C"] = 6.0 * frame["N"] * frame["D"]
    clean = truth.predict(**{k: frame[k].to_numpy() for k in truth.law.inputs})
    frame["loss"] = clean * np.exp(noise * rng.standard_normal(n_runs))
    return frame
