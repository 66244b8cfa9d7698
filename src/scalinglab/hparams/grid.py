"""lr x batch grids: runs at a few (N, D) points, each swept over learning rate and batch size.

Read once and validated with the run import's alias table and numeric cell parser (errors name
file, row and column, via ``scalinglab.runs``), then handed around as a :class:`Grid` in
canonical units: batch in tokens, loss in nats/token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from scalinglab.errors import InputError, ParameterError
from scalinglab.runs.cells import parse_cells, show_cell
from scalinglab.runs.columns import ALIASES, pick
from scalinglab.runs.io import read_table

BatchUnit = Literal["auto", "tokens", "sequences"]

#: accepted spellings, best first: the run import's one alias table
LR_ALIASES = ALIASES["lr"]
BATCH_TOKEN_ALIASES = ALIASES["batch_tokens"]
BATCH_SEQ_ALIASES = ALIASES["batch_sequences"]
WEIGHT_DECAY_ALIASES = ALIASES["weight_decay"]
COLUMNS = ("N", "D", "lr", "batch_tokens", "loss")


@dataclass
class Grid:
    """Validated runs with columns N, D, lr, batch_tokens, loss and ``row`` (1-based data row),
    plus the file's other columns as they were (what tells configurations apart).

    ``group_by`` names columns that, beside (N, D), distinguish configurations: runs that share
    (N, D) but differ in them form separate groups (an MoE grid's expert counts)."""

    frame: pd.DataFrame
    source: str = "<frame>"
    notes: list[str] = field(default_factory=list)
    group_by: tuple[str, ...] = ()
    #: runs with no finite loss (NaN, inf or empty: diverged or crashed), with N, D, lr,
    #: batch_tokens and row: data all the same, a run too unstable to finish marks its lr (or
    #: batch) as past the optimum, so they bracket a group's optimum; no fit sees their loss
    diverged: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {k: pd.Series(dtype=float) for k in ("N", "D", "lr", "batch_tokens", "row")}))

    def diverged_of(self, group: pd.DataFrame) -> pd.DataFrame:
        """The diverged runs of ``group`` (one of :meth:`groups`): its N and D, and its value of
        each ``group_by`` column the diverged runs carry."""
        d = self.diverged
        first = group.iloc[0]
        mask = (d["N"] == first["N"]) & (d["D"] == first["D"])
        for c in self.group_by:
            if c in d.columns:
                mask &= d[c].astype(str) == str(first[c])
        return d[mask]

    def _keys(self) -> list[Any]:
        return ["N", "D"] + [self.frame[c].astype(str) for c in self.group_by]

    def groups(self) -> Iterator[tuple[tuple[float, float], pd.DataFrame]]:
        """(N, D) groups (and within them ``group_by`` configurations) in increasing (N, D)."""
        for key, g in self.frame.groupby(self._keys(), sort=True):
            yield (float(key[0]), float(key[1])), g

    @property
    def n_groups(self) -> int:
        return int(self.frame.groupby(self._keys()).ngroups)

    def subset(self, keys: set[tuple[float, float]], keep: bool = True) -> Grid:
        """Only (keep=True) or all but (keep=False) the given (N, D) groups, their diverged runs
        with them."""

        def chosen(f: pd.DataFrame) -> pd.DataFrame:
            pairs = zip(f["N"].astype(float), f["D"].astype(float), strict=True)
            return f[np.array([(p in keys) == keep for p in pairs], dtype=bool)].reset_index(drop=True)

        return replace(self, frame=chosen(self.frame), notes=list(self.notes),
                       diverged=chosen(self.diverged))


