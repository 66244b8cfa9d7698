"""Test-time scaling: pass@k against exact combinatorics, the coverage law recovered from data
simulated from it, budgets, imperfect verifiers, and the per-problem counts loader."""

from __future__ import annotations

import itertools
import json
from math import comb

import numpy as np
import pytest

from scalinglab.clikit import to_json
from scalinglab.errors import InputError, NotIdentifiable, ParameterError
from scalinglab.testtime import (
    CoverageFit,
    Option,
    PassAtK,
    SampleCost,
    Verifier,
    VerifierAnalysis,
    analyze_verifier,
    compare_at_budget,
    counts,
    estimate_pass_at_k,
    fit_coverage,
    pass_at_k,
    read_counts,
    verified_success,
)
from scalinglab.testtime.synthetic import difficulty_mixture, simulate_counts

# -- pass@k ---------------------------------------------------------------------------------------


def test_pass_at_k_equals_exact_combinatorics():
    rng = np.random.default_rng(0)
    n = np.concatenate([np.full(40, 200), np.full(25, 37), [1, 5, 5]])
    c = rng.integers(0, n + 1)
    ks = [1, 2, 5, 10, 37] if n.min() >= 37 else [1]
    ks = [k for k in (1, 2, 5, 10, 37) if k <= n.min()]
    got = pass_at_k(n, c, ks)
    exact = np.array([[1 - comb(int(nn - cc), k) / comb(int(nn), k) for k in ks]
                      for nn, cc in zip(n, c, strict=True)])
    np.testing.assert_allclose(got, exact, rtol=1e-12, atol=1e-15)


def test_pass_at_k_equals_brute_force_enumeration_of_subsets():
    for n in range(1, 8):
        for c in range(n + 1):
            samples = [1] * c + [0] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(samples, k))
                brute = sum(any(s) for s in subsets) / len(subsets)
                assert pass_at_k([n], [c], [k])[0, 0] == pytest.approx(brute, abs=1e-14)


def test_pass_at_k_is_unbiased_where_the_plug_in_estimate_is_not():
    # true per-sample rate 0.1, 10 samples per problem: E[pass@5] = 1 - 0.9^5 exactly
    rng = np.random.default_rng(1)
    c = rng.binomial(10, 0.1, size=200_000)
    n = np.full_like(c, 10)
    unbiased = pass_at_k(n, c, [5]).mean()
    plug_in = np.mean(1 - (1 - c / 10) ** 5)
    truth = 1 - 0.9**5
    assert unbiased == pytest.approx(truth, abs=0.002)
    assert plug_in < truth - 0.02


def test_pass_at_k_stays_exact_with_ten_thousand_samples():
    got = pass_at_k([10_000, 10_000], [1, 37], [100, 1000])
    exact = [[1 - comb(10_000 - c, k) / comb(10_000, k) for k in (100, 1000)] for c in (1, 37)]
    np.testing.assert_allclose(got, exact, rtol=1e-10)


def test_k_beyond_the_samples_drawn_is_an_error_naming_k():
    with pytest.raises(ParameterError, match="k must be between 1 and the fewest samples") as exc:
        pass_at_k([10, 20], [1, 2], [11])
    assert exc.value.parameters == ("k",)


def test_pass_at_k_result_intervals_resample_problems():
    data = simulate_counts(-1.2, -0.35, n_problems=300, n_samples=128, rng=np.random.default_rng(2))
    res = estimate_pass_at_k(data, [1, 8, 128], bootstrap=400)
    e1 = res.estimate(1)
    assert e1.value == pytest.approx(np.mean(data.c / data.n))
    # the bootstrap over problems matches the standard error of a mean over problems
    se = np.std(data.c / data.n, ddof=1) / np.sqrt(data.n_problems)
    assert (e1.hi - e1.lo) == pytest.approx(2 * 1.96 * se, rel=0.2)
    point, lo, hi = res.curve([1, 8, 64, 128])
    np.testing.assert_allclose(point[[0, 1, 3]], res.values)
    assert np.all(np.diff(point) > 0) and np.all(lo <= point) and np.all(point <= hi)
    back = PassAtK.from_dict(json.loads(to_json(res.to_dict(include_draws=True))))
    assert back.curve([64])[1] == pytest.approx(res.curve([64])[1])
    assert repr(res).startswith("<PassAtK 300 problems")


