"""A sweep in progress, seen from the dashboard: the runner keeps where it stands in the store
(runs done / planned, running, failed, elapsed, ETA), and ``serve`` shows it in its header."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from scalinglab.report import server
from scalinglab.runs.store import RunStore
from scalinglab.sweep.progress import RunFinished, RunStarted, RunStep, SweepStarted, fold, snapshot

LOCAL = "http://127.0.0.1:8765"


def halfway():
    """Three runs of 6,000, 12,000 and 18,000 FLOPs: the first done in 10 s, the second half
    trained at 15 s (12,000 FLOPs in 15 s: 24,000 left at 800/s, 30 s)."""
    return fold([SweepStarted(3, 0, 36_000.0, 0.0), RunStarted("a", 60.0, 100),
                 RunFinished("a", False, 6_000.0, 100), RunStarted("b", 60.0, 200),
                 RunStep("b", 100, 2.0)])


def test_a_snapshot_says_done_running_failed_and_the_eta():
    state = snapshot(halfway(), 15.0, "lr-sweep", now=1_700_000_000.0)
    assert {k: state[k] for k in ("name", "planned", "done", "running", "failed", "percent",
                                  "elapsed_s", "eta_s", "complete", "updated_at")} == {
        "name": "lr-sweep", "planned": 3, "done": 1, "running": 1, "failed": 0, "percent": 33,
        "elapsed_s": 15.0, "eta_s": 30.0, "complete": False, "updated_at": 1_700_000_000.0}
    assert state["line"].endswith("15s elapsed · eta 30s")


def test_the_store_keeps_the_last_sweeps_state_and_serve_reports_it(tmp_path):
    store = RunStore(tmp_path / "runs.duckdb")
    store.add_run({"N": 1e6, "D": 1e8, "loss": 3.0})
    assert store.sweep_progress() is None
    client = TestClient(server.create_app(store.path), base_url=LOCAL)
    assert client.get("/api/state").json()["sweep"] is None
    store.record_sweep(snapshot(halfway(), 15.0, "lr-sweep", now=time.time()))
    state = client.get("/api/state").json()["sweep"]
    assert (state["done"], state["planned"], state["running"], state["eta_s"]) == (1, 3, 1, 30.0)
    assert RunStore(store.path, read_only=True).sweep_progress() == state  # reads write nothing


@pytest.mark.slow
def test_the_dashboard_header_shows_the_sweep_and_its_eta(tmp_path):
    pytest.importorskip("playwright.sync_api")
    from test_dashboard_browser import CHROMIUM, open_page, serve

    if not __import__("pathlib").Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import expect, sync_playwright

    store = RunStore(tmp_path / "runs.duckdb")
    store.add_run({"N": 1e6, "D": 1e8, "loss": 3.0})
    store.record_sweep(snapshot(halfway(), 15.0, "lr-sweep", now=time.time()))
    url, srv, thread = serve(store.path)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=["--headless", "--no-sandbox"])
            page, errors = open_page(browser, url + "/?poll=300")
            header = page.locator("#sweep-meta")
            expect(header).to_contain_text("sweep lr-sweep: 1/3 done · 1 running · 0 failed · eta",
                                           timeout=60_000)
            store.record_sweep(snapshot(fold([SweepStarted(3, 0, 36_000.0, 0.0),
                                              *[RunFinished(r, False, 1.0, 1) for r in "abc"]]),
                                        40.0, "lr-sweep", now=time.time()))
            expect(header).to_have_text("sweep lr-sweep: 3/3 done · 0 running · 0 failed · "
                                        "complete", timeout=60_000)
            browser.close()
        assert not errors
    finally:
        srv.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)
