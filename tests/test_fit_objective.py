"""The fitting objective: Huber on log residuals of the law's LSE form, and its exact gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scalinglab.fit.objective import HUBER_DELTA, HuberObjective, huber, log_model, to_params
from scalinglab.laws.loss import CHINCHILLA, KAPLAN, power_law


def test_huber_is_quadratic_inside_delta_and_linear_outside():
    r = np.array([0.0, 5e-4, -5e-4, 2e-3, -0.01])
    expected = [0.0, 0.5 * 5e-4**2, 0.5 * 5e-4**2, 1e-3 * (2e-3 - 5e-4), 1e-3 * (0.01 - 5e-4)]
    np.testing.assert_allclose(huber(r, 1e-3), expected, rtol=1e-12)


def test_objective_on_a_case_computed_by_hand():
    # E = A = B = 1, alpha = beta = 1: Lhat = 1 + 1/N + 1/D
    N, D = np.array([1.0, 2.0, 2.0]), np.array([1.0, 4.0, 4.0])
    # observed losses put the residuals log Lhat - log L at 0, +0.0005 (inside delta), +0.002
    loss = np.array([3.0, 1.75 * math.exp(-0.0005), 1.75 * math.exp(-0.002)])
    theta = np.array([[0.0, 0.0, 0.0, 1.0, 1.0]])  # (e, a, b, alpha, beta) = logs of 1, and 1, 1
    model = log_model(CHINCHILLA, {"N": N, "D": D})
    lp, _ = model.forward(theta)
    np.testing.assert_allclose(lp[0], np.log([3.0, 1.75, 1.75]), rtol=1e-12)
    by_hand = 0.5 * 0.0005**2 + 1e-3 * (0.002 - 0.0005)  # = 1.625e-6
    f, _ = HuberObjective(model, loss)(theta, np.zeros(1, int))
    assert f[0] * HUBER_DELTA == pytest.approx(by_hand, rel=1e-9)
    # multiplicities weight runs: counting the third run twice adds its Huber term again
    weighted = HuberObjective(model, loss, weights=np.array([[1.0, 1.0, 2.0]]), row_weights=np.zeros(1, int))
    f2, _ = weighted(theta, np.zeros(1, int))
    assert f2[0] * HUBER_DELTA == pytest.approx(by_hand + 1.5e-6, rel=1e-9)


LAWS = [
    (CHINCHILLA, {"N": [1e8, 3e8, 1e9, 4e9, 2e8], "D": [2e9, 1e10, 5e9, 8e10, 3e11]},
     [0.6, 6.0, 7.5, 0.34, 0.36]),
    (power_law("C"), {"C": [1e18, 1e19, 1e20, 3e20, 1e22]}, [0.5, 8.0, 0.15]),
    (power_law("N"), {"N": [1e7, 1e8, 1e9, 3e9]}, [0.3, 6.0, 0.3]),
    (KAPLAN, {"N": [1e8, 3e8, 1e9, 4e9, 2e8], "D": [2e9, 1e10, 5e9, 8e10, 3e11]},
     [np.log(8.8e13), np.log(5.4e13), 0.076, 0.095]),
]


@pytest.mark.parametrize(("law", "inputs", "theta"), LAWS, ids=lambda v: getattr(v, "name", ""))
def test_log_form_equals_the_law_as_declared(law, inputs, theta):
    inputs = {k: np.asarray(v, dtype=float) for k, v in inputs.items()}
    model = log_model(law, inputs)
    params = dict(zip(law.param_names, to_params(model.log_params, np.array(theta)), strict=True))
    lp, _ = model.forward(np.array([theta]))
    np.testing.assert_allclose(np.exp(lp[0]), law(params, **inputs), rtol=1e-12)


@pytest.mark.parametrize(("law", "inputs", "theta"), LAWS, ids=lambda v: getattr(v, "name", ""))
def test_gradient_matches_central_differences(law, inputs, theta):
    rng = np.random.default_rng(0)
    inputs = {k: np.asarray(v, dtype=float) for k, v in inputs.items()}
    model = log_model(law, inputs)
    base = np.array(theta)
    lp, _ = model.forward(base[None])
    # losses scattered around the law so residuals fall on both sides of delta
    loss = np.exp(lp[0] + rng.normal(0, 3e-3, lp.shape[1]))
    weights = rng.integers(0, 3, size=(2, lp.shape[1])).astype(float)
    obj = HuberObjective(model, loss, weights=weights, row_weights=np.array([0, 1]))
    points = base + rng.normal(0, 0.01, size=(2, len(base)))
    rows = np.array([0, 1])
    _, grad = obj(points, rows)
    h = 1e-6
    for j in range(len(base)):
        step = np.zeros_like(points)
        step[:, j] = h
        fd = (obj(points + step, rows)[0] - obj(points - step, rows)[0]) / (2 * h)
        np.testing.assert_allclose(grad[:, j], fd, rtol=1e-5, atol=1e-6)


def test_wild_parameters_give_a_finite_log_prediction_not_overflow():
    model = log_model(CHINCHILLA, {"N": np.array([1e8, 1e10]), "D": np.array([1e9, 1e12])})
    lp, _ = model.forward(np.array([[0.0, 900.0, 0.0, 0.0, 0.5]]))  # A = e^900 overflows a float
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp[0], 900.0, rtol=1e-12)
