"""Link laws from a loss (or log-compute, or a capability score) to a downstream metric, and how
to fit them.

Two families, each a :class:`~scalinglab.laws.base.Law` (formula, parameters, bounds,
provenance) with the starting grid that fits it:

- :data:`EXP_LINK`, Gadre et al. 2024's ``Err(L) = eps - k exp(-gamma L)``: top-1 error falls
  exponentially towards ``eps - k exp(-gamma L)`` as the loss falls; ``eps`` is the error of a
  model that learned nothing useful (about chance). Partially linear: for a fixed ``gamma`` the
  error is linear in ``(eps, k)``, so the starting grid profiles ``gamma`` and solves the rest.
- :data:`SIGMOID_LINK`, ``y = lo + (hi - lo) / (1 + exp(-s (x - x0)))``: the sigmoid of the
  OLMo model ladder and of Llama 3's accuracy-from-task-loss step (``s < 0``: accuracy rises as
  loss falls), and, with ``x = log10 C`` and ``lo``, ``hi`` fixed at chance level and 1, the
  benchmark-vs-compute curve of Owen 2024 (``s > 0``). Linear in ``(lo, hi)`` for fixed
  ``(s, x0)``; the grid profiles those.
- :func:`sigmoid_in_scores` builds Ruan et al. 2024's link ``y = lo + (hi - lo) sigmoid(alpha +
  sum_j beta_j S_j)`` from ``k`` capability scores (principal components of benchmarks).

:func:`fit_form` fits any of them by least squares from the grid's best starts (all starts in
one batch, :func:`~scalinglab.downstream.curvefit.batched_lm`), then refits every bootstrap
resample from the best optima, again in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.special import expit

from scalinglab.downstream.curvefit import batched_lm, best_rows
from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.laws.base import Law, Provenance
from scalinglab.stats import bootstrap_weights

#: ``starts(inputs, y, fixed) -> (S, P)`` full parameter rows (fixed values in place)
StartFn = Callable[[Mapping[str, np.ndarray], np.ndarray, Mapping[str, float]], np.ndarray]
#: ``canonical(theta, fixed) -> theta``: one representative of parameter rows that give the same curve
CanonicalFn = Callable[[np.ndarray, Mapping[str, float]], np.ndarray]
#: ``identify(params, inputs, fixed) -> {parameter: why}``: what the points cannot pin down
IdentifyFn = Callable[[Mapping[str, float], Mapping[str, np.ndarray], Mapping[str, float]], dict[str, str]]


def _as_is(theta: np.ndarray, fixed: Mapping[str, float]) -> np.ndarray:
    return theta


def _nothing_flagged(params: Mapping[str, float], inputs: Mapping[str, np.ndarray],
                     fixed: Mapping[str, float]) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class LinkForm:
    """A link family: the law (what it computes) and its starting grid (how to fit it).

    ``key`` names the form in saved files (``"exp"``, ``"sigmoid"``, ``"sigmoid_scores_3"``).
    """

    key: str
    law: Law
    starts: StartFn
    identify: IdentifyFn = _nothing_flagged
    canonical: CanonicalFn = _as_is
    #: parameters that are values the metric tends to at an end of the input's range (the exp
    #: link's ``eps`` as the loss grows; a sigmoid's ``lo`` and ``hi``): a metric bounded in
    #: [0, 1] cannot have them outside it, so :func:`~scalinglab.downstream.link_fit.fit_link`
    #: warns when their interval leaves that range
    asymptotes: tuple[str, ...] = ()
    #: parameters whose bounds are declared limits of what they can be (the ladder's floor and
    #: ceiling held inside [0, 1]: :func:`scalinglab.downstream.ladder.bounded_sigmoid`), not
    #: the search limits every parameter has: an estimate at such a bound is held there by it,
    #: reported as at an enforced bound (the fit engine's wording), not as not identified
    enforced: tuple[str, ...] = ()

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.law.param_names

    @property
    def limits(self) -> dict[str, tuple[float, float]]:
        """The :attr:`enforced` parameters' declared limits (what a saved fit keeps of them)."""
        return {k: self.law.bounds[k] for k in self.enforced}

    def with_limits(self, limits: Mapping[str, Sequence[float]]) -> LinkForm:
        """This form with ``limits`` (parameter -> ``(lo, hi)``) as declared limits of those
        parameters (:attr:`enforced`), not search limits; the other bounds as they were."""
        bounds = {k: (float(lo), float(hi)) for k, (lo, hi) in limits.items()}
        return replace(self, law=replace(self.law, bounds={**self.law.bounds, **bounds}),
                       enforced=tuple(bounds))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([self.law.bounds.get(k, (-np.inf, np.inf))[0] for k in self.param_names])
        hi = np.array([self.law.bounds.get(k, (-np.inf, np.inf))[1] for k in self.param_names])
        return lo, hi

    def evaluate(self, theta: np.ndarray, inputs: Mapping[str, Any]) -> np.ndarray:
        """The law at parameter rows ``theta`` (k, P) for inputs of shape (n,) or (k, n): (k, n)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        params = {name: theta[:, i:i + 1] for i, name in enumerate(self.param_names)}
        with np.errstate(all="ignore"):
            return np.asarray(self.law(params, **{k: np.asarray(inputs[k], float) for k in self.law.inputs}))


# -- Gadre et al.'s exponential link ------------------------------------------------------------


def _exp(x: Mapping[str, np.ndarray], p: Mapping[str, Any]) -> np.ndarray:
    return p["eps"] - p["k"] * np.exp(-p["gamma"] * x["L"])


def _linear_profile(basis: np.ndarray, y: np.ndarray, fixed_part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For G profiled settings: least-squares coefficients of ``y - fixed_part ~ basis`` and SSE.

    ``basis`` (G, n, q), ``fixed_part`` (G, n). Returns coefficients (G, q) and SSE (G,).
    """
    target = y[None, :] - fixed_part
    if basis.shape[2] == 0:
        return np.zeros((len(basis), 0)), np.sum(target**2, axis=1)
    coef = np.stack([np.linalg.lstsq(b, t, rcond=None)[0] for b, t in zip(basis, target, strict=True)])
    fitted = np.einsum("gnq,gq->gn", basis, coef)
    return coef, np.sum((target - fitted) ** 2, axis=1)


