"""The runs table and the dashboard's states as a person meets them in headless Chromium: a
click on a header sorts (and ``aria-sort`` says so), typing in the search box filters, the CSV
button downloads what is shown, the filter box takes the ``--where`` language and says once
when it cannot; a dashboard opened before its store exists shows an empty state and then the
runs as the store appears; the report carries the same table offline.

Screenshots of each state are saved under ``$SCALINGLAB_ARTEFACTS`` when set, else under
pytest's temporary directory. Skipped where Playwright or Chromium is not installed."""

from __future__ import annotations

import io
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

import pandas as pd
import pytest

sync_api = pytest.importorskip("playwright.sync_api")

from report_synth import make_store  # noqa: E402

from scalinglab.report.server import create_app  # noqa: E402

CHROMIUM = os.environ.get("SCALINGLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SRC = Path(__file__).resolve().parents[1] / "src"
TESTS = Path(__file__).resolve().parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed"),
]
expect = sync_api.expect
expect.set_options(timeout=120_000)  # fits on a busy 2-core machine take seconds


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    env = os.environ.get("SCALINGLAB_ARTEFACTS")
    path = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    yield path
    print(f"\nscreenshots in {path}")


def serve(store: Path) -> tuple[str, object, threading.Thread]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(store, bootstrap=0), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the dashboard server did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


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
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    store = make_store(tmp_path_factory.mktemp("dash-browser") / "runs.duckdb")
    url, server, thread = serve(store)
    yield url, store
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=10)


