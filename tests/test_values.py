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


def test_shares_read_as_fractions_or_percentages():
    from scalinglab.values import parse_fraction

    assert parse_fraction("5%") == pytest.approx(0.05) and parse_fraction("0.05") == 0.05
    assert parse_fraction("0.01%") == pytest.approx(1e-4) and parse_fraction(0.2) == 0.2
    for bad in ("lots", "%", "nan", "inf%"):
        with pytest.raises(ValueError, match=r"is not a share \(e\.g\. 0\.05 or 5%\)"):
            parse_fraction(bad)


#: typed number flags of the commands: a bad value is one line naming the flag, before any work
BAD_FLAGS = [
    (["design", "pool", "pool.csv", "--cost", "6*N*D", "--law", "chinchilla", "--budget", "150%"],
     "--budget must be a share in (0, 1] (e.g. 0.05 or 5%), not '150%'"),
    (["design", "replay", "pool.csv", "--cost", "6*N*D", "--budgets", "1%,x"],
     "--budgets 'x' is not a share (e.g. 0.05 or 5%)"),
    (["simulate", "--domain-tpp", "50,5"],
     "--domain-tpp '50,5': give LOW,HIGH with 0 < LOW <= HIGH"),
    (["simulate", "--spend", "1e20,-1e21"], "--spend must be positive finite numbers, not '-1e21'"),
    (["design", "next", "--target", "1e22", "--spend", "lots"],
     "--spend 'lots' is not a number (e.g. 1e21, 7B, 1.4T)"),
    (["sweep", "auto", "--target", "1e22", "--spend", "1e20", "--until-ci", "tight"],
     "--until-ci 'tight' is not a share"),
    (["sweep", "auto", "--target", "1e22", "--spend", "1e20", "--seed-fraction", "0"],
     "--seed-fraction must be a share in (0, 1]"),
    (["hparams", "predict", "--params", "1B", "--tokens", "lots"], "--tokens 'lots' is not a number"),
    (["hparams", "transfer", "--lr", "3e-4", "--from-batch", "0", "--to-batch", "2M"],
     "--from-batch must be a positive number, not '0'"),
    (["testtime", "budget", "--model", "a=x.csv", "--params", "a=8B", "--prompt-tokens", "1",
      "--generated-tokens", "1", "--budget", "1e14,lots"],
     "--budget '1e14,lots': expected comma-separated numbers (e.g. 1e21, 7B, 1.4T); 'lots' is not one"),
    (["testtime", "budget", "--model", "a=x.csv", "--params", "a=-8B", "--prompt-tokens", "1",
      "--generated-tokens", "1", "--budget", "1e14"], "--params a must be a positive finite number"),
    (["testtime", "pass-at-k", "x.csv", "--k", "1,0"], "--k must be whole numbers >= 1, not '0'"),
    (["report", "--batch-tokens", "0.5M", "--compute", "huge"], "--compute 'huge' is not a number"),
]


@pytest.mark.parametrize(("args", "says"), BAD_FLAGS, ids=[" ".join(a[:2]) + " " + s[:12] for a, s in BAD_FLAGS])
def test_a_bad_number_flag_is_one_line_naming_the_flag(args, says, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from scalinglab.cli import app

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert says in " ".join(res.output.replace("│", " ").split()), res.output
    assert "Traceback" not in res.output and not list(tmp_path.iterdir())  # nothing written


def test_number_flags_take_human_numbers_and_percentages():
    import json

    from typer.testing import CliRunner

    from scalinglab.cli import app

    res = CliRunner().invoke(app, ["hparams", "transfer", "--lr", "3e-4", "--from-batch", "0.5M",
                                   "--to-batch", "2M", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["from_batch"] == 5e5 and out["to_batch"] == 2e6
    assert out["lr"] == pytest.approx(3e-4 * 2)  # square-root rule: 4x the batch, 2x the lr
