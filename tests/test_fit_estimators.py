"""Estimator options: least squares, an asymmetric penalty, per-run weights, dropped runs, filters."""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import ParameterError
from scalinglab.fit import fit_law
from scalinglab.fit.objective import Estimator, HuberObjective, huber
from scalinglab.fit.synthetic import isoflop_runs
from scalinglab.laws.loss import BESIROGLU_2024

TRUE = BESIROGLU_2024.params
SMALL = np.array(list(itertools.product((0.0, 0.6), (5.0, 8.0), (6.0, 9.0), (0.3, 0.6), (0.3, 0.6))))


@pytest.fixture(scope="module")
def runs():
    return isoflop_runs(budgets=np.geomspace(1e18, 1e21, 6), per_budget=8, noise=0.004, seed=7)


def test_objective_value_is_each_estimators_score_of_the_residuals(runs):
    from scalinglab.laws.loss import CHINCHILLA

    inputs = {"N": runs["N"].to_numpy(), "D": runs["D"].to_numpy()}
    y = runs["loss"].to_numpy()
    theta = np.array([[0.5, 6.0, 7.5, 0.33, 0.36]])
    r = CHINCHILLA.log_model(inputs).forward(theta, np.log(y))[0][0].copy()
    for est in (Estimator("huber"), Estimator("mse"), Estimator("asymmetric", over_penalty=3.0)):
        f, _ = HuberObjective(CHINCHILLA.log_model(inputs), y, estimator=est)(theta, np.zeros(1, int))
        assert f[0] * est.delta == pytest.approx(float(est.rho(r).sum()), rel=1e-10)
    assert Estimator("asymmetric", over_penalty=3.0).rho(np.array([0.01]))[0] == pytest.approx(
        3.0 * huber(np.array([0.01]))[0])


def test_least_squares_recovers_the_law(runs):
    fit = fit_law("chinchilla", runs, loss="mse", bootstrap=0, starts=SMALL)
    assert fit.params["alpha"] == pytest.approx(TRUE["alpha"], abs=0.02)
    assert fit.params["beta"] == pytest.approx(TRUE["beta"], abs=0.02)
    assert fit.info.estimator == {"kind": "mse"}
    assert "squared" in fit.info.objective


def test_asymmetric_penalty_keeps_the_law_below_over_predicted_runs(runs):
    bad = runs.copy()
    bad.loc[::5, "loss"] *= 0.95  # a few runs lucky by 5%
    sym = fit_law("chinchilla", bad, loss="huber", bootstrap=0, starts=SMALL)
    asym = fit_law("chinchilla", bad, loss="asymmetric", over_penalty=20.0, bootstrap=0, starts=SMALL)
    lucky = bad.iloc[::5]
    over = lambda f: np.mean(f.predict(N=lucky["N"].to_numpy(), D=lucky["D"].to_numpy())  # noqa: E731
                             - lucky["loss"].to_numpy())
    assert over(asym) < over(sym)


def test_weight_two_is_the_same_fit_as_the_run_twice(runs):
    w = np.ones(len(runs))
    w[:10] = 2.0
    weighted = fit_law("chinchilla", runs, weights=w, bootstrap=0, starts=SMALL)
    doubled = fit_law("chinchilla", pd.concat([runs, runs.iloc[:10]], ignore_index=True),
                      bootstrap=0, starts=SMALL)
    for k in weighted.params:
        assert weighted.params[k] == pytest.approx(doubled.params[k], rel=1e-4)


def test_sqrt_c_weights_and_column_weights(runs):
    fit = fit_law("chinchilla", runs.assign(w=np.sqrt(runs["C"])), weights="w", bootstrap=0,
                  starts=SMALL)
    same = fit_law("chinchilla", runs, weights="sqrtC", bootstrap=0, starts=SMALL)
    assert fit.params == pytest.approx(same.params)
    assert any("sqrt(C)" in n for n in same.notes)
    with pytest.raises(ParameterError, match="neither 'sqrtC' nor a column"):
        fit_law("chinchilla", runs, weights="nope", bootstrap=0, starts=SMALL)


def test_drop_highest_leaves_out_exactly_the_k_highest_losses(runs):
    frame = runs.assign(run_id=[f"r{i}" for i in range(len(runs))])
    fit = fit_law("chinchilla", frame, drop_highest=3, bootstrap=0, starts=SMALL)
    expected = set(frame.nlargest(3, "loss")["run_id"])
    assert set(fit.dropped_ids) == expected
    assert len(fit.run_ids) == len(frame) - 3 and not expected & set(fit.run_ids)
    assert any("highest-loss" in n for n in fit.notes)
    with pytest.raises(ParameterError, match="drop_highest"):
        fit_law("chinchilla", frame, drop_highest=len(frame), bootstrap=0)


def test_unknown_estimator_names_the_parameter(runs):
    with pytest.raises(ParameterError, match="loss must be one of"):
        fit_law("chinchilla", runs, loss="l1", bootstrap=0)


def test_new_run_band_is_wider_than_the_parameter_band_by_the_noise(runs):
    fit = fit_law("chinchilla", runs, bootstrap=40, starts=SMALL)
    _, lo, hi = fit.predict_interval(N=np.array([1e9]), D=np.array([2e10]))
    _, nlo, nhi = fit.predict_interval(new_run=True, N=np.array([1e9]), D=np.array([2e10]))
    assert nlo[0] < lo[0] and nhi[0] > hi[0]
    # a band of +-1.96 noise std in log space, at least
    assert np.log(nhi[0] / nlo[0]) >= 2 * 1.9 * fit.noise_std
    assert fit.noise_std == pytest.approx(0.004, rel=0.3)


@pytest.mark.skipif(importlib.util.find_spec("scalinglab.runs.where") is None,
                    reason="the run filter language (scalinglab.runs.where) is not in this build")
def test_where_filters_a_frame_in_the_store_language(runs):
    fit = fit_law("chinchilla", runs, where="C < 5e20", bootstrap=0, starts=SMALL)
    assert fit.compute_range[1] < 5e20
