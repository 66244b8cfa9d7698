"""Runs from an MLflow tracking store: a local ``mlruns`` folder or an SQLite database.

Read through MLflow's own client (``MlflowClient``), so every layout MLflow writes is read the way
MLflow reads it. Two things keep a read from writing:

- an SQLite store is read from a snapshot copy (SQLite's backup API on a read-only connection):
  MLflow's store migrates or initialises a database it opens (it created all of its tables in an
  unrelated SQLite file when tried), and neither may happen to the user's file;
- a path that does not exist is refused before MLflow sees it (it would create a new, empty
  store there).

MLflow 3 refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE`` is set: reading existing runs is
what that switch is for, so it is set for the duration of the read. The file store creates an
empty ``.trash`` folder in an ``mlruns`` that lacks one (a copy without empty folders); nothing
else is written.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scalinglab.errors import InputError, ParameterError, did_you_mean
from scalinglab.runs.trackers.base import (
    LR_SERIES,
    TOKEN_SERIES,
    RawRun,
    ReadSpec,
    Series,
    TrackerImport,
    build,
    clock,
    pick_loss_key,
    require,
    series,
    tracker_run_id,
)
from scalinglab.runs.trackers.final import FinalRule
from scalinglab.runs.trackers.settings import RunSettings
from scalinglab.safefile import check_input, confined_mirror, open_input

_PURPOSE = "reading an MLflow tracking store"

#: MLflow run status -> (scalinglab status, reason kept for a failed run)
STATUS = {
    "FINISHED": ("finished", None),
    "FAILED": ("failed", "MLflow status FAILED"),
    "KILLED": ("failed", "MLflow status KILLED (stopped by the user or a scheduler)"),
    "RUNNING": ("running", None),
    "SCHEDULED": ("running", None),
}
_SQLITE_MAGIC = b"SQLite format 3\x00"


@contextmanager
def _mlflow_env() -> Iterator[None]:
    """Allow the file store, and keep MLflow's and Alembic's INFO lines off the user's screen."""
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():  # SQLAlchemy deprecations inside MLflow's store
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = old
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _sqlite_path(text: str) -> Path | None:
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///"):])
    return None


def _check_mlflow_sqlite(path: Path, source: str) -> None:
    try:
        con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise InputError(f"cannot read the SQLite file: {exc}", source=source) from None
    if not {"experiments", "runs", "metrics", "params"} <= tables:
        raise InputError("an SQLite file, but not an MLflow tracking store (no experiments, "
                         "runs, metrics and params tables)", source=source)


def _snapshot(path: Path, into: Path, source: str) -> Path:
    """A consistent copy of an SQLite database (WAL included), read through a read-only handle."""
    copy = into / "mlflow.db"
    try:
        src = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        dst = sqlite3.connect(str(copy))
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    except sqlite3.Error as exc:
        raise InputError(f"cannot read the SQLite file: {exc}", source=source) from None
    return copy


def _resolve(path_or_uri: str | Path, tmp: Path) -> tuple[str, str]:
    """(tracking URI to give MLflow, what the store is, for notes). A file store is read
    through a mirror holding only what lies inside it (:func:`~scalinglab.safefile.
    confined_mirror`): a param or tag file linked to a file outside is not followed."""
    text = str(path_or_uri)
    source = text
    db = _sqlite_path(text)
    if db is None and "://" in text and not text.startswith("file://"):
        raise InputError("only a local mlruns folder, an SQLite file or a sqlite:/// URI can be "
                         "read (export a remote store's runs, or copy its database)", source=source)
    if db is None:
        path = Path(text[len("file://"):] if text.startswith("file://") else text)
        if not path.exists():
            raise InputError("no such file or folder (give an mlruns folder or an MLflow SQLite "
                             "file)", source=source)
        if path.is_dir():
            if not any((p / "meta.yaml").is_file() for p in path.iterdir() if p.is_dir()):
                raise InputError("not an MLflow mlruns folder (no experiment folder with a "
                                 "meta.yaml in it)", source=source)
            mirror = tmp / "mlruns"
            left_out = confined_mirror(path, mirror)
            kind = "file store"
            if left_out:
                shown = ", ".join(left_out[:3]) + (f" and {len(left_out) - 3} more"
                                                   if len(left_out) > 3 else "")
                kind += (f"; {len(left_out)} entr{'ies' if len(left_out) > 1 else 'y'} that "
                         f"link outside it or are not files left unread ({shown})")
            return "file://" + str(mirror), kind
        check_input(path)
        with open_input(path) as fh:
            if fh.read(16) != _SQLITE_MAGIC:
                raise InputError("neither an mlruns folder nor an SQLite file", source=source)
        db = path
    if not db.is_file():
        raise InputError("no such SQLite file", source=source)
    _check_mlflow_sqlite(db, source)
    return "sqlite:///" + str(_snapshot(db, tmp, source)), "SQLite store (read from a copy)"


