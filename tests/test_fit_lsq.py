"""The linear-scale engine: variable projection, targets of any sign, signs kept, row order,
several outputs and groups — each on a synthetic law with a known answer."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import sympy as sp

import scalinglab as sl
from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.fit import lsq
from scalinglab.fit.forward import forward_moved
from scalinglab.fit.loss import choose_scale
from scalinglab.laws.formula import parse_formula


def _runs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return 10 ** rng.uniform(7.5, 10, n), 10 ** rng.uniform(9, 11.5, n)


def test_linear_parameters_are_found_symbolically():
    p = parse_formula("E + A*N**-alpha + B*D**-beta", ("N", "D"))
    syms = [p.symbols[k] for k in p.params]
    assert [p.params[j] for j in lsq.linear_params([p.expr], syms)] == ["E", "A", "B"]
    # A*B*x is linear in A and in B but not in both: only the first is projected
    q = parse_formula("c + A*B*x**k", ("x",))
    assert [q.params[j] for j in lsq.linear_params([q.expr], [q.symbols[k] for k in q.params])] == ["c", "A"]
    # inside exp, max or a power, a parameter is nonlinear
    r = parse_formula("exp(a*x) + max(b, 1e-6)*x + c**2*x", ("x",))
    assert lsq.linear_params([r.expr], [r.symbols[k] for k in r.params]) == []


def test_variable_projection_recovers_chinchilla_exactly_without_noise():
    N, D = _runs()
    truth = {"E": 1.82, "A": 514.0, "alpha": 0.35, "B": 2115.0, "beta": 0.37}
    y = truth["E"] + truth["A"] * N ** -truth["alpha"] + truth["B"] * D ** -truth["beta"]
    law = sl.Law.from_formula("E + A*N**-alpha + B*D**-beta", inputs=("N", "D"),
                              bounds={"alpha": (0.01, 2), "beta": (0.01, 2)})
    fit = sl.fit_arrays(law, {"N": N, "D": D}, y, bootstrap=0, scale="linear")
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-5)
    assert fit.info.search["linear"] == ["E", "A", "B"]
    assert fit.info.n_reached_best >= 2  # found from several distinct starts, not fragile
    assert not any("fragile" in w for w in fit.warnings)


def test_negative_targets_are_fitted_on_the_linear_scale_by_default_and_said():
    # a normalised loss: negative everywhere, as ScaleBench's vocabulary task
    N, D = _runs(seed=1)
    y = -3.1 + 40.0 * N ** -0.2 - 15.0 * D ** -0.1
    assert choose_scale(None, y)[0] == "linear"
    assert choose_scale(None, np.abs(y))[0] == "log"
    law = sl.Law.from_formula("c + a*N**-alpha + b*D**-beta", inputs=("N", "D"),
                              bounds={"alpha": (0, 1), "beta": (0, 1)})
    fit = sl.fit_arrays(law, {"N": N, "D": D}, y, bootstrap=0)
    assert any("linear scale" in n for n in fit.notes)
    assert "linear scale" in repr(fit.summary().to_dict() if hasattr(fit.summary(), "to_dict") else fit.summary())
    assert fit.params["c"] == pytest.approx(-3.1, rel=1e-4)
    assert fit.params["b"] == pytest.approx(-15.0, rel=1e-3)  # its sign is kept, not forced positive
    assert fit.params["beta"] == pytest.approx(0.1, rel=1e-3)
    with pytest.raises(ParameterError, match="scale must be"):
        sl.fit_arrays(law, {"N": N, "D": D}, y, bootstrap=0, scale="sqrt")


def test_offset_keeps_its_sign_and_bounded_linear_parameters_stay_inside():
    x = np.linspace(1, 10, 40)
    y = -111.0 + 5.0 * x ** 0.5
    law = sl.Law.from_formula("c0 + c1*x**k", inputs=("x",), bounds={"k": (0.1, 2)})
    fit = sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear")
    assert fit.params["c0"] == pytest.approx(-111.0, rel=1e-6)
    # a bound on a linear parameter is enforced by the inner bounded least squares
    fit_b = sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear", bounds={"c0": (-100, 0)})
    assert fit_b.params["c0"] == pytest.approx(-100.0)
    assert any("sits at its bound -100" in w for w in fit_b.warnings)


def test_row_order_does_not_change_the_fit():
    N, D = _runs(seed=3)
    rng = np.random.default_rng(3)
    y = 1.7 + 400 * N ** -0.3 + 900 * D ** -0.3 + rng.normal(0, 0.01, N.size)
    law = sl.Law.from_formula("E + A*N**-alpha + B*D**-beta", inputs=("N", "D"),
                              bounds={"alpha": (0, 2), "beta": (0, 2)})
    a = sl.fit_arrays(law, {"N": N, "D": D}, y, bootstrap=0, scale="linear")
    perm = rng.permutation(N.size)
    b = sl.fit_arrays(law, {"N": N[perm], "D": D[perm]}, y[perm], bootstrap=0, scale="linear")
    for k in a.params:
        assert b.params[k] == pytest.approx(a.params[k], rel=1e-6)


def test_bootstrap_intervals_cover_the_truth_on_the_linear_scale():
    N, D = _runs(n=200, seed=4)
    rng = np.random.default_rng(4)
    y = 2.0 + 300 * N ** -0.3 + rng.normal(0, 0.005, N.size)
    law = sl.Law.from_formula("E + A*N**-alpha", inputs=("N",), bounds={"alpha": (0, 2)})
    fit = sl.fit_arrays(law, {"N": N}, y, bootstrap=40, scale="linear", seed=1)
    lo, hi = fit.ci["alpha"]
    se = (hi - lo) / 3.92
    assert lo < fit.params["alpha"] < hi and 0 < se < 0.01
    assert abs(fit.params["alpha"] - 0.3) < 3 * se  # the truth within three standard errors


def test_several_outputs_share_parameters_and_are_fitted_jointly():
    # two outputs sharing an exponent: y_k = a_k + b_k * p**al (domain-mixture style)
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 1, 60)
    ya, yb = 1.0 + 2.0 * p ** 0.7, 3.0 - 1.0 * p ** 0.7
    e1 = parse_formula("a1 + b1*p**al", ("p",), ("a1", "b1", "al")).expr
    e2 = parse_formula("a2 + b2*p**al", ("p",), ("a2", "b2", "al")).expr
    prob = lsq.Problem([lsq.Block(e1, {"p": p}, ya), lsq.Block(e2, {"p": p}, yb)],
                       ["a1", "b1", "a2", "b2", "al"], {"al": (0.01, 3)})
    assert [prob.names[j] for j in prob.free] == ["al"]
    fit = lsq.lsq_search(prob)
    got = dict(zip(prob.names, fit.x, strict=True))
    assert got["al"] == pytest.approx(0.7, rel=1e-6)
    assert got["b2"] == pytest.approx(-1.0, rel=1e-6)


def test_groups_share_an_exponent_with_a_floor_per_group():
    # the --per-group E case: two groups, E differs, alpha and A are shared
    rng = np.random.default_rng(6)
    n1, n2 = 10 ** rng.uniform(7, 10, 50), 10 ** rng.uniform(7, 10, 50)
    y1, y2 = 1.5 + 200 * n1 ** -0.3, 0.8 + 200 * n2 ** -0.3
    x = sp.Symbol("N", real=True)
    A, al, E1, E2 = sp.symbols("A alpha E_g1 E_g2", real=True)
    prob = lsq.Problem([lsq.Block(E1 + A * x ** -al, {"N": n1}, y1),
                        lsq.Block(E2 + A * x ** -al, {"N": n2}, y2)],
                       ["A", "alpha", "E_g1", "E_g2"], {"alpha": (0, 2)})
    fit = lsq.lsq_search(prob)
    got = dict(zip(prob.names, fit.x, strict=True))
    assert (got["E_g1"], got["E_g2"]) == pytest.approx((1.5, 0.8), rel=1e-6)
    assert got["alpha"] == pytest.approx(0.3, rel=1e-6)


def test_failures_have_distinct_causes():
    x = np.linspace(1, 5, 20)
    # the law is NaN everywhere inside the bounds: log of a negative number
    law = sl.Law.from_formula("c + log(-k*x)", inputs=("x",), bounds={"k": (0.5, 2)})
    with pytest.raises(NotIdentifiable, match="not finite"):
        sl.fit_arrays(law, {"x": x}, x, bootstrap=0, scale="linear")
    # the gradient is undefined at the runs where max(x - 1, 0) = 0: taken as its limit, said
    law2 = sl.Law.from_formula("c + a*max(x - 1, 0)**k", inputs=("x",), bounds={"k": (0.2, 2)})
    fit = sl.fit_arrays(law2, {"x": x}, 1 + 2 * np.maximum(x - 1, 0) ** 0.5, bootstrap=0, scale="linear")
    assert fit.params["k"] == pytest.approx(0.5, rel=1e-5)
    assert any("gradient is undefined" in n for n in fit.notes)


def test_fit_joint_five_outputs_with_shared_exponents_and_groups_with_a_floor_each():
    # domain-mixture style: output k = b_k + W_k * p_k**al (al shared by all five)
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(5), 80)
    al = 0.6
    b = np.array([2.0, 3.0, 2.5, 1.5, 3.2])
    wk = np.array([-1.0, -0.5, -0.8, -0.3, -1.2])
    y = b + wk * p ** al
    formulas = {f"y{k}": f"b{k} + W{k}*p{k}**al" for k in range(1, 6)}
    fit = sl.fit_joint(formulas, {f"p{k}": p[:, k - 1] for k in range(1, 6)}, y, bounds={"al": (0.05, 3)})
    assert fit.params["al"] == pytest.approx(al, rel=1e-6)
    assert [fit.params[f"W{k}"] for k in range(1, 6)] == pytest.approx(wk.tolist(), rel=1e-6)
    assert np.allclose(fit.predict(**{f"p{k}": p[:, k - 1] for k in range(1, 6)}), y)
    assert fit.to_dict()["search"]["nonlinear"] == ["al"]
    # groups: one floor per group (--per-group E), the rest shared
    n = 10 ** rng.uniform(7, 10, 120)
    g = np.repeat(["pile", "stack"], 60)
    loss = np.where(g == "pile", 1.4, 0.75) + 110 * n ** -0.26
    gf = sl.fit_joint(["E + A*N**-alpha"], {"N": n}, loss, groups=g, per_group=["E"], bounds={"alpha": (0, 2)})
    assert gf.params["E[pile]"] == pytest.approx(1.4, rel=1e-6)
    assert gf.params["E[stack]"] == pytest.approx(0.75, rel=1e-6)
    assert gf.params["alpha"] == pytest.approx(0.26, rel=1e-6)
    assert gf.predict(group="stack", N=np.array([1e9]))[0, 0] == pytest.approx(0.75 + 110 * 1e9 ** -0.26)
    with pytest.raises(ParameterError, match="name a group"):
        gf.predict(N=np.array([1e9]))


def test_a_joint_fit_compiles_its_formulas_once_however_often_it_predicts(monkeypatch):
    n = 10 ** np.linspace(7, 10, 40)
    fit = sl.fit_joint(["E + A*N**-alpha", "F + B*N**-alpha"], {"N": n},
                       np.column_stack([1.5 + 100 * n ** -0.3, 2.0 + 50 * n ** -0.3]), bounds={"alpha": (0, 2)})
    calls = []
    real = lsq.compile_expressions
    monkeypatch.setattr(lsq, "compile_expressions", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = fit.predict(N=np.array([1e11, 1e12]))
    again = fit.predict(N=np.array([1e11, 1e12]))
    assert len(calls) == 2  # one per output, on the first call only
    assert np.array_equal(first, again)
    assert first[:, 1] == pytest.approx(2.0 + 50 * np.array([1e11, 1e12]) ** -0.3, rel=1e-6)
    assert "_compiled_cache" not in fit.to_dict()  # kept on the object, not in its saved shape


def test_runs_are_not_thinned_to_the_best_lr_when_lr_is_an_input_of_the_law():
    import pandas as pd

    from scalinglab.runs.select import select_runs

    frame = pd.DataFrame({"N": [1e8] * 4 + [2e8] * 4, "D": [1e9] * 8,
                          "lr": [1e-3, 2e-3, 4e-3, 8e-3] * 2, "loss": [3.0, 2.9, 2.95, 3.1] * 2})
    assert len(select_runs(frame, ("N", "D")).frame) == 2          # lr is a setting: best kept
    assert len(select_runs(frame, ("lr", "N", "D")).frame) == 8    # lr is an input: every run


def test_cli_fits_a_negative_target_on_the_linear_scale_and_says_so(tmp_path):
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from scalinglab.cli import app

    n = 10 ** np.linspace(7, 10, 30)
    path = tmp_path / "norm.csv"
    pd.DataFrame({"N": n, "loss": -3.0 + 40.0 * n ** -0.2}).to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", "custom", str(path), "--formula", "c + a*N**-alpha",
                                   "--inputs", "N", "--bounds", "alpha=0:2", "--bootstrap", "0", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["params"]["c"] == pytest.approx(-3.0, rel=1e-6)
    assert any("linear scale" in note for note in out["notes"])
    bad = CliRunner().invoke(app, ["fit", "custom", str(path), "--formula", "c + a*N**-alpha",
                                   "--inputs", "N", "--scale", "sqrt", "--bootstrap", "0"])
    assert bad.exit_code != 0 and "--scale must be log or linear" in bad.output


def test_cli_groups_one_fit_each_or_shared_exponent_with_a_floor_per_group(tmp_path):
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from scalinglab.cli import app

    n = np.tile(10 ** np.linspace(8, 10, 12), 2)
    grp = np.repeat(["pile", "stack"], 12)
    loss = np.where(grp == "pile", 1.4, 0.75) + 110 * n ** -0.26
    path = tmp_path / "par.csv"
    pd.DataFrame({"N": n, "corpus": grp, "loss": loss}).to_csv(path, index=False)
    args = ["fit", "custom", str(path), "--formula", "E + A*N**-alpha", "--inputs", "N",
            "--bounds", "alpha=0:2", "--bootstrap", "0", "--group", "corpus", "--json"]
    res = CliRunner().invoke(app, [*args, "--per-group", "E"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["params"]["E[pile]"] == pytest.approx(1.4, rel=1e-5)
    assert out["params"]["E[stack]"] == pytest.approx(0.75, rel=1e-5)
    each = CliRunner().invoke(app, args)
    assert each.exit_code == 0, each.output
    fits = json.loads(each.stdout)["fits"]
    assert set(fits) == {"pile", "stack"}
    assert fits["stack"]["params"]["E"] == pytest.approx(0.75, rel=1e-3)
    # without a C column (nor N and D) the runs are ordered by the first input, by fit_law's
    # one rule, with or without --per-group, and a note says so
    for extra in (["--per-group", "E"], []):
        no_c = CliRunner().invoke(app, [*args, *extra, "--lean-top", "0.1", "--scale", "linear"])
        assert no_c.exit_code == 0, no_c.output
        out = json.loads(no_c.stdout)
        notes = out["notes"] if extra else out["fits"]["pile"]["notes"]
        assert any("took the runs with the highest N as the top" in m for m in notes), notes
    pd.DataFrame({"N": n, "C": 6 * n * 2e10, "corpus": grp, "loss": loss}).to_csv(path, index=False)
    leaned = CliRunner().invoke(app, [*args, "--per-group", "E", "--lean-top", "0.1"])
    assert leaned.exit_code == 0, leaned.output
    out = json.loads(leaned.stdout)
    assert any("of rows by compute in each group" in m for m in out["notes"])
    assert out["params"]["E[stack]"] == pytest.approx(0.75, rel=1e-4)  # exact data: nothing to trade


def test_the_log_scale_says_which_parameters_it_keeps_positive():
    N, D = _runs(n=60, seed=8)
    y = 1.8 + 400 * N ** -0.3
    law = sl.Law.from_formula("E + A*N**-alpha", inputs=("N",))
    fit = sl.fit_arrays(law, {"N": N}, y, bootstrap=0)
    assert any("kept positive: E, A" in n for n in fit.notes)
    bounded = sl.Law.from_formula("E + A*N**-alpha", inputs=("N",), bounds={"E": (0.1, 10), "A": (1, 1e6)})
    assert not any("kept positive" in n for n in sl.fit_arrays(bounded, {"N": N}, y, bootstrap=0).notes)


def test_log_polynomial_laws_start_from_their_log_linear_solution():
    # L + exp(poly in logs): every coefficient sits inside the exponential, so a space-filling
    # design cannot find it; log(y - L) is linear in them, which seeds the search
    rng = np.random.default_rng(9)
    lr, bsz = 10 ** rng.uniform(-4, -2, 200), 2 ** rng.integers(4, 11, 200).astype(float)
    truth = {"L": 1.9, "w0": -0.5, "w1": 0.3, "w2": 0.05, "w3": -0.1}
    u, v = np.log(lr), np.log(bsz)
    y = truth["L"] + np.exp(truth["w0"] + truth["w1"] * u + truth["w2"] * u ** 2 + truth["w3"] * v)
    law = sl.Law.from_formula("L + exp(clip(w0 + w1*log(lr) + w2*log(lr)**2 + w3*log(bsz), -50, 50))",
                              inputs=("lr", "bsz"),
                              bounds={"L": (0, 3), "w0": (-8, 8), "w1": (-1, 1), "w2": (-0.1, 0.1), "w3": (-1, 1)})
    fit = sl.fit_arrays(law, {"lr": lr, "bsz": bsz}, y, bootstrap=0, scale="linear")
    for k, v_ in truth.items():
        assert fit.params[k] == pytest.approx(v_, rel=1e-4, abs=1e-6)


def test_outputs_that_share_no_parameter_are_searched_as_separate_parts():
    # three outputs, each with its own exponent and shift (domain mixture sl_2's shape): the
    # joint problem splits into three 2-D searches, and each output's truth is recovered exactly
    rng = np.random.default_rng(11)
    p = rng.uniform(0.05, 1, (40, 3))
    truth = [(2.0, 0.4, 0.02), (1.5, 0.7, 0.05), (3.0, 0.25, 0.01)]
    y = np.column_stack([a * (p[:, k] + e) ** -al for k, (a, al, e) in enumerate(truth)])
    formulas = {f"y{k}": f"A{k}*(p{k} + e{k})**(-al{k})" for k in range(3)}
    bounds = {f"al{k}": (0.0, 2.0) for k in range(3)} | {f"e{k}": (0.0, 0.2) for k in range(3)}
    fit = sl.fit_joint(formulas, {f"p{k}": p[:, k] for k in range(3)}, y, bounds=bounds)
    assert len(fit.search.parts) == 3
    assert [len(part.nonlinear) for part in fit.search.parts] == [2, 2, 2]  # al_k, e_k each
    for k, (a, al, e) in enumerate(truth):
        assert (fit.params[f"A{k}"], fit.params[f"al{k}"], fit.params[f"e{k}"]) == pytest.approx((a, al, e), rel=1e-6)
    # one shared parameter links the outputs: one search
    linked = lsq.Problem([lsq.Block(parse_formula(f"A{k}*(p{k} + e{k})**(-al)", (f"p{k}",)).expr,
                                    {f"p{k}": p[:, k]}, y[:, k]) for k in range(2)],
                         ["A0", "e0", "al", "A1", "e1"])
    assert len(linked.components()) == 1


def test_gauss_newton_polish_reaches_a_log_polynomial_optimum_in_few_evaluations():
    # exp of a quadratic in log inputs (lr/bsz sl_1's shape): the least-squares structure lets
    # Gauss-Newton converge where gradient-only L-BFGS-B crawls along the coefficients' valley
    rng = np.random.default_rng(12)
    lr, bs = 10 ** rng.uniform(-4, -2, 200), 2 ** rng.uniform(5, 10, 200)
    w = [1.2, 0.05, -0.03, 0.004, 0.002, -0.001]
    h = lambda u, v: w[0] + w[1] * u + w[2] * v + w[3] * u ** 2 + w[4] * v ** 2 + w[5] * u * v  # noqa: E731
    y = np.exp(h(np.log(lr), np.log(bs)))
    text = "exp(w0 + w1*log(lr) + w2*log(bs) + w3*log(lr)**2 + w4*log(bs)**2 + w5*log(lr)*log(bs))"
    p = parse_formula(text, ("lr", "bs"))
    prob = lsq.Problem([lsq.Block(p.expr, {"lr": lr, "bs": bs}, y)], p.params,
                       {f"w{i}": (-2.0, 2.0) for i in range(6)})
    calls, jacs = [], []
    res, jac = prob.residual, prob.jacobian
    prob.residual = lambda z: calls.append(1) or res(z)  # type: ignore[method-assign]
    prob.jacobian = lambda st: jacs.append(1) or jac(st)  # type: ignore[method-assign]
    f, z, ok = prob.gauss_newton(np.zeros(6))
    assert ok and f < 1e-20
    assert len(calls) < 60
    # the Jacobian is computed at accepted steps only, once each
    assert 0 < len(jacs) <= len(calls)
    assert z == pytest.approx(w, rel=1e-6, abs=1e-9)


def test_huber_on_the_linear_scale_discounts_outliers_that_pull_least_squares():
    # a negative-offset law with 10% of runs spiked upwards (diverged or mis-logged evaluations)
    rng = np.random.default_rng(5)
    x = np.geomspace(1e7, 1e10, 120)
    y = -2.0 + 60.0 * x ** -0.3 + rng.normal(0, 0.002, x.size)
    bad = rng.choice(x.size, 12, replace=False)
    y[bad] += rng.uniform(0.05, 0.15, bad.size)
    law = sl.Law.from_formula("E + A*x**-alpha", inputs=("x",), bounds={"alpha": (0.01, 2)})
    ls = sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear", estimator="mse")
    hub = sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear", estimator="huber")
    assert abs(ls.params["E"] + 2.0) > 0.01      # least squares is pulled up by the spikes
    assert abs(hub.params["E"] + 2.0) < 0.003    # Huber stays within ~1.5 noise sd of the truth
    assert hub.params["alpha"] == pytest.approx(0.3, abs=0.003)
    est = hub.info.estimator
    assert est["kind"] == "huber" and est["scale"] == "linear" and est["converged"]
    # the threshold comes from the inliers' scale (noise 0.002), not from the outliers
    assert 1.345 * 0.001 < est["delta"] < 1.345 * 0.004
    assert any("huber loss on the linear scale" in n and "of 120 runs down-weighted" in n for n in hub.notes)
    # the asymmetric loss is the same IRLS with over-predictions weighted more
    asym = sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear", estimator="asymmetric")
    assert asym.info.estimator["over_penalty"] == 4.0 and abs(asym.params["E"] + 2.0) < 0.003


def test_a_wide_signed_coefficient_is_also_started_at_small_magnitudes():
    # A*(1 + C*(log V - v0)**2): A is solved by projection, C in [-100, 100] is searched. The
    # truth has C = 0.005; a uniform design over [-100, 100] puts 1% of starts below 1 in
    # magnitude and, from there, the local search ends with C at its bound -100 (vocab sl_2 of
    # ScaleBench). The design also draws C log-uniformly in magnitude, either sign
    rng = np.random.default_rng(3)
    P, V = 10 ** rng.uniform(7, 10, 400), 10 ** rng.uniform(3.5, 5.5, 400)
    truth = {"L": 1.5, "A": 4000.0, "alpha": 0.45, "C": 0.005, "v0": 4.0}
    y = truth["L"] + truth["A"] * P ** -truth["alpha"] * (1 + truth["C"] * (np.log(V) - truth["v0"]) ** 2)
    law = sl.Law.from_formula("L + A*P**(-alpha)*(1 + C*(log(V) - v0)**2)", inputs=("P", "V"),
                              bounds={"L": (-100, 100), "A": (-1e4, 1e4), "alpha": (-5, 5), "C": (-100, 100),
                                      "v0": (-10, 30)})
    fit = sl.fit_arrays(law, {"P": P, "V": V}, y, bootstrap=0, scale="linear", estimator="mse")
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-3), k
    design = lsq.StartDesign(np.array([-5.0, -100.0]), np.array([5.0, 100.0]), np.array([False, False]))
    z = design.sample(512, seed=0)
    assert design.wide.tolist() == [False, True]
    assert np.mean(np.abs(z[:, 1]) < 1) > 0.25   # uniform alone: 1%
    assert np.mean(np.abs(z[:, 0]) < 1) == pytest.approx(0.2, abs=0.02)  # a narrow range stays uniform
    assert np.all((z >= -100) & (z <= 100))
    # two starts are apart on the signed-log scale: 0.001 and 0.1 are distinct, 0.1 and 0.1001 not
    u = design.unit(np.array([[0.0, 1e-3], [0.0, 0.1], [0.0, 0.1001]]))
    assert abs(u[0, 1] - u[1, 1]) > 0.05 > abs(u[1, 1] - u[2, 1])


def test_a_parameter_bounded_at_zero_goes_below_its_log_search_floor_when_the_fit_wants_it():
    # C in [0, 1e4] is moved in its logarithm, from 1e4 x 1e-9 = 1e-5 up; the truth is 1e-6,
    # multiplying N**0.8 ~ 1e7 (data-constrained sl_6's C*...*N**d). A polish that ends at that
    # floor goes on with the floor lowered (before: it stopped at C = 1e-5, d = 0.647)
    rng = np.random.default_rng(5)
    N = 10 ** rng.uniform(6, 9, 300)
    y = 2.0 + 0.5 * np.log(1 + 1e-6 * N ** 0.8)
    p = parse_formula("E + A*log(1 + C*N**d)", ("N",))
    prob = lsq.Problem([lsq.Block(p.expr, {"N": N}, y)], p.params,
                       {"E": (-10, 10), "A": (0, 10), "C": (0, 1e4), "d": (0, 2)})
    assert [prob.names[j] for j in prob.free] == ["C", "d"]
    f, z, _ = prob.polish(np.array([1e-3, 0.3]), gauss_newton=False)
    assert f < 1e-12
    assert z == pytest.approx([1e-6, 0.8], rel=1e-4)


def _drifting_runs(n: int = 120, noise: float = 0.002, seed: int = 0):
    """A loss whose exponent drifts with scale (0.30 at x = 1e6 to 0.38 at 1e10): a single power
    law fits it only on average, and extrapolates best when it follows the largest runs."""
    rng = np.random.default_rng(seed)
    x = np.sort(10 ** rng.uniform(6, 10, n))

    def truth(v: np.ndarray) -> np.ndarray:
        a = 0.30 + 0.02 * (np.log10(v) - 6)
        return 1.5 + 40.0 * v ** -a

    return x, truth(x) + noise * rng.standard_normal(n), truth


def test_lean_toward_the_largest_runs_stays_within_one_standard_error_and_extrapolates_better():
    x, y, truth = _drifting_runs()
    law = sl.Law.from_formula("E + A*x**-a", inputs=("x",), bounds={"a": (0.05, 1.0)})
    plain = sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear", estimator="mse", compute=x)
    leaned = sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear", estimator="mse", compute=x,
                           lean_top=0.1)
    lean = leaned.info.estimator["lean"]
    n, p = len(y), 3
    # the constraint: training SSE at most (1 + 1/(n - p)) x the least-squares minimum
    assert plain.objective <= lean["sse"] <= plain.objective * (1 + 1 / (n - p)) * (1 + 1e-9)
    assert lean["sse_limit"] == pytest.approx(plain.objective * (1 + 1 / (n - p)), rel=1e-6)
    assert lean["top_sse"] < 0.9 * lean["top_sse_before"] and lean["lambda"] > 0
    assert lean["n_top"] == 12
    # beyond the runs (x = 1e11, 1e12) the leaned fit is closer to the truth: by 7-11% on seeds
    # 0-7 (one standard error is all it may move)
    far = np.array([1e11, 1e12])
    err_plain = np.abs(plain.predict(x=far) - truth(far))
    err_lean = np.abs(leaned.predict(x=far) - truth(far))
    assert np.all(err_lean < 0.95 * err_plain)
    assert any("leaned toward the top 10% of runs by compute (12 runs)" in m for m in leaned.notes)


def test_lean_changes_nothing_where_the_law_fits_exactly():
    # no noise and the right law: the least-squares optimum is the truth, SSE 0, nothing to trade
    x = 10 ** np.linspace(6, 10, 60)
    y = 1.5 + 40.0 * x ** -0.33
    law = sl.Law.from_formula("E + A*x**-a", inputs=("x",), bounds={"a": (0.05, 1.0)})
    fit = sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear", estimator="mse", compute=x, lean_top=0.1)
    assert fit.params["a"] == pytest.approx(0.33, rel=1e-6)
    assert fit.params["E"] == pytest.approx(1.5, rel=1e-6)


def test_lean_needs_a_compute_order_and_the_linear_scale():
    x, y, _ = _drifting_runs(60)
    law = sl.Law.from_formula("E + A*x**-a", inputs=("x",), bounds={"a": (0.05, 1.0)})
    flat = sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear", estimator="mse",
                         compute=np.ones_like(x), lean_top=0.1)
    assert any("not leaned (no run is above the others in compute)" in m for m in flat.notes)
    with pytest.raises(ParameterError, match="linear scale only"):
        sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="log", lean_top=0.1)
    with pytest.raises(ParameterError, match="fraction"):
        sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear", lean_top=1.5)


def test_cli_lean_top_orders_runs_by_compute_and_keeps_the_bootstrap(tmp_path):
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from scalinglab.cli import app

    x, y, _ = _drifting_runs(80)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"x": x, "C": 6 * x, "loss": y}).to_csv(path, index=False)
    args = ["fit", "custom", str(path), "--formula", "E + A*x**-a", "--inputs", "x", "--bounds", "a=0.05:1",
            "--scale", "linear", "--loss", "mse", "--bootstrap", "20", "--json"]
    plain = json.loads(CliRunner().invoke(app, args).stdout)
    res = CliRunner().invoke(app, [*args, "--lean-top", "0.1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert any("leaned toward the top 10% of runs by compute (8 runs)" in m for m in out["notes"])
    # one standard error at most: the exponent moves, by less than its 95% bootstrap interval's width
    lo, hi = plain["ci"]["a"]
    assert out["params"]["a"] != pytest.approx(plain["params"]["a"], rel=1e-9)
    assert abs(out["params"]["a"] - plain["params"]["a"]) < (hi - lo)
    assert out["ci"]["a"][0] < out["params"]["a"] < out["ci"]["a"][1]


def test_fit_joint_leans_toward_the_top_rows_of_each_group():
    x1, y1, truth = _drifting_runs(60, seed=1)
    x2, y2, _ = _drifting_runs(60, seed=2)
    x = np.concatenate([x1, x2])
    y = np.concatenate([y1, y2 + 0.3])  # the second group sits 0.3 higher: its own floor
    groups = ["a"] * 60 + ["b"] * 60
    kw = dict(bounds={"a": (0.05, 1.0)}, groups=groups, per_group=["E"], compute=x)
    plain = lsq.fit_joint(["E + A*x**-a"], {"x": x}, y, **kw)
    leaned = lsq.fit_joint(["E + A*x**-a"], {"x": x}, y, lean_top=0.1, **kw)
    assert any("leaned toward the top 10% of rows by compute in each group (12 of them)" in m for m in leaned.notes)
    # the shared exponent moves toward the largest runs' (steeper) local slope, and the floors follow
    assert leaned.params["a"] > plain.params["a"]
    assert leaned.params["E[b]"] - leaned.params["E[a]"] == pytest.approx(0.3, abs=0.01)
    far = np.array([1e11])
    assert abs(leaned.predict("a", x=far)[0, 0] - truth(far)[0]) < abs(plain.predict("a", x=far)[0, 0] - truth(far)[0])
    with pytest.raises(ParameterError, match="needs compute"):
        lsq.fit_joint(["E + A*x**-a"], {"x": x}, y, bounds={"a": (0.05, 1.0)}, lean_top=0.1)


def test_a_group_whose_compute_is_constant_has_no_top_rows_to_lean_toward():
    # group b's runs share one compute: none is above the others, so none is "top" (taking all
    # of them leaned the joint fit toward the whole group: 66 top rows, not a's 6)
    x1, y1, _ = _drifting_runs(60, seed=1)
    x2, y2, _ = _drifting_runs(60, seed=2)
    x, y = np.concatenate([x1, x2]), np.concatenate([y1, y2 + 0.3])
    compute = np.concatenate([x1, np.full(60, 1e9)])
    leaned = lsq.fit_joint(["E + A*x**-a"], {"x": x}, y, bounds={"a": (0.05, 1.0)}, groups=["a"] * 60 + ["b"] * 60,
                           per_group=["E"], compute=compute, lean_top=0.1)
    assert any("in each group (6 of them)" in m for m in leaned.notes), leaned.notes
    assert list(lsq.top_rows([1.0, 1.0, 1.0], 0.5)) == [False] * 3
    assert list(lsq.top_rows([1.0, np.nan, 3.0, 2.0], 0.34)) == [False, False, True, False]


def test_a_huber_fit_leans_under_its_own_weights_and_reports_the_objective_where_it_ended():
    x, y, _ = _drifting_runs()
    y = y.copy()
    y[5] += 0.05  # an outlier among the small runs: Huber down-weights it
    law = sl.Law.from_formula("E + A*x**-a", inputs=("x",), bounds={"a": (0.05, 1.0)})
    fit = sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear", compute=x, lean_top=0.1)
    assert fit.info.estimator["kind"] == "huber" and fit.info.estimator["lean"]["lambda"] > 0
    r, d = y - fit.predict(x=x), fit.info.estimator["delta"]
    huber = np.sum(np.where(np.abs(r) <= d, 0.5 * r ** 2, d * (np.abs(r) - 0.5 * d)))
    assert fit.objective == pytest.approx(huber, rel=1e-9)
    assert any("Huber-weighted training SSE" in m for m in fit.notes)


def _two_bumps(n: int = 200, seed: int = 1) -> tuple[np.ndarray, np.ndarray, Any]:
    """Runs over x in [0, 10] of a law with two basins: a bump fits the big feature at x = 2
    (the deeper optimum, training SSE ~12.5) or the smaller one at x = 8.6 (SSE ~26.8), which is
    the one that goes on beyond the runs."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)

    def truth(v: np.ndarray) -> np.ndarray:
        return np.exp(-(v - 2) ** 2) + 0.7 * np.exp(-(v - 8.6) ** 2)

    return x, truth(x) + 0.02 * rng.standard_normal(n), truth


