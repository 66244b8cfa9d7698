"""Design over a pool of candidate runs: cost expressions, target regions, identification first,
resumption from observed runs, the replay simulation, and the greedy engine's maths."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import scalinglab as sl
from scalinglab.design.greedy import Belief
from scalinglab.design.pool import (
    Discrepancy,
    LawModel,
    PoolSettings,
    cost_of,
    discrepancy_var,
    draw_replicates,
    fisher_belief,
    input_features,
    match_observed,
    replay,
    replicate_groups,
    runs_to_identify,
    target_mask,
)
from scalinglab.errors import InputError, ParameterError

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def chinchilla_loss(N: np.ndarray, D: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    clean = TRUTH["E"] + TRUTH["A"] * N ** -TRUTH["alpha"] + TRUTH["B"] * D ** -TRUTH["beta"]
    return clean * np.exp(rng.normal(0.0, noise, len(N)))


@pytest.fixture(scope="module")
def pool() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 240
    N = np.exp(rng.uniform(np.log(1e7), np.log(3e9), n))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e11), n))
    return pd.DataFrame({"N": N, "D": D, "loss": chinchilla_loss(N, D, 0.002, rng)})


# -- cost expressions ------------------------------------------------------------------------


def test_cost_is_an_expression_over_the_columns(pool):
    assert np.allclose(cost_of(pool, "6*N*D"), 6 * pool.N * pool.D)
    assert np.allclose(cost_of(pool, "N*D + 2*N**2"), pool.N * pool.D + 2 * pool.N**2)
    assert np.allclose(cost_of(pool, "1"), 1.0)  # a constant: every run costs the same


def test_cost_names_an_unknown_column(pool):
    with pytest.raises(ParameterError, match=r"\['E'\], which are not columns"):
        cost_of(pool, "N*E")


def test_cost_is_never_evaluated_as_python(pool):
    with pytest.raises(ParameterError):
        cost_of(pool, "__import__('os').system('true')")
    with pytest.raises(ParameterError):
        cost_of(pool, "N.real")


def test_a_cost_the_formula_language_refuses_names_the_cost_not_a_formula(pool):
    for text in ("__import__(1)", "2**", "foo(N)"):
        with pytest.raises(ParameterError, match=r"^cost ") as caught:
            cost_of(pool, text)
        assert caught.value.parameters == ("cost",)  # the CLI shows --cost, not --formula


def test_a_bad_cost_names_row_and_column(pool):
    bad = pool.copy()
    bad.loc[3, "N"] = -1.0
    with pytest.raises(InputError, match=r"row 4: cost '6\*N\*D' is .*N=-1\.0.*finite positive"):
        cost_of(bad, "6*N*D")
    text = pool.astype({"D": object})
    text.loc[5, "D"] = "lots"
    with pytest.raises(InputError, match=r"row 6, column 'D'.*not a number"):
        cost_of(text, "6*N*D")


# -- target regions ----------------------------------------------------------------------------


def test_target_top_share_and_top_k_are_the_costliest_rows(pool):
    cost = cost_of(pool, "6*N*D")
    mask = target_mask(pool, cost, "top:10%")
    assert mask.sum() == 24
    assert cost[mask].min() >= cost[~mask].max()
    assert target_mask(pool, cost, "top:5").sum() == 5
    assert cost[target_mask(pool, cost, "top 5")].min() == np.sort(cost)[-5]


def test_target_filter_uses_the_where_language(pool):
    cost = cost_of(pool, "6*N*D")
    mask = target_mask(pool, cost, "N >= 1e9 AND D > 1e10")
    assert np.array_equal(mask, ((pool.N >= 1e9) & (pool.D > 1e10)).to_numpy())


@pytest.mark.parametrize("bad", ["N > 1e12", "N > 0", "top:0%", "top:240", "top:x"])
def test_a_target_that_leaves_nothing_to_predict_or_to_choose_is_refused(pool, bad):
    with pytest.raises(ParameterError):
        target_mask(pool, cost_of(pool, "6*N*D"), bad)


# -- identification first, then variance --------------------------------------------------------


def test_first_proposal_identifies_the_law_before_anything_else(pool):
    proposal = sl.design_pool(pool[["N", "D"]], "chinchilla", cost="6*N*D", target="top:10%",
                              budget=0.05)
    assert proposal.phase == "identify"
    assert len(proposal.runs) == runs_to_identify(5) == 6
    # D-optimal for a law of N and D: the runs spread over both inputs, not one corner
    N = np.array([r["N"] for r in proposal.runs])
    D = np.array([r["D"] for r in proposal.runs])
    assert np.log10(N.max() / N.min()) > 0.3 and np.log10(D.max() / D.min()) > 0.3
    assert "identification first" in proposal.notes[0]
    assert proposal.cost <= 0.05 * cost_of(pool, "6*N*D").sum()


def test_once_identified_runs_narrow_the_target_region(pool):
    first = sl.design_pool(pool[["N", "D"]], "chinchilla", cost="6*N*D", target="top:10%",
                           budget=0.05)
    rows = [r["row"] - 1 for r in first.runs]
    extra = [int(i) for i in np.argsort(pool.N.to_numpy() * pool.D.to_numpy())[:6]]
    observed = pool.iloc[rows + extra]
    second = sl.design_pool(pool[["N", "D"]], "chinchilla", cost="6*N*D", target="top:10%",
                            budget=0.05, observed=observed)
    assert second.phase == "variance"
    assert second.runs and second.variance_after < second.variance_before
    chosen = {r["row"] - 1 for r in second.runs}
    assert not chosen & set(rows + extra)                      # never a run already made
    top = set(np.flatnonzero(target_mask(pool, cost_of(pool, "6*N*D"), "top:10%")))
    assert not chosen & top                                    # never a target row
    assert second.spent + second.cost <= second.budget * (1 + 1e-12)
    # by default the fit's expected target error counts the law's discrepancy; without it the
    # runs are chosen by the V-optimal criterion alone (the law's form trusted)
    assert any("discrepancy included" in n for n in second.notes)
    trusting = sl.design_pool(pool[["N", "D"]], "chinchilla", cost="6*N*D", target="top:10%",
                              budget=0.05, observed=observed, discrepancy=False)
    assert trusting.phase == "variance" and trusting.runs
    assert not any("discrepancy" in n for n in trusting.notes)
    # the bootstrap ensemble's belief chooses by the same rule, once the bootstrap too finds
    # every parameter identified (here with runs spread over the pool)
    spread = np.argsort(pool.N.to_numpy() * pool.D.to_numpy())[:200:5]
    drawn = sl.design_pool(pool[["N", "D"]], "chinchilla", cost="6*N*D", target="top:10%",
                           budget=0.2, observed=pool.iloc[spread], criterion="draws",
                           bootstrap=40)
    assert drawn.phase == "variance" and drawn.runs
    assert drawn.variance_after < drawn.variance_before
    assert not any("instead of the draws" in n for n in drawn.notes)


def test_replicate_rows_share_a_group_only_with_the_same_inputs_and_cost(pool):
    frame = pd.DataFrame({"N": [1e7, 1e7, 1e7, 2e7, 1e7], "D": [1e9, 1e9, 1e9, 1e9, 2e9]})
    model = LawModel("chinchilla", frame)
    g = replicate_groups(model, np.array([5.0, 5.0, 6.0, 5.0, 5.0]))
    assert g[0] == g[1]                                        # same inputs, same cost
    assert len(set(g[[0, 2, 3, 4]])) == 4                      # cost, N or D differs
    class Opaque:                                              # no features(): no replicates
        pass
    assert list(replicate_groups(Opaque(), np.ones(3))) == [0, 1, 2]


def test_which_replicate_row_is_bought_is_drawn_from_the_free_rows():
    groups = np.array([0, 0, 0, 0, 1, 2])
    free = np.array([False, True, True, True, True, True])     # row 0 was bought already
    drawn = {tuple(draw_replicates(groups, [1, 2, 5], free, np.random.default_rng(s)))
             for s in range(20)}
    for picks in drawn:
        assert picks[2] == 5                                   # a row with no twin stays
        assert len(set(picks[:2])) == 2 and set(picks[:2]) <= {1, 2, 3}
    assert len(drawn) > 1                                      # the seed decides which twins


def test_a_repeated_configuration_is_bought_as_a_random_one_of_its_rows(pool):
    # every configuration four times over: the design (identical rows score identically) buys
    # the same configurations whatever the seed, but not always its first rows, so replays over
    # seeds average over the replicates' noise instead of fixing one draw of it
    four = pd.concat([pool] * 4, ignore_index=True)
    seen = pool.iloc[np.argsort(pool.N.to_numpy() * pool.D.to_numpy())[:12]]
    rows, configs = [], []
    for seed in range(3):
        p = sl.design_pool(four[["N", "D"]], "chinchilla", cost="6*N*D", target="top:10%",
                           budget=0.05, observed=seen, seed=seed)
        assert p.phase == "variance" and p.runs
        rows.append(sorted(r["row"] for r in p.runs))
        configs.append(sorted((r["N"], r["D"]) for r in p.runs))
        assert not {r - 1 for r in rows[-1]} & set(seen.index)     # never a run made already
    assert configs[0] == configs[1] == configs[2]
    assert len({tuple(r) for r in rows}) > 1


def test_an_observed_run_must_be_a_row_of_the_pool(pool):
    model = LawModel("chinchilla", pool)
    odd = pd.DataFrame({"N": [123.0], "D": [456.0], "loss": [3.0]})
    with pytest.raises(InputError, match="row 1.*matches no row of the pool"):
        match_observed(pool, odd, model, "loss")
    with pytest.raises(InputError, match="column 'loss'"):
        match_observed(pool, pool[["N", "D"]].head(2), model, "loss")


def test_the_observed_runs_are_named_in_errors_by_an_argument_not_by_the_frames_attrs(pool):
    """``observed_source`` names the observed runs in design_pool's errors (the command line
    passes the --observed file); the name no longer rides on ``observed.attrs``, so a frame
    that carries a stale name there does not change the message."""
    odd = pd.DataFrame({"N": [123.0], "D": [456.0], "loss": [3.0]})
    kw = dict(cost="6*N*D", target="top:10%", budget=0.3)
    with pytest.raises(InputError) as named:
        sl.design_pool(pool[["N", "D"]], "chinchilla", observed=odd, observed_source="done.csv", **kw)
    assert str(named.value) == "done.csv: row 1: this run matches no row of the pool (on N, D)"
    odd.attrs["source"] = "stale.csv"
    with pytest.raises(InputError) as plain:
        sl.design_pool(pool[["N", "D"]], "chinchilla", observed=odd, **kw)
    assert str(plain.value) == "observed: row 1: this run matches no row of the pool (on N, D)"


# -- the greedy engine ---------------------------------------------------------------------------


def test_gain_is_the_exact_gaussian_variance_reduction():
    rng = np.random.default_rng(1)
    r, t, m = 4, 6, 9
    G, C = rng.normal(size=(t, r)), rng.normal(size=(m, r))
    A = rng.normal(size=(r, r))
    S = A @ A.T + np.eye(r)
    belief = Belief(G, C, S, noise_var=0.3)
    for j in range(m):
        c = C[j]
        after = S - np.outer(S @ c, S @ c) / (c @ S @ c + 0.3)
        assert belief.gains()[j] == pytest.approx(np.trace(G @ (S - after) @ G.T))


def test_a_run_with_several_outputs_conditions_on_all_of_them():
    rng = np.random.default_rng(2)
    r, t, m, o = 5, 4, 3, 2
    G, C = rng.normal(size=(t, r)), rng.normal(size=(m, o, r))
    belief = Belief(G, C, np.eye(r), noise_var=0.5)
    seq = np.eye(r)
    for row in C[1]:  # observing both outputs = conditioning on one, then the other
        seq = seq - np.outer(seq @ row, seq @ row) / (row @ seq @ row + 0.5)
    assert np.allclose(belief.condition(1), seq)
    assert belief.gains()[1] == pytest.approx(belief.objective() - belief.objective(seq))


def test_choose_respects_the_budget_and_prefers_cheap_information():
    rng = np.random.default_rng(3)
    G, C = rng.normal(size=(3, 4)), rng.normal(size=(20, 4))
    belief = Belief(G, C, np.eye(4), noise_var=0.1)
    cost = rng.uniform(1, 10, 20)
    got = belief.choose(cost, budget=12.0, k=10)
    assert got.cost <= 12.0 and len(set(got.picks)) == len(got.picks)
    assert got.objective_after < got.objective_before
    first = belief.gains() / belief.objective() / cost
    assert got.picks[0] == int(np.argmax(first))


def test_one_greedy_loop_buys_the_best_gain_per_cost_until_the_budget_is_spent():
    from scalinglab.design.greedy import greedy_picks

    cost = np.array([1.0, 4.0, 2.0, 1.0])
    seen: list[list[int]] = []

    def gains_given(picks):                     # each pick halves what the others would add
        seen.append(list(picks))
        return np.array([3.0, 10.0, 5.0, 0.5]) * 0.5 ** len(picks)

    picks, gains = greedy_picks(gains_given, cost, budget=4.0, k=4, min_gain=0.2)
    # per unit cost: 3 (row 0), 2.5, 2.5, 0.5; row 1 (4) no longer fits after row 0, and
    # row 3 would then add 0.125, below min_gain
    assert picks == [0, 2] and gains == [3.0, 2.5]
    assert seen == [[], [0], [0, 2]]            # scored anew given the picks before
    assert greedy_picks(gains_given, cost, 4.0, 4, power=0.0)[0] == [1]   # gain alone


def test_better_of_keeps_gain_alone_only_when_it_ends_lower():
    from scalinglab.design.greedy import better_of

    ends = {1.0: ([0, 2], 0.5), 0.0: ([1], 0.3)}
    assert better_of(lambda p: ends[p], lambda got: got[1], 1.0) == (([1], 0.3), True)
    assert better_of(lambda p: ends[p], lambda got: got[1], 1.0, rival=False) == (ends[1.0], False)
    ends[0.0] = ([1], 0.9)
    assert better_of(lambda p: ends[p], lambda got: got[1], 1.0) == (ends[1.0], False)


# -- misspecification: what the law cannot express -------------------------------------------


def test_discrepancy_variance_starts_at_the_outcomes_spread_and_ends_at_the_residuals():
    y = np.array([3.0, 2.5, 2.2, 2.0, 1.9, 1.85])
    exact = y.copy()
    # a law of 5 parameters fitting 6 runs exactly: one residual degree of freedom, no residual
    assert discrepancy_var(y, exact, 5) == pytest.approx(np.var(y) / 2.0)
    # 4,000 runs whose residuals have variance 1e-4: the prior's weight (one run) has faded
    rng = np.random.default_rng(0)
    many = rng.uniform(2, 3, 4000)
    r = rng.normal(0, 1e-2, 4000)
    got = discrepancy_var(many + r, many, 5)
    assert got == pytest.approx((np.var(many + r) + np.sum(r**2)) / 3996.0)
    assert got == pytest.approx(1e-4, rel=0.25)


def test_discrepancy_is_exact_at_the_target_rows_and_fades_with_distance():
    x = np.array([[0.0], [0.5], [3.0], [3.2], [3.4]])
    disc = Discrepancy(x, var=0.04, length=1.0)
    target = np.array([2, 3, 4])
    phi, rest = disc.factors(target, np.arange(5))
    k = 0.04 * np.exp(-0.5 * (x - x.T) ** 2)
    assert np.allclose(phi[2:] @ phi[2:].T, k[2:, 2:], atol=1e-8)     # exact at the target
    assert np.allclose(phi[:2] @ phi[2:].T, k[:2, 2:], atol=1e-8)     # and across to it
    assert np.allclose(rest[2:], 0.0, atol=1e-8)
    assert np.all(np.sum(phi[:2] ** 2, axis=1) + rest[:2] == pytest.approx(0.04))
    # a run near the target shares more of its discrepancy than a far one
    assert np.sum(phi[1] @ phi[2:].T) > np.sum(phi[0] @ phi[2:].T) > 0


def test_input_features_are_standardised_logs_of_wide_positive_inputs():
    f = input_features({"N": np.array([1e7, 1e8, 1e9]), "r": np.array([-1.0, 0.0, 1.0]),
                        "c": np.ones(3)})
    assert f.shape == (3, 2)                                           # the constant is dropped
    assert np.allclose(f[:, 0], (np.arange(3) - 1) / np.std(np.arange(3)))
    assert np.allclose(f.std(axis=0), 1.0)


def test_with_a_discrepancy_runs_near_the_target_are_worth_more(pool):
    cost = cost_of(pool, "6*N*D")
    target = np.flatnonzero(target_mask(pool, cost, "top:10%"))
    order = np.argsort(cost)
    observed = order[:40:4]                                            # 10 cheap runs
    model = LawModel("chinchilla", pool)
    y = pool.loss.to_numpy()[observed][:, None]
    fitted = model.fit(observed, y, seed=0, bootstrap=0)
    cand = np.setdiff1d(np.flatnonzero(~np.isin(np.arange(len(pool)), target)), observed)
    near = cand[np.argsort(cost[cand])[-20:]]                          # the costliest candidates
    far = cand[np.argsort(cost[cand])[:20]]                            # the cheapest

    def share(disc):
        belief = fisher_belief(model, fitted, observed, target, cand, disc)
        g = belief.gains() / belief.objective()
        pos = {r: i for i, r in enumerate(cand)}
        return np.mean(g[[pos[r] for r in near]]) / np.mean(g[[pos[r] for r in far]])

    disc = Discrepancy(model.features(), var=float(np.var(y)))
    assert share(disc) > 2.0 * share(None)


def _lsq_problem(tau2: float, seed: int = 0):
    from scalinglab.design.robust import LsqProblem

    rng = np.random.default_rng(seed)
    # a straight line fitted on x in [0, 0.5] (30 runs), predicted at x = 2; candidates on [0, 1.8]
    def rows(x):
        return np.column_stack([np.ones_like(x), x])

    x_obs, x_tgt, x_cand = rng.uniform(0, 0.5, 30), np.linspace(1.9, 2.1, 5), np.linspace(0, 1.8, 10)
    return LsqProblem(rows(x_obs), rows(x_tgt), rows(x_cand), x_obs[:, None], x_tgt[:, None],
                      x_cand[:, None], tau2=tau2, s2=1e-4, ridge=1e-8 * np.eye(2)), x_cand


def test_lsq_reductions_are_the_exact_change_of_the_fit_s_target_error():
    problem, _ = _lsq_problem(0.2)
    for chosen in ([], [3], [3, 7]):
        red, base = problem.reductions(chosen)
        assert base == pytest.approx(problem.mspe(chosen))
        brute = [base - problem.mspe([*chosen, j]) if j not in chosen else red[j]
                 for j in range(10)]
        assert np.allclose(red, brute, rtol=1e-6, atol=1e-9 * base)


def test_with_a_discrepancy_a_far_cheap_run_can_make_the_fit_worse():
    from scalinglab.design.robust import choose_lsq

    exact, x = _lsq_problem(0.0)
    wrong, _ = _lsq_problem(0.2)
    red_exact, _ = exact.reductions([])
    red_wrong, _ = wrong.reductions([])
    assert np.all(red_exact > 0)                       # a true law: every run narrows the fit
    assert red_wrong[0] < 0 < red_wrong[-1]            # a wrong one: the far run dilutes it
    picks, _, before, after = choose_lsq(wrong, np.ones(10), budget=3.0, k=3)
    assert after < before and min(x[picks]) > 1.0      # the runs bought sit near the target


# -- the sequential loop, replayed -------------------------------------------------------------------


def test_replay_reveals_outcomes_only_for_chosen_runs_and_stays_in_budget(pool):
    cost = cost_of(pool, "6*N*D")
    target = target_mask(pool, cost, "top:10%")
    y = pool.loss.to_numpy()

    class Spy(LawModel):
        seen: set[int] = set()

        def fit(self, rows, yy, **kw):
            assert np.allclose(np.ravel(yy), y[rows])          # only chosen rows' outcomes
            Spy.seen |= {int(r) for r in rows}
            return super().fit(rows, yy, **kw)

    model = Spy("chinchilla", pool)
    steps = replay(model, cost, target, y, [0.02, 0.1], PoolSettings(seed=0))
    assert not Spy.seen & set(np.flatnonzero(target))
    pool_cost = cost[~target].sum()
    for step in steps:
        assert step.spent <= step.budget * pool_cost * (1 + 1e-9)
        assert step.theta is not None
    assert set(steps[0].observed) <= set(steps[1].observed)


def test_replay_study_beats_cheapest_first_on_a_known_law(pool, tmp_path):
    result = sl.replay_study(pool, "chinchilla", cost="6*N*D", target="top:10%",
                             budgets=[0.1], seeds=[0, 1])
    ours = np.mean(result.r2["ours"]["0.1"])
    assert ours > 0.9
    assert ours >= np.mean(result.r2["cheapest"]["0.1"]) - 0.02
    assert set(result.to_dict()["r2"]) == {"ours", "random", "cheapest"}
    back = sl.load_result(result.save(tmp_path / "replay.json"))
    assert back.to_dict() == result.to_dict() and len(repr(back)) < 300
    assert "target-region R²" in result.summary().as_text()


# -- the command -------------------------------------------------------------------------------------


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scalinglab.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cli_round_trip_resumes_from_the_observed_file(pool, tmp_path):
    pool[["N", "D"]].to_csv(tmp_path / "pool.csv", index=False)
    common = ["--law", "chinchilla", "--cost", "6*N*D", "--target", "top:10%", "--budget", "0.05"]
    first = _cli("design", "pool", "pool.csv", *common, "--out", "round1.csv", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["phase"] == "identify" and data["file"] == "round1.csv"
    made = pd.read_csv(tmp_path / "round1.csv")
    assert list(made.columns) == ["row", "N", "D", "cost", "gain", "loss"]
    assert made["loss"].isna().all()                          # the outcome is for the user to fill
    made["loss"] = pool.loss.to_numpy()[made["row"] - 1]
    cheap = pool.iloc[np.argsort(pool.N.to_numpy() * pool.D.to_numpy())[:6]]
    cheap.assign(row=cheap.index + 1)[["row", "N", "D", "loss"]].pipe(
        lambda c: pd.concat([made[["row", "N", "D", "loss"]], c])).to_csv(
        tmp_path / "observed.csv", index=False)
    second = _cli("design", "pool", "pool.csv", *common, "--observed", "observed.csv",
                  "--out", "round2.csv", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    data = json.loads(second.stdout)
    assert data["phase"] == "variance" and data["n_observed"] == len(made) + 6
    again = pd.read_csv(tmp_path / "round2.csv")
    assert not set(again["row"]) & set(pd.read_csv(tmp_path / "observed.csv")["row"])
    refused = _cli("design", "pool", "pool.csv", *common, "--observed", "observed.csv",
                   "--out", "observed.csv", cwd=tmp_path)
    assert refused.returncode == 2 and "is an input" in refused.stderr


@pytest.mark.parametrize(("frame", "said"), [
    pytest.param(pd.DataFrame({"N": [1e8, "big", 4e8], "D": [2e9, 4e9, "n/a"], "loss": [3.1, 2.9, "?"]}),
                 ("row 2, column 'N': 'big' is not a number", "row 3, column 'D': 'n/a' is not a number",
                  "row 3, column 'loss': '?' is not a number"), id="text"),
    pytest.param(pd.DataFrame({"N": [1e8, np.inf, 3e8], "D": [2e9, 4e9, np.nan], "loss": [3.1, 2.9, -np.inf]}),
                 ("row 2, column 'N': inf is not a finite number", "row 3, column 'D': is missing",
                  "row 3, column 'loss': -inf is not a finite number"), id="not-finite"),
])
def test_a_cell_that_is_not_a_number_is_named_by_row_and_column_and_what_it_was_for(frame, said):
    """The cost's columns, the law's inputs and an outcome, replayed or observed, are read as
    numbers the same way: the first cell that is not a finite number is one line naming its row,
    its column and what the number was for. Text is quoted as written (``'big'``); an infinite
    cell reads ``inf is not a finite number`` (it read ``np.float64(inf) is not a number``), an
    empty one ``is missing`` (it read ``nan`` or ``<NA> is not a number``)."""
    cost, an_input, outcome = said
    with pytest.raises(InputError) as err:
        cost_of(frame, "6*N*D", source="pool.csv")
    assert str(err.value) == f"pool.csv: {cost}, so the cost '6*N*D' cannot be computed"
    with pytest.raises(InputError) as err:
        LawModel("chinchilla", frame.assign(N=1e8), source="pool.csv")
    assert str(err.value) == f"pool.csv: {an_input} (an input of law 'chinchilla')"
    runs = frame.assign(N=[1e8, 2e8, 3e8], D=2e9)  # the third run's outcome is the bad cell
    with pytest.raises(InputError) as err:
        sl.replay_study(runs, "chinchilla", cost="6*N*D", target="top:10%", source="pool.csv")
    assert str(err.value) == f"pool.csv: {outcome}"
    with pytest.raises(InputError) as err:
        match_observed(runs, runs, LawModel("chinchilla", runs), "loss", source="observed.csv")
    assert str(err.value) == f"observed.csv: {outcome}"


def test_a_pool_files_infinite_cell_is_named_as_written(tmp_path):
    """On the command line, a text file's infinite cell is quoted as written (``'inf'``), as
    ``'big'`` is; a Parquet file's is the number, ``inf``."""
    from typer.testing import CliRunner

    from scalinglab.cli import app

    frame = pd.DataFrame({"N": [1e8, np.inf, 3e8], "D": [2e9, 4e9, np.nan]})
    (tmp_path / "pool.csv").write_text("N,D\n1e8,2e9\n2e8,inf\n3e8,6e9\n")
    frame.to_parquet(tmp_path / "pool.parquet")
    for name, said in (("pool.csv", "row 2, column 'D': 'inf' is not a finite number"),
                       ("pool.parquet", "row 2, column 'N': inf is not a finite number")):
        res = CliRunner().invoke(app, ["design", "pool", str(tmp_path / name), "--law", "chinchilla",
                                       "--cost", "6*N*D", "--target", "top:10%", "--budget", "0.5",
                                       "--out", str(tmp_path / "next.csv")])
        assert res.exit_code == 2
        assert " ".join(res.output.split()) == (f"error: {tmp_path / name}: {said}, so the cost "
                                                "'6*N*D' cannot be computed")


