"""Runs from a W&B history export: long format, one row per logged step of a run.

The layout is what W&B's API gives (``run.history()``, ``api.runs(...).histories()``) written to
CSV, TSV, Parquet or JSONL: a run column (``run_id``/``id``, and/or ``name``), ``_step``,
``_runtime``, ``_timestamp`` and one column per metric. History rows are sparse: a row written by
an eval step has an empty training-loss cell, and that is "not logged here", not a missing
value. A cell reading ``nan`` or ``inf`` *was* logged, and a run whose loss becomes non-finite
diverged. (pandas writes NaN as an empty cell, so a frame saved with ``to_csv`` loses that
difference; the run then looks as if it stopped logging.)

The UI's panel export ("Export CSV" of a chart: ``Step`` and one ``RUN - METRIC`` column per
run, with ``__MIN``/``__MAX`` companions) is read too, as one history per run.

The W&B *runs* export (one row per run: ``Name``, ``State``, ``Tags``, config and summary
columns) is a plain run table: the store's import pipeline recognises it without this reader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import InputError, ParameterError, did_you_mean
from scalinglab.runs.cells import not_a_number, show_cell
from scalinglab.runs.schema import parse_number
from scalinglab.runs.trackers.base import (
    RawRun,
    ReadSpec,
    Series,
    TrackerImport,
    build,
    clock,
    pick_loss_key,
    series,
    tracker_run_id,
)
from scalinglab.runs.trackers.final import FinalRule
from scalinglab.runs.trackers.settings import RunSettings

ID_COLUMNS = ("run_id", "id", "run id", "ID")
NAME_COLUMNS = ("name", "Name", "run_name", "run", "Run", "display_name")
STEP_COLUMNS = ("_step", "step", "Step", "global_step")
STATE_COLUMNS = ("state", "State")
#: W&B run states -> (scalinglab status, reason for a failed run)
STATES = {
    "finished": ("finished", None),
    "crashed": ("failed", "W&B state crashed"),
    "failed": ("failed", "W&B state failed"),
    "killed": ("failed", "W&B state killed"),
    "running": ("running", None),
    "pending": ("running", None),
    "preempted": ("failed", "W&B state preempted"),
}
_META = {"_runtime", "_timestamp", "_wall_time"}


def _numbers(cells: pd.Series, column: str, labels: Mapping[int, str], source: str
             ) -> tuple[np.ndarray, np.ndarray]:
    """Cells -> (values, logged). Empty cells are not logged; 'nan'/'inf' are logged values."""
    if cells.dtype == object or pd.api.types.is_string_dtype(cells):
        text = cells.astype(str).str.strip()
        missing = cells.isna().to_numpy() | text.isin(["", "None", "null"]).to_numpy()
        values = pd.to_numeric(text.where(~missing, "nan"), errors="coerce").to_numpy(dtype=float)
        bad = np.isnan(values) & ~missing & ~text.str.lower().isin(["nan", "-nan"]).to_numpy()
        for i in np.flatnonzero(bad):
            try:
                values[i] = parse_number(text.iloc[i])  # 125M, 2,048
            except (TypeError, ValueError):
                raise InputError(not_a_number(cells.iloc[i]), source=source,
                                 row=labels.get(i, f"row {i + 1}"), column=column) from None
        return values, ~missing
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
    return values, ~np.isnan(values)


_PANEL_COLUMN = re.compile(r"^(?P<run>.+?) - (?P<metric>.+?)(?P<stat>__MIN|__MAX)?$")


def is_panel_export(columns: list[str]) -> bool:
    """The UI's panel export: ``Step`` and ``RUN - METRIC`` columns (with ``__MIN``/``__MAX``
    companions for sampled ranges), no run column."""
    if "Step" not in columns or any(c in columns for c in ID_COLUMNS + NAME_COLUMNS):
        return False
    rest = [c for c in columns if c != "Step"]
    return bool(rest) and all(_PANEL_COLUMN.match(c) for c in rest)


def panel_to_long(df: pd.DataFrame, labels: Mapping[int, str]) -> tuple[pd.DataFrame, dict[int, str]]:
    """One row per (run, step) from a panel export's one column per run and metric.

    The ``__MIN``/``__MAX`` columns are the range of the points W&B sampled into one plotted
    point; the plotted value itself is the curve.
    """
    series_cols: dict[str, dict[str, str]] = {}
    for c in df.columns:
        m = _PANEL_COLUMN.match(c)
        if c == "Step" or m is None or m["stat"]:
            continue
        series_cols.setdefault(m["run"], {})[m["metric"]] = c
    parts, out_labels = [], {}
    for run, metrics in series_cols.items():
        part = pd.DataFrame({"name": run, "_step": df["Step"],
                             **{metric: df[col] for metric, col in metrics.items()}})
        cells = part[list(metrics)].astype(str).apply(lambda s: s.str.strip())
        keep = (cells != "").any(axis=1).to_numpy()
        for i in np.flatnonzero(keep):
            out_labels[len(out_labels)] = f"{labels.get(int(i), f'row {int(i) + 1}')}, run {run!r}"
        parts.append(part[keep])
    return pd.concat(parts, ignore_index=True).fillna(""), out_labels


def _wall(parsed: Mapping[str, tuple[np.ndarray, np.ndarray]], idx: np.ndarray,
          steps: np.ndarray, keys: list[str]) -> tuple[Series | None, str]:
    """A run's clock along its curve. ``_runtime`` is seconds since ``wandb.init`` (the run's
    start) on every history row; a history with only ``_timestamp`` (Unix seconds) counts from
    its first row. At a step logged in several rows, the time of the row holding the loss
    wins (then the eval loss's): that is when that point was logged."""
    for meta, start, what in (("_runtime", 0.0, "W&B _runtime"),
                              ("_timestamp", None, "W&B _timestamp (from the first row)")):
        if meta not in parsed:
            continue
        t, ok = parsed[meta]
        t, ok = t[idx], ok[idx] & np.isfinite(t[idx])
        if not ok.any():
            continue
        parts: list[Series | None] = []
        for key in keys:
            if key in parsed:
                at = ok & parsed[key][1][idx]
                parts.append(series(steps[at], t[at]))
        parts.append(series(steps[ok], t[ok]))
        return clock(parts, start), what
    return None, ""


def _texts(column: pd.Series, lower: bool = False) -> np.ndarray:
    """A column as stripped text (missing: ""), as a numpy array to slice per run."""
    text = column.astype(object).where(column.notna(), "").astype(str).str.strip()
    return (text.str.lower() if lower else text).to_numpy(dtype=object)


def _last_text(texts: np.ndarray | None, idx: np.ndarray) -> str | None:
    """A run's last non-empty cell of a text column (its name, its state): a run renamed or
    resumed mid-history is what it was last; None without the column or a cell."""
    if texts is None:
        return None
    cells = texts[idx]
    cells = cells[cells != ""]
    return str(cells[-1]) if len(cells) else None


def read_wandb_history(
    path: str | Path,
    loss_tag: str | None = None,
    eval_tag: str | None = None,
    mapping: Mapping[str, str] | None = None,
    settings: RunSettings | None = None,
    final: str | FinalRule = "last",
) -> TrackerImport:
    """Read a long-format W&B history export.

    Parameters
    ----------
    path
        CSV, TSV, Parquet or JSONL, one row per logged step.
    loss_tag
        The metric column of the training loss (by default the one usual loss name present).
    eval_tag
        A metric column of held-out loss.
    mapping
        scalinglab name -> column: ``run`` (the run column), ``step`` (the step column) or a value
        (``N=n_params``: its last logged value for the run; a column mapped to D is also the
        curve's token axis).
    settings
        Values per run (keyed by run name or id) or for all runs.
    final
        ``last``, ``min`` or ``ema:K`` over each run's loss points.
    """
    from scalinglab.runs.io import read_table

    source = str(path)
    rule = FinalRule.parse(final)
    mapping = dict(mapping or {})
    df = read_table(path)
    # the lazy labels as they are: dict() of them resolved every row's line, one file scan each
    labels: Mapping[int, str] = df.attrs.get("row_labels", {})
    df = df.reset_index(drop=True)
    if df.empty:
        raise InputError("no rows", source=source)
    panel_notes: list[str] = []
    if "run" not in mapping and is_panel_export(list(df.columns)):
        df, labels = panel_to_long(df, labels)
        panel_notes.append("a W&B panel export (one column per run): read as one history per run")
    cols = list(df.columns)

    def column(role: str, choices: tuple[str, ...], required: bool) -> str | None:
        if role in mapping:
            name = mapping.pop(role)
            if name not in cols:
                raise ParameterError(f"mapping {role}={name}: no column {name!r} in {source}"
                                     f"{did_you_mean(name, cols)}; columns are {cols}", "mapping")
            return name
        found = next((c for c in choices if c in cols), None)
        if found is None and required:
            raise InputError(f"no {role} column (one of {list(choices)}); columns are {cols}",
                             source=source)
        return found

    run_col = column("run", ID_COLUMNS + NAME_COLUMNS, required=True)
    name_col = next((c for c in NAME_COLUMNS if c in cols and c != run_col), None) \
        if run_col in ID_COLUMNS else None
    step_col = column("step", STEP_COLUMNS, required=True)
    state_col = next((c for c in STATE_COLUMNS if c in cols), None)
    reserved = {run_col, name_col, step_col, state_col}
    metrics = [c for c in cols if c not in reserved and c not in _META]
    key, note = pick_loss_key(loss_tag, metrics, source, what="column")
    notes = panel_notes + [f"runs told apart by column {run_col!r}, steps from {step_col!r}"] + \
        ([note] if note else [])
    if eval_tag is not None:
        pick_loss_key(eval_tag, metrics, source, parameter="eval_tag", what="column")

    run_ids = df[run_col].astype(str).str.strip()
    if (run_ids == "").any() or df[run_col].isna().any():
        i = int(np.flatnonzero(((run_ids == "") | df[run_col].isna()).to_numpy())[0])
        raise InputError("the run is empty", source=source, row=labels.get(i), column=run_col)
    steps, logged = _numbers(df[step_col], step_col, labels, source)
    bad = ~logged | (np.isfinite(steps) & (steps != np.round(steps))) | ~np.isfinite(steps)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = ("the step is missing (every history row has one)" if not logged[i] else
                f"{show_cell(df[step_col].iloc[i])} is not a whole step number")
        raise InputError(what, source=source, row=labels.get(i), column=step_col)
    # a step past int64 wrapped to a negative one, reordering the curve and changing the
    # run's final loss without a word
    huge = np.abs(steps) >= 2.0**63
    if huge.any():
        i = int(np.flatnonzero(huge)[0])
        raise InputError(f"step {df[step_col].iloc[i]} is too large (at most 2^63 - 1)",
                         source=source, row=labels.get(i), column=step_col)
    parsed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    numeric_cols = []
    for c in metrics + [m for m in _META if m in cols]:
        try:
            parsed[c] = _numbers(df[c], c, labels, source)
            numeric_cols.append(c)
        except InputError:
            if c in (key, eval_tag) or c in mapping.values():
                raise
            # a text column (a config value, a tag): kept per run below if constant
    # every run's rows in one pass (factorize, one stable sort, split): a mask per run was
    # quadratic (10k runs 23 s, 100k runs > 300 s); per-run work below is numpy slicing only
    codes, order = pd.factorize(run_ids, sort=False)
    by_run = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(order)))[:-1]
    all_steps = steps.astype(np.int64)
    texts = {c: _texts(df[c]) for c in metrics if c not in parsed}
    names_all = _texts(df[name_col]) if name_col is not None else None
    states_all = _texts(df[state_col], lower=True) if state_col is not None else None
    raws = []
    for rid, idx in zip(order, np.split(by_run, bounds), strict=True):
        s = all_steps[idx]
        name = _last_text(names_all, idx) or rid
        scalars: dict[str, Series] = {}
        params: dict[str, Any] = {}
        for c in numeric_cols:
            v, ok = parsed[c]
            v, ok = v[idx], ok[idx]
            if not ok.any():
                continue
            vals = v[ok]
            scalars[c] = series(s[ok], vals)
            if c not in (key, eval_tag) and c not in _META and (vals == vals[0]).all():
                params[c] = float(vals[0])  # a value that never changes is a setting of the run
        for c, column_texts in texts.items():
            cells = column_texts[idx]
            cells = cells[cells != ""]
            if len(cells) and (cells == cells[0]).all():
                params[c] = str(cells[0])
        status, error = "finished", None
        last = _last_text(states_all, idx)
        if last is not None:
            status, error = STATES.get(last, ("failed", f"W&B state {last}"))
        extra: dict[str, Any] = {"wandb_run": rid}
        if "_runtime" in scalars:
            extra["wall_time_s"] = float(scalars["_runtime"][1][-1])
        wall, clock_name = _wall(parsed, idx, s, [k for k in (key, eval_tag) if k])
        raws.append(RawRun(
            name=name, keys=(name, rid), loss=scalars.get(key), params=params, scalars=scalars,
            eval_loss=scalars.get(eval_tag) if eval_tag else None, status=status, error=error,
            extra=extra, run_id=tracker_run_id("wandb", rid), wall=wall, clock=clock_name,
        ))
    spec = ReadSpec(loss_key=key, final=rule, mapping=mapping, settings=settings or RunSettings(),
                    source=source, param_word="column")
    return build(raws, spec, notes)
