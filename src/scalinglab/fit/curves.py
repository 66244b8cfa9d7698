"""Fitting loss-curve laws to whole loss curves, and what a fitted law says about other schedules.

``fit_curves(frame, law="multipower", columns={"run": ..., "step": ..., "lr": ..., "loss": ...})``
fits a curve law (:mod:`scalinglab.laws.curves`) to every logged point of every run after its
warmup, with the engine the loss laws use: a Huber loss of log-loss residuals
(:class:`scalinglab.fit.objective.Objective`, delta 1e-3), minimised from many starts at once by
:func:`scalinglab.fit.optimize.batched_lbfgs`, then refitted on bootstrap resamples, all of them
in one batch warm-started from the estimate.

Resampling: ``runs`` draws whole runs (clustered, :func:`scalinglab.stats.bootstrap_weights`);
``blocks`` draws blocks of consecutive points within each run (a moving-block bootstrap: the
residuals of a loss curve are correlated over a few logging intervals). With three runs, a run
resample holds a single run one time in nine and misses a schedule shape two times in three, so
its spread says which runs were drawn more than how well the law is pinned down; ``auto`` uses
runs from 6 runs up and blocks below.

Intervals: ``CurveFit.predict`` gives, at each step, the law at the estimate and the percentile
interval of the bootstrap draws; with ``band="prediction"`` (default) each draw also gets a
draw of the fit's residual noise (a normal of the residuals' robust spread, in log space), so the
band is for the loss as it will be logged, not only for the law's mean.

Schedules the law was not fitted on: with three runs or more the fit predicts each run from the
law fitted on the others (leave-one-run-out, :func:`leave_one_run_out`). Where the law is right
those errors are the noise plus the refit's own spread; what they hold beyond that is the law's
discrepancy on an unseen schedule (:func:`schedule_discrepancy`), and every band for a schedule
not among the fitted ones carries it as one shift per curve. Measured on the authors' released
runs (fit on three, predict six): the held-out final losses inside the 95% band went from 3 of
6 (25M) and 0 of 6 (100M) to 6 of 6 and 5 of 6 (the 3x longer cosine at 100M still outside),
the discrepancy 0.40% and 0.26%. ``law="auto"`` chooses among the catalogued laws (and the
multi-power law's ``shrink``, a Gaussian prior on its loosely pinned decay shape) by the same
leave-one-run-out error; ``law="stack"`` averages them instead, weighted by how well their
mixture predicts the left-out runs (:func:`_fit_stack`, :class:`~scalinglab.laws.curves.StackedLaw`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from scalinglab.errors import InputError, NotIdentifiable, ParameterError
from scalinglab.fit.objective import HUBER_DELTA, huber
from scalinglab.laws.curves import (
    FIT_RATIO,
    PREDICT_RATIO,
    CurveDesign,
    CurveLaw,
    StackedLaw,
    get_curve_law,
    law_from_dict,
)
from scalinglab.laws.schedules import Schedule, parse_schedules, wsd
from scalinglab.results import Result
from scalinglab.stats import bootstrap_weights, check_count, check_level, percentile_interval
from scalinglab.summary import Summary, Table, format_number
from scalinglab.values import as_mapping, as_table

__all__ = ["CurveFit", "CurveRun", "curve_runs", "fit_curves", "read_schedule", "to_schedule"]

#: polished starts (the best of the screened grid)
N_POLISH = 8
#: block-bootstrap refits per left-out run (at most; no more than the fit's own resamples)
#: to tell the leave-one-run-out error the refit's noise explains from the law's discrepancy
LORO_RESAMPLES = 20
#: noise draws per bootstrap draw in a prediction band
NOISE_DRAWS = 20
#: values (draws x points) per slice of a band (:func:`draw_band`): 16 MB
BAND_ELEMENTS = 1 << 21
#: runs from which ``resample="auto"`` draws whole runs
MIN_RUNS_FOR_RUN_BOOTSTRAP = 6
#: a parameter whose bootstrap interval spans more than this many decades is reported as not
#: pinned down. Measured with 100 block resamples: on the released 25M curves B and beta span 8.5
#: decades (the decay term near its beta -> 0 limit, B*beta*log(1 + C x), where only B*beta
#: counts), every 100M parameter less than 1; on simulated curves of a known law (0.1% noise) L0,
#: A, alpha within 0.02 but C 3-9 decades (beta, gamma in one of three seeds): the decay
#: term's parameters trade off while the curve it gives is pinned down to < 0.1%.
UNPINNED_DECADES = 3.0
#: the shrinkage strengths ``law="auto"`` tries on the multi-power law's decay shape
#: (:func:`shrinkage_prior`), a decade apart: at 0.01 moving beta a factor 4 from its centre
#: costs 0.01 (the data part of the objective is 0.02-0.11 on the released runs, and the
#: unshrunk 25M fit puts beta at 0.011); at 1 the shape stays within ~10% of the centre there
#: (beta 0.575-0.579, C 1.96-1.97, gamma 0.47-0.48 at 25M and 100M)
SHRINK_GRID = (0.01, 0.1, 1.0)


@dataclass(frozen=True, eq=False)
class CurveRun:
    """One run's curve: its schedule and the (step, loss) points the fit uses."""

    run_id: str
    schedule: Schedule
    steps: np.ndarray
    loss: np.ndarray


# -- input --------------------------------------------------------------------------------------

def _column(frame: pd.DataFrame, columns: Mapping[str, str], key: str, source: str,
            required: bool = True) -> str | None:
    col = columns.get(key, key)
    if col in frame.columns:
        return col
    if not required:
        return None
    from scalinglab.errors import did_you_mean

    # unmapped: say how to name it (the released curves call their run column 'schedule')
    how = (f"; name the {key}'s column with --map {key}=COLUMN (columns={{'{key}': COLUMN}} "
           "from Python)" if col == key else "")
    raise InputError(f"no column {col!r} for the {key}{did_you_mean(col, list(map(str, frame.columns)))}"
                     f"; columns: {', '.join(map(str, frame.columns))}{how}", source=source,
                     column=col)


def curve_runs(frame: pd.DataFrame, columns: Mapping[str, str] | None = None,
               schedules: Mapping[str, Schedule] | None = None, min_step: int | None = None,
               source: str = "frame", warmup: int | None = None) -> tuple[list[CurveRun], list[str]]:
    """The runs of a long frame (a row per logged step), each with its schedule; and notes.

    The lr comes from ``schedules`` (run id -> per-step schedule) when given, otherwise from the
    lr column (rows of every step: exact; logged steps only: integrated, see
    :meth:`Schedule.from_logged`). Rows without a loss are normal (an lr logged where the loss
    was not) and only inform the schedule. The fit uses the points after each run's warmup
    (and from ``min_step`` on). ``warmup``: see :meth:`Schedule.from_logged`.
    """
    columns = dict(as_mapping(columns, "columns", "{'run': 'schedule', 'step': 'iter'}"))
    unknown = set(columns) - {"run", "step", "lr", "loss"}
    if unknown:
        raise ParameterError(f"columns: unknown key(s) {', '.join(sorted(unknown))}; the keys are "
                             "run, step, lr, loss", "columns")
    run_col = _column(frame, columns, "run", source)
    step_col = _column(frame, columns, "step", source)
    loss_col = _column(frame, columns, "loss", source)
    lr_col = _column(frame, columns, "lr", source, required=not schedules)
    from scalinglab.runs.cells import parse_cells, show_cell

    # the one cell grammar of the package (3e-4, 2,048, 125M; blank, NaN, null: missing)
    parsed = {}
    for name, col in (("step", step_col), ("loss", loss_col), ("lr", lr_col)):
        if col is None:
            continue
        cells = parse_cells(frame[col])
        bad = np.flatnonzero(cells.bad)
        if bad.size:
            raise InputError(f"{show_cell(frame[col].iloc[bad[0]])} is not a number ({name})",
                             source=source, row=f"row {bad[0] + 1}", column=col)
        parsed[name] = cells.values
    steps_all, loss_all = parsed["step"], parsed["loss"]
    lr_all = parsed.get("lr", np.full(len(frame), np.nan))
    bad = np.flatnonzero(~np.isfinite(steps_all))  # inf was an OverflowError traceback
    if bad.size:
        raise InputError("no step" if np.isnan(steps_all[bad[0]]) else f"step {steps_all[bad[0]]:g} is "
                         "not a step number", source=source, row=f"row {bad[0] + 1}", column=step_col)
    # inf passed '> 0' and reached the least-squares starts as a numpy traceback
    bad = np.flatnonzero(~np.isnan(loss_all) & ~((loss_all > 0) & np.isfinite(loss_all)))
    if bad.size:
        v = loss_all[bad[0]]
        raise InputError(f"loss {v:g} is not {'finite' if v > 0 else 'positive'}", source=source,
                         row=f"row {bad[0] + 1}", column=loss_col)
    runs: list[CurveRun] = []
    notes: list[str] = []
    ids = frame[run_col].astype(str).to_numpy()
    for run_id in pd.unique(ids):
        rows = np.flatnonzero(ids == run_id)
        st, ls, lr = steps_all[rows], loss_all[rows], lr_all[rows]
        if schedules and run_id in schedules:
            sched = schedules[run_id]
        else:
            if lr_col is None:
                raise ParameterError(f"run {run_id!r}: no schedule given and no lr column",
                                     "schedules")
            has = ~np.isnan(lr)
            if not has.any():
                raise InputError(f"run {run_id!r} has no lr at any step", source=source,
                                 column=lr_col)
            try:
                sched = Schedule.from_logged(st[has], lr[has], name=run_id,
                                             total_steps=int(st.max()) + 1, source=source,
                                             warmup=warmup)
            except InputError as exc:
                raise InputError(f"run {run_id!r}: {exc.detail}", source=source,
                                 column=exc.column) from None
            if not sched.exact and sched.note:
                notes.append(f"{run_id}: {sched.note}")
        keep = ~np.isnan(ls) & (st > sched.peak_step)
        if min_step is not None:
            keep &= st >= min_step
        if (st[keep] > sched.last_step).any():
            raise InputError(f"run {run_id!r}: loss logged at step {int(st[keep].max())}, past "
                             f"its schedule's last step {sched.last_step}", source=source)
        order = np.argsort(st[keep], kind="stable")
        s_keep, l_keep = st[keep][order].astype(np.int64), ls[keep][order]
        if s_keep.size and (np.diff(s_keep) == 0).any():
            dup = int(s_keep[np.flatnonzero(np.diff(s_keep) == 0)[0]])
            raise InputError(f"run {run_id!r} has two losses at step {dup}", source=source,
                             column=step_col)
        runs.append(CurveRun(str(run_id), sched.renamed(str(run_id)), s_keep, l_keep))
    return runs, notes


