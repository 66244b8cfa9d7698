"""More loss laws from the literature, each with formula, units, range of validity and paper.

- ``chinchilla_tied``: Chinchilla with ``alpha = beta`` (Muennighoff et al. 2023 fit C4 this way;
  Gadre et al. 2024 tie the exponents too). Tied exponents put N_opt ∝ C^0.5 by construction.
- ``gadre2024``: Gadre et al. 2024's over-training form, ``L = E + a N^-eta + b 6^(-eta/2)
  D^-eta``: Chinchilla with tied exponents written so that, with ``C = 6ND`` and the token
  multiplier ``M = D/N``, ``L(C, M) = E + (a 6^(eta/2) M^(eta/2) + b M^(-eta/2)) C^(-eta/2)``:
  for a fixed M the loss is a power law in compute, which is what makes over-trained runs
  predictable from small ones.
- ``muennighoff2023``: Muennighoff et al. 2023's data-constrained law. With ``U_D = min(U, D)``
  unique tokens repeated for ``D/U_D`` epochs, the effective data is ``D' = U_D + U_D R_D* (1 -
  exp(-R_D/R_D*))`` (``R_D = D/U_D - 1`` repetitions) and the effective parameters ``N' = U_N + U_N R_N* (1 -
  exp(-R_N/R_N*))``, where ``U_N = min(N, N_opt(U))`` is the compute-optimal size for ``U``
  tokens under the law's own Chinchilla part and ``R_N = N/U_N - 1``; then ``L = E + A/N'^alpha
  + B/D'^beta``. Repeated tokens are worth less and less (R_D* is the repetitions at which they
  have lost 1 - 1/e of their value).
- ``broken_power_N`` / ``_D`` / ``_C``: Caballero et al. 2022's broken neural scaling law with one
  break, ``L = E + A x^-c0 (1 + (x/d)^(1/f))^(-c1 f)``: slope ``c0`` below the break ``d``,
  ``c0 + c1`` above it, ``f`` the sharpness of the bend.

The last three are written as formulas (:mod:`scalinglab.laws.formula`), so their gradients are
symbolic and they fit through the same engine as everything else; each declares its own starting
grid. Published instances are registered alongside (``gadre2024_rpj``, ``muennighoff2023_c4``,
``muennighoff2023_c4_chinchilla``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from scalinglab.laws.base import DerivedFigure, Law, Provenance
from scalinglab.laws.identify import DistinctInputs
from scalinglab.laws.loss import CHINCHILLA, chinchilla_optimum
from scalinglab.laws.registry import register_law, register_published

_UNITS_ND = "N: parameters; D: training tokens; L: nats/token"

# -- Chinchilla with tied exponents ---------------------------------------------------------------

CHINCHILLA_TIED = register_law(CHINCHILLA.tied(beta="alpha").renamed(
    "chinchilla_tied",
    provenance=Provenance(
        source="Hoffmann et al. 2022's law with alpha = beta, as Muennighoff et al. 2023 "
               "('Scaling Data-Constrained Language Models') and Gadre et al. 2024 fit it",
        url="https://arxiv.org/abs/2305.16264",
        units=_UNITS_ND,
        notes="tied exponents imply N_opt ∝ C^0.5 and D_opt ∝ C^0.5 exactly",
    ),
))

# -- Gadre et al. 2024 ---------------------------------------------------------------------------


def _gadre_to_chinchilla(p: Mapping[str, Any]) -> dict[str, Any]:
    """Gadre's (E, a, b, eta) as Chinchilla's (E, A, B, alpha, beta)."""
    eta = p["eta"]
    return {"E": p["E"], "A": p["a"], "B": p["b"] * 6.0 ** (-np.asarray(eta) / 2.0),
            "alpha": eta, "beta": eta}


def _gadre_optimum(p: Mapping[str, Any], C: Any) -> tuple[Any, Any]:
    return chinchilla_optimum(_gadre_to_chinchilla(p), C)


def _gadre_starts(inputs: Mapping[str, np.ndarray], loss: np.ndarray) -> np.ndarray:
    """Besiroglu et al.'s grid, projected on (e, log a, log b, eta)."""
    e = np.arange(-1.0, 1.01, 0.5)
    ab = np.arange(0.0, 25.1, 5.0)
    eta = np.arange(0.0, 2.01, 0.5)
    return np.array(list(itertools.product(e, ab, ab, eta)))


