"""IsoFLOP Approaches 1 and 2: budgets, parabolas, allocation exponents, and honest exclusions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.fit import NotIdentifiable, fit_isoflop, group_budgets
from scalinglab.fit.synthetic import isoflop_runs
from scalinglab.laws.loss import BESIROGLU_2024

P = BESIROGLU_2024.params
A_TRUE = P["beta"] / (P["alpha"] + P["beta"])


def test_group_budgets_joins_runs_whose_compute_agrees_within_tolerance():
    C = np.array([1.0e19, 1.1e19, 0.9e19, 1e20, 1.05e20, 1e21])
    group, budgets = group_budgets(C, tol_dex=0.1)
    assert group.tolist() == [0, 0, 0, 1, 1, 2]
    np.testing.assert_allclose(budgets, [np.exp(np.log(C[:3]).mean()), np.exp(np.log(C[3:5]).mean()), 1e21])
    # a budget spans at most tol_dex: a 50% difference is two budgets, even with nothing between
    assert group_budgets([1e19, 1.5e19], tol_dex=0.1)[0].tolist() == [0, 1]


def test_group_budgets_uses_labels_when_given():
    group, budgets = group_budgets([1e19, 3e19, 1e20], labels=["1e20", "1e19", "1e20"])
    assert group.tolist() == [1, 0, 1]
    assert budgets.tolist() == [1e19, 1e20]


def test_approaches_1_and_2_recover_the_allocation_exponent():
    runs = isoflop_runs(budgets=np.geomspace(1e18, 1e22, 9), per_budget=9, noise=0.003, seed=1)
    res = fit_isoflop(runs, bootstrap=100, seed=0)
    assert len(res.budgets) == 9 and all(b.ok for b in res.budgets)
    assert res.approach2.a == pytest.approx(A_TRUE, abs=0.02)
    assert res.approach1.a == pytest.approx(A_TRUE, abs=0.06)
    # D_opt = C / 6 N_opt at every budget, so the exponents add to one
    assert res.approach2.a + res.approach2.b == pytest.approx(1.0, abs=1e-9)
    lo, hi = res.approach2.ci["a"]
    assert lo < res.approach2.a < hi
    # each parabola's vertex is where its curve is lowest
    b = res.budgets[4]
    grid = np.geomspace(*b.N_range, 2001)
    assert grid[np.argmin(b.loss_at(grid))] == pytest.approx(b.N_opt, rel=0.01)


def test_a_budget_without_an_interior_minimum_is_excluded_with_a_warning():
    runs = isoflop_runs(budgets=[1e18, 1e19, 1e20, 1e21], per_budget=7, noise=0.002, seed=0)
    # the smallest budget only sampled on the large-model side: loss rises monotonically
    small = runs["C"] == runs["C"].min()
    n_opt = runs.loc[small].sort_values("loss")["N"].iloc[0]
    runs = runs[~small | (runs["N"] > 1.5 * n_opt)]
    res = fit_isoflop(runs, bootstrap=20)
    excluded = [b for b in res.budgets if not b.ok]
    assert len(excluded) == 1
    assert abs(excluded[0].C / 1e18 - 1) < 0.01
    assert "outside the sampled N range" in excluded[0].status or "opens downward" in excluded[0].status
    assert any("excluded from Approach 2" in w for w in res.warnings)
    assert res.approach2.n_budgets == 3


def test_one_budget_cannot_give_an_allocation_law():
    runs = isoflop_runs(budgets=[1e19], per_budget=8)
    with pytest.raises(NotIdentifiable, match="at least 2 compute budgets"):
        fit_isoflop(runs, bootstrap=0)


def test_result_serialises_with_per_budget_parabolas():
    from scalinglab.clikit import to_json

    runs = isoflop_runs(budgets=[1e18, 1e19, 1e20], per_budget=5)
    d = fit_isoflop(runs[["N", "C", "loss"]], bootstrap=10).to_dict()
    assert len(d["budgets"]) == 3 and len(d["budgets"][0]["coef"]) == 3
    assert set(d["approach2"]) >= {"N_opt_exponent", "D_opt_exponent", "ci", "n_budgets"}
    to_json(d)  # valid JSON


def test_budget_tag_groups_store_runs():
    runs = isoflop_runs(budgets=[1e18, 1e19, 1e20], per_budget=5)
    runs["tags"] = [{"budget": f"{c:.0e}"} for c in runs["C"]]
    res = fit_isoflop(pd.DataFrame(runs), bootstrap=0, budget="budget")
    assert [b.C for b in res.budgets] == [1e18, 1e19, 1e20]