def read_schedule(path: str | Path, columns: Mapping[str, str] | None = None,
                  total_steps: int | None = None) -> Schedule:
    """A schedule from a file with a step and an lr column (CSV/TSV/Parquet/JSONL; rows with no lr
    skipped): every step gives an exact schedule, fewer an integrated one."""
    from scalinglab.runs.io import read_table

    path = Path(path)
    frame = read_table(path)
    cols = {"step": "step", "lr": "lr", **(columns or {})}
    for key, col in cols.items():
        if col not in frame.columns:
            raise InputError(f"no column {col!r} (the schedule's {key}); columns: "
                             f"{', '.join(map(str, frame.columns))}", source=str(path), column=col)
    from scalinglab.runs.cells import parse_cells, show_cell

    if "run" in frame.columns and frame["run"].nunique() > 1:
        # a file of several runs' logs (fit curves' input) read as one schedule interleaved
        # their lr values into one nonsense schedule, silently
        names = [str(v) for v in pd.unique(frame["run"].dropna())]
        raise InputError(f"a schedule file holds one run's lr, not {len(names)} runs ("
                         f"{', '.join(names[:3])}{' ...' if len(names) > 3 else ''})",
                         source=str(path), column="run")
    steps = pd.to_numeric(frame[cols["step"]], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(steps))
    if bad.size:
        raise InputError("not a step number", source=str(path), row=f"row {bad[0] + 1}",
                         column=cols["step"])
    # an empty lr cell is skipped; text such as 'abc' was skipped too, silently (coerced to NaN)
    cells = parse_cells(frame[cols["lr"]])
    bad = np.flatnonzero(cells.bad)
    if bad.size:
        raise InputError(f"{show_cell(frame[cols['lr']].iloc[bad[0]])} is not a number",
                         source=str(path), row=f"row {bad[0] + 1}", column=cols["lr"])
    lr = cells.values
    keep = ~np.isnan(lr)
    sched = Schedule.from_logged(steps[keep], lr[keep], name=path.stem, total_steps=total_steps,
                                 source=str(path))
    return Schedule(sched.lr, path.stem, sched.exact, sched.note, spec=str(path))


def to_schedule(schedule: Schedule | str | pd.DataFrame | Sequence[float] | np.ndarray) -> Schedule:
    """A :class:`Schedule` from a schedule, a spec (``cosine:...``) or file, a frame with step and
    lr columns (sparse steps are integrated), or the lr of every step."""
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, str | Path):
        return parse_schedules(str(schedule), reader=read_schedule)[0]
    if isinstance(schedule, pd.DataFrame):
        for col in ("step", "lr"):
            if col not in schedule.columns:
                raise ParameterError(f"a schedule frame needs columns step and lr (no {col!r})",
                                     "schedule")
        f = schedule.dropna(subset=["lr"])
        return Schedule.from_logged(f["step"].to_numpy(float), f["lr"].to_numpy(float))
    return Schedule(np.asarray(schedule, dtype=float))


# -- the objective ------------------------------------------------------------------------------

