"""Loss-to-loss laws: one loss as a shifted power law of another (Brandfonbrener et al. 2024).

``y = K (x - E_x)^kappa + E_y``, where ``E_x`` and ``E_y`` are the irreducible parts of the two
losses (what neither model family can go below) and ``K``, ``kappa`` the power law between the
reducible parts. Brandfonbrener et al. ("Loss-to-Loss Prediction: Scaling Laws for All
Datasets", 2024) find it in three pairings:

- ``l2l_train_to_train``: the training (validation-on-own-corpus) losses of two models trained
  on different corpora with the same (N, D), i.e. paired by compute;
- ``l2l_train_to_test``: one model's training loss and its loss on a test set;
- ``l2l_test_to_test``: two models' (different corpora, same (N, D)) losses on one test set.

The maths is the same in all three, so the three laws are one formula under three names and
provenances. The formula's fitting parametrisation is the symbolic one of
:mod:`scalinglab.laws.formula`, so it fits through the one engine (multi-start, bootstrap).

Below the offset. Bigger models have lower loss, so the prediction that matters is at an x below
every fitted one, and that x can fall at or below ``E_x``, where ``(x - E_x)^kappa`` has no real
value. The law's function (:func:`shifted_power`) then returns ``E_y`` (the limit as
``x -> E_x`` from above, for ``kappa > 0``) instead of NaN; :func:`below_offset` tells a caller
which points that happened to, so it can warn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scalinglab.laws.base import Law, Provenance
from scalinglab.laws.registry import register_law

FORMULA = "y = K*(x - E_x)**kappa + E_y"
PARAMS = ("K", "kappa", "E_x", "E_y")
#: plausible ranges; fits add the data-dependent ones (E_x below every x, E_y below every y)
BOUNDS = {"K": (1e-6, 1e6), "kappa": (0.02, 10.0), "E_x": (1e-6, 50.0), "E_y": (1e-6, 50.0)}
PAPER = "Brandfonbrener et al. 2024, 'Loss-to-Loss Prediction: Scaling Laws for All Datasets'"
URL = "https://arxiv.org/abs/2411.12925"


def below_offset(params: Mapping[str, Any], x: Any) -> np.ndarray:
    """Which ``x`` lie at or below the offset ``E_x`` (broadcasts over draws)."""
    return np.asarray(x, dtype=float) <= np.asarray(params["E_x"], dtype=float)


def shifted_power(inputs: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> np.ndarray:
    """``K (x - E_x)^kappa + E_y``, with ``E_y`` (the limit from above) at or below ``E_x``."""
    x = np.asarray(inputs["x"], dtype=float)
    gap = np.maximum(x - np.asarray(params["E_x"], dtype=float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.asarray(params["K"], dtype=float) * gap ** np.asarray(params["kappa"], dtype=float)
    return np.where(gap > 0, value, 0.0) + np.asarray(params["E_y"], dtype=float)


def _starts(inputs: Mapping[str, np.ndarray], loss: np.ndarray) -> np.ndarray:
    """(log K, kappa, log E_x, log E_y): offsets from 0 to 95% of the smallest loss of each side,
    exponents 0.5 to 2 (the paper's kappa lie in 0.6-1.6); K is then set so that the middle run
    is fitted exactly, which puts every start on the data's scale."""
    x = np.asarray(inputs["x"], dtype=float)
    y = np.asarray(loss, dtype=float)
    xm, ym = float(np.median(x)), float(np.median(y))
    out = []
    for fx in (0.05, 0.4, 0.7, 0.85, 0.95):
        for fy in (0.05, 0.4, 0.7, 0.85, 0.95):
            ex, ey = fx * float(x.min()), fy * float(y.min())
            for kappa in (0.5, 0.8, 1.0, 1.3, 2.0):
                k = max(ym - ey, 1e-6) / max(xm - ex, 1e-6) ** kappa
                out.append((np.log(k), kappa, np.log(ex), np.log(ey)))
    return np.array(out)


def _law(name: str, what: str, notes: str) -> Law:
    base = Law.from_formula(FORMULA, inputs=("x",), params=PARAMS, name=name, output="y",
                            bounds=BOUNDS, exponents=("kappa",), starts=_starts)
    return base.renamed(name, fn=shifted_power, provenance=Provenance(
        source=f"{PAPER}: {what}", url=URL,
        units="x, y: cross-entropy losses (nats/token) or bits per byte, each in its own unit",
        notes=notes))


L2L_TRAIN_TO_TRAIN = register_law(_law(
    "l2l_train_to_train", "train-to-train (two corpora, models paired by N and D)",
    "x: a model's loss on its own corpus; y: the loss of the model with the same N and D trained "
    "on another corpus, on that corpus; E_x, E_y: the two corpora's irreducible losses"))
L2L_TRAIN_TO_TEST = register_law(_law(
    "l2l_train_to_test", "train-to-test (one model, its training and a test loss)",
    "x: a model's loss on its training distribution; y: the same model's loss on a test set"))
L2L_TEST_TO_TEST = register_law(_law(
    "l2l_test_to_test", "test-to-test (two corpora, models paired by N and D, one test set)",
    "x, y: one test set's loss under models with the same N and D trained on two corpora"))

#: pairing -> law
PAIRINGS = {"train_to_train": L2L_TRAIN_TO_TRAIN, "train_to_test": L2L_TRAIN_TO_TEST,
            "test_to_test": L2L_TEST_TO_TEST}

__all__ = ["BOUNDS", "FORMULA", "L2L_TEST_TO_TEST", "L2L_TRAIN_TO_TEST", "L2L_TRAIN_TO_TRAIN",
           "PAIRINGS", "below_offset", "shifted_power"]
