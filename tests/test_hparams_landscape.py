"""One group's loss landscape: convex quadratic fit, optimum and plateau."""

import numpy as np
import pytest

from scalinglab.fit.result import NotIdentifiable
from scalinglab.hparams.landscape import fit_landscape, nearest_run_excess
from scalinglab.hparams.synthetic import synthetic_grid
from scalinglab.laws.hparams import STEP_LAW

N, D = 4e8, 2e10


def group(**kw):
    return synthetic_grid(points=[(N, D)], **kw)


def test_exact_bowl_gives_its_optimum_and_hessian():
    g = group(curvature=(0.004, 0.003, 0.001))
    land = fit_landscape(g, window=0.02)
    pred = STEP_LAW.predict(N, D)
    opt = land.optimum
    assert opt["lr"] == pytest.approx(float(pred["lr"]), rel=1e-8)
    assert opt["batch_tokens"] == pytest.approx(float(pred["batch_tokens"]), rel=1e-8)
    l0 = g["loss"].min()
    # L = l0 (1 + a du^2 + b dv^2 + c du dv)  =>  H = l0 [[2a, c], [c, 2b]]
    np.testing.assert_allclose(land.hessian, l0 * np.array([[0.008, 0.001], [0.001, 0.006]]),
                               rtol=1e-6)
    assert opt["loss"] == pytest.approx(l0, rel=1e-10)


def test_plateau_extent_matches_closed_form():
    # no cross term: within eps where a du^2 <= eps, i.e. lr within a factor exp(sqrt(eps/a))
    land = fit_landscape(group(curvature=(0.004, 0.001, 0.0)))
    p = land.plateau(eps=0.0025)
    assert p["lr_factor"] == pytest.approx(np.exp(np.sqrt(0.0025 / 0.004)), rel=1e-6)
    assert p["batch_factor"] == pytest.approx(np.exp(np.sqrt(0.0025 / 0.001)), rel=1e-6)
    lo, hi = p["lr"]
    assert lo * p["lr_factor"] == pytest.approx(land.optimum["lr"])
    assert hi / p["lr_factor"] == pytest.approx(land.optimum["lr"])


def test_excess_is_zero_at_the_optimum_and_quadratic_away_from_it():
    land = fit_landscape(group(curvature=(0.004, 0.003, 0.0)))
    lr, bt = land.argmin_exp
    assert land.excess(lr, bt) == pytest.approx(0.0, abs=1e-12)
    assert land.excess(lr * np.e, bt) == pytest.approx(0.004, rel=1e-6)


def test_a_saddle_is_not_identifiable():
    g = group(curvature=(0.004, -0.003, 0.0))
    with pytest.raises(NotIdentifiable, match="convex"):
        fit_landscape(g)


def test_window_widens_when_too_few_runs_are_near_the_best():
    # steep bowl: only the centre run is within 2% of the best, so the fit must widen
    land = fit_landscape(group(curvature=(0.2, 0.2, 0.0)), window=0.02)
    assert land.window > 0.02
    assert land.n_fit >= 8


def test_nearest_run_reads_the_grid_not_a_model():
    g = group(curvature=(0.004, 0.003, 0.0))
    best = g.loc[g["loss"].idxmin()]
    assert nearest_run_excess(g, best.lr, best.batch_tokens) == 0.0
    other = g.iloc[0]
    expected = other.loss / g["loss"].min() - 1
    assert nearest_run_excess(g, other.lr * 1.01, other.batch_tokens) == pytest.approx(expected)
