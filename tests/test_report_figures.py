"""Figures: each is a fresh Figure (no pyplot state), on log axes with units, showing the fit,
its bootstrap band and the data the way the docstrings promise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from report_synth import GRID_D, GRID_N, TRUE, curve_for, hparam_grid, isoflop_runs

from scalinglab.fit.isoflop import IsoFlopResult, fit_isoflop
from scalinglab.fit.result import FitResult, Holdout
from scalinglab.laws.loss import CHINCHILLA
from scalinglab.report import figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    df = isoflop_runs()
    df["run_id"] = [f"run-{i}" for i in range(len(df))]
    return df


@pytest.fixture(scope="module")
def fit(runs: pd.DataFrame) -> FitResult:
    """A FitResult at the true parameters with spread-out draws, as a bootstrap would give."""
    rng = np.random.default_rng(0)
    point = np.array([TRUE[k] for k in CHINCHILLA.param_names])
    boot = point * np.exp(rng.normal(0, 0.03, size=(200, len(point))))
    held = runs.iloc[-3:]
    obs = held["loss"].to_numpy()
    return FitResult(
        law=CHINCHILLA, params=dict(TRUE), run_ids=tuple(runs["run_id"].iloc[:-3]), objective=0.0,
        draws=boot, residual_std=0.006,
        holdout=Holdout(run_ids=tuple(held["run_id"]), inputs={"N": held["N"].to_numpy(),
                        "D": held["D"].to_numpy()}, compute=held["C"].to_numpy(), observed=obs,
                        predicted=obs * 1.004, lo=obs * 0.99, hi=obs * 1.01),
        data_range={"N": (runs["N"].min(), runs["N"].max()), "D": (runs["D"].min(), runs["D"].max())},
    )


def labels_of(fig: Figure) -> list[str]:
    """Legend entries (legends sit below the axes, on the figure)."""
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def test_figures_leave_no_pyplot_state_and_render_to_png(runs, fit, iso):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    built = [figures.loss_fit(runs, fit), figures.residuals(runs, fit),
             figures.bootstrap_distributions(fit), figures.lr_batch_heatmap(hparam_grid()),
             figures.isoflop_curves(runs, iso), figures.optimal_allocation(iso, 1e20)]
    assert plt.get_fignums() == before
    for fig in built:
        assert isinstance(fig, Figure)
        png = figures.to_png(fig, dpi=50)
        assert png.startswith(PNG_MAGIC) and len(png) > 5000
    assert figures.to_svg(built[0]).lstrip().startswith("<?xml")


def test_loss_fit_has_a_panel_per_input_on_log_axes_with_units(runs, fit):
    fig = figures.loss_fit(runs, fit)
    panels = [ax for ax in fig.axes if ax.get_xlabel() in (figures.LABELS["N"], figures.LABELS["D"])]
    assert [ax.get_xlabel().split(",")[0] for ax in panels] == ["N", "D"]
    for ax in panels:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert ax.get_ylabel() == "loss (nats/token)"


def test_loss_fit_title_gives_formula_and_each_parameter_with_its_interval(runs, fit):
    title = figures.loss_fit(runs, fit)._suptitle.get_text()
    assert "L = E + A/N^α + B/D^β" in title and "95% CI" in title
    lo, hi = fit.ci["alpha"]
    assert f"α = {figures.fmt(fit.params['alpha'])} [{figures.fmt(lo)}, {figures.fmt(hi)}]" in title


def test_loss_fit_draws_the_bootstrap_band_and_marks_held_out_runs(runs, fit):
    fig = figures.loss_fit(runs, fit, levels=4)
    bands = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == 4  # one band per level of D
    assert "held out (not fitted)" in labels_of(fig)
    assert "held out (not fitted)" not in labels_of(figures.loss_fit(runs, fit, holdout=[]))


def test_held_out_runs_are_found_by_the_fits_ids_or_ids_given(runs, fit):
    by_fit = figures.held_out_mask(runs, fit)
    assert by_fit.sum() == 3 and by_fit[-3:].all()
    by_id = figures.held_out_mask(runs, fit, holdout=["run-0"])
    assert by_id.tolist() == [True] + [False] * (len(runs) - 1)


def test_unidentified_parameters_are_named_not_given_numbers(fit):
    vague = FitResult(law=fit.law, params=fit.params, run_ids=tuple("abcdefghi"), objective=0.0,
                      draws=fit.draws, unidentified=("E",))
    assert figures.param_summary(vague).startswith("E not identified, A = ")


def test_loss_fit_without_bootstrap_draws_curves_but_no_band(runs, fit):
    bare = FitResult(law=fit.law, params=fit.params, run_ids=fit.run_ids, objective=0.0)
    fig = figures.loss_fit(runs, bare)
    assert not [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert "no bootstrap" in fig._suptitle.get_text()


def test_residuals_are_relative_errors_in_percent_against_compute(runs, fit):
    fig = figures.residuals(runs, fit, holdout=[])
    ax = fig.axes[0]
    points = ax.collections[-1].get_offsets()
    pred = fit.predict(N=runs["N"].to_numpy(), D=runs["D"].to_numpy())
    expected = 100 * (runs["loss"].to_numpy() / pred - 1)
    np.testing.assert_allclose(np.asarray(points)[:, 1], expected)
    assert ax.get_xscale() == "log" and "FLOPs" in ax.get_xlabel()


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


def test_loss_curves_name_few_runs_and_colour_many_by_compute(runs):
    few = {rid: pd.DataFrame(curve_for(n, d)) for rid, n, d in
           runs[["run_id", "N", "D"]].head(3).itertuples(index=False)}
    fig = figures.loss_curves(few, runs)
    assert len(labels_of(fig)) == 3 and labels_of(fig)[0].startswith("N=")
    many = {rid: pd.DataFrame(curve_for(n, d)) for rid, n, d in
            runs[["run_id", "N", "D"]].itertuples(index=False)}
    fig = figures.loss_curves(many, runs)
    assert not labels_of(fig)
    assert any(ax.get_ylabel() == figures.LABELS["C"] for ax in fig.axes)  # the colour bar


def test_loss_curves_fall_back_to_steps_without_tokens():
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


def test_isoflop_curves_name_an_excluded_budget(runs):
    lopsided = pd.concat([runs, runs[runs["C"] == runs["C"].max()].assign(
        N=lambda d: d["N"] * 1e-3, loss=lambda d: d["loss"] + np.linspace(0, 1, len(d)))])
    fig = figures.isoflop_curves(lopsided, fit_isoflop(lopsided, bootstrap=0))
    assert any("excluded" in t for t in labels_of(fig))


def test_allocation_extrapolates_to_the_planned_budget_with_its_interval(iso, fit):
    fig = figures.optimal_allocation(iso, planned_compute=1e21, fit=fit)
    n_ax, d_ax = fig.axes[:2]
    _, lo, hi = iso.approach2.n_opt_interval(np.array([1e21]))
    planned = [t.get_text() for t in n_ax.get_legend().get_texts() if t.get_text().startswith("planned")]
    assert planned == [f"planned C = 1.00e21: N_opt = {figures.fmt(float(iso.approach2.n_opt(1e21)))} "
                       f"[{figures.fmt(lo[0])}, {figures.fmt(hi[0])}]"]
    assert n_ax.get_xlim()[1] > 1e21 and d_ax.get_yscale() == "log"
    labels = [t.get_text() for t in n_ax.get_legend().get_texts()]
    assert "Approach 3 (chinchilla law)" in labels and "beyond the data" in labels
