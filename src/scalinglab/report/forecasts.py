"""Forecast bands on the loss-curve chart: for every overlaid run that has not reached its last
step and whose schedule is known (the sweep records it), the multi-power law fitted to the run's
own curve so far, drawn past the last logged step as a dashed line in a shaded prediction band
(:func:`scalinglab.fit.curves.forecast`).

Kept apart from :mod:`scalinglab.report.curve_report` (which builds on the report's sections)
so the chart table (:mod:`scalinglab.report.chart_table`) can draw them without importing the
sections back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import ScalingLabError
from scalinglab.fit.curves import forecast, store_schedule
from scalinglab.report import charts, views

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


__all__ = ["FORECAST_BOOTSTRAP", "MAX_FORECASTS", "add_forecasts", "forecast_bands"]