BUMP = "A*exp(-(x - m)**2)"


def test_forward_selection_picks_the_basin_that_predicts_the_top_runs_not_the_deepest():
    x, y, truth = _two_bumps()
    law = sl.Law.from_formula(BUMP, inputs=("x",), bounds={"m": (0, 10)})
    kw = dict(scale="linear", estimator="mse", compute=x, bootstrap=40)
    plain = sl.fit_arrays(law, {"x": x}, y, **kw)
    fwd = sl.fit_arrays(law, {"x": x}, y, select="forward", **kw)
    # least squares takes the deeper optimum, the big feature at x = 2
    assert plain.params["m"] == pytest.approx(2.0, abs=0.02)
    # forward: the 20 top runs (x >= 9) held out, each basin refitted on the rest from its own
    # point; the x = 2 basin predicts ~0 there (held-out SSE 2.6), the x = 8.6 basin its tail
    # (0.011): it is chosen although its training SSE is twice the optimum's
    rec = fwd.info.estimator["forward"]
    assert rec["n_held"] == 20 and rec["n_basins"] == 2 and rec["chosen"] == 1
    assert rec["sse"][0] < rec["sse"][1] and rec["forward_sse"][1] < 0.01 * rec["forward_sse"][0]
    assert fwd.params["m"] == pytest.approx(8.6, abs=0.02) and fwd.params["A"] == pytest.approx(0.7, abs=0.02)
    assert fwd.objective == pytest.approx(rec["sse"][1], rel=1e-9)  # the chosen basin's full-data fit
    assert any(m.startswith("select=forward: 2 basins refitted without the top 10% of rows by compute (20 rows)")
               and "basin 2 chosen" in m for m in fwd.notes), fwd.notes
    # beyond the runs it is the right law; least squares predicts ~0 there
    far = np.linspace(10, 11, 20)
    assert np.max(np.abs(fwd.predict(x=far) - truth(far))) < 0.005
    assert np.max(np.abs(plain.predict(x=far) - truth(far))) > 0.05
    # the bootstrap refits start from the chosen basin: its interval is around x = 8.6
    lo, hi = fwd.ci["m"]
    assert 8.5 < lo < 8.6 < hi < 8.7


