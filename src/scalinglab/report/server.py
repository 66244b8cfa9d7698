"""The local dashboard: a FastAPI app over a run store, opened read-only per request.

A sweep may be writing the same DuckDB file; DuckDB lets one process hold it at a time, so the
app never keeps a connection open: each request opens the store read-only (the store retries a
held lock briefly) and answers 503 with a clear message if the writer keeps it longer. Results
are cached by the Study, by the store file's state (:meth:`Study.state`), which the page polls
to refresh itself while a sweep writes; every request is read-only.

Shape: :func:`create_app` only assembles the app; each route parses its request and asks one
method of :class:`Dashboard`, which applies the request's bounds and asks the
:class:`~scalinglab.study.study.Study`. Every chart and figure comes from the one chart table
(:mod:`scalinglab.report.chart_table`), which the report's sections draw from too
(``tests/test_thin_faces.py`` keeps it so).

Safety: the app answers only for loopback host names (and those the user names), so a web page
on another origin cannot reach the store through DNS rebinding; the work one request can ask
for is bounded (runs per curve request, pins, bootstrap resamples, filters). Every error the
user can cause answers with ``{"detail": message}`` and a status chosen by the error's *type*
(:data:`STATUS`), worded for a person (never pydantic's or DuckDB's raw text, never a trace).

Every number and table the page shows is rendered by :mod:`scalinglab.summary`, and every
chart is a Plotly spec from the chart table, the same as the report's.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

import pandas as pd
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from scalinglab.errors import (
    InputError,
    NotIdentifiable,
    ParameterError,
    ScalingLabError,
    StoreBusy,
    StoreError,
)
from scalinglab.fit.result import FitResult
from scalinglab.fit.validate import RollingForward
from scalinglab.laws.loss import PUBLISHED_LOSS_LAWS
from scalinglab.report import chart_table, dashboard_api, figures, sections, views
from scalinglab.report.chart_table import ChartInputs
from scalinglab.runs.store import RunStore
from scalinglab.serialize import to_json
from scalinglab.stats import DEFAULT_BOOTSTRAP
from scalinglab.study import analysis
from scalinglab.study.study import Study
from scalinglab.summary import NotIdentified, Table, format_number

#: seconds a request waits for a sweep's write lock before answering 503
LOCK_WAIT_S = 5.0
#: interactive charts (Plotly specs): every chart of the one chart table, as the report draws them
CHARTS = tuple(chart_table.TABLE)
#: static figures (PNG/SVG) the API draws, as ``report --figures`` saves them
FIGURES = chart_table.figure_ids()
#: the fields of a run ``/api/runs`` lists
RUN_FIELDS = ("run_id", "name", "N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay",
              "seq_len", "tags", "status", "error", "source")
#: bounds on the work one request may ask for
MAX_CURVE_RUNS = 40
MAX_PINS = 6
MAX_TAGS = 20
MAX_BOOTSTRAP = 2000
#: a pin's rolling-forward check refits once per cut-off: at most this many cut-offs, each with
#: at most this many bootstrap resamples (its errors do not depend on them, only its bands' coverage)
MAX_ROLLING_CUTOFFS = 3
MAX_ROLLING_BOOTSTRAP = 100
#: host names the dashboard answers for without being told (see ``serve --host``)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_render_lock = threading.Lock()  # matplotlib is not thread-safe across figures' text rendering

#: HTTP status of each library error, most specific first: a busy store is worth retrying (503),
#: data that cannot answer the question is unprocessable (422), a bad argument is a bad request
STATUS: tuple[tuple[type[ScalingLabError], int], ...] = (
    (StoreBusy, 503), (NotIdentifiable, 422), (InputError, 422), (ParameterError, 400),
    (StoreError, 400), (ScalingLabError, 400),
)


def status_of(exc: ScalingLabError) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


class ApiError(Exception):
    """An error answered as ``{"detail": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _unprocessable(fn: Callable[[], Any]) -> Any:
    """Run a fit whose request was well-formed: a refusal of the data answers 422."""
    try:
        return fn()
    except StoreBusy:
        raise
    except NotIdentifiable as exc:
        raise ApiError(422, f"not identifiable: {exc}") from None
    except (InputError, ParameterError) as exc:
        raise ApiError(422, str(exc)) from None


def _json(obj: Any, status: int = 200) -> Response:
    """JSON with NaN as null, via the CLI's encoder, so the page and ``--json`` agree."""
    return Response(to_json(obj), status_code=status, media_type="application/json")


def parse_budget(text: str | None, name: str = "compute") -> float | None:
    """``1e21``, ``7B``, ``1.4T``, ``2,048`` as the CLI reads them; a clear 400 otherwise."""
    if text is None or str(text).strip() == "":
        return None
    from scalinglab.values import EXAMPLES, parse_quantity

    try:
        value = parse_quantity(text)
    except ValueError:
        raise ApiError(400, f"{name} {text!r} is not a number ({EXAMPLES})") from None
    if not (math.isfinite(value) and value > 0):
        raise ApiError(400, f"{name} must be a positive number, not {text!r}")
    return float(value)


#: pydantic's error types -> what a person reads (the value is quoted beside it)
_PLAIN = {
    "int_parsing": "is not a whole number", "int_from_float": "is not a whole number",
    "float_parsing": "is not a number", "bool_parsing": "is not true or false",
    "missing": "is required", "literal_error": "must be one of {expected}",
    "greater_than_equal": "must be at least {ge}", "less_than_equal": "must be at most {le}",
    "greater_than": "must be more than {gt}", "less_than": "must be less than {lt}",
}


def plain_validation_message(errors: Iterable[dict[str, Any]]) -> str:
    """FastAPI's validation errors worded for a person: ``bootstrap 'many' is not a whole
    number`` rather than pydantic's ``Input should be a valid integer``."""
    out = []
    for err in errors:
        where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path"))
        kind = err.get("type", "")
        template = _PLAIN.get(kind, "is not valid")
        ctx = {k: (format_number(v) if isinstance(v, (int, float)) else v)
               for k, v in (err.get("ctx") or {}).items()}
        try:
            text = template.format(**ctx)
        except (KeyError, IndexError):
            text = "is not valid"
        value = err.get("input")
        shown = "" if kind == "missing" or value is None or isinstance(value, dict) else f" {value!r}"
        out.append(f"{where}{shown} {text}".strip())
    return "bad request: " + "; ".join(out)


# -- what the routes ask: the Study, through one request's filters and bounds -----------------


@dataclass
class FitQuery:
    """A fit as a request asks for it (``law``, ``tag``, ``bootstrap``, ``holdout``)."""

    law: str
    tag: list[str]
    bootstrap: int
    holdout: int


@dataclass
class ChartQuery:
    """A chart or figure as a request asks for it: the fit's parameters and the chart's own."""

    fit: FitQuery
    run_id: list[str]
    x: str
    smooth: float
    compute: float | None
    N: float | None
    D: float | None

    def key(self) -> tuple[Any, ...]:
        f = self.fit
        return (f.law, tuple(sorted(f.tag)), f.bootstrap, f.holdout, tuple(self.run_id), self.x,
                round(self.smooth, 3), self.compute, self.N, self.D)


class Dashboard:
    """The dashboard's questions over the :class:`~scalinglab.study.study.Study`: each route
    parses its request and asks one method here, which applies the request's bounds and turns
    the Study's answer into the page's JSON. The Study owns the store, its state and the cache
    (keys carry the request's ``--where`` filter too); a store that does not exist yet reads as
    an empty one."""

    def __init__(self, store_path: str | Path, bootstrap: int, seed: int,
                 allowed_hosts: Sequence[str], results: Iterable[Any]) -> None:
        from scalinglab.report import saved as saved_results

        self.path = Path(store_path)
        self.bootstrap = bootstrap
        self.hosts = {h.lower().strip("[]") for h in (*LOOPBACK, *allowed_hosts)}
        self.saved: list[Any] = []
        for r in results:  # in the order given; read once, here
            self.saved += ([r] if isinstance(r, saved_results.SavedResult)
                           else saved_results.load_saved([r]))
        self.study = Study(self.path, bootstrap=bootstrap, seed=seed, lock_timeout_s=LOCK_WAIT_S,
                           filter=dashboard_api.apply_where, state_suffix=dashboard_api.where_key,
                           missing_store=dashboard_api.EmptyStore)

    # -- the request's filters and bounds --------------------------------------------------

    def store(self) -> RunStore:
        return self.study.store()  # type: ignore[no-any-return]

    def tags_of(self, tag: list[str]) -> dict[str, str]:
        if len(tag) > MAX_TAGS:
            raise ApiError(400, f"at most {MAX_TAGS} tag filters per request, not {len(tag)}")
        return analysis.parse_tag_filters(tag)

    def select(self, tag: list[str], status: str = "finished") -> pd.DataFrame:
        return self.study.runs(self.tags_of(tag), status=None if status == "all" else status)

    def check_law(self, law: str) -> None:
        if law not in analysis.loss_laws():
            raise ApiError(400, f"unknown law {law!r}; choose from {', '.join(analysis.loss_laws())}")

    def fitted(self, law: str, tag: list[str], boot: int, holdout: int = 0) -> FitResult:
        self.check_law(law)
        tags = self.tags_of(tag)
        return _unprocessable(lambda: self.study.fit(law, tags=tags, bootstrap=boot,  # type: ignore[no-any-return]
                                                     holdout=holdout))

    def rolled(self, law: str, tag: list[str], boot: int) -> RollingForward | str:
        """A pin's rolling-forward check (bounded), or why there is none; cached per store
        state like the fits."""
        self.check_law(law)
        tags, boot = self.tags_of(tag), min(boot, MAX_ROLLING_BOOTSTRAP)

        def compute() -> RollingForward | str:
            outcome = analysis.attempt(lambda: self.study.rolling(
                law, tags=tags, bootstrap=boot, steps=MAX_ROLLING_CUTOFFS))
            return outcome.value if outcome.ok else str(outcome.error)

        return self.study.cached(("rolling-or-why", law, tuple(sorted(tags.items())), boot),  # type: ignore[no-any-return]
                                 compute)

    def isoflop(self, tag: list[str], boot: int) -> Any:
        tags = self.tags_of(tag)
        return _unprocessable(lambda: self.study.isoflop(tags=tags, bootstrap=boot))

    def pin(self, text: str) -> dict[str, Any]:
        """One pinned fit (``law=kaplan&tag=dataset:c4&holdout=3&bootstrap=100&where=...``)."""
        q = parse_qs(text, keep_blank_values=False)
        law = (q.get("law") or ["chinchilla"])[0]
        self.check_law(law)
        try:
            boot = int((q.get("bootstrap") or [str(self.bootstrap)])[0])
            holdout = int((q.get("holdout") or ["0"])[0])
        except ValueError:
            raise ApiError(400, f"pin {text!r}: bootstrap and holdout are whole numbers") from None
        if not (0 <= boot <= MAX_BOOTSTRAP and 0 <= holdout <= 1000):
            raise ApiError(400, f"pin {text!r}: bootstrap must be 0 to {MAX_BOOTSTRAP}, holdout 0 to 1000")
        tag = [t for v in q.get("tag", []) for t in v.split(",") if t.strip()]
        self.tags_of(tag)
        return {"law": law, "tag": tag, "bootstrap": boot, "holdout": holdout, "text": text,
                "where": " ".join(q.get("where", [])).strip()}

    # -- the store -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What the page polls: a token that changes when the store does, and the counts."""
        counts = self.study.cached(("counts",), lambda: self.store().counts())
        # where the sweep writing the store stands (sweep/runner records it): done, running,
        # failed and its ETA, shown in the header while it runs
        sweep = (self.study.cached(("sweep",), lambda: self.store().sweep_progress())
                 if self.path.exists() else None)
        return {"version": self.study.state(), "counts": counts, "store_exists": self.path.exists(),
                "sweep": sweep}

    def summary(self) -> dict[str, Any]:
        s, runs = self.store(), self.select([])
        budget = analysis.default_budget(runs)
        return {
            "store": str(self.path), "store_exists": self.path.exists(),
            "version": self.study.state(), "counts": s.counts(), "tags": s.tag_values(),
            "laws": analysis.loss_laws(), "published_laws": sorted(PUBLISHED_LOSS_LAWS),
            "grids": [{"N": n, "D": d} for n, d in analysis.grid_keys(runs)],
            "default_compute": budget, "default_compute_text": format_number(budget, 3),
            "default_bootstrap": self.bootstrap, "figures": list(FIGURES), "charts": list(CHARTS),
            "chart_titles": {k: chart_table.TABLE[k].title for k in CHARTS},
            "limits": {"curve_runs": MAX_CURVE_RUNS, "pins": MAX_PINS, "bootstrap": MAX_BOOTSTRAP},
        }

    def runs(self, tag: list[str], status: str, limit: int) -> dict[str, Any]:
        df = self.select(tag, status)
        shown = df.head(limit)
        table_cols = ["run_id", "name", "N", "D", "C", "loss", "lr", "batch_tokens", "tags"] + (
            ["status", "error"] if status != "finished" else [])
        table = sections.runs_table(shown, columns=table_cols) if len(shown) else None
        return {"count": len(df), "shown": len(shown),
                "runs": shown[[c for c in RUN_FIELDS if c in df]].to_dict("records"),
                "html": "" if table is None else table.as_html()}

    def run(self, run_id: str) -> dict[str, Any]:
        """One run: its record, its table and its loss curve (the chart table's curves chart)."""
        s = self.store()
        try:
            rec = s.run(run_id)
        except KeyError:
            raise ApiError(404, f"no run {run_id!r} in {self.path}") from None
        curve, info = s.curve(run_id), pd.DataFrame([rec])
        v = ChartInputs(info, curves=lambda: ({run_id: curve} if len(curve) else {}, info))
        return {"run": rec, "html": views.run_table(rec).as_html(),
                "curve": curve.to_dict("list"), "chart": chart_table.spec("curves", v)}

    def curves(self, run_id: list[str], runs: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
        """The curves a chart draws: the runs named (each must exist), else up to
        :data:`MAX_CURVE_RUNS` of ``runs`` spread over compute; with the runs they belong to."""
        s = self.store()
        if not run_id:
            return analysis.collect_curves(s, runs, MAX_CURVE_RUNS), runs
        every = s.runs(status=None)
        missing = [r for r in run_id if r not in set(every["run_id"].astype(str))]
        if missing:
            raise ApiError(404, f"no run {missing[0]!r} in {self.path}")
        return s.curves(list(run_id)), every[every["run_id"].isin(list(run_id))]

    # -- fits, comparisons, the plan -------------------------------------------------------

    def fit(self, q: FitQuery) -> dict[str, Any]:
        result = self.fitted(q.law, q.tag, q.bootstrap, q.holdout)
        summary = result.summary()
        heldout = sections.holdout_table(result).as_html() if result.holdout is not None else ""
        return {"fit": summary.to_dict(), "title": figures.fit_title(result),
                "summary": figures.param_summary(result),
                "params_html": summary.tables[0].as_html(), "summary_html": summary.as_html(),
                "heldout_html": heldout}

    def compare(self, pins: list[str], compute: str | None) -> dict[str, Any]:
        """Pinned fits side by side (:func:`comparison_table`), each with its own filter."""
        if not pins:
            raise ApiError(400, "pin at least one fit to compare")
        if len(pins) > MAX_PINS:
            raise ApiError(400, f"at most {MAX_PINS} pinned fits, not {len(pins)}")
        budget = parse_budget(compute)
        specs = [self.pin(p) for p in pins]
        results: list[FitResult | str] = []
        checks: list[RollingForward | str] = []
        for p in specs:
            with dashboard_api.filtered_by(p["where"]):  # each pin keeps its own --where filter
                try:
                    results.append(self.fitted(p["law"], p["tag"], p["bootstrap"], p["holdout"]))
                except ApiError as exc:
                    results.append(exc.message)
                checks.append(self.rolled(p["law"], p["tag"], p["bootstrap"]))
        budget = budget if budget is not None else analysis.default_budget(self.select([]))
        return {"pins": specs, "compute": budget,
                "html": comparison_table(specs, results, budget, checks).as_html(),
                "errors": [r if isinstance(r, str) else None for r in results],
                "rolling": [r.to_dict() if isinstance(r, RollingForward) else {"error": r}
                            for r in checks]}

    def plan(self, q: FitQuery, compute: str, seq_len: int | None,
             batch_tokens: str | None) -> dict[str, Any]:
        """A plan from a fitted (or published) law and the runs' lr/batch law; a plan the fit
        does not identify answers why, as ``scalinglab plan`` says it, not an error status."""
        from scalinglab.plan.planner import make_plan

        budget = parse_budget(compute)
        batch = parse_budget(batch_tokens, "batch_tokens")
        loss_law: Any = (PUBLISHED_LOSS_LAWS[q.law] if q.law in PUBLISHED_LOSS_LAWS
                         else self.fitted(q.law, q.tag, q.bootstrap, q.holdout))
        laws, _ = self.study.hparams(tags=self.tags_of(q.tag))
        ctx = analysis.run_context(self.select(q.tag))
        seq = seq_len or ctx.seq_len or 2048
        fixed = batch or ctx.batch_tokens
        basis = (f"sequence length {seq} ({'given' if seq_len else 'the runs' if ctx.seq_len else 'default'}); "
                 + (f"batch {format_number(fixed)} tokens ({'given' if batch else 'the runs'})"
                    if fixed else "batch from the lr/batch law"))
        try:
            result = make_plan(compute=budget, loss_law=loss_law, seq_len=seq,
                               hparams_law=laws.get("fitted", laws["steplaw"]),
                               **({"batch_tokens": fixed} if fixed else {}))
        except NotIdentifiable as exc:
            label = getattr(getattr(loss_law, "instance", None), "label", q.law)
            return {"refused": str(exc), "compute": budget, "mode": "no plan",
                    "loss_law": {"label": label}, "warnings": [], "basis": basis,
                    "html": sections.plan_refused(str(exc))}
        return {**result.to_dict(), "html": sections.plan_table(result).as_html(), "basis": basis}

    # -- charts, figures, sections ---------------------------------------------------------

    def chart_inputs(self, q: ChartQuery) -> ChartInputs:
        """What the chart table draws from for this request: the Study's answers, asked for
        only when the chart needs them."""
        f, tags, runs = q.fit, self.tags_of(q.fit.tag), self.select(q.fit.tag)
        keys = analysis.grid_keys(runs)
        grid = (q.N, q.D) if q.N is not None and q.D is not None else (keys[0] if keys else None)

        def rolling() -> RollingForward:
            r = self.rolled(f.law, f.tag, f.bootstrap)
            if isinstance(r, str):
                raise InputError(f"no rolling-forward check: {r}")
            return r

        return ChartInputs(
            runs, law=f.law, compute=q.compute, grid=grid, x=q.x, smooth=q.smooth, forecast=True,
            filtered=bool(f.tag) or bool(dashboard_api.current_where()),
            fit=lambda: self.study.fit(f.law, tags=tags, bootstrap=f.bootstrap, holdout=f.holdout),
            isoflop=lambda: self.study.isoflop(tags=tags, bootstrap=f.bootstrap),
            hparams=lambda: self.study.hparams(tags=tags)[0], rolling=rolling,
            curves=lambda: self.curves(q.run_id, runs), picked=q.run_id,
            curves_of=lambda ids: self.store().curves(ids))

    def chart(self, name: str, q: ChartQuery) -> dict[str, Any]:
        """A Plotly spec of one chart of the chart table, cached per store state."""
        if name not in CHARTS:
            raise ApiError(404, f"no chart {name!r}; charts are {', '.join(CHARTS)}")
        self._check_chart(q)

        def draw() -> dict[str, Any]:
            v = self.chart_inputs(q)  # a bad filter is the request's fault (400), not the data's
            return _unprocessable(lambda: chart_table.spec(name, v))  # type: ignore[no-any-return]

        return self.study.cached(("chart", name, *q.key()), draw)  # type: ignore[no-any-return]

    def figure(self, name: str, ext: str, q: ChartQuery) -> Response:
        """A static figure of the chart table, as PNG or SVG."""
        if ext not in ("png", "svg"):
            raise ApiError(404, f"figures come as .png or .svg, not .{ext}")
        if name not in FIGURES:
            raise ApiError(404, f"no figure {name!r}; figures are {', '.join(FIGURES)}")
        self._check_chart(q)
        v = self.chart_inputs(q)
        with _render_lock:
            try:
                fig = _unprocessable(lambda: chart_table.figure(name, v))
            except ValueError as exc:  # e.g. no grid at this (N, D)
                raise ApiError(422, str(exc)) from None
            if ext == "png":
                return Response(figures.to_png(fig), media_type="image/png")
            return Response(figures.to_svg(fig), media_type="image/svg+xml")

    def _check_chart(self, q: ChartQuery) -> None:
        self.check_law(q.fit.law)
        if len(q.run_id) > MAX_CURVE_RUNS:
            raise ApiError(400, f"at most {MAX_CURVE_RUNS} runs per curve chart, not {len(q.run_id)}")

    def more_sections(self, tag: list[str], boot: int) -> dict[str, Any]:
        """Saved results (``serve --result``) and registered sections, rendered as in the
        report: HTML and chart specs."""
        from scalinglab.report import saved as saved_results

        saved = self.study.cache.get(("saved results",), lambda: [  # read once: they never change
            saved_results.section_payload(sec) for sec in saved_results.saved_sections(self.saved)])
        if not sections._BUILDERS and not sections.SECTION_MODULES:
            return {"sections": saved}
        tags = self.tags_of(tag)

        def build() -> list[dict[str, Any]]:
            summary = self.study.summarise(tags=tags, bootstrap=boot)
            return [saved_results.section_payload(sec)
                    for sec in sections.extra_sections(summary, self.store())]

        return {"sections": saved + self.study.cached(
            ("sections", tuple(sorted(tags.items())), boot), build)}


@functools.cache
def _plotly_js() -> str:
    from scalinglab.report.html import plotly_js

    return plotly_js()


def _queries(default_bootstrap: int) -> tuple[Callable[..., FitQuery], Callable[..., ChartQuery]]:
    """The query parameters every fit and chart route reads, as FastAPI dependencies (the
    bootstrap default is the app's)."""

    def fit_query(
        law: str = "chinchilla",
        tag: list[str] = Query(default=[]),
        bootstrap_: int = Query(default=default_bootstrap, ge=0, le=MAX_BOOTSTRAP, alias="bootstrap"),
        holdout: int = Query(default=0, ge=0, le=1000),
    ) -> FitQuery:
        return FitQuery(law, list(tag), bootstrap_, holdout)

    def chart_query(
        fit: FitQuery = Depends(fit_query),
        run_id: list[str] = Query(default=[]),
        x: Literal["tokens", "flops", "wall", "step"] = "tokens",
        smooth: float = Query(default=0.6, ge=0.0, le=0.99),
        compute: str | None = None,
        N: float | None = Query(default=None, gt=0),
        D: float | None = Query(default=None, gt=0),
    ) -> ChartQuery:
        return ChartQuery(fit, list(run_id), x, smooth, parse_budget(compute), N, D)

    return fit_query, chart_query


# -- the app: thin routes over the Dashboard ---------------------------------------------------


def create_app(store_path: str | Path, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0,
               allowed_hosts: Sequence[str] = (), results: Iterable[Any] = ()) -> FastAPI:
    """The dashboard app for the store at ``store_path``; a store that does not exist yet shows
    as an empty one until the file appears (:class:`~scalinglab.report.dashboard_api.EmptyStore`).

    ``allowed_hosts`` adds host names the app answers for to the loopback ones. ``results``:
    saved results (files, or :class:`~scalinglab.report.saved.SavedResult` s) shown in the "More
    results" panel as the report shows them; files are read once, here, and a file that is not a
    saved result refuses the app.
    """
    d = Dashboard(store_path, bootstrap, seed, allowed_hosts, results)
    app = FastAPI(title="scalinglab dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    _guard(app, d)
    app.add_middleware(dashboard_api.WhereMiddleware)
    dashboard_api.register(app, d.path, d.select, fitted=d.fitted, parse_pin=d.pin)
    fit_query, chart_query = _queries(bootstrap)
    _page_routes(app)
    _store_routes(app, d)
    _fit_routes(app, d, fit_query)
    _chart_routes(app, d, fit_query, chart_query)
    return app


def _guard(app: FastAPI, d: Dashboard) -> None:
    """Loopback host names only (DNS rebinding), and every error as ``{"detail": message}``."""

    @app.middleware("http")
    async def _only_local_names(request: Request, call_next: Callable[[Request], Any]) -> Response:
        host = request.headers.get("host", "")
        name = host.rsplit("]", 1)[0].lstrip("[") if host.startswith("[") else host.split(":")[0]
        if name.lower() not in d.hosts:
            return _json({"detail": f"this dashboard answers only for {', '.join(sorted(d.hosts))}, "
                          f"not {name!r} (add a name with scalinglab serve --host)"}, 403)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return _json({"detail": exc.message}, exc.status)

    @app.exception_handler(ScalingLabError)
    async def _library_error(_: Request, exc: ScalingLabError) -> Response:
        if isinstance(exc, StoreBusy):
            # the store already retried for LOCK_WAIT_S: a writer (a sweep) holds the file
            return _json({"detail": f"the run store {d.path} is busy: another process (a sweep?) "
                          "is writing to it; retry in a moment"}, 503)
        prefix = "not identifiable: " if isinstance(exc, NotIdentifiable) else ""
        return _json({"detail": prefix + str(exc)}, status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> Response:
        return _json({"detail": plain_validation_message(exc.errors())}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return _json({"detail": str(exc.detail)}, exc.status_code)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> Response:
        # library errors (the user's) are handled above; anything else is ours
        return _json({"detail": f"internal error ({type(exc).__name__}): {exc}"}, 500)


def _page_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        page = resources.files("scalinglab.report").joinpath("templates/dashboard.html")
        return HTMLResponse(page.read_text(encoding="utf-8"))

    @app.get("/static/plotly.js")
    def plotly() -> Response:
        """plotly.js from the installed ``plotly`` package: the page loads nothing from the web."""
        return Response(_plotly_js(), media_type="application/javascript",
                        headers={"Cache-Control": "max-age=86400"})


def _store_routes(app: FastAPI, d: Dashboard) -> None:
    @app.get("/api/state")
    def current_state() -> Response:
        return _json(d.state())

    @app.get("/api/summary")
    def summary() -> Response:
        return _json(d.summary())

    @app.get("/api/runs")
    def runs(
        tag: list[str] = Query(default=[]),
        status: Literal["finished", "failed", "running", "all"] = "finished",
        limit: int = Query(default=2000, ge=1, le=100000),
    ) -> Response:
        return _json(d.runs(tag, status, limit))

    @app.get("/api/run")
    def run_by_query(id: str = Query(min_length=1, max_length=512)) -> Response:  # noqa: A002
        """One run by ``?id=`` (any characters, ``/`` included)."""
        return _json(d.run(id))

    @app.get("/api/runs/{run_id:path}")
    def run(run_id: str) -> Response:
        return _json(d.run(run_id))


def _fit_routes(app: FastAPI, d: Dashboard, fit_query: Callable[..., FitQuery]) -> None:
    @app.get("/api/fit")
    def fit(q: FitQuery = Depends(fit_query)) -> Response:
        return _json(d.fit(q))

    @app.get("/api/isoflop")
    def isoflop_fit(q: FitQuery = Depends(fit_query)) -> Response:
        result = d.isoflop(q.tag, q.bootstrap)
        return _json({**result.to_dict(), "summary_html": result.summary().as_html()})

    @app.get("/api/compare")
    def compare(pin: list[str] = Query(default=[]), compute: str | None = None) -> Response:
        """Pinned fits side by side: each ``pin`` a query string (``law=kaplan&tag=dataset:c4&
        holdout=3&bootstrap=100``); one column per pin, rows the laws, filters, parameters,
        held-out and rolling-forward errors and the optimum at ``compute``. The rolling-forward
        check fits below at most :data:`MAX_ROLLING_CUTOFFS` cut-offs (with at most
        :data:`MAX_ROLLING_BOOTSTRAP` resamples), the pin's holdout aside: it holds out by
        compute itself."""
        return _json(d.compare(pin, compute))

    @app.get("/api/plan")
    def plan(
        q: FitQuery = Depends(fit_query),
        compute: str = Query(min_length=1, max_length=64),
        seq_len: int | None = Query(default=None, ge=1, le=1_000_000),
        batch_tokens: str | None = Query(default=None, max_length=64),
    ) -> Response:
        return _json(d.plan(q, compute, seq_len, batch_tokens))


def _chart_routes(app: FastAPI, d: Dashboard, fit_query: Callable[..., FitQuery],
                  chart_query: Callable[..., ChartQuery]) -> None:
    @app.get("/api/charts/{name}")
    def chart(name: str, q: ChartQuery = Depends(chart_query)) -> Response:
        """A Plotly spec of one chart of the chart table (:data:`CHARTS`)."""
        return _json(d.chart(name, q))

    @app.get("/api/charts-extra/parallel")
    def parallel(q: ChartQuery = Depends(chart_query)) -> Response:
        """Parallel coordinates of the runs that set lr and batch (the page's older path)."""
        return _json(d.chart("parallel", q))

    @app.get("/api/charts-extra/seeds")
    def seeds(q: ChartQuery = Depends(chart_query)) -> Response:
        """Runs that differ only in their seed, as mean ± band (the page's older path)."""
        return _json(d.chart("seeds", q))

    @app.get("/api/figures/{name}.{ext}")
    def figure(name: str, ext: str, q: ChartQuery = Depends(chart_query)) -> Response:
        """A static figure (:data:`FIGURES`) as PNG or SVG."""
        return d.figure(name, ext, q)

    @app.get("/api/sections")
    def more_sections(q: FitQuery = Depends(fit_query)) -> Response:
        """Saved results (``serve --result``) and sections registered with
        :func:`scalinglab.report.sections.register_section`, rendered as in the report."""
        return _json(d.more_sections(q.tag, q.bootstrap))


def comparison_table(pins: Sequence[dict[str, Any]], results: Sequence[FitResult | str],
                     compute: float, rolling: Sequence[RollingForward | str] | None = None) -> Table:
    """Pinned fits as columns: law, filter, runs, every parameter, fit quality, held-out error,
    the rolling-forward error (``rolling``, one per pin: of all forward predictions, of the last
    cut-off and by distance in compute) and the compute-optimal N and loss at ``compute`` (a
    pin that failed says why)."""
    heads = [f"pin {i + 1}" for i in range(len(pins))]
    t = Table("Pinned fits side by side", [""] + heads, symbols=True)
    fits = [r for r in results if not isinstance(r, str)]

    def row(label: str, fn: Callable[[FitResult], Any]) -> None:
        t.add_row(label, *(r if isinstance(r, str) and label == "law" else
                           ("-" if isinstance(r, str) else _safe(fn, r)) for r in results))

    t.add_row("law", *(p["law"] if not isinstance(r, str) else f"{p['law']}: {r}"
                       for p, r in zip(pins, results, strict=True)))
    t.add_row("filter", *(", ".join([*p["tag"], *([p["where"]] if p.get("where") else [])])
                          or "all runs" for p in pins))
    t.add_row("bootstrap, holdout", *(f"{p['bootstrap']}, {p['holdout']}" for p in pins))
    row("runs fitted", lambda f: f.n_runs)
    names = list(dict.fromkeys(n for f in fits for n in f.law.param_names))
    for name in names:
        row(name, lambda f, name=name: f.estimates().get(name, "-"))
    row("σ of log-loss residuals", lambda f: f.residual_std)
    row("held-out runs", lambda f: len(f.heldout_ids) if f.holdout is not None else "none")
    row("held-out mean |error|", lambda f: f"{100 * f.holdout.mean_abs_rel_err:.2f}%"
        if f.holdout is not None else "-")
    row("held-out max |error|", lambda f: f"{100 * f.holdout.max_abs_rel_err:.2f}%"
        if f.holdout is not None else "-")
    if rolling is not None:
        rolling_rows(t, rolling)
    row(f"N_opt at C = {format_number(compute, 3)}",
        lambda f: f.optimum(compute).N if {"N", "D"} <= set(f.law.inputs) else "-")
    row(f"loss at C = {format_number(compute, 3)}",
        lambda f: f.optimum(compute).loss if {"N", "D"} <= set(f.law.inputs) else "-")
    return t


def rolling_rows(t: Table, checks: Sequence[RollingForward | str]) -> None:
    """Rows of ``t`` (one column per pin) for each pin's rolling-forward check: its cut-offs,
    mean |error| of all forward predictions and of the last cut-off's, by distance in compute,
    and the new-run band's coverage; a pin without one says why."""
    done = [r for r in checks if isinstance(r, RollingForward)]

    def row(label: str, fn: Callable[[RollingForward], Any]) -> None:
        t.add_row(label, *(fn(r) if isinstance(r, RollingForward) else "-" for r in checks))

    t.add_row("rolling forward: cut-offs fitted",
              *(f"{sum(s['status'].startswith('ok') for s in r.steps)} of {len(r.steps)}"
                if isinstance(r, RollingForward) else f"none: {r}" for r in checks))
    row("rolling forward: mean |error|", lambda r: _share(r.mean_abs_rel_err))
    row("rolling forward: mean |error|, last cut-off", lambda r: _share(last_cutoff_error(r)))
    bins = list(dict.fromkeys(tuple(b["decades"]) for r in done for b in r.by_distance()))
    for a, b in sorted(bins):
        def at(r: RollingForward, a: float = a, b: float = b) -> str:
            mine = [x for x in r.by_distance() if tuple(x["decades"]) == (a, b)]
            return f"{_share(mine[0]['mean_abs_rel_err'])} ({mine[0]['n']})" if mine else "-"

        row(f"rolling forward: mean |error| at ({a:g}, {b:g}] decades of C", at)
    row("rolling forward: inside the new-run band",
        lambda r: _share(r._coverage("new_lo", "new_hi", r.predictions), 0))


def last_cutoff_error(r: RollingForward) -> float:
    """Mean |relative error| of the predictions made from the last (largest) cut-off."""
    if not r.predictions:
        return float("nan")
    last = max(p["cutoff"] for p in r.predictions)
    errs = [p["abs_rel_err"] for p in r.predictions if p["cutoff"] == last]
    return float(sum(errs) / len(errs))


def _share(x: float, digits: int = 2) -> str:
    return "-" if not math.isfinite(x) else f"{100 * x:.{digits}f}%"


def _safe(fn: Callable[[FitResult], Any], fit: FitResult) -> Any:
    try:
        value = fn(fit)
    except (ScalingLabError, ArithmeticError, ValueError) as exc:
        return f"({exc})"
    if hasattr(value, "identified") and not value.identified:
        return NotIdentified(value.value)
    return value


def serve(store_path: str | Path, port: int = 8765, bootstrap: int = DEFAULT_BOOTSTRAP, host: str = "127.0.0.1",
          allowed_hosts: Sequence[str] = (), results: Iterable[Any] = ()) -> None:
    """Run the dashboard with uvicorn on ``host`` (loopback by default) until interrupted.

    The app has no authentication and shows whatever the store holds: it answers only for
    loopback names and ``allowed_hosts``.
    """
    import uvicorn

    uvicorn.run(create_app(store_path, bootstrap=bootstrap, allowed_hosts=allowed_hosts,
                           results=results),
                host=host, port=port, log_level="warning")
