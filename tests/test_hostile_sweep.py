"""Hostile input to the sweep commands: corrupt plans, bad data, bad flags.

Every case must end the way the architecture promises: exit code 2, one line on stderr that
names what is wrong, nothing on stdout, no traceback, no RuntimeWarning, and the store (and
any file the command would write) exactly as it was, byte for byte. Each case is something a
person can type or save; several crashed, were ignored, or trained into nonsense before
(issue 11 items 7-9).
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.runs.store import RunStore

runner = CliRunner()


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "1000")  # long temporary paths stay on one line


@pytest.fixture
def text(tmp_path: Path) -> Path:
    words = ["lambda", "yield", "async", "await", "with", "as", "try", "except", "pass"]
    path = tmp_path / "corpus.txt"
    path.write_text(" ".join(np.random.default_rng(2).choice(words, 30_000)))
    return path


@pytest.fixture
def plan_doc(tmp_path: Path, text: Path) -> dict[str, Any]:
    """A valid 4-run plan, as `sweep plan isoflop` writes it."""
    out = tmp_path / "good.toml"
    result = runner.invoke(app, ["sweep", "plan", "isoflop", "--budgets", "3e8,1e9", "--sizes",
                                 "2", "--data", str(text), "--seq-len", "32", "--batch-tokens",
                                 "256", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return tomllib.loads(out.read_text())


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store holding one run, so 'unchanged' has something to keep."""
    path = tmp_path / "runs.duckdb"
    with RunStore(path) as s:
        s.add_run({"run_id": "kept", "N": 1e6, "D": 2e7, "loss": 3.1, "status": "finished",
                   "tags": {"dataset": "x"}})
    return path


