"""The dashboard as a person uses it: headless Chromium loads the page from a real uvicorn server
on 127.0.0.1, filters runs by tag, fits a law, and sees the figure, the numbers and the plan.

Skipped where Playwright or Chromium is not installed."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

from report_synth import make_store  # noqa: E402

from scalinglab.report.server import create_app  # noqa: E402

CHROMIUM = os.environ.get("SCALINGLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    store = make_store(tmp_path_factory.mktemp("browser") / "runs.duckdb")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store, bootstrap=20), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the dashboard server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(base_url: str) -> Iterator[sync_api.Page]:
    with sync_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        except sync_api.Error as exc:
            pytest.skip(f"Chromium does not start here: {exc}")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base_url)
        yield page
        browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def image_loaded(page: sync_api.Page, selector: str) -> None:
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector)


def test_page_lists_the_store_and_its_runs(page):
    sync_api.expect(page.locator("#store-meta")).to_contain_text("77 finished")
    sync_api.expect(page.locator("#run-count")).to_have_text("77")


def test_filtering_by_tag_narrows_the_runs(page):
    page.fill("#filter", "sweep:isoflop")
    page.click("#apply")
    sync_api.expect(page.locator("#run-count")).to_have_text("35")
    sync_api.expect(page.locator("#runs tbody tr")).to_have_count(35)


def test_a_malformed_filter_is_explained_on_the_page(page):
    page.fill("#filter", "isoflop")
    page.click("#apply")
    sync_api.expect(page.locator("#runs-error")).to_contain_text("KEY:VALUE")
    page.fill("#filter", "sweep:isoflop")
    page.click("#apply")
    sync_api.expect(page.locator("#runs-error")).to_be_hidden()


def test_fitting_shows_the_figure_the_numbers_and_the_plan(page):
    page.select_option("#law", "chinchilla")
    page.fill("#bootstrap", "20")
    page.click("#fit")
    image_loaded(page, "#fig-loss")
    rows = page.locator("#fit-params tbody tr")
    sync_api.expect(rows).to_have_count(5)
    alpha = page.locator("#fit-params tbody tr", has_text="α").inner_text()
    estimate, lo, hi = (float(x) for x in alpha.replace("[", " ").replace("]", " ")
                        .replace(",", " ").split()[1:4])
    assert lo <= estimate <= hi and 0.2 < estimate < 0.5  # synthetic truth: alpha = 0.34
    sync_api.expect(page.locator("#fit-notes")).to_contain_text("20 bootstrap resamples")
    image_loaded(page, "#fig-residuals")
    image_loaded(page, "#fig-bootstrap")
    # the planner updates from the fit
    sync_api.expect(page.locator("#plan-table")).to_contain_text("parameters N")
    sync_api.expect(page.locator("#plan-status")).to_contain_text("chinchilla (fitted)")


def test_held_out_runs_count_in_the_numbers_and_show_in_the_figures(page):
    page.fill("#holdout", "3")
    page.click("#fit")
    sync_api.expect(page.locator("#fit-notes")).to_contain_text("32 runs")
    sync_api.expect(page.locator("#fit-notes")).to_contain_text("held-out mean |rel. error|")
    image_loaded(page, "#fig-loss")
    assert "holdout=3" in page.get_attribute("#fig-loss", "src")
    page.fill("#holdout", "0")


def test_a_fit_on_too_few_runs_says_why_instead_of_numbers(page):
    page.fill("#filter", "sweep:nothing-like-this")
    page.click("#apply")
    sync_api.expect(page.locator("#run-count")).to_have_text("0")
    page.click("#fit")
    sync_api.expect(page.locator("#fit-error")).to_be_visible()
    sync_api.expect(page.locator("#fit-error")).to_contain_text(re.compile("no finished runs"))
    sync_api.expect(page.locator("#fit-result")).to_be_hidden()


def test_clicking_a_run_shows_its_loss_curve(page):
    page.fill("#filter", "sweep:isoflop")
    page.click("#apply")
    page.locator("#runs tbody tr").first.click()
    sync_api.expect(page.locator("#run-detail-text")).to_contain_text("status finished")
    image_loaded(page, "#fig-curve")


def test_isoflop_allocation_and_the_lr_batch_grid_show(page):
    page.fill("#filter", "")
    page.click("#apply")
    page.click("#iso")
    for figure in ("#fig-isoflop", "#fig-allocation", "#fig-heatmap"):
        image_loaded(page, figure)
    sync_api.expect(page.locator("#iso-error")).to_be_hidden()
