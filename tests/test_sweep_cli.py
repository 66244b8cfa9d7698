"""The sweep and demo commands, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.runs.store import RunStore

runner = CliRunner()


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def text(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    words = ["lambda", "yield", "async", "await", "with", "as", "try", "except", "pass"]
    path = tmp_path / "corpus.txt"
    path.write_text(" ".join(rng.choice(words, 30_000)))
    return path


def invoke(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_plan_then_run_then_rerun_an_isoflop_sweep(tmp_path, text):
    plan = tmp_path / "iso.toml"
    out = invoke("sweep", "plan", "isoflop", "--budgets", "3e8,1e9", "--sizes", "2", "--data",
                 str(text), "--seq-len", "32", "--batch-tokens", "256", "--out", str(plan))
    assert out["runs"] == 4 and plan.exists()
    store = tmp_path / "s.duckdb"
    report = invoke("sweep", "run", str(plan), "--store", str(store))
    assert (report["finished"], report["failed"], report["skipped"]) == (4, 0, 0)
    runs = RunStore(store).runs()
    assert len(runs) == 4 and set(runs["tags"].map(lambda t: t["sweep"])) == {"isoflop"}
    result = runner.invoke(app, ["sweep", "run", str(plan), "--store", str(store), "--json"])
    again = json.loads(result.stdout)
    assert (again["finished"], again["skipped"]) == (0, 4)
    # the resumed sweep's progress counts what the store holds: no "0/0"
    assert "runs 4/4 done · 0 in flight · 0 failed · 4 from the store · 100%" in result.stderr


def test_grid_plans_are_written_with_one_run_per_combination(tmp_path, text):
    out = invoke("sweep", "plan", "grid", "--lr", "1e-3,3e-3", "--batch", "256,512", "--sizes",
                 "1e4", "--tokens", "1e5", "--seq-len", "32", "--data", str(text), "--out",
                 str(tmp_path / "g.toml"))
    assert out["runs"] == 4


def test_bad_input_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # long temporary paths on one line
    result = runner.invoke(app, ["sweep", "run", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "plan file not found" in result.output
    result = runner.invoke(app, ["sweep", "plan", "isoflop", "--budgets", "1e12,abc"])
    assert result.exit_code == 2 and "--budgets" in result.output
    result = runner.invoke(app, ["sweep", "plan", "isoflop", "--budgets", "1e12", "--data",
                                 str(tmp_path / "missing")])
    assert result.exit_code == 2 and "not found" in result.output
    result = runner.invoke(app, ["sweep", "run", "x.toml", "--backend", "slurm"])
    assert result.exit_code == 2 and "local or ray" in result.output


@pytest.mark.slow
def test_demo_quick_goes_from_nothing_to_a_fitted_law_a_plan_and_a_report(tmp_path):
    out = tmp_path / "demo"
    result = invoke("demo", "--quick", "--out", str(out))
    assert result["sweep"]["failed"] == 0 and result["sweep"]["finished"] >= 8
    assert (out / "plan.toml").exists() and (out / "runs.duckdb").exists()
    html = (out / "report.html").read_text()
    assert "IsoFLOP" in html and 'data-chart="chinchilla_parity"' in html
    # the report is written after the held-out check, and carries it
    assert "Held-out check: fitted without the" in html
    assert {"isoflop", "chinchilla_parity", "chinchilla_corner"} <= set(result["figures"])
    assert all(Path(p).stat().st_size > 1000 for p in result["figures"].values())
    fit = result["fit"]
    assert fit is not None and set(fit["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert set(fit["ci"]) == set(fit["params"])
    check = result["extrapolation"]
    assert check is not None and abs(check["rel_error"]) < 0.15
    plan = result["plan_for_larger_budget"]
    if plan is None:
        # a plan the runs cannot support is refused, naming what is missing (issue 24), and
        # nothing claims to be a plan
        reason = result["plan_refused"]
        assert result["plan_not_identified"] and "identif" in reason
        # it names the unidentified parameters the allocation rests on (an offset such as E
        # does not move N and D, so it alone refuses only the loss)
        named = reason.split("depends on ")[1].split(", which")[0].split(", ")
        assert named and set(named) <= set(fit["unidentified"])
        assert result["larger_plan"] is None and not (out / "plan.json").exists()
    else:
        assert plan["N"] > 0 and plan["D"] > 0 and plan["lr"] > 0 and plan["steps"] > 0
        # a plan resting on an unidentified offset stands, its loss marked as no estimate
        assert result["plan_not_identified"] == bool(fit["unidentified"])
        # the plan it prints is saved
        assert result["larger_plan"] == str(out / "plan.json")
        saved = json.loads((out / "plan.json").read_text())
        assert saved["N"] == plan["N"] and saved["train_flops"] == plan["train_flops"]
    # the sweep is the adaptive loop; whatever its runs leave unidentified is named, in the
    # result and among its warnings, exactly as the reported fit flags it
    design, text = result["design"], result["identification"]
    assert design is not None and set(design["unidentified"]) == set(fit["unidentified"])
    if fit["unidentified"]:
        named = text.split(" are not identified")[0].split(" is not identified")[0]
        assert all(name in named for name in fit["unidentified"])
        assert text in result["warnings"]
    else:
        assert text.startswith("every chinchilla parameter") and text not in result["warnings"]
    assert len(design["rounds"]) >= 2  # the seed's fit and at least one designed round
    assert design["spent"] <= design["spend"]
    # a second run resumes: nothing is trained again
    assert invoke("demo", "--quick", "--out", str(out), "--bootstrap", "0")["sweep"]["skipped"] == result["sweep"]["planned"]
