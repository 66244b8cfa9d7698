"""Starting grids for multi-start fits, in each law's fitting coordinates.

A law names its grid (:attr:`scalinglab.laws.base.Law.starts`). Chinchilla uses Besiroglu et al.'s
4,500 points; the others set the scale of each term from the data (a term ``A x^-alpha`` starts
between ``e^-4`` and ``e`` of the loss at the median ``x``), so the grid covers plausible laws
whatever the units of ``x``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scalinglab.laws.base import Law


def besiroglu_grid(inputs: Mapping[str, np.ndarray] | None = None,
                   loss: np.ndarray | None = None) -> np.ndarray:
    """The 4,500-point grid of Besiroglu et al. 2024 in fitting coordinates ``(e, a, b, alpha, beta)``.

    ``e in {-1, -.5, .., 1}``, ``a, b in {0, 5, .., 25}``, ``alpha, beta in {0, .5, .., 2}``; the
    data are not consulted (the arguments exist so it fits the ``StartGrid`` signature).
    """
    e = np.arange(-1.0, 1.01, 0.5)
    ab = np.arange(0.0, 25.1, 5.0)
    ex = np.arange(0.0, 2.01, 0.5)
    return np.array(list(itertools.product(e, ab, ab, ex, ex)))


def _median_logs(inputs: Mapping[str, np.ndarray]) -> dict[str, float]:
    return {k: float(np.median(np.log(v))) for k, v in inputs.items()}


def power_starts(inputs: Mapping[str, np.ndarray], loss: np.ndarray) -> np.ndarray:
    """``(e, a, alpha)`` for ``E + A x^-alpha``: term scales set from the median ``x``."""
    ((x, values),) = inputs.items()
    med = float(np.median(np.log(values)))
    alphas = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
    return np.array([
        (e, alpha * med + c, alpha)
        for e, alpha, c in itertools.product(np.arange(-1.0, 1.01, 0.5), alphas, range(-4, 2))
    ])


def kaplan_starts(inputs: Mapping[str, np.ndarray], loss: np.ndarray) -> np.ndarray:
    """``(log N_c, log D_c, alpha_N, alpha_D)`` around the data's median N and D."""
    med = _median_logs(inputs)
    log_l = max(float(np.median(np.log(loss))), 0.1)
    alphas = (0.03, 0.06, 0.1, 0.2, 0.4)
    mult = (0.5, 1.0, 2.0)
    return np.array([
        (med["N"] + log_l / an * mn, med["D"] + log_l / ad * md, an, ad)
        for an, ad, mn, md in itertools.product(alphas, alphas, mult, mult)
    ])


def generic_starts(law: Law, inputs: Mapping[str, np.ndarray], loss: np.ndarray,
                   per_param: int = 3) -> np.ndarray:
    """A small grid over each parameter's bounds, for laws that declare no grid of their own.

    Log-parametrised parameters (the model's ``log_params``) are spread in log space between
    their bounds (clipped to 1e-6..1e6 of the median loss), the others linearly; ``per_param``
    points each, capped at about 3,000 starts by thinning the last parameters.
    """
    model = law.log_model(inputs)
    axes = []
    for name, is_log in zip(law.param_names, model.log_params, strict=True):
        lo, hi = law.bounds.get(name, (1e-3, 10.0) if is_log else (-1.0, 1.0))
        if is_log:
            lo, hi = max(lo, 1e-6), min(hi, 1e6)
            axes.append(np.linspace(np.log(lo), np.log(hi), per_param + 2)[1:-1])
        else:
            axes.append(np.linspace(lo, hi, per_param + 2)[1:-1])
    grid = np.array(list(itertools.product(*axes)))
    if len(grid) > 3000:
        grid = grid[np.linspace(0, len(grid) - 1, 3000).astype(int)]
    return grid
