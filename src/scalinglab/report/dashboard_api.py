"""What the dashboard adds to the app of :mod:`scalinglab.report.server`, kept apart so the
routes there stay thin: the filter in the ``--where`` language, a store that does not exist yet,
and the runs table's data and assets.

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


def register(app: Any, path: Path, select: Callable[..., pd.DataFrame]) -> None:
    """Add the dashboard's filter check, the runs table data and its assets to ``app``."""
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

    @app.get("/api/runs-table")
    def table(
        tag: list[str] = Query(default=[]),
        status: str = Query(default="finished", pattern="^(finished|failed|running|all)$"),
    ) -> Response:
        """Every run the filter keeps, as the runs table's data (:func:`runs_table.payload`)."""
        runs = select(tag, status)
        return js({"count": int(len(runs)), "store_exists": path.exists(),
                   **runs_table.payload(runs)})


def raw_isoflop(runs: pd.DataFrame, reason: str) -> dict[str, Any]:
    """The IsoFLOP chart when the fit is impossible: the runs' loss against N per compute budget
    (grouped as the fit would), no parabolas, and the reason in the title, so a failed fit still
    shows the profiles it could not fit."""
    from types import SimpleNamespace

    from scalinglab.report import charts, views

    b = views.budgets_of(runs, None)
    series = []
    cols = [c for c in ("run_id", "N", "D", "C", "loss") if c in runs]
    ids = runs["run_id"].astype(str)
    for i, (value, label, colour) in enumerate(zip(b.values, b.labels, b.colours, strict=True)):
        mine = runs[[b.of(r) == i for r in ids]][cols].reset_index(drop=True)
        series.append(views.BudgetSeries(C=value, label=f"{label} ({len(mine)} runs)", colour=colour,
                                         runs=mine, ok=False, status="not fitted",
                                         curve_N=np.array([]), curve_loss=np.array([]), vertex=None))
    spec = charts.isoflop(series, SimpleNamespace(approach1=None, approach2=None))  # type: ignore[arg-type]
    spec["layout"]["title"]["text"] = f"IsoFLOP profiles, {len(series)} budgets, raw: no fit ({reason})"
    spec["layout"]["title"]["font"]["color"] = "#8a5a00"
    spec["fit_error"] = reason
    return spec
