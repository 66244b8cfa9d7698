"""Downstream links: the batched least squares, truth recovery, identifiability, results."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import least_squares

from scalinglab.clikit import to_json
from scalinglab.downstream import (
    EXP_LINK,
    SIGMOID_LINK,
    LinkFit,
    LinkTable,
    fit_form,
    fit_link,
    fit_links,
)
from scalinglab.downstream.curvefit import batched_lm
from scalinglab.errors import NotIdentifiable, ParameterError

TRUE_EXP = {"eps": 0.85, "k": 2.2, "gamma": 0.7}


def exp_points(n=30, noise=0.003, seed=0, lo=2.4, hi=6.0):
    rng = np.random.default_rng(seed)
    L = np.linspace(lo, hi, n)
    return L, EXP_LINK.law(TRUE_EXP, L=L) + rng.normal(0, noise, n)


def test_batched_lm_finds_the_same_optima_as_scipy_least_squares():
    rng = np.random.default_rng(1)
    L, y = exp_points(noise=0.01)
    starts = np.column_stack([rng.uniform(0.5, 1.2, 12), rng.uniform(0.5, 5, 12), rng.uniform(0.2, 2, 12)])
    lo, hi = EXP_LINK.bounds()
    res = batched_lm(lambda th, rows: EXP_LINK.evaluate(th, {"L": L}), starts, y, lower=lo, upper=hi)
    for s, x, cost in zip(starts, res.x, res.cost, strict=True):
        ref = least_squares(lambda p: EXP_LINK.evaluate(p[None, :], {"L": L})[0] - y, s,
                            bounds=(lo, hi), xtol=1e-14, ftol=1e-14, gtol=1e-14)
        assert cost == pytest.approx(ref.cost, rel=1e-7, abs=1e-14)
        if ref.cost < 1.001 * res.cost.min():  # the global basin: the parameters agree too
            np.testing.assert_allclose(x, ref.x, rtol=1e-4)


def test_batched_lm_keeps_fixed_parameters_and_bounds():
    L, y = exp_points()
    theta0 = np.array([[0.9, 2.0, 0.5], [0.8, 3.0, 1.0]])
    lo, hi = EXP_LINK.bounds()
    hi = hi.copy()
    hi[2] = 0.6  # gamma capped below its true value
    res = batched_lm(lambda th, rows: EXP_LINK.evaluate(th, {"L": L}), theta0, y, lower=lo, upper=hi,
                     free=np.array([True, False, True]))
    np.testing.assert_array_equal(res.x[:, 1], theta0[:, 1])
    assert np.all(res.x[:, 2] <= 0.6 + 1e-12)


def test_batched_lm_reaches_an_optimum_that_sits_on_a_bound():
    # a sigmoid whose least-squares ceiling would exceed 1 (points below 0.8, an anchor at
    # (0, 1)), fitted with the ceiling held at <= 1: the optimum lies on that bound. Stepping
    # every parameter and clipping afterwards stalled short of it (cost 2e-4 relative above
    # scipy's from every start); a parameter blocked by its bound must take no step instead
    from scalinglab.downstream.ladder import bounded_sigmoid

    form = bounded_sigmoid(1.0)
    rng = np.random.default_rng(3)
    x = np.append(np.linspace(0.55, 1.6, 60), 0.0)
    y = form.evaluate(np.array([[0.25, 1.08, -4.0, 0.75]]), {"x": x})[0] + np.append(rng.normal(0, 0.004, 60), 0)
    y[-1] = 1.0
    lo, hi = form.bounds()
    starts = np.array([[0.2, 0.9, -3.0, 0.9], [0.3, 1.0, -2.0, 0.5], [0.25, 0.95, -6.0, 0.7], [0.1, 1.0, -1.0, 1.2]])
    res = batched_lm(lambda th, rows: form.evaluate(th, {"x": x}), starts, y, lower=lo, upper=hi)
    ref = min((least_squares(lambda p: form.evaluate(p[None, :], {"x": x})[0] - y,
                             np.clip(s, lo + 1e-9, hi - 1e-9), bounds=(lo, hi), xtol=1e-14, ftol=1e-14,
                             gtol=1e-14) for s in starts), key=lambda r: r.cost)
    assert ref.x[1] == pytest.approx(1.0)  # the ceiling is on its bound
    np.testing.assert_allclose(res.cost, ref.cost, rtol=1e-7)
    np.testing.assert_allclose(res.x, np.tile(ref.x, (len(starts), 1)), rtol=1e-5)


def test_exp_link_recovers_gadre_parameters_from_synthetic_points():
    L, y = exp_points(n=40, noise=0.002)
    fit = fit_link(L, y, "exp", bootstrap=200, seed=0)
    for name, true in TRUE_EXP.items():
        assert fit.params[name] == pytest.approx(true, rel=0.05)
        lo, hi = fit.ci[name]
        assert lo < fit.params[name] < hi and hi - lo < 0.2 * true
    assert fit.residual_std == pytest.approx(0.002, rel=0.3)
    assert not fit.unidentified and not fit.warnings


def test_exp_link_intervals_cover_the_truth_in_most_repeats():
    hits = {k: 0 for k in TRUE_EXP}
    repeats = 20
    for r in range(repeats):
        L, y = exp_points(n=25, noise=0.004, seed=100 + r)
        fit = fit_link(L, y, "exp", bootstrap=150, seed=r)
        for k, true in TRUE_EXP.items():
            hits[k] += fit.ci[k][0] <= true <= fit.ci[k][1]
    # nominal 95%; 20 repeats: at least 16 is what a working interval gives
    assert all(h >= 16 for h in hits.values()), hits


def test_sigmoid_link_recovers_accuracy_from_task_loss():
    true = {"lo": 0.25, "hi": 0.9, "s": -3.0, "x0": 1.2}
    rng = np.random.default_rng(3)
    x = np.linspace(0.4, 2.2, 40)
    y = SIGMOID_LINK.law(true, x=x) + rng.normal(0, 0.005, len(x))
    fit = fit_link(x, y, "sigmoid", bootstrap=150)
    for k, v in true.items():
        assert fit.params[k] == pytest.approx(v, abs=0.05 * max(1, abs(v)))
        assert fit.ci[k][0] <= v <= fit.ci[k][1]


def test_sigmoid_between_fixed_floor_and_ceiling_fits_only_slope_and_midpoint():
    true = {"lo": 0.25, "hi": 1.0, "s": 1.5, "x0": 23.0}
    rng = np.random.default_rng(4)
    x = np.linspace(20, 25, 30)
    y = SIGMOID_LINK.law(true, x=x) + rng.normal(0, 0.01, len(x))
    fit = fit_link(x, y, "sigmoid", fixed={"lo": 0.25, "hi": 1.0}, bootstrap=100)
    assert fit.params["lo"] == 0.25 and fit.params["hi"] == 1.0
    assert set(fit.to_dict()["ci"]) == {"s", "x0"}
    # a fixed parameter has no interval anywhere: conf_int gave lo (0.25, 0.25), hi (1.0, 1.0)
    assert set(fit.ci) == set(fit.conf_int()) == set(fit.conf_int(0.5)) == {"s", "x0"}
    # ... and is shown as fixed beside its value, in one column like the fitted ones
    rows = {r[0]: r[1] for r in fit.summary().tables[0].texts()}
    assert rows["lo"] == "0.25 (fixed)" and rows["hi"] == "1 (fixed)" and rows["s"].count("[") == 1
    assert fit.params["s"] == pytest.approx(1.5, rel=0.1)
    assert fit.params["x0"] == pytest.approx(23.0, abs=0.1)


def test_sigmoid_that_never_reaches_its_midpoint_flags_the_far_asymptote():
    true = {"lo": 0.25, "hi": 1.0, "s": 1.5, "x0": 26.0}
    x = np.linspace(20, 23, 20)  # all below the bend
    y = SIGMOID_LINK.law(true, x=x) + np.random.default_rng(5).normal(0, 0.002, len(x))
    fit = fit_link(x, y, "sigmoid", bootstrap=50)
    assert {"hi", "x0"} <= set(fit.unidentified)
    assert any("midpoint" in w for w in fit.warnings)
    assert not fit.param_estimates()["hi"].identified
    # fixing the ceiling is what the warning advises, and it identifies the rest
    fixed = fit_link(x, y, "sigmoid", fixed={"hi": 1.0}, bootstrap=50)
    assert "x0" not in fixed.unidentified


def test_a_straight_stretch_of_the_exponential_is_not_identified():
    L = np.linspace(3.0, 3.05, 12)  # 0.05 nats: the exponential is a line there
    y = EXP_LINK.law(TRUE_EXP, L=L) + np.random.default_rng(6).normal(0, 1e-4, len(L))
    fit = fit_link(L, y, "exp", bootstrap=30)
    assert set(fit.unidentified) >= {"gamma"}


def test_too_few_points_or_a_constant_metric_cannot_be_identified():
    with pytest.raises(NotIdentifiable, match="need at least 4"):
        fit_form(EXP_LINK, {"L": [3.0, 3.0, 4.0, 5.0]}, [0.5, 0.5, 0.4, 0.3])
    with pytest.raises(NotIdentifiable, match="every point"):
        fit_link(np.linspace(2, 5, 8), np.full(8, 0.5))
    with pytest.raises(ParameterError, match="not parameters"):
        fit_link(np.linspace(2, 5, 8), np.linspace(0.4, 0.6, 8), fixed={"floor": 0.2})


def test_resamples_with_too_few_distinct_points_are_nan_draws_not_numbers():
    L, y = exp_points(n=4, noise=0.002)
    fit = fit_link(L, y, "exp", bootstrap=200, seed=1)
    nan_rows = ~np.all(np.isfinite(fit.draws), axis=1)
    assert 0 < nan_rows.sum() < 200  # some resamples of 4 points hold fewer than 3 distinct ones
    assert any("could not identify" in w for w in fit.warnings)


def test_link_curve_gives_point_and_band_for_figures():
    L, y = exp_points()
    fit = fit_link(L, y, bootstrap=100)
    grid = np.linspace(2.0, 6.5, 7)
    point, lo, hi = fit.curve(grid)
    np.testing.assert_allclose(point, fit.predict(grid))
    assert np.all(lo <= point + 1e-12) and np.all(point <= hi + 1e-12)
    # extrapolation widens the band
    assert (hi - lo)[0] > (hi - lo)[3]


def test_link_fit_round_trips_through_json_with_its_draws():
    L, y = exp_points()
    fit = fit_link(L, y, bootstrap=50, metric="err", x_name="loss_c4", run_ids=[f"r{i}" for i in range(len(L))])
    back = LinkFit.from_dict(json.loads(to_json(fit.to_dict(include_draws=True))))
    assert back.params == fit.params and back.run_ids == fit.run_ids and back.metric == "err"
    np.testing.assert_allclose(back.draws, fit.draws)
    np.testing.assert_allclose(back.curve([3.0])[1], fit.curve([3.0])[1])
    text = fit.summary().as_text()
    assert "err = Err = eps - k*exp(-gamma*L)" in text and "residual std" in text
    assert repr(fit).startswith("<LinkFit 30 runs, err ~ exp(loss_c4)")


def test_many_metrics_in_one_table_and_failures_listed_not_raised():
    L, y = exp_points(n=20)
    metrics = {"good": y, "flat": np.full(20, 0.5), "gappy": np.where(np.arange(20) % 4 == 0, np.nan, y)}
    table = fit_links(L, metrics, "exp", bootstrap=40)
    assert set(table.fits) == {"good", "gappy"} and "flat" in table.failed
    assert len(table["gappy"].x) == 15 and any("left out" in n for n in table["gappy"].notes)
    text = table.summary().as_text()
    assert "good" in text and "not fitted" in text and "flat" in text
    back = LinkTable.from_dict(json.loads(to_json(table.to_dict(include_draws=True))))
    assert set(back.fits) == {"good", "gappy"} and back.failed == table.failed
    np.testing.assert_allclose(back["good"].draws, table["good"].draws)