def open_page(browser: sync_api.Browser, url: str) -> tuple[sync_api.Page, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(120_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_function("document.body.dataset.refreshed")
    return page, errors


def apply_filter(page: sync_api.Page, text: str) -> None:
    """Type a filter, press Apply and wait for the page's refresh that follows."""
    before = page.evaluate("document.body.dataset.refreshed")
    page.fill("#filter", text)
    page.click("#apply")
    page.wait_for_function("b => document.body.dataset.refreshed !== b", arg=before)


def column(page: sync_api.Page, key: str) -> list[str]:
    """The shown run ids, in order, and the title (full value) of column ``key``."""
    return page.eval_on_selector_all(
        "#runs tbody tr[data-id]",
        f"""rows => {{ const head = [...document.querySelectorAll('#runs thead th')];
            const i = head.findIndex(th => th.dataset.key === {key!r});
            return rows.map(r => r.cells[i].title); }}""")


def test_a_click_on_a_header_sorts_and_says_so(browser, dashboard, artefacts):
    url, _ = dashboard
    page, errors = open_page(browser, url + "/?poll=500&refit=1000")
    expect(page.locator("#run-count")).to_have_text("77")
    header = page.locator("#runs thead th[data-key='loss']")
    expect(header).to_have_attribute("aria-sort", "none")
    before = [float(x) for x in column(page, "loss")]
    assert before != sorted(before)  # the store's order is by compute, not by loss
    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    ascending = [float(x) for x in column(page, "loss")]
    assert ascending == sorted(before)
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    assert [float(x) for x in column(page, "loss")] == sorted(before, reverse=True)
    assert "sort=loss%3Adescending" in page.url or "sort=loss:descending" in page.url
    page.locator("#runs").screenshot(path=str(artefacts / "runs-table-sorted.png"))
    page.close()
    assert not errors


def test_typing_in_the_search_box_filters_the_rows(browser, dashboard, artefacts):
    url, _ = dashboard
    page, errors = open_page(browser, url)
    search = page.locator("#runs input[type=search]")
    expect(page.locator("#runs tbody tr[data-id]")).to_have_count(77)
    search.fill("hparams")
    expect(page.locator("#runs tbody tr[data-id]")).to_have_count(42)
    expect(page.locator("#runs .rt-shown")).to_have_text("42 of 77 shown")
    search.fill("hparams nothing-like-this")
    expect(page.locator("#runs tbody tr[data-id]")).to_have_count(0)
    expect(page.locator("#runs")).to_contain_text("No run matches")
    search.fill("isoflop")
    expect(page.locator("#runs tbody tr[data-id]")).to_have_count(35)
    # a range on loss, in human numbers, narrows what the search left
    page.select_option("#runs .rt-range-col", "N")
    page.fill("#runs .rt-min", "100M")
    rows = column(page, "N")
    assert rows and all(float(n) >= 1e8 for n in rows)
    page.locator("#runs").screenshot(path=str(artefacts / "runs-table-searched.png"))
    # the CSV is what is shown: these rows, these columns, numbers in full, missing as empty
    with page.expect_download() as info:
        page.click("#runs .rt-csv")
    frame = pd.read_csv(info.value.path())
    assert len(frame) == len(rows) and frame["N"].dtype == float and (frame["N"] >= 1e8).all()
    assert list(frame.columns[:3]) == ["run_id", "status", "N"]
    page.close()
    assert not errors


def test_colour_group_and_columns(browser, dashboard, artefacts):
    url, _ = dashboard
    page, errors = open_page(browser, url + "/?status=all")
    expect(page.locator("#run-count")).to_have_text("78")
    badge = page.locator("#runs .rt-badge.rt-failed")
    expect(badge).to_have_count(1)
    expect(badge).to_have_attribute("title", "CUDA out of memory")
    page.select_option("#runs .rt-group", "tag:sweep")
    expect(page.locator("#runs .rt-group-row")).to_have_count(3)  # hparams, isoflop, none
    page.select_option("#runs .rt-colour", "status")
    expect(page.locator("#runs .rt-legend .rt-key")).to_have_count(2)
    page.click("#runs .rt-cols summary")
    page.locator("#runs .rt-col-list input[value='source']").check()
    expect(page.locator("#runs thead th[data-key='source']")).to_have_count(1)
    page.locator("#runs .rt-col-list input[value='lr']").uncheck()
    expect(page.locator("#runs thead th[data-key='lr']")).to_have_count(0)
    page.click("#runs .rt-cols summary")
    page.locator("#runs").screenshot(path=str(artefacts / "runs-table-grouped.png"))
    # long values are cut, not widening the panel past its card
    card = page.locator("#runs").bounding_box()
    panel = page.locator("#runs").locator("xpath=..").bounding_box()
    assert card["width"] <= panel["width"] + 1
    page.close()
    assert not errors


def test_the_filter_box_takes_where_and_says_once_when_it_cannot(browser, dashboard, artefacts):
    url, _ = dashboard
    page, errors = open_page(browser, url)
    apply_filter(page, "N > 1e8 AND tags->>'sweep' = 'isoflop'")
    expect(page.locator("#filter-error")).to_be_hidden()
    count = int(page.locator("#run-count").inner_text())
    assert 0 < count < 35
    apply_filter(page, "N >> > 3")
    expect(page.locator("#filter-error")).to_contain_text("invalid where expression")
    # said once: no panel repeats it
    assert page.locator("text=invalid where expression").count() == 1
    expect(page.locator("#chart-parity")).to_contain_text("Waiting for a filter")
    page.screenshot(path=str(artefacts / "dashboard-bad-filter.png"), full_page=True)
    # a fit that cannot be made (one budget) is said once; the IsoFLOP panel keeps the profile
    apply_filter(page, "C < 2e16 AND tags->>'sweep' = 'isoflop'")
    page.wait_for_function("document.getElementById('chart-isoflop').dataset.ready === '1' && "
                           "(document.getElementById('chart-isoflop').data || []).length > 0")
    title = page.evaluate("document.getElementById('chart-isoflop').layout.title.text")
    assert "raw: no fit" in title
    # the store has an lr x batch grid, but not among these runs: the section is absent, not red
    expect(page.locator("#heatmap-card")).to_be_hidden()
    assert page.locator(".chart-msg.bad").count() == 0
    page.screenshot(path=str(artefacts / "dashboard-failed-fit.png"), full_page=True)
    page.close()
    assert not errors


def test_the_dashboard_opened_before_the_store_shows_runs_as_it_appears(browser, tmp_path, artefacts):
    store = tmp_path / "later.duckdb"
    url, server, thread = serve(store)
    try:
        page, errors = open_page(browser, url + "/?poll=300&refit=500")
        expect(page.locator("#empty-store")).to_contain_text("does not exist yet")
        expect(page.locator("#run-count")).to_have_text("0")
        expect(page.locator("#runs")).to_contain_text("in the store yet")
        expect(page.locator("#heatmap-card")).to_be_hidden()  # optional, not an error
        expect(page.locator("#parallel-card")).to_be_hidden()
        assert page.locator(".chart-msg.bad").count() == 0
        page.screenshot(path=str(artefacts / "dashboard-before-the-store.png"), full_page=True)
        # a separate process creates the store, as a sweep does
        subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            import sys; sys.path.insert(0, {str(TESTS)!r})
            from pathlib import Path
            from report_synth import make_store
            make_store(Path({str(store)!r}))
        """)], check=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300)
        expect(page.locator("#run-count")).to_have_text("77", timeout=120_000)
        expect(page.locator("#empty-store")).to_be_hidden()
        expect(page.locator("#runs tbody tr[data-id]")).to_have_count(77)
        page.wait_for_function("() => (document.getElementById('chart-overview').data || []).length > 0")
        page.screenshot(path=str(artefacts / "dashboard-store-appeared.png"), full_page=True)
        page.close()
        assert not errors
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)


def test_axis_toggles_switch_the_curves_to_linear(browser, dashboard, artefacts):
    url, _ = dashboard
    page, errors = open_page(browser, url)
    page.wait_for_function("document.getElementById('chart-curves').dataset.ready === '1'")
    expect(page.locator("#log-y")).to_be_checked()
    page.locator("#log-y").uncheck()
    page.wait_for_function("document.getElementById('chart-curves').layout.yaxis.type === 'linear'")
    assert "logy=0" in page.url
    # the store's lr x batch grid gets its parallel coordinates beside the heat map
    expect(page.locator("#parallel-card")).to_be_visible()
    page.wait_for_function("(document.getElementById('chart-parallel').data || [])"
                           ".some(t => t.type === 'parcoords')")
    page.locator("#parallel-card").screenshot(path=str(artefacts / "dashboard-parallel.png"))
    page.close()
    assert not errors


def test_the_report_has_the_same_table_offline(browser, dashboard, tmp_path, artefacts):
    from scalinglab.report.html import build_report

    _, store = dashboard
    path = build_report(store, tmp_path / "report.html", bootstrap=0)
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    fetched: list[str] = []
    page.route("**/*", lambda route: (route.continue_() if route.request.url.startswith(("file:", "data:", "blob:"))
                                      else (fetched.append(route.request.url), route.abort())))
    page.goto(path.as_uri())
    table = page.locator("#runs-table")
    expect(table.locator("tbody tr[data-id]")).to_have_count(77)
    table.locator("thead th[data-key='N']").click()
    expect(table.locator("thead th[data-key='N']")).to_have_attribute("aria-sort", "ascending")
    table.locator("input[type=search]").fill("isoflop")
    expect(table.locator("tbody tr[data-id]")).to_have_count(35)
    with page.expect_download() as info:
        table.locator(".rt-csv").click()
    frame = pd.read_csv(io.StringIO(Path(info.value.path()).read_text()))
    assert len(frame) == 35 and list(frame["N"]) == sorted(frame["N"])
    table.locator("tbody tr[data-id]").first.click()
    expect(page.locator("#drawer")).to_be_visible()
    page.locator("#runs").screenshot(path=str(artefacts / "report-runs-table.png"))
    page.close()
    assert not fetched


def test_pins_draw_their_laws_over_the_runs(browser, dashboard, artefacts):
    url, _ = dashboard
    page, errors = open_page(browser, url + "/?pin=law%3Dchinchilla%26bootstrap%3D0"
                                            "&pin=law%3Dkaplan%26bootstrap%3D0")
    page.wait_for_function("() => { const el = document.getElementById('chart-pinned'); "
                           "return el && (el.data || []).filter(t => (t.name || '')"
                           ".startsWith('pin ')).length === 2; }")
    page.locator("#compare-card").screenshot(path=str(artefacts / "dashboard-pinned-laws.png"))
    page.close()
    assert not errors


def test_numbers_read_in_human_units(browser, dashboard):
    url, _ = dashboard
    page, errors = open_page(browser, url)
    human = page.evaluate("""() => {
        const h = SLRunsTable.human, p = SLRunsTable.parseHuman;
        return [h(1.2e9, {kind: 'num', unit: 'count'}), h(2.048e11, {kind: 'num', unit: 'tokens'}),
                h(3.4e19, {kind: 'num', unit: 'flops'}), h(3e-4, {kind: 'num'}), h(3.1234567, {kind: 'num'}),
                h(null, {kind: 'num'}), p('125M'), p('1.4T'), p('2,048'), p('7X')];
    }""")
    assert human[:6] == ["1.2B", "205B", "3.4e19", "3e-4", "3.123", ""]
    assert human[6:9] == [125e6, 1.4e12, 2048] and (human[9] is None or human[9] != human[9])  # NaN
    page.close()
    assert not errors
