"""Loss-curve laws where people look: the dashboard's forecast band past a running run's last
logged step (served, and in headless Chromium), the report's "curves" section, a saved curve
fit in the report."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from scalinglab.fit.curves import store_schedule
from scalinglab.laws.curves import MultiPowerLaw
from scalinglab.report import server
from scalinglab.runs.store import RunStore

LOCAL = "http://127.0.0.1:8765"
TRUTH = {"L0": 3.0, "A": 0.55, "alpha": 0.45, "B": 450.0, "C": 2.0, "beta": 0.55, "gamma": 0.6}


def sweep_run(run_id: str, steps: int, upto: int, status: str, rng: np.random.Generator,
              lr: float = 3e-4) -> tuple[dict, pd.DataFrame]:
    """A sweep-like record (extra: steps, schedule) with a noisy multi-power curve to ``upto``."""
    rec = {"run_id": run_id, "N": 5e7, "D": steps * 65536.0, "lr": lr, "status": status,
           "loss": np.nan if status != "finished" else None, "batch_tokens": 65536.0,
           "extra": {"steps": steps, "schedule": "cosine"}, "tags": {"dataset": "synthetic"}}
    sched = store_schedule(rec)
    assert sched is not None
    at = np.arange(sched.peak_step + 50, upto, 50)
    loss = MultiPowerLaw().value(TRUTH, sched, at) * np.exp(5e-4 * rng.standard_normal(at.size))
    if status == "finished":
        rec["loss"] = float(loss[-1])
    else:
        rec.pop("loss")
    return rec, pd.DataFrame({"step": at, "tokens": at * 65536.0, "loss": loss})


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("curves") / "runs.duckdb"
    with RunStore(path) as store:
        for rid, steps, upto, status in (("short", 4000, 4000, "finished"),
                                         ("mid", 6000, 6000, "finished"),
                                         ("long", 8000, 8000, "finished"),
                                         ("live", 10000, 4500, "running")):
            rec, curve = sweep_run(rid, steps, upto, status, rng)
            store.add_run(rec, curve)
    return path


def test_served_curves_carry_a_forecast_band_past_the_last_logged_step(store_path: Path) -> None:
    client = TestClient(server.create_app(store_path, bootstrap=20), base_url=LOCAL)
    spec = client.get("/api/charts/curves", params=[("run_id", "live"), ("x", "step")]).json()
    band = [t for t in spec["data"] if t.get("fill") == "tonexty"]
    line = [t for t in spec["data"] if (t.get("meta") or {}).get("forecast")]
    assert len(band) == 1 and len(line) == 1
    (meta,) = spec["layout"]["meta"]["forecasts"]
    assert meta["run_id"] == "live" and meta["logged_step"] < 4500 and meta["last_step"] == 9999
    assert min(line[0]["x"]) >= meta["logged_step"] and max(line[0]["x"]) == 9999
    truth = MultiPowerLaw().value(TRUTH, store_schedule({"lr": 3e-4, "extra": {
        "steps": 10000, "schedule": "cosine"}}), [9999])[0]
    assert meta["lo"] < meta["loss"] < meta["hi"]
    assert abs(meta["loss"] / truth - 1) < 0.01  # 55% of a run forecasts its end within 1%
    # finished runs get none
    done = client.get("/api/charts/curves", params=[("run_id", "long")]).json()
    assert "forecasts" not in done["layout"].get("meta", {})


def test_report_has_a_curves_section_with_a_held_out_schedule(store_path: Path) -> None:
    from scalinglab.report import analysis
    from scalinglab.report.curve_report import curves_section

    s = analysis.summarise(RunStore(store_path, read_only=True), bootstrap=0)
    section = curves_section(s, RunStore(store_path, read_only=True))
    assert section is not None and section.title == "Loss curves across lr schedules"
    held = section.parts[1]  # the held-out table: the longest finished run, predicted
    assert "held-out schedule" in held and "long" in held
    mean_error = float(held.split("%")[0].rsplit(">", 1)[-1])
    assert mean_error < 0.5  # percent, on a 8,000-step run from 4,000- and 6,000-step ones
    assert [c.name for c in section.charts()] == ["curves_law_curves", "curves_law_residuals"]
    assert section.charts()[0].spec()["data"]


def test_saved_curve_fit_becomes_a_report_section(tmp_path: Path) -> None:
    from scalinglab.fit.curves import fit_curves
    from scalinglab.laws.schedules import Schedule, cosine
    from scalinglab.report.saved import load_saved, saved_sections

    rng = np.random.default_rng(1)
    law = MultiPowerLaw()
    rows = []
    for name, lr in {"a": cosine(6000, 3e-4, 3e-5, 500), "b": cosine(6000, 3e-4, 3e-4, 500),
                     "c": np.where(np.arange(5000) < 2500, 3e-4, 9e-5)}.items():
        lr = np.asarray(lr, dtype=float)
        lr[:500] = 3e-4 * np.arange(500) / 500
        st = np.arange(550, lr.size, 50)
        rows.append(pd.DataFrame({"run": name, "step": st, "lr": lr[st], "loss": law.value(
            TRUTH, Schedule(lr), st) * np.exp(5e-4 * rng.standard_normal(st.size))}))
    fit = fit_curves(pd.concat(rows), bootstrap=10)
    path = fit.save(tmp_path / "fit.json")
    (sec,) = saved_sections(load_saved([path]))
    assert "multi-power" in sec.title
    names = [c.name for c in sec.charts()]
    assert names == ["result1_curve_fit_curves", "result1_curve_fit_residuals"]
    spec = sec.charts()[0].spec()
    assert any(t.get("name") == "a (fitted)" for t in spec["data"])


# -- the band in a browser ----------------------------------------------------------------------

CHROMIUM = os.environ.get("SCALINGLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")
def test_dashboard_draws_the_forecast_band_in_a_browser(store_path: Path, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    import socket

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    srv = uvicorn.Server(uvicorn.Config(server.create_app(store_path, bootstrap=10),
                                        host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        with sync_api.sync_playwright() as pw:
            try:
                browser = pw.chromium.launch(executable_path=CHROMIUM,
                                             args=["--headless", "--no-sandbox"])
            except sync_api.Error as exc:
                pytest.skip(f"Chromium does not start here: {exc}")
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{port}/?run=live&x=step")
            # the overlay is drawn, with the band (a filled trace) and the dashed forecast line
            page.wait_for_function(
                "() => { const el = document.getElementById('chart-curves'); return el && el.data "
                "&& el.data.some(t => t.fill === 'tonexty') && el.querySelector('.main-svg'); }")
            got = page.evaluate(
                "() => { const el = document.getElementById('chart-curves'); "
                "const line = el.data.find(t => t.meta && t.meta.forecast); "
                "const run = el.data.find(t => t.legendgroup === 'live' && !t.fill && "
                "!(t.meta && t.meta.forecast) && t.mode === 'lines'); "
                "return {lineX: line.x, runX: run.x, dash: line.line.dash, "
                "fills: el.querySelectorAll('.scatterlayer .js-fill').length, "
                "meta: el.layout.meta.forecasts}; }")
            page.screenshot(path=str(tmp_path / "forecast_band.png"))
            browser.close()
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
    assert not errors, errors
    assert got["dash"] == "dash" and got["fills"] >= 1
    assert min(got["lineX"]) >= max(got["runX"]) - 1  # the band starts where the log stops
    assert max(got["lineX"]) == 9999 and got["meta"][0]["run_id"] == "live"


def test_runs_forecast_and_fit_curves_from_the_store(store_path: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from scalinglab.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["runs", "--forecast", "--store", str(store_path), "--json"])
    assert res.exit_code == 0, res.output
    (live,) = json.loads(res.output)
    truth = MultiPowerLaw().value(TRUTH, store_schedule({"lr": 3e-4, "extra": {
        "steps": 10000, "schedule": "cosine"}}), [9999])[0]
    assert live["run_id"] == "live" and live["last_step"] == 9999
    assert live["lo"] < live["loss"] < live["hi"] and abs(live["loss"] / truth - 1) < 0.01
    # the shape from the finished runs' fit, the level from the run itself
    saved = tmp_path / "fit.json"
    res = runner.invoke(app, ["fit", "curves", "--store", str(store_path), "--where",
                              "status = 'finished'", "-b", "20", "--save", str(saved)])
    assert res.exit_code == 0, res.output
    assert "short" in res.output and "long" in res.output and "exact" in res.output
    res = runner.invoke(app, ["runs", "--forecast", "--fit", str(saved), "--store",
                              str(store_path), "--json"])
    assert res.exit_code == 0, res.output
    (with_fit,) = json.loads(res.output)
    assert "level fitted to this run" in with_fit["note"]
    assert abs(with_fit["loss"] / truth - 1) < 0.005
    assert with_fit["lo"] <= with_fit["loss"] <= with_fit["hi"]


def test_runs_forecast_alone_says_how_to_narrow_it(store_path: Path, tmp_path: Path) -> None:
    """Forecast from a run's own curve, the table ends with the next step (fit finished runs,
    pass --fit); with --fit given, or as JSON, it does not."""
    from typer.testing import CliRunner

    from scalinglab.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["runs", "--forecast", "--store", str(store_path)])
    assert res.exit_code == 0, res.output
    assert "forecast final loss of 1 unfinished run in" in res.output
    assert "pass --fit fit.json" in res.output
    res = runner.invoke(app, ["runs", "--forecast", "--store", str(store_path), "--json"])
    assert "--fit" not in res.output
