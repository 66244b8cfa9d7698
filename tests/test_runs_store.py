"""The run store: imports are all-or-nothing, idempotent, and say exactly what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from scalinglab.errors import InputError, ParameterError, StoreError
from scalinglab.runs.store import RunStore

GOOD = "N,D,loss,lr,dataset\n1e8,2e9,3.1,3e-4,c4\n2e8,4e9,2.9,2e-4,c4\n125M,8B,2.7,,pile\n"


def snapshot(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        runs = con.execute("SELECT * EXCLUDE (created_at) FROM runs ORDER BY run_id").fetchall()
        curves = con.execute("SELECT * FROM curves ORDER BY run_id, step").fetchall()
    finally:
        con.close()
    return runs + curves


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs.duckdb")


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_import_derives_compute_and_reads_suffixed_numbers(store, tmp_path):
    report = store.import_file(write(tmp_path, "r.csv", GOOD))
    assert report.n_inserted == 3
    df = store.runs()
    row = df[df.N == 125e6].iloc[0]
    assert row.D == 8e9
    assert row.C == pytest.approx(6 * 125e6 * 8e9)
    assert row.tags == {"dataset": "pile"}
    assert pd.isna(row.lr)
    assert any("C = 6*N*D" in n for n in report.notes)


def test_importing_the_same_file_twice_adds_nothing(store, tmp_path):
    f = write(tmp_path, "r.csv", GOOD)
    store.import_file(f)
    again = store.import_file(f)
    assert again.n_inserted == 0
    assert again.n_skipped_duplicates == 3
    assert len(store.runs()) == 3


def test_compute_instead_of_tokens_gives_tokens_and_says_so(store, tmp_path):
    report = store.import_file(write(tmp_path, "c.csv", "N,C,loss\n1e6,6e12,4.0\n"))
    assert store.runs().iloc[0].D == pytest.approx(1e6)
    assert any("D = C/(6*N)" in n for n in report.notes)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("N,D\n1e8,1e9\n", "missing required column 'loss'"),
        ("N,loss\n1e8,3\n", "missing column 'D'"),
        ("N,D,loss\n1e8,1e9,3\n1e8,1e9,abc\n", "row 2 (line 3), column 'loss': 'abc' is not a number"),
        ("N,D,loss\n1e8,1e9,3\n1e8,1e9,nan\n", "row 2 (line 3), column 'loss': is missing"),
        ("N,D,loss\n1e8,1e9,3\n1e8,inf,3\n", "row 2 (line 3), column 'D': 'inf' is infinite"),
        ("N,D,loss\n0,1e9,3\n", "row 1 (line 2), column 'N'"),
        ("N,D,loss\n-5,1e9,3\n", "row 1 (line 2), column 'N'"),
        ("N,D,loss\n1e8,1e9,0\n", "row 1 (line 2), column 'loss'"),
        ("N,D,loss\n1e8,0.5,3\n", "row 1 (line 2), column 'D'"),
        ("N,D,loss\n1e8,,3\n", "row 1 (line 2), column 'D': is missing"),
    ],
)
def test_a_bad_row_rejects_the_whole_file_and_leaves_the_store_as_it_was(
    store, tmp_path, body, fragment
):
    store.import_file(write(tmp_path, "good.csv", GOOD))
    before = snapshot(store.path)
    bad = write(tmp_path, "bad.csv", body)
    with pytest.raises(InputError) as err:
        store.import_file(bad)
    assert str(bad) in str(err.value)
    assert fragment in str(err.value)
    assert snapshot(store.path) == before


def test_jsonl_errors_name_the_line_and_curves_are_kept(store, tmp_path):
    rows = [
        {"N": 1e6, "D": 1e8, "loss": 3.5, "run_id": "a", "curve": [[0, 0, 5.5], [10, 1e7, 4.0]]},
        {"N": 2e6, "D": 1e8, "loss": 3.3, "run_id": "b", "tags": {"architecture": "llama"}},
    ]
    f = write(tmp_path, "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    report = store.import_file(f)
    assert report.n_curve_points == 2
    assert list(store.curve("a").loss) == [5.5, 4.0]
    assert store.run("b")["tags"] == {"architecture": "llama"}

    before = snapshot(store.path)
    bad = write(tmp_path, "bad.jsonl", json.dumps(rows[0] | {"run_id": "c"}) + "\n\n{not json}\n")
    with pytest.raises(InputError, match=r"bad.jsonl: line 3"):
        store.import_file(bad)
    bad2 = write(tmp_path, "bad2.jsonl", json.dumps({"N": 1e6, "D": "x", "loss": 3}) + "\n")
    with pytest.raises(InputError, match=r"row 1 \(line 1\), column 'D'"):
        store.import_file(bad2)
    assert snapshot(store.path) == before


def test_parquet_with_mapping_and_batch_in_sequences(store, tmp_path):
    df = pd.DataFrame(
        {"params": [1e8, 2e8], "tokens": [1e9, 2e9], "smooth loss": [3.0, 2.8],
         "loss": [3.1, 2.9], "bs": [256, 512], "exp_name": ["x", "y"]}
    )
    f = tmp_path / "r.parquet"
    df.to_parquet(f)
    report = store.import_file(f, mapping={"N": "params", "D": "tokens", "batch_size": "bs"},
                               seq_len=2048)
    out = store.runs().sort_values("N")
    assert list(out.loss) == [3.0, 2.8]  # the smoothed loss wins over the raw one
    assert list(out.batch_tokens) == [256 * 2048, 512 * 2048]
    assert out.iloc[0].extra["raw_loss"] == 3.1
    assert out.iloc[0].extra["exp_name"] == "x"
    assert any("smooth loss" in n for n in report.notes)


def test_mapping_to_a_missing_column_is_an_error(store, tmp_path):
    with pytest.raises(InputError, match="not in the file"):
        store.import_file(write(tmp_path, "r.csv", GOOD), mapping={"loss": "final_loss"})


def test_units_convert_columns_given_in_other_units(store, tmp_path):
    store.import_file(write(tmp_path, "m.csv", "N,D,loss\n125,2e9,3\n"), units={"N": "1e6"})
    assert store.runs().iloc[0].N == 125e6


def test_scale_is_the_old_name_of_units_and_warns(store, tmp_path):
    with pytest.warns(DeprecationWarning, match="units="):
        store.import_file(write(tmp_path, "m.csv", "N,D,loss\n125,2e9,3\n"), scale={"N": "1e6"})
    assert store.runs().iloc[0].N == 125e6
    with pytest.raises(ParameterError, match="not both"):
        store.import_file(write(tmp_path, "n.csv", "N,D,loss\n7,2e9,3\n"), scale={"N": "1e6"}, units={"N": "1e6"})
    assert len(store.runs()) == 1  # the refused call imported nothing


def test_sweep_runs_failed_runs_are_kept_but_not_fitted(store):
    store.add_run({"run_id": "ok", "N": 1e6, "D": 1e8, "loss": 3.0, "tags": {"sweep": "s"}},
                  curve=pd.DataFrame({"step": [0, 1], "tokens": [0, 10], "loss": [5.0, 4.0]}))
    store.add_run({"run_id": "boom", "N": 1e6, "D": 1e8, "status": "failed",
                   "error": "loss became nan at step 3"})
    assert list(store.runs().run_id) == ["ok"]
    failed = store.runs(status="failed")
    assert failed.iloc[0].error == "loss became nan at step 3"
    assert store.has_run("ok") and not store.has_run("boom")
    assert store.counts() == {"finished": 1, "failed": 1}
    # re-running a failed run replaces it
    store.add_run({"run_id": "boom", "N": 1e6, "D": 1e8, "loss": 3.1})
    assert store.has_run("boom")
    assert len(store.runs(status=None)) == 2


def test_where_and_tag_filters(store, tmp_path):
    store.import_file(write(tmp_path, "r.csv", GOOD))
    assert len(store.runs(where="N > 1.5e8")) == 1
    assert len(store.runs(tags={"dataset": "c4"})) == 2
    with pytest.raises(ParameterError, match="invalid where expression") as err:
        store.runs(where="N >")
    assert err.value.parameters == ("where",)  # the CLI shows it as --where


def test_read_only_store_refuses_writes_and_missing_files(tmp_path):
    with pytest.raises(StoreError, match="no run store"):
        RunStore(tmp_path / "nope.duckdb", read_only=True)
    RunStore(tmp_path / "s.duckdb").add_run({"N": 1, "D": 1, "loss": 1})
    ro = RunStore(tmp_path / "s.duckdb", read_only=True)
    with pytest.raises(StoreError, match="read-only"):
        ro.add_run({"N": 1, "D": 1, "loss": 1})


def test_import_frame_lands_curves_under_each_runs_id_with_its_name(store):
    runs = pd.DataFrame({"name": ["small", "big"], "N": [1e6, 2e6], "D": [1e8, 1e8],
                         "loss": [3.5, 3.3]})
    curves = pd.DataFrame({"row": [0, 0, 1], "step": [10, 20, 10], "loss": [5.0, 4.0, 4.8],
                           "tokens": [1e6, 2e6, 1e6]})
    report = store.import_frame(runs, source="tracker", curves=curves)
    assert report.n_inserted == 2 and report.n_curve_points == 3
    out = store.runs().set_index("name")
    assert list(store.curve(out.loc["small", "run_id"]).loss) == [5.0, 4.0]
    assert list(store.curve(out.loc["big", "run_id"]).tokens) == [1e6]
    assert out.loc["small", "source"] == "tracker"


def test_an_import_puts_back_the_thread_count_it_lowers_while_writing(store, tmp_path):
    """The chunk inserts run on one DuckDB thread; the setting belongs to the database
    instance that this process's connections to the file share, so it is restored after an
    import, a conflicting one included."""
    from scalinglab.errors import ConflictError
    from scalinglab.runs.store import _connect_config

    store.import_file(write(tmp_path, "r.csv", GOOD))  # the store exists: connect beside it
    held = duckdb.connect(str(store.path), config=_connect_config())
    try:
        held.execute("SET threads = 3")
        store.import_file(write(tmp_path, "more.csv", "N,D,loss\n3e8,6e9,2.5\n"))
        assert held.execute("SELECT current_setting('threads')").fetchall()[0][0] == 3
        clash = "run_id,N,D,loss\nx,1e8,2e9,3.0\nx,2e8,2e9,3.0\n"
        with pytest.raises(ConflictError):
            store.import_file(write(tmp_path, "clash.csv", clash))
        assert held.execute("SELECT current_setting('threads')").fetchall()[0][0] == 3
    finally:
        held.close()


def test_add_run_is_all_or_nothing(store):
    """A replacement whose curve cannot be stored (a step that is not a number) fails after its
    run row was written in the transaction: the store keeps the run and curve it had."""
    store.add_run({"run_id": "a", "N": 1e6, "D": 1e8, "loss": 3.5},
                  pd.DataFrame({"step": [0, 10], "loss": [5.5, 4.0]}))
    before = snapshot(store.path)
    with pytest.raises(ValueError):
        store.add_run({"run_id": "a", "N": 2e6, "D": 1e8, "loss": 3.0},
                      pd.DataFrame({"step": [0, "ten"], "loss": [5.0, 3.0]}))
    assert snapshot(store.path) == before
    assert store.run("a")["N"] == 1e6 and list(store.curve("a").loss) == [5.5, 4.0]