def test_a_blank_row_cell_means_no_row_given_the_run_is_matched_on_its_inputs(pool, tmp_path):
    """``--observed`` with a ``row`` column whose cell is blank (a run the user added by hand
    to a proposal's file) is matched on its inputs, as a file without a row column is; it was
    refused as ``'' is not a row of the pool``. A row cell that is not a pool row still is."""
    model = LawModel("chinchilla", pool)
    seen = pool.iloc[[4, 9, 17, 30]].reset_index(drop=True)
    with_rows = seen.assign(row=["5", "", "18", "  "])[["row", "N", "D", "loss"]]  # as text, read
    rows, y = match_observed(pool, with_rows, model, "loss")
    bare_rows, bare_y = match_observed(pool, seen[["N", "D", "loss"]], model, "loss")
    assert rows.tolist() == bare_rows.tolist() == [4, 9, 17, 30]
    assert np.array_equal(y, bare_y)
    with pytest.raises(InputError) as err:
        match_observed(pool, with_rows.assign(row=["5", "", "999", ""]), model, "loss",
                       source="observed.csv")
    assert str(err.value) == ("observed.csv: row 3, column 'row': '999' is not a row of the pool "
                              f"(1 to {len(pool)})")

    from typer.testing import CliRunner

    from scalinglab.cli import app

    pool[["N", "D"]].to_csv(tmp_path / "pool.csv", index=False)
    with_rows.to_csv(tmp_path / "blank.csv", index=False)
    seen[["N", "D", "loss"]].to_csv(tmp_path / "bare.csv", index=False)
    out = {}
    for name in ("blank", "bare"):
        res = CliRunner().invoke(app, ["design", "pool", str(tmp_path / "pool.csv"), "--law",
                                       "chinchilla", "--cost", "6*N*D", "--target", "top:10%",
                                       "--budget", "0.05", "--observed", str(tmp_path / f"{name}.csv"),
                                       "--out", str(tmp_path / f"next-{name}.csv"), "--json"])
        assert res.exit_code == 0, res.output
        out[name] = json.loads(res.stdout)
        assert out[name]["n_observed"] == 4
    assert out["blank"]["runs"] == out["bare"]["runs"]
    assert (tmp_path / "next-blank.csv").read_text() == (tmp_path / "next-bare.csv").read_text()
