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


def _two_runs_named_alike(tmp_path: Path) -> Path:
    """A W&B history: runs r1 and r3 both named 'small' (W&B names are not unique)."""
    rows = ["run_id,name,state,_step,train/loss"]
    for rid, name in [("r1", "small"), ("r2", "big"), ("r3", "small")]:
        rows += [f"{rid},{name},finished,{s},{3.0 - s / 100}" for s in (0, 10, 20)]
    return write(tmp_path, "history.csv", "\n".join(rows) + "\n")


def test_a_mapping_files_row_for_a_runs_id_wins_over_its_row_for_a_shared_name(tmp_path):
    # the row for the name 'small' won for both runs: r3 was imported with r1's N, silently
    from scalinglab.runs.trackers import read_tracker
    from scalinglab.runs.trackers.settings import RunSettings

    sizes = write(tmp_path, "sizes.csv", "run,N,D\nsmall,1e6,1e8\nbig,4e6,1e8\nr3,2e6,1e8\n")
    out = read_tracker("wandb", _two_runs_named_alike(tmp_path),
                       settings=RunSettings.build(file=sizes))
    n = dict(zip(out.runs["run_id"], out.runs["N"], strict=True))
    assert n == {"wandb-r1": 1e6, "wandb-r2": 4e6, "wandb-r3": 2e6}
    assert not any("names 2 runs" in note for note in out.notes)


def test_a_mapping_files_row_for_a_shared_name_gives_each_run_its_values_and_says_so(tmp_path):
    from scalinglab.runs.trackers import read_tracker
    from scalinglab.runs.trackers.settings import RunSettings

    sizes = write(tmp_path, "sizes.csv", "run,N,D\nsmall,1e6,1e8\nbig,4e6,1e8\n")
    out = read_tracker("wandb", _two_runs_named_alike(tmp_path),
                       settings=RunSettings.build(file=sizes))
    assert out.runs.set_index("run_id")["N"].to_dict() == {
        "wandb-r1": 1e6, "wandb-r2": 4e6, "wandb-r3": 1e6}
    assert (f"warning: 'small' in {sizes} names 2 runs ('wandb-r1', 'wandb-r3'); its values were "
            "given to each (key a row by a run's id to tell them apart)") in out.notes


def _tb_run(root: Path) -> Path:
    """One TensorBoard run, 'train/loss' at steps 0, 10, ..., 90, written by SummaryWriter."""
    pytest.importorskip("tensorboard")
    writer_mod = pytest.importorskip("torch.utils.tensorboard")
    w = writer_mod.SummaryWriter(root / "run1")
    for s in range(0, 100, 10):
        w.add_scalar("train/loss", 3 - s / 100, s)
    w.close()
    (event,) = (root / "run1").iterdir()
    return event


def _records(event: Path) -> list[int]:
    """Where each record of an event file starts (8-byte length, 4-byte checksum, data, 4)."""
    data, at, out = event.read_bytes(), 0, []
    while at < len(data):
        out.append(at)
        at += 16 + int.from_bytes(data[at:at + 8], "little")
    return out


def _flip(event: Path, at: int) -> None:
    data = bytearray(event.read_bytes())
    data[at] ^= 0x01
    event.write_bytes(bytes(data))


def _read_tb(root: Path):
    from scalinglab.runs.trackers import read_tracker
    from scalinglab.runs.trackers.settings import RunSettings

    out = read_tracker("tensorboard", root, loss_tag="train/loss",
                       settings=RunSettings.build({"N": 1e6, "D": 1e8}))
    return out, out.runs.iloc[0]


def test_an_event_file_cut_inside_its_last_record_is_read_to_there_and_says_so(tmp_path):
    # a run still being written, or killed mid-write: what is there counts, and is said
    event = _tb_run(tmp_path)
    event.write_bytes(event.read_bytes()[:-7])
    out, run = _read_tb(tmp_path)
    assert run["status"] == "finished" and run["final_step"] == 80
    assert any(n.startswith(f"warning: run1/{event.name} ends inside a record") and
               n.endswith("'train/loss' to step 80") for n in out.notes)


@pytest.mark.parametrize("where", ["data", "length"])
def test_an_event_file_damaged_half_way_is_a_failed_run_naming_it_not_a_shorter_finished_one(
        tmp_path, where):
    # TensorBoard's reader stops at a record that fails its checksum, silently: the run was
    # imported as finished with the loss of step 30 for its final loss
    event = _tb_run(tmp_path)
    record = _records(event)[5]
    _flip(event, record + 14 if where == "data" else record)
    out, run = _read_tb(tmp_path)
    assert run["status"] == "failed"
    assert run["error"] == (f"a damaged record in {event.name} (it fails its checksum): the "
                            "events after it in that file could not be read")
    assert not any("ends inside a record" in n for n in out.notes)


