"""Reading a table of models and their metrics (a CSV of benchmark scores, a runs file with
per-task errors): numeric columns parsed cell by cell, rows filtered by SQL, column names
matched by pattern, every error naming the file, the row and the column.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.errors import InputError, columns_hint, did_you_mean

ROW = "__row__"


@dataclass
class ModelTable:
    """A file's rows (``frame``, with each row's label for messages in ``ROW``) and its name."""

    frame: pd.DataFrame
    source: str

    @property
    def columns(self) -> list[str]:
        return [c for c in self.frame.columns if c != ROW]

    def __len__(self) -> int:
        return len(self.frame)

    def numbers(self, column: str, *, missing_ok: bool = True, positive: bool = False) -> np.ndarray:
        """``column`` as floats; a cell that is not a number (or is missing when not allowed, or
        not positive when asked) raises :class:`InputError` at its row."""
        from scalinglab.runs.cells import not_a_number, show_cell
        from scalinglab.runs.schema import parse_number

        self.require(column)
        out = np.empty(len(self.frame))
        for i, (cell, label) in enumerate(zip(self.frame[column].tolist(), self.frame[ROW].tolist(),
                                              strict=True)):
            try:
                v = parse_number(cell)
            except (TypeError, ValueError):
                raise InputError(not_a_number(cell), source=self.source, row=label,
                                 column=column) from None
            if math.isnan(v) and not missing_ok:
                raise InputError("the value is missing", source=self.source, row=label, column=column)
            if not math.isnan(v) and (not math.isfinite(v) or (positive and v <= 0)):
                raise InputError(f"{show_cell(cell)} must be a {'positive' if positive else 'finite'} number",
                                 source=self.source, row=label, column=column)
            out[i] = v
        return out

    def text(self, column: str) -> list[str]:
        self.require(column)
        return [str(v).strip() for v in self.frame[column].tolist()]

    def require(self, column: str) -> None:
        if column not in self.columns:
            raise InputError(f"no column {column!r}{columns_hint(column, self.columns)}",
                             source=self.source)

    def match(self, patterns: Sequence[str]) -> list[str]:
        """Columns matching any of ``patterns`` (exact names or shell patterns like ``err_*``),
        in file order; a pattern that matches nothing is an error."""
        out: list[str] = []
        for pat in patterns:
            hits = [c for c in self.columns if fnmatch.fnmatchcase(c, pat)]
            if not hits:
                raise InputError(f"no column matches {pat!r}{did_you_mean(pat, self.columns)}; columns "
                                 f"are {self.columns}", source=self.source)
            out += [c for c in hits if c not in out]
        return out

    def ids(self, column: str | None) -> list[str]:
        """Row ids: ``column``'s values, else the first of ``run_id``/``model``/``Model``/``name``
        present, else the row labels."""
        if column is None:
            column = next((c for c in ("run_id", "model", "Model", "name") if c in self.columns), None)
        if column is None:
            return [str(r) for r in self.frame[ROW]]
        values = self.text(column)
        if len(set(values)) < len(values):
            # duplicates (checkpoints of one model): make each id unique by its row
            values = [f"{v} [row {i + 1}]" for i, v in enumerate(values)]
        return values

    def where(self, expression: str | None) -> ModelTable:
        """Rows for which ``expression`` holds: the safe filter language of ``--where`` on the
        store (:mod:`scalinglab.runs.where`: one checked expression over the columns, never
        spliced into SQL, no file access), so a file is filtered exactly as the store is. Quote
        odd column names with double quotes: ``"FLOPs (1E21)" < 84``. Columns whose every cell
        is a number compare as numbers."""
        if not expression:
            return self
        from scalinglab.runs.where import filter_frame

        typed = self.frame.copy()
        for col in self.columns:
            converted = pd.to_numeric(typed[col].replace("", np.nan), errors="coerce")
            if converted.notna().sum() == typed[col].replace("", np.nan).notna().sum():
                typed[col] = converted
        kept = filter_frame(typed, expression)
        frame = self.frame.loc[kept.index].reset_index(drop=True)
        if frame.empty:
            raise InputError(f"no row satisfies {expression!r}", source=self.source)
        return ModelTable(frame, self.source)


def read_models(path: str | Path, units: dict[str, str] | None = None) -> ModelTable:
    """Read CSV, TSV, Parquet or JSONL into a :class:`ModelTable` (cells kept as written, but
    for ``units``: columns in other units multiplied, ``{"FLOPs (1E21)": "1e21"}``)."""
    from scalinglab.runs.io import read_table, scale_columns

    raw = read_table(path)  # its errors are InputError, naming file, row and column
    if raw.empty:
        raise InputError("no rows", source=str(path))
    raw = scale_columns(raw, units, str(path))
    labels = raw.attrs.get("row_labels", {})
    frame = raw.reset_index(drop=True).copy()
    frame[ROW] = [labels.get(i, f"row {i + 1}") for i in range(len(frame))]
    return ModelTable(frame, str(path))


__all__ = ["ModelTable", "read_models"]