def test_forward_selection_does_not_depend_on_row_order():
    x, y, _ = _two_bumps()
    law = sl.Law.from_formula(BUMP, inputs=("x",), bounds={"m": (0, 10)})
    perm = np.random.default_rng(7).permutation(x.size)
    kw = dict(scale="linear", estimator="mse", bootstrap=0, select="forward")
    a = sl.fit_arrays(law, {"x": x}, y, compute=x, **kw)
    b = sl.fit_arrays(law, {"x": x[perm]}, y[perm], compute=x[perm], **kw)
    assert b.info.estimator["forward"]["chosen"] == a.info.estimator["forward"]["chosen"] == 1
    for k in ("A", "m"):
        assert b.params[k] == pytest.approx(a.params[k], rel=1e-8)


def test_forward_selection_keeps_the_optimum_where_it_is_the_only_basin_and_refuses_bad_settings():
    x, y, _ = _drifting_runs(80)
    law = sl.Law.from_formula("E + A*x**-a", inputs=("x",), bounds={"a": (0.05, 1.0)})
    kw = dict(bootstrap=0, scale="linear", estimator="mse", compute=x)
    plain = sl.fit_arrays(law, {"x": x}, y, **kw)
    fwd = sl.fit_arrays(law, {"x": x}, y, select="forward", **kw)
    assert fwd.params == pytest.approx(plain.params, rel=1e-6)
    assert fwd.info.estimator["forward"]["chosen"] == 0 and fwd.info.estimator["forward"]["n_basins"] == 1
    assert any(m.startswith("select=forward:") and "least-squares optimum kept" in m for m in fwd.notes)
    flat = sl.fit_arrays(law, {"x": x}, y, bootstrap=0, scale="linear", estimator="mse",
                         compute=np.ones_like(x), select="forward")
    assert any("no run is above the others in compute" in m for m in flat.notes)
    with pytest.raises(ParameterError, match="'optimum' or 'forward'"):
        sl.fit_arrays(law, {"x": x}, y, scale="linear", select="backward")
    with pytest.raises(ParameterError, match="linear scale only"):
        sl.fit_arrays(law, {"x": x}, y, scale="log", select="forward")
    with pytest.raises(ParameterError, match="strictly between 0 and 1"):
        sl.fit_arrays(law, {"x": x}, y, scale="linear", select="forward", select_top=float("nan"))


