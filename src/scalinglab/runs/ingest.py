"""One import's writes, inside the store's open transaction: insert, repeat, conflict.

The common case costs one ``INSERT ... SELECT`` per chunk: rows whose id no earlier row of the
import and no stored run has go straight into ``runs`` (their ids are checked as 64-bit hashes
in numpy, so checking a million ids costs milliseconds). Only the rest (repeats, conflicts, a
re-import) are staged and resolved at the end, exactly, by id:

- an exact repeat (same id, same values) is skipped and counted;
- the same id with other values, within the import or against a stored run, is a
  :class:`~scalinglab.errors.ConflictError` naming both rows (``on_conflict="error"``), or
  keeps the first / stored one (``"keep"``), or the last / incoming one (``"replace"``).

Measured on a million-row CSV (2 cores): staging every row and resolving at the end cost 1.9 s
more than inserting directly, and DuckDB's primary-key index on ``run_id`` another 1 to 2.5 s
at commit, so ``runs`` has no index: ids are unique because every write path removes or
refuses an existing id in the same transaction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scalinglab.errors import ConflictError, InputError, StoreError
from scalinglab.results import short_repr
from scalinglab.runs import arrays as A
from scalinglab.runs import ids
from scalinglab.runs.flops import check_flops
from scalinglab.runs.validate import MAX_LISTED, STAGE_COLUMNS, BadRow, Prepared

RUN_COLUMNS = ["run_id", "name", "N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay",
               "seq_len", "tags", "status", "error", "source", "extra"]
#: the values compared to tell an exact repeat from a conflict (besides tags and extra)
VALUE_COLUMNS = ("name", "N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay",
                 "seq_len", "status", "error")

Labels = Callable[[list[int]], dict[int, str]]


@dataclass
class ImportReport:
    """What an import did. Each of the ``n_read`` rows was inserted (``n_inserted``, which
    counts ``n_replaced`` stored runs it replaced and ``n_failed`` invalid rows kept as failed
    runs), skipped as an exact repeat (``n_skipped_duplicates``), left out for another version
    of its run (``n_kept``: the stored one with ``on_conflict="keep"``, or another row of the
    import), or left out as invalid (``n_skipped_invalid``)."""

    __repr__ = short_repr  # one short line, not every field

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
    ``count``, each as ``(label, BadRow)``."""

    def __init__(self, source: str, rows: list[tuple[str, BadRow]], count: int) -> None:
        self.rows = rows
        self.count = count
        if count == 1:
            label, bad = rows[0]
            super().__init__(bad.detail, source=source, row=label, column=bad.column)
            return
        listed = "; ".join(where_bad(label, bad) for label, bad in rows)
        more = f"; and {count - len(rows)} more" if count > len(rows) else ""
        super().__init__(f"{count} rows are not valid runs: {listed}{more}", source=source)


def where_bad(label: str, bad: BadRow) -> str:
    return f"{label}, column {bad.column!r}: {bad.detail}" if bad.column else \
        f"{label}: {bad.detail}"


class Summary:
    """What the chunks of one import found: bad rows, notes, sanity checks."""

    def __init__(self) -> None:
        self.bad: list[BadRow] = []
        self.n_bad = self.n_failed = self.n_skipped = 0
        self.layout_notes: dict[str, None] = {}
        self.max_N = self.max_loss = self.max_lr = -math.inf
        self.flop_columns: dict[str, tuple[str, list[tuple[np.ndarray, ...]]]] = {}

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
        for name, (what, *ndc) in p.flop_columns.items():
            self.flop_columns.setdefault(name, (what, []))[1].append(tuple(ndc))

    def invalid_rows(self, source: str, labels: Labels) -> InvalidRows:
        names = labels([b.row for b in self.bad])
        return InvalidRows(source, [(names[b.row], b) for b in self.bad], self.n_bad)

    def notes(self, labels: Labels) -> list[str]:
        out = list(self.layout_notes)
        for name, (what, parts) in self.flop_columns.items():
            # the same rule as ``fit`` (runs.flops): the column and its factor named, the import
            # kept as it is (a warning, the stored numbers unchanged)
            N, D, C = (np.concatenate(a) for a in zip(*parts, strict=True))
            check = check_flops(N, D, C, column=name, what=what)
            out += [f"warning: {w}" for w in check.warnings]
        if 0 < self.max_N < 1e3:
            out.append("warning: every N is below 1,000: is N in millions? scale it by 1e6")
        if self.max_loss > 20:
            out.append("warning: losses above 20 nats: is this perplexity rather than loss?")
        if self.max_lr > 1:
            out.append("warning: learning rates above 1: check the lr column")
        if self.n_bad and (self.n_failed or self.n_skipped):
            names = labels([b.row for b in self.bad])
            shown = [where_bad(names[b.row], b) for b in self.bad]
            what = (f"imported {self.n_failed} invalid rows as failed runs, the reasons in "
                    "their error" if self.n_failed else f"skipped {self.n_skipped} invalid rows")
            out.append(listing(what, shown, total=self.n_bad))
        return out


