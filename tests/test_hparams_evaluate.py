"""Leave-groups-out evaluation: folds, the excess-loss metric, and no leakage of held-out groups."""

from pathlib import Path

import numpy as np
import pytest

from scalinglab.errors import ParameterError
from scalinglab.hparams.evaluate import evaluate_laws, folds
from scalinglab.hparams.grid import grid_from_frame, read_grid
from scalinglab.hparams.synthetic import synthetic_grid
from scalinglab.laws.hparams import DEEPSEEK, STEP_LAW, HparamLaw

DENSE = Path("../shared/data/steplaw/dense_lr_bs_loss.csv")


def test_random_folds_hold_out_every_group_once():
    keys = [(float(i), 1.0) for i in range(1, 11)]
    fs = folds(keys, 3, "random", seed=0)
    assert sorted(i for f in fs for i in f) == list(range(10))
    assert [len(f) for f in fs] == [3, 3, 3, 1]


def test_largest_split_holds_out_the_biggest_budgets():
    keys = [(1.0, 1.0), (5.0, 5.0), (2.0, 1.0), (3.0, 3.0)]
    assert folds(keys, 2, "largest", seed=0) == [[1, 3]]
    with pytest.raises(ParameterError):
        folds(keys, 4, "random", seed=0)


def test_true_law_costs_nothing_and_a_wrong_lr_costs_its_curvature():
    grid = grid_from_frame(synthetic_grid(STEP_LAW, curvature=(0.004, 0.003, 0.0)))
    doubled = HparamLaw(name="2x lr", lr=STEP_LAW.lr.replace(params={
        **STEP_LAW.lr.params, "intercept": STEP_LAW.lr.params["intercept"] + np.log(2.0)}),
        batch=STEP_LAW.batch, provenance=STEP_LAW.provenance)
    ev = evaluate_laws(grid, {"true": STEP_LAW, "2x lr": doubled}, holdout_groups=2)
    s = ev.summary().set_index("law")
    assert s.loc["true", "max_surface"] == pytest.approx(0.0, abs=1e-10)
    assert s.loc["true", "max_cubic"] == pytest.approx(0.0, abs=1e-10)
    assert s.loc["true", "max_nearest"] == pytest.approx(0.0, abs=1e-12)
    for m in ("fitted-threshold", "fitted-surface"):
        assert s.loc[m, "max_surface"] == pytest.approx(0.0, abs=1e-8)
    # excess = a (ln 2)^2 with a = 0.004
    for reading in ("surface", "cubic"):
        assert s.loc["2x lr", f"mean_{reading}"] == pytest.approx(0.004 * np.log(2) ** 2, rel=1e-6)
    assert s.loc["2x lr", "groups"] == 9


def test_held_out_group_never_informs_the_law_evaluated_on_it():
    frame = synthetic_grid(STEP_LAW, noise=3e-4, seed=4)
    victim = (frame.N == 4e8) & (frame.D == 2e10)
    moved = frame.copy()
    moved.loc[victim, "lr"] *= 3.0  # same losses, but this group's optimum now at 3x the lr
    a = evaluate_laws(grid_from_frame(frame), {}, holdout_groups=1).rows
    b = evaluate_laws(grid_from_frame(moved), {}, holdout_groups=1).rows
    on_victim = (a.N == 4e8) & (a.D == 2e10)
    np.testing.assert_allclose(a.loc[on_victim, "lr"], b.loc[on_victim, "lr"], rtol=1e-12)
    # ...while the other groups' predictions do move: the change is visible to their fits
    assert not np.allclose(a.loc[~on_victim, "lr"], b.loc[~on_victim, "lr"], rtol=1e-6)


@pytest.mark.skipif(not DENSE.exists(), reason="shared Step Law data not present")
def test_dense_headline_numbers():
    ev = evaluate_laws(read_grid(DENSE), {"steplaw": STEP_LAW, "deepseek": DEEPSEEK})
    s = ev.summary().set_index("law")
    assert list(s.index) == ["steplaw", "deepseek", "fitted-threshold", "fitted-surface"]
    assert (s["groups"] == 17).all()
    # DeepSeek's law (other data, lr from compute alone) is clearly worse on this grid
    assert s.loc["deepseek", "mean_nearest"] > 3 * s.loc["fitted-threshold", "mean_nearest"]
    # held-out surface refit: mean excess below the paper's 0.09% headline on both smooth
    # readings, including the cubic one that is not the estimator's own model
    assert s.loc["fitted-surface", "mean_surface"] < 0.0009
    assert s.loc["fitted-surface", "mean_cubic"] < 0.0009
    # the nearest-run reading cannot resolve below its noise floor
    assert 0.0005 < ev.nearest_floor["mean"] < 0.003
