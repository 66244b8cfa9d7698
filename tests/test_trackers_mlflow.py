"""MLflow stores (an mlruns folder and an SQLite database) written by MlflowClient, read back."""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from scalinglab.errors import InputError, ParameterError
from scalinglab.runs.trackers import read_tracker
from scalinglab.runs.trackers.base import MissingDependency

pytest.importorskip("mlflow")

STEPS = list(range(0, 100, 10))


def loss_at(step: int, n: float) -> float:
    return 2.0 + 30.0 / (step + 10) + 1e3 / n


def write_store(client) -> None:
    """A small sweep as MLflow users log one, with the failures real sweeps have."""
    sweep = client.create_experiment("sweep")
    other = client.create_experiment("other")

    started = iter(range(1_700_000_000_000, 1_800_000_000_000, 1000))

    def run(exp, name, n, status, losses=None, params=None, tags=None):
        r = client.create_run(exp, run_name=name, tags={"dataset": "c4", **(tags or {})},
                              start_time=next(started))
        rid = r.info.run_id
        for k, v in {"n_params": n, "learning_rate": 1e-3, "batch_tokens": 4096,
                     "schedule": "cosine", **(params or {})}.items():
            client.log_param(rid, k, v)
        for s, v in zip(STEPS, losses if losses is not None else [loss_at(s, n) for s in STEPS],
                        strict=False):
            client.log_metric(rid, "train/loss", v, step=s, timestamp=1_700_000_000_000 + s)
            if s % 30 == 0:
                client.log_metric(rid, "eval/loss", v + 0.1, step=s)
        if status != "RUNNING":
            client.set_terminated(rid, status, end_time=r.info.start_time + 60_000)
        return rid

    run(sweep, "small", 1e6, "FINISHED")
    rid = run(sweep, "large", 4e6, "FINISHED")
    # step 90 logged again later (a resumed job): the later value counts
    client.log_metric(rid, "train/loss", 2.25, step=90, timestamp=1_700_000_999_999)
    run(sweep, "oom", 8e6, "FAILED", losses=[3.0, 2.9])
    run(sweep, "preempted", 8e6, "KILLED", losses=[3.0, 2.9, 2.8])
    run(sweep, "diverged", 2e6, "FINISHED", losses=[3.0, 2.8, math.nan, math.nan])
    run(sweep, "live", 2e6, "RUNNING", losses=[3.0, 2.7])
    run(other, "elsewhere", 1e5, "FINISHED", tags={"dataset": "pile"})


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 writes file stores only when asked
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # SQLAlchemy's, inside MLflow
        try:
            write_store(MlflowClient(tracking_uri=(root / "mlruns").as_uri()))
        finally:
            if old is None:
                os.environ.pop("MLFLOW_ALLOW_FILE_STORE")
        write_store(MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}"))
    return {"mlruns": root / "mlruns", "sqlite": root / "mlflow.db"}


@pytest.fixture(scope="module")
def read(stores):
    return {kind: read_tracker("mlflow", path, experiment="sweep", eval_tag="eval/loss")
            for kind, path in stores.items()}


def by_name(result, name):
    return result.runs.set_index("name").loc[name]


@pytest.mark.parametrize("kind", ["mlruns", "sqlite"])
def test_names_params_and_tags_carry_over(read, kind):
    out = read[kind]
    assert list(out.runs["name"]) == ["small", "large", "oom", "preempted", "diverged", "live"]
    small = by_name(out, "small")
    assert (small["N"], small["lr"], small["batch_tokens"]) == (1e6, 1e-3, 4096)
    assert small["D"] == 90 * 4096  # no token count logged: steps x batch, said in a note
    assert small["tags"] == {"dataset": "c4", "experiment": "sweep"}
    assert small["schedule"] == "cosine" and small["wall_time_s"] == 60.0
    assert small["loss"] == loss_at(90, 1e6) and small["eval_loss"] == pytest.approx(loss_at(90, 1e6) + 0.1)
    assert "N <- param 'n_params'" in out.notes and "lr <- param 'learning_rate'" in out.notes