def listing(what: str, items: list[str], total: int | None = None) -> str:
    total = len(items) if total is None else total
    more = f"; and {total - len(items)} more" if total > len(items) else ""
    return f"{what}: " + "; ".join(items) + more


class Ingest:
    """The writes of one import, on a connection inside an open transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, source: str, on_conflict: str,
                 labels: Labels) -> None:
        self.con = con
        self.source = source
        self.on_conflict = on_conflict
        self.labels = labels
        self.n_direct = 0
        self.n_staged = 0
        self.n_points = 0
        self.stored = _sorted_keys(con, "SELECT run_id FROM runs")
        self.seen = np.zeros(0, np.uint64)  # sorted id hashes of the import's earlier rows
        # whether a row shares its id with an earlier row of the import (else the rows staged
        # are there only for a stored id, each its own survivor: a re-import)
        self.within = False
        # the directly inserted rows' (_row, _fp, run_id, id hash), kept here rather than in a
        # table: they matter only if a later row repeats one of them
        self.direct: list[pa.Table] = []
        _do(con, """CREATE TEMP TABLE _incoming (
            _row BIGINT, _fp UBIGINT, _given BOOLEAN, run_id VARCHAR, name VARCHAR, N DOUBLE,
            D DOUBLE, C DOUBLE, loss DOUBLE, lr DOUBLE, batch_tokens DOUBLE,
            weight_decay DOUBLE, seq_len DOUBLE, tags VARCHAR, status VARCHAR, error VARCHAR,
            extra VARCHAR, _same BOOLEAN DEFAULT false)""")
        # a stored run's id hash and a hash of its compared values, sorted by id hash: read
        # when a row first meets a stored id (a re-import), never for an import of new runs
        self.stored_values: tuple[np.ndarray, np.ndarray] | None = None
        _do(con, """CREATE TEMP TABLE _incoming_curves (
            _row BIGINT, step BIGINT, tokens DOUBLE, loss DOUBLE, eval_loss DOUBLE,
            wall_s DOUBLE)""")

    # -- per chunk ----------------------------------------------------------------------------

    def add(self, p: Prepared) -> None:
        """Insert the chunk's rows that are new for sure; stage the others."""
        n = len(p.runs)
        if n == 0:
            return
        keys, _ = ids.text_words(p.runs["run_id"])
        # one sort serves all three checks: looked up in sorted order, the binary searches walk
        # the big arrays one way (measured: 37k keys in 1M, 3.8x faster than in file order)
        order = np.argsort(keys, kind="stable")
        new = keys[order]
        again = np.zeros(n, bool)
        again[1:] = new[1:] == new[:-1]  # a later row of this chunk with the same id
        collide = np.empty(n, bool)
        at = np.searchsorted(self.seen, new)  # serves the check and the insertion alike
        within = again | _in_sorted(new, self.seen, at)
        self.within = self.within or bool(within.any())
        collide[order] = within | _in_sorted(new, self.stored)
        self.seen = np.insert(self.seen, at, new)  # stays sorted
        extra_sql, params = extra_json(p)
        direct = p.runs.filter(A.bools(~collide)) if collide.any() else p.runs
        staged = p.runs.filter(A.bools(collide)) if collide.any() else None
        cols = ", ".join(RUN_COLUMNS)
        select = ", ".join("? AS source" if c == "source" else extra_sql if c == "extra" else c
                           for c in RUN_COLUMNS)
        if len(direct):
            _register(self.con, "_chunk", direct)
            _do(self.con, f"INSERT INTO runs ({cols}) SELECT {select} FROM _chunk",
                [self.source, *params])
            self.con.unregister("_chunk")
            kept = keys[~collide] if collide.any() else keys
            self.direct.append(direct.select(["_row", "_fp", "run_id"]).append_column(
                "_key", A.numbers(kept, type=pa.uint64())))
            self.n_direct += len(direct)
        if staged is not None and len(staged):
            stored = np.zeros(n, bool)
            stored[order] = _in_sorted(new, self.stored)
            self._stage(staged, keys[stored & collide], stored[collide], extra_sql, params)
            self.n_staged += len(staged)
        if len(p.curves):
            self._add_curves(p, direct, staged)

    def _stage(self, staged: pa.Table, stored_keys: np.ndarray, stored: np.ndarray,
               extra_sql: str, params: list[str]) -> None:
        """Stage rows for the end; a row equal to the stored run of its id (a re-import) is
        staged without its values (``_same``): they are the stored run's, and every one it
        needs later (a message, a comparison) is read from there.

        Measured on a no-op re-import of 1.5M rows: staged whole, the rows held 600 MB of
        DuckDB memory, and comparing them with the stored runs at the end read every stored
        value too; the re-import peaked at 2.8 GB against 1.35 GB for the fresh import.
        """
        con = self.con
        same_rows = self._same_rows(staged, stored_keys, stored, extra_sql, params) \
            if stored.any() else np.zeros(0, np.int64)
        if not len(same_rows):
            _register(con, "_chunk", staged)
            _do(con, f"INSERT INTO _incoming SELECT {', '.join(STAGE_COLUMNS)}, {extra_sql}, "
                     "false FROM _chunk", params)
            con.unregister("_chunk")
            return
        _register(con, "_same_rows", pa.table({"_same_row": A.numbers(same_rows,
                                                                       type=pa.int64())}))
        _register(con, "_chunk", staged)
        values_sql = ", ".join(f"CASE WHEN _same_row IS NULL THEN {c} END"
                               for c in [*STAGE_COLUMNS[4:], extra_sql])
        # one statement (a temp table per chunk would live on to the commit)
        _do(con, f"""INSERT INTO _incoming SELECT _row, _fp, _given, run_id, {values_sql},
                     _same_row IS NOT NULL FROM _chunk LEFT JOIN _same_rows
                     ON _same_row = _row""", params)
        con.unregister("_chunk")
        con.unregister("_same_rows")

    def _same_rows(self, staged: pa.Table, stored_keys: np.ndarray, stored: np.ndarray,
                   extra_sql: str, params: list[str]) -> np.ndarray:
        """Row numbers of the staged rows (those ``stored`` marks, whose id hashes are
        ``stored_keys``) equal to the stored run of their id, by :func:`values_hash`."""
        con = self.con
        if self.stored_values is None:
            self.stored_values = _stored_values(con)
        # the rows meeting a stored id, in the order of ``stored_keys``
        meeting = staged.filter(A.bools(stored))
        _register(con, "_chunk", meeting)
        got = _arrow(con.sql(f"SELECT {values_hash(extra_sql)} AS h FROM _chunk ORDER BY _row",
                             params=params))["h"]
        con.unregister("_chunk")
        hashes = np.empty(len(meeting), np.uint64)  # back in the order of ``meeting``
        hashes[np.argsort(A.to_numpy(meeting["_row"]), kind="stable")] = \
            A.to_numpy(got).astype(np.uint64)
        keys, values = self.stored_values
        at = np.searchsorted(keys, stored_keys)
        at[at == len(keys)] = 0
        same = (keys[at] == stored_keys) & (values[at] == hashes)
        return A.to_numpy(meeting["_row"])[same]

    def _add_curves(self, p: Prepared, direct: pa.Table, staged: pa.Table | None) -> None:
        curves = p.curves
        if staged is not None and len(staged):
            later = pc.is_in(curves["_row"], value_set=staged["_row"])
            _register(self.con, "_chunk_curves", curves.filter(later))
            _do(self.con, "INSERT INTO _incoming_curves SELECT * FROM _chunk_curves")
            self.con.unregister("_chunk_curves")
            curves = curves.filter(pc.invert(later))
        if len(curves) and len(direct):
            _register(self.con, "_chunk_curves", curves)
            _register(self.con, "_chunk_ids", direct.select(["_row", "run_id"]))
            self.n_points += self.con.execute("""
                INSERT INTO curves SELECT i.run_id, c.step, c.tokens, c.loss, c.eval_loss,
                c.wall_s FROM _chunk_curves c JOIN _chunk_ids i USING (_row)""").fetchall()[0][0]
            self.con.unregister("_chunk_curves")
            self.con.unregister("_chunk_ids")

    # -- at the end ---------------------------------------------------------------------------

    def finish(self) -> ImportReport:
        """Resolve the staged rows (repeats, conflicts) and write the ones that stay."""
        report = ImportReport(source=self.source, n_read=self.n_direct + self.n_staged,
                              n_inserted=self.n_direct, n_skipped_duplicates=0,
                              n_curve_points=self.n_points)
        if self.n_staged:
            self._resolve(report)
        return report

    def _resolve(self, report: ImportReport) -> None:
        con = self.con
        inner: list[tuple] = []
        repeats = differing = 0
        first_repeat: int | None = None
        if self.within:  # else no two rows of the import share an id: nothing to group
            inner, repeats, differing, first_repeat = self._resolve_within(report)
        # staged survivors against the runs stored before the import. The staged rows that
        # are not survivors leave _incoming, which then holds the candidates: a re-import
        # stages every row and all of them survive, and a copy of them (as _candidates was)
        # cost 600 MB on 1.5M rows
        # (without rows sharing an id, every staged row is its id's survivor)
        if self.within:
            _do(con, """DELETE FROM _incoming i WHERE NOT EXISTS
                           (SELECT 1 FROM _survivor s WHERE s.srow = i._row)""")
        conflicting, n_stored = self._store_clashes()
        if conflicting and self.on_conflict == "error":
            raise self._store_conflict(conflicting)
        report.n_skipped_duplicates += int(n_stored - len(conflicting))
        replace = self.on_conflict == "replace" and bool(conflicting)
        if replace:
            _register(con, "_replace_rows", pa.table({"run_id": [r for _, r in conflicting]}))
            _do(con, "CREATE TEMP TABLE _replace_in AS SELECT run_id FROM _replace_rows")
            _do(con, "DELETE FROM curves WHERE run_id IN (SELECT run_id FROM _replace_in)")
            _do(con, "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM _replace_in)")
            report.n_replaced = len(conflicting)
        elif conflicting:
            report.n_kept += len(conflicting)
        cols = ", ".join(RUN_COLUMNS)
        select = ", ".join("? AS source" if c == "source" else c for c in RUN_COLUMNS)
        # written: the candidates whose id is not stored (any more, after replace), found by
        # row number in _stored rather than by a join of every candidate against runs
        replaced = ""
        if replace:
            _register(con, "_replaced_rows", pa.table({"_row": [r for r, _ in conflicting]}))
            replaced = " OR c._row IN (SELECT _row FROM _replaced_rows)"
        _do(con, f"""CREATE TEMP TABLE _write AS SELECT c._row, c.run_id FROM _incoming c
                       WHERE NOT EXISTS (SELECT 1 FROM _stored s WHERE s._row = c._row)
                       {replaced}""")
        n_new = con.execute("SELECT count(*) FROM _write").fetchall()[0][0]
        _do(con, f"INSERT INTO runs ({cols}) SELECT {select} FROM _incoming "
                 "WHERE _row IN (SELECT _row FROM _write)", [self.source])
        points = con.execute("""
            INSERT INTO curves SELECT w.run_id, c.step, c.tokens, c.loss, c.eval_loss,
            c.wall_s FROM _incoming_curves c JOIN _write w USING (_row)""").fetchall()[0][0]
        report.n_inserted += int(n_new)
        report.n_curve_points += int(points or 0)
        self._notes(report, inner, first_repeat, int(repeats), int(differing), conflicting)

    def _resolve_within(self, report: ImportReport) -> tuple[list[tuple], int, int, int | None]:
        """Rows of the import sharing an id: inner conflicts (raised with ``"error"``), one
        survivor per id (``_survivor``), repeats and differing rows counted, direct rows
        superseded by a later one removed."""
        con = self.con
        staged_keys = _sorted_keys(con, "SELECT run_id FROM _incoming") if self.direct else \
            np.zeros(0, np.uint64)
        repeated = [t.filter(A.bools(_member(A.to_numpy(t["_key"]), staged_keys)))
                    for t in self.direct]
        keys = pa.concat_tables(repeated).drop_columns(["_key"]) if repeated else \
            pa.table({"_row": pa.nulls(0, pa.int64()), "_fp": pa.nulls(0, pa.uint64()),
                      "run_id": pa.nulls(0, pa.string())})
        _register(con, "_keys_in", keys)
        _do(con, "CREATE TEMP TABLE _keys AS SELECT * FROM _keys_in")
        # every row of the import sharing an id with a staged row, direct (in runs) or staged
        _do(con, """CREATE TEMP TABLE _group AS
            SELECT _row, _fp, run_id, false AS staged FROM _keys
            WHERE run_id IN (SELECT run_id FROM _incoming)
            UNION ALL SELECT _row, _fp, run_id, true AS staged FROM _incoming""")
        inner = con.execute("""
            WITH first AS (SELECT run_id, arg_min(_fp, _row) AS fp0, min(_row) AS r0
                           FROM _group GROUP BY run_id HAVING count(*) > 1)
            SELECT f.r0, min(g._row) AS r1, f.run_id, count(*) OVER () AS total
            FROM _group g JOIN first f USING (run_id)
            WHERE g._fp <> f.fp0 GROUP BY f.run_id, f.r0 ORDER BY r1 LIMIT ?""",
                            [MAX_LISTED]).fetchall()
        if inner and self.on_conflict == "error":
            raise self._inner_conflict(inner)
        pick = "max" if self.on_conflict == "replace" else "min"
        # one survivor per id: the first row (the last with replace), but never a staged copy
        # of a row already inserted with the same values
        _do(con, f"""CREATE TEMP TABLE _survivor AS
            WITH pick AS (SELECT run_id, {pick}(_row) AS srow FROM _group GROUP BY run_id),
                 direct AS (SELECT run_id, _row AS krow, _fp AS kfp FROM _group WHERE NOT staged)
            SELECT p.run_id, CASE WHEN d.krow IS NOT NULL AND g._fp = d.kfp THEN d.krow
                                  ELSE p.srow END AS srow, d.krow
            FROM pick p JOIN _group g ON g._row = p.srow
            LEFT JOIN direct d ON d.run_id = p.run_id""")
        repeats, differing, first_repeat = con.execute("""
            SELECT count(*) FILTER (WHERE g._fp = w._fp), count(*) FILTER (WHERE g._fp <> w._fp),
                   min(g._row) FILTER (WHERE g._fp = w._fp)
            FROM _group g JOIN _survivor s ON s.run_id = g.run_id
            JOIN _group w ON w._row = s.srow
            WHERE g._row <> s.srow""").fetchall()[0]
        report.n_skipped_duplicates += int(repeats)
        report.n_kept += int(differing)
        # a direct row superseded by a later staged one (replace): out of runs, curves too
        _do(con, """CREATE TEMP TABLE _superseded AS SELECT run_id FROM _survivor
                       WHERE krow IS NOT NULL AND srow <> krow""")
        n_superseded = con.execute("SELECT count(*) FROM _superseded").fetchall()[0][0]
        if n_superseded:
            _do(con, "DELETE FROM curves WHERE run_id IN (SELECT run_id FROM _superseded)")
            _do(con, "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM _superseded)")
            report.n_inserted -= int(n_superseded)
        return inner, int(repeats), int(differing), first_repeat

    def _store_clashes(self) -> tuple[list[tuple[int, str]], int]:
        """Staged survivors (the rows left in ``_incoming``) whose id is stored with other
        values, ``[(row, run_id)]``, and how many survivors have a stored id at all.

        The join of every survivor with the stored runs carries only ids and row numbers;
        the rows staged as equal to their stored run (``_same``) need no more, the others
        are compared column by column. Joined whole, a re-import's 1.5M rows with the stored
        runs (both sides' values in the hash table) peaked 1 GB above the staged rows.
        """
        con = self.con
        _do(con, """CREATE TEMP TABLE _stored AS SELECT c._row, NOT c._same AS maybe_differs,
                       c._same FROM (SELECT _row, run_id, _same FROM _incoming) c
                       JOIN (SELECT run_id FROM runs) r USING (run_id)""")
        n_stored, n_maybe, n_same = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE maybe_differs), count(*) FILTER (WHERE _same) "
            "FROM _stored").fetchall()[0]
        staged_same = con.execute("SELECT count(*) FROM _incoming WHERE _same").fetchall()[0][0]
        if n_same != staged_same:  # two ids with one 64-bit hash, and equal value hashes too
            raise StoreError(f"{self.source}: rows staged as stored runs are not stored; the "
                             "import was not written (please report this)")
        if not n_maybe:
            return [], int(n_stored)
        differs = " OR ".join(f"c.{col} IS DISTINCT FROM r.{col}" for col in VALUE_COLUMNS)
        clash = con.execute(f"""
            SELECT c._row, c.run_id, ({differs}) AS values_differ
            FROM (SELECT * FROM _incoming WHERE _row IN
                  (SELECT _row FROM _stored WHERE maybe_differs)) c
            JOIN runs r USING (run_id)
            WHERE ({differs}) OR c.tags IS DISTINCT FROM r.tags::VARCHAR
                  OR c.extra IS DISTINCT FROM r.extra::VARCHAR""").fetchall()
        out = [(row, rid) for row, rid, vd in clash if vd]
        json_only = [(row, rid) for row, rid, vd in clash if not vd]
        if json_only:  # the text differs; the values may not (key order, number spelling)
            _register(self.con, "_json_rows", pa.table({"_row": [r for r, _ in json_only]}))
            pairs = self.con.execute("""
                SELECT c._row, c.run_id, c.tags, r.tags::VARCHAR, c.extra, r.extra::VARCHAR
                FROM (SELECT * FROM _incoming WHERE _row IN (SELECT _row FROM _json_rows)) c
                JOIN runs r USING (run_id)""").fetchall()
            out += [(row, rid) for row, rid, t1, t2, e1, e2 in pairs
                    if loads(t1) != loads(t2) or loads(e1) != loads(e2)]
        return sorted(out), int(n_stored)

    def _notes(self, report: ImportReport, inner: list[tuple], first_repeat: int | None,
               repeats: int, differing: int, conflicting: list[tuple[int, str]]) -> None:
        if repeats and first_repeat is not None:
            report.notes.append(f"{repeats} rows repeat an earlier row of the import exactly "
                                f"(first: {self.labels([first_repeat])[first_repeat]}); kept "
                                "once")
        if differing and inner:
            what = "the first kept" if self.on_conflict == "keep" else "the last kept"
            names = self.labels([inner[0][0], inner[0][1]])
            report.notes.append(f"{differing} rows share a run_id with another row of the "
                                f"import but differ ({what}); first: {names[inner[0][1]]} and "
                                f"{names[inner[0][0]]} (run {inner[0][2]!r})")
        if conflicting:
            done = "replaced by this import" if self.on_conflict == "replace" else \
                "kept, the incoming rows left out"
            rows = self.labels([r for r, _ in conflicting[:5]])
            report.notes.append(f"{len(conflicting)} runs already stored with other values were "
                                f"{done}: " + ", ".join(f"{rows[r]} (run {rid!r})"
                                                        for r, rid in conflicting[:5])
                                + (" ..." if len(conflicting) > 5 else ""))

    # -- conflict messages --------------------------------------------------------------------

    def _values(self, row: int | None = None, run_id: str | None = None,
                staged: bool = True) -> dict[str, Any]:
        """One row's values: a staged import row by ``row``, or a run in ``runs`` by id."""
        cols = [*VALUE_COLUMNS, "tags", "extra"] + ([] if staged else ["source"])
        sel = ", ".join(f"{c}::VARCHAR" if c in ("tags", "extra") else c for c in cols)
        table, key, value = ("_incoming", "_row", row) if staged else ("runs", "run_id", run_id)
        rows = self.con.execute(f"SELECT {sel} FROM {table} WHERE {key} = ?", [value]).fetchall()
        got = rows[0] if rows else None
        return dict(zip(cols, got, strict=True)) if got else {}

    def _import_row(self, row: int, run_id: str) -> dict[str, Any]:
        """A row of this import: staged, or inserted directly (then it is the run in runs)."""
        staged = self.con.execute("SELECT count(*) FROM _incoming WHERE _row = ? AND NOT _same",
                                  [row]).fetchall()[0][0]
        # not staged, or staged as equal to its stored run: the values are those in runs
        return self._values(row=row) if staged else self._values(run_id=run_id, staged=False)

    def _inner_conflict(self, inner: list[tuple]) -> ConflictError:
        total = int(inner[0][3])
        names = self.labels([x for r0, r1, _, _ in inner[:5] for x in (r0, r1)])
        parts = []
        for r0, r1, rid, _ in inner[:5]:
            diff = describe_differences(self._import_row(r1, rid), self._import_row(r0, rid))
            parts.append(f"{names[r1]} has the run_id {rid!r} of {names[r0]} but other values "
                         f"({diff})")
        more = f"; and {total - 5} more" if total > 5 else ""
        return ConflictError("; ".join(parts) + more, source=self.source)

    def _store_conflict(self, conflicting: list[tuple[int, str]]) -> ConflictError:
        names = self.labels([r for r, _ in conflicting[:5]])
        parts = []
        for row, rid in conflicting[:5]:
            stored = self._values(run_id=rid, staged=False)
            diff = describe_differences(self._values(row=row), stored)
            parts.append(f"{names[row]}: run {rid!r} is already in the store (from "
                         f"{stored.get('source') or 'an earlier import'}) with other values "
                         f"(here vs stored: {diff})")
        more = f"; and {len(conflicting) - 5} more" if len(conflicting) > 5 else ""
        return ConflictError("; ".join(parts) + more, source=self.source)