def _history(client: Any, run_id: str, key: str, times: dict[str, Series] | None = None
             ) -> Series:
    """A metric's history; with ``times``, its timestamps (Unix ms) are kept there by key."""
    points = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    if times is not None:
        times[key] = series((m.step for m in points), (m.timestamp for m in points))
    return series((m.step for m in points), (m.value for m in points))


def _paged(call: Any, *args: Any, **kwargs: Any) -> list[Any]:
    out, token = [], None
    while True:
        page = call(*args, page_token=token, **kwargs)
        out.extend(page)
        token = page.token
        if not token:
            return out


def read_mlflow(
    path_or_uri: str | Path,
    experiment: str | None = None,
    loss_tag: str | None = None,
    eval_tag: str | None = None,
    mapping: Mapping[str, str] | None = None,
    settings: RunSettings | None = None,
    final: str | FinalRule = "last",
) -> TrackerImport:
    """Read the runs of an MLflow store.

    Parameters
    ----------
    path_or_uri
        An ``mlruns`` folder (or ``file://`` URI), an MLflow SQLite file or a ``sqlite:///`` URI.
    experiment
        An experiment name (or id); by default every active experiment's runs.
    loss_tag
        The metric holding the training loss; by default the one usual loss name logged.
    eval_tag
        A metric of held-out loss, kept on the curve and as ``eval_loss``.
    mapping
        scalinglab name -> param or metric name (its latest value), e.g. ``{"N": "n_params"}``;
        common param names (``n_params``, ``learning_rate``, ...) are recognised without one.
    settings
        Values given per run (keyed by run name or run id) or for all runs.
    final
        ``last``, ``min`` or ``ema:K`` over the loss metric's history.

    Run names and status carry over (FAILED and KILLED runs are kept as failed, with that
    reason; RUNNING as running), params become N/D/lr/batch or extras, tags become tags (MLflow's
    own ``mlflow.*`` tags are left out) with the experiment's name as tag ``experiment``.
    """
    source = str(path_or_uri)
    rule = FinalRule.parse(final)
    require("mlflow", _PURPOSE)
    tracking = require("mlflow.tracking", _PURPOSE)
    with tempfile.TemporaryDirectory(prefix="scalinglab-mlflow-") as tmp, _mlflow_env():
        uri, kind = _resolve(path_or_uri, Path(tmp))
        client = tracking.MlflowClient(tracking_uri=uri)
        try:
            return _read(client, source, kind, experiment, loss_tag, eval_tag, mapping,
                         settings, rule)
        except (InputError, ParameterError):
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow's own errors, as one line
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"MLflow cannot read it: {message}", source=source) from None
        finally:
            store = getattr(getattr(client, "_tracking_client", None), "store", None)
            engine = getattr(store, "engine", None)
            if engine is not None:  # let the temporary copy go
                engine.dispose()


