"""The batched L-BFGS: each start is optimised as well as scipy's L-BFGS-B would, on its own terms."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from scalinglab.fit.optimize import CONVERGED_FTOL, NONFINITE_START, batched_lbfgs


def rosenbrock(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = x[:, 0], x[:, 1]
    f = (1 - a) ** 2 + 100 * (b - a * a) ** 2
    g = np.stack([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)], axis=1)
    return f, g


def test_every_start_of_a_batch_reaches_the_rosenbrock_minimum():
    starts = np.array([[-1.2, 1.0], [2.0, -1.0], [0.0, 0.0], [-3.0, 5.0], [1.5, 2.5]])
    res = batched_lbfgs(rosenbrock, starts)
    assert res.converged.all()
    np.testing.assert_allclose(res.x, 1.0, atol=1e-4)
    assert np.all(res.f < 1e-8)


def test_matches_scipy_lbfgsb_start_by_start():
    rng = np.random.default_rng(1)
    starts = rng.uniform(-2, 2, size=(20, 2))
    res = batched_lbfgs(rosenbrock, starts)
    for x0, x, f in zip(starts, res.x, res.f, strict=True):
        ref = minimize(lambda v: tuple(a[0] for a in rosenbrock(v[None], np.zeros(1, int))), x0,
                       jac=True, method="L-BFGS-B")
        assert abs(f - ref.fun) < 1e-7
        np.testing.assert_allclose(x, ref.x, atol=2e-3)


def test_starts_converge_independently_and_leave_the_batch():
    # an exactly quadratic start is done in a few iterations while Rosenbrock ones keep going
    def mixed(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f, g = rosenbrock(x, rows)
        quad = rows == 0
        f[quad] = np.sum((x[quad] - 3.0) ** 2, axis=1)
        g[quad] = 2 * (x[quad] - 3.0)
        return f, g

    res = batched_lbfgs(mixed, np.array([[0.0, 0.0], [-1.2, 1.0], [-1.2, 1.0]]))
    np.testing.assert_allclose(res.x[0], 3.0, atol=1e-6)
    assert res.n_iter[0] <= 3 < 20 < res.n_iter[1]
    # identical starts follow identical paths: no state leaks between rows
    np.testing.assert_array_equal(res.x[1], res.x[2])
    # batching costs no extra evaluations: a finished start is not evaluated again
    alone = batched_lbfgs(mixed, np.zeros((1, 2))).n_evals + 2 * batched_lbfgs(
        rosenbrock, np.array([[-1.2, 1.0]])).n_evals
    assert res.n_evals == alone


def test_per_start_data_via_rows():
    targets = np.array([[1.0, 2.0], [-3.0, 0.5], [10.0, -7.0]])

    def fg(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = x - targets[rows]
        return np.sum(d**4 + d**2, axis=1), 4 * d**3 + 2 * d

    res = batched_lbfgs(fg, np.zeros((3, 2)))
    np.testing.assert_allclose(res.x, targets, atol=1e-4)


def test_a_start_where_the_objective_is_not_finite_is_reported_not_moved():
    def fg(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = np.where(x[:, 0] > 0, np.sum(x**2, axis=1), np.nan)
        return f, 2 * x

    res = batched_lbfgs(fg, np.array([[-1.0, 1.0], [1.0, 1.0]]))
    assert res.status[0] == NONFINITE_START
    np.testing.assert_array_equal(res.x[0], [-1.0, 1.0])
    assert res.status[1] <= CONVERGED_FTOL


def test_line_search_steps_back_from_regions_where_the_objective_is_infinite():
    # log barrier: x must stay positive; a unit step from x=0.5 along -g would leave the domain
    def fg(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(x[:, 0] > 0, x[:, 0] - 2 * np.log(x[:, 0]), np.inf)
        return f, (1 - 2 / x)

    res = batched_lbfgs(fg, np.array([[0.05], [10.0]]))
    np.testing.assert_allclose(res.x[:, 0], 2.0, atol=1e-4)


def test_a_batch_gives_every_start_the_result_it_gets_alone():
    # line searches of different lengths put the starts out of step with one another, and
    # finished starts leave the batch: neither may change any start's path
    starts = np.random.default_rng(3).uniform(-2.5, 2.5, size=(40, 2))
    batch = batched_lbfgs(rosenbrock, starts)
    alone = [batched_lbfgs(rosenbrock, x0[None]) for x0 in starts]
    for i, res in enumerate(alone):
        np.testing.assert_array_equal(batch.x[i], res.x[0])
        assert batch.n_iter[i] == res.n_iter[0] and batch.status[i] == res.status[0]
    assert batch.n_evals == sum(res.n_evals for res in alone)


def test_compaction_keeps_every_field_of_a_start_together():
    # the state of the starts still running is one object; take(keep) must move every field's
    # column together, so no field can be left out of a compaction
    from dataclasses import fields

    from scalinglab.fit.optimize import _Columns

    k, P, m = 5, 2, 3
    cols = {f.name: np.arange(k)[None].repeat(3, 0) * 10 + np.arange(3)[:, None] for f in fields(_Columns)}
    cols["ids"], cols["alive"] = np.arange(k), np.array([True, False, True, True, False])
    cols["hist"] = np.arange(m * (2 * P + 1) * k).reshape(m, 2 * P + 1, k)
    state = _Columns(**cols)
    kept = state.take(np.flatnonzero(state.alive))
    assert kept.k == 3
    for f in fields(_Columns):
        np.testing.assert_array_equal(getattr(kept, f.name), getattr(state, f.name)[..., [0, 2, 3]])
        assert getattr(kept, f.name).flags.c_contiguous
