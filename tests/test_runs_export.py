"""``scalinglab runs --format csv`` as data: it reads back through pandas with the store's
numbers and dtypes (missing values as empty cells, not ``-``), carries every column (weight
decay, sequence length, source, tags, each extra column), picks columns with ``--columns``, and
keeps titles and notes off stdout when piped."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.runs.store import RunStore

SRC = Path(__file__).resolve().parents[1] / "src"
runner = CliRunner()

CSV = """run_id,N,D,loss,lr,weight_decay,seq_len,tags,budget_flops,optimizer,status,error
a-1,1.25e8,2.5e9,3.125,0.0003,0.1,2048,"{""dataset"": ""c4"", ""note"": ""a, b""}",1e18,adamw,finished,
a-2,2.5e8,5e9,2.9876543210987,,0.1,2048,"{""dataset"": ""c4""}",1e18,lion,finished,
a-3,5e8,1e9,,0.001,,1024,,3e18,,failed,"diverged at step 1,200"
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    (folder / "runs.csv").write_text(CSV)
    path = folder / "runs.duckdb"
    RunStore(path).import_file(folder / "runs.csv", invalid="failed")
    return path


def csv_of(*args: str) -> pd.DataFrame:
    result = runner.invoke(app, ["runs", *args, "--format", "csv"])
    assert result.exit_code == 0, result.output
    return pd.read_csv(io.StringIO(result.stdout))


def test_csv_round_trips_through_pandas_with_the_stores_numbers_and_dtypes(store):
    stored = RunStore(store, read_only=True).runs(status=None).set_index("run_id")
    frame = csv_of("--store", str(store), "--status", "all").set_index("run_id")
    assert sorted(frame.index) == ["a-1", "a-2", "a-3"]
    for col in ("N", "D", "C", "loss", "lr", "weight_decay", "seq_len"):
        assert frame[col].dtype == np.float64, col  # a gap is NaN, not a '-' that makes text
        pd.testing.assert_series_equal(frame[col], stored.loc[frame.index, col].astype(float),
                                       check_names=False)
    assert np.isnan(frame.loc["a-3", "loss"]) and np.isnan(frame.loc["a-2", "lr"])
    assert frame.loc["a-2", "loss"] == 2.9876543210987  # every digit
    assert frame.loc["a-3", "status"] == "failed"
    assert frame.loc["a-3", "error"] == "diverged at step 1,200"
    assert frame["source"].str.endswith("runs.csv").all()
    assert json.loads(frame.loc["a-1", "tags"]) == {"dataset": "c4", "note": "a, b"}
    # extra columns, each its own column, numbers as numbers
    assert frame["budget_flops"].dtype == np.float64
    assert list(frame.loc[["a-1", "a-2", "a-3"], "budget_flops"]) == [1e18, 1e18, 3e18]
    assert frame.loc["a-1", "optimizer"] == "adamw" and pd.isna(frame.loc["a-3", "optimizer"])


def test_tsv_reads_back_the_same(store):
    result = runner.invoke(app, ["runs", "--store", str(store), "--format", "tsv"])
    frame = pd.read_csv(io.StringIO(result.stdout), sep="\t")
    assert list(frame["N"]) == [1.25e8, 2.5e8] and frame["lr"].dtype == np.float64


def test_columns_picks_and_orders(store):
    frame = csv_of("--store", str(store), "--columns", "loss,run_id", "--columns", "budget_flops")
    assert list(frame.columns) == ["loss", "run_id", "budget_flops"]
    result = runner.invoke(app, ["runs", "--store", str(store), "--columns", "los"])
    assert result.exit_code == 2
    assert "--columns: no column 'los' (did you mean 'loss'?)" in result.output


def test_a_piped_table_is_the_data_alone(store):
    out = subprocess.run([sys.executable, "-m", "scalinglab.cli", "runs", "--store", str(store),
                          "--status", "all", "--limit", "2"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["run_id", "N", "D"]  # the header first: no title
    assert len(lines) == 2 + 2 and "│" not in out.stdout
    assert f"3 runs in {store}" in out.stderr and "1 more" in out.stderr
    assert "runs in" not in out.stdout and "more" not in out.stdout


def test_sweep_plan_into_a_pipe_is_plain_text(tmp_path):
    plan = tmp_path / "plan.toml"
    out = subprocess.run([sys.executable, "-m", "scalinglab.cli", "sweep", "plan", "isoflop",
                          "--out", str(plan), "--budgets", "1e13,3e13", "--sizes", "3"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)},
                         timeout=600)
    assert out.returncode == 0, out.stderr
    assert not any(c in out.stdout for c in "│┃━─┏"), out.stdout
    assert out.stdout.splitlines()[0].split()[:2] == ["budget", "N"]
    assert "run it with" in out.stderr and str(plan) in out.stderr
