"""Figures derived from a fitted loss law, each with its bootstrap interval.

What people act on is rarely a raw parameter: it is the compute-optimal model size and token
count at a budget, tokens per parameter, or the loss a run will reach. Each is computed on the
point estimate and on every bootstrap draw (vectorised where the law gives a closed form), so its
interval carries the parameters' joint uncertainty rather than an interval per parameter. Which
figures a law has, and whether its optimum has a closed form, is the law's own data
(:attr:`Law.derived`, :attr:`Law.optimum`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from scalinglab.stats import Estimate

if TYPE_CHECKING:
    from scalinglab.fit.result import FitResult


def as_budgets(compute: float | Sequence[float] | None) -> tuple[float, ...]:
    """``compute`` (one budget, several, or None: none) as a tuple of positive finite FLOPs,
    for ``fit.at(compute=...)``; anything else is a :class:`ParameterError` naming ``compute``."""
    import math

    from scalinglab.errors import ParameterError

    if compute is None:
        return ()
    items = [compute] if np.ndim(compute) == 0 else list(compute)  # type: ignore[arg-type]
    try:
        cs = tuple(float(c) for c in items)
    except (TypeError, ValueError):
        raise ParameterError(f"compute must be FLOPs (numbers), not {compute!r}", "compute") from None
    bad = [c for c in cs if not (math.isfinite(c) and c > 0)]
    if bad:
        raise ParameterError(f"compute must be positive FLOPs, not {bad[0]}", "compute")
    return cs


@dataclass(frozen=True)
class Optimum:
    """The compute-optimal allocation at budget ``C`` (``C = 6ND``) and the loss it reaches."""

    C: float
    N: Estimate
    D: Estimate
    tokens_per_param: Estimate
    loss: Estimate
    inference_tokens: float = 0.0
    note: str | None = None

    def __repr__(self) -> str:
        return (f"Optimum(C={self.C:.4g}: N={self.N:.4g}, D={self.D:.4g}, "
                f"tokens/param={self.tokens_per_param:.4g}, loss={self.loss:.4g})")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"C": self.C, "N_opt": self.N.to_dict(), "D_opt": self.D.to_dict(),
                               "tokens_per_param": self.tokens_per_param.to_dict(),
                               "loss": self.loss.to_dict()}
        if self.inference_tokens:
            out["inference_tokens"] = self.inference_tokens
        if self.note:
            out["note"] = self.note
        return out


def _per_draw_optimum(fit: FitResult, C: float, T: float,
                      fixed: Mapping[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Numerical optimum at the estimate (index 0) and at every draw (NaN where it fails)."""
    from scalinglab.laws.loss import compute_optimum  # when asked: FitResult imports Optimum

    params = [fit.params, *fit.draw_params()]
    n = np.full(len(params), np.nan)
    d = np.full(len(params), np.nan)
    for i, p in enumerate(params):
        if not all(np.isfinite(v) for v in p.values()):
            continue
        try:
            n[i], d[i] = compute_optimum(fit.law.with_params(p), C, inference_tokens=T,
                                         fixed_inputs=fixed)
        except (ArithmeticError, ValueError):
            continue
    return n, d


def optimum_at(fit: FitResult, C: float, inference_tokens: float = 0.0,
               fixed: Mapping[str, float] | None = None) -> Optimum:
    """:meth:`FitResult.optimum`: the allocation at ``C`` and the loss it reaches, with intervals.

    ``fixed`` holds the law's other inputs (e.g. ``{"U": 1e10}`` unique tokens): the allocation
    is then optimised numerically with them held."""
    from scalinglab.laws.loss import allocation_params

    fixed = dict(fixed or {})
    law = fit.law
    note = fit.depends_on_unidentified(law.param_names)
    # N, D and tokens per parameter rest only on the unidentified parameters that move the
    # allocation (an offset such as E does not: laws.loss.allocation_params, as the plan says);
    # the loss rests on them all
    moving = (allocation_params(fit.instance, sorted(fit.unidentified), C, inference_tokens, fixed)
              if note else [])
    where = fit.depends_on_unidentified(moving)

    def est(values: np.ndarray, why: str | None = where) -> Estimate:
        return Estimate.from_draws(values[0], values[1:] if fit.n_draws else None, fit.level,
                                   identified=why is None, note=why)

    if law.optimum is not None and inference_tokens == 0.0 and not fixed:
        # the estimate and every draw at once: the closed form broadcasts over draws
        params = {k: np.concatenate([[fit.params[k]], v]) if fit.n_draws else np.array([fit.params[k]])
                  for k, v in ({k: fit.draw_columns().get(k) for k in law.param_names}).items()}
        with np.errstate(all="ignore"):
            n, d = (np.asarray(x, dtype=float) for x in law.optimum(params, C))
            loss = np.asarray(law(params, N=n, D=d), dtype=float)
    else:
        n, d = _per_draw_optimum(fit, C, inference_tokens, fixed)
        params = [fit.params, *fit.draw_params()]
        with np.errstate(all="ignore"):
            loss = np.array([float(law(p, N=ni, D=di, **fixed)) if np.isfinite(ni) else np.nan
                             for p, ni, di in zip(params, n, d, strict=True)])
    with np.errstate(all="ignore"):
        tpp = d / n
    return Optimum(C=C, N=est(n), D=est(d), tokens_per_param=est(tpp), loss=est(loss, note),
                   inference_tokens=inference_tokens, note=note)


