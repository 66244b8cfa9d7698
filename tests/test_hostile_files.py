"""Hostile paths, round three (issue 25): outputs never clobber inputs, the store is never
overwritten, written through a link or deleted, inputs that are not regular files are refused
before reading, nothing leaks into shared folders.

Every refusal is exit code 2 with one line on stderr and no traceback, within a time limit
(a FIFO read would block forever: an alarm turns a hang into a failure), and leaves every file
in the folder byte for byte as it was.
"""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
import signal
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from scalinglab import safefile
from scalinglab.cli import app
from scalinglab.errors import InputError, StoreError
from scalinglab.runs.store import RunStore

runner = CliRunner()

FIT_CSV = "N,D,loss\n" + "".join(
    f"{n:g},{d:g},{1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28:.6f}\n"
    for n in (1e7, 3e7, 1e8, 3e8) for d in (2e8, 1e9, 5e9))


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: SIGALRM interrupts a blocking open()/read()."""
    def expire(signum, frame):  # noqa: ANN001
        raise TimeoutError(f"did not finish within {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def digest(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: a regular file by content, anything else by kind."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = "link -> " + os.readlink(p)
        elif stat.S_ISFIFO(p.lstat().st_mode):
            out[rel] = "fifo"
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def refused(args: list[str], folder: Path, says: str, seconds: int = 60) -> str:
    """Run the CLI; exit 2, one line naming the problem, no traceback, nothing changed."""
    before = digest(folder)
    with deadline(seconds):
        result = runner.invoke(app, args)
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and says in lines[0], (says, lines[0])
    assert digest(folder) == before, "a refused command changed a file"
    return lines[0]


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "1000")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "runs.duckdb"
    csv = tmp_path / "runs.csv"
    csv.write_text(FIT_CSV)
    RunStore(path).import_file(csv)
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


# -- outputs never clobber inputs ----------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["report", "--out", "{store}"],
    ["fit", "chinchilla", "--bootstrap", "0", "--save", "{store}"],
    ["fit", "chinchilla", "{csv}", "--bootstrap", "0", "--save", "{csv}"],
    ["fit", "chinchilla", "{csv}", "--bootstrap", "0", "--save", "{other_store}"],
    ["fit", "isoflop", "--bootstrap", "0", "--save", "{store}"],
    ["sweep", "plan", "isoflop", "--budgets", "1e12", "--out", "{store}"],
], ids=["report-out-store", "fit-save-store", "fit-save-own-input", "fit-save-another-store",
        "isoflop-save-store", "sweep-plan-out-store"])
def test_an_output_onto_the_store_or_an_input_is_refused(tmp_path, store, command):
    other = tmp_path / "sub" / "other.duckdb"
    other.parent.mkdir()
    other.write_bytes(store.read_bytes())  # a DuckDB file known only by its magic bytes
    args = [a.format(store=store, csv=tmp_path / "runs.csv", other_store=other)
            for a in command]
    if "--store" not in args and command[0] != "sweep":
        args += ["--store", str(store)]
    line = refused(args, tmp_path, "refusing to overwrite it")
    assert "run store" in line or "inputs" in line


def test_a_result_written_over_an_old_one_is_replaced_whole(tmp_path, store):
    out = tmp_path / "fit.json"
    out.write_text("old")
    res = runner.invoke(app, ["fit", "chinchilla", "--store", str(store), "--bootstrap", "0",
                              "--save", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["kind"] == "loss_fit"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(("where", "says"), [
    ("missing/fit.json", "does not exist"),
    (".", "is a folder"),
])
def test_save_into_a_missing_folder_or_onto_a_folder_is_one_line(tmp_path, store, where, says):
    refused(["fit", "chinchilla", "--store", str(store), "--bootstrap", "0", "--save",
             str(tmp_path / where)], tmp_path, says)


def test_a_full_disk_is_one_line_and_leaves_the_old_file(tmp_path, store, monkeypatch):
    out = tmp_path / "fit.json"
    out.write_text("the previous result")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safefile.os, "fsync", full)
    refused(["fit", "chinchilla", "--store", str(store), "--bootstrap", "0", "--save", str(out)],
            tmp_path, "no space left on the device")
    assert out.read_text() == "the previous result"


def test_report_figures_onto_a_file_is_one_line(tmp_path, store):
    (tmp_path / "figs").write_text("a file")
    refused(["report", "--store", str(store), "--out", str(tmp_path / "r.html"), "--figures",
             str(tmp_path / "figs")], tmp_path, "is a file, not a folder")


def test_an_output_that_is_a_symlink_is_not_written_through(tmp_path, store):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "fit.json").symlink_to(victim)
    refused(["fit", "chinchilla", "--store", str(store), "--bootstrap", "0", "--save",
             str(tmp_path / "fit.json")], tmp_path, "symbolic link")


def test_write_output_refuses_each_kind_of_path(tmp_path):
    (tmp_path / "dir").mkdir()
    fifo(tmp_path / "pipe")
    (tmp_path / "in.csv").write_text("x")
    with deadline(10):
        for path, says in ((tmp_path / "dir", "is a folder"), (tmp_path / "pipe", "named pipe"),
                           (tmp_path / "in.csv", "inputs"), (tmp_path / "no" / "x", "does not")):
            with pytest.raises(safefile.OutputError, match=says):
                safefile.write_output(path, "data", inputs=[tmp_path / "in.csv"])


# -- the store ----------------------------------------------------------------------------------


def test_a_store_whose_wal_is_a_symlink_is_refused_and_the_target_untouched(tmp_path, store):
    victim = tmp_path / "victim.txt"
    victim.write_text("not a journal")
    Path(f"{store}.wal").symlink_to(victim)
    (tmp_path / "more.csv").write_text("run_id,N,D,loss\nz,1e9,2e10,2.5\n")
    refused(["import", str(tmp_path / "more.csv"), "--store", str(store)], tmp_path,
            "journal is a symbolic link")
    refused(["runs", "--store", str(store)], tmp_path, "journal is a symbolic link")
    assert victim.read_text() == "not a journal"


def _import_one(args: tuple[str, str]) -> str:
    csv, path = args
    try:
        RunStore(path, lock_timeout_s=120).import_file(csv)
        return "ok"
    except StoreError as exc:
        return f"error: {exc}"


def test_eight_parallel_imports_into_a_new_store_keep_every_run(tmp_path):
    csvs = []
    for i in range(8):
        p = tmp_path / f"f{i}.csv"
        p.write_text(f"run_id,N,D,loss\nr{i},1e8,2e9,3.{i}\n")
        csvs.append((str(p), str(tmp_path / "x.duckdb")))
    with multiprocessing.get_context("fork").Pool(8) as pool:
        outcomes = pool.map(_import_one, csvs, chunksize=1)
    # each import ends in the store, or (never here, but allowed) with a one-line error
    assert all(o == "ok" or "\n" not in o for o in outcomes), outcomes
    ok = outcomes.count("ok")
    assert ok >= 1
    assert len(RunStore(tmp_path / "x.duckdb", read_only=True).runs()) == ok


def test_a_failed_first_import_removes_only_the_file_it_made(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("N,D,loss\n1e8,2e9,abc\n")
    path = tmp_path / "new.duckdb"
    with pytest.raises(InputError):
        RunStore(path).import_file(bad)
    assert not path.exists() and not Path(f"{path}.wal").exists()


def test_a_store_that_is_a_fifo_is_refused_without_hanging(tmp_path):
    fifo(tmp_path / "s.duckdb")
    (tmp_path / "a.csv").write_text(FIT_CSV)
    refused(["import", str(tmp_path / "a.csv"), "--store", str(tmp_path / "s.duckdb")],
            tmp_path, "named pipe", seconds=30)
    refused(["runs", "--store", str(tmp_path / "s.duckdb")], tmp_path, "named pipe", seconds=30)


def test_duckdb_spills_into_a_private_folder(tmp_path, store):
    RunStore(store, read_only=True).runs()
    from scalinglab.runs.store import _connect_config

    spill = Path(_connect_config()["temp_directory"])
    st = os.lstat(spill)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_uid == os.getuid() and str(os.getuid()) in spill.name


def test_a_private_folder_planted_as_a_symlink_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "cache").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(safefile.OutputError, match="symlink"):
        safefile.private_dir(tmp_path / "cache")


# -- inputs are regular files ----------------------------------------------------------------


def _tb_fifo(root: Path) -> Path:
    (root / "tb" / "run1").mkdir(parents=True)
    fifo(root / "tb" / "run1" / "events.out.tfevents.1.host")
    return root / "tb"


FIFO_INPUTS = {
    "import-csv": (lambda t: ["import", str(fifo(t / "pipe.csv"))], "named pipe"),
    "import-jsonl": (lambda t: ["import", str(fifo(t / "runs.jsonl"))], "named pipe"),
    "fit-file": (lambda t: ["fit", "chinchilla", str(fifo(t / "pipe.csv"))], "named pipe"),
    "tensorboard-dir": (lambda t: ["import", str(_tb_fifo(t)), "--from", "tensorboard"],
                        "named pipe"),
    "mlflow-file": (lambda t: ["import", str(fifo(t / "mlflow.db")), "--from", "mlflow"],
                    "named pipe"),
    "wandb-history": (lambda t: ["import", str(fifo(t / "history.csv")), "--from", "wandb"],
                      "named pipe"),
    "training-log": (lambda t: ["import", str(fifo(t / "train.log")), "--from", "log"],
                     "named pipe"),
    "set-file": (lambda t: ["import", str(_tb_fifo(t)), "--from", "tensorboard", "--set",
                            str(fifo(t / "sizes.json"))], "named pipe"),
    "device": (lambda t: ["import", "/dev/zero", "--from", "log"], "a device"),
    "result": (lambda t: ["report", "--result", str(fifo(t / "r.json"))], "named pipe"),
}


@pytest.mark.parametrize("name", list(FIFO_INPUTS))
def test_an_input_that_is_a_fifo_or_device_is_refused_before_reading(tmp_path, store, name):
    make, says = FIFO_INPUTS[name]
    args = make(tmp_path)
    refused([*args, "--store", str(store)], tmp_path, says, seconds=60)


def _tiny_plan(tmp_path: Path, corpus: Path, sizes: int) -> Path:
    """``plan.toml``: a one-budget IsoFLOP sweep of ``sizes`` tiny models on a small ``corpus``
    (written here)."""
    corpus.write_text("lambda yield async await " * 3000)
    plan = tmp_path / "plan.toml"
    res = runner.invoke(app, ["sweep", "plan", "isoflop", "--budgets", "3e8", "--sizes", str(sizes),
                              "--data", str(corpus), "--seq-len", "32", "--batch-tokens", "256",
                              "--out", str(plan)])
    assert res.exit_code == 0, res.output
    return plan


def _plan_with_data(tmp_path: Path, source: Path) -> Path:
    """A valid plan (made from a real corpus) whose [data] source is then ``source``."""
    import tomllib

    import tomli_w

    good = tmp_path / "good.txt"
    plan = _tiny_plan(tmp_path, good, sizes=2)
    doc = tomllib.loads(plan.read_text())
    doc["data"]["source"] = str(source)
    plan.write_text(tomli_w.dumps(doc))
    good.unlink()
    return plan


def test_sweep_data_that_is_a_fifo_is_refused(tmp_path, store):
    plan = _plan_with_data(tmp_path, fifo(tmp_path / "corpus.txt"))
    refused(["sweep", "run", str(plan), "--store", str(store)], tmp_path, "named pipe",
            seconds=60)


def test_json_deeper_than_the_limit_is_one_line(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with deadline(20), pytest.raises(InputError, match="nested 100000 levels deep"):
        safefile.read_json(deep)
    s = json.dumps({"a": ["x\\\"[[[[", {"b": [1]}]})
    assert safefile.json_depth(s.encode()) == 4


# -- sidecars and caches ----------------------------------------------------------------------


def test_a_log_planted_as_a_symlink_is_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "run.log").symlink_to(victim)
    with pytest.raises(safefile.OutputError, match="symbolic link"):
        safefile.open_log(tmp_path / "run.log")
    fifo(tmp_path / "pipe.log")
    with deadline(10), pytest.raises(safefile.OutputError, match="named pipe"):
        safefile.open_log(tmp_path / "pipe.log")
    assert victim.read_text() == "precious"


def test_a_secret_too_small_to_train_on_is_not_cached(tmp_path, store):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$salt$hash:19000:0:99999:7:::\n")
    plan = _plan_with_data(tmp_path, secret)
    refused(["sweep", "run", str(plan), "--store", str(store)], tmp_path, "too little data")
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_cached_tokens_are_private(tmp_path):
    from scalinglab.sweep.data import DataSpec, load_corpus

    text = tmp_path / "corpus.txt"
    text.write_text("lambda yield async await " * 3000)
    load_corpus(DataSpec(source=str(text)))
    cache = tmp_path / "cache"
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert files
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in cache.rglob("*") if p.is_dir())


def test_mlflow_param_and_tag_files_linking_outside_the_store_are_not_read(tmp_path, store):
    pytest.importorskip("mlflow")
    from tracker_stores import write_mlflow_stores

    mlruns = write_mlflow_stores(tmp_path / "ml")["mlruns"]
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    planted = 0
    for params in mlruns.rglob("params"):
        target = params / "schedule"
        if target.exists():
            target.unlink()
            target.symlink_to(secret)
            planted += 1
    for tags in mlruns.rglob("tags"):
        (tags / "stolen").symlink_to(secret)
    assert planted
    res = runner.invoke(app, ["import", str(mlruns), "--from", "mlflow", "--store", str(store),
                              "--invalid", "skip"])
    assert res.exit_code == 0, res.output
    assert "left unread" in res.output
    con = duckdb.connect(str(store), read_only=True)
    try:
        dump = str(con.execute("SELECT * FROM runs").fetchall())
    finally:
        con.close()
    assert "TOP-SECRET" not in dump


# -- limits, linear time, no hang ---------------------------------------------------------------


def test_a_store_whose_runs_is_a_view_over_a_huge_range_is_refused_at_once(tmp_path, store):
    con = duckdb.connect(str(store))
    con.execute("ALTER TABLE runs RENAME TO runs_real")
    con.execute("CREATE VIEW runs AS SELECT r.* FROM runs_real r, range(1000000000000)")
    con.close()
    refused(["runs", "--store", str(store)], tmp_path, "runs is a view, not a table", seconds=30)
    refused(["fit", "chinchilla", "--store", str(store)], tmp_path, "is a view", seconds=30)


@pytest.mark.parametrize(("body", "says"), [
    (",".join(["N", "D", "loss"] + [f"x{i}" for i in range(20_000)]) + "\n"
     + ",".join(["1e8", "2e9", "3"] + ["1"] * 20_000) + "\n", "20,003 columns, over the limit"),
    ("N,D,loss,note\n1e8,2e9,3," + "a" * 200_000 + "\n1e8,2e9,abc,x\n",
     "row 2 (line 3), column 'loss': 'abc' is not a number"),
    ("N,D,loss,note\n1e8,2e9,3," + "a" * 9_000_000 + "\n", "a row longer than 8 MB"),
], ids=["20k-columns", "200KB-cell", "9MB-cell"])
def test_wide_files_and_huge_cells_are_one_line(tmp_path, body, says):
    (tmp_path / "wide.csv").write_text(body)
    refused(["import", str(tmp_path / "wide.csv"), "--store", str(tmp_path / "s.duckdb")],
            tmp_path, says, seconds=60)


def test_chained_definitions_that_explode_are_refused_before_expanding(tmp_path):
    (tmp_path / "runs.csv").write_text(FIT_CSV)
    defs, prev = [], "N"
    for i in range(14):
        defs += ["--define", f"q{i}={prev}*alpha+{prev}**2"]
        prev = f"q{i}"
    refused(["fit", "custom", str(tmp_path / "runs.csv"), "--formula", f"E + A*{prev}**-beta",
             "--inputs", "N", "--bootstrap", "0", *defs], tmp_path,
            "its definitions expand it to over 4,000 characters", seconds=30)


def test_a_400_digit_number_in_a_formula_is_one_line(tmp_path):
    (tmp_path / "runs.csv").write_text(FIT_CSV)
    refused(["fit", "custom", str(tmp_path / "runs.csv"), "--formula",
             "E + A*N**-alpha + " + "9" * 400 + "*0", "--inputs", "N", "--bootstrap", "0"],
            tmp_path, "a 400-digit integer is not a finite number", seconds=30)


def test_long_log_lines_are_read_in_linear_time(tmp_path):
    from scalinglab.runs.trackers import read_tracker

    nano = tmp_path / "nano.log"
    nano.write_text("batch_size = " + " " * 100_000 + "x\n" + "".join(
        f"iter {i}: loss {3 - i / 100:.4f}, time 1ms\n" for i in range(20)))
    meg = tmp_path / "meg.log"
    meg.write_text("iteration 1/ 2 |" * 65_000 + "\n" + "".join(
        f" iteration {i}/ 20 | lm loss: {3 - i / 100:.4E} |\n" for i in range(1, 21)))
    with deadline(30):
        assert len(read_tracker("log", nano, log_format="nanogpt").runs) == 1
        got = read_tracker("log", meg, log_format="megatron")
    assert got.runs["final_step"].iloc[0] == 20


def test_steps_past_int64_are_refused_not_wrapped(tmp_path, store):
    big = tmp_path / "big.log"
    big.write_text("iter 1: loss 3.0, time\niter 12345678901234567890123: loss 2.0,\n")
    refused(["import", str(big), "--from", "log", "--store", str(store)], tmp_path,
            "line 2: step 12345678901234567890123 is too large", seconds=30)
    hist = tmp_path / "history.csv"
    hist.write_text("run,_step,train/loss\na,1,3.0\na,9223372036854775808,2.0\n")
    refused(["import", str(hist), "--from", "wandb", "--store", str(store)], tmp_path,
            "step 9223372036854775808 is too large", seconds=30)


def test_wandb_history_groups_many_runs_in_one_pass(tmp_path):
    from scalinglab.runs.trackers import read_tracker

    rows = ["run,_step,train/loss,n_params,tokens"]
    rows += [f"r{r},{s},{3 - s / 10 - r / 1e5},{1e6 * (1 + r % 7)},{s * 1000}"
             for r in range(3000) for s in (1, 2)]
    (tmp_path / "h.csv").write_text("\n".join(rows) + "\n")
    with deadline(60):
        out = read_tracker("wandb", tmp_path / "h.csv", mapping={"N": "n_params", "D": "tokens"})
    assert len(out.runs) == 3000 and len(out.curves) == 6000
    assert out.runs["name"].iloc[1234] == "r1234"
    assert out.runs["loss"].iloc[1234] == pytest.approx(3 - 0.2 - 1234 / 1e5)


def test_a_parquet_uint64_count_past_2_to_the_53_imports_as_a_number(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"N": pa.array([2**64 - 1, 10**8], pa.uint64()),
                             "D": [2e9, 2e9], "loss": [3.0, 2.9]}), tmp_path / "u.parquet")
    with deadline(60):
        res = runner.invoke(app, ["import", str(tmp_path / "u.parquet"), "--store",
                                  str(tmp_path / "s.duckdb")])
    assert res.exit_code == 0, res.output
    runs = RunStore(tmp_path / "s.duckdb", read_only=True).runs()
    assert sorted(runs["N"]) == [1e8, float(2**64 - 1)]


def test_sweep_run_log_planted_as_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    import tomllib

    text = tmp_path / "corpus.txt"
    plan = _tiny_plan(tmp_path, text, sizes=1)
    run_id = tomllib.loads(plan.read_text())["runs"][0]["run_id"]
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / f"{run_id}.log").symlink_to(victim)
    with deadline(120):
        res = runner.invoke(app, ["sweep", "run", str(plan), "--store", str(tmp_path / "s.duckdb"),
                                  "--log", str(tmp_path / "logs")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "is a symbolic link; refusing to write through it" in errors[0]
    assert victim.read_text() == "precious"  # the progress line aside, nothing else was said