def extra_json(p: Prepared) -> tuple[str, list[str]]:
    """The SQL building each row's ``extra`` object, and its parameters (the quoted keys).

    One ``"key":value`` piece per key and kind of value present in the chunk, keys in sorted
    order, no members for missing cells. When the first key's column has no missing cell in the
    chunk (a CSV's extras usually have none), the pieces are one ``concat`` of the keys and the
    values as they are (``concat`` skips a NULL, so a later missing cell leaves out its
    ``,"key":`` piece joined to it by ``||``); otherwise ``concat_ws`` places the commas.
    Measured on a million rows with 8 extras (process time of the inserts): ``concat`` 1.28 to
    1.35 s against 1.56 to 1.65 s for ``concat_ws`` over every piece; ``concat_ws`` was as fast
    as ``json_object`` (which would keep the nulls) and 1.7x faster than ``json_merge_patch``.
    """
    pieces: list[tuple[str, str, bool]] = []  # (key, value SQL, may be NULL in this chunk)
    n = len(p.runs)
    for j, key in enumerate(p.extra_keys):
        tokens = p.runs[f"x{j}_t"]
        if tokens.null_count < n:  # the numbers as written are JSON already
            pieces.append((key, f"x{j}_t", tokens.null_count > 0))
            continue
        for kind, sql in (("i", f"to_json(x{j}_i)"), ("f", f"to_json(x{j}_f)"),
                          ("s", f"to_json(x{j}_s)"), ("j", f"x{j}_j")):
            column = p.runs[f"x{j}_{kind}"]
            if column.null_count < n:
                pieces.append((key, sql, column.null_count > 0))
    if not pieces:
        return "'{}'", []
    pieces.sort(key=lambda piece: piece[0])
    keys = [json.dumps(k, ensure_ascii=False) + ":" for k, _, _ in pieces]
    if pieces[0][2]:  # the first member may be missing: concat_ws places the commas
        sql = "'{' || concat_ws(',', " + ", ".join(f"? || {v}" for _, v, _ in pieces) + ") || '}'"
        return sql, keys
    args = ["?", pieces[0][1]]
    for _, value, nullable in pieces[1:]:
        args += [f"? || {value}"] if nullable else ["?", value]
    return f"concat({', '.join(args)}, '}}')", ["{" + keys[0], *("," + k for k in keys[1:])]


