"""The dashboard and the report as a person uses them: headless Chromium loads the page from a
real uvicorn server on 127.0.0.1 and sees charts without a click, hovers a point and reads its
run id, opens a run, pins two fits side by side, reopens the same view from its URL, and watches
a run that a separate process adds to the store appear; then opens the report file offline.

Screenshots are saved as test artefacts: under ``$SCALINGLAB_ARTEFACTS`` when set, else under
pytest's temporary directory (printed at the end). Skipped where Playwright or Chromium is not
installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

from report_synth import make_store  # noqa: E402

from scalinglab.report.server import create_app  # noqa: E402

CHROMIUM = os.environ.get("SCALINGLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SRC = Path(__file__).resolve().parents[1] / "src"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed"),
]
expect = sync_api.expect
expect.set_options(timeout=120_000)  # fits on a busy 2-core machine take seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    env = os.environ.get("SCALINGLAB_ARTEFACTS")
    path = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    yield path
    print(f"\nscreenshots in {path}")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("browser") / "runs.duckdb")


@pytest.fixture(scope="module")
def base_url(store: Path) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store, bootstrap=20), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the dashboard server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        except sync_api.Error as exc:
            pytest.skip(f"Chromium does not start here: {exc}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser: sync_api.Browser, base_url: str) -> Iterator[sync_api.Page]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(base_url) else None)
    page.goto(f"{base_url}/?poll=500&refit=1000")
    loaded(page)
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not outside, f"the page fetched from elsewhere: {outside}"


def loaded(page: sync_api.Page) -> None:
    page.wait_for_function("document.body.dataset.refreshed")


def drawn(page: sync_api.Page, chart: str) -> None:
    """A Plotly chart with at least one trace is on the page."""
    page.wait_for_function(
        "id => { const el = document.getElementById(id); return el && el.dataset.ready === '1' "
        "&& el.data && el.data.length > 0 && el.querySelector('.main-svg'); }", arg=chart)


def test_load_shows_charts_the_fit_and_the_plan_without_a_click(page, artefacts):
    expect(page.locator("#store-meta")).to_contain_text("77 finished")
    for chart in ("chart-overview", "chart-parity", "chart-residuals", "chart-corner",
                  "chart-curves", "chart-isoflop", "chart-allocation", "chart-heatmap"):
        drawn(page, chart)
    expect(page.locator("#fit-summary")).to_contain_text("α")
    alpha = page.locator("#fit-summary tr", has_text="α").first.inner_text()
    estimate, lo, hi = (float(x) for x in alpha.replace("[", " ").replace("]", " ")
                        .replace(",", " ").split()[1:4])
    assert lo <= estimate <= hi and 0.2 < estimate < 0.5  # synthetic truth: alpha = 0.34
    expect(page.locator("#plan-table")).to_contain_text("parameters N")
    expect(page.locator("#run-count")).to_have_text("77")
    page.screenshot(path=str(artefacts / "dashboard-overview.png"), full_page=True)


def test_hovering_a_point_shows_its_run_id_and_numbers(page, artefacts):
    drawn(page, "chart-parity")
    chart = page.locator("#chart-parity")
    chart.scroll_into_view_if_needed()
    point = chart.locator(".scatterlayer .trace path.point").nth(5)
    box = point.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    label = chart.locator(".hoverlayer .hovertext")
    expect(label).to_contain_text("run r-")
    expect(label).to_contain_text("observed loss = ")
    chart.screenshot(path=str(artefacts / "dashboard-hover.png"))


def test_clicking_a_point_opens_the_run(page, artefacts):
    chart = page.locator("#chart-parity")
    point = chart.locator(".scatterlayer .trace path.point").nth(5)
    box = point.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#run-panel")).to_be_visible()
    expect(page.locator("#run-title")).to_contain_text("run r-")
    expect(page.locator("#run-table")).to_contain_text("finished")
    page.wait_for_function("document.getElementById('run-chart').dataset.ready === '1'")
    assert "open=r-" in page.url
    page.screenshot(path=str(artefacts / "dashboard-run.png"))
    page.click("#close-run")
    expect(page.locator("#run-panel")).to_be_hidden()


def test_ticked_runs_overlay_their_curves_on_the_chosen_axis(page):
    boxes = page.locator("#runs tbody tr input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(3).check()
    page.wait_for_function("document.getElementById('chart-curves').dataset.ready === '1' && "
                           "document.getElementById('chart-curves').data.filter(t => t.showlegend !== false).length === 2")
    page.select_option("#curve-x", "flops")
    page.wait_for_function("() => { const el = document.getElementById('chart-curves'); "
                           "return el.dataset.ready === '1' && el.layout.xaxis.title.text.includes('FLOPs'); }")
    assert page.url.count("run=") == 2 and "x=flops" in page.url


def test_a_pinned_comparison_shows_two_fits_side_by_side(page, artefacts):
    page.click("#pin")
    page.select_option("#law", "kaplan")
    page.fill("#holdout", "3")
    page.click("#pin")
    table = page.locator("#compare table")
    expect(table.locator("th", has_text="pin 2")).to_be_visible()
    expect(table).to_contain_text("chinchilla")
    expect(table).to_contain_text("kaplan")
    expect(table.locator("tr", has_text="held-out mean |error|")).to_contain_text("%")
    assert page.url.count("pin=") == 2
    page.locator("#compare-card").screenshot(path=str(artefacts / "dashboard-compare.png"))


def test_the_url_reopens_the_same_view(page, browser):
    page.fill("#filter", "sweep:isoflop")
    page.click("#apply")
    loaded(page)
    expect(page.locator("#run-count")).to_have_text("35")
    url = page.url
    other = browser.new_page(viewport={"width": 1400, "height": 1000})
    other.set_default_timeout(120_000)
    other.goto(url)
    loaded(other)
    expect(other.locator("#filter")).to_have_value("sweep:isoflop")
    expect(other.locator("#law")).to_have_value("kaplan")
    expect(other.locator("#holdout")).to_have_value("3")
    expect(other.locator("#curve-x")).to_have_value("flops")
    expect(other.locator("#run-count")).to_have_text("35")
    expect(other.locator("#compare th", has_text="pin 2")).to_be_visible()
    expect(other.locator("#picked .chip")).to_have_count(2)
    other.close()


def test_a_filter_that_matches_nothing_says_so_everywhere(page):
    page.fill("#filter", "sweep:nothing-like-this")
    page.click("#apply")
    loaded(page)
    expect(page.locator("#run-count")).to_have_text("0")
    expect(page.locator("#runs")).to_contain_text("match this filter")
    expect(page.locator("#fit-error")).to_contain_text("no finished runs")
    expect(page.locator("#fit-summary")).to_be_empty()
    expect(page.locator("#chart-parity")).to_contain_text("no finished runs")
    page.fill("#filter", "")
    page.click("#apply")
    loaded(page)
    expect(page.locator("#run-count")).to_have_text("77")


def test_a_bad_budget_is_explained_and_leaves_no_stale_plan(page):
    page.select_option("#law", "chinchilla")
    page.fill("#holdout", "0")
    page.fill("#compute", "7X")
    page.click("#plan")
    expect(page.locator("#plan-error")).to_have_text("compute '7X' is not a number (e.g. 1e21, 7B, 1.4T)")
    expect(page.locator("#plan-table")).to_be_empty()
    expect(page.locator("#plan-warnings")).to_be_hidden()
    page.fill("#compute", "7B")  # the CLI's spelling of 7e9 FLOPs
    page.click("#plan")
    expect(page.locator("#plan-table")).to_contain_text("parameters N")
    expect(page.locator("#plan-error")).to_be_hidden()


def test_a_run_added_while_the_page_is_open_appears(page, store, artefacts):
    expect(page.locator("#run-count")).to_have_text("77")
    # a separate process writes, as a sweep does; the page only reads
    subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from scalinglab.runs.store import RunStore
        RunStore({str(store)!r}).add_run({{"run_id": "late-run", "N": 5e7, "D": 5e8, "loss": 3.95,
                                          "tags": {{"dataset": "synthetic", "sweep": "isoflop"}}}})
    """)], check=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)
    expect(page.locator("#run-count")).to_have_text("78", timeout=120_000)
    expect(page.locator("#store-meta")).to_contain_text("78 finished")
    page.wait_for_function("() => (document.getElementById('chart-overview').data || []).some("
                           "t => (t.customdata || []).some(c => c[0] === 'late-run'))")
    expect(page.locator("#runs tr[data-id='late-run']")).to_have_count(1)
    page.screenshot(path=str(artefacts / "dashboard-live.png"))