def grid_from_frame(
    raw: pd.DataFrame,
    source: str = "<frame>",
    seq_len: int = 2048,
    batch_unit: BatchUnit = "auto",
    weight_decay: bool = False,
    mapping: dict[str, str] | None = None,
    group_by: tuple[str, ...] | list[str] = (),
    units: dict[str, str] | None = None,
) -> Grid:
    """Validate a raw frame (text or numbers) into a :class:`Grid`.

    ``units`` multiplies columns given in other units (``{"N": "1e6"}`` for parameters in
    millions, ``{"lr": "1e-3"}``), named by scalinglab's name (whichever column is read as it)
    or by the file's own column name.

    ``mapping`` reads scalinglab's names from other columns (``{"N": "active_params"}``: a
    column the name already had is kept under ``"<name> (file)"``); ``group_by`` columns keep
    configurations that share (N, D) apart (see :class:`Grid`).

    ``batch_unit="auto"`` reads a ``batch_tokens`` column as tokens and ``bs``/``batch_size`` as
    sequences of ``seq_len`` tokens (Step Law's convention); the choice is recorded in ``notes``.
    ``weight_decay=True`` also requires a ``weight_decay`` (or ``wd``) column, for timescale fits.
    """
    labels = raw.attrs.get("row_labels", {})
    notes: list[str] = []
    if raw.empty:
        raise InputError("no rows", source=source)
    raw = _mapped(raw, mapping or {}, source, notes)
    cols = [str(c) for c in raw.columns]
    n_col, d_col = pick(cols, "N"), pick(cols, "D")
    loss_col = pick(cols, "loss")
    lr_col = pick(cols, "lr")
    tok_col = pick(cols, "batch_tokens")
    seq_col = pick(cols, "batch_sequences")
    if batch_unit == "tokens":
        batch_col = tok_col or seq_col
    elif batch_unit == "sequences":
        batch_col = seq_col or tok_col
    else:
        batch_col = tok_col or seq_col
    wd_col = pick(cols, "weight_decay") if weight_decay else None
    wanted = [("N", n_col), ("D", d_col), ("lr", lr_col), ("batch", batch_col),
              ("loss", loss_col)]
    if weight_decay:
        wanted.append(("weight_decay", wd_col))
    missing = [name for name, col in wanted if col is None]
    if missing:
        raise InputError(
            f"missing column(s) {missing}; need N, D, lr, a batch column "
            f"(batch_tokens, or bs in sequences) and loss (or 'smooth loss')"
            + (" and weight_decay" if weight_decay else "") + f"; columns are {cols}",
            source=source)
    assert n_col and d_col and lr_col and batch_col and loss_col
    if units:
        from scalinglab.runs.io import scale_columns

        read_as = {"N": n_col, "D": d_col, "lr": lr_col, "loss": loss_col, "batch": batch_col,
                   "batch_tokens": batch_col, "batch_sequences": batch_col,
                   "weight_decay": wd_col}
        raw = scale_columns(raw, {read_as.get(k) or k: v for k, v in units.items()}, source)
        notes.append("scaled " + ", ".join(f"{k} by {v}" for k, v in units.items()))
    in_sequences = batch_unit == "sequences" or (batch_unit == "auto" and batch_col != tok_col)
    if seq_len <= 0:
        raise ParameterError(f"seq_len must be positive, not {seq_len}", "seq_len")
    for name, col in (("N", n_col), ("D", d_col), ("lr", lr_col), ("loss", loss_col)):
        if col != name:
            notes.append(f"using column {col!r} as the {name}")
    if in_sequences:
        notes.append(f"batch_tokens = {batch_col} x {seq_len} (batch given in sequences)")

    out: dict[str, np.ndarray] = {}
    columns = [("N", n_col), ("D", d_col), ("lr", lr_col), ("batch_tokens", batch_col),
               ("loss", loss_col)]
    if wd_col:
        columns.append(("weight_decay", wd_col))
    # a loss that is NaN, inf or empty is a run that diverged or crashed: kept apart, as data
    loss_cells = parse_cells(raw[loss_col])
    unfinished = loss_cells.missing | (~loss_cells.bad & np.isinf(loss_cells.values)
                                       & (loss_cells.values > 0))
    if unfinished.all():
        raise InputError("no run has a finite loss (every cell is NaN, inf or empty)",
                         source=source, column=loss_col)
    for name, col in columns:
        cells = parse_cells(raw[col])
        with np.errstate(invalid="ignore"):
            ok = cells.values >= 0 if name == "weight_decay" else cells.values > 0  # wd=0 is common
        bad = cells.bad | cells.missing | ~(np.isfinite(cells.values) & ok)
        if name in ("loss", "weight_decay"):
            bad &= ~unfinished  # a diverged run's loss (and decay, for tau) is not needed
        if bad.any():
            i = int(np.argmax(bad))
            cell = show_cell(raw[col].iloc[i])
            detail = (f"{cell} is not a number" if cells.bad[i] else "is missing"
                      if cells.missing[i] else f"{cell} must be a positive number")
            raise InputError(detail, source=source, row=labels.get(i, f"row {i + 1}"),
                             column=col)
        out[name] = cells.values
    if in_sequences:
        out["batch_tokens"] = out["batch_tokens"] * seq_len
    frame = pd.DataFrame(out)
    frame["row"] = np.arange(1, len(frame) + 1)
    used = {col for _, col in columns}
    for col in cols:  # the file's other columns, as they are: they may tell configurations apart
        if col not in used and col not in frame.columns and col != "run_id":
            frame[col] = raw[col].to_numpy()
    diverged = frame.loc[unfinished].drop(columns=["loss"]).reset_index(drop=True)
    frame = frame[~unfinished].reset_index(drop=True)
    if len(diverged):
        rows = [labels.get(int(r) - 1, f"row {int(r)}") for r in diverged["row"][:5]]
        notes.append(f"{len(diverged)} run(s) without a finite loss ({', '.join(rows)}"
                     f"{', ...' if len(diverged) > 5 else ''}): read as diverged, past their "
                     "group's optimum; they bracket it (an lr or batch short of theirs) and no "
                     "fit sees their loss")
    missing = [c for c in group_by if c not in frame.columns]
    if missing:
        raise InputError(f"group_by names {missing}, which are not columns; columns are {cols}",
                         source=source, column=missing[0])
    if np.nanmax(frame["lr"]) > 1:
        notes.append("warning: learning rates above 1: check the lr column")
    notes += _batch_unit_warnings(frame, diverged, raw, cols, batch_col, in_sequences, seq_len)
    return Grid(frame=frame, source=source, notes=notes, group_by=tuple(group_by),
                diverged=diverged)


