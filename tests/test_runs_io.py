"""Reading run files in chunks: rows and lines counted as a person counts them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import InputError
from scalinglab.runs.io import TableReader, csv_lines, read_table
from scalinglab.runs.store import RunStore


def chunks(path: Path, block: int) -> tuple[pd.DataFrame, list]:
    reader = TableReader(path, csv_block_bytes=block)
    parts = list(reader.chunks())
    frame = pd.concat([c.frame for c in parts], ignore_index=True)
    return frame.astype(object), parts


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_csv_blocks_cut_at_record_ends_whatever_the_block_size(tmp_path, block):
    text = ('\ufeffname,N,note\r\n"a, one",1,"two\nlines ""quoted"""\r\n\r\nb,2,x\n'
            + "".join(f"r{i},{i},\n" for i in range(50)) + "last,9,end")
    f = tmp_path / "r.csv"
    f.write_text(text, encoding="utf-8")
    frame, parts = chunks(f, block)
    assert list(frame.columns) == ["name", "N", "note"]
    assert frame.iloc[0].tolist() == ["a, one", "1", 'two\nlines "quoted"']
    assert frame.iloc[1].tolist() == ["b", "2", "x"]
    assert frame.iloc[-1].tolist() == ["last", "9", "end"]
    assert len(frame) == 53
    starts = [p.start for p in parts]
    assert starts == sorted(starts) and starts[0] == 0


def test_labels_count_quoted_newlines_and_blank_lines(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text('N,D,loss\n1,2,"a\nb"\n\n3,4,5\n5,6,oops\n')
    assert csv_lines(f, ",", [0, 1, 2]) == {0: 2, 1: 5, 2: 6}
    with pytest.raises(InputError, match=r"row 3 \(line 6\), column 'loss': 'oops'"):
        RunStore(tmp_path / "s.duckdb").import_file(f)


def test_a_line_with_the_wrong_number_of_cells_is_named_or_skipped(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("N,D,loss\n1e8,2e9,3.1\n1e8,2e9\n2e8,4e9,bad\n")
    with pytest.raises(InputError, match=r"row 2 \(line 3\): expected 3 cells, got 2"):
        RunStore(tmp_path / "s.duckdb").import_file(f)
    # skipping it keeps the later rows' numbers right
    report = RunStore(tmp_path / "s.duckdb").import_file(f, invalid="skip")
    assert report.n_inserted == 1 and report.n_skipped_invalid == 2
    assert any("row 2 (line 3): expected 3 cells" in n for n in report.notes)
    assert any("row 3 (line 4), column 'loss'" in n for n in report.notes)


def test_not_utf8_and_empty_files_are_one_clear_error(tmp_path):
    f = tmp_path / "latin.csv"
    f.write_bytes(b"N,D,loss\n1e8,2e9,3\n1e8,2e9,\xe9\n")
    with pytest.raises(InputError, match="not UTF-8 text"):
        RunStore(tmp_path / "s.duckdb").import_file(f)
    e = tmp_path / "empty.csv"
    e.write_text("")
    with pytest.raises(InputError, match="no header row"):
        RunStore(tmp_path / "s.duckdb").import_file(e)
    h = tmp_path / "header.csv"
    h.write_text("N,D,loss\n")
    with pytest.raises(InputError, match="no rows to import"):
        RunStore(tmp_path / "s.duckdb").import_file(h)
    d = tmp_path / "dup.csv"
    d.write_text("N,N,loss\n1,2,3\n")
    with pytest.raises(InputError, match="column 'N' appears twice"):
        RunStore(tmp_path / "s.duckdb").import_file(d)


def test_parquet_and_jsonl_stream_in_chunks_with_rows_counted_across_them(tmp_path):
    df = pd.DataFrame({"N": np.arange(1, 11) * 1e6, "D": 1e9, "loss": 3.0})
    df.loc[7, "loss"] = -1.0
    pq = tmp_path / "r.parquet"
    df.to_parquet(pq, row_group_size=3)
    reader = TableReader(pq, chunk_rows=3)
    assert [c.start for c in reader.chunks()] == [0, 3, 6, 9]
    with pytest.raises(InputError, match=r"row 8, column 'loss': -1.0 must be > 0"):
        RunStore(tmp_path / "s.duckdb").import_file(pq)
    jl = tmp_path / "r.jsonl"
    jl.write_text("\n".join(df.to_json(orient="records", lines=True).splitlines()[:7]) +
                  '\n\n{"N": 1e6, "D": 1e9, "loss": "x"}\n')
    with pytest.raises(InputError, match=r"row 8 \(line 9\), column 'loss': 'x'"):
        RunStore(tmp_path / "s.duckdb").import_file(jl)


def test_read_table_reads_a_whole_small_file_with_lazy_labels(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("N,D,loss\n1,2,3\n\n4,5,6\n")
    frame = read_table(f)
    assert len(frame) == 2 and frame.attrs["row_labels"][1] == "row 2 (line 4)"


def test_a_row_shorter_than_the_limit_the_error_names_is_read(tmp_path):
    """The limit is the one the message names (8 MB): a 7 MB cell was refused as "a row longer
    than 8 MB" when Arrow's own 1 MB blocks decided it."""
    f = tmp_path / "long.csv"
    f.write_text("N,D,loss,note\n1e8,2e9,3.1," + "a" * 7_000_000 + "\n2e8,4e9,3.0,b\n")
    report = RunStore(tmp_path / "s.duckdb").import_file(f)
    assert report.n_inserted == 2
    notes = sorted(len(r["note"]) for r in RunStore(tmp_path / "s.duckdb").runs()["extra"])
    assert notes == [1, 7_000_000]