def test_the_report_opens_offline_and_a_click_opens_the_run(browser, store, tmp_path, artefacts):
    from scalinglab.report.html import build_report

    path = build_report(store, tmp_path / "report.html", bootstrap=10, holdout=3)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(120_000)
    fetched: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route("**/*", lambda route: (route.continue_() if route.request.url.startswith(("file:", "data:"))
                                      else (fetched.append(route.request.url), route.abort())))
    page.goto(path.as_uri())
    page.wait_for_function("document.querySelectorAll('.sl-chart .main-svg').length >= 8")
    page.locator("#runs tr[data-id]").first.click()
    expect(page.locator("#drawer")).to_be_visible()
    expect(page.locator("#drawer-body")).to_contain_text("run_id")
    page.screenshot(path=str(artefacts / "report-top.png"))
    page.locator("#fig-chinchilla_parity").scroll_into_view_if_needed()
    page.screenshot(path=str(artefacts / "report-parity.png"))
    page.close()
    assert not fetched and not errors


def test_a_saved_results_point_whose_run_is_not_in_the_store_says_so(browser, store, tmp_path):
    """A saved link fitted on models of a CSV: clicking one of its points did nothing (the
    report's drawer only knew the store's runs). It opens and says why there is nothing to show."""
    import numpy as np

    from scalinglab.downstream.link_fit import fit_link
    from scalinglab.report.html import build_report

    loss = np.linspace(2.4, 4.2, 12)
    fit_link(loss, 0.857 - 2.206 * np.exp(-0.7146 * loss), metric="err_avg", bootstrap=10,
             run_ids=[f"csv-model-{i}" for i in range(12)]).save(tmp_path / "link.json")
    path = build_report(store, tmp_path / "report.html", bootstrap=0, rolling=False,
                        results=[tmp_path / "link.json"])
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(120_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    chart = '.sl-chart[data-chart="result1_link_fit_link"]'
    page.wait_for_function("sel => { const el = document.querySelector(sel); "
                           "return el && el.querySelector('.main-svg'); }", arg=chart)
    # the click Plotly reports for a point of the models' trace
    page.evaluate("sel => document.querySelector(sel).emit('plotly_click', "
                  "{points: [{customdata: ['csv-model-3']}]})", chart)
    expect(page.locator("#drawer")).to_be_visible()
    expect(page.locator("#drawer-title")).to_have_text("run csv-model-3")
    expect(page.locator("#drawer-body")).to_contain_text("Not among this report's runs")
    page.close()
    assert not errors
