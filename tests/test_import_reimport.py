"""Importing a file again into a store that holds its runs (issue: re-import memory).

The stored runs are checked against the incoming rows by a join on a hash of the compared
values, then column by column only where the hashes differ; these tests pin the behaviour that
must not move with it: a no-op re-import leaves the store byte-identical, one changed row among
thousands is the same conflict (error, keep, replace) as before, and extras written in another
key order are the same run, not a conflict.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scalinglab.errors import ConflictError
from scalinglab.runs.store import RunStore

ROWS = 3000


def csv_text(loss_of_row_7: str = "3.007", extra_first: bool = False) -> str:
    head = "seed,run_id,N,D,loss,lr" if extra_first else "run_id,N,D,loss,lr,seed"
    lines = [head]
    for i in range(ROWS):
        loss = loss_of_row_7 if i == 7 else f"{3 + i / 1000:.3f}"
        cells = [f"r{i}", f"{1e6 * (i + 1):g}", f"{2e7 * (i + 1):g}", loss, "0.001"]
        lines.append(",".join([str(i % 5), *cells] if extra_first else [*cells, str(i % 5)]))
    return "\n".join(lines) + "\n"


@pytest.fixture
def stored(tmp_path: Path) -> tuple[RunStore, Path]:
    path = tmp_path / "runs.csv"
    path.write_text(csv_text())
    store = RunStore(tmp_path / "runs.duckdb")
    assert store.import_file(path).n_inserted == ROWS
    return store, path


def test_a_reimport_skips_every_row_and_leaves_the_store_byte_identical(stored):
    store, path = stored
    before = store.path.read_bytes()
    report = store.import_file(path)
    assert (report.n_read, report.n_inserted, report.n_skipped_duplicates) == (ROWS, 0, ROWS)
    assert (report.n_kept, report.n_replaced) == (0, 0)
    assert store.path.read_bytes() == before


def test_extras_in_another_column_order_are_the_same_runs(stored, tmp_path):
    store, _ = stored
    other = tmp_path / "reordered.csv"
    other.write_text(csv_text(extra_first=True))
    report = store.import_file(other)
    assert (report.n_inserted, report.n_skipped_duplicates) == (0, ROWS)


def test_one_changed_row_among_thousands_is_a_conflict_naming_row_and_values(stored, tmp_path):
    store, _ = stored
    changed = tmp_path / "changed.csv"
    changed.write_text(csv_text(loss_of_row_7="9.5"))
    before = store.path.read_bytes()
    with pytest.raises(ConflictError, match=r"run 'r7' is already in the store .*"
                                            r"loss 9\.5 vs 3\.007") as err:
        store.import_file(changed)
    assert "line 9" in str(err.value) or "row 8" in str(err.value)
    assert store.path.read_bytes() == before

    kept = store.import_file(changed, on_conflict="keep")
    assert (kept.n_inserted, kept.n_kept, kept.n_skipped_duplicates) == (0, 1, ROWS - 1)
    assert store.run("r7")["loss"] == 3.007

    replaced = store.import_file(changed, on_conflict="replace")
    assert (replaced.n_inserted, replaced.n_replaced) == (1, 1)
    assert replaced.n_skipped_duplicates == ROWS - 1
    assert store.run("r7")["loss"] == 9.5 and len(store.runs(status=None)) == ROWS
