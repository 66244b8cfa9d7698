"""The local dashboard: a FastAPI app over a run store, opened read-only per request.

A sweep may be writing the same DuckDB file; DuckDB lets one process hold it at a time, so the
app never keeps a connection open: each request opens the store read-only (the store retries a
held lock briefly) and answers 503 with a clear message if the writer keeps it longer. Fits are
cached by the store file's state so figures and plans after a fit reuse it. Every error the user
can cause answers with ``{"detail": message}`` and a 400/404/422 status, never a stack trace.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from scalinglab.clikit import UserError, to_json
from scalinglab.errors import ScalingLabError, StoreBusy
from scalinglab.fit.result import FitResult, NotIdentifiable
from scalinglab.laws.loss import PUBLISHED_LOSS_LAWS
from scalinglab.report import analysis, figures
from scalinglab.runs.store import RunStore

#: seconds a request waits for a sweep's write lock before answering 503
LOCK_WAIT_S = 5.0
FIGURES = ("loss", "residuals", "bootstrap", "isoflop", "allocation", "heatmap", "curves")
_render_lock = threading.Lock()  # matplotlib is not thread-safe across figures' text rendering


class ApiError(Exception):
    """An error answered as ``{"detail": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Cache:
    """A small LRU of computed results, keyed by the store's file state and the request."""

    def __init__(self, size: int = 32) -> None:
        self.items: OrderedDict[Any, Any] = OrderedDict()
        self.size = size
        self.lock = threading.Lock()
        self.key_locks: dict[Any, threading.Lock] = {}

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            key_lock = self.key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one computation per key even when the page asks in parallel
            with self.lock:
                if key in self.items:
                    return self.items[key]
            try:
                value = compute()
            finally:
                with self.lock:
                    self.key_locks.pop(key, None)
            with self.lock:
                self.items[key] = value
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
            return value


def _unprocessable(fn: Callable[[], Any]) -> Any:
    """Run a fit whose request was well-formed: any refusal (too few runs, not identifiable,
    a fit engine's UserError) is about the data, so it answers 422."""
    try:
        return fn()
    except ApiError:
        raise
    except UserError as exc:
        raise ApiError(422, exc.message) from None
    except NotIdentifiable as exc:
        raise ApiError(422, f"not identifiable: {exc}") from None
    except ValueError as exc:  # the fit engine's refusals of data it cannot use
        raise ApiError(422, str(exc)) from None


def _json(obj: Any, status: int = 200) -> Response:
    """JSON with NaN as null, via the CLI's encoder, so the page and ``--json`` agree."""
    return Response(to_json(obj), status_code=status, media_type="application/json")


def create_app(store_path: str | Path, bootstrap: int = 100, seed: int = 0) -> FastAPI:
    """The dashboard app for the store at ``store_path`` (which must exist)."""
    path = Path(store_path)
    if not path.exists():
        raise UserError(f"{path}: no run store here (import runs or run a sweep first)")
    app = FastAPI(title="scalinglab dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    cache = _Cache()

    def store() -> RunStore:
        return RunStore(path, read_only=True, lock_timeout_s=LOCK_WAIT_S)

    def state() -> tuple[int, ...]:
        """Changes whenever the store file (or its WAL) does, invalidating cached fits."""
        stats = [p.stat() for p in (path, path.with_name(path.name + ".wal")) if p.exists()]
        return tuple(x for s in stats for x in (s.st_mtime_ns, s.st_size))

    def select(tag: list[str], status: str = "finished") -> pd.DataFrame:
        tags = analysis.parse_tag_filters(tag)
        return store().runs(status=None if status == "all" else status, tags=tags or None)

    def fitted(law: str, tag: list[str], boot: int, holdout: int = 0) -> FitResult:
        if law not in analysis.LOSS_LAWS:
            raise ApiError(400, f"unknown law {law!r}; choose from {list(analysis.LOSS_LAWS)}")
        tags = analysis.parse_tag_filters(tag)
        key = ("fit", state(), law, tuple(sorted(tags.items())), boot, holdout)
        return cache.get(key, lambda: _unprocessable(
            lambda: analysis.fit_loss_law(select(tag), law, boot, holdout, seed)))

    def isoflop(tag: list[str], boot: int) -> Any:
        tags = analysis.parse_tag_filters(tag)
        key = ("iso", state(), tuple(sorted(tags.items())), boot)
        return cache.get(key, lambda: _unprocessable(
            lambda: analysis.fit_isoflop(select(tag), boot, seed)))

    def hparam_laws(tag: list[str]) -> tuple[dict[str, Any], str | None]:
        tags = analysis.parse_tag_filters(tag)
        key = ("hp", state(), tuple(sorted(tags.items())))
        return cache.get(key, lambda: analysis.hparam_laws(select(tag), bootstrap, seed))

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return _json({"detail": exc.message}, exc.status)

    @app.exception_handler(UserError)
    async def _user_error(_: Request, exc: UserError) -> Response:
        if "cannot open the run store" in exc.message and "lock" in exc.message.lower():
            # the store already retried for LOCK_WAIT_S: a writer (a sweep) holds the file
            return _json({"detail": f"the run store {path} is busy: another process (a sweep?) "
                          "is writing to it; retry in a moment"}, 503)
        return _json({"detail": exc.message}, 400)

    @app.exception_handler(StoreBusy)
    async def _store_busy(_: Request, exc: StoreBusy) -> Response:
        # the store already retried for LOCK_WAIT_S: a writer (a sweep) holds the file
        return _json({"detail": f"the run store {path} is busy: another process (a sweep?) "
                      "is writing to it; retry in a moment"}, 503)

    @app.exception_handler(ScalingLabError)
    async def _library_error(_: Request, exc: ScalingLabError) -> Response:
        return _json({"detail": str(exc)}, 400)

    @app.exception_handler(NotIdentifiable)
    async def _not_identifiable(_: Request, exc: NotIdentifiable) -> Response:
        return _json({"detail": f"not identifiable: {exc}"}, 422)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> Response:
        msgs = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path"))
            msgs.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
        return _json({"detail": "bad request: " + "; ".join(msgs)}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return _json({"detail": str(exc.detail)}, exc.status_code)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> Response:
        return _json({"detail": f"internal error ({type(exc).__name__}): {exc}"}, 500)

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        page = resources.files("scalinglab.report").joinpath("templates/dashboard.html")
        return HTMLResponse(page.read_text(encoding="utf-8"))

    @app.get("/api/summary")
    def summary() -> Response:
        s = store()
        runs = s.runs()
        return _json({
            "store": str(path), "counts": s.counts(), "tags": s.tag_values(),
            "laws": list(analysis.LOSS_LAWS), "published_laws": sorted(PUBLISHED_LOSS_LAWS),
            "grids": [{"N": n, "D": d} for n, d in analysis.grid_keys(runs)],
            "default_compute": analysis.default_budget(runs), "figures": list(FIGURES),
        })

    @app.get("/api/runs")
    def runs(
        tag: list[str] = Query(default=[]),
        status: Literal["finished", "failed", "running", "all"] = "finished",
        limit: int = Query(default=2000, ge=1, le=100000),
    ) -> Response:
        df = select(tag, status)
        cols = ["run_id", "N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay", "tags",
                "status", "error", "source"]
        return _json({"count": len(df), "runs": df[cols].head(limit).to_dict("records")})

    @app.get("/api/runs/{run_id}")
    def run(run_id: str) -> Response:
        s = store()
        try:
            rec = s.run(run_id)
        except KeyError:
            raise ApiError(404, f"no run {run_id!r} in {path}") from None
        return _json({"run": rec, "curve": s.curve(run_id).to_dict("list")})

    @app.get("/api/fit")
    def fit(
        law: str = "chinchilla",
        tag: list[str] = Query(default=[]),
        bootstrap_: int = Query(default=bootstrap, ge=0, le=2000, alias="bootstrap"),
        holdout: int = Query(default=0, ge=0, le=1000),
    ) -> Response:
        result = fitted(law, tag, bootstrap_, holdout)
        return _json({"fit": result.to_dict(), "title": figures.fit_title(result),
                      "summary": figures.param_summary(result)})

    @app.get("/api/isoflop")
    def isoflop_fit(tag: list[str] = Query(default=[]),
                    bootstrap_: int = Query(default=bootstrap, ge=0, le=2000, alias="bootstrap")
                    ) -> Response:
        result = isoflop(tag, bootstrap_)
        return _json(result.to_dict() if hasattr(result, "to_dict") else {"result": str(result)})

    @app.get("/api/plan")
    def plan(
        compute: float = Query(gt=0),
        law: str = "chinchilla",
        tag: list[str] = Query(default=[]),
        bootstrap_: int = Query(default=bootstrap, ge=0, le=2000, alias="bootstrap"),
        holdout: int = Query(default=0, ge=0, le=1000),
    ) -> Response:
        if law in PUBLISHED_LOSS_LAWS:
            loss_law: Any = PUBLISHED_LOSS_LAWS[law]
        else:
            loss_law = fitted(law, tag, bootstrap_, holdout)
        laws, _ = hparam_laws(tag)
        from scalinglab.plan.planner import make_plan

        result = make_plan(compute=compute, loss_law=loss_law,
                           hparams_law=laws.get("fitted", laws["steplaw"]))
        return _json(result.to_dict())

    @app.get("/api/figures/{name}.{ext}")
    def figure(
        name: str,
        ext: str,
        law: str = "chinchilla",
        tag: list[str] = Query(default=[]),
        bootstrap_: int = Query(default=bootstrap, ge=0, le=2000, alias="bootstrap"),
        holdout: int = Query(default=0, ge=0, le=1000),
        run_id: list[str] = Query(default=[]),
        N: float | None = Query(default=None, gt=0),
        D: float | None = Query(default=None, gt=0),
        compute: float | None = Query(default=None, gt=0),
    ) -> Response:
        if ext not in ("png", "svg"):
            raise ApiError(404, f"figures come as .png or .svg, not .{ext}")
        if name not in FIGURES:
            raise ApiError(404, f"no figure {name!r}; figures are {list(FIGURES)}")
        runs = select(tag)
        data = analysis.loss_runs(runs)
        build: Callable[[], Any]
        if name in ("loss", "residuals", "bootstrap"):
            result = fitted(law, tag, bootstrap_, holdout)
            build = {"loss": lambda: figures.loss_fit(data, result),
                     "residuals": lambda: figures.residuals(data, result),
                     "bootstrap": lambda: figures.bootstrap_distributions(result)}[name]
        elif name in ("isoflop", "allocation"):
            iso = isoflop(tag, bootstrap_)
            budget = compute or analysis.default_budget(runs)
            build = ((lambda: figures.isoflop_curves(data, iso)) if name == "isoflop"
                     else (lambda: figures.optimal_allocation(iso, planned_compute=budget)))
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
            if run_id:
                curves = {rid: c for rid in run_id if not (c := s.curve(rid)).empty}
            else:
                curves = analysis.collect_curves(s, runs)
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


def serve(store_path: str | Path, port: int = 8765, bootstrap: int = 100) -> None:
    """Run the dashboard with uvicorn on 127.0.0.1 until interrupted.

    Loopback only: the app has no authentication and shows whatever the store holds.
    """
    import uvicorn

    uvicorn.run(create_app(store_path, bootstrap=bootstrap), host="127.0.0.1", port=port,
                log_level="warning")
