"""Every registered result kind keeps the result contract (issue 28): saved, it loads back to
the same result through :func:`scalinglab.load_result`; its summary renders as text, HTML and a
dict; its repr is one short line; with bootstrap draws, ``conf_int(level)`` gives intervals at
any level. Each kind is built by its real fitting function on small synthetic data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_synth import hparam_grid, isoflop_runs

import scalinglab as sl
from scalinglab.errors import InputError, ParameterError
from scalinglab.results import KIND_MODULES, REGISTRY, Result, load_result, registered_kinds
from scalinglab.serialize import to_json


def _runs() -> pd.DataFrame:
    runs = isoflop_runs(budgets=np.geomspace(1e18, 1e21, 5), per_budget=6, noise=0.003)
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    return runs


def _loss_fit() -> Result:
    return sl.fit_law("chinchilla", _runs(), bootstrap=20)


def _isoflop() -> Result:
    return sl.fit_isoflop(_runs(), bootstrap=20)


def _loss_fit_at() -> Result:
    return _loss_fit().at(compute=[1e22, 3e23], points=[{"N": 1e9, "D": 2e10}])


def _isoflop_at() -> Result:
    return _isoflop().at(compute=1e22)


def _rolling() -> Result:
    from scalinglab.fit.validate import rolling_forward

    return rolling_forward("chinchilla", _runs(), bootstrap=0, steps=2)


def _selection() -> Result:
    from scalinglab.fit.validate import select_laws

    return select_laws(_runs(), ["chinchilla", "power_C"], bootstrap=0, steps=2)


def _hparams() -> Result:
    grid = hparam_grid()
    grid = pd.concat([grid, grid.assign(N=grid["N"] * 4, D=grid["D"] * 3, loss=grid["loss"] * 0.9),
                      grid.assign(N=grid["N"] * 16, D=grid["D"] * 2, loss=grid["loss"] * 0.85)])
    return sl.fit_hparam_law(grid.drop(columns=["tags"]), n_boot=20)


def _tau() -> Result:
    from scalinglab.hparams.grid import grid_from_frame

    rows = []
    for N, D in ((1e8, 2e9), (1e8, 1e10), (4e8, 4e9), (4e8, 4e10), (1e9, 2e11)):
        tpp, B, lr = D / N, 5e5, 1e-3
        for wd in np.geomspace(0.01, 3.0, 9):
            tau = B / (lr * wd * D)
            rows.append({"N": N, "D": D, "lr": lr, "batch_tokens": B, "weight_decay": wd,
                         "loss": 3.0 * (1 + 0.01 * np.log(tau / (0.8 * tpp ** -0.5)) ** 2)})
    return sl.fit_tau_law(grid_from_frame(pd.DataFrame(rows), weight_decay=True), n_boot=20)


def _links() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    loss = np.linspace(2.4, 4.2, 14)
    return loss, 0.857 - 2.206 * np.exp(-0.7146 * loss) + rng.normal(0, 0.004, len(loss))


def _link() -> Result:
    from scalinglab.downstream import fit_link

    loss, err = _links()
    return fit_link(loss, err, "exp", bootstrap=20)


def _link_table() -> Result:
    from scalinglab.downstream import fit_links

    loss, err = _links()
    return fit_links(loss, {"err_a": err, "err_b": 0.9 * err + 0.05}, "exp", bootstrap=20)


def _benchmark_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    C = np.geomspace(1e20, 3e24, 14)
    return C, 0.25 + 0.75 / (1 + np.exp(-1.4 * (np.log10(C) - 22.5))) + rng.normal(0, 0.01, len(C))


def _benchmark() -> Result:
    from scalinglab.downstream import fit_benchmark

    C, acc = _benchmark_data()
    return fit_benchmark(C, acc, metric="MMLU", chance=0.25, fit_below=1e23, bootstrap=20,
                         model_ids=[f"b{i}" for i in range(len(C))])


def _benchmark_table() -> Result:
    from scalinglab.downstream import fit_benchmarks

    C, acc = _benchmark_data()
    return fit_benchmarks(C, {"four_way": acc, "open": (acc - 0.25) / 0.75},
                          chance={"four_way": 0.25, "open": 0.0}, fit_below=1e23, bootstrap=20)


def _chained() -> Result:
    from scalinglab.downstream import chain

    return chain(_loss_fit(), _link(), 2e9, 1e21 / (6 * 2e9))


def _observational() -> Result:
    from scalinglab.downstream import fit_observational

    rng = np.random.default_rng(0)
    offsets = {"base": 0.0, "other": 0.6}
    logC = rng.uniform(20.5, 24.5, 40)
    fam = np.array(["base"] * 20 + ["other"] * 20, dtype=object)
    z = logC + np.array([offsets[f] for f in fam])
    scores = {f"bench{j}": 0.25 + 0.75 / (1 + np.exp(-0.6 * (z - m))) + rng.normal(0, 0.01, 40)
              for j, m in enumerate([21.5, 22.0, 22.5, 23.0, 23.5, 24.0])}
    return fit_observational(scores, "bench3", compute=10 ** logC, family=fam, n_components=2,
                             chance=0.25, reference_family="base", bootstrap=20)


def _loss_to_loss() -> Result:
    from test_loss_to_loss import _pairs

    from scalinglab.downstream.l2l import fit_loss_to_loss

    x, y = _pairs()
    return fit_loss_to_loss(pd.DataFrame({"train": x, "test": y}), "train", "test", E_x=1.7,
                            E_y=1.1, bootstrap=20)


def _translation() -> Result:
    from test_loss_to_loss import _corpus

    from scalinglab.downstream.l2l import translate

    rng = np.random.default_rng(4)
    N = np.repeat(np.geomspace(2e7, 2e9, 9), 5)
    D = N * np.tile([4, 10, 20, 50, 120], 9)
    law = {"E": 1.9, "A": 500.0, "B": 2500.0, "alpha": 0.35, "beta": 0.3}
    old, new = _corpus(N, D, law, {"K": 1.4, "kappa": 0.8, "E_x": 1.9, "E_y": 1.2}, 0.002, rng)
    old_fit = sl.fit_law("chinchilla", pd.DataFrame({"N": N, "D": D, "loss": old}), bootstrap=20)
    few = np.flatnonzero(D / N == 20)[:6]
    return translate(old_fit, pd.DataFrame({"N": N[few], "D": D[few], "loss": new[few]}),
                     bootstrap=20)


def _ladder() -> Result:
    from test_ladder import TASK, synthetic_ladder

    from scalinglab.downstream.ladder import fit_ladder

    return fit_ladder(synthetic_ladder(), TASK, bootstrap=10, seed=1)


def _counts() -> object:
    from scalinglab.testtime.synthetic import simulate_counts

    return simulate_counts(-1.2, -0.45, n_problems=60, n_samples=32)


def _pass_at_k() -> Result:
    from scalinglab.testtime import estimate_pass_at_k

    return estimate_pass_at_k(_counts(), bootstrap=20)


def _coverage() -> Result:
    from scalinglab.testtime import fit_coverage

    return fit_coverage(_counts(), bootstrap=20)


def _verifier() -> Result:
    from scalinglab.testtime import Verifier, analyze_verifier

    return analyze_verifier(_counts(), Verifier(0.9, 0.05), bootstrap=20)


def _budget() -> Result:
    from scalinglab.testtime import Option, SampleCost, compare_at_budget

    cov = _coverage()
    return compare_at_budget([Option("8B", cov, SampleCost(8e9, 200, 200)),
                              Option("70B", cov, SampleCost(70e9, 200, 200))], [1e14, 1e16])


def _proposal() -> Result:
    from scalinglab.design import FlopSpace, IsoflopLayout, Noise, propose
    from scalinglab.fit import besiroglu_grid, fit_chinchilla
    from scalinglab.laws.loss import BESIROGLU_2024

    N, D = IsoflopLayout(budgets=4, sizes=5).runs(1e20)
    loss = Noise(0.01).observe(BESIROGLU_2024, N, D, np.random.default_rng(0))
    fit = fit_chinchilla(N, D, loss, bootstrap=20, starts=besiroglu_grid()[::40], seed=1)
    return propose(fit, (N, D), 1e23, 3e19, FlopSpace.for_spend(1e20).points(), k=3)


def _simulation() -> Result:
    from scalinglab.design import FixedDesign, IsoflopLayout, Noise, simulate

    return simulate("hoffmann2022", [FixedDesign("isoflop", IsoflopLayout())], spend=1e21,
                    target=1e23, repeats=1, noise=Noise(0.0), bootstrap=10, starts=100)


def _curves() -> Result:
    from test_laws_curves import FIT_SHAPES, TRUTH, simulated

    from scalinglab.laws.schedules import Schedule

    frame = simulated(TRUTH, FIT_SHAPES, 3e-4, np.random.default_rng(1), every=1024)
    return sl.fit_curves(frame, law="multipower", bootstrap=10,
                         schedules={k: Schedule(v, k) for k, v in FIT_SHAPES.items()})


def _pool_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e7), np.log(3e9), 120))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e11), 120))
    loss = (1.69 + 406.4 * N ** -0.34 + 410.7 * D ** -0.28) * np.exp(rng.normal(0, 0.002, 120))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


def _pool_proposal() -> Result:
    return sl.design_pool(_pool_frame()[["N", "D"]], "chinchilla", cost="6*N*D",
                          target="top:10%", budget=0.05)


def _pool_replay() -> Result:
    return sl.replay_study(_pool_frame(), "chinchilla", cost="6*N*D", target="top:10%",
                           budgets=[0.05], seeds=[0], baselines=("cheapest",))


def _plan() -> Result:
    return sl.make_plan(compute=1e21, loss_law=_loss_fit())


def _heldout() -> Result:
    from scalinglab.demo.job import Extrapolation

    return Extrapolation(budget=1e17, predicted=3.1, interval=(3.0, 3.2), observed=3.12,
                         n_fit_runs=12, run_ids=("a", "b"), heldout=("c",))


def _joint() -> Result:
    rng = np.random.default_rng(2)
    n = np.tile(np.geomspace(1e7, 1e10, 10), 2)
    g = ["a"] * 10 + ["b"] * 10
    y = np.where(np.array(g) == "a", 1.7, 2.1) + 400 * n ** -0.34
    return sl.fit_joint(["E + A*N**-alpha"], {"N": n}, y * (1 + 0.01 * rng.standard_normal(20)),
                        groups=g, per_group=["E"], bounds={"alpha": (0.05, 1.0)}, bootstrap=30)


BUILDERS: dict[str, Callable[[], Result]] = {
    "loss_fit": _loss_fit, "isoflop": _isoflop, "loss_fit_at": _loss_fit_at,
    "isoflop_at": _isoflop_at, "rolling_forward": _rolling,
    "law_selection": _selection, "hparam_fit": _hparams, "tau_fit": _tau, "curve_fit": _curves,
    "link_fit": _link,
    "link_table": _link_table, "benchmark_fit": _benchmark, "benchmark_table": _benchmark_table,
    "downstream_prediction": _chained, "observational_fit": _observational,
    "loss_to_loss": _loss_to_loss, "loss_translation": _translation, "ladder_fit": _ladder,
    "pass_at_k": _pass_at_k, "coverage_fit": _coverage, "verifier_analysis": _verifier,
    "budget_comparison": _budget, "design_proposal": _proposal, "simulation": _simulation,
    "plan": _plan, "heldout_check": _heldout, "pool_proposal": _pool_proposal,
    "pool_replay": _pool_replay, "joint_fit": _joint,
}


def test_the_kind_table_names_every_registered_kind_and_each_module_registers_its_kind():
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(sl.__path__, "scalinglab."):  # every module: every kind
        importlib.import_module(info.name)
    kinds = registered_kinds()
    assert set(kinds) == set(KIND_MODULES), set(kinds) ^ set(KIND_MODULES)
    for kind, cls in kinds.items():
        assert cls.kind == kind and cls.__module__ == KIND_MODULES[kind]
    assert set(BUILDERS) == set(REGISTRY)  # a new kind gets a builder here too


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_every_kind_saves_loads_renders_and_has_a_short_repr(kind, tmp_path: Path):
    result = BUILDERS[kind]()
    assert result.kind == kind and type(result) is REGISTRY[kind]
    path = result.save(tmp_path / f"{kind}.json")
    back = load_result(path)
    assert type(back) is type(result)
    # equal: the same JSON, draws and all, and the same run ids
    assert to_json(back.to_dict(include_draws=True)) == to_json(result.to_dict(include_draws=True))
    assert tuple(back.run_ids) == tuple(result.run_ids)
    summary = back.summary()
    assert summary.as_text().strip() and summary.as_html().startswith("<div")
    assert summary.as_text() == result.summary().as_text()  # it renders what was shown
    assert json.loads(to_json(summary.to_dict()))
    text = repr(back)
    assert "\n" not in text and len(text) < 300 and text.startswith("<")
    assert back._repr_html_().startswith("<div")


#: kinds that keep no bootstrap draws (their intervals, where they have any, are fixed when they
#: are made): ``conf_int`` says so. Every other kind answers ``conf_int`` at any level.
WITHOUT_DRAWS = {"rolling_forward", "law_selection", "observational_fit", "design_proposal",
                 "pool_proposal", "pool_replay", "simulation", "plan", "heldout_check"}


def _nested(wide: tuple[float, float], narrow: tuple[float, float]) -> bool:
    if any(np.isnan(narrow)):  # no finite draw of it at either level
        return all(np.isnan(wide)) or not all(np.isfinite(wide))
    return wide[0] <= narrow[0] <= narrow[1] <= wide[1]


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_conf_int_is_chosen_when_asked_and_narrows_with_the_level(kind, tmp_path):
    result = BUILDERS[kind]()
    if kind in WITHOUT_DRAWS:
        with pytest.raises(ParameterError, match="no bootstrap draws"):
            result.conf_int(0.9)
        with pytest.raises(ParameterError, match="no bootstrap draws"):  # at its own level too
            result.conf_int()
        assert result.ci == {}
        return
    own, wide, narrow = result.conf_int(), result.conf_int(0.99), result.conf_int(0.9)
    assert own.keys() == wide.keys() == narrow.keys() and own
    assert result.level == 0.95
    for name in own:
        assert _nested(wide[name], own[name]) and _nested(own[name], narrow[name]), \
            (name, wide[name], own[name], narrow[name])
    # the level matters: some interval at 0.9 is strictly inside its 0.99 one
    assert any(w[1] - w[0] > n[1] - n[0] for w, n in zip(wide.values(), narrow.values(), strict=True)
               if np.all(np.isfinite([*w, *n])))
    # statsmodels' spelling; NaN (no interval: under half the draws gave a value) equals NaN here
    np.testing.assert_equal(result.conf_int(alpha=0.1), narrow)
    back = load_result(result.save(tmp_path / "r.json"))  # the draws are saved: the same answer
    assert back.conf_int(0.9).keys() == narrow.keys()
    np.testing.assert_allclose(np.array(list(back.conf_int(0.9).values())),
                               np.array(list(narrow.values())), rtol=1e-12)
    # res.ci is the same intervals at the result's own level, whatever the kind (an lr/batch
    # fit's and a timescale fit's keep their per-law shape: lists, by law)
    if kind not in ("hparam_fit", "tau_fit"):
        assert result.ci == own
    else:
        assert result.ci
    with pytest.raises(ParameterError, match="level must be between 0 and 1"):
        result.conf_int(95)
    with pytest.raises(ParameterError, match="not both"):
        result.conf_int(0.9, alpha=0.1)


def test_composite_results_name_the_intervals_of_their_parts():
    assert set(BUILDERS["ladder_fit"]().conf_int(0.9)) >= {"step1.E", "step1.A"}
    assert {k.split(".")[0] for k in BUILDERS["loss_translation"]().conf_int(0.9)} == {
        "source", "link", "baseline"}
    assert set(BUILDERS["hparam_fit"]().conf_int(0.9)) >= {"lr.intercept", "bs.intercept"}
    assert set(BUILDERS["loss_to_loss"]().conf_int(0.9)) == {"K", "kappa"}  # one unnamed group
    assert set(BUILDERS["budget_comparison"]().conf_int(0.9)) == {"8B.a", "8B.b", "70B.a", "70B.b"}
    assert set(BUILDERS["pass_at_k"]().conf_int(0.9)) >= {"pass@1"}
    iso = BUILDERS["isoflop"]().conf_int(0.9)
    assert {"approach2.a", "approach2.b"} <= set(iso)


def test_a_result_without_draws_says_so_and_an_unknown_kind_names_the_file(tmp_path):
    with pytest.raises(ParameterError, match="no bootstrap draws"):
        _heldout().conf_int()
    bad = tmp_path / "x.json"
    bad.write_text('{"kind": "horoscope"}')
    with pytest.raises(InputError, match="kind 'horoscope'"):
        load_result(bad)


def test_a_saved_infinity_loads_back_as_an_infinity_and_reads_as_null_elsewhere(tmp_path):
    """A refit can drive a parameter to infinity (A = inf): the file keeps null where it is (any
    JSON reader reads it) and lists it under "nonfinite", so the result loads back as it was."""
    from scalinglab.serialize import keep_infinities, restore_infinities

    fit = _loss_fit()
    fit.params["A"] = float("inf")
    fit.draws[3, 1] = -float("inf")
    data = json.loads(to_json(keep_infinities(fit.to_dict(include_draws=True))))
    assert data["params"]["A"] is None and data["draws"][3][1] is None
    assert {"/params/A": "inf", "/draws/3/1": "-inf"}.items() <= data["nonfinite"].items()
    back = load_result(fit.save(tmp_path / "inf.json"))
    assert back.params["A"] == float("inf") and back.draws[3, 1] == -float("inf")
    assert back.summary().as_text() == fit.summary().as_text()
    with pytest.raises(ValueError, match="points at no null"):
        restore_infinities({"params": {"A": 1.0}, "nonfinite": {"/params/A": "inf"}})
    with pytest.raises(ValueError, match="not a pointer to 'inf'"):
        restore_infinities({"params": {"A": None}, "nonfinite": {"/params/A": "nan"}})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**data, "nonfinite": {"/run_ids": "inf"}}))
    with pytest.raises(InputError, match="nonfinite"):
        load_result(bad)
