"""The dashboard's filter in the ``--where`` language, its runs table data, and the states a
person meets: a filter the server refuses (said once), a fit that cannot be made (the raw
IsoFLOP profiles still drawn), a report without an lr × batch grid (a note, not an error)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from report_synth import isoflop_runs, make_store

from scalinglab.report import runs_table, server
from scalinglab.runs.store import RunStore

LOCAL = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory):
    return make_store(tmp_path_factory.mktemp("dash") / "runs.duckdb")


@pytest.fixture(scope="module")
def client(store_path):
    return TestClient(server.create_app(store_path, bootstrap=0), raise_server_exceptions=False,
                      base_url=LOCAL)


def test_the_filter_speaks_the_where_language_of_the_cli(client, store_path):
    every = RunStore(store_path, read_only=True).runs()
    where = "N > 1e8 AND tags->>'sweep' = 'isoflop'"
    d = client.get("/api/runs-table", params={"where": where}).json()
    want = every[(every["N"] > 1e8).to_numpy() & np.array([t.get("sweep") == "isoflop" for t in every["tags"]])]
    assert d["count"] == len(want) > 0
    assert sorted(r["run_id"] for r in d["rows"]) == sorted(want["run_id"])
    # the fit, the charts and the check all see the same runs
    assert client.get("/api/filter", params={"where": where}).json()["count"] == len(want)
    fit = client.get("/api/fit", params={"where": "tags->>'sweep' = 'isoflop'"}).json()
    assert fit["fit"]["n_runs"] == 35 and "(35 runs" in fit["title"]
    # tags in the older KEY:VALUE form still filter
    assert client.get("/api/runs-table", params={"tag": "sweep:hparams"}).json()["count"] == 42


def test_a_bad_filter_answers_one_sentence(client):
    r = client.get("/api/filter", params={"where": "N >> > 3"})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail.startswith("invalid where expression 'N >> > 3'") and "\n" not in detail
    r = client.get("/api/filter", params={"where": "params > 3"})
    assert r.status_code == 400 and "unknown column 'params'" in r.json()["detail"]


def test_imported_extra_columns_are_filter_columns(tmp_path):
    runs = isoflop_runs()
    runs["budget_flops"] = [float(f"{c:.1g}") for c in runs["C"]]
    path = tmp_path / "extras.duckdb"
    RunStore(path).import_frame(runs, source="x.csv")
    c = TestClient(server.create_app(path, bootstrap=0), base_url=LOCAL)
    d = c.get("/api/runs-table", params={"where": "budget_flops = 1e17"}).json()
    assert d["count"] == 7
    col = next(x for x in d["columns"] if x["key"] == "extra:budget_flops")
    assert col["kind"] == "num" and col["hidden"]


def test_the_runs_table_data_has_every_column_some_run_has(client):
    d = client.get("/api/runs-table", params={"status": "all"}).json()
    keys = [c["key"] for c in d["columns"]]
    assert keys[:4] == ["run_id", "status", "N", "D"]
    assert {"lr", "batch_tokens", "tags", "source", "error", "tag:dataset", "tag:sweep"} <= set(keys)
    crashed = next(r for r in d["rows"] if r["run_id"] == "crashed")
    assert crashed["status"] == "failed" and crashed["error"] == "CUDA out of memory"
    assert crashed["loss"] is None  # missing, not NaN, not "-"
    grid = next(r for r in d["rows"] if r["tags"].get("sweep") == "hparams")
    assert isinstance(grid["lr"], float) and isinstance(grid["N"], float)


def test_payload_of_no_runs_is_empty_but_well_formed():
    from scalinglab.report.dashboard_api import EmptyStore

    d = runs_table.payload(EmptyStore(None).runs())  # type: ignore[arg-type]
    assert d["rows"] == [] and [c["key"] for c in d["columns"]] == ["run_id", "status", "N", "D",
                                                                    "C", "loss"]


def test_an_impossible_isoflop_fit_still_draws_the_raw_profiles(client):
    # one budget: no IsoFLOP fit is possible, but the runs' profile is data worth seeing
    spec = client.get("/api/charts/isoflop", params={"where": "C < 2e16 AND tags->>'sweep' = "
                                                              "'isoflop'"})
    assert spec.status_code == 200
    spec = spec.json()
    assert "raw: no fit" in spec["layout"]["title"]["text"] and spec["fit_error"]
    points = [t for t in spec["data"] if t.get("mode") == "markers"]
    assert sum(len(t["x"]) for t in points) == 7


def test_a_report_without_an_lr_batch_grid_has_no_error_box(tmp_path):
    from scalinglab.report.html import build_report

    path = tmp_path / "iso.duckdb"
    RunStore(path).import_frame(isoflop_runs(), source="synthetic")
    html = build_report(path, tmp_path / "r.html", bootstrap=0).read_text()
    section = html.split('<section id="hparams">')[1].split("</section>")[0]
    assert 'class="error"' not in section and "No lr × batch grid in these runs" in section
    assert 'id="sl-tables"' in html and "SLRunsTable" in html


def test_the_default_plan_is_100x_the_largest_run():
    from scalinglab.report.analysis import default_budget

    assert default_budget(pd.DataFrame({"C": [1e16, 1.2e18]})) == pytest.approx(1e20)
    assert default_budget(pd.DataFrame({"C": [4e17]})) == pytest.approx(4e19)


def test_an_lr_batch_grid_gets_parallel_coordinates(client):
    spec = client.get("/api/charts-extra/parallel", params={"tag": "sweep:hparams"}).json()
    (trace,) = spec["data"]
    assert trace["type"] == "parcoords"
    labels = [d["label"] for d in trace["dimensions"]]
    assert labels == ["log10 lr", "log10 batch (tokens)", "loss"]  # one (N, D): not axes
    assert len(trace["dimensions"][0]["values"]) == 42
    none = client.get("/api/charts-extra/parallel", params={"tag": "sweep:isoflop"}).json()
    assert none["data"] == [] and "no lr × batch runs" in none["layout"]["annotations"][0]["text"]


def test_seeds_of_one_configuration_draw_as_mean_and_band(tmp_path):
    from report_synth import curve_for

    path = tmp_path / "seeds.duckdb"
    store = RunStore(path)
    finals = []
    for seed in range(3):
        curve = pd.DataFrame(curve_for(2e7, 4e8, seed=seed))
        curve["loss"] *= 1 + 0.01 * seed
        finals.append(float(curve["loss"].iloc[-1]))
        store.add_run({"run_id": f"s{seed}", "N": 2e7, "D": 4e8, "loss": finals[-1], "lr": 1e-3,
                       "tags": {"dataset": "x"}, "extra": {"seed": seed}}, curve=curve)
    store.add_run({"run_id": "other", "N": 4e7, "D": 4e8, "loss": 3.0, "lr": 1e-3,
                   "extra": {"seed": 0}}, curve=pd.DataFrame(curve_for(4e7, 4e8)))
    c = TestClient(server.create_app(path, bootstrap=0), base_url=LOCAL)
    spec = c.get("/api/charts-extra/seeds", params={"smooth": 0}).json()
    lo, hi, mean = spec["data"]  # one group of three seeds; the lone run is not a group
    assert mean["name"] == "N = 2e+07, D = 4e+08, lr 0.001 (3 seeds)" and hi["fill"] == "tonexty"
    assert mean["y"][-1] == pytest.approx(np.mean(finals), rel=1e-9)
    assert hi["y"][-1] - mean["y"][-1] == pytest.approx(np.std(finals, ddof=1), rel=1e-6)
    assert lo["y"][-1] < mean["y"][-1] < hi["y"][-1]


def test_pinned_fits_draw_their_law_over_the_runs(client):
    spec = client.get("/api/charts-extra/pinned",
                      params={"pin": ["law=chinchilla&bootstrap=0", "law=kaplan&bootstrap=0",
                                      "law=chinchilla&bootstrap=0&where=N < 0"]}).json()
    lines = {t["name"]: t for t in spec["data"] if t.get("mode") == "lines"}
    chin, kap = lines["pin 1: chinchilla"], lines["pin 2: kaplan"]
    for line in (chin, kap):
        y = np.asarray(line["y"], dtype=float)
        assert len(y) == 40 and np.isfinite(y).all() and (np.diff(y) < 0).all()  # more C, less loss
    assert chin["y"] != kap["y"]
    assert any(n.startswith("pin 3: chinchilla (not fitted: ") for n in lines)
    points = sum(len(t["x"]) for t in spec["data"] if t.get("mode") == "markers")
    assert points == 77  # every finished run under the laws