def test_a_whole_event_file_is_read_without_a_warning(tmp_path):
    _tb_run(tmp_path)
    out, run = _read_tb(tmp_path)
    assert run["status"] == "finished" and run["final_step"] == 90
    assert not any(n.startswith("warning") for n in out.notes)


def test_a_history_row_without_its_step_says_the_step_is_missing(tmp_path):
    # it said "'' is not a whole step number"
    from scalinglab.errors import InputError
    from scalinglab.runs.trackers import read_tracker

    f = write(tmp_path, "history.csv", "run_id,_step,train/loss\nr1,0,3.0\nr1,,2.9\n")
    with pytest.raises(InputError, match=r"history\.csv: row 2 \(line 3\), column '_step': the "
                                         r"step is missing \(every history row has one\)$"):
        read_tracker("wandb", f)


def test_a_row_imported_as_failed_keeps_its_tags_and_the_callers(tmp_path):
    # they were blanked: `runs --tag dataset=c4 --status failed` did not find the run
    f = write(tmp_path, "w.csv", 'Name,N,D,loss,State,Tags\na,1e8,2e9,abc,finished,"c4, small"\n'
                                 'b,1e8,2e9,3.0,crashed,c4\n')
    store = RunStore(tmp_path / "s.duckdb")
    store.import_file(f, invalid="failed", tags={"team": "x"})
    runs = store.runs(status="failed").set_index("name")
    assert runs.loc["a", "tags"] == {"c4": "true", "small": "true", "team": "x"}
    assert runs.loc["b", "tags"] == {"c4": "true", "team": "x"}  # a crashed run, as before
    assert list(store.runs(status="failed", tags={"small": "true"})["name"]) == ["a"]
    # its id is made without its tags, as before, so a file imported so re-imports as a no-op
    bare = RunStore(tmp_path / "bare.duckdb")
    bare.import_file(write(tmp_path, "bare.csv", "Name,N,D,loss\na,1e8,2e9,abc\n"),
                     invalid="failed")
    assert runs.loc["a", "run_id"] == bare.runs(status="failed")["run_id"].iloc[0]


def test_a_row_whose_tags_are_bad_keeps_the_callers_tags_as_a_failed_run(tmp_path):
    f = write(tmp_path, "t.csv", 'name,N,D,loss,tags\na,1e8,2e9,3,"{""bad key"": 1}"\n')
    store = RunStore(tmp_path / "s.duckdb")
    store.import_file(f, invalid="failed", tags={"team": "x"})
    run = store.runs(status="failed").iloc[0]
    assert run["tags"] == {"team": "x"} and "tag key 'bad key' is not valid" in run["error"]


def test_a_parquet_decimal_column_is_numbers(tmp_path):
    # Spark and SQL exports write counts as DECIMAL(38,0); N was "Decimal('100000000') is not a
    # number", and a decimal extra would have been text
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    dec = [decimal.Decimal("100000000"), decimal.Decimal("200000000")]
    pq.write_table(pa.table({
        "name": ["a", "b"], "N": pa.array(dec, pa.decimal128(38, 0)), "D": [2e9, 2e9],
        "loss": pa.array([decimal.Decimal("3.10"), decimal.Decimal("2.90")], pa.decimal128(5, 2)),
        "seed": pa.array([decimal.Decimal(7), None], pa.decimal128(10, 0)),
        "wd": pa.array([decimal.Decimal("0.1"), decimal.Decimal("0.05")], pa.decimal128(5, 2)),
    }), tmp_path / "spark.parquet")
    store = RunStore(tmp_path / "s.duckdb")
    store.import_file(tmp_path / "spark.parquet", mapping={"weight_decay": "wd"})
    runs = store.runs().set_index("name")
    assert runs["N"].to_dict() == {"a": 1e8, "b": 2e8}
    assert runs["loss"].to_dict() == {"a": 3.1, "b": 2.9}
    assert runs["weight_decay"].to_dict() == {"a": 0.1, "b": 0.05}
    assert runs.loc["a", "extra"] == {"seed": 7} and runs.loc["b", "extra"] == {}
    assert list(store.runs(where="seed = 7")["name"]) == ["a"]


