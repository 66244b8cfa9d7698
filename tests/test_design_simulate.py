"""Simulated studies: layouts cost what they say, noise is what it says, the isoflop design
recovers the truth without bias, and `scalinglab simulate --json` has the issue's shape."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.clikit import to_json
from scalinglab.design import (
    AdaptiveDesign,
    AdaptiveSettings,
    FixedDesign,
    GridLayout,
    IsoflopLayout,
    Noise,
    SimulationResult,
    resolve_truth,
    simulate,
)
from scalinglab.design.targets import figures_at, truth_at
from scalinglab.errors import ParameterError
from scalinglab.laws.loss import BESIROGLU_2024, HOFFMANN_2022, compute_optimum

runner = CliRunner()


@pytest.mark.parametrize("layout", [IsoflopLayout(), IsoflopLayout(3, 4, 10.0, 8.0, 50.0, 2),
                                    GridLayout(), GridLayout(3, 4, 10.0, 30.0, 5.0, 3)])
def test_every_layout_spends_exactly_the_spend_in_its_number_of_runs(layout):
    N, D = layout.runs(3e20)
    assert len(N) == layout.n_runs
    assert np.sum(6 * N * D) == pytest.approx(3e20, rel=1e-12)


def test_isoflop_budgets_are_a_constant_factor_apart_with_sizes_spanning_the_span():
    layout = IsoflopLayout(budgets=4, sizes=5, ratio=3.0, span=16.0, tokens_per_param=20.0)
    budgets = layout.budgets_for(1e21)
    assert np.allclose(budgets[1:] / budgets[:-1], 3.0)
    N, D = layout.runs(1e21)
    c = (6 * N * D).reshape(4, 5)
    assert np.allclose(c, budgets[:, None])
    n = N.reshape(4, 5)
    assert np.allclose(n[:, -1] / n[:, 0], 16.0)
    # the middle size sits at 20 tokens per parameter
    assert np.allclose(D.reshape(4, 5)[:, 2] / n[:, 2], 20.0)


def test_noise_is_log_normal_with_sigma_and_replicates_share_the_point_part():
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 1e9, 2000), 2)
    D = 20 * N
    clean = HOFFMANN_2022.predict(N=N, D=D)
    point = Noise(sigma=0.02).observe(HOFFMANN_2022, N, D, rng)
    r = np.log(point / clean)
    assert np.std(r) == pytest.approx(0.02, rel=0.05) and abs(np.mean(r)) < 0.002
    assert np.allclose(point[::2], point[1::2])  # a retrained seed keeps the point's deviation
    seeds = Noise(sigma=0.0, seed_spread=0.01).observe(HOFFMANN_2022, N, D, rng)
    rs = np.log(seeds / clean)
    assert np.std(rs[::2] - rs[1::2]) == pytest.approx(0.01 * np.sqrt(2), rel=0.08)
    assert np.array_equal(Noise(0.0).observe(HOFFMANN_2022, N, D, rng), clean)


def test_target_figures_follow_the_laws_own_optimum_for_draws_and_for_the_truth():
    C = 1e24
    truth = truth_at(BESIROGLU_2024, C)
    n, d = compute_optimum(BESIROGLU_2024, C)
    assert truth["N_opt"] == pytest.approx(n) and truth["D_opt"] == pytest.approx(C / (6 * n))
    assert truth["loss"] == pytest.approx(float(BESIROGLU_2024.predict(N=n, D=d)))
    cols = {k: np.array([v, v * 1.01]) for k, v in BESIROGLU_2024.params.items()}
    figs = figures_at(BESIROGLU_2024.law, cols, C)
    assert figs["N_opt"][0] == pytest.approx(n, rel=1e-9)
    assert figs["loss"][1] != figs["loss"][0]


def test_without_noise_every_design_finds_the_truth_exactly():
    res = simulate("hoffmann2022", [FixedDesign("isoflop", IsoflopLayout()),
                                    FixedDesign("grid", GridLayout())],
                   spend=1e21, target=1e23, repeats=1, noise=Noise(0.0), bootstrap=10, starts=300)
    for design in ("isoflop", "grid"):
        m = res.metrics(design, 1e21)
        for fig in ("loss", "N_opt", "D_opt"):
            assert abs(m[fig]["bias"]) < 1e-4, (design, fig, m[fig])
        assert m["spend"] == pytest.approx(1e21)
    saved = json.loads(to_json(res.to_dict(include_studies=True)))
    back = SimulationResult.from_dict(saved)
    assert back.to_dict() == json.loads(to_json(res.to_dict()))


def test_the_isoflop_design_recovers_the_truth_without_bias():
    """Over repeated noisy studies the mean error of L, N_opt and D_opt at the target is small
    against the studies' own interval width (the bootstrap's spread of one study)."""
    res = simulate("hoffmann2022", [FixedDesign("isoflop", IsoflopLayout())], spend=1e21,
                   target=1e23, repeats=10, noise=Noise(0.005), bootstrap=40, starts=300, seed=3)
    m = res.metrics("isoflop", 1e21)
    assert m["fitted"] == 10 and m["failed"] == 0
    for fig in ("loss", "N_opt", "D_opt"):
        # the mean of 10 errors has a spread of about width / (4 sqrt(10)) = 0.08 width
        assert abs(m[fig]["bias"]) < 0.25 * m[fig]["ci_width"], (fig, m[fig])
    assert m["loss"]["coverage"] >= 0.7


def test_an_adaptive_study_uses_its_spend_but_no_more_and_its_runs():
    settings = AdaptiveSettings(k=3, max_runs=15, bootstrap=30, starts=150)
    res = simulate("besiroglu2024", [AdaptiveDesign("adaptive", settings)], spend=1e20,
                   target=1e23, repeats=2, bootstrap=30, starts=150)
    rows = [o for o in res.outcomes if o.design == "adaptive"]
    assert all(o.error is None for o in rows)
    assert all(o.spent <= 1e20 * (1 + 1e-9) and o.n_runs <= 15 for o in rows)
    # the last round has no later use for what is left, so little is left
    assert all(o.spent >= 0.6e20 for o in rows), [o.spent for o in rows]
    assert all(o.rounds >= 1 for o in rows)  # it did adapt: rounds after the seed


def test_a_saved_fit_can_be_the_truth(tmp_path):
    from scalinglab.fit import besiroglu_grid, fit_chinchilla
    from scalinglab.fit.synthetic import isoflop_runs

    runs = isoflop_runs(budgets=[1e18, 1e19, 1e20], per_budget=6, noise=0.0)
    fit = fit_chinchilla(runs.N, runs.D, runs.loss, bootstrap=0, starts=besiroglu_grid()[::10])
    path = fit.save(tmp_path / "fit.json")
    truth = resolve_truth(path)
    assert truth.params == pytest.approx(fit.params)
    with pytest.raises(ParameterError, match="besiroglu2024"):
        resolve_truth("no-such-law")


def test_simulate_json_has_the_issues_shape_per_design(tmp_path):
    result = runner.invoke(app, ["simulate", "--truth", "hoffmann2022", "--designs",
                                 "isoflop,grid", "--spend", "1e20,1e21", "--target", "1e23",
                                 "--repeats", "2", "--bootstrap", "10", "--starts", "200", "--workers", "1",
                                 "--figure", str(tmp_path / "w.png"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["designs"]) == {"isoflop", "grid"}
    for entry in out["designs"].values():
        assert entry["spend"] == pytest.approx(1e21)
        for fig in ("loss", "N_opt", "D_opt"):
            assert set(entry[fig]) == {"bias", "ci_width", "coverage"}
    assert [b["budget"] for b in out["by_spend"]] == [1e20, 1e21]
    assert (tmp_path / "w.png").stat().st_size > 10_000


def test_bad_simulate_input_is_one_clear_error():
    result = runner.invoke(app, ["simulate", "--designs", "isoflop,magic"])
    assert result.exit_code == 2 and "magic" in result.output
    result = runner.invoke(app, ["simulate", "--truth", "nosuch", "--repeats", "1"])
    assert result.exit_code == 2 and "--truth" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["simulate", "--spend", "-3", "--repeats", "1"])
    assert result.exit_code == 2 and "--spend" in result.output
