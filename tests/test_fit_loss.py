"""Fitting loss laws: recovery of known laws, honest intervals, identifiability, holdout."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from scalinglab.fit import (
    FitResult,
    NotIdentifiable,
    fit_arrays,
    fit_chinchilla,
    fit_kaplan,
    fit_law,
    fit_power,
)
from scalinglab.fit.synthetic import isoflop_runs, random_runs
from scalinglab.laws.loss import BESIROGLU_2024, KAPLAN, chinchilla_optimum, power_law
from scalinglab.summary import format_number

TRUE = BESIROGLU_2024.params
#: a cheap grid for tests that fit many times (the default grid is tested once, below)
SMALL = np.array(list(itertools.product((0.0, 0.6), (5.0, 8.0), (6.0, 9.0), (0.3, 0.6), (0.3, 0.6))))


@pytest.fixture(scope="module")
def full_fit() -> FitResult:
    runs = isoflop_runs(noise=0.003, seed=3)
    return fit_chinchilla(runs["N"], runs["D"], runs["loss"], bootstrap=60, seed=0)


def test_chinchilla_recovers_the_law_it_was_drawn_from(full_fit):
    p = full_fit.params
    assert p["alpha"] == pytest.approx(TRUE["alpha"], abs=0.01)
    assert p["beta"] == pytest.approx(TRUE["beta"], abs=0.01)
    assert p["E"] == pytest.approx(TRUE["E"], rel=0.02)
    assert np.log(p["A"]) == pytest.approx(np.log(TRUE["A"]), abs=0.25)
    assert np.log(p["B"]) == pytest.approx(np.log(TRUE["B"]), abs=0.25)
    assert full_fit.residual_std == pytest.approx(0.003, rel=0.25)
    assert full_fit.info.n_starts == 4500
    assert full_fit.warnings == [] and full_fit.unidentified == ()


def test_objective_is_the_sum_of_huber_losses_at_the_estimate(full_fit):
    from scalinglab.fit.objective import huber

    runs = isoflop_runs(noise=0.003, seed=3)
    r = np.log(full_fit.predict(N=runs["N"].to_numpy(), D=runs["D"].to_numpy())) - np.log(runs["loss"])
    assert full_fit.objective == pytest.approx(float(huber(r.to_numpy()).sum()), rel=1e-9)


def test_derived_figures_follow_from_the_parameters(full_fit):
    d = full_fit.derived()
    p = full_fit.params
    assert d["N_opt_exponent"]["value"] == pytest.approx(p["beta"] / (p["alpha"] + p["beta"]))
    at = d["at_compute"][0]
    n, dd = chinchilla_optimum(p, at["C"])
    assert at["N_opt"]["value"] == pytest.approx(float(n))
    assert at["tokens_per_param"]["value"] == pytest.approx(float(dd / n))
    lo, hi = at["N_opt"]["ci"]
    assert lo < at["N_opt"]["value"] < hi
    truth_exp = TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])
    assert d["N_opt_exponent"]["ci"][0] - 0.01 < truth_exp < d["N_opt_exponent"]["ci"][1] + 0.01


def test_a_figure_read_beyond_the_runs_says_it_extrapolates_and_one_inside_does_not(full_fit):
    (n_lo, n_hi), (d_lo, d_hi) = full_fit.data_range["N"], full_fit.data_range["D"]
    c_hi = full_fit.compute_range[1]
    inside = {"N": float(np.sqrt(n_lo * n_hi)), "D": float(np.sqrt(d_lo * d_hi))}
    far = {"N": n_hi * 1000, "D": d_hi * 10}
    d = full_fit.derived(compute=[c_hi, c_hi * 1e4], at=[inside, far])
    assert "extrapolation" not in d["predictions"][0] and "extrapolation" not in d["at_compute"][0]
    assert d["predictions"][1]["extrapolation"] == [
        f"N = {far['N']:.3g} is outside the range of the runs fitted [{n_lo:.3g}, {n_hi:.3g}] "
        "(x1e+03 beyond); extrapolating",
        f"D = {far['D']:.3g} is outside the range of the runs fitted [{d_lo:.3g}, {d_hi:.3g}] "
        "(x10 beyond); extrapolating"]
    assert d["at_compute"][1]["extrapolation"][0].startswith(f"C = {c_hi * 1e4:.3g} is outside")
    # what a command prints says so too, each warning once
    warnings = full_fit.summary(compute=[c_hi * 1e4], at=[far, far]).warnings
    assert sum("extrapolating" in w for w in warnings) == 3
    assert not any("extrapolating" in w for w in full_fit.summary(at=[inside]).warnings)
    rows = [r[0] for r in full_fit.summary(at=[far]).tables[1].rows]
    assert f"loss at N={format_number(far['N'])}, D={format_number(far['D'])}" in rows
    # a point at 0, below a positive range, is beyond it by no factor (it was a ZeroDivisionError)
    zero = full_fit.derived(at=[{"N": n_hi, "D": 0.0}])["predictions"][0]["extrapolation"]
    assert zero == [f"D = 0 is outside the range of the runs fitted [{d_lo:.3g}, {d_hi:.3g}]; "
                    "extrapolating"]


def test_saved_fit_round_trips_through_from_dict(full_fit):
    import json

    from scalinglab.clikit import to_json

    back = FitResult.from_dict(json.loads(to_json(full_fit.to_dict(include_draws=True))))
    assert back.params == full_fit.params and back.run_ids == full_fit.run_ids
    np.testing.assert_array_equal(back.draws, full_fit.draws)
    assert back.ci == full_fit.ci


def test_same_seed_same_result_other_seed_other_intervals():
    runs = random_runs(80, seed=5)
    args = (runs["N"], runs["D"], runs["loss"])
    a = fit_chinchilla(*args, bootstrap=30, seed=1, starts=SMALL)
    b = fit_chinchilla(*args, bootstrap=30, seed=1, starts=SMALL)
    c = fit_chinchilla(*args, bootstrap=30, seed=2, starts=SMALL)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert a.params == b.params == c.params
    assert not np.array_equal(a.draws, c.draws)


def test_intervals_cover_the_truth_in_most_repeats():
    hits = {"alpha": 0, "beta": 0, "E": 0}
    for seed in range(10):
        runs = random_runs(60, noise=0.01, seed=100 + seed)
        fit = fit_chinchilla(runs["N"], runs["D"], runs["loss"], bootstrap=60, seed=seed, starts=SMALL)
        for k in hits:
            lo, hi = fit.ci[k]
            hits[k] += lo <= TRUE[k] <= hi
    assert all(h >= 7 for h in hits.values()), hits


def test_all_runs_at_one_D_cannot_identify_the_data_term():
    runs = random_runs(30, seed=0)
    with pytest.raises(NotIdentifiable, match=r"all runs have D = .*B and beta"):
        fit_chinchilla(runs["N"], np.full(30, 1e10), runs["loss"], bootstrap=0)


def test_two_distinct_model_sizes_are_not_enough_for_alpha():
    runs = random_runs(30, seed=0)
    N = np.where(np.arange(30) % 2, 1e8, 1e9)
    with pytest.raises(NotIdentifiable, match="only 2 distinct values of N"):
        fit_chinchilla(N, runs["D"], runs["loss"], bootstrap=0)


def test_fewer_runs_than_parameters_plus_one():
    runs = random_runs(5, seed=0)
    with pytest.raises(NotIdentifiable, match="5 runs cannot identify .* need at least 6"):
        fit_chinchilla(runs["N"], runs["D"], runs["loss"], bootstrap=0)


def test_a_badly_constrained_parameter_is_flagged_not_presented_as_known():
    # D barely varies (3 values within 10%): beta and B are left to the noise
    runs = random_runs(40, noise=0.01, seed=4)
    D = np.resize([1.0e10, 1.05e10, 1.1e10], 40)
    loss = BESIROGLU_2024.predict(N=runs["N"].to_numpy(), D=D) * np.exp(
        0.01 * np.random.default_rng(0).standard_normal(40))
    fit = fit_chinchilla(runs["N"], D, loss, bootstrap=40, starts=SMALL)
    assert {"B", "beta"} & set(fit.unidentified)
    assert any("not identified" in w for w in fit.warnings)


def test_holdout_reports_extrapolation_error_on_the_largest_runs():
    runs = isoflop_runs(noise=0.005, seed=2, budgets=np.geomspace(1e18, 1e21, 8))
    fit = fit_law("chinchilla", runs, bootstrap=20, holdout_top=6, starts=SMALL)
    h = fit.to_dict()["holdout"]
    assert fit.n_runs == len(runs) - 6 and h["k"] == 6 and len(fit.heldout_ids) == 6
    assert not set(fit.heldout_ids) & set(fit.run_ids)
    held = sorted(r["C"] for r in h["runs"])
    assert min(held) >= runs["C"].sort_values().iloc[-6]
    errs = [r["abs_rel_err"] for r in h["runs"]]
    assert h["mean_abs_rel_err"] == pytest.approx(np.mean(errs))
    assert h["max_abs_rel_err"] == pytest.approx(max(errs))
    assert h["max_abs_rel_err"] < 0.03  # the law is right, so extrapolation is good


def test_kaplan_recovers_its_exponents():
    truth = KAPLAN.with_params({"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095})
    runs = random_runs(120, truth=truth, noise=0.003, seed=7,
                       ranges={"N": (1e6, 1e10), "D": (1e8, 1e12)})
    fit = fit_kaplan(runs["N"], runs["D"], runs["loss"], bootstrap=0)
    assert fit.params["alpha_N"] == pytest.approx(0.076, abs=0.006)
    assert fit.params["alpha_D"] == pytest.approx(0.095, abs=0.006)
    assert np.log10(fit.params["N_c"]) == pytest.approx(np.log10(8.8e13), abs=0.5)


@pytest.mark.parametrize("x", ["N", "C"])
def test_power_law_recovery(x):
    law = power_law(x)
    truth = law.with_params({"E": 1.7, "A": 30.0 if x == "N" else 2000.0, "alpha": 0.2 if x == "N" else 0.15})
    lo, hi = (1e6, 1e10) if x == "N" else (1e17, 1e23)
    frame = random_runs(60, truth=truth, noise=0.003, seed=11, ranges={x: (lo, hi)})
    fit = fit_power(frame[x], frame["loss"], variable=x, bootstrap=40)
    assert fit.params["alpha"] == pytest.approx(truth.params["alpha"], abs=0.02)
    assert fit.params["E"] == pytest.approx(1.7, rel=0.03)
    assert fit.ci["alpha"][0] < fit.params["alpha"] < fit.ci["alpha"][1]


def test_fit_law_derives_D_from_C_and_says_so():
    runs = isoflop_runs(noise=0.005, budgets=np.geomspace(1e18, 1e21, 6))
    fit = fit_law("chinchilla", runs[["N", "C", "loss"]], bootstrap=0, starts=SMALL)
    assert any("D = C/(6N)" in n for n in fit.notes)
    assert fit.params["alpha"] == pytest.approx(TRUE["alpha"], abs=0.05)


def test_parameters_in_millions_beside_tokens_in_billions_are_flagged_and_units_of_one_are_not():
    runs = isoflop_runs(noise=0.005, budgets=np.geomspace(1e18, 1e21, 4))[["N", "D", "loss"]]
    assert not any("units" in w for w in fit_law("chinchilla", runs, bootstrap=0, starts=SMALL).warnings)
    slipped = runs.assign(N=runs["N"] / 1e6, D=runs["D"] / 1e9)  # the law fits these just as well
    warnings = fit_law("chinchilla", slipped, bootstrap=0, starts=SMALL).warnings
    tpp = float(np.median(runs["D"] / runs["N"])) / 1e3
    assert warnings[:2] == [
        f"every D is below 10,000 tokens (largest {slipped['D'].max():.4g}): is D in millions or "
        "billions? scale it (--units D=1e9)",
        f"tokens per parameter D/N is {tpp:.3g} in the median run, outside [0.1, 1e+06]: are N and "
        "D in different units (e.g. parameters in millions, tokens in billions: --units N=1e6,D=1e9)?"]
    # the demo's byte-level models, the smallest trained here (N ~ 2e3, D ~ 2e5), are not flagged
    from scalinglab.runs.flops import units_warnings

    assert units_warnings([1.8e3, 5e3, 1.4e4], [2e5, 5e5, 1.4e6]) == []
    assert units_warnings([10.0, 70.0, 400.0]) == [
        "every N is below 1,000 (largest 400): is N in millions or billions? scale it (--units N=1e6)"]


def test_runs_at_one_compute_budget_say_the_law_rests_on_one_isoflop_curve():
    # 9 runs at C = 1e19: over 20 such simulated sets the 95% interval of E held the truth in 7
    N = np.geomspace(3e7, 1e9, 9)
    runs = pd.DataFrame({"N": N, "D": 1e19 / (6 * N)})
    runs["loss"] = BESIROGLU_2024.predict(N=runs["N"], D=runs["D"]) * np.exp(
        np.random.default_rng(0).normal(0, 0.005, len(N)))
    expected = ("every run is at one compute budget (C = 6ND = 1e+19): the chinchilla law's offset "
                "and how loss falls with compute rest on a single IsoFLOP curve and its intervals "
                "understate them; read it at that budget only, or add runs at other budgets")
    assert expected in fit_law("chinchilla", runs, bootstrap=0, starts=SMALL).warnings
    assert expected in fit_law("chinchilla", runs, bootstrap=0, scale="linear").warnings
    # two budgets a factor 10 apart are not one
    more = pd.concat([runs, runs.assign(D=runs["D"] * 10, loss=BESIROGLU_2024.predict(N=runs["N"], D=runs["D"] * 10))])
    assert not any("one compute budget" in w for w in
                   fit_law("chinchilla", more, bootstrap=0, starts=SMALL).warnings)


def test_non_positive_inputs_are_rejected_naming_the_run():
    frame = pd.DataFrame({"N": [1e8, -1.0, 1e9], "D": [1e9, 1e9, 1e9], "loss": [3.0, 3.0, 3.0]})
    with pytest.raises(ValueError, match="run 2, column 'N': must be positive and finite, not -1$"):
        fit_law("chinchilla", frame, bootstrap=0)


def _lossless(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(n)], "N": np.geomspace(1e7, 1e9, n),
                         "D": np.geomspace(1e9, 1e11, n), "loss": np.nan, "status": "finished"})


@pytest.mark.parametrize(("call", "message"), [
    # every run lacks a loss: the fit used to fail on the empty rest with "holdout_top must be
    # between 0 and -1", an option nobody had set
    (lambda: fit_law("chinchilla", _lossless(), bootstrap=0),
     "no runs with a loss to fit: 6 runs read, 6 dropped because they have no loss"),
    (lambda: fit_law("chinchilla", _lossless().iloc[0:0], bootstrap=0),
     "no runs with a loss to fit: no runs were given"),
    (lambda: fit_law("chinchilla", _lossless().assign(loss=3.0), where="N > 1e12", bootstrap=0),
     "no runs with a loss to fit: 6 runs read, 6 dropped because they do not satisfy where 'N > 1e12'"),
    (lambda: fit_law("chinchilla", _lossless(), where="N > 5e7", bootstrap=0),
     "no runs with a loss to fit: 6 runs read, 2 dropped because they do not satisfy where "
     "'N > 5e7', 4 dropped because they have no loss"),
    (lambda: fit_arrays("chinchilla", {"N": [1e8, 1e9], "D": [1e9, 1e10]}, [np.nan, np.nan],
                        bootstrap=0),
     "no runs with a loss to fit: 2 runs read, 2 dropped because they have no loss"),
])
def test_a_fit_left_without_runs_says_how_many_were_read_and_why_they_went(call, message):
    from scalinglab.errors import InputError, NothingToFit

    with pytest.raises(NothingToFit) as info:
        call()
    assert str(info.value) == message
    assert isinstance(info.value, InputError)  # bad input, as the CLI and the dashboard treat it


def test_a_study_whose_runs_all_lack_a_loss_says_so_and_one_lacking_a_loss_is_left_out():
    from scalinglab.errors import NothingToFit
    from scalinglab.study.study import FrameStore, Study

    with pytest.raises(NothingToFit, match="^no runs with a loss to fit: 6 runs read, "
                                           "6 dropped because they have no loss$"):
        Study(FrameStore(_lossless())).fit("chinchilla", bootstrap=0)
    runs = isoflop_runs(noise=0.005, budgets=np.geomspace(1e18, 1e21, 6))
    runs.loc[[0, 5], "loss"] = np.nan  # two finished runs whose loss was never logged
    fit = Study(FrameStore(runs)).fit("chinchilla", bootstrap=0, starts=64)
    assert len(fit.run_ids) == len(runs) - 2
    assert "left out 2 runs without a loss" in fit.notes


def test_the_derived_table_says_c_equals_6nd_only_for_a_law_of_n_and_d(full_fit):
    assert full_fit.summary().tables[1].title == "derived (C = 6ND)"
    law = power_law("N")
    frame = random_runs(12, truth=law.with_params({"E": 1.7, "A": 30.0, "alpha": 0.2}), noise=0.003,
                        seed=11, ranges={"N": (1e6, 1e10)})
    fit = fit_power(frame["N"], frame["loss"], variable="N", bootstrap=0)
    assert fit.summary(at=[{"N": 1e9}]).tables[1].title == "derived"
