"""Tied, fixed and bounded parameters: still a Law, recovered from data drawn with them."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from scalinglab.clikit import to_json
from scalinglab.errors import ParameterError
from scalinglab.fit import FitResult, fit_law
from scalinglab.fit.synthetic import isoflop_runs
from scalinglab.laws.loss import CHINCHILLA, chinchilla_optimum
from scalinglab.laws.registry import law_from_dict

TIED_TRUTH = CHINCHILLA.with_params({"E": 1.8, "A": 500.0, "B": 1800.0, "alpha": 0.35, "beta": 0.35})
#: a small grid keeps these tests fast (the default grid is exercised elsewhere)
SMALL = np.array(list(itertools.product((0.0, 0.6), (5.0, 8.0), (6.0, 9.0), (0.3, 0.6), (0.3, 0.6))))


@pytest.fixture(scope="module")
def tied_runs():
    return isoflop_runs(budgets=np.geomspace(1e18, 1e21, 6), per_budget=8, truth=TIED_TRUTH,
                        noise=0.003, seed=4)


def test_a_tied_law_is_a_law_with_one_parameter_fewer():
    law = CHINCHILLA.tied(beta="alpha")
    assert law.param_names == ("E", "A", "B", "alpha")
    p = {"E": 1.8, "A": 500.0, "B": 1800.0, "alpha": 0.35}
    assert law(p, N=1e9, D=2e10) == pytest.approx(
        CHINCHILLA({**p, "beta": 0.35}, N=1e9, D=2e10))
    n, d = law.optimum(p, 1e22)
    assert (n, d) == pytest.approx(chinchilla_optimum({**p, "beta": 0.35}, 1e22))
    exps = {f.name: f.fn(p) for f in law.derived}
    assert exps["N_opt_exponent"] == pytest.approx(0.5)
    assert next(f for f in law.derived if f.name == "N_opt_exponent").uses == ("alpha",)


def test_tied_fit_recovers_the_shared_exponent(tied_runs):
    fit = fit_law("chinchilla", tied_runs, tie={"beta": "alpha"}, bootstrap=30)
    assert fit.law.param_names == ("E", "A", "B", "alpha")
    assert fit.params["alpha"] == pytest.approx(0.35, abs=0.005)
    assert fit.params["E"] == pytest.approx(1.8, rel=0.01)
    lo, hi = fit.ci["alpha"]
    assert lo <= 0.35 <= hi
    assert any("beta = alpha" in n for n in fit.notes)


def test_fixing_the_truth_recovers_the_rest(tied_runs):
    fit = fit_law("chinchilla", tied_runs, fix={"E": 1.8, "beta": 0.35}, bootstrap=0, starts=None)
    assert fit.law.param_names == ("A", "B", "alpha")
    assert fit.params["alpha"] == pytest.approx(0.35, abs=0.003)
    assert np.log(fit.params["A"]) == pytest.approx(np.log(500.0), abs=0.05)
    assert np.log(fit.params["B"]) == pytest.approx(np.log(1800.0), abs=0.05)


def test_an_enforced_bound_holds_and_is_said_to_decide_the_value(tied_runs):
    fit = fit_law("chinchilla", tied_runs, bounds={"alpha": (0.05, 0.3)}, bootstrap=20, starts=None)
    assert 0.05 <= fit.params["alpha"] <= 0.3
    assert fit.params["alpha"] == pytest.approx(0.3, abs=0.003)
    assert np.all(fit.draws[:, 3] <= 0.3 + 1e-9)
    assert any("enforced bound" in w and "alpha" in w for w in fit.warnings)
    free = fit_law("chinchilla", tied_runs, bounds={"alpha": (0.05, 0.9)}, bootstrap=0)
    assert free.params["alpha"] == pytest.approx(0.35, abs=0.01)
    assert not any("enforced bound" in w for w in free.warnings)


def test_constraints_compose_and_round_trip_through_a_saved_fit(tied_runs):
    law = CHINCHILLA.tied(beta="alpha").fixed(E=1.8).bounded(alpha=(0.1, 1.0))
    fit = fit_law(law, tied_runs, bootstrap=10)
    assert fit.law.param_names == ("A", "B", "alpha")
    back = FitResult.from_dict(json.loads(to_json(fit.to_dict(include_draws=True))))
    assert back.law.name == fit.law.name
    assert back.predict(N=3e9, D=6e10) == pytest.approx(fit.predict(N=3e9, D=6e10))
    assert back.optimum(1e22).N.value == pytest.approx(fit.optimum(1e22).N.value)
    assert law_from_dict(law.to_dict()).param_names == law.param_names


def test_the_catalogue_names_the_tied_law():
    fit_dict = {"law": "chinchilla_tied", "formula": CHINCHILLA.tied(beta="alpha").formula}
    assert law_from_dict(fit_dict).name == "chinchilla_tied"


@pytest.mark.parametrize("kwargs, match", [
    ({"tie": {"beta": "E"}}, "logarithm"),
    ({"tie": {"gamma": "alpha"}}, "does not have"),
    ({"tie": {"beta": "alpha"}, "fix": {"alpha": 0.3}}, "both tied and fixed"),
    ({"fix": {"A": -1.0}}, "positive"),
    ({"bounds": {"alpha": (1.0, 0.5)}}, "lo < hi"),
    ({"fix": dict.fromkeys(("E", "A", "B", "alpha", "beta"), 1.0)}, "nothing"),
    ({"tie": {"alpha": "beta", "beta": "alpha"}}, "circle"),
])
def test_impossible_constraints_are_refused_with_the_reason(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        CHINCHILLA.constrained(**kwargs)


def test_the_summary_shows_tied_and_fixed_parameters(tied_runs):
    fit = fit_law("chinchilla", tied_runs, tie={"beta": "alpha"}, fix={"E": 1.8}, bootstrap=5)
    text = fit.summary().as_text()
    assert "tied to alpha" in text and "fixed" in text


def test_a_derived_figure_of_fixed_parameters_only_is_shown_fixed_not_as_a_zero_width_interval(tied_runs):
    # alpha and beta fixed: the N_opt exponent beta / (alpha + beta) is 0.35 / 0.7 = 0.5 in every
    # draw; "0.5 [0.5, 0.5]" would read as a measurement known exactly
    fit = fit_law("chinchilla", tied_runs, fix={"alpha": 0.35, "beta": 0.35}, bootstrap=5,
                  starts=SMALL[:, :3])
    d = fit.derived()
    assert d["N_opt_exponent"] == {"value": pytest.approx(0.5), "ci": None, "note": "fixed: from alpha, beta"}
    lines = fit.summary().as_text().splitlines()
    row = next(line for line in lines if line.startswith("N opt exponent"))
    assert row.split()[3:] == ["0.5", "fixed:", "from", "alpha,", "beta"]
    # a figure that also uses a fitted parameter keeps its interval
    assert d["at_compute"][0]["N_opt"]["ci"] is not None
    # one of the two fixed: the figure still varies with the other
    one = fit_law("chinchilla", tied_runs, fix={"beta": 0.35}, bootstrap=5,
                  starts=SMALL[:, :4]).derived()["N_opt_exponent"]
    assert one["ci"] is not None and one["ci"][0] < one["ci"][1]
