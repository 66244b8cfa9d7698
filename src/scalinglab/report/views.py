"""What every figure shows, computed once from the results: the points, curves and bands that
the interactive charts (:mod:`scalinglab.report.charts`, Plotly) and the static figures
(:mod:`scalinglab.report.figures`, matplotlib) both draw, so the two never disagree.

Pure functions of results and frames. Budgets come from the IsoFLOP result's own assignment
(``IsoFlopResult.budget_of``) wherever there is one: a figure never regroups runs itself. Curves
and bands come from the result objects (``FitResult.predict``, ``optimum``, ``AllocationLaw``):
no formula is re-declared here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.fit.isoflop import IsoFlopResult, group_budgets
from scalinglab.fit.result import FitResult
from scalinglab.summary import format_number, symbol

#: viridis at nine stops: budgets get evenly spaced colours along it (dark = small compute)
_VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962",
            "#addc30", "#fde725"]

#: axis labels with units, shared by the interactive charts and the static figures
LABELS = {
    "N": "N, non-embedding parameters",
    "D": "D, training tokens",
    "C": "C, training compute (FLOPs)",
    "loss": "loss (nats/token)",
    "lr": "peak learning rate",
    "batch_tokens": "batch size (tokens)",
    "tokens": "tokens seen",
    "step": "optimizer step",
}

#: x axes a loss curve can be drawn against
CURVE_AXES = ("tokens", "flops", "wall", "step")
CURVE_AXIS_LABELS = {
    "tokens": "tokens seen",
    "flops": "training FLOPs so far (tokens × the run's C/D)",
    # the clock logged along the curve (schema 3's wall_s: the sweep runner's, a tracker's)
    "wall": "wall time (s) since the run started",
    # drawn when some run logged no clock: its time is estimated, and the label says so
    "wall_estimated": "wall time (s) since the run started; estimated where no clock was "
                      "logged: tokens × the run's mean throughput (wall_time_s / D)",
    "step": "optimizer step",
}


#: characters of a run's name or id a legend shows: a 400-character name in a legend took the
#: whole width of the dashboard's curve chart (the plot shrank to a sliver) and of the saved PNG
#: (the other runs' entries were cut off); hover and the run's own view keep the whole name
LEGEND_CHARS = 40


def legend_name(text: str, limit: int = LEGEND_CHARS) -> str:
    """``text`` cut to ``limit`` characters in the middle (``sweep-a-…-lr3e-3``): names of one
    sweep share their start and differ at their end, so both ends are kept."""
    text = str(text)
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2 + (limit - 1) % 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def same_axis(a: str, b: str) -> bool:
    """Whether two axes are the same quantity (a measured and an estimated wall time are)."""
    return a.removesuffix("_estimated") == b.removesuffix("_estimated")


def palette(k: int) -> list[str]:
    """``k`` colours evenly spaced along viridis (hex), stopping short of its pale yellow end."""
    if k <= 0:
        return []
    stops = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in _VIRIDIS], dtype=float)
    where = np.linspace(0.0, 0.9, k) if k > 1 else np.array([0.45])
    pos = where * (len(stops) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(stops) - 1)
    frac = (pos - lo)[:, None]
    rgb = np.rint(stops[lo] * (1 - frac) + stops[hi] * frac).astype(int)
    return ["#{:02x}{:02x}{:02x}".format(*c) for c in rgb]


def budget_label(C: float) -> str:
    return f"C = {format_number(C, 3)}"


# -- budgets -----------------------------------------------------------------------------------


@dataclass
class Budgets:
    """Each run's compute budget: ``index[run_id]`` into ``values``/``labels``/``colours``."""

    values: list[float]
    labels: list[str]
    colours: list[str]
    index: dict[str, int]

    def of(self, run_id: str) -> int | None:
        return self.index.get(str(run_id))