def test_fit_joint_selects_forward_in_each_independent_group():
    x1, y1, _ = _two_bumps(seed=1)
    x2, y2, _ = _two_bumps(seed=2)
    x, y = np.concatenate([x1, x2]), np.concatenate([y1, y2])
    fit = lsq.fit_joint([BUMP], {"x": x}, y, bounds={"m": (0, 10)}, groups=["a"] * 200 + ["b"] * 200,
                        per_group=["A", "m"], compute=x, select="forward")
    assert fit.params["m[a]"] == pytest.approx(8.6, abs=0.02) and fit.params["m[b]"] == pytest.approx(8.6, abs=0.02)
    assert any("in each of 2 independent parts" in m and "2 part(s) moved" in m for m in fit.notes), fit.notes
    # the record is kept (as a single fit keeps it in info.estimator), saved and read back: each
    # group chose its second basin, so the fit moved off the least-squares optimum
    assert [p["chosen"] for p in fit.forward["parts"]] == [1, 1] and forward_moved(fit.forward)
    back = lsq.JointFit.from_dict(json.loads(json.dumps(fit.to_dict())))
    assert back.forward == fit.forward and forward_moved(back.forward)
    plain = lsq.fit_joint([BUMP], {"x": x}, y, bounds={"m": (0, 10)}, groups=["a"] * 200 + ["b"] * 200,
                          per_group=["A", "m"])
    assert plain.forward is None and not forward_moved(plain.forward) and plain.to_dict()["forward"] is None
    with pytest.raises(ParameterError, match="select=forward needs compute"):
        lsq.fit_joint([BUMP], {"x": x}, y, bounds={"m": (0, 10)}, select="forward")
    # one check for both entry points: a select_top that is not a number is refused, not a TypeError
    with pytest.raises(ParameterError, match="select_top is a fraction of the rows"):
        lsq.fit_joint([BUMP], {"x": x}, y, compute=x, select="forward", select_top="0.1")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="'optimum' or 'forward'"):
        lsq.fit_joint([BUMP], {"x": x}, y, compute=x, select="deepest")


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan"), "0.1"])
def test_lean_top_is_refused_by_one_check_in_the_words_of_each_entry_point(bad):
    """fit_arrays and fit_joint share the lean_top range check (as they share check_select): a
    value outside [0, 1), NaN, or text is a ParameterError naming lean_top, in one sentence
    whose noun is what each entry point counts (runs / rows, as its select_top message says);
    text was a TypeError from the comparison."""
    from scalinglab.fit.loss import fit_arrays

    x, y, _ = _two_bumps(seed=1)
    with pytest.raises(ParameterError) as single:
        fit_arrays("power", {"C": x}, y, scale="linear", lean_top=bad)
    with pytest.raises(ParameterError) as joint:
        lsq.fit_joint([BUMP], {"x": x}, y, compute=x, lean_top=bad)
    said = f"is a fraction of the {{}}, in [0, 1) (0: no lean), not {bad}"
    assert str(single.value) == "lean_top " + said.format("runs")
    assert str(joint.value) == "lean_top " + said.format("rows")
    assert single.value.parameters == joint.value.parameters == ("lean_top",)


