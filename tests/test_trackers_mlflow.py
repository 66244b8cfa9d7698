"""MLflow stores (an mlruns folder and an SQLite database) written by MlflowClient, read back."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from scalinglab.errors import InputError, ParameterError
from scalinglab.runs.trackers import read_tracker
from scalinglab.runs.trackers.base import MissingDependency

pytest.importorskip("mlflow")

from tracker_stores import STEPS, loss_at  # noqa: E402  (after the skip: it needs mlflow)


@pytest.fixture(scope="module")
def stores(mlflow_stores):
    return mlflow_stores


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


def test_a_parent_run_of_nested_runs_is_not_a_crashed_run(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    exp = client.create_experiment("hpo")
    parent = client.create_run(exp, run_name="study").info.run_id
    for i, lr in enumerate((1e-3, 3e-3)):
        rid = client.create_run(exp, run_name=f"trial-{i}",
                                tags={"mlflow.parentRunId": parent}).info.run_id
        client.log_param(rid, "n_params", 1e6)
        client.log_param(rid, "lr", lr)
        client.log_metric(rid, "loss", 3.0 - i, step=10)
        client.set_terminated(rid)
    client.set_terminated(parent)
    out = read_tracker("mlflow", tmp_path / "mlruns")
    assert sorted(out.runs["name"]) == ["trial-0", "trial-1"]
    assert out.runs["mlflow_parent_run_id"].tolist() == [parent, parent]
    assert "1 parent run of nested runs, with no 'loss' of their own, left out" in out.notes
