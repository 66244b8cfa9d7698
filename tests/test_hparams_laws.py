"""Built-in hyperparameter laws against hand-computed values, and their provenance."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.laws.hparams import (
    ADAMW_TIMESCALE,
    DEEPSEEK,
    LINEAR_RULE_SGD,
    SQRT_RULE_ADAM,
    STEP_LAW,
    WEIGHT_DECAY_FOR_TAU,
    loglinear_law,
    range_warnings,
    steplaw_bootstrap,
)

BOOT_CSV = Path("../shared/data/steplaw/1004_fitted_lr_bs_scaling_model_parameters.csv")


def test_step_law_matches_hand_computed_values():
    # 1.79 * 10^(9 * -0.713) * 10^(11 * 0.307) = 1.79 * 10^-3.04 ; 0.58 * 10^(11 * 0.571)
    pred = STEP_LAW.predict(N=1e9, D=1e11)
    assert pred["lr"] == pytest.approx(1.79 * 10**-3.04, rel=1e-9)
    assert pred["lr"] == pytest.approx(1.6325e-3, rel=1e-4)
    assert pred["batch_tokens"] == pytest.approx(1.10772e6, rel=1e-4)


def test_deepseek_uses_compute_6ND():
    # N=1e9, D=1e21/6e9 -> C = 1e21: lr = 0.3118 * 10^-2.625, batch = 0.2920 * 10^6.8691
    pred = DEEPSEEK.predict(N=1e9, D=1e21 / 6e9)
    assert pred["lr"] == pytest.approx(7.3941e-4, rel=1e-4)
    assert pred["batch_tokens"] == pytest.approx(2.16012e6, rel=1e-4)


def test_laws_broadcast_over_arrays():
    pred = STEP_LAW.predict(N=np.array([1e8, 1e9]), D=1e10)
    assert pred["lr"].shape == (2,)
    assert pred["lr"][0] > pred["lr"][1]  # bigger models want smaller lr


def test_adamw_timescale_and_weight_decay_are_inverse():
    tau = ADAMW_TIMESCALE.predict(batch_tokens=1e6, lr=1e-3, weight_decay=0.1, D=1e11)
    assert tau == pytest.approx(0.1)  # 1e6 / (1e-3 * 0.1 * 1e11)
    wd = WEIGHT_DECAY_FOR_TAU.predict(batch_tokens=1e6, lr=1e-3, tau=0.1, D=1e11)
    assert wd == pytest.approx(0.1)


def test_lr_transfer_rules_are_sqrt_for_adam_and_linear_for_sgd():
    kw = {"lr": 3e-4, "batch_tokens": 5e5, "new_batch_tokens": 2e6}
    assert SQRT_RULE_ADAM.predict(**kw) == pytest.approx(6e-4)
    assert LINEAR_RULE_SGD.predict(**kw) == pytest.approx(1.2e-3)
    assert "rule, not a fit" in SQRT_RULE_ADAM.provenance.notes


def test_every_published_law_states_source_units_and_range():
    for law in (STEP_LAW, DEEPSEEK):
        prov = law.provenance
        assert prov.source and prov.url and prov.units
        assert prov.valid_range


def test_loglinear_law_rejects_unknown_features():
    with pytest.raises(ValueError, match="features"):
        loglinear_law("lr", ("params",))


def test_shipped_bootstrap_summary_has_the_published_means():
    s = steplaw_bootstrap()
    assert s["n"] == 1000
    mean = s["mean"]
    assert np.exp(mean[0]) == pytest.approx(1.797, abs=5e-4)
    assert mean[1] == pytest.approx(-0.7129, abs=5e-5)
    assert mean[2] == pytest.approx(0.3075, abs=5e-5)
    assert np.exp(mean[3]) == pytest.approx(0.5807, abs=5e-4)
    assert mean[4] == pytest.approx(0.5709, abs=5e-5)
    cov = np.array(s["cov"])
    assert cov.shape == (5, 5)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_step_law_interval_brackets_the_point_and_widens_when_extrapolating():
    inside = STEP_LAW.interval(N=5e8, D=5e10)
    far = STEP_LAW.interval(N=1e11, D=1e13)
    point = STEP_LAW.predict(N=5e8, D=5e10)
    lo, hi = inside["lr"]
    assert lo < point["lr"] < hi
    assert np.log(far["lr"][1] / far["lr"][0]) > 3 * np.log(hi / lo)


def test_deepseek_has_no_interval():
    assert DEEPSEEK.interval(N=1e9, D=2e10) is None


@pytest.mark.skipif(not BOOT_CSV.exists(), reason="shared Step Law data not present")
def test_step_law_band_matches_the_authors_bootstrap_fits():
    draws = pd.read_csv(BOOT_CSV)
    for N, D in ((2.7e8, 1.4e10), (1e9, 1e11)):
        ln_lr = draws.lr_intercept + draws.lr_coefN * np.log(N) + draws.lr_coefD * np.log(D)
        emp_lo, emp_hi = np.exp(np.quantile(ln_lr, [0.025, 0.975]))
        lo, hi = STEP_LAW.interval(N=N, D=D)["lr"]
        # same width (Gaussian summary vs empirical quantiles) and overlapping centres
        assert np.log(hi / lo) == pytest.approx(np.log(emp_hi / emp_lo), rel=0.1)
        assert lo < np.exp(np.median(ln_lr)) < hi


def test_range_warnings_name_the_range_and_the_factor():
    ws = STEP_LAW.check_range(N=1e11, D=5e10)
    assert any("N = 1e+11" in w and "[2.1e+08, 1.1e+09]" in w for w in ws)
    assert STEP_LAW.check_range(N=5e8, D=5e10) == []
    assert DEEPSEEK.check_range(N=7e10, D=2e12)  # C = 8.4e23 far above 2e19


def test_range_warnings_catch_tokens_per_parameter_off_the_fitted_band():
    valid = {"N": (1e8, 1e10), "D": (1e9, 1e11), "TPP": (5.0, 50.0)}
    ws = range_warnings(valid, N=1e10, D=1e9, what="the law")  # N and D inside, D/N = 0.1
    assert ws == ["D/N = 0.1 is outside the range of the law [5, 50] (x50 beyond); extrapolating"]
