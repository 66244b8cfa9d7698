"""Runs for a fit, from a file or from the run store, checked cell by cell.

A fit needs only a few numeric columns, so a file need not be a full run table: ``N, D, loss``
or ``N, C, loss`` (D = C/6N, said so), or ``C, loss`` for a power law in compute. Bad cells are
reported by file, row and column, as everywhere in scalinglab.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.errors import InputError

NUMERIC = ("N", "D", "C", "loss", "U")


def read_fit_file(
    path: str | Path, needed: Sequence[str], mapping: Mapping[str, str] | None = None,
    scale: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Read runs with the numeric columns a law needs; ``(frame, notes)``.

    ``needed`` are the law's inputs (plus ``loss``): ``D`` may come from ``N`` and ``C``, and
    ``C`` from ``N`` and ``D``. Columns are found through the run import's alias table
    (``smooth loss`` before ``loss``, ``params`` for ``N``...) and cells parsed by its one
    numeric parser (:mod:`scalinglab.runs.cells`). Rows whose ``status`` is not finished are
    left out (noted). Errors (:class:`~scalinglab.errors.InputError`) name file, row, column.
    """
    from scalinglab.runs.cells import parse_cells, show_cell
    from scalinglab.runs.columns import MissingColumn, choose_columns
    from scalinglab.runs.io import read_table
    from scalinglab.runs.schema import STATUS_WORDS

    source = str(path)
    table = read_table(path)
    labels = table.attrs.get("row_labels", {})
    if table.empty:
        raise InputError("no rows", source=source)
    choice = choose_columns([str(c) for c in table.columns], (*NUMERIC, "status"), mapping,
                            source)
    raw = table.rename(columns=choice.rename)
    notes: list[str] = list(choice.notes)
    if scale:  # units: N=1e6 for parameters in millions (as import --units), by scalinglab name
        from scalinglab.runs.io import scale_columns

        raw = scale_columns(raw, scale, source)
        notes.append("scaled " + ", ".join(f"{k} by {v}" for k, v in scale.items()))
    need = {*needed, "loss"}
    derivable = {"D": {"N", "C"}, "C": {"N", "D"}}
    missing = [c for c in sorted(need) if c not in raw.columns
               and not (c in derivable and derivable[c] <= set(raw.columns))]
    if missing:
        hint = "; D may be given as C (FLOPs) with N" if "D" in missing else ""
        raise MissingColumn(
            f"missing column(s) {missing}; columns are {[str(c) for c in table.columns]}{hint}; "
            f"map a column to it ({missing[0]}=YOUR_COLUMN)", missing[0], source=source)
    positions = np.arange(len(raw))
    if "status" in raw.columns:
        words = raw["status"].map(lambda v: str(v).strip().lower() if v is not None else "")
        keep = (words.isin(["", "nan", "none"]) | words.map(
            lambda w: STATUS_WORDS.get(w) == "finished")).to_numpy(dtype=bool)
        if not keep.all():
            notes.append(f"left out {int((~keep).sum())} runs whose status is not 'finished'")
        raw = raw[keep]
        positions = positions[keep]
    out = pd.DataFrame(index=range(len(raw)))
    file_name = {dst: src for src, dst in choice.rename.items()}
    for col in [c for c in NUMERIC if c in raw.columns]:
        cells = parse_cells(raw[col])
        with np.errstate(invalid="ignore"):
            # a target may have any sign (normalised losses, log-probabilities): the fit then
            # takes residuals on the linear scale; sizes, tokens and FLOPs must be positive
            sign_ok = np.isfinite(cells.values) if col == "loss" else cells.values > 0
            bad = cells.bad | cells.missing | ~sign_ok | np.isinf(cells.values)
        if bad.any():
            i = int(np.argmax(bad))
            cell = raw[col].iloc[i]
            detail = (f"{show_cell(cell)} is not a number" if cells.bad[i] else
                      "the value is missing" if cells.missing[i] else
                      f"{show_cell(cell)} must be a positive number" if col != "loss" else
                      f"{show_cell(cell)} must be a finite number")
            pos = int(positions[i])
            raise InputError(detail, source=source, row=labels.get(pos, f"row {pos + 1}"),
                             column=file_name.get(col, col))
        out[col] = cells.values
    if {"N", "D"} <= set(out.columns):
        # C = 6ND is derived downstream (IsoFLOP, the budget of a run): an overflow is this
        # row's fault, so say which row here rather than "run 24" of a sorted frame later
        with np.errstate(over="ignore"):
            c = 6.0 * out["N"].to_numpy(float) * out["D"].to_numpy(float)
        if not np.isfinite(c).all():
            i = int(np.argmax(~np.isfinite(c)))
            pos = int(positions[i])
            raise InputError(f"C = 6*N*D overflows to inf (N = {out['N'].iloc[i]:g}, "
                             f"D = {out['D'].iloc[i]:g})", source=source,
                             row=labels.get(pos, f"row {pos + 1}"))
    for col in raw.columns:
        if col not in out.columns:
            out[col] = raw[col].to_numpy()
    if out.empty:
        raise InputError("no finished runs", source=source)
    # the file's own names, for messages about a column (the 6ND check names the user's column)
    out.attrs["source_columns"] = {k: v for k, v in file_name.items() if k in NUMERIC}
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
    scale: Mapping[str, str] | None = None,
    keep_apart: Sequence[str] = (),
) -> tuple[pd.DataFrame, str, list[str]]:
    """Runs from ``file``, or else the store (finished runs, filtered), chosen by the one rule
    of :func:`scalinglab.runs.select.select_runs`; ``(frame, source, notes)``.

    ``where`` filters a file's rows in the store's language too (after numbers are parsed).
    ``unique_tokens`` names the column (or store extra/tag) holding each run's unique tokens:
    it becomes the input ``U`` of data-constrained laws, and runs that differ in it are never
    merged as replicates.
    ``keep_apart`` names columns the caller splits the runs by afterwards (``fit custom
    --group``): runs that differ in one are never merged, as with ``group_by``, but one the runs
    lack is not an error here; the caller checks it, so its message names the caller's own
    option (``group_by``'s check named ``--group-by`` for a mistyped ``--group``).
    """
    from scalinglab.errors import InputError, ParameterError
    from scalinglab.fit.loss import complete_columns, drop_lossless, filter_runs, nothing_to_fit
    from scalinglab.runs.select import select_runs

    group_by = tuple(group_by)
    if unique_tokens:
        mapping = dict(mapping or {})
        if file is not None:
            mapping.setdefault("U", unique_tokens)
    if file is not None:
        if tags:
            raise ParameterError("tags filter the run store; they do not apply to a file", "tag")
        frame, notes = read_fit_file(file, needed, mapping, scale)
        source = str(file)
        names = dict(frame.attrs.get("source_columns", {}))
        if where:
            n_read = len(frame)
            frame = filter_runs(numeric_columns(frame), where)
            if frame.empty:
                raise nothing_to_fit(n_read, [(n_read, f"they do not satisfy where {where!r}")],
                                     source)
            notes.append(f"kept the {len(frame)} runs where {where}")
    else:
        from scalinglab.runs import DEFAULT_STORE
        from scalinglab.runs.store import RunStore

        path = store or DEFAULT_STORE
        if scale:
            raise ParameterError("units convert a file's columns; the store holds runs already "
                                 "in scalinglab's units (import --units)", "units")
        frame = RunStore(path, read_only=True).runs(where=where, tags=dict(tags or {}))
        source, notes, names = str(path), [], {}
        if frame.empty:
            raise InputError("no finished runs" + (f" match where {where!r}" if where else "")
                             + (f" with tags {dict(tags)}" if tags else ""), source=str(path))
        if mapping:  # --map NAME=EXTRA: an imported extra column (or tag) as a law's input
            from scalinglab.runs.select import _expand

            frame = _expand(frame, list(mapping.values()))
            for dst, src in mapping.items():
                if src not in frame.columns:
                    raise InputError(f"--map {dst}={src}: no run has {src!r} (a column, extra "
                                     "column or tag)", source=source)
                frame[dst] = pd.to_numeric(frame[src], errors="coerce")
        if unique_tokens:
            from scalinglab.runs.select import _expand

            frame = _expand(frame, [unique_tokens])
            if unique_tokens not in frame.columns:
                raise InputError(f"no run has {unique_tokens!r} (a column, extra or tag)",
                                 source=source)
            frame = frame.assign(U=pd.to_numeric(frame[unique_tokens], errors="coerce"))
        # after --map: a loss mapped from an extra column may be missing for some runs or all
        frame, lossless = drop_lossless(frame, source=source)
        notes += lossless
    try:
        frame, derived = complete_columns(frame, needed)
    except ParameterError as exc:
        raise InputError(str(exc), source=source) from None
    notes += derived
    if keep_apart:
        from scalinglab.runs.select import _expand

        frame = _expand(frame, keep_apart)  # a store's extra field or tag, as group_by finds it
        group_by = (*group_by, *(c for c in keep_apart if c in frame.columns and c not in group_by))
    if unique_tokens and "U" not in group_by:
        group_by = (*group_by, "U")
    chosen = select_runs(frame, needed, best_per_point=best_per_point, group_by=group_by,
                         all_runs=all_runs)
    chosen.frame.attrs["source_columns"] = names
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
