"""Interactive charts: Plotly figure specs (``{"data": [...], "layout": {...}}``) built from the
results, for the HTML report and the dashboard.

A spec is plain JSON-able data, drawn in the page by the plotly.js that ships inside the
``plotly`` Python package (embedded once in the report, served locally by the dashboard: nothing
is fetched from the network). This module needs neither plotly nor matplotlib to build a spec.

Every point that stands for a run carries the run id as its ``customdata`` (so a click opens the
run) and a hover text with its numbers, formatted by :func:`scalinglab.summary.format_number`
like every other number the report shows. Budgets are coloured along one palette and named in
the legend (click an entry to hide it, double-click to isolate it). What the points and curves
are comes from :mod:`scalinglab.report.views`, which the static figures draw too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.fit.isoflop import IsoFlopResult
from scalinglab.fit.result import FitResult
from scalinglab.report import views
from scalinglab.summary import format_interval, format_number, symbol

Spec = dict[str, Any]

LABELS = views.LABELS
HELD_OUT = "#c62828"
#: most runs named in a curve chart's legend
MAX_CURVE_LEGEND = 12
NEUTRAL = "#5b6672"
FADED = "#9aa4ae"


def _axis(title: str, log: bool = False, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"title": {"text": title, "font": {"size": 12}}, "zeroline": False,
                           "gridcolor": "#e8ebee", "linecolor": "#c5ccd3", "ticks": "outside",
                           "automargin": True}
    if log:
        out |= {"type": "log", "exponentformat": "power", "dtick": None}
    return out | extra


def _layout(title: str, x: dict[str, Any], y: dict[str, Any], height: int = 430,
            **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 13}, "x": 0.01, "xanchor": "left"},
        "xaxis": x, "yaxis": y, "height": height, "hovermode": "closest",
        "margin": {"l": 64, "r": 18, "t": 48, "b": 40},
        # below the axes, measured from the figure's bottom: plotly makes room for it
        "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0,
                   "font": {"size": 11}},
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        "plot_bgcolor": "#ffffff", "paper_bgcolor": "#ffffff",
    } | extra


def _list(a: Any) -> list[Any]:
    arr = np.asarray(a, dtype=float)
    return [None if not math.isfinite(v) else float(v) for v in arr.ravel()]


def _hover(df: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    return [views.hover_text(r, keys) for r in df.to_dict("records")]


#: characters per line of a reason drawn in a chart: Plotly does not wrap text, and a
#: 150-character reason ran off both sides of a half-width dashboard panel (about 85 fit)
REASON_CHARS = 72


def wrap_reason(text: str, width: int = REASON_CHARS) -> str:
    """``text`` broken into lines of at most ``width`` characters for a Plotly title or
    annotation (``<br>`` between them; a longer word stays whole)."""
    import textwrap

    return "<br>".join(textwrap.wrap(str(text), width, break_long_words=False,
                                     break_on_hyphens=False)) or str(text)


def empty(message: str, title: str = "") -> Spec:
    """A chart that says why it is empty (no axes, the reason centred, wrapped to fit)."""
    return {"data": [], "layout": {
        "title": {"text": title, "font": {"size": 13}, "x": 0.01, "xanchor": "left"},
        "height": 220, "xaxis": {"visible": False}, "yaxis": {"visible": False},
        "annotations": [{"text": wrap_reason(message), "showarrow": False, "xref": "paper", "yref": "paper",
                         "x": 0.5, "y": 0.5, "font": {"size": 13, "color": NEUTRAL}}],
        "margin": {"l": 20, "r": 20, "t": 40, "b": 20}}}


def _run_points(df: pd.DataFrame, x: str, y: str, name: str, colour: str, keys: Sequence[str],
                *, group: str | None = None, size: int = 8, symbol_: str = "circle",
                show: bool = True, line_colour: str = "#ffffff") -> dict[str, Any]:
    return {
        "type": "scatter", "mode": "markers", "name": name, "x": _list(df[x]), "y": _list(df[y]),
        "customdata": [[str(r)] for r in df["run_id"]], "text": _hover(df, keys),
        "hovertemplate": "%{text}<extra></extra>", "legendgroup": group or name, "showlegend": show,
        "marker": {"color": colour, "size": size, "symbol": symbol_,
                   "line": {"color": line_colour, "width": 1}},
    }


# -- fit quality ------------------------------------------------------------------------------


def parity(points: pd.DataFrame, fit: FitResult, budgets: views.Budgets) -> Spec:
    """Observed vs predicted loss for every run, one legend entry per budget, the identity line
    and the ``±2σ`` residual spread; held-out runs ringed in red."""
    if points.empty:
        return empty("no runs to compare with the fit", "Predicted vs observed loss")
    keys = [k for k in (*fit.law.inputs, "C") if k in points] + ["observed", "predicted", "residual_pct"]
    lo = float(np.nanmin(points[["observed", "predicted"]].to_numpy()))
    hi = float(np.nanmax(points[["observed", "predicted"]].to_numpy()))
    lo, hi = lo / 1.02, hi * 1.02
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines", "x": [lo, hi], "y": [lo, hi], "name": "observed = predicted",
        "line": {"color": "#1d232a", "width": 1}, "hoverinfo": "skip"}]
    band = views.residual_band_pct(fit)
    if band is not None:
        f = 1 + band / 100
        data += [{"type": "scatter", "mode": "lines", "x": [lo, hi], "y": [lo * f, hi * f],
                  "name": "±2σ of the residuals", "legendgroup": "band",
                  "line": {"color": FADED, "width": 1, "dash": "dot"}, "hoverinfo": "skip"},
                 {"type": "scatter", "mode": "lines", "x": [lo, hi], "y": [lo / f, hi / f],
                  "name": "±2σ", "legendgroup": "band", "showlegend": False,
                  "line": {"color": FADED, "width": 1, "dash": "dot"}, "hoverinfo": "skip"}]
    data += _by_budget(points[~points["held_out"]], "predicted", "observed", budgets, keys)
    held = points[points["held_out"]]
    if len(held):
        data.append(_run_points(held, "predicted", "observed", "held out (not fitted)", "rgba(0,0,0,0)",
                                keys, size=13, line_colour=HELD_OUT) | {
            "marker": {"color": "rgba(0,0,0,0)", "size": 13, "line": {"color": HELD_OUT, "width": 2}}})
    title = f"Predicted vs observed loss: {fit.law.name}, {fit.n_runs} runs"
    if fit.holdout is not None:
        title += f" (held out: mean |error| {100 * fit.holdout.mean_abs_rel_err:.2f}%)"
    # the same range on both axes, so the identity is the diagonal
    span = [math.log10(lo), math.log10(hi)]
    return {"data": data, "layout": _layout(
        title, _axis("predicted loss (nats/token)", log=True, range=span),
        _axis("observed loss (nats/token)", log=True, range=span), height=470)}


def _by_budget(df: pd.DataFrame, x: str, y: str, budgets: views.Budgets, keys: Sequence[str]
               ) -> list[dict[str, Any]]:
    out = []
    for b in sorted(set(df["budget"])):
        mine = df[df["budget"] == b]
        if b < 0:
            out.append(_run_points(mine, x, y, "no budget", NEUTRAL, keys))
            continue
        out.append(_run_points(mine, x, y, f"{budgets.labels[b]} ({len(mine)})", budgets.colours[b],
                               keys, group=budgets.labels[b]))
    return out


def residuals(points: pd.DataFrame, fit: FitResult, budgets: views.Budgets) -> Spec:
    """Relative residual (%) of every run against compute, by budget, in the ``±2σ`` band:
    a trend with C says the law's form is wrong even when the intervals look tight."""
    if points.empty:
        return empty("no runs to compare with the fit", "Residuals")
    keys = [k for k in (*fit.law.inputs, "C") if k in points] + ["observed", "predicted", "residual_pct"]
    x = "C" if "C" in points else fit.law.inputs[0]
    data = _by_budget(points[~points["held_out"]], x, "residual_pct", budgets, keys)
    held = points[points["held_out"]]
    if len(held):
        data.append(_run_points(held, x, "residual_pct", "held out (not fitted)", "rgba(0,0,0,0)", keys)
                    | {"marker": {"color": "rgba(0,0,0,0)", "size": 13,
                                  "line": {"color": HELD_OUT, "width": 2}}})
    shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0, "y1": 0,
               "line": {"color": "#1d232a", "width": 1}}]
    band = views.residual_band_pct(fit)
    if band is not None:
        shapes.append({"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": -band, "y1": band,
                       "fillcolor": "rgba(120,130,140,0.14)", "line": {"width": 0}, "layer": "below"})
    title = f"Residuals of the {fit.law.name} fit"
    if math.isfinite(fit.residual_std):
        title += f" (σ of log loss {format_number(fit.residual_std)}; band ±2σ)"
    return {"data": data, "layout": _layout(
        title, _axis(LABELS.get(x, x), log=True), _axis("residual: observed / predicted − 1 (%)"),
        shapes=shapes)}


