"""The planner's invariants, intervals, warnings and arithmetic (`make_plan`)."""

import json
import math

import numpy as np
import pytest

from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.fit.result import FitResult
from scalinglab.hparams.timescale import TauFit
from scalinglab.laws.hparams import ADAMW_TIMESCALE, DEEPSEEK, STEP_LAW, TAU_LAW
from scalinglab.laws.loss import CHINCHILLA, HOFFMANN_2022, chinchilla_optimum
from scalinglab.plan import make_plan


@pytest.fixture
def fitted_law_json(tmp_path):
    """A saved Chinchilla fit with bootstrap draws scattered around Hoffmann's numbers."""
    rng = np.random.default_rng(0)
    base = np.array([HOFFMANN_2022.params[k] for k in CHINCHILLA.param_names])
    boot = base * (1 + 0.02 * rng.standard_normal((200, 5)))
    fit = FitResult(law=CHINCHILLA, params=dict(HOFFMANN_2022.params),
                    run_ids=tuple(f"r{i}" for i in range(50)), objective=0.0,
                    draws=boot, data_range={"N": (1e7, 1e9), "D": (1e8, 1e11)})
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fit.to_dict(include_draws=True)))
    return path


@pytest.mark.parametrize("law", ["hoffmann2022", "besiroglu2024"])
def test_compute_optimal_plan_spends_exactly_the_budget(law):
    plan = make_plan(compute=1e21, loss_law=law)
    spent = 6 * plan.N * plan.D
    assert spent == pytest.approx(1e21, rel=1e-9)
    assert plan.train_flops == pytest.approx(1e21) and plan.mode == "compute-optimal"


def test_optimum_is_the_closed_form_chinchilla_allocation():
    n, d = chinchilla_optimum(HOFFMANN_2022.params, 1e21)
    plan = make_plan(compute=1e21)
    got = [plan.N, plan.D]
    assert got == pytest.approx([float(n), float(d)])


def test_N_and_D_grow_with_compute():
    plans = [make_plan(compute=c) for c in np.geomspace(1e19, 1e25, 7)]
    assert all(b.N > a.N and b.D > a.D for a, b in zip(plans, plans[1:], strict=False))
    assert all(b.loss < a.loss for a, b in zip(plans, plans[1:], strict=False))


def test_inference_tokens_shift_to_smaller_longer_trained_models():
    base = make_plan(compute=1e22)
    served = make_plan(compute=1e22, inference_tokens=1e12)
    assert served.N < base.N and served.tokens_per_param > base.tokens_per_param
    assert served.total_flops == pytest.approx(1e22, rel=1e-9)
    assert served.inference_flops == pytest.approx(2 * served.N * 1e12)


def test_published_law_has_no_loss_interval_and_says_why():
    plan = make_plan(compute=1e21)
    assert plan.loss_interval is None and plan.N_interval is None
    assert plan.loss_interval_source.startswith("no interval")


def test_fitted_law_gives_loss_and_allocation_intervals(fitted_law_json):
    plan = make_plan(compute=1e19, loss_law=fitted_law_json)
    lo, hi = plan.loss_interval
    assert lo < plan.loss < hi
    assert plan.N_interval[0] < plan.N < plan.N_interval[1]
    assert "200 bootstrap draws" in plan.loss_interval_source


def test_out_of_range_requests_warn_with_the_range(fitted_law_json):
    plan = make_plan(compute=1e26, loss_law=fitted_law_json)
    assert any(w.startswith("N = ") and "[1e+07, 1e+09]" in w for w in plan.warnings)
    assert any("hparam law 'steplaw'" in w for w in plan.warnings)
    plan = make_plan(params=1e11, tokens=2e12, hparams_law="deepseek")
    assert any("C = 6ND" in w and "[1e+17, 2e+19]" in w for w in plan.warnings)
    assert any("loss law 'hoffmann2022'" in w for w in plan.warnings)


def test_given_params_and_tokens_plan_arithmetic():
    plan = make_plan(params=4e8, tokens=2e10, seq_len=2048)
    pred = STEP_LAW.predict(4e8, 2e10)
    assert plan.train_flops == pytest.approx(6 * 4e8 * 2e10)
    assert plan.batch_sequences % 8 == 0 and plan.batch_tokens == plan.batch_sequences * 2048
    assert plan.batch_tokens_law == pytest.approx(float(pred["batch_tokens"]))
    assert abs(plan.batch_tokens / plan.batch_tokens_law - 1) < 8 * 2048 / plan.batch_tokens_law
    # lr follows the batch actually used through the square-root rule
    assert plan.lr == pytest.approx(float(pred["lr"]) * math.sqrt(
        plan.batch_tokens / plan.batch_tokens_law))
    assert plan.steps == math.ceil(2e10 / plan.batch_tokens)
    # the weight decay reproduces the stated timescale
    tau = ADAMW_TIMESCALE.predict(batch_tokens=plan.batch_tokens, lr=plan.lr,
                                  weight_decay=plan.weight_decay, D=plan.D)
    assert tau == pytest.approx(plan.tau) and plan.tau == 0.2


