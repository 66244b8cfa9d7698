"""Leave-groups-out evaluation of hyperparameter laws: how much loss does following them cost?

For each held-out (N, D) group a law predicts (lr, batch); the cost is the relative excess loss
of training there over the group's optimum (Step Law's headline metric, 0.09% on their test
set). Three readings of the group's landscape at the prediction are reported, because none is
free of assumptions:

* ``surface``: the group's fitted convex quadratic (:mod:`.landscape`), ``(L(pred) - L*) / L*``.
  Smooth, but it is the same model the ``surface`` estimator uses, which favours that estimator.
* ``cubic``: a cubic fitted to the runs within 5% of the best, ``(C(pred) - min C) / min C``: a
  smooth reading that is not the surface estimator's model.
* ``nearest``: the loss of the grid run nearest the prediction over the group's best run.
  Model-free, but one grid step coarse and floored by run-to-run noise.

Fitted laws are refitted on the remaining groups for every fold, so a held-out group never
informs the law evaluated on it. Published laws are used as they are; where the grid holds
(N, D) points a law was fitted on (Step Law on its own released runs), the notes say so: there it
is not held out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.hparams.fit import fit_hparam_law
from scalinglab.hparams.grid import Grid
from scalinglab.hparams.landscape import (
    CubicReading,
    Landscape,
    fit_cubic_reading,
    fit_landscape,
    nearest_run_excess,
)
from scalinglab.laws.hparams import HparamLaw

Split = Literal["random", "largest"]


@dataclass
class Evaluation:
    """Per-group rows (law, N, D, fold, lr, batch_tokens, excess_surface, excess_cubic,
    excess_nearest, inside_grid)."""

    rows: pd.DataFrame
    holdout_groups: int
    split: str
    notes: list[str] = field(default_factory=list)
    #: mean/max nearest-run excess of each group's *own* fitted optimum: the floor of that reading
    nearest_floor: dict[str, float] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Mean and max excess per law and reading, in the order the laws were given."""
        order = list(dict.fromkeys(self.rows["law"]))
        agg = self.rows.groupby("law").agg(
            groups=("N", "size"),
            mean_surface=("excess_surface", "mean"), max_surface=("excess_surface", "max"),
            mean_cubic=("excess_cubic", "mean"), max_cubic=("excess_cubic", "max"),
            mean_nearest=("excess_nearest", "mean"), max_nearest=("excess_nearest", "max"),
            outside_grid=("inside_grid", lambda s: int((~s.astype(bool)).sum())),
        )
        return agg.loc[order].reset_index()

    def to_dict(self) -> dict[str, Any]:
        return {
            "holdout_groups": self.holdout_groups,
            "split": self.split,
            "metric": "relative excess loss at the predicted (lr, batch) over the group optimum",
            "summary": self.summary().to_dict(orient="records"),
            "groups": self.rows.to_dict(orient="records"),
            "nearest_floor": self.nearest_floor,
            "notes": self.notes,
        }


def fitted_here(law: HparamLaw, keys: Sequence[tuple[float, float]],
                rtol: float = 1e-3) -> list[tuple[float, float]]:
    """The (N, D) points among ``keys`` where ``law`` is known to have been fitted (its
    ``fitted_points``): only there is it not a held-out prediction."""
    points = np.asarray(law.fitted_points, dtype=float).reshape(-1, 2)
    if not len(points):
        return []
    out = []
    for n, d in dict.fromkeys(keys):
        if np.any(np.all(np.abs(points - (n, d)) <= rtol * np.abs(points), axis=1)):
            out.append((float(n), float(d)))
    return out


def folds(keys: Sequence[tuple[float, float]], k: int, split: Split, seed: int) -> list[list[int]]:
    """Indices of held-out groups per fold: a random partition into folds of k, or the k largest
    budgets (C = 6ND) as one extrapolation fold."""
    n = len(keys)
    if not 1 <= k < n:
        raise ParameterError(f"holdout_groups must be between 1 and {n - 1} for {n} groups, not {k}",
                             "holdout_groups")
    if split == "largest":
        order = np.argsort([6 * a * b for a, b in keys])
        return [sorted(int(i) for i in order[-k:])]
    if split != "random":
        raise ParameterError(f"split must be 'random' or 'largest', not {split!r}", "split")
    perm = np.random.default_rng(seed).permutation(n)
    return [sorted(int(i) for i in perm[j:j + k]) for j in range(0, n, k)]


