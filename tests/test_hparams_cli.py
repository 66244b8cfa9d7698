"""`scalinglab hparams ...`: JSON schemas, saved fits, and errors that name file, row, column."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.hparams.synthetic import synthetic_grid

runner = CliRunner()


@pytest.fixture
def grid_csv(tmp_path):
    """Step-Law-shaped file: batch in sequences of 2048 (column bs), a 'smooth loss' column."""
    df = synthetic_grid(noise=3e-4, seed=0)
    df["bs"] = df.pop("batch_tokens") / 2048
    df["smooth loss"] = df["loss"]
    df["loss"] = df["loss"] * 1.01  # raw loss, to be ignored in favour of the smoothed one
    path = tmp_path / "grid.csv"
    df.to_csv(path, index=False)
    return path


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result, (json.loads(result.stdout) if result.exit_code == 0 and "--json" in args else None)


def test_fit_json_schema_and_save(grid_csv, tmp_path):
    save = tmp_path / "hp.json"
    result, out = run("hparams", "fit", grid_csv, "--bootstrap", 100, "--save", save, "--json")
    assert result.exit_code == 0, result.output
    assert set(out["lr"]) == {"intercept", "coef_N", "coef_D"}
    assert set(out["bs"]) == {"intercept", "coef_D"}
    assert set(out["ci"]["lr"]) == {"intercept", "coef_N", "coef_D"}
    lo, hi = out["ci"]["lr"]["coef_N"]
    assert lo < out["lr"]["coef_N"] < hi
    assert out["n_groups"] == 9 and out["n_runs"] > 9
    assert "using column 'smooth loss' as the loss" in out["notes"]  # a note, not a warning
    assert out["lr"]["coef_N"] == pytest.approx(-0.713, abs=0.05)  # synthetic truth is Step Law
    assert "draws" in json.loads(save.read_text()) and "draws" not in out


def test_surface_method_and_runs_resampling(grid_csv):
    result, out = run("hparams", "fit", grid_csv, "--method", "surface", "--bootstrap", 50, "--json")
    assert result.exit_code == 0, result.output
    assert out["method"] == "surface" and out["n_groups"] == 9
    result, out = run("hparams", "fit", grid_csv, "--resample", "runs", "--bootstrap", 50, "--json")
    assert out["resample"] == "runs"


def test_batch_unit_tokens_reads_the_column_as_tokens(grid_csv):
    _, seqs = run("hparams", "fit", grid_csv, "--bootstrap", 0, "--json")
    _, toks = run("hparams", "fit", grid_csv, "--bootstrap", 0, "--batch-unit", "tokens", "--json")
    assert seqs["bs"]["intercept"] - toks["bs"]["intercept"] == pytest.approx(np.log(2048))


def test_predict_published_and_fitted(grid_csv, tmp_path):
    result, out = run("hparams", "predict", "--law", "steplaw", "--params", "1B",
                      "--tokens", "1e11", "--json")
    assert result.exit_code == 0, result.output
    assert out["lr"] == pytest.approx(1.6325e-3, rel=1e-4)
    assert out["batch_tokens"] == pytest.approx(1.10772e6, rel=1e-4)
    assert out["batch_sequences"] == pytest.approx(out["batch_tokens"] / 2048)
    assert out["lr_interval"][0] < out["lr"] < out["lr_interval"][1]
    assert out["weight_decay"] == pytest.approx(out["batch_tokens"] / (out["lr"] * 0.2 * 1e11))
    _, ds = run("hparams", "predict", "--law", "deepseek", "--params", "1e9", "--tokens", "2e10",
                "--json")
    assert ds["lr_interval"] is None and ds["interval_source"].startswith("no interval")
    save = tmp_path / "hp.json"
    run("hparams", "fit", grid_csv, "--bootstrap", 50, "--save", save)
    result, fitted = run("hparams", "predict", "--law", save, "--params", "4e8", "--tokens",
                         "2e10", "--json")
    assert result.exit_code == 0, result.output
    assert fitted["lr_interval"] is not None and fitted["warnings"] == []


def test_evaluate_json_lists_each_law(grid_csv):
    result, out = run("hparams", "evaluate", grid_csv, "--law", "steplaw", "--law", "deepseek",
                      "--holdout-groups", 3, "--json")
    assert result.exit_code == 0, result.output
    laws = [r["law"] for r in out["summary"]]
    assert laws == ["steplaw", "deepseek", "fitted-threshold", "fitted-surface"]
    for r in out["summary"]:
        assert set(r) >= {"mean_surface", "max_surface", "mean_cubic", "max_cubic",
                          "mean_nearest", "max_nearest"}
    assert len(out["groups"]) == 4 * 9


def test_plateau_json_for_one_group(grid_csv):
    result, out = run("hparams", "plateau", grid_csv, "--params", "4e8", "--tokens", "2e10",
                      "--json")
    assert result.exit_code == 0, result.output
    lo, hi = out["plateau"]["lr"]
    assert lo < out["optimum"]["lr"] < hi
    assert out["N"] == 4e8


def test_tau_fit_recovers_a_power_law_in_tokens_per_parameter(tmp_path):
    rows = []
    for N, D in ((1e8, 2e9), (1e8, 1e10), (4e8, 4e9), (4e8, 4e10), (1e9, 2e11)):
        tpp, B, lr = D / N, 5e5, 1e-3
        tau_opt = 0.8 * tpp ** -0.5
        for wd in np.geomspace(0.01, 3.0, 15):
            tau = B / (lr * wd * D)
            rows.append({"N": N, "D": D, "lr": lr, "batch_tokens": B, "weight_decay": wd,
                         "loss": 3.0 * (1 + 0.01 * np.log(tau / tau_opt) ** 2)})
    rows.append({"N": 1e8, "D": 2e9, "lr": 1e-3, "batch_tokens": 5e5, "weight_decay": 0.0,
                 "loss": 3.2})
    path = tmp_path / "wd.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    result, out = run("hparams", "tau", path, "--bootstrap", 100, "--json")
    assert result.exit_code == 0, result.output
    assert out["params"]["coef_TPP"] == pytest.approx(-0.5, abs=1e-6)
    assert out["prefactor"] == pytest.approx(0.8, rel=1e-6)
    assert any("weight_decay = 0" in w for w in out["warnings"])


def test_transfer_json():
    result, out = run("hparams", "transfer", "--lr", 3e-4, "--from-batch", "0.5M",
                      "--to-batch", "2M", "--json")
    assert result.exit_code == 0, result.output
    assert out["lr"] == pytest.approx(6e-4)
    _, sgd = run("hparams", "transfer", "--lr", 0.1, "--from-batch", 256, "--to-batch", 1024,
                 "--optimizer", "sgd", "--json")
    assert sgd["lr"] == pytest.approx(0.4)


def test_bad_cell_names_file_row_and_column(grid_csv):
    df = pd.read_csv(grid_csv)
    df["lr"] = df["lr"].astype(object)
    df.loc[2, "lr"] = "fast"
    bad = grid_csv.with_name("bad.csv")
    df.to_csv(bad, index=False)
    result, _ = run("hparams", "fit", bad, "--json")
    assert result.exit_code == 2
    assert "bad.csv" in result.output and "row 3" in result.output and "'lr'" in result.output
    assert "Traceback" not in result.output


def test_missing_column_and_missing_file_exit_2(grid_csv, tmp_path):
    df = pd.read_csv(grid_csv).drop(columns=["bs"])
    path = tmp_path / "nobatch.csv"
    df.to_csv(path, index=False)
    result, _ = run("hparams", "fit", path)
    assert result.exit_code == 2 and "nobatch.csv" in result.output and "batch" in result.output
    result, _ = run("hparams", "fit", tmp_path / "absent.csv")
    assert result.exit_code == 2 and "absent.csv" in result.output
    result, _ = run("hparams", "predict", "--law", "nosuchlaw", "--params", 1e9, "--tokens", 1e10)
    assert result.exit_code == 2 and "nosuchlaw" in result.output


@pytest.mark.parametrize("cmd", ["fit", "predict", "evaluate", "plateau", "tau", "transfer"])
def test_every_command_help_has_an_example(cmd):
    result = runner.invoke(app, ["hparams", cmd, "--help"])
    assert result.exit_code == 0
    assert "Example: scalinglab hparams " + cmd in result.output


def test_a_grid_sweep_in_the_store_reaches_a_fitted_law(tmp_path):
    """`sweep plan grid` writes runs to a store; `hparams fit|evaluate|plateau --store` read them."""
    from scalinglab.runs.store import RunStore

    grid = synthetic_grid(noise=3e-4, seed=0)
    store = tmp_path / "runs.duckdb"
    RunStore(store).import_frame(grid.assign(tags=[{"sweep": "grid"}] * len(grid)), source="grid")
    RunStore(store).import_frame(pd.DataFrame({"N": [1e9], "D": [2e10], "loss": [2.5],
                                               "tags": [{"sweep": "other"}]}), source="other")
    csv = tmp_path / "grid.csv"
    grid.to_csv(csv, index=False)
    _, from_file = run("hparams", "fit", csv, "--bootstrap", 0, "--json")
    result, from_store = run("hparams", "fit", "--store", store, "--tag", "sweep=grid",
                             "--bootstrap", 0, "--json")
    assert result.exit_code == 0, result.output
    assert from_store["lr"] == pytest.approx(from_file["lr"], rel=1e-9)
    assert from_store["n_runs"] == from_file["n_runs"] and from_store["run_ids"][0].startswith("r-")
    result, _ = run("hparams", "plateau", "--store", store, "--tag", "sweep:grid", "--json")
    assert result.exit_code == 0, result.output
    result, _ = run("hparams", "evaluate", "--store", store, "--tag", "sweep=grid", "--refit",
                    "none", "--json")
    assert result.exit_code == 0, result.output
    result, _ = run("hparams", "fit", csv, "--store", store)
    assert result.exit_code == 2 and "not both" in result.output