# -- coverage law ------------------------------------------------------------------------------


def test_the_synthetic_difficulty_mixture_reproduces_the_coverage_law():
    p, w = difficulty_mixture(-1.2, -0.35, k_max=10_000)
    ks = np.array([1, 3, 10, 100, 1000, 10_000])
    mixture = (w[None, :] * -np.expm1(ks[:, None] * np.log1p(-p[None, :]))).sum(axis=1)
    np.testing.assert_allclose(mixture, np.exp(-1.2 * ks**-0.35), atol=1e-9)


def test_coverage_law_is_recovered_from_data_simulated_from_it():
    truth = {"a": -1.2, "b": -0.35}
    hits = {"a": 0, "b": 0}
    repeats = 8
    for r in range(repeats):
        data = simulate_counts(truth["a"], truth["b"], n_problems=400, n_samples=512,
                               rng=np.random.default_rng(10 + r))
        fit = fit_coverage(data, bootstrap=200, seed=r)
        ci = fit.to_dict()["ci"]
        for k, v in truth.items():
            assert fit.params[k] == pytest.approx(v, rel=0.15)
            hits[k] += ci[k][0] <= v <= ci[k][1]
    assert min(hits.values()) >= 6  # nominal 95% over 8 repeats


def test_samples_for_coverage_inverts_the_law():
    data = simulate_counts(-1.0, -0.4, n_problems=300, n_samples=256, rng=np.random.default_rng(3))
    fit = fit_coverage(data, bootstrap=100)
    for target in (0.6, 0.8):
        k = fit.samples_for(target)
        assert float(fit.predict(k.value)) == pytest.approx(target, rel=1e-9)
        assert k.lo <= k.value <= k.hi
    far = fit.samples_for(0.99)
    assert far.value > fit.max_k and "extrapolated" in far.note
    with pytest.raises(ParameterError, match="strictly between 0 and 1"):
        fit.samples_for(1.0)


def test_coverage_needs_a_slope_to_fit():
    flat = counts(["a", "b"], [16, 16], [16, 16])
    with pytest.raises(NotIdentifiable, match="0 or 1 at every k"):
        fit_coverage(flat)
    with pytest.raises(NotIdentifiable, match="at least 3"):
        fit_coverage(counts(["a", "b"], [2, 2], [1, 0]))


def test_coverage_fit_round_trips_and_draws_a_curve():
    data = simulate_counts(-1.2, -0.35, n_problems=200, n_samples=128, rng=np.random.default_rng(4))
    fit = fit_coverage(data, bootstrap=100)
    back = CoverageFit.from_dict(json.loads(to_json(fit.to_dict(include_draws=True))))
    np.testing.assert_allclose(back.curve([1, 1000])[2], fit.curve([1, 1000])[2])
    text = fit.summary().as_text()
    assert "coverage = exp(a * k^b)" in text and "observed" in text


# -- a bigger model or more samples? ---------------------------------------------------------------


def test_sample_cost_counts_prompt_once_when_shared():
    shared = SampleCost(params=1e9, prompt_tokens=500, generated_tokens=100)
    assert float(shared.flops(10)) == 2e9 * (500 + 10 * 100)
    assert int(shared.samples_within(2e9 * (500 + 10 * 100))) == 10
    assert int(shared.samples_within(2e9 * 500)) == 0
    separate = SampleCost(params=1e9, prompt_tokens=500, generated_tokens=100, share_prompt=False)
    assert float(separate.flops(10)) == 2e9 * 10 * 600
    assert int(separate.samples_within(2e9 * 10 * 600 * (1 - 1e-9))) == 9


