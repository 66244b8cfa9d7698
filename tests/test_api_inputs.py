"""What a notebook user hands the fitting functions: the wrong kind of table is a typed
:class:`~scalinglab.errors.InputError` naming the argument and the type given (never an
AttributeError from deep inside), and the table-like things a user has at hand (a dict of
columns, a list of records) are read as the DataFrame they stand for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scalinglab as sl
from scalinglab.fit.synthetic import isoflop_runs
from scalinglab.values import as_table


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return isoflop_runs(budgets=[1e18, 3e18, 1e19], per_budget=6, noise=0.005, seed=3)


@pytest.mark.parametrize("given, shown", [
    (None, "NoneType"), ([1.0, 2.0], "list"), (np.zeros((3, 3)), "numpy.ndarray"),
    (pd.Series([1.0]), "pandas.Series"), (5, "int"), ([], "list"),
])
def test_a_non_table_is_refused_naming_what_was_given(given, shown):
    with pytest.raises(sl.InputError, match=rf"^runs: got {shown}, not a table"):
        as_table(given, "runs")


def test_a_path_is_refused_with_how_to_read_it():
    with pytest.raises(sl.InputError, match=r"got a path \('runs.csv'\).*read_csv"):
        as_table("runs.csv", "frame")


def test_columns_of_unequal_length_are_an_input_error():
    with pytest.raises(sl.InputError, match="same length"):
        as_table({"N": [1, 2], "D": [1]}, "frame")


def test_a_dict_of_columns_and_a_list_of_records_fit_as_the_frame_does(runs):
    kw = {"bootstrap": 0}
    base = sl.fit_law("chinchilla", runs, **kw).params
    for given in ({c: runs[c].to_numpy() for c in runs}, runs.to_dict("records")):
        assert sl.fit_law("chinchilla", given, **kw).params == pytest.approx(base, rel=1e-12)


@pytest.mark.parametrize("call", [
    lambda bad: sl.fit_law("chinchilla", bad),
    lambda bad: sl.fit_isoflop(bad),
    lambda bad: sl.select_runs(bad),
    lambda bad: sl.fit_curves(bad, law="multipower"),
    lambda bad: sl.fit_loss_to_loss(bad, "x", "y"),
    lambda bad: sl.fit_ladder(bad, "mmlu"),
    lambda bad: sl.design_pool(bad, "chinchilla", cost="6*N*D", target="top:0.1", budget=0.1),
    lambda bad: sl.replay_study(bad, "chinchilla", cost="6*N*D", target="top:0.1", budgets=[0.1]),
], ids=["fit_law", "fit_isoflop", "select_runs", "fit_curves", "fit_loss_to_loss", "fit_ladder",
        "design_pool", "replay_study"])
@pytest.mark.parametrize("bad", [np.ones((4, 3)), [1.0, 2.0, 3.0], None])
def test_every_table_taking_entry_point_refuses_a_non_table_typed(call, bad):
    with pytest.raises(sl.InputError, match="not a table"):
        call(bad)


def test_fit_hparam_law_refuses_a_list_typed():
    with pytest.raises(sl.InputError, match=r"^grid: got list, not a table"):
        sl.fit_hparam_law([1, 2, 3])


@pytest.mark.parametrize("call", [
    lambda df, **kw: sl.fit_law("chinchilla", df, **kw),
    lambda df, **kw: sl.fit_law("chinchilla", df, scale="linear", **kw),
    lambda df, **kw: sl.fit_isoflop(df, **kw),
], ids=["fit_law", "fit_law_linear", "fit_isoflop"])
@pytest.mark.parametrize("kw, named", [
    ({"level": 95}, "level"), ({"level": 0.0}, "level"), ({"bootstrap": "100"}, "bootstrap"),
    ({"bootstrap": 10.5}, "bootstrap"), ({"bootstrap": -1}, "bootstrap"), ({"bootstrap": True}, "bootstrap"),
])
def test_a_bad_level_or_bootstrap_is_a_parameter_error_naming_it(runs, call, kw, named):
    # level=95 (a percentage) was a numpy ValueError from the quantiles after the whole fit;
    # bootstrap="100" a TypeError from a comparison inside it
    with pytest.raises(sl.ParameterError, match=rf"^{named} must") as info:
        call(runs, **kw)
    assert info.value.parameters == (named,)


def test_a_whole_float_bootstrap_is_the_count_it_says():
    from scalinglab.stats import check_count

    assert check_count(100.0) == 100 and check_count(np.int64(3)) == 3


def test_a_whole_float_count_reaches_the_fit_as_that_count(runs):
    """bootstrap=10.0 and holdout_top=2.0 (as JSON gives them) are the counts 10 and 2 in the
    fit: the checked value is the one used (it was checked, then the float went on into a
    TypeError from numpy inside the fit)."""
    for scale in ("log", "linear"):
        res = sl.fit_arrays("chinchilla", {"N": runs.N, "D": runs.D}, runs.loss, bootstrap=10.0,
                            holdout_top=2.0, scale=scale)
        assert len(res.draws) == 10 and len(res.holdout.run_ids) == 2
    assert len(sl.fit_isoflop(runs, bootstrap=5.0).approach1.draws) == 5


def test_fit_arrays_inputs_are_columns_by_name(runs):
    with pytest.raises(sl.ParameterError, match=r"^inputs must map each input's name .* not list"):
        sl.fit_arrays("chinchilla", [1.0, 2.0], [1.0, 2.0])
    for scale in ("log", "linear"):  # was KeyError: 'D'
        with pytest.raises(sl.ParameterError, match=r"^inputs lack \['D'\] \(did you mean 'd'\?\)"):
            sl.fit_arrays("chinchilla", {"N": runs.N, "d": runs.D}, runs.loss, scale=scale)
    # a DataFrame is columns by name: the same fit as its dict
    a = sl.fit_arrays("chinchilla", runs, runs.loss, bootstrap=0).params
    b = sl.fit_arrays("chinchilla", {"N": runs.N, "D": runs.D}, runs.loss, bootstrap=0).params
    assert a == b


def test_fit_joint_takes_one_formula_as_text_and_refuses_inputs_that_are_not_columns(runs):
    x, y = {"N": runs.N.to_numpy()}, runs.loss.to_numpy()
    one = sl.fit_joint("E + A*N**-a", x, y, bootstrap=0)  # was 11 'formulas', one per character
    assert list(one.params) == ["E", "A", "a"]
    with pytest.raises(sl.ParameterError, match="^inputs must map"):
        sl.fit_joint("E + A*N**-a", [1.0, 2.0], y)


def test_load_result_of_something_not_a_path_is_a_parameter_error():
    with pytest.raises(sl.ParameterError, match="path must be a file name, not int"):
        sl.load_result(5)


@pytest.mark.parametrize("kw, said", [
    ({"columns": ["N"]}, "columns must be a dict such as {'N': 'params'"),
    ({"tie": "beta=alpha"}, "tie must be a dict such as {'beta': 'alpha'}, not str"),
    ({"fix": "E=1.69"}, "fix must be a dict such as {'E': 1.69}, not str"),  # was read letter by letter
    ({"fix": {"E": "abc"}}, "fix E must be a number, not 'abc'"),
    ({"bounds": {"alpha": 0.5}}, "bounds of alpha must be a pair (lo, hi), not 0.5"),
    ({"bounds": {"alpha": (0.1, 0.2, 0.3)}}, "bounds of alpha must be a pair"),  # was fitted on (0.1, 0.2)
    ({"holdout_top": "4"}, "holdout_top must be a whole number >= 0, not '4'"),
])
def test_options_of_the_wrong_shape_are_parameter_errors_naming_the_option(runs, kw, said):
    with pytest.raises(sl.ParameterError) as info:
        sl.fit_law("chinchilla", runs, bootstrap=0, **kw)
    assert said in str(info.value) and info.value.parameters == (next(iter(kw)),)


def test_fit_isoflop_columns_must_be_a_dict(runs):
    with pytest.raises(sl.ParameterError, match="^columns must be a dict"):
        sl.fit_isoflop(runs, columns=["N"])


def test_budgets_are_positive_numbers_or_a_parameter_error(runs):
    res = sl.fit_law("chinchilla", runs, bootstrap=0)
    with pytest.raises(sl.ParameterError, match="^C must be a positive number, not -5"):
        res.optimum(-5)  # was an Optimum of NaNs
    with pytest.raises(sl.ParameterError, match="^C must be a number, not"):
        res.optimum([1e21, 1e22])
    with pytest.raises(sl.ParameterError, match="^inference_tokens must be a non-negative number"):
        res.optimum(1e22, inference_tokens=-1)
    assert res.optimum("1e22").N.value == pytest.approx(res.optimum(1e22).N.value, rel=1e-12)
    with pytest.raises(sl.ParameterError, match="^compute must be a number, not"):
        sl.make_plan(compute=[1e22], loss_law=res)  # was TypeError from math.isfinite
    assert sl.make_plan(compute="1e22", loss_law=res).N == pytest.approx(
        sl.make_plan(compute=1e22, loss_law=res).N, rel=1e-12)


def test_a_fit_predicts_at_the_rows_of_a_table_as_at_keywords(runs):
    res = sl.fit_law("chinchilla", runs, bootstrap=20)
    N, D = runs.N.to_numpy(), runs.D.to_numpy()
    np.testing.assert_array_equal(res.predict(runs), res.predict(N=N, D=D))
    for a, b in zip(res.predict_interval(runs, new_run=True), res.predict_interval(new_run=True, N=N, D=D),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(sl.ParameterError, match=r"^data lack \['D'\]"):
        res.predict({"N": [1e9]})
    with pytest.raises(sl.ParameterError, match="^data must map"):
        res.predict_interval(True)  # new_run given positionally is not read as a table


@pytest.mark.parametrize("call", [
    lambda runs: sl.fit_curves(runs, columns=["schedule"], bootstrap=0),  # was ValueError from dict()
    lambda runs: sl.fit_hparam_law(runs, columns=["lr"]),                 # was AttributeError
    lambda runs: sl.design_pool(runs, "chinchilla", cost="6*N*D", target="top:10%", budget=0.1,
                                columns=["N"]),
], ids=["fit_curves", "fit_hparam_law", "design_pool"])
def test_columns_must_be_a_dict_wherever_a_table_is_taken(runs, call):
    with pytest.raises(sl.ParameterError, match="^columns must be a dict such as"):
        call(runs)
