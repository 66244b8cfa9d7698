"""What the figures and charts show, computed once: smoothing, curve axes, budgets taken from
the IsoFLOP fit (never regrouped), fit points, the draws of a corner plot, one run's table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_synth import curve_for, isoflop_runs, synthetic_fit

from scalinglab.fit.isoflop import fit_isoflop
from scalinglab.report import views


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    df = isoflop_runs()
    df["run_id"] = [f"run-{i}" for i in range(len(df))]
    return df


def test_smoothing_is_the_debiased_exponential_moving_average():
    y = np.random.default_rng(3).normal(3.0, 0.2, 200)
    for w in (0.0, 0.3, 0.6, 0.95):
        reference = pd.Series(y).ewm(alpha=1 - w, adjust=True).mean().to_numpy()
        np.testing.assert_allclose(views.smooth(y, w), reference, rtol=1e-12)
    np.testing.assert_allclose(views.smooth(np.full(30, 2.5), 0.9), 2.5)  # no pull towards 0


def test_smoothing_skips_missing_values_and_refuses_a_weight_of_one():
    out = views.smooth([1.0, np.nan, 3.0], 0.5)
    assert out[1] == 1.0 and out[2] == pytest.approx((0.5 * 1 + 3.0) / 1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        views.smooth([1.0], 1.0)


def test_curve_x_in_tokens_flops_and_wall_time():
    curve = pd.DataFrame(curve_for(1e7, 2e8, points=5))
    run = {"N": 1e7, "D": 2e8, "C": 1.3e16, "extra": {"wall_time_s": 40.0}}
    tokens = curve["tokens"].to_numpy()
    x, axis = views.curve_x(curve, run, "flops")
    assert axis == "flops"
    np.testing.assert_allclose(x, tokens * 1.3e16 / 2e8)  # the stored C per token, attention too
    x, axis = views.curve_x(curve, run, "wall")
    np.testing.assert_allclose(x, tokens * 40.0 / 2e8)
    assert views.curve_x(curve, {"N": 1e7}, "wall")[1] == "tokens"  # no clock recorded
    no_tokens = curve.assign(tokens=np.nan)
    assert views.curve_x(no_tokens, run, "flops")[1] == "step"


def test_curves_that_cannot_share_an_axis_fall_back_together():
    a = pd.DataFrame(curve_for(1e7, 2e8, points=5))
    b = pd.DataFrame(curve_for(2e7, 1e8, points=5))
    info = pd.DataFrame([{"run_id": "a", "N": 1e7, "D": 2e8, "C": 1.2e16, "extra": {"wall_time_s": 9.0}},
                         {"run_id": "b", "N": 2e7, "D": 1e8, "C": 1.2e16, "extra": {}}])
    series = views.curve_series({"a": a, "b": b}, info, "wall", 0.5)
    assert {s.axis for s in series} == {"tokens"}
    assert [s.run_id for s in series] == ["a", "b"]
    np.testing.assert_allclose(series[0].smoothed, views.smooth(a["loss"], 0.5))


def test_budgets_come_from_the_isoflop_fit_not_a_regrouping():
    # two labelled budgets whose compute differs by 20%: grouping by C would merge them
    rows = []
    for label, C in (("small", 1e17), ("large", 1.2e17)):
        for N in np.geomspace(3e7, 3e8, 4):
            rows.append({"run_id": f"{label}-{N:.0f}", "N": N, "D": C / (6 * N), "C": C,
                         "loss": 2 + 1e4 / N ** 0.5 + 1e4 / (C / (6 * N)) ** 0.5, "budget": label})
    df = pd.DataFrame(rows)
    iso = fit_isoflop(df, bootstrap=0, budget="budget")
    b = views.budgets_of(df, iso)
    assert len(b.values) == 2
    assert {b.of(r) for r in df[df["budget"] == "small"]["run_id"]} == {0}
    assert {b.of(r) for r in df[df["budget"] == "large"]["run_id"]} == {1}
    series = views.isoflop_series(df, iso)
    assert [len(s.runs) for s in series] == [4, 4]
    assert series[0].label.startswith("C = 1e+17 (4 runs)")


def test_runs_outside_the_isoflop_fit_join_a_budget_they_fall_in(runs):
    iso = fit_isoflop(runs, bootstrap=0)
    extra = pd.DataFrame([{"run_id": "grid-1", "N": 1e7, "D": 1e16 / 6e7, "C": 1.05e16, "loss": 5.0},
                          {"run_id": "far", "N": 1e9, "D": 1e12, "C": 6e21, "loss": 2.0}])
    b = views.budgets_of(pd.concat([runs, extra]), iso)
    assert b.of("grid-1") == b.of("run-0")  # the smallest budget
    assert b.labels[b.of("far")] == "C = 6e+21" and len(b.values) == len(iso.budgets) + 1
    assert len(set(b.colours)) == len(b.colours)


def test_fit_points_give_each_runs_residual_and_mark_the_held_out(runs):
    fit = synthetic_fit(runs)
    pts = views.fit_points(runs, fit)
    assert len(pts) == len(runs) and pts["held_out"].sum() == 3
    pred = fit.predict(N=pts["N"].to_numpy(), D=pts["D"].to_numpy())
    np.testing.assert_allclose(pts["predicted"], pred)
    np.testing.assert_allclose(pts["residual_pct"], 100 * (pts["observed"] / pred - 1))
    assert set(pts.loc[pts["held_out"], "run_id"]) == set(fit.heldout_ids)


def test_corner_data_keep_finite_draws_and_flag_what_is_not_identified(runs):
    fit = synthetic_fit(runs, unidentified=("E",))
    fit.draws[5, 0] = np.inf
    c = views.corner_data(fit)
    assert c.n_dropped == 1 and len(c.draws) == 199
    assert c.labels == ["E", "A", "B", "α", "β"]
    assert c.identified == [False, True, True, True, True]
    lo, hi = fit.ci["alpha"]
    assert (c.lo[3], c.hi[3]) == (lo, hi)


def test_palette_runs_dark_to_light_without_repeats():
    colours = views.palette(7)
    assert len(set(colours)) == 7 and colours[0] == "#440154"
    brightness = [sum(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in colours]
    assert brightness == sorted(brightness)


def test_one_run_is_shown_whole_with_its_losses_throughput_and_memory():
    run = {"run_id": "r/1", "N": 6224.0, "D": 1.2e9, "C": 4.5e13, "loss": 3.456789123, "lr": 0.01,
           "batch_tokens": 1024.0, "status": "finished", "tags": {"sweep": "demo"},
           "extra": {"train_loss": 3.5, "ema_loss": 3.48, "eval_loss": 3.456789123,
                     "tokens_per_s": 51234.5, "peak_mem_bytes": 123456789, "custom": [1, 2]}}
    text = views.run_table(run).as_text()
    for expected in ("r/1", "6224", "1200000000", "3.456789123", "1024", "sweep=demo",
                     "EMA train loss", "throughput (tokens/s)", "51234.5", "123456789", "[1, 2]"):
        assert expected in text, expected


def test_a_runs_table_shows_whole_numbers_exactly_and_estimates_to_four_digits():
    from scalinglab.report.sections import runs_table

    runs = pd.DataFrame([{"run_id": "a", "N": 124438272.0, "D": 2.6e10, "C": 1.94e19,
                          "loss": 3.456789, "lr": 3e-4, "batch_tokens": 1024.0, "tags": {}}])
    row = runs_table(runs).as_html()
    for text in ("124438272", "26000000000", "1.94e+19", "3.457", "0.0003", ">1024<"):
        assert text in row, text


def test_a_logged_clock_is_the_wall_time_axis_and_an_estimate_is_said_per_run():
    clocked = pd.DataFrame(curve_for(1e7, 2e8, points=5)).assign(wall_s=[3.0, 6.0, 9.0, 12.0, 15.0])
    plain = pd.DataFrame(curve_for(2e7, 1e8, points=5))
    info = pd.DataFrame([{"run_id": "a", "N": 1e7, "D": 2e8, "C": 1.2e16, "extra": {}},
                         {"run_id": "b", "N": 2e7, "D": 1e8, "C": 1.2e16,
                          "extra": {"wall_time_s": 50.0}}])
    x, axis = views.curve_x(clocked, info.iloc[0].to_dict(), "wall")
    assert axis == "wall" and x.tolist() == [3.0, 6.0, 9.0, 12.0, 15.0]  # no wall_time_s needed
    (only,) = views.curve_series({"a": clocked}, info, "wall", 0.5)
    assert only.axis == "wall" and only.note == "" and only.x.tolist() == x.tolist()
    assert views.CURVE_AXIS_LABELS["wall"] == "wall time (s) since the run started"
    # one clocked run and one without a clock: each keeps its own, the estimate is named
    a, b = views.curve_series({"a": clocked, "b": plain}, info, "wall", 0.5)
    assert a.axis == b.axis == "wall_estimated"
    assert a.x.tolist() == [3.0, 6.0, 9.0, 12.0, 15.0]
    np.testing.assert_allclose(b.x, plain["tokens"] * 50.0 / 1e8)
    assert a.note.startswith("wall time estimated for run b from tokens × mean throughput")
    assert "estimated where no clock was logged" in views.CURVE_AXIS_LABELS["wall_estimated"]
    # a clock with a gap is not a clock for the whole curve: estimated, or tokens without one
    gappy = clocked.assign(wall_s=[3.0, np.nan, 9.0, 12.0, 15.0])
    assert views.curve_x(gappy, info.iloc[0].to_dict(), "wall")[1] == "tokens"
    # an eval-only point without a time is left off, the clocked curve kept
    evals = pd.concat([clocked, pd.DataFrame({"step": [99], "tokens": [9e9], "loss": [np.nan],
                                              "eval_loss": [3.0], "wall_s": [np.nan]})])
    assert views.curve_x(evals, info.iloc[0].to_dict(), "wall")[1] == "wall"