def test_more_samples_of_a_small_model_can_beat_a_big_model_at_equal_budget():
    small = fit_coverage(simulate_counts(-1.4, -0.35, n_problems=400, n_samples=1024,
                                         rng=np.random.default_rng(5)), bootstrap=200)
    big = fit_coverage(simulate_counts(-0.7, -0.3, n_problems=400, n_samples=128,
                                       rng=np.random.default_rng(6)), bootstrap=200, seed=1)
    options = [Option("8B", small, SampleCost(8e9, 200, 200)), Option("70B", big, SampleCost(70e9, 200, 200))]
    budgets = [2 * 70e9 * 400 * 0.99, 2 * 70e9 * (200 + 200 * 100)]
    res = compare_at_budget(options, budgets)
    first, second = res.rows
    # a budget below one 70B sample: only the 8B model answers
    assert first["options"]["70B"]["coverage"] is None and first["best"] == "8B"
    k_small = second["options"]["8B"]["k"]
    assert k_small == int(SampleCost(8e9, 200, 200).samples_within(budgets[1]))
    expected = {n: float(o.coverage.predict(float(second["options"][n]["k"]))) for n, o in
                (("8B", options[0]), ("70B", options[1]))}
    assert second["best"] == max(expected, key=expected.get)
    assert 0.0 <= second["p_best"] <= 1.0
    curves = res.curve([1e12, 1e15])
    assert np.isnan(curves["70B"][1][0])  # 1e12 FLOPs buys no 70B sample
    assert "a bigger model or more samples?" in res.summary().as_text()


# -- imperfect verifier ---------------------------------------------------------------------------


def test_a_perfect_verifier_gives_plug_in_coverage():
    p = np.array([0.0, 0.01, 0.3, 1.0])
    got = verified_success(p, [1, 10, 100], Verifier(1.0, 0.0))
    np.testing.assert_allclose(got, 1 - (1 - p[:, None]) ** np.array([1, 10, 100]))


def test_verified_success_matches_a_simulation_and_plateaus_at_precision():
    rng = np.random.default_rng(7)
    v = Verifier(recall=0.8, false_positive_rate=0.05)
    p, k, trials = 0.1, 20, 200_000
    correct = rng.random((trials, k)) < p
    accept = np.where(correct, rng.random((trials, k)) < v.recall, rng.random((trials, k)) < v.false_positive_rate)
    any_acc = accept.any(axis=1)
    # the answer is a random accepted sample
    pick = np.array([rng.choice(np.flatnonzero(a)) if a.any() else -1 for a in accept[:20_000]])
    sim = np.mean([correct[i, j] if j >= 0 else False for i, j in enumerate(pick)])
    theory = float(verified_success([p], [k], v)[0, 0])
    assert sim == pytest.approx(theory, abs=0.01)
    assert any_acc.mean() == pytest.approx(1 - (1 - (p * 0.8 + 0.9 * 0.05)) ** k, abs=0.003)
    assert float(verified_success([p], [10**6], v)[0, 0]) == pytest.approx(v.precision_at(p))


def test_from_precision_gives_the_false_positive_rate_that_has_that_precision():
    v = Verifier.from_precision(precision=0.8, recall=0.9, base_rate=0.3)
    assert v.precision_at(0.3) == pytest.approx(0.8)
    with pytest.raises(ParameterError, match="impossible"):
        Verifier.from_precision(precision=0.01, recall=0.9, base_rate=0.3)


def test_verifier_analysis_finds_the_ceiling_and_where_sampling_stops_helping():
    data = simulate_counts(-1.2, -0.35, n_problems=300, n_samples=512, rng=np.random.default_rng(8))
    v = Verifier(recall=0.9, false_positive_rate=0.02)
    res = analyze_verifier(data, v, tol=0.005, bootstrap=200)
    acc = np.array([e.value for e in res.accuracy])
    assert np.all(np.diff(acc) >= -1e-12) and acc[-1] == pytest.approx(res.ceiling.value, abs=1e-6)
    assert res.ceiling.value < res.coverage[-1].value  # false positives cap what sampling can reach
    k_stop = int(res.k_stop.value)
    i = list(res.ks).index(k_stop)
    assert np.all(np.diff(acc[i:]) < 0.005) and (i == 0 or acc[i] - acc[i - 1] >= 0.005)
    back = VerifierAnalysis.from_dict(json.loads(to_json(res.to_dict(include_draws=True))))
    assert back.curve([4])[0] == pytest.approx(res.curve([4])[0])


