"""Chained downstream predictions are new-model intervals: they carry the link's model-to-model
scatter, cover held-out truths at their nominal rate, and never show an impossible value (an
error rate below 0, an asymptote above 1) without saying so (issue 24, item 1)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from scalinglab.downstream import EXP_LINK, chain, fit_link
from scalinglab.downstream.chain import new_model_draws
from scalinglab.fit.loss import fit_arrays
from scalinglab.laws.loss import power_law

ROOT = Path(__file__).resolve().parents[1]
GADRE = ROOT / ".." / "shared" / "data" / "ext" / "gadre_downstream_rpj.csv"
needs_gadre = pytest.mark.skipif(not GADRE.exists(), reason=f"shared data absent: {GADRE}")


def bench():
    spec = importlib.util.spec_from_file_location("bench_chain_coverage",
                                                  ROOT / "benchmarks" / "bench_chain_coverage.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@needs_gadre
def test_chained_intervals_cover_held_out_gadre_models_at_their_nominal_rate():
    # The case that exposed it: the authors' split (loss law on 5 runs, link on 6 models), every
    # other model from 79M to 6.9B predicted. Parameter uncertainty alone covered 83% of the
    # averaged errors and 64% of the 46 task errors; the new-model interval must reach ~95%.
    import pandas as pd

    mod = bench()
    d = pd.read_csv(GADRE)
    law, link, held = mod.splits(d)["gadre"]
    cov = mod.coverage(d, law, link, held, bootstrap=100)
    curve_hits, new_hits, total = cov["46 tasks"]
    assert total == 46 * 23
    assert new_hits / total >= 0.92  # nominal 95%, 1058 targets (not independent: 23 models)
    assert curve_hits / total < 0.8  # what the tool used to show
    curve_hits, new_hits, total = cov["averages"]
    assert new_hits / total >= 0.9 and new_hits >= curve_hits


def test_a_six_point_link_does_not_show_negative_error_rates_without_a_warning():
    # A link fitted on 6 noisy points, chained 2 nats of loss below them: its raw interval runs
    # below 0. The interval shown is clipped to [0, 1] and a warning names the metric.
    rng = np.random.default_rng(0)
    L = np.linspace(2.8, 4.5, 6)
    y = EXP_LINK.law({"eps": 0.8, "k": 2.5, "gamma": 0.8}, L=L) + rng.normal(0, 0.02, 6)
    link = fit_link(L, y, "exp", metric="err", bootstrap=100)
    law = power_law("C").with_params({"E": 1.5, "A": 2000.0, "alpha": 0.16}, label="law")
    pred = chain(law, link, 1e11, 1e13)
    est = pred.metrics["err"][0]
    assert 0.0 <= est.lo <= est.value <= est.hi <= 1.0
    warning = next(w for w in pred.warnings if w.startswith("impossible values"))
    # the raw interval is named, and it is impossible; the interval shown is clipped and says so
    raw = warning.split("err at N=1e+11, D=1e+13: ")[1].split(";")[0].split(")")[0]
    assert float(raw.split("[")[1].split(",")[0]) < 0
    assert "clipped to [0, 1]" in warning
    assert pred.curve["err"][0].lo >= 0.0


@needs_gadre
def test_an_asymptote_above_one_is_flagged_on_the_gadre_17_task_link():
    # Gadre et al.'s 17-task link from their 6 models: eps = 0.857 but its interval reaches
    # above 1, an error rate no model can have.
    import pandas as pd

    d = pd.read_csv(GADRE)
    t = d[((d.tok_mult == 20) & (d.N < 1e9)) | ((d.N < 2e7) & (d.tok_mult == 320))
          | ((d.model == "open_lm_1b") & (d.tok_mult == 20))]
    fit = fit_link(t.loss_c4_val, t.err_avg_subset, "exp", metric="err", bootstrap=100)
    assert fit.ci["eps"][1] > 1.0
    assert any(w.startswith("eps = 0.857") and "leaves [0, 1]" in w for w in fit.warnings)


def test_the_new_model_scatter_is_the_links_residual_spread_with_students_t():
    # With a known link and no parameter uncertainty, the new-model draws spread by exactly the
    # link's residual scatter: t with points - free parameters degrees of freedom.
    rng = np.random.default_rng(0)
    L = np.linspace(2.5, 4.5, 12)
    y = EXP_LINK.law({"eps": 0.8, "k": 2.5, "gamma": 0.8}, L=L) + rng.normal(0, 0.01, 12)
    link = fit_link(L, y, "exp", bootstrap=0)
    assert link.dof == 9
    draws = new_model_draws(link, np.full((1, 1), 3.0), None, float("nan"), np.random.default_rng(1))
    from scipy.stats import t

    half = (np.quantile(draws, 0.975) - np.quantile(draws, 0.025)) / 2
    assert half == pytest.approx(t.ppf(0.975, 9) * link.residual_std, rel=0.08)
    assert float(np.median(draws)) == pytest.approx(float(link.predict(3.0)), abs=link.residual_std / 5)


def test_a_fitted_loss_laws_noise_moves_the_loss_fed_to_the_link():
    rng = np.random.default_rng(1)
    law = power_law("C")
    C = np.geomspace(1e17, 1e20, 16)
    loss = law({"E": 1.8, "A": 2000.0, "alpha": 0.16}, C=C) * np.exp(rng.normal(0, 0.01, 16))
    loss_fit = fit_arrays(law, {"C": C}, loss, bootstrap=50, seed=0)
    L2 = np.linspace(2.2, 3.0, 10)
    link = fit_link(L2, EXP_LINK.law({"eps": 0.8, "k": 2.5, "gamma": 0.8}, L=L2)
                    + rng.normal(0, 0.002, 10), "exp", bootstrap=50)
    pred = chain(loss_fit, link, 1e9, 1e19 / 6e9)
    curve, new = pred.loss_curve[0], pred.loss[0]
    assert new.hi - new.lo > curve.hi - curve.lo
    assert any("run-to-run noise" in n for n in pred.notes)
    m_new, m_curve = pred.metrics["metric"][0], pred.curve["metric"][0]
    assert m_new.hi - m_new.lo > m_curve.hi - m_curve.lo
    back = type(pred).from_dict(pred.to_dict())
    assert back.curve["metric"][0].ci == pytest.approx(m_curve.ci)
    assert back.loss_curve[0].ci == pytest.approx(curve.ci)
