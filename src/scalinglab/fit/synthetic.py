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
from scalinglab.laws.loss import BESIROGLU_2024, CHINCHILLA


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


#: a law whose terms differ clearly (exponents 0.6 and 0.2), for :func:`twin_basin_runs`
CHINCHILLA_TWIN = CHINCHILLA.with_params({"E": 1.5, "A": 1e5, "B": 100.0, "alpha": 0.6, "beta": 0.2},
                                         label="two-basin test law")


def mirrored(params: Mapping[str, float], ratio: float) -> dict[str, float]:
    """Chinchilla parameters that predict exactly what ``params`` do wherever ``D = ratio N``:
    the N term takes the D term's exponent and the D term the N term's
    (``B D^-beta = B ratio^-beta N^-beta`` and ``A N^-alpha = A ratio^alpha D^-alpha``)."""
    return {"E": params["E"], "A": params["B"] * ratio ** -params["beta"], "alpha": params["beta"],
            "B": params["A"] * ratio ** params["alpha"], "beta": params["alpha"]}


def twin_basin_runs(
    n_runs: int = 250,
    ratio: float = 20.0,
    off_line: tuple[int, ...] = (),
    decoy: int | None = None,
    noise: float = 0.003,
    seed: int = 0,
    truth: LawInstance | None = None,
) -> pd.DataFrame:
    """Runs with two basins of the Chinchilla fit: model sizes log-spaced over 1e7-1e10, all
    trained at ``ratio`` tokens per parameter except the runs ``off_line`` (4x the tokens).

    On the line, ``truth`` and its :func:`mirrored` twin predict identically, so only the
    off-line runs tell which term is N's: the fit has a basin at each, and the truth's is the
    deeper one by what the off-line runs add. ``decoy`` is one more off-line run whose loss is
    the *twin's* prediction (a mismeasured run): a screen that sees it and none of the others
    prefers the twin. Columns N, D, C, loss.
    """
    truth = truth or CHINCHILLA_TWIN
    rng = np.random.default_rng(seed)
    N = np.geomspace(1e7, 1e10, n_runs)
    D = ratio * N
    loss = truth.predict(N=N, D=D) * np.exp(noise * rng.standard_normal(n_runs))
    off = np.array([*off_line, *(() if decoy is None else (decoy,))], dtype=int)
    D[off] *= 4.0
    loss[off] = truth.predict(N=N[off], D=D[off])
    if decoy is not None:
        twin = truth.law.with_params(mirrored(truth.params, ratio))
        loss[decoy] = twin.predict(N=N[decoy : decoy + 1], D=D[decoy : decoy + 1])[0]
    return pd.DataFrame({"N": N, "D": D, "C": 6.0 * N * D, "loss": loss})