def digest(folder: Path) -> dict[str, str]:
    """Every file under the folder (but the corpus cache) and the hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "cache" not in p.parts}


def message_lines(err: str) -> list[str]:
    """The error's text lines: clikit's ``error: ...`` line, or the same text inside the box
    Typer's rich formatting draws around a ClickException today (clikit's owner may change
    which; the message must be one line either way)."""
    lines = [ln.strip().strip("│╭╮╰╯─ ").strip() for ln in err.splitlines()]
    lines = [ln.removeprefix("error: ") for ln in lines if ln and ln != "Error"]
    return lines


def refused(args: list[str], folder: Path, says: str) -> str:
    """Run the CLI; check it refused cleanly, changed nothing, and its line says ``says``."""
    before = digest(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = runner.invoke(app, args)
    assert result.exit_code == 2, (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    err = result.stderr
    assert "Traceback" not in result.output and "Traceback" not in err
    # stdout holds nothing, or with --json only the JSON error object (scripts parse stdout)
    assert result.stdout == "" or ("--json" in args and set(json.loads(result.stdout)) == {"error"})
    lines = message_lines(err)
    assert len(lines) == 1, err
    assert says in lines[0], (says, lines[0])
    assert "np.float64" not in err and "np.int64" not in err
    assert digest(folder) == before, "a rejected command changed a file"
    return lines[0]


def save(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def run_k(doc: dict[str, Any], k: int) -> dict[str, Any]:
    return doc["runs"][k]


#: mutations of a valid plan -> what the one-line error must say. The bad key is in the *last*
#: run in several, so a plan is refused whole rather than trained up to its first bad run.
CORRUPT_PLANS: list[tuple[str, Any, str]] = [
    ("seq_len = 0", lambda d: run_k(d, 3).update(seq_len=0), "run 4, column 'seq_len': must be a whole number >= 2, not 0"),
    ('tags = "x"', lambda d: run_k(d, 0).update(tags="x"), "run 1, column 'tags': must be a table"),
    ("weight_decay = -1", lambda d: run_k(d, 3).update(weight_decay=-1), "column 'weight_decay': must be a finite number >= 0, not -1"),
    ("weight_decay = nan", lambda d: d["defaults"].update(weight_decay=math.nan), "[defaults], column 'weight_decay'"),
    ("warmup = 2.0", lambda d: run_k(d, 1).update(warmup=2.0), "run 2, column 'warmup': must be a finite number in [0, 1), not 2.0"),
    ("steps = 10.5", lambda d: run_k(d, 2).update(steps=10.5), "run 3, column 'steps'"),
    ("unknown [data] key", lambda d: d["data"].update(shuffle=True), "[data], column 'shuffle': unknown key"),
    ("bool for a number", lambda d: run_k(d, 0).update(lr=True), "column 'lr': must be a finite number > 0, not true"),
    ("lr = inf", lambda d: run_k(d, 0).update(lr=math.inf), "not inf"),
    ("lr as a string", lambda d: d["defaults"].update(lr="3e-3"), "not '3e-3'"),
    ("misspelt key", lambda d: run_k(d, 0).update(learning_rate=0.1), "column 'learning_rate': unknown key"),
    ("schedule typo", lambda d: d["defaults"].update(schedule="cosin"), "did you mean 'cosine'?"),
    ("n_heads not dividing", lambda d: run_k(d, 0).update(n_heads=3), "column 'n_heads': 3 does not divide d_model = 16"),
    ("odd rope head", lambda d: run_k(d, 3).update(n_heads=32), "odd head dimension"),
    ("vocab too large", lambda d: d["defaults"].update(vocab_size=100_000), "column 'vocab_size'"),
    ("vocab smaller than data", lambda d: d["defaults"].update(vocab_size=100), "column 'vocab_size': 100 is smaller than the vocabulary"),
    ("seq_len beyond the data", lambda d: (d["defaults"].update(seq_len=60_000, batch_tokens=60_000)), "column 'seq_len': 60000 does not fit the data"),
    ("negative seed", lambda d: run_k(d, 0).update(seed=-1), "column 'seed'"),
    ("beta2 = 1", lambda d: d["defaults"].update(beta2=1.0), "column 'beta2'"),
    ("batch under one sequence", lambda d: run_k(d, 1).update(batch_tokens=8), "column 'batch_tokens': 8 does not hold one sequence"),
    ("negative budget", lambda d: run_k(d, 0).update(budget=-1.0), "column 'budget'"),
    ("tag key as JSONPath", lambda d: run_k(d, 0).update(tags={"$..*": "x"}), "column 'tags': key '$..*' must be a word"),
    ("nested tag value", lambda d: run_k(d, 0).update(tags={"a": {"b": 1}}), "column 'tags'"),
    ("no d_model anywhere", lambda d: run_k(d, 2).pop("d_model"), "run 3, column 'd_model': is missing"),
    ("runs not tables", lambda d: d.update(runs=[1, 2]), "runs must be tables"),
    ("no runs", lambda d: d.pop("runs"), "no [[runs]] in this plan"),
    ("unknown section", lambda d: d.update(run={"lr": 1.0}), "unknown section [run]"),
    ("defaults not a table", lambda d: d.update(defaults=3), "[defaults]: must be a table, not 3"),
    ("duplicate run", lambda d: d["runs"].append(dict(d["runs"][0])), "run 5: identical to run 1"),
    ("val_fraction 0.9", lambda d: d["data"].update(val_fraction=0.9), "column 'val_fraction'"),
    ("missing data", lambda d: d["data"].update(source="/nonexistent/corpus"), "data source not found"),
    ("missing tokenizer", lambda d: d["data"].update(tokenizer="/nonexistent/tok.json"), "tokenizer file not found"),
    ("empty [sweep] name", lambda d: d["sweep"].update(name=""), "[sweep], column 'name'"),
]


@pytest.mark.parametrize(("mutate", "says"), [c[1:] for c in CORRUPT_PLANS],
                         ids=[c[0] for c in CORRUPT_PLANS])
def test_a_corrupt_plan_is_refused_in_one_line_and_nothing_is_trained(tmp_path, plan_doc, store,
                                                                       mutate, says):
    mutate(plan_doc)
    bad = save(tmp_path, plan_doc)
    refused(["sweep", "run", str(bad), "--store", str(store)], tmp_path, says)
    refused(["sweep", "run", str(bad), "--store", str(store), "--json"], tmp_path, says)


def test_files_that_are_not_plans_are_refused(tmp_path, store):
    cases = {
        "syntax.toml": (b"[sweep\nname = 1", "not valid TOML"),
        "binary.toml": (b"\xff\xfe\x00\x01", "not a text file"),
        "empty.toml": (b"", "no [[runs]] in this plan"),
    }
    for name, (content, says) in cases.items():
        (tmp_path / name).write_bytes(content)
        refused(["sweep", "run", str(tmp_path / name), "--store", str(store)], tmp_path, says)
    refused(["sweep", "run", str(tmp_path / "missing.toml"), "--store", str(store)], tmp_path,
            "plan file not found")
    (tmp_path / "folder.toml").mkdir()
    refused(["sweep", "run", str(tmp_path / "folder.toml"), "--store", str(store)], tmp_path,
            "is a folder")


def test_bad_data_files_are_refused_before_the_store_is_opened(tmp_path, plan_doc, store):
    np.save(tmp_path / "floats.npy", np.zeros(10_000, dtype=np.float32))
    (tmp_path / "odd.bin").write_bytes(b"\x00" * 10_001)
    (tmp_path / "tiny.txt").write_text("too short")
    (tmp_path / "tok.json").write_text("{not json")
    cases = [
        ({"source": str(tmp_path / "floats.npy")}, "expected a 1-D uint16 array, got 1-D float32"),
        ({"source": str(tmp_path / "odd.bin")}, "size is not a whole number of uint16 tokens"),
        ({"source": str(tmp_path / "tiny.txt")}, "too little data"),
        ({"source": str(tmp_path / "tiny.txt"), "tokenizer": str(tmp_path / "tok.json")},
         "not a tokenizers JSON file"),
    ]
    for data, says in cases:
        if "tokenizer" in data:
            pytest.importorskip("tokenizers")
        plan_doc["data"] = data
        refused(["sweep", "run", str(save(tmp_path, plan_doc)), "--store", str(store)], tmp_path, says)


def test_a_finished_sweep_reruns_without_its_data(tmp_path, plan_doc, text):
    # nothing is left to train, so a data source moved away since is no reason to refuse
    store = tmp_path / "s.duckdb"
    plan = save(tmp_path, plan_doc)
    assert runner.invoke(app, ["sweep", "run", str(plan), "--store", str(store)]).exit_code == 0
    text.rename(tmp_path / "moved.txt")
    from scalinglab.sweep.runner import _corpus

    _corpus.cache_clear()  # a fresh process would not hold the corpus in memory either
    result = runner.invoke(app, ["sweep", "run", str(plan), "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["skipped"] == 4
    plan_doc["runs"][0]["lr"] = 0.02  # an edited run needs the data again: refused, one line
    refused(["sweep", "run", str(save(tmp_path, plan_doc)), "--store", str(store)], tmp_path,
            "data source not found")


def test_a_rejected_sweep_does_not_create_a_store(tmp_path, plan_doc):
    run_k(plan_doc, 0)["seq_len"] = 0
    refused(["sweep", "run", str(save(tmp_path, plan_doc)), "--store", str(tmp_path / "new.duckdb")],
            tmp_path, "seq_len")
    assert not (tmp_path / "new.duckdb").exists()


BAD_RUN_FLAGS = [
    (["--backend", "slurm"], "--backend must be local or ray, not 'slurm'"),
    (["--device", "tpu"], "--device must be cpu, cuda, cuda:K or auto, not 'tpu'"),
    (["--gpus-per-run", "0"], "--gpus-per-run must be a share of one GPU in (0, 1], not 0.0"),
    (["--gpus-per-run", "2"], "--gpus-per-run must be a share of one GPU in (0, 1], not 2.0"),
    (["--gpus-per-run", "nan"], "--gpus-per-run must be a share of one GPU in (0, 1], not nan"),
    (["--gpus-per-run", "0.25"], "--gpus-per-run needs a CUDA GPU to share; --device is cpu"),
    (["--workers", "0"], "--workers must be a whole number >= 1, not 0"),
    (["--cpus-per-run", "0"], "--cpus-per-run must be a whole number >= 1, not 0"),
    (["--backend", "ray", "--workers", "2"], "--workers counts local worker processes; Ray trains as many runs at once as the cluster's resources allow (see --gpus-per-run and --cpus-per-run)"),
]


@pytest.mark.parametrize(("flags", "says"), BAD_RUN_FLAGS, ids=[" ".join(f) for f, _ in BAD_RUN_FLAGS])
def test_a_bad_resource_request_is_refused_naming_the_flag(tmp_path, plan_doc, store, flags, says):
    good = save(tmp_path, plan_doc)
    refused(["sweep", "run", str(good), "--store", str(store), *flags], tmp_path, says)


def test_asking_for_a_gpu_that_is_not_there_is_refused(tmp_path, plan_doc, store):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    good = save(tmp_path, plan_doc)
    refused(["sweep", "run", str(good), "--store", str(store), "--device", "cuda",
             "--gpus-per-run", "0.25"], tmp_path, "--device cuda: this PyTorch sees no CUDA GPU")


BAD_PLAN_FLAGS = [
    (["--budgets", "1e400"], "--budgets must be positive finite FLOP counts"),
    (["--budgets", "nan"], "--budgets 'nan': expected comma-separated numbers"),
    (["--budgets", "-1e12"], "--budgets must be positive finite"),
    (["--budgets", "1e12", "--span", "nan"], "--span must be a finite number >= 1, not nan"),
    (["--budgets", "1e12", "--span", "0.5"], "--span must be a finite number >= 1, not 0.5"),
    (["--budgets", "1e12", "--sizes", "0"], "--sizes must be a whole number >= 1, not 0"),
    (["--budgets", "1e12", "--tokens-per-param", "0"], "--tokens-per-param must be a finite number > 0"),
    (["--budgets", "1e12", "--seq-len", "0"], "--seq-len must be a whole number >= 2, not 0"),
    (["--budgets", "1e12", "--warmup", "2"], "--warmup must be a finite number in [0, 1), not 2.0"),
    (["--budgets", "1e12", "--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
    (["--budgets", "1e12", "--lr", "nan"], "--lr must be a finite number > 0, not nan"),
    (["--budgets", "1e12", "--schedule", "linear"], "--schedule must be one of 'cosine', 'wsd', 'constant'"),
    (["--budgets", "1e12", "--positions", "alibi"], "--positions must be one of 'rope', 'learned'"),
    (["--budgets", "1e12", "--vocab-size", "0"], "--vocab-size must be a whole number in [2, 65536], not 0"),
    (["--budgets", "1e12", "--aspect", "0"], "--aspect must be a finite number > 0, not 0.0"),
    (["--budgets", "1e12", "--ffn-ratio", "0"], "--ffn-ratio must be a finite number > 0"),
    (["--budgets", "1e12", "--batch-tokens", "64"], "--batch-tokens (64) must hold at least one sequence of --seq-len (128) tokens"),
]


@pytest.mark.parametrize(("flags", "says"), BAD_PLAN_FLAGS, ids=[" ".join(f) for f, _ in BAD_PLAN_FLAGS])
def test_a_bad_isoflop_plan_request_writes_nothing_and_names_the_flag(tmp_path, flags, says):
    out = tmp_path / "p.toml"
    refused(["sweep", "plan", "isoflop", *flags, "--out", str(out)], tmp_path, says)
    assert not out.exists()


def test_a_plan_that_cannot_be_written_is_one_line(tmp_path, text):
    (tmp_path / "taken").write_text("a file, not a folder")
    for out, says in ((tmp_path, "is a folder; an output must be a file path"),
                      (tmp_path / "taken" / "p.toml", "cannot write the plan here")):
        refused(["sweep", "plan", "isoflop", "--budgets", "1e12", "--data", str(text),
                 "--out", str(out)], tmp_path, says)


BAD_GRID_FLAGS = [
    (["--lr", "nan", "--batch", "1024", "--sizes", "1e5"], "--lr 'nan': expected comma-separated numbers"),
    (["--lr", "1e-3", "--batch", "64", "--sizes", "1e5"], "--batch must be a whole number >= 128, not 64"),
    (["--lr", "1e-3", "--batch", "1024", "--sizes", "-1e5"], "--sizes must be positive finite parameter counts"),
    (["--lr", "1e-3", "--batch", "1024", "--sizes", "1e5", "--tokens", "0"], "--tokens must be a finite number > 0"),
]


@pytest.mark.parametrize(("flags", "says"), BAD_GRID_FLAGS, ids=[" ".join(f) for f, _ in BAD_GRID_FLAGS])
def test_a_bad_grid_plan_request_writes_nothing_and_names_the_flag(tmp_path, flags, says):
    out = tmp_path / "g.toml"
    refused(["sweep", "plan", "grid", *flags, "--out", str(out)], tmp_path, says)
    assert not out.exists()


def test_run_json_is_only_json_even_when_the_plan_has_notes(tmp_path, plan_doc):
    # issue 11 item 7: an edited plan printed its note before the JSON, so stdout did not parse
    run_k(plan_doc, 0)["lr"] = 0.02
    plan = save(tmp_path, plan_doc)
    result = runner.invoke(app, ["sweep", "run", str(plan), "--store", str(tmp_path / "s.duckdb"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["finished"] == 4 and "run 1 was edited" in report["notes"][0]
    assert "note: run 1 was edited since it was planned" in result.stderr
    assert "runs 4/4 done" in result.stderr  # progress went to stderr too
