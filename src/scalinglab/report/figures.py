"""Static, publication-quality figures of runs, fits and hyperparameter grids (PNG, SVG, PDF:
``report --figures``); the report and the dashboard draw the same views interactively
(:mod:`scalinglab.report.charts`).

Every function returns a fresh :class:`matplotlib.figure.Figure` bound to an Agg canvas and never
touches ``pyplot``, so figures can be built from a web server thread or a library call without
leaking global state or needing a display. What is drawn (points, budgets, curves, bands) comes
from :mod:`scalinglab.report.views`, shared with the interactive charts, and from the result
objects: the figures never re-declare a formula or regroup runs.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from scalinglab.errors import NotIdentifiable
from scalinglab.fit import AllocationLaw, IsoFlopResult
from scalinglab.fit.result import FitResult
from scalinglab.hparams.landscape import fit_landscape
from scalinglab.report import views
from scalinglab.stats import percentile_interval

LABELS = views.LABELS
_GREEK = {"alpha": "α", "beta": "β", "eta": "η", "gamma": "γ", "epsilon": "ε"}
CMAP = "viridis"
HELD_OUT_STYLE = {"facecolor": "none", "edgecolor": "crimson", "linewidth": 1.6, "zorder": 6}


# -- formatting --------------------------------------------------------------------------------


def fmt(x: float | None, sig: int = 3) -> str:
    """A number as a person reads it: ``0.341``, ``1.69``, ``4.07e2``, ``3.2e-4``."""
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    x = float(x)
    if x == 0:
        return "0"
    if 1e-2 <= abs(x) < 1e4:
        return f"{x:.{sig}g}"
    mant, exp = f"{x:.{sig - 1}e}".split("e")
    return f"{mant}e{int(exp)}"


def greek(text: str) -> str:
    """Spell parameter names as the papers do (``alpha`` -> ``α``), for titles and tables."""
    for word, letter in _GREEK.items():
        text = text.replace(word, letter)
    return text


def param_summary(fit: FitResult, names: Iterable[str] | None = None) -> str:
    """``α = 0.34 [0.31, 0.37], β = ...``: estimates with their bootstrap interval."""
    ci = fit.ci
    unidentified = set(fit.unidentified)
    parts = []
    for name in names if names is not None else fit.law.param_names:
        value = fit.params[name]
        if name in unidentified:
            parts.append(f"{greek(name)} not identified")
        elif name in ci:
            lo, hi = ci[name]
            parts.append(f"{greek(name)} = {fmt(value)} [{fmt(lo)}, {fmt(hi)}]")
        else:
            parts.append(f"{greek(name)} = {fmt(value)}")
    return ", ".join(parts)


def fit_title(fit: FitResult) -> str:
    """Formula on the first line, fitted numbers with their CI on the second."""
    level = f"{round(fit.level * 100)}% CI" if fit.ci else "no bootstrap"
    return f"{greek(fit.law.formula)}  ({fit.n_runs} runs, {level})\n{param_summary(fit)}"


# -- figure plumbing ---------------------------------------------------------------------------


def new_figure(width: float = 7.0, height: float = 4.5, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    """A Figure on its own Agg canvas (no pyplot), with constrained layout."""
    fig = Figure(figsize=(width, height), layout="constrained", dpi=100)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3, linewidth=0.6)
        ax.grid(True, which="minor", alpha=0.12, linewidth=0.4)
    return fig, axes


def to_png(fig: Figure, dpi: int = 130) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def to_svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


def _log_loss_axis(ax: Axes) -> None:
    """Log-scaled loss axis with plain-number ticks: losses span < 1 decade, so default
    log ticks would leave the axis unlabelled."""
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()  # call after plotting: tick density follows the data's span
    subs = np.arange(1.0, 10.0, 0.5) if hi / lo < 2.2 else (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def _lognorm(values: np.ndarray) -> LogNorm:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (1.0, 10.0)
    if hi <= lo:
        lo, hi = lo / 1.5, hi * 1.5
    return LogNorm(lo, hi)


def _legend_below(fig: Figure, ax: Axes, ncol: int = 3) -> None:
    """Legend under the axes so it never hides data, in at most ``ncol`` columns: fewer when
    the entries are too wide for the figure (two curves' labels of 60 characters, cut names
    with N and D, ran off both edges of a 7-inch figure in two columns)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    renderer = fig.canvas.get_renderer()
    for n in range(max(1, min(ncol, len(handles))), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncol=n, frameon=False,
                            fontsize=8)
        if n == 1 or legend.get_window_extent(renderer).width <= fig.bbox.width:
            return
        legend.remove()


# -- fit quality -------------------------------------------------------------------------------