def budgets_of(runs: pd.DataFrame, iso: IsoFlopResult | None = None) -> Budgets:
    """Budgets from the IsoFLOP fit's own assignment (``budget_of``) where it has one; runs it
    did not use (a hyperparameter grid, a lone run) are grouped by compute the same way
    (:func:`scalinglab.fit.group_budgets`) and join a fit budget when they fall inside it."""
    values: list[float] = [] if iso is None else [b.C for b in iso.budgets]
    index: dict[str, int] = {}
    if iso is not None:
        index = {str(r): int(g) for r, g in zip(iso.run_ids, iso.budget_of, strict=True)}
    rest = runs[~runs["run_id"].astype(str).isin(index)] if "run_id" in runs else runs.iloc[:0]
    if len(rest):
        group, centres = group_budgets(rest["C"].to_numpy(float))
        extra: dict[int, int] = {}
        for g, c in enumerate(centres):
            near = [i for i, v in enumerate(values) if abs(math.log10(v / c)) <= 0.1]
            if near:
                extra[g] = near[0]
            else:
                values.append(float(c))
                extra[g] = len(values) - 1
        index.update({str(r): extra[int(g)] for r, g in zip(rest["run_id"], group, strict=True)})
    order = np.argsort(values, kind="stable")
    rank = {int(old): new for new, old in enumerate(order)}
    values = [values[i] for i in order]
    return Budgets(values=values, labels=[budget_label(v) for v in values],
                   colours=palette(len(values)), index={k: rank[v] for k, v in index.items()})


# -- fit quality ------------------------------------------------------------------------------


def fit_points(runs: pd.DataFrame, fit: FitResult, budgets: Budgets | None = None) -> pd.DataFrame:
    """Every run the fit used or held out: observed and predicted loss, the relative residual
    (%), whether it was held out, and its budget.

    Columns: ``run_id``, the law's inputs, ``C``, ``observed``, ``predicted``, ``residual_pct``
    (``100 (observed / predicted - 1)``), ``held_out``, ``budget`` (index or -1).
    """
    ids = set(fit.run_ids) | set(fit.heldout_ids)
    df = runs[runs["run_id"].astype(str).isin(ids)] if "run_id" in runs else runs
    df = df.drop_duplicates("run_id") if "run_id" in df else df
    inputs = {k: df[k].to_numpy(float) for k in fit.law.inputs}
    with np.errstate(all="ignore"):
        pred = np.asarray(fit.predict(**inputs), dtype=float) if len(df) else np.array([])
    obs = df["loss"].to_numpy(float)
    out = pd.DataFrame({"run_id": df["run_id"].astype(str).to_numpy() if "run_id" in df
                        else [f"row-{i + 1}" for i in range(len(df))]})
    for k in dict.fromkeys([*fit.law.inputs, "N", "D", "C"]):
        if k in df:
            out[k] = df[k].to_numpy(float)
    out["observed"] = obs
    out["predicted"] = pred
    with np.errstate(all="ignore"):
        out["residual_pct"] = 100.0 * (obs / pred - 1.0)
    out["held_out"] = out["run_id"].isin(set(fit.heldout_ids)).to_numpy()
    b = budgets or budgets_of(runs)
    out["budget"] = [b.of(r) if b.of(r) is not None else -1 for r in out["run_id"]]
    return out.sort_values(["C", "run_id"] if "C" in out else ["run_id"]).reset_index(drop=True)


def residual_band_pct(fit: FitResult, k: float = 2.0) -> float | None:
    """Half-width (%) of ``±k σ`` of the log-loss residuals, the spread a good fit stays within."""
    if not math.isfinite(fit.residual_std):
        return None
    return 100.0 * (math.exp(k * fit.residual_std) - 1.0)


#: how hover labels name a column
HOVER_NAMES = {"residual_pct": "residual (%)", "observed": "observed loss",
               "predicted": "predicted loss", "batch_tokens": "batch (tokens)"}