def evaluate_laws(
    grid: Grid,
    laws: Mapping[str, HparamLaw],
    methods: Sequence[str] = ("threshold", "surface"),
    holdout_groups: int = 1,
    split: Split = "random",
    seed: int = 0,
    tolerance: float = 0.0025,
    fit_window: float = 0.02,
    lr_features: tuple[str, ...] = ("N", "D"),
    batch_features: tuple[str, ...] = ("D",),
) -> Evaluation:
    """Excess loss of each law's prediction on held-out groups; ``methods`` add refitted laws
    (named ``fitted-<method>``)."""
    groups = list(grid.groups())
    keys = [k for k, _ in groups]
    lands: dict[int, Landscape | None] = {}
    cubics: dict[int, CubicReading | None] = {i: fit_cubic_reading(g) for i, (_, g) in
                                               enumerate(groups)}
    # what the grid's reading found wrong (a batch unit that looks mistaken) holds for every
    # law's excess read on it
    notes: list[str] = [n for n in grid.notes if n.startswith("warning: ")]
    for i, (_, g) in enumerate(groups):
        try:
            lands[i] = fit_landscape(g, window=fit_window)
        except NotIdentifiable as exc:
            lands[i] = None
            notes.append(f"{exc}: surface reading unavailable for this group")
    rows: list[dict[str, Any]] = []

    def score(name: str, law: HparamLaw, i: int, fold: int) -> None:
        (N, D), g = groups[i]
        pred = law.predict(N, D)
        lr, bt = float(pred["lr"]), float(pred["batch_tokens"])
        land = lands[i]
        rows.append({
            "law": name, "N": N, "D": D, "fold": fold, "lr": lr, "batch_tokens": bt,
            "excess_surface": float(land.excess(lr, bt)) if land else float("nan"),
            "excess_cubic": float(cub.excess(lr, bt)) if (cub := cubics[i]) else float("nan"),
            "excess_nearest": nearest_run_excess(g, lr, bt),
            "inside_grid": bool(g["lr"].min() <= lr <= g["lr"].max()
                                and g["batch_tokens"].min() <= bt <= g["batch_tokens"].max()),
        })

    all_folds = folds(keys, holdout_groups, split, seed)
    for fold, held in enumerate(all_folds):
        for name, law in laws.items():
            for i in held:
                score(name, law, i, fold)
        train = grid.subset({keys[i] for i in held}, keep=False)
        for method in methods:
            try:
                fit = fit_hparam_law(train, method=method, tolerance=tolerance, n_boot=0,  # type: ignore[arg-type]
                                     fit_window=fit_window, lr_features=lr_features,
                                     batch_features=batch_features)
            except NotIdentifiable as exc:
                raise NotIdentifiable(f"fold {fold}: cannot refit with {method}: {exc}") from None
            law = fit.law(name=f"fitted-{method}")
            for i in held:
                score(f"fitted-{method}", law, i, fold)
    for name, law in laws.items():
        src = law.data_source
        seen = fitted_here(law, keys)
        if seen:
            notes.append(f"{name} was fitted on runs at {len(seen)} of these {len(set(keys))} (N, D) "
                         f"points ({', '.join(f'N={n:.3g}, D={d:.3g}' for n, d in seen[:3])}"
                         f"{', ...' if len(seen) > 3 else ''}): there it is not a held-out prediction")
        elif src and Path(src).resolve() == Path(grid.source).resolve():
            notes.append(f"{name} was fitted on this grid, held-out groups included: it is not "
                         "a held-out prediction")
    if "surface" in methods:
        notes.append("the surface reading uses the same landscape model as the surface "
                     "estimator, which favours fitted-surface there; read the cubic and nearest columns too")
    floor = [nearest_run_excess(g, *land.argmin_exp)
             for i, (_, g) in enumerate(groups) if (land := lands[i]) is not None]
    nearest_floor = {"mean": float(np.mean(floor)), "max": float(np.max(floor))} if floor else {}
    if floor:
        notes.append(f"nearest-run reading floor: each group's own fitted optimum reads "
                     f"{100 * nearest_floor['mean']:.3f}% mean, {100 * nearest_floor['max']:.3f}% "
                     "max (grid coarseness and run-to-run noise)")
    return Evaluation(rows=pd.DataFrame(rows), holdout_groups=holdout_groups, split=split,
                      notes=notes, nearest_floor=nearest_floor)
