"""IsoFLOP as carefully as the papers: skipped budgets said, suspect vertices flagged, Akima."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import ParameterError
from scalinglab.fit.isoflop import fit_isoflop
from scalinglab.fit.synthetic import isoflop_runs
from scalinglab.laws.loss import BESIROGLU_2024, chinchilla_optimum

TRUE_A = BESIROGLU_2024.params["beta"] / (BESIROGLU_2024.params["alpha"] + BESIROGLU_2024.params["beta"])


def test_one_run_per_budget_never_reports_a_silent_allocation_law():
    runs = isoflop_runs(budgets=np.geomspace(1e18, 1e21, 8), per_budget=1, noise=0.0)
    single = isoflop_runs(budgets=[1e22, 3e22], per_budget=7, noise=0.0)
    res = fit_isoflop(pd.concat([runs, single], ignore_index=True), bootstrap=20)
    assert any("Approach 1 skips 8 of 10 budgets" in w for w in res.warnings)
    assert [b.approach1_status for b in res.budgets[:8]] == ["1 model size (needs 3)"] * 8
    assert res.approach1.n_budgets == 2  # the two real IsoFLOP slices only
    # all single-run budgets: neither approach can say anything, and the error says why
    from scalinglab.errors import NotIdentifiable

    with pytest.raises(NotIdentifiable, match="at least 2 compute budgets"):
        fit_isoflop(runs, bootstrap=0)


def test_budgets_with_two_sizes_are_skipped_by_approach_1_with_the_reason():
    wide = isoflop_runs(budgets=np.geomspace(1e18, 1e21, 4), per_budget=6, noise=0.001)
    thin = isoflop_runs(budgets=np.geomspace(3e21, 1e22, 3), per_budget=2, noise=0.001)
    res = fit_isoflop(pd.concat([wide, thin], ignore_index=True), bootstrap=10)
    assert res.approach1.n_budgets == 4
    assert any("fewer than 3 model sizes" in w for w in res.warnings)


def _asymmetric_slices(seed: int = 0) -> pd.DataFrame:
    """IsoFLOP slices sampled far to the large-N side of the optimum, where loss rises steeply
    and a parabola undercuts the runs (the shape Porian et al. found)."""
    rows = []
    for c in np.geomspace(1e18, 1e21, 6):
        n_opt, _ = chinchilla_optimum(BESIROGLU_2024.params, c)
        for n in n_opt * np.logspace(-0.4, 2.2, 9):
            rows.append((n, c / (6 * n), c))
    frame = pd.DataFrame(rows, columns=["N", "D", "C"])
    frame["loss"] = BESIROGLU_2024.predict(N=frame["N"].to_numpy(), D=frame["D"].to_numpy())
    return frame


def test_a_vertex_far_below_every_run_is_flagged():
    res = fit_isoflop(_asymmetric_slices(), bootstrap=0, method="parabola")
    flagged = [w for w in res.warnings if "below the best observed run" in w]
    assert flagged and "akima" in flagged[0]
    gaps = [b.gap for b in res.budgets if b.ok]
    assert max(gaps) > 2 * res.noise


def test_a_symmetric_design_is_not_flagged():
    res = fit_isoflop(isoflop_runs(budgets=np.geomspace(1e18, 1e21, 5), per_budget=9, noise=0.003),
                      bootstrap=0)
    assert not [w for w in res.warnings if "below the best observed run" in w]


def test_akima_recovers_the_allocation_exponent_where_the_parabola_is_biased():
    frame = _asymmetric_slices()
    parabola = fit_isoflop(frame, bootstrap=0, method="parabola").approach2
    akima = fit_isoflop(frame, bootstrap=0, method="akima").approach2
    assert abs(akima.a - TRUE_A) < 0.01
    assert abs(akima.a - TRUE_A) < abs(parabola.a - TRUE_A)


def test_akima_interval_covers_the_truth_on_noisy_runs():
    runs = isoflop_runs(budgets=np.geomspace(1e18, 1e21, 8), per_budget=12, noise=0.003, seed=1)
    res = fit_isoflop(runs, bootstrap=100, method="akima")
    lo, hi = res.approach2.ci["a"]
    assert lo <= TRUE_A <= hi
    assert res.method == "akima" and res.summary().as_text().count("Akima") >= 1
    back = type(res).from_dict(res.to_dict(include_draws=True))
    assert back.method == "akima"


def test_unknown_method_is_refused():
    with pytest.raises(ParameterError, match="method must be one of"):
        fit_isoflop(isoflop_runs(budgets=[1e19, 1e20], per_budget=5), method="spline")


def test_a_budget_whose_best_run_is_an_edge_is_a_bound_that_approach_1_skips():
    """Sizes all on the large side of the optimum: the smallest model wins, which bounds N_opt
    from above and does not estimate it; Approach 1 leaves that budget out and says so."""
    good = isoflop_runs(budgets=np.geomspace(1e19, 1e21, 4), per_budget=7, noise=0.0)
    n_opt, _ = chinchilla_optimum(BESIROGLU_2024.params, 3e18)
    N = float(n_opt) * np.geomspace(3, 30, 5)
    D = 3e18 / (6 * N)
    edge = pd.DataFrame({"N": N, "D": D, "C": 3e18,
                         "loss": BESIROGLU_2024.predict(N=N, D=D)})
    res = fit_isoflop(pd.concat([good, edge], ignore_index=True), bootstrap=20)
    assert res.approach1.n_budgets == 4
    assert res.budgets[0].approach1_status == "best run is the smallest model sampled"
    assert any("Approach 1 skips 1 of 5 budgets whose best run is the smallest or largest" in w
               for w in res.warnings)
    assert res.approach1.a == pytest.approx(TRUE_A, abs=0.03)
