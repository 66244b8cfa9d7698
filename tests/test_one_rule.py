"""One rule decides which runs inform a law, and every path to a fit uses it.

A store of 48 (N, D) points x 2 seeds, with a mistuned learning rate at some points: the CLI, the
report, the dashboard and the demo must fit the same runs and so give the same parameters.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.fit.synthetic import isoflop_runs
from scalinglab.runs.select import select_runs
from scalinglab.runs.store import RunStore


def replicate_runs() -> pd.DataFrame:
    base = isoflop_runs(budgets=np.geomspace(1e18, 1e21, 6), per_budget=8, noise=0.0, seed=0)
    rng = np.random.default_rng(5)
    frames = []
    for seed in (0, 1):
        f = base.copy()
        f["loss"] *= np.exp(0.004 * rng.standard_normal(len(f)))
        f["lr"], f["seed"] = 3e-3, seed
        frames.append(f)
    mistuned = base.iloc[::5].copy()
    mistuned["loss"] *= 1.08  # a too-high learning rate: worse, and not what the law describes
    mistuned["lr"], mistuned["seed"] = 1e-2, 0
    out = pd.concat([*frames, mistuned], ignore_index=True)
    out["run_id"] = [f"r{i:03d}" for i in range(len(out))]
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    path = tmp_path_factory.mktemp("one") / "runs.duckdb"
    s = RunStore(path)
    s.import_frame(replicate_runs(), source="replicates")
    return RunStore(path, read_only=True)


def test_the_rule_keeps_every_replicate_of_the_best_setting():
    runs = replicate_runs()
    chosen = select_runs(runs)
    assert len(chosen.frame) == 96 and (chosen.frame["lr"] == 3e-3).all()
    assert "96 of 106 runs" in chosen.notes[0]
    best = select_runs(runs, best_per_point=True)
    assert len(best.frame) == 48
    assert best.frame.groupby(["N", "D"]).size().eq(1).all()
    every = select_runs(runs, all_runs=True)
    assert len(every.frame) == len(runs) and not every.notes


def test_group_by_keeps_runs_that_differ_in_another_column_apart():
    runs = pd.DataFrame({"N": [1e8] * 4, "D": [1e9] * 4, "loss": [3.0, 3.1, 2.9, 3.2],
                         "unique_tokens": [1e8, 1e8, 1e9, 1e9]})
    assert len(select_runs(runs, best_per_point=True).frame) == 1
    kept = select_runs(runs, best_per_point=True, group_by=["unique_tokens"]).frame
    assert sorted(kept["loss"]) == [2.9, 3.0]
    from scalinglab.errors import ParameterError

    with pytest.raises(ParameterError, match="did you mean 'unique_tokens'"):
        select_runs(runs, group_by=["unique_token"])


def test_cli_report_dashboard_and_demo_fit_the_same_runs_to_the_same_parameters(store, tmp_path):
    from scalinglab.demo.job import analyse
    from scalinglab.report.server import create_app

    runner = CliRunner()
    cli = runner.invoke(app, ["fit", "chinchilla", "--store", str(store.path), "--bootstrap", "0",
                              "--json"])
    assert cli.exit_code == 0, cli.output
    cli_fit = json.loads(cli.stdout)
    report = runner.invoke(app, ["report", "--store", str(store.path), "--bootstrap", "0",
                                 "--out", str(tmp_path / "r.html"), "--json"])
    assert report.exit_code == 0, report.output
    report_fit = json.loads(report.stdout)["fits"]["chinchilla"]
    api_fit = TestClient(create_app(store.path), base_url="http://127.0.0.1").get("/api/fit", params={"bootstrap": 0}).json()["fit"]
    summary, _, _ = analyse(store, {}, bootstrap=0)
    demo_fit = summary.primary_fit.to_dict()
    assert cli_fit["n_runs"] == 96
    for other in (report_fit, api_fit, demo_fit):
        assert other["run_ids"] == cli_fit["run_ids"]
        assert other["params"] == pytest.approx(cli_fit["params"], rel=1e-12)


def test_best_per_point_and_group_by_reach_the_cli(store):
    runner = CliRunner()
    res = runner.invoke(app, ["fit", "chinchilla", "--store", str(store.path), "--bootstrap", "0",
                              "--best-per-point", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n_runs"] == 48 and any("lowest-loss run" in n for n in out["notes"])
    res = runner.invoke(app, ["fit", "chinchilla", "--store", str(store.path), "--bootstrap", "0",
                              "--group-by", "seed", "--json"])
    assert json.loads(res.stdout)["n_runs"] == 96