#: fewer optimizer steps than this in the median run is no pre-training run: its batch was
#: most likely read in the wrong unit (Step Law's shortest run has 953 steps)
MIN_PLAUSIBLE_STEPS = 100


def _batch_unit_warnings(frame: pd.DataFrame, diverged: pd.DataFrame, raw: pd.DataFrame,
                         cols: list[str], batch_col: str, in_sequences: bool,
                         seq_len: int) -> list[str]:
    """Warnings when the batch column looks read in the wrong unit (tokens for sequences or the
    reverse multiplies every batch by ``seq_len`` and moves the batch law's intercept by
    ln 2048 = 7.6, with nothing else to show for it). With a steps column the check is exact:
    D = steps x batch_tokens; without one, a median run of under 100 steps (a batch in tokens
    read as sequences) or a batch under one sequence (the reverse) gives it away."""
    runs = pd.concat([frame[["D", "batch_tokens", "row"]], diverged[["D", "batch_tokens", "row"]]])
    other = "--batch-unit tokens" if in_sequences else f"--batch-unit sequences (--seq-len {seq_len})"
    read = (f"column {batch_col!r} read as " + (f"sequences of {seq_len} tokens" if in_sequences
                                                else "tokens"))
    steps_col = pick(cols, "steps")
    if steps_col is not None:
        cells = parse_cells(raw[steps_col])
        steps = cells.values[runs["row"].to_numpy(int) - 1]
        ok = np.isfinite(steps) & (steps > 0)
        if ok.any():
            ratio = float(np.median(runs["D"].to_numpy(float)[ok]
                                    / (steps[ok] * runs["batch_tokens"].to_numpy(float)[ok])))
            if not 0.5 <= ratio <= 2.0:
                return [f"warning: D is {ratio:.3g} x steps x batch ({read}, steps from "
                        f"column {steps_col!r}), not 1: check the batch unit"
                        + (f"; {other} fits them" if 0.5 <= ratio * (
                            seq_len if in_sequences else 1 / seq_len) <= 2.0 else "")]
            return []
    steps = float(np.median(runs["D"].to_numpy(float) / runs["batch_tokens"].to_numpy(float)))
    if in_sequences and steps < MIN_PLAUSIBLE_STEPS:
        return [f"warning: the median run takes {steps:.3g} optimizer steps (D / batch, {read}): "
                f"is the batch in tokens? {other}"]
    bt = float(np.median(runs["batch_tokens"].to_numpy(float)))
    if not in_sequences and bt < seq_len:
        return [f"warning: the median batch is {bt:.3g} tokens ({read}), less than one sequence of "
                f"{seq_len}: is the batch in sequences? {other}"]
    return []


def _mapped(raw: pd.DataFrame, mapping: dict[str, str], source: str, notes: list[str]) -> pd.DataFrame:
    """``raw`` with each ``mapping`` column renamed to scalinglab's name (the name's own column,
    if any, kept as ``"<name> (file)"``)."""
    if not mapping:
        return raw
    absent = [col for col in mapping.values() if col not in raw.columns]
    if absent:
        raise InputError(f"map names {absent}, which are not columns; columns are "
                         f"{[str(c) for c in raw.columns]}", source=source, column=absent[0])
    out = raw.copy()
    for name, col in mapping.items():
        if col == name:
            continue
        if name in out.columns:
            out = out.rename(columns={name: f"{name} (file)"})
        out = out.rename(columns={col: name})
        notes.append(f"using column {col!r} as the {name} (map)")
    out.attrs = raw.attrs
    return out


def read_grid(
    path: str | Path, seq_len: int = 2048, batch_unit: BatchUnit = "auto",
    weight_decay: bool = False, mapping: dict[str, str] | None = None,
    group_by: tuple[str, ...] | list[str] = (), units: dict[str, str] | None = None,
) -> Grid:
    """Read and validate GRID (CSV/TSV/Parquet/JSONL); errors name file, row and column.
    ``units``: columns in other units (see :func:`grid_from_frame`)."""
    raw = read_table(path)
    return grid_from_frame(raw, source=str(path), seq_len=seq_len, batch_unit=batch_unit,
                           weight_decay=weight_decay, mapping=mapping, group_by=group_by,
                           units=units)
