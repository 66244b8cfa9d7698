"""Proposals: the variance update is exact for a linear model, proposals respect the spend and
never repeat a run, they break a confounded design, and `design next` writes a runnable plan."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.design import FlopSpace, IsoflopLayout, Noise, Proposal, Spread, propose
from scalinglab.design.layouts import near_existing
from scalinglab.design.spread import fisher_widths
from scalinglab.errors import ParameterError
from scalinglab.fit import besiroglu_grid, fit_chinchilla
from scalinglab.laws.loss import BESIROGLU_2024, HOFFMANN_2022

runner = CliRunner()
STARTS = besiroglu_grid()[::10]


def _linear_spread(rng: np.random.Generator, p: int = 4, m: int = 30, s2: float = 0.3):
    """A linear-Gaussian model: theta ~ N(0, S), tracked g = G theta, candidates f = J theta."""
    a = rng.standard_normal((p, p))
    cov_theta = a @ a.T + 0.1 * np.eye(p)
    G, J = rng.standard_normal((2, p)), rng.standard_normal((m, p))
    H = np.vstack([G, J])
    spread = Spread(("loss", "N_opt"), H @ cov_theta @ H.T, np.array([1.0, 1.0]), s2, "test",
                    (True, True))
    return spread, cov_theta, G, J


def test_greedy_conditioning_gives_the_exact_posterior_variance_of_a_linear_model():
    rng = np.random.default_rng(4)
    spread, cov_theta, G, J = _linear_spread(rng)
    cost = rng.uniform(1.0, 3.0, J.shape[0])
    choice = spread.choose(cost, budget=100.0, k=5)
    assert len(choice.picks) == 5 and len(set(choice.picks)) == 5
    Jp = J[choice.picks]
    post = np.linalg.inv(np.linalg.inv(cov_theta) + Jp.T @ Jp / spread.noise_var)
    exact = np.diag(G @ post @ G.T)
    assert [choice.var_after["loss"], choice.var_after["N_opt"]] == pytest.approx(exact, rel=1e-9)
    # the first pick maximises the one-step reduction per unit cost, computed by hand
    before = np.diag(G @ cov_theta @ G.T)
    gain = []
    for j in range(len(J)):
        one = np.linalg.inv(np.linalg.inv(cov_theta) + np.outer(J[j], J[j]) / spread.noise_var)
        gain.append(np.sum((before - np.diag(G @ one @ G.T)) / before) / 2)
    assert choice.picks[0] == int(np.argmax(np.array(gain) / cost))
    assert choice.gains[0] == pytest.approx(max(gain), rel=1e-9)


def test_the_greedy_choice_stays_within_budget_and_k():
    rng = np.random.default_rng(5)
    spread, *_ = _linear_spread(rng)
    cost = rng.uniform(1.0, 3.0, spread.n_candidates)
    for budget, k in ((2.5, 4), (10.0, 3), (100.0, 8)):
        choice = spread.choose(cost, budget=budget, k=k)
        assert choice.cost <= budget and len(choice.picks) <= k


@pytest.fixture(scope="module")
def iso_fit():
    N, D = IsoflopLayout(budgets=4, sizes=5).runs(1e20)
    loss = Noise(0.01).observe(BESIROGLU_2024, N, D, np.random.default_rng(0))
    return fit_chinchilla(N, D, loss, bootstrap=60, starts=STARTS, seed=1), N, D


@pytest.mark.parametrize("spend,k", [(3e19, 4), (1e20, 2), (5e18, 6)])
def test_proposals_respect_the_spend_and_never_repeat_a_run(iso_fit, spend, k):
    fit, N, D = iso_fit
    space = FlopSpace.for_spend(1e20)
    cand = space.points()
    # one candidate sits exactly on an existing run: it must not be proposed again
    cand = (np.r_[cand[0], N[7]], np.r_[cand[1], D[7]])
    p = propose(fit, (N, D), 1e23, spend, cand, k=k)
    assert p.runs and len(p.runs) <= k
    assert p.cost <= spend * (1 + 1e-12)
    pn, pd_ = np.array([r.N for r in p.runs]), np.array([r.D for r in p.runs])
    assert not near_existing(pn, pd_, N, D).any()
    assert len({(r.N, r.D) for r in p.runs}) == len(p.runs)
    for name in ("loss", "N_opt"):
        assert p.width(name, after=True) < p.width(name)


def test_draws_and_fisher_agree_about_a_well_identified_fit(iso_fit):
    fit, N, D = iso_fit
    cand = FlopSpace.for_spend(1e20).points()
    a = Spread.from_draws(fit, 1e23, *cand, {"loss": 1.0})
    b = Spread.from_fisher(fit, N, D, 1e23, *cand, {"loss": 1.0})
    for name in ("loss", "N_opt"):
        ratio = a.variances()[name] / b.variances()[name]
        assert 0.3 < ratio < 3.0, (name, ratio)


def test_fisher_widths_match_simulated_widths_of_the_isoflop_grid():
    """The screen the benchmark uses: Fisher widths at the truth are of the size repeated
    simulated fits give (measured over 50 studies: 14.5% vs 18.3% for L, 169% vs 263% for N_opt;
    the simulated intervals are wider where the fit is nonlinear)."""
    N, D = IsoflopLayout().runs(1e21)
    w = fisher_widths(BESIROGLU_2024, N, D, 1e24, 0.01)
    assert 0.10 < w["loss"] < 0.20 and 1.2 < w["N_opt"] < 2.2


def test_a_confounded_design_is_broken_by_runs_off_its_line():
    """Runs all at 20 tokens per parameter confound A/N^alpha with B/D^beta (D = 20 N): the
    runs proposed leave that line."""
    N = np.geomspace(1e7, 1e9, 12)
    D = 20.0 * N
    loss = Noise(0.01).observe(HOFFMANN_2022, N, D, np.random.default_rng(2))
    fit = fit_chinchilla(N, D, loss, bootstrap=60, starts=STARTS, seed=0)
    cand = FlopSpace((1e16, 1e20), (1.0, 1000.0)).points()
    p = propose(fit, (N, D), 1e23, 2e20, cand, k=4)
    tpp = np.array([r.tokens_per_param for r in p.runs])
    assert len(tpp) >= 2 and np.all((tpp < 8) | (tpp > 50)), tpp


def test_a_proposal_round_trips_and_explains_itself(iso_fit):
    fit, N, D = iso_fit
    p = propose(fit, (N, D), 1e23, 3e19, FlopSpace.for_spend(1e20).points(), k=3)
    back = Proposal.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back.to_dict() == p.to_dict()
    text = p.summary().as_text()
    assert "expected" in text and "proposed runs" in text
    assert "->" in p.reason() and len(repr(p).splitlines()) == 1


def test_bad_arguments_name_the_parameter(iso_fit):
    fit, N, D = iso_fit
    cand = FlopSpace.for_spend(1e20).points()
    with pytest.raises(ParameterError, match="spend"):
        propose(fit, (N, D), 1e23, 0.0, cand)
    with pytest.raises(ParameterError, match="k must"):
        propose(fit, (N, D), 1e23, 1e19, cand, k=0)
    with pytest.raises(ParameterError, match="aim"):
        propose(fit, (N, D), 1e23, 1e19, cand, aim={"nonsense": 1.0})
    p = propose(fit, (N, D), 1e23, 1e3, cand)  # nothing is that cheap: no runs, and why
    assert not p.runs and "smallest candidate" in p.warnings[0]


# -- the command --------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    """A store of runs from a known law at the sizes a CPU sweep trains."""
    from scalinglab.runs.store import RunStore

    N, D = IsoflopLayout(budgets=4, sizes=5, ratio=3.0, span=8.0,
                         tokens_per_param=60.0).runs(4e11)
    loss = Noise(0.01).observe(HOFFMANN_2022, N, D, np.random.default_rng(3))
    path = tmp_path / "s.duckdb"
    RunStore(path).import_frame(pd.DataFrame({"N": N, "D": D, "loss": loss}), source="synthetic")
    return path


def test_design_next_writes_a_plan_within_the_spend(store, tmp_path):
    from scalinglab.sweep.plan import load_plan

    corpus = tmp_path / "c.txt"
    corpus.write_text("def f(x):\n    return x\n" * 200)
    out = tmp_path / "next.toml"
    result = runner.invoke(app, ["design", "next", "--store", str(store), "--target", "1e14",
                                 "--spend", "2e11", "--k", "3", "--out", str(out), "--data",
                                 str(corpus), "--bootstrap", "40", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    plan = load_plan(out)
    assert 1 <= len(plan.runs) <= 3
    assert plan.total_compute <= 2e11
    assert [r.run_id for r in plan.runs] == [r["run_id"] for r in data["planned"]]
    assert data["after"]["loss"]["ci"][1] - data["after"]["loss"]["ci"][0] < \
        data["before"]["loss"]["ci"][1] - data["before"]["loss"]["ci"][0]
    text = runner.invoke(app, ["design", "next", "--store", str(store), "--target", "1e14",
                               "--spend", "2e11", "--k", "2", "--out", str(out), "--data",
                               str(corpus), "--bootstrap", "40"])
    assert text.exit_code == 0 and "expected" in text.output and "sweep run" in text.output


def test_design_next_errors_are_one_line(store, tmp_path):
    result = runner.invoke(app, ["design", "next", "--store", str(store), "--target", "1e14",
                                 "--spend", "0"])
    assert result.exit_code == 2 and "--spend" in result.output
    result = runner.invoke(app, ["design", "next", "--store", str(tmp_path / "none.duckdb"),
                                 "--target", "1e14", "--spend", "1e11"])
    assert result.exit_code == 2 and "no run store" in result.output


def test_a_missing_corpus_reads_the_same_in_every_command_that_plans_runs(store, tmp_path, monkeypatch):
    """``--data`` that is neither 'stdlib' nor a file is one line, the same in sweep plan,
    design next and sweep auto (design's copy of the check said less: no "for the built-in
    corpus"), and design next says it before it reads the store and fits the law."""
    import scalinglab.fit.loss as loss

    said = (f"--data {tmp_path / 'nowhere.txt'}: not found (a text file or folder, a uint16 "
            ".bin/.npy array, or 'stdlib' for the built-in corpus)")
    monkeypatch.setattr(loss, "fit_law", lambda *a, **k: pytest.fail("fitted before --data was checked"))
    data = ["--data", str(tmp_path / "nowhere.txt")]
    for args in (["sweep", "plan", "isoflop", "--budgets", "1e12", "--out", str(tmp_path / "p.toml")],
                 ["design", "next", "--store", str(store), "--target", "1e14", "--spend", "2e11",
                  "--out", str(tmp_path / "next.toml")],
                 ["sweep", "auto", "--store", str(tmp_path / "auto.duckdb"), "--target", "1e14",
                  "--spend", "3e12", "--out", str(tmp_path / "study")]):
        result = runner.invoke(app, [*args, *data])
        assert result.exit_code == 2, (args, result.output)
        assert " ".join(result.output.split()) == f"error: {said}", args
    assert not any(p.name != "s.duckdb" for p in tmp_path.iterdir())  # nothing written
