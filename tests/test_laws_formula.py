"""User-defined laws: parsed safely, differentiated exactly, fitted and saved like the built-ins."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from scalinglab.clikit import to_json
from scalinglab.errors import ParameterError
from scalinglab.fit import FitResult, fit_law
from scalinglab.fit.synthetic import isoflop_runs
from scalinglab.laws.base import Law
from scalinglab.laws.formula import parse_formula
from scalinglab.laws.loss import BESIROGLU_2024, CHINCHILLA

CHIN_TEXT = "E + A*N**-alpha + B*D**-beta"


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')",
    "A.__class__",
    "N[0] + A",
    "open('x') + A",
    "(lambda q: q)(A)",
    "A if N > 1 else B",
    "N > A",
    "'text' + A",
    "[A for A in N]",
    "A; import os",
    "exp(N, base=A)",
    "E + Q*N",            # Q is neither input nor parameter when parameters are declared
    "A and N",
    "A @ N",
    "True + A*N",
])
def test_anything_but_arithmetic_on_declared_names_is_refused(text):
    with pytest.raises(ParameterError):
        parse_formula(text, ("N",), ("A", "B", "E"))


def test_caret_is_power_with_the_precedence_of_power():
    p = parse_formula("E + A*N^-alpha", ("N",))
    assert p.params == ("E", "A", "alpha")
    law = Law.from_formula("E + A*N^-alpha", inputs="N")
    assert law({"E": 1.0, "A": 2.0, "alpha": 0.5}, N=np.array([4.0])) == pytest.approx(2.0)


def test_parameters_in_order_of_first_appearance_and_scales_fitted_as_logs():
    law = Law.from_formula("L = E + A*N**-alpha + B*D**-beta", inputs=("N", "D"))
    assert law.param_names == ("E", "A", "alpha", "B", "beta")
    assert law.log_model_kinds() == (True, True, False, True, False)
    assert law.exponents == ("alpha", "beta")


def test_unused_inputs_and_names_that_are_not_names_are_errors():
    with pytest.raises(ParameterError, match="does not use input"):
        Law.from_formula("E + A*N**-alpha", inputs=("N", "D"))
    with pytest.raises(ParameterError, match="not a valid name"):
        Law.from_formula("E + A*N**-alpha", inputs=("N", "exp"))


def test_symbolic_gradient_matches_finite_differences():
    law = Law.from_formula("E + A*x**(-c0)*(1 + (x/d)**(1/f))**(-c1*f) + max(x, d)/x/1e9",
                           inputs="x", log_params={"f": True})
    x = np.geomspace(1e3, 1e7, 9)
    model = law.log_model({"x": x})
    at = {"E": 0.3, "A": 2.0, "c0": 0.3, "c1": 0.2, "d": np.log(1e5), "f": np.log(0.5)}
    theta = np.array([[at[p] for p in law.param_names]])
    lp, ctx = model.forward(theta)
    w = np.linspace(-1, 1, len(x))[None, :]
    g = model.vjp(ctx, w.copy())
    eps = 1e-6
    for j in range(theta.shape[1]):
        step = np.zeros_like(theta)
        step[0, j] = eps
        num = ((model.forward(theta + step)[0] - model.forward(theta - step)[0]) * w).sum() / (2 * eps)
        assert g[0, j] == pytest.approx(num, rel=1e-5, abs=1e-8)


def test_chinchilla_as_a_formula_is_the_built_in_law_in_its_own_coordinates():
    law = Law.from_formula(CHIN_TEXT, inputs=("N", "D"), params=CHINCHILLA.param_names)
    runs = isoflop_runs(budgets=[1e19, 1e20, 1e21], per_budget=5, noise=0.0)
    inputs = {"N": runs["N"].to_numpy(), "D": runs["D"].to_numpy()}
    theta = np.array([[0.6, 6.0, 7.6, 0.34, 0.37], [-1.0, 20.0, 3.0, 1.5, 0.1]])
    a, ca = law.log_model(inputs).forward(theta)
    b, cb = CHINCHILLA.log_model(inputs).forward(theta)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    w = np.ones_like(a)
    np.testing.assert_allclose(law.log_model(inputs).vjp(ca, w.copy()),
                               CHINCHILLA.log_model(inputs).vjp(cb, w.copy()), rtol=1e-9)


@pytest.fixture(scope="module")
def two_fits():
    runs = isoflop_runs(budgets=np.geomspace(1e18, 1e21, 6), per_budget=8, noise=0.005, seed=2)
    custom = fit_law(Law.from_formula(CHIN_TEXT, inputs="N,D", name="mine"), runs, bootstrap=20)
    builtin = fit_law("chinchilla", runs, bootstrap=20)
    return custom, builtin


def test_chinchilla_written_as_a_formula_gives_the_built_ins_optimum(two_fits):
    custom, builtin = two_fits
    for C in (1e21, 1e23):
        a, b = custom.optimum(C), builtin.optimum(C)
        assert a.N.value == pytest.approx(b.N.value, rel=1e-3)
        assert a.D.value == pytest.approx(b.D.value, rel=1e-3)
        assert a.loss.value == pytest.approx(b.loss.value, rel=1e-6)
    for k, v in builtin.params.items():
        assert custom.params[k] == pytest.approx(v, rel=1e-3)


def test_a_saved_custom_fit_loads_back_through_law_from_dict(two_fits):
    custom, _ = two_fits
    back = FitResult.from_dict(json.loads(to_json(custom.to_dict(include_draws=True))))
    assert back.law.name == "mine" and back.law.param_names == custom.law.param_names
    np.testing.assert_allclose(back.predict(N=1e9, D=2e10), custom.predict(N=1e9, D=2e10))
    assert back.optimum(1e22).N.ci == pytest.approx(custom.optimum(1e22).N.ci)


def test_recovers_a_law_that_is_not_a_sum_of_powers():
    truth = Law.from_formula("E + A*N**-alpha*exp(-N/K)", inputs="N", name="cutoff",
                             bounds={"K": (1e3, 1e12)}, log_params={"K": True})
    params = {"E": 1.5, "A": 40.0, "alpha": 0.3, "K": 3e8}
    N = np.geomspace(1e6, 3e9, 30)
    loss = truth(params, N=N) * np.exp(0.001 * np.random.default_rng(0).standard_normal(30))
    import pandas as pd

    fit = fit_law(truth, pd.DataFrame({"N": N, "loss": loss}), bootstrap=0)
    assert fit.params["alpha"] == pytest.approx(0.3, abs=0.03)
    assert fit.params["K"] == pytest.approx(3e8, rel=0.3)
    assert BESIROGLU_2024  # the module's reference instance stays importable


@pytest.mark.parametrize("text", ["9**9**9**9 + A*N", "(-8)**0.5 + A*N", "0**-1 + A*N"])
def test_constant_powers_are_computed_in_floats_and_must_be_finite(text):
    # sympy would compute 9**9**9**9 exactly, which no machine can: refused at once
    with pytest.raises(ParameterError, match="not a finite real number"):
        parse_formula(text, ("N",))


def test_definitions_are_shorthands_substituted_into_the_formula():
    law = Law.from_formula("E + B/Deff**beta", inputs=("D", "U"),
                           definitions={"Deff": "U*(1 + R*(1 - exp(-(D/U - 1)/R)))"})
    assert law.param_names == ("E", "B", "beta", "R")
    p = {"E": 1.5, "B": 100.0, "beta": 0.3, "R": 5.0}
    D, U = np.array([4e9]), np.array([1e9])
    deff = U * (1 + 5.0 * (1 - np.exp(-(D / U - 1) / 5.0)))
    assert law(p, D=D, U=U) == pytest.approx(1.5 + 100.0 / deff**0.3)


def test_formula_functions_tanh_sigmoid_softplus_log10_clip_values_and_gradients():
    """The smooth gates of modern laws (lr/bsz penalties, softplus-positive coefficients) are
    formula functions, evaluated stably: softplus(800) is 800, not inf; sigmoid(-800) is 0."""
    import numpy as np

    from scalinglab.laws.formula import FormulaParametrisation, parse_formula

    law = Law.from_formula("a*tanh(x) + b*sigmoid(x) + c*softplus(x) + d*log10(x + 1) + clip(x, 0, 2)",
                           inputs=("x",))
    x = np.array([-800.0, -1.0, 0.5, 3.0, 800.0])
    got = law({"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}, x=x)
    with np.errstate(all="ignore"):
        want = (np.tanh(x) + 1 / (1 + np.exp(-x)) + np.logaddexp(0, x) + np.log10(x + 1)
                + np.clip(x, 0, 2))
    ok = np.isfinite(want)
    assert np.allclose(got[ok], want[ok])
    assert got[-1] == pytest.approx(800 + 1 + 1 + np.log10(801) + 2)
    # gradients are symbolic: d/dx softplus = sigmoid, d/dx sigmoid = s(1-s)
    parsed = parse_formula("softplus(k*x) + sigmoid(k*x)", ("x",), ("k",))
    spec = FormulaParametrisation(parsed, (False,))
    f, g = spec._run({"x": np.array([0.3]), "k": np.array([2.0])})
    s = 1 / (1 + np.exp(-0.6))
    assert float(np.ravel(g)[0]) == pytest.approx(0.3 * s + 0.3 * s * (1 - s))
    with pytest.raises(ParameterError, match="clip takes 3 arguments"):
        Law.from_formula("clip(x, 1) + a", inputs=("x",))


def test_max_and_min_of_several_arguments_broadcast_over_draws_and_propagate_nan():
    from scalinglab.laws.formula import compile_expressions

    p = parse_formula("max(x, a, 2) + min(x, 1)", ("x",), ("a",))
    run = compile_expressions([p.expr], ())
    out = run({"x": np.array([0.0, 1.0, 3.0, np.nan]), "a": np.float64(1.5)})[0]
    np.testing.assert_array_equal(out, [2.0, 3.0, 4.0, np.nan])
    # parameters as a column of draws, inputs as a row: one row of values per draw
    out = run({"x": np.array([[0.0, 1.0, 3.0]]), "a": np.array([[1.5], [2.5]])})[0]
    np.testing.assert_array_equal(out, [[2.0, 3.0, 4.0], [2.5, 3.5, 4.0]])


@pytest.mark.parametrize("text", [
    "E + " + "-" * 7900 + "N",              # a MemoryError from ast.parse
    "E*" + "*".join(["N"] * 3000),            # a RecursionError from ast.parse (under 8000 chars)
    "E + N" + "**N" * 700,                    # a RecursionError building the sympy tree
    "E + A*" + "exp(" * 120 + "N" + ")" * 120,
])
def test_deep_nesting_is_a_typed_error_at_once(text):
    import time

    start = time.process_time()
    with pytest.raises(ParameterError, match="nested more than 100 deep"):
        Law.from_formula(text, inputs="N")
    assert time.process_time() - start < 1.0


def test_a_long_sum_is_one_level_however_many_terms():
    # 150 terms (301 parameters) is one sum: read flat, not as 150 levels of nesting
    text = "E + " + " + ".join(f"A{i}*N**-a{i}" for i in range(150)) + " - B*N"
    law = Law.from_formula(text, inputs="N")
    assert len(law.param_names) == 302
    assert parse_formula("a - b + c*d/e*f - g", ["a"]).expr == parse_formula("a-b+(c*d*f)/e-g", ["a"]).expr


@pytest.mark.parametrize("text, piece", [
    ("E + A*log(-1)*N", "log(-1)"), ("E + A*sqrt(-1)*N", "sqrt(-1)"), ("E + log(0)*N", "log(0)"),
    ("E + A*N/0", "A * N / 0"), ("E + exp(1000) + A*N", "exp(1000)"),
])
def test_constants_that_are_not_finite_real_numbers_are_named(text, piece):
    # sympy folds them exactly (log(-1) = I*pi): refused before as "cannot evaluate Pi"
    with pytest.raises(ParameterError, match=rf"^formula .*: {re.escape(piece)} is not a finite real number"):
        Law.from_formula(text, inputs="N")


@pytest.mark.parametrize("text, inputs, hint", [
    ("E + A*logg(N)", "N", "logg() is not a known function (did you mean 'log'?)"),
    ("E + A*exx(N)", "N", "(did you mean 'exp'?)"),
    ("E + A*Nn**-alpha", "N", "does not use input(s) ['N'] (is it 'Nn'?)"),
    ("E + A*n**-alpha", "N", "(is it 'n'?)"),
])
def test_misspelt_functions_and_inputs_get_a_did_you_mean(text, inputs, hint):
    with pytest.raises(ParameterError) as info:
        Law.from_formula(text, inputs=inputs)
    assert hint in str(info.value)


def test_declared_parameters_misspelt_get_a_did_you_mean():
    with pytest.raises(ParameterError, match=r"'alpa' is neither .* \(did you mean 'alpha'\?\)"):
        Law.from_formula("E + A*N**-alpa", inputs="N", params=["E", "A", "alpha"])


def test_names_are_a_comma_list_or_a_sequence_of_text():
    law = Law.from_formula("E + A*N**-alpha", inputs="N", params="E, A, alpha")
    assert law.param_names == ("E", "A", "alpha")  # was read letter by letter: ',' not a name
    for bad, what in [(5, "inputs"), (None, "inputs"), ({"N": 1}, "inputs")]:
        with pytest.raises(ParameterError, match=rf"^{what} must be names"):
            Law.from_formula("E + A*N**-alpha", inputs=bad)
    with pytest.raises(ParameterError, match="must be text, not int"):
        Law.from_formula(5, inputs="N")