def _budget_scatter(ax: Axes, points: pd.DataFrame, x: str, y: str, budgets: views.Budgets) -> None:
    for b in sorted(set(points["budget"])):
        mine = points[points["budget"] == b]
        colour = "grey" if b < 0 else budgets.colours[b]
        label = "no budget" if b < 0 else f"{budgets.labels[b]} ({len(mine)})"
        ax.scatter(mine[x], mine[y], color=colour, s=28, edgecolor="white", linewidth=0.5,
                   zorder=5, label=label)


def parity(runs: pd.DataFrame, fit: FitResult, iso: IsoFlopResult | None = None) -> Figure:
    """Observed against predicted loss for every run the fit used or held out, coloured by
    compute budget, with the identity and the ``±2σ`` spread of the residuals; held-out runs
    ringed in red. A good fit puts every point on the diagonal; held-out points off it are the
    extrapolation error."""
    budgets = views.budgets_of(runs, iso)
    pts = views.fit_points(runs, fit, budgets)
    fig, (ax,) = new_figure(6.4, 5.6)
    lo = float(np.nanmin(pts[["observed", "predicted"]].to_numpy())) / 1.02
    hi = float(np.nanmax(pts[["observed", "predicted"]].to_numpy())) * 1.02
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.9, label="observed = predicted")
    band = views.residual_band_pct(fit)
    if band is not None:
        f = 1 + band / 100
        ax.plot([lo, hi], [lo * f, hi * f], ":", color="grey", linewidth=0.9,
                label="±2σ of the residuals")
        ax.plot([lo, hi], [lo / f, hi / f], ":", color="grey", linewidth=0.9)
    _budget_scatter(ax, pts[~pts["held_out"]], "predicted", "observed", budgets)
    held = pts[pts["held_out"]]
    if len(held):
        ax.scatter(held["predicted"], held["observed"], s=80, label="held out (not fitted)",
                   **HELD_OUT_STYLE)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    subs = np.arange(1.0, 10.0, 0.5) if hi / lo < 2.2 else (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=subs))
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("predicted loss (nats/token)")
    ax.set_ylabel("observed loss (nats/token)")
    title = f"Predicted vs observed loss, {fit.law.name} ({fit.n_runs} runs)"
    if fit.holdout is not None:
        title += f"\nheld out: mean |rel err| = {100 * fit.holdout.mean_abs_rel_err:.2f}%"
    ax.set_title(title, fontsize=10)
    _legend_below(fig, ax, ncol=3)
    return fig


def residuals(
    runs: pd.DataFrame, fit: FitResult, holdout: Iterable[str] | None = None,
    iso: IsoFlopResult | None = None,
) -> Figure:
    """Relative residual of every run vs compute, coloured by budget, against the fit's
    residual spread.

    Structure in this plot (a trend with C) says the law's form is wrong even when the
    intervals look tight; held-out runs show how it extrapolates. ``holdout`` (run ids)
    replaces the fit's own held-out runs for the red rings.
    """
    budgets = views.budgets_of(runs, iso)
    pts = views.fit_points(runs, fit, budgets)
    if holdout is not None:
        pts["held_out"] = pts["run_id"].isin({str(r) for r in holdout})
    fig, (ax,) = new_figure(7.0, 4.6)
    ax.axhline(0.0, color="black", linewidth=0.8)
    band = views.residual_band_pct(fit)
    if band is not None:
        ax.axhspan(-band, band, color="grey", alpha=0.15, label="±2σ of log-loss residuals")
    x = "C" if "C" in pts else fit.law.inputs[0]
    _budget_scatter(ax, pts[~pts["held_out"]], x, "residual_pct", budgets)
    held = pts[pts["held_out"]]
    if len(held):
        ax.scatter(held[x], held["residual_pct"], s=70, label="held out (not fitted)",
                   **HELD_OUT_STYLE)
    ax.set_xscale("log")
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel("residual, loss / fitted − 1 (%)")
    title = f"Residuals of {fit.law.name} fit ({fit.n_runs} runs)"
    if math.isfinite(fit.residual_std):
        title += f", σ(log loss) = {fmt(fit.residual_std)}"
    if fit.holdout is not None:
        title += (f"\nheld out: mean |rel err| = {100 * fit.holdout.mean_abs_rel_err:.2f}%, "
                  f"max {100 * fit.holdout.max_abs_rel_err:.2f}%")
    ax.set_title(title, fontsize=10)
    _legend_below(fig, ax, ncol=4)
    return fig