def _axis_names(k: int) -> tuple[str, str, str, str]:
    """Trace refs and layout keys of subplot ``k`` (1-based): ``x``/``xaxis`` for the first."""
    suffix = "" if k == 1 else str(k)
    return f"x{suffix}", f"y{suffix}", f"xaxis{suffix}", f"yaxis{suffix}"


def _log10_columns(c: views.Corner, logs: Sequence[bool]) -> views.Corner:
    """The corner data with the flagged columns as log10 (estimate and interval too)."""
    from dataclasses import replace

    if not any(logs):
        return c
    draws = c.draws.copy()
    point, lo, hi = list(c.point), list(c.lo), list(c.hi)
    with np.errstate(all="ignore"):
        for j, lg in enumerate(logs):
            if lg:
                draws[:, j] = np.log10(draws[:, j])
                point[j], lo[j], hi[j] = (float(np.log10(v)) if v > 0 else float("nan")
                                          for v in (point[j], lo[j], hi[j]))
    return replace(c, draws=draws, point=point, lo=lo, hi=hi)


def corner(c: views.Corner, title: str = "") -> Spec:
    """A corner plot of the bootstrap draws of every parameter: histograms on the diagonal (with
    the estimate and the interval), pairwise scatter below. Parameters the runs do not identify
    are drawn faded and labelled "not identified"."""
    P = len(c.names)
    gap = 0.025
    size = (1.0 - gap * (P - 1)) / P
    # scale parameters spanning decades are shown as log10 on linear axes: plotly's bars cannot
    # be sized on a log axis, and log10 is how such draws are read anyway
    logs = c.log_scale
    raw = c
    c = _log10_columns(c, logs)
    labels = [f"log10 {lab}" if lg else lab for lab, lg in zip(c.labels, logs, strict=True)]
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        "title": {"text": title or f"Bootstrap draws of every parameter ({len(c.draws)} draws; "
                  f"{round(c.level * 100)}% intervals shaded)", "font": {"size": 13}, "x": 0.01},
        "height": max(440, 150 * P), "showlegend": False, "hovermode": "closest",
        "margin": {"l": 64, "r": 18, "t": 56, "b": 56}, "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 11},
    }
    data: list[dict[str, Any]] = []
    sub = c.draws[c.scatter_rows] if len(c.scatter_rows) else c.draws
    for i in range(P):
        for j in range(i + 1):
            xa, ya, xkey, ykey = _axis_names(i * P + j + 1)
            faded = not (c.identified[i] and c.identified[j])
            colour = FADED if faded else "#2f6fb3"
            x_dom = [j * (size + gap), j * (size + gap) + size]
            y_dom = [1 - (i + 1) * size - i * gap, 1 - i * size - i * gap]
            x_title = labels[j] + ("" if c.identified[j] else " (not identified)")
            layout[xkey] = _axis(x_title if i == P - 1 else "", domain=x_dom,
                                 anchor=ya, showticklabels=i == P - 1)
            if i == j:
                centres, counts = views.histogram(c.draws[:, j])
                layout[ykey] = _axis("", domain=y_dom, anchor=xa, showticklabels=False)
                data.append({"type": "bar", "x": _list(centres), "y": [int(v) for v in counts],
                             "xaxis": xa, "yaxis": ya, "marker": {"color": colour},
                             "opacity": 0.35 if faded else 0.85, "name": labels[j],
                             "hovertemplate": f"{labels[j]} ≈ %{{x:.4g}}: %{{y}} draws<extra></extra>"})
                if math.isfinite(c.lo[j]) and c.identified[j]:
                    shapes.append({"type": "rect", "xref": xa, "yref": f"{ya} domain",
                                   "x0": c.lo[j], "x1": c.hi[j], "y0": 0, "y1": 1,
                                   "fillcolor": "rgba(240,160,0,0.22)", "line": {"width": 0},
                                   "layer": "below"})
                shapes.append({"type": "line", "xref": xa, "yref": f"{ya} domain",
                               "x0": c.point[j], "x1": c.point[j], "y0": 0, "y1": 1,
                               "line": {"color": "#1d232a", "width": 1.5}})
                text = (f"{c.labels[j]} = {format_number(raw.point[j])} "
                        f"{format_interval((raw.lo[j], raw.hi[j]))}" if c.identified[j]
                        else f"{c.labels[j]}: not identified")
                notes.append({"text": text, "xref": f"{xa} domain", "yref": f"{ya} domain",
                              "x": 0.02, "y": 1.0, "xanchor": "left", "yanchor": "bottom",
                              "showarrow": False,
                              "font": {"size": 11, "color": "#1d232a" if c.identified[j] else "#b3261e"}})
            else:
                layout[ykey] = _axis(labels[i] if j == 0 else "", domain=y_dom, anchor=xa,
                                     showticklabels=j == 0)
                data.append({"type": "scatter", "mode": "markers", "x": _list(sub[:, j]),
                             "y": _list(sub[:, i]), "xaxis": xa, "yaxis": ya,
                             "marker": {"color": colour, "size": 3, "opacity": 0.25 if faded else 0.45},
                             "hovertemplate": f"{labels[j]} = %{{x:.4g}}<br>{labels[i]} = "
                                              "%{y:.4g}<extra></extra>"})
                data.append({"type": "scatter", "mode": "markers", "x": [c.point[j]],
                             "y": [c.point[i]], "xaxis": xa, "yaxis": ya, "hoverinfo": "skip",
                             "marker": {"color": "#1d232a", "size": 8, "symbol": "x"}})
    if c.n_dropped:
        notes.append({"text": f"{c.n_dropped} draws with non-finite values left out",
                      "xref": "paper", "yref": "paper", "x": 1, "y": 1.0, "xanchor": "right",
                      "yanchor": "bottom", "showarrow": False, "font": {"size": 11, "color": NEUTRAL}})
    layout["shapes"] = shapes
    layout["annotations"] = notes
    return {"data": data, "layout": layout}