GADRE_2024 = register_law(Law.from_formula(
    "L = E + a*N**-eta + b*6**(-eta/2)*D**-eta",
    inputs=("N", "D"),
    params=("E", "a", "b", "eta"),
    name="gadre2024",
    bounds={"E": (1e-6, 20.0), "a": (1e-6, 1e12), "b": (1e-6, 1e12), "eta": (1e-3, 3.0)},
    provenance=Provenance(
        source="Gadre et al. 2024, 'Language models scale reliably with over-training and on "
               "downstream tasks' (eq. 4; authors' code scaling/shared.py)",
        url="https://arxiv.org/abs/2403.08540",
        units="N: total parameters; D: training tokens; L: nats/token (C4 eval); M = D/N",
        valid_range={"N": (1e7, 7e9), "D": (5e7, 1e12)},
        notes="over-training form: L(C, M) = E + (a 6^(eta/2) M^(eta/2) + b M^(-eta/2)) "
              "C^(-eta/2); fitted by the authors on 5 runs (4 models at M=20, 11M at M=320)",
    ),
    starts=_gadre_starts,
    identifiability=DistinctInputs(3, {"N": ("a", "eta"), "D": ("b", "eta")}),
    optimum=_gadre_optimum,
    derived=(DerivedFigure("B", lambda p: p["b"] * 6.0 ** (-np.asarray(p["eta"]) / 2.0),
                           ("b", "eta"), "Chinchilla's B = b 6^(-eta/2)"),),
    exponents=("eta",),
))

# -- Muennighoff et al. 2023 ------------------------------------------------------------------------

_DATA_CONSTRAINED = {
    # the unique tokens seen: all of them, unless the run is shorter than one epoch
    "U_D": "min(U, D)",
    # compute-optimal allocation of the law's own Chinchilla part: N_opt = G (C/6)^a,
    # D_opt = (C/6)^b / G; the N_opt at the budget whose D_opt is U_D is G (G U_D)^(a/b)
    "G": "(alpha*A/(beta*B))**(1/(alpha + beta))",
    "U_N": "min(N, G*(G*U_D)**(beta/alpha))",
    "R_D": "max(D/U_D - 1, 0)",
    "R_N": "max(N/U_N - 1, 0)",
    "D_eff": "U_D + U_D*RD_star*(1 - exp(-R_D/RD_star))",
    "N_eff": "U_N + U_N*RN_star*(1 - exp(-R_N/RN_star))",
}


def _dc_starts(inputs: Mapping[str, np.ndarray], loss: np.ndarray) -> np.ndarray:
    """(e, log A, log B, alpha, beta, log R_D*, log R_N*): a coarse Besiroglu grid for the
    Chinchilla part times R* from 2 to 50 repetitions."""
    e = (0.0, 0.6)
    ab = (2.0, 6.0, 10.0)
    ex = (0.2, 0.4, 0.8)
    r = tuple(np.log((2.0, 10.0, 50.0)))
    return np.array(list(itertools.product(e, ab, ab, ex, ex, r, r)))


MUENNIGHOFF_2023 = register_law(Law.from_formula(
    "L = E + A/N_eff**alpha + B/D_eff**beta",
    inputs=("N", "D", "U"),
    params=("E", "A", "B", "alpha", "beta", "RD_star", "RN_star"),
    definitions=_DATA_CONSTRAINED,
    name="muennighoff2023",
    bounds={"E": (1e-6, 20.0), "A": (1e-6, 1e12), "B": (1e-6, 1e12), "alpha": (1e-3, 3.0),
            "beta": (1e-3, 3.0), "RD_star": (1e-2, 1e4), "RN_star": (1e-2, 1e4)},
    log_params={"RD_star": True, "RN_star": True},
    provenance=Provenance(
        source="Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models' (eq. 5-7; "
               "authors' utils/parametric_fit.ipynb)",
        url="https://arxiv.org/abs/2305.16264",
        units="N: parameters; D: training tokens seen; U: unique tokens; L: nats/token (C4)",
        valid_range={"N": (7e6, 9e9), "D": (1e8, 9e11), "U": (1e8, 2e11)},
        notes="U_N uses the law's own Chinchilla part; the authors fit that part first (tied "
              "exponents, single-epoch runs) and then only R_D* and R_N* with it fixed",
    ),
    starts=_dc_starts,
    identifiability=DistinctInputs(3),
    exponents=("alpha", "beta"),
))