def _pick(rows: np.ndarray, sse: np.ndarray, n: int = 6) -> np.ndarray:
    ok = np.isfinite(sse) & np.all(np.isfinite(rows), axis=1)
    if not ok.any():
        return rows[:1]
    order = np.flatnonzero(ok)[np.argsort(sse[ok], kind="stable")]
    return rows[order[:n]]


def _exp_starts(inputs: Mapping[str, np.ndarray], y: np.ndarray, fixed: Mapping[str, float]) -> np.ndarray:
    x = inputs["L"]
    scale = max(float(np.ptp(x)), 1e-3)
    gammas = fixed["gamma"] * np.ones(1) if "gamma" in fixed else np.geomspace(1e-3, 30.0, 90) / scale
    z = np.exp(-gammas[:, None] * (x[None, :] - x.min()))  # shifted: exp(-g L) = exp(-g min) * z
    cols, fixed_part = [], np.zeros_like(z)
    if "eps" in fixed:
        fixed_part = fixed_part + fixed["eps"]
    else:
        cols.append(np.ones_like(z))
    # k multiplies exp(-g L) = exp(-g min) z; solve for k' = k exp(-g min) then undo
    shift = np.exp(-gammas * x.min())
    if "k" in fixed:
        fixed_part = fixed_part - fixed["k"] * shift[:, None] * z
    else:
        cols.append(-z)
    coef, sse = _linear_profile(np.stack(cols, axis=2) if cols else np.zeros((*z.shape, 0)), y, fixed_part)
    rows = np.empty((len(gammas), 3))
    j = 0
    if "eps" in fixed:
        rows[:, 0] = fixed["eps"]
    else:
        rows[:, 0], j = coef[:, j], j + 1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rows[:, 1] = fixed["k"] if "k" in fixed else coef[:, j] / shift
    rows[:, 2] = gammas
    return _pick(rows, sse)


def _exp_identify(params: Mapping[str, float], inputs: Mapping[str, np.ndarray],
                  fixed: Mapping[str, float]) -> dict[str, str]:
    # over the data's span the exponential changes by exp(gamma * span); below ~10% the curve is
    # a straight line there and eps, k, gamma trade off against each other
    bend = params["gamma"] * float(np.ptp(inputs["L"]))
    if bend < 0.1 and "gamma" not in fixed:
        why = (f"the fitted curve is nearly straight over the points (gamma x loss span = {bend:.3g}), "
               "so its curvature, hence its floor, is not seen")
        return {name: why for name in ("eps", "k", "gamma") if name not in fixed}
    return {}


