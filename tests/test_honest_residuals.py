"""Residual structure by M and N separates a law's misfit from run-to-run noise, and a noise
floor (given, or from replicate runs) marks errors that are within noise (issue 24, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.fit.loss import fit_law
from scalinglab.fit.residuals import residual_structure
from scalinglab.laws.loss import CHINCHILLA

ROOT = Path(__file__).resolve().parents[1]
GADRE = ROOT / ".." / "shared" / "data" / "ext" / "gadre_rpj.csv"
LADDER = ROOT / ".." / "shared" / "data" / "olmo_ladder"
TRUE = {"E": 1.8, "A": 400.0, "B": 1200.0, "alpha": 0.34, "beta": 0.30}
runner = CliRunner()


@pytest.mark.skipif(not GADRE.exists(), reason=f"shared data absent: {GADRE}")
def test_gadre_m5_runs_are_misfit_not_noise():
    # the case that exposed it: the residual spread, shown as "run-to-run noise", is mostly the
    # M = 5 runs lying above the law
    d = pd.read_csv(GADRE)
    fit = fit_law("chinchilla", d[["N", "D", "loss"]], bootstrap=0)
    rs = fit.residual_structure
    by_m = next(t for t in rs["tests"] if t["by"] == "M")
    assert rs["misfit"] and by_m["p"] < 0.01
    assert [o["group"] for o in by_m["off"]] == ["M = 5"] and by_m["off"][0]["range"][1] > 0.1
    text = fit.summary().as_text()
    assert "misfit, not noise: structured by M" in text and "run-to-run noise (log loss)" not in text
    # the warning says what M is: it reaches users of every law with N and D (a ladder, a pool)
    assert any(w.startswith("residuals are structured by M (tokens per parameter, D/N) (F test")
               and "runs at M = 5 (4)" in w for w in fit.warnings)
    # without the M = 5 runs the rest show no structure
    rest = fit_law("chinchilla", d.loc[d.tok_mult >= 10, ["N", "D", "loss"]], bootstrap=0)
    assert not rest.residual_structure["misfit"]


def ladder_runs() -> pd.DataFrame:
    sizes = json.loads((LADDER / "final.json").read_text())
    rows = []
    for f in sorted(LADDER.glob("*.csv")):
        size, rest = f.stem.split("-", 1)
        key = {"1B": "1.3B"}.get(size, size)
        if key not in sizes:
            continue
        last = pd.read_csv(f).dropna(subset=["eval/c4_en-validation/CrossEntropyLoss"]).iloc[-1]
        n = float(sizes[key]["n"])
        rows.append({"run_id": f.stem, "N": n, "D": 20 * float(rest.split("xC")[0]) * n,
                     "loss": float(last["eval/c4_en-validation/CrossEntropyLoss"])})
    return pd.DataFrame(rows)


@pytest.mark.skipif(not (LADDER / "final.json").exists(), reason=f"shared data absent: {LADDER}")
def test_olmo_ladder_reruns_set_the_noise_floor_at_the_published_seed_noise():
    fit = fit_law("chinchilla", ladder_runs(), bootstrap=0)
    rs = fit.residual_structure
    # reruns differ by 0.015-0.03% in final C4 loss (Bhagia et al.)
    assert rs["n_replicate_sets"] == 4 and 1e-4 < rs["replicate_std"] < 4e-4
    assert rs["noise_floor"] == rs["replicate_std"] and "replicate runs" in rs["noise_floor_source"]
    # the law's residual spread is 30x that: misfit, which the summary says
    assert fit.residual_std > 10 * rs["replicate_std"] and rs["misfit"]


def noisy_runs_csv(tmp_path: Path) -> Path:
    """runs.csv: 24 runs (6 sizes x 4 tokens per parameter) of the law with 0.05% noise only."""
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 1e9, 6), 4)
    D = N * np.tile([10.0, 20.0, 40.0, 80.0], 6)
    loss = CHINCHILLA(TRUE, N=N, D=D) * np.exp(rng.normal(0, 5e-4, N.size))
    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": N, "D": D, "loss": loss}).to_csv(path, index=False)
    return path


def test_errors_below_the_noise_floor_are_within_noise(tmp_path):
    path = noisy_runs_csv(tmp_path)
    res = runner.invoke(app, ["fit", "chinchilla", str(path), "--bootstrap", "0", "--holdout-top", "2",
                              "--noise-floor", "0.5%"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "within noise (floor 0.50%, given)" in text
    assert "noise floor: 0.500% of loss (given)" in text
    assert "no structure by M, N" in text  # pure noise: nothing flagged as misfit
    res = runner.invoke(app, ["fit", "chinchilla", str(path), "--noise-floor", "2"])
    assert res.exit_code == 2 and "--noise-floor" in res.output


def test_structure_is_found_by_size_too_and_not_in_pure_noise():
    rng = np.random.default_rng(3)
    N = np.repeat(np.geomspace(1e7, 1e9, 5), 6)
    D = N * np.tile(np.geomspace(10, 200, 6), 5)
    truth = CHINCHILLA(TRUE, N=N, D=D)
    noisy = truth * np.exp(rng.normal(0, 0.002, N.size))
    rs = residual_structure({"N": N, "D": D}, noisy, truth)
    assert not rs.misfit and rs.warnings == []
    bent = noisy * np.where(N == N.max(), 1.03, 1.0)  # the largest size 3% off the law
    rs = residual_structure({"N": N, "D": D}, bent, truth)
    by_n = next(t for t in rs.tests if t["by"] == "N")
    assert by_n["p"] < 0.01 and by_n["off"][0]["group"] == "N = 1e+09"


@pytest.mark.parametrize("command", [
    ["law", "chinchilla"],
    ["custom", "--formula", "E + A*N**-alpha + B*D**-beta", "--inputs", "N,D"],
])
def test_fit_law_and_fit_custom_take_the_noise_floor_as_fit_chinchilla_does(tmp_path, command):
    from scalinglab.fit.commands import NoiseFloorOpt, chinchilla, custom_cmd, law_cmd

    # one option object for the three commands, so help, parsing and defaults cannot drift apart
    for cmd in (chinchilla, law_cmd, custom_cmd):
        assert cmd.__defaults__ is not None and NoiseFloorOpt in cmd.__defaults__, cmd.__name__
    path = noisy_runs_csv(tmp_path)
    base = ["fit", *command, str(path), "--bootstrap", "0", "--holdout-top", "2"]
    res = runner.invoke(app, [*base, "--noise-floor", "0.5%", "--json"])
    assert res.exit_code == 0, res.output
    rs = json.loads(res.stdout)["residual_structure"]
    assert rs["noise_floor"] == pytest.approx(0.005) and rs["noise_floor_source"] == "given"
    text = " ".join(runner.invoke(app, [*base, "--noise-floor", "0.5%"]).output.split())
    assert "within noise (floor 0.50%, given)" in text
    assert "noise floor: 0.500% of loss (given)" in text
    res = runner.invoke(app, [*base, "--noise-floor", "2"])
    assert res.exit_code == 2 and "--noise-floor" in res.output
