"""`scalinglab fit downstream`, `fit benchmark` and `predict downstream` as a user types them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.downstream import EXP_LINK, LinkTable
from scalinglab.laws.loss import CHINCHILLA

runner = CliRunner()
TRUE_LOSS = {"E": 1.8, "A": 400.0, "B": 1200.0, "alpha": 0.34, "beta": 0.30}


def invoke(*args: str):
    return runner.invoke(app, list(args))


def flat(res) -> str:
    return " ".join(res.output.replace("│", " ").split())


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    """Runs with N, D, a loss from a Chinchilla law and two task errors from Gadre-style links."""
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 4e8, 5), 4)
    D = N * np.tile([10.0, 20.0, 40.0, 80.0], 5)
    loss = CHINCHILLA(TRUE_LOSS, N=N, D=D) * np.exp(rng.normal(0, 0.005, len(N)))
    err_a = EXP_LINK.law({"eps": 0.8, "k": 2.0, "gamma": 0.7}, L=loss) + rng.normal(0, 0.003, len(N))
    err_b = EXP_LINK.law({"eps": 0.7, "k": 1.5, "gamma": 0.9}, L=loss) + rng.normal(0, 0.003, len(N))
    frame = pd.DataFrame({"model": [f"m{i}" for i in range(len(N))], "N": N, "D": D, "loss": loss,
                          "err_a": err_a, "err_b": err_b, "acc": 1 - err_a})
    path = tmp_path_factory.mktemp("ds") / "runs.csv"
    frame.to_csv(path, index=False)
    return path


def test_every_command_has_an_example():
    for args in (("fit", "downstream"), ("fit", "benchmark"), ("predict", "downstream")):
        res = invoke(*args, "--help")
        assert res.exit_code == 0 and "Example: scalinglab " + " ".join(args) in flat(res)


def test_fit_downstream_many_metrics_one_table_then_predict_through_a_saved_loss_law(runs_csv, tmp_path):
    link = tmp_path / "link.json"
    res = invoke("fit", "downstream", str(runs_csv), "--metric", "err_*", "--loss", "loss",
                 "--bootstrap", "40", "--save", str(link), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["kind"] == "link_table" and set(out["fits"]) == {"err_a", "err_b"}
    fa = out["fits"]["err_a"]
    assert fa["params"]["k"] == pytest.approx(2.0, rel=0.2) and fa["run_ids"][0] == "m0"
    saved = LinkTable.from_dict(json.loads(link.read_text()))
    assert saved["err_a"].draws.shape == (40, 3)

    fit = tmp_path / "fit.json"
    res = invoke("fit", "chinchilla", str(runs_csv), "--bootstrap", "30", "--save", str(fit), "--json")
    assert res.exit_code == 0, res.output
    res = invoke("predict", "downstream", "--loss-law", str(fit), "--link", str(link),
                 "--params", "1e9,2e9", "--tokens", "2e10", "--json")
    assert res.exit_code == 0, res.output
    pred = json.loads(res.stdout)
    assert pred["kind"] == "downstream_prediction" and pred["n_draws"] == 40
    assert [p["N"] for p in pred["points"]] == [1e9, 2e9] and [p["D"] for p in pred["points"]] == [2e10, 2e10]
    m = pred["points"][0]["metrics"]["err_b"]
    assert m["value"]["ci"][0] <= m["value"]["value"] <= m["value"]["ci"][1]
    assert set(m) == {"value", "curve", "loss_law_only", "link_only"}
    # tables for people
    res = invoke("predict", "downstream", "--loss-law", str(fit), "--link", str(link), "-N", "1e9", "-D", "2e10")
    assert res.exit_code == 0 and "predicted metrics" in res.output and "err_a" in res.output


def test_a_published_loss_law_by_name(runs_csv, tmp_path):
    link = tmp_path / "link.json"
    assert invoke("fit", "downstream", str(runs_csv), "--metric", "err_a", "--bootstrap", "20",
                  "--save", str(link)).exit_code == 0
    res = invoke("predict", "downstream", "--loss-law", "hoffmann2022", "--link", str(link),
                 "--params", "7e9", "--tokens", "1.4e11", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["loss_law"] == "hoffmann2022"


def test_sigmoid_link_with_a_fixed_floor_and_a_where_filter(runs_csv):
    res = invoke("fit", "downstream", str(runs_csv), "--metric", "acc", "--link", "sigmoid", "--floor", "0",
                 "--ceiling", "1", "--where", "N > 2e7", "--bootstrap", "20", "--json")
    assert res.exit_code == 0, res.output
    fit = json.loads(res.stdout)["fits"]["acc"]
    assert fit["fixed"] == {"lo": 0.0, "hi": 1.0} and fit["n_points"] == 16


@pytest.mark.parametrize(("args", "message"), [
    (["--metric", "err_x"], "no column matches 'err_x'"),
    (["--metric", "err_a", "--loss", "los"], "no column 'los' (did you mean 'loss'?)"),
    (["--metric", "err_a", "--link", "probit"], "--link must be one of exp, sigmoid"),
    (["--metric", "err_a", "--floor", "0.2"], "--floor and --ceiling apply to --link sigmoid only"),
    (["--metric", "err_a", "--where", "N >>> 3"], "invalid --where expression"),
    (["--metric", "err_a", "--where", "N < 0"], "no row satisfies"),
])
def test_fit_downstream_errors_are_one_line(runs_csv, args, message):
    res = invoke("fit", "downstream", str(runs_csv), *args)
    assert res.exit_code == 2 and message in flat(res)
    assert "Traceback" not in res.output


def test_bad_cells_and_bad_files_name_file_row_and_column(tmp_path, runs_csv):
    bad = tmp_path / "bad.csv"
    bad.write_text("model,loss,err\nm0,3.1,0.6\nm1,oops,0.5\nm2,2.9,0.4\nm3,2.7,0.3\nm4,2.5,0.25\n")
    res = invoke("fit", "downstream", str(bad), "--metric", "err")
    assert res.exit_code == 2 and f"{bad}: row 2 (line 3), column 'loss': 'oops' is not a number" in flat(res)
    not_link = tmp_path / "nolink.json"
    not_link.write_text('{"kind": "loss_fit"}')
    res = invoke("predict", "downstream", "--loss-law", "hoffmann2022", "--link", str(not_link),
                 "--params", "1e9", "--tokens", "1e10")
    assert res.exit_code == 2 and "not a saved link" in flat(res)
    res = invoke("predict", "downstream", "--loss-law", "nosuch", "--link", str(not_link),
                 "--params", "1e9", "--tokens", "1e10")
    assert res.exit_code == 2 and "no such file, and not a published law" in flat(res)
    res = invoke("predict", "downstream", "--loss-law", "hoffmann2022", "--link", str(not_link),
                 "--params", "1e9,2e9,3e9", "--tokens", "1e10,2e10")
    assert res.exit_code == 2 and "3 values of --params but 2 of --tokens" in flat(res)


@pytest.fixture(scope="module")
def evals_csv(tmp_path_factory):
    """Public-model-like table: families, FLOPs in units of 1e21, six benchmarks."""
    rng = np.random.default_rng(1)
    offsets = {"A": 0.0, "B": 0.8, "C": -0.5}
    rows = []
    for fam, off in offsets.items():
        for logc in rng.uniform(20.5, 24.5, 10):
            z = logc + off
            row = {"Model": f"{fam}-{logc:.2f}", "Family": fam, "FLOPs (1E21)": 10 ** logc / 1e21}
            for j, mid in enumerate([21.5, 22.0, 22.5, 23.0, 23.5, 24.0]):
                row[f"b{j}"] = 0.25 + 0.75 * expit(0.6 * (z - mid)) + rng.normal(0, 0.01)
            rows.append(row)
    rows[0]["FLOPs (1E21)"] = ""  # a model without a compute figure
    path = tmp_path_factory.mktemp("bench") / "evals.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_fit_benchmark_with_a_cut_off_and_families(evals_csv, tmp_path):
    save = tmp_path / "bench.json"
    res = invoke("fit", "benchmark", str(evals_csv), "--metric", "b*", "--compute", "FLOPs (1E21)",
                 "--compute-scale", "1e21", "--chance", "0.25", "--fit-below", "1e23",
                 "--family", "Family", "--components", "2", "--bootstrap", "30", "--save", str(save),
                 "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["kind"] == "benchmark_table" and set(out["fits"]) == {f"b{j}" for j in range(6)}
    b3 = out["fits"]["b3"]
    assert b3["link"]["fixed"] == {"lo": 0.25, "hi": 1.0} and b3["test"] and b3["mae"]["value"] > 0
    assert b3["n_without_compute"] == 1
    obs = out["observational"]["b3"]
    assert obs["mae_scores"]["value"] < obs["mae_baseline"]["value"]
    assert set(obs["families"]) == {"A", "B", "C"}
    res = invoke("fit", "benchmark", str(evals_csv), "--metric", "b*", "--compute", "FLOPs (1E21)",
                 "--compute-scale", "1e21", "--chance", "b0=fit", "--fit-below", "1e23",
                 "--bootstrap", "10")
    assert res.exit_code == 0 and "benchmark vs compute" in res.output


@pytest.mark.parametrize(("args", "message"), [
    (["--chance", "zz=0.2"], "--chance names ['zz']"),
    (["--chance", "abc"], "--chance 'abc': give a number"),
    (["--family", "Family", "--components", "6"], "--family needs at least 7 metrics"),
    (["--fit-below", "1e10"], "no metric could be fitted"),
])
def test_fit_benchmark_errors_are_one_line(evals_csv, args, message):
    res = invoke("fit", "benchmark", str(evals_csv), "--metric", "b*", "--compute", "FLOPs (1E21)",
                 "--compute-scale", "1e21", "--bootstrap", "5", *args)
    assert res.exit_code == 2 and message in flat(res), res.output
