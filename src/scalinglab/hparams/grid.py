"""lr x batch grids: runs at a few (N, D) points, each swept over learning rate and batch size.

Read once, validated cell by cell (errors name file, row and column, via ``scalinglab.runs.io``),
then handed around as a :class:`Grid` in canonical units: batch in tokens, loss in nats/token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from scalinglab.clikit import UserError
from scalinglab.runs.io import read_table
from scalinglab.runs.schema import LOSS_ALIASES, parse_number

BatchUnit = Literal["auto", "tokens", "sequences"]

#: accepted spellings, best first
LR_ALIASES = ("lr", "learning_rate", "peak_lr")
BATCH_TOKEN_ALIASES = ("batch_tokens",)
BATCH_SEQ_ALIASES = ("bs", "batch_size", "batch_sequences")
WEIGHT_DECAY_ALIASES = ("weight_decay", "wd")
COLUMNS = ("N", "D", "lr", "batch_tokens", "loss")


@dataclass
class Grid:
    """Validated runs with columns N, D, lr, batch_tokens, loss and ``row`` (1-based data row)."""

    frame: pd.DataFrame
    source: str = "<frame>"
    notes: list[str] = field(default_factory=list)

    def groups(self) -> Iterator[tuple[tuple[float, float], pd.DataFrame]]:
        """(N, D) groups in increasing (N, D) order."""
        for key, g in self.frame.groupby(["N", "D"], sort=True):
            yield (float(key[0]), float(key[1])), g

    @property
    def n_groups(self) -> int:
        return int(self.frame.groupby(["N", "D"]).ngroups)

    def subset(self, keys: set[tuple[float, float]], keep: bool = True) -> Grid:
        """Only (keep=True) or all but (keep=False) the given (N, D) groups."""
        pairs = list(zip(self.frame["N"].astype(float), self.frame["D"].astype(float), strict=True))
        mask = np.array([(p in keys) == keep for p in pairs], dtype=bool)
        return Grid(self.frame[mask].reset_index(drop=True), self.source, list(self.notes))


def _pick(columns: list[str], aliases: tuple[str, ...]) -> str | None:
    return next((a for a in aliases if a in columns), None)


def grid_from_frame(
    raw: pd.DataFrame,
    source: str = "<frame>",
    seq_len: int = 2048,
    batch_unit: BatchUnit = "auto",
    weight_decay: bool = False,
) -> Grid:
    """Validate a raw frame (text or numbers) into a :class:`Grid`.

    ``batch_unit="auto"`` reads a ``batch_tokens`` column as tokens and ``bs``/``batch_size`` as
    sequences of ``seq_len`` tokens (Step Law's convention); the choice is recorded in ``notes``.
    ``weight_decay=True`` also requires a ``weight_decay`` (or ``wd``) column, for timescale fits.
    """
    cols = [str(c) for c in raw.columns]
    labels = raw.attrs.get("row_labels", {})
    notes: list[str] = []
    if raw.empty:
        raise UserError(f"{source}: no rows")
    loss_col = _pick(cols, LOSS_ALIASES)
    lr_col = _pick(cols, LR_ALIASES)
    tok_col = _pick(cols, BATCH_TOKEN_ALIASES)
    seq_col = _pick(cols, BATCH_SEQ_ALIASES)
    if batch_unit == "tokens":
        batch_col = tok_col or seq_col
    elif batch_unit == "sequences":
        batch_col = seq_col or tok_col
    else:
        batch_col = tok_col or seq_col
    wd_col = _pick(cols, WEIGHT_DECAY_ALIASES) if weight_decay else None
    wanted = [("N", "N" if "N" in cols else None), ("D", "D" if "D" in cols else None),
              ("lr", lr_col), ("batch", batch_col), ("loss", loss_col)]
    if weight_decay:
        wanted.append(("weight_decay", wd_col))
    missing = [name for name, col in wanted if col is None]
    if missing:
        raise UserError(
            f"{source}: missing column(s) {missing}; need N, D, lr, a batch column "
            f"(batch_tokens, or bs in sequences) and loss (or 'smooth loss')"
            + (" and weight_decay" if weight_decay else "") + f"; columns are {cols}"
        )
    assert lr_col and batch_col and loss_col
    in_sequences = batch_unit == "sequences" or (batch_unit == "auto" and batch_col != tok_col)
    if seq_len <= 0:
        raise UserError(f"--seq-len must be positive, not {seq_len}")
    if loss_col != "loss":
        notes.append(f"using column {loss_col!r} as the loss")
    if in_sequences:
        notes.append(f"batch_tokens = {batch_col} x {seq_len} (batch given in sequences)")

    out: dict[str, np.ndarray] = {}
    columns = [("N", "N"), ("D", "D"), ("lr", lr_col), ("batch_tokens", batch_col),
               ("loss", loss_col)]
    if wd_col:
        columns.append(("weight_decay", wd_col))
    for name, col in columns:
        values = np.empty(len(raw))
        for i, v in enumerate(raw[col].tolist()):
            where = labels.get(i, f"row {i + 1}")
            try:
                x = parse_number(v)
            except (TypeError, ValueError):
                raise UserError(f"{source}: {where}, column {col!r}: {v!r} is not a number") from None
            ok = x >= 0 if name == "weight_decay" else x > 0  # a wd=0 baseline is common
            if not (np.isfinite(x) and ok):
                raise UserError(f"{source}: {where}, column {col!r}: {v!r} must be a positive number")
            values[i] = x
        out[name] = values
    if in_sequences:
        out["batch_tokens"] = out["batch_tokens"] * seq_len
    frame = pd.DataFrame(out)
    frame["row"] = np.arange(1, len(frame) + 1)
    if np.nanmax(frame["lr"]) > 1:
        notes.append("warning: learning rates above 1: check the lr column")
    return Grid(frame=frame, source=source, notes=notes)


def read_grid(
    path: str | Path, seq_len: int = 2048, batch_unit: BatchUnit = "auto",
    weight_decay: bool = False,
) -> Grid:
    """Read and validate GRID (CSV/TSV/Parquet/JSONL); errors name file, row and column."""
    raw = read_table(path)
    return grid_from_frame(raw, source=str(path), seq_len=seq_len, batch_unit=batch_unit,
                           weight_decay=weight_decay)
