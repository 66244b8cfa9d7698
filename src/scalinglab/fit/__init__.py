"""Fitting loss laws to runs: Chinchilla Approach 3 done right, Kaplan, power laws, IsoFLOP.

Public API (see each function's docstring)::

    fit_law(law, frame, *, columns=None, bootstrap=200, holdout_top=0, seed=0) -> FitResult
    fit_arrays(law, inputs, loss, *, run_ids=None, ...) -> FitResult
    fit_chinchilla(N, D, loss, ...) / fit_kaplan(N, D, loss, ...) / fit_power(x, loss, variable="C", ...)
    fit_isoflop(frame, *, bootstrap=200, seed=0, budget=None, tol_dex=0.1) -> IsoFlopResult
    group_budgets(C, labels=None, tol_dex=0.1) -> (group per run, budget FLOPs per group)
    batched_lbfgs(fg, x0, ...) -> BatchResult
"""

from scalinglab.errors import NotIdentifiable
from scalinglab.fit.isoflop import (
    AllocationLaw,
    BudgetFit,
    IsoFlopResult,
    fit_isoflop,
    group_budgets,
)
from scalinglab.fit.loss import (
    besiroglu_grid,
    check_identifiable,
    fit_arrays,
    fit_chinchilla,
    fit_kaplan,
    fit_law,
    fit_power,
)
from scalinglab.fit.optimize import BatchResult, batched_lbfgs
from scalinglab.fit.result import FitResult, Holdout, Optimum

__all__ = [
    "AllocationLaw",
    "BatchResult",
    "BudgetFit",
    "FitResult",
    "Holdout",
    "IsoFlopResult",
    "NotIdentifiable",
    "Optimum",
    "batched_lbfgs",
    "besiroglu_grid",
    "check_identifiable",
    "fit_arrays",
    "fit_chinchilla",
    "fit_isoflop",
    "fit_kaplan",
    "fit_law",
    "fit_power",
    "group_budgets",
]
