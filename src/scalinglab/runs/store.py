"""The run store: an embedded DuckDB file holding runs and their loss curves.

Connections are opened per operation and closed at once. DuckDB lets one process write a file at
a time, so short-lived connections let a sweep write while a dashboard reads; a brief lock
conflict is retried rather than surfaced. Every write that comes from a file is one transaction:
a rejected import leaves the store exactly as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from scalinglab.clikit import UserError
from scalinglab.errors import StoreBusy, StoreError
from scalinglab.runs import io as runs_io
from scalinglab.runs.schema import STATUSES, Prepared, run_id_for, validate_and_prepare

SCHEMA_VERSION = "1"

_DDL = [
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY,
        N DOUBLE NOT NULL,
        D DOUBLE NOT NULL,
        C DOUBLE NOT NULL,
        loss DOUBLE,
        lr DOUBLE,
        batch_tokens DOUBLE,
        weight_decay DOUBLE,
        seq_len DOUBLE,
        tags JSON,
        status VARCHAR NOT NULL,
        error VARCHAR,
        source VARCHAR,
        extra JSON,
        created_at TIMESTAMP DEFAULT current_timestamp
    )""",
    """CREATE TABLE IF NOT EXISTS curves (
        run_id VARCHAR NOT NULL,
        step BIGINT,
        tokens DOUBLE,
        loss DOUBLE,
        eval_loss DOUBLE
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
]

RUN_COLUMNS = ["run_id", "N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay", "seq_len",
               "tags", "status", "error", "source", "extra"]


@dataclass
class ImportReport:
    source: str
    n_read: int
    n_inserted: int
    n_skipped_duplicates: int
    n_curve_points: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RunStore:
    """Runs in a DuckDB file. Cheap to construct; nothing is opened until used."""

    def __init__(self, path: str | Path = "scalinglab.duckdb", read_only: bool = False,
                 lock_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.lock_timeout_s = lock_timeout_s
        if read_only and not self.path.exists():
            raise UserError(f"{self.path}: no run store here (import runs or run a sweep first)")
        if not read_only:
            with self._connect() as con:
                for ddl in _DDL:
                    con.execute(ddl)
                con.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [SCHEMA_VERSION]
                )

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing is held open between operations; kept for the context-manager contract."""

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=self.read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise StoreError(f"{self.path}: cannot open the run store: {exc}") from None
                if time.monotonic() > deadline:
                    raise StoreBusy(f"{self.path}: the run store is busy (another process holds "
                                    f"its lock): {exc}") from None
                time.sleep(0.05)
        try:
            yield con
        finally:
            con.close()

    # -- writing ---------------------------------------------------------------------------

    def import_file(
        self,
        path: str | Path,
        mapping: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        seq_len: int | None = None,
        scale: Mapping[str, str] | None = None,
    ) -> ImportReport:
        """Import a CSV/Parquet/JSONL file whole, or nothing (the error names file, row, column)."""
        source = str(path)
        raw = runs_io.read_table(path)
        raw = runs_io.apply_mapping(raw, mapping, source)
        raw = runs_io.apply_scale(raw, scale, source)
        prepared = validate_and_prepare(raw, source=source, tags=dict(tags or {}), seq_len=seq_len)
        return self._insert(prepared, source, n_read=len(raw))

    def import_frame(
        self,
        df: pd.DataFrame,
        source: str = "dataframe",
        mapping: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        seq_len: int | None = None,
    ) -> ImportReport:
        raw = runs_io.apply_mapping(df, mapping, source)
        prepared = validate_and_prepare(raw, source=source, tags=dict(tags or {}), seq_len=seq_len)
        return self._insert(prepared, source, n_read=len(df))

    def _insert(self, prepared: Prepared, source: str, n_read: int) -> ImportReport:
        self._require_writable()
        runs = prepared.runs.copy()
        runs["tags"] = runs["tags"].map(json.dumps)
        runs["extra"] = runs["extra"].map(json.dumps)
        runs = runs[RUN_COLUMNS]
        curves = prepared.curves
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                before = con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
                con.register("incoming", runs)
                existing = {
                    r[0]
                    for r in con.execute(
                        "SELECT run_id FROM runs WHERE run_id IN (SELECT run_id FROM incoming)"
                    ).fetchall()
                }
                con.execute(
                    f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
                    f"SELECT {', '.join(RUN_COLUMNS)} FROM incoming "
                    "ON CONFLICT (run_id) DO NOTHING"
                )
                n_points = 0
                if not curves.empty:
                    fresh = curves[~curves["run_id"].isin(existing)]
                    con.register("incoming_curves", fresh)
                    con.execute(
                        "INSERT INTO curves SELECT run_id, CAST(step AS BIGINT), "
                        "CAST(tokens AS DOUBLE), CAST(loss AS DOUBLE), CAST(eval_loss AS DOUBLE) "
                        "FROM incoming_curves"
                    )
                    n_points = len(fresh)
                after = con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        inserted = int(after - before)
        return ImportReport(
            source=source,
            n_read=n_read,
            n_inserted=inserted,
            n_skipped_duplicates=len(runs) - inserted + (n_read - len(runs)),
            n_curve_points=n_points,
            notes=prepared.notes,
        )

    def add_run(self, record: Mapping[str, Any], curve: pd.DataFrame | None = None) -> str:
        """Insert or replace one run (the sweep runner's path), with its loss curve, atomically."""
        self._require_writable()
        rec = {k: record.get(k) for k in RUN_COLUMNS}
        rec["tags"] = dict(record.get("tags") or {})
        rec["extra"] = dict(record.get("extra") or {})
        rec["status"] = rec["status"] or "finished"
        if rec["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {rec['status']!r}")
        for k in ("N", "D"):
            if rec[k] is None:
                raise ValueError(f"a run needs {k}")
        if rec["C"] is None:
            rec["C"] = 6.0 * float(rec["N"]) * float(rec["D"])
        if rec["status"] == "finished" and rec["loss"] is None:
            raise ValueError("a finished run needs a loss")
        rec["run_id"] = rec["run_id"] or run_id_for(rec)
        row = [rec[k] if k not in ("tags", "extra") else json.dumps(rec[k], default=str)
               for k in RUN_COLUMNS]
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("DELETE FROM curves WHERE run_id = ?", [rec["run_id"]])
                con.execute(
                    f"INSERT OR REPLACE INTO runs ({', '.join(RUN_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                    row,
                )
                if curve is not None and len(curve):
                    c = pd.DataFrame({
                        "run_id": rec["run_id"],
                        "step": curve["step"].astype("int64"),
                        "tokens": curve["tokens"].astype(float) if "tokens" in curve else None,
                        "loss": curve["loss"].astype(float),
                        "eval_loss": curve["eval_loss"].astype(float) if "eval_loss" in curve else None,
                    })
                    con.register("curve_in", c)
                    con.execute("INSERT INTO curves SELECT run_id, step, tokens, loss, eval_loss FROM curve_in")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return str(rec["run_id"])

    def _require_writable(self) -> None:
        if self.read_only:
            raise UserError(f"{self.path}: the store was opened read-only")

    # -- reading ---------------------------------------------------------------------------

    def runs(
        self,
        where: str | None = None,
        status: str | None = "finished",
        tags: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """Runs as a frame (tags and extra decoded to dicts), filtered by SQL and/or tags."""
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        for k, v in (tags or {}).items():
            clauses.append("json_extract_string(tags, ?) = ?")
            params.extend([f"$.{k}", str(v)])
        if where:
            clauses.append(f"({where})")
        sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY C, N, run_id"
        with self._connect() as con:
            try:
                df = con.execute(sql, params).df()
            except duckdb.Error as exc:
                if where:
                    raise UserError(f"invalid --where expression {where!r}: {exc}") from None
                raise
        df["tags"] = df["tags"].map(lambda s: json.loads(s) if s else {})
        df["extra"] = df["extra"].map(lambda s: json.loads(s) if s else {})
        return df

    def run(self, run_id: str) -> dict[str, Any]:
        df = self.runs(where="run_id = " + _sql_str(run_id), status=None)
        if df.empty:
            raise KeyError(run_id)
        return df.iloc[0].to_dict()

    def has_run(self, run_id: str, status: str | None = "finished") -> bool:
        sql, params = "SELECT count(*) FROM runs WHERE run_id = ?", [run_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        with self._connect() as con:
            return bool(con.execute(sql, params).fetchall()[0][0])

    def curve(self, run_id: str) -> pd.DataFrame:
        with self._connect() as con:
            return con.execute(
                "SELECT step, tokens, loss, eval_loss FROM curves WHERE run_id = ? ORDER BY step",
                [run_id],
            ).df()

    def curves(self, run_ids: list[str]) -> dict[str, pd.DataFrame]:
        """Loss curves of several runs in one query (``{run_id: frame}``; runs without one are
        left out), for views that overlay many: one connection instead of one per run."""
        if not run_ids:
            return {}
        with self._connect() as con:
            df = con.execute(
                "SELECT run_id, step, tokens, loss, eval_loss FROM curves "
                "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY run_id, step",
                [list(map(str, run_ids))],
            ).df()
        return {str(rid): g.drop(columns="run_id").reset_index(drop=True)
                for rid, g in df.groupby("run_id", sort=False)}

    def counts(self) -> dict[str, int]:
        """Runs per status, e.g. ``{"finished": 40, "failed": 2}``."""
        with self._connect() as con:
            rows = con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall()
        return {s: int(n) for s, n in rows}

    def tag_values(self) -> dict[str, list[str]]:
        """Every tag key with its distinct values, for filters in the dashboard."""
        df = self.runs(status=None)
        out: dict[str, set[str]] = {}
        for tags in df["tags"]:
            for k, v in tags.items():
                out.setdefault(k, set()).add(str(v))
        return {k: sorted(v) for k, v in sorted(out.items())}


def _sql_str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"
