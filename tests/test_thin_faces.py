"""The dashboard's shape (issue 28, "thin faces"), checked on the source so it cannot drift back:
``create_app`` only assembles the app; every route is a few lines over the Dashboard (which asks
the Study); the chart table (``report/chart_table.py``) is the one place a chart is wired to its
builders, for the report and the dashboard alike; and the server keeps no cache of its own
(the Study's is keyed by the store's state)."""

from __future__ import annotations

import ast
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "src" / "scalinglab" / "report"
#: the faces that draw charts: none may call a chart builder the chart table wires
FACES = ("server.py", "sections.py", "html.py", "dashboard_api.py", "saved.py", "curve_report.py")
#: most lines a route's body may take (its signature and docstring aside)
ROUTE_LINES = 15


def tree(name: str) -> ast.Module:
    return ast.parse((REPORT / name).read_text(encoding="utf-8"))


def functions(module: ast.Module) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(module) if isinstance(n, ast.FunctionDef)]


def is_route(fn: ast.FunctionDef) -> bool:
    """Decorated ``@app.get(...)`` (or post, put, delete)."""
    return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
               and isinstance(d.func.value, ast.Name) and d.func.value.id == "app"
               and d.func.attr in ("get", "post", "put", "delete") for d in fn.decorator_list)


def body_lines(fn: ast.FunctionDef) -> int:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return 0 if not body else (body[-1].end_lineno or 0) - body[0].lineno + 1


def test_create_app_only_assembles_the_app():
    (fn,) = [f for f in functions(tree("server.py")) if f.name == "create_app"]
    assert body_lines(fn) <= 20, f"create_app is {body_lines(fn)} lines: move work to Dashboard"
    branches = [type(n).__name__ for n in ast.walk(fn)
                if isinstance(n, (ast.If, ast.For, ast.While, ast.Try, ast.With, ast.FunctionDef,
                                  ast.Lambda, ast.IfExp))]
    assert branches == [fn.__class__.__name__], f"create_app decides or defines: {branches[1:]}"


def test_every_route_is_a_few_lines():
    routes = {(name, f.name): body_lines(f) for name in ("server.py", "dashboard_api.py")
              for f in functions(tree(name)) if is_route(f)}
    assert len(routes) >= 20  # the check sees the routes (a renamed `app` would hide them)
    long = {k: n for k, n in routes.items() if n > ROUTE_LINES}
    assert not long, f"routes over {ROUTE_LINES} lines: {long}"


def builders_in_the_table() -> set[str]:
    """Every chart and figure builder the chart table calls (``charts.X``, ``_figures().X``)."""
    out = set()
    for n in ast.walk(tree("chart_table.py")):
        if isinstance(n, ast.Attribute):
            owner = n.value
            if isinstance(owner, ast.Name) and owner.id == "charts":
                out.add(n.attr)
            if isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "_figures":
                out.add(n.attr)
    # an empty chart, and a chart of named series (a registered result's own), are every face's
    return out - {"empty", "series_chart"}


def test_charts_are_wired_only_in_the_chart_table():
    wired = builders_in_the_table()
    assert {"parity", "residuals", "corner", "isoflop", "allocation", "lr_batch", "loss_curves",
            "runs_by_budget", "rolling_forward", "isoflop_curves", "optimal_allocation",
            "lr_batch_heatmap", "seed_bands", "parallel_coordinates"} <= wired
    elsewhere = {}
    for name in FACES:
        for n in ast.walk(tree(name)):
            if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                    and n.value.id in ("charts", "figures", "figs") and n.attr in wired):
                elsewhere.setdefault(name, set()).add(f"{n.value.id}.{n.attr}")
    assert not elsewhere, f"charts wired outside report/chart_table.py: {elsewhere}"


def test_the_dashboard_serves_every_chart_of_the_table():
    from scalinglab.report import chart_table, server

    assert server.CHARTS == tuple(chart_table.TABLE)
    assert set(server.FIGURES) == {k for k, c in chart_table.TABLE.items() if c.figure is not None}
    for kind in chart_table.TABLE.values():
        assert kind.title and kind.id == kind.id.strip()


def test_the_server_keeps_no_cache_of_its_own():
    """Answers are cached by the Study, keyed by the store's state; the server holds none."""
    module = tree("server.py")
    names = {n.id for n in ast.walk(module) if isinstance(n, ast.Name)}
    attrs = {n.attr for n in ast.walk(module) if isinstance(n, ast.Attribute)}
    assert not {"Cache", "OrderedDict", "store_state"} & (names | attrs)
    for fn in functions(module):  # no closure-held results (a list or dict filled on first use)
        for n in ast.walk(fn):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in (
                    "append", "extend") and isinstance(n.func.value, ast.Name):
                assert n.func.value.id in ("results", "checks", "out", "series"), (
                    f"{fn.name} fills {n.func.value.id}: cache through the Study instead")


def test_the_report_and_the_dashboard_draw_one_chart_alike(tmp_path):
    """The same chart id, drawn by the report's sections and by ``/api/charts``, from the same
    fit (same runs, bootstrap and seed), is the same spec: one builder, wired once."""
    import json

    from fastapi.testclient import TestClient
    from report_synth import make_store

    from scalinglab.report import sections, server
    from scalinglab.runs.store import RunStore
    from scalinglab.serialize import to_json
    from scalinglab.study.analysis import summarise

    path = make_store(tmp_path / "runs.duckdb")
    summary = summarise(RunStore(path, read_only=True), tags={"sweep": "isoflop"}, bootstrap=0,
                        rolling=False)
    report = {c.name: c for sec in sections.report_sections(summary) for c in sec.charts()}
    client = TestClient(server.create_app(path, bootstrap=0), base_url="http://127.0.0.1:8765")
    for name, served in (("chinchilla_parity", "parity"), ("chinchilla_residuals", "residuals"),
                         ("isoflop", "isoflop"), ("overview", "overview")):
        page = client.get(f"/api/charts/{served}", params={"tag": "sweep:isoflop"})
        assert page.status_code == 200, page.text[:200]
        assert json.loads(to_json(report[name].spec())) == page.json(), name
    # a bad filter is the request's fault whatever the chart: 400, not 422
    bad = client.get("/api/charts/parity", params={"tag": "dataset"})
    assert bad.status_code == 400 and "KEY:VALUE" in bad.json()["detail"]


def test_a_static_curve_figure_follows_the_axis_asked_for(tmp_path):
    """The static figure of a chart reads the same request as its interactive spec: the loss
    curves' x axis (``x=step``) reaches the PNG/SVG as it reaches the Plotly chart."""
    import pandas as pd
    from fastapi.testclient import TestClient

    from scalinglab.report import server
    from scalinglab.runs.store import RunStore

    path = tmp_path / "runs.duckdb"
    with RunStore(path) as s:
        s.add_run({"run_id": "a", "N": 1e6, "D": 1e4, "loss": 3.0},
                  curve=pd.DataFrame({"step": [1, 2, 3], "tokens": [1e3, 2e3, 3e3],
                                      "loss": [4.0, 3.5, 3.2]}))
    client = TestClient(server.create_app(path, bootstrap=0), base_url="http://127.0.0.1:8765")
    spec = client.get("/api/charts/curves", params={"x": "step"}).json()
    assert spec["layout"]["meta"]["x_axis"] == "step"
    svg = client.get("/api/figures/curves.svg", params={"x": "step"})
    assert svg.status_code == 200 and "step" in svg.text.lower()
    tokens = client.get("/api/figures/curves.svg")
    assert "tokens seen" in tokens.text and "tokens seen" not in svg.text
