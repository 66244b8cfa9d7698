"""One parser of human numbers and one of KEY=VALUE lists, as the command line reads them."""

from __future__ import annotations

import math

import pytest

from scalinglab.errors import ParameterError
from scalinglab.runs.cells import parse_number
from scalinglab.values import parse_pairs, parse_quantities, parse_quantity


@pytest.mark.parametrize(("text", "value"), [
    ("7B", 7e9), ("1e21", 1e21), ("3.4e19", 3.4e19), ("1.4T", 1.4e12), ("125M", 1.25e8),
    ("2,048", 2048.0), ("1_000", 1000.0), ("2k", 2000.0), (" 3 ", 3.0), ("-0.5", -0.5),
    ("inf", math.inf), (".5", 0.5), ("1.5B", 1.5e9), (42, 42.0), (2.5, 2.5),
])
def test_human_numbers_read_as_the_run_import_reads_them(text, value):
    assert parse_quantity(text) == value
    if isinstance(text, str):  # the same grammar as a cell of a run file, bit for bit
        assert parse_quantity(text) == parse_number(text)


@pytest.mark.parametrize("text", ["lots", "7X", "", "nan", "1e", "B", "1.2.3", True, float("nan")])
def test_what_is_not_a_number_says_so_with_examples(text):
    with pytest.raises(ValueError, match=r"is not a number \(e\.g\. 1e21, 7B, 1\.4T\)"):
        parse_quantity(text)


def test_key_value_lists_are_repeatable_and_comma_separated():
    assert parse_pairs(["loss=final_loss", "N=params,D=tokens", ""]) == {
        "loss": "final_loss", "N": "params", "D": "tokens"}
    assert parse_pairs("url=http://x=y") == {"url": "http://x=y"}  # split at the first '='
    assert parse_pairs(None) == {}
    with pytest.raises(ParameterError, match="--set 'N' must look like KEY=VALUE"):
        parse_pairs(["N"], "--set")
    assert parse_quantities(["N=7B,D=1.4T"], "--at") == {"N": 7e9, "D": 1.4e12}
    with pytest.raises(ParameterError, match="--at N='big': not a number"):
        parse_quantities(["N=big"], "--at")


def test_numeric_flags_take_human_numbers(tmp_path):
    from report_synth import isoflop_runs
    from typer.testing import CliRunner

    from scalinglab.cli import app

    f = tmp_path / "runs.csv"
    isoflop_runs(budgets=[1e17, 1e18, 1e19], per_budget=5).to_csv(f, index=False)
    runner = CliRunner()
    out = runner.invoke(app, ["fit", "chinchilla", str(f), "--compute", "1B", "-b", "0"])
    assert out.exit_code == 0, out.output
    assert "N opt at C=1e+09" in out.output  # --compute 1B is 1e9 FLOPs
    bad = runner.invoke(app, ["fit", "chinchilla", str(f), "--compute", "7X"])
    assert bad.exit_code == 2 and "--compute '7X' is not a number (e.g. 1e21, 7B, 1.4T)" in bad.output
    import json

    plan = runner.invoke(app, ["plan", "--params", "1B", "--tokens", "20B", "--json"])
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.stdout)["N"] == 1e9 and json.loads(plan.stdout)["D"] == 2e10
