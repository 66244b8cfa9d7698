"""Loss-curve laws in the report and the dashboard: forecast bands, a "curves" section, and the
charts of a saved curve fit (``report --result fit.json``).

- :func:`add_forecasts`: the dashboard's loss-curve overlay gains, for every overlaid run that has
  not reached its last step and whose schedule is known (the sweep records it), the multi-power
  law fitted to the run's own curve so far, drawn past the last logged step as a dashed line in
  a shaded prediction band (:func:`scalinglab.fit.curves.forecast`).
- :func:`curves_section` (a registered section): at the model size with the most runs whose curve
  and schedule are known, the law fitted to all of them but the longest, which it predicts
  (held-out schedule), with the fit, the held-out error and the residuals.
- the charts of a saved :class:`~scalinglab.fit.curves.CurveFit`: observed and fitted curves, and
  the relative residuals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import ScalingLabError
from scalinglab.fit.curves import CurveFit, CurveRun, fit_curves, forecast, store_schedule
from scalinglab.report import charts, views
from scalinglab.report.saved import result_charts
from scalinglab.report.sections import Chart, Section, register_section, result_section
from scalinglab.summary import Table

#: most runs given a forecast band in one chart (each is a fit: ~1 s)
MAX_FORECASTS = 4
#: bootstrap resamples of a dashboard forecast
FORECAST_BOOTSTRAP = 40


def _records(info: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    if info is None or not len(info):
        return {}
    return {str(r["run_id"]): r for r in info.drop_duplicates("run_id").to_dict("records")}


def forecast_bands(curves: Mapping[str, pd.DataFrame], info: pd.DataFrame | None,
                   limit: int = MAX_FORECASTS) -> list[dict[str, Any]]:
    """A forecast for each unfinished run among ``curves`` whose schedule is known: run_id, the
    frame (step, loss, lo, hi) past its last logged step, the final loss, or ``error``."""
    out: list[dict[str, Any]] = []
    for rid, rec in _records(info).items():
        c = curves.get(rid)
        if c is None or not len(c) or len(out) >= limit:
            continue
        sched = store_schedule(rec)
        if sched is None:
            continue
        last_logged = int(pd.to_numeric(c["step"], errors="coerce").max())
        if rec.get("status") == "finished" or last_logged >= sched.last_step - 1:
            continue
        try:
            frame, about = forecast(c, sched, bootstrap=FORECAST_BOOTSTRAP, level=0.9)
        except ScalingLabError as exc:
            out.append({"run_id": rid, "error": str(exc)})
            continue
        out.append({"run_id": rid, "frame": frame, **about})
    return out


def _x_of_steps(curve: pd.DataFrame, rec: Mapping[str, Any] | None, axis: str,
                steps: np.ndarray) -> np.ndarray | None:
    """The chart's x at ``steps``: steps themselves, or the run's x per step at its last point
    (tokens, FLOPs and wall time grow in proportion to steps)."""
    if axis == "step":
        return steps.astype(float)
    x, used = views.curve_x(curve, rec, axis)
    st = curve["step"].to_numpy(float)
    ok = np.isfinite(x) & np.isfinite(st) & (st > 0)
    if not views.same_axis(used, axis) or not ok.any():
        return None
    i = np.flatnonzero(ok)[-1]
    return steps * (x[i] / st[i])


def add_forecasts(spec: dict[str, Any], curves: Mapping[str, pd.DataFrame],
                  info: pd.DataFrame | None) -> dict[str, Any]:
    """The loss-curve chart ``spec`` with a forecast band past the last logged step of each
    unfinished run (see :func:`forecast_bands`); ``layout.meta.forecasts`` lists them."""
    if not spec.get("data"):
        return spec
    axis = (spec.get("layout", {}).get("meta") or {}).get("x_axis", "step")
    recs = _records(info)
    colours = {str(t.get("legendgroup")): (t.get("line") or {}).get("color")
               for t in spec["data"] if t.get("legendgroup")}
    meta = []
    for band in forecast_bands(curves, info):
        rid = band["run_id"]
        if "error" in band:
            meta.append({"run_id": rid, "error": band["error"]})
            continue
        f = band["frame"]
        x = _x_of_steps(curves[rid], recs.get(rid), axis, f["step"].to_numpy(float))
        if x is None:
            continue
        colour = colours.get(rid) or "#555555"
        group = {"legendgroup": rid, "showlegend": False, "hoverinfo": "skip"}
        spec["data"] += [
            {"type": "scatter", "mode": "lines", "x": x.tolist(), "y": f["lo"].tolist(),
             "line": {"width": 0}, "name": f"forecast {rid} lo"} | group,
            {"type": "scatter", "mode": "lines", "x": x.tolist(), "y": f["hi"].tolist(),
             "line": {"width": 0}, "fill": "tonexty", "fillcolor": charts._rgba(colour, 0.18),
             "name": f"forecast {rid} band"} | group,
            {"type": "scatter", "mode": "lines", "x": x.tolist(), "y": f["loss"].tolist(),
             "name": f"forecast {rid}", "legendgroup": rid, "showlegend": False,
             "line": {"color": colour, "width": 2, "dash": "dash"},
             "meta": {"forecast": True},
             "hovertemplate": (f"run {rid}: forecast %{{y:.4g}}<br>90% band "
                               f"{band['lo']:.4g}-{band['hi']:.4g} at step {band['last_step']}"
                               "<extra></extra>")},
        ]
        meta.append({"run_id": rid, "logged_step": band["logged_step"],
                     "last_step": band["last_step"], "x_from": float(x[0]), "x_to": float(x[-1]),
                     "loss": band["loss"], "lo": band["lo"], "hi": band["hi"],
                     "method": band["method"], "warnings": band["warnings"]})
    if meta:
        spec.setdefault("layout", {}).setdefault("meta", {})["forecasts"] = meta
    return spec


# -- the report's "curves" section --------------------------------------------------------------

def _curve_runs(store: Any, runs: pd.DataFrame) -> list[CurveRun]:
    """Finished runs with a curve and a known schedule, at the model size that has most."""
    if store is None or runs is None or not len(runs):
        return []
    recs = _records(runs)
    scheds = {rid: s for rid, r in recs.items() if (s := store_schedule(r)) is not None}
    if len(scheds) < 2:
        return []
    sizes = pd.Series({rid: recs[rid].get("N") for rid in scheds})
    size = sizes.value_counts().index[0]
    ids = [rid for rid in scheds if recs[rid].get("N") == size]
    curves = store.curves(ids)
    out = []
    for rid in ids:
        c = curves.get(rid)
        if c is None:
            continue
        st = c["step"].to_numpy(float)
        ls = c["loss"].to_numpy(float)
        sched = scheds[rid]
        keep = np.isfinite(ls) & (st > sched.peak_step) & (st <= sched.last_step)
        if keep.sum() >= 5:
            out.append(CurveRun(rid, sched, st[keep].astype(np.int64), ls[keep]))
    return out


@register_section
def curves_section(s: Any, store: Any = None) -> Section | None:
    """The multi-power law on the store's curves: fit on all but the longest run, predict it."""
    runs = _curve_runs(store, getattr(s, "runs", None))
    if len(runs) < 3:
        return None
    runs = sorted(runs, key=lambda r: (r.schedule.last_step, r.run_id))
    held, fitted = runs[-1], runs[:-1]
    fit = fit_curves(fitted, bootstrap=40)
    pred = fit.predict(held.schedule, steps=held.steps, band="prediction")
    rel = pred["loss"].to_numpy() / held.loss - 1.0
    inside = float(np.mean((held.loss >= pred["lo"]) & (held.loss <= pred["hi"])))
    table = Table("held-out schedule", ["run", "steps", "mean |error|", "max |error|",
                                        "final: observed", "final: predicted", "inside band"])
    table.add_row(held.run_id, held.schedule.steps, f"{100 * np.mean(np.abs(rel)):.3f}%",
                  f"{100 * np.max(np.abs(rel)):.3f}%", float(held.loss[-1]),
                  float(pred["loss"].iloc[-1]), f"{100 * inside:.0f}% of points")
    intro = (f"The multi-power law (Luo et al. 2025) fitted to the loss curves of {len(fitted)} "
             f"runs of one model size, predicting the longest run ({held.run_id}, "
             f"{held.schedule.steps} steps) it did not see.")
    section = result_section(fit, id="curves-law", title="Loss curves across lr schedules",
                             intro=intro, charts=fit_charts(fit, "curves_law", extra=held,
                                                            predicted=pred))
    section.parts.insert(1, table.as_html())
    return section


