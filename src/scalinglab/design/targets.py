"""What a design is for: the figures at a target budget, as functions of a law's parameters.

A study is run to predict a larger budget ``C``: the loss the compute-optimal model reaches there,
``L(C)``, and that model's size and data, ``N_opt(C)`` and ``D_opt(C) = C / (6 N_opt)``. Each
figure is computed from the law's own maths (its closed-form optimum where it has one, else a
numerical optimisation per draw, :func:`scalinglab.laws.loss.compute_optimum`), on the point
estimate and on every bootstrap draw at once, so designs can weigh how runs would move them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scalinglab.errors import ParameterError
from scalinglab.laws.base import Law, LawInstance
from scalinglab.laws.loss import compute_optimum

#: the figures at the target budget, in the order designs and simulations report them
FIGURES = ("loss", "N_opt", "D_opt")


def check_allocatable(law: Law) -> None:
    """A design for a target budget needs a law of N and D (it allocates C = 6ND)."""
    if not {"N", "D"} <= set(law.inputs):
        raise ParameterError(f"law {law.name!r} ({law.formula}) does not depend on both N and D, "
                             "so it has no compute-optimal allocation to design for; use a law "
                             "of N and D (e.g. chinchilla)", "law")


def check_budget(value: float, name: str) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ParameterError(f"{name} must be a positive number of FLOPs, not {value:g}", name)
    return value


def figures_at(law: Law, params: Mapping[str, Any], C: float) -> dict[str, np.ndarray]:
    """``loss``, ``N_opt`` and ``D_opt`` at budget ``C`` for parameters given as floats or as
    equal-length arrays of draws (NaN where a draw has no optimum)."""
    check_allocatable(law)
    cols = {k: np.atleast_1d(np.asarray(params[k], dtype=float)) for k in law.param_names}
    with np.errstate(all="ignore"):  # wild draws overflow: they are spread, not errors
        if law.optimum is not None:
            n, d = (np.asarray(x, dtype=float) for x in law.optimum(cols, C))
        else:
            n = np.full(len(next(iter(cols.values()))), np.nan)
            d = n.copy()
            for i in range(len(n)):
                p = {k: float(v[i]) for k, v in cols.items()}
                if not all(np.isfinite(list(p.values()))):
                    continue
                try:
                    n[i], d[i] = compute_optimum(law.with_params(p), C)
                except (ArithmeticError, ValueError):
                    continue
        loss = np.asarray(law(cols, N=n, D=d), dtype=float)
    return {"loss": loss, "N_opt": n, "D_opt": d}


def truth_at(truth: LawInstance, C: float) -> dict[str, float]:
    """The true figures at ``C`` of a known law (a simulation's truth)."""
    n, d = compute_optimum(truth, float(C))
    return {"loss": float(truth.predict(N=n, D=d)), "N_opt": float(n), "D_opt": float(d)}
