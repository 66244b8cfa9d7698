"""The run store: an embedded DuckDB file holding runs and their loss curves.

Connections are opened per operation and closed at once. DuckDB lets one process write a file at
a time, so short-lived connections let a sweep write while a dashboard reads; a brief lock
conflict is retried rather than surfaced (:class:`~scalinglab.errors.StoreBusy` after
``lock_timeout_s``).

Guarantees, each tested in ``tests/test_hostile_*.py``:

- **All or nothing.** An import is one transaction: a rejected import leaves the store byte for
  byte as it was, and a failed import into a new path leaves no file behind.
- **No input silently lost.** A row repeating a run exactly is skipped and counted; a row with
  the id of a run seen with other values is a :class:`~scalinglab.errors.ConflictError` naming
  both rows, unless ``on_conflict`` says ``keep`` or ``replace``.
- **No foreign file touched.** Before writing, the file is opened read-only and its schema
  version checked: another program's DuckDB file, or a file that is not DuckDB at all, is
  refused and left as it was; an older scalinglab store must be migrated explicitly
  (:meth:`RunStore.migrate`, ``scalinglab store migrate``) and can still be read meanwhile.
- **Reads never write.** A read-only store opens nothing for writing and creates nothing;
  every query runs with DuckDB's external access disabled, and ``where`` filters are parsed
  and checked (:mod:`scalinglab.runs.where`), never spliced.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from scalinglab.errors import (
    ConflictError,
    InputError,
    ParameterError,
    StoreBusy,
    StoreError,
)
from scalinglab.runs import io as runs_io
from scalinglab.runs.cells import show_cell
from scalinglab.runs.schema import STATUSES, canonical_json, check_tag_key, run_id_for
from scalinglab.runs.validate import (
    INVALID_CHOICES,
    MAX_LISTED,
    STAGE_COLUMNS,
    BadRow,
    Layout,
    Options,
    Prepared,
    check_invalid,
    plan_layout,
    prepare_chunk,
)
from scalinglab.runs.where import compile_where

#: version 2 added ``name`` (a visible label, e.g. a tracker's run name), allowed failed runs
#: without N/D/loss, and hashes content-derived ids column-wise; see :meth:`RunStore.migrate`
SCHEMA_VERSION = "2"
CONFLICT_CHOICES = ("error", "keep", "replace")

_RUNS_DDL = """CREATE TABLE {name} (
    run_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    N DOUBLE,
    D DOUBLE,
    C DOUBLE,
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
    created_at TIMESTAMP DEFAULT current_timestamp,
    CHECK (status IN ('finished', 'failed', 'running')),
    CHECK (status <> 'finished' OR (N IS NOT NULL AND D IS NOT NULL AND C IS NOT NULL
                                    AND loss IS NOT NULL))
)"""
_DDL = [
    _RUNS_DDL.format(name="runs"),
    """CREATE TABLE curves (
        run_id VARCHAR NOT NULL,
        step BIGINT,
        tokens DOUBLE,
        loss DOUBLE,
        eval_loss DOUBLE
    )""",
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
]

RUN_COLUMNS = ["run_id", "name", "N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay",
               "seq_len", "tags", "status", "error", "source", "extra"]
#: the columns a ``where`` filter may use
FILTER_COLUMNS = (*RUN_COLUMNS, "created_at")
_CONNECT_CONFIG = {"enable_external_access": False}
_VALUE_COLUMNS = ("name", "N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay",
                  "seq_len", "status", "error")


@dataclass
class ImportReport:
    """What an import did. ``n_read`` rows were read; each ended up inserted, skipped as an
    exact repeat (``n_skipped_duplicates``), replacing a stored run (``n_replaced``), left out
    in favour of another version of the same run (``n_kept``: the stored one with
    ``on_conflict="keep"``, or another row of the import), left out as invalid
    (``n_skipped_invalid``), or imported as a failed run because it was invalid
    (``n_failed``, counted in ``n_inserted`` too)."""

    source: str
    n_read: int
    n_inserted: int
    n_skipped_duplicates: int
    n_curve_points: int = 0
    n_replaced: int = 0
    n_kept: int = 0
    n_skipped_invalid: int = 0
    n_failed: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class InvalidRows(InputError):
    """Rows that are not valid runs (``invalid="reject"``): ``rows`` lists up to 20 of
    ``count``, each with its row, column and reason."""

    def __init__(self, source: str, rows: list[tuple[str, BadRow]], count: int) -> None:
        self.rows = rows
        self.count = count
        if count == 1:
            label, bad = rows[0]
            super().__init__(bad.detail, source=source, row=label, column=bad.column)
            return
        listed = "; ".join(_where_bad(label, bad) for label, bad in rows)
        more = f"; and {count - len(rows)} more" if count > len(rows) else ""
        super().__init__(f"{count} rows are not valid runs: {listed}{more}", source=source)


def _where_bad(label: str, bad: BadRow) -> str:
    return f"{label}, column {bad.column!r}: {bad.detail}" if bad.column else \
        f"{label}: {bad.detail}"


class RunStore:
    """Runs in a DuckDB file. Cheap to construct; nothing is opened until used.

    ``read_only=True`` is for commands that only look (``runs``, the report, the dashboard,
    fits from the store): it refuses a missing file and never writes or creates anything.
    """

    def __init__(self, path: str | Path = "scalinglab.duckdb", read_only: bool = False,
                 lock_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.lock_timeout_s = lock_timeout_s
        self._checked: str | None = None  # the schema version found, once checked
        if read_only:
            self._check_readable()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r}{', read_only=True' if self.read_only else ''})"

    def close(self) -> None:
        """Nothing is held open between operations; kept for the context-manager contract."""

    # -- opening ----------------------------------------------------------------------------

    @contextmanager
    def _connect(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only, config=_CONNECT_CONFIG)
                break
            except duckdb.Error as exc:
                text = str(exc)
                if "lock" in text.lower() and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                if "lock" in text.lower():
                    raise StoreBusy(f"{self.path}: another process is writing to the run "
                                    f"store (waited {self.lock_timeout_s:g} s)") from None
                raise self._open_error(exc) from None
        try:
            yield con
        finally:
            con.close()

    def _open_error(self, exc: Exception) -> StoreError:
        text = " ".join(str(exc).split())
        if "not a valid DuckDB database" in text or "Invalid Input Error" in text or \
                "database file" in text.lower() and "valid" in text.lower():
            return StoreError(f"{self.path}: not a run store (not a DuckDB file); choose "
                              "another store path")
        if "ermission denied" in text or "Read-only file system" in text:
            return StoreError(f"{self.path}: cannot write here ({_reason(text)})")
        return StoreError(f"{self.path}: cannot open the run store: {text[:300]}")

    def _version(self, con: duckdb.DuckDBPyConnection) -> str:
        """The schema version of an open store; StoreError for anything not a scalinglab store."""
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()}
        if not tables:
            return ""  # an empty DuckDB file: ours to initialise
        version = None
        if {"runs", "meta"} <= tables:
            with contextlib.suppress(duckdb.Error):
                rows = con.execute(
                    "SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
                version = rows[0][0] if rows else None
        if version is None:
            raise StoreError(f"{self.path}: a DuckDB file but not a scalinglab run store (its "
                             f"tables are {sorted(tables)}); it was left unchanged")
        return str(version)

    def _check_file(self) -> None:
        """An existing path must be a DuckDB database file (its header says ``DUCK``).

        Checked by reading 12 bytes, before DuckDB opens anything: DuckDB 2 opens a path ending
        in ``.csv`` or ``.parquet`` as an in-memory database over that file, so an import
        would vanish, and its errors for other files are worded differently by version.
        """
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder, not a run store")
        with self.path.open("rb") as fh:
            head = fh.read(12)
        if len(head) == 0:
            raise StoreError(f"{self.path}: an empty file, not a run store; remove it or "
                             "choose another store path")
        if len(head) < 12 or head[8:12] != b"DUCK":
            raise StoreError(f"{self.path}: not a run store (not a DuckDB file); choose "
                             "another store path")

    def _check_new_path(self) -> None:
        if self.path.suffix.lower() in runs_io.FORMATS:
            raise StoreError(f"{self.path}: a run store needs a path like runs.duckdb, not a "
                             f"{self.path.suffix} name (DuckDB would read it as that format)")

    def _check_readable(self) -> str:
        if not self.path.exists():
            raise StoreError(f"{self.path}: no run store here (import runs or run a sweep "
                             "first)")
        self._check_file()
        with self._connect(read_only=True) as con:
            version = self._version(con)
        if version and _newer(version):
            raise StoreError(f"{self.path}: written by a newer scalinglab (schema version "
                             f"{version}; this one reads up to {SCHEMA_VERSION}); upgrade "
                             "scalinglab")
        if not version:
            raise StoreError(f"{self.path}: an empty DuckDB file, not a run store yet")
        return version

    @contextmanager
    def _writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to a checked (or new) store; a new file that a failed
        operation created is removed."""
        if self.read_only:
            raise StoreError(f"{self.path}: the store was opened read-only")
        created = not self.path.exists()
        if created:
            self._check_new_path()
        else:
            self._check_file()
            if self._checked is None:
                with self._connect(read_only=True) as con:
                    self._checked = self._version(con)
            version = self._checked
            if version and version != SCHEMA_VERSION:
                raise self._outdated(version)
            if not os.access(self.path, os.W_OK):
                raise StoreError(f"{self.path}: the file is read-only")
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.exists():
            raise StoreError(f"{self.path}: the folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise StoreError(f"{self.path}: the folder {parent} is read-only, and DuckDB "
                             "writes a journal beside the store")
        try:
            with self._connect(read_only=False) as con:
                if created or not self._checked:
                    self._initialise(con)
                yield con
        except BaseException:
            if created:
                _remove_store_files(self.path)
                self._checked = None
            raise

    def _initialise(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("BEGIN TRANSACTION")
        for ddl in _DDL:
            con.execute(ddl)
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
        con.execute("COMMIT")
        self._checked = SCHEMA_VERSION

    def _outdated(self, version: str) -> StoreError:
        if _newer(version):
            return StoreError(f"{self.path}: written by a newer scalinglab (schema version "
                              f"{version}); upgrade scalinglab to write to it")
        return StoreError(f"{self.path}: a run store of schema version {version}; this "
                          f"scalinglab writes version {SCHEMA_VERSION}. Reading it still works; "
                          "to write, migrate it first (scalinglab store migrate, or "
                          "RunStore.migrate())")

    @contextmanager
    def _reader(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
        """A connection for reading (read-only if the store was opened so) and its version."""
        if self.read_only or self.path.exists():
            version = self._check_readable() if self.read_only or self._checked is None \
                else self._checked
            with self._connect(read_only=True) as con:
                yield con, version
            return
        with self._writer() as con:  # a writable store that does not exist yet: create it
            yield con, SCHEMA_VERSION

    # -- migration --------------------------------------------------------------------------

    def version(self) -> str:
        """The store's schema version (``"1"``, ``"2"``)."""
        return self._check_readable()

    def migrate(self) -> str | None:
        """Bring a store written by an older scalinglab to the current schema, in one
        transaction; returns the version it had, or None if it was current.

        Version 1 -> 2: adds ``name``, lets failed runs lack N/D/loss, writes tags as
        canonical JSON, and re-derives content-derived run ids (those equal to version 1's
        hash of the row) with version 2's hash, curves following, so re-importing a file
        imported before adds nothing.
        """
        if self.read_only:
            raise StoreError(f"{self.path}: the store was opened read-only")
        version = self._check_readable()
        if version == SCHEMA_VERSION:
            return None
        if version != "1":
            raise self._outdated(version)
        with self._connect(read_only=False) as con:
            old = con.execute("SELECT * EXCLUDE (created_at), created_at FROM runs").df()
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(_RUNS_DDL.format(name="runs_v2"))
                new_ids = _v2_ids(old)
                moved = pd.DataFrame({"old": old["run_id"], "new": new_ids})
                rows = old.assign(run_id=new_ids, name=None)
                rows["tags"] = [canonical_json(_loads(t)) for t in rows["tags"]]
                rows["extra"] = [canonical_json(_loads(t)) for t in rows["extra"]]
                con.register("v1_rows", rows[[*RUN_COLUMNS, "created_at"]])
                con.execute(f"INSERT INTO runs_v2 ({', '.join(RUN_COLUMNS)}, created_at) "
                            f"SELECT {', '.join(RUN_COLUMNS)}, created_at FROM v1_rows")
                con.register("moved", moved[moved["old"] != moved["new"]])
                con.execute("UPDATE curves SET run_id = moved.new FROM moved "
                            "WHERE curves.run_id = moved.old")
                con.execute("DROP TABLE runs")
                con.execute("ALTER TABLE runs_v2 RENAME TO runs")
                con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                            [SCHEMA_VERSION])
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
        self._checked = SCHEMA_VERSION
        return version

    # -- writing ----------------------------------------------------------------------------

    def import_file(
        self,
        path: str | Path,
        mapping: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        seq_len: int | None = None,
        scale: Mapping[str, str] | None = None,
        *,
        invalid: str = "reject",
        on_conflict: str = "error",
    ) -> ImportReport:
        """Import a CSV/TSV/Parquet/JSONL file, streamed in chunks, in one transaction.

        The same pipeline as :meth:`import_frame` (read -> map -> scale -> validate -> stage
        -> resolve duplicates -> insert); ``scale`` multiplies columns given in other units
        (``{"N": "1e6"}`` for parameters in millions). Errors name file, row (and line) and
        column.
        """
        _check_choices(invalid, on_conflict)
        tags = _checked_tags(tags)
        reader = runs_io.TableReader(path)
        options = Options(source=str(path), tags=tags, seq_len=_seq_len(seq_len),
                          invalid=invalid)
        layouts: dict[tuple[str, ...], Layout] = {}
        n_read = 0

        def chunks() -> Iterator[Prepared]:
            nonlocal n_read
            for raw in reader.chunks(skip_ragged=invalid == "skip"):
                key = tuple(str(c) for c in raw.frame.columns)
                layout = layouts.get(key)
                if layout is None:
                    layout = layouts[key] = plan_layout(key, mapping, options)
                frame = _scaled(raw.frame, scale, layout, options.source)
                n_read += len(frame)
                yield prepare_chunk(frame, layout, options, start=raw.start)

        report = self._import(chunks(), options, on_conflict, reader.labels,
                              lambda: n_read, empty=f"{path}: no rows to import")
        if reader.skipped_rows:
            report.n_read += len(reader.skipped_rows)
            report.n_skipped_invalid += len(reader.skipped_rows)
            report.notes.append(_listing(f"skipped {len(reader.skipped_rows)} lines with the "
                                         "wrong number of cells", reader.skipped_rows))
        return report

    def import_frame(
        self,
        frame: pd.DataFrame,
        source: str = "dataframe",
        mapping: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        seq_len: int | None = None,
        *,
        curves: pd.DataFrame | None = None,
        invalid: str = "reject",
        on_conflict: str = "error",
    ) -> ImportReport:
        """Import runs from a frame (one row per run), with their loss curves, all or nothing.

        Parameters
        ----------
        frame
            One row per run. Columns are found through the alias table
            (:mod:`scalinglab.runs.columns`) after ``mapping``: ``N``, ``D`` or ``C``,
            ``loss``; optional ``name`` (a visible label, e.g. a tracker's run name),
            ``status`` (finished/failed/running, or a tracker's word such as ``crashed``),
            ``error``, ``run_id``, ``lr``, ``batch_tokens`` (or ``batch_size`` with
            ``seq_len``), ``weight_decay``, ``seq_len``, ``tags``, ``dataset``,
            ``architecture``, ``curve``. Other columns are kept in ``extra``.
        source
            What the runs came from (a file, a tracker), stored with each run and named in
            errors.
        mapping
            ``{scalinglab_name: frame_column}``, e.g. ``{"loss": "final_loss"}``.
        tags
            Tags for every run (``{"dataset": "c4"}``); they win over per-row tags.
        seq_len
            Tokens per sequence, for a batch given in sequences.
        curves
            Optional long frame of loss-curve points: ``row`` (0-based position of the run's row
            in ``frame``), ``step``, ``loss``, and optionally ``tokens`` and ``eval_loss``. The
            points are written under that run's id in the same transaction as the runs.
        invalid
            ``"reject"`` (default: any bad row rejects the import, and the error lists up to 20
            of them), ``"skip"`` (leave bad rows out) or ``"failed"`` (import them with status
            failed and the reasons in ``error``; fits never use them).
        on_conflict
            A run id already seen (earlier in the frame, or in the store) with other values:
            ``"error"`` (default, a :class:`~scalinglab.errors.ConflictError` naming both
            rows), ``"keep"`` (keep the stored or earlier one) or ``"replace"`` (the incoming
            row replaces it, curve included). Exact repeats are skipped either way.

        Returns
        -------
        ImportReport
        """
        _check_choices(invalid, on_conflict)
        tags = _checked_tags(tags)
        if not isinstance(frame, pd.DataFrame):
            raise ParameterError(f"frame must be a pandas DataFrame, not "
                                 f"{type(frame).__name__}", "frame")
        options = Options(source=str(source), tags=tags, seq_len=_seq_len(seq_len),
                          invalid=invalid)
        labels = frame.attrs.get("row_labels")

        def label(rows: Iterable[int]) -> dict[int, str]:
            return {r: (str(labels[r]) if labels is not None and r in labels else
                        f"row {r + 1}") for r in rows}

        def chunks() -> Iterator[Prepared]:
            if len(frame) == 0:
                return
            layout = plan_layout([str(c) for c in frame.columns], mapping, options)
            renamed = frame.copy(deep=False)
            renamed.columns = [str(c).strip() for c in frame.columns]
            renamed.attrs = {}
            yield prepare_chunk(renamed.reset_index(drop=True), layout, options, start=0,
                                curves=curves)

        return self._import(chunks(), options, on_conflict, label, lambda: len(frame),
                            empty=f"{source}: no rows to import")

    def _import(self, chunks: Iterator[Prepared], options: Options, on_conflict: str,
                labels: Any, n_read: Any, empty: str) -> ImportReport:
        """Stage every chunk, then resolve repeats and conflicts and insert, in one
        transaction; nothing is written unless all of it is."""
        summary = _Summary()
        first = next(chunks, None)  # validate (and fail) before the store is touched
        if first is None:
            raise InputError(empty)
        if first.n_bad and options.invalid == "reject":  # no need to open the store at all
            summary.add(first)
            for more in chunks:
                summary.add(more)
            raise _invalid_rows(options.source, summary, labels)
        with self._writer() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                _create_staging(con)
                for prepared in _chain(first, chunks):
                    summary.add(prepared)
                    if summary.n_bad and options.invalid == "reject":
                        continue  # keep reading: the error lists every bad row (up to 20)
                    _stage(con, prepared)
                if summary.n_bad and options.invalid == "reject":
                    raise _invalid_rows(options.source, summary, labels)
                report = _resolve_and_insert(con, options.source, on_conflict, labels)
                con.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                if isinstance(exc, duckdb.Error):
                    raise StoreError(f"{self.path}: the import was not written: "
                                     f"{_first_line(exc)}") from None
                raise
        report.n_read = int(n_read())
        report.n_failed = summary.n_failed
        report.n_skipped_invalid = summary.n_skipped
        report.notes[:0] = summary.notes(options.source, labels)
        return report

    def add_run(self, record: Mapping[str, Any], curve: pd.DataFrame | None = None) -> str:
        """Insert or replace one run (the sweep runner's path), with its loss curve, atomically.

        ``record`` has run columns (``N``, ``D``, ``loss``, ...), ``tags`` and ``extra`` dicts;
        ``C`` defaults to 6ND and ``run_id`` to the content-derived id.
        """
        rec = {k: record.get(k) for k in RUN_COLUMNS}
        rec["tags"] = dict(record.get("tags") or {})
        rec["extra"] = dict(record.get("extra") or {})
        rec["status"] = rec["status"] or "finished"
        if rec["status"] not in STATUSES:
            raise ParameterError(f"status must be one of {list(STATUSES)}, not "
                                 f"{rec['status']!r}", "record")
        for k in ("N", "D"):
            if rec[k] is None:
                raise ParameterError(f"a run needs {k}", "record")
        for k in ("N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay", "seq_len"):
            if rec[k] is not None:
                rec[k] = float(rec[k])
                if not math.isfinite(rec[k]) and not (k == "loss" and rec["status"] != "finished"):
                    raise ParameterError(f"{k} = {rec[k]} is not finite", "record")
                if k == "loss" and not math.isfinite(rec[k]):
                    rec[k] = None
        if rec["C"] is None:
            rec["C"] = 6.0 * rec["N"] * rec["D"]
            if not math.isfinite(rec["C"]):
                raise ParameterError("C = 6*N*D overflows to inf", "record")
        if rec["status"] == "finished" and rec["loss"] is None:
            raise ParameterError("a finished run needs a loss", "record")
        for key in rec["tags"]:
            why = check_tag_key(str(key))
            if why:
                raise ParameterError(why, "record")
        rec["run_id"] = rec["run_id"] or run_id_for(rec)
        row = [rec[k] if k not in ("tags", "extra") else canonical_json(rec[k])
               for k in RUN_COLUMNS]
        with self._writer() as con:
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
                        "eval_loss": curve["eval_loss"].astype(float) if "eval_loss" in curve
                        else None,
                    })
                    con.register("curve_in", c)
                    con.execute("INSERT INTO curves SELECT run_id, step, tokens, loss, "
                                "eval_loss FROM curve_in")
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
        return str(rec["run_id"])

    # -- reading ----------------------------------------------------------------------------

    def runs(
        self,
        where: str | None = None,
        status: str | None = "finished",
        tags: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """Runs as a frame (tags and extra decoded to dicts), filtered by status, tags and a
        checked ``where`` expression (:mod:`scalinglab.runs.where`)."""
        if status is not None and status not in STATUSES:
            raise ParameterError(f"status must be one of {list(STATUSES)} or None, not "
                                 f"{status!r}", "status")
        tags = _checked_tags(tags)
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        for k, v in tags.items():
            clauses.append("(tags ->> ?) = ?")  # a checked key, as a parameter: a key, no path
            params.extend([k, str(v)])
        filtered = compile_where(where, FILTER_COLUMNS) if where and where.strip() else None
        with self._reader() as (con, version):
            have = _columns(con)
            cols = [c if c in have else f"NULL::VARCHAR AS {c}" for c in FILTER_COLUMNS]
            base = f"SELECT {', '.join(cols)} FROM runs"
            if clauses:
                base += " WHERE " + " AND ".join(clauses)
            sql = f"WITH __runs AS ({base}) " + (filtered or "SELECT * FROM __runs")
            sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM ({sql}) ORDER BY C, N, run_id"
            try:
                df = con.execute(sql, params).df()
            except duckdb.Error as exc:
                if where:
                    raise ParameterError(f"invalid where expression {where!r}: "
                                         f"{_first_line(exc)}", "where") from None
                raise StoreError(f"{self.path}: cannot read runs: {_first_line(exc)}") from None
        df["tags"] = [_loads(s) for s in df["tags"]]
        df["extra"] = [_loads(s) for s in df["extra"]]
        return df

    def run(self, run_id: str) -> dict[str, Any]:
        """One run as a dict; ``KeyError`` if the store has no such run."""
        with self._reader() as (con, _):
            have = _columns(con)
            cols = [c if c in have else f"NULL::VARCHAR AS {c}" for c in RUN_COLUMNS]
            df = con.execute(f"SELECT {', '.join(cols)} FROM runs WHERE run_id = ?",
                             [str(run_id)]).df()
        if df.empty:
            raise KeyError(run_id)
        out = df.iloc[0].to_dict()
        out["tags"], out["extra"] = _loads(out["tags"]), _loads(out["extra"])
        return out

    def has_run(self, run_id: str, status: str | None = "finished") -> bool:
        sql, params = "SELECT count(*) FROM runs WHERE run_id = ?", [str(run_id)]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        with self._reader() as (con, _):
            return bool(con.execute(sql, params).fetchall()[0][0])

    def curve(self, run_id: str) -> pd.DataFrame:
        """A run's loss curve: columns step, tokens, loss, eval_loss (empty if none)."""
        with self._reader() as (con, _):
            return con.execute(
                "SELECT step, tokens, loss, eval_loss FROM curves WHERE run_id = ? ORDER BY step",
                [str(run_id)],
            ).df()

    def curves(self, run_ids: list[str]) -> dict[str, pd.DataFrame]:
        """Loss curves of several runs in one query (``{run_id: frame}``; runs without one are
        left out), for views that overlay many: one connection instead of one per run."""
        if not run_ids:
            return {}
        with self._reader() as (con, _):
            df = con.execute(
                "SELECT run_id, step, tokens, loss, eval_loss FROM curves "
                "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY run_id, step",
                [list(map(str, run_ids))],
            ).df()
        return {str(rid): g.drop(columns="run_id").reset_index(drop=True)
                for rid, g in df.groupby("run_id", sort=False)}

    def counts(self) -> dict[str, int]:
        """Runs per status, e.g. ``{"finished": 40, "failed": 2}``."""
        with self._reader() as (con, _):
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


# -- the import transaction ----------------------------------------------------------------------


class _Summary:
    """What the chunks of one import found, accumulated (bad rows, notes, sanity checks)."""

    def __init__(self) -> None:
        self.bad: list[BadRow] = []
        self.n_bad = self.n_failed = self.n_skipped = 0
        self.layout_notes: dict[str, None] = {}
        self.max_N = self.max_loss = self.max_lr = -math.inf
        self.off_6nd: tuple[int, float] | None = None

    def add(self, p: Prepared) -> None:
        self.n_bad += p.n_bad
        self.n_failed += p.n_failed
        self.n_skipped += p.n_skipped
        self.bad += p.bad[: MAX_LISTED - len(self.bad)]
        for note in p.notes:
            self.layout_notes[note] = None
        for name in ("max_N", "max_loss", "max_lr"):
            v = getattr(p, name)
            if not math.isnan(v):
                setattr(self, name, max(getattr(self, name), v))
        if self.off_6nd is None:
            self.off_6nd = p.off_6nd

    def notes(self, source: str, labels: Any) -> list[str]:
        out = list(self.layout_notes)
        if self.off_6nd is not None:
            row, ratio = self.off_6nd
            out.append(f"warning: C differs from 6ND by x{ratio:.3g} at {labels([row])[row]}; "
                       "check the units of N, D and C")
        if 0 < self.max_N < 1e3:
            out.append("warning: every N is below 1,000: is N in millions? scale it by 1e6")
        if self.max_loss > 20:
            out.append("warning: losses above 20 nats: is this perplexity rather than loss?")
        if self.max_lr > 1:
            out.append("warning: learning rates above 1: check the lr column")
        if self.n_bad and (self.n_failed or self.n_skipped):
            shown = _bad_lines(self.bad, labels)
            what = (f"imported {self.n_failed} invalid rows as failed runs, the reasons in "
                    "their error" if self.n_failed else f"skipped {self.n_skipped} invalid rows")
            out.append(_listing(what, shown, total=self.n_bad))
        return out


def _chain(first: Prepared, rest: Iterator[Prepared]) -> Iterator[Prepared]:
    yield first
    yield from rest


def _bad_lines(bad: list[BadRow], labels: Any) -> list[str]:
    names = labels([b.row for b in bad])
    return [_where_bad(names[b.row], b) for b in bad]


def _listing(what: str, items: list[str], total: int | None = None) -> str:
    total = len(items) if total is None else total
    more = f"; and {total - len(items)} more" if total > len(items) else ""
    return f"{what}: " + "; ".join(items) + more


def _invalid_rows(source: str, summary: _Summary, labels: Any) -> InvalidRows:
    names = labels([b.row for b in summary.bad])
    return InvalidRows(source, [(names[b.row], b) for b in summary.bad], summary.n_bad)


def _create_staging(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE TEMP TABLE _incoming (
        _row BIGINT, _fp UBIGINT, _given BOOLEAN, run_id VARCHAR, name VARCHAR, N DOUBLE,
        D DOUBLE, C DOUBLE, loss DOUBLE, lr DOUBLE, batch_tokens DOUBLE, weight_decay DOUBLE,
        seq_len DOUBLE, tags VARCHAR, status VARCHAR, error VARCHAR, extra VARCHAR)""")
    con.execute("""CREATE TEMP TABLE _incoming_curves (
        _row BIGINT, step BIGINT, tokens DOUBLE, loss DOUBLE, eval_loss DOUBLE)""")


def _stage(con: duckdb.DuckDBPyConnection, p: Prepared) -> None:
    """Append a chunk to the staging tables; extras become one JSON object per row."""
    if len(p.runs):
        con.register("_chunk", p.runs)
        if p.extra_keys:
            values = ", ".join(
                f"?, COALESCE(to_json(x{j}_i), to_json(x{j}_f), to_json(x{j}_s), json(x{j}_j))"
                for j in range(len(p.extra_keys)))
            # json_merge_patch onto {} drops the null members: missing cells leave no key
            extra = f"json_merge_patch('{{}}', json_object({values}))"
        else:
            extra = "'{}'"
        con.execute(f"INSERT INTO _incoming SELECT {', '.join(STAGE_COLUMNS)}, {extra} "
                    "FROM _chunk", list(p.extra_keys))
        con.unregister("_chunk")
    if len(p.curves):
        con.register("_chunk_curves", p.curves)
        con.execute("INSERT INTO _incoming_curves SELECT _row, step, tokens, loss, eval_loss "
                    "FROM _chunk_curves")
        con.unregister("_chunk_curves")


def _resolve_and_insert(con: duckdb.DuckDBPyConnection, source: str, on_conflict: str,
                        labels: Any) -> ImportReport:
    """Repeats within the import, then against the store; then insert what is new."""
    n_staged = con.execute("SELECT count(*) FROM _incoming").fetchone()[0]
    # 1. within the import: the same id with another fingerprint is a conflict
    inner = con.execute("""
        WITH first AS (SELECT run_id, arg_min(_fp, _row) AS fp0, min(_row) AS r0
                       FROM _incoming GROUP BY run_id HAVING count(*) > 1)
        SELECT f.r0, min(i._row) AS r1, f.run_id, count(*) OVER () AS total
        FROM _incoming i JOIN first f USING (run_id)
        WHERE i._fp <> f.fp0 GROUP BY f.run_id, f.r0 ORDER BY r1 LIMIT ?""",
                        [MAX_LISTED]).fetchall()
    n_inner_conflicts = int(inner[0][3]) if inner else 0
    if inner and on_conflict == "error":
        raise _inner_conflict(con, source, inner, n_inner_conflicts, labels)
    order = "DESC" if on_conflict == "replace" else "ASC"
    con.execute(f"""CREATE TEMP TABLE _chosen AS SELECT * EXCLUDE (k) FROM (
        SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY _row {order}) AS k
        FROM _incoming) WHERE k = 1""")
    n_chosen = con.execute("SELECT count(*) FROM _chosen").fetchone()[0]
    n_repeats = n_staged - n_chosen
    n_inner_dropped = con.execute("""
        SELECT count(*) FROM _incoming i JOIN _chosen c USING (run_id)
        WHERE i._row <> c._row AND i._fp <> c._fp""").fetchone()[0] if inner else 0

    # 2. against the store
    differs = " OR ".join(f"c.{c} IS DISTINCT FROM r.{c}" for c in _VALUE_COLUMNS)
    clash = con.execute(f"""
        SELECT c._row, c.run_id, ({differs}) AS values_differ,
               (c.tags IS DISTINCT FROM r.tags::VARCHAR OR
                c.extra IS DISTINCT FROM r.extra::VARCHAR) AS json_differs
        FROM _chosen c JOIN runs r USING (run_id)
        WHERE ({differs}) OR c.tags IS DISTINCT FROM r.tags::VARCHAR
              OR c.extra IS DISTINCT FROM r.extra::VARCHAR""").fetchall()
    conflicting = [(row, rid) for row, rid, vd, _ in clash if vd]
    json_only = [(row, rid) for row, rid, vd, jd in clash if not vd and jd]
    if json_only:  # text differs; the values may not (key order, number spelling)
        conflicting += _json_conflicts(con, json_only)
    conflicting.sort()
    n_existing = con.execute("SELECT count(*) FROM _chosen c JOIN runs r USING (run_id)"
                             ).fetchone()[0]
    if conflicting and on_conflict == "error":
        raise _store_conflict(con, source, conflicting, labels)
    con.execute("CREATE TEMP TABLE _clash (run_id VARCHAR)")
    if conflicting:
        con.register("_clash_in", pa.table({"run_id": [rid for _, rid in conflicting]}))
        con.execute("INSERT INTO _clash SELECT run_id FROM _clash_in")
    cols = ", ".join(RUN_COLUMNS)
    select = ", ".join(c if c != "source" else "? AS source" for c in RUN_COLUMNS)
    con.execute("""CREATE TEMP TABLE _insert AS SELECT * FROM _chosen c
        WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = c.run_id)""")
    n_new = con.execute("SELECT count(*) FROM _insert").fetchone()[0]
    n_replaced = 0
    if on_conflict == "replace" and conflicting:
        con.execute("DELETE FROM curves WHERE run_id IN (SELECT run_id FROM _clash)")
        con.execute(f"INSERT OR REPLACE INTO runs ({cols}) SELECT {select} FROM _chosen "
                    "WHERE run_id IN (SELECT run_id FROM _clash)", [source])
        con.execute("INSERT INTO _insert SELECT * FROM _chosen "
                    "WHERE run_id IN (SELECT run_id FROM _clash)")
        n_replaced = len(conflicting)
    con.execute(f"INSERT INTO runs ({cols}) SELECT {select} FROM _insert "
                "WHERE run_id NOT IN (SELECT run_id FROM _clash)", [source])
    n_points = con.execute("""
        INSERT INTO curves SELECT i.run_id, c.step, c.tokens, c.loss, c.eval_loss
        FROM _incoming_curves c JOIN _insert i USING (_row)""").fetchone()[0]
    n_kept = (len(conflicting) if on_conflict == "keep" else 0) + n_inner_dropped
    report = ImportReport(
        source=source, n_read=n_staged, n_inserted=int(n_new + n_replaced),
        n_skipped_duplicates=int(n_repeats - n_inner_dropped + n_existing - len(conflicting)),
        n_curve_points=int(n_points or 0), n_replaced=int(n_replaced), n_kept=int(n_kept))
    if n_repeats - n_inner_dropped:
        first = con.execute("""SELECT min(i._row) FROM _incoming i JOIN _chosen c USING (run_id)
                               WHERE i._row <> c._row AND i._fp = c._fp""").fetchone()[0]
        if first is not None:
            report.notes.append(f"{n_repeats - n_inner_dropped} rows repeat an earlier row of "
                                f"the import exactly (first: {labels([first])[first]}); kept "
                                "once")
    if inner and on_conflict != "error":
        what = "the first kept" if on_conflict == "keep" else "the last kept"
        report.notes.append(f"{n_inner_dropped} rows share a run_id with another row but "
                            f"differ ({what}); first: "
                            + _pair_text(labels, inner[0][0], inner[0][1], inner[0][2]))
    if conflicting and on_conflict != "error":
        done = "replaced by this import" if on_conflict == "replace" else \
            "kept, the incoming rows left out"
        rows = labels([r for r, _ in conflicting[:5]])
        report.notes.append(f"{len(conflicting)} runs already stored with other values were "
                            f"{done}: " + ", ".join(f"{rows[r]} (run {rid!r})"
                                                    for r, rid in conflicting[:5])
                            + (" ..." if len(conflicting) > 5 else ""))
    return report


def _json_conflicts(con: duckdb.DuckDBPyConnection,
                    rows: list[tuple[int, str]]) -> list[tuple[int, str]]:
    con.register("_json_rows", pa.table({"_row": [r for r, _ in rows]}))
    pairs = con.execute("""SELECT c._row, c.run_id, c.tags, r.tags::VARCHAR, c.extra,
                                  r.extra::VARCHAR
                           FROM _chosen c JOIN runs r USING (run_id)
                           WHERE c._row IN (SELECT _row FROM _json_rows)""").fetchall()
    return [(row, rid) for row, rid, t1, t2, e1, e2 in pairs
            if _loads(t1) != _loads(t2) or _loads(e1) != _loads(e2)]


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    out = []
    for col in (*_VALUE_COLUMNS, "tags", "extra"):
        x, y = a.get(col), b.get(col)
        if col in ("tags", "extra"):
            x, y = _loads(x), _loads(y)
        if _same(x, y):
            continue
        out.append(f"{col} {_shown(x)} vs {_shown(y)}")
    return out


def _same(x: Any, y: Any) -> bool:
    if _is_null(x) and _is_null(y):
        return True
    return bool(x == y)


def _is_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _shown(v: Any) -> str:
    if _is_null(v):
        return "none"
    if isinstance(v, float):
        return f"{v:.6g}"
    return show_cell(v)


def _row_values(con: duckdb.DuckDBPyConnection, table: str, key: str, value: Any
                ) -> dict[str, Any]:
    cols = [*_VALUE_COLUMNS, "tags", "extra", *(["source"] if table == "runs" else [])]
    sel = ", ".join(f"{c}::VARCHAR" if c in ("tags", "extra") else c for c in cols)
    row = con.execute(f"SELECT {sel} FROM {table} WHERE {key} = ?", [value]).fetchone()
    return dict(zip(cols, row, strict=True)) if row else {}


def _pair_text(labels: Any, r0: int, r1: int, run_id: str) -> str:
    names = labels([r0, r1])
    return f"{names[r1]} and {names[r0]} (run {run_id!r})"


def _inner_conflict(con: duckdb.DuckDBPyConnection, source: str, inner: list[tuple],
                    total: int, labels: Any) -> ConflictError:
    names = labels([x for r0, r1, _, _ in inner[:5] for x in (r0, r1)])
    parts = []
    for r0, r1, rid, _ in inner[:5]:
        a = _row_values(con, "_incoming", "_row", r1)
        b = _row_values(con, "_incoming", "_row", r0)
        diff = "; ".join(_differences(a, b)[:3])
        parts.append(f"{names[r1]} has the run_id {rid!r} of {names[r0]} but other values "
                     f"({diff})")
    more = f"; and {total - 5} more" if total > 5 else ""
    return ConflictError("; ".join(parts) + more, source=source)


def _store_conflict(con: duckdb.DuckDBPyConnection, source: str,
                    conflicting: list[tuple[int, str]], labels: Any) -> ConflictError:
    names = labels([r for r, _ in conflicting[:5]])
    parts = []
    for row, rid in conflicting[:5]:
        a = _row_values(con, "_incoming", "_row", row)
        b = _row_values(con, "runs", "run_id", rid)
        diff = "; ".join(_differences(a, b)[:3])
        parts.append(f"{names[row]}: run {rid!r} is already in the store (from "
                     f"{b.get('source') or 'an earlier import'}) with other values ({diff}, "
                     "here vs stored)")
    more = f"; and {len(conflicting) - 5} more" if len(conflicting) > 5 else ""
    return ConflictError("; ".join(parts) + more, source=source)


# -- helpers ---------------------------------------------------------------------------------


def _check_choices(invalid: str, on_conflict: str) -> None:
    check_invalid(invalid)
    if on_conflict not in CONFLICT_CHOICES:
        raise ParameterError(f"on_conflict must be one of {list(CONFLICT_CHOICES)}, not "
                             f"{on_conflict!r}", "on_conflict")


def _checked_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in dict(tags or {}).items():
        why = check_tag_key(str(k))
        if why:
            raise ParameterError(why, "tags")
        out[str(k)] = str(v)
    return out


def _seq_len(seq_len: Any) -> float | None:
    if seq_len is None:
        return None
    try:
        value = float(seq_len)
    except (TypeError, ValueError):
        raise ParameterError(f"seq_len must be a positive number, not {seq_len!r}",
                             "seq_len") from None
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(f"seq_len must be a positive number, not {show_cell(seq_len)}",
                             "seq_len")
    return value


def _scaled(frame: pd.DataFrame, scale: Mapping[str, str] | None, layout: Layout,
            source: str) -> pd.DataFrame:
    """Apply ``scale`` (keys are scalinglab names, or the file's own column names)."""
    if not scale:
        return frame
    by_file = {}
    for key, factor in scale.items():
        col = layout.file_column(key) if key in layout.present else key
        by_file[col] = factor
    return runs_io.scale_columns(frame, by_file, source)


def _columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'"
    ).fetchall()}