@pytest.mark.parametrize("kind", ["mlruns", "sqlite"])
def test_status_maps_and_failures_keep_their_reason(read, kind):
    runs = read[kind].runs.set_index("name")
    assert runs.loc["oom", "status"] == "failed" and runs.loc["oom", "error"] == "MLflow status FAILED"
    assert runs.loc["preempted", "error"].startswith("MLflow status KILLED")
    assert runs.loc["diverged", "error"] == "diverged: train/loss is nan at step 20"
    assert runs.loc["live", "status"] == "running" and runs.loc["live", "loss"] == 2.7
    assert runs.loc[["oom", "preempted", "diverged"], "loss"].isna().all()


@pytest.mark.parametrize("kind", ["mlruns", "sqlite"])
def test_the_metric_history_is_the_curve_and_a_repeated_step_keeps_the_later_value(read, kind):
    out = read[kind]
    row = int(np.flatnonzero(out.runs["name"] == "large")[0])
    curve = out.curves[out.curves["row"] == row]
    assert curve["step"].tolist() == STEPS
    assert curve["loss"].tolist()[:-1] == [loss_at(s, 4e6) for s in STEPS[:-1]]
    assert curve["loss"].iloc[-1] == 2.25 and by_name(out, "large")["loss"] == 2.25
    assert curve.dropna(subset=["eval_loss"])["step"].tolist() == [0, 30, 60, 90]


def test_both_stores_read_the_same(read):
    cols = ["name", "status", "error", "N", "D", "loss", "lr", "batch_tokens"]
    a, b = read["mlruns"].runs[cols], read["sqlite"].runs[cols]
    assert a.astype(object).fillna(-1).to_dict("records") == b.astype(object).fillna(-1).to_dict("records")
    assert read["mlruns"].curves.fillna(-1).equals(read["sqlite"].curves.fillna(-1))


def test_every_experiment_by_default_and_a_misspelt_one_gets_did_you_mean(stores):
    out = read_tracker("mlflow", stores["mlruns"])
    assert sorted(out.runs["name"]) == sorted(["small", "large", "oom", "preempted", "diverged",
                                               "live", "elsewhere"])
    assert by_name(out, "elsewhere")["tags"] == {"dataset": "pile", "experiment": "other"}
    with pytest.raises(ParameterError, match=r"experiment 'swep' is not in .*\(did you mean 'sweep'\?\)"):
        read_tracker("mlflow", stores["mlruns"], experiment="swep")


def test_a_sqlite_uri_reads_too_and_the_database_is_left_byte_identical(stores):
    db = stores["sqlite"]
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    listing = sorted(os.listdir(db.parent))
    out = read_tracker("mlflow", f"sqlite:///{db}", experiment="other")
    assert list(out.runs["name"]) == ["elsewhere"]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(os.listdir(db.parent)) == listing  # no journal, no artifacts folder


def test_reading_an_mlruns_folder_changes_nothing_in_it(stores):
    def tree(root: Path):
        return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                      for p in root.rglob("*"))

    before = tree(stores["mlruns"])
    read_tracker("mlflow", stores["mlruns"], experiment="sweep")
    assert tree(stores["mlruns"]) == before


def test_a_foreign_sqlite_file_is_refused_and_left_alone(tmp_path):
    db = tmp_path / "notes.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE notes (text TEXT)")
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(InputError, match="an SQLite file, but not an MLflow tracking store"):
        read_tracker("mlflow", db)
    assert db.read_bytes() == before


def test_a_missing_path_is_refused_and_not_created(tmp_path):
    for target in (tmp_path / "mlruns", f"sqlite:///{tmp_path / 'new.db'}"):
        with pytest.raises(InputError, match="no such"):
            read_tracker("mlflow", target)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_is_not_mlruns_and_a_remote_uri_are_refused(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="not an MLflow mlruns folder"):
        read_tracker("mlflow", tmp_path)
    with pytest.raises(InputError, match="only a local mlruns folder"):
        read_tracker("mlflow", "http://tracking.example:5000")


def test_without_the_mlflow_package_the_error_is_one_line(monkeypatch, stores):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(MissingDependency) as err:
        read_tracker("mlflow", stores["mlruns"])
    assert str(err.value) == ("reading an MLflow tracking store needs the 'mlflow' package: "
                              "pip install 'scalinglab[trackers]'")
