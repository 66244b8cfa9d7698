"""Fitting loss laws: Huber on log residuals, multi-start batched L-BFGS, bootstrap, holdout.

This is Chinchilla's Approach 3 as Besiroglu et al. 2024 ("Chinchilla Scaling: A replication
attempt") redid it: minimise ``sum_i Huber_1e-3(log Lhat_i - log L_i)`` over a grid of thousands
of starting points and keep the best optimum, then bootstrap over runs for intervals. The same
machinery fits every law of :mod:`scalinglab.laws.loss` (Kaplan's, one-variable power laws).

Everything that makes the fit fast lives in :mod:`scalinglab.fit.search` (the grid screened on a
subsample, a few basins polished on all runs, resamples warm-started from the estimate),
:mod:`scalinglab.fit.optimize` (all starts advance together) and :mod:`scalinglab.fit.objective`
(the law's logarithm and its gradient); the bootstrap gives each resample a row of run
multiplicities instead of copied data.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.fit.derived import derived_figures
from scalinglab.fit.objective import HUBER_DELTA, HuberObjective, log_model, to_params
from scalinglab.fit.result import FitResult, NotIdentifiable
from scalinglab.fit.search import BootstrapFit, PointFit, restart_starts, search
from scalinglab.fit.search import bootstrap as warm_bootstrap
from scalinglab.laws.base import Law
from scalinglab.laws.loss import get_loss_law

#: ``progress(stage, done, total)``: called as starts finish ("starts", then "bootstrap")
Progress = Callable[[str, int, int], None]

#: a scale parameter whose interval spans more than this many decades is not identified
MAX_DECADES = 3.0
#: an exponent whose interval is wider than this is not identified
MAX_EXPONENT_WIDTH = 1.0


# -- starting points ---------------------------------------------------------------------------


def besiroglu_grid() -> np.ndarray:
    """The 4,500-point grid of Besiroglu et al. 2024 in fitting coordinates ``(e, a, b, alpha, beta)``.

    ``e in {-1, -.5, .., 1}``, ``a, b in {0, 5, .., 25}``, ``alpha, beta in {0, .5, .., 2}``.
    """
    e = np.arange(-1.0, 1.01, 0.5)
    ab = np.arange(0.0, 25.1, 5.0)
    ex = np.arange(0.0, 2.01, 0.5)
    return np.array(list(itertools.product(e, ab, ab, ex, ex)))


def default_starts(law: Law, inputs: Mapping[str, np.ndarray], loss: np.ndarray) -> np.ndarray:
    """Starting points in fitting coordinates for ``law``.

    Chinchilla uses Besiroglu's grid. For the others the scale of each term is set from the data
    (a term ``A x^-alpha`` starts between ``e^-4`` and ``e`` of the loss at the median ``x``), so
    the grid covers plausible laws whatever the units of ``x``.
    """
    if law.name == "chinchilla":
        return besiroglu_grid()
    med = {k: float(np.median(np.log(v))) for k, v in inputs.items()}
    if law.name == "kaplan":
        log_l = max(float(np.median(np.log(loss))), 0.1)
        alphas = (0.03, 0.06, 0.1, 0.2, 0.4)
        mult = (0.5, 1.0, 2.0)
        return np.array([
            (med["N"] + log_l / an * mn, med["D"] + log_l / ad * md, an, ad)
            for an, ad, mn, md in itertools.product(alphas, alphas, mult, mult)
        ])
    (x,) = law.inputs
    alphas = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
    return np.array([
        (e, alpha * med[x] + c, alpha)
        for e, alpha, c in itertools.product(np.arange(-1.0, 1.01, 0.5), alphas, range(-4, 2))
    ])


# -- data checks ---------------------------------------------------------------------------------


def _as_inputs(law: Law, data: Mapping[str, Any], loss: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    arrays = {k: np.asarray(data[k], dtype=float).ravel() for k in law.inputs}
    y = np.asarray(loss, dtype=float).ravel()
    for name, v in [*arrays.items(), ("loss", y)]:
        if len(v) != len(y):
            raise ValueError(f"{name} has {len(v)} values but loss has {len(y)}")
        bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)))
        if bad.size:
            raise ValueError(
                f"{name} must be positive and finite; run {bad[0] + 1} has {name} = {float(v[bad[0]]):g}"
                + (f" ({bad.size} such runs)" if bad.size > 1 else "")
            )
    return arrays, y


_MEANING = {"N": "how loss falls with model size", "D": "how loss falls with data",
            "C": "how loss falls with compute"}


def check_identifiable(law: Law, inputs: Mapping[str, np.ndarray]) -> None:
    """Raise :class:`NotIdentifiable` when the runs' design cannot pin down the law at all.

    A term ``A x^-alpha`` plus a constant needs 3 distinct values of ``x``: with one, A and alpha
    are confounded with the constant; with two, any alpha fits exactly after adjusting A.
    """
    n = len(next(iter(inputs.values())))
    p = len(law.param_names)
    if n < p + 1:
        raise NotIdentifiable(
            f"{n} runs cannot identify the {law.name} law's {p} parameters "
            f"({', '.join(law.param_names)}): need at least {p + 1} runs"
        )
    need = 2 if law.name == "kaplan" else 3
    for j, name in enumerate(law.inputs):
        distinct = np.unique(inputs[name])
        if len(distinct) >= need:
            continue
        owned = [law.param_names[1 + j], law.param_names[1 + len(law.inputs) + j]] \
            if law.name != "kaplan" else (["N_c", "alpha_N"] if name == "N" else ["D_c", "alpha_D"])
        where = f"all runs have {name} = {distinct[0]:.4g}" if len(distinct) == 1 else \
            f"runs have only {len(distinct)} distinct values of {name}"
        others = [k for k in ("N", "D") if k != name]
        hint = f"; fit `power --x {others[0]}` instead, or add runs at other {name}" \
            if len(law.inputs) == 2 else f"; add runs at other {name}"
        raise NotIdentifiable(
            f"{where}: {' and '.join(owned)} ({_MEANING[name]}) cannot be identified "
            f"(need at least {need} distinct {name}){hint}"
        )


# -- optimisation --------------------------------------------------------------------------------


def _optimize(
    law: Law, inputs: Mapping[str, np.ndarray], loss: np.ndarray, x0: np.ndarray, model: Any,
    delta: float, progress: Progress | None,
) -> PointFit:
    """The best optimum over the starts ``x0``: the grid screened on a subsample of the runs,
    its distinct promising basins polished on all of them (:func:`scalinglab.fit.search.search`)."""
    return search(lambda sub: log_model(law, sub), inputs, loss, x0, delta=delta, model=model,
                  progress=progress)


def bootstrap_starts(point: PointFit, n_grid: int = 4) -> np.ndarray:
    """Starts for a resample refitted from scratch: the estimate and the other polished basins,
    plus ``n_grid`` grid points from the best basin's catchment
    (:func:`scalinglab.fit.search.restart_starts`)."""
    return restart_starts(point, n_grid)


def bootstrap_fit(
    model: Any, loss: np.ndarray, point: PointFit, n_draws: int, seed: int,
    delta: float = HUBER_DELTA, progress: Progress | None = None,
) -> BootstrapFit:
    """``n_draws`` bootstrap fits warm-started from the estimate, all resamples in one batch,
    the ones that may have left its basin refitted from a multi-start
    (:func:`scalinglab.fit.search.bootstrap`). Failed resamples are NaN rows (percentile
    intervals ignore them)."""
    return warm_bootstrap(model, loss, point, n_draws, np.random.default_rng(seed), delta=delta,
                          progress=progress)


# -- soft identifiability -----------------------------------------------------------------------


def _soft_checks(
    law: Law, log_params: Sequence[bool], params: Mapping[str, float], boot: np.ndarray | None,
    level: float,
) -> tuple[list[str], list[str]]:
    """Warnings and the parameters the data do not pin down (estimate or draws at the bounds,
    interval spanning decades); the numbers are kept but marked, not presented as meaningful."""
    warnings: list[str] = []
    flagged: dict[str, str] = {}
    for i, name in enumerate(law.param_names):
        lo_b, hi_b = law.bounds.get(name, (-np.inf, np.inf))
        v = params[name]
        if not lo_b <= v <= hi_b:
            flagged[name] = f"the estimate {name} = {v:.4g} is outside the plausible range [{lo_b:g}, {hi_b:g}]"
            continue
        if boot is None or not len(boot):
            continue
        col = boot[:, i]
        col = col[np.isfinite(col)]
        if not len(col):
            continue
        outside = float(np.mean((col < lo_b) | (col > hi_b)))
        q = (1 - level) / 2
        lo, hi = np.quantile(col, [q, 1 - q])
        if outside > 0.1:
            flagged[name] = f"{outside:.0%} of bootstrap fits put {name} outside [{lo_b:g}, {hi_b:g}]"
        elif log_params[i] and lo > 0 and np.log10(hi / lo) > MAX_DECADES:
            flagged[name] = f"the {level:.0%} interval of {name} spans {np.log10(hi / lo):.1f} decades"
        elif log_params[i] and lo <= 0:
            flagged[name] = f"the {level:.0%} interval of {name} reaches 0"
        elif not log_params[i] and hi - lo > MAX_EXPONENT_WIDTH:
            flagged[name] = f"the {level:.0%} interval of {name} is [{lo:.3g}, {hi:.3g}]"
    if boot is not None and len(boot):
        failed = float(np.mean(~np.all(np.isfinite(boot), axis=1)))
        if failed > 0.05:
            warnings.append(f"{failed:.0%} of bootstrap resamples could not be fitted")
    if flagged:
        warnings.append(
            "not identified by these runs: " + "; ".join(flagged.values())
            + ". Treat these parameters (and figures derived from them) as unknown."
        )
    return warnings, list(flagged)


# -- the fit -------------------------------------------------------------------------------------


def _compute(law: Law, inputs: Mapping[str, np.ndarray], compute: np.ndarray | None) -> np.ndarray:
    """Training compute of each run, for ordering the holdout: given C, else 6ND, else the input."""
    if compute is not None:
        return np.asarray(compute, dtype=float)
    if "N" in inputs and "D" in inputs:
        return 6.0 * inputs["N"] * inputs["D"]
    return next(iter(inputs.values()))


def fit_arrays(
    law: Law | str,
    inputs: Mapping[str, Any],
    loss: Any,
    *,
    bootstrap: int = 200,
    holdout_top: int = 0,
    seed: int = 0,
    starts: np.ndarray | None = None,
    compute: Any = None,
    budgets: Sequence[float] | None = None,
    at: Sequence[Mapping[str, float]] = (),
    delta: float = HUBER_DELTA,
    level: float = 0.95,
    progress: Progress | None = None,
) -> FitResult:
    """Fit ``law`` to runs given as arrays (``inputs[name]`` for each of ``law.inputs``).

    ``starts`` are in fitting coordinates (logs of scale parameters, exponents as they are; see
    :mod:`scalinglab.fit.objective`), default :func:`default_starts`. ``compute`` (FLOPs per run)
    orders runs for ``holdout_top``; by default 6ND. ``budgets`` (FLOPs) and ``at`` (input
    points) choose the derived figures in ``extra["derived"]`` (see
    :func:`scalinglab.fit.derived.derived_figures`). Raises :class:`NotIdentifiable` when the
    design cannot identify the law; softer problems are in ``result.warnings`` and
    ``result.extra["unidentified"]``. Deterministic for a given ``seed``.
    """
    law = get_loss_law(law) if isinstance(law, str) else law
    x, y = _as_inputs(law, inputs, loss)
    c = _compute(law, x, compute)
    if not 0 <= holdout_top < len(y):
        raise ValueError(f"holdout_top must be between 0 and {len(y) - 1}, not {holdout_top}")
    order = np.argsort(c, kind="stable")
    holdout_idx, train = np.sort(order[len(y) - holdout_top:]), np.sort(order[: len(y) - holdout_top])
    xt = {k: v[train] for k, v in x.items()}
    check_identifiable(law, xt)

    model = log_model(law, xt)
    x0 = default_starts(law, xt, y[train]) if starts is None else np.atleast_2d(np.asarray(starts, float))
    if x0.shape[1] != len(law.param_names):
        raise ValueError(f"starts must have {len(law.param_names)} columns ({', '.join(law.param_names)})")
    point = _optimize(law, xt, y[train], x0, model, delta, progress)
    if not np.isfinite(point.f):
        raise NotIdentifiable(f"no start led to a finite objective for the {law.name} law")
    theta = point.x
    params = dict(zip(law.param_names, to_params(model.log_params, theta).tolist(), strict=True))
    resid = HuberObjective(model, y[train], delta).residuals(theta)[0]

    boot, boot_fit = None, None
    if bootstrap > 0:
        boot_fit = bootstrap_fit(model, y[train], point, bootstrap, seed, delta, progress)
        boot = to_params(model.log_params, boot_fit.theta)

    warnings, unidentified = _soft_checks(law, model.log_params, params, boot, level)
    if boot_fit is not None and boot_fit.moved > 0.05 * bootstrap:
        warnings.append(f"{boot_fit.moved / bootstrap:.0%} of bootstrap resamples are best fitted in "
                        "another basin than the estimate's: these runs support more than one fit")
    fit = FitResult(
        law=law,
        params=params,
        n_runs=len(train),
        objective=float(point.f * delta),
        draws=boot,
        level=level,
        residual_std=float(np.std(resid)),
        warnings=warnings,
        data_range={k: (float(v.min()), float(v.max())) for k, v in xt.items()},
        extra={
            "unidentified": unidentified,
            "compute_range": [float(c[train].min()), float(c[train].max())],
            "fit": {
                "objective": f"sum of Huber(delta={delta:g}) losses of log-loss residuals",
                "optimizer": "batched L-BFGS, weak Wolfe line search; starts screened on a "
                             "subsample of runs, distinct basins polished on all",
                "n_starts": point.n_starts,
                "n_converged": point.n_converged,
                "n_reached_best": point.n_reached_best,
                "n_bootstrap_starts": 0 if boot_fit is None else 1,
                "seed": seed,
                "search": {"screen_runs": point.screen_runs, "n_screened": point.n_screened,
                           "n_polished": point.n_polished, "n_basins": len(point.basins_f)},
                **({} if boot_fit is None else {"bootstrap": boot_fit.summary()}),
            },
        },
    )
    fit.extra["derived"] = derived_figures(fit, compute=budgets, at=at)
    if holdout_top:
        fit.holdout = _holdout(fit, {k: v[holdout_idx] for k, v in x.items()}, y[holdout_idx], c[holdout_idx])
    return fit


def _holdout(fit: FitResult, inputs: Mapping[str, np.ndarray], loss: np.ndarray, c: np.ndarray) -> dict[str, Any]:
    pred, lo, hi = fit.predict_interval(**inputs)
    err = np.abs(pred - loss) / loss
    runs = [
        {**{k: float(v[i]) for k, v in inputs.items()}, "C": float(c[i]), "loss": float(loss[i]),
         "predicted": float(pred[i]), "lo": float(lo[i]), "hi": float(hi[i]),
         "abs_rel_err": float(err[i]), "inside_interval": bool(lo[i] <= loss[i] <= hi[i])}
        for i in np.argsort(c)
    ]
    return {
        "k": len(loss),
        "mean_abs_rel_err": float(err.mean()),
        "max_abs_rel_err": float(err.max()),
        "runs": runs,
    }


def fit_law(
    law: Law | str,
    frame: pd.DataFrame,
    *,
    bootstrap: int = 200,
    holdout_top: int = 0,
    seed: int = 0,
    starts: np.ndarray | None = None,
    budgets: Sequence[float] | None = None,
    at: Sequence[Mapping[str, float]] = (),
    delta: float = HUBER_DELTA,
    level: float = 0.95,
    progress: Progress | None = None,
) -> FitResult:
    """Fit a loss law (name from ``laws.loss.LOSS_LAWS`` or a :class:`Law`) to a runs frame.

    The frame needs a ``loss`` column and the law's inputs; ``D`` is derived as ``C/6N`` and
    ``C`` as ``6ND`` when missing (``result.extra["notes"]`` says so).
    """
    law = get_loss_law(law) if isinstance(law, str) else law
    frame, notes = complete_columns(frame, law.inputs)
    fit = fit_arrays(
        law, {k: frame[k].to_numpy(float) for k in law.inputs}, frame["loss"].to_numpy(float),
        bootstrap=bootstrap, holdout_top=holdout_top, seed=seed, starts=starts,
        compute=frame["C"].to_numpy(float) if "C" in frame else None, budgets=budgets, at=at,
        delta=delta, level=level, progress=progress,
    )
    if notes:
        fit.extra["notes"] = notes
    return fit


def complete_columns(frame: pd.DataFrame, needed: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Fill ``D = C/6N`` or ``C = 6ND`` when a law needs the missing one; say what was derived."""
    notes: list[str] = []
    frame = frame.copy()
    cols = set(frame.columns)
    if "D" in needed and "D" not in cols and {"N", "C"} <= cols:
        frame["D"] = frame["C"] / (6.0 * frame["N"])
        notes.append("D was derived from C and N as D = C/(6N)")
    if "C" not in cols and {"N", "D"} <= set(frame.columns):
        frame["C"] = 6.0 * frame["N"] * frame["D"]
        if "C" in needed:
            notes.append("C was derived from N and D as C = 6ND")
    missing = [k for k in (*needed, "loss") if k not in frame.columns]
    if missing:
        raise ValueError(f"runs lack column(s) {missing}; columns are {list(frame.columns)}")
    return frame, notes