# -- rolling forward --------------------------------------------------------------------------


def rolling_forward(v: views.RollingView, title: str = "") -> Spec:
    """Each forward prediction's |relative error| against its distance beyond the cut-off it was
    fitted below (one legend entry per cut-off; an open marker: the observed loss fell outside
    the law's new-run band), with the mean observed error by distance band beside the error
    the law predicted (half its new-run band): observed above predicted means the law is
    overconfident that far out."""
    if v.points.empty:
        return empty("no forward predictions", "Rolling forward")
    what = {"C": "compute", "N": "model size", "D": "tokens"}.get(v.by, v.by)
    pct = _pct(v.level)
    colours = views.palette(len(v.cutoffs))
    data: list[dict[str, Any]] = []
    for cutoff, colour in zip(v.cutoffs, colours, strict=True):
        mine = v.points[v.points["cutoff"] == cutoff]
        text = [f"run {r.run_id}<br>fitted up to {v.by} = {format_number(r.cutoff, 3)}, "
                f"{r.decades:.2f} decades beyond<br>observed {format_number(r.observed)}, "
                f"predicted {format_number(r.predicted)}<br>{pct} new-run band "
                + (format_interval((r.new_lo, r.new_hi)) if math.isfinite(r.new_lo) else "none")
                + f"<br>|error| {r.error_pct:.2f}%" + ("" if r.inside else " (outside the band)")
                for r in mine.itertuples()]
        data.append({"type": "scatter", "mode": "markers", "x": _list(mine["decades"]),
                     "y": _list(mine["error_pct"]),
                     "name": f"fitted up to {v.by} = {format_number(cutoff, 3)} ({len(mine)})",
                     "customdata": [[r] for r in mine["run_id"]], "text": text,
                     "hovertemplate": "%{text}<extra></extra>",
                     "marker": {"color": colour, "size": 8,
                                "symbol": ["circle" if i else "circle-open" for i in mine["inside"]],
                                "line": {"color": colour, "width": 1.5}}})
    bins = v.bins
    if len(bins):
        hover = [f"{b.label} decades: {b.n} predictions" for b in bins.itertuples()]
        data.append({"type": "scatter", "mode": "lines+markers", "x": _list(bins["decades"]),
                     "y": _list(bins["error_pct"]), "name": "observed: mean |error| by distance",
                     "line": {"color": "#1d232a", "width": 2}, "marker": {"color": "#1d232a", "size": 7},
                     "text": hover, "hovertemplate": "%{text}<br>mean |error| %{y:.3g}%<extra></extra>"})
        if bins["band_pct"].notna().any():
            data.append({"type": "scatter", "mode": "lines+markers", "x": _list(bins["decades"]),
                         "y": _list(bins["band_pct"]),
                         "name": f"predicted: half the {pct} new-run band",
                         "line": {"color": HELD_OUT, "width": 2, "dash": "dash"},
                         "marker": {"color": HELD_OUT, "size": 7, "symbol": "diamond"},
                         "text": hover,
                         "hovertemplate": "%{text}<br>predicted error %{y:.3g}%<extra></extra>"})
    title = title or (f"Rolling forward {v.law}: error against distance in {what} beyond the fit, "
                      "observed vs predicted")
    return {"data": data, "layout": _layout(
        title, _axis(f"decades of {v.by} beyond the largest fitted budget", rangemode="tozero"),
        _axis("|relative error| of the predicted loss (%)", rangemode="tozero"), height=450)}


# -- the overview -----------------------------------------------------------------------------


def runs_by_budget(runs: pd.DataFrame, budgets: views.Budgets, fit: FitResult | None = None
                   ) -> Spec:
    """Every finished run's loss against its compute, one colour and legend entry per budget,
    with the current fit's compute-optimal loss (the frontier) where there is a fit of N and D."""
    if runs.empty:
        return empty("no finished runs yet: import runs or start a sweep; this view updates as "
                     "they arrive", "Runs by compute budget")
    df = runs.drop_duplicates("run_id").copy()
    df["run_id"] = df["run_id"].astype(str)
    df["budget"] = [budgets.of(r) if budgets.of(r) is not None else -1 for r in df["run_id"]]
    keys = ["N", "D", "C", "loss", "lr", "batch_tokens"]
    data = _by_budget(df, "C", "loss", budgets, keys)
    if fit is not None and {"N", "D"} <= set(fit.law.inputs):
        C = np.geomspace(float(df["C"].min()) / 1.5, float(df["C"].max()) * 1.5, 40)
        frontier = _frontier(fit, C)
        vague = bool(fit.unidentified)
        if frontier is not None:
            data.insert(0, {"type": "scatter", "mode": "lines", "x": _list(C), "y": _list(frontier),
                            "name": f"{fit.law.name}: loss at the compute-optimal N, D"
                                    + (" (not identified)" if vague else ""),
                            "opacity": 0.45 if vague else 1.0,
                            "line": {"color": FADED if vague else "#1d232a", "width": 1.5,
                                     "dash": "dot" if vague else "dash"},
                            "hovertemplate": "C = %{x:.3g}<br>optimal loss = %{y:.4g}<extra></extra>"})
    n_budgets = len(set(df["budget"]) - {-1})
    return {"data": data, "layout": _layout(
        f"{len(df)} finished runs in {n_budgets} compute budgets", _axis(LABELS["C"], log=True),
        _axis(LABELS["loss"], log=True))}


