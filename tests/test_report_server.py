"""The dashboard's HTTP API: answers, and bad requests answered with a clear message and the
right status (400 malformed, 403 a foreign host name, 404 unknown, 422 not fittable, 503 store
busy), never a trace and never pydantic's wording; the work one request may ask for is bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from report_synth import make_store

from scalinglab.report import server
from scalinglab.runs.store import RunStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LOCAL = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "runs.duckdb")


@pytest.fixture(scope="module")
def client(store_path: Path) -> TestClient:
    app = server.create_app(store_path, bootstrap=20)
    return TestClient(app, raise_server_exceptions=False, base_url=LOCAL)


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
    ("/api/figures/parity.gif", {}, 404, ".png or .svg"),
    ("/api/charts/nonsense", {}, 404, "no chart 'nonsense'"),
    ("/api/plan", {"compute": "7X"}, 400, "compute '7X' is not a number (e.g. 1e21, 7B, 1.4T)"),
    ("/api/charts/curves", {"x": "seconds"}, 400, "x 'seconds' must be one of"),
    ("/api/charts/curves", {"smooth": "2"}, 400, "smooth '2' must be at most 0.99"),
    ("/api/compare", {}, 400, "pin at least one fit"),
    ("/api/compare", {"pin": "law=moore"}, 400, "unknown law 'moore'"),
    ("/api/figures/curves.png", {"run_id": "ghost"}, 404, "no run 'ghost'"),
    ("/api/figures/heatmap.png", {"tag": "sweep:isoflop"}, 422, "no lr × batch grid"),
    ("/api/figures/heatmap.png", {"N": 1e12, "D": 1e9}, 422, "no runs with lr and batch at"),
    ("/api/figures/corner.png", {"tag": "sweep:isoflop", "bootstrap": 0}, 422,
     "no bootstrap draws"),
    ("/api/nothing-here", {}, 404, "Not Found"),
])
def test_bad_requests_get_a_clear_message_and_status(client, url, params, status, says):
    response = client.get(url, params=params)
    assert response.status_code == status
    assert says in detail(response)
    assert "Input should" not in detail(response)  # pydantic's wording never reaches the page


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
    for name in ("parity", "residuals", "corner"):
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


def test_a_store_that_does_not_exist_yet_is_empty_until_it_appears(tmp_path):
    path = tmp_path / "later.duckdb"
    client = TestClient(server.create_app(path), base_url=LOCAL)
    state = client.get("/api/state").json()
    assert state["version"] == "absent" and state["counts"] == {} and not state["store_exists"]
    summary = client.get("/api/summary").json()
    assert summary["counts"] == {} and summary["grids"] == []
    table = client.get("/api/runs-table").json()
    assert table["count"] == 0 and table["rows"] == [] and not table["store_exists"]
    assert client.get("/api/runs").json()["count"] == 0
    assert client.get("/api/charts/overview").status_code == 200
    assert not path.exists()  # the dashboard only reads: it never creates the store
    make_store(path)
    state = client.get("/api/state").json()
    assert state["version"] != "absent" and state["counts"]["finished"] == 77
    assert client.get("/api/runs-table").json()["count"] == 77


def test_a_store_held_by_a_writer_answers_503_then_recovers(tmp_path, monkeypatch):
    path = make_store(tmp_path / "busy.duckdb")
    monkeypatch.setattr(server, "LOCK_WAIT_S", 0.3)
    client = TestClient(server.create_app(path), raise_server_exceptions=False, base_url=LOCAL)
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


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.nip.io", "192.168.1.5:8765"])
def test_a_foreign_host_name_is_refused(store_path, host):
    """DNS rebinding: a page on another origin that points its name at 127.0.0.1 gets nothing."""
    client = TestClient(server.create_app(store_path), base_url=f"http://{host}")
    response = client.get("/api/runs")
    assert response.status_code == 403
    assert "answers only for" in detail(response) and "--host" in detail(response)


def test_loopback_names_and_names_given_with_host_are_answered(store_path):
    for base in ("http://localhost:8765", "http://[::1]:8765", LOCAL):
        assert TestClient(server.create_app(store_path), base_url=base).get("/api/state").status_code == 200
    lan = server.create_app(store_path, allowed_hosts=["lab-box.lan"])
    assert TestClient(lan, base_url="http://lab-box.lan:8765").get("/api/state").status_code == 200


def test_the_work_one_request_can_ask_for_is_bounded(client):
    ids = [f"r{i}" for i in range(500)]
    response = client.get("/api/charts/curves", params=[("run_id", r) for r in ids])
    assert response.status_code == 400 and f"at most {server.MAX_CURVE_RUNS} runs" in detail(response)
    pins = [("pin", f"law=chinchilla&holdout={i}") for i in range(server.MAX_PINS + 1)]
    assert client.get("/api/compare", params=pins).status_code == 400
    assert client.get("/api/fit", params={"bootstrap": 1_000_000}).status_code == 400
    tags = [("tag", f"k{i}:v") for i in range(server.MAX_TAGS + 1)]
    assert "at most" in detail(client.get("/api/runs", params=tags))


def test_a_budget_is_read_as_the_cli_reads_it(client):
    plan = client.get("/api/plan", params={"compute": "1.4T", "law": "hoffmann2022"}).json()
    assert plan["train_flops"] == pytest.approx(1.4e12, rel=1e-6)
    assert "<table" in plan["html"] and "parameters N" in plan["html"]


def test_a_run_whose_id_holds_a_slash_can_be_opened(tmp_path):
    path = tmp_path / "slash.duckdb"
    with RunStore(path) as store:
        store.add_run({"run_id": "sweep/a/run 1", "N": 1e7, "D": 2e8, "loss": 3.2,
                       "extra": {"tokens_per_s": 1234.0}},
                      curve=pd.DataFrame({"step": [1, 2], "tokens": [1e6, 2e6], "loss": [4.0, 3.5]}))
    client = TestClient(server.create_app(path), base_url=LOCAL)
    for response in (client.get("/api/run", params={"id": "sweep/a/run 1"}),
                     client.get("/api/runs/sweep/a/run%201")):
        assert response.status_code == 200
        body = response.json()
        assert body["run"]["run_id"] == "sweep/a/run 1" and "throughput (tokens/s)" in body["html"]
        assert len(body["chart"]["data"]) == 2  # raw and smoothed


def test_charts_come_as_valid_plotly_specs_with_run_ids(client):
    go = pytest.importorskip("plotly.graph_objects")
    for name in server.CHARTS:
        response = client.get(f"/api/charts/{name}", params={"bootstrap": 20})
        assert response.status_code == 200, (name, response.text[:200])
        spec = response.json()
        go.Figure(spec)
    parity = client.get("/api/charts/parity", params={"bootstrap": 20}).json()
    ids = {c[0] for t in parity["data"] for c in t.get("customdata") or []}
    assert len(ids) >= 36


def test_pinned_fits_are_compared_side_by_side(client):
    body = client.get("/api/compare", params=[
        ("pin", "law=chinchilla&bootstrap=0"), ("pin", "law=kaplan&bootstrap=0&holdout=3"),
        ("compute", "1e21")]).json()
    html = body["html"]
    assert ">pin 1</th>" in html and ">pin 2</th>" in html
    assert ">chinchilla</td>" in html and ">kaplan</td>" in html
    assert "held-out mean |error|" in html and "N_opt at C = 1e+21" in html
    assert body["errors"] == [None, None]


def test_the_state_changes_when_a_run_lands(tmp_path):
    path = make_store(tmp_path / "live.duckdb")
    client = TestClient(server.create_app(path), base_url=LOCAL)
    before = client.get("/api/state").json()
    with RunStore(path) as store:
        store.add_run({"run_id": "new-run", "N": 3e7, "D": 6e8, "loss": 3.9})
    after = client.get("/api/state").json()
    assert after["version"] != before["version"]
    assert after["counts"]["finished"] == before["counts"]["finished"] + 1


def test_an_empty_store_gives_charts_that_say_so(tmp_path):
    path = tmp_path / "empty.duckdb"
    # a store with no finished run (a store file is only created by a first write)
    RunStore(path).add_run({"run_id": "crashed", "N": 1e6, "D": 1e8, "status": "failed",
                            "error": "CUDA out of memory"})
    client = TestClient(server.create_app(path), base_url=LOCAL)
    spec = client.get("/api/charts/overview").json()
    assert spec["data"] == [] and "no finished runs yet" in spec["layout"]["annotations"][0]["text"]
    assert client.get("/api/runs").json() == {"count": 0, "shown": 0, "runs": [], "html": ""}


def test_plotly_is_served_from_the_package(client):
    js = client.get("/static/plotly.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("application/javascript")
    assert len(js.content) > 1_000_000


def test_a_registered_section_reaches_the_dashboards_more_results(store_path):
    from scalinglab.report import charts, sections
    from scalinglab.summary import Summary, Table

    class Linked:
        def summary(self):
            t = Table("accuracy at loss", ["loss", "accuracy"])
            t.add_row(3.0, 0.41)
            return Summary(title="loss to accuracy", tables=[t])

    def downstream(summary, store):
        return sections.result_section(Linked(), id="downstream", title="Downstream", charts=[
            sections.Chart("link", "accuracy against loss", lambda: charts.series_chart(
                "accuracy", "loss", "accuracy", [{"name": "link", "x": [3.0, 2.5], "y": [0.41, 0.5]}]))])

    sections.register_section(downstream)
    try:
        body = TestClient(server.create_app(store_path), base_url=LOCAL).get(
            "/api/sections", params={"bootstrap": 0}).json()
    finally:
        sections._BUILDERS.remove(downstream)
    (sec,) = body["sections"]
    assert sec["title"] == "Downstream" and "loss to accuracy" in sec["html"]
    assert sec["charts"][0]["spec"]["data"][0]["name"] == "link"


def test_a_wall_time_axis_says_it_is_estimated_and_why_it_falls_back(tmp_path):
    # curves without a clock (no wall_s): their wall time is estimated, and said so
    path = tmp_path / "wall.duckdb"
    steps = list(range(1, 11))
    with RunStore(path) as s:
        for rid, extra in (("timed", {"wall_time_s": 50.0}), ("untimed", {})):
            curve = pd.DataFrame({"step": steps, "tokens": [st * 1000.0 for st in steps],
                                  "loss": [4 - st / 10 for st in steps]})
            s.add_run({"run_id": rid, "N": 1e6, "D": 1e4, "loss": 3.0, "extra": extra},
                      curve=curve)
    client = TestClient(server.create_app(path), raise_server_exceptions=False, base_url=LOCAL)
    one = client.get("/api/charts/curves", params={"run_id": "timed", "x": "wall"}).json()
    assert one["layout"]["meta"]["x_axis"] == "wall_estimated"
    assert "estimated for the run from tokens × mean throughput" in one["layout"]["meta"]["x_note"]
    assert "estimated" in one["layout"]["xaxis"]["title"]["text"]
    assert one["data"][0]["x"][-1] == pytest.approx(50.0)  # 10,000 tokens at 200 tokens/s
    both = client.get("/api/charts/curves", params=[("run_id", "timed"), ("run_id", "untimed"),
                                                     ("x", "wall")]).json()
    assert both["layout"]["meta"]["x_axis"] == "tokens"
    note = ("wall asked for, drawn against tokens: run untimed has no wall time logged along "
            "its curve and no wall_time_s recorded")
    assert both["layout"]["meta"]["x_note"].startswith(note)
    assert note in both["layout"]["title"]["text"]
    tokens = client.get("/api/charts/curves", params={"run_id": "timed"}).json()
    assert tokens["layout"]["meta"]["x_note"] == ""


def test_ticked_runs_without_a_curve_are_named_on_the_curve_chart(client, store_path):
    """Two runs ticked, one with a curve and one of the lr × batch grid (none recorded): the
    chart drew one line and said "Training loss of 1 run", leaving the other unexplained."""
    runs = RunStore(store_path, read_only=True).runs()
    with_curve = runs[runs["lr"].isna()]["run_id"].iloc[0]
    grid = runs[runs["lr"].notna()]["run_id"].tolist()
    spec = client.get("/api/charts/curves", params=[("run_id", with_curve), ("run_id", grid[0])]).json()
    assert {t["legendgroup"] for t in spec["data"]} == {with_curve}
    assert f"run {grid[0]} has no loss curve recorded" in spec["layout"]["title"]["text"]
    spec = client.get("/api/charts/curves", params=[("run_id", r) for r in [with_curve, *grid[:2]]]).json()
    assert "2 of the 3 runs ticked have no loss curve recorded" in spec["layout"]["title"]["text"]
    alone = client.get("/api/charts/curves", params={"run_id": with_curve}).json()
    assert "no loss curve" not in alone["layout"]["title"]["text"]
    # none at all: the empty chart says so, once
    none = client.get("/api/charts/curves", params={"run_id": grid[0]}).json()
    assert none["data"] == [] and "no loss curve recorded for this run" in json.dumps(none)
