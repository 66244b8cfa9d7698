"""Static figures: each is a fresh Figure (no pyplot state), on log axes with units, showing the
fit's quality (parity, residuals by budget, the draws of every parameter), IsoFLOP budgets as the
fit assigned them, and smoothed curves, the way the docstrings promise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from report_synth import GRID_D, GRID_N, curve_for, hparam_grid, isoflop_runs, synthetic_fit

from scalinglab.fit.isoflop import IsoFlopResult, fit_isoflop
from scalinglab.fit.result import FitResult
from scalinglab.report import figures, views
from scalinglab.summary import format_number

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    df = isoflop_runs()
    df["run_id"] = [f"run-{i}" for i in range(len(df))]
    return df


@pytest.fixture(scope="module")
def fit(runs: pd.DataFrame) -> FitResult:
    """A FitResult at the true parameters with spread-out draws, as a bootstrap would give."""
    return synthetic_fit(runs)


def labels_of(fig: Figure) -> list[str]:
    """Legend entries (legends sit below the axes, on the figure)."""
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def test_figures_leave_no_pyplot_state_and_render_to_png(runs, fit, iso):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    built = [figures.parity(runs, fit, iso), figures.residuals(runs, fit), figures.corner(fit),
             figures.bootstrap_distributions(fit), figures.lr_batch_heatmap(hparam_grid()),
             figures.isoflop_curves(runs, iso), figures.optimal_allocation(iso, 1e20)]
    assert plt.get_fignums() == before
    for fig in built:
        assert isinstance(fig, Figure)
        png = figures.to_png(fig, dpi=50)
        assert png.startswith(PNG_MAGIC) and len(png) > 5000
    assert figures.to_svg(built[0]).lstrip().startswith("<?xml")


def test_parity_puts_each_run_at_predicted_and_observed_loss_by_budget(runs, fit, iso):
    fig = figures.parity(runs, fit, iso)
    ax = fig.axes[0]
    pts = views.fit_points(runs, fit, views.budgets_of(runs, iso))
    shown = np.vstack([c.get_offsets() for c in ax.collections[:-1]])  # the last: held-out rings
    fitted = pts[~pts["held_out"]]
    np.testing.assert_allclose(np.sort(shown[:, 0]), np.sort(fitted["predicted"]))
    np.testing.assert_allclose(np.sort(shown[:, 1]), np.sort(fitted["observed"]))
    assert ax.get_xlim() == ax.get_ylim() and ax.get_xscale() == "log"
    labels = labels_of(fig)
    assert [t for t in labels if t.startswith("C = ")] == [
        f"C = {format_number(b.C, 3)} ({b.n_runs - (3 if b.C == iso.budgets[-1].C else 0)})"
        for b in iso.budgets]
    assert "held out (not fitted)" in labels and "±2σ of the residuals" in labels


def test_residuals_are_relative_errors_in_percent_against_compute(runs, fit):
    fig = figures.residuals(runs, fit, holdout=[])
    ax = fig.axes[0]
    points = np.vstack([c.get_offsets() for c in ax.collections if len(c.get_offsets())
                        and c.get_label() != "±2σ of log-loss residuals"])
    pred = fit.predict(N=runs["N"].to_numpy(), D=runs["D"].to_numpy())
    expected = 100 * (runs["loss"].to_numpy() / pred - 1)
    np.testing.assert_allclose(np.sort(points[:, 1]), np.sort(expected))
    assert ax.get_xscale() == "log" and "FLOPs" in ax.get_xlabel()
    assert sum(t.startswith("C = ") for t in labels_of(fig)) == 5  # coloured by budget


def test_held_out_runs_are_ringed_unless_other_ids_are_given(runs, fit):
    assert "held out (not fitted)" in labels_of(figures.residuals(runs, fit))
    assert "held out (not fitted)" not in labels_of(figures.residuals(runs, fit, holdout=[]))


def test_corner_plot_has_every_parameter_and_names_the_unidentified(runs):
    fit = synthetic_fit(runs, unidentified=("E",))
    fig = figures.corner(fit)
    P = len(fit.law.param_names)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == P * (P + 1) // 2
    titles = [ax.get_title() for ax in visible if ax.get_title()]
    assert titles[0] == "E: not identified"
    lo, hi = fit.ci["alpha"]
    assert f"α = {figures.fmt(fit.params['alpha'])} [{figures.fmt(lo)}, {figures.fmt(hi)}]" in titles
    assert visible[-1].get_xlabel() == "β" and "(not identified)" in fig.axes[P * (P - 1)].get_xlabel()


def test_unidentified_parameters_are_named_not_given_numbers(fit):
    vague = FitResult(law=fit.law, params=fit.params, run_ids=tuple("abcdefghi"), objective=0.0,
                      draws=fit.draws, unidentified=("E",))
    assert figures.param_summary(vague).startswith("E not identified, A = ")


def test_corner_plot_needs_draws(fit):
    bare = FitResult(law=fit.law, params=fit.params, run_ids=fit.run_ids, objective=0.0)
    with pytest.raises(ValueError, match="no bootstrap draws"):
        figures.corner(bare)


def test_bootstrap_distributions_show_the_exponents_with_their_interval(fit):
    fig = figures.bootstrap_distributions(fit)
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split(" =")[0] for t in titles] == ["α", "β"]
    lo, hi = fit.ci["beta"]
    assert titles[1] == f"β = {figures.fmt(fit.params['beta'])} [{figures.fmt(lo)}, {figures.fmt(hi)}]"


def test_bootstrap_distributions_need_draws(fit):
    bare = FitResult(law=fit.law, params=fit.params, run_ids=fit.run_ids, objective=0.0)
    with pytest.raises(ValueError, match="no bootstrap draws"):
        figures.bootstrap_distributions(bare)


def test_bootstrap_distributions_also_take_named_draws():
    draws = {"a": np.random.default_rng(1).normal(0.5, 0.02, 300)}
    fig = figures.bootstrap_distributions(draws, point={"a": 0.5})
    assert fig.axes[0].get_title().startswith("a = 0.5 [")


def test_heatmap_marks_best_run_law_predictions_and_plateau():
    grid = hparam_grid()
    best = grid.loc[grid["loss"].idxmin()]
    fig = figures.lr_batch_heatmap(grid, predictions={"steplaw": (1e-3, 1e5), "far away": (1e-1, 1e8)})
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    star = next(line for line in ax.lines if line.get_marker() == "*")
    assert star.get_xdata()[0] == best["lr"] and star.get_ydata()[0] == best["batch_tokens"]
    labels = labels_of(fig)
    assert any(t.startswith("steplaw: lr=1.00e-3, B=1.00e5") for t in labels)
    assert any(t.startswith("ε-plateau") for t in labels)
    # a prediction off the grid is still inside the axes
    assert ax.get_xlim()[1] > 1e-1 and ax.get_ylim()[1] > 1e8
    assert f"N = {figures.fmt(GRID_N)}, D = {figures.fmt(GRID_D)}" in ax.get_title()


def test_heatmap_picks_the_requested_grid_and_rejects_an_unknown_one():
    other = hparam_grid().assign(N=GRID_N * 4)
    both = pd.concat([hparam_grid(), other.iloc[:20]])
    assert "N = 8.00e7" in figures.lr_batch_heatmap(both, N=GRID_N * 4).axes[0].get_title()
    assert "N = 2.00e7" in figures.lr_batch_heatmap(both).axes[0].get_title()  # the larger grid
    with pytest.raises(ValueError, match="no runs with lr and batch"):
        figures.lr_batch_heatmap(both, N=1e12)


def test_loss_curves_smooth_each_run_over_its_faint_raw_trace(runs):
    few = {rid: pd.DataFrame(curve_for(n, d)) for rid, n, d in
           runs[["run_id", "N", "D"]].head(3).itertuples(index=False)}
    fig = figures.loss_curves(few, runs, smoothing=0.7)
    lines = fig.axes[0].lines
    raw = [ln for ln in lines if ln.get_alpha() == 0.25]
    smooth = [ln for ln in lines if ln.get_label().startswith("run-")]
    assert len(raw) == len(smooth) == 3
    first = few[smooth[0].get_label().split(" ")[0]]
    np.testing.assert_allclose(smooth[0].get_ydata(), views.smooth(first["loss"], 0.7))
    assert len(labels_of(fig)) == 3 and "N = " in labels_of(fig)[0]
    many = {rid: pd.DataFrame(curve_for(n, d)) for rid, n, d in
            runs[["run_id", "N", "D"]].itertuples(index=False)}
    fig = figures.loss_curves(many, runs)
    assert not labels_of(fig)
    assert any(ax.get_ylabel() == figures.LABELS["C"] for ax in fig.axes)  # the colour bar


def test_loss_curves_can_run_along_flops_and_fall_back_to_steps_without_tokens(runs):
    rid, n, d, c = runs[["run_id", "N", "D", "C"]].iloc[0]
    fig = figures.loss_curves({rid: pd.DataFrame(curve_for(n, d))}, runs, x="flops")
    assert fig.axes[0].get_xlabel() == views.CURVE_AXIS_LABELS["flops"]
    curve = pd.DataFrame({"step": [1, 2, 3], "tokens": [None] * 3, "loss": [5.0, 4.0, 3.5]})
    fig = figures.loss_curves({"r": curve})
    assert fig.axes[0].get_xlabel() == figures.LABELS["step"]


def test_numbers_are_formatted_as_people_read_them():
    assert [figures.fmt(x) for x in (0.3412, 1.69, 406.4, 3.2e-4, 1.5e20, float("nan"))] == [
        "0.341", "1.69", "406", "3.20e-4", "1.50e20", "n/a"]


@pytest.fixture(scope="module")
def iso(runs: pd.DataFrame) -> IsoFlopResult:
    return fit_isoflop(runs, bootstrap=50, seed=0)


def test_isoflop_curves_draw_a_parabola_and_its_minimum_per_budget(runs, iso):
    fig = figures.isoflop_curves(runs, iso)
    ax = fig.axes[0]
    minima = [line for line in ax.lines if line.get_marker() == "D" and len(line.get_xdata())]
    assert sorted(float(m.get_xdata()[0]) for m in minima) == sorted(b.N_opt for b in iso.budgets)
    assert ax.get_xscale() == "log" and ax.get_xlabel() == figures.LABELS["N"]
    a_lo, a_hi = iso.approach2.ci["a"]
    assert f"a = {figures.fmt(iso.approach2.a)} [{figures.fmt(a_lo)}, {figures.fmt(a_hi)}]" in ax.get_title()
    # budgets are named in the legend, not read off a colour bar
    assert [t for t in labels_of(fig) if t.startswith("C = ")] == [
        f"C = {format_number(b.C, 3)} ({b.n_runs} runs)" for b in iso.budgets]
    assert not [a for a in fig.axes if a.get_ylabel() == figures.LABELS["C"]]


def test_isoflop_curves_show_the_runs_the_fit_assigned_to_each_budget():
    rows = []
    for label, C in (("small", 1e17), ("large", 1.2e17)):  # 0.08 decades apart
        for N in np.geomspace(3e7, 3e8, 4):
            rows.append({"run_id": f"{label}-{N:.0f}", "N": N, "D": C / (6 * N), "C": C,
                         "loss": 2 + 1e4 / N ** 0.5 + 1e4 / (C / (6 * N)) ** 0.5, "budget": label})
    df = pd.DataFrame(rows)
    iso = fit_isoflop(df, bootstrap=0, budget="budget")
    scatters = [c for c in figures.isoflop_curves(df, iso).axes[0].collections if len(c.get_offsets())]
    assert [len(c.get_offsets()) for c in scatters] == [4, 4]  # grouping by C would merge them


def test_isoflop_curves_name_an_excluded_budget(runs):
    lopsided = pd.concat([runs, runs[runs["C"] == runs["C"].max()].assign(
        N=lambda d: d["N"] * 1e-3, loss=lambda d: d["loss"] + np.linspace(0, 1, len(d)),
        run_id=lambda d: d["run_id"] + "-x")])
    fig = figures.isoflop_curves(lopsided, fit_isoflop(lopsided, bootstrap=0))
    assert any("excluded" in t for t in labels_of(fig))


def test_allocation_extrapolates_to_the_planned_budget_with_its_interval(iso, fit):
    fig = figures.optimal_allocation(iso, planned_compute=1e21, fit=fit)
    n_ax, d_ax = fig.axes[:2]
    _, lo, hi = iso.approach2.n_opt_interval(np.array([1e21]))
    # the plan allocates with the loss law (Approach 3): Approach 2's value there is not "planned"
    at = [t.get_text() for t in n_ax.get_legend().get_texts() if t.get_text().startswith("Approach 2 at")]
    assert at == [f"Approach 2 at the planned C: N_opt = {figures.fmt(float(iso.approach2.n_opt(1e21)))} "
                  f"[{figures.fmt(lo[0])}, {figures.fmt(hi[0])}]"]
    assert any(t.get_text().startswith("the plan (Approach 3) at C = 1.00e21")
               for t in n_ax.get_legend().get_texts())
    assert n_ax.get_xlim()[1] > 1e21 and d_ax.get_yscale() == "log"
    labels = [t.get_text() for t in n_ax.get_legend().get_texts()]
    assert "Approach 3 (chinchilla law) — used by the plan" in labels and "beyond the data" in labels


def test_allocation_fades_a_loss_law_optimum_the_runs_cannot_identify(runs, iso):
    vague = synthetic_fit(runs, unidentified=("beta",))
    labels = [t.get_text() for t in figures.optimal_allocation(iso, 1e21, fit=vague)
              .axes[0].get_legend().get_texts()]
    assert "Approach 3 (chinchilla law) — not identified" in labels


def test_a_long_run_name_is_cut_in_the_middle_and_every_run_keeps_its_legend_entry(runs):
    """A 400-character run id took the whole legend row of the saved PNG: the other runs'
    entries fell outside the figure. Legends cut names to views.LEGEND_CHARS, keeping both ends
    (names of one sweep share their start); the chart's hover keeps the whole name."""
    long = "sweep-" + "x" * 388 + "-lr3e-3"
    assert views.legend_name("short-name") == "short-name"
    assert views.legend_name(long) == "sweep-" + "x" * 14 + "…" + "x" * 12 + "-lr3e-3"
    assert len(views.legend_name(long)) == views.LEGEND_CHARS == 40
    few = runs.head(3).copy()
    few["run_id"] = [long, "ünï©ødé", "run-2"]
    curves = {rid: pd.DataFrame(curve_for(n, d)) for rid, n, d in
              few[["run_id", "N", "D"]].itertuples(index=False)}
    fig = figures.loss_curves(curves, few)
    shown = labels_of(fig)
    assert len(shown) == 3 and all(len(t.split(" (N = ")[0]) <= 40 for t in shown)
    assert any(t.startswith("ünï©ødé (N = ") for t in shown)
    fig.canvas.draw()  # every legend entry lies inside the figure
    width = fig.bbox.width
    for leg in fig.legends:
        for t in leg.get_texts():
            box = t.get_window_extent()
            assert 0 <= box.x0 and box.x1 <= width, t.get_text()


def test_an_allocation_law_without_an_interval_draws_no_band_for_d_either():
    """Two budgets of four noisy runs: 80% of resamples keep fewer than 2 usable budgets, so
    the law gives no interval (N_opt's panel drew none), yet D_opt's panel shaded a "95% band
    (bootstrap)" from the other 20% and labelled the planned point "[n/a, n/a]"."""
    iso = fit_isoflop(isoflop_runs(budgets=(1e16, 3e16), per_budget=4, noise=0.03), bootstrap=30)
    assert iso.approach2.interval_problem == "only 20% of 30 resamples kept 2 usable budgets"
    fig = figures.optimal_allocation(iso, planned_compute=3e18)
    for ax in fig.axes[:2]:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert not any("band" in t or "n/a" in t for t in labels), labels
    # with an interval, both panels keep their band
    fine = fit_isoflop(isoflop_runs(), bootstrap=30)
    assert fine.approach2.interval_problem is None
    fig = figures.optimal_allocation(fine, planned_compute=3e19)
    for ax in fig.axes[:2]:
        assert any("band" in t.get_text() for t in ax.get_legend().get_texts())
