"""`fit benchmark` keeps its notes in text, compares like with like, flags a sigmoid that falls
with compute, a model whose FLOPs are far off and a ceiling no score approaches, and predicts
targets from chosen predictors, models without FLOPs included (issue 24, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.downstream import fit_benchmark, fit_observational
from scalinglab.downstream.benchmark import compute_outliers

ROOT = Path(__file__).resolve().parents[1]
OBS = ROOT / ".." / "shared" / "data" / "ext" / "obsscaling_base_llm_benchmark_eval.csv"
needs_obs = pytest.mark.skipif(not OBS.exists(), reason=f"shared data absent: {OBS}")
BENCH = ["MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA", "GSM8K", "XWinograd", "HumanEval"]
runner = CliRunner()


def obs_args(*extra: str) -> list[str]:
    args = ["fit", "benchmark", str(OBS)]
    for b in BENCH:
        args += ["--metric", b]
    return args + ["--compute", "FLOPs (1E21)", "--compute-scale", "1e21", "--chance", "MMLU=0.25",
                   "--chance", "ARC-C=0.25", "--chance", "TruthfulQA=fit", "--fit-below", "8.4e22",
                   "--family", "Model Family", "--id", "Model", "--bootstrap", "10", *extra]


@needs_obs
def test_obsscaling_text_keeps_the_notes_compares_on_the_same_models_and_flags_what_is_off():
    res = runner.invoke(app, obs_args())
    assert res.exit_code == 0, res.output
    text = res.output
    # notes survive in text: models left out, families unseen in training
    assert "models without a compute value were left out" in text
    assert "held-out models are of families with no training model" in text
    # the observational-from-compute error sits beside the sigmoid's on the same models
    assert "MAE sigmoid, same models" in text and "models (from compute)" in text
    # the released table's BTLM-3B has 627 'T' tokens: its FLOPs are ~1000x off
    assert "cerebras/btlm-3b-8k-base: its compute 1.13e+25 FLOPs is" in text
    # TruthfulQA's sigmoid falls with compute, and no MMLU score gets halfway to the ceiling
    assert "TruthfulQA: not monotone in compute" in text
    assert "MMLU: the ceiling 1 is far above every score" in text

    out = json.loads(runner.invoke(app, obs_args("--json")).stdout)
    mmlu = out["observational"]["MMLU"]
    same = [r for r in mmlu["test"] if r["from_compute"] is not None]
    base = np.mean([abs(r["baseline"]["value"] - r["actual"]) for r in same])
    assert mmlu["mae_baseline_compute"]["value"] == pytest.approx(base)


@needs_obs
def test_a_ceiling_per_metric_and_targets_from_chosen_predictors_without_flops():
    d = pd.read_csv(OBS)
    args = ["fit", "benchmark", str(OBS), "--metric", "MMLU", "--metric", "GSM8K",
            "--predictor", "ARC-C", "--predictor", "HellaSwag", "--predictor", "Winograd",
            "--predictor", "XWinograd", "--compute", "FLOPs (1E21)", "--compute-scale", "1e21",
            "--chance", "MMLU=0.25", "--ceiling", "GSM8K=0.7", "--fit-below", "8.4e22",
            "--id", "Model", "--bootstrap", "10", "--components", "2", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    gsm = out["fits"]["GSM8K"]["link"]
    assert gsm["fixed"]["hi"] == 0.7 and out["fits"]["MMLU"]["link"]["fixed"]["hi"] == 1.0
    obs = out["observational"]["MMLU"]
    assert obs["predictors"] == ["ARC-C", "HellaSwag", "Winograd", "XWinograd"]  # not GSM8K
    no_flops = [r for r in obs["unplaced"] if r["why"] == "no FLOPs"]
    expected = d[d["FLOPs (1E21)"].isna() & d["MMLU"].notna()]
    assert len(no_flops) == len(expected) > 0
    assert obs["mae_unplaced"]["value"] < 0.1  # other benchmarks place them without FLOPs


def test_a_sigmoid_that_falls_with_compute_says_so():
    logc = np.linspace(20, 24, 30)
    y = 0.2 + 0.3 * expit(-1.5 * (logc - 22)) + np.random.default_rng(0).normal(0, 0.01, 30)
    fit = fit_benchmark(10**logc, y, metric="odd", chance=None, bootstrap=30)
    assert any(w.startswith("not monotone in compute") for w in fit.warnings)
    rising = fit_benchmark(10**logc, 0.25 + 0.7 * expit(1.5 * (logc - 22)), chance=0.25, bootstrap=30)
    assert not any("monotone" in w or "ceiling" in w for w in rising.warnings)


def test_a_model_with_flops_1000x_off_is_named_and_one_at_chance_is_not():
    rng = np.random.default_rng(1)
    logc = np.linspace(20, 25, 40)
    scores = {f"b{j}": 0.25 + 0.7 * expit(logc - 22.5 + rng.normal(0, 0.2, 40)) for j in range(4)}
    C = 10**logc
    ids = [f"m{i}" for i in range(40)]
    assert compute_outliers(C, scores, ids) == []
    C[25] *= 1000  # a mid-size model's FLOPs in the wrong units
    C[0] /= 1000  # a chance-level model: its scores cannot show it is ahead
    out = compute_outliers(C, scores, ids)
    assert len(out) == 1 and out[0].startswith("m25: its compute") and "more than its scores suggest" in out[0]


def test_observational_predicts_models_that_have_scores_but_no_flops():
    rng = np.random.default_rng(2)
    n = 60
    cap = rng.normal(0, 1, n)
    scores = {f"b{j}": expit(cap * (0.8 + 0.2 * j) + rng.normal(0, 0.1, n)) for j in range(4)}
    C = 10 ** (22 + cap)
    C[:6] = np.nan
    fit = fit_observational(scores, "b0", compute=C, fit_below=10**22.5, n_components=2, bootstrap=10)
    assert [r["why"] for r in fit.unplaced] == ["no FLOPs"] * 6
    assert fit.mae_unplaced is not None and fit.mae_unplaced.value < 0.1


@needs_obs
def test_observational_scaling_without_a_flops_column():
    # a table of benchmarks alone: the target is fitted from chosen predictors, no compute asked
    res = runner.invoke(app, ["fit", "benchmark", str(OBS), "--metric", "GSM8K", "--predictor", "MMLU",
                              "--predictor", "ARC-C", "--predictor", "HellaSwag", "--predictor",
                              "Winograd", "--compute", "no_such_column", "--components", "2",
                              "--bootstrap", "10", "--id", "Model", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["fits"] == {} and out["observational"]["GSM8K"]["predictors"] == ["MMLU", "ARC-C", "HellaSwag", "Winograd"]
    assert any("no compute column" in n for n in out["notes"])
    res = runner.invoke(app, ["fit", "benchmark", str(OBS), "--metric", "GSM8K", "--predictor", "MMLU",
                              "--compute", "no_such_column", "--fit-below", "1e22"])
    assert res.exit_code == 2 and "--fit-below needs the compute column" in res.output
