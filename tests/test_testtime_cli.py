"""`scalinglab testtime ...` as a user types it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.testtime import pass_at_k
from scalinglab.testtime.synthetic import simulate_counts

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["testtime", *args])


def flat(res) -> str:
    return " ".join(res.output.replace("│", " ").split())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tt")
    small = simulate_counts(-1.3, -0.35, n_problems=200, n_samples=256, rng=np.random.default_rng(0))
    big = simulate_counts(-0.6, -0.35, n_problems=200, n_samples=32, rng=np.random.default_rng(1))
    frames = {}
    for name, data in (("small", small), ("big", big)):
        frames[name] = pd.DataFrame({"problem": data.problem_ids, "n": data.n, "c": data.c})
        frames[name].to_csv(d / f"{name}.csv", index=False)
    both = pd.concat([f.assign(model=m) for m, f in frames.items()])
    both.to_csv(d / "both.csv", index=False)
    samples = [{"task": p, "ok": int(j < c)} for p, n, c in zip(big.problem_ids[:30], big.n[:30], big.c[:30], strict=True)
               for j in range(n)]
    with (d / "samples.jsonl").open("w") as fh:
        for s in samples:
            fh.write(json.dumps(s) + "\n")
    return d, small, big


def test_every_command_has_an_example():
    for name in ("pass-at-k", "coverage", "samples-for-coverage", "budget", "verifier"):
        res = invoke(name, "--help")
        assert res.exit_code == 0 and f"Example: scalinglab testtime {name}" in flat(res)


def test_pass_at_k_json_from_counts_and_from_per_sample_rows(files):
    d, small, big = files
    res = invoke("pass-at-k", str(d / "small.csv"), "--k", "1,10", "--k", "100", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    got = {r["k"]: r["value"] for r in out["pass_at_k"]}
    assert got[10] == pytest.approx(pass_at_k(small.n, small.c, [10]).mean())
    assert all(r["ci"][0] <= r["value"] <= r["ci"][1] for r in out["pass_at_k"])
    res = invoke("pass-at-k", str(d / "samples.jsonl"), "--problem", "task", "--correct", "ok", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_problems"] == 30
    res = invoke("pass-at-k", str(d / "both.csv"), "--model", "model", "--k", "1", "--json")
    assert set(json.loads(res.stdout)) == {"small", "big"}


def test_coverage_fit_saved_then_samples_for_coverage(files, tmp_path):
    d, *_ = files
    save = tmp_path / "cov.json"
    res = invoke("coverage", str(d / "small.csv"), "--target", "0.8", "--bootstrap", "100",
                 "--save", str(save), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["params"]["a"] == pytest.approx(-1.3, rel=0.2) and out["samples_for"][0]["coverage"] == 0.8
    res = invoke("samples-for-coverage", str(save), "--coverage", "0.8", "--json")
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)["samples_for"][0]
    assert again["value"] == pytest.approx(out["samples_for"][0]["value"])
    res = invoke("samples-for-coverage", str(save), "--coverage", "0.99")
    assert res.exit_code == 0 and "extrapolated" in flat(res)


def test_budget_compares_a_bigger_model_with_more_samples(files, tmp_path):
    d, *_ = files
    res = invoke("budget", "--model", f"8b={d / 'small.csv'}", "--params", "8b=8e9",
                 "--model", f"70b={d / 'big.csv'}", "--params", "70b=7e10",
                 "--prompt-tokens", "500", "--generated-tokens", "300", "--budget", "1e14,1e16",
                 "--bootstrap", "50", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    first = out["rows"][0]
    assert first["options"]["70b"]["coverage"] is None and first["best"] == "8b"
    assert out["rows"][1]["options"]["8b"]["k"] == int((1e16 / 1.6e10 - 500) / 300)


def test_verifier_by_precision_or_false_positive_rate(files):
    d, *_ = files
    res = invoke("verifier", str(d / "small.csv"), "--recall", "0.9", "--precision", "0.8",
                 "--bootstrap", "50", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ceiling"]["value"] < out["points"][-1]["coverage"]["value"]
    res = invoke("verifier", str(d / "small.csv"), "--recall", "0.9", "--fpr", "0.01", "--k", "1,2,4,8")
    assert res.exit_code == 0 and "ceiling" in res.output


@pytest.mark.parametrize(("args", "message"), [
    (["pass-at-k", "{d}/small.csv", "--k", "1000"], "--k must be between 1 and the fewest samples"),
    (["pass-at-k", "{d}/small.csv", "--k", "2.5"], "--k must be whole numbers"),
    (["pass-at-k", "{d}/nosuch.csv"], "no such file"),
    (["pass-at-k", "{d}/samples.jsonl"], "need columns 'problem'"),
    (["coverage", "{d}/small.csv", "--target", "1.5"], "--target must be strictly between 0 and 1"),
    (["verifier", "{d}/small.csv", "--recall", "0.9"], "exactly one of --false-positive-rate and --precision"),
    (["verifier", "{d}/small.csv", "--recall", "0.9", "--precision", "0.01"], "--precision 0.01 with --recall 0.9 is impossible"),
    (["budget", "--model", "a={d}/small.csv", "--params", "b=1e9", "--prompt-tokens", "1",
      "--generated-tokens", "1", "--budget", "1e12"], "give --params for exactly the --model names"),
])
def test_errors_are_one_line(files, args, message):
    d, *_ = files
    res = invoke(*[a.format(d=d) for a in args])
    assert res.exit_code == 2 and message in flat(res), res.output
    assert "Traceback" not in res.output
