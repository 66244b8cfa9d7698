"""Curves carry real wall time (schema version 3): ``wall_s``, seconds since the run started.

A version 2 store (no ``wall_s``) is still read, with ``wall_s`` missing rather than invented;
writing to it needs ``scalinglab store migrate``, which adds the column in one transaction and
keeps every stored point.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.errors import InputError, StoreError
from scalinglab.runs.store import SCHEMA_VERSION, RunStore

runner = CliRunner()

CURVE = pd.DataFrame({"step": [10, 20, 30], "tokens": [1e5, 2e5, 3e5], "loss": [4.0, 3.5, 3.2],
                      "eval_loss": [np.nan, np.nan, 3.3], "wall_s": [1.5, 3.0, 4.5]})


def _v2_store(path: Path) -> str:
    """A store exactly as schema version 2 left it: this version's tables less curves.wall_s."""
    s = RunStore(path)
    rid = s.add_run({"N": 1e6, "D": 3e5, "loss": 3.2, "name": "old"},
                    CURVE.drop(columns="wall_s"))
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE curves DROP COLUMN wall_s")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.close()
    return rid


def test_wall_time_is_stored_with_the_curve_and_read_back(tmp_path):
    s = RunStore(tmp_path / "s.duckdb")
    rid = s.add_run({"N": 1e6, "D": 3e5, "loss": 3.2}, CURVE)
    assert s.version() == SCHEMA_VERSION == "3"
    assert s.curve(rid)["wall_s"].tolist() == [1.5, 3.0, 4.5]
    assert s.curves([rid])[rid]["wall_s"].tolist() == [1.5, 3.0, 4.5]
    # a curve without a clock stores NULL, read as NaN, never 0
    other = s.add_run({"N": 2e6, "D": 3e5, "loss": 3.1}, CURVE.drop(columns="wall_s"))
    assert s.curve(other)["wall_s"].isna().all()


def test_a_version_2_store_is_read_refused_for_writes_and_migrated(tmp_path):
    path = tmp_path / "v2.duckdb"
    rid = _v2_store(path)
    before = path.read_bytes()
    s = RunStore(path, read_only=True)
    assert s.version() == "2"
    old = s.curve(rid)
    assert list(old.columns) == ["step", "tokens", "loss", "eval_loss", "wall_s"]
    assert old["loss"].tolist() == [4.0, 3.5, 3.2] and old["wall_s"].isna().all()
    assert s.curves([rid])[rid]["wall_s"].isna().all()
    assert path.read_bytes() == before  # reads never write
    with pytest.raises(StoreError, match="schema version 2.*migrate it first"):
        RunStore(path).add_run({"N": 1e6, "D": 1e5, "loss": 3.0}, CURVE)
    assert path.read_bytes() == before

    res = runner.invoke(app, ["store", "migrate", "--store", str(path)])
    assert res.exit_code == 0, res.output
    assert "from schema version 2 to 3" in res.output
    s = RunStore(path)
    assert s.version() == "3"
    kept = s.curve(rid)
    assert kept["loss"].tolist() == [4.0, 3.5, 3.2] and kept["wall_s"].isna().all()
    new = s.add_run({"N": 3e6, "D": 3e5, "loss": 3.0}, CURVE)
    assert s.curve(new)["wall_s"].tolist() == [1.5, 3.0, 4.5]
    assert s.migrate() is None
    res = runner.invoke(app, ["store", "migrate", "--store", str(path)])
    assert "already at schema version 3" in res.output


def test_a_failed_migration_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "v2.duckdb"
    _v2_store(path)
    from scalinglab.runs import store as store_mod

    def boom(con):
        con.execute("ALTER TABLE curves ADD COLUMN wall_s DOUBLE")
        raise RuntimeError("disk full")

    monkeypatch.setattr(store_mod, "_migrate_2_to_3", boom)
    with pytest.raises(RuntimeError):
        RunStore(path).migrate()
    assert RunStore(path, read_only=True).version() == "2"
    con = duckdb.connect(str(path), read_only=True)
    cols = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'curves'").fetchall()]
    con.close()
    assert "wall_s" not in cols


def test_imported_curves_keep_wall_time_from_a_frame_and_from_a_curve_cell(tmp_path):
    s = RunStore(tmp_path / "s.duckdb")
    frame = pd.DataFrame({"N": [1e6, 2e6], "D": [3e5, 3e5], "loss": [3.2, 3.1]})
    curves = pd.DataFrame({"row": [0, 0, 1], "step": [1, 2, 1], "loss": [4.0, 3.9, 4.1],
                           "wall_s": [0.5, 1.0, None]})
    s.import_frame(frame, curves=curves, source="mem")
    runs = s.runs()
    walls = {float(r.N): s.curve(r.run_id)["wall_s"].tolist() for r in runs.itertuples()}
    assert walls[1e6] == [0.5, 1.0] and np.isnan(walls[2e6][0])

    f = tmp_path / "runs.jsonl"
    f.write_text(json.dumps({"N": 5e6, "D": 1e6, "loss": 3.0, "curve": [
        {"step": 100, "loss": 3.5, "wall_s": 12.25}, {"step": 200, "loss": 3.0,
                                                      "wall_s": 24.5}]}) + "\n")
    s.import_file(f)
    rid = s.runs(where="N = 5e6")["run_id"].iloc[0]
    assert s.curve(rid)["wall_s"].tolist() == [12.25, 24.5]


@pytest.mark.parametrize("bad", [-1.0, float("inf"), "soon"])
def test_a_wall_time_that_is_not_seconds_since_the_start_is_refused(tmp_path, bad):
    s = RunStore(tmp_path / "s.duckdb")
    frame = pd.DataFrame({"N": [1e6], "D": [3e5], "loss": [3.2]})
    curves = pd.DataFrame({"row": [0, 0], "step": [1, 2], "loss": [4.0, 3.9],
                           "wall_s": [0.5, bad]}, dtype=object)
    with pytest.raises(InputError, match=r"point 2.*wall_s"):
        s.import_frame(frame, curves=curves, source="mem")
    assert not (tmp_path / "s.duckdb").exists()  # all or nothing