def hover_text(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``run r-1a2b<br>N = 1.2e+08<br>...``: the run id and its numbers (one format everywhere)."""
    name = row.get("name")
    lines = [f"run {row.get('run_id', '')}" + (f" ({name})" if isinstance(name, str) and name else "")]
    for k in keys:
        v = row.get(k)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        lines.append(f"{HOVER_NAMES.get(k, k)} = {format_number(v) if not isinstance(v, str) else v}")
    return "<br>".join(lines)


# -- the bootstrap draws ----------------------------------------------------------------------


@dataclass
class Corner:
    """Draws of every parameter, ready for a corner plot (histograms and pairwise scatter)."""

    names: list[str]
    labels: list[str]
    draws: np.ndarray  # (K, P), finite rows only
    point: list[float]
    lo: list[float]
    hi: list[float]
    identified: list[bool]
    level: float
    n_dropped: int = 0
    #: draws shown in scatter panels (a subsample when there are many)
    scatter_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def log_scale(self) -> list[bool]:
        """Scale parameters (positive, spanning > 1 decade over the draws) are shown in log."""
        out = []
        for j in range(len(self.names)):
            col = self.draws[:, j]
            pos = col[col > 0]
            out.append(bool(len(pos) == len(col) and len(col) and pos.max() / pos.min() > 10))
        return out


def corner_data(fit: FitResult, max_points: int = 400) -> Corner:
    """The fit's draws of all parameters, unidentified ones flagged (drawn faded, labelled)."""
    if not fit.n_draws:
        raise ValueError("this fit has no bootstrap draws; fit with --bootstrap to see them")
    draws = np.asarray(fit.draws, dtype=float)
    ok = np.isfinite(draws).all(axis=1)
    kept = draws[ok]
    ci = fit.ci
    names = list(fit.law.param_names)
    rng = np.random.default_rng(0)
    rows = np.arange(len(kept)) if len(kept) <= max_points else np.sort(
        rng.choice(len(kept), max_points, replace=False))
    return Corner(
        names=names, labels=[symbol(n) for n in names], draws=kept,
        point=[float(fit.params[n]) for n in names],
        lo=[float(ci[n][0]) if n in ci else float("nan") for n in names],
        hi=[float(ci[n][1]) if n in ci else float("nan") for n in names],
        identified=[n not in set(fit.unidentified) for n in names], level=fit.level,
        n_dropped=int((~ok).sum()), scatter_rows=rows,
    )


def histogram(values: np.ndarray, bins: int | None = None, log: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and counts (log-spaced bins for a log axis)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if log:
        v = v[v > 0]
    if not len(v):
        return np.array([]), np.array([])
    bins = bins or int(min(40, max(10, len(v) // 10)))
    if log:
        edges = np.geomspace(v.min(), v.max() if v.max() > v.min() else v.min() * 1.01, bins + 1)
        centres = np.sqrt(edges[1:] * edges[:-1])
    else:
        hi = v.max() if v.max() > v.min() else v.min() + 1e-12
        edges = np.linspace(v.min(), hi, bins + 1)
        centres = (edges[1:] + edges[:-1]) / 2
    counts, _ = np.histogram(v, bins=edges)
    return centres, counts


# -- rolling forward ---------------------------------------------------------------------------


@dataclass
class RollingView:
    """What a rolling-forward chart shows: each forward prediction's observed error beside the
    error the law predicted for it (half its new-run band), and both averaged by distance.

    ``points`` columns: ``run_id``, ``cutoff``, ``C``, ``decades`` (distance beyond the cut-off),
    ``observed``, ``predicted``, ``error_pct`` (``100 |predicted / observed - 1|``),
    ``band_pct`` (``100 (new_hi - new_lo) / 2 predicted``, NaN without a band), ``new_lo``,
    ``new_hi`` and ``inside`` (observed inside the new-run band). ``bins``: per distance band of
    :meth:`~scalinglab.fit.validate.RollingForward.by_distance`, ``decades`` (the mean distance of
    its predictions), ``label``, ``n``, ``error_pct`` (its mean |error|, the table's number) and
    ``band_pct`` (its mean predicted error).
    """

    law: str
    by: str
    level: float
    cutoffs: list[float]
    points: pd.DataFrame
    bins: pd.DataFrame


def rolling_view(result: Any) -> RollingView:
    """The chart data of a :class:`~scalinglab.fit.validate.RollingForward` (from its
    predictions and its own :meth:`by_distance`, so chart and table agree)."""
    from scalinglab.fit.validate import DISTANCE_BINS

    rows = []
    for p in result.predictions:
        lo, hi = p.get("new_lo"), p.get("new_hi")
        has_band = lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi)
        rows.append({"run_id": str(p["run_id"]), "cutoff": float(p["cutoff"]),
                     "C": float(p.get("C", float("nan"))), "decades": float(p["decades"]),
                     "observed": float(p["observed"]), "predicted": float(p["predicted"]),
                     "error_pct": 100.0 * float(p["abs_rel_err"]),
                     "band_pct": 100.0 * (hi - lo) / 2.0 / float(p["predicted"]) if has_band
                     else float("nan"),
                     "new_lo": lo if has_band else float("nan"),
                     "new_hi": hi if has_band else float("nan"),
                     "inside": bool(has_band and lo <= p["observed"] <= hi)})
    points = pd.DataFrame(rows, columns=["run_id", "cutoff", "C", "decades", "observed",
                                         "predicted", "error_pct", "band_pct", "new_lo", "new_hi",
                                         "inside"])
    bins = []
    for row in result.by_distance(DISTANCE_BINS):
        a, b = row["decades"]
        mine = points[((points["decades"] > a) & (points["decades"] <= b))
                      | ((a == 0) & (points["decades"] == 0))]
        band = mine["band_pct"].dropna()
        bins.append({"decades": float(mine["decades"].mean()), "label": f"({a:g}, {b:g}]",
                     "n": int(row["n"]), "error_pct": 100.0 * row["mean_abs_rel_err"],
                     "band_pct": float(band.mean()) if len(band) else float("nan")})
    return RollingView(law=result.law, by=result.by, level=result.level,
                       cutoffs=sorted({float(p["cutoff"]) for p in result.predictions}),
                       points=points, bins=pd.DataFrame(
                           bins, columns=["decades", "label", "n", "error_pct", "band_pct"]))


# -- IsoFLOP ----------------------------------------------------------------------------------


@dataclass
class BudgetSeries:
    """One IsoFLOP budget as drawn: its runs, its parabola and its vertex."""

    C: float
    label: str
    colour: str
    runs: pd.DataFrame  # run_id, N, D, C, loss
    ok: bool
    status: str
    curve_N: np.ndarray
    curve_loss: np.ndarray
    vertex: tuple[float, float] | None


def isoflop_series(runs: pd.DataFrame, iso: IsoFlopResult) -> list[BudgetSeries]:
    """Per budget of the fit, the runs the fit put there (``budgets[i].run_ids``), labelled."""
    colours = palette(len(iso.budgets))
    by_id = runs.drop_duplicates("run_id").set_index(runs.drop_duplicates("run_id")["run_id"]
                                                     .astype(str)) if "run_id" in runs else None
    out = []
    for i, b in enumerate(iso.budgets):
        ids = [r for r in b.run_ids if by_id is not None and r in by_id.index]
        mine = (by_id.loc[ids, [c for c in ("run_id", "N", "D", "C", "loss") if c in by_id]]
                .reset_index(drop=True) if ids else pd.DataFrame(columns=["run_id", "N", "loss"]))
        if np.all(np.isfinite(b.coef)):
            grid = np.geomspace(b.N_range[0] / 1.3, b.N_range[1] * 1.3, 80)
            curve = np.asarray(b.loss_at(grid), dtype=float)
        else:
            grid = curve = np.array([])
        label = f"{budget_label(b.C)} ({b.n_runs} runs)" + ("" if b.ok else f", excluded: {b.status}")
        out.append(BudgetSeries(C=b.C, label=label, colour=colours[i], runs=mine, ok=b.ok,
                                status=b.status, curve_N=grid, curve_loss=curve,
                                vertex=(b.N_opt, b.loss_opt) if b.ok else None))
    return out


@dataclass
class AllocationCurve:
    """``N_opt(C)`` and ``D_opt(C)`` of one method over a compute grid, with its band."""

    name: str
    C: np.ndarray
    N: np.ndarray
    D: np.ndarray
    N_band: tuple[np.ndarray, np.ndarray] | None
    D_band: tuple[np.ndarray, np.ndarray] | None
    identified: bool = True
    note: str | None = None
    used_by_plan: bool = False


def compute_grid(iso: IsoFlopResult | None, fit: FitResult | None, planned: float | None,
                 n: int = 60) -> np.ndarray:
    """Compute from a third of the smallest budget to 3x the largest or the plan."""
    cs: list[float] = []
    if iso is not None:
        cs += [b.C for b in iso.budgets]
    if fit is not None and fit.compute_range is not None:
        cs += list(fit.compute_range)
    if planned:
        cs.append(float(planned))
    if not cs:
        return np.array([])
    return np.geomspace(min(cs) / 3, max(cs) * 3, n)


def loss_law_allocation(fit: FitResult, C: np.ndarray, name: str | None = None) -> AllocationCurve:
    """The loss law's compute-optimal N and D (Approach 3), with a band over the draws when the
    law has a closed-form optimum (vectorised) — flagged when it depends on unidentified
    parameters."""
    from scalinglab.laws.loss import compute_optimum

    n_pt = np.full(len(C), np.nan)
    d_pt = np.full(len(C), np.nan)
    lo_n, hi_n, lo_d, hi_d = (np.full(len(C), np.nan) for _ in range(4))
    closed = fit.law.optimum is not None
    note = None
    for i, c in enumerate(C):
        if closed:
            opt = fit.optimum(float(c))
            n_pt[i], d_pt[i] = opt.N.value, opt.D.value
            note = opt.note
            if opt.N.ci is not None:
                lo_n[i], hi_n[i] = opt.N.ci
                lo_d[i], hi_d[i] = opt.D.ci
        else:
            try:
                n_pt[i], d_pt[i] = compute_optimum(fit.instance, float(c))
            except (ArithmeticError, ValueError):
                continue
    if not closed:
        note = fit.depends_on_unidentified(fit.law.param_names)
    has_band = bool(np.isfinite(lo_n).any())
    return AllocationCurve(
        name=name or f"loss-law fit ({fit.law.name}, Approach 3)", C=C, N=n_pt, D=d_pt,
        N_band=(lo_n, hi_n) if has_band else None, D_band=(lo_d, hi_d) if has_band else None,
        identified=note is None, note=note, used_by_plan=True)


def isoflop_allocations(iso: IsoFlopResult, C: np.ndarray) -> list[AllocationCurve]:
    out = []
    for law in iso.approaches:
        n, n_lo, n_hi = law.n_opt_interval(C)
        d, d_lo, d_hi = law.d_opt_interval(C)
        out.append(AllocationCurve(
            name=f"Approach {law.approach} ({'best run' if law.approach == 1 else 'parabola vertex'}"
                 f" per budget, {law.n_budgets} budgets)",
            C=C, N=np.asarray(n, dtype=float), D=np.asarray(d, dtype=float),
            N_band=None if n_lo is None else (np.asarray(n_lo), np.asarray(n_hi)),
            D_band=None if d_lo is None else (np.asarray(d_lo), np.asarray(d_hi))))
    return out


def budget_optima(iso: IsoFlopResult) -> dict[int, pd.DataFrame]:
    """Per approach, the per-budget optimum the power law was fitted to (C, N, D, run)."""
    a1 = pd.DataFrame([{"C": b.C, "N": b.best.get("N"), "D": b.best.get("D"),
                        "run_id": b.best.get("run_id", "")} for b in iso.budgets])
    a2 = pd.DataFrame([{"C": b.C, "N": b.N_opt, "D": b.D_opt, "run_id": ""}
                       for b in iso.budgets if b.ok])
    return {1: a1, 2: a2}


# -- loss curves ------------------------------------------------------------------------------


def smooth(values: Any, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average, debiased at the start.

    ``s_t = w s_{t-1} + (1 - w) y_t`` from ``s = 0``, divided by ``1 - w^(t+1)``: the weighted
    mean of the values so far with weights ``w^age``, so the first point is not pulled to zero.
    ``weight`` 0 leaves the values unchanged; NaN values are skipped (they keep the previous
    smoothed value).
    """
    y = np.asarray(values, dtype=float)
    w = float(weight)
    if not 0.0 <= w < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), not {weight}")
    out = np.empty_like(y)
    acc = norm = 0.0
    for i, v in enumerate(y):
        if math.isfinite(v):
            acc = w * acc + (1.0 - w) * v
            norm = w * norm + (1.0 - w)
        out[i] = acc / norm if norm > 0 else np.nan
    return out


def curve_x(curve: pd.DataFrame, run: Mapping[str, Any] | None, axis: str) -> tuple[np.ndarray, str]:
    """x values of a loss curve on ``axis`` (see :data:`CURVE_AXES`) and the axis actually used.

    FLOPs are tokens times the run's compute per token (``C/D``, so a stored attention term
    counts). Wall time is the clock logged along the curve (``wall_s``, seconds since the run
    started) when every point has one (used axis ``wall``); otherwise it is *estimated* as
    tokens times the run's mean throughput (its ``wall_time_s`` over D; used axis
    ``wall_estimated``, and the label says so). Falls back to tokens, then steps, where the run
    lacks what is needed (:func:`curve_axis_note` says why).
    """
    if axis not in (*CURVE_AXES, "wall_estimated"):
        raise ValueError(f"x axis must be one of {CURVE_AXES}, not {axis!r}")
    tokens = curve["tokens"].to_numpy(float) if "tokens" in curve else np.full(len(curve), np.nan)
    have_tokens = bool(len(tokens)) and bool(np.isfinite(tokens).all())
    run = run or {}
    if axis == "flops" and have_tokens:
        C, D = _num(run.get("C")), _num(run.get("D"))
        if C and D:
            return tokens * (C / D), "flops"
    if axis in ("wall", "wall_estimated"):
        wall = curve["wall_s"].to_numpy(float) if "wall_s" in curve else np.zeros(0)
        # clocked wherever a training loss was logged (an eval-only point without a time is
        # left off the axis rather than forcing an estimate on the whole curve)
        train = (np.isfinite(curve["loss"].to_numpy(float)) if "loss" in curve
                 else np.ones(len(curve), bool))
        if len(wall) and train.any() and np.isfinite(wall[train]).all():
            return wall, "wall"
        extra = run.get("extra") or {}
        mean, D = _num(extra.get("wall_time_s")), _num(run.get("D"))
        if have_tokens and mean and D:
            return tokens * (mean / D), "wall_estimated"
    if axis != "step" and have_tokens:
        return tokens, "tokens"
    return curve["step"].to_numpy(float), "step"


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


@dataclass
class CurveSeries:
    run_id: str
    label: str
    colour: str
    x: np.ndarray
    raw: np.ndarray
    smoothed: np.ndarray
    eval_x: np.ndarray
    eval_loss: np.ndarray
    axis: str
    note: str = ""  # why the axis is not the one asked for, or how it was estimated
    #: the run's readable name (a tracker's run name), "" when it has none
    name: str = ""
    #: :attr:`label` with the name and id cut to :data:`LEGEND_CHARS`, for a static legend
    #: (a PNG has no hover to show the rest)
    short_label: str = ""

    @property
    def legend(self) -> str:
        """What a legend calls the run: its name when it has one, else its id (at most
        :data:`LEGEND_CHARS` characters; :attr:`label`, shown on hover, has it whole)."""
        return legend_name(self.name or self.run_id)


def curve_axis_note(asked: str, used: str, lacking: Sequence[str], n: int,
                    estimated: Sequence[str] = ()) -> str:
    """What a curve chart must say about its x axis: which runs' wall time was estimated (no
    clock logged: ``estimated``), or why the axis asked for could not be drawn (``lacking``:
    the runs that could not give it)."""
    if same_axis(asked, used):
        if used != "wall_estimated":
            return ""
        k = len(estimated)
        who = (f"run {estimated[0]}" if k == 1 else f"{k} of {n} runs") if n > 1 else "the run"
        return (f"wall time estimated for {who} from tokens × mean throughput (wall_time_s / "
                f"D): no clock logged along {'its' if k == 1 else 'their'} curve")
    need = {"wall": "no wall time logged along its curve and no wall_time_s recorded",
            "flops": "no C and D to give FLOPs per token",
            "tokens": "no token count along the curve"}.get(asked, "no such axis")
    if used == "step" and asked != "tokens":
        need = "no token count along the curve"
    k = len(lacking)
    who = (f"run {lacking[0]}" if k == 1 else f"{k} of {n} runs") if n > 1 else "the run"
    if k != 1 and asked == "wall" and used != "step":
        need = need.replace("its curve", "their curves")
    return f"{asked} asked for, drawn against {used}: {who} {'has' if k == 1 else 'have'} {need}"


def curve_series(curves: Mapping[str, pd.DataFrame], runs: pd.DataFrame | None, axis: str = "tokens",
                 weight: float = 0.6) -> list[CurveSeries]:
    """Every curve on one x axis, raw and smoothed, coloured by the run's compute (dark: small).

    If any run cannot give the asked axis, all fall back together (one axis per chart).
    """
    info = {}
    if runs is not None and len(runs):
        info = {str(r["run_id"]): r for r in runs.drop_duplicates("run_id").to_dict("records")}
    curves = {rid: c for rid, c in curves.items() if len(c)}
    axes = {rid: curve_x(c, info.get(rid), axis)[1] for rid, c in curves.items()}
    if all(same_axis(a, axis) for a in axes.values()):
        # wall time: measured for every run, or estimated for some (and said so)
        used = "wall_estimated" if "wall_estimated" in axes.values() else axis
    else:
        used = "tokens" if all(a != "step" for a in axes.values()) else "step"
    # the runs that forced the fallback: those without tokens when it went down to steps
    lacking = [rid for rid, a in axes.items()
               if (a == "step" if used == "step" else not same_axis(a, axis))]
    estimated = [rid for rid, a in axes.items() if a == "wall_estimated"]
    note = curve_axis_note(axis, used, lacking, len(axes), estimated) if axes else ""
    order = sorted(curves, key=lambda r: (_num((info.get(r) or {}).get("C")) or 0.0, r))
    colours = palette(len(order))
    out = []
    for rid, colour in zip(order, colours, strict=True):
        c = curves[rid]
        x, _ = curve_x(c, info.get(rid), used)  # wall_estimated: each run's clock if logged
        loss = c["loss"].to_numpy(float)
        keep = np.isfinite(x) & (x > 0)
        r = info.get(rid) or {}
        name = r.get("name") if isinstance(r.get("name"), str) else ""
        label, short = (_curve_label(rid, name, r, cut) for cut in (str, legend_name))
        ev = c["eval_loss"].to_numpy(float) if "eval_loss" in c else np.full(len(c), np.nan)
        has_ev = keep & np.isfinite(ev)
        out.append(CurveSeries(run_id=rid, label=label, colour=colour, x=x[keep], raw=loss[keep],
                               smoothed=smooth(loss[keep], weight), eval_x=x[has_ev],
                               eval_loss=ev[has_ev], axis=used, note=note, name=name,
                               short_label=short))
    return out


def _curve_label(rid: str, name: str, run: Mapping[str, Any], cut: Any) -> str:
    """A curve's label: its name (else its id), then its id and N, D; ``cut`` shortens the
    name and the id (:func:`legend_name` for a static legend, ``str`` for hover)."""
    about = [cut(rid)] if name else []  # hover and the static legend name both
    if run:
        about += [f"N = {format_number(run.get('N'), 3)}", f"D = {format_number(run.get('D'), 3)}"]
    return f"{cut(name or rid)} ({', '.join(about)})" if about else cut(rid)


# -- one run ----------------------------------------------------------------------------------

#: the extras a sweep run records, in the order a person reads them
#: most seed groups one chart draws
MAX_SEED_GROUPS = 12
#: run columns that must agree for runs to be seeds of one configuration
SEED_KEYS = ("N", "D", "lr", "batch_tokens", "weight_decay", "seq_len")


def _seed_of(run: dict[str, Any]) -> Any:
    for holder in ("extra", "tags"):
        d = run.get(holder)
        if isinstance(d, dict) and d.get("seed") is not None:
            return d["seed"]
    return None


def seed_groups(runs: pd.DataFrame) -> list[list[str]]:
    """Runs that differ only in their seed (``extra`` or tag ``seed``; the same N, D, lr, batch,
    weight decay, sequence length and other tags), two or more to a group."""
    groups: dict[Any, dict[Any, str]] = {}
    for r in runs.to_dict("records"):
        seed = _seed_of(r)
        if seed is None:
            continue
        tags = {k: v for k, v in (r.get("tags") or {}).items() if k != "seed"}
        key = (*(None if pd.isna(r.get(k)) else float(r[k]) for k in SEED_KEYS),
               tuple(sorted(tags.items())))
        groups.setdefault(key, {}).setdefault(seed, str(r["run_id"]))
    return [sorted(g.values()) for g in groups.values() if len(g) >= 2]


RUN_EXTRAS = (
    ("train_loss", "final train loss"), ("ema_loss", "EMA train loss"),
    ("eval_loss", "held-out (eval) loss"), ("tokens_per_s", "throughput (tokens/s)"),
    ("wall_time_s", "wall time (s)"), ("peak_mem_bytes", "peak memory (bytes)"),
    ("device", "device"), ("n_layers", "layers"), ("n_layer", "layers"), ("d_model", "width"),
    ("n_heads", "heads"), ("embedding_params", "embedding parameters"),
    ("C_attention", "attention FLOPs"),
)


def run_table(run: Mapping[str, Any]) -> Any:
    """One run as a two-column :class:`~scalinglab.summary.Table`: its configuration, losses,
    throughput and memory, then every other recorded extra (nothing dropped)."""
    from scalinglab.summary import Table

    t = Table("", ["field", "value"], exact=True)
    for key in ("run_id", "status", "error", "N", "D", "C", "loss", "lr", "batch_tokens",
                "weight_decay", "seq_len", "source"):
        v = run.get(key)
        if v is not None and not (isinstance(v, float) and math.isnan(v)) and v != "":
            t.add_row(key, v if not isinstance(v, (np.generic,)) else v.item())
    tags = run.get("tags") or {}
    if tags:
        t.add_row("tags", ", ".join(f"{k}={v}" for k, v in tags.items()))
    extra = dict(run.get("extra") or {})
    for key, label in RUN_EXTRAS:
        if key in extra:
            t.add_row(label, _cell(extra.pop(key)))
    for key in sorted(extra):
        t.add_row(key, _cell(extra[key]))
    return t


def _cell(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        import json

        return json.dumps(v, sort_keys=True)
    return v