def test_power_of_two_batch_option():
    plan = make_plan(params=4e8, tokens=2e10, batch_round="pow2")
    assert plan.batch_sequences & (plan.batch_sequences - 1) == 0


def test_two_of_three_fix_the_run():
    a = make_plan(compute=1e21, params=1e9)
    got = [a.N, a.D]
    assert got == pytest.approx([1e9, 1e21 / 6e9])
    b = make_plan(compute=1e21, tokens=1e11)
    got = [b.N, b.D]
    assert got == pytest.approx([1e21 / 6e11, 1e11])
    with pytest.raises(ParameterError, match="two of"):
        make_plan(params=1e9)
    with pytest.raises(ParameterError, match="two of"):
        make_plan(compute=1e21, params=1e9, tokens=1e11)


def test_deepseek_hparams_and_a_fitted_tau_law():
    tau_fit = TauFit(law=TAU_LAW.with_params({"intercept": np.log(0.8), "coef_TPP": -0.5}),
                     draws=None, groups=[])
    plan = make_plan(params=1e9, tokens=2.5e10, hparams_law=DEEPSEEK, tau=tau_fit)
    assert plan.lr_law == pytest.approx(float(DEEPSEEK.predict(1e9, 2.5e10)["lr"]))
    assert plan.tau == pytest.approx(0.8 * 25 ** -0.5)
    assert plan.lr_interval is None


def test_plan_to_dict_is_plain_json():
    d = make_plan(compute=1e21).to_dict()
    assert json.loads(json.dumps(d))["N"] == d["N"]


def test_a_loss_law_without_both_N_and_D_cannot_plan():
    from scalinglab.laws.loss import power_law

    fit = FitResult(law=power_law("C"), params={"E": 1.7, "A": 10.0, "alpha": 0.05},
                    run_ids=tuple("abcde"), objective=0.0)
    with pytest.raises(ParameterError, match="does not depend on both N and D"):
        make_plan(compute=1e21, loss_law=fit)


def test_library_errors_name_python_parameters_not_flags():
    from scalinglab.errors import ScalingLabError

    ClickException = next(c for c in __import__("typer").BadParameter.__mro__
                          if c.__name__ == "ClickException")
    with pytest.raises(ScalingLabError) as info:
        make_plan(compute=-1)
    assert not isinstance(info.value, ClickException)
    assert "compute must be a positive number" in str(info.value) and "--" not in str(info.value)


def test_the_lr_interval_holds_the_planned_lr_when_the_batch_is_not_the_laws():
    """The lr moves from the law's batch to the planned one by the square-root rule; its interval
    moves with it (a report once showed lr 3.2e-4 beside [7.7e-4, 9.5e-4], the law's own)."""
    law = make_plan(params=4e8, tokens=2e10)
    small = make_plan(params=4e8, tokens=2e10, batch_tokens=131_072)
    assert small.lr < law.lr_law  # a much smaller batch than the law's
    lo, hi = small.lr_interval
    assert lo < small.lr < hi
    assert small.lr_law_interval == law.lr_law_interval
    ratio = small.lr / small.lr_law
    assert [lo, hi] == pytest.approx([x * ratio for x in small.lr_law_interval])


def test_a_plan_from_a_fit_with_unidentified_parameters_says_so():
    from scalinglab.fit import fit_chinchilla

    rng = np.random.default_rng(0)
    # every run at nearly one D: B and beta cannot be told apart from E
    N = np.geomspace(1e7, 1e9, 12)
    D = np.full_like(N, 2e9) * rng.uniform(0.99, 1.01, N.size)
    loss = 1.8 + 400 / N**0.34 + 410 / D**0.28
    fit = fit_chinchilla(N, D, loss * np.exp(rng.normal(0, 0.003, N.size)), bootstrap=20)
    assert fit.unidentified
    with pytest.raises(NotIdentifiable, match="no compute-optimal plan"):
        make_plan(compute=1e21, loss_law=fit)  # refused: N and D would rest on B and beta
    plan = make_plan(compute=1e21, loss_law=fit, allow_unidentified=True)
    assert plan.warnings[0].startswith("NOT IDENTIFIED: the loss law's fit")


def test_a_budget_too_small_for_one_batch_is_refused_not_planned():
    # 1e3 FLOPs: Chinchilla's optimum is 14 parameters and 12 tokens, under one 16,384-token
    # batch; a plan of "1 step" would train 16,384 tokens, not 12
    with pytest.raises(ParameterError, match=r"too small a budget to plan: D = 12.3 tokens is "
                       r"less than one batch of 16,384 tokens \(8 x 2048\)"):
        make_plan(compute=1e3)
    with pytest.raises(ParameterError, match="less than one batch"):
        make_plan(params=1e6, tokens=1000)
    # nor a model of less than one parameter, as one of less than one token is refused
    with pytest.raises(ParameterError, match=r"compute 1e\+20 is too small for D = 1e\+21 tokens"):
        make_plan(compute=1e20, tokens=1e21)
    # a smaller batch fits the same budget: refused for the batch, not the budget
    assert make_plan(compute=1e9, batch_round="none").steps >= 1