def _frontier(fit: FitResult, C: np.ndarray) -> np.ndarray | None:
    from scalinglab.laws.loss import compute_optimum

    out = np.full(len(C), np.nan)
    for i, c in enumerate(C):
        try:
            n, d = compute_optimum(fit.instance, float(c))
            out[i] = float(fit.predict(N=np.array([n]), D=np.array([d]))[0])
        except (ArithmeticError, ValueError):
            continue
    return out if np.isfinite(out).any() else None


# -- IsoFLOP ----------------------------------------------------------------------------------


def isoflop(series: Sequence[views.BudgetSeries], iso: IsoFlopResult) -> Spec:
    """Loss vs N at each budget (the runs the fit put there), its parabola and the vertex; one
    legend entry per budget; excluded budgets dashed and named."""
    data: list[dict[str, Any]] = []
    for s in series:
        group = s.label
        if len(s.runs):
            data.append(_run_points(s.runs, "N", "loss", s.label, s.colour,
                                    [k for k in ("N", "D", "C", "loss") if k in s.runs], group=group))
        if len(s.curve_N):
            data.append({"type": "scatter", "mode": "lines", "x": _list(s.curve_N),
                         "y": _list(s.curve_loss), "legendgroup": group, "showlegend": False,
                         "name": f"{s.label}: parabola", "hoverinfo": "skip",
                         "line": {"color": s.colour, "width": 1.6, "dash": "solid" if s.ok else "dash"}})
        if s.vertex is not None:
            data.append({"type": "scatter", "mode": "markers", "x": [s.vertex[0]], "y": [s.vertex[1]],
                         "legendgroup": group, "showlegend": False, "name": f"{s.label}: N_opt",
                         "marker": {"symbol": "diamond", "size": 11, "color": s.colour,
                                    "line": {"color": "#1d232a", "width": 1.2}},
                         "hovertemplate": f"{s.label}<br>N_opt (vertex) = {format_number(s.vertex[0])}"
                                          f"<br>loss there = {format_number(s.vertex[1])}<extra></extra>"})
    ok = [s for s in series if s.vertex is not None]
    if len(ok) > 1:
        data.append({"type": "scatter", "mode": "lines", "x": [s.vertex[0] for s in ok],
                     "y": [s.vertex[1] for s in ok], "name": "N_opt per budget (parabola minima)",
                     "line": {"color": "#1d232a", "width": 1, "dash": "dot"}, "hoverinfo": "skip"})
    law = iso.approach2 or iso.approach1
    sub = ""
    if law is not None:
        ci = law.ci
        sub = (f": Approach {law.approach}, N_opt ∝ C^a with a = {format_number(law.a)} "
               f"{format_interval(ci.get('a'))}")
    return {"data": data, "layout": _layout(
        f"IsoFLOP profiles, {len(series)} budgets{sub}", _axis(LABELS["N"], log=True),
        _axis(LABELS["loss"], log=True), height=460)}


def allocation(curves: Sequence[views.AllocationCurve], optima: Mapping[int, pd.DataFrame],
               planned: float | None = None, data_max: float | None = None) -> Spec:
    """``N_opt(C)`` and ``D_opt(C)`` side by side: each method's power law with its band, the
    per-budget optima they were fitted to, the plan's budget, and the region beyond the data.
    A band that depends on parameters the runs do not identify is drawn faded and says so."""
    colours = {1: "#8e5ea2", 2: "#1f4e79", 3: "#d9731a"}
    data: list[dict[str, Any]] = []
    for panel, which in ((1, "N"), (2, "D")):
        xa, ya = ("x", "y") if panel == 1 else ("x2", "y2")
        for curve in curves:
            key = 3 if curve.used_by_plan else (1 if curve.name.startswith("Approach 1") else 2)
            colour = colours[key]
            name = curve.name + (" — used by the plan" if curve.used_by_plan else "")
            if not curve.identified:
                name += f" (not identified: {curve.note})" if curve.note else " (not identified)"
            band = curve.N_band if which == "N" else curve.D_band
            values = curve.N if which == "N" else curve.D
            if band is not None:
                fill = "rgba(150,160,170,0.12)" if not curve.identified else _rgba(colour, 0.16)
                data += [{"type": "scatter", "mode": "lines", "x": _list(curve.C), "y": _list(band[0]),
                          "line": {"width": 0}, "xaxis": xa, "yaxis": ya, "legendgroup": curve.name,
                          "showlegend": False, "hoverinfo": "skip", "name": f"{curve.name} band"},
                         {"type": "scatter", "mode": "lines", "x": _list(curve.C), "y": _list(band[1]),
                          "line": {"width": 0}, "fill": "tonexty", "fillcolor": fill, "xaxis": xa,
                          "yaxis": ya, "legendgroup": curve.name, "showlegend": False,
                          "hoverinfo": "skip", "name": f"{curve.name} band"}]
            data.append({"type": "scatter", "mode": "lines", "x": _list(curve.C), "y": _list(values),
                         "name": name, "legendgroup": curve.name, "showlegend": panel == 1,
                         "xaxis": xa, "yaxis": ya, "opacity": 1.0 if curve.identified else 0.45,
                         "line": {"color": colour, "width": 2,
                                  "dash": "solid" if curve.identified else "dot"},
                         "hovertemplate": f"{curve.name}<br>C = %{{x:.3g}}<br>{which}_opt = "
                                          "%{y:.4g}<extra></extra>"})
        for approach, pts in optima.items():
            if pts.empty:
                continue
            data.append({"type": "scatter", "mode": "markers", "x": _list(pts["C"]),
                         "y": _list(pts[which]), "xaxis": xa, "yaxis": ya,
                         "name": f"Approach {approach}: " + ("best run" if approach == 1 else "vertex")
                                 + " per budget",
                         "legendgroup": f"pts{approach}", "showlegend": panel == 1,
                         "customdata": [[r] for r in pts["run_id"]],
                         "marker": {"color": colours[approach], "size": 8,
                                    "symbol": "circle" if approach == 2 else "square-open"},
                         "hovertemplate": f"budget C = %{{x:.3g}}<br>{which}_opt = %{{y:.4g}}"
                                          "<extra></extra>"})
        if planned:
            for curve in curves:
                if not curve.used_by_plan:
                    continue
                i = int(np.argmin(np.abs(np.log(curve.C) - math.log(planned))))
                value = (curve.N if which == "N" else curve.D)[i]
                data.append({"type": "scatter", "mode": "markers", "x": [planned], "y": [_f(value)],
                             "xaxis": xa, "yaxis": ya, "name": f"the plan: C = {format_number(planned)}",
                             "legendgroup": "plan", "showlegend": panel == 1,
                             "marker": {"symbol": "star", "size": 15, "color": HELD_OUT},
                             "hovertemplate": f"plan: C = {format_number(planned)}<br>{which}_opt = "
                                              "%{y:.4g}<extra></extra>"})
    layout = _layout("Compute-optimal N and D: each method, and the one the plan uses",
                     _axis(LABELS["C"], log=True, domain=[0, 0.47]),
                     _axis("N_opt, non-embedding parameters", log=True), height=540)
    layout["xaxis2"] = _axis(LABELS["C"], log=True, domain=[0.55, 1.0], anchor="y2")
    layout["yaxis2"] = _axis("D_opt, training tokens", log=True, anchor="x2")
    if data_max and curves:
        top = float(np.nanmax([c.C.max() for c in curves]))
        layout["shapes"] = [{"type": "rect", "xref": xa, "yref": f"{ya} domain", "x0": data_max,
                             "x1": top, "y0": 0, "y1": 1, "fillcolor": "rgba(120,130,140,0.10)",
                             "line": {"width": 0}, "layer": "below"} for xa, ya in (("x", "y"), ("x2", "y2"))]
        layout["annotations"] = [{"text": "beyond the data", "xref": xa, "yref": f"{ya} domain",
                                  "x": math.log10(data_max), "y": 0.02, "xanchor": "left",
                                  "showarrow": False, "font": {"size": 11, "color": NEUTRAL}}
                                 for xa, ya in (("x", "y"), ("x2", "y2"))]
    return {"data": data, "layout": layout}