def _read(client: Any, source: str, kind: str, experiment: str | None, loss_tag: str | None,
          eval_tag: str | None, mapping: Mapping[str, str] | None, settings: RunSettings | None,
          rule: FinalRule) -> TrackerImport:
    experiments = _paged(client.search_experiments, max_results=1000)
    if experiment is not None:
        chosen = [e for e in experiments if e.name == experiment or e.experiment_id == experiment]
        if not chosen:
            names = sorted(e.name for e in experiments)
            raise ParameterError(
                f"experiment {experiment!r} is not in {source}{did_you_mean(experiment, names)}; "
                f"experiments are {names}", "experiment",
            )
        experiments = chosen
    found = []
    for exp in sorted(experiments, key=lambda e: e.name):
        runs = _paged(client.search_runs, [exp.experiment_id], max_results=1000)
        found.extend((exp, r) for r in sorted(runs, key=lambda r: (r.info.start_time or 0,
                                                                     r.info.run_id)))
    if not found:
        where = f"experiment {experiment!r}" if experiment else "any experiment"
        raise InputError(f"no runs in {where}", source=source)
    metric_names = {k for _, r in found for k in r.data.metrics}
    key, note = pick_loss_key(loss_tag, metric_names, source, what="metric")
    notes = [f"read the {kind}"] + ([note] if note else [])
    if eval_tag is not None:
        pick_loss_key(eval_tag, metric_names, source, parameter="eval_tag", what="metric")
    # a sweep's parent run (Optuna, Ray Tune, nested runs) holds its children, not a training
    # run of its own: without a loss of its own it is left out rather than counted as crashed
    parents = {r.data.tags.get("mlflow.parentRunId") for _, r in found} - {None}
    containers = [(e, r) for e, r in found if r.info.run_id in parents and key not in r.data.metrics]
    if containers:
        found = [(e, r) for e, r in found if (e, r) not in containers]
        notes.append(f"{len(containers)} parent run{'s' if len(containers) > 1 else ''} of nested "
                     f"runs, with no {key!r} of their own, left out")
    mapping = dict(mapping or {})
    wanted_series = ({m for m in mapping.values() if m in metric_names} | set(TOKEN_SERIES)
                     | set(LR_SERIES))  # their histories, not only their latest values
    names = [r.info.run_name or r.info.run_id[:8] for _, r in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        notes.append(f"run names repeat ({', '.join(map(repr, repeated[:5]))}): a mapping file "
                     "can name runs by MLflow run id instead")
    raws = []
    for (exp, run), name in zip(found, names, strict=True):
        info, data = run.info, run.data
        status, error = STATUS.get(str(info.status), ("failed", f"MLflow status {info.status}"))
        scalars: dict[str, Series] = {k: series([0], [v]) for k, v in data.metrics.items()}
        for m in wanted_series & set(data.metrics):
            scalars[m] = _history(client, info.run_id, m)
        tags = {k: str(v) for k, v in data.tags.items() if not k.startswith("mlflow.")}
        tags.setdefault("experiment", exp.name)
        extra: dict[str, Any] = {"mlflow_run_id": info.run_id}
        if info.end_time and info.start_time:
            extra["wall_time_s"] = round((info.end_time - info.start_time) / 1000.0, 3)
        parent = data.tags.get("mlflow.parentRunId")
        if parent:
            extra["mlflow_parent_run_id"] = parent
        times: dict[str, Series] = {}
        loss = _history(client, info.run_id, key, times) if key in data.metrics else None
        eval_loss = (_history(client, info.run_id, eval_tag, times)
                     if eval_tag and eval_tag in data.metrics else None)
        # every metric point carries its timestamp (Unix ms); the run's clock starts at its
        # start_time (or its first point, if that is earlier: a clock set back)
        wall = clock([times.get(key), times.get(eval_tag) if eval_tag else None],
                     info.start_time if info.start_time else None)
        raws.append(RawRun(
            name=name,
            keys=(name, info.run_id),
            loss=loss,
            params=dict(data.params),
            scalars=scalars,
            eval_loss=eval_loss,
            wall=None if wall is None else (wall[0], wall[1] / 1000.0),
            clock="MLflow metric timestamps",
            status=status,
            error=error,
            tags=tags,
            extra=extra,
            run_id=tracker_run_id("mlflow", info.run_id),
        ))
    spec = ReadSpec(loss_key=key, final=rule, mapping=mapping, settings=settings or RunSettings(),
                    source=source, param_word="param")
    return build(raws, spec, notes)
