"""Figures from what was not identified are refused or said to be so; warnings come once each,
the gravest first; no zero-width interval from degenerate resamples, no "[4.086, -]", no "nan
to nan"; the static allocation figure marks the approach the plan uses (issue 24, item 4)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.errors import NotIdentifiable
from scalinglab.fit import fit_chinchilla
from scalinglab.fit.isoflop import fit_isoflop
from scalinglab.laws.loss import CHINCHILLA
from scalinglab.plan import make_plan
from scalinglab.stats import Estimate, percentile_interval
from scalinglab.summary import Summary, cell_text, format_interval, tidy_warnings

TRUE = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}
runner = CliRunner()


# The two fits below are deterministic and only read by the tests (plans, summaries, saves),
# so each is fitted once per session: four and two identical bootstrap fits before.
@functools.cache
def unidentified_fit():
    # every run at nearly one D: B and beta cannot be told apart from E
    rng = np.random.default_rng(0)
    N = np.geomspace(1e7, 1e9, 12)
    D = np.full_like(N, 2e9) * rng.uniform(0.99, 1.01, N.size)
    loss = 1.8 + 400 / N**0.34 + 410 / D**0.28
    fit = fit_chinchilla(N, D, loss * np.exp(rng.normal(0, 0.003, N.size)), bootstrap=20)
    assert fit.unidentified
    return fit


def test_a_compute_optimal_plan_from_an_unidentified_fit_is_refused_with_the_runs_that_would_identify_it(tmp_path):
    fit = unidentified_fit()
    with pytest.raises(NotIdentifiable) as exc:
        make_plan(compute=1e21, loss_law=fit)
    text = str(exc.value)
    assert "no compute-optimal plan for 1e+21 FLOPs" in text
    assert "which these runs do not identify" in text
    assert "Runs that would identify it: an IsoFLOP sweep" in text and "1e+20 FLOPs" in text
    # through the CLI: one line, exit 2, no numbers
    path = tmp_path / "fit.json"
    fit.save(path)
    res = runner.invoke(app, ["plan", "--compute", "1e21", "--law", str(path)])
    assert res.exit_code == 2 and "no compute-optimal plan" in res.output and "learning rate" not in res.output
    res = runner.invoke(app, ["plan", "--compute", "1e21", "--law", str(path), "--allow-unidentified"])
    assert res.exit_code == 0 and "NOT IDENTIFIED" in res.output


def test_a_plan_at_given_n_and_d_stands_but_its_loss_is_not_an_estimate():
    plan = make_plan(params=1e9, tokens=2e10, loss_law=unidentified_fit())
    assert plan.not_identified and plan.loss_interval is None
    assert plan.warnings[0].startswith("NOT IDENTIFIED")
    assert plan.loss_interval_source.startswith("no interval: the loss law's fit")


def test_warnings_are_said_once_with_their_places_and_the_gravest_first():
    out = tidy_warnings([
        "N = 2e9 is outside the range (x3 beyond); extrapolating",
        "chinchilla: only 8 runs",
        "plan: only 8 runs",
        "N = 2e9 is outside the range (x3 beyond); extrapolating",
        "plan: the loss law's fit depends on B, which these runs do not identify",
    ])
    assert out == ["plan: the loss law's fit depends on B, which these runs do not identify",
                   "N = 2e9 is outside the range (x3 beyond); extrapolating",
                   "chinchilla, plan: only 8 runs"]
    assert Summary("t", warnings=["a", "a", "b"], notes=["n", "n"]).as_text().count("warning: a") == 1


def two_budget_runs():
    rng = np.random.default_rng(0)
    rows = []
    for C in (1e18, 1e19):
        for N in np.geomspace(C**0.5 / 30, C**0.5 / 3, 3):
            D = C / (6 * N)
            rows.append({"N": N, "D": D, "loss": float(CHINCHILLA(TRUE, N=N, D=D)) * np.exp(rng.normal(0, 0.002))})
    return pd.DataFrame(rows)


def test_isoflop_from_2_budgets_with_most_resamples_unusable_gives_no_zero_width_interval():
    # the case that exposed it: 2 budgets of 3 sizes, 95% of resamples lose a budget; the 5%
    # left all give the same exponent, printed as 0.648 [0.648, 0.648]
    iso = fit_isoflop(two_budget_runs(), bootstrap=200)
    for law in (iso.approach1, iso.approach2):
        assert law.ci == {} and "only 5% of 200 resamples kept 2 usable budgets" in law.interval_problem
        est = law.optimum(1e20)["N_opt"]
        assert est.ci is None and est.note.startswith("no interval")
    text = iso.summary().as_text()
    assert "no interval: only 5% of 200 resamples" in text
    assert iso.to_dict()["approach2"]["no_interval"].startswith("only 5%")


def test_estimates_from_mostly_failed_draws_say_so_instead_of_an_interval():
    draws = np.r_[np.full(95, np.nan), np.full(5, 0.648)]
    est = Estimate.from_draws(0.648, draws)
    assert est.ci is None and cell_text(est) == "0.648 (no interval: only 5% of 100 bootstrap resamples gave a value)"


def test_infinite_draws_give_an_infinite_end_not_a_dash():
    lo, hi = percentile_interval(np.array([4.1, 4.2, 4.3, np.inf, np.inf, np.inf]))
    assert lo == pytest.approx(4.1125) and hi == np.inf
    assert format_interval((4.086, float("nan"))) == "[no interval: too few usable bootstrap draws]"
    assert "-]" not in format_interval((4.086, hi))


def test_no_nan_decades_in_what_a_design_says():
    from scalinglab.design.auto import _spread_change

    class Remedy:
        before = {"E": Estimate(1.0, float("nan"), float("nan"))}
        after = {"E": Estimate(1.0, 0.5, 2.0)}

    assert _spread_change("E", Remedy(), exponent=False) == ""


def test_the_static_allocation_figure_stars_the_approach_the_plan_uses():
    from scalinglab.report.figures import optimal_allocation

    rng = np.random.default_rng(1)
    rows = []
    for C in np.geomspace(1e17, 1e19, 4):
        for N in np.geomspace(C**0.5 / 40, C**0.5 / 2, 6):
            D = C / (6 * N)
            rows.append({"N": N, "D": D, "loss": float(CHINCHILLA(TRUE, N=N, D=D)) * np.exp(rng.normal(0, 0.002))})
    runs = pd.DataFrame(rows)
    iso = fit_isoflop(runs, bootstrap=20)
    fit = fit_chinchilla(runs.N, runs.D, runs.loss, bootstrap=20)
    fig = optimal_allocation(iso, planned_compute=1e21, fit=fit)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(lab.startswith("the plan (Approach 3) at C = 1.00e21") for lab in labels)
    assert any(lab.startswith("Approach 2 at the planned C") for lab in labels)
    assert not any(lab.startswith("planned C = ") for lab in labels)
    alone = optimal_allocation(iso, planned_compute=1e21)  # no loss law: the plan is Approach 2's
    labels = [t.get_text() for t in alone.axes[0].get_legend().get_texts()]
    assert any(lab.startswith("planned C = 1.00e21") for lab in labels)


@functools.cache
def offset_only_unidentified_fit():
    # four IsoFLOP budgets of five sizes, the truth's offset E = 0: the fit sits at E's lower
    # bound, so E is unidentified, while A, B, alpha and beta are pinned by the sweep
    rng = np.random.default_rng(1)
    rows = [(N, C / (6 * N)) for C in (1e17, 3e17, 1e18, 3e18)
            for N in np.geomspace(C**0.5 / 40, C**0.5 / 2, 5)]
    N, D = np.array(rows).T
    loss = 400 / N**0.34 + 410 / D**0.28
    fit = fit_chinchilla(N, D, loss * np.exp(rng.normal(0, 0.003, N.size)), bootstrap=20)
    assert fit.unidentified == ("E",)
    return fit


def test_an_unidentified_offset_leaves_the_allocation_standing_and_only_the_loss_refused():
    # E shifts every loss alike, so the compute-optimal N and D do not rest on it: the plan is
    # given with its N and D intervals, and the loss (which does rest on E) is no estimate
    fit = offset_only_unidentified_fit()
    plan = make_plan(compute=1e21, loss_law=fit)
    assert plan.not_identified == ("the loss law's fit depends on E, which these runs do not "
                                   "identify: the loss is not an estimate")
    assert plan.loss_interval is None and plan.warnings[0].startswith("NOT IDENTIFIED")
    assert plan.N_interval is not None and plan.N_interval[0] < plan.N < plan.N_interval[1]
    # the truth's N_opt at 1e21 (alpha, beta, A, B as generated) lies within a few percent
    a, b, A, B = 0.34, 0.28, 400.0, 410.0
    G = (a * A / (b * B)) ** (1 / (a + b))
    assert plan.N == pytest.approx(G * (1e21 / 6) ** (b / (a + b)), rel=0.1)
    assert not plan.title.startswith("NOT IDENTIFIED")
    assert "predicted loss" in plan.summary().as_text() and "not identified" in plan.summary().as_text()


def test_a_plan_still_refuses_when_the_allocation_rests_on_an_unidentified_parameter():
    # the one-D fit leaves B and beta (which set N_opt) unidentified: refused, naming only those
    fit = unidentified_fit()
    with pytest.raises(NotIdentifiable) as exc:
        make_plan(compute=1e21, loss_law=fit)
    assert fit.unidentified == ("B", "beta")
    assert "the loss law's fit depends on B, beta, which these runs do not identify" in str(exc.value)


def test_a_fits_optimum_says_the_same_as_the_plan_about_an_unidentified_offset():
    # one rule for the fit's summary and the plan (laws.loss.allocation_params): with only E open,
    # N_opt, D_opt and tokens per parameter are estimates with intervals; the loss is not
    opt = offset_only_unidentified_fit().optimum(1e21)
    assert opt.N.identified and opt.D.identified and opt.tokens_per_param.identified
    assert opt.N.ci is not None and opt.N.ci[0] < opt.N.value < opt.N.ci[1]
    assert not opt.loss.identified and "depends on E" in opt.loss.note
    # with B and beta open, the allocation itself is no estimate
    opt = unidentified_fit().optimum(1e21)
    assert not opt.N.identified and "depends on B, beta" in opt.N.note


def test_the_plan_says_which_parameters_its_allocation_rests_on_and_keeps_it_through_a_save(tmp_path):
    # the title's "whole plan is not identified" comes from a field, not from the warning's words
    from scalinglab.results import load_result

    whole = make_plan(compute=1e21, loss_law=unidentified_fit(), allow_unidentified=True)
    assert whole.allocation_unidentified == ("B", "beta")
    assert whole.title.startswith("NOT IDENTIFIED - plan (compute-optimal")
    loss_only = make_plan(compute=1e21, loss_law=offset_only_unidentified_fit())
    assert loss_only.allocation_unidentified == () and loss_only.not_identified
    for plan in (whole, loss_only):
        plan.save(tmp_path / "plan.json")
        back = load_result(tmp_path / "plan.json")
        assert back.allocation_unidentified == plan.allocation_unidentified
        assert back.title == plan.title


def test_a_plan_saved_before_the_field_existed_still_loads_with_the_same_title():
    # older plan files said it only in words: the loader derives the field from them
    from scalinglab.plan.planner import Plan

    whole = make_plan(compute=1e21, loss_law=unidentified_fit(), allow_unidentified=True)
    loss_only = make_plan(compute=1e21, loss_law=offset_only_unidentified_fit())
    for plan, names in ((whole, ("B", "beta")), (loss_only, ())):
        old = plan.to_dict()
        del old["allocation_unidentified"]
        back = Plan.from_dict(old)
        assert back.allocation_unidentified == names and back.title == plan.title
    identified = make_plan(compute=1e21).to_dict()
    del identified["allocation_unidentified"]
    assert Plan.from_dict(identified).allocation_unidentified == ()


def test_an_interval_from_too_few_draws_is_nan_and_says_why_not_zero_width():
    # a refit whose A ran off to inf predicted NaN under 29 of its 30 draws; the one finite draw
    # gave the "interval" [12.0, 12.0] on every row of a translation's table
    one_of_30 = np.r_[12.0, np.full(29, np.nan)]
    lo, hi = percentile_interval(one_of_30)
    assert np.isnan(lo) and np.isnan(hi)
    from scalinglab.stats import interval_note

    assert interval_note(one_of_30) == "no interval: only 3% of 30 bootstrap resamples gave a value"
    # per figure: a column with enough draws keeps its interval, bit for bit
    good = np.linspace(1.0, 2.0, 30)
    lo, hi = percentile_interval(np.c_[one_of_30, good])
    assert np.isnan(lo[0]) and np.isnan(hi[0])
    assert (lo[1], hi[1]) == (percentile_interval(good)[0], percentile_interval(good)[1])
    assert (float(lo[1]), float(hi[1])) == pytest.approx((1.025, 1.975))
    # half the draws is enough (the rule Estimate.from_draws has kept), and callers may ask more
    half = np.r_[good[:15], np.full(15, np.nan)]
    assert np.isfinite(percentile_interval(half)).all()
    assert np.isnan(percentile_interval(half, min_usable=0.9)).all()
    assert interval_note(half) is None


def test_one_or_two_draws_give_no_interval_and_say_why_three_give_one():
    # fit chinchilla -b 1 printed "E 1.72 [1.598, 1.598]": one draw, a zero-width "95% interval"
    # excluding its own estimate; -b 2 the two draws themselves
    from scalinglab.stats import interval_note

    for draws in ([1.598], [1.581, 1.598]):
        lo, hi = percentile_interval(np.array(draws))
        assert np.isnan(lo) and np.isnan(hi)
        assert np.isnan(percentile_interval(np.c_[draws, draws], axis=0)).all()
    assert interval_note([1.598]) == "no interval: 1 bootstrap resample is not a spread (at least 3 needed)"
    assert interval_note([1.5, np.nan, 1.6, 1.7]) is None
    assert float(percentile_interval(np.array([1.0, 2.0, 3.0]))[0]) == pytest.approx(1.05)
    runs = pd.DataFrame([(n, d) for n in (1e8, 3e8, 1e9) for d in (2e9, 6e9, 2e10)], columns=["N", "D"])
    runs["loss"] = CHINCHILLA(TRUE, N=runs["N"], D=runs["D"])
    fit = fit_chinchilla(runs["N"], runs["D"], runs["loss"], bootstrap=2, starts=np.array(
        [[0.5, 6.0, 6.0, 0.3, 0.3]]))
    assert fit.n_draws == 2 and all(np.isnan(v).all() for v in fit.ci.values())


def _six_runs_at_20_tokens_per_parameter() -> pd.DataFrame:
    # tests/test_loss_to_loss.py's new corpus at D/N = 20: Chinchilla refitted on these alone
    # sends A to inf (alpha ~ 60), so that A/N^alpha is inf/inf = NaN at every (N, D)
    N = np.geomspace(2e7, 2e9, 9)[:6]
    return pd.DataFrame({"N": N, "D": 20 * N, "loss": [8.55610306, 7.56896658, 6.75666114,
                                                       6.01800062, 5.38279549, 4.80723713]})


def test_a_fit_whose_parameter_runs_off_to_infinity_says_which_and_that_it_predicts_nothing():
    from scalinglab.fit import fit_law

    fit = fit_law("chinchilla", _six_runs_at_20_tokens_per_parameter(), bootstrap=0)
    assert fit.params["A"] == np.inf and {"A", "alpha"} <= set(fit.unidentified)
    with np.errstate(all="ignore"):
        assert np.isnan(fit.predict(N=1e8, D=2e9))
    assert fit.warnings[0] == ("the fit diverged (A = inf): its predictions are not finite (NaN or "
                               "inf) at 6 of the 6 runs it was fitted to, so it predicts nothing there")
    assert "the fit diverged (A = inf)" in fit.summary().as_text()
    # its optimum (N = inf, D = 0) rests on A: a quarter of inf is inf, so the probe that finds
    # what an allocation rests on saw nothing move and called it identified, "0 [0, 0]"
    opt = fit.optimum(1e20)
    assert not opt.N.identified and not opt.D.identified and not opt.tokens_per_param.identified


def test_bootstrap_fits_that_send_a_parameter_to_infinity_flag_it_though_the_estimate_is_finite():
    from scalinglab.fit.loss import _soft_checks

    rng = np.random.default_rng(0)
    boot = np.column_stack([rng.normal(mu, 0.01 * mu, 30) for mu in TRUE.values()])
    boot[:20, 1] = np.inf  # 20 of 30 resamples ran A off to infinity; the other 10 agree closely
    warnings, flagged = _soft_checks(CHINCHILLA, [True, True, True, False, False], TRUE, boot, 0.95)
    assert flagged == ["A"]
    assert "67% of bootstrap fits send A to infinity" in warnings[-1]
    assert warnings[0] == ("67% of bootstrap resamples could not be fitted (20 of 30 diverged: A at "
                           "infinity)")


def test_percentile_interval_reads_the_same_ends_with_or_without_nan_draws():
    """Without NaN draws the interval takes a vectorised path: its ends equal numpy's
    nanquantile bit for bit, infinite draws (and their read-without-interpolation ends)
    included, along any axis."""
    from scalinglab.stats import percentile_interval

    rng = np.random.default_rng(3)
    values = rng.standard_normal((40, 6, 3))
    values.flat[::13] = np.inf
    for axis in range(3):
        lo, hi = percentile_interval(values, 0.9, axis=axis)
        with_nan = np.concatenate([values, np.full_like(values, np.nan)[:1]], axis=0) if axis == 0 else None
        q = (1.0 - 0.9) / 2.0  # the interval's own tail share, to the last bit
        # numpy's own 'linear' read between two infinite draws is inf - inf (NaN, with a
        # RuntimeWarning): the reference replaces those by the read-without-interpolation end
        with np.errstate(invalid="ignore"):
            ref_lo = np.nanquantile(values, q, axis=axis)
            ref_hi = np.nanquantile(values, 1.0 - q, axis=axis)
        ref_lo = np.where(np.isnan(ref_lo), np.nanquantile(values, q, axis=axis, method="lower"), ref_lo)
        ref_hi = np.where(np.isnan(ref_hi), np.nanquantile(values, 1.0 - q, axis=axis, method="higher"), ref_hi)
        assert np.array_equal(lo, ref_lo) and np.array_equal(hi, ref_hi)
        if with_nan is not None:  # one NaN draw per column: the nanquantile path, same ends
            lo2, hi2 = percentile_interval(with_nan, 0.9, axis=0)
            assert np.array_equal(lo2, lo) and np.array_equal(hi2, hi)


def test_percentile_interval_of_finite_draws_is_numpys_linear_quantile_to_the_bit():
    """Finite draws take a selection path (one rank partitioned at a time, along a contiguous
    axis); its ends are np.quantile's ('linear') bit for bit, whatever the draws' count, level,
    axis, ties or scale, and a column of equal draws gives a zero-width interval."""
    from scalinglab.stats import _linear_ends, percentile_interval

    rng = np.random.default_rng(7)
    for trial in range(400):
        n = int(rng.integers(2, 240))
        shape = [n, int(rng.integers(1, 5)), int(rng.integers(1, 3))]
        values = rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, 4) + rng.uniform(-5, 5)
        if trial % 3 == 0:
            values = np.round(values, 1)  # ties at the ends
        level = float(rng.choice([0.5, 0.8, 0.9, 0.95, 0.99, rng.uniform(0.01, 0.999)]))
        q = (1.0 - level) / 2.0
        axis = int(rng.integers(0, 3))
        moved = np.moveaxis(values, 0, axis)
        lo, hi = percentile_interval(moved, level, axis=axis)
        ref_lo, ref_hi = np.quantile(moved, [q, 1.0 - q], axis=axis)
        assert np.array_equal(lo, ref_lo) and np.array_equal(hi, ref_hi), (n, level, axis)
    # a 1-D draw gives numbers, as np.quantile's do; equal draws a zero-width interval
    lo, hi = percentile_interval(np.linspace(1.0, 2.0, 41), 0.9)
    assert np.ndim(lo) == 0 and (lo, hi) == (np.quantile(np.linspace(1.0, 2.0, 41), 0.05),
                                             np.quantile(np.linspace(1.0, 2.0, 41), 0.95))
    assert percentile_interval(np.full(30, 2.5)) == (2.5, 2.5)
    # a band's widened draws: 2,000 x 300, as draw_band hands them over
    wide = 3.0 + 1e-3 * rng.standard_normal((300, 2000))
    assert _linear_ends(wide, (1.0 - 0.95) / 2.0, -1) is not None  # the selection path, taken
    lo, hi = percentile_interval(wide, 0.95, axis=-1)
    ref = np.quantile(wide, [(1.0 - 0.95) / 2.0, 1.0 - (1.0 - 0.95) / 2.0], axis=-1)
    assert np.array_equal(lo, ref[0]) and np.array_equal(hi, ref[1])