def huber_lm(law: CurveLaw, design: CurveDesign, log_loss: np.ndarray, theta0: np.ndarray,
             weights: np.ndarray | None = None, delta: float = HUBER_DELTA, max_iter: int = 300,
             ftol: float = 1e-10, prior: tuple[np.ndarray, np.ndarray] | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise ``sum_i w[k, i] huber(log Lhat_i - log L_i) / delta`` from every row of ``theta0``
    (K, P) at once: Levenberg-Marquardt on the Huber loss's iteratively reweighted least squares
    (weights ``min(1, delta/|r|)``, a quadratic majoriser, so an accepted step lowers the Huber
    objective itself), Marquardt's diagonal damping, one damping factor per row.

    Why not :func:`scalinglab.fit.optimize.batched_lbfgs`: the multi-power law's Hessian in log
    parameters spans ~8 orders of magnitude (L0 against the decay term's C, beta, gamma). On the
    25M fit, L-BFGS from the 8 best starts stopped on its relative-decrease test after 23-84
    iterations at objectives 0.121-0.133, against 0.1085 at the optimum (and needed 200-370
    iterations, 3,400 evaluations, with the tests tightened); this reaches 0.1085 in 80-130
    Gauss-Newton iterations from the same starts, and in ~10-30 from a warm start.

    ``prior``: ``(centre, precision)``, each (P,): adds ``0.5 * sum_p precision_p * (theta_p -
    centre_p)^2`` to the objective (a Gaussian prior on the log-parameters, in the objective's
    units; precision 0: no prior on that parameter), see :func:`shrinkage_prior`.

    Returns ``(theta, f, iterations)`` per row (f inf where a row never had a finite value).
    """
    theta = np.array(theta0, dtype=float, copy=True)
    K, P = theta.shape
    W = np.ones((K, log_loss.size)) if weights is None else np.asarray(weights, dtype=float)
    if prior is not None:
        mu, prec = (np.asarray(v, dtype=float) for v in prior)
        if not prec.any():
            prior = None

    def evaluate(th: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):
            L, J = law.evaluate(th, design)
            r = np.log(L) - log_loss
            Jr = J / L[..., None]
            a = np.abs(r)
            f = np.sum(W[rows] * np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)),
                       axis=1) / delta
            if prior is not None:
                f = f + 0.5 * np.sum(prec * np.nan_to_num(th - mu) ** 2, axis=1)
        ok = np.isfinite(f) & np.isfinite(Jr).all(axis=(1, 2))
        return np.where(ok, f, np.inf), r, Jr

    f, r, Jr = evaluate(theta, np.arange(K))
    lam = np.full(K, 1e-3)
    iters = np.zeros(K, dtype=int)
    active = np.isfinite(f)
    eye = np.eye(P)[None]
    for _ in range(max_iter):
        a = np.flatnonzero(active)
        if not a.size:
            break
        with np.errstate(all="ignore"):
            om = W[a] * np.minimum(1.0, delta / np.maximum(np.abs(r[a]), 1e-300))
            H = np.einsum("kn,knp,knq->kpq", om, Jr[a], Jr[a])
            g = np.einsum("kn,knp,kn->kp", om, Jr[a], r[a])
            if prior is not None:
                # H and g above are delta times the objective's (the 1/delta left out), so the
                # prior's curvature and gradient enter times delta too
                H = H + delta * np.diag(prec)[None]
                g = g + delta * prec * np.nan_to_num(theta[a] - mu)
            diag = np.maximum(np.einsum("kpp->kp", H), 1e-12 * np.abs(H).max(axis=(1, 2))[:, None])
            A = H + lam[a][:, None, None] * eye * diag[:, :, None]
            step = _solve(A, g)
        trial = theta[a] + step
        fn, rn, Jn = evaluate(trial, a)
        better = fn < f[a]
        b = a[better]
        rel = (f[b] - fn[better]) / np.maximum(f[b], 1e-300)
        theta[b], r[b], Jr[b], f[b] = trial[better], rn[better], Jn[better], fn[better]
        lam[b] = np.maximum(lam[b] / 3.0, 1e-12)
        worse = a[~better]
        lam[worse] *= 4.0
        iters[a] += 1
        active[b[rel < ftol]] = False
        active[worse[lam[worse] > 1e12]] = False
    return theta, f, iters


def _solve(A: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Damped normal equations per row; a singular or non-finite row gets no step."""
    out = np.zeros_like(g)
    ok = np.isfinite(A).all(axis=(1, 2)) & np.isfinite(g).all(axis=1)
    if ok.any():
        try:
            out[ok] = -np.linalg.solve(A[ok], g[ok][..., None])[..., 0]
        except np.linalg.LinAlgError:
            for i in np.flatnonzero(ok):
                out[i] = -np.linalg.lstsq(A[i], g[i], rcond=None)[0]
    return out


def _block_weights(lengths: Sequence[int], n_draws: int, rng: np.random.Generator,
                   block: int) -> np.ndarray:
    """(n_draws, n_points) moving-block bootstrap counts, each run resampled on its own."""
    out = np.zeros((n_draws, int(sum(lengths))))
    offset = 0
    for n in lengths:
        b = max(1, min(block, n))
        n_blocks = math.ceil(n / b)
        starts = rng.integers(0, n - b + 1, size=(n_draws, n_blocks))
        for j in range(b):
            np.add.at(out, (np.repeat(np.arange(n_draws), n_blocks), (offset + starts + j).ravel()), 1.0)
        # trim back to n points per run on average: scale the counts
        out[:, offset:offset + n] *= n / (n_blocks * b)
        offset += n
    return out


def leave_one_run_out(law: CurveLaw, runs: Sequence[CurveRun], theta: np.ndarray,
                      delta: float = HUBER_DELTA, resamples: int = 0,
                      rng: np.random.Generator | None = None, block: int = 10,
                      prior: tuple[np.ndarray, np.ndarray] | None = None,
                      predictions: dict[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Each run predicted by the law fitted on the other runs: how far the law strays on a
    schedule it was not fitted on (the held-out check the fit can make on its own data).

    The refits start from the full fit's estimate (``theta``) and from the law's best screened
    start, the better one kept. Per run: ``run``, ``points``, ``mean_error`` and ``max_error``
    (relative), ``rms_log`` (root mean square of the log errors) and ``final_error`` (signed,
    relative, at the run's last point) and ``param_var``: the variance of the predicted log-loss
    over ``resamples`` block-bootstrap refits (0 without), the part of the error that the refit's
    own noise explains. Empty with fewer than three runs (a law fitted on a single run has no
    decay term to speak of). ``predictions``: a dict that receives each left-out run's predicted
    loss (run id -> array), what stacking weighs."""
    if len(runs) < 3:
        return []
    rng = rng if rng is not None else np.random.default_rng(0)
    out = []
    for j, left in enumerate(runs):
        rest = [r for i, r in enumerate(runs) if i != j]
        design = law.prepare([r.schedule for r in rest], [r.steps for r in rest], FIT_RATIO)
        loss = np.concatenate([r.loss for r in rest])
        log_loss = np.log(loss)
        starts = law.starts(design, loss)
        f0 = huber_lm(law, design, log_loss, starts, delta=delta, max_iter=0, prior=prior)[1]
        theta0 = np.vstack([theta[None], starts[np.argsort(f0)[:1]]])
        x, f, _ = huber_lm(law, design, log_loss, theta0, delta=delta, prior=prior)
        if not np.isfinite(f).any():
            continue
        best = x[int(np.argmin(f))]
        held = law.prepare([left.schedule], [left.steps], PREDICT_RATIO)
        with np.errstate(all="ignore"):
            log_err = np.log(law.evaluate(best[None], held, grad=False)[0][0]) - np.log(left.loss)
        if not np.isfinite(log_err).all():
            continue
        if predictions is not None:
            predictions[left.run_id] = np.exp(log_err) * left.loss
        param_var = 0.0
        if resamples:
            # the refit's own noise: the same block bootstrap as the fit's, on the other runs
            W = _block_weights([r.steps.size for r in rest], resamples, rng, block)
            bx, bf, _ = huber_lm(law, design, log_loss, np.repeat(best[None], resamples, axis=0),
                                 weights=W, delta=delta, prior=prior)
            with np.errstate(all="ignore"):
                logs = np.log(law.evaluate(bx[np.isfinite(bf)], held, grad=False)[0])
            logs = logs[np.isfinite(logs).all(axis=1)]
            if len(logs) > 1:
                param_var = float(np.mean(np.var(logs, axis=0, ddof=1)))
        out.append(_held_out_row(left, np.expm1(log_err), log_err, param_var))
    return out


def _held_out_row(run: CurveRun, rel: np.ndarray, log_err: np.ndarray, param_var: float
                  ) -> dict[str, Any]:
    """One run's row of :attr:`CurveFit.validation` from its left-out prediction's relative
    and log errors (``rel``, ``log_err``, one per point): the fields :func:`leave_one_run_out`
    documents, which a stack's nested leave-one-run-out fills alike."""
    return {"run": run.run_id, "points": int(run.steps.size),
            "mean_error": float(np.mean(np.abs(rel))), "max_error": float(np.max(np.abs(rel))),
            "rms_log": float(np.sqrt(np.mean(log_err ** 2))),
            "final_error": float(rel[-1]), "param_var": param_var}


def _select_law(runs: Sequence[CurveRun], delta: float
                ) -> tuple[CurveLaw, float, dict[str, float], str]:
    """``law="auto"``: among the catalogued laws, the multi-power law also with each shrinkage
    of ``SHRINK_GRID``, the one whose leave-one-run-out predictions (each run from the law
    fitted on the others) have the lowest mean relative error; the multi-power law, unshrunk,
    where fewer than three runs leave nothing to validate on. Returns the law, its shrinkage,
    each candidate's error, and a note that says what was chosen and why."""
    if len(runs) < 3:
        return (get_curve_law("multipower"), 0.0, {},
                f"law='auto': {len(runs)} runs leave none out to validate on; the multi-power law "
                "kept")
    scores: dict[str, float] = {}
    chosen: dict[str, tuple[str, float]] = {}
    for name, strength in _candidates():
        label = name if not strength else f"{name} shrink={strength:g}"
        fit = fit_curves(list(runs), law=name, bootstrap=0, delta=delta, shrink=strength)
        if len(fit.validation) == len(runs):
            scores[label] = float(np.mean([v["mean_error"] for v in fit.validation]))
            chosen[label] = (name, strength)
    if not scores:
        raise NotIdentifiable("law='auto': no curve law could be validated on these runs")
    best = min(scores, key=scores.__getitem__)
    shown = ", ".join(f"{n} {100 * e:.3f}%" for n, e in scores.items())
    return (get_curve_law(chosen[best][0]), chosen[best][1], scores,
            f"law='auto': {best} chosen by leave-one-run-out (each run predicted by the law fitted "
            f"on the others; mean relative error {shown})")


def _candidates() -> list[tuple[str, float]]:
    """The (law, shrinkage) pairs ``law="auto"`` and ``law="stack"`` weigh: every catalogued
    law, the multi-power law also with each shrinkage of ``SHRINK_GRID``."""
    from scalinglab.laws.curves import CURVE_LAWS

    return [(name, strength) for name, cls in CURVE_LAWS.items()
            for strength in (0.0, *(SHRINK_GRID if cls.prior_centre else ()))]


def stack_weights(relative: Sequence[np.ndarray]) -> np.ndarray:
    """Stacking weights: ``w >= 0``, ``sum w = 1``, least squares of the weighted relative errors
    ``sum_k w_k (pred_k / loss - 1)`` over the left-out runs' points, each run weighing the same
    (its points 1/n each). ``relative``: one (n_run, K) array of relative errors per run."""
    from scipy.optimize import nnls

    X = np.vstack([r / math.sqrt(len(r)) for r in relative])
    scale = float(np.sqrt(np.mean(X ** 2))) or 1.0
    big = 1e3 * scale * math.sqrt(len(X))
    # the sum-to-one constraint as a heavily weighted extra row (target: the same weight)
    A = np.vstack([X, np.full((1, X.shape[1]), big)])
    b = np.concatenate([np.zeros(len(X)), [big]])
    w, _ = nnls(A, b)
    return w / w.sum() if w.sum() > 0 else np.full(X.shape[1], 1.0 / X.shape[1])


def _fit_stack(runs: Sequence[CurveRun], notes: list[str], bootstrap: int, resample: str,
               level: float, seed: int, delta: float, block: int, started: float) -> CurveFit:
    """``law="stack"``: every candidate of :func:`_candidates` fitted on its own; each run
    predicted by each candidate fitted on the other runs; the weights that make the weighted
    prediction of the left-out runs best (:func:`stack_weights`); each candidate with weight
    fitted again with the bootstrap (the same resamples for all); the fit's leave-one-run-out
    rows are the stack's own, nested (each run predicted with the weights the other runs'
    predictions give), and its schedule discrepancy comes from them."""
    if len(runs) < 3:
        raise NotIdentifiable(f"law='stack' weighs the laws by how they predict runs left out of "
                              f"the fit: it needs 3 runs or more, not {len(runs)}")
    labels, laws, strengths, preds, scores = [], [], [], [], {}
    for name, strength in _candidates():
        fit0 = fit_curves(list(runs), law=name, bootstrap=0, delta=delta, shrink=strength,
                          validate=False)
        p: dict[str, np.ndarray] = {}
        val = leave_one_run_out(fit0.law, runs, fit0.theta, delta,
                                prior=shrinkage_prior(fit0.law, strength), predictions=p)
        label = name if not strength else f"{name}~{strength:g}"
        if len(val) == len(runs):
            labels.append(label)
            laws.append(fit0.law)
            strengths.append(strength)
            preds.append(p)
            scores[label] = float(np.mean([v["mean_error"] for v in val]))
    if not labels:
        raise NotIdentifiable("law='stack': no curve law could be validated on these runs")
    rel = [np.column_stack([pr[r.run_id] / r.loss - 1.0 for pr in preds]) for r in runs]
    weights = stack_weights(rel)
    # the stack's own leave-one-run-out, nested: each run's weights from the other runs alone
    validation = []
    for j, r in enumerate(runs):
        w = stack_weights([x for i, x in enumerate(rel) if i != j])
        err = rel[j] @ w
        validation.append(_held_out_row(r, err, np.log1p(err), 0.0))
    keep = np.flatnonzero(weights > 1e-3)
    w_keep = weights[keep] / weights[keep].sum()
    fits = [fit_curves(list(runs), law=laws[k].name, bootstrap=bootstrap, resample=resample,
                       level=level, seed=seed, delta=delta, block=block, validate=False,
                       shrink=strengths[k]) for k in keep]
    law = StackedLaw([{"label": labels[k], "weight": float(w), "law": laws[k]}
                      for k, w in zip(keep, w_keep, strict=True)])
    params = {f"{labels[k]}:{p}": v for k, f in zip(keep, fits, strict=True)
              for p, v in f.params.items()}
    draws = None
    if bootstrap and all(f.draws is not None for f in fits):
        draws = np.hstack([f.draws for f in fits if f.draws is not None])
    design = law.prepare([r.schedule for r in runs], [r.steps for r in runs], FIT_RATIO)
    theta = np.log([params[p] for p in law.params])
    fitted = law.evaluate(theta[None], design, grad=False)[0][0]
    loss = np.concatenate([r.loss for r in runs])
    logres = np.log(fitted) - np.log(loss)
    sigma = float(1.4826 * np.median(np.abs(logres - np.median(logres))))
    objective = float(np.sum(huber(logres, delta)) / delta)
    points: dict[str, dict[str, Any]] = {}
    offset = 0
    for r in runs:
        n = r.steps.size
        points[r.run_id] = {**fits[0].points[r.run_id], "fitted": fitted[offset:offset + n]}
        offset += n
    shown = ", ".join(f"{lb} {100 * e:.3f}%" for lb, e in scores.items())
    weighed = ", ".join(f"{lb} {w:.2f}" for lb, w in zip(law.labels, law.weights, strict=True))
    nested = float(np.mean([v["mean_error"] for v in validation]))
    notes = [*fits[0].notes[:1], *notes,
             f"law='stack': each run predicted by each law fitted on the other runs (mean "
             f"relative error {shown}); weights {weighed} (the weighted prediction of the left-out "
             f"runs best in least squares, w >= 0, sum 1); nested, the stack's own leave-one-run-"
             f"out error is {100 * nested:.3f}%",
             "bootstrap draws: each from one law, the laws drawn in proportion to their weights, "
             "so bands hold the laws' disagreement; leave-one-run-out refit spread not "
             "subtracted from the discrepancy (param_var 0): bands for unfitted schedules err wide"]
    warnings = [f"{lb}: {w}" for lb, f in zip(law.labels, fits, strict=True) for w in f.warnings
                if "orders of magnitude" not in w]
    return CurveFit(law=law, params=params, draws=draws, run_ids=tuple(r.run_id for r in runs),
                    points=points, sigma=sigma, level=level, resample=fits[0].resample,
                    objective=objective, fit_seconds=time.perf_counter() - started, seed=seed,
                    warnings=warnings, notes=notes, validation=validation,
                    discrepancy=schedule_discrepancy(validation, sigma), selection=scores)


def shrinkage_prior(law: CurveLaw, strength: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``prior`` of :func:`huber_lm` that ``fit_curves(..., shrink=strength)`` adds: a
    Gaussian on the log of each parameter in the law's :attr:`~CurveLaw.prior_centre`, penalty
    ``strength/2 * sum (log p - log p0)^2`` in the objective's units (its data part is
    ``sum huber(r)/delta``, ~0.02-0.11 on the released runs); None for strength 0."""
    if strength < 0 or not math.isfinite(strength):
        raise ParameterError(f"shrink must be a number >= 0, not {strength!r}", "shrink")
    if strength == 0:
        return None
    if not law.prior_centre:
        raise ParameterError(f"the {law.title} has no parameters to shrink (shrink applies to "
                             "the multi-power law's decay shape)", "shrink")
    centre = np.zeros(len(law.params))
    precision = np.zeros(len(law.params))
    for name, value in law.prior_centre.items():
        i = law.params.index(name)
        centre[i], precision[i] = math.log(value), strength
    return centre, precision


def schedule_discrepancy(validation: Sequence[Mapping[str, Any]], sigma: float) -> float:
    """The law's own error on an unseen schedule, on the log scale: the root mean square
    leave-one-run-out log error (pooled over the left-out runs, each run weighted equally) less
    the residual noise that a band already holds and the variance that the refit's parameters'
    own noise explains (``param_var``, from bootstrap refits, see :func:`leave_one_run_out`):
    ``sqrt(max(0, mean (rms^2 - param_var) - sigma^2))``; 0 without validation. Where the law
    is right (simulated curves) this is ~0 and bands keep their nominal coverage; where it is
    not, it is the error a schedule unlike the fitted ones has been seen to carry."""
    if not validation:
        return 0.0
    ms = float(np.mean([v["rms_log"] ** 2 - v.get("param_var", 0.0) for v in validation]))
    return float(math.sqrt(max(0.0, ms - sigma ** 2)))


def draw_band(curves: np.ndarray, noise: float, discrepancy: float, level: float, seed: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise percentile band of the bootstrap curves (``curves``' rows after the first, the
    point estimate), each widened on the log scale by ``NOISE_DRAWS`` draws of the residual
    ``noise`` (point by point) and of the schedule ``discrepancy`` (one shift per curve); NaN
    with no bootstrap curves. The one place bands are drawn: :meth:`CurveFit.predict`,
    :meth:`CurveFit.compare` and :func:`forecast` with a fit all call it."""
    if len(curves) <= 1:
        nan = np.full(curves.shape[1], np.nan)
        return nan, nan.copy()
    z = None
    if noise > 0 or discrepancy > 0:
        rng = np.random.default_rng(seed)
        # one draw per curve serves every point: the band is pointwise
        z = noise * rng.standard_normal((len(curves) - 1, NOISE_DRAWS, 1))
        if discrepancy > 0:
            z = z + discrepancy * rng.standard_normal((len(curves) - 1, NOISE_DRAWS, 1))
        # (NOISE_DRAWS, K): the widening of curve k, its j-th draw, at [j, k]
        z = np.ascontiguousarray(z[:, :, 0].T)
    # pointwise, so taken a slice of points at a time: the widened draws are (K * NOISE_DRAWS,
    # points), 1.1 GB in one piece for 100 draws at every step of a 72,000-step schedule
    n = curves.shape[1]
    lo, hi = np.empty(n), np.empty(n)
    per = max(1, BAND_ELEMENTS // ((len(curves) - 1) * (NOISE_DRAWS if z is not None else 1)))
    # each point's widened draws in a contiguous row, (points, NOISE_DRAWS * K), where the
    # interval selects its ends (stats._linear_ends) in place: every value the sum it was
    # before (the log of curve k plus its j-th widening), only their order along the row
    # differs, and a percentile does not depend on it. One buffer serves every slice: a fresh
    # 16 MB array per slice cost more in page faults than building its values
    buf = None if z is None else np.empty(min(per, n) * z.size)
    for a in range(0, n, per):
        part = curves[1:, a:a + per]
        logs = np.log(np.where(part > 0, part, np.nan))
        if buf is None:
            lo[a:a + per], hi[a:a + per] = percentile_interval(logs, level)
            continue
        m = logs.shape[1]
        wide = buf[:m * z.size].reshape(m, z.size)
        np.add(logs.T[:, None, :], z[None, :, :], out=wide.reshape(m, *z.shape))
        lo[a:a + per], hi[a:a + per] = percentile_interval(wide, level, axis=-1,
                                                           overwrite_input=True)
    return np.exp(lo), np.exp(hi)


# -- the result ---------------------------------------------------------------------------------

@dataclass(repr=False)
class CurveFit(Result):
    """A loss-curve law fitted to runs' curves: parameters with intervals, the fitted points, and
    predictions for any schedule (:meth:`predict`, :meth:`compare`, :meth:`best_wsd`)."""

    kind: ClassVar[str] = "curve_fit"

    law: CurveLaw
    params: dict[str, float]
    draws: np.ndarray | None
    run_ids: tuple[str, ...]
    #: per run: steps, observed loss, fitted loss, the lr at those steps, how the lr was known
    points: dict[str, dict[str, Any]]
    sigma: float
    level: float = 0.95
    resample: str = "blocks"
    objective: float = float("nan")
    fit_seconds: float = float("nan")
    seed: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: leave-one-run-out: each run predicted by the law fitted on the others
    #: (:func:`leave_one_run_out`), and the schedule discrepancy it gives (log scale)
    validation: list[dict[str, Any]] = field(default_factory=list)
    discrepancy: float = 0.0
    #: with ``law="auto"``: each catalogued law's mean leave-one-run-out error
    selection: dict[str, float] = field(default_factory=dict)
    #: strength of the Gaussian prior on the law's loose parameters (:func:`shrinkage_prior`)
    shrink: float = 0.0

    @property
    def theta(self) -> np.ndarray:
        # a parameter fitted to exactly 0 (a decay term switched off) is -inf here and exp()
        # gives it back as 0, so the log's divide-by-zero warning says nothing a user can act on
        with np.errstate(divide="ignore"):
            return np.log([self.params[p] for p in self.law.params])

    def _thetas(self) -> np.ndarray:
        rows = [self.theta]
        if self.draws is not None and len(self.draws):
            ok = np.all(np.isfinite(self.draws) & (self.draws > 0), axis=1)
            rows += list(np.log(self.draws[ok]))
        return np.asarray(rows)

    def curve_draws(self, schedule: Schedule, steps: np.ndarray) -> np.ndarray:
        """The law at ``steps`` (K+1, n): the estimate first, then every bootstrap draw.

        Steps are taken in slices whose design stays small (:meth:`CurveLaw.designs`), so a
        prediction at every step of a long schedule needs no more memory than one at 400."""
        thetas = self._thetas()
        out = np.empty((len(thetas), len(steps)))
        for sl, design in self.law.designs(schedule, steps, PREDICT_RATIO):
            if isinstance(self.law, StackedLaw):
                self._stack_draws(thetas, design, out[:, sl])
            else:
                out[:, sl] = self.law.evaluate(thetas, design, grad=False)[0]
        return out

    def _stack_draws(self, thetas: np.ndarray, design: CurveDesign, out: np.ndarray) -> np.ndarray:
        """:meth:`curve_draws` of a stack: the estimate is the weighted mean of the laws; each
        bootstrap draw is one law's draw, the laws drawn in proportion to their weights
        (:meth:`StackedLaw.assign`; a mixture, so the band holds how far the laws disagree as
        well as each law's own spread). Each law is evaluated on its own draws only."""
        law = self.law
        assert isinstance(law, StackedLaw)
        out[0] = np.einsum("k,krn->rn", law.weights, law.components(thetas[:1], design))[0]
        pick = law.assign(len(thetas) - 1)
        for k, (sub, sl, d) in enumerate(zip(law.laws, law.slices, design.terms["designs"],
                                             strict=True)):
            rows = 1 + np.flatnonzero(pick == k)
            out[rows] = sub.evaluate(thetas[rows, sl], d, grad=False)[0]
        return out

    def _level(self, level: float | None) -> float:
        """``level`` checked, or the fit's own level when None (0 used to mean "the fit's level"
        through ``level or self.level``: a typo'd 0 silently gave 95% bands)."""
        return self.level if level is None else check_level(level)

    def _band(self, curves: np.ndarray, band: str, level: float, seed: int,
              discrepancy: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Percentile band of the bootstrap curves (rows after the first); ``prediction`` adds
        the residual noise point by point, ``discrepancy`` (log scale) a shift of each whole
        curve: the law's own error on a schedule unlike the fitted ones."""
        return draw_band(curves, self.sigma if band == "prediction" else 0.0, discrepancy,
                         level, seed)

    def predict(self, schedule: Schedule | str | pd.DataFrame | np.ndarray,
                steps: Sequence[int] | np.ndarray | None = None, level: float | None = None,
                band: str = "prediction") -> pd.DataFrame:
        """The loss along ``schedule`` at ``steps`` (default: ~400 steps after the warmup, the last
        step included): a frame with columns step, lr, loss, lo, hi.

        ``schedule``: a :class:`Schedule`, a spec or file (``cosine:steps=24000,peak=3e-4,...``), a
        frame of step and lr (every step, or sparse: integrated), or per-step lr values.
        ``band``: ``prediction`` (the loss as it will be logged: law and noise) or ``mean``.
        """
        if band not in ("prediction", "mean"):
            raise ParameterError(f"band must be 'prediction' or 'mean', not {band!r}", "band")
        level = self._level(level)
        sched = to_schedule(schedule)
        st = self._steps(sched, steps)
        curves = self.curve_draws(sched, st)
        lo, hi = self._band(curves, band, level, self.seed,
                            self.discrepancy_for(sched))
        out = pd.DataFrame({"step": st, "lr": sched.lr[st], "loss": curves[0], "lo": lo, "hi": hi})
        out.attrs["warnings"] = [w for w in [self.beyond_fitted(sched, int(st.max()))] if w]
        return out

    def is_fitted(self, schedule: Schedule) -> bool:
        """Whether ``schedule`` is one the law was fitted on (same length, same lr at every
        fitted point): its band needs no allowance for an unseen schedule."""
        for p in self.points.values():
            st = np.asarray(p["step"], dtype=np.int64)
            if (int(p.get("last_step", -1)) == schedule.last_step and st.size
                    and np.allclose(schedule.lr[st], p["lr"], rtol=1e-6, atol=0.0)):
                return True
        return False

    def discrepancy_for(self, schedule: Schedule) -> float:
        """The log-scale allowance a band for ``schedule`` carries for the law's own error on
        a schedule it was not fitted on: :attr:`discrepancy` (from leave-one-run-out), or 0 for
        a fitted schedule."""
        return 0.0 if self.discrepancy <= 0 or self.is_fitted(schedule) else self.discrepancy

    @property
    def longest_fitted(self) -> int:
        """The last step of the longest curve the law was fitted on."""
        return max((int(np.max(p["step"])) for p in self.points.values() if len(p["step"])),
                   default=0)

    def beyond_fitted(self, schedule: Schedule, last: int | None = None) -> str | None:
        """A warning when a prediction reaches past the longest fitted curve: the bootstrap
        resamples blocks within the fitted runs, so its band holds their noise, not how far a
        longer schedule strays from the law (on the multi-power law's released runs, a 3x longer
        cosine fell outside the 95% band at both sizes; with the leave-one-run-out discrepancy
        it falls inside at 25M, still outside at 100M: README, "Loss curves")."""
        last = schedule.last_step if last is None else last
        fitted = self.longest_fitted
        # 10% of slack: a run's last logged loss falls short of its schedule's end by the
        # logging interval, and predicting the fitted schedule itself is no extrapolation
        if not fitted or last <= 1.1 * fitted:
            return None
        held = (f" and the law's error on a run left out of the fit ({100 * self.discrepancy:.2g}%, "
                "at the fitted lengths)" if self.discrepancy > 0 else "")
        return (f"{schedule.spec or schedule.name}: step {last} is {last / fitted:.3g}x the longest "
                f"fitted curve ({fitted} steps); the band holds the fitted runs' noise{held}, not "
                "how the law's error grows that far out, so read it as a lower bound on the "
                "uncertainty")

    @staticmethod
    def _steps(sched: Schedule, steps: Sequence[int] | np.ndarray | None) -> np.ndarray:
        if steps is None:
            first = sched.peak_step + 1 if sched.peak_step + 1 < sched.steps else 0
            st = np.unique(np.round(np.linspace(first, sched.last_step, 400)).astype(np.int64))
            return st
        st = np.asarray(steps, dtype=float)
        if st.ndim != 1 or (st != np.round(st)).any():
            raise ParameterError("steps must be whole step numbers", "steps")
        if st.size and (st.min() < 0 or st.max() > sched.last_step):
            raise ParameterError(f"steps must lie in 0..{sched.last_step} (the schedule's "
                                 "steps)", "steps")
        if (st <= 0).any():
            raise ParameterError("the law is not defined at step 0 (no lr summed yet)", "steps")
        return st.astype(np.int64)

    def compare(self, schedules: Sequence[Schedule | str] | str, level: float | None = None,
                band: str = "mean") -> pd.DataFrame:
        """Schedules ranked by predicted final loss, with intervals and, from the joint draws,
        how often each is the best and its gap to the best (a frame, best first).

        ``band="mean"`` by default: the schedules are compared on the law, not on noise."""
        items = (parse_schedules(schedules, reader=read_schedule) if isinstance(schedules, str)
                 else [to_schedule(s) for s in schedules])
        if not items:
            raise ParameterError("no schedule to compare", "schedules")
        level = self._level(level)
        finals = np.stack([self.curve_draws(s, np.array([s.last_step]))[:, 0] for s in items])
        rows = []
        best = finals.argmin(axis=0)
        for i, s in enumerate(items):
            lo, hi = self._band(finals[i][:, None], band, level, self.seed,
                                self.discrepancy_for(s))
            gap = finals[i] - finals.min(axis=0)
            glo, ghi = percentile_interval(gap[1:], level) if finals.shape[1] > 1 else (np.nan, np.nan)
            rows.append({"schedule": s.spec or s.name, "steps": s.steps, "final_lr": s.lr[-1],
                         "loss": finals[i, 0], "lo": float(lo[0]), "hi": float(hi[0]),
                         "p_best": float(np.mean(best[1:] == i)) if finals.shape[1] > 1 else float("nan"),
                         "gap": float(gap[0]), "gap_lo": float(glo), "gap_hi": float(ghi)})
        out = pd.DataFrame(rows).sort_values("loss", kind="stable").reset_index(drop=True)
        out.insert(0, "rank", np.arange(1, len(out) + 1))
        out.attrs["warnings"] = [w for w in (self.beyond_fitted(s) for s in items) if w]
        return out

    def best_wsd(self, steps: int, peak: float, final: float, warmup: int = 0,
                 decay: str = "exp", decay_steps: Sequence[int] | None = None,
                 finals: Sequence[float] | None = None, level: float | None = None) -> pd.DataFrame:
        """The WSD schedule with the lowest predicted final loss at a fixed step budget.

        Searches the decay length (``decay_steps``, default 1%..60% of the steps) at the given
        ``final`` lr, or with ``finals`` the final lr at a decay length given in
        ``decay_steps`` (one value). Returns every candidate (decay_steps, final_lr, loss, lo,
        hi, p_best), best first; the interval of the best candidate across bootstrap draws is
        in ``frame.attrs['best']``.
        """
        level = self._level(level)
        steps, warmup = int(steps), int(warmup)
        if finals is None:
            lens = (np.asarray(decay_steps, dtype=int) if decay_steps is not None else
                    np.unique(np.round(np.linspace(0.01, 0.6, 40) * (steps - warmup)).astype(int)))
            lens = lens[(lens >= 1) & (lens < steps - warmup)]
            cands = [(int(n), float(final)) for n in lens]
        else:
            if decay_steps is None or len(decay_steps) != 1:
                raise ParameterError("with finals, give one decay length in decay_steps",
                                     "decay_steps")
            cands = [(int(decay_steps[0]), float(f)) for f in finals]
        if not cands:
            raise ParameterError("no decay length fits between the warmup and the last step",
                                 "decay_steps")
        scheds = [Schedule(wsd(steps, peak, f, warmup, decay_start=steps - n, decay=decay),
                           f"wsd decay {n} to {f:g}") for n, f in cands]
        finals_d = np.stack([self.curve_draws(s, np.array([s.last_step]))[:, 0] for s in scheds])
        best = finals_d.argmin(axis=0)
        rows = []
        for i, (n, f) in enumerate(cands):
            lo, hi = self._band(finals_d[i][:, None], "mean", level, self.seed, self.discrepancy)
            rows.append({"decay_steps": n, "final_lr": f, "loss": finals_d[i, 0],
                         "lo": float(lo[0]), "hi": float(hi[0]),
                         "p_best": float(np.mean(best[1:] == i)) if finals_d.shape[1] > 1 else float("nan")})
        out = pd.DataFrame(rows).sort_values("loss", kind="stable").reset_index(drop=True)
        key = "decay_steps" if finals is None else "final_lr"
        values = np.array([c[0] if finals is None else c[1] for c in cands], dtype=float)
        picked = values[best]
        lo, hi = percentile_interval(picked[1:], level) if len(picked) > 1 else (np.nan, np.nan)
        out.attrs["best"] = {key: float(values[best[0]]), "ci": [float(lo), float(hi)],
                             "loss": float(finals_d[best[0], 0])}
        return out

    def split_error(self, run: CurveRun, reference: CurveRun) -> pd.DataFrame:
        """Where the law's error on ``run`` comes from: its constant-lr part or its decay term.

        ``reference`` is an observed run whose lr stays constant after its warmup, the one
        schedule where every curve law here is its constant-lr part alone (``L0 + A S^-alpha``,
        the decay term zero) and which, by the laws' own premise, every schedule follows at the
        same summed lr S before its decay. At each point of ``run``, with ``P`` the reference's
        observed loss and ``Phat`` the law's prediction of the reference, both at the run's S
        (linear in S between the reference's logged points)::

            error        = pred / loss - 1
            power_error  = (Phat(S) - P(S)) / loss     the constant-lr part, extrapolated in S
            decay_error  = error - power_error          the decay term: (P - loss) - (Phat - pred)

        ``decay_error`` is the law's error on the loss reduction the schedule's decay brings over
        the constant lr at equal S. Both parts hold the run-to-run (seed) wander of the two
        observed curves (~0.07% on the released runs: constant_24000 against the first third of
        constant_72000). Returns a frame: step, S, loss, predicted, error, power_error,
        decay_error; NaN in the last two where S is outside the reference's logged range.
        """
        ref = reference.schedule
        moved = np.flatnonzero(~np.isclose(ref.lr[ref.peak_step:], ref.lr[ref.peak_step],
                                           rtol=1e-9, atol=0.0))
        if moved.size:
            raise ParameterError(f"reference {reference.run_id!r} changes its lr after the warmup "
                                 f"(at step {ref.peak_step + int(moved[0])}): only a constant lr "
                                 "leaves the decay term out", "reference")
        if reference.steps.size < 2:
            raise ParameterError("the reference needs two logged points or more", "reference")
        pred = self.curve_draws(run.schedule, run.steps)[0]
        ref_pred = self.curve_draws(ref, reference.steps)[0]
        S = run.schedule.cumulative[run.steps]
        S_ref = ref.cumulative[reference.steps]
        inside = (S >= S_ref[0]) & (S <= S_ref[-1])
        power = np.full(S.size, np.nan)
        power[inside] = (np.interp(S[inside], S_ref, ref_pred)
                         - np.interp(S[inside], S_ref, reference.loss)) / run.loss[inside]
        error = pred / run.loss - 1.0
        return pd.DataFrame({"step": run.steps, "S": S, "loss": run.loss, "predicted": pred,
                             "error": error, "power_error": power, "decay_error": error - power})

    # -- Result contract ----------------------------------------------------------------------
    def residuals(self) -> pd.DataFrame:
        """Every fitted point: run, step, lr, loss, fitted, relative error."""
        frames = [pd.DataFrame({"run": r, "step": p["step"], "lr": p["lr"], "loss": p["loss"],
                                "fitted": p["fitted"]}) for r, p in self.points.items()]
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["run", "step", "lr", "loss", "fitted"])
        out["rel_error"] = out["fitted"] / out["loss"] - 1.0
        return out

    def intervals(self) -> dict[str, tuple[float, float] | None]:
        if self.draws is None or not len(self.draws):
            return {p: None for p in self.law.params}
        lo, hi = percentile_interval(self.draws, self.level)
        return {p: (float(lo[i]), float(hi[i])) for i, p in enumerate(self.law.params)}

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        return tuple(self.law.params), self.draws

    def unpinned(self) -> list[str]:
        """Parameters whose bootstrap interval spans more than ``UNPINNED_DECADES`` decades: the
        runs pin down a combination of them, not each (the predicted curves can still be)."""
        if self.draws is None or not len(self.draws):
            return []
        ok = np.all(np.isfinite(self.draws) & (self.draws > 0), axis=1)
        if ok.sum() < 2:
            return []
        lo, hi = percentile_interval(np.log10(self.draws[ok]), self.level)
        return [p for p, a, b in zip(self.law.params, lo, hi, strict=True)
                if b - a > UNPINNED_DECADES]

    def summary(self) -> Summary:
        from scalinglab.stats import Estimate

        # the header says what the brackets hold (as `fit law` does): a bare "estimate [a, b]"
        # left users asking which interval, of what level
        head = "estimate" if self.draws is None else f"estimate [{self.level:.0%} interval]"
        pt = Table(f"{self.law.title}: {self.law.citation}", ["parameter", head], symbols=True)
        unpinned = self.unpinned()
        for i, p in enumerate(self.law.params):
            loose = p in unpinned
            pt.add_row(p, Estimate.from_draws(
                self.params[p], None if self.draws is None else self.draws[:, i], self.level,
                identified=not loose,
                note=(f"interval over more than {UNPINNED_DECADES:g} decades: only a combination "
                      f"with {', '.join(q for q in unpinned if q != p)} is pinned down")
                if loose and len(unpinned) > 1 else
                (f"interval over more than {UNPINNED_DECADES:g} decades") if loose else None))
        rt = Table("fit per run (relative error of the fitted loss)",
                   ["run", "points", "steps", "mean |error|", "max |error|", "lr"])
        res = self.residuals()
        for run, g in res.groupby("run", sort=False):
            e = g["rel_error"].abs()
            rt.add_row(run, len(g), f"{int(g.step.min())}..{int(g.step.max())}",
                       f"{100 * e.mean():.3f}%", f"{100 * e.max():.3f}%",
                       self.points[str(run)].get("lr_source", ""))
        facts = [("runs", str(self.n_runs)), ("points", str(len(res))),
                 ("residual spread (log, robust)", format_number(self.sigma)),
                 ("bootstrap", f"{0 if self.draws is None else len(self.draws)} resamples "
                               f"({self.resample})"),
                 ("fit time", f"{self.fit_seconds:.1f} s")]
        tables = [pt, rt]
        if self.validation:
            vt = Table("leave-one-run-out (each run predicted by the law fitted on the others)",
                       ["run", "points", "mean |error|", "max |error|", "final error"])
            for v in self.validation:
                vt.add_row(v["run"], v["points"], f"{100 * v['mean_error']:.3f}%",
                           f"{100 * v['max_error']:.3f}%", f"{100 * v['final_error']:+.3f}%")
            tables.append(vt)
            facts.append(("schedule discrepancy (log; bands for unfitted schedules)",
                          format_number(self.discrepancy)))
        if self.shrink:
            facts.append(("shrinkage (prior on log " + ", ".join(self.law.prior_centre) + ")",
                          f"{self.shrink:g}, towards " + ", ".join(
                              f"{k}={v:g}" for k, v in self.law.prior_centre.items())))
        if isinstance(self.law, StackedLaw):
            facts.append(("stack weights", ", ".join(
                f"{lb} {w:.2f}" for lb, w in zip(self.law.labels, self.law.weights, strict=True))))
        if self.selection:
            facts.append(("each law's leave-one-run-out error" if isinstance(self.law, StackedLaw)
                          else "law chosen by leave-one-run-out error",
                          ", ".join(f"{n} {100 * e:.3f}%" for n, e in self.selection.items())))
        return Summary(title=f"loss-curve law: {self.law.title}", tables=tables, facts=facts,
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def _repr_items(self) -> list[str]:
        first = self.law.params[0]
        return [self.law.name, f"{sum(len(p['step']) for p in self.points.values())} points",
                f"{first}={self.params[first]:.4g}"]

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        ci = self.intervals()
        out: dict[str, Any] = {
            "kind": self.kind, "law": self.law.to_dict(), "params": dict(self.params),
            "ci": {k: (None if v is None else list(v)) for k, v in ci.items()},
            "level": self.level, "sigma": self.sigma, "resample": self.resample,
            "objective": self.objective, "fit_seconds": self.fit_seconds, "seed": self.seed,
            "n_bootstrap": 0 if self.draws is None else len(self.draws),
            "run_ids": list(self.run_ids),
            "points": {r: {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in p.items()}
                       for r, p in self.points.items()},
            "warnings": list(self.warnings), "notes": list(self.notes),
            "validation": [dict(v) for v in self.validation], "discrepancy": self.discrepancy,
            "selection": dict(self.selection), "shrink": self.shrink,
        }
        if include_draws and self.draws is not None:
            out["draws"] = self.draws.tolist()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CurveFit:
        law = law_from_dict(data["law"])
        draws = data.get("draws")
        points = {str(r): {k: (np.asarray(v, dtype=float) if isinstance(v, list) else v)
                           for k, v in p.items()} for r, p in data["points"].items()}
        return cls(law=law, params={k: float(v) for k, v in data["params"].items()},
                   draws=None if draws is None else np.asarray(draws, dtype=float),
                   run_ids=tuple(data["run_ids"]), points=points, sigma=float(data["sigma"]),
                   level=float(data.get("level", 0.95)), resample=str(data.get("resample", "")),
                   objective=float(data.get("objective", float("nan"))),
                   fit_seconds=float(data.get("fit_seconds", float("nan"))),
                   seed=int(data.get("seed", 0)), warnings=list(data.get("warnings", [])),
                   notes=list(data.get("notes", [])),
                   validation=[dict(v) for v in data.get("validation", [])],
                   discrepancy=float(data.get("discrepancy", 0.0)),
                   selection={str(k): float(v) for k, v in data.get("selection", {}).items()},
                   shrink=float(data.get("shrink", 0.0)))


# -- fitting --------------------------------------------------------------------------------------

def fit_curves(
    frame: pd.DataFrame | Sequence[CurveRun],
    law: str | CurveLaw = "multipower",
    columns: Mapping[str, str] | None = None,
    bootstrap: int = 100,
    *,
    resample: str = "auto",
    level: float = 0.95,
    seed: int = 0,
    schedules: Mapping[str, Schedule] | None = None,
    min_step: int | None = None,
    warmup: int | None = None,
    delta: float = HUBER_DELTA,
    block: int = 10,
    source: str = "frame",
    validate: bool = True,
    shrink: float = 0.0,
    **law_settings: Any,
) -> CurveFit:
    """Fit a loss-curve law to the curves of several runs (see the module docstring).

    ``frame``: a long frame, a row per logged step, with run, step, lr and loss columns (named by
    ``columns``, e.g. ``{"run": "schedule"}``), or prepared :class:`CurveRun` s. ``schedules``: the
    exact per-step lr of runs that have it (run id -> :class:`Schedule`); ``warmup``: the steps
    of the runs' linear warmup where the log starts after it. ``bootstrap``:
    resamples (0: none); ``resample``: ``runs``, ``blocks`` (of ``block`` consecutive points) or
    ``auto``. ``law``: a catalogued law, or ``auto`` (the one that predicts best each run left
    out, :func:`_select_law`). ``law_settings``: the law's settings (the momentum law's ``decay``).
    ``validate``: with three runs or more, predict each run from the law fitted on the others
    (:func:`leave_one_run_out`); the excess of those errors over the residual noise is the
    schedule discrepancy that bands for unfitted schedules carry (:attr:`CurveFit.discrepancy`).
    ``shrink``: the strength of a Gaussian prior on the log of the law's loosely pinned parameters
    (the multi-power law's C, beta, gamma, towards its :attr:`~CurveLaw.prior_centre`;
    :func:`shrinkage_prior`); 0 (default) fits the law's plain objective; ``law="auto"`` chooses
    it from ``SHRINK_GRID`` by leave-one-run-out error.
    """
    started = time.perf_counter()
    select = isinstance(law, str) and law == "auto"
    stack = isinstance(law, str) and law == "stack"
    if (select or stack) and law_settings:
        raise ParameterError(f"law={law!r} takes no law settings (each law keeps its defaults)",
                             "law")
    if (select or stack) and shrink:
        raise ParameterError(f"law={law!r} chooses the shrinkage itself; leave shrink at 0",
                             "shrink")
    curve_law = get_curve_law("multipower" if select or stack else law, **law_settings)
    if resample not in ("auto", "runs", "blocks"):
        raise ParameterError(f"resample must be auto, runs or blocks, not {resample!r}", "resample")
    bootstrap = check_count(bootstrap, "bootstrap")
    check_level(level)
    if isinstance(frame, (list, tuple)) and frame and all(isinstance(r, CurveRun) for r in frame):
        runs, notes = list(frame), []
    else:
        runs, notes = curve_runs(as_table(frame, "frame"), columns, schedules, min_step, source, warmup)
    runs = [r for r in runs if r.steps.size]
    if stack:
        return _fit_stack(runs, notes, bootstrap, resample, level, seed, delta, block, started)
    selection: dict[str, float] = {}
    if select:
        curve_law, shrink, selection, note = _select_law(runs, delta)
        notes.append(note)
    prior = shrinkage_prior(curve_law, shrink)
    n_points = sum(r.steps.size for r in runs)
    if n_points < 2 * len(curve_law.params):
        raise NotIdentifiable(f"{n_points} points after the warmup for {len(curve_law.params)} "
                              f"parameters of the {curve_law.title}: too few to fit")
    design = curve_law.prepare([r.schedule for r in runs], [r.steps for r in runs], FIT_RATIO)
    loss = np.concatenate([r.loss for r in runs])
    warnings = curve_law.identified(design)
    log_loss = np.log(loss)

    # multi-start: screen the law's grid on the objective, polish the best few together
    starts = curve_law.starts(design, loss)
    f0 = huber_lm(curve_law, design, log_loss, starts, delta=delta, max_iter=0, prior=prior)[1]
    order = np.argsort(f0)[:N_POLISH]
    x, f, _ = huber_lm(curve_law, design, log_loss, starts[order], delta=delta, prior=prior)
    i_best = int(np.argmin(f))
    if not np.isfinite(f[i_best]):
        raise NotIdentifiable(f"the {curve_law.title} could not be fitted: every start gave a "
                              "non-finite objective")
    theta = x[i_best]
    params = dict(zip(curve_law.params, np.exp(theta).tolist(), strict=True))
    fitted = curve_law.evaluate(theta[None], design, grad=False)[0][0]
    logres = np.log(fitted) - log_loss
    sigma = float(1.4826 * np.median(np.abs(logres - np.median(logres))))

    # bootstrap: every resample in one batch, warm-started from the estimate
    draws = None
    how = resample if resample != "auto" else (
        "runs" if len(runs) >= MIN_RUNS_FOR_RUN_BOOTSTRAP else "blocks")
    if bootstrap:
        rng = np.random.default_rng(seed)
        lengths = [r.steps.size for r in runs]
        if how == "runs":
            if len(runs) < 2:
                raise ParameterError("resample='runs' needs at least two runs", "resample")
            unit = np.repeat(np.arange(len(runs)), lengths)
            W = bootstrap_weights(len(runs), bootstrap, rng, unit_of_row=unit)
        else:
            W = _block_weights(lengths, bootstrap, rng, block)
        bx, bf, _ = huber_lm(curve_law, design, log_loss, np.repeat(theta[None], bootstrap, axis=0),
                             weights=W, delta=delta, prior=prior)
        draws = np.exp(bx)
        draws[~np.isfinite(bf)] = np.nan
    points: dict[str, dict[str, Any]] = {}
    offset = 0
    for r in runs:
        n = r.steps.size
        points[r.run_id] = {"step": r.steps.astype(float), "loss": r.loss,
                            "fitted": fitted[offset:offset + n], "lr": r.schedule.lr[r.steps],
                            "lr_source": "per-step lr" if r.schedule.exact else "logged lr, integrated",
                            "last_step": r.schedule.last_step}
        offset += n
    if any(not r.schedule.exact for r in runs):
        notes.insert(0, "running lr sums integrated from the lr logged at the loss's steps "
                        "(linear between logged steps); give per-step schedules for exact sums")
    else:
        notes.insert(0, "running lr sums exact, from the lr of every step")
    notes.append(f"fitted on steps after each run's warmup; Huber(delta={delta:g}) on log-loss, "
                 f"{len(starts)} starts screened, {len(order)} polished (Levenberg-Marquardt)")
    if prior is not None:
        notes.append(f"shrink={shrink:g}: a Gaussian prior on log " + ", ".join(
            f"{k} (centre {v:g})" for k, v in curve_law.prior_centre.items()) + f", penalty "
            f"{shrink:g}/2 * sum (log p - log p0)^2 added to the objective, in the fit, its "
            "resamples and leave-one-run-out alike")
    validation = (leave_one_run_out(curve_law, runs, theta, delta, min(bootstrap, LORO_RESAMPLES),
                                    np.random.default_rng([seed, 1]), block, prior)
                  if validate else [])
    discrepancy = schedule_discrepancy(validation, sigma)
    if validation:
        worst = max(validation, key=lambda v: v["mean_error"])
        errors = ", ".join(f"{v['run']} {100 * v['mean_error']:.3f}%" for v in validation)
        notes.append(f"leave-one-run-out: each run predicted by the law fitted on the others, mean "
                     f"error {errors} (worst {worst['run']}); bands for schedules not fitted "
                     f"carry a discrepancy of {100 * discrepancy:.3f}% (log scale, one shift per "
                     "curve)")
    fit = CurveFit(law=curve_law, params=params, draws=draws,
                   run_ids=tuple(r.run_id for r in runs), points=points, sigma=sigma,
                   level=level, resample=how if bootstrap else "none",
                   objective=float(f[i_best]), fit_seconds=time.perf_counter() - started,
                   seed=seed, warnings=warnings, notes=notes, validation=validation,
                   discrepancy=discrepancy, selection=selection, shrink=float(shrink))
    unpinned = fit.unpinned()
    if unpinned:
        what = ("these runs pin down a combination of them, not each value: read the predicted "
                "curves and their bands, not these values" if len(unpinned) > 1 else
                "these runs do not pin it down (it trades off with the other parameters): read "
                "the predicted curves and their bands, not this value")
        fit.warnings.append(f"{', '.join(unpinned)}: the {level:.0%} bootstrap interval spans more "
                            f"than {UNPINNED_DECADES:g} orders of magnitude; {what}")
    return fit


# -- runs in the store ----------------------------------------------------------------------------

def store_schedule(record: Mapping[str, Any]) -> Schedule | None:
    """A store run's per-step schedule from what the sweep runner records (``extra``: steps,
    schedule; the run's peak ``lr``), with the sweep's defaults for what it does not record
    (warmup 5% of the steps, final lr 10% of the peak, WSD decay over the last 20%) — the same
    arithmetic as ``scalinglab.sweep.train.lr_at``. None when the record says too little."""
    extra = record.get("extra") or {}
    if isinstance(extra, str):
        import json

        extra = json.loads(extra or "{}")
    steps, shape, peak = extra.get("steps"), extra.get("schedule"), record.get("lr")
    if not steps or shape not in ("cosine", "wsd", "constant") or not peak or not peak > 0:
        return None
    steps = int(steps)
    warmup_frac = float(extra.get("warmup", 0.05))
    floor = float(peak) * float(extra.get("min_lr_ratio", 0.1))
    warm = max(1, int(round(warmup_frac * steps)))
    t = np.arange(steps, dtype=float)
    if shape == "constant":
        lr = np.full(steps, float(peak))
    elif shape == "wsd":
        start = steps - max(1, int(round(float(extra.get("decay_fraction", 0.2)) * steps)))
        frac = np.clip((t - start) / max(1, steps - start), 0.0, 1.0)
        lr = float(peak) - (float(peak) - floor) * frac
    else:
        frac = np.clip((t - warm) / max(1, steps - warm), 0.0, 1.0)
        lr = floor + 0.5 * (float(peak) - floor) * (1.0 + np.cos(np.pi * frac))
    lr[:warm] = float(peak) * (t[:warm] + 1.0) / warm
    return Schedule(lr, str(record.get("run_id", shape)), exact=True,
                    note="rebuilt from the run's recorded schedule and the sweep's defaults",
                    spec=f"{shape} ({steps} steps, peak {float(peak):g})")


def forecast(curve: pd.DataFrame, schedule: Schedule, fit: CurveFit | None = None,
             steps: Sequence[int] | np.ndarray | None = None, bootstrap: int = 100,
             level: float = 0.95, seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Where a run still training will go, from its curve so far (columns step, loss) and the
    schedule it follows to its last step: a frame (step, loss, lo, hi) at ``steps`` (default:
    ~100 steps from the last logged one to the schedule's last) and a dict about the forecast
    (final loss and interval, how it was made, warnings).

    With ``fit`` (a law fitted on finished runs of the same kind), the fit's exponents and decay
    term are kept, draw by draw, and only the run's level (L0, A of ``L0 + A S^-alpha + decay``,
    the form both curve laws share) is fitted to its own curve by least squares: the shape of
    finished curves, the level of this one. Its band holds the fit's draws and this run's residual
    noise and, for a schedule the law was not fitted on, the fit's schedule discrepancy
    (:meth:`CurveFit.discrepancy_for`, the same allowance :meth:`CurveFit.predict` carries; said
    in ``method``, its value in ``discrepancy``). Without, the law is fitted to the run's curve
    alone (its decay term is unidentified until its lr has decayed, said in the warnings).
    """
    st = curve["step"].to_numpy(dtype=float)
    ls = curve["loss"].to_numpy(dtype=float)
    keep = np.isfinite(ls) & (st > schedule.peak_step) & (st <= schedule.last_step)
    st, ls = st[keep].astype(np.int64), ls[keep]
    last = schedule.last_step
    if st.size < 3:
        raise NotIdentifiable(f"{st.size} logged points after the warmup: too few to forecast")
    if steps is None:
        steps = np.unique(np.linspace(st.max(), last, 100).round().astype(np.int64))
    steps = np.asarray(steps, dtype=np.int64)
    info: dict[str, Any] = {"logged_step": int(st.max()), "last_step": last, "points": int(st.size),
                            "warnings": []}
    if fit is None:
        own = fit_curves([CurveRun("run", schedule, st, ls)], bootstrap=bootstrap, level=level,
                         seed=seed)
        info["warnings"] = list(own.warnings)
        frame = own.predict(schedule, steps=steps)[["step", "loss", "lo", "hi"]]
        info["method"] = f"{own.law.title} fitted to this run's curve alone"
    else:
        # a schedule the law was not fitted on carries the law's leave-one-run-out discrepancy,
        # as in CurveFit.predict: the run's own level absorbs a constant offset but not how the
        # law's shape strays past the last logged step, so the full allowance is kept
        discrepancy = fit.discrepancy_for(schedule)
        frame = _transfer(fit, schedule, st, ls, steps, level, seed, discrepancy)
        info["method"] = f"{fit.law.title} from {fit.n_runs} runs, level fitted to this run"
        info["discrepancy"] = discrepancy
        if discrepancy > 0:
            info["method"] += (f"; band carries the schedule discrepancy {100 * discrepancy:.2g}% "
                               "(the law's leave-one-run-out error; this schedule is not one "
                               "it was fitted on)")
    final = frame.iloc[-1]
    info.update(loss=float(final["loss"]), lo=float(final["lo"]), hi=float(final["hi"]))
    return frame, info


def _transfer(fit: CurveFit, schedule: Schedule, st: np.ndarray, ls: np.ndarray,
              steps: np.ndarray, level: float, seed: int, discrepancy: float = 0.0
              ) -> pd.DataFrame:
    """``fit``'s law with L0 and A refitted to (st, ls), per draw, at ``steps``; the band holds
    the draws, this run's residual noise and ``discrepancy`` (:func:`draw_band`)."""
    law = fit.law
    thetas = fit._thetas()
    n = st.size
    # each draw's power and decay terms at the logged and the forecast steps, a slice of steps
    # per design (CurveLaw.designs): one design of a curve logged at every step to 36,000 of a
    # 72,000-step cosine (33,800 points) added 589 MB to the peak; a point's terms depend on its
    # own step alone, so the numbers are the same bit for bit
    power = np.empty((len(thetas), n + steps.size))
    rest = np.empty_like(power)
    for sl, design in law.designs(schedule, np.concatenate([st, steps]), PREDICT_RATIO):
        for i, th in enumerate(thetas):
            _, power[i, sl], rest[i, sl] = law.parts(th, design)
    out = np.empty((len(thetas), steps.size))
    resid = None
    for i in range(len(thetas)):
        # the law's shape (its power term's exponent, its decay term) from the fit, its level
        # (the constant and the power term's scale) from this run
        X = np.column_stack([np.ones(n), power[i, :n]])
        coef, *_ = np.linalg.lstsq(X, ls - rest[i, :n], rcond=None)
        out[i] = coef[0] + coef[1] * power[i, n:] + rest[i, n:]
        if resid is None:
            resid = np.log(X @ coef + rest[i, :n]) - np.log(ls)
    assert resid is not None
    sigma = float(1.4826 * np.median(np.abs(resid - np.median(resid))))
    lo, hi = draw_band(out, sigma, discrepancy, level, seed)
    return pd.DataFrame({"step": steps, "loss": out[0], "lo": lo, "hi": hi})