# -- Caballero et al. 2022 ---------------------------------------------------------------------------


def _bpl_starts(variable: str) -> Any:
    def starts(inputs: Mapping[str, np.ndarray], loss: np.ndarray) -> np.ndarray:
        """(e, log A, c0, c1, log d, log f): the break anywhere in the data's range, the first
        slope and the change of slope from flat to steep, the scale of A set so the power term
        is the loss's scale at the smallest x."""
        x = np.log(np.asarray(inputs[variable], dtype=float))
        lo_l = float(np.log(np.min(loss)))
        rows = []
        for e, c0, c1, q, f in itertools.product((lo_l - 1.5, lo_l - 0.3), (0.05, 0.2, 0.5),
                                                 (-0.2, 0.1, 0.4), (0.2, 0.5, 0.8),
                                                 (np.log(0.2), np.log(1.0))):
            log_d = float(np.quantile(x, q))
            rows.append((e, lo_l + c0 * float(x.min()), c0, c1, log_d, f))
        return np.array(rows)

    return starts


def broken_power_law(variable: str = "C") -> Law:
    """Caballero et al. 2022's broken power law with one break in ``variable`` (N, D or C)."""
    from scalinglab.errors import ParameterError

    if variable not in ("N", "D", "C"):
        raise ParameterError(f"variable must be N, D or C, not {variable!r}", "variable")
    x = variable
    return Law.from_formula(
        f"L = E + A*{x}**(-c0)*(1 + ({x}/d)**(1/f))**(-c1*f)",
        inputs=(x,),
        params=("E", "A", "c0", "c1", "d", "f"),
        name=f"broken_power_{x}",
        bounds={"E": (0.0, 20.0), "A": (1e-8, 1e20), "c0": (-1.0, 3.0), "c1": (-3.0, 3.0),
                "d": (1e-3, 1e30), "f": (1e-3, 1e3)},
        log_params={"f": True, "d": True},
        provenance=Provenance(
            source="Caballero et al. 2022, 'Broken Neural Scaling Laws' (eq. 1, one break)",
            url="https://arxiv.org/abs/2210.14891",
            units=f"{x}: {'parameters' if x == 'N' else 'tokens' if x == 'D' else 'FLOPs'}; "
                  "L: nats/token",
            notes="slope c0 below the break d, c0 + c1 above it; f is the sharpness of the bend "
                  "(small f: sharp). Needs runs on both sides of the break to identify it",
        ),
        starts=_bpl_starts(x),
        identifiability=DistinctInputs(7),
        exponents=("c0", "c1"),
    )


for _v in ("N", "D", "C"):
    register_law(broken_power_law(_v))


# -- published instances ---------------------------------------------------------------------------

GADRE_2024_RPJ = register_published("gadre2024_rpj", GADRE_2024.with_params(
    {"E": 1.836648408738623, "a": 166.210992120337, "b": 366.6871979615622,
     "eta": 0.2728507061786173},
    provenance=Provenance(
        source="Gadre et al. 2024, RedPajama fit (exp_data/scaling_law_dict.pkl of "
               "mlfoundations/scaling): 5 runs, the four models up to 411M at M=20 and 11M at M=320",
        url="https://arxiv.org/abs/2403.08540",
        units="N: total parameters; D: tokens; L: C4 eval loss, nats/token",
        valid_range={"N": (1.05e7, 4.2e8), "D": (2.1e8, 8.3e9)},
    ),
    label="gadre2024_rpj",
))

#: Muennighoff et al.'s C4 fit (their notebook's a, b, e, alpha, beta, R_D*, R_N*)
_C4 = {"E": float(np.exp(0.6254804)), "A": float(np.exp(6.255414)), "B": float(np.exp(7.3049974)),
       "alpha": 0.3526596, "beta": 0.3526596}