def fit_chinchilla(
    N: Any, D: Any, loss: Any, *, bootstrap: int = 200, holdout_top: int = 0, seed: int = 0,
    starts: np.ndarray | None = None, progress: Progress | None = None,
) -> FitResult:
    """Chinchilla Approach 3 (``L = E + A/N^alpha + B/D^beta``) as Besiroglu et al. 2024 fit it."""
    return fit_arrays("chinchilla", {"N": N, "D": D}, loss, bootstrap=bootstrap,
                      holdout_top=holdout_top, seed=seed, starts=starts, progress=progress)


def fit_kaplan(
    N: Any, D: Any, loss: Any, *, bootstrap: int = 200, holdout_top: int = 0, seed: int = 0,
    starts: np.ndarray | None = None, progress: Progress | None = None,
) -> FitResult:
    """Kaplan et al. 2020's ``L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D``."""
    return fit_arrays("kaplan", {"N": N, "D": D}, loss, bootstrap=bootstrap,
                      holdout_top=holdout_top, seed=seed, starts=starts, progress=progress)


def fit_power(
    x: Any, loss: Any, variable: str = "C", *, bootstrap: int = 200, holdout_top: int = 0,
    seed: int = 0, starts: np.ndarray | None = None, progress: Progress | None = None,
) -> FitResult:
    """``L = E + A x^-alpha`` in one variable (``N``, ``D`` or ``C``)."""
    return fit_arrays(f"power_{variable}", {variable: x}, loss, bootstrap=bootstrap,
                      holdout_top=holdout_top, seed=seed, starts=starts, progress=progress)
