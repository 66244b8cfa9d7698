"""Fitting loss laws: Huber on log residuals, multi-start batched L-BFGS, bootstrap, holdout.

This is Chinchilla's Approach 3 as Besiroglu et al. 2024 ("Chinchilla Scaling: A replication
attempt") redid it: minimise ``sum_i Huber_1e-3(log Lhat_i - log L_i)`` over a grid of thousands
of starting points and keep the best optimum, then bootstrap over runs for intervals. The same
machinery fits every law that declares a fitting parametrisation: the law supplies its log-space
form, its starting grid and its identifiability rule, so nothing here knows which law it fits.

Everything that makes the fit fast lives in :mod:`scalinglab.fit.optimize` (all starts advance
together) and :mod:`scalinglab.fit.objective` (the law's logarithm and its gradient); the
bootstrap reuses both, giving each resample a row of run multiplicities instead of copied data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import InputError, NotIdentifiable, ParameterError
from scalinglab.fit.objective import HUBER_DELTA, HuberObjective, to_params
from scalinglab.fit.optimize import BatchResult, batched_lbfgs
from scalinglab.fit.result import FitInfo, FitResult, Holdout
from scalinglab.laws.base import Law
from scalinglab.laws.registry import get_law
from scalinglab.laws.starts import besiroglu_grid
from scalinglab.stats import bootstrap_weights, percentile_interval

#: ``progress(stage, done, total)``: called as starts finish ("starts", then "bootstrap")
Progress = Callable[[str, int, int], None]

#: a scale parameter whose interval spans more than this many decades is not identified
MAX_DECADES = 3.0
#: an exponent whose interval is wider than this is not identified
MAX_EXPONENT_WIDTH = 1.0


# -- data checks ---------------------------------------------------------------------------------


def _as_inputs(law: Law, data: Mapping[str, Any], loss: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    arrays = {k: np.asarray(data[k], dtype=float).ravel() for k in law.inputs}
    y = np.asarray(loss, dtype=float).ravel()
    for name, v in [*arrays.items(), ("loss", y)]:
        if len(v) != len(y):
            raise ParameterError(f"{name} has {len(v)} values but loss has {len(y)}", name, "loss")
        bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)))
        if bad.size:
            raise InputError(
                f"must be positive and finite, not {float(v[bad[0]]):g}"
                + (f" ({bad.size} such runs)" if bad.size > 1 else ""),
                row=f"run {bad[0] + 1}", column=name)
    return arrays, y


def check_identifiable(law: Law, inputs: Mapping[str, np.ndarray]) -> None:
    """Raise :class:`NotIdentifiable` when the runs' design cannot pin the law down at all
    (the law's own rule, :attr:`Law.identifiability`)."""
    law.check_identifiable(inputs)


# -- optimisation --------------------------------------------------------------------------------


def _optimize(
    objective: HuberObjective, x0: np.ndarray, stage: str, progress: Progress | None
) -> BatchResult:
    callback = None if progress is None else (lambda done, total: progress(stage, done, total))
    return batched_lbfgs(objective, x0, callback=callback)


def _reached_best(res: BatchResult) -> np.ndarray:
    best = np.min(res.f)
    return np.flatnonzero(res.f <= best + 1e-6 * max(abs(best), 1.0))


def bootstrap_starts(
    res: BatchResult, x0: np.ndarray, n_optima: int = 3, n_grid: int = 4, window: float = 0.1,
    tol: float = 1e-3,
) -> np.ndarray:
    """Starts for every resample: the full fit's best distinct optima (objective within
    ``window`` of the best), plus ``n_grid`` grid points, evenly spread through the grid, from
    which the full fit reached its best optimum.

    A resample's optimum lies near the full data's, so only competitive basins matter; grid
    points that found the best basin on all runs keep some of the grid's breadth at a fraction
    of its cost.
    """
    best = float(np.min(res.f))
    optima: list[np.ndarray] = []
    for i in np.argsort(res.f):
        if not res.f[i] <= best + window * max(abs(best), 1e-12) or len(optima) == n_optima:
            break
        if all(np.max(np.abs(res.x[i] - c)) > tol * (1 + np.max(np.abs(c))) for c in optima):
            optima.append(res.x[i])
    good = _reached_best(res)
    pick = good[np.unique(np.linspace(0, len(good) - 1, min(n_grid, len(good))).round().astype(int))]
    return np.vstack([np.array(optima), x0[pick]])


def bootstrap_fit(
    model: Any, loss: np.ndarray, starts: np.ndarray, weights: np.ndarray,
    delta: float = HUBER_DELTA, progress: Progress | None = None,
) -> np.ndarray:
    """Best optimum (fitting coordinates) of every resample, all resamples x starts in one batch.

    Rows whose every start failed come back as NaN (percentile intervals ignore them).
    """
    k, s = len(weights), len(starts)
    objective = HuberObjective(model, loss, delta, weights=weights, row_weights=np.repeat(np.arange(k), s))
    res = _optimize(objective, np.tile(starts, (k, 1)), "bootstrap", progress)
    f = res.f.reshape(k, s)
    best = np.argmin(np.where(np.isfinite(f), f, np.inf), axis=1)
    out = res.x.reshape(k, s, -1)[np.arange(k), best]
    out[~np.isfinite(f[np.arange(k), best])] = np.nan
    return out


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
        lo, hi = (float(x) for x in percentile_interval(col, level))
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
    run_ids: Sequence[str] | None = None,
    bootstrap: int = 200,
    holdout_top: int = 0,
    seed: int = 0,
    starts: np.ndarray | None = None,
    compute: Any = None,
    delta: float = HUBER_DELTA,
    level: float = 0.95,
    source: str = "",
    progress: Progress | None = None,
) -> FitResult:
    """Fit ``law`` to runs given as arrays (``inputs[name]`` for each of ``law.inputs``).

    ``run_ids`` name the runs (default ``run-1``, ``run-2``, ... in input order). ``starts`` are
    in fitting coordinates (logs of scale parameters, exponents as they are; see
    :mod:`scalinglab.laws.logspace`), default the law's own grid. ``compute`` (FLOPs per run)
    orders runs for ``holdout_top``; by default 6ND. Raises :class:`NotIdentifiable` when the
    design cannot identify the law; softer problems are in ``result.warnings`` and
    ``result.unidentified``. Deterministic for a given ``seed``.
    """
    law = get_law(law)
    x, y = _as_inputs(law, inputs, loss)
    ids = _run_ids(run_ids, len(y))
    c = _compute(law, x, compute)
    if not 0 <= holdout_top < len(y):
        raise ParameterError(f"holdout_top must be between 0 and {len(y) - 1}, not {holdout_top}",
                             "holdout_top")
    if bootstrap < 0:
        raise ParameterError(f"bootstrap must be >= 0, not {bootstrap}", "bootstrap")
    order = np.argsort(c, kind="stable")
    holdout_idx, train = np.sort(order[len(y) - holdout_top:]), np.sort(order[: len(y) - holdout_top])
    xt = {k: v[train] for k, v in x.items()}
    law.check_identifiable(xt)

    model = law.log_model(xt)
    x0 = law.starting_points(xt, y[train]) if starts is None else np.atleast_2d(np.asarray(starts, float))
    if x0.shape[1] != len(law.param_names):
        raise ParameterError(f"starts must have {len(law.param_names)} columns "
                             f"({', '.join(law.param_names)})", "starts")
    objective = HuberObjective(model, y[train], delta)
    res = _optimize(objective, x0, "starts", progress)
    if not np.isfinite(res.f).any():
        raise NotIdentifiable(f"no start led to a finite objective for the {law.name} law")
    best = int(np.argmin(res.f))
    theta = res.x[best]
    params = dict(zip(law.param_names, to_params(model.log_params, theta).tolist(), strict=True))
    resid = objective.residuals(theta)[0]

    draws, boot_x0 = None, bootstrap_starts(res, x0)
    if bootstrap > 0:
        weights = bootstrap_weights(len(train), bootstrap, np.random.default_rng(seed))
        boot_theta = bootstrap_fit(model, y[train], boot_x0, weights, delta, progress)
        draws = to_params(model.log_params, boot_theta)

    warnings, unidentified = _soft_checks(law, model.log_params, params, draws, level)
    fit = FitResult(
        law=law,
        params=params,
        run_ids=tuple(ids[i] for i in train),
        objective=float(res.f[best] * delta),
        draws=draws,
        level=level,
        residual_std=float(np.std(resid)),
        warnings=warnings,
        unidentified=tuple(unidentified),
        data_range={k: (float(v.min()), float(v.max())) for k, v in xt.items()},
        compute_range=(float(c[train].min()), float(c[train].max())),
        info=FitInfo(
            objective=f"sum of Huber(delta={delta:g}) losses of log-loss residuals",
            optimizer="batched L-BFGS, weak Wolfe line search",
            n_starts=len(x0), n_converged=int(res.converged.sum()),
            n_reached_best=len(_reached_best(res)),
            n_bootstrap_starts=0 if draws is None else len(boot_x0), seed=seed,
        ),
        source=source,
    )
    if holdout_top:
        fit.holdout = _holdout(fit, tuple(ids[i] for i in holdout_idx),
                               {k: v[holdout_idx] for k, v in x.items()}, y[holdout_idx], c[holdout_idx])
    return fit


