"""Figures derived from a fitted loss law, each with its bootstrap interval.

What people act on is rarely a raw parameter: it is the compute-optimal model size and token
count at a budget, tokens per parameter, or the loss a run will reach. Each is computed on the
point estimate and on every bootstrap draw (vectorised where the formula allows), so its
interval carries the parameters' joint uncertainty rather than an interval per parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from scalinglab.fit.result import FitResult
from scalinglab.laws.loss import chinchilla_optimum, compute_optimum

ParamFn = Callable[[Mapping[str, Any]], Any]


def _boot_columns(fit: FitResult) -> dict[str, np.ndarray]:
    assert fit.draws is not None
    return {k: fit.draws[:, i] for i, k in enumerate(fit.law.param_names)}


def interval(fit: FitResult, fn: ParamFn, vectorised: bool = True) -> dict[str, Any]:
    """``{"value", "ci": [lo, hi] | None}`` of ``fn(params)`` over the estimate and the draws.

    With ``vectorised``, ``fn`` is called once on arrays of draws (the loss laws and
    :func:`chinchilla_optimum` broadcast); otherwise once per draw via ``derived_interval``.
    """
    if fit.draws is None or not len(fit.draws):
        return {"value": float(fn(fit.params)), "ci": None}
    if not vectorised:
        point, lo, hi = fit.derived_interval(fn)
        return {"value": float(point), "ci": [float(lo), float(hi)]}
    q = (1.0 - fit.level) / 2.0
    with np.errstate(all="ignore"):  # extreme draws give inf; a percentile may then be inf
        draws = np.asarray(fn(_boot_columns(fit)), dtype=float)
        lo, hi = np.nanquantile(draws, [q, 1.0 - q]) if np.isfinite(draws).any() else (np.nan, np.nan)
    return {"value": float(fn(fit.params)), "ci": [float(lo), float(hi)]}


def _uses(names: Iterable[str], fit: FitResult) -> str | None:
    bad = [n for n in names if n in fit.extra.get("unidentified", [])]
    return f"depends on {', '.join(bad)}, which these runs do not identify" if bad else None


def _at_compute(fit: FitResult, c: float) -> dict[str, Any]:
    """Compute-optimal allocation at C (``C = 6ND``) and the loss it reaches."""
    if fit.law.name == "chinchilla":
        def n_opt(p: Mapping[str, Any]) -> Any:
            return chinchilla_optimum(p, c)[0]

        def d_opt(p: Mapping[str, Any]) -> Any:
            return chinchilla_optimum(p, c)[1]

        vec = True
    else:
        def n_opt(p: Mapping[str, Any]) -> Any:
            if not all(np.isfinite(v) for v in p.values()):
                return np.nan
            return compute_optimum(fit.law.with_params(p), c)[0]

        def d_opt(p: Mapping[str, Any]) -> Any:
            return c / (6.0 * n_opt(p))

        vec = False
    out: dict[str, Any] = {"C": c}
    if vec:
        out["N_opt"] = interval(fit, n_opt)
        out["D_opt"] = interval(fit, d_opt)
        out["tokens_per_param"] = interval(fit, lambda p: d_opt(p) / n_opt(p))
        out["loss"] = interval(fit, lambda p: fit.law(p, N=n_opt(p), D=d_opt(p)))
    else:
        # one numerical optimisation per draw, reused for every figure
        ns = [n_opt(fit.params)] + ([n_opt(p) for p in fit.draw_params()])
        n = np.array(ns)
        d = c / (6.0 * n)
        params = [fit.params, *fit.draw_params()]
        loss = np.array([float(fit.law(p, N=ni, D=di)) for p, ni, di in zip(params, n, d, strict=True)])
        for key, v in (("N_opt", n), ("D_opt", d), ("tokens_per_param", d / n), ("loss", loss)):
            out[key] = _summary(fit, v)
    note = _uses(fit.law.param_names, fit)
    if note:
        out["note"] = note
    return out


def _summary(fit: FitResult, values: np.ndarray) -> dict[str, Any]:
    """Point (first entry) and percentile interval of the rest (the draws)."""
    if len(values) == 1:
        return {"value": float(values[0]), "ci": None}
    q = (1.0 - fit.level) / 2.0
    lo, hi = np.nanquantile(values[1:], [q, 1.0 - q])
    return {"value": float(values[0]), "ci": [float(lo), float(hi)]}


def derived_figures(
    fit: FitResult,
    compute: Sequence[float] | None = None,
    at: Sequence[Mapping[str, float]] = (),
) -> dict[str, Any]:
    """Derived figures of a loss-law fit, each ``{"value", "ci"}``.

    - Chinchilla: exponents of ``N_opt ∝ C^(beta/(alpha+beta))`` and ``D_opt ∝ C^(alpha/(alpha+beta))``.
    - Laws of N and D: at each budget in ``compute`` (default: the largest run's compute),
      ``N_opt``, ``D_opt``, tokens per parameter and the loss reached, under ``C = 6ND``.
    - Every law: the predicted loss at each point of ``at`` (e.g. ``{"N": 1e9, "D": 2e10}``).
    """
    law = fit.law
    out: dict[str, Any] = {}
    if law.name == "chinchilla":
        out["N_opt_exponent"] = interval(fit, lambda p: p["beta"] / (p["alpha"] + p["beta"]))
        out["D_opt_exponent"] = interval(fit, lambda p: p["alpha"] / (p["alpha"] + p["beta"]))
        note = _uses(("alpha", "beta"), fit)
        if note:
            out["N_opt_exponent"]["note"] = out["D_opt_exponent"]["note"] = note
    if compute is None:
        c_max = fit.extra.get("compute_range", [None, None])[1]
        compute = [] if c_max is None else [c_max]
    if "N" in law.inputs and "D" in law.inputs:
        out["at_compute"] = [_at_compute(fit, float(c)) for c in compute]
    elif law.inputs == ("C",):
        at = [*at, *({"C": float(c)} for c in compute)]
    predictions = []
    for point in at:
        inputs = {k: float(point[k]) for k in law.inputs}
        pred = interval(fit, lambda p, inputs=inputs: law(p, **inputs))
        predictions.append({**inputs, "loss": pred})
    if predictions:
        out["predictions"] = predictions
    return out
