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
import queue
import stat
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from scalinglab.errors import (
    InputError,
    ParameterError,
    StoreBusy,
    StoreError,
)
from scalinglab.runs import io as runs_io
from scalinglab.runs.cells import show_cell
from scalinglab.runs.ingest import (
    RUN_COLUMNS,
    ImportReport,
    Ingest,
    InvalidRows,
    Summary,
    _do,
    listing,
    loads,
)
from scalinglab.runs.schema import STATUSES, canonical_json, check_tag_key, run_id_for
from scalinglab.runs.validate import (
    INVALID_CHOICES,
    Layout,
    Options,
    Prepared,
    check_invalid,
    plan_layout,
    prepare_chunk,
)
from scalinglab.runs.where import compile_where
from scalinglab.safefile import open_input, user_temp_dir

if TYPE_CHECKING:  # pandas is loaded by the paths that take or give frames, not by a CSV import
    import pandas as pd
    import pyarrow as pa

#: version 2 added ``name`` (a visible label, e.g. a tracker's run name), allowed failed runs
#: without N/D/loss, and hashes content-derived ids column-wise; version 3 added the curves'
#: ``wall_s`` (seconds since the run started, as the sweep runner or the tracker clocked it);
#: see :meth:`RunStore.migrate`
SCHEMA_VERSION = "3"
#: the columns of a stored curve point (version 2 stores lack ``wall_s``: read as NULL)
CURVE_COLUMNS = ("step", "tokens", "loss", "eval_loss", "wall_s")
CONFLICT_CHOICES = ("error", "keep", "replace")
#: the ``meta`` key of the last sweep's progress (:meth:`RunStore.record_sweep`)
SWEEP_KEY = "sweep_progress"

# tags and extra hold JSON text in VARCHAR columns (DuckDB's JSON functions and ->> read them):
# every writer emits canonical JSON, and DuckDB re-validating it on insert into a JSON column
# cost 0.9 s per 585k rows (EXPLAIN ANALYZE of the import's INSERT). run_id, name and extra
# are stored uncompressed: each is unique per run, and compressing run_id and extra (FSST) took
# 2.9 s of a 1M-row insert against 0.75 s uncompressed, for a file 2.8x smaller (49 vs 136 MB
# for those columns); a store is written once and read often, and uncompressed text reads
# faster.
_RUNS_DDL = """CREATE TABLE {name} (
    run_id VARCHAR{uncompressed} NOT NULL,  -- unique by construction (runs/ingest.py), no index
    name VARCHAR{uncompressed},
    N DOUBLE,
    D DOUBLE,
    C DOUBLE,
    loss DOUBLE,
    lr DOUBLE,
    batch_tokens DOUBLE,
    weight_decay DOUBLE,
    seq_len DOUBLE,
    tags VARCHAR,
    status VARCHAR NOT NULL,
    error VARCHAR,
    source VARCHAR,
    extra VARCHAR{uncompressed},
    created_at TIMESTAMP DEFAULT current_timestamp,
    CHECK (status IN ('finished', 'failed', 'running')),
    CHECK (status <> 'finished' OR (N IS NOT NULL AND D IS NOT NULL AND C IS NOT NULL
                                    AND loss IS NOT NULL))
)"""
_UNCOMPRESSED = " USING COMPRESSION uncompressed"


def _runs_ddl(name: str, compression: bool = True) -> str:
    return _RUNS_DDL.format(name=name, uncompressed=_UNCOMPRESSED if compression else "")


_DDL = [
    _runs_ddl("runs"),
    """CREATE TABLE curves (
        run_id VARCHAR NOT NULL,
        step BIGINT,
        tokens DOUBLE,
        loss DOUBLE,
        eval_loss DOUBLE,
        wall_s DOUBLE  -- wall-clock seconds since the run started (NULL: not clocked)
    )""",
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
]

