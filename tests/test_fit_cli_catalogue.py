"""The new fit flags and commands as a user types them: constraints, custom laws, select, akima."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.fit import FitResult
from scalinglab.fit.synthetic import isoflop_runs
from scalinglab.laws.catalogue import MUENNIGHOFF_2023, MUENNIGHOFF_2023_C4

runner = CliRunner()


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cat") / "runs.csv"
    isoflop_runs(budgets=np.geomspace(1e18, 1e21, 6), per_budget=8, noise=0.004, seed=0).to_csv(
        path, index=False)
    return path


def invoke(*args: str):
    return runner.invoke(app, ["fit", *args])


def flat(res) -> str:
    return " ".join(res.output.replace("│", " ").split())


def test_new_commands_have_examples():
    for name in ("law", "custom", "select", "laws"):
        res = invoke(name, "--help")
        assert res.exit_code == 0 and "Example: scalinglab fit " + name in res.output


def test_tie_fix_and_bounds_from_the_command_line(runs_csv):
    res = invoke("chinchilla", str(runs_csv), "--tie", "alpha=beta", "--fix", "E=1.82",
                 "--bounds", "alpha=0.1:1", "-b", "5", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out["params"]) == {"A", "B", "alpha"}
    assert out["law_spec"]["definition"]["kind"] == "constrained"
    # every parameter of the base law is reported, with how it was set
    assert out["all_params"]["E"] == 1.82 and out["all_params"]["beta"] == out["params"]["alpha"]
    assert out["param_status"] == {"E": "fixed", "A": "fitted", "B": "fitted", "alpha": "fitted",
                                   "beta": "tied to alpha"}


def test_estimator_weights_and_dropped_runs_are_reported(runs_csv):
    res = invoke("chinchilla", str(runs_csv), "--loss", "asymmetric", "--over-penalty", "3",
                 "--weights", "sqrtC", "--drop-highest", "2", "-b", "0", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["fit"]["estimator"] == {"kind": "asymmetric", "delta": 0.001, "over_penalty": 3.0}
    assert len(out["dropped_ids"]) == 2 and out["n_runs"] == 46


@pytest.mark.parametrize("args, words", [
    (["--tie", "alpha"], "--tie 'alpha' must look like alpha=beta"),
    (["--tie", "alpha=gamma"], "not among the law's parameters"),
    (["--fix", "E=abc"], "must be a number"),
    (["--bounds", "alpha=1"], "must look like alpha=LO:HI"),
    (["--loss", "l1"], "--loss must be one of"),
    (["--weights", "nope"], "--weights 'nope' is neither"),
    (["--tie", "beta=E"], "logarithm"),
])
def test_bad_flags_are_one_line_errors_naming_the_flag(runs_csv, args, words):
    res = invoke("chinchilla", str(runs_csv), "-b", "0", *args)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert words in flat(res)


def test_custom_formula_fits_saves_and_loads_back(runs_csv, tmp_path):
    save = tmp_path / "custom.json"
    res = invoke("custom", str(runs_csv), "--formula", "E + A*N^-alpha + B*D^-beta",
                 "--inputs", "N,D", "--name", "mine", "-b", "10", "--save", str(save), "--json")
    assert res.exit_code == 0, res.output
    fit = FitResult.from_dict(json.loads(save.read_text()))
    assert fit.law.name == "mine" and fit.n_draws == 10
    plan = runner.invoke(app, ["plan", "--compute", "1e21", "--law", str(save), "--json"])
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.output)["loss_interval"] is not None


@pytest.mark.parametrize("formula", ["__import__('os').getcwd()", "E + A*N.real", "E + open(N)",
                                     "E + A*N**-alpha; x"])
def test_custom_formula_injection_is_refused(runs_csv, formula):
    res = invoke("custom", str(runs_csv), "--formula", formula, "--inputs", "N", "-b", "0")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "formula" in flat(res)


def test_fit_law_by_name_with_unique_tokens(tmp_path):
    from scalinglab.fit.synthetic import random_runs

    truth = MUENNIGHOFF_2023.with_params({**MUENNIGHOFF_2023_C4.params, "RD_star": 8.0})
    runs = random_runs(60, truth=truth, noise=0.003, seed=4,
                       ranges={"N": (1e8, 2e9), "D": (1e9, 1e11), "U": (1e8, 1e10)})
    path = tmp_path / "dc.csv"
    runs.rename(columns={"U": "unique_tokens"}).to_csv(path, index=False)
    fixed = ",".join(f"{k}={MUENNIGHOFF_2023_C4.params[k]!r}" for k in ("E", "A", "B", "alpha", "beta"))
    res = invoke("law", "muennighoff2023", str(path), "--unique-tokens", "unique_tokens",
                 "--fix", fixed, "-b", "0", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["params"]["RD_star"] == pytest.approx(8.0, rel=0.15)
    missing = invoke("law", "muennighoff2023", str(path), "-b", "0")
    assert missing.exit_code == 2 and "missing column" in flat(missing) and "'U'" in flat(missing)


def test_select_ranks_laws_and_names_one(runs_csv):
    res = invoke("select", str(runs_csv), "--laws", "chinchilla,power_C", "-b", "0", "--steps",
                 "2", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["recommended"] == "chinchilla" and len(out["ranking"]) == 2


def test_select_prints_the_error_by_distance_its_json_has(runs_csv):
    args = ("select", str(runs_csv), "--laws", "chinchilla,power_C", "-b", "0", "--steps", "2")
    text = flat(invoke(*args))
    out = json.loads(invoke(*args, "--json").output)
    assert "rolling-forward error by distance in compute" in text
    for r in out["ranking"]:
        assert r["by_distance"]
        for b in r["by_distance"]:
            lo, hi = (float("inf") if x is None else x for x in b["decades"])  # JSON: inf is null
            assert (f"{r['law']} ({lo:g}, {hi:g}] {b['n']} {b['mean_abs_rel_err']:.2%} "
                    f"{b['max_abs_rel_err']:.2%}") in text


def test_isoflop_akima_and_the_catalogue_listing(runs_csv):
    res = invoke("isoflop", str(runs_csv), "--method", "akima", "-b", "20", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["approach2_method"] == "akima"
    listing = invoke("laws", "--json")
    names = [r["name"] for r in json.loads(listing.output)]
    assert {"gadre2024", "muennighoff2023", "chinchilla_tied", "broken_power_C"} <= set(names)


def test_plan_unique_tokens_prints_epochs():
    res = runner.invoke(app, ["plan", "--compute", "1e21", "--law", "muennighoff2023_c4",
                              "--unique-tokens", "10B", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["epochs"] == pytest.approx(out["D"] / 1e10)
    bad = runner.invoke(app, ["plan", "--compute", "1e21", "--unique-tokens", "10B"])
    assert bad.exit_code == 2 and "--unique-tokens" in flat(bad)


def test_custom_formula_with_a_definition(runs_csv):
    res = invoke("custom", str(runs_csv), "--formula", "E + A*N**-alpha + B/Deff**beta",
                 "--define", "Deff=D", "--inputs", "N,D", "-b", "0", "--json")
    assert res.exit_code == 0, res.output
    assert set(json.loads(res.output)["params"]) == {"E", "A", "alpha", "B", "beta"}
    bad = invoke("custom", str(runs_csv), "--formula", "E + A*N", "--define", "oops",
                 "--inputs", "N", "-b", "0")
    assert bad.exit_code == 2 and "--define 'oops' must look like NAME=EXPRESSION" in flat(bad)