MUENNIGHOFF_2023_C4 = register_published("muennighoff2023_c4", MUENNIGHOFF_2023.with_params(
    {**_C4, "RD_star": 15.387756, "RN_star": 5.309743},
    provenance=Provenance(
        source="Muennighoff et al. 2023, C4: Chinchilla part (tied exponents) fitted on their "
               "IsoFLOP runs, then R_D* and R_N* on 182 runs of the repeated-epoch study",
        url="https://arxiv.org/abs/2305.16264",
        units="N: parameters; D: tokens seen; U: unique tokens; L: C4 validation, nats/token",
        valid_range={"N": (7e6, 9e9), "D": (1e8, 9e11), "U": (1e8, 2e11)},
    ),
    label="muennighoff2023_c4",
))

MUENNIGHOFF_2023_C4_CHINCHILLA = register_published(
    "muennighoff2023_c4_chinchilla",
    CHINCHILLA_TIED.with_params(
        {k: _C4[k] for k in CHINCHILLA_TIED.param_names},
        provenance=Provenance(
            source="Muennighoff et al. 2023, C4 Chinchilla fit with alpha = beta (54 IsoFLOP runs)",
            url="https://arxiv.org/abs/2305.16264",
            units=_UNITS_ND + " (C4)",
            valid_range={"N": (7e6, 9e9), "D": (1e8, 9e11)},
        ),
        label="muennighoff2023_c4_chinchilla",
    ),
)

# -- the frontier's laws (each a formula; fit them on the linear scale when the target can be <= 0) --

FARSEER_2025 = register_law(Law.from_formula(
    "L = exp(a3*N**g3 + b3) + exp(a2*N**g2 + b2)*D**(-exp(a1*N**g1 + b1))",
    inputs=("N", "D"), params=("a3", "g3", "b3", "a2", "g2", "b2", "a1", "g1", "b1"),
    name="farseer2025",
    bounds={"a3": (-1.0, 0.3), "g3": (0.01, 0.5), "b3": (-1.0, 1.0), "a2": (10.0, 1000.0),
            "g2": (-0.6, -0.01), "b2": (-5.0, 1.0), "a1": (-5.0, 1.0), "g1": (0.001, 0.25),
            "b1": (1.0, 6.0)},
    provenance=Provenance(
        source="Li et al. 2025, 'Farseer: A Refined Scaling Law in Large Language Models': the "
               "loss floor, the data-term scale and the data exponent each vary with N as "
               "exp(a N^g + b)",
        url="https://arxiv.org/abs/2506.10972",
        units=_UNITS_ND,
        valid_range={"N": (1e8, 2.5e10), "D": (1e9, 5e11)},
        notes="bounds: ScaleBench's for its Farseer task (signs of the exponents as the paper's)",
    ),
    exponents=("g3", "g2", "g1"),
))

PARSCALE_2025 = register_law(Law.from_formula(
    "L = (A/(N*(k*log(P) + 1)))**alpha + E",
    inputs=("N", "P"), params=("A", "k", "alpha", "E"), name="parscale2025",
    bounds={"A": (1e-3, 1e12), "k": (0.0, 10.0), "alpha": (0.01, 3.0), "E": (0.0, 5.0)},
    provenance=Provenance(
        source="Chen et al. 2025, 'Parallel Scaling Law for Language Models' (ParScale): P "
               "parallel streams act like multiplying the parameters by (k log P + 1)",
        url="https://arxiv.org/abs/2505.10475",
        units="N: parameters; P: parallel streams (1, 2, 4, 8); L: nats/token",
        valid_range={"N": (5e8, 4.4e9), "P": (1.0, 8.0)},
    ),
))

