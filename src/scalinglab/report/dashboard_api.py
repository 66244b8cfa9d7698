"""What the dashboard adds to the app of :mod:`scalinglab.report.server`, kept apart so the
routes there stay thin: the filter in the ``--where`` language, a store that does not exist yet,
the runs table's data and assets, and the pinned fits drawn over the overview chart.

The filter. The page's one filter box speaks the CLI's ``--where`` language (``N > 1e8 AND
tags->>'dataset' = 'c4'``; imported extra columns by name, ``budget_flops = 1e18``); the older
``dataset:c4, sweep=a`` tag form still works and is sent as ``tag``. A request's ``where`` is
read once, by :class:`WhereMiddleware`, into a context variable that the app's run selection
and its cache keys read (:func:`where_key`), so every panel filters the same way without each
route taking the parameter. A bad filter answers 400 with one sentence, which the page shows
once, beside the box (``/api/filter``), instead of in every panel.

A store that is not there yet. ``serve`` may start before the sweep that creates the store:
:class:`EmptyStore` answers as a store with no runs would, and the page's poll of the store's
state (``"absent"`` until the file appears) picks the real one up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pandas as pd

from scalinglab.errors import ParameterError
from scalinglab.report import runs_table

#: the current request's ``where`` filter ("" for none)
_WHERE: ContextVar[str] = ContextVar("scalinglab_where", default="")
#: longest filter a request may send (the ``--where`` parser bounds it too)
MAX_WHERE = 4000


def current_where() -> str:
    return _WHERE.get()


def where_key() -> str:
    """A suffix for cache keys: results differ by filter."""
    w = _WHERE.get()
    return f"|where={w}" if w else ""


class WhereMiddleware:
    """Reads ``?where=`` once per request into :func:`current_where` (pure ASGI, so the value
    is seen by the route in the same context)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        where = " ".join(query.get("where", [])).strip()
        token = _WHERE.set(where[:MAX_WHERE + 1])
        try:
            await self.app(scope, receive, send)
        finally:
            _WHERE.reset(token)


@contextmanager
def filtered_by(where: str) -> Iterator[None]:
    """Within the block, the run selection filters by ``where`` (a pinned fit's own filter)."""
    token = _WHERE.set(where)
    try:
        yield
    finally:
        _WHERE.reset(token)


