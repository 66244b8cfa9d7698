"""The dashboard's HTTP API: answers, and bad requests answered with a clear message and the
right status (400 malformed, 404 unknown, 422 not fittable, 503 store busy), never a trace."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from report_synth import make_store

from scalinglab.report import server

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "runs.duckdb")


@pytest.fixture(scope="module")
def client(store_path: Path) -> TestClient:
    app = server.create_app(store_path, bootstrap=20)
    return TestClient(app, raise_server_exceptions=False)


def detail(response) -> str:
    body = response.json()
    assert set(body) == {"detail"}
    assert "Traceback" not in body["detail"]
    return body["detail"]


def test_the_page_is_served_with_no_external_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and "scalinglab dashboard" in page.text
    assert "http://" not in page.text and "https://" not in page.text


def test_summary_lists_counts_tags_laws_and_grids(client):
    s = client.get("/api/summary").json()
    assert s["counts"] == {"finished": 77, "failed": 1}
    assert s["tags"]["sweep"] == ["hparams", "isoflop"]
    assert "chinchilla" in s["laws"] and "hoffmann2022" in s["published_laws"]
    assert len(s["grids"]) == 1


def test_runs_filter_by_tag_and_status(client):
    assert client.get("/api/runs").json()["count"] == 77
    assert client.get("/api/runs", params={"tag": "sweep:hparams"}).json()["count"] == 42
    both = client.get("/api/runs", params=[("tag", "sweep:isoflop"), ("tag", "dataset:synthetic")])
    assert both.json()["count"] == 35
    failed = client.get("/api/runs", params={"status": "failed"}).json()
    assert [r["error"] for r in failed["runs"]] == ["CUDA out of memory"]


def test_one_run_with_its_curve(client):
    rid = client.get("/api/runs", params={"tag": "sweep:isoflop"}).json()["runs"][0]["run_id"]
    body = client.get(f"/api/runs/{rid}").json()
    assert body["run"]["run_id"] == rid and len(body["curve"]["loss"]) == 40


@pytest.mark.parametrize(("url", "params", "status", "says"), [
    ("/api/runs", {"tag": "dataset"}, 400, "KEY:VALUE"),
    ("/api/runs", {"status": "exploded"}, 400, "status"),
    ("/api/runs/no-such-run", {}, 404, "no run 'no-such-run'"),
    ("/api/fit", {"law": "moore"}, 400, "unknown law 'moore'"),
    ("/api/fit", {"bootstrap": "many"}, 400, "bootstrap"),
    ("/api/plan", {"compute": "lots"}, 400, "compute"),
    ("/api/plan", {"compute": "-1"}, 400, "compute"),
    ("/api/plan", {}, 400, "compute"),
    ("/api/figures/nonsense.png", {}, 404, "no figure 'nonsense'"),
    ("/api/figures/loss.gif", {}, 404, ".png or .svg"),
    ("/api/figures/curves.png", {"run_id": "ghost"}, 404, "no run 'ghost'"),
    ("/api/figures/heatmap.png", {"tag": "sweep:isoflop"}, 422, "no lr × batch grid"),
    ("/api/figures/heatmap.png", {"N": 1e12, "D": 1e9}, 422, "no runs with lr and batch at"),
    ("/api/figures/bootstrap.png", {"tag": "sweep:isoflop", "bootstrap": 0}, 422,
     "no bootstrap draws"),
    ("/api/nothing-here", {}, 404, "Not Found"),
])
def test_bad_requests_get_a_clear_message_and_status(client, url, params, status, says):
    response = client.get(url, params=params)
    assert response.status_code == status
    assert says in detail(response)


def test_a_fit_gives_estimates_with_bootstrap_intervals(client):
    body = client.get("/api/fit", params={"tag": "sweep:isoflop", "bootstrap": 20}).json()
    fit = body["fit"]
    assert fit["law"] == "chinchilla" and fit["n_runs"] == 35 and fit["n_bootstrap"] == 20
    lo, hi = fit["ci"]["alpha"]
    assert lo <= fit["params"]["alpha"] <= hi and 0.25 < fit["params"]["alpha"] < 0.45
    assert body["summary"].startswith("E = ")


@pytest.mark.parametrize(("params", "says"), [
    ({"tag": "sweep:hparams"}, "not identifiable: 1 runs cannot identify the chinchilla law"),
    ({"tag": "sweep:none-such"}, "no finished runs match this filter"),
    ({"holdout": 500}, "holdout"),
])
def test_a_fit_the_runs_cannot_support_is_422_with_the_reason(client, params, says):
    response = client.get("/api/fit", params={"bootstrap": 0, **params})
    assert response.status_code == 422
    assert says in detail(response)


def test_the_plan_follows_the_fit_with_its_interval(client):
    plan = client.get("/api/plan", params={"compute": 1e21, "tag": "sweep:isoflop",
                                           "bootstrap": 20}).json()
    assert plan["loss_law"]["label"] == "chinchilla (fitted)"
    lo, hi = plan["loss_interval"]
    assert lo < plan["loss"] < hi
    assert any("extrapolating" in w for w in plan["warnings"])


def test_fit_figures_render_after_a_fit(client):
    for name in ("loss", "residuals", "bootstrap"):
        png = client.get(f"/api/figures/{name}.png", params={"tag": "sweep:isoflop",
                                                              "bootstrap": 20})
        assert png.status_code == 200 and png.content.startswith(PNG_MAGIC), name


def test_a_plan_with_a_published_law_needs_no_fit(client):
    plan = client.get("/api/plan", params={"compute": 1e21, "law": "hoffmann2022"}).json()
    assert plan["loss_law"]["label"] == "hoffmann2022"
    assert 6 * plan["N"] * plan["D"] == pytest.approx(1e21, rel=1e-6)
    # one (N, D) grid cannot identify an lr law, so Step Law supplies lr and batch
    assert plan["hparams_law"]["name"] == "steplaw"


def test_figures_come_as_png_and_svg(client):
    png = client.get("/api/figures/heatmap.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(PNG_MAGIC)
    rid = client.get("/api/runs", params={"tag": "sweep:isoflop"}).json()["runs"][0]["run_id"]
    svg = client.get("/api/figures/curves.svg", params={"run_id": rid})
    assert svg.status_code == 200 and "<svg" in svg.text


def test_an_unknown_store_is_refused_up_front(tmp_path):
    with pytest.raises(Exception, match="no run store here"):
        server.create_app(tmp_path / "missing.duckdb")


def test_a_store_held_by_a_writer_answers_503_then_recovers(tmp_path, monkeypatch):
    path = make_store(tmp_path / "busy.duckdb")
    monkeypatch.setattr(server, "LOCK_WAIT_S", 0.3)
    client = TestClient(server.create_app(path), raise_server_exceptions=False)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        time.sleep(3)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        busy = client.get("/api/runs")
        assert busy.status_code == 503
        assert "busy" in detail(busy) and "retry" in detail(busy)
    finally:
        holder.wait(timeout=20)
    time.sleep(0.1)
    assert client.get("/api/runs").json()["count"] == 77