def _run_ids(run_ids: Sequence[str] | None, n: int) -> list[str]:
    if run_ids is None:
        return [f"run-{i + 1}" for i in range(n)]
    ids = [str(r) for r in run_ids]
    if len(ids) != n:
        raise ParameterError(f"run_ids has {len(ids)} entries for {n} runs", "run_ids")
    return ids


def _holdout(fit: FitResult, ids: tuple[str, ...], inputs: Mapping[str, np.ndarray],
             loss: np.ndarray, c: np.ndarray) -> Holdout:
    pred, lo, hi = fit.predict_interval(**inputs)
    return Holdout(run_ids=ids, inputs=dict(inputs), compute=c, observed=loss,
                   predicted=np.asarray(pred, float), lo=np.asarray(lo, float),
                   hi=np.asarray(hi, float))


def fit_law(
    law: Law | str,
    frame: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    bootstrap: int = 200,
    holdout_top: int = 0,
    seed: int = 0,
    starts: np.ndarray | None = None,
    delta: float = HUBER_DELTA,
    level: float = 0.95,
    source: str = "",
    progress: Progress | None = None,
) -> FitResult:
    """Fit a loss law (a catalogue name, see ``scalinglab.list_laws()``, or a :class:`Law`) to a
    frame of runs.

    The frame needs a loss column and the law's inputs; ``columns`` maps scalinglab's names to
    the frame's (``{"N": "params", "loss": "final_loss"}``). ``D`` is derived as ``C/6N`` and
    ``C`` as ``6ND`` when missing (``result.notes`` says so). A ``run_id`` column, when present,
    names the runs; otherwise they are ``row-1``, ``row-2``, ... in frame order.

    Which runs inform a law (replicates, lr x batch grids) is decided before this call, by
    :func:`scalinglab.runs.select.select_runs`; this function fits every row it is given.
    """
    law = get_law(law)
    frame, notes = complete_columns(frame, law.inputs, columns)
    ids = (frame["run_id"].astype(str).tolist() if "run_id" in frame.columns
           else [f"row-{i + 1}" for i in range(len(frame))])
    fit = fit_arrays(
        law, {k: frame[k].to_numpy(float) for k in law.inputs}, frame["loss"].to_numpy(float),
        run_ids=ids, bootstrap=bootstrap, holdout_top=holdout_top, seed=seed, starts=starts,
        compute=frame["C"].to_numpy(float) if "C" in frame else None, delta=delta, level=level,
        source=source, progress=progress,
    )
    fit.notes[:0] = notes
    return fit


def complete_columns(
    frame: pd.DataFrame, needed: Sequence[str], columns: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Rename ``columns`` (scalinglab name -> frame column), then fill ``D = C/6N`` or
    ``C = 6ND`` when a law needs the missing one; say what was derived."""
    notes: list[str] = []
    if columns:
        absent = [src for src in columns.values() if src not in frame.columns]
        if absent:
            raise ParameterError(f"columns maps to {absent}, which the frame does not have; its "
                                 f"columns are {list(frame.columns)}", "columns")
        frame = frame.rename(columns={src: dst for dst, src in columns.items()})
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
        raise ParameterError(f"the runs lack column(s) {missing}; their columns are "
                             f"{list(frame.columns)} (map yours with columns={{'N': 'params'}})",
                             "columns")
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


__all__ = ["besiroglu_grid", "check_identifiable", "complete_columns", "fit_arrays",
           "fit_chinchilla", "fit_kaplan", "fit_law", "fit_power"]