def test_a_coloured_training_log_is_read_as_its_plain_text(tmp_path):
    # a log captured from a terminal keeps loguru's or rich's colours; the run was failed with
    # "no 'loss' logged", its traceback unseen
    from scalinglab.runs.trackers import read_tracker
    from scalinglab.runs.trackers.settings import RunSettings

    green, red, off = "\x1b[32m", "\x1b[1;31m", "\x1b[0m"
    lines = ["max_iters = 100"] + [f"{green}iter {i}: loss {3 - i / 100:.4f}, time 12.34ms, "
                                   f"mfu 1.23%{off}" for i in range(0, 51, 10)]
    lines += [f"{red}Traceback (most recent call last):{off}", '  File "train.py", line 3',
              f"{red}torch.OutOfMemoryError: CUDA out of memory{off}"]
    f = write(tmp_path, "run.log", "\n".join(lines) + "\n")
    out = read_tracker("log", f, settings=RunSettings.build({"N": 1e6, "D": 1e8}))
    run = out.runs.iloc[0]
    assert run["final_step"] == 50
    assert run["status"] == "failed"
    assert run["error"] == ("the log ends in a Python traceback (line 8): "
                            "torch.OutOfMemoryError: CUDA out of memory")
    assert list(out.curves["loss"]) == [3.0, 2.9, 2.8, 2.7, 2.6, 2.5]


def _nanogpt_log(iters: int = 50) -> str:
    return "\n".join(["max_iters = 100"] + [f"iter {i}: loss {3 - i / 100:.4f}, time 12.34ms, "
                                            f"mfu 1.23%" for i in range(0, iters + 1, 10)]) + "\n"


def test_a_gzipped_log_in_a_folder_is_read_as_the_log_it_holds_and_is_the_same_run(tmp_path):
    # logs gzipped to keep them were skipped without a word (a folder) or read as garbage
    import gzip

    from scalinglab.runs.trackers import read_tracker
    from scalinglab.runs.trackers.settings import RunSettings

    sizes = RunSettings.build({"N": 1e6, "D": 1e8})
    (tmp_path / "plain").mkdir()
    (tmp_path / "packed").mkdir()
    write(tmp_path / "plain", "run.log", _nanogpt_log())
    with gzip.open(tmp_path / "packed" / "run.log.gz", "wt") as fh:
        fh.write(_nanogpt_log())
    write(tmp_path / "packed", "other.tar.gz", b"not a log")
    plain = read_tracker("log", tmp_path / "plain", settings=sizes).runs
    packed = read_tracker("log", tmp_path / "packed", settings=sizes).runs
    assert list(packed["name"]) == ["run"] and packed["final_step"].iloc[0] == 50
    assert packed["run_id"].iloc[0] == plain["run_id"].iloc[0]  # one run, compressed or not
    assert packed["log_file"].iloc[0] == "run.log.gz"


def test_a_gz_log_that_is_not_gzip_is_one_line_naming_it(tmp_path):
    from scalinglab.errors import InputError
    from scalinglab.runs.trackers import read_tracker

    f = write(tmp_path, "run.log.gz", b"iter 0: loss 3.0")
    with pytest.raises(InputError, match=r"run\.log\.gz: cannot read: Not a gzipped file"):
        read_tracker("log", f)


def test_a_runs_final_step_stays_an_integer_when_another_run_has_none(tmp_path):
    # a run with no loss line has no final_step; pandas made the column float, and the others'
    # step 50 was stored and shown as 50.0
    from scalinglab.runs.trackers import read_tracker
    from scalinglab.runs.trackers.settings import RunSettings

    write(tmp_path, "ok.log", _nanogpt_log())
    write(tmp_path, "dead.log", "max_iters = 100\nstarting\n")
    out = read_tracker("log", tmp_path, settings=RunSettings.build({"N": 1e6, "D": 1e8}))
    store = RunStore(tmp_path / "s.duckdb")
    store.import_frame(out.runs, source=str(tmp_path), curves=out.curves)
    extra = store.runs(status=None).set_index("name")["extra"]
    assert "final_step" not in extra["dead"]
    step = extra["ok"]["final_step"]
    assert step == 50 and isinstance(step, int)


def test_runs_columns_naming_an_extra_is_an_empty_table_when_no_run_matches(tmp_path):
    # a filter that matched nothing made `--columns name,seed` "no column 'seed'" (exit 2), so a
    # script reading the CSV broke on an empty result; an unknown name is still an error
    from typer.testing import CliRunner

    from scalinglab.cli import app

    store = tmp_path / "s.duckdb"
    RunStore(store).import_file(write(tmp_path, "r.csv", "name,N,D,loss,seed\na,1e8,2e9,3.1,7\n"))
    runner = CliRunner()
    empty = runner.invoke(app, ["runs", "--store", str(store), "--where", "N > 1e12",
                                "--columns", "name,seed", "--format", "csv"])
    assert empty.exit_code == 0 and empty.stdout == "name,seed\n"
    found = runner.invoke(app, ["runs", "--store", str(store), "--columns", "name,seed",
                                "--format", "csv"])
    assert found.stdout == "name,seed\na,7\n"
    typo = runner.invoke(app, ["runs", "--store", str(store), "--where", "N > 1e12",
                               "--columns", "name,sed"])
    assert typo.exit_code == 2 and "no column 'sed' (did you mean 'seed'?)" in typo.output


