"""Benchmark accuracy vs compute: the sigmoid in log-compute, the FLOPs cut-off, and Ruan et al.'s
observational form (components, family offsets, sigmoid link)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit

from scalinglab.clikit import to_json
from scalinglab.downstream import (
    BenchmarkFit,
    BenchmarkTable,
    ObservationalFit,
    fit_benchmark,
    fit_benchmarks,
    fit_observational,
)
from scalinglab.downstream.pca import fit_components, fit_imputer
from scalinglab.errors import NotIdentifiable


def owen_models(n=40, seed=0):
    """Accuracy = 0.25 + 0.75 sigmoid(1.2 (log10 C - 23)) + noise, C from 1e20 to 1e25."""
    rng = np.random.default_rng(seed)
    C = 10 ** rng.uniform(20, 25, n)
    acc = 0.25 + 0.75 * expit(1.2 * (np.log10(C) - 23.0)) + rng.normal(0, 0.01, n)
    return C, acc


def test_sigmoid_in_log_compute_recovers_slope_and_midpoint_with_chance_floor():
    C, acc = owen_models(n=60)
    fit = fit_benchmark(C, acc, metric="mmlu", chance=0.25, bootstrap=150)
    assert fit.link.params["lo"] == 0.25 and fit.link.params["hi"] == 1.0
    assert fit.link.params["s"] == pytest.approx(1.2, rel=0.1)
    assert fit.link.params["x0"] == pytest.approx(23.0, abs=0.1)
    assert fit.link.ci["x0"][0] <= 23.0 <= fit.link.ci["x0"][1]
    assert fit.mae is None and not fit.test  # nothing held out


def test_fit_below_fits_the_small_models_and_scores_the_large_ones():
    C, acc = owen_models(n=50, seed=1)
    C[3] = np.nan  # a model without a FLOPs figure is in neither set
    cut = 1e23
    fit = fit_benchmark(C, acc, chance=0.25, fit_below=cut, model_ids=[f"m{i}" for i in range(50)],
                        bootstrap=100)
    below = np.isfinite(C) & (C <= cut)
    assert len(fit.link.x) == below.sum() and len(fit.test) == (np.isfinite(C) & (C > cut)).sum()
    assert fit.n_without_compute == 1 and "m3" not in fit.run_ids + fit.heldout_ids
    errors = [abs(r["predicted"].value - r["actual"]) for r in fit.test]
    assert fit.mae.value == pytest.approx(np.mean(errors))
    assert fit.mae.value < 0.05  # the law holds beyond the cut: small models predict big ones
    lo, hi = fit.extrapolation_region
    assert lo == pytest.approx(np.nanmax(C[below])) and hi == pytest.approx(np.nanmax(C))
    point, lo_b, hi_b = fit.curve([1e21, 1e25])
    assert np.all(lo_b <= point) and np.all(point <= hi_b)


def test_no_model_below_the_cut_is_not_identifiable():
    C, acc = owen_models(n=10)
    with pytest.raises(NotIdentifiable, match="no model"):
        fit_benchmark(C, acc, fit_below=1e10)


def test_benchmark_table_fits_each_metric_with_its_own_floor():
    C, acc = owen_models(n=40, seed=2)
    table = fit_benchmarks(C, {"four_way": acc, "open": (acc - 0.25) / 0.75},
                           chance={"four_way": 0.25, "open": 0.0}, fit_below=1e24, bootstrap=50)
    assert table["four_way"].link.params["lo"] == 0.25 and table["open"].link.params["lo"] == 0.0
    back = BenchmarkTable.from_dict(json.loads(to_json(table.to_dict(include_draws=True))))
    assert back["open"].mae.value == pytest.approx(table["open"].mae.value)
    assert "MAE sigmoid(log C)" in table.summary().as_text()
    one = BenchmarkFit.from_dict(json.loads(to_json(table["open"].to_dict())))
    assert one.test[0]["predicted"].value == pytest.approx(table["open"].test[0]["predicted"].value)


def test_iterative_imputation_fills_rank_one_data_exactly():
    rng = np.random.default_rng(3)
    z = rng.normal(size=30)
    X = np.column_stack([0.5 + 0.1 * z, 0.3 + 0.2 * z, 0.7 - 0.05 * z, 0.4 + 0.3 * z])
    holes = X.copy()
    holes[[1, 5, 9], [0, 2, 3]] = np.nan
    imputer, filled = fit_imputer(holes, rank=1, tol=1e-12)
    np.testing.assert_allclose(filled, X, atol=1e-8)
    other = X[:4].copy()
    other[0, 1] = np.nan
    np.testing.assert_allclose(imputer.fill(other), X[:4], atol=1e-8)
    comps = fit_components(X, 2)
    assert comps.explained[0] == pytest.approx(1.0)
    assert comps.loadings[:, 0].sum() > 0  # signed so that higher is more capable


def ruan_models(seed=0, n_per_family=12):
    """Three families, each ``offset`` decades more compute-efficient; six benchmarks are
    sigmoids of the effective compute log10 C + offset."""
    rng = np.random.default_rng(seed)
    offsets = {"base": 0.0, "efficient": 1.0, "wasteful": -0.7}
    logC, fam = [], []
    for f in offsets:
        logC += list(rng.uniform(20.5, 24.5, n_per_family))
        fam += [f] * n_per_family
    logC = np.array(logC)
    fam = np.array(fam, dtype=object)
    z = logC + np.array([offsets[f] for f in fam])
    mids = [21.5, 22.0, 22.5, 23.0, 23.5, 24.0]
    scores = {f"bench{j}": 0.25 + 0.75 * expit(0.6 * (z - m)) + rng.normal(0, 0.01, len(z))
              for j, m in enumerate(mids)}
    return scores, 10 ** logC, fam, offsets


def test_observational_fit_recovers_family_compute_offsets():
    scores, C, fam, offsets = ruan_models()
    fit = fit_observational(scores, "bench3", compute=C, family=fam, n_components=2, chance=0.25,
                            reference_family="base", bootstrap=60)
    assert fit.reference_family == "base" and fit.families["base"].value == 0.0
    for f, true in offsets.items():
        est = fit.families[f]
        assert est.value == pytest.approx(true, abs=0.2), (f, est)
    assert fit.explained[0].value > 0.9
    assert "bench3" not in fit.predictors
    # the chance floor and ceiling are held, and said so (a bare "0.25" read as unbootstrapped)
    link = {r[0]: r[1] for r in fit.summary().tables[1].texts()}
    assert link["lo"] == "0.25 (fixed)" and link["hi"] == "1 (fixed)" and link["alpha"].count("[") == 1
    assert type(fit).from_dict(fit.to_dict()).link_fixed == ("lo", "hi")


def test_observational_prediction_beats_the_compute_only_baseline_across_families():
    scores, C, fam, _ = ruan_models(seed=1)
    fit = fit_observational(scores, "bench5", compute=C, family=fam, fit_below=10**23.3,
                            n_components=2, chance=0.25, model_ids=[f"m{i}" for i in range(len(C))],
                            bootstrap=60)
    assert fit.test and fit.mae_scores is not None and fit.mae_baseline is not None
    # the baseline cannot know a family's efficiency; the capability scores can
    assert fit.mae_scores.value < 0.5 * fit.mae_baseline.value
    assert fit.gain.value > 0 and fit.gain.lo > 0
    # from compute alone, through the family offsets, beats the plain curve too
    assert fit.mae_compute.value < fit.mae_baseline_compute.value
    assert fit.baseline is not None and len(fit.baseline.link.x) == len(fit.run_ids)
    back = ObservationalFit.from_dict(json.loads(to_json(fit.to_dict())))
    assert back.mae_scores.value == pytest.approx(fit.mae_scores.value)
    text = fit.summary().as_text()
    assert "compute efficiency" in text and "held-out models" in text


def test_the_target_never_enters_its_own_components():
    scores, C, fam, _ = ruan_models(seed=2)
    scores["leak"] = scores["bench2"] * 1.0
    fit = fit_observational(scores, "leak", compute=C, family=fam, n_components=2, bootstrap=0)
    assert "leak" not in fit.predictors and len(fit.predictors) == 6
