"""`scalinglab import PATH --from tensorboard|mlflow|wandb|log`, end to end, as a user types it."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.runs.store import RunStore

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def one_line_error(result) -> str:
    """The error's message, without the box Typer draws around it."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln.strip().strip("│╭╮╰╯─ ").strip() for ln in result.output.splitlines()]
    lines = [ln for ln in lines if ln and ln != "Error"]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # long temporary paths on one line


@pytest.fixture(scope="module")
def tb_logs(tmp_path_factory) -> Path:
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    root = tmp_path_factory.mktemp("tb")
    for n in (1e6, 4e6):
        w = SummaryWriter(root / f"n{n:g}")
        for s in range(0, 100, 10):
            w.add_scalar("train/loss", 2 + 30 / (s + 10) + 1e3 / n, s)
        w.add_hparams({"n_params": n, "lr": 1e-3, "batch_tokens": 2048}, {"hp/x": 0})
        w.close()
    w = SummaryWriter(root / "diverged")
    for s, v in ((0, 3.0), (10, math.nan)):
        w.add_scalar("train/loss", v, s)
    w.add_hparams({"n_params": 2e6, "lr": 1.0, "batch_tokens": 2048}, {"hp/x": 0})
    w.close()
    return root


def test_tensorboard_runs_land_with_names_curves_and_failures(tb_logs, tmp_path):
    store = tmp_path / "s.duckdb"
    res = invoke("import", tb_logs, "--from", "tensorboard", "--loss-tag", "train/loss",
                 "--store", store, "--json")
    assert res.exit_code == 0, res.output  # a failed run is data, under the default --invalid too
    report = json.loads(res.stdout)
    assert (report["n_inserted"], report["n_failed_runs"], report["n_curve_points"]) == (3, 1, 21)
    runs = RunStore(store, read_only=True).runs(status=None).set_index("name")
    assert runs.loc["n1e+06", "status"] == "finished"
    assert runs.loc["diverged", "status"] == "failed"
    assert runs.loc["diverged", "error"] == "diverged: train/loss is nan at step 10"
    curve = RunStore(store, read_only=True).curve(runs.loc["n4e+06", "run_id"])
    assert curve["step"].tolist() == list(range(0, 100, 10))
    assert np.allclose(curve["loss"], [2 + 30 / (s + 10) + 1e3 / 4e6 for s in range(0, 100, 10)])
    assert curve["tokens"].tolist() == [s * 2048.0 for s in range(0, 100, 10)]
    # only finished runs are fitted
    assert sorted(RunStore(store, read_only=True).runs()["name"]) == ["n1e+06", "n4e+06"]