#: the columns a ``where`` filter may use
FILTER_COLUMNS = (*RUN_COLUMNS, "created_at")
#: every connection: no file access beyond the store itself (and, set per connection, no
#: progress bar: a long import would draw one on stdout, into ``--json`` output)
#: DuckDB spills big sorts to ``temp_directory``; by default that is a folder beside the store,
#: which a read must not create, so it is a folder in the system's temp, private to this user
#: (0700, ``scalinglab-duckdb-UID``: a fixed shared path let another user read the spill)
#: no optimistic writes: DuckDB writes a large append's row groups into the store file before
#: the commit, and a rollback leaves them there; an import refused at its last row (1.5M rows)
#: grew the store from 1 MB to 94 MB, its runs unchanged. Kept in memory (spilled to
#: temp_directory under pressure), the same import took the same CPU (4.4 s) and 60 MB more
_CONNECT_CONFIG = {"enable_external_access": False, "enable_optimistic_write": False}


def _connect_config() -> dict[str, Any]:
    return {**_CONNECT_CONFIG, "temp_directory": str(user_temp_dir("scalinglab-duckdb"))}


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
            self._checked = self._check_readable()

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
                self._check_wal()
                con = duckdb.connect(str(self.path), read_only=read_only,
                                     config=_connect_config())
                _do(con, "SET enable_progress_bar = false")
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
        kinds = dict(con.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = 'main'").fetchall())
        tables = set(kinds)
        if not tables:
            return ""  # an empty DuckDB file: ours to initialise
        views = sorted(t for t in ("runs", "curves", "meta") if kinds.get(t) not in
                       (None, "BASE TABLE"))
        if views:  # a view over range(1e12) named runs made every read run forever
            raise StoreError(f"{self.path}: {', '.join(views)} {'is a view' if len(views) == 1 else 'are views'}"
                             ", not a table: not a scalinglab run store; it was left unchanged")
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

    def _check_wal(self) -> None:
        """DuckDB writes its journal to ``<store>.wal`` and follows a symlink there: an import
        wrote 753 bytes of WAL into whatever file a planted link named. Refused instead."""
        wal = self.path.with_name(self.path.name + ".wal")
        if os.path.islink(wal):
            raise StoreError(f"{wal}: the store's journal is a symbolic link; refusing to open "
                             "the store (remove the link)")
        if os.path.lexists(wal) and not stat.S_ISREG(os.lstat(wal).st_mode):
            raise StoreError(f"{wal}: the store's journal is not a regular file; refusing to "
                             "open the store")

    def _check_file(self) -> None:
        """An existing path must be a DuckDB database file (its header says ``DUCK``).

        Checked by reading 12 bytes, before DuckDB opens anything: DuckDB 2 opens a path ending
        in ``.csv`` or ``.parquet`` as an in-memory database over that file, so an import
        would vanish, and its errors for other files are worded differently by version. A
        FIFO or device is refused before it is opened (reading one blocks or never ends).
        """
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder, not a run store")
        try:
            with open_input(self.path) as fh:
                head = fh.read(12)
        except InputError as exc:
            raise StoreError(f"{self.path}: {exc.detail}; not a run store") from None
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
        if os.path.islink(self.path) and not self.path.exists():
            raise StoreError(f"{self.path}: a broken symbolic link; refusing to create a store "
                             "where it points")
        with self._creation_lock() as created, self._writing(created) as con:
            yield con

    @contextmanager
    def _creation_lock(self) -> Iterator[bool]:
        """Whether this operation creates the store, decided under a lock on the store's
        folder: exclusive while a new store is created and written (so a second process
        waits, then finds the store made and opens it as existing), shared by every other
        writer (so none slips in between a failed creation and its cleanup). Eight parallel
        imports into a new path each decided "new" before the lock, re-initialised the
        winner's file and then deleted it."""
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            yield True  # refused in words by _writing: the folder does not exist
            return
        while True:
            exists = self.path.exists()
            with _folder_lock(parent, exclusive=not exists, timeout=self.lock_timeout_s,
                              what=self.path):
                if self.path.exists() == exists:
                    yield not exists
                    return
            # another process created (or removed) the store meanwhile: decide again

    @contextmanager
    def _writing(self, created: bool) -> Iterator[duckdb.DuckDBPyConnection]:
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
        made: os.stat_result | None = None
        try:
            with self._connect(read_only=False) as con:
                if created:
                    made = os.stat(self.path)
                if created or not self._checked:
                    self._initialise(con)
                yield con
        except BaseException:
            if created and made is not None:
                _remove_created_store(self.path, made)
                self._checked = None
            raise

    def _initialise(self, con: duckdb.DuckDBPyConnection) -> None:
        _do(con, "BEGIN TRANSACTION")
        for ddl in _DDL:
            if ddl.startswith("CREATE TABLE runs"):
                _create_runs(con, "runs")
                continue
            _do(con, ddl)
        _do(con, "INSERT INTO meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
        _do(con, "COMMIT")
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
            if not self._checked:  # checked once per RunStore: a read costs one connection
                self._checked = self._check_readable()
            version = self._checked
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
        imported before adds nothing. Version 2 -> 3: adds the curves' ``wall_s`` (NULL for
        the points already stored: they were not clocked). A version 1 store takes both steps
        in the one transaction.
        """
        if self.read_only:
            raise StoreError(f"{self.path}: the store was opened read-only")
        version = self._check_readable()
        if version == SCHEMA_VERSION:
            return None
        if version not in ("1", "2"):
            raise self._outdated(version)
        with self._connect(read_only=False) as con, _transaction(con):
            if version == "1":
                _migrate_1_to_2(con)
            _migrate_2_to_3(con)
            _do(con, "UPDATE meta SET value = ? WHERE key = 'schema_version'", [SCHEMA_VERSION])
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
        units: Mapping[str, str] | None = None,
        invalid: str = "reject",
        on_conflict: str = "error",
    ) -> ImportReport:
        """Import a CSV/TSV/Parquet/JSONL file, streamed in chunks, in one transaction.

        The same pipeline as :meth:`import_frame` (read -> map -> scale -> validate -> stage
        -> resolve duplicates -> insert); ``units`` multiplies columns given in other units
        (``{"N": "1e6"}`` for parameters in millions), as the CLI's ``--units`` does. Errors
        name file, row (and line) and column. ``scale`` is the old name of ``units`` and
        warns: elsewhere in the API ``scale`` means a fit's residual scale (log or linear).
        """
        if scale is not None:
            if units is not None:
                raise ParameterError("give units= (scale= is its old name), not both", "units")
            warnings.warn("import_file(scale=...) is now units=...", DeprecationWarning, stacklevel=2)
            units = scale
        _check_choices(invalid, on_conflict)
        tags = _checked_tags(tags)
        reader = runs_io.TableReader(path)
        options = Options(source=str(path), tags=tags, seq_len=_seq_len(seq_len),
                          invalid=invalid)
        layouts: dict[tuple[str, ...], Layout] = {}
        if reader.columns is not None:  # CSV, Parquet: plan from the header, before any row
            layout = layouts[tuple(reader.columns)] = plan_layout(reader.columns, mapping,
                                                                   options)
            reader.numeric = {layout.file_column(c) for c in layout.numbers}
        n_read = 0

        def chunks() -> Iterator[Prepared]:
            nonlocal n_read
            for raw in reader.chunks(skip_ragged=invalid == "skip"):
                key = tuple(raw.columns)
                layout = layouts.get(key)
                if layout is None:
                    layout = layouts[key] = plan_layout(key, mapping, options)
                n_read += len(raw)
                prepared = prepare_chunk(_scaled(raw.cells, units, layout, options.source),
                                         layout, options, start=raw.start, rows=raw.rows)
                if prepared.n_bad and raw.body is not None:  # quote the cells as written
                    raw = reader.as_text(raw)
                    prepared = prepare_chunk(_scaled(raw.cells, units, layout, options.source),
                                             layout, options, start=raw.start, rows=raw.rows)
                yield prepared

        report = self._import(_prefetched(chunks()), options, on_conflict, reader.labels,
                              lambda: n_read, empty=f"{path}: no rows to import")
        if reader.skipped_rows:
            report.n_read += len(reader.skipped_rows)
            report.n_skipped_invalid += len(reader.skipped_rows)
            report.notes.append(listing(f"skipped {len(reader.skipped_rows)} lines with the "
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
            in ``frame``), ``step``, ``loss``, and optionally ``tokens``, ``eval_loss`` and
            ``wall_s`` (wall-clock seconds since the run started). The
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
        import pandas as pd

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
        """Validate and write every chunk in one transaction (:mod:`scalinglab.runs.ingest`);
        nothing is written unless all of it is."""
        summary = Summary()
        first = next(chunks, None)  # validate (and fail) before the store is touched
        if first is None:
            raise InputError(empty)
        if first.n_bad and options.invalid == "reject":  # no need to open the store at all
            summary.add(first)
            for more in chunks:
                summary.add(more)
            raise summary.invalid_rows(options.source, labels)
        with self._writer() as con, _OneThread(con) as one_thread:
            try:
                with _transaction(con):
                    ingest = Ingest(con, options.source, on_conflict, labels)
                    one_thread.start()
                    for prepared in _chain(first, chunks):
                        summary.add(prepared)
                        if summary.n_bad and options.invalid == "reject":
                            continue  # keep reading: the error lists every bad row (up to 20)
                        ingest.add(prepared)
                    one_thread.end()
                    if summary.n_bad and options.invalid == "reject":
                        raise summary.invalid_rows(options.source, labels)
                    report = ingest.finish()
            except BaseException as exc:
                one_thread.end()
                if _interrupted(exc):  # Ctrl-C inside a DuckDB query: a Ctrl-C (exit 130),
                    raise KeyboardInterrupt from None  # not a traceback or a store error
                if isinstance(exc, duckdb.Error):
                    raise StoreError(f"{self.path}: the import was not written: "
                                     f"{_first_line(exc)}") from None
                raise
        report.n_read = int(n_read())
        report.n_failed = summary.n_failed
        report.n_skipped_invalid = summary.n_skipped
        report.notes[:0] = summary.notes(labels)
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
        with self._writer() as con, _transaction(con):
            _do(con, "DELETE FROM curves WHERE run_id = ?", [rec["run_id"]])
            _do(con, "DELETE FROM runs WHERE run_id = ?", [rec["run_id"]])
            _do(con,
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                row,
            )
            if curve is not None and len(curve):
                import pandas as pd

                c = pd.DataFrame({
                    "run_id": rec["run_id"],
                    "step": curve["step"].astype("int64"),
                    "tokens": curve["tokens"].astype(float) if "tokens" in curve else None,
                    "loss": curve["loss"].astype(float),
                    "eval_loss": curve["eval_loss"].astype(float) if "eval_loss" in curve
                    else None,
                    "wall_s": curve["wall_s"].astype(float) if "wall_s" in curve else None,
                })
                con.register("curve_in", c)
                _do(con, "INSERT INTO curves SELECT run_id, step, tokens, loss, "
                            "eval_loss, wall_s FROM curve_in")
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
        filtered = None
        with self._reader() as (con, version):
            have = _columns(con)
            cols = [c if c in have else f"NULL::VARCHAR AS {c}" for c in FILTER_COLUMNS]
            extras: list[str] = []
            if where and where.strip():
                # imported extra columns are filter columns too, by their own names
                extras = _extra_columns(con) if "extra" in have else []
                names = {**{name: f"__extra_{j}" for j, (name, _) in enumerate(extras)},
                         **{c: c for c in FILTER_COLUMNS}}  # a run column wins its own name
                filtered = compile_where(where, names)
                cols += [sql for _, sql in extras]
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
        df["tags"] = [loads(s) for s in df["tags"]]
        df["extra"] = [loads(s) for s in df["extra"]]
        return df

    def extra_keys(self) -> list[str]:
        """Every key of the runs' ``extra`` (imported extra columns), sorted."""
        with self._reader() as (con, _):
            if "extra" not in _columns(con):
                return []
            return [str(k) for (k,) in con.execute(
                "SELECT DISTINCT unnest(json_keys(extra)) AS k FROM runs "
                "WHERE extra IS NOT NULL AND extra <> '{}' ORDER BY k").fetchall()]

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
        out["tags"], out["extra"] = loads(out["tags"]), loads(out["extra"])
        return out

    def has_run(self, run_id: str, status: str | None = "finished") -> bool:
        sql, params = "SELECT count(*) FROM runs WHERE run_id = ?", [str(run_id)]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        with self._reader() as (con, _):
            return bool(con.execute(sql, params).fetchall()[0][0])

    def curve(self, run_id: str) -> pd.DataFrame:
        """A run's loss curve: columns step, tokens, loss, eval_loss and wall_s (seconds since
        the run started; NaN where it was not clocked); empty if none."""
        with self._reader() as (con, _):
            return con.execute(
                f"SELECT {_curve_select(con)} FROM curves WHERE run_id = ? ORDER BY step",
                [str(run_id)],
            ).df()

    def curves(self, run_ids: list[str]) -> dict[str, pd.DataFrame]:
        """Loss curves of several runs in one query (``{run_id: frame}``; runs without one are
        left out), for views that overlay many: one connection instead of one per run."""
        if not run_ids:
            return {}
        with self._reader() as (con, _):
            df = con.execute(
                f"SELECT run_id, {_curve_select(con)} FROM curves "
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

    def record_sweep(self, state: Mapping[str, Any]) -> None:
        """Keep where the sweep writing to this store stands (:func:`scalinglab.sweep.progress.
        snapshot`: runs done / planned, running, failed, elapsed, ETA), for a dashboard that
        only reads the store. One row of ``meta``; the last sweep's replaces the one before."""
        text = json.dumps(dict(state), sort_keys=True, allow_nan=False)
        with self._writer() as con:
            _do(con, "INSERT OR REPLACE INTO meta VALUES (?, ?)", [SWEEP_KEY, text])

    def sweep_progress(self) -> dict[str, Any] | None:
        """The last :meth:`record_sweep` state, or None (no sweep wrote one, or it is not
        readable: a monitor shows nothing rather than failing)."""
        with self._reader() as (con, _):
            rows = con.execute("SELECT value FROM meta WHERE key = ?", [SWEEP_KEY]).fetchall()
        if not rows:
            return None
        try:
            out = json.loads(rows[0][0])
        except (TypeError, ValueError):
            return None
        return out if isinstance(out, dict) else None

    def tag_values(self) -> dict[str, list[str]]:
        """Every tag key with its distinct values, for filters in the dashboard."""
        df = self.runs(status=None)
        out: dict[str, set[str]] = {}
        for tags in df["tags"]:
            for k, v in tags.items():
                out.setdefault(k, set()).add(str(v))
        return {k: sorted(v) for k, v in sorted(out.items())}


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _OneThread:
    """DuckDB inserts an import's chunks on one thread (``SET threads = 1`` between
    :meth:`start` and :meth:`end`): the reader and the validator need the other cores.

    Measured on a million-row CSV (2 cores, process time): the chunk inserts took 0.98 s on
    one thread against 1.33 s on two, and no more wall time (on a loaded machine); the whole
    import 3.73-4.35 s against 4.30-4.63 s (5 runs each). Resolving repeats and the commit keep every thread.
    ``threads`` is a setting of the database instance, which this process's connections to
    the file share, so the value found is put back, after a failed statement too (once the
    transaction is rolled back) and on leaving the ``with`` block.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.saved: int | None = None

    def __enter__(self) -> _OneThread:
        return self

    def start(self) -> None:
        threads = int(self.con.execute("SELECT current_setting('threads')").fetchall()[0][0])
        _do(self.con, "SET threads = 1")
        self.saved = threads

    def end(self) -> None:
        if self.saved is not None:
            with contextlib.suppress(duckdb.Error):  # an aborted transaction: again on exit
                _do(self.con, f"SET threads = {self.saved}")
                self.saved = None

    def __exit__(self, *exc: object) -> None:
        self.end()


def _prefetched(items: Iterator[Prepared], depth: int = 2) -> Iterator[Prepared]:
    """``items``, produced by a worker thread up to ``depth`` ahead.

    Reading and validating the next chunk then overlaps DuckDB writing this one; Arrow's and
    DuckDB's kernels release the GIL. Order is kept and memory stays bounded (``depth`` chunks
    in flight); an error in the worker is raised here, as if read in this thread.
    """
    out: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_Failed(exc))

    worker = threading.Thread(target=work, name="scalinglab-import-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is done:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                out.get_nowait()
        worker.join(timeout=60)


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One write, all or nothing: committed when the block ends, rolled back when anything
    (an error, an interrupt) leaves it early."""
    _do(con, "BEGIN TRANSACTION")
    try:
        yield
        _do(con, "COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # the error that ended the block is the one to raise
            _do(con, "ROLLBACK")
        raise


def _create_runs(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """The runs table; without the per-column compression hint where DuckDB lacks it."""
    try:
        _do(con, _runs_ddl(name))
    except duckdb.ParserException:
        _do(con, _runs_ddl(name, compression=False))


def _chain(first: Prepared, rest: Iterator[Prepared]) -> Iterator[Prepared]:
    yield first
    yield from rest


def _is_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


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


def _scaled(frame: pd.DataFrame | pa.Table, scale: Mapping[str, str] | None, layout: Layout,
            source: str) -> pd.DataFrame | pa.Table:
    """Apply ``scale`` (keys are scalinglab names, or the file's own column names)."""
    if not scale:
        return frame
    by_file = {}
    for key, factor in scale.items():
        col = layout.file_column(key) if key in layout.present else key
        by_file[col] = factor
    return runs_io.scale_columns(frame, by_file, source)


def _extra_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """``(name, select expression)`` of each extra key: a DOUBLE where every stored value is
    a number, else text, named ``__extra_J`` (J its place here): SQL names are case-blind,
    and an extra ``LR`` beside the run column ``lr`` (or ``X`` beside ``x``) would clash."""
    rows = con.execute(
        "WITH kv AS (SELECT unnest(json_keys(extra)) AS k, extra FROM runs "
        "WHERE extra IS NOT NULL AND extra <> '{}') "
        "SELECT k, bool_and(json_type(extra -> ('$.\"' || replace(k, '\"', '\\\"') || '\"')) "
        "IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'NULL')) FROM kv GROUP BY k ORDER BY k"
    ).fetchall()
    out = []
    for j, (key, numeric) in enumerate(rows):
        path = "'" + ('$."' + str(key).replace('"', '\\"') + '"').replace("'", "''") + "'"
        value = f"json_extract_string(extra, {path})"
        expr = f"TRY_CAST({value} AS DOUBLE)" if numeric else value
        out.append((str(key), f"{expr} AS __extra_{j}"))
    return out


def _interrupted(exc: BaseException) -> bool:
    """A Ctrl-C that DuckDB caught in a query: it says ``RuntimeError: Query interrupted``, or
    names the KeyboardInterrupt in its own error (one met while it read a registered chunk)."""
    text = str(exc)
    return (isinstance(exc, RuntimeError) and "Query interrupted" in text) or (
        isinstance(exc, duckdb.Error) and "KeyboardInterrupt" in text)


def _columns(con: duckdb.DuckDBPyConnection, table: str = "runs") -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
    ).fetchall()}


def _curve_select(con: duckdb.DuckDBPyConnection) -> str:
    """The curve columns to select: ``wall_s`` is NULL in a version 2 store (not migrated)."""
    have = _columns(con, "curves")
    return ", ".join(c if c in have else f"NULL::DOUBLE AS {c}" for c in CURVE_COLUMNS)


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


def _remove_created_store(path: Path, made: os.stat_result) -> None:
    """Remove a store this operation created, after it failed: only the very file it made
    (same device and inode) and only if it holds no run (the creation lock kept every other
    writer out meanwhile). Anything else is left where it is."""
    try:
        now = os.stat(path)
    except OSError:
        return
    if (now.st_dev, now.st_ino) != (made.st_dev, made.st_ino):
        return
    with contextlib.suppress(duckdb.Error):
        con = duckdb.connect(str(path), read_only=True, config=_connect_config())
        try:
            tables = {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables").fetchall()}
            if "runs" in tables and con.execute("SELECT count(*) FROM runs").fetchall()[0][0]:
                return
        finally:
            con.close()
    for p in (path, path.with_name(path.name + ".wal")):
        if os.path.islink(p):
            continue
        with contextlib.suppress(OSError):
            p.unlink()


@contextmanager
def _folder_lock(folder: Path, *, exclusive: bool, timeout: float, what: Path) -> Iterator[None]:
    """``flock`` on the store's folder (no lock file left behind); a no-op where flock is
    missing (Windows) or the folder cannot be opened (it is then refused later, in words)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield
        return
    try:
        deadline = time.monotonic() + timeout
        op = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(fd, op)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreBusy(f"{what}: another process is creating the run store "
                                    f"(waited {timeout:g} s)") from None
                time.sleep(0.02)
            except OSError:  # a file system without flock: go on unlocked
                break
        yield
    finally:
        os.close(fd)


def _migrate_1_to_2(con: duckdb.DuckDBPyConnection) -> None:
    import pandas as pd

    old = con.execute("SELECT * EXCLUDE (created_at), created_at FROM runs").df()
    _create_runs(con, "runs_v2")
    new_ids = _v2_ids(old)
    moved = pd.DataFrame({"old": old["run_id"], "new": new_ids})
    rows = old.assign(run_id=new_ids, name=None)
    rows["tags"] = [canonical_json(loads(t)) for t in rows["tags"]]
    rows["extra"] = [canonical_json(loads(t)) for t in rows["extra"]]
    con.register("v1_rows", rows[[*RUN_COLUMNS, "created_at"]])
    _do(con, f"INSERT INTO runs_v2 ({', '.join(RUN_COLUMNS)}, created_at) "
        f"SELECT {', '.join(RUN_COLUMNS)}, created_at FROM v1_rows")
    con.register("moved", moved[moved["old"] != moved["new"]])
    _do(con, "UPDATE curves SET run_id = moved.new FROM moved WHERE curves.run_id = moved.old")
    _do(con, "DROP TABLE runs")
    _do(con, "ALTER TABLE runs_v2 RENAME TO runs")


def _migrate_2_to_3(con: duckdb.DuckDBPyConnection) -> None:
    if "wall_s" not in _columns(con, "curves"):
        _do(con, "ALTER TABLE curves ADD COLUMN wall_s DOUBLE")


def _v2_ids(old: pd.DataFrame) -> list[str]:
    """Version 2 ids for version 1 rows: a content-derived id (one equal to version 1's SHA-1
    of the row) is re-derived; an id the user or the sweep runner gave is kept."""
    out = []
    for rec in old.to_dict(orient="records"):
        tags, extra = loads(rec.get("tags")), loads(rec.get("extra"))
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
           "ImportReport", "InvalidRows", "RunStore"]
