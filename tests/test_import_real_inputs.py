"""Files as users really have them, imported: each case a new user met, each failed before.

The rules: bad input is one line naming file, row and column and imports nothing; a value is
never silently read as another; data the file holds is not dropped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scalinglab.runs.store import RunStore


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data, encoding="utf-8")
    return p


@pytest.mark.parametrize(("name", "text"), [
    ("steps.csv", "name,N,D,loss,final_step\na,1e8,2e9,3.1,4611686018427387904\n"),
    ("steps.jsonl", '{"name": "a", "N": 1e8, "D": 2e9, "loss": 3.1, '
                    '"final_step": 4611686018427387904}\n'),
])
def test_an_integer_extra_beyond_two_to_the_53_is_imported_as_written(tmp_path, name, text):
    # a TensorBoard step of 2^62 (a global step counted in tokens) reaches the store as such an
    # extra; casting it to a float for the run id was an ArrowInvalid traceback
    store = RunStore(tmp_path / "s.duckdb")
    store.import_file(write(tmp_path, name, text))
    assert store.runs()["extra"].iloc[0] == {"final_step": 4611686018427387904}


def test_a_utf8_bom_starts_a_jsonl_file_or_a_json_file_of_values_as_it_starts_a_csv(tmp_path):
    # Windows tools (PowerShell's Out-File, Notepad) begin UTF-8 text with a BOM; a CSV so
    # written was read, a JSONL one was "line 1: invalid JSON"
    from scalinglab.runs.trackers.settings import RunSettings

    bom = "\ufeff"
    runs = write(tmp_path, "runs.jsonl", bom + '{"name": "a", "N": 1e8, "D": 2e9, "loss": 3.1}\r\n'
                 '{"name": "b", "N": 2e8, "D": 2e9, "loss": 3.0}\r\n')
    store = RunStore(tmp_path / "s.duckdb")
    store.import_file(runs)
    assert sorted(store.runs()["name"]) == ["a", "b"]
    sizes = write(tmp_path, "sizes.json", bom + '{"small": {"N": 1e6, "D": 1e8}}')
    assert RunSettings.build(file=sizes).for_run("small") == {"N": "1000000.0", "D": "100000000.0"}


CLASSIC_MAC = b'name,N,D,loss\ra,1e8,2e9,3.1\r"b\rc",2e8,2e9,3.0\rd,4e8,2e9,2.9\r'


def test_lines_ending_in_a_lone_cr_are_rows(tmp_path):
    # Excel for Mac's "CSV (Macintosh)" ends lines in CR alone; the file was read as a header
    # and one unfinished record: "no rows to import"
    store = RunStore(tmp_path / "s.duckdb")
    store.import_file(write(tmp_path, "mac.csv", CLASSIC_MAC))
    assert sorted(store.runs()["name"]) == ["a", "b\rc", "d"]


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_a_lone_cr_file_is_cut_at_record_ends_whatever_the_block_size(tmp_path, block):
    from scalinglab.runs.io import TableReader

    reader = TableReader(write(tmp_path, "mac.csv", CLASSIC_MAC), csv_block_bytes=block)
    rows = [r for c in reader.chunks() for r in c.frame.astype(object).values.tolist()]
    assert rows == [["a", "1e8", "2e9", "3.1"], ["b\rc", "2e8", "2e9", "3.0"],
                    ["d", "4e8", "2e9", "2.9"]]
    assert reader.label(2) == "row 3 (line 5)"  # the quoted CR is a line of the file


def test_a_bad_cell_in_a_lone_cr_file_is_named_by_row_and_line(tmp_path):
    from scalinglab.errors import InputError

    f = write(tmp_path, "mac.csv", CLASSIC_MAC.replace(b"2.9", b"x"))
    with pytest.raises(InputError, match=r"mac\.csv: row 3 \(line 5\), column 'loss': 'x' is not"):
        RunStore(tmp_path / "s.duckdb").import_file(f)
    assert not (tmp_path / "s.duckdb").exists()


def test_a_decimal_comma_is_a_one_line_error_naming_row_and_column_not_a_value(tmp_path):
    f = write(tmp_path, "eu.csv", 'name,N,D,loss\na,1e8,2e9,"3,1"\nb,"2,000,000",2e9,3.0\n')
    from scalinglab.errors import InputError

    with pytest.raises(InputError, match=r"eu\.csv: row 1 \(line 2\), column 'loss': '3,1' is "
                                         r"not a number") as err:
        RunStore(tmp_path / "s.duckdb").import_file(f)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "s.duckdb").exists()


@pytest.mark.parametrize(("name", "text", "said"), [
    ("eu.csv", "name;N;D;loss\na;1e8;2e9;3,1\n", "separated by ';', but a .csv file is read as "
                                                 "separated by ','; save it as a CSV with ','"),
    ("tabs.csv", "name\tN\tD\tloss\na\t1e8\t2e9\t3.1\n", "separated by tab, but a .csv file"),
    ("commas.tsv", "name,N,D,loss\na,1e8,2e9,3.1\n", "separated by ',', but a .tsv file"),
])
def test_a_file_with_another_separator_says_so_not_that_a_column_is_missing(tmp_path, name,
                                                                            text, said):
    # it was "missing required column 'N'; columns are ['name;N;D;loss']; map a column to it
    # with --map N=YOUR_COLUMN": advice that cannot work
    from scalinglab.errors import InputError

    with pytest.raises(InputError, match="line 1: the header is one column") as err:
        RunStore(tmp_path / "s.duckdb").import_file(write(tmp_path, name, text))
    assert said in str(err.value) and "\n" not in str(err.value)
    assert "--map" not in str(err.value)
    assert not (tmp_path / "s.duckdb").exists()