def corner(fit: FitResult) -> Figure:
    """Corner plot of the bootstrap draws of every parameter: each one's histogram with the
    estimate and its interval on the diagonal, each pair's scatter below. Parameters the runs
    do not identify are drawn faded and titled "not identified"."""
    c = views.corner_data(fit)
    P = len(c.names)
    fig = Figure(figsize=(2.1 * P + 0.6, 2.1 * P + 0.4), layout="constrained", dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(P, P, squeeze=False)
    logs = c.log_scale
    # draws of an unidentified scale can span hundreds of decades (A = 7e247 in a demo fit), which
    # no log axis draws: shown within 6 decades of their median
    med = np.median(c.draws, axis=0)
    span = np.where(logs, 1e6, np.inf)
    with np.errstate(all="ignore"):
        shown = np.clip(c.draws, np.where(logs, med / span, -np.inf), np.where(logs, med * span, np.inf))
    sub = shown[c.scatter_rows] if len(c.scatter_rows) else shown
    for i in range(P):
        for j in range(P):
            ax = axes[i][j]
            if j > i:
                ax.set_visible(False)
                continue
            faded = not (c.identified[i] and c.identified[j])
            colour = "#9aa4ae" if faded else "#2f6fb3"
            if i == j:
                col = shown[:, j]
                bins: Any = 30
                if logs[j]:
                    bins = np.geomspace(col.min(), col.max(), 31)
                    ax.set_xscale("log")
                ax.hist(col, bins=bins, color=colour, alpha=0.4 if faded else 0.9)
                if c.identified[j] and math.isfinite(c.lo[j]) and math.isfinite(c.hi[j]):
                    ax.axvspan(c.lo[j], c.hi[j], color="orange", alpha=0.25, zorder=0)
                ax.axvline(c.point[j], color="black", linewidth=1.2)
                ax.set_yticks([])
                ax.set_title(f"{c.labels[j]} = {fmt(c.point[j])} [{fmt(c.lo[j])}, {fmt(c.hi[j])}]"
                             if c.identified[j] else f"{c.labels[j]}: not identified",
                             fontsize=8.5, color="black" if c.identified[j] else "#b3261e")
            else:
                ax.scatter(sub[:, j], sub[:, i], s=3, color=colour, alpha=0.3 if faded else 0.5)
                ax.plot(c.point[j], c.point[i], "x", color="black", markersize=6)
                if logs[j]:
                    ax.set_xscale("log")
                if logs[i]:
                    ax.set_yscale("log")
            if i == P - 1:
                ax.set_xlabel(c.labels[j] + ("" if c.identified[j] else " (not identified)"))
            else:
                ax.tick_params(labelbottom=False)
            if j == 0 and i > 0:
                ax.set_ylabel(c.labels[i])
            elif i != j:
                ax.tick_params(labelleft=False)
            ax.tick_params(labelsize=7)
    note = f"; {c.n_dropped} non-finite draws left out" if c.n_dropped else ""
    fig.suptitle(f"Bootstrap draws of every parameter, {fit.law.name} ({len(c.draws)} draws of "
                 f"{fit.n_runs} runs, {round(c.level * 100)}% intervals shaded{note})", fontsize=10)
    return fig


def exponent_names(fit: FitResult) -> list[str]:
    """The parameters the law declares as exponents, else all of them."""
    return list(fit.law.exponents) or list(fit.law.param_names)


def bootstrap_distributions(
    draws: FitResult | Mapping[str, np.ndarray],
    params: Sequence[str] | None = None,
    point: Mapping[str, float] | None = None,
    level: float = 0.95,
) -> Figure:
    """Histograms of bootstrap draws of exponents, with the estimate and percentile interval.

    Takes a :class:`FitResult` (its ``draws`` array) or a mapping name -> draws (e.g. the exponents
    of an IsoFLOP power law), so both kinds of fit share one picture of their uncertainty.
    """
    if isinstance(draws, FitResult):
        fit = draws
        if fit.draws is None or len(fit.draws) == 0:
            raise ValueError("this fit has no bootstrap draws; fit with --bootstrap to see them")
        names = list(params) if params else exponent_names(fit)
        idx = {n: fit.law.param_names.index(n) for n in names}
        samples = {n: np.asarray(fit.draws)[:, idx[n]] for n in names}
        point = dict(fit.params)
        level = fit.level
        title = f"Bootstrap distributions, {fit.law.name} ({len(fit.draws)} resamples of {fit.n_runs} runs)"
    else:
        names = list(params) if params else list(draws)
        samples = {n: np.asarray(draws[n], dtype=float) for n in names}
        title = f"Bootstrap distributions ({len(next(iter(samples.values())))} resamples)"
    fig, axes = new_figure(3.4 * len(names) + 0.6, 3.4, ncols=len(names))
    for ax, name in zip(axes, names, strict=True):
        s = samples[name][np.isfinite(samples[name])]
        lo, hi = (float(x) for x in percentile_interval(s, level))
        ax.axvspan(lo, hi, color="orange", alpha=0.25, zorder=0,
                   label=f"{round(level * 100)}% interval")
        ax.hist(s, bins=min(40, max(10, len(s) // 10)), color="#4c72b0", zorder=2)
        est = point.get(name) if point else None
        if est is not None:
            ax.axvline(est, color="black", linewidth=1.4, label="estimate")
        ax.set_xlabel(greek(name))
        ax.set_ylabel("bootstrap draws")
        ax.set_title(f"{greek(name)} = {fmt(est)} [{fmt(lo)}, {fmt(hi)}]", fontsize=10)
        ax.grid(False, which="both")
    _legend_below(fig, axes[0], ncol=2)
    fig.suptitle(title, fontsize=10)
    return fig


# -- loss curves -------------------------------------------------------------------------------


def loss_curves(
    curves: Mapping[str, pd.DataFrame],
    runs: pd.DataFrame | None = None,
    x: str = "tokens",
    max_legend: int = 8,
    smoothing: float = 0.6,
) -> Figure:
    """Training curves (``store.curve(run_id)`` frames): the smoothed loss in each run's colour
    (dark: small compute) over its raw trace, drawn faint; eval losses as circles.

    ``x`` is ``tokens``, ``flops``, ``wall`` or ``step`` (see :func:`views.curve_x`; runs that
    cannot give it fall back together). Up to ``max_legend`` runs are named in a legend; more are
    told apart by colour (a colour bar of compute).
    """
    series = views.curve_series(curves, runs, x, smoothing)
    fig, (ax,) = new_figure(7.0, 4.6)
    for s in series:
        ax.plot(s.x, s.raw, color=s.colour, linewidth=0.8, alpha=0.25)
        ax.plot(s.x, s.smoothed, color=s.colour, linewidth=1.6,
                label=s.short_label if len(series) <= max_legend else None)
        if len(s.eval_x):
            ax.plot(s.eval_x, s.eval_loss, "o", color=s.colour, markersize=3.5,
                    markerfacecolor="none")
    used = series[0].axis if series else "step"
    ax.set_xscale("log")
    if series:
        _log_loss_axis(ax)
    ax.set_xlabel(views.CURVE_AXIS_LABELS[used] if used != "step" else LABELS["step"])
    ax.set_ylabel(LABELS["loss"])
    compute = [float(r["C"]) for r in (runs.to_dict("records") if runs is not None else [])
               if str(r["run_id"]) in {s.run_id for s in series}]
    if len(series) > max_legend and compute:
        sm = mpl.cm.ScalarMappable(norm=_lognorm(np.array(compute)), cmap=CMAP)
        fig.colorbar(sm, ax=ax, label=LABELS["C"], pad=0.01)
    title = f"Training loss of {len(series)} runs (smoothing {smoothing:g}, raw trace faint)"
    if series and series[0].note:
        title += f"\n{series[0].note}"
    ax.set_title(title, fontsize=10 if not (series and series[0].note) else 8.5)
    if len(series) <= max_legend:
        _legend_below(fig, ax, ncol=2)
    return fig


# -- rolling forward -------------------------------------------------------------------------


def rolling_forward(v: views.RollingView) -> Figure:
    """|Relative error| of each forward prediction against its distance beyond the cut-off, by
    cut-off (open markers: outside the new-run band), with the mean observed error by distance
    beside the predicted one (half the new-run band)."""
    fig, (ax,) = new_figure(7.0, 4.6)
    pct = f"{round(v.level * 100)}%"
    for cutoff, colour in zip(v.cutoffs, views.palette(len(v.cutoffs)), strict=True):
        mine = v.points[v.points["cutoff"] == cutoff]
        inside, outside = mine[mine["inside"]], mine[~mine["inside"]]
        ax.scatter(inside["decades"], inside["error_pct"], color=colour, s=26, edgecolor="white",
                   linewidth=0.5, zorder=5, label=f"fitted up to {v.by} = {fmt(cutoff)} ({len(mine)})")
        ax.scatter(outside["decades"], outside["error_pct"], facecolor="none", edgecolor=colour,
                   s=26, linewidth=1.2, zorder=5)
    if len(v.bins):
        ax.plot(v.bins["decades"], v.bins["error_pct"], "-o", color="black", linewidth=1.6,
                markersize=4, label="observed: mean |error| by distance", zorder=6)
        if v.bins["band_pct"].notna().any():
            ax.plot(v.bins["decades"], v.bins["band_pct"], "--D", color="crimson", linewidth=1.4,
                    markersize=4, label=f"predicted: half the {pct} new-run band", zorder=6)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"decades of {v.by} beyond the largest fitted budget")
    ax.set_ylabel("|relative error| of the predicted loss (%)")
    ax.set_title(f"Rolling forward {v.law}: observed vs predicted error (open: outside the "
                 f"{pct} new-run band)", fontsize=9)
    _legend_below(fig, ax, ncol=2)
    return fig


# -- lr x batch grids --------------------------------------------------------------------------


def pick_grid(runs: pd.DataFrame, N: float | None = None, D: float | None = None) -> pd.DataFrame:
    """The runs of one (N, D) lr × batch grid: the given one, else the largest grid in the store.

    N and D match within 1% so values that went through a CSV round-trip still match.
    """
    df = runs.dropna(subset=["lr", "batch_tokens", "loss"])
    if df.empty:
        raise ValueError("no runs with lr, batch_tokens and loss: no lr × batch grid to show")
    if N is not None:
        df = df[np.isclose(df["N"], N, rtol=0.01)]
    if D is not None:
        df = df[np.isclose(df["D"], D, rtol=0.01)]
    if df.empty:
        raise ValueError(f"no runs with lr and batch at N={fmt(N)}, D={fmt(D)}")
    keys = df[["N", "D"]].round(-1)
    sizes = df.groupby([keys["N"], keys["D"]]).size()
    n_key, d_key = sizes.idxmax()
    return df[(keys["N"] == n_key) & (keys["D"] == d_key)]


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges at geometric midpoints, so log-spaced grid points sit in their cells' centres."""
    v = np.log(np.asarray(values, dtype=float))
    if len(v) == 1:
        return np.exp(np.array([v[0] - 0.5, v[0] + 0.5]))
    mid = (v[1:] + v[:-1]) / 2
    return np.exp(np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]]))


