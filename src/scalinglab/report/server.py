"""The local dashboard: a FastAPI app over a run store, opened read-only per request.

A sweep may be writing the same DuckDB file; DuckDB lets one process hold it at a time, so the
app never keeps a connection open: each request opens the store read-only (the store retries a
held lock briefly) and answers 503 with a clear message if the writer keeps it longer. Results
are cached by the store file's state (:func:`store_state`), which the page polls to refresh
itself while a sweep writes; every request is read-only.

Safety: the app answers only for loopback host names (and those the user names), so a web page
on another origin cannot reach the store through DNS rebinding; the work one request can ask
for is bounded (runs per curve request, pins, bootstrap resamples, filters). Every error the
user can cause answers with ``{"detail": message}`` and a status chosen by the error's *type*
(:data:`STATUS`), worded for a person (never pydantic's or DuckDB's raw text, never a trace).

Every number and table the page shows is rendered here, by :mod:`scalinglab.summary`, and every
chart is a Plotly spec from :mod:`scalinglab.report.charts`, the same as the report's.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

import pandas as pd
from fastapi import FastAPI, Query, Request
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
from scalinglab.report import charts, figures, sections, views
from scalinglab.runs.store import RunStore
from scalinglab.serialize import to_json
from scalinglab.stats import DEFAULT_BOOTSTRAP
from scalinglab.study import analysis
from scalinglab.study.cache import store_state  # noqa: F401  (the page's refresh token)
from scalinglab.study.study import Study
from scalinglab.summary import NotIdentified, Table, format_number

#: seconds a request waits for a sweep's write lock before answering 503
LOCK_WAIT_S = 5.0
#: static figures (PNG/SVG) the API draws, as ``report --figures`` saves them
FIGURES = ("parity", "residuals", "corner", "isoflop", "allocation", "heatmap", "curves")
#: interactive charts (Plotly specs)
CHARTS = ("overview", "parity", "residuals", "corner", "isoflop", "allocation", "heatmap", "curves")
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


def create_app(store_path: str | Path, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0,
               allowed_hosts: Sequence[str] = (), results: Iterable[Any] = ()) -> FastAPI:
    """The dashboard app for the store at ``store_path``; a store that does not exist yet shows
    as an empty one until the file appears (:class:`~scalinglab.report.dashboard_api.EmptyStore`).

    ``allowed_hosts`` adds host names the app answers for to the loopback ones. ``results``:
    saved results (files, or :class:`~scalinglab.report.saved.SavedResult` s) shown in the "More
    results" panel as the report shows them; files are read once, here, and a file that is not a
    saved result refuses the app.
    """
    from scalinglab.report import dashboard_api
    from scalinglab.report import saved as saved_results

    path = Path(store_path)
    saved: list[saved_results.SavedResult] = []
    for r in results:  # in the order given
        saved += [r] if isinstance(r, saved_results.SavedResult) else saved_results.load_saved([r])
    saved_payload: list[dict[str, Any]] = []  # built on first request: results do not change
    saved_lock = threading.Lock()
    app = FastAPI(title="scalinglab dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    # the Study owns the store, its state and the cache: every route asks it (keys carry the
    # request's --where filter too); a store that does not exist yet reads as an empty one
    study = Study(path, bootstrap=bootstrap, seed=seed, lock_timeout_s=LOCK_WAIT_S,
                  filter=dashboard_api.apply_where, state_suffix=dashboard_api.where_key,
                  missing_store=dashboard_api.EmptyStore)
    cache = study.cache
    hosts = {h.lower().strip("[]") for h in (*LOOPBACK, *allowed_hosts)}

    def store() -> RunStore:
        return study.store()  # type: ignore[no-any-return]

    def state() -> str:
        return study.state()

    def tags_of(tag: list[str]) -> dict[str, str]:
        if len(tag) > MAX_TAGS:
            raise ApiError(400, f"at most {MAX_TAGS} tag filters per request, not {len(tag)}")
        return analysis.parse_tag_filters(tag)

    def select(tag: list[str], status: str = "finished") -> pd.DataFrame:
        return study.runs(tags_of(tag), status=None if status == "all" else status)

    def check_law(law: str) -> None:
        if law not in analysis.loss_laws():
            raise ApiError(400, f"unknown law {law!r}; choose from {', '.join(analysis.loss_laws())}")

    def fitted(law: str, tag: list[str], boot: int, holdout: int = 0) -> FitResult:
        check_law(law)
        tags = tags_of(tag)
        return _unprocessable(lambda: study.fit(law, tags=tags, bootstrap=boot, holdout=holdout))

    def rolled(law: str, tag: list[str], boot: int) -> RollingForward | str:
        """A pin's rolling-forward check (bounded), or why there is none; cached per store
        state like the fits."""
        check_law(law)
        tags = tags_of(tag)
        boot = min(boot, MAX_ROLLING_BOOTSTRAP)

        def compute() -> RollingForward | str:
            outcome = analysis.attempt(lambda: study.rolling(
                law, tags=tags, bootstrap=boot, steps=MAX_ROLLING_CUTOFFS))
            return outcome.value if outcome.ok else str(outcome.error)

        return study.cached(("rolling-or-why", law, tuple(sorted(tags.items())), boot), compute)

    def isoflop(tag: list[str], boot: int) -> Any:
        tags = tags_of(tag)
        return _unprocessable(lambda: study.isoflop(tags=tags, bootstrap=boot))

    def isoflop_or_none(tag: list[str], boot: int) -> Any:
        try:
            return isoflop(tag, boot)
        except ApiError:
            return None

    def hparam_laws(tag: list[str]) -> tuple[dict[str, Any], str | None]:
        return study.hparams(tags=tags_of(tag))  # type: ignore[no-any-return]

    def budgets(tag: list[str], boot: int) -> views.Budgets:
        return views.budgets_of(select(tag), isoflop_or_none(tag, boot))

    # -- safety and errors -----------------------------------------------------------------

    @app.middleware("http")
    async def _only_local_names(request: Request, call_next: Callable[[Request], Any]) -> Response:
        host = request.headers.get("host", "")
        name = host.rsplit("]", 1)[0].lstrip("[") if host.startswith("[") else host.split(":")[0]
        if name.lower() not in hosts:
            return _json({"detail": f"this dashboard answers only for {', '.join(sorted(hosts))}, "
                          f"not {name!r} (add a name with scalinglab serve --host)"}, 403)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return _json({"detail": exc.message}, exc.status)

    @app.exception_handler(ScalingLabError)
    async def _library_error(_: Request, exc: ScalingLabError) -> Response:
        if isinstance(exc, StoreBusy):
            # the store already retried for LOCK_WAIT_S: a writer (a sweep) holds the file
            return _json({"detail": f"the run store {path} is busy: another process (a sweep?) "
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

    app.add_middleware(dashboard_api.WhereMiddleware)
    dashboard_api.register(app, path, select, store, fitted=lambda *a: fitted(*a),
                           parse_pin=lambda text: _pin(text))

    # -- the page --------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        page = resources.files("scalinglab.report").joinpath("templates/dashboard.html")
        return HTMLResponse(page.read_text(encoding="utf-8"))

    plotly_js: list[str] = []

    @app.get("/static/plotly.js")
    def plotly() -> Response:
        """plotly.js from the installed ``plotly`` package: the page loads nothing from the web."""
        if not plotly_js:
            from scalinglab.report.html import plotly_js as load

            plotly_js.append(load())
        return Response(plotly_js[0], media_type="application/javascript",
                        headers={"Cache-Control": "max-age=86400"})

    # -- the store -------------------------------------------------------------------------

    @app.get("/api/state")
    def current_state() -> Response:
        """What the page polls: a token that changes when the store does, and the counts."""
        token = state()
        counts = cache.get(("counts", token), lambda: store().counts())
        return _json({"version": token, "counts": counts, "store_exists": path.exists()})

    @app.get("/api/summary")
    def summary() -> Response:
        s = store()
        token = state()
        runs = select([])
        return _json({
            "store": str(path), "store_exists": path.exists(), "version": token,
            "counts": s.counts(), "tags": s.tag_values(),
            "laws": analysis.loss_laws(), "published_laws": sorted(PUBLISHED_LOSS_LAWS),
            "grids": [{"N": n, "D": d} for n, d in analysis.grid_keys(runs)],
            "default_compute": analysis.default_budget(runs),
            "default_compute_text": format_number(analysis.default_budget(runs), 3),
            "default_bootstrap": bootstrap, "figures": list(FIGURES), "charts": list(CHARTS),
            "limits": {"curve_runs": MAX_CURVE_RUNS, "pins": MAX_PINS, "bootstrap": MAX_BOOTSTRAP},
        })

    @app.get("/api/runs")
    def runs(
        tag: list[str] = Query(default=[]),
        status: Literal["finished", "failed", "running", "all"] = "finished",
        limit: int = Query(default=2000, ge=1, le=100000),
    ) -> Response:
        df = select(tag, status)
        cols = ["run_id", "name", "N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay",
                "seq_len", "tags", "status", "error", "source"]
        shown = df.head(limit)
        table_cols = ["run_id", "name", "N", "D", "C", "loss", "lr", "batch_tokens", "tags"] + (
            ["status", "error"] if status != "finished" else [])
        table = sections.runs_table(shown, columns=table_cols) if len(shown) else None
        return _json({"count": len(df), "shown": len(shown),
                      "runs": df[[c for c in cols if c in df]].head(limit).to_dict("records"),
                      "html": "" if table is None else table.as_html()})

    def run_payload(run_id: str) -> dict[str, Any]:
        s = store()
        try:
            rec = s.run(run_id)
        except KeyError:
            raise ApiError(404, f"no run {run_id!r} in {path}") from None
        curve = s.curve(run_id)
        spec = (charts.loss_curves(views.curve_series({run_id: curve}, pd.DataFrame([rec]),
                                                      "tokens", 0.6), 0.6)
                if len(curve) else charts.empty("no loss curve recorded for this run"))
        return {"run": rec, "html": views.run_table(rec).as_html(),
                "curve": curve.to_dict("list"), "chart": spec}

    @app.get("/api/run")
    def run_by_query(id: str = Query(min_length=1, max_length=512)) -> Response:  # noqa: A002
        """One run by ``?id=`` (any characters, ``/`` included)."""
        return _json(run_payload(id))

    @app.get("/api/runs/{run_id:path}")
    def run(run_id: str) -> Response:
        return _json(run_payload(run_id))

    # -- fits ------------------------------------------------------------------------------

    @app.get("/api/fit")
    def fit(
        law: str = "chinchilla",
        tag: list[str] = Query(default=[]),
        bootstrap_: int = Query(default=bootstrap, ge=0, le=MAX_BOOTSTRAP, alias="bootstrap"),
        holdout: int = Query(default=0, ge=0, le=1000),
    ) -> Response:
        result = fitted(law, tag, bootstrap_, holdout)
        summary = result.summary()
        heldout = (sections.holdout_table(result).as_html() if result.holdout is not None else "")
        return _json({"fit": summary.to_dict(), "title": figures.fit_title(result),
                      "summary": figures.param_summary(result),
                      "params_html": summary.tables[0].as_html(), "summary_html": summary.as_html(),
                      "heldout_html": heldout})

    @app.get("/api/isoflop")
    def isoflop_fit(tag: list[str] = Query(default=[]),
                    bootstrap_: int = Query(default=bootstrap, ge=0, le=MAX_BOOTSTRAP,
                                            alias="bootstrap")) -> Response:
        result = isoflop(tag, bootstrap_)
        return _json({**result.to_dict(), "summary_html": result.summary().as_html()})

    @app.get("/api/compare")
    def compare(
        pin: list[str] = Query(default=[]),
        compute: str | None = None,
    ) -> Response:
        """Pinned fits side by side: each ``pin`` a query string (``law=kaplan&tag=dataset:c4&
        holdout=3&bootstrap=100``); one column per pin, rows the laws, filters, parameters,
        held-out and rolling-forward errors and the optimum at ``compute``. The rolling-forward
        check fits below at most :data:`MAX_ROLLING_CUTOFFS` cut-offs (with at most
        :data:`MAX_ROLLING_BOOTSTRAP` resamples), the pin's holdout aside: it holds out by
        compute itself."""
        if not pin:
            raise ApiError(400, "pin at least one fit to compare")
        if len(pin) > MAX_PINS:
            raise ApiError(400, f"at most {MAX_PINS} pinned fits, not {len(pin)}")
        budget = parse_budget(compute)
        specs = [_pin(p) for p in pin]
        results: list[FitResult | str] = []
        checks: list[RollingForward | str] = []
        for p in specs:
            with dashboard_api.filtered_by(p["where"]):  # each pin keeps its own --where filter
                try:
                    results.append(fitted(p["law"], p["tag"], p["bootstrap"], p["holdout"]))
                except ApiError as exc:
                    results.append(exc.message)
                checks.append(rolled(p["law"], p["tag"], p["bootstrap"]))
        if budget is None:
            budget = analysis.default_budget(select([]))
        return _json({"pins": specs, "compute": budget,
                      "html": comparison_table(specs, results, budget, checks).as_html(),
                      "errors": [r if isinstance(r, str) else None for r in results],
                      "rolling": [r.to_dict() if isinstance(r, RollingForward) else {"error": r}
                                  for r in checks]})

    def _pin(text: str) -> dict[str, Any]:
        q = parse_qs(text, keep_blank_values=False)
        law = (q.get("law") or ["chinchilla"])[0]
        check_law(law)
        try:
            boot = int((q.get("bootstrap") or [str(bootstrap)])[0])
            holdout = int((q.get("holdout") or ["0"])[0])
        except ValueError:
            raise ApiError(400, f"pin {text!r}: bootstrap and holdout are whole numbers") from None
        if not (0 <= boot <= MAX_BOOTSTRAP and 0 <= holdout <= 1000):
            raise ApiError(400, f"pin {text!r}: bootstrap must be 0 to {MAX_BOOTSTRAP}, holdout 0 to 1000")
        tag = [t for v in q.get("tag", []) for t in v.split(",") if t.strip()]
        tags_of(tag)
        return {"law": law, "tag": tag, "bootstrap": boot, "holdout": holdout, "text": text,
                "where": " ".join(q.get("where", [])).strip()}

    @app.get("/api/plan")
    def plan(
        compute: str = Query(min_length=1, max_length=64),
        law: str = "chinchilla",
        tag: list[str] = Query(default=[]),
        bootstrap_: int = Query(default=bootstrap, ge=0, le=MAX_BOOTSTRAP, alias="bootstrap"),
        holdout: int = Query(default=0, ge=0, le=1000),
        seq_len: int | None = Query(default=None, ge=1, le=1_000_000),
        batch_tokens: str | None = Query(default=None, max_length=64),
    ) -> Response:
        budget = parse_budget(compute)
        batch = parse_budget(batch_tokens, "batch_tokens")
        if law in PUBLISHED_LOSS_LAWS:
            loss_law: Any = PUBLISHED_LOSS_LAWS[law]
        else:
            loss_law = fitted(law, tag, bootstrap_, holdout)
        laws, _ = hparam_laws(tag)
        ctx = analysis.run_context(select(tag))
        seq = seq_len or ctx.seq_len or 2048
        fixed = batch or ctx.batch_tokens
        from scalinglab.plan.planner import make_plan

        basis = (f"sequence length {seq} ({'given' if seq_len else 'the runs' if ctx.seq_len else 'default'}); "
                 + (f"batch {format_number(fixed)} tokens ({'given' if batch else 'the runs'})"
                    if fixed else "batch from the lr/batch law"))
        try:
            result = make_plan(compute=budget, loss_law=loss_law, seq_len=seq,
                               hparams_law=laws.get("fitted", laws["steplaw"]),
                               **({"batch_tokens": fixed} if fixed else {}))
        except NotIdentifiable as exc:
            # the fit does not identify what the plan needs: the panel shows why and which
            # runs would identify it, as `scalinglab plan` says it, not an error status
            label = getattr(getattr(loss_law, "instance", None), "label", law)
            return _json({"refused": str(exc), "compute": budget, "mode": "no plan",
                          "loss_law": {"label": label}, "warnings": [], "basis": basis,
                          "html": sections.plan_refused(str(exc))})
        return _json({**result.to_dict(), "html": sections.plan_table(result).as_html(),
                      "basis": basis})

    # -- charts ----------------------------------------------------------------------------

    @app.get("/api/charts/{name}")
    def chart(
        name: str,
        law: str = "chinchilla",
        tag: list[str] = Query(default=[]),
        bootstrap_: int = Query(default=bootstrap, ge=0, le=MAX_BOOTSTRAP, alias="bootstrap"),
        holdout: int = Query(default=0, ge=0, le=1000),
        run_id: list[str] = Query(default=[]),
        x: Literal["tokens", "flops", "wall", "step"] = "tokens",
        smooth: float = Query(default=0.6, ge=0.0, le=0.99),
        compute: str | None = None,
        N: float | None = Query(default=None, gt=0),
        D: float | None = Query(default=None, gt=0),
    ) -> Response:
        """A Plotly spec of one chart (see :data:`CHARTS`), cached per store state."""
        if name not in CHARTS:
            raise ApiError(404, f"no chart {name!r}; charts are {', '.join(CHARTS)}")
        if len(run_id) > MAX_CURVE_RUNS:
            raise ApiError(400, f"at most {MAX_CURVE_RUNS} runs per curve chart, not {len(run_id)}")
        budget = parse_budget(compute)
        key = ("chart", state(), name, law, tuple(sorted(tag)), bootstrap_, holdout,
               tuple(run_id), x, round(smooth, 3), budget, N, D)
        return _json(cache.get(key, lambda: build_chart(
            name, law, tag, bootstrap_, holdout, run_id, x, smooth, budget, N, D)))

    def build_chart(name: str, law: str, tag: list[str], boot: int, holdout: int,
                    run_id: list[str], x: str, smooth: float, budget: float | None,
                    N: float | None, D: float | None) -> dict[str, Any]:
        runs = select(tag)
        if name == "overview":
            try:
                fit = fitted(law, tag, boot, holdout) if not runs.empty else None
            except ApiError:
                fit = None
            return charts.runs_by_budget(runs, budgets(tag, boot), fit)
        if runs.empty and name != "curves":
            return charts.empty("no finished runs match this filter" if tag else
                                "no finished runs yet: this chart appears as runs arrive")
        data = analysis.loss_runs(runs)
        if name in ("parity", "residuals", "corner"):
            fit = fitted(law, tag, boot, holdout)
            if name == "corner":
                if not fit.n_draws:
                    return charts.empty("no bootstrap draws: fit with bootstrap > 0 to see them",
                                        "Bootstrap draws")
                return charts.corner(views.corner_data(fit))
            b = budgets(tag, boot)
            points = views.fit_points(data, fit, b)
            return (charts.parity if name == "parity" else charts.residuals)(points, fit, b)
        if name == "isoflop":
            try:
                iso = isoflop(tag, boot)
            except ApiError as exc:  # the raw profiles still show, with why there is no fit
                return dashboard_api.raw_isoflop(data, exc.message)
            return charts.isoflop(views.isoflop_series(data, iso), iso)
        if name == "allocation":
            iso = isoflop_or_none(tag, boot)
            try:
                fit = fitted(law, tag, boot, holdout)
            except ApiError:
                fit = None
            fit = fit if fit is not None and {"N", "D"} <= set(fit.law.inputs) else None
            planned = budget or analysis.default_budget(runs)
            C = views.compute_grid(iso, fit, planned)
            curves = ([views.loss_law_allocation(fit, C)] if fit is not None else []) + (
                views.isoflop_allocations(iso, C) if iso is not None else [])
            if not curves:
                return charts.empty("neither an IsoFLOP fit nor a loss law of N and D fits these runs")
            top = float(runs["C"].max())
            return charts.allocation(curves, views.budget_optima(iso) if iso is not None else {},
                                     planned, top)
        if name == "heatmap":
            keys = analysis.grid_keys(runs)
            if not keys and (N is None or D is None):
                raise ApiError(422, "no lr × batch grid in these runs")
            n, d = (N, D) if N is not None and D is not None else keys[0]
            laws, _ = hparam_laws(tag)
            try:
                grid = figures.pick_grid(runs, n, d)
            except ValueError as exc:
                raise ApiError(422, str(exc)) from None
            return charts.lr_batch(grid, analysis.predictions_at(laws, n, d))
        # curves
        s = store()
        if run_id:
            every = s.runs(status=None)
            known = set(every["run_id"].astype(str))
            missing = [r for r in run_id if r not in known]
            if missing:
                raise ApiError(404, f"no run {missing[0]!r} in {path}")
            curves = s.curves(list(run_id))
            info = every[every["run_id"].isin(list(run_id))]
        else:
            curves = analysis.collect_curves(s, runs, MAX_CURVE_RUNS)
            info = runs
        spec = charts.loss_curves(views.curve_series(curves, info, x, smooth), smooth)
        from scalinglab.report.curve_report import add_forecasts  # a band past unfinished runs

        return add_forecasts(spec, curves, info)

    @app.get("/api/sections")
    def more_sections(
        tag: list[str] = Query(default=[]),
        bootstrap_: int = Query(default=bootstrap, ge=0, le=MAX_BOOTSTRAP, alias="bootstrap"),
    ) -> Response:
        """Saved results (``serve --result``) and sections registered with
        :func:`scalinglab.report.sections.register_section`, rendered as in the report: HTML and
        chart specs."""
        if saved and not saved_payload:
            with saved_lock:
                if not saved_payload:
                    saved_payload.extend(saved_results.section_payload(sec)
                                         for sec in saved_results.saved_sections(saved))
        if not sections._BUILDERS and not sections.SECTION_MODULES:
            return _json({"sections": saved_payload})
        tags = tags_of(tag)
        key = ("sections", state(), tuple(sorted(tags.items())), bootstrap_)

        def build() -> list[dict[str, Any]]:
            summary = study.summarise(tags=tags, bootstrap=bootstrap_)
            return [saved_results.section_payload(sec)
                    for sec in sections.extra_sections(summary, store())]

        return _json({"sections": saved_payload + cache.get(key, build)})

    # -- static figures --------------------------------------------------------------------

    @app.get("/api/figures/{name}.{ext}")
    def figure(
        name: str,
        ext: str,
        law: str = "chinchilla",
        tag: list[str] = Query(default=[]),
        bootstrap_: int = Query(default=bootstrap, ge=0, le=MAX_BOOTSTRAP, alias="bootstrap"),
        holdout: int = Query(default=0, ge=0, le=1000),
        run_id: list[str] = Query(default=[]),
        N: float | None = Query(default=None, gt=0),
        D: float | None = Query(default=None, gt=0),
        compute: str | None = None,
    ) -> Response:
        if ext not in ("png", "svg"):
            raise ApiError(404, f"figures come as .png or .svg, not .{ext}")
        if name not in FIGURES:
            raise ApiError(404, f"no figure {name!r}; figures are {', '.join(FIGURES)}")
        if len(run_id) > MAX_CURVE_RUNS:
            raise ApiError(400, f"at most {MAX_CURVE_RUNS} runs per curve figure, not {len(run_id)}")
        budget = parse_budget(compute)
        runs = select(tag)
        data = analysis.loss_runs(runs)
        build: Callable[[], Any]
        if name in ("parity", "residuals", "corner"):
            result = fitted(law, tag, bootstrap_, holdout)
            iso = isoflop_or_none(tag, bootstrap_)
            build = {"parity": lambda: figures.parity(data, result, iso),
                     "residuals": lambda: figures.residuals(data, result, iso=iso),
                     "corner": lambda: figures.corner(result)}[name]
        elif name in ("isoflop", "allocation"):
            iso = isoflop(tag, bootstrap_)
            planned = budget or analysis.default_budget(runs)
            build = ((lambda: figures.isoflop_curves(data, iso)) if name == "isoflop"
                     else (lambda: figures.optimal_allocation(iso, planned_compute=planned)))
        elif name == "heatmap":
            keys = analysis.grid_keys(runs)
            if not keys and (N is None or D is None):
                raise ApiError(422, "no lr × batch grid in these runs")
            n, d = (N, D) if N is not None and D is not None else keys[0]
            laws, _ = hparam_laws(tag)
            preds = analysis.predictions_at(laws, n, d)
            build = lambda: figures.lr_batch_heatmap(runs, n, d, preds)  # noqa: E731
        else:
            s = store()
            for rid in run_id:
                if not s.has_run(rid, status=None):
                    raise ApiError(404, f"no run {rid!r} in {path}")
            curves = s.curves(list(run_id)) if run_id else analysis.collect_curves(s, runs)
            if not curves:
                raise ApiError(404, "no loss curves recorded for these runs")
            every = s.runs(status=None)
            info = every[every["run_id"].isin(list(curves))]
            build = lambda: figures.loss_curves(curves, info)  # noqa: E731
        with _render_lock:
            try:
                fig = build()
            except ValueError as exc:  # e.g. no bootstrap draws, no grid at this (N, D)
                raise ApiError(422, str(exc)) from None
            if ext == "png":
                return Response(figures.to_png(fig), media_type="image/png")
            return Response(figures.to_svg(fig), media_type="image/svg+xml")

    return app


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