TAO_2024_VOCAB = register_law(Law.from_formula(
    "L = -E + A1/Nnv**alpha1 + A2/Nv**alpha2 + B/D**beta",
    inputs=("Nnv", "Nv", "D"), params=("E", "A1", "alpha1", "A2", "alpha2", "B", "beta"),
    name="tao2024_vocab",
    bounds={"E": (-10.0, 10.0), "A1": (0.0, 1e6), "alpha1": (0.0, 2.0), "A2": (0.0, 1e6),
            "alpha2": (0.0, 2.0), "B": (0.0, 1e6), "beta": (0.0, 2.0)},
    provenance=Provenance(
        source="Tao et al. 2024, 'Scaling Laws with Vocabulary: Larger Models Deserve Larger "
               "Vocabularies' (eq. for the unigram-normalised loss L_u)",
        url="https://arxiv.org/abs/2407.13623",
        units="Nnv: non-vocabulary parameters; Nv: vocabulary parameters (V x d); D: training "
              "characters; L: unigram-normalised loss (negative: fit on the linear scale)",
        valid_range={"Nnv": (3.3e7, 1.1e9)},
    ),
))

CLARK_2022_MOE = register_law(Law.from_formula(
    "L = exp(d + a*log(N) + b*log(Eh) + c*log(N)*log(Eh))",
    inputs=("N", "E"), params=("a", "b", "c", "d", "Estart", "Emax"), name="clark2022_moe",
    definitions={"Eh": "1/(1/(E - 1 + 1/(1/Estart - 1/Emax)) + 1/Emax)"},
    bounds={"a": (-1.0, 0.0), "b": (-1.0, 0.5), "c": (-0.1, 0.1), "d": (-5.0, 10.0),
            "Estart": (1.01, 20.0), "Emax": (20.0, 1e5)},
    provenance=Provenance(
        source="Clark et al. 2022, 'Unified Scaling Laws for Routed Language Models': log L "
               "bilinear in log N and log of the saturating expert count E-hat",
        url="https://arxiv.org/abs/2202.01169",
        units="N: dense-equivalent parameters; E: experts; L: nats/token",
        valid_range={"N": (1.5e7, 1.3e9), "E": (1.0, 512.0)},
        notes="E-hat = 1/(1/(E - 1 + (1/Estart - 1/Emax)^-1) + 1/Emax) saturates the benefit "
              "of experts between Estart and Emax",
    ),
    exponents=("a", "b", "c"),
))

FRANTAR_2023_SPARSITY = register_law(Law.from_formula(
    "L = (aS*(1 - S)**bS + cS)*(1/N)**bN + (aD/D)**bD + c",
    inputs=("S", "N", "D"), params=("aS", "bS", "cS", "bN", "aD", "bD", "c"),
    name="frantar2023_sparsity",
    bounds={"aS": (0.0, 1e4), "bS": (0.0, 5.0), "cS": (0.0, 1e4), "bN": (0.0, 2.0),
            "aD": (0.0, 1e12), "bD": (0.0, 2.0), "c": (0.0, 10.0)},
    provenance=Provenance(
        source="Frantar et al. 2023, 'Scaling Laws for Sparsely-Connected Foundation Models': "
               "sparsity S (1 - active/total parameters) scales the parameter term",
        url="https://arxiv.org/abs/2309.08520",
        units="S: sparsity in [0, 1); N: non-zero (active) parameters; D: training tokens; "
              "L: nats/token",
    ),
))

ZHANG_2025_CBS = register_law(Law.from_formula(
    "B = B0*D**beta",
    inputs=("D",), params=("B0", "beta"), name="zhang2025_critical_batch", output="B",
    bounds={"B0": (1e-6, 1e6), "beta": (0.0, 1.5)},
    provenance=Provenance(
        source="Zhang et al. 2025, 'How Does Critical Batch Size Scale in Pre-training?': the "
               "critical batch size grows as a power of the data size, not the model size",
        url="https://arxiv.org/abs/2410.21676",
        units="D: training tokens; B: critical batch size (tokens or sequences, as measured)",
        notes="fit with columns={'loss': <critical batch column>}: the output is a batch size",
    ),
))

__all__ = ["CHINCHILLA_TIED", "CLARK_2022_MOE", "FARSEER_2025", "FRANTAR_2023_SPARSITY",
           "PARSCALE_2025", "TAO_2024_VOCAB", "ZHANG_2025_CBS", "GADRE_2024", "GADRE_2024_RPJ", "MUENNIGHOFF_2023",
           "MUENNIGHOFF_2023_C4", "MUENNIGHOFF_2023_C4_CHINCHILLA", "broken_power_law"]
