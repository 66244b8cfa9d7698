"""The new catalogue entries: provenance, and recovery of known parameters from synthetic runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import ParameterError
from scalinglab.fit import fit_law
from scalinglab.fit.synthetic import isoflop_runs, random_runs
from scalinglab.laws.catalogue import (
    GADRE_2024,
    GADRE_2024_RPJ,
    MUENNIGHOFF_2023,
    MUENNIGHOFF_2023_C4,
    broken_power_law,
)
from scalinglab.laws.loss import chinchilla_optimum
from scalinglab.laws.registry import get_law, list_laws
from scalinglab.plan.planner import make_plan


@pytest.mark.parametrize("name", ["chinchilla_tied", "gadre2024", "muennighoff2023",
                                  "broken_power_C", "broken_power_N", "broken_power_D"])
def test_every_new_law_declares_formula_units_range_and_paper(name):
    law = get_law(name)
    assert name in list_laws() and law.fittable
    assert law.provenance.source and law.provenance.url.startswith("https://arxiv.org/")
    assert law.provenance.units and law.formula.startswith("L =")


def test_gadre_form_is_tied_chinchilla_with_b_scaled():
    p = GADRE_2024_RPJ.params
    N, D = np.array([1e8, 1e9]), np.array([2e9, 2e10])
    B = p["b"] * 6 ** (-p["eta"] / 2)
    direct = p["E"] + p["a"] * N ** -p["eta"] + B * D ** -p["eta"]
    np.testing.assert_allclose(GADRE_2024_RPJ.predict(N=N, D=D), direct)
    assert B == pytest.approx(287.2, rel=1e-3)  # the README's B
    n, _ = GADRE_2024.optimum(p, 1e22)
    assert n == pytest.approx(chinchilla_optimum(
        {"A": p["a"], "B": B, "alpha": p["eta"], "beta": p["eta"]}, 1e22)[0])


def test_gadre_law_is_recovered_from_over_trained_runs():
    rng = np.random.default_rng(1)
    N = np.repeat([1e7, 8e7, 1.5e8, 4e8], 8)
    M = np.tile([5, 10, 20, 40, 80, 160, 320, 640], 4)
    D = N * M
    loss = GADRE_2024_RPJ.predict(N=N, D=D) * np.exp(0.002 * rng.standard_normal(len(N)))
    fit = fit_law("gadre2024", pd.DataFrame({"N": N, "D": D, "loss": loss}), bootstrap=0)
    assert fit.params["eta"] == pytest.approx(0.2729, abs=0.01)
    assert fit.params["E"] == pytest.approx(1.837, rel=0.05)


def test_data_constrained_law_reduces_to_chinchilla_for_one_epoch():
    p = MUENNIGHOFF_2023_C4.params
    N, D = np.array([1e8, 1e9]), np.array([2e9, 2e10])
    chin = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    # one epoch over enough unique tokens: nothing is repeated, N is below U_N
    np.testing.assert_allclose(MUENNIGHOFF_2023_C4.predict(N=N, D=D, U=D), chin, rtol=1e-12)
    # repeating 40 epochs loses more than 4 epochs does
    l4 = MUENNIGHOFF_2023_C4.predict(N=1e9, D=4e10, U=1e10)
    l40 = MUENNIGHOFF_2023_C4.predict(N=1e9, D=4e10, U=1e9)
    assert chin[1] < MUENNIGHOFF_2023_C4.predict(N=1e9, D=2e10, U=5e9) < MUENNIGHOFF_2023_C4.predict(N=1e9, D=2e10, U=5e8)
    assert l4 < l40


def test_data_constrained_decay_constants_are_recovered_with_the_chinchilla_part_fixed():
    truth = MUENNIGHOFF_2023.with_params({**MUENNIGHOFF_2023_C4.params, "RD_star": 8.0,
                                          "RN_star": 3.0})
    rng = np.random.default_rng(3)
    N = np.exp(rng.uniform(np.log(1e8), np.log(3e9), 120))
    U = np.exp(rng.uniform(np.log(1e8), np.log(2e10), 120))
    D = U * np.exp(rng.uniform(0, np.log(60), 120))
    loss = truth.predict(N=N, D=D, U=U) * np.exp(0.003 * rng.standard_normal(120))
    chin = {k: MUENNIGHOFF_2023_C4.params[k] for k in ("E", "A", "B", "alpha", "beta")}
    fit = fit_law("muennighoff2023", pd.DataFrame({"N": N, "D": D, "U": U, "loss": loss}),
                  fix=chin, bootstrap=20)
    assert fit.law.param_names == ("RD_star", "RN_star")
    assert fit.params["RD_star"] == pytest.approx(8.0, rel=0.1)
    assert fit.params["RN_star"] == pytest.approx(3.0, rel=0.25)
    assert fit.ci["RD_star"][0] <= 8.0 <= fit.ci["RD_star"][1]


def test_broken_power_law_recovers_its_break():
    law = broken_power_law("C")
    truth = {"E": 1.7, "A": 60.0, "c0": 0.08, "c1": 0.15, "d": 1e19, "f": 0.3}
    C = np.geomspace(1e16, 1e22, 40)
    loss = law(truth, C=C) * np.exp(0.0005 * np.random.default_rng(5).standard_normal(40))
    fit = fit_law(law, pd.DataFrame({"C": C, "loss": loss}), bootstrap=0)
    pred = fit.predict(C=C)
    assert np.max(np.abs(pred / loss - 1)) < 0.003
    assert fit.params["c0"] + fit.params["c1"] == pytest.approx(0.23, abs=0.03)
    assert 1e18 < fit.params["d"] < 1e20


def test_plan_with_unique_tokens_trades_epochs_for_parameters():
    few = make_plan(compute=1e21, loss_law="muennighoff2023_c4", unique_tokens=5e9)
    many = make_plan(compute=1e21, loss_law="muennighoff2023_c4", unique_tokens=5e11)
    assert few.epochs == pytest.approx(few.D / 5e9)
    assert many.epochs < 1 < few.epochs
    assert few.loss > many.loss
    # with plenty of data the data-constrained optimum is the Chinchilla part's optimum
    n_opt, _ = chinchilla_optimum(MUENNIGHOFF_2023_C4.params, 1e21)
    assert many.N == pytest.approx(float(n_opt), rel=0.02)
    with pytest.raises(ParameterError, match="unique_tokens"):
        make_plan(compute=1e21, loss_law="muennighoff2023_c4")
    with pytest.raises(ParameterError, match="does not model repeated data"):
        make_plan(compute=1e21, loss_law="hoffmann2022", unique_tokens=1e9)


def test_data_constrained_fit_plans_with_unique_tokens():
    truth = MUENNIGHOFF_2023.with_params(MUENNIGHOFF_2023_C4.params)
    runs = random_runs(80, truth=truth, noise=0.003, seed=2,
                       ranges={"N": (1e8, 2e9), "D": (1e9, 1e11), "U": (1e9, 1e11)})
    runs = runs[runs["D"] >= runs["U"]].reset_index(drop=True)
    chin = {k: MUENNIGHOFF_2023_C4.params[k] for k in ("E", "A", "B", "alpha", "beta")}
    fit = fit_law("muennighoff2023", runs, fix=chin, bootstrap=10)
    plan = make_plan(compute=1e20, loss_law=fit, unique_tokens=2e9)
    assert plan.epochs == pytest.approx(plan.D / 2e9)
    assert plan.loss_interval is not None
    assert isoflop_runs  # synthetic helpers stay importable


FRONTIER = ["farseer2025", "parscale2025", "tao2024_vocab", "clark2022_moe", "frantar2023_sparsity",
            "zhang2025_critical_batch"]


@pytest.mark.parametrize("name", FRONTIER)
def test_frontier_laws_are_registered_with_their_paper(name):
    law = get_law(name)
    assert law.provenance.url.startswith("https://arxiv.org/abs/") and law.provenance.units
    assert set(law.bounds) == set(law.param_names)  # every parameter has a range to search


def test_the_vocabulary_law_fits_its_negative_target_and_parscale_its_streams():
    import scalinglab as sl

    rng = np.random.default_rng(0)
    nnv, nv, d = 10 ** rng.uniform(7.5, 9, 150), 10 ** rng.uniform(6, 8, 150), 10 ** rng.uniform(9, 11, 150)
    truth = {"E": 5.0, "A1": 300.0, "alpha1": 0.3, "A2": 50.0, "alpha2": 0.25, "B": 2000.0, "beta": 0.35}
    y = get_law("tao2024_vocab")(truth, Nnv=nnv, Nv=nv, D=d)
    assert (y < 0).all()
    fit = sl.fit_arrays("tao2024_vocab", {"Nnv": nnv, "Nv": nv, "D": d}, y, bootstrap=0)
    for k in ("E", "alpha1", "alpha2", "beta"):
        assert fit.params[k] == pytest.approx(truth[k], rel=1e-3)
    n, p = np.repeat(10 ** np.linspace(8.7, 9.6, 6), 4), np.tile([1.0, 2.0, 4.0, 8.0], 6)
    pt = {"A": 1.95e8, "k": 0.33, "alpha": 0.2, "E": 1.3}
    ps = sl.fit_arrays("parscale2025", {"N": n, "P": p}, get_law("parscale2025")(pt, N=n, P=p),
                       bootstrap=0, scale="linear")
    assert ps.params["k"] == pytest.approx(0.33, rel=1e-3) and ps.params["E"] == pytest.approx(1.3, rel=1e-3)