def _f(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# -- loss curves ------------------------------------------------------------------------------


def loss_curves(series: Sequence[views.CurveSeries], weight: float) -> Spec:
    """Each run's training loss: the raw trace faint, the smoothed one (``weight``) in its
    colour, held-out evaluations as dots; one legend entry per run (toggling all three)."""
    if not series:
        return empty("no loss curves recorded for these runs (sweeps and imports with a curve "
                     "column record them)", "Training curves")
    data: list[dict[str, Any]] = []
    axis = series[0].axis
    for s in series:
        # the legend calls a run by its name when it has one; hover gives both name and id
        who = f"run {s.run_id}" + (f" ({s.name})" if s.name else "")
        common = {"legendgroup": s.run_id, "customdata": [[s.run_id]] * len(s.x)}
        data.append({"type": "scatter", "mode": "lines", "x": _list(s.x), "y": _list(s.raw),
                     "name": f"{s.legend} raw", "showlegend": False, "opacity": 0.25,
                     "line": {"color": s.colour, "width": 1}, "hoverinfo": "skip"} | common)
        data.append({"type": "scatter", "mode": "lines", "x": _list(s.x), "y": _list(s.smoothed),
                     "name": s.legend, "line": {"color": s.colour, "width": 2},
                     "text": [f"{s.label}<br>raw loss = {format_number(r)}" for r in s.raw],
                     "hovertemplate": "%{text}<br>smoothed = %{y:.4g}<br>x = %{x:.4g}<extra></extra>"}
                    | common)
        if len(s.eval_x):
            data.append({"type": "scatter", "mode": "markers", "x": _list(s.eval_x),
                         "y": _list(s.eval_loss), "name": f"{s.legend} eval", "showlegend": False,
                         "marker": {"color": s.colour, "size": 6, "symbol": "circle-open"},
                         "legendgroup": s.run_id, "customdata": [[s.run_id]] * len(s.eval_x),
                         # the run's name as data, not template: Plotly fills "%{y}" in a name
                         "text": [who] * len(s.eval_x),
                         "hovertemplate": "%{text}<br>eval loss = %{y:.4g}<extra></extra>"})
    title = (f"Training loss of {len(series)} run{'s' if len(series) > 1 else ''} "
             f"(smoothing {weight:g}; raw trace faint, eval loss as circles)")
    note = series[0].note
    if note:  # an estimated or substituted axis is said on the chart, not only in the label
        title += f"<br><span style='font-size:11px;color:#8a5a00'>{note}</span>"
    layout = _layout(title, _axis(views.CURVE_AXIS_LABELS[axis], log=True),
                     _axis(LABELS["loss"], log=True), height=440)
    layout["meta"] = {"x_axis": axis, "x_note": note}  # the same, for the page and scripts
    if note:
        layout["margin"] = {**layout["margin"], "t": 64}
    # a legend per run beside the axes while it stays readable; beyond, hover names the run
    layout["showlegend"] = 1 < len(series) <= MAX_CURVE_LEGEND
    layout["legend"] = {"orientation": "v", "x": 1.02, "y": 1, "font": {"size": 10}}
    return {"data": data, "layout": layout}


# -- lr x batch -------------------------------------------------------------------------------


def lr_batch(grid: pd.DataFrame, predictions: Mapping[str, tuple[float, float]] | None = None
             ) -> Spec:
    """Final loss over one (N, D)'s lr × batch grid, the best run starred, each law's predicted
    optimum marked (losses above +15% of the best shown at the top of the colour scale)."""
    table = grid.pivot_table(index="batch_tokens", columns="lr", values="loss", aggfunc="mean")
    z = table.to_numpy(float)
    best = grid.loc[grid["loss"].idxmin()]
    vmin = float(np.nanmin(z))
    data: list[dict[str, Any]] = [{
        "type": "heatmap", "x": _list(table.columns), "y": _list(table.index),
        "z": [[_f(v) for v in row] for row in z], "zmin": vmin, "zmax": vmin * 1.15,
        "colorscale": "Magma", "reversescale": True, "colorbar": {"title": {"text": "loss"}},
        "hovertemplate": "lr = %{x:.3g}<br>batch = %{y:.4g}<br>loss = %{z:.4f}<extra></extra>"}]
    data.append({"type": "scatter", "mode": "markers", "x": [float(best["lr"])],
                 "y": [float(best["batch_tokens"])], "name": f"best run (loss {format_number(best['loss'])})",
                 "customdata": [[str(best.get("run_id", ""))]],
                 "marker": {"symbol": "star", "size": 16, "color": "gold",
                            "line": {"color": "#1d232a", "width": 1}},
                 "hovertemplate": "best run<br>lr = %{x:.3g}<br>batch = %{y:.4g}<extra></extra>"})
    for k, (name, (lr, batch)) in enumerate((predictions or {}).items()):
        data.append({"type": "scatter", "mode": "markers", "x": [lr], "y": [batch],
                     "name": f"{name}: lr {format_number(lr)}, batch {format_number(batch)}",
                     "marker": {"symbol": ["diamond", "triangle-up", "square", "cross"][k % 4],
                                "size": 12, "color": ["#1f77b4", "#2ca02c", "#9467bd", "#17becf"][k % 4],
                                "line": {"color": "#ffffff", "width": 1}},
                     "hovertemplate": f"{name}<br>lr = %{{x:.3g}}<br>batch = %{{y:.4g}}<extra></extra>"})
    n, d = float(grid["N"].median()), float(grid["D"].median())
    return {"data": data, "layout": _layout(
        f"lr × batch grid at N = {format_number(n, 3)}, D = {format_number(d, 3)} ({len(grid)} runs)",
        _axis(LABELS["lr"], log=True), _axis(LABELS["batch_tokens"], log=True), height=460)}


# -- any result's curves ----------------------------------------------------------------------


# -- runs across lr and batch, seeds ----------------------------------------------------------


def parallel_coordinates(runs: pd.DataFrame) -> dict[str, Any]:
    """Parallel coordinates of the runs that set lr and batch (an lr × batch grid, or a sweep
    of them): one line per run across log10 lr, log10 batch, N and D where they vary, and the
    loss, coloured by loss; drag on an axis to keep a range. A Plotly spec."""
    grid = runs.dropna(subset=["lr", "batch_tokens", "loss"]) if len(runs) else runs
    if len(grid) < 3:
        return empty("no lr × batch runs to compare")
    dims = [{"label": "log10 lr", "values": np.log10(grid["lr"].to_numpy(float)).tolist()},
            {"label": "log10 batch (tokens)",
             "values": np.log10(grid["batch_tokens"].to_numpy(float)).tolist()}]
    for col, label in (("N", "log10 N"), ("D", "log10 D")):
        if grid[col].nunique() > 1:
            dims.append({"label": label, "values": np.log10(grid[col].to_numpy(float)).tolist()})
    loss = grid["loss"].to_numpy(float)
    dims.append({"label": "loss", "values": loss.tolist()})
    trace = {"type": "parcoords", "dimensions": dims,
             "line": {"color": loss.tolist(), "colorscale": "Viridis", "reversescale": True,
                      "showscale": True, "colorbar": {"title": {"text": "loss"}}}}
    return {"data": [trace], "layout": {
        "title": {"text": f"{len(grid)} runs across lr and batch: lower loss is brighter; drag on "
                  "an axis to keep a range", "font": {"size": 13}, "x": 0.01, "xanchor": "left"},
        "height": 380, "margin": {"l": 60, "r": 40, "t": 70, "b": 30},
        "paper_bgcolor": "#ffffff"}}


def seed_bands(curves: dict[str, pd.DataFrame], runs: pd.DataFrame, groups: list[list[str]],
               axis: str = "tokens", weight: float = 0.6, points: int = 120) -> dict[str, Any]:
    """Each seed group's smoothed curves as their mean and a band of ± one standard deviation
    across seeds, on a common grid over the x range every seed covers. A Plotly spec."""
    info = {str(r["run_id"]): r for r in runs.to_dict("records")}
    groups = [[r for r in g if r in curves and len(curves[r])] for g in groups]
    groups = [g for g in groups if len(g) >= 2]
    if not groups:
        return empty("no runs that differ only in their seed (extra or tag 'seed') "
                            "among these, so no mean ± band to draw")
    colours = views.palette(len(groups))
    data: list[dict[str, Any]] = []
    used = axis
    for g, colour in zip(groups, colours, strict=True):
        xs, ys = [], []
        for rid in g:
            x, used = views.curve_x(curves[rid], info.get(rid), axis)
            y = views.smooth(curves[rid]["loss"].to_numpy(float), weight)
            keep = np.isfinite(x) & (x > 0) & np.isfinite(y)
            xs.append(x[keep])
            ys.append(y[keep])
        lo, hi = max(x.min() for x in xs), min(x.max() for x in xs)
        if not lo < hi:
            continue
        grid = np.geomspace(lo, hi, points)
        at = np.array([np.interp(np.log(grid), np.log(x), y) for x, y in zip(xs, ys, strict=True)])
        mean, sd = at.mean(axis=0), at.std(axis=0, ddof=1)
        r = info.get(g[0]) or {}
        name = (f"N = {format_number(r.get('N'), 3)}, D = {format_number(r.get('D'), 3)}"
                + (f", lr {format_number(r.get('lr'), 3)}" if pd.notna(r.get("lr")) else "")
                + f" ({len(g)} seeds)")
        rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        fill = f"rgba({rgb[0]},{rgb[1]},{rgb[2]},0.22)"
        data += [
            {"type": "scatter", "mode": "lines", "x": grid.tolist(), "y": (mean - sd).tolist(),
             "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False, "legendgroup": name},
            {"type": "scatter", "mode": "lines", "x": grid.tolist(), "y": (mean + sd).tolist(),
             "line": {"width": 0}, "fill": "tonexty", "fillcolor": fill, "hoverinfo": "skip",
             "showlegend": False, "legendgroup": name, "name": f"{name}: ± 1 sd"},
            {"type": "scatter", "mode": "lines", "x": grid.tolist(), "y": mean.tolist(),
             "name": name, "legendgroup": name, "line": {"color": colour, "width": 2},
             "customdata": [[g[0]]] * len(grid),
             "hovertemplate": f"{name}<br>mean loss %{{y:.4g}}<extra></extra>"},
        ]
    layout = {"title": {"text": f"Training loss across seeds: mean ± 1 sd, {len(groups)} "
                        f"configurations (smoothing {weight:g})", "font": {"size": 13},
                        "x": 0.01, "xanchor": "left"},
              "xaxis": {"type": "log", "title": {"text": views.CURVE_AXIS_LABELS[used]}},
              "yaxis": {"type": "log", "title": {"text": "loss"}}, "height": 440,
              "legend": {"orientation": "v", "x": 1.02, "y": 1, "font": {"size": 10}},
              "margin": {"l": 64, "r": 18, "t": 48, "b": 40}, "paper_bgcolor": "#ffffff",
              "plot_bgcolor": "#ffffff", "hovermode": "closest"}
    return {"data": data, "layout": layout}


def series_chart(title: str, x_title: str, y_title: str, series: Sequence[Mapping[str, Any]],
                 *, log_x: bool = False, log_y: bool = False) -> Spec:
    """A generic chart of named series, for results that bring their own curve data (a
    loss-to-metric link, a rolling-forward error): each series is ``{"name", "x", "y"}`` with
    optional ``"lo"``/``"hi"`` (a band), ``"mode"`` (``lines``/``markers``), ``"run_ids"``
    (one per point: hover and click open the run) and ``"identified"`` (False: drawn faded)."""
    data: list[dict[str, Any]] = []
    colours = views.palette(max(len(series), 1))
    for s, colour in zip(series, colours, strict=False):
        ok = s.get("identified", True)
        # the legend shows a long name (a run's, a metric's) cut, as the curve overlay does; the
        # group keeps it whole so two names that cut alike still toggle apart
        group = str(s["name"]) + ("" if ok else " (not identified)")
        name = views.legend_name(str(s["name"])) + ("" if ok else " (not identified)")
        if s.get("lo") is not None and s.get("hi") is not None:
            data += [{"type": "scatter", "mode": "lines", "x": _list(s["x"]), "y": _list(s["lo"]),
                      "line": {"width": 0}, "legendgroup": group, "showlegend": False,
                      "hoverinfo": "skip"},
                     {"type": "scatter", "mode": "lines", "x": _list(s["x"]), "y": _list(s["hi"]),
                      "line": {"width": 0}, "fill": "tonexty", "legendgroup": group,
                      "fillcolor": _rgba(colour, 0.16 if ok else 0.07), "showlegend": False,
                      "hoverinfo": "skip"}]
        trace = {"type": "scatter", "mode": s.get("mode", "lines"), "x": _list(s["x"]),
                 "y": _list(s["y"]), "name": name, "legendgroup": group,
                 "opacity": 1.0 if ok else 0.45, "line": {"color": colour, "width": 2},
                 "marker": {"color": colour, "size": 7}}
        if s.get("run_ids") is not None:
            trace["customdata"] = [[str(r)] for r in s["run_ids"]]
            trace["text"] = [f"run {r}" for r in s["run_ids"]]
            trace["hovertemplate"] = "%{text}<br>x = %{x:.4g}<br>y = %{y:.4g}<extra></extra>"
        data.append(trace)
    return {"data": data, "layout": _layout(title, _axis(x_title, log=log_x), _axis(y_title, log=log_y))}


def param_label(name: str) -> str:
    return symbol(name)


# -- downstream metrics and test-time coverage ---------------------------------------------------

#: metrics of a multi-metric link drawn at first (the rest are one legend click away)
LINK_VISIBLE = 8
EXTRAPOLATED = "rgba(120,130,140,0.13)"


def _band(x: Any, lo: Any, hi: Any, name: str, colour: str, group: str,
          alpha: float = 0.18, **extra: Any) -> list[dict[str, Any]]:
    """A filled band between ``lo`` and ``hi`` (two traces; the second fills to the first)."""
    common = {"type": "scatter", "mode": "lines", "x": _list(x), "legendgroup": group,
              "showlegend": False, "hoverinfo": "skip", "line": {"width": 0}} | extra
    return [common | {"y": _list(lo), "name": f"{name} (lower)"},
            common | {"y": _list(hi), "name": name, "fill": "tonexty",
                      "fillcolor": _rgba(colour, alpha)}]


def _error(value: Any, lo: Any, hi: Any) -> dict[str, Any]:
    v, lo_, hi_ = (np.asarray(a, dtype=float) for a in (value, lo, hi))
    return {"type": "data", "symmetric": False, "array": _list(hi_ - v),
            "arrayminus": _list(v - lo_), "thickness": 1.2, "width": 3}


def _pct(level: float) -> str:
    return f"{round(level * 100)}%"


def link_chart(links: Sequence[Any], title: str = "") -> Spec:
    """Loss to metric: each metric's models (a click opens the model), its fitted link and the
    link's bootstrap band, one legend group per metric (the first :data:`LINK_VISIBLE` drawn,
    the others listed in the legend, a click away)."""
    if not links:
        return empty("no metric was fitted", "Downstream links")
    data: list[dict[str, Any]] = []
    colours = views.palette(len(links)) if len(links) > 1 else ["#1f4e79"]
    for i, (v, colour) in enumerate(zip(links, colours, strict=True)):
        group = v.metric
        shown: dict[str, Any] = {} if i < LINK_VISIBLE else {"visible": "legendonly"}
        if v.has_band:
            data += _band(v.grid, v.lo, v.hi, f"{v.metric}: {_pct(v.level)} band", colour, group,
                          **shown)
        data.append({"type": "scatter", "mode": "lines", "x": _list(v.grid), "y": _list(v.point),
                     "name": f"{v.metric}: fitted link", "legendgroup": group, "showlegend": False,
                     "line": {"color": colour, "width": 2, "dash": "solid" if v.identified else "dot"},
                     "hovertemplate": f"{v.metric}<br>{v.x_name} = %{{x:.4g}}<br>fitted = "
                                      "%{y:.4g}<extra></extra>"} | shown)
        data.append({"type": "scatter", "mode": "markers", "x": _list(v.x), "y": _list(v.y),
                     "name": v.metric if len(links) > 1 else f"{v.metric}: models",
                     "legendgroup": group, "customdata": [[r] for r in v.run_ids],
                     "text": [f"{v.metric}<br>model {r}" for r in v.run_ids],
                     "hovertemplate": f"%{{text}}<br>{v.x_name} = %{{x:.4g}}<br>{v.metric} = "
                                      "%{y:.4g}<extra></extra>",
                     "marker": {"color": colour, "size": 7, "line": {"color": "#ffffff", "width": 1}}}
                    | shown)
    if not title:
        first = links[0]
        title = (f"{first.metric} against {first.x_name}: {first.formula}" if len(links) == 1 else
                 f"{len(links)} metrics against {first.x_name}: {first.formula}")
        if any(v.has_band for v in links):
            title += f" (band: {_pct(first.level)} bootstrap interval)"
    y_title = links[0].metric if len(links) == 1 else "metric"
    layout = _layout(title, _axis(LABELS.get(links[0].x_name, links[0].x_name)), _axis(y_title),
                     height=460)
    if len(links) > 1:
        layout["legend"] = {"orientation": "v", "x": 1.02, "y": 1, "font": {"size": 10}}
    return {"data": data, "layout": layout}


def benchmark_chart(v: Any, title: str = "") -> Spec:
    """A metric against training compute: the models fitted (circles) and those scored above
    the cut-off (diamonds, with the curve's prediction in their hover), the fitted sigmoid with
    its band, the floor and ceiling, and the compute beyond the largest fitted model shaded as
    extrapolation."""
    colour, scored_colour = "#1f4e79", HELD_OUT
    data: list[dict[str, Any]] = []
    if v.has_band:
        data += _band(v.grid, v.lo, v.hi, f"{_pct(v.level)} band of the curve", colour, "curve")
    data.append({"type": "scatter", "mode": "lines", "x": _list(v.grid), "y": _list(v.point),
                 "name": "sigmoid in log10 C, fitted", "legendgroup": "curve",
                 "line": {"color": colour, "width": 2},
                 "hovertemplate": "C = %{x:.3g}<br>predicted = %{y:.4g}<extra></extra>"})
    cut = f" (at or below {format_number(v.fit_below, 3)} FLOPs)" if v.fit_below else ""
    data.append({"type": "scatter", "mode": "markers", "x": _list(v.fitted_C), "y": _list(v.fitted_y),
                 "name": f"fitted on{cut} ({len(v.fitted_C)})", "customdata": [[r] for r in v.fitted_ids],
                 "text": [f"model {r} (fitted)" for r in v.fitted_ids],
                 "hovertemplate": f"%{{text}}<br>C = %{{x:.3g}}<br>{v.metric} = %{{y:.4g}}<extra></extra>",
                 "marker": {"color": colour, "size": 7, "symbol": "circle",
                            "line": {"color": "#ffffff", "width": 1}}})
    if len(v.scored_C):
        text = [f"model {r} (not fitted)<br>predicted {format_number(p)} "
                f"{format_interval((lo, hi)) if math.isfinite(lo) else ''}"
                for r, p, lo, hi in zip(v.scored_ids, v.scored_pred, v.scored_lo, v.scored_hi, strict=True)]
        data.append({"type": "scatter", "mode": "markers", "x": _list(v.scored_C), "y": _list(v.scored_y),
                     "name": f"scored, not fitted ({len(v.scored_C)})",
                     "customdata": [[r] for r in v.scored_ids], "text": text,
                     "hovertemplate": f"%{{text}}<br>C = %{{x:.3g}}<br>{v.metric} = %{{y:.4g}}<extra></extra>",
                     "marker": {"color": scored_colour, "size": 9, "symbol": "diamond",
                                "line": {"color": "#ffffff", "width": 1}}})
    for k, (name, C, value, lo, hi) in enumerate(v.others):
        data.append({"type": "scatter", "mode": "markers", "x": _list(C), "y": _list(value),
                     "name": name, "error_y": _error(value, lo, hi),
                     "marker": {"color": ["#2ca02c", "#9467bd"][k % 2], "size": 8,
                                "symbol": ["triangle-up", "square"][k % 2]},
                     "hovertemplate": f"{name}<br>C = %{{x:.3g}}<br>predicted = %{{y:.4g}}<extra></extra>"})
    x0, x1 = v.extrapolation
    shapes = [{"type": "rect", "xref": "x", "yref": "y domain", "x0": x0, "x1": x1, "y0": 0, "y1": 1,
               "fillcolor": EXTRAPOLATED, "line": {"width": 0}, "layer": "below",
               "name": "extrapolation"}]
    notes = [{"text": "extrapolation: beyond the largest fitted model", "xref": "x", "yref": "y domain",
              "x": math.log10(x0), "y": 0.98, "xanchor": "left", "yanchor": "top", "showarrow": False,
              "font": {"size": 11, "color": NEUTRAL}}]
    for y, label in ((v.floor, "floor"), (v.ceiling, "ceiling")):
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
                       "line": {"color": FADED, "width": 1, "dash": "dot"}, "name": label})
        notes.append({"text": f"{label} {format_number(y, 3)}", "xref": "paper", "x": 0.005, "y": y,
                      "xanchor": "left", "yanchor": "bottom" if label == "floor" else "top",
                      "showarrow": False, "font": {"size": 10, "color": NEUTRAL}})
    if v.fit_below:
        shapes.append({"type": "line", "xref": "x", "yref": "y domain", "x0": v.fit_below,
                       "x1": v.fit_below, "y0": 0, "y1": 1, "name": "cut-off",
                       "line": {"color": "#1d232a", "width": 1, "dash": "dash"}})
    if not title:
        title = f"{v.metric} against training compute"
        if v.mae is not None:
            title += f" (mean |error| on the scored models {format_number(v.mae.value, 3)})"
    lo_y = min(v.floor, float(np.nanmin(np.concatenate([v.fitted_y, v.scored_y]))))
    hi_y = max(v.ceiling, float(np.nanmax(np.concatenate([v.fitted_y, v.scored_y]))))
    pad = 0.04 * (hi_y - lo_y or 1.0)
    return {"data": data, "layout": _layout(
        title, _axis(LABELS["C"], log=True), _axis(v.metric, range=[lo_y - pad, hi_y + pad]),
        height=460, shapes=shapes, annotations=notes)}