_MARKERS = ["D", "^", "s", "P", "v", "X", "h"]


def lr_batch_heatmap(
    runs: pd.DataFrame,
    N: float | None = None,
    D: float | None = None,
    predictions: Mapping[str, tuple[float, float]] | None = None,
    eps: float = 0.0025,
) -> Figure:
    """Final loss over an lr × batch grid at one (N, D), with each law's predicted optimum.

    ``predictions`` maps a law's label to its predicted ``(lr, batch_tokens)`` at this (N, D).
    The ε-plateau (loss within a factor ``1 + eps`` of the minimum) and the surface optimum come
    from the convex quadratic landscape of :func:`scalinglab.hparams.landscape.fit_landscape`,
    the same one the hyperparameter fit uses, so the picture and the numbers agree.
    """
    grid = pick_grid(runs, N, D)
    n_val, d_val = float(grid["N"].median()), float(grid["D"].median())
    table = grid.pivot_table(index="batch_tokens", columns="lr", values="loss", aggfunc="mean")
    lrs, batches = table.columns.to_numpy(dtype=float), table.index.to_numpy(dtype=float)
    z = table.to_numpy(dtype=float)
    best = grid.loc[grid["loss"].idxmin()]
    fig, (ax,) = new_figure(7.2, 5.8)
    finite = z[np.isfinite(z)]
    vmin = float(finite.min())
    # diverged runs would wash out the colour scale; show everything > +15% as grey
    vmax = float(min(finite.max(), vmin * 1.15))
    cmap = mpl.colormaps["magma_r"].with_extremes(over="#d9d9d9", bad="white")
    mesh = ax.pcolormesh(_edges(lrs), _edges(batches), np.ma.masked_invalid(z), cmap=cmap,
                         norm=Normalize(vmin, vmax), shading="flat")
    if z.size <= 144:
        for (i, j), val in np.ndenumerate(z):
            if np.isfinite(val):
                dark = vmin + 0.5 * (vmax - vmin) < val <= vmax
                ax.text(lrs[j], batches[i], f"{val:.3f}", ha="center", va="center", fontsize=6.5,
                        color="white" if dark else "black")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(LABELS["lr"])
    ax.set_ylabel(LABELS["batch_tokens"])
    ax.grid(False, which="both")
    clipped = bool(finite.max() > vmax)
    label = f"final {LABELS['loss']}" + (f" (grey: > {fmt(vmax)})" if clipped else "")
    fig.colorbar(mesh, ax=ax, label=label, pad=0.01, extend="max" if clipped else "neither")

    note = ""
    try:
        land = fit_landscape(grid)
    except NotIdentifiable as exc:
        land, note = None, f"\nno plateau: {exc}"
    if land is not None:
        lr_e, b_e = _edges(lrs), _edges(batches)
        LR, B = np.meshgrid(np.geomspace(lr_e[0], lr_e[-1], 240), np.geomspace(b_e[0], b_e[-1], 240))
        excess = land.excess(LR, B)
        if (excess <= eps).any():
            ax.contour(LR, B, excess, levels=[eps], colors="deepskyblue", linewidths=2.0)
            ax.plot([], [], color="deepskyblue", linewidth=2,
                    label=f"ε-plateau: loss ≤ (1 + {eps:g})·min of quadratic fit")
        opt = land.optimum
        ax.plot(opt["lr"], opt["batch_tokens"], "+", color="deepskyblue", markersize=14,
                markeredgewidth=2.2, zorder=7,
                label=f"surface optimum: lr={fmt(opt['lr'])}, B={fmt(opt['batch_tokens'])}")
    ax.plot(best["lr"], best["batch_tokens"], "*", color="gold", markersize=15,
            markeredgecolor="black", zorder=7,
            label=f"best run: lr={fmt(best['lr'])}, B={fmt(best['batch_tokens'])}, "
            f"loss={best['loss']:.4f}")
    for k, (name, (lr, batch)) in enumerate((predictions or {}).items()):
        ax.plot(lr, batch, _MARKERS[k % len(_MARKERS)], color=f"C{k}", markersize=10,
                markeredgecolor="white", markeredgewidth=1.2, zorder=8,
                label=f"{name}: lr={fmt(lr)}, B={fmt(batch)}")
    # predictions outside the grid still show: widen the limits to include them
    xs = [*_edges(lrs)[[0, -1]], *[p[0] for p in (predictions or {}).values()]]
    ys = [*_edges(batches)[[0, -1]], *[p[1] for p in (predictions or {}).values()]]
    ax.set_xlim(min(xs) / 1.2, max(xs) * 1.2)
    ax.set_ylim(min(ys) / 1.2, max(ys) * 1.2)
    ax.set_title(f"lr × batch grid at N = {fmt(n_val)}, D = {fmt(d_val)} ({len(grid)} runs)"
                 + note, fontsize=10)
    _legend_below(fig, ax, ncol=2)
    return fig


