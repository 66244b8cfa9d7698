"""``scalinglab import`` checks a compute or budget column given beside N and D by the same 6ND
rule as ``fit`` (issue 24, item 2): a 1.3x and a 1e6x column are flagged naming the column and
the factor, the import goes ahead, and the stored numbers are the file's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.fit.consistency import check_flops as fit_rule
from scalinglab.runs.flops import check_flops

runner = CliRunner()


def runs(factor: float = 1.0, column: str = "C") -> pd.DataFrame:
    """5 sizes x 4 token counts, the compute column ``factor`` x 6ND."""
    N, D = np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 4))
    N, D = N.ravel(), D.ravel()
    return pd.DataFrame({"N": N, "D": D, column: factor * 6 * N * D,
                         "loss": 1.7 + 400 / N**0.34 + 410 / D**0.28})


def import_json(tmp_path, frame: pd.DataFrame) -> tuple[dict, list[dict]]:
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    store = str(tmp_path / "s.duckdb")
    res = runner.invoke(app, ["import", str(path), "--store", store, "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    listed = runner.invoke(app, ["runs", "--store", store, "--json"])
    assert listed.exit_code == 0, listed.output
    return report, json.loads(listed.stdout)


def flop_warnings(report: dict) -> list[str]:
    return [n for n in report["notes"] if n.startswith("warning:") and "6ND" in n]


def test_import_and_fit_share_one_rule():
    assert fit_rule is check_flops


def test_a_compute_column_1_3x_6nd_is_flagged_at_import_and_stored_as_given(tmp_path):
    frame = runs(1.3, "FLOPs")
    report, stored = import_json(tmp_path, frame)
    [warning] = flop_warnings(report)
    assert "compute column 'FLOPs' is 1.3x 6ND" in warning
    assert report["n_inserted"] == len(frame)
    assert sorted(r["C"] for r in stored) == sorted(frame.FLOPs)


def test_a_budget_column_1e6x_6nd_says_parameters_in_millions(tmp_path):
    frame = runs(1.0).assign(compute_budget=lambda f: f.C * 1e6)
    report, stored = import_json(tmp_path, frame)
    [warning] = flop_warnings(report)
    assert "budget column 'compute_budget' is 1e+06x 6ND" in warning
    assert "parameters in millions?" in warning
    assert report["n_inserted"] == len(frame)
    assert sorted(r["extra"]["compute_budget"] for r in stored) == sorted(frame.compute_budget)


def test_parameters_given_in_millions_flag_the_c_column_by_its_factor(tmp_path):
    frame = runs(1.0).assign(N=lambda f: f.N / 1e6)
    report, _ = import_json(tmp_path, frame)
    [warning] = flop_warnings(report)
    assert "compute column 'C' is 1e+06x 6ND" in warning and "parameters in millions?" in warning


def test_a_6nd_column_and_one_within_the_rule_pass_silently(tmp_path):
    assert not flop_warnings(import_json(tmp_path, runs(1.03))[0])
