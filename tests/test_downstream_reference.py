"""Published downstream numbers, reproduced from the authors' released data (skipped when
``../shared/data/ext`` is absent)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.downstream import chain, fit_link, fit_observational

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "ext"
GADRE = DATA / "gadre_downstream_rpj.csv"
OBS = DATA / "obsscaling_base_llm_benchmark_eval.csv"
needs_gadre = pytest.mark.skipif(not GADRE.exists(), reason=f"shared data absent: {GADRE}")
needs_obs = pytest.mark.skipif(not OBS.exists(), reason=f"shared data absent: {OBS}")


def repro_module():
    spec = importlib.util.spec_from_file_location("repro_downstream", ROOT / "benchmarks" / "repro_downstream.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def gadre_link_runs(d: pd.DataFrame) -> pd.Series:
    """The six models the authors fitted the link on: the four small ones at M=20, the 11M one
    at M=320 and the 1.4B one at M=20."""
    return (((d.tok_mult == 20) & (d.N < 1e9)) | ((d.N < 2e7) & (d.tok_mult == 320))
            | ((d.model == "open_lm_1b") & (d.tok_mult == 20)))


@needs_gadre
def test_gadre_17_task_link_is_reproduced_from_the_authors_six_models():
    d = pd.read_csv(GADRE)
    t = d[gadre_link_runs(d)]
    assert len(t) == 6
    fit = fit_link(t.loss_c4_val, t.err_avg_subset, "exp", bootstrap=50)
    assert fit.params["k"] == pytest.approx(2.2065, rel=1e-3)
    assert fit.params["gamma"] == pytest.approx(0.71459, rel=1e-3)
    assert fit.params["eps"] == pytest.approx(0.85699, rel=1e-3)


@needs_gadre
def test_gadre_chained_predictions_through_the_published_loss_law():
    repro = repro_module()
    d = pd.read_csv(GADRE)
    t = d[gadre_link_runs(d)]
    link = fit_link(t.loss_c4_val, t.err_avg_subset, "exp", metric="err", bootstrap=50)
    targets = [(1439795200.0, 640, 0.0364, 0.0071), (6889410560.0, 20, 0.0005, 0.0073)]
    pred = chain(repro.GADRE_LOSS_LAW, link, [n for n, *_ in targets], [n * m for n, m, *_ in targets])
    for i, (n, m, pub_err, pub_loss) in enumerate(targets):
        row = d[(np.isclose(d.N, n, rtol=1e-3)) & (d.tok_mult == m)].iloc[0]
        rel_err = abs(pred.metrics["err"][i].value - row.err_avg_subset) / row.err_avg_subset
        rel_loss = abs(pred.loss[i].value - row.loss_c4_val) / row.loss_c4_val
        assert rel_err == pytest.approx(pub_err, abs=5e-4)
        assert rel_loss == pytest.approx(pub_loss, abs=5e-5)
        assert pred.metrics["err"][i].lo <= row.err_avg_subset <= pred.metrics["err"][i].hi


@needs_obs
def test_observational_fit_runs_on_the_public_models_with_a_cut_off():
    d = pd.read_csv(OBS)
    bench = ["MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA", "GSM8K", "XWinograd", "HumanEval"]
    fit = fit_observational({b: d[b].to_numpy(float) for b in bench}, "GSM8K",
                            compute=d["FLOPs (1E21)"].to_numpy(float) * 1e21, family=list(d["Model Family"]),
                            fit_below=8.4e22, model_ids=list(d.Model), bootstrap=20)
    n_flops = int(np.isfinite(d["FLOPs (1E21)"]).sum())
    assert len(fit.run_ids) + len(fit.test) == n_flops  # every model with FLOPs is in one set
    assert all(r["C"] > 8.4e22 for r in fit.test)
    assert fit.mae_scores is not None and fit.mae_baseline is not None
    assert fit.families[fit.reference_family].value == 0.0


@pytest.mark.slow
@needs_gadre
@needs_obs
def test_the_reproduction_section_has_the_agreed_row_shape():
    rows = repro_module().section(bootstrap=20)
    keys = {"paper", "figure", "published", "ours", "ci", "inside", "note"}
    assert rows and all(set(r) == keys for r in rows)
    link_rows = [r for r in rows if "link Err(L)" in r["figure"]]
    assert len(link_rows) == 3 and all(r["inside"] for r in link_rows)
    assert any("not identifiable" in r["note"] for r in rows)  # untied law on the 5 runs


def test_the_reproduction_section_says_when_the_data_is_absent(tmp_path, monkeypatch):
    repro = repro_module()
    monkeypatch.setattr(repro, "DATA", tmp_path)
    rows = repro.section(bootstrap=0)
    assert len(rows) == 2 and all("data absent" in r["note"] and r["ours"] is None for r in rows)
