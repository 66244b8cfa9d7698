"""Rolling-forward evaluation and choosing a law by it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.fit.synthetic import isoflop_runs
from scalinglab.fit.validate import RollingForward, rolling_forward, select_laws
from scalinglab.results import load_result


@pytest.fixture(scope="module")
def runs():
    return isoflop_runs(budgets=np.geomspace(1e18, 3e21, 8), per_budget=6, noise=0.004, seed=11)


@pytest.fixture(scope="module")
def forward(runs):
    return rolling_forward("chinchilla", runs, bootstrap=20, steps=3)


def test_each_cutoff_fits_below_and_predicts_above(forward, runs):
    assert len(forward.steps) == 3
    for p in forward.predictions:
        assert p["C"] > p["cutoff"] and p["decades"] > 0
    # the cut-offs are budgets: the first fits on 3 of the 8, the last predicts the largest
    assert forward.steps[0]["n_train"] == 3 * 6
    assert max(p["C"] for p in forward.predictions) == pytest.approx(runs["C"].max())


def test_a_true_law_extrapolates_within_the_noise_and_its_bands_cover(forward):
    assert forward.mean_abs_rel_err < 0.02
    rows = forward.by_distance()
    assert sum(r["n"] for r in rows) == len(forward.predictions)
    assert forward._coverage("new_lo", "new_hi", forward.predictions) >= 0.8
    # the new-run band holds at least as many runs as the parameter band
    assert (forward._coverage("new_lo", "new_hi", forward.predictions)
            >= forward._coverage("lo", "hi", forward.predictions))


def test_rolling_forward_round_trips_and_summarises(forward, tmp_path):
    path = forward.save(tmp_path / "rf.json")
    back = load_result(path)
    assert isinstance(back, RollingForward) and back.mean_abs_rel_err == forward.mean_abs_rel_err
    text = forward.summary().as_text()
    assert "decades of C beyond the fit" in text and "new-run band" in text


def test_select_prefers_the_law_the_runs_were_drawn_from(runs):
    sel = select_laws(runs, ["chinchilla", "power_C"], bootstrap=0, steps=3)
    assert sel.recommended == "chinchilla"
    assert sel.scores["chinchilla"] < sel.scores["power_C"]
    assert "forward error" in sel.reason


def test_select_prefers_the_simpler_law_when_the_data_cannot_tell_them_apart():
    from scalinglab.laws.loss import CHINCHILLA

    tied = CHINCHILLA.with_params({"E": 1.8, "A": 500.0, "B": 1800.0, "alpha": 0.35, "beta": 0.35})
    runs = isoflop_runs(budgets=np.geomspace(1e18, 3e21, 7), per_budget=6, truth=tied,
                        noise=0.004, seed=2)
    sel = select_laws(runs, ["chinchilla", "chinchilla_tied"], bootstrap=0, steps=3)
    assert sel.recommended == "chinchilla_tied"


def test_too_few_budgets_and_a_holdout_are_refused(runs):
    with pytest.raises(NotIdentifiable, match="needs more than 3 compute budgets"):
        rolling_forward("chinchilla", runs[runs["C"] < 2e19], bootstrap=0)
    with pytest.raises(ParameterError, match="holdout_top"):
        rolling_forward("chinchilla", runs, holdout_top=2)
    assert isinstance(runs, pd.DataFrame)


def test_rolling_forward_in_model_size_fits_small_models_and_predicts_big_ones(runs):
    rf = rolling_forward("chinchilla", runs, by="N", bootstrap=0, steps=2, tol_dex=0.3)
    for p in rf.predictions:
        assert p["N"] > p["cutoff"]
    assert rf.by == "N" and "model size" in rf.summary().as_text()


def test_a_law_that_fits_perfectly_but_misses_a_bend_is_called_overconfident():
    from scalinglab.laws.catalogue import broken_power_law

    # a power law in C, exact below 1e19, bending flatter beyond: every fit below the bend has
    # tiny residuals, so its bands are narrow, and every prediction past the bend misses
    C = np.geomspace(1e16, 1e22, 25)
    truth = {"E": 1.5, "A": 400.0, "c0": 0.15, "c1": -0.1, "d": 1e19, "f": 0.1}
    loss = broken_power_law("C")(truth, C=C) * np.exp(1e-4 * np.random.default_rng(0).standard_normal(25))
    runs = pd.DataFrame({"C": C, "loss": loss})
    sel = select_laws(runs, ["power_C"], bootstrap=20, steps=4, min_train=8, tol_dex=0.01)
    assert "overconfident" in sel.reason


def test_cutoffs_that_cannot_identify_the_law_are_skipped_out_loud(runs):
    first = runs["C"] == runs["C"].min()
    sparse = pd.concat([runs[first].iloc[:3], runs[~first]], ignore_index=True)
    rf = rolling_forward("chinchilla", sparse, min_train=1, steps=7, bootstrap=0)
    assert rf.steps[0]["status"].startswith("skipped")
    assert any("could not identify the law and were skipped" in w for w in rf.warnings)
