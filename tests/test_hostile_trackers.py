"""Hostile tracker inputs through the CLI: exit code 2, one line naming the input, no traceback,
the store and the input itself byte-identical afterwards (issue 11's rule, for issue 16's
readers)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scalinglab.cli import app

runner = CliRunner()


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
    elif path.is_dir():
        for p in sorted(path.rglob("*")):
            h.update(str(p.relative_to(path)).encode())
            if p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()


def tb_run(root: Path) -> Path:
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(root / "run1")
    for s in range(5):
        w.add_scalar("train/loss", 3 - s / 10, s)
    w.close()
    return root


def garbage_events(root: Path) -> Path:
    (root / "run").mkdir(parents=True)
    (root / "run" / "events.out.tfevents.123.host.1.0").write_bytes(b"\x00\xff garbage" * 50)
    return root


def foreign_sqlite(root: Path) -> Path:
    db = root / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit()
    con.close()
    return db


def file_with(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        p = root / name
        p.write_bytes(content)
        return p
    return make


def folder_with(*names: str) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        for n in names:
            (root / n).parent.mkdir(parents=True, exist_ok=True)
            (root / n).write_text("x: 1\n")
        return root
    return make


def broken_mlruns(root: Path) -> Path:
    (root / "1").mkdir()
    (root / "1" / "meta.yaml").write_text("{{{ not: yaml: [")
    (root / ".trash").mkdir()
    return root


HISTORY = b"run_id,_step,train/loss\na,0,3.0\na,1,2.9\n"

#: (label, source, how to make the input under a fresh folder, extra arguments, text expected)
CASES = [
    ("tb: no such dir", "tensorboard", lambda r: r / "missing", [], "no such directory"),
    ("tb: a file", "tensorboard", file_with("x.txt", b"hello"), [], "is not a directory"),
    ("tb: no event files", "tensorboard", folder_with("a/notes.txt"), [], "no TensorBoard event files"),
    ("tb: garbage event file", "tensorboard", garbage_events, [], "no readable TensorBoard record"),
    ("tb: unknown loss tag", "tensorboard", tb_run, ["--loss-tag", "val/loss"], "--loss-tag 'val/loss'"),
    ("tb: N not a number", "tensorboard", tb_run, ["--set", "N=12x"], "'12x' is not a number"),
    ("tb: missing mapping file", "tensorboard", tb_run, ["--set", "nope.csv"], "no such file"),
    ("tb: two mapping files", "tensorboard", tb_run, ["--set", "a.csv", "--set", "b.json"],
     "--set takes one mapping file"),
    ("tb: bad final", "tensorboard", tb_run, ["--final", "ema:-3"], "--final must be"),
    ("mlflow: foreign sqlite", "mlflow", foreign_sqlite, [], "not an MLflow tracking store"),
    ("mlflow: binary file", "mlflow", file_with("x.bin", b"\x89PNG\r\n" * 9), [],
     "neither an mlruns folder nor an SQLite file"),
    ("mlflow: not mlruns", "mlflow", folder_with("a/b.txt"), [], "not an MLflow mlruns folder"),
    ("mlflow: broken meta.yaml", "mlflow", broken_mlruns, [], "MLflow cannot read it"),
    ("mlflow: remote uri", "mlflow", lambda r: "http://127.0.0.1:9/", [], "only a local mlruns folder"),
    ("mlflow: --format", "mlflow", broken_mlruns, ["--format", "nanogpt"],
     "--format cannot be used with kind 'mlflow'"),
    ("wandb: bad cell", "wandb", file_with("h.csv", HISTORY.replace(b"2.9", b"two")),
     [], "row 2 (line 3), column 'train/loss': 'two' is not a number"),
    ("wandb: fractional step", "wandb", file_with("h.csv", HISTORY.replace(b"a,1,", b"a,1.5,")),
     [], "is not a whole step number"),
    ("wandb: empty file", "wandb", file_with("h.csv", b""), [], "h.csv"),
    ("wandb: binary", "wandb", file_with("h.parquet", b"\x00\x01garbage"), [], "h.parquet"),
    ("wandb: unterminated quote", "wandb", file_with("h.csv", b'run_id,_step,loss\n"a,0,3\n'),
     [], "h.csv"),
    ("wandb: no run column", "wandb", file_with("h.csv", b"_step,loss\n0,3\n"), [], "no run column"),
    ("log: bad regex", "log", file_with("a.log", b"iter 1: loss 3.0,\n"), ["--pattern", "(?P<step"],
     "--pattern is not a valid regular expression"),
    ("log: pattern without loss", "log", file_with("a.log", b"x\n"), ["--pattern", r"(?P<step>\d+)"],
     "--pattern needs the named groups"),
    ("log: nothing matches", "log", file_with("a.log", b"hello\nworld\n"), [],
     "no line matches a known training-log format"),
    ("log: binary", "log", file_with("a.log", bytes(range(256)) * 40), [], "no line matches"),
    ("log: no log files", "log", folder_with("a/b.csv"), [], "no log files"),
    ("log: unknown format", "log", file_with("a.log", b"x\n"), ["--format", "fairseq"],
     "--format must be one of nanogpt, megatron, scalinglab"),
    ("log: --experiment", "log", file_with("a.log", b"x\n"), ["--experiment", "e"],
     "--experiment cannot be used with kind 'log'"),
]


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("COLUMNS", "400")
    csv = tmp_path / "seed.csv"
    csv.write_text("N,D,loss\n1e6,2e7,3.0\n")
    path = tmp_path / "store.duckdb"
    assert runner.invoke(app, ["import", str(csv), "--store", str(path)]).exit_code == 0
    return path


@pytest.mark.parametrize("label, source, make, extra, expected", CASES, ids=[c[0] for c in CASES])
def test_a_hostile_tracker_input_is_one_line_and_changes_nothing(tmp_path, store, label, source,
                                                                 make, extra, expected):
    root = tmp_path / "input"
    root.mkdir()
    target = make(root)
    if source == "mlflow" and not label.startswith("mlflow: remote"):
        pytest.importorskip("mlflow")
    before_input = tree_digest(root)
    before_store = tree_digest(store)
    args = ["import", str(target), "--from", source, "--store", str(store),
            *[str(root / a) if a.endswith((".csv", ".json")) else a for a in extra]]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln.strip().strip("│╭╮╰╯─ ").strip() for ln in res.output.splitlines()]
    lines = [ln for ln in lines if ln and ln != "Error"]
    assert len(lines) == 1, res.output
    assert expected in lines[0], lines[0]
    assert tree_digest(store) == before_store
    assert tree_digest(root) == before_input


def _tensor_events(root: Path, **tensor) -> Path:
    """A TensorBoard run whose one scalar-plugin tensor is ``tensor`` (fields of TensorProto)."""
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    dims = tensor.pop("dims", [])
    proto = tensor_pb2.TensorProto(tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]), **tensor)
    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    writer = EventFileWriter(str(root / "run1"))
    for step in (1, 2):
        writer.add_event(event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="train/loss", metadata=meta, tensor=proto)])))
    writer.close()
    return root


HOSTILE_TENSORS = {
    "huge-shape": ({"dtype": 1, "dims": [10**12]}, "far too large for a scalar"),
    "negative-dimension": ({"dtype": 1, "dims": [-5], "float_val": [3.0]}, "negative dimension"),
    "string": ({"dtype": 7, "string_val": [b"three"]}, "not a number"),
    "unknown-dtype": ({"dtype": 120, "float_val": [3.0]}, "not a number"),
}


@pytest.mark.parametrize("name", list(HOSTILE_TENSORS))
def test_a_hostile_tensor_in_an_event_file_is_one_line(tmp_path, name):
    fields, says = HOSTILE_TENSORS[name]
    logdir = _tensor_events(tmp_path / "tb", **dict(fields))
    before = tree_digest(tmp_path)
    res = runner.invoke(app, ["import", str(logdir), "--from", "tensorboard", "--store",
                              str(tmp_path / "s.duckdb")])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and says in lines[0] and "tag 'train/loss', step 1" in lines[0], lines
    assert "Traceback" not in res.output
    assert tree_digest(tmp_path) == before