def with_extras(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with each extra column (``extra`` dicts) as a column of its own, so a filter
    names it as the import's file did; run columns win a clash."""
    if "extra" not in runs or runs.empty:
        return runs
    keys = runs_table._keys(runs, "extra")
    added = {k: [d.get(k) if isinstance(d, dict) else None for d in runs["extra"]]
             for k in keys if k not in runs}
    return runs.assign(**added) if added else runs


def apply_where(runs: pd.DataFrame, where: str | None = None) -> pd.DataFrame:
    """The rows of ``runs`` the filter keeps (:func:`scalinglab.runs.where.filter_frame` over
    run columns, tags, extras); ``where`` defaults to the request's."""
    from scalinglab.runs.where import filter_frame

    where = current_where() if where is None else where
    if not where:
        return runs
    if len(where) > MAX_WHERE:
        raise ParameterError(f"where is longer than {MAX_WHERE} characters", "where")
    kept = filter_frame(with_extras(runs), where)
    return runs.loc[kept.index]


class EmptyStore:
    """Stands in for a run store whose file does not exist yet: no runs, no curves, no tags."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def runs(self, where: str | None = None, status: str | None = "finished",
             tags: Any = None) -> pd.DataFrame:
        from scalinglab.runs.ingest import RUN_COLUMNS

        numeric = {"N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay", "seq_len"}
        return pd.DataFrame({c: pd.Series(dtype=float if c in numeric else object)
                             for c in RUN_COLUMNS})

    def run(self, run_id: str) -> dict[str, Any]:
        raise KeyError(run_id)

    def has_run(self, run_id: str, status: str | None = "finished") -> bool:
        return False

    def curve(self, run_id: str) -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in ("step", "tokens", "loss", "eval_loss")})

    def curves(self, run_ids: list[str]) -> dict[str, pd.DataFrame]:
        return {}

    def counts(self) -> dict[str, int]:
        return {}

    def tag_values(self) -> dict[str, list[str]]:
        return {}


def register(app: Any, path: Path, select: Callable[..., pd.DataFrame],
             fitted: Callable[..., Any] | None = None,
             parse_pin: Callable[[str], dict[str, Any]] | None = None) -> None:
    """Add the dashboard's filter check, the runs table data and its assets, and the pinned
    fits' chart to ``app`` (the charts of the chart table are served by ``server.py``)."""
    from fastapi import Query
    from fastapi.responses import Response

    from scalinglab.clikit import to_json

    def js(obj: Any) -> Response:
        return Response(to_json(obj), media_type="application/json")

    @app.get("/static/runs_table.js")
    def table_js() -> Response:
        return Response(runs_table.asset("js"), media_type="application/javascript")

    @app.get("/static/runs_table.css")
    def table_css() -> Response:
        return Response(runs_table.asset("css"), media_type="text/css")

    @app.get("/api/filter")
    def check_filter(tag: list[str] = Query(default=[])) -> Response:
        """Whether the request's filter (``where`` and ``tag``) is valid, and how many finished
        runs it keeps: the page asks this first and shows a refusal once, by the box."""
        runs = select(tag)
        return js({"ok": True, "where": current_where(), "count": int(len(runs)),
                   "store_exists": path.exists()})

    @app.get("/api/charts-extra/pinned")
    def pinned(pin: list[str] = Query(default=[])) -> Response:
        """Every run by compute with each pinned fit's law drawn over them: its loss at the
        compute-optimal (N, D) across the runs' compute (a pin that cannot be drawn says why in
        its legend entry)."""
        from scalinglab.report import charts

        if fitted is None or parse_pin is None or not pin:
            return js(charts.empty("pin a fit to draw its law over the runs"))
        return js(pinned_chart(select([]), [parse_pin(text) for text in pin], fitted))

    @app.get("/api/runs-table")
    def table(
        tag: list[str] = Query(default=[]),
        status: str = Query(default="finished", pattern="^(finished|failed|running|all)$"),
    ) -> Response:
        """Every run the filter keeps, as the runs table's data (:func:`runs_table.payload`)."""
        runs = select(tag, status)
        return js({"count": int(len(runs)), "store_exists": path.exists(),
                   **runs_table.payload(runs)})


def pinned_chart(runs: pd.DataFrame, pins: list[dict[str, Any]],
                 fitted: Callable[..., Any]) -> dict[str, Any]:
    """The overview chart of the chart table (every run by compute) with each pinned fit's law
    drawn over it: its loss at the compute-optimal (N, D) across the runs' compute (a pin that
    cannot be drawn says why in its legend entry). ``fitted(law, tag, bootstrap, holdout)``
    fits a pin under its own ``where`` filter."""
    from scalinglab.report import chart_table, charts

    spec = chart_table.spec("overview", chart_table.ChartInputs(runs))
    if runs.empty:
        return spec
    C = np.geomspace(float(runs["C"].min()) / 1.5, float(runs["C"].max()) * 1.5, 40)
    dashes = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
    for i, p in enumerate(pins[:len(dashes)]):
        label = f"pin {i + 1}: {p['law']}"
        try:
            with filtered_by(p["where"]):
                fit = fitted(p["law"], p["tag"], p["bootstrap"], p["holdout"])
            frontier = (charts._frontier(fit, C) if {"N", "D"} <= set(fit.law.inputs)
                        else None)
            why = "" if frontier is not None else " (no compute-optimal loss to draw)"
        except Exception as exc:  # noqa: BLE001 - the pin's failure is shown, not raised
            frontier, why = None, f" (not fitted: {getattr(exc, 'message', exc)})"
        spec["data"].insert(0, {
            "type": "scatter", "mode": "lines", "name": label + why,
            "x": C.tolist() if frontier is not None else [],
            "y": frontier.tolist() if frontier is not None else [],
            "line": {"color": "#1d232a", "width": 1.6, "dash": dashes[i]},
            "hovertemplate": f"{label}<br>C = %{{x:.3g}}<br>optimal loss = %{{y:.4g}}"
                             "<extra></extra>"})
    spec["layout"]["title"]["text"] = (f"{len(runs)} runs and the {len(pins)} pinned laws: "
                                       "each one's loss at the compute-optimal N, D")
    return spec
