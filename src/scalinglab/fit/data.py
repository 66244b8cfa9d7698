"""Runs for a fit, from a file or from the run store, checked cell by cell.

A fit needs only a few numeric columns, so a file need not be a full run table: ``N, D, loss``
or ``N, C, loss`` (D = C/6N, said so), or ``C, loss`` for a power law in compute. Bad cells are
reported by file, row and column, as everywhere in scalinglab.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.clikit import UserError

NUMERIC = ("N", "D", "C", "loss", "U")


def read_fit_file(
    path: str | Path, needed: Sequence[str], mapping: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Read runs with the numeric columns a law needs; ``(frame, notes)``.

    ``needed`` are the law's inputs (plus ``loss``): ``D`` may come from ``N`` and ``C``, and
    ``C`` from ``N`` and ``D``. Rows whose ``status`` is not ``finished`` are left out (noted).
    """
    from scalinglab.runs.io import apply_mapping, read_table
    from scalinglab.runs.schema import parse_number

    source = str(path)
    raw = apply_mapping(read_table(path), mapping, source)
    labels: dict[int, str] = raw.attrs.get("row_labels", {})
    notes: list[str] = []
    if raw.empty:
        raise UserError(f"{source}: no rows")
    need = {*needed, "loss"}
    derivable = {"D": {"N", "C"}, "C": {"N", "D"}}
    missing = [c for c in sorted(need) if c not in raw.columns
               and not (c in derivable and derivable[c] <= set(raw.columns))]
    if missing:
        hint = "; D may be given as C (FLOPs) with N" if "D" in missing else ""
        raise UserError(
            f"{source}: missing column(s) {missing}; columns are {list(raw.columns)}{hint}; "
            f"rename with --map {missing[0]}=YOUR_COLUMN"
        )
    if "status" in raw.columns:
        keep = raw["status"].astype(str).str.strip().isin(["finished", ""])
        if not keep.all():
            notes.append(f"left out {int((~keep).sum())} runs whose status is not 'finished'")
        raw = raw[keep.to_numpy()]
    out = pd.DataFrame(index=range(len(raw)))
    for col in [c for c in NUMERIC if c in raw.columns]:
        values = np.empty(len(raw))
        for i, (pos, cell) in enumerate(zip(raw.index, raw[col].tolist(), strict=True)):
            where = f"{source}: {labels.get(pos, f'row {pos + 1}')}, column {col!r}"
            try:
                v = parse_number(cell)
            except (TypeError, ValueError):
                raise UserError(f"{where}: {cell!r} is not a number") from None
            if math.isnan(v):
                raise UserError(f"{where}: the value is missing")
            if not (math.isfinite(v) and v > 0):
                raise UserError(f"{where}: {cell!r} must be a positive number")
            values[i] = v
        out[col] = values
    for col in raw.columns:
        if col not in out.columns:
            out[col] = raw[col].to_numpy()
    if out.empty:
        raise UserError(f"{source}: no finished runs")
    return out, notes


def load_runs(
    file: Path | None,
    store: Path | None,
    where: str | None,
    tags: Mapping[str, str] | None,
    needed: Sequence[str],
    mapping: Mapping[str, str] | None = None,
    all_runs: bool = False,
    best_per_point: bool = False,
    group_by: Sequence[str] = (),
    unique_tokens: str | None = None,
) -> tuple[pd.DataFrame, str, list[str]]:
    """Runs from ``file``, or else the store (finished runs, filtered), chosen by the one rule
    of :func:`scalinglab.runs.select.select_runs`; ``(frame, source, notes)``.

    ``where`` filters a file's rows in the store's language too (after numbers are parsed).
    ``unique_tokens`` names the column (or store extra/tag) holding each run's unique tokens:
    it becomes the input ``U`` of data-constrained laws, and runs that differ in it are never
    merged as replicates.
    """
    from scalinglab.errors import InputError, ParameterError
    from scalinglab.fit.loss import complete_columns, filter_runs
    from scalinglab.runs.select import select_runs

    group_by = tuple(group_by)
    if unique_tokens:
        mapping = dict(mapping or {})
        if file is not None:
            mapping.setdefault("U", unique_tokens)
        group_by = (*group_by, "U") if "U" not in group_by else group_by
    if file is not None:
        if tags:
            raise ParameterError("tags filter the run store; they do not apply to a file", "tag")
        frame, notes = read_fit_file(file, needed, mapping)
        source = str(file)
        if where:
            frame = filter_runs(numeric_columns(frame), where)
            if frame.empty:
                raise InputError(f"no runs satisfy where {where!r}", source=source)
            notes.append(f"kept the {len(frame)} runs where {where}")
    else:
        from scalinglab.clikit import DEFAULT_STORE
        from scalinglab.runs.store import RunStore

        path = store or DEFAULT_STORE
        frame = RunStore(path, read_only=True).runs(where=where, tags=dict(tags or {}))
        source, notes = str(path), []
        if frame.empty:
            raise InputError("no finished runs" + (f" match where {where!r}" if where else "")
                             + (f" with tags {dict(tags)}" if tags else ""), source=str(path))
        frame = frame.dropna(subset=["loss"]).reset_index(drop=True)
        if unique_tokens:
            from scalinglab.runs.select import _expand

            frame = _expand(frame, [unique_tokens])
            if unique_tokens not in frame.columns:
                raise InputError(f"no run has {unique_tokens!r} (a column, extra or tag)",
                                 source=source)
            frame = frame.assign(U=pd.to_numeric(frame[unique_tokens], errors="coerce"))
    try:
        frame, derived = complete_columns(frame, needed)
    except ParameterError as exc:
        raise InputError(str(exc), source=source) from None
    notes += derived
    chosen = select_runs(frame, needed, best_per_point=best_per_point, group_by=group_by,
                         all_runs=all_runs)
    return chosen.frame, source, notes + chosen.notes


def numeric_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every filled cell is a number, as numbers (so ``where`` compares
    ``epochs <= 4`` numerically on a CSV read as text)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        text = out[col].astype(str).str.strip()
        filled = text != ""
        values = pd.to_numeric(text.where(filled), errors="coerce")
        if filled.any() and values[filled].notna().all():
            out[col] = values
    return out