# -- IsoFLOP -----------------------------------------------------------------------------------


def _ci_text(value: float, ci: tuple[float, float] | None) -> str:
    return f"{fmt(value)} [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else fmt(value)


def _allocation_title(law: AllocationLaw | None) -> str:
    if law is None:
        return "no allocation law"
    ci = law.ci
    return (f"Approach {law.approach} on {law.n_budgets} budgets: N_opt ∝ C^a, a = "
            f"{_ci_text(law.a, ci.get('a'))}\nD_opt ∝ C^b, b = {_ci_text(law.b, ci.get('b'))}")


def isoflop_curves(runs: pd.DataFrame, iso: IsoFlopResult) -> Figure:
    """Loss vs N at each compute budget with its fitted parabola (in ln N) and the vertex, one
    legend entry per budget.

    Each budget shows the runs the fit assigned to it (``budgets[i].run_ids``), never a regrouping
    of its own; budgets the fit excluded (no interior minimum) are drawn dashed and say why.
    """
    fig, (ax,) = new_figure(7.4, 5.4)
    series = views.isoflop_series(runs, iso)
    for s in series:
        if len(s.runs):
            ax.scatter(s.runs["N"], s.runs["loss"], color=s.colour, s=24, edgecolor="white",
                       linewidth=0.5, zorder=5, label=s.label)
        if len(s.curve_N):
            ax.plot(s.curve_N, s.curve_loss, color=s.colour, linewidth=1.4,
                    linestyle="-" if s.ok else "--")
        if s.vertex is not None:
            ax.plot(*s.vertex, "D", color=s.colour, markeredgecolor="black", markersize=7, zorder=7)
    ok = [s for s in series if s.vertex is not None]
    if ok:
        ax.plot([s.vertex[0] for s in ok], [s.vertex[1] for s in ok], ":", color="black",
                linewidth=1.0, zorder=6)
        ax.plot([], [], "D", color="white", markeredgecolor="black",
                label="parabola minimum (N_opt at that budget)")
    ax.set_xscale("log")
    _log_loss_axis(ax)
    ax.set_xlabel(LABELS["N"])
    ax.set_ylabel(LABELS["loss"])
    ax.set_title(f"IsoFLOP profiles, {len(series)} budgets ({iso.n_runs} runs)\n"
                 + _allocation_title(iso.approach2 or iso.approach1), fontsize=10)
    _legend_below(fig, ax, ncol=2)
    return fig