def test_a_forward_record_moved_where_it_or_any_of_its_parts_chose_another_basin():
    assert not forward_moved(None) and not forward_moved({"n_held": 20, "chosen": 0, "n_basins": 2})
    assert forward_moved({"n_held": 20, "chosen": 1, "n_basins": 2})
    assert forward_moved({"n_held": 40, "parts": [{"chosen": 0}, {"chosen": 2}]})
    assert not forward_moved({"n_held": 40, "parts": [{"chosen": 0}, {"chosen": 0}]})
    # the live record and its saved form agree
    rec = lsq.Forward(20, [1.0, 2.0], [3.0, 0.5], 1)
    assert rec.moved and forward_moved(rec.to_dict())
    assert not lsq.Forward(40, [], [], 0, parts=[lsq.Forward(20, [1.0], [], 0)] * 2).moved


def test_cli_select_forward_and_a_clear_message_for_a_fraction_that_is_not_a_number(tmp_path):
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from scalinglab.cli import app

    x, y, _ = _two_bumps()
    path = tmp_path / "runs.csv"
    pd.DataFrame({"x": x, "C": x, "loss": y}).to_csv(path, index=False)
    args = ["fit", "custom", str(path), "--formula", BUMP, "--inputs", "x", "--bounds", "m=0:10",
            "--scale", "linear", "--loss", "mse", "--bootstrap", "0", "--json"]
    res = CliRunner().invoke(app, [*args, "--select", "forward", "--select-top", "0.1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["params"]["m"] == pytest.approx(8.6, abs=0.02)
    assert any("basin 2 chosen" in m for m in out["notes"])
    for flag in ("--lean-top", "--select-top"):
        bad = CliRunner().invoke(app, [*args, flag, "nan"])
        assert bad.exit_code == 2 and "must be a number between 0 and 0.99, not nan" in bad.output


def test_the_search_line_counts_starts_at_the_chosen_basin_when_forward_moved_off_the_optimum():
    """With select=forward choosing the shallower bump on purpose, the count of starts is of
    those that reached it (forward_select), so the line must not call it the best optimum."""
    x, y, _ = _two_bumps()
    law = sl.Law.from_formula(BUMP, inputs=("x",), bounds={"m": (0, 10)})
    kw = dict(scale="linear", estimator="mse", bootstrap=0, compute=x)
    fwd = sl.fit_arrays(law, {"x": x}, y, select="forward", **kw)
    plain = sl.fit_arrays(law, {"x": x}, y, **kw)
    assert fwd.info.estimator["forward"]["chosen"] == 1
    text = fwd.summary().as_text()
    assert f"{fwd.info.n_reached_best} reached the chosen basin" in text, text
    assert "best optimum" not in text
    assert f"{plain.info.n_reached_best} reached the best optimum" in plain.summary().as_text()


#: a grouped law with known parameters: a floor per group, the exponent and scale shared
GROUPED_TRUTH = {"A": 400.0, "alpha": 0.34, "E[a]": 1.7, "E[b]": 2.0, "E[c]": 2.4}


def _grouped_runs(rng: np.random.Generator, n_per: int = 24, noise: float = 0.01
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Runs of ``E[g] + A*N**-alpha`` in three groups, N log-uniform over 1e7..1e10, each loss
    with independent relative noise ``noise``."""
    xs, ys, gs = [], [], []
    for g in "abc":
        n = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n_per))
        clean = GROUPED_TRUTH[f"E[{g}]"] + GROUPED_TRUTH["A"] * n ** -GROUPED_TRUTH["alpha"]
        xs.append(n)
        ys.append(clean * (1 + noise * rng.standard_normal(n_per)))
        gs += [g] * n_per
    return np.concatenate(xs), np.concatenate(ys), gs


def test_grouped_bootstrap_intervals_cover_the_true_parameters():
    """20 noisy replications of a known grouped law (16 runs a group), 40 resamples each
    (measured: 17-19 of 20 per parameter; 4 CPU s in all): every parameter's 95%
    interval covers its true value in at least 15 of 20 (a binomial 95% falls below 15 with
    probability 3e-4; an interval that ignores the noise, or resamples across groups, misses)."""
    rng = np.random.default_rng(11)
    hits = {k: 0 for k in GROUPED_TRUTH}
    widths = []
    for rep in range(20):
        x, y, g = _grouped_runs(rng, n_per=16)
        fit = sl.fit_joint(["E + A*N**-alpha"], {"N": x}, y, groups=g, per_group=["E"],
                           bounds={"alpha": (0.05, 1.0)}, bootstrap=40, seed=rep)
        ci = fit.conf_int()
        assert set(ci) == set(GROUPED_TRUTH) and fit.bootstrap["usable"] == 40
        for k, v in GROUPED_TRUTH.items():
            hits[k] += ci[k][0] <= v <= ci[k][1]
        widths.append(ci["E[b]"][1] - ci["E[b]"][0])
    assert all(h >= 15 for h in hits.values()), hits
    # and they are intervals, not the whole box: the floor to about +-0.05 at 1% noise
    assert 0.01 < float(np.median(widths)) < 0.15, widths


def test_grouped_bootstrap_resamples_within_groups_and_zero_gives_no_intervals():
    x, y, g = _grouped_runs(np.random.default_rng(3), n_per=10)
    kw = dict(groups=g, per_group=["E"], bounds={"alpha": (0.05, 1.0)})
    none = sl.fit_joint(["E + A*N**-alpha"], {"N": x}, y, bootstrap=0, **kw)
    assert none.draws is None and all(e.ci is None for e in none.estimates().values())
    assert "no intervals" in none.summary().as_text()
    with pytest.raises(ParameterError, match="no bootstrap draws"):
        none.conf_int()
    boot = sl.fit_joint(["E + A*N**-alpha"], {"N": x}, y, bootstrap=30, seed=5, **kw)
    assert boot.params == pytest.approx(none.params, rel=1e-6)  # the estimate is the same fit
    assert boot.draws.shape == (30, 5) and boot.bootstrap["requested"] == 30
    again = sl.fit_joint(["E + A*N**-alpha"], {"N": x}, y, bootstrap=30, seed=5, **kw)
    np.testing.assert_array_equal(again.draws, boot.draws)  # deterministic in the seed
    text = boot.summary().as_text()
    assert "30 of 30 resamples of the runs (within each group) refitted" in text
    # past its CPU budget it stops, after 50 resamples at least, and says so
    short = sl.fit_joint(["E + A*N**-alpha"], {"N": x}, y, bootstrap=80, bootstrap_budget=0.0, **kw)
    assert short.bootstrap["done"] == 50 and short.draws.shape == (50, 5)
    assert any("stopped after 50 of 80 resamples" in n for n in short.notes), short.notes
    for bad in (-1, 2.5, True):
        with pytest.raises(ParameterError, match="bootstrap must be a whole number"):
            sl.fit_joint(["E + A*N**-alpha"], {"N": x}, y, bootstrap=bad, **kw)


def test_cli_per_group_prints_intervals_saves_them_and_bootstrap_zero_gives_none(tmp_path):
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from scalinglab.cli import app
    from scalinglab.results import load_result

    x, y, g = _grouped_runs(np.random.default_rng(4), n_per=12)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": x, "corpus": g, "loss": y}).to_csv(path, index=False)
    args = ["fit", "custom", str(path), "--formula", "E + A*N**-alpha", "--inputs", "N",
            "--bounds", "alpha=0.05:1", "--group", "corpus", "--per-group", "E"]
    res = CliRunner().invoke(app, [*args, "--bootstrap", "40", "--save", str(tmp_path / "joint.json")])
    assert res.exit_code == 0, res.output
    assert "95% interval" in res.stdout and "40 of 40 resamples" in res.stdout
    assert "E[b]" in res.stdout and "[" in res.stdout.split("E[b]")[1].splitlines()[0]
    back = load_result(tmp_path / "joint.json")
    assert isinstance(back, lsq.JointFit) and back.draws.shape == (40, 5)
    assert back.conf_int(0.9)["alpha"][0] < back.params["alpha"] < back.conf_int(0.9)["alpha"][1]
    zero = CliRunner().invoke(app, [*args, "--bootstrap", "0", "--json"])
    assert zero.exit_code == 0, zero.output
    out = json.loads(zero.stdout)
    assert set(out["intervals"]) == set(GROUPED_TRUTH) and not any(out["intervals"].values())
    assert out["bootstrap"] is None
    default = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert default["bootstrap"]["requested"] == 200 and all(default["intervals"].values())


def test_cli_per_group_save_writes_the_printed_fit_plus_its_draws_from_one_to_dict(tmp_path, monkeypatch):
    """``--per-group --save F --json``: the saved file is the printed JSON, field for field and in
    the same order, plus the draws; the joint fit's estimates (intervals read from every draw)
    are computed once, where --save built its dict a second time."""
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from scalinglab.cli import app

    x, y, g = _grouped_runs(np.random.default_rng(4), n_per=12)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": x, "corpus": g, "loss": y}).to_csv(path, index=False)
    real = lsq.JointFit.estimates
    calls: list[int] = []
    monkeypatch.setattr(lsq.JointFit, "estimates", lambda self: calls.append(1) or real(self))
    save = tmp_path / "joint.json"
    res = CliRunner().invoke(app, ["fit", "custom", str(path), "--formula", "E + A*N**-alpha",
                                   "--inputs", "N", "--bounds", "alpha=0.05:1", "--group", "corpus",
                                   "--per-group", "E", "--bootstrap", "20", "--save", str(save), "--json"])
    assert res.exit_code == 0, res.output
    assert len(calls) == 1
    printed, saved = json.loads(res.stdout), json.loads(save.read_text())
    draws = saved.pop("draws")
    assert len(draws) == 20 and len(draws[0]) == 5
    assert list(saved) == list(printed) and saved == printed
    assert printed["source"] == str(path) and printed["group"] == "corpus"


def test_a_group_with_no_more_input_points_than_its_own_parameters_reads_not_identified(tmp_path):
    """The joint fit flags what the runs cannot pin as the single fits do: a group with one run
    (a floor of its own fitted exactly), or twelve runs all at one N (its E and A trade off: only
    their sum there is fitted), reads "not identified" in the summary and the saved result; the
    well-posed groups beside it, and a fit of well-posed groups alone, are not flagged."""
    from scalinglab.results import load_result

    x, y, g = _grouped_runs(np.random.default_rng(7), n_per=16)
    kw = dict(bounds={"alpha": (0.05, 1.0)}, bootstrap=40, seed=1)
    well = sl.fit_joint(["E + A*N**-alpha"], {"N": x}, y, groups=g, per_group=["E"], **kw)
    assert well.unidentified == () and all(e.identified for e in well.estimates().values())
    assert "not identified" not in well.summary().as_text()
    # one run more, in a group of its own
    one = sl.fit_joint(["E + A*N**-alpha"], {"N": np.append(x, 3e8)}, np.append(y, 2.4),
                       groups=[*g, "d"], per_group=["E"], **kw)
    assert one.unidentified == ("E[d]",) and not one.estimates()["E[d]"].identified
    assert one.estimates()["E[a]"].identified and one.estimates()["alpha"].identified
    text = one.summary().as_text()
    assert "group d (runs at 1 distinct input point)" in text
    assert "not identified" in text.split("\nE[d]")[1].splitlines()[0]
    one.save(tmp_path / "one.json")
    back = load_result(tmp_path / "one.json")
    assert back.unidentified == ("E[d]",) and back.to_dict()["unidentified"] == ["E[d]"]
    # twelve runs at one N, with a floor and a coefficient of their own
    n12 = np.full(12, 1e8)
    y12 = 2.0 + 400 * n12 ** -0.3 * (1 + 0.01 * np.random.default_rng(8).standard_normal(12))
    flat = sl.fit_joint(["E + A*N**-alpha"], {"N": np.append(x, n12)}, np.append(y, y12),
                        groups=[*g, *["d"] * 12], per_group=["E", "A"], **kw)
    assert flat.unidentified == ("E[d]", "A[d]")


def test_an_exponent_the_runs_cannot_pin_reads_not_identified_by_the_single_fits_rule():
    """30 runs over N in 1e8..1.3e8 (a tenth of a decade): the shared exponent runs to its
    bound in the draws, and the floors with it; the single fits' rule (the same function) flags
    them. The coefficient's interval spans decades but keeps its sign, which that rule accepts
    for a linear parameter."""
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e8), np.log(1.3e8), 30))
    g = ["a"] * 15 + ["b"] * 15
    y = np.where(np.array(g) == "a", 1.8, 2.1) + 400 * n ** -0.3 * (1 + 0.01 * rng.standard_normal(30))
    fit = sl.fit_joint(["E + A*N**-alpha"], {"N": n}, y, groups=g, per_group=["E"],
                       bounds={"alpha": (0.0, 2.0)}, bootstrap=40)
    assert fit.unidentified == ("alpha", "E[a]", "E[b]")
    assert any(w.startswith("not identified by these runs: alpha, E[a], E[b]") for w in fit.warnings)
    assert "not identified" in fit.summary().as_text().split("\nalpha")[1].splitlines()[0]


def test_a_coefficient_held_to_one_sign_reads_not_identified_where_its_interval_reaches_the_bound():
    """E + A*x**-a + B*x with B held >= 0, 80 runs over x in 1..100 (noise 0.01). Truth B = 0:
    the fit puts B at its bound and the resamples put it between 0 and ~2e-4; its interval is
    narrow in the target's units (the width an exponent is held to) and never changes sign (the
    bound stops it), so the linear rule called "B = 0 [0, 0.00017]" identified, though the runs
    cannot tell the term from none. Truth B = 0.01: the runs pin it (0.0096-0.0100), unflagged."""
    rng = np.random.default_rng(0)
    x = np.geomspace(1, 100, 80)
    law = sl.Law.from_formula("E + A*x**-a + B*x", inputs=("x",), bounds={"a": (0.1, 2.0), "B": (0.0, np.inf)})
    kw = dict(bootstrap=100, scale="linear", estimator="mse", seed=0)
    absent = sl.fit_arrays(law, {"x": x}, 1.0 + 2.0 * x ** -0.5 + 0.01 * rng.standard_normal(x.size), **kw)
    assert absent.params["B"] == 0.0 and absent.ci["B"][0] == 0.0 and 0 < absent.ci["B"][1] < 1e-3
    assert absent.unidentified == ("B",)
    assert any(w.startswith("not identified by these runs: the 95% interval of B (held >= 0) reaches 0")
               for w in absent.warnings), absent.warnings
    present = sl.fit_arrays(law, {"x": x}, 1.0 + 2.0 * x ** -0.5 + 0.01 * x + 0.01 * rng.standard_normal(x.size),
                            **kw)
    assert present.ci["B"][0] > 0.009 and present.ci["B"][1] < 0.011
    assert present.unidentified == () and not any("not identified" in w for w in present.warnings)


def test_a_held_magnitude_spanning_decades_is_flagged_and_one_all_at_its_bound_is_not():
    """The rule on given draws: a coefficient held <= 0 is a size; draws from -1e-6 to -0.1
    (log-uniform) span 4.8 decades in their 95% interval: flagged, however narrow they are in
    the target's units (0.1). Draws all at 0 agree on 0 (the enforced-bound warning covers that);
    a free coefficient with the same draws is judged by the sign test, which it passes; one held
    >= 0 at 0.5 +- 1% is pinned."""
    from scalinglab.fit.identify import _linear_soft_checks

    class Model:
        param_names = ("c", "z", "f", "p")
        bounds = {"c": (-np.inf, 0.0), "z": (0.0, np.inf), "p": (0.0, 10.0)}

    rng = np.random.default_rng(0)
    spread = -(10 ** rng.uniform(-6, -1, 200))
    draws = np.column_stack([spread, np.zeros(200), spread, 0.5 * (1 + 0.01 * rng.standard_normal(200))])
    params = {"c": -1e-3, "z": 0.0, "f": -1e-3, "p": 0.5}
    warnings, flagged = _linear_soft_checks(Model(), params, draws, 0.95, {"c", "z", "f", "p"})
    assert flagged == ["c"]
    assert len(warnings) == 1 and "the 95% interval of c (held <= 0) spans 4.8 decades" in warnings[0]


def test_fit_joint_with_forward_selection_polishes_every_distinct_start_as_fit_arrays_does():
    """Forward selection chooses among the basins found, so its search explores (as
    fit_arrays(select="forward") does): on the two-bump law it polishes every distinct start up
    to MAX_POLISH (16; the least-squares search stops at 8, its best basin reached thrice) and
    scores both basins."""
    x, y, _ = _two_bumps()
    kw = dict(bounds={"m": (0, 10)}, compute=x)
    plain = lsq.fit_joint([BUMP], {"x": x}, y, **kw)
    fwd = lsq.fit_joint([BUMP], {"x": x}, y, select="forward", **kw)
    assert plain.search.n_polished == 8 and fwd.search.n_polished == lsq.MAX_POLISH
    assert any(m.startswith("select=forward: 2 basins refitted") for m in fwd.notes), fwd.notes
    assert fwd.params["m"] == pytest.approx(8.6, abs=0.02)


def test_cli_a_group_column_the_runs_lack_is_named_as_group_not_group_by(tmp_path):
    """``--group nope`` is told about ``--group`` (it read "--group-by names column(s)
    ['nope']"), with the file and a close match, as one line and exit code 2, with or without
    --per-group or --all-runs (which raised a KeyError); a bad ``--group-by`` still names
    ``--group-by``."""
    import pandas as pd
    from typer.testing import CliRunner

    from scalinglab.cli import app

    x, y, g = _grouped_runs(np.random.default_rng(4), n_per=12)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": x, "corpus": g, "loss": y}).to_csv(path, index=False)
    args = ["fit", "custom", str(path), "--formula", "E + A*N**-alpha", "--inputs", "N",
            "--bounds", "alpha=0.05:1", "--bootstrap", "0"]
    for extra in ([], ["--per-group", "E"], ["--all-runs"]):
        res = CliRunner().invoke(app, [*args, "--group", "corpsu", *extra])
        assert res.exit_code == 2, res.output
        assert res.output.strip() == (
            f"error: {path}: --group 'corpsu' is not a column of the runs (did you mean "
            "'corpus'?); columns are ['N', 'loss', 'corpus']"), res.output
    by = CliRunner().invoke(app, [*args, "--group", "corpus", "--group-by", "nope"])
    assert by.exit_code == 2 and "--group-by names column(s) ['nope']" in by.output, by.output
    # a wide table (an eval export) is not listed whole: the close match and the count, or,
    # without one, the first columns (errors.columns_hint, as every "no column" message says it)
    wide = pd.DataFrame({"N": x, "corpus": g, "loss": y,
                         **{f"eval/task_{i}_acc": 0.5 for i in range(14)}})
    wide.to_csv(path, index=False)
    res = CliRunner().invoke(app, [*args, "--group", "corpsu"])
    assert res.exit_code == 2 and res.output.strip() == (
        f"error: {path}: --group 'corpsu' is not a column of the runs (did you mean "
        "'corpus'?) (17 columns in all)"), res.output
    res = CliRunner().invoke(app, [*args, "--group", "dataset"])
    assert res.exit_code == 2 and "'dataset' is not a column of the runs; 17 columns, e.g. ['N', " \
        "'loss', 'corpus', 'eval/task_0_acc'" in res.output and "task_13" not in res.output, res.output


def test_cli_per_group_says_it_fits_least_squares_and_refuses_a_typed_robust_loss(tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from scalinglab.cli import app

    x, y, g = _grouped_runs(np.random.default_rng(4), n_per=12)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": x, "corpus": g, "loss": y}).to_csv(path, index=False)
    args = ["fit", "custom", str(path), "--formula", "E + A*N**-alpha", "--inputs", "N",
            "--bounds", "alpha=0.05:1", "--group", "corpus", "--per-group", "E", "--bootstrap", "0"]
    plain = CliRunner().invoke(app, args)  # --loss left at its default (huber): fitted, and said
    assert plain.exit_code == 0, plain.output
    assert "least squares on the linear scale" in plain.stdout
    mse = CliRunner().invoke(app, [*args, "--loss", "mse"])
    assert mse.exit_code == 0, mse.output
    for extra, flag in ((["--loss", "huber"], "--loss huber"), (["--delta", "0.5"], "--delta"),
                        (["--loss", "asymmetric"], "--loss asymmetric")):
        res = CliRunner().invoke(app, [*args, *extra])
        assert res.exit_code != 0 and f"{flag} does not combine with --group --per-group" in res.output, res.output


def _two_group_runs(noise: float, n_per: int = 40, seed: int = 11) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``E[g] + 400*N**-0.34`` in two groups (E = 1.7, 2.0), N log-uniform over 1e7..1e10, each
    loss with independent absolute noise of std ``noise`` (the linear scale the joint fit uses)."""
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 2 * n_per))
    g = ["a"] * n_per + ["b"] * n_per
    y = np.where(np.array(g) == "a", 1.7, 2.0) + 400 * n ** -0.34 + noise * rng.standard_normal(2 * n_per)
    return n, y, g


def test_a_joint_fit_reports_its_quality_in_the_single_fits_words(tmp_path):
    """``fit custom --group --per-group`` prints the fit quality a single fit prints (residual
    std on the linear scale, the least-squares objective, rows and parameters): on runs with
    planted noise 0.02 the residual std is within 20% of it; the JSON carries the same figures
    (the objective is the sum of squared residuals at the printed parameters), and a saved fit
    loads back showing them."""
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from scalinglab.cli import app
    from scalinglab.results import load_result

    n, y, g = _two_group_runs(0.02)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": n, "corpus": g, "loss": y}).to_csv(path, index=False)
    args = ["fit", "custom", str(path), "--formula", "E + A*N**-alpha", "--inputs", "N",
            "--bounds", "alpha=0.05:1", "--group", "corpus", "--per-group", "E", "--bootstrap", "10"]
    res = CliRunner().invoke(app, [*args, "--save", str(tmp_path / "joint.json")])
    assert res.exit_code == 0, res.output
    line = next(s for s in res.stdout.splitlines() if s.startswith("residual std (linear scale): "))
    assert abs(float(line.split(": ")[1]) / 0.02 - 1) < 0.2
    assert "objective: " in res.stdout and "(sum of squared residuals on the linear scale (y - f))" in res.stdout
    assert "parameters: 4 fitted (2 shared, 1 per group x 2 groups)" in res.stdout
    out = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert abs(out["residual_std"] / 0.02 - 1) < 0.2 and out["n_params"] == 4 and out["n_rows"] == 80
    p = out["params"]
    fitted = np.where(np.array(g) == "a", p["E[a]"], p["E[b]"]) + p["A"] * n ** -p["alpha"]
    assert out["objective"] == pytest.approx(np.sum((y - fitted) ** 2), rel=1e-6)
    assert out["residual_std"] == pytest.approx(np.std(y - fitted), rel=1e-6)
    assert out["noise_std"] == pytest.approx(out["residual_std"] * np.sqrt(80 / 76))
    assert out["by_output"] == {"y1": {"n_rows": 80, "residual_std": out["residual_std"],
                                       "objective": out["objective"]}}
    back = load_result(tmp_path / "joint.json")
    assert back.residual_std == pytest.approx(out["residual_std"])
    assert line in back.summary().as_text()


def test_a_joint_fit_of_several_outputs_reports_each_outputs_quality():
    """Two outputs sharing alpha, planted noise 0.01 and 0.04: the summary's table gives each
    output its own residual std (each within 20% of its noise), the overall figure pools them,
    and the per-output objectives add up to the fit's."""
    n, y1, g = _two_group_runs(0.01, seed=5)
    y2 = 2.5 + 900 * n ** -0.34 + 0.04 * np.random.default_rng(6).standard_normal(n.size)
    fit = lsq.fit_joint({"lo": "E + A*N**-alpha", "hi": "F + B*N**-alpha"}, {"N": n},
                        {"lo": y1, "hi": y2}, groups=g, per_group=["E"],
                        bounds={"alpha": (0.05, 1.0)})
    q = fit.by_output
    assert abs(q["lo"]["residual_std"] / 0.01 - 1) < 0.2 and abs(q["hi"]["residual_std"] / 0.04 - 1) < 0.2
    assert q["lo"]["objective"] + q["hi"]["objective"] == pytest.approx(fit.objective)
    assert fit.n_rows == 160 and fit.n_params == 6
    text = fit.summary().as_text()
    assert "Fit quality per output" in text and "residual std (linear scale)" in text
    assert 0.01 < fit.residual_std < 0.04