def _loads(s: Any) -> Any:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return {}
    if isinstance(s, (dict, list)):
        return s
    try:
        return json.loads(s)
    except (TypeError, ValueError):
        return {}


def _newer(version: str) -> bool:
    try:
        return int(version) > int(SCHEMA_VERSION)
    except ValueError:
        return True


def _reason(text: str) -> str:
    return "permission denied" if "ermission" in text else "read-only file system"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _remove_store_files(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(OSError):
            p.unlink()


def _v2_ids(old: pd.DataFrame) -> list[str]:
    """Version 2 ids for version 1 rows: a content-derived id (one equal to version 1's SHA-1
    of the row) is re-derived; an id the user or the sweep runner gave is kept."""
    out = []
    for rec in old.to_dict(orient="records"):
        tags, extra = _loads(rec.get("tags")), _loads(rec.get("extra"))
        row = {k: (None if _is_null(rec.get(k)) else float(rec[k]))
               for k in ("N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay", "seq_len")}
        if rec["run_id"] == _v1_run_id({**row, "tags": tags, "extra": extra}):
            out.append(run_id_for({**row, "tags": tags, "extra": extra}))
        else:
            out.append(rec["run_id"])
    return out


def _v1_run_id(row: dict[str, Any]) -> str:
    """Schema version 1's content id: SHA-1 of the row's JSON (kept to recognise such ids)."""
    import hashlib

    keys = ("N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay", "seq_len", "tags",
            "extra")
    blob = json.dumps({k: row.get(k) for k in keys}, sort_keys=True, default=str)
    return "r-" + hashlib.sha1(blob.encode()).hexdigest()[:16]


__all__ = ["CONFLICT_CHOICES", "INVALID_CHOICES", "RUN_COLUMNS", "SCHEMA_VERSION",
           "ImportReport", "InvalidRows", "RunStore", "np"]
