"""Loss-curve laws in the report and the dashboard: forecast bands, a "curves" section, and the
charts of a saved curve fit (``report --result fit.json``).

- :func:`add_forecasts` (in :mod:`scalinglab.report.forecasts`, re-exported here): the loss-curve
  chart gains a forecast band past the last logged step of each unfinished run.
- :func:`curves_section` (a registered section): at the model size with the most runs whose curve
  and schedule are known, the law fitted to all of them but the longest, which it predicts
  (held-out schedule), with the fit, the held-out error and the residuals.
- the charts of a saved :class:`~scalinglab.fit.curves.CurveFit`: observed and fitted curves, and
  the relative residuals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scalinglab.fit.curves import CurveFit, CurveRun, fit_curves, store_schedule
from scalinglab.report import charts
from scalinglab.report.forecasts import (  # noqa: F401  (re-exported: their home until now)
    FORECAST_BOOTSTRAP,
    MAX_FORECASTS,
    _records,
    add_forecasts,
    forecast_bands,
)
from scalinglab.report.saved import result_charts
from scalinglab.report.sections import Chart, Section, register_section, result_section
from scalinglab.summary import Table

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
