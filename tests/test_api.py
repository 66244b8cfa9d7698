"""The Python API: what a notebook user types, and the one-law-layer contract behind it."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import scalinglab as sl
from scalinglab.fit.synthetic import isoflop_runs, random_runs
from scalinglab.laws.loss import KAPLAN, power_law
from scalinglab.summary import NotIdentified

#: a cheap grid in Chinchilla's fitting coordinates, for tests that fit several times
SMALL = np.array(list(itertools.product((0.0, 0.6), (5.0, 8.0), (6.0, 9.0), (0.3, 0.6), (0.3, 0.6))))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    df = isoflop_runs(budgets=np.geomspace(1e18, 1e21, 6), per_budget=8, noise=0.004, seed=2)
    return df.rename(columns={"N": "params", "D": "tokens", "loss": "final_loss"})


@pytest.fixture(scope="module")
def res(frame: pd.DataFrame) -> sl.FitResult:
    return sl.fit_law("chinchilla", frame, columns={"N": "params", "D": "tokens", "loss": "final_loss"},
                      bootstrap=50)


def test_the_notebook_tour_works(res, frame):
    text = repr(res)
    assert len(text) < 300 and "\n" not in text and text.startswith("<FitResult chinchilla")
    s = res.summary()
    assert "alpha" in s.as_text() and "<table" in s.as_html() and s.to_dict()["kind"] == "loss_fit"
    assert res._repr_html_() == s.as_html()
    opt = res.optimum(1e22)
    assert opt.N.lo < opt.N.value < opt.N.hi and opt.loss.ci is not None
    assert opt.D.value == pytest.approx(1e22 / (6 * opt.N.value))
    assert res.run_ids == tuple(f"row-{i + 1}" for i in range(len(frame)))


def test_top_level_names_are_the_documented_api():
    for name in ("fit_law", "fit_isoflop", "fit_hparam_law", "make_plan", "RunStore", "Law",
                 "get_law", "list_laws", "HOFFMANN_2022", "BESIROGLU_2024", "STEP_LAW", "DEEPSEEK",
                 "ScalingLabError", "load_result"):
        assert getattr(sl, name) is not None
    from scalinglab.runs import RunStore

    assert RunStore is sl.RunStore
    assert "chinchilla" in sl.list_laws() and sl.get_law("chinchilla") is sl.CHINCHILLA
    with pytest.raises(sl.ParameterError, match="unknown law 'chinchila' \\(did you mean 'chinchilla'\\?\\)"):
        sl.get_law("chinchila")


def test_fit_functions_accept_a_column_mapping():
    df = isoflop_runs(budgets=[1e18, 1e19, 1e20, 1e21], per_budget=6, noise=0.003)
    iso = sl.fit_isoflop(df.rename(columns={"N": "n_params"}), columns={"N": "n_params"}, bootstrap=20)
    assert iso.approach2 is not None and len(iso.run_ids) == len(df) == len(iso.budget_of)
    with pytest.raises(sl.ParameterError, match="columns maps to \\['nope'\\]"):
        sl.fit_law("chinchilla", df, columns={"N": "nope"})


LAWS = [
    (sl.CHINCHILLA, lambda: isoflop_runs(budgets=np.geomspace(1e18, 1e21, 6), per_budget=8, noise=0.003)),
    (KAPLAN, lambda: random_runs(80, noise=0.003, seed=7, truth=KAPLAN.with_params(
        {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}),
        ranges={"N": (1e6, 1e10), "D": (1e8, 1e12)})),
    *[(power_law(x), lambda x=x: random_runs(40, noise=0.003, seed=3, truth=power_law(x).with_params(
        {"E": 1.7, "A": 2000.0 if x == "C" else 30.0, "alpha": 0.15 if x == "C" else 0.2}),
        ranges={x: (1e17, 1e23) if x == "C" else (1e6, 1e10)})) for x in ("N", "D", "C")],
]


@pytest.mark.parametrize(("law", "make_runs"), LAWS, ids=lambda v: getattr(v, "name", ""))
def test_a_renamed_copy_of_every_built_in_law_fits_and_plans_identically(law, make_runs):
    runs = make_runs()
    copy = law.renamed(f"my_{law.name}")
    a = sl.fit_law(law, runs, bootstrap=20, seed=1)
    b = sl.fit_law(copy, runs, bootstrap=20, seed=1)
    assert b.law.name == f"my_{law.name}"
    assert b.params == a.params and b.unidentified == a.unidentified
    np.testing.assert_array_equal(a.draws, b.draws)
    if {"N", "D"} <= set(law.inputs):
        pa, pb = sl.make_plan(compute=1e22, loss_law=a), sl.make_plan(compute=1e22, loss_law=b)
        assert (pa.N, pa.D, pa.loss, pa.N_interval) == (pb.N, pb.D, pb.loss, pb.N_interval)
        assert a.optimum(1e22).N == b.optimum(1e22).N


def test_a_renamed_copy_is_drawn_like_the_original():
    from scalinglab.report import figures

    runs = isoflop_runs(budgets=np.geomspace(1e18, 1e21, 5), per_budget=6, noise=0.003)
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    a = sl.fit_law("chinchilla", runs, bootstrap=20, starts=SMALL)
    b = replace(a, law=sl.CHINCHILLA.renamed("other"))
    iso = sl.fit_isoflop(runs, bootstrap=20)
    fa, fb = figures.optimal_allocation(iso, 1e22, fit=a), figures.optimal_allocation(iso, 1e22, fit=b)
    la, lb = fa.axes[0].lines[-1].get_ydata(), fb.axes[0].lines[-1].get_ydata()
    np.testing.assert_array_equal(la, lb)
    assert [ax.get_title() for ax in figures.bootstrap_distributions(a).axes] == \
        [ax.get_title() for ax in figures.bootstrap_distributions(b).axes]


def test_every_result_round_trips_through_json_and_has_a_short_repr(res, tmp_path):
    from report_synth import hparam_grid

    from scalinglab.clikit import to_json

    iso = sl.fit_isoflop(isoflop_runs(budgets=[1e18, 1e19, 1e20], per_budget=5), bootstrap=20)
    grid = hparam_grid()
    grid = pd.concat([grid, grid.assign(N=grid["N"] * 4, D=grid["D"] * 3, loss=grid["loss"] * 0.9),
                      grid.assign(N=grid["N"] * 16, D=grid["D"] * 2, loss=grid["loss"] * 0.85)])
    hp = sl.fit_hparam_law(grid.drop(columns=["tags"]), n_boot=30)
    for result in (res, iso, hp):
        assert len(repr(result)) < 300
        back = type(result).from_dict(json.loads(to_json(result.to_dict(include_draws=True))))
        assert back.run_ids == result.run_ids and type(back) is type(result)
        # Compared in JSON form: an interval with too few usable draws is NaN, which JSON
        # writes as null, so the dicts agree only once both have been through the writer.
        assert json.loads(to_json(back.to_dict())) == json.loads(to_json(result.to_dict()))
        path = result.save(tmp_path / f"{result.kind}.json")
        assert type(sl.load_result(path)) is type(result)
        summary = result.summary()
        assert summary.as_text() and summary.as_html().startswith("<div") and summary.to_dict()


def test_unidentified_parameters_render_the_same_way_everywhere():
    runs = random_runs(40, noise=0.01, seed=4)
    D = np.resize([1.0e10, 1.05e10, 1.1e10], 40)
    loss = sl.BESIROGLU_2024.predict(N=runs["N"].to_numpy(), D=D) * np.exp(
        0.01 * np.random.default_rng(0).standard_normal(40))
    fit = sl.fit_arrays("chinchilla", {"N": runs["N"], "D": D}, loss, bootstrap=40, starts=SMALL)
    assert fit.unidentified
    s = fit.summary()
    rows = {r[0]: r for r in s.tables[0].rows}
    text, html = s.as_text(), s.as_html()
    for name in fit.unidentified:
        assert isinstance(rows[name][1], NotIdentified)
    assert text.count("not identified") >= len(fit.unidentified)
    assert html.count('class="r unidentified"') >= len(fit.unidentified)
    data = s.to_dict()
    assert set(data["unidentified"]) == set(fit.unidentified)
