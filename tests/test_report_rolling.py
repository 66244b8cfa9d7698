"""The report and the dashboard check each law rolling forward in compute, with the numbers of
:func:`scalinglab.fit.validate.rolling_forward` on the same runs (the one selection rule, the
fit's bootstrap); with too few budgets the report says why there is none, ``--no-rolling``
leaves it out. Runs imported with a readable name show it beside their id."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from report_synth import curve_for, isoflop_runs, make_store
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.fit.validate import rolling_forward
from scalinglab.report import analysis, charts, server, views
from scalinglab.report.html import build_report
from scalinglab.runs.select import select_runs
from scalinglab.runs.store import RunStore

BOOT = 8


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """35 IsoFLOP runs over 5 budgets and an lr × batch grid (its best setting a 6th budget)."""
    return make_store(tmp_path_factory.mktemp("rolling") / "runs.duckdb")


@pytest.fixture(scope="module")
def reference(store_path: Path):
    """The engine's own rolling-forward result on the runs every fit uses."""
    runs = RunStore(store_path, read_only=True).runs()
    return rolling_forward("chinchilla", select_runs(runs, ("N", "D")).frame, bootstrap=BOOT,
                           seed=0, source=str(store_path))


@pytest.fixture(scope="module")
def cli_report(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("cli") / "report.html"
    res = CliRunner().invoke(app, ["report", "--store", str(store_path), "--out", str(out),
                                   "--bootstrap", str(BOOT), "--compute", "1e21", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), out.read_text()


def close(got: Any, want: Any) -> bool:
    """Equal, numbers to pytest.approx (which takes no nested records since pytest 9.2)."""
    if isinstance(want, dict):
        return isinstance(got, dict) and set(got) == set(want) and all(
            close(got[k], want[k]) for k in want)
    if isinstance(want, (list, tuple)):
        return len(got) == len(want) and all(close(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        return got == pytest.approx(want, nan_ok=True)
    return got == want


def section(html: str, sid: str) -> str:
    return html.split(f'<section id="{sid}">')[1].split("</section>")[0]


def test_with_three_or_more_budgets_the_report_rolls_each_law_forward_by_default(cli_report, reference):
    out, html = cli_report
    got = out["rolling"]["chinchilla"]
    assert len(reference.steps) == 3  # 6 budgets, fitted on at least 3: cut-offs at the 4th to 6th
    assert got["steps"] == reference.to_dict()["steps"]
    assert close(got["by_distance"], reference.by_distance())
    assert close(got["predictions"], reference.predictions)
    assert got["mean_abs_rel_err"] == pytest.approx(reference.mean_abs_rel_err)
    part = section(html, "rolling")
    for row in reference.by_distance():  # the table shows the engine's numbers, as its summary prints them
        a, b = row["decades"]
        cells = re.search(rf'<td class="l">\({a:g}, {b:g}\]</td><td class="r">{row["n"]}</td>'
                          r'<td class="l">([^<]+)</td><td class="l">([^<]+)</td>'
                          r'<td class="l">([^<]+)</td><td class="l">([^<]+)</td>', part)
        assert cells is not None, (a, b)
        assert cells.groups() == (f"{row['mean_abs_rel_err']:.2%}", f"{row['max_abs_rel_err']:.2%}",
                                  f"{row['inside_parameter_band']:.0%}",
                                  f"{row['inside_new_run_band']:.0%}")
    assert "cut-offs" in part and "fitted up to C" in part
    assert f"{reference.mean_abs_rel_err:.2%} mean |relative error|" in section(html, "overview")


def test_the_rolling_chart_shows_each_forward_prediction_and_the_error_by_distance(reference):
    v = views.rolling_view(reference)
    assert len(v.points) == len(reference.predictions) and v.cutoffs == sorted(
        s["cutoff"] for s in reference.steps)
    assert list(v.bins["error_pct"]) == pytest.approx(
        [100 * b["mean_abs_rel_err"] for b in reference.by_distance()])
    spec = charts.rolling_forward(v)
    runs = [t for t in spec["data"] if t.get("customdata")]
    assert len(runs) == len(v.cutoffs)  # one legend entry per cut-off
    assert sum(len(t["x"]) for t in runs) == len(reference.predictions)
    assert {c[0] for t in runs for c in t["customdata"]} == {p["run_id"] for p in reference.predictions}
    names = [t["name"] for t in spec["data"]]
    assert "observed: mean |error| by distance" in names
    assert "predicted: half the 95% new-run band" in names


def test_fewer_than_three_budgets_and_the_section_says_why(tmp_path):
    with RunStore(tmp_path / "two.duckdb") as store:
        store.import_frame(isoflop_runs(budgets=(1e17, 1e18), per_budget=7), source="two")
    html = build_report(tmp_path / "two.duckdb", tmp_path / "r.html", bootstrap=0).read_text()
    part = section(html, "rolling")
    assert "needs at least 3 compute budgets" in part and "these 14 runs have 2" in part
    assert "<table" not in part


def test_no_rolling_leaves_the_section_out(store_path, tmp_path):
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", "--store", str(store_path), "--out", str(out),
                                   "--bootstrap", "0", "--no-rolling", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rolling"] is None
    assert '<section id="rolling">' not in out.read_text()


def test_the_pinned_comparison_has_each_pins_rolling_forward_error(store_path, reference):
    client = TestClient(server.create_app(store_path, bootstrap=BOOT), base_url="http://127.0.0.1")
    body = client.get("/api/compare", params=[
        ("pin", f"law=chinchilla&bootstrap={BOOT}"), ("pin", "law=power_C&bootstrap=0"),
        ("compute", "1e21")]).json()
    html = body["html"]
    for label in ("rolling forward: cut-offs fitted", "rolling forward: mean |error|",
                  "rolling forward: mean |error|, last cut-off",
                  "rolling forward: inside the new-run band"):
        row = re.search(rf'<tr><td class="l">{re.escape(label)}</td>(.*?)</tr>', html)
        assert row is not None and row.group(1).count("<td") == 2, label
    # the same function as the report: the engine's numbers, capped at 3 cut-offs
    assert len(reference.steps) <= server.MAX_ROLLING_CUTOFFS
    first = body["rolling"][0]
    assert first["mean_abs_rel_err"] == pytest.approx(reference.mean_abs_rel_err)
    assert f"{100 * reference.mean_abs_rel_err:.2f}%" in html
    last = max(p["cutoff"] for p in reference.predictions)
    errs = [p["abs_rel_err"] for p in reference.predictions if p["cutoff"] == last]
    assert f"{100 * sum(errs) / len(errs):.2f}%" in html
    assert body["rolling"][1]["law"] == "power_C"


def test_a_pins_rolling_check_is_bounded_in_cut_offs():
    runs = isoflop_runs(budgets=tuple(10.0 ** k for k in range(15, 23)), per_budget=5)
    result = analysis.rolling_check(runs.assign(run_id=[f"r{i}" for i in range(len(runs))]),
                                    "chinchilla", 0, steps=server.MAX_ROLLING_CUTOFFS)
    assert len(result.steps) == server.MAX_ROLLING_CUTOFFS  # of 5 possible (8 budgets, 3 to fit)


def test_run_names_show_in_the_runs_tables_and_the_curve_legend(tmp_path):
    runs = isoflop_runs(budgets=(1e17, 1e18), per_budget=3)
    runs["name"] = [f"wandb-run-{i}" for i in range(len(runs))]
    runs["curve"] = [curve_for(n, d, seed=i) for i, (n, d) in enumerate(zip(runs["N"], runs["D"], strict=True))]
    path = tmp_path / "named.duckdb"
    with RunStore(path) as store:
        store.import_frame(runs, source="wandb")
        stored = store.runs()
    ids = dict(zip(stored["name"], stored["run_id"], strict=True))
    html = build_report(path, tmp_path / "r.html", bootstrap=0, rolling=False).read_text()
    table = section(html, "runs")
    heads = re.findall(r"<th[^>]*>([^<]+)</th>", table)
    assert heads[:2] == ["run_id", "name"]  # the name right after the id
    for name, rid in ids.items():
        assert re.search(rf'<tr data-id="{re.escape(rid)}"><td class="l">{re.escape(rid)}</td>'
                         rf'<td class="l">{name}</td>', table)
    client = TestClient(server.create_app(path), base_url="http://127.0.0.1")
    dash = client.get("/api/runs").json()
    assert "<th" in dash["html"] and ">name</th>" in dash["html"]
    assert {r["name"] for r in dash["runs"]} == set(ids)
    spec = client.get("/api/charts/curves", params=[("run_id", ids["wandb-run-0"]),
                                                    ("run_id", ids["wandb-run-1"])]).json()
    legend = [t for t in spec["data"] if t.get("showlegend", True)]
    assert sorted(t["name"] for t in legend) == ["wandb-run-0", "wandb-run-1"]
    for t in legend:
        assert f"{t['name']} ({ids[t['name']]}, N = " in t["text"][0]  # hover: name and id


def test_a_run_without_a_name_is_called_by_its_id():
    import pandas as pd

    curve = pd.DataFrame(curve_for(1e7, 2e8))
    runs = pd.DataFrame([{"run_id": "r-1", "name": None, "N": 1e7, "D": 2e8, "C": 1.2e16}])
    (s,) = views.curve_series({"r-1": curve}, runs)
    assert s.legend == "r-1" and s.label.startswith("r-1 (N = ")