def test_a_filter_reaches_columns_that_differ_only_in_case_as_they_are_spelt(tmp_path):
    # SQL names are case-blind: 'LR > 0.15' filtered on the run column lr and 'x > 1' on the
    # extra X, each an empty answer without a word
    store = RunStore(tmp_path / "s.duckdb")
    store.import_file(write(tmp_path, "r.csv", "name,N,D,loss,lr,LR,X,x\n"
                                               "a,1e8,2e9,3.1,0.1,0.2,1,2\n"
                                               "b,2e8,2e9,3.0,0.3,0.05,5,0\n"))

    def names(where: str) -> list[str]:
        return sorted(store.runs(where=where)["name"])

    assert names("LR > 0.15") == ["a"] and names("lr > 0.15") == ["b"]
    assert names("x > 1") == ["a"] and names("X > 1") == ["b"] and names('"x" > 1') == ["a"]
    assert names("n > 1.5e8") == ["b"]  # one column spelt so: any case, as before
    from scalinglab.errors import ParameterError

    with pytest.raises(ParameterError, match=r"'Lr' could be any of \['LR', 'lr'\]"):
        store.runs(where="Lr > 0")


def test_a_filter_on_a_frame_reaches_columns_that_differ_only_in_case(tmp_path):
    import pandas as pd

    from scalinglab.runs.where import filter_frame

    frame = pd.DataFrame({"X": [1, 5], "x": [5, 1], "N": [1, 2]})
    assert list(filter_frame(frame, "x > 2").index) == [0]
    assert list(filter_frame(frame, "X > 2").index) == [1]


def test_an_import_refused_at_its_last_row_leaves_a_store_byte_identical_whatever_its_size(
        tmp_path, monkeypatch):
    # DuckDB wrote a large append's row groups into the file before the commit and a rollback
    # left them there: refused at its last row, a 1.5M-row import grew the store from 1 MB to
    # 94 MB (its runs unchanged). DuckDB writes once 5 row groups are buffered; asked to write
    # after one, 700k rows show it (1.7 s)
    import scalinglab.runs.store as store_mod
    from scalinglab.errors import InputError

    monkeypatch.setitem(store_mod._CONNECT_CONFIG, "write_buffer_row_group_count", 1)

    store = RunStore(tmp_path / "s.duckdb")
    store.import_file(write(tmp_path, "first.csv", "N,D,loss\n1e8,2e9,3.1\n"))
    before = store.path.read_bytes()
    rows = "".join(f"{1e6 + i},2e9,3.0\n" for i in range(700_000))
    big = write(tmp_path, "big.csv", "N,D,loss\n" + rows + "1e8,2e9,abc\n")
    with pytest.raises(InputError, match=r"row 700001 .*'abc' is not a number"):
        store.import_file(big)
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("caught", [RuntimeError("Query interrupted"), None])
def test_ctrl_c_inside_a_duckdb_query_is_a_ctrl_c_and_leaves_the_store_as_it_was(
        tmp_path, monkeypatch, caught):
    # DuckDB catches SIGINT in a query and raises its own error: the CLI printed a traceback
    # ("RuntimeError: Query interrupted", exit 1) or "the import was not written: ... Invalid
    # Input Error: ... KeyboardInterrupt" (exit 2) instead of stopping as on Ctrl-C (exit 130)
    import duckdb

    import scalinglab.runs.ingest as ingest

    store = RunStore(tmp_path / "s.duckdb")
    store.import_file(write(tmp_path, "first.csv", "N,D,loss\n1e8,2e9,3.1\n"))
    before = store.path.read_bytes()
    error = caught or duckdb.InvalidInputException(
        "reading the schema of the object registered as '_chunk' failed: KeyboardInterrupt:")

    def interrupted(self, prepared):
        raise error

    monkeypatch.setattr(ingest.Ingest, "add", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.import_file(write(tmp_path, "more.csv", "N,D,loss\n2e8,2e9,3.0\n"))
    assert store.path.read_bytes() == before


def test_a_w_and_b_history_imported_as_a_run_table_points_to_from_wandb(tmp_path):
    # each of a run's rows is one step, so they conflict; --on-conflict keep, the one advice
    # given, would have kept the first step's loss as the run's
    from typer.testing import CliRunner

    from scalinglab.cli import app

    f = write(tmp_path, "history.csv", "run_id,_step,train/loss,params,tokens\n"
                                       "r1,10,5.0,1e6,1e8\nr1,20,3.5,1e6,1e8\n")
    out = CliRunner().invoke(app, ["import", str(f), "--store", str(tmp_path / "s.duckdb")])
    assert out.exit_code == 2
    assert out.output.rstrip().endswith("its rows look like a W&B history export, a row per "
                                        "logged step: import it with --from wandb")
    assert not (tmp_path / "s.duckdb").exists()