# -- loading counts ---------------------------------------------------------------------------------


def test_read_counts_per_problem_and_per_sample_files(tmp_path):
    f = tmp_path / "counts.csv"
    f.write_text("problem,n,c,model\na,10,3,small\nb,10,0,small\na,4,4,big\n")
    out = read_counts(f, model="model")
    assert set(out) == {"small", "big"}
    assert out["small"].problem_ids == ("a", "b") and out["small"].c.tolist() == [3, 0]
    s = tmp_path / "samples.jsonl"
    s.write_text("\n".join(json.dumps({"problem": p, "correct": v})
                           for p, v in [("x", True), ("x", False), ("y", 1), ("x", "yes")]) + "\n")
    (only,) = read_counts(s).values()
    assert only.model == "samples" and dict(zip(only.problem_ids, zip(only.n, only.c, strict=True),
                                                strict=True)) == {"x": (3, 2), "y": (1, 1)}


def test_per_sample_correctness_written_as_floats_counts_like_booleans(tmp_path):
    # a float column (pandas to_json, Parquet) writes 1.0 and 0.0; rows in any order
    rows = [("q2", 0.0), ("q1", 1.0), ("q2", 1.0), ("q1", 0.0), ("q1", 1.0)]
    s = tmp_path / "samples.jsonl"
    s.write_text("\n".join(json.dumps({"problem": p, "correct": v}) for p, v in rows) + "\n")
    (only,) = read_counts(s).values()
    assert dict(zip(only.problem_ids, zip(only.n.tolist(), only.c.tolist(), strict=True),
                    strict=True)) == {"q2": (2, 1), "q1": (3, 2)}


@pytest.mark.parametrize(("text", "match"), [
    ("problem,n,c\na,10,3\nb,ten,2\n", r"row 2 \(line 3\), column 'n': 'ten' is not a number"),
    ("problem,n,c\na,10,3\nb,10,11\n", r"row 2 \(line 3\), column 'c': 11 correct out of 10"),
    ("problem,n,c\na,10,3\na,10,2\n", r"row 2 \(line 3\), column 'problem': problem 'a' is listed twice"),
    ("problem,n,c\na,10,2.5\n", r"column 'c': '2.5' must be a whole number"),
    ("problem,correct\na,maybe\n", r"column 'correct': 'maybe' is not a correctness value"),
    ("problem,correct\na,1.0\nb,0.5\n", r"row 2 \(line 3\), column 'correct': '0.5' is not a correctness"),
    ("id,n,c\na,1,1\n", r"need columns 'problem'"),
])
def test_bad_counts_files_name_file_row_and_column(tmp_path, text, match):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InputError, match=match) as exc:
        read_counts(f)
    assert str(f) in str(exc.value)


def test_one_problem_with_few_samples_is_named_where_it_holds_k_down():
    n = [100] * 30 + [2]
    c = [50] * 30 + [1]
    data = counts([f"q{i}" for i in range(30)] + ["short"], n, c)
    said = r"problem 'short' has the fewest \(2; 1 of 31 problems, the rest up to 100\)"
    with pytest.raises(NotIdentifiable, match="need at least 3.*" + said):
        fit_coverage(data, bootstrap=0)
    with pytest.raises(ParameterError, match=r"fewest samples of any problem \(2\), not \[50\]; " + said):
        estimate_pass_at_k(data, k=[50], bootstrap=0)
    assert any("problem 'short' has the fewest" in n for n in estimate_pass_at_k(data, bootstrap=0).notes)