# -- charts of a curve fit ----------------------------------------------------------------------

@result_charts("curve_fit")
def saved_fit_charts(fit: CurveFit, prefix: str) -> list[Chart]:
    return fit_charts(fit, prefix)


def fit_charts(fit: CurveFit, prefix: str, extra: CurveRun | None = None,
               predicted: pd.DataFrame | None = None) -> list[Chart]:
    def curves() -> dict[str, Any]:
        series: list[dict[str, Any]] = []
        for rid, p in fit.points.items():
            series.append({"name": f"{rid} (observed)", "x": p["step"], "y": p["loss"],
                           "mode": "markers"})
            series.append({"name": f"{rid} (fitted)", "x": p["step"], "y": p["fitted"]})
        if extra is not None and predicted is not None:
            series.append({"name": f"{extra.run_id} (held out, observed)", "x": extra.steps,
                           "y": extra.loss, "mode": "markers"})
            series.append({"name": f"{extra.run_id} (predicted)", "x": predicted["step"],
                           "y": predicted["loss"], "lo": predicted["lo"], "hi": predicted["hi"]})
        return charts.series_chart(f"{fit.law.title}: loss curves, observed and fitted", "step",
                                   "loss", series, log_x=True, log_y=True)

    def residuals() -> dict[str, Any]:
        res = fit.residuals()
        series = [{"name": str(rid), "x": g["step"], "y": 100 * g["rel_error"], "mode": "markers"}
                  for rid, g in res.groupby("run", sort=False)]
        return charts.series_chart("relative residuals of the fitted curves (%)", "step",
                                   "fitted / observed - 1 (%)", series, log_x=True)

    return [Chart(f"{prefix}_curves", "loss curves: observed, fitted and predicted", curves),
            Chart(f"{prefix}_residuals", "relative residuals per step", residuals)]


__all__ = ["add_forecasts", "curves_section", "fit_charts", "forecast_bands"]
