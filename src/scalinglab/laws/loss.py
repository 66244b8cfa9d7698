"""Loss laws: Chinchilla, Kaplan, and a single-variable power law with an irreducible term.

Each law is declared once, with its fitting parametrisation, starting grid, identifiability rule
and (for Chinchilla) its closed-form compute optimum, and registered in the catalogue
(:mod:`scalinglab.laws.registry`). Also the published instances used for planning, and the
compute-optimal allocation under ``C = 6 N D`` for any law of N and D.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from scalinglab.errors import ParameterError
from scalinglab.laws.base import DerivedFigure, Law, LawInstance, Provenance
from scalinglab.laws.identify import DistinctInputs, sum_of_powers_owners
from scalinglab.laws.logspace import KaplanLog, SumOfPowers
from scalinglab.laws.registry import get_law, register_law, register_published
from scalinglab.laws.starts import besiroglu_grid, kaplan_starts, power_starts


def _chinchilla(x: Mapping[str, np.ndarray], p: Mapping[str, float]) -> np.ndarray:
    return p["E"] + p["A"] / x["N"] ** p["alpha"] + p["B"] / x["D"] ** p["beta"]


def _kaplan(x: Mapping[str, np.ndarray], p: Mapping[str, float]) -> np.ndarray:
    ratio = p["alpha_N"] / p["alpha_D"]
    return ((p["N_c"] / x["N"]) ** ratio + p["D_c"] / x["D"]) ** p["alpha_D"]


def chinchilla_optimum(params: Mapping[str, Any], C: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ``(N_opt, D_opt)`` minimising Chinchilla's L subject to ``C = 6 N D``.

    Setting dL/dN = 0 along ``D = C/(6N)`` gives ``alpha A N^-alpha = beta B D^-beta``, hence
    ``N_opt = G (C/6)^(beta/(alpha+beta))`` with ``G = (alpha A / (beta B))^(1/(alpha+beta))``.
    Works on arrays of parameters (bootstrap draws) as well as scalars.
    """
    A, B, a, b = (np.asarray(params[k], dtype=float) for k in ("A", "B", "alpha", "beta"))
    C = np.asarray(C, dtype=float)
    with np.errstate(all="ignore"):  # wild draws overflow to inf: they are spread, not errors
        G = (a * A / (b * B)) ** (1.0 / (a + b))
        n_opt = G * (C / 6.0) ** (b / (a + b))
        d_opt = (C / 6.0) / n_opt
    return n_opt, d_opt


_CHINCHILLA_PARAMS = ("E", "A", "B", "alpha", "beta")

CHINCHILLA = register_law(Law(
    name="chinchilla",
    formula="L = E + A/N^alpha + B/D^beta",
    inputs=("N", "D"),
    output="loss",
    param_names=_CHINCHILLA_PARAMS,
    fn=_chinchilla,
    bounds={
        "E": (1e-6, 20.0),
        "A": (1e-6, 1e12),
        "B": (1e-6, 1e12),
        "alpha": (1e-3, 3.0),
        "beta": (1e-3, 3.0),
    },
    provenance=Provenance(
        source="Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models' (Approach 3)",
        url="https://arxiv.org/abs/2203.15556",
        units="N: non-embedding parameters; D: training tokens; L: nats/token",
    ),
    parametrisation=SumOfPowers,
    starts=besiroglu_grid,
    identifiability=DistinctInputs(3, sum_of_powers_owners(("N", "D"), _CHINCHILLA_PARAMS)),
    optimum=chinchilla_optimum,
    derived=(
        DerivedFigure("N_opt_exponent", lambda p: p["beta"] / (p["alpha"] + p["beta"]),
                      ("alpha", "beta"), "a in N_opt ∝ C^a"),
        DerivedFigure("D_opt_exponent", lambda p: p["alpha"] / (p["alpha"] + p["beta"]),
                      ("alpha", "beta"), "b in D_opt ∝ C^b"),
    ),
    exponents=("alpha", "beta"),
))