EXP_LINK = LinkForm(
    key="exp",
    law=Law(
        name="gadre_exp",
        formula="Err = eps - k*exp(-gamma*L)",
        inputs=("L",),
        output="metric",
        param_names=("eps", "k", "gamma"),
        fn=_exp,
        bounds={"eps": (-1e3, 1e3), "k": (-1e9, 1e9), "gamma": (1e-4, 100.0)},
        provenance=Provenance(
            source="Gadre et al. 2024, 'Language models scale reliably with over-training and on "
            "downstream tasks', eq. 5 (average top-1 error from C4 eval loss)",
            url="https://arxiv.org/abs/2403.08540",
            units="L: loss in nats/token; Err: top-1 error in [0, 1]",
        ),
    ),
    starts=_exp_starts,
    identify=_exp_identify,
    asymptotes=("eps",),
)


# -- sigmoid link -------------------------------------------------------------------------------


def _sigmoid(x: Mapping[str, np.ndarray], p: Mapping[str, Any]) -> np.ndarray:
    return p["lo"] + (p["hi"] - p["lo"]) * expit(p["s"] * (x["x"] - p["x0"]))


def _lo_hi(sig: np.ndarray, y: np.ndarray, fixed: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Best (lo, hi) for each row of sigmoid values ``sig`` (G, n) and its SSE (fixed ones kept)."""
    cols, fixed_part = [], np.zeros_like(sig)
    for name, weight in (("lo", 1.0 - sig), ("hi", sig)):
        if name in fixed:
            fixed_part = fixed_part + fixed[name] * weight
        else:
            cols.append(weight)
    basis = np.stack(cols, axis=2) if cols else np.zeros((*sig.shape, 0))
    coef, sse = _linear_profile(basis, y, fixed_part)
    out = np.empty((len(sig), 2))
    j = 0
    for i, name in enumerate(("lo", "hi")):
        if name in fixed:
            out[:, i] = fixed[name]
        else:
            out[:, i], j = coef[:, j], j + 1
    return out, sse


def _sigmoid_starts(inputs: Mapping[str, np.ndarray], y: np.ndarray, fixed: Mapping[str, float]) -> np.ndarray:
    x = inputs["x"]
    spread = max(float(np.std(x)), 1e-6)
    lo_x, width = float(x.min()), max(float(np.ptp(x)), 1e-6)
    ss = [fixed["s"]] if "s" in fixed else [
        sign * m / spread for sign in (1.0, -1.0) for m in (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)]
    x0s = [fixed["x0"]] if "x0" in fixed else [lo_x + q * width for q in np.linspace(-1.0, 2.0, 13)]
    grid = np.array([(s, x0) for s in ss for x0 in x0s])
    sig = expit(grid[:, :1] * (x[None, :] - grid[:, 1:]))
    lohi, sse = _lo_hi(sig, y, fixed)
    return _pick(np.column_stack([lohi, grid]), sse)


def _sigmoid_identify(params: Mapping[str, float], inputs: Mapping[str, np.ndarray],
                      fixed: Mapping[str, float]) -> dict[str, str]:
    # Points on one side of the midpoint show one asymptote and an exponential tail towards the
    # other: the far asymptote and the midpoint then trade off (only hi*exp(-s*x0) is seen).
    z = params["s"] * (inputs["x"] - params["x0"])
    out: dict[str, str] = {}
    for seen, far in ((z.max() < 0, "hi"), (z.min() > 0, "lo")):
        if seen and far not in fixed:
            why = (f"the points do not reach the sigmoid's midpoint (x0 = {params['x0']:.4g}), so its "
                   f"{'ceiling' if far == 'hi' else 'floor'} {far} is extrapolated; fix it (e.g. at "
                   f"{'1' if far == 'hi' else 'chance level'}) or add points past the bend")
            out[far] = why
            if "x0" not in fixed:
                out["x0"] = why
    return out


def _sigmoid_canonical(theta: np.ndarray, fixed: Mapping[str, float]) -> np.ndarray:
    # (lo, hi, s) and (hi, lo, -s) are the same curve: keep lo <= hi (the floor and the ceiling),
    # with the sign of s saying which way the metric goes, unless a fixed value decides it
    if "lo" in fixed or "hi" in fixed:
        return theta
    out = np.array(theta, dtype=float, copy=True)
    flip = out[:, 1] < out[:, 0]
    out[flip, 0], out[flip, 1] = theta[flip, 1], theta[flip, 0]
    out[flip, 2] = -theta[flip, 2]
    return out


SIGMOID_LINK = LinkForm(
    key="sigmoid",
    law=Law(
        name="sigmoid",
        formula="y = lo + (hi - lo)/(1 + exp(-s*(x - x0)))",
        inputs=("x",),
        output="metric",
        param_names=("lo", "hi", "s", "x0"),
        fn=_sigmoid,
        bounds={"lo": (-1e3, 1e3), "hi": (-1e3, 1e3), "s": (-1e3, 1e3), "x0": (-1e6, 1e6)},
        provenance=Provenance(
            source="sigmoid link: Bhagia et al. 2024 (OLMo model ladder) and Llama 3 (2024) for "
            "accuracy from task loss; Owen 2024 for benchmark accuracy vs log-compute",
            url="https://arxiv.org/abs/2412.04403",
            units="x: loss (nats) or log10 FLOPs; y: the metric (accuracy in [0, 1])",
        ),
    ),
    starts=_sigmoid_starts,
    identify=_sigmoid_identify,
    canonical=_sigmoid_canonical,
    asymptotes=("lo", "hi"),
)


# -- Ruan et al.'s link from capability scores ---------------------------------------------------


def sigmoid_in_scores(k: int) -> LinkForm:
    """``y = lo + (hi - lo) sigmoid(alpha + sum_j beta_j S_j)`` over ``k`` scores ``S1..Sk``."""
    if k < 1:
        raise ParameterError("n_components must be at least 1", "n_components")
    names = tuple(f"S{j + 1}" for j in range(k))
    betas = tuple(f"beta{j + 1}" for j in range(k))

    def fn(x: Mapping[str, np.ndarray], p: Mapping[str, Any]) -> np.ndarray:
        z = p["alpha"] + sum(p[b] * x[s] for b, s in zip(betas, names, strict=True))
        return p["lo"] + (p["hi"] - p["lo"]) * expit(z)

    def starts(inputs: Mapping[str, np.ndarray], y: np.ndarray, fixed: Mapping[str, float]) -> np.ndarray:
        # logit of the metric scaled into (lo, hi) is linear in the scores: solve it, then scale
        # the slopes (a flat start and a steeper one) so that at least one start is not saturated
        lo = fixed.get("lo", float(np.min(y)) - 0.05 * max(float(np.ptp(y)), 1e-3))
        hi = fixed.get("hi", float(np.max(y)) + 0.05 * max(float(np.ptp(y)), 1e-3))
        u = np.clip((y - lo) / max(hi - lo, 1e-9), 0.02, 0.98)
        design = np.column_stack([np.ones_like(y), *(inputs[s] for s in names)])
        coef = np.linalg.lstsq(design, np.log(u / (1 - u)), rcond=None)[0]
        rows = [np.concatenate([[lo, hi, coef[0] * m], coef[1:] * m]) for m in (1.0, 0.5, 2.0)]
        rows.append(np.concatenate([[lo, hi, 0.0], np.zeros(k)]))
        return np.array(rows)

    return LinkForm(
        key=f"sigmoid_scores_{k}",
        law=Law(
            name=f"sigmoid_scores_{k}",
            formula="y = lo + (hi - lo)*sigmoid(alpha + " + " + ".join(
                f"{b}*{s}" for b, s in zip(betas, names, strict=True)) + ")",
            inputs=names,
            output="metric",
            param_names=("lo", "hi", "alpha", *betas),
            fn=fn,
            bounds={"lo": (-1e3, 1e3), "hi": (-1e3, 1e3), "alpha": (-1e4, 1e4),
                    **{b: (-1e4, 1e4) for b in betas}},
            provenance=Provenance(
                source="Ruan et al. 2024, 'Observational Scaling Laws and the Predictability of "
                "Language Model Performance' (sigmoid link from principal-component scores)",
                url="https://arxiv.org/abs/2405.10938",
            ),
        ),
        starts=starts,
        asymptotes=("lo", "hi"),
    )


LINKS: dict[str, LinkForm] = {"exp": EXP_LINK, "sigmoid": SIGMOID_LINK}


def get_link(key: str) -> LinkForm:
    """The link form saved under ``key`` (``exp``, ``sigmoid`` or ``sigmoid_scores_K``)."""
    if key in LINKS:
        return LINKS[key]
    prefix = "sigmoid_scores_"
    if key.startswith(prefix) and key[len(prefix):].isdigit():
        return sigmoid_in_scores(int(key[len(prefix):]))
    raise ParameterError(f"unknown link {key!r}; choose from {sorted(LINKS)}", "link")


# -- fitting --------------------------------------------------------------------------------------


@dataclass
class FormFit:
    """What :func:`fit_form` found: the estimate, the bootstrap draws (NaN rows: a resample that
    could not identify the law), the residual spread, and what the data do not pin down."""

    params: np.ndarray
    draws: np.ndarray | None
    residual_std: float
    n_starts: int
    unidentified: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: parameters held at an enforced bound (:attr:`LinkForm.enforced`), each with where
    at_bound: dict[str, str] = field(default_factory=dict)


def _distinct_rows(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Row index of the first occurrence of each distinct input point."""
    stacked = np.column_stack([np.asarray(v, float) for v in inputs.values()])
    _, first, inverse = np.unique(stacked, axis=0, return_index=True, return_inverse=True)
    return np.asarray(inverse).ravel()


def fit_form(
    form: LinkForm,
    inputs: Mapping[str, Any],
    y: Any,
    *,
    fixed: Mapping[str, float] | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    weights: np.ndarray | None = None,
    level: float = 0.95,
) -> FormFit:
    """Least-squares fit of ``form`` to points ``(inputs, y)`` with bootstrap draws.

    ``fixed`` holds parameters that are not fitted (e.g. a sigmoid's floor at chance level).
    ``weights`` (K, n) replaces the plain bootstrap over points (a clustered or stratified
    resample from :func:`scalinglab.stats.bootstrap_weights`). Raises :class:`NotIdentifiable`
    when there are fewer distinct input points than free parameters plus one; a resample with
    fewer distinct points than free parameters gives a NaN draw.
    """
    fixed = dict(fixed or {})
    unknown = [k for k in fixed if k not in form.param_names]
    if unknown:
        raise ParameterError(f"fixed names {unknown}, which are not parameters of {form.law.name} "
                             f"({', '.join(form.param_names)})", "fixed")
    x = {k: np.asarray(inputs[k], dtype=float).ravel() for k in form.law.inputs}
    y = np.asarray(y, dtype=float).ravel()
    n = len(y)
    for k, v in x.items():
        if len(v) != n:
            raise ParameterError(f"input {k} has {len(v)} values but the metric has {n}", "inputs")
    if not (np.all(np.isfinite(y)) and all(np.all(np.isfinite(v)) for v in x.values())):
        raise ParameterError("inputs and metric must be finite numbers", "inputs", "y")
    free = np.array([k not in fixed for k in form.param_names])
    n_free = int(free.sum())
    point_of_row = _distinct_rows(x)
    n_distinct = int(point_of_row.max()) + 1 if n else 0
    if n_distinct < n_free + 1:
        raise NotIdentifiable(
            f"{n_distinct} distinct points cannot identify the {n_free} free parameters of "
            f"{form.law.formula} ({', '.join(k for k in form.param_names if k not in fixed)}): "
            f"need at least {n_free + 1}")
    if np.ptp(y) == 0:
        raise NotIdentifiable(f"the metric is {y[0]:g} at every point: nothing to link to")
    lower, upper = form.bounds()

    x0 = np.asarray(form.starts(x, y, fixed), dtype=float)
    for i, name in enumerate(form.param_names):
        if name in fixed:
            x0[:, i] = fixed[name]
    x0 = np.clip(x0, lower, upper)

    def predict(theta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return form.evaluate(theta, x)

    res = batched_lm(predict, x0, y, lower=lower, upper=upper, free=free)
    if not np.isfinite(res.cost).any():
        raise NotIdentifiable(f"no start led to a finite fit of {form.law.formula}")
    order = np.argsort(res.cost)
    best = form.canonical(res.x[order[0]][None, :], fixed)[0]
    resid = form.evaluate(best[None, :], x)[0] - y
    dof = max(n - n_free, 1)
    residual_std = float(np.sqrt(np.sum(resid**2) / dof))

    draws = None
    if bootstrap > 0 or weights is not None:
        w = bootstrap_weights(n, bootstrap, np.random.default_rng(seed)) if weights is None \
            else np.asarray(weights, dtype=float)
        # resample starts: the full fit's best optimum and the next distinct ones
        starts = [best]
        for i in order[1:]:
            if len(starts) == 3 or not np.isfinite(res.cost[i]):
                break
            if np.max(np.abs(res.x[i] - best) / (np.abs(best) + 1e-9)) > 1e-3:
                starts.append(res.x[i])
        starts_arr = np.array(starts)
        k, s = len(w), len(starts_arr)
        fit_b = batched_lm(predict, np.tile(starts_arr, (k, 1)), y, weights=np.repeat(w, s, axis=0),
                           lower=lower, upper=upper, free=free)
        pick = best_rows(fit_b.cost, k)
        draws = form.canonical(fit_b.x[pick], fixed).copy()
        draws[~np.isfinite(fit_b.cost[pick])] = np.nan
        # a resample that holds fewer distinct points than free parameters identifies nothing
        present = np.zeros((k, n_distinct))
        np.add.at(present.T, point_of_row, (w > 0).T.astype(float))
        draws[(present > 0).sum(axis=1) < n_free] = np.nan
    unidentified, warnings, at_bound = _soft_checks(form, best, draws, fixed, lower, upper, level)
    for name, why in form.identify(dict(zip(form.param_names, best.tolist(), strict=True)), x,
                                   fixed).items():
        # a value held at its declared bound is the bound's, however far the points leave it
        if name not in unidentified and name not in at_bound:
            unidentified[name] = why
            warnings.append(f"{name} not identified: {why}")
    return FormFit(params=best, draws=draws, residual_std=residual_std, n_starts=len(x0),
                   unidentified=unidentified, warnings=warnings, at_bound=at_bound)


def _soft_checks(
    form: LinkForm, best: np.ndarray, draws: np.ndarray | None, fixed: Mapping[str, float],
    lower: np.ndarray, upper: np.ndarray, level: float,
) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """Parameters the data do not pin down: the estimate, or more than 10% of the draws, at a
    bound (the fit ran off to where the law stops changing), or draws that could not be fitted;
    and the parameters held at an enforced bound (:attr:`LinkForm.enforced`: the bound is a
    declared limit of the value, so the fit sitting there says the bound decided it, not that
    the value is unknown), each with where. Returns ``(unidentified, warnings, at_bound)``."""
    flagged: dict[str, str] = {}
    held: dict[str, str] = {}
    warnings: list[str] = []

    def at_bound(v: np.ndarray, i: int) -> np.ndarray:
        tol = 1e-6 * np.maximum(1.0, np.abs([lower[i], upper[i]]))
        return (np.abs(v - lower[i]) <= tol[0]) | (np.abs(v - upper[i]) <= tol[1])

    for i, name in enumerate(form.param_names):
        if name in fixed:
            continue
        out = held if name in form.enforced else flagged
        if at_bound(np.array([best[i]]), i)[0]:
            edge = lower[i] if abs(best[i] - lower[i]) <= abs(best[i] - upper[i]) else upper[i]
            out[name] = (f"{name} = {best[i]:.4g} sits at its bound {edge:g}" if out is held
                         else f"the estimate of {name} ran to its bound ({best[i]:.4g})")
        elif draws is not None and len(draws):
            col = draws[:, i][np.isfinite(draws[:, i])]
            if col.size and np.mean(at_bound(col, i)) > 0.1:
                out[name] = f"{np.mean(at_bound(col, i)):.0%} of bootstrap fits put {name} at its bound"
    if draws is not None and len(draws):
        failed = float(np.mean(~np.all(np.isfinite(draws), axis=1)))
        if failed > 0.05:
            warnings.append(f"{failed:.0%} of bootstrap resamples could not identify the link "
                            f"(too few distinct points, or no finite fit); intervals use the rest")
    if flagged:
        warnings.append("not identified by these points: " + "; ".join(flagged.values())
                        + ". Treat these parameters, and predictions that lean on them, as unknown.")
    if held:
        warnings.append("at an enforced bound: " + "; ".join(held.values()) + ". The bound, not the "
                        "points, decides these values.")
    return flagged, warnings, held


__all__ = [
    "EXP_LINK",
    "LINKS",
    "SIGMOID_LINK",
    "FormFit",
    "LinkForm",
    "fit_form",
    "get_link",
    "sigmoid_in_scores",
]