def _register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Let SQL read ``table`` once, as a stream.

    DuckDB keeps a registered Arrow *table* alive until the transaction ends (measured: 10 MB
    a chunk, 280 MB over a million-row import); a record-batch reader is consumed and freed.
    """
    con.register(name, pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))


_TEXT_COLUMNS = ("name", "status", "error", "tags")


def values_hash(extra: str = "extra") -> str:
    """SQL for one 64-bit hash of the values a repeat is told from a conflict by, each cast to
    its type in ``runs`` (and ``_incoming``), so that a row of a chunk and a stored run hash
    alike; ``extra`` is the SQL of the row's extras."""
    cast = [f"{c}::{'VARCHAR' if c in _TEXT_COLUMNS else 'DOUBLE'}"
            for c in [*VALUE_COLUMNS, "tags"]]
    return f"hash({', '.join(cast)}, ({extra})::VARCHAR)"


def _stored_values(con: duckdb.DuckDBPyConnection,
                   batch: int = 256 * 1024) -> tuple[np.ndarray, np.ndarray]:
    """Every stored run's id hash (sorted) and :func:`values_hash`, read in batches."""
    keys, values = [], []
    for b in _reader(con, f"SELECT run_id, {values_hash()} AS h FROM runs", batch):
        if b.num_rows:
            keys.append(ids.text_words(b.column(0))[0])
            values.append(A.to_numpy(b.column(1)).astype(np.uint64))
    if not keys:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    k, v = np.concatenate(keys), np.concatenate(values)
    order = np.argsort(k, kind="stable")
    return k[order], v[order]


