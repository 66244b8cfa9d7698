"""A plan refused because the fit does not identify what it needs is shown as the reason - which
parameters, which runs would identify them - in the dashboard's plan panel and the report's plan
section, as ``scalinglab plan`` says it; never as an error or an HTTP 422 (issue 24, item 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from scalinglab.report import server
from scalinglab.report.html import build_report
from scalinglab.runs.store import RunStore

LOCAL = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def one_d_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve model sizes all at about 2e9 tokens: B and beta cannot be told apart from E."""
    rng = np.random.default_rng(0)
    N = np.geomspace(1e7, 1e9, 12)
    D = np.full_like(N, 2e9) * rng.uniform(0.99, 1.01, N.size)
    loss = (1.8 + 400 / N**0.34 + 410 / D**0.28) * np.exp(rng.normal(0, 0.003, N.size))
    path = tmp_path_factory.mktemp("one_d") / "runs.duckdb"
    with RunStore(path) as store:
        store.import_frame(pd.DataFrame({"N": N, "D": D, "loss": loss}), source="one_d")
    return path


def said_as_the_cli_says(text: str) -> None:
    assert "no compute-optimal plan for 1e+21 FLOPs" in text
    assert "which these runs do not identify" in text  # the parameters, named
    assert "Runs that would identify it: an IsoFLOP sweep" in text and "1e+20 FLOPs" in text


def test_the_dashboard_plan_panel_shows_why_there_is_no_plan(one_d_store):
    client = TestClient(server.create_app(one_d_store, bootstrap=20),
                        raise_server_exceptions=False, base_url=LOCAL)
    res = client.get("/api/plan", params={"compute": "1e21", "law": "chinchilla"})
    assert res.status_code == 200, res.text
    plan = res.json()
    said_as_the_cli_says(plan["refused"])
    said_as_the_cli_says(plan["html"])
    assert "<table" not in plan["html"] and 'class="error"' not in plan["html"]
    assert "N" not in plan and "lr" not in plan  # no numbers from where the fit stopped
    # a published law still plans at once, with its numbers
    ok = client.get("/api/plan", params={"compute": "1e21", "law": "hoffmann2022"}).json()
    assert "refused" not in ok and "<table" in ok["html"]


def test_the_report_plan_section_shows_the_reason_not_an_error(one_d_store, tmp_path):
    html = build_report(one_d_store, tmp_path / "r.html", bootstrap=20, compute=1e21).read_text()
    plan = html.split('<section id="plan">')[1].split("</section>")[0]
    said_as_the_cli_says(plan)
    assert 'class="error"' not in plan and "<table" not in plan