def _band(law: AllocationLaw, C: np.ndarray, which: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Percentile band of N_opt(C) or D_opt(C) over the allocation law's bootstrap draws, or
    None where the law has none to give (no draws, or too few usable: ``interval_problem``).
    D went through the draws itself and drew a "95% band" from the 20% of resamples that had
    two budgets (legend "[n/a, n/a]") where N, rightly, had none."""
    _, lo, hi = law.n_opt_interval(C) if which == "N" else law.d_opt_interval(C)
    return None if lo is None else (lo, hi)


def optimal_allocation(
    iso: IsoFlopResult,
    planned_compute: float | None = None,
    fit: FitResult | None = None,
    approach: int = 2,
) -> Figure:
    """N_opt(C) and D_opt(C): each budget's optimum, the fitted power law with its band,
    extrapolated to ``planned_compute`` (marked, with its interval).

    With a loss-law ``fit`` of N and D its implied optimum (Approach 3, ``fit.optimum``) is drawn
    too: when the approaches disagree beyond their bands, the plan is less certain than either
    band says.
    """
    law = iso.approach2 if approach == 2 else iso.approach1
    law = law or iso.approach1 or iso.approach2
    if law is None:
        raise ValueError("this IsoFLOP fit has no allocation law to draw")
    ok = [b for b in iso.budgets if b.ok] if law.approach == 2 else iso.budgets
    pts_c = np.array([b.C for b in ok])
    pts = {"N": np.array([b.N_opt if law.approach == 2 else b.best["N"] for b in ok]),
           "D": np.array([b.D_opt if law.approach == 2 else b.best["D"] for b in ok])}
    c_all = np.array([b.C for b in iso.budgets])
    hi_c = max(c_all.max(), planned_compute or 0.0) * 3
    C = np.geomspace(c_all.min() / 3, hi_c, 200)
    approach3 = None
    if fit is not None and {"N", "D"} <= set(fit.law.inputs):
        approach3 = views.loss_law_allocation(fit, C)
    fig, axes = new_figure(11.0, 4.6, ncols=2)
    for ax, which in zip(axes, ("N", "D"), strict=True):
        curve = law.n_opt(C) if which == "N" else law.d_opt(C)
        ax.plot(C, curve, color="#1f4e79", linewidth=1.8,
                label=f"Approach {law.approach} power law")
        band = _band(law, C, which)
        if band is not None:
            ax.fill_between(C, band[0], band[1], color="#1f4e79", alpha=0.18, linewidth=0,
                            label=f"{round(law.level * 100)}% band (bootstrap)")
        ax.scatter(pts_c, pts[which], color="black", s=30, zorder=5,
                   label="optimum per budget" if law.approach == 2 else "best run per budget")
        if approach3 is not None:
            a3 = approach3.N if which == "N" else approach3.D
            a3_band = approach3.N_band if which == "N" else approach3.D_band
            faded = not approach3.identified
            if a3_band is not None:
                ax.fill_between(C, a3_band[0], a3_band[1], color="grey" if faded else "darkorange",
                                alpha=0.08 if faded else 0.15, linewidth=0)
            ax.plot(C, a3, ":" if faded else "--", color="darkorange", linewidth=1.4,
                    alpha=0.5 if faded else 1.0,
                    label=f"Approach 3 ({fit.law.name} law)"
                    + (" — not identified" if faded else " — used by the plan"))
        ax.axvspan(c_all.max(), C[-1], color="grey", alpha=0.13, label="beyond the data")
        if planned_compute:
            cp = np.array([float(planned_compute)])
            value = float((law.n_opt(cp) if which == "N" else law.d_opt(cp))[0])
            pb = _band(law, cp, which)
            yerr = None if pb is None else [[value - pb[0][0]], [pb[1][0] - value]]
            # the plan allocates with the loss law (Approach 3) when there is one: the star goes
            # on that curve, and this approach's value at the same budget is marked as just that
            planned_here = approach3 is None
            ax.errorbar(cp, [value], yerr=yerr, fmt="*" if planned_here else "D",
                        color="crimson" if planned_here else "#1f4e79",
                        markersize=13 if planned_here else 7, capsize=4, zorder=7,
                        mfc=None if planned_here else "white",
                        label=(f"planned C = {fmt(cp[0])}: " if planned_here else
                               f"Approach {law.approach} at the planned C: ") + f"{which}_opt = "
                        + _ci_text(value, None if pb is None else (pb[0][0], pb[1][0])))
            if approach3 is not None:
                i = int(np.argmin(np.abs(np.log(C) - np.log(cp[0]))))
                v3 = float((approach3.N if which == "N" else approach3.D)[i])
                if approach3.identified and np.isfinite(v3):
                    ax.plot(cp, [v3], "*", color="crimson", markersize=14, zorder=8,
                            label=f"the plan (Approach 3) at C = {fmt(cp[0])}: {which}_opt = {fmt(v3)}")
                else:
                    ax.axvline(cp[0], color="crimson", linestyle=":", linewidth=1.2,
                               label=f"planned C = {fmt(cp[0])}: no plan, Approach 3 not identified")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(LABELS["C"])
        ax.set_ylabel(f"{which}_opt, " + LABELS[which].split(", ")[1])
        ax.legend(fontsize=7.5, loc="upper left", frameon=True, framealpha=0.9)
    fig.suptitle(_allocation_title(law), fontsize=10)
    return fig


# -- downstream metrics and test-time coverage -------------------------------------------------


def link_figure(links: Sequence[Any], max_metrics: int = 8) -> Figure:
    """Loss to metric: each metric's models, fitted link and bootstrap band (the first
    ``max_metrics`` metrics; the interactive chart lists them all)."""
    fig, (ax,) = new_figure(7.0, 4.8)
    shown = list(links)[:max_metrics]
    colours = views.palette(len(shown)) if len(shown) > 1 else ["#1f4e79"]
    for v, colour in zip(shown, colours, strict=True):
        if v.has_band:
            ax.fill_between(v.grid, v.lo, v.hi, color=colour, alpha=0.16, linewidth=0)
        ax.plot(v.grid, v.point, color=colour, linewidth=1.8, linestyle="-" if v.identified else ":")
        ax.scatter(v.x, v.y, color=colour, s=22, edgecolor="white", linewidth=0.5, zorder=5,
                   label=v.metric)
    first = shown[0]
    ax.set_xlabel(LABELS.get(first.x_name, first.x_name))
    ax.set_ylabel(first.metric if len(shown) == 1 else "metric")
    more = f", first {len(shown)} of {len(links)}" if len(links) > len(shown) else ""
    band = f"; band {round(first.level * 100)}% bootstrap" if first.has_band else ""
    ax.set_title(f"{first.formula} ({first.x_name} -> metric{more}{band})", fontsize=9)
    if len(shown) > 1:
        _legend_below(fig, ax, ncol=4)
    return fig


def benchmark_figure(v: Any) -> Figure:
    """A metric against compute: fitted and scored models, the sigmoid with its band, the floor
    and ceiling, the cut-off and the extrapolated region shaded."""
    fig, (ax,) = new_figure(7.0, 4.6)
    ax.set_xscale("log")
    x0, x1 = v.extrapolation
    ax.axvspan(x0, x1, color="grey", alpha=0.12, linewidth=0, label="extrapolation: beyond the "
               "largest fitted model")
    if v.has_band:
        ax.fill_between(v.grid, v.lo, v.hi, color="#1f4e79", alpha=0.16, linewidth=0,
                        label=f"{round(v.level * 100)}% band")
    ax.plot(v.grid, v.point, color="#1f4e79", linewidth=1.8, label="sigmoid in log10 C")
    ax.scatter(v.fitted_C, v.fitted_y, color="#1f4e79", s=24, edgecolor="white", linewidth=0.5,
               zorder=5, label=f"fitted ({len(v.fitted_C)})")
    if len(v.scored_C):
        ax.scatter(v.scored_C, v.scored_y, color="crimson", marker="D", s=30, edgecolor="white",
                   linewidth=0.5, zorder=6, label=f"scored, not fitted ({len(v.scored_C)})")
    for k, (name, C, value, lo, hi) in enumerate(v.others):
        ax.errorbar(C, value, yerr=[value - lo, hi - value], fmt=["^", "s"][k % 2], markersize=5,
                    color=["#2ca02c", "#9467bd"][k % 2], linewidth=0.8, label=name, zorder=6)
    for y, label in ((v.floor, "floor"), (v.ceiling, "ceiling")):
        ax.axhline(y, color="grey", linestyle=":", linewidth=0.9)
        ax.annotate(f"{label} {fmt(y)}", (0.005, y), xycoords=("axes fraction", "data"), fontsize=7,
                    color="dimgrey", va="bottom" if label == "floor" else "top")
    if v.fit_below:
        ax.axvline(v.fit_below, color="black", linestyle="--", linewidth=0.8)
    ax.set_xlabel(LABELS["C"])
    ax.set_ylabel(v.metric)
    title = f"{v.metric} against compute"
    if v.mae is not None:
        title += f" (mean |error| on scored models {fmt(v.mae.value)})"
    ax.set_title(title, fontsize=10)
    _legend_below(fig, ax, ncol=3)
    return fig


def coverage_figure(v: Any) -> Figure:
    """Coverage against samples per problem (log k): observed pass@k with intervals, the
    fitted law with its band, and the k each target coverage needs."""
    fig, (ax,) = new_figure(7.0, 4.4)
    ax.set_xscale("log")
    if v.grid is not None:
        if v.grid[-1] > v.max_k:
            ax.axvspan(v.max_k, v.grid[-1], color="grey", alpha=0.12, linewidth=0,
                       label="beyond the largest k observed")
        if v.has_band:
            ax.fill_between(v.grid, v.lo, v.hi, color="#1f4e79", alpha=0.16, linewidth=0,
                            label=f"{round(v.level * 100)}% band")
        ax.plot(v.grid, v.point, color="#1f4e79", linewidth=1.8, label=v.formula)
    err = None
    if np.isfinite(v.obs_lo).all():
        err = [v.observed - v.obs_lo, v.obs_hi - v.observed]
    ax.errorbar(v.ks, v.observed, yerr=err, fmt="o", color="black", markersize=4, linewidth=0.8,
                label="observed pass@k (unbiased)", zorder=5)
    for t, est in v.targets:
        if not math.isfinite(est.value):
            continue
        xerr = None if est.ci is None else [[est.value - est.lo], [est.hi - est.value]]
        ax.errorbar([est.value], [t], xerr=xerr, fmt="*", color="crimson", markersize=11, zorder=6,
                    label=f"coverage {t:g}: k = {fmt(est.value)}")
        ax.hlines(t, 1, est.value, color="crimson", linestyle=":", linewidth=0.8)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("k, samples per problem")
    ax.set_ylabel("coverage (pass@k)")
    ax.set_title(v.title, fontsize=10)
    _legend_below(fig, ax, ncol=2)
    return fig
