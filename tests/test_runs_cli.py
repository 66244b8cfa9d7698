"""`scalinglab import` and `scalinglab runs` as a user types them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from scalinglab.cli import app

runner = CliRunner()


def test_help_lists_commands_and_each_has_an_example():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("import", "runs"):
        assert name in result.output
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0
        assert "Example" in sub.output


def test_import_then_list_as_json(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("params,D,final_loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n")
    store = str(tmp_path / "s.duckdb")
    res = runner.invoke(
        app, ["import", str(f), "--map", "N=params,loss=final_loss", "--tag", "dataset=x",
              "--store", store, "--json"],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_inserted"] == 2
    res = runner.invoke(app, ["runs", "--store", store, "--json", "--where", "N > 1.5e8"])
    rows = json.loads(res.stdout)
    assert [r["N"] for r in rows] == [2e8]
    assert rows[0]["tags"] == {"dataset": "x"}


def test_bad_file_exits_2_with_file_row_and_column(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("N,D,loss\n1e8,2e9,3.1\n1e8,2e9,-1\n")
    res = runner.invoke(app, ["import", str(f), "--store", str(tmp_path / "s.duckdb")])
    assert res.exit_code == 2
    assert "bad.csv" in res.output and "row 2" in res.output and "'loss'" in res.output
    assert "Traceback" not in res.output
