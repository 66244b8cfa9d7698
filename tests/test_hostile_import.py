"""Hostile input to the run store (issue 11): no read writes, no input silently lost, no foreign
file touched. Each test is a case the hostile test found; each failed on the code before."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from scalinglab.errors import ConflictError, InputError, ParameterError, StoreError
from scalinglab.runs.store import SCHEMA_VERSION, RunStore

GOOD = "N,D,loss,dataset\n1e8,2e9,3.1,c4\n2e8,4e9,2.9,c4\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore(tmp_path / "runs.duckdb")
    s.import_file(write(tmp_path, "good.csv", GOOD))
    return s


# -- 1. --where runs no raw SQL ----------------------------------------------------------------


def test_a_where_filter_cannot_read_a_file(store, tmp_path):
    secret = write(tmp_path, "secret.txt", "the password")
    sneaky = f"(SELECT length(content) FROM read_text('{secret}')) > 0"
    with pytest.raises(ParameterError, match="subquery is not allowed"):
        store.runs(where=sneaky)
    with pytest.raises(ParameterError, match="'read_text' is not allowed"):
        store.runs(where=f"read_text('{secret}') IS NOT NULL")


def test_a_where_filter_cannot_write_a_file(store, tmp_path):
    victim = write(tmp_path, "victim.txt", "keep me")
    before = files_in(tmp_path)
    for attack in (f"1=1); COPY (SELECT 1) TO '{victim}'; SELECT (1",
                   f"1=1; COPY runs TO '{victim}'",
                   f"N > 0 UNION ALL SELECT * FROM read_csv('{victim}')"):
        with pytest.raises(ParameterError, match="invalid where expression"):
            store.runs(where=attack, status=None)
    assert files_in(tmp_path) == before


def test_where_filters_still_filter(store):
    assert len(store.runs(where="N > 1.5e8 AND tags->>'dataset' = 'c4'")) == 1


# -- 2. conflicting duplicates are errors -----------------------------------------------------


def test_a_second_row_with_the_same_id_and_another_loss_is_a_conflict_naming_both_rows(tmp_path):
    f = write(tmp_path, "dup.csv", "run_id,N,D,loss\na,1e8,2e9,3.5\nb,2e8,2e9,3.0\na,1e8,2e9,9.9\n")
    s = RunStore(tmp_path / "s.duckdb")
    with pytest.raises(ConflictError) as err:
        s.import_file(f)
    msg = str(err.value)
    assert "row 3 (line 4)" in msg and "row 1 (line 2)" in msg and "'a'" in msg
    assert "loss 9.9 vs 3.5" in msg
    assert not (tmp_path / "s.duckdb").exists()


def test_a_stored_run_with_other_values_is_a_conflict_not_already_there(store, tmp_path):
    store.import_file(write(tmp_path, "a.csv", "run_id,N,D,loss\nx,1e8,2e9,3.5\n"))
    with pytest.raises(ConflictError, match=r"run 'x' is already in the store .*loss 9\.9 vs 3\.5"):
        store.import_file(write(tmp_path, "b.csv", "run_id,N,D,loss\nx,1e8,2e9,9.9\n"))
    assert store.run("x")["loss"] == 3.5


def test_a_conflict_names_each_differing_key_with_both_values_in_full(store, tmp_path):
    note = "resumed from checkpoint step 4000 after a node failure on the second allocation"
    huge = "x" * 1000
    store.import_frame(pd.DataFrame([{"run_id": "x", "N": 1e8, "D": 2e9, "loss": 3.21,
                                      "note": note, "blob": huge, "same": 1, "gpu": "a100",
                                      "tags": {"sweep": "s1"}}]), source="first.csv")
    incoming = pd.DataFrame([{"run_id": "x", "N": 1e8, "D": 2e9, "loss": 3.2100000000000004,
                              "note": note.replace("second", "third"), "blob": huge + "y",
                              "same": 1, "tags": {"sweep": "s1", "seed": "2"}}])
    with pytest.raises(ConflictError) as err:
        store.import_frame(incoming, source="second.csv")
    msg = str(err.value)
    assert "…" not in msg
    assert "loss 3.2100000000000004 vs 3.21" in msg  # not both rounded to 3.21
    assert f"extra.note {note.replace('second', 'third')!r} vs {note!r}" in msg
    assert "extra.gpu (absent) vs 'a100'" in msg and "tags.seed '2' vs (absent)" in msg
    assert f"extra.blob {'x' * 300!r}... (701 more characters cut) vs " \
           f"{'x' * 300!r}... (700 more characters cut)" in msg
    assert "extra.same" not in msg and "tags.sweep" not in msg  # only what differs


def test_a_conflict_with_many_differences_names_the_rest_by_key(store, tmp_path):
    store.import_frame(pd.DataFrame([{"run_id": "x", "N": 1e8, "D": 2e9, "loss": 3.5,
                                      **{f"k{i}": i for i in range(12)}}]))
    with pytest.raises(ConflictError) as err:
        store.import_frame(pd.DataFrame([{"run_id": "x", "N": 1e8, "D": 2e9, "loss": 3.5,
                                          **{f"k{i}": i + 100 for i in range(12)}}]))
    msg = str(err.value)
    assert "(here vs stored: extra.k0 100 vs 0; extra.k1 101 vs 1; extra.k10 110 vs 10" in msg
    assert "extra.k5 105 vs 5; and 4 more differ: extra.k6, extra.k7, extra.k8, extra.k9)" in msg


def test_on_conflict_keep_and_replace(store, tmp_path):
    store.import_file(write(tmp_path, "a.csv", "run_id,N,D,loss\nx,1e8,2e9,3.5\n"))
    other = write(tmp_path, "b.csv", "run_id,N,D,loss\nx,1e8,2e9,9.9\ny,1e8,2e9,4.0\n")
    kept = store.import_file(other, on_conflict="keep")
    assert (kept.n_inserted, kept.n_kept) == (1, 1) and store.run("x")["loss"] == 3.5
    replaced = store.import_file(other, on_conflict="replace")
    assert replaced.n_replaced == 1 and store.run("x")["loss"] == 9.9
    assert store.run("x")["source"] == str(other)


def test_exact_repeats_are_skipped_and_counted(store, tmp_path):
    f = write(tmp_path, "rep.csv", GOOD + "1e8,2e9,3.1,c4\n")
    report = store.import_file(f)
    assert report.n_inserted == 0 and report.n_skipped_duplicates == 3
    assert any("repeat an earlier row" in n for n in report.notes)


def test_within_a_frame_replace_keeps_the_last_row_and_keep_the_first(tmp_path):
    frame = pd.DataFrame({"run_id": ["a", "a"], "N": [1e8, 1e8], "D": [2e9, 2e9],
                          "loss": [3.5, 9.9]})
    s = RunStore(tmp_path / "s.duckdb")
    s.import_frame(frame, on_conflict="keep")
    assert s.run("a")["loss"] == 3.5
    s2 = RunStore(tmp_path / "s2.duckdb")
    s2.import_frame(frame, on_conflict="replace")
    assert s2.run("a")["loss"] == 9.9


# -- 3. foreign files are refused untouched; old stores are migrated explicitly ---------------


def test_another_programs_duckdb_file_is_refused_and_left_byte_identical(tmp_path):
    foreign = tmp_path / "other.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE customers (id INTEGER, name VARCHAR)")
    con.execute("INSERT INTO customers VALUES (1, 'ada')")
    con.close()
    before = files_in(tmp_path)
    for attempt in (lambda s: s.import_file(write(tmp_path, "r.csv", GOOD)),
                    lambda s: s.add_run({"N": 1e6, "D": 1e8, "loss": 3.0}),
                    lambda s: s.runs(), lambda s: s.migrate()):
        with pytest.raises(StoreError, match="not a scalinglab run store"):
            attempt(RunStore(foreign))
    assert files_in(tmp_path) == {**before, "r.csv": GOOD.encode()}


def test_a_file_that_is_not_duckdb_is_refused_and_left_byte_identical(tmp_path):
    csv = write(tmp_path, "runs.csv", GOOD)
    with pytest.raises(StoreError, match="not a DuckDB file"):
        RunStore(csv).import_file(csv)
    with pytest.raises(StoreError, match="not a DuckDB file"):
        RunStore(csv, read_only=True)
    assert csv.read_text() == GOOD and files_in(tmp_path) == {"runs.csv": GOOD.encode()}


def _v1_store(path: Path, rows: list[dict]) -> None:
    """A store exactly as schema version 1 wrote it, ids from its SHA-1 of the row."""
    con = duckdb.connect(str(path))
    con.execute("""CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, N DOUBLE NOT NULL,
        D DOUBLE NOT NULL, C DOUBLE NOT NULL, loss DOUBLE, lr DOUBLE, batch_tokens DOUBLE,
        weight_decay DOUBLE, seq_len DOUBLE, tags JSON, status VARCHAR NOT NULL, error VARCHAR,
        source VARCHAR, extra JSON, created_at TIMESTAMP DEFAULT current_timestamp)""")
    con.execute("CREATE TABLE curves (run_id VARCHAR NOT NULL, step BIGINT, tokens DOUBLE, "
                "loss DOUBLE, eval_loss DOUBLE)")
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    keys = ("N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay", "seq_len", "tags",
            "extra")
    for r in rows:
        payload = {k: r.get(k) for k in keys}
        rid = r.get("run_id") or "r-" + hashlib.sha1(
            json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
        con.execute("INSERT INTO runs (run_id, N, D, C, loss, lr, batch_tokens, weight_decay, "
                    "seq_len, tags, status, error, source, extra) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'finished', NULL, 'old.csv', ?)",
                    [rid, r["N"], r["D"], r["C"], r["loss"], r.get("lr"), None, None, None,
                     json.dumps(r["tags"]), json.dumps(r["extra"])])
        con.execute("INSERT INTO curves VALUES (?, 1, 10.0, 5.0, NULL)", [rid])
    con.close()


def test_an_old_store_is_read_refused_for_writes_and_migrated_explicitly(tmp_path):
    path = tmp_path / "v1.duckdb"
    rows = [{"N": 1e8, "D": 2e9, "C": 6 * 1e8 * 2e9, "loss": 3.1, "tags": {"dataset": "c4"},
             "extra": {}},
            {"N": 2e8, "D": 4e9, "C": 6 * 2e8 * 4e9, "loss": 2.9, "tags": {"dataset": "c4"},
             "extra": {}},
            {"run_id": "mine", "N": 3e8, "D": 4e9, "C": 7.2e18, "loss": 2.8, "tags": {},
             "extra": {"seed": 1}}]
    _v1_store(path, rows)
    before = path.read_bytes()
    s = RunStore(path)
    assert len(s.runs()) == 3 and s.runs()["name"].isna().all()  # reading works
    with pytest.raises(StoreError, match="schema version 1.*migrate it first"):
        s.import_file(write(tmp_path, "r.csv", GOOD))
    assert path.read_bytes() == before
    assert s.migrate() == "1" and s.version() == SCHEMA_VERSION == "3"
    migrated = s.runs()
    assert "mine" in set(migrated["run_id"])  # a given id is kept
    for rid in migrated["run_id"]:
        assert len(s.curve(rid)) == 1  # curves followed their runs
    again = s.import_file(write(tmp_path, "r2.csv", GOOD))  # the file imported in version 1
    assert again.n_inserted == 0 and again.n_skipped_duplicates == 2
    assert s.migrate() is None


def test_a_newer_store_is_refused(tmp_path):
    s = RunStore(tmp_path / "s.duckdb")
    s.add_run({"N": 1e6, "D": 1e8, "loss": 3.0})
    con = duckdb.connect(str(s.path))
    con.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="newer scalinglab"):
        RunStore(s.path, read_only=True)
    with pytest.raises(StoreError, match="newer scalinglab"):
        RunStore(s.path).add_run({"N": 1e6, "D": 1e8, "loss": 3.0})


# -- 5. non-finite derived values -------------------------------------------------------------


def test_n_and_d_whose_compute_overflows_are_rejected_with_the_row(tmp_path):
    f = write(tmp_path, "huge.csv", "N,D,loss\n1e8,2e9,3\n1e200,1e200,3\n")
    with pytest.raises(InputError, match=r"row 2 \(line 3\): C = 6\*N\*D overflows to inf"):
        RunStore(tmp_path / "s.duckdb").import_file(f)
    with pytest.raises(InputError, match=r"column 'batch_size'.*overflows"):
        RunStore(tmp_path / "s.duckdb").import_file(
            write(tmp_path, "b.csv", "N,D,loss,batch_size\n1e8,2e9,3,1e308\n"), seq_len=2048)
    with pytest.raises(ParameterError, match="overflows"):
        RunStore(tmp_path / "s.duckdb").add_run({"N": 1e200, "D": 1e200, "loss": 3.0})


# -- 6. tag keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["$..*", "a'b", "x]", "", "a=b", "a:b", "k" * 65])
def test_tag_keys_are_validated_everywhere(store, tmp_path, key):
    with pytest.raises(ParameterError, match="tag key"):
        store.runs(tags={key: "x"})
    with pytest.raises(ParameterError, match="tag key"):
        store.import_file(write(tmp_path, "r.csv", GOOD), tags={key: "x"})
    if key:
        frame = pd.DataFrame({"N": [1e8], "D": [2e9], "loss": [3.0], "tags": [{key: "x"}]})
        with pytest.raises(InputError, match=r"row 1, column 'tags': tag key"):
            store.import_frame(frame)


def test_a_tag_key_with_dots_is_a_key_not_a_path(tmp_path):
    s = RunStore(tmp_path / "s.duckdb")
    s.import_frame(pd.DataFrame({"N": [1e8, 2e8], "D": [2e9, 2e9], "loss": [3.0, 2.9],
                                 "tags": [{"data.set": "c4"}, {"data": "x"}]}))
    assert len(s.runs(tags={"data.set": "c4"})) == 1


# -- 9. read-only places, leftovers, messages, warnings ---------------------------------------


def test_a_failed_import_leaves_no_store_file_behind(tmp_path):
    for body in ("N,D,loss\n1e8,2e9,abc\n", "N,D\n1e8,2e9\n", "N,D,loss\n"):
        with pytest.raises(InputError):
            RunStore(tmp_path / "new.duckdb").import_file(write(tmp_path, "bad.csv", body))
        assert not (tmp_path / "new.duckdb").exists()
        assert not (tmp_path / "new.duckdb.wal").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root can write to read-only folders")
def test_a_store_in_a_read_only_folder_is_one_clean_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    s = RunStore(folder / "s.duckdb")
    s.add_run({"N": 1e6, "D": 1e8, "loss": 3.0})
    folder.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="read-only"):
            s.import_file(write(tmp_path, "r.csv", GOOD))
        assert len(RunStore(folder / "s.duckdb", read_only=True).runs()) == 1
    finally:
        folder.chmod(0o755)


def test_a_store_folder_that_does_not_exist_is_one_clean_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        RunStore(tmp_path / "nope" / "s.duckdb").import_file(write(tmp_path, "r.csv", GOOD))


def test_messages_show_numbers_as_written_not_numpy_reprs(tmp_path):
    f = tmp_path / "neg.parquet"
    pd.DataFrame({"N": [100, -5], "D": [10**9, 10**9], "loss": [3.0, 3.0]}).to_parquet(f)
    with pytest.raises(InputError) as err:
        RunStore(tmp_path / "s.duckdb").import_file(f)
    assert "row 2, column 'N': -5 must be a positive number" in str(err.value)
    assert "np." not in str(err.value)


def test_no_runtime_warnings_escape(tmp_path):
    body = "N,D,loss,lr,weight_decay\n1e8,2e9,3.1,,\n2e8,4e9,2.9,,\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = RunStore(tmp_path / "s.duckdb")
        s.import_file(write(tmp_path, "r.csv", body))
        s.import_file(write(tmp_path, "h.csv", "N,D,loss\n1e200,1e200,3\n"), invalid="failed")
        assert len(s.runs(status=None)) == 3


def test_reading_commands_never_create_or_write_anything(store, tmp_path):
    before = files_in(tmp_path)
    ro = RunStore(store.path, read_only=True)
    ro.runs(where="N > 0", tags={"dataset": "c4"})
    ro.counts(), ro.tag_values(), ro.has_run("x"), ro.curve("x"), ro.version()
    assert files_in(tmp_path) == before
    with pytest.raises(StoreError, match="no run store"):
        RunStore(tmp_path / "missing.duckdb", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()