def coverage_chart(v: Any, title: str = "") -> Spec:
    """Coverage against samples per problem on a log-k axis: the observed unbiased pass@k with
    its interval, the fitted exponentiated power law with its band (k beyond the largest observed
    shaded), and the samples each target coverage needs, with their interval."""
    colour = "#1f4e79"
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    if v.grid is not None:
        if v.has_band:
            data += _band(v.grid, v.lo, v.hi, f"{_pct(v.level)} band of the law", colour, "law")
        data.append({"type": "scatter", "mode": "lines", "x": _list(v.grid), "y": _list(v.point),
                     "name": f"fitted: {v.formula}", "legendgroup": "law",
                     "line": {"color": colour, "width": 2},
                     "hovertemplate": "k = %{x:.4g}<br>coverage = %{y:.4g}<extra></extra>"})
        if v.grid[-1] > v.max_k:
            shapes.append({"type": "rect", "xref": "x", "yref": "y domain", "x0": v.max_k,
                           "x1": float(v.grid[-1]), "y0": 0, "y1": 1, "fillcolor": EXTRAPOLATED,
                           "line": {"width": 0}, "layer": "below", "name": "extrapolation"})
            notes.append({"text": "beyond the largest k observed", "xref": "x", "yref": "y domain",
                          "x": math.log10(v.max_k), "y": 0.02, "xanchor": "left", "yanchor": "bottom",
                          "showarrow": False, "font": {"size": 11, "color": NEUTRAL}})
    data.append({"type": "scatter", "mode": "markers", "x": _list(v.ks), "y": _list(v.observed),
                 "name": "observed pass@k (unbiased)", "error_y": _error(v.observed, v.obs_lo, v.obs_hi),
                 "marker": {"color": "#1d232a", "size": 7},
                 "hovertemplate": "k = %{x}<br>pass@k = %{y:.4g}<extra></extra>"})
    for t, est in v.targets:
        k = est.value
        if not math.isfinite(k):
            notes.append({"text": f"coverage {t:g}: not reached by the law", "xref": "paper",
                          "yref": "y", "x": 0.99, "y": t, "xanchor": "right", "showarrow": False,
                          "font": {"size": 11, "color": HELD_OUT}})
            continue
        err = {} if est.ci is None else {"error_x": _error([k], [est.lo], [est.hi])}
        extra = " (extrapolated)" if k > v.max_k else ""
        data.append({"type": "scatter", "mode": "markers", "x": [k], "y": [t],
                     "name": f"coverage {t:g}: k = {format_number(k, 3)} "
                             f"{format_interval(est.ci, 3) if est.ci else ''}{extra}".rstrip(),
                     "marker": {"symbol": "star", "size": 14, "color": HELD_OUT,
                                "line": {"color": "#1d232a", "width": 1}},
                     "hovertemplate": f"coverage {t:g}<br>k = %{{x:.4g}}<extra></extra>"} | err)
        shapes.append({"type": "line", "xref": "x", "yref": "y", "x0": 1, "x1": k, "y0": t, "y1": t,
                       "line": {"color": HELD_OUT, "width": 1, "dash": "dot"}, "name": "target"})
    return {"data": data, "layout": _layout(
        title or v.title, _axis("k, samples per problem", log=True),
        _axis("coverage (pass@k)", range=[0, 1.02]), height=440, shapes=shapes, annotations=notes)}