def test_re_importing_adds_nothing_and_a_changed_run_is_a_named_conflict(tb_logs, tmp_path):
    store = tmp_path / "s.duckdb"
    args = ["import", tb_logs, "--from", "tensorboard", "--invalid", "failed", "--store", store]
    assert invoke(*args).exit_code == 0
    before = digest(store)
    again = invoke(*args, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["n_inserted"] == 0
    # the same runs with another final-loss rule are the same runs with other values
    conflict = invoke(*args, "--final", "min")
    text = one_line_error(conflict)
    assert "n1e+06" in text or "tb-" in text
    assert digest(store) == before


def test_a_bad_value_rejects_the_whole_import_and_leaves_the_store_as_it_was(tb_logs, tmp_path):
    store = tmp_path / "s.duckdb"
    RunStore(store)
    before = digest(store)
    res = invoke("import", tb_logs, "--from", "tensorboard", "--set", "N=abc", "--store", store)
    text = one_line_error(res)
    assert str(tb_logs) in text and "'abc' is not a number" in text and "run '" in text
    assert digest(store) == before


def test_options_are_named_as_flags_in_errors(tb_logs, tmp_path):
    store = tmp_path / "s.duckdb"
    text = one_line_error(invoke("import", tb_logs, "--from", "tensorboard", "--loss-tag",
                                 "train/los", "--store", store))
    assert "--loss-tag 'train/los'" in text and "did you mean 'train/loss'" in text
    text = one_line_error(invoke("import", tb_logs, "--from", "tensorboard", "--final", "avg",
                                 "--store", store))
    assert "--final must be last, min or ema:K" in text
    text = one_line_error(invoke("import", tb_logs, "--from", "tensorboard", "--map",
                                 "N=n_param", "--store", store))
    assert "--map N=n_param" in text and "did you mean 'n_params'" in text
    text = one_line_error(invoke("import", tb_logs, "--from", "comet", "--store", store))
    assert "--from must be file, tensorboard, mlflow, wandb, log" in text
    text = one_line_error(invoke("import", tb_logs, "--loss-tag", "x", "--store", store))
    assert "--loss-tag only apply with --from" in text
    assert not store.exists()


def test_a_missing_reader_package_is_one_line(tb_logs, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    text = one_line_error(invoke("import", tb_logs, "--from", "tensorboard",
                                 "--store", tmp_path / "s.duckdb"))
    assert "needs the 'tensorboard' package: pip install 'scalinglab[trackers]'" in text


def test_an_mlflow_sqlite_uri_imports_through_the_cli(mlflow_stores, tmp_path):
    db = mlflow_stores["sqlite"]
    before = digest(db)
    store = tmp_path / "s.duckdb"
    res = invoke("import", f"sqlite:///{db}", "--from", "mlflow", "--experiment", "sweep",
                 "--store", store, "--json")
    assert res.exit_code == 0, res.output
    assert (json.loads(res.stdout)["n_inserted"], json.loads(res.stdout)["n_failed_runs"]) == (6, 3)
    runs = RunStore(store, read_only=True).runs(status=None).set_index("name")
    assert runs.loc["small", "D"] == 90 * 4096 and runs.loc["live", "status"] == "running"
    assert runs.loc["preempted", "status"] == "failed" and "KILLED" in runs.loc["preempted", "error"]
    assert len(RunStore(store, read_only=True).curve(runs.loc["large", "run_id"])) == 10
    assert digest(db) == before


@pytest.mark.slow
def test_a_sweep_run_with_log_imports_back_as_the_same_runs(tmp_path, monkeypatch):
    """Cross-path: the sweep's own records and its logs, imported, agree."""
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))
    from scalinglab.sweep.data import DataSpec
    from scalinglab.sweep.model import ModelConfig
    from scalinglab.sweep.plan import RunSpec, SweepPlan
    from scalinglab.sweep.train import TrainConfig

    words = np.random.default_rng(0).choice(["def", "self", "return", "in"], 20_000)
    (tmp_path / "code.txt").write_text(" ".join(words))
    data = DataSpec(source=str(tmp_path / "code.txt"))
    runs = [RunSpec(ModelConfig(d_model=d, n_layers=1, n_heads=2, seq_len=32),
                    TrainConfig(lr=lr, batch_tokens=256, steps=20, eval_tokens=2048), data)
            for d, lr in ((32, 1e-2), (48, 3e-3))]
    plan = SweepPlan("t", "custom", runs, data).save(tmp_path / "plan.toml")
    sweep_store, log_store = tmp_path / "sweep.duckdb", tmp_path / "logs.duckdb"
    res = invoke("sweep", "run", plan, "--store", sweep_store, "--log", tmp_path / "logs")
    assert res.exit_code == 0, res.output
    res = invoke("import", tmp_path / "logs", "--from", "log", "--final", "last",
                 "--store", log_store, "--json")
    assert res.exit_code == 0, res.output
    swept = RunStore(sweep_store, read_only=True).runs().set_index("run_id").sort_index()
    logged = RunStore(log_store, read_only=True).runs().set_index("run_id").sort_index()
    assert list(logged.index) == list(swept.index)  # the log carries the sweep's run id
    for col in ("N", "D", "lr", "batch_tokens", "seq_len", "weight_decay"):
        assert logged[col].tolist() == swept[col].tolist()
    for run_id in swept.index:
        a = RunStore(sweep_store, read_only=True).curve(run_id)
        b = RunStore(log_store, read_only=True).curve(run_id)
        assert b["step"].tolist() == a["step"].tolist()
        assert np.allclose(b["loss"], a["loss"], atol=1e-6)
        assert logged.loc[run_id, "loss"] == pytest.approx(swept.loc[run_id, "extra"]["train_loss"], abs=1e-6)


def test_runs_that_never_log_N_are_told_how_to_give_it(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(tmp_path / "logs" / "r1")
    for s in range(3):
        w.add_scalar("loss", 3 - s / 10, s)
    w.close()
    store = tmp_path / "s.duckdb"
    text = one_line_error(invoke("import", tmp_path / "logs", "--from", "tensorboard",
                                 "--store", store))
    assert "no run logs N under a known name; give it with --set N=VALUE" in text
    assert not store.exists()
    ok = invoke("import", tmp_path / "logs", "--from", "tensorboard", "--set", "N=1e6,D=3e6",
                "--store", store, "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["n_inserted"] == 1