def _beyond_runs(fit: FitResult, values: Mapping[str, float]) -> list[str]:
    """Which of ``values`` (the law's inputs at a point, or a budget ``C``) lie outside the
    runs the fit saw, and how far: a figure read there is an extrapolation and says so, as a
    plan does (``fit --at N=1e13,D=1e15`` on runs up to N = 6.9e9 printed a confident interval
    and no word of it)."""
    from scalinglab.laws.hparams import outside_range

    valid = dict(fit.data_range)
    if fit.compute_range is not None:
        valid.setdefault("C", fit.compute_range)
    return outside_range(valid, values, "the runs fitted")


def derived_figures(
    fit: FitResult,
    compute: Sequence[float] | None = None,
    at: Sequence[Mapping[str, float]] = (),
) -> dict[str, Any]:
    """Derived figures of a loss-law fit, each ``{"value", "ci"}`` (plus ``identified``/``note``).

    - the law's own figures (:attr:`Law.derived`, e.g. Chinchilla's N_opt and D_opt exponents);
    - laws of N and D: at each budget in ``compute`` (default: the largest run's compute) the
      compute-optimal ``N_opt``, ``D_opt``, tokens per parameter and loss, under ``C = 6ND``;
    - every law: the predicted loss at each point of ``at`` (e.g. ``{"N": 1e9, "D": 2e10}``);
      a law of C alone is also predicted at each budget of ``compute``.
    """
    law = fit.law
    out: dict[str, Any] = {}
    c = getattr(law, "constraint", None)
    base = {} if c is None else {f.name: f for f in c.base.derived}
    for fig in law.derived:
        if c is not None and not fig.uses and fig.name in base:
            # every parameter it uses is fixed: one number in every draw, not a zero-width
            # interval (chinchilla with alpha and beta fixed: "N opt exponent 0.4516 [0.4516, 0.4516]")
            held = [u for u in base[fig.name].uses if c.tie.get(u, u) in c.fix]
            out[fig.name] = Estimate.held(fig.fn(fit.params), f"from {', '.join(held)}",
                                          fit.level).to_dict()
            continue
        out[fig.name] = fit.interval(fig.fn, uses=fig.uses).to_dict()
    if compute is None:
        compute = [] if fit.compute_range is None else [fit.compute_range[1]]
    if set(law.inputs) == {"N", "D"}:
        out["at_compute"] = []
        for c in compute:
            entry = fit.optimum(float(c)).to_dict()
            beyond = _beyond_runs(fit, {"C": float(c)})
            if beyond:
                entry["extrapolation"] = beyond
            out["at_compute"].append(entry)
    elif law.inputs == ("C",):
        at = [*at, *({"C": float(c)} for c in compute)]
    predictions = []
    for point in at:
        inputs = {k: float(point[k]) for k in law.inputs}
        pred = fit.interval(lambda p, inputs=inputs: law(p, **inputs))
        entry: dict[str, Any] = {**inputs, "loss": pred.to_dict()}
        beyond = _beyond_runs(fit, inputs)
        if beyond:
            entry["extrapolation"] = beyond
        if fit.n_draws:
            _, lo, hi = fit.predict_interval(new_run=True, **inputs)
            entry["loss_new_run"] = {"value": pred.value, "ci": [float(lo), float(hi)],
                                     "note": "where a new run's loss falls: parameters plus "
                                             "run-to-run noise"}
        predictions.append(entry)
    if predictions:
        out["predictions"] = predictions
    return out
