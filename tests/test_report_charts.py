"""Interactive charts: every spec is a valid Plotly figure (checked by plotly's own validator),
every run point carries its run id for hover and click, budgets are named in the legend, and what
the runs cannot identify is drawn faded and says so."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from report_synth import curve_for, hparam_grid, isoflop_runs, synthetic_fit

from scalinglab.clikit import to_json
from scalinglab.fit.isoflop import fit_isoflop
from scalinglab.report import charts, views
from scalinglab.summary import format_number

go = pytest.importorskip("plotly.graph_objects")


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    df = isoflop_runs()
    df["run_id"] = [f"run-{i}" for i in range(len(df))]
    return df


@pytest.fixture(scope="module")
def iso(runs):
    return fit_isoflop(runs, bootstrap=30, seed=0)


@pytest.fixture(scope="module")
def fit(runs):
    return synthetic_fit(runs)


def valid(spec: dict) -> dict:
    """The spec as the page gets it (through the JSON encoder), validated by plotly."""
    data = json.loads(to_json(spec))
    go.Figure(data)  # raises on any property plotly does not know
    return data


def run_traces(spec: dict) -> list[dict]:
    return [t for t in spec["data"] if t.get("customdata") and t.get("text")]


def test_every_chart_is_a_valid_plotly_figure(runs, iso, fit):
    b = views.budgets_of(runs, iso)
    pts = views.fit_points(runs, fit, b)
    C = views.compute_grid(iso, fit, 1e21)
    curves = {f"run-{i}": pd.DataFrame(curve_for(n, d, seed=i))
              for i, (n, d) in enumerate(zip(runs["N"][:4], runs["D"][:4], strict=True))}
    specs = [charts.parity(pts, fit, b), charts.residuals(pts, fit, b),
             charts.corner(views.corner_data(fit)), charts.runs_by_budget(runs, b, fit),
             charts.isoflop(views.isoflop_series(runs, iso), iso),
             charts.allocation([views.loss_law_allocation(fit, C), *views.isoflop_allocations(iso, C)],
                               views.budget_optima(iso), 1e21, float(runs["C"].max())),
             charts.loss_curves(views.curve_series(curves, runs, "flops", 0.6), 0.6),
             charts.lr_batch(hparam_grid(), {"steplaw": (1e-3, 1e5)}),
             charts.empty("nothing here"),
             charts.series_chart("t", "x", "y", [{"name": "a", "x": [1, 2], "y": [3, 4],
                                                  "lo": [2, 3], "hi": [4, 5]}])]
    for spec in specs:
        valid(spec)


def test_parity_points_name_their_run_and_numbers_on_hover(runs, iso, fit):
    b = views.budgets_of(runs, iso)
    spec = valid(charts.parity(views.fit_points(runs, fit, b), fit, b))
    points = [(t["customdata"][i][0], t["text"][i], t["x"][i], t["y"][i])
              for t in run_traces(spec) for i in range(len(t["x"]))]
    fitted_or_held = set(fit.run_ids) | set(fit.heldout_ids)
    assert {p[0] for p in points} == fitted_or_held
    rid, text, predicted, observed = points[0]
    row = runs.set_index("run_id").loc[rid]
    assert text.startswith(f"run {rid}<br>")
    assert f"observed loss = {format_number(row['loss'])}" in text
    assert observed == pytest.approx(row["loss"])
    assert predicted == pytest.approx(float(fit.predict(N=row["N"], D=row["D"])))
    names = [t["name"] for t in spec["data"]]
    assert "held out (not fitted)" in names
    assert any(n.startswith("C = 1e+16 (") for n in names)  # one legend entry per budget
    x_range, y_range = spec["layout"]["xaxis"]["range"], spec["layout"]["yaxis"]["range"]
    assert x_range == y_range  # the identity is the diagonal


def test_residuals_are_percent_errors_by_budget(runs, iso, fit):
    b = views.budgets_of(runs, iso)
    pts = views.fit_points(runs, fit, b)
    spec = valid(charts.residuals(pts, fit, b))
    got = {t["customdata"][i][0]: t["y"][i] for t in run_traces(spec) for i in range(len(t["y"]))
           if not t["name"].startswith("held out")}
    expected = pts[~pts["held_out"]].set_index("run_id")["residual_pct"]
    assert got == pytest.approx(expected.to_dict())
    band = views.residual_band_pct(fit)
    assert any(s.get("y1") == pytest.approx(band) for s in spec["layout"]["shapes"])


def test_isoflop_chart_labels_each_budget_with_its_runs(runs, iso):
    spec = valid(charts.isoflop(views.isoflop_series(runs, iso), iso))
    legend = [t for t in spec["data"] if t.get("showlegend", True) and t.get("customdata")]
    assert [t["name"] for t in legend] == [f"C = {format_number(bud.C, 3)} ({bud.n_runs} runs)"
                                           for bud in iso.budgets]
    for t, bud in zip(legend, iso.budgets, strict=True):
        assert sorted(c[0] for c in t["customdata"]) == sorted(bud.run_ids)


def test_corner_plot_shows_every_parameter_and_fades_the_unidentified(runs):
    fit = synthetic_fit(runs, unidentified=("E",))
    spec = valid(charts.corner(views.corner_data(fit)))
    bars = [t for t in spec["data"] if t["type"] == "bar"]
    assert [t["name"] for t in bars] == ["E", "A", "B", "α", "β"]
    assert bars[0]["opacity"] < bars[1]["opacity"]
    notes = [a["text"] for a in spec["layout"]["annotations"]]
    assert "E: not identified" in notes
    lo, hi = fit.ci["beta"]
    assert f"β = {format_number(fit.params['beta'])} [{format_number(lo)}, {format_number(hi)}]" in notes
    pairs = [t for t in spec["data"] if t["type"] == "scatter" and t["marker"]["size"] == 3]
    assert len(pairs) == 5 * 4 // 2


def test_an_allocation_band_the_runs_cannot_identify_is_drawn_faded_and_named(runs, iso):
    fit = synthetic_fit(runs, unidentified=("alpha",))
    C = views.compute_grid(iso, fit, 1e21)
    curve = views.loss_law_allocation(fit, C)
    assert not curve.identified and "alpha" in curve.note
    spec = valid(charts.allocation([curve, *views.isoflop_allocations(iso, C)],
                                   views.budget_optima(iso), 1e21, float(runs["C"].max())))
    law = next(t for t in spec["data"] if t.get("showlegend") and t["name"].startswith("loss-law fit"))
    assert "not identified" in law["name"] and law["line"]["dash"] == "dot" and law["opacity"] < 1
    assert "used by the plan" in law["name"]
    clear = views.loss_law_allocation(synthetic_fit(runs), C)
    assert clear.identified and clear.N_band is not None


def test_curves_draw_the_raw_trace_faint_under_the_smoothed_one():
    curve = pd.DataFrame(curve_for(1e7, 2e8, points=30))
    info = pd.DataFrame([{"run_id": "a", "N": 1e7, "D": 2e8, "C": 1.2e16}])
    spec = valid(charts.loss_curves(views.curve_series({"a": curve}, info, "tokens", 0.8), 0.8))
    raw, smoothed = spec["data"][0], spec["data"][1]
    assert raw["opacity"] < 0.5 and raw["showlegend"] is False
    np.testing.assert_allclose(raw["y"], curve["loss"])
    np.testing.assert_allclose(smoothed["y"], views.smooth(curve["loss"], 0.8))
    assert smoothed["customdata"][0] == ["a"]


def test_an_empty_view_says_why():
    spec = valid(charts.runs_by_budget(pd.DataFrame(columns=["run_id", "N", "D", "C", "loss"]),
                                       views.Budgets([], [], [], {})))
    assert spec["data"] == [] and "no finished runs yet" in spec["layout"]["annotations"][0]["text"]


def test_a_long_run_name_does_not_take_the_curve_charts_width():
    """The dashboard's curve overlay with a 400-character run id drew a legend as wide as the
    page and squeezed the plot to a sliver: the legend shows the name cut in the middle, the
    hover text has it whole."""
    long = "sweep-" + "y" * 388 + "-wd0.1"
    runs = pd.DataFrame([{"run_id": long, "N": 1e7, "D": 2e8, "C": 1.2e16},
                         {"run_id": "r-2", "N": 2e7, "D": 2e8, "C": 2.4e16}])
    series = views.curve_series({long: pd.DataFrame(curve_for(1e7, 2e8)),
                                 "r-2": pd.DataFrame(curve_for(2e7, 2e8))}, runs)
    spec = charts.loss_curves(series, 0.6)
    legend = [t for t in spec["data"] if t.get("showlegend", True)]
    assert sorted(t["name"] for t in legend) == ["r-2", "sweep-" + "y" * 14 + "…" + "y" * 13 + "-wd0.1"]
    mine = next(t for t in legend if t["name"].startswith("sweep-"))
    assert mine["text"][0].startswith(long + " (N = ")  # hover: the whole id


def test_a_saved_results_long_series_names_are_cut_in_its_legend_and_still_toggle_apart():
    """A saved curve fit of schedules named with 300 characters drew legend rows wider than
    the report: the series chart cuts names as the curve overlay does; each keeps its own
    legend group, so two names that cut alike still toggle apart."""
    a, b = "w" * 150 + "-a" + "w" * 150, "w" * 150 + "-b" + "w" * 150
    spec = charts.series_chart("t", "step", "loss", [
        {"name": a, "x": [1, 2], "y": [3.0, 2.9], "lo": [2.9, 2.8], "hi": [3.1, 3.0]},
        {"name": b, "x": [1, 2], "y": [3.1, 3.0], "identified": False}])
    shown = [t for t in spec["data"] if t.get("showlegend", True)]
    assert [t["name"] for t in shown] == [views.legend_name(a),
                                          views.legend_name(b) + " (not identified)"]
    assert all(len(t["name"].removesuffix(" (not identified)")) == 40 for t in shown)
    assert {t["legendgroup"] for t in spec["data"][:3]} == {a}  # band and line toggle together
    assert spec["data"][3]["legendgroup"] == b + " (not identified)"


def test_a_long_reason_is_wrapped_to_fit_the_chart_it_replaces():
    """Plotly does not wrap text: the IsoFLOP chart's 150-character reason ("not identifiable:
    IsoFLOP needs at least 2 compute budgets ...") ran off the dashboard's half-width panel,
    and an empty chart's reason off both sides. Both are broken into lines of at most
    charts.REASON_CHARS characters, every word kept."""
    import re

    from scalinglab.report.chart_table import raw_isoflop

    reason = ("not identifiable: IsoFLOP needs at least 2 compute budgets with an interior loss "
              "minimum (and 3 model sizes); found 1 budget(s) (only one budget)")
    spec = raw_isoflop(isoflop_runs(budgets=(1e16,)).assign(run_id=lambda d: [f"r{i}" for i in
                                                                           range(len(d))]), reason)
    title = spec["layout"]["title"]["text"]
    head, body = title.split("<br>", 1)
    assert head == "IsoFLOP profiles, 1 budgets, raw: no fit"
    lines = re.sub(r"</?span[^>]*>", "", body).split("<br>")
    assert len(lines) == 3 and all(len(x) <= charts.REASON_CHARS for x in lines)
    assert " ".join(lines) == reason and spec["fit_error"] == reason
    assert spec["layout"]["margin"]["t"] >= 40 + 15 * 4  # room for the title's four lines
    text = charts.empty(reason)["layout"]["annotations"][0]["text"]
    assert [len(x) <= charts.REASON_CHARS for x in text.split("<br>")] == [True, True, True]
    assert charts.empty("no runs")["layout"]["annotations"][0]["text"] == "no runs"


def test_a_run_name_is_hover_data_never_part_of_a_hover_template():
    """A run called "lr-%{y}" had its eval markers' hover read "run lr-5.43": the name sat in
    Plotly's hovertemplate, which fills %{...}. Every trace of the curve chart carries run
    names as data (text), its template only the placeholders it means."""
    rid = "lr-%{y}-<b>x</b>"
    curve = pd.DataFrame(curve_for(1e7, 2e8)).assign(eval_loss=lambda d: d["loss"] + 0.01)
    runs = pd.DataFrame([{"run_id": rid, "N": 1e7, "D": 2e8, "C": 1.2e16}])
    spec = charts.loss_curves(views.curve_series({rid: curve}, runs), 0.6)
    assert len(spec["data"]) == 3  # raw, smoothed, eval
    for t in spec["data"]:
        assert rid not in t.get("hovertemplate", "")
    evals = spec["data"][2]
    assert evals["text"][0].startswith(f"run {rid}") and "%{text}" in evals["hovertemplate"]
