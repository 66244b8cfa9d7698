"""`scalinglab fit curves` and `scalinglab predict curve` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.laws.curves import MultiPowerLaw
from scalinglab.laws.schedules import Schedule, cosine

runner = CliRunner()
TRUTH = {"L0": 3.0, "A": 0.55, "alpha": 0.45, "B": 450.0, "C": 2.0, "beta": 0.55, "gamma": 0.6}
SHAPES = {"cos": cosine(12000, 3e-4, 3e-5, 1000), "const": cosine(12000, 3e-4, 3e-4, 1000),
          "drop": np.where(np.arange(8000) < 4000, cosine(8000, 3e-4, 3e-4, 1000), 9e-5)}


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def curves_csv(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    law = MultiPowerLaw()
    rows = []
    for name, lr in SHAPES.items():
        steps = np.arange(1000, lr.size, 100)
        loss = law.value(TRUTH, Schedule(lr), steps) * np.exp(5e-4 * rng.standard_normal(steps.size))
        loss[3] = np.nan  # an lr logged where the loss was not
        rows.append(pd.DataFrame({"name": name, "iter": steps, "learning_rate": lr[steps],
                                  "train_loss": loss}))
    path = tmp_path_factory.mktemp("curves") / "curves.csv"
    pd.concat(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fit_json(curves_csv: Path) -> Path:
    out = curves_csv.with_name("fit.json")
    res = invoke("fit", "curves", curves_csv, "--law", "multipower", "--map",
                 "run=name,step=iter,lr=learning_rate,loss=train_loss", "-b", "20", "--save", out)
    assert res.exit_code == 0, res.output
    assert "multi-power law" in res.output and "cos" in res.output and "integrated" in res.output
    assert "estimate [95% interval]" in res.output  # the brackets say what they hold
    return out


def test_fit_curves_saves_a_curve_fit(fit_json: Path) -> None:
    data = json.loads(fit_json.read_text())
    assert data["kind"] == "curve_fit" and data["law"]["name"] == "multipower"
    assert set(data["run_ids"]) == {"cos", "const", "drop"} and len(data["draws"]) == 20


def test_predict_curve_json(fit_json: Path) -> None:
    res = invoke("predict", "curve", "--fit", fit_json, "--schedule",
                 "cosine:steps=24000,peak=3e-4,final=3e-5,warmup=1000", "--steps", "5000,23999",
                 "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)["curves"]["cosine:steps=24000,peak=3e-4,final=3e-5,warmup=1000"]
    assert got["step"] == [5000, 23999]
    truth = MultiPowerLaw().value(TRUTH, Schedule(cosine(24000, 3e-4, 3e-5, 1000)), [5000, 23999])
    np.testing.assert_allclose(got["loss"], truth, rtol=3e-3)  # a 2x longer run than any fitted
    assert all(lo <= v <= hi for lo, v, hi in zip(got["lo"], got["loss"], got["hi"], strict=True))
    # twice the longest fitted curve: the band is said to hold only the fitted runs' noise
    (warning,) = json.loads(res.output)["warnings"]
    assert "step 23999 is 2.02x the longest fitted curve (11900 steps)" in warning
    assert "lower bound on the uncertainty" in warning
    res = invoke("predict", "curve", "--fit", fit_json, "--schedule",
                 "cosine:steps=24000,peak=3e-4,final=3e-5,warmup=1000")
    assert res.exit_code == 0 and "warning: cosine:steps=24000" in res.output


def test_predict_curve_compares_and_optimises(fit_json: Path) -> None:
    res = invoke("predict", "curve", "--fit", fit_json, "--compare",
                 "constant:steps=12000,peak=3e-4,warmup=1000,"
                 "wsd:steps=12000,peak=3e-4,final=3e-5,warmup=1000,decay_start=10000,decay=exp",
                 "--best-wsd", "steps=12000,peak=3e-4,final=3e-5,warmup=1000", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["compare"][0]["schedule"].startswith("wsd:") and out["compare"][0]["rank"] == 1
    assert 0 < out["best_wsd"]["best"]["decay_steps"] < 11000
    assert out["warnings"] == []  # as long as the fitted runs: no extrapolation to warn of


def test_predict_curve_errors_are_one_line(fit_json: Path, tmp_path: Path) -> None:
    res = invoke("predict", "curve", "--fit", fit_json, "--schedule", "cosine:steps=100,peek=1")
    assert res.exit_code == 2 and "KEY=VALUE" in res.output and "Traceback" not in res.output
    res = invoke("predict", "curve", "--fit", tmp_path / "none.json", "--schedule", "constant:steps=9,peak=1")
    assert res.exit_code == 2 and "no such file" in res.output


def test_fit_curves_reports_the_bad_cell(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("run,step,lr,loss\na,1,1e-3,3.0\na,2,1e-3,oops\n")
    res = invoke("fit", "curves", bad)
    assert res.exit_code == 2 and "row 2" in res.output and "'loss'" in res.output


def test_predict_curve_from_a_schedule_file(fit_json: Path, tmp_path: Path) -> None:
    lr = cosine(9000, 3e-4, 3e-5, 1000)
    every = tmp_path / "every.csv"
    pd.DataFrame({"step": np.arange(lr.size), "lr": lr}).to_csv(every, index=False)
    sparse = tmp_path / "sparse.csv"
    pd.DataFrame({"step": np.arange(1000, lr.size, 250), "lr": lr[1000::250]}).to_csv(sparse, index=False)
    out = {}
    for path in (every, sparse):
        res = invoke("predict", "curve", "--fit", fit_json, "--schedule", path, "--steps",
                     "8750", "--json")
        assert res.exit_code == 0, res.output
        out[path.stem] = json.loads(res.output)["curves"][str(path)]["loss"][0]
    truth = MultiPowerLaw().value(TRUTH, Schedule(lr), [8750])[0]
    assert out["every"] == pytest.approx(truth, rel=3e-3)
    assert out["sparse"] == pytest.approx(out["every"], rel=1e-3)  # integrated from 33 logged steps


def test_the_catalogue_lists_the_curve_laws() -> None:
    res = invoke("fit", "laws", "--json")
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["multipower"]["params"] == ["L0", "A", "alpha", "B", "C", "beta", "gamma"]
    assert "Tissue" in rows["momentum"]["provenance"]["source"]


def test_predict_curve_says_what_its_interval_holds(fit_json: Path) -> None:
    """lo and hi are named: their level and kind in the JSON and in the table's title, and
    --level reaches every figure that quotes one (the best WSD length's spread too)."""
    spec = "cosine:steps=12000,peak=3e-4,final=3e-5,warmup=1000"
    res = invoke("predict", "curve", "--fit", fit_json, "--schedule", spec, "--steps", "5000",
                 "--band", "mean", "--level", "0.9", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["band"] == "mean" and out["level"] == 0.9
    res = invoke("predict", "curve", "--fit", fit_json, "--schedule", spec, "--steps", "5000")
    assert "lo, hi: 95% prediction band, where the loss as logged will fall" in res.output
    res = invoke("predict", "curve", "--fit", fit_json, "--level", "0.8", "--best-wsd",
                 "steps=12000,peak=3e-4,final=3e-5,warmup=1000")
    assert res.exit_code == 0, res.output
    assert "steps (80% of draws between" in res.output and "the law's 80% interval" in res.output


def test_fit_curves_without_a_run_column_says_how_to_name_one(curves_csv: Path) -> None:
    res = invoke("fit", "curves", curves_csv, "--map", "step=iter,lr=learning_rate,loss=train_loss")
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "no column 'run' for the run" in res.output
    assert "name the run's column with --map run=COLUMN" in res.output