def _reader(con: duckdb.DuckDBPyConnection, query: str, batch: int) -> pa.RecordBatchReader:
    result = con.sql(query)
    fetch = next(getattr(result, name) for name in  # named differently across DuckDB versions
                 ("to_arrow_reader", "fetch_arrow_reader", "fetch_record_batch")
                 if hasattr(result, name))
    return fetch(batch)


def _sorted_keys(con: duckdb.DuckDBPyConnection, query: str,
                 batch: int = 256 * 1024) -> np.ndarray:
    """The sorted 64-bit hashes of the ids ``query`` selects, read in batches: fetched whole
    as one Arrow table, a store's 1.5M ids raised the peak by 340 MB before the first row."""
    reader = _reader(con, query, batch)
    parts = [ids.text_words(b.column(0))[0] for b in reader if b.num_rows]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Which ``keys`` (any order) are in ``sorted_keys`` (both uint64)."""
    order = np.argsort(keys)
    out = np.empty(len(keys), bool)
    out[order] = _in_sorted(keys[order], sorted_keys)
    return out


def _in_sorted(needles: np.ndarray, sorted_keys: np.ndarray,
               at: np.ndarray | None = None) -> np.ndarray:
    """Which of the sorted ``needles`` are in ``sorted_keys`` (both uint64); ``at`` is
    ``np.searchsorted(sorted_keys, needles)`` when the caller has it already."""
    if len(sorted_keys) == 0:
        return np.zeros(len(needles), bool)
    at = np.searchsorted(sorted_keys, needles) if at is None else at.copy()
    at[at == len(sorted_keys)] = 0
    return sorted_keys[at] == needles


def _arrow(result: Any) -> pa.Table:
    """A DuckDB relation as Arrow (the method is named differently across DuckDB versions)."""
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        fn = getattr(result, name, None)
        if fn is not None:
            return fn()
    raise AttributeError("this DuckDB cannot return Arrow tables")


#: a differing value longer than this is cut in a conflict message (and says by how much)
MAX_SHOWN_CHARS = 300
#: differences spelt out in full per conflict; beyond, the other differing keys are named
MAX_DIFFERENCES = 8


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """``["loss 9.9 vs 3.5", "extra.note 'x' vs (absent)"]``: what differs between two
    versions of a run, every value in full.

    Tags and extras are compared key by key, so a conflict names the keys that differ rather
    than two long objects cut short; numbers are shown as they are stored (``3.2100000000000004``
    differs from ``3.21``, and a message rounding both to ``3.21`` would hide why).
    """
    out = []
    for col in VALUE_COLUMNS:
        x, y = a.get(col), b.get(col)
        if (_is_null(x) and _is_null(y)) or x == y:
            continue
        out.append(f"{col} {_shown(x)} vs {_shown(y)}")
    for col in ("tags", "extra"):
        x, y = loads(a.get(col)), loads(b.get(col))
        if x == y:
            continue
        if not (isinstance(x, dict) and isinstance(y, dict)):
            out.append(f"{col} {_shown(x)} vs {_shown(y)}")
            continue
        for key in sorted(set(x) | set(y)):
            if key in x and key in y and x[key] == y[key]:
                continue
            out.append(f"{col}.{key} {_shown(x[key]) if key in x else '(absent)'} vs "
                       f"{_shown(y[key]) if key in y else '(absent)'}")
    return out


def describe_differences(a: Mapping[str, Any], b: Mapping[str, Any],
                         limit: int = MAX_DIFFERENCES) -> str:
    """:func:`differences` joined for a message: the first ``limit`` in full, then the names
    of the others (``; and 3 more differ: extra.a, extra.b, tags.sweep``)."""
    diff = differences(a, b)
    shown = "; ".join(diff[:limit])
    if len(diff) > limit:
        rest = [d.split(" ", 1)[0] for d in diff[limit:]]
        shown += f"; and {len(rest)} more differ: {', '.join(rest)}"
    return shown


def _is_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _shown(v: Any) -> str:
    """A value in full: floats as stored (shortest exact repr), text quoted; only a value
    longer than :data:`MAX_SHOWN_CHARS` is cut, saying how many characters were."""
    if isinstance(v, np.generic):
        v = v.item()
    if _is_null(v):
        return "none"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        text, quote = v, True
    else:
        text, quote = json.dumps(v, ensure_ascii=False, sort_keys=True), False
    cut = len(text) - MAX_SHOWN_CHARS
    if cut > 0:
        text = text[:MAX_SHOWN_CHARS]
    text = repr(text) if quote else text
    return text + (f"... ({cut} more characters cut)" if cut > 0 else "")


def loads(s: Any) -> Any:
    """Stored JSON (tags, extra) as a Python value; ``{}`` for none."""
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return {}
    if isinstance(s, (dict, list)):
        return s
    try:
        return json.loads(s)
    except (TypeError, ValueError):
        return {}


def _do(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[tuple]:
    """Run a statement to completion (DuckDB 2 refuses other work, such as registering a
    frame, while a result is unread)."""
    return con.execute(sql, params).fetchall() if params is not None else \
        con.execute(sql).fetchall()
