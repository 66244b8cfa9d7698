"""Loss laws: Chinchilla, Kaplan, and a single-variable power law with an irreducible term.

Also the published loss-law instances used for planning, and the compute-optimal allocation
under ``C = 6 N D`` (closed form for Chinchilla, numerical for anything else).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.optimize import minimize_scalar

from scalinglab.laws.base import Law, LawInstance, Provenance


def _chinchilla(x: Mapping[str, np.ndarray], p: Mapping[str, float]) -> np.ndarray:
    return p["E"] + p["A"] / x["N"] ** p["alpha"] + p["B"] / x["D"] ** p["beta"]


def _kaplan(x: Mapping[str, np.ndarray], p: Mapping[str, float]) -> np.ndarray:
    ratio = p["alpha_N"] / p["alpha_D"]
    return ((p["N_c"] / x["N"]) ** ratio + p["D_c"] / x["D"]) ** p["alpha_D"]


CHINCHILLA = Law(
    name="chinchilla",
    formula="L = E + A/N^alpha + B/D^beta",
    inputs=("N", "D"),
    output="loss",
    param_names=("E", "A", "B", "alpha", "beta"),
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
        units="N: non-embedding parameters; D: training tokens; L: nats/token",
    ),
)

KAPLAN = Law(
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
        units="N: non-embedding parameters; D: training tokens; L: nats/token",
    ),
)


def power_law(variable: str = "C") -> Law:
    """``L = E + A * x^-alpha`` in one variable (``N``, ``D`` or ``C``)."""
    if variable not in ("N", "D", "C"):
        raise ValueError(f"power law variable must be N, D or C, not {variable!r}")

    def fn(x: Mapping[str, np.ndarray], p: Mapping[str, float]) -> np.ndarray:
        return p["E"] + p["A"] * x[variable] ** (-p["alpha"])

    return Law(
        name=f"power_{variable}",
        formula=f"L = E + A*{variable}^-alpha",
        inputs=(variable,),
        output="loss",
        param_names=("E", "A", "alpha"),
        fn=fn,
        bounds={"E": (0.0, 20.0), "A": (1e-8, 1e15), "alpha": (1e-3, 3.0)},
        provenance=Provenance(source="single-variable power law with irreducible term"),
    )


LOSS_LAWS: dict[str, Law] = {
    "chinchilla": CHINCHILLA,
    "kaplan": KAPLAN,
    "power_N": power_law("N"),
    "power_D": power_law("D"),
    "power_C": power_law("C"),
}


def get_loss_law(name: str) -> Law:
    try:
        return LOSS_LAWS[name]
    except KeyError:
        raise KeyError(f"unknown loss law {name!r}; choose from {sorted(LOSS_LAWS)}") from None


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
    "hoffmann2022": HOFFMANN_2022,
    "besiroglu2024": BESIROGLU_2024,
}


# Compute-optimal allocation --------------------------------------------------------------------


def chinchilla_optimum(
    params: Mapping[str, float], C: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ``(N_opt, D_opt)`` minimising Chinchilla's L subject to ``C = 6 N D``.

    Setting dL/dN = 0 along ``D = C/(6N)`` gives ``alpha A N^-alpha = beta B D^-beta``, hence
    ``N_opt = G (C/6)^(beta/(alpha+beta))`` with ``G = (alpha A / (beta B))^(1/(alpha+beta))``.
    Works on arrays of parameters (bootstrap draws) as well as scalars.
    """
    E, A, B, a, b = (np.asarray(params[k], dtype=float) for k in ("E", "A", "B", "alpha", "beta"))
    del E
    C = np.asarray(C, dtype=float)
    G = (a * A / (b * B)) ** (1.0 / (a + b))
    n_opt = G * (C / 6.0) ** (b / (a + b))
    d_opt = (C / 6.0) / n_opt
    return n_opt, d_opt


def compute_optimum(
    instance: LawInstance, C: float, inference_tokens: float = 0.0
) -> tuple[float, float]:
    """``(N_opt, D_opt)`` minimising the law's loss at training compute C (``D = C/6N``).

    With ``inference_tokens`` T > 0 this follows Sardana et al. 2023 ('Beyond Chinchilla-Optimal'):
    the *loss* reachable for total cost ``6ND + 2NT`` is what is minimised, for the total cost
    ``C + 2 N_chinchilla T`` is not known in advance, so here C is the total (train + inference)
    budget, and D = (C - 2NT)/(6N).
    """
    if instance.law.name == "chinchilla" and inference_tokens == 0.0:
        n, d = chinchilla_optimum(instance.params, C)
        return float(n), float(d)
    if "N" not in instance.law.inputs or "D" not in instance.law.inputs:
        raise ValueError(f"law {instance.law.name!r} does not depend on both N and D")

    def tokens(log_n: float) -> float:
        n = np.exp(log_n)
        return (C - 2.0 * n * inference_tokens) / (6.0 * n)

    def objective(log_n: float) -> float:
        d = tokens(log_n)
        if d <= 1.0:
            return 1e6 + log_n
        return float(instance.predict(N=np.exp(log_n), D=d))

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
