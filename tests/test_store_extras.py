"""Columns a file brought that scalinglab has no name for are kept as extras, and the help
promises they can be used from the store where a column can: ``--where``, ``--budget`` and
``--map`` name them as the file did."""

from __future__ import annotations

import json

import numpy as np
import pytest
from report_synth import isoflop_runs
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.runs.store import RunStore

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    runs = isoflop_runs()
    runs["budget_flops"] = [float(f"{c:.1g}") for c in runs["C"]]  # a label, as papers give
    runs["alt_objective"] = runs["loss"] * 1.01
    runs["optimizer"] = ["adamw"] * 20 + ["lion"] * (len(runs) - 20)
    path = tmp_path_factory.mktemp("extras") / "runs.duckdb"
    RunStore(path).import_frame(runs.drop(columns=["tags"]), source="paper.csv")
    return path


def test_where_names_extra_columns_in_the_store(store):
    got = RunStore(store, read_only=True).runs(where="budget_flops = 1e18 AND optimizer = 'lion'")
    assert len(got) == 7 and all(e["optimizer"] == "lion" for e in got["extra"])
    assert len(RunStore(store, read_only=True).runs(where="optimizer = 'adamw'")) == 20
    res = runner.invoke(app, ["runs", "--store", str(store), "--where", "budget_flops >= 3e17",
                              "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)) == 14
    res = runner.invoke(app, ["runs", "--store", str(store), "--where", "budget_flop = 1"])
    assert res.exit_code == 2 and "did you mean 'budget_flops'" in res.output


def test_budget_takes_an_extra_column_from_the_store(store):
    res = runner.invoke(app, ["fit", "isoflop", "--store", str(store), "--budget", "budget_flops",
                              "--bootstrap", "0", "--json"])
    assert res.exit_code == 0, res.output
    budgets = json.loads(res.stdout)["budgets"]
    assert sorted(b["C"] for b in budgets) == pytest.approx([1e16, 3e16, 1e17, 3e17, 1e18], rel=0.5)
    assert all(b["n_runs"] == 7 for b in budgets)


def test_map_reads_a_law_input_from_an_extra_column(store):
    from scalinglab.fit.data import load_runs

    plain, _, _ = load_runs(None, store, None, None, ("N", "D"))
    mapped, _, _ = load_runs(None, store, None, None, ("N", "D"), {"loss": "alt_objective"})
    assert np.allclose(np.sort(mapped["loss"]), np.sort(plain["loss"]) * 1.01)
    res = runner.invoke(app, ["fit", "chinchilla", "--store", str(store), "--map", "loss=nope",
                              "--bootstrap", "0"])
    assert res.exit_code == 2 and "--map loss=nope: no run has 'nope'" in res.output


def test_scale_converts_a_fit_files_units(tmp_path, store):
    from scalinglab.fit.data import load_runs

    runs = isoflop_runs()
    f = tmp_path / "millions.csv"
    runs.assign(N=runs["N"] / 1e6)[["N", "D", "loss"]].to_csv(f, index=False)
    frame, _, notes = load_runs(f, None, None, None, ("N", "D"), scale={"N": "1e6"})
    assert np.allclose(np.sort(frame["N"]), np.sort(runs["N"])) and "scaled N by 1e6" in notes
    res = runner.invoke(app, ["fit", "isoflop", str(f), "--scale", "N=1e6", "--bootstrap", "0",
                              "--json"])
    assert res.exit_code == 0, res.output
    assert sorted(b["C"] for b in json.loads(res.stdout)["budgets"]) == pytest.approx(
        [1e16, 3e16, 1e17, 3e17, 1e18], rel=0.1)
    res = runner.invoke(app, ["fit", "chinchilla", "--store", str(store), "--scale", "N=1e6"])
    assert res.exit_code == 2 and "--scale" in res.output


def test_group_takes_an_extra_column_from_the_store_and_a_missing_one_names_group(store):
    """``fit custom --group optimizer`` splits the store's runs by an extra field (20 adamw,
    the rest lion); a name no run has is reported as ``--group``, not ``--group-by``."""
    args = ["fit", "custom", "--store", str(store), "--formula", "E + A*N**-alpha", "--inputs",
            "N", "--bounds", "alpha=0.05:1", "--bootstrap", "0"]
    res = runner.invoke(app, [*args, "--group", "optimizer", "--all-runs", "--json"])
    assert res.exit_code == 0, res.output
    fits = json.loads(res.stdout)["fits"]
    assert {g: f["n_runs"] for g, f in fits.items()} == {"adamw": 20, "lion": len(isoflop_runs()) - 20}
    bad = runner.invoke(app, [*args, "--group", "optimiser"])
    assert bad.exit_code == 2, bad.output
    assert f"{store}: --group 'optimiser' is not a column of the runs (did you mean 'optimizer'?)" \
        in " ".join(bad.output.split()), bad.output