KAPLAN = register_law(Law(
    name="kaplan",
    formula="L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
    inputs=("N", "D"),
    output="loss",
    param_names=("N_c", "D_c", "alpha_N", "alpha_D"),
    fn=_kaplan,
    bounds={
        "N_c": (1.0, 1e20),
        "D_c": (1.0, 1e20),
        "alpha_N": (1e-3, 3.0),
        "alpha_D": (1e-3, 3.0),
    },
    provenance=Provenance(
        source="Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', eq. 1.5",
        url="https://arxiv.org/abs/2001.08361",
        units="N: non-embedding parameters; D: training tokens; L: nats/token",
    ),
    parametrisation=KaplanLog,
    starts=kaplan_starts,
    # no constant term: two distinct values of each input already pin a term down
    identifiability=DistinctInputs(2, {"N": ("N_c", "alpha_N"), "D": ("D_c", "alpha_D")}),
    exponents=("alpha_N", "alpha_D"),
))


_UNITS = {"N": "parameters", "D": "tokens", "C": "FLOPs"}


def power_law(variable: str = "C") -> Law:
    """``L = E + A * x^-alpha`` in one variable (``N``, ``D`` or ``C``)."""
    if variable not in ("N", "D", "C"):
        raise ParameterError(f"variable must be N, D or C, not {variable!r}", "variable")

    def fn(x: Mapping[str, np.ndarray], p: Mapping[str, float]) -> np.ndarray:
        return p["E"] + p["A"] * x[variable] ** (-p["alpha"])

    params = ("E", "A", "alpha")
    return Law(
        name=f"power_{variable}",
        formula=f"L = E + A*{variable}^-alpha",
        inputs=(variable,),
        output="loss",
        param_names=params,
        fn=fn,
        bounds={"E": (0.0, 20.0), "A": (1e-8, 1e15), "alpha": (1e-3, 3.0)},
        provenance=Provenance(source="single-variable power law with irreducible term",
                              units=f"{variable}: {_UNITS[variable]}; L: nats/token"),
        parametrisation=SumOfPowers,
        starts=power_starts,
        identifiability=DistinctInputs(3, sum_of_powers_owners((variable,), params)),
        exponents=("alpha",),
    )


for _v in ("N", "D", "C"):
    register_law(power_law(_v))

#: the loss laws of this module by name (the full catalogue is ``laws.registry.list_laws()``)
LOSS_LAWS: dict[str, Law] = {law.name: law for law in (CHINCHILLA, KAPLAN)} | {
    f"power_{v}": get_law(f"power_{v}") for v in ("N", "D", "C")}


def get_loss_law(name: str) -> Law:
    """A law from the catalogue (kept for callers of the 0.1 API; prefer ``get_law``)."""
    return get_law(name)


# Published instances ---------------------------------------------------------------------------

