"""One flag for a file's units, ``--units NAME=FACTOR``, wherever a file is read.

``--scale`` meant two things (``import --scale N=1e6``, ``fit law --scale log``). Now ``--units``
converts units everywhere, ``--scale`` is only where ``fit law``/``fit custom`` take residuals,
and ``--scale N=1e6`` on the commands that took it before still works, saying it is deprecated.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from report_synth import isoflop_runs
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.runs.store import RunStore

runner = CliRunner()


@pytest.fixture
def millions(tmp_path):
    """Runs with N written in millions of parameters."""
    runs = isoflop_runs()
    f = tmp_path / "millions.csv"
    runs.assign(N=runs["N"] / 1e6)[["N", "D", "loss"]].to_csv(f, index=False)
    return f, runs


def test_import_reads_units_and_the_old_flag_still_works_saying_so(tmp_path, millions):
    f, runs = millions
    res = runner.invoke(app, ["import", str(f), "--units", "N=1e6", "--store",
                              str(tmp_path / "a.duckdb")])
    assert res.exit_code == 0, res.output
    assert np.allclose(np.sort(RunStore(tmp_path / "a.duckdb").runs()["N"]), np.sort(runs["N"]))
    res = runner.invoke(app, ["import", str(f), "--scale", "N=1e6", "--store",
                              str(tmp_path / "b.duckdb")])
    assert res.exit_code == 0, res.output
    assert "--scale NAME=FACTOR is deprecated: write --units N=1e6" in res.stderr
    assert np.allclose(np.sort(RunStore(tmp_path / "b.duckdb").runs()["N"]), np.sort(runs["N"]))


def test_a_unit_naming_no_column_is_one_line_naming_the_flag(tmp_path, millions):
    f, _ = millions
    res = runner.invoke(app, ["import", str(f), "--units", "zz=1e6", "--store",
                              str(tmp_path / "s.duckdb")])
    assert res.exit_code == 2 and "units zz=1e6: no column 'zz'" in res.stderr
    res = runner.invoke(app, ["import", str(f), "--units", "N=-1", "--store",
                              str(tmp_path / "s.duckdb")])
    assert res.exit_code == 2 and "--units N=-1: the factor must be a positive number" in res.stderr
    assert not (tmp_path / "s.duckdb").exists()


def test_fit_law_takes_units_and_its_scale_is_only_where_residuals_are_taken(millions):
    f, _ = millions
    base = ["fit", "law", "chinchilla", str(f), "--bootstrap", "0", "--json"]
    res = runner.invoke(app, [*base, "--units", "N=1e6"])
    assert res.exit_code == 0, res.output
    scaled = json.loads(res.stdout)
    res = runner.invoke(app, ["fit", "chinchilla", str(f), "--units", "N=1e6", "--bootstrap", "0",
                              "--json"])
    assert json.loads(res.stdout)["params"] == pytest.approx(scaled["params"], rel=1e-6)
    res = runner.invoke(app, [*base, "--scale", "N=1e6"])
    assert res.exit_code == 2
    assert ("--scale is where residuals are taken, log or linear, not 'N=1e6'; a column's units "
            "are --units N=1e6") in res.stderr


def test_help_shows_units_and_hides_the_deprecated_name():
    for cmd in (["import"], ["fit", "chinchilla"], ["fit", "law"], ["hparams", "fit"],
                ["fit", "benchmark"], ["testtime", "pass-at-k"], ["design", "pool"]):
        res = runner.invoke(app, [*cmd, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, cmd
        assert "--units" in res.output, cmd
        assert "NAME=FACTOR is deprecated" not in res.output
    assert "--scale" not in runner.invoke(app, ["import", "--help"]).output


def test_hparams_grids_read_units_by_scalinglab_name_or_column(tmp_path):
    from scalinglab.hparams.grid import read_grid

    grid = pd.DataFrame({"params_m": [100.0, 100.0, 400.0, 400.0], "D": [2e9, 2e9, 8e9, 8e9],
                         "lr": [1.0, 2.0, 1.0, 2.0], "batch_tokens": [2e5, 4e5, 2e5, 4e5],
                         "loss": [3.1, 3.0, 2.8, 2.75]})
    f = tmp_path / "grid.csv"
    grid.to_csv(f, index=False)
    g = read_grid(f, mapping={"N": "params_m"}, units={"N": "1e6", "lr": "1e-3"})
    assert g.frame["N"].tolist() == [1e8, 1e8, 4e8, 4e8]
    assert g.frame["lr"].tolist() == pytest.approx([1e-3, 2e-3, 1e-3, 2e-3])
    # the commands hand --units to that reader: a unit naming no column is refused by it
    named = tmp_path / "named.csv"
    grid.rename(columns={"params_m": "N"}).assign(weight_decay=0.1).to_csv(named, index=False)
    for cmd in ("fit", "evaluate", "plateau", "tau"):
        res = runner.invoke(app, ["hparams", cmd, str(named), "--units", "zz=2"])
        assert res.exit_code == 2 and "units zz=2: no column 'zz'" in res.stderr, cmd
    res = runner.invoke(app, ["hparams", "plateau", "--units", "N=1e6", "--json"])
    assert res.exit_code == 2 and "store holds runs already in scalinglab's units" in res.stderr


def test_benchmark_tables_loss_to_loss_and_counts_read_units(tmp_path):
    from scalinglab.downstream.table import read_models
    from scalinglab.testtime.counts import read_counts

    f = tmp_path / "evals.csv"
    pd.DataFrame({"model": ["a", "b"], "FLOPs (1E21)": [0.5, 3.0], "MMLU": [0.3, 0.5]}).to_csv(
        f, index=False)
    table = read_models(f, {"FLOPs (1E21)": "1e21"})
    assert table.numbers("FLOPs (1E21)").tolist() == [5e20, 3e21]
    counts = tmp_path / "counts.csv"
    pd.DataFrame({"problem": ["p1", "p2"], "n": [0.1, 0.1], "c": [5, 50]}).to_csv(counts,
                                                                                  index=False)
    (data,) = read_counts(counts, units={"n": "1000"}).values()
    assert list(data.n) == [100, 100]
    res = runner.invoke(app, ["testtime", "pass-at-k", str(counts), "--units", "n=1000", "--k",
                              "1", "--bootstrap", "0", "--json"])
    assert res.exit_code == 0, res.output
    assert json.dumps(json.loads(res.stdout)).count("0.275") >= 1  # (5/100 + 50/100) / 2


def test_design_pools_read_units_by_column_or_mapped_name(tmp_path):
    from scalinglab.design.commands import _read

    f = tmp_path / "pool.csv"
    pd.DataFrame({"params_m": [10.0, 20.0], "D": [1e9, 2e9]}).to_csv(f, index=False)
    assert _read(f, "CANDIDATES", ["N=1e6"], {"N": "params_m"})["params_m"].tolist() == [1e7, 2e7]
    assert _read(f, "CANDIDATES", ["params_m=1e6"])["params_m"].tolist() == [1e7, 2e7]


def test_fit_curves_reads_units_of_its_file_only(tmp_path):
    f = tmp_path / "curves.csv"
    f.write_text("run,step,lr,loss\na,1,1,3.0\na,2,1,2.9\n")
    res = runner.invoke(app, ["fit", "curves", str(f), "--units", "zz=2"])
    assert res.exit_code == 2 and "units zz=2: no column 'zz'" in res.stderr
    res = runner.invoke(app, ["fit", "curves", "--units", "lr=1e-3"])
    assert res.exit_code == 2 and "the store holds runs already in scalinglab's units" in res.stderr