HOFFMANN_2022 = CHINCHILLA.with_params(
    {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
    provenance=Provenance(
        source="Hoffmann et al. 2022, Approach 3 fit",
        url="https://arxiv.org/abs/2203.15556",
        units="N: parameters; D: tokens; L: nats/token on MassiveText",
        valid_range={"N": (7e7, 1.6e10), "D": (5e9, 5e11)},
    ),
    label="hoffmann2022",
)

BESIROGLU_2024 = CHINCHILLA.with_params(
    {"E": 1.82, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658},
    provenance=Provenance(
        source="Besiroglu et al. 2024, 'Chinchilla Scaling: A replication attempt' (refit)",
        url="https://arxiv.org/abs/2404.10102",
        units="N: parameters; D: tokens; L: nats/token on MassiveText",
        valid_range={"N": (7e7, 1.6e10), "D": (5e9, 5e11)},
    ),
    label="besiroglu2024",
)

PUBLISHED_LOSS_LAWS: dict[str, LawInstance] = {
    "hoffmann2022": register_published("hoffmann2022", HOFFMANN_2022),
    "besiroglu2024": register_published("besiroglu2024", BESIROGLU_2024),
}


# Compute-optimal allocation --------------------------------------------------------------------


def compute_optimum(
    instance: LawInstance, C: float, inference_tokens: float = 0.0,
    fixed_inputs: Mapping[str, float] | None = None,
) -> tuple[float, float]:
    """``(N_opt, D_opt)`` minimising the law's loss at training compute C (``D = C/6N``).

    With ``inference_tokens`` T > 0 this follows Sardana et al. 2023 ('Beyond Chinchilla-Optimal'):
    the *loss* reachable for total cost ``6ND + 2NT`` is what is minimised, for the total cost
    ``C + 2 N_chinchilla T`` is not known in advance, so here C is the total (train + inference)
    budget, and D = (C - 2NT)/(6N).

    ``fixed_inputs`` holds a law's other inputs at given values, e.g. ``{"U": 1e10}`` for a
    data-constrained law: "I only have U unique tokens".
    """
    law = instance.law
    fixed = dict(fixed_inputs or {})
    missing = [k for k in law.inputs if k not in ("N", "D") and k not in fixed]
    if missing:
        raise ParameterError(f"law {law.name!r} also needs {missing} to allocate a budget "
                             "(e.g. the unique tokens U)", "fixed_inputs")
    if law.optimum is not None and inference_tokens == 0.0 and not fixed:
        n, d = law.optimum(instance.params, C)
        return float(n), float(d)
    if "N" not in law.inputs or "D" not in law.inputs:
        raise ParameterError(f"law {law.name!r} ({law.formula}) does not depend on both N and D, "
                             "so it cannot allocate a compute budget", "law")

    def tokens(log_n: float) -> float:
        n = np.exp(log_n)
        return (C - 2.0 * n * inference_tokens) / (6.0 * n)

    def objective(log_n: float) -> float:
        d = tokens(log_n)
        if d <= 1.0:
            return 1e6 + log_n
        return float(instance.predict(N=np.exp(log_n), D=d, **fixed))

    hi = np.log(C / 6.0)
    if inference_tokens > 0:
        hi = min(hi, np.log(C / (2.0 * inference_tokens)))
    grid = np.linspace(np.log(10.0), hi - 1e-6, 400)
    vals = np.array([objective(g) for g in grid])
    i = int(np.argmin(vals))
    lo_b, hi_b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = minimize_scalar(objective, bounds=(lo_b, hi_b), method="bounded", options={"xatol": 1e-9})
    n = float(np.exp(res.x))
    return n, float(tokens(res.x))


def allocation_params(inst: LawInstance, names: Sequence[str], compute: float, T: float = 0.0,
                      fixed: Mapping[str, float] | None = None) -> list[str]:
    """Which of ``names`` move the compute-optimal (N, D) at ``compute``: each parameter is set
    to a quarter and to four times its value (plus and minus one where it is zero) and the
    optimum recomputed. A parameter that only shifts the loss (an additive offset such as
    Chinchilla's E) leaves it where it is to rounding; one the allocation rests on moves it by far
    more than 1e-6. The plan and a fit's optimum use it to say what an unidentified parameter
    leaves standing."""
    fixed = dict(fixed or {})
    try:
        base = np.array(compute_optimum(inst, compute, inference_tokens=T, fixed_inputs=fixed))
    except (ArithmeticError, ValueError):
        return list(names)
    # an optimum at N = inf, D = 0 (a fit with A = inf) is no allocation: scaling a parameter
    # cannot move it, so the probe below would call every parameter harmless
    if not (np.all(np.isfinite(base)) and np.all(base > 0)):
        return list(names)
    moving = []
    for name in names:
        v = float(inst.params[name])
        if not np.isfinite(v):  # a quarter of inf is inf: the probe cannot move it
            moving.append(name)
            continue
        for alt in ((v / 4.0, v * 4.0) if v != 0.0 else (-1.0, 1.0)):
            try:
                other = compute_optimum(inst.replace(params={**inst.params, name: alt}), compute,
                                        inference_tokens=T, fixed_inputs=fixed)
            except (ArithmeticError, ValueError):
                moving.append(name)
                break
            if not np.allclose(other, base, rtol=1e-6, atol=0.0):
                moving.append(name)
                break
    return moving
