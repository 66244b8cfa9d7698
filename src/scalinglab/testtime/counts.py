"""Per-problem sample counts: for each problem, ``n`` samples drawn and ``c`` of them correct.

This is all that repeated-sampling analyses need (pass@k, coverage, verifiers). Files come in
two shapes, CSV/TSV/Parquet/JSONL alike:

- one row per problem: ``problem, n, c`` (column names configurable);
- one row per sample: ``problem, correct`` (``correct`` is 1/0, true/false, yes/no), counted
  here into ``n`` and ``c``.

Either may carry a ``model`` column, giving one :class:`ProblemCounts` per model. Bad cells are
reported by file, row and column (:class:`~scalinglab.errors.InputError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.errors import InputError, ParameterError

_TRUE = {"1", "true", "yes", "y", "t", "correct", "pass", "passed"}
_FALSE = {"0", "false", "no", "n", "f", "incorrect", "fail", "failed"}


@dataclass(frozen=True)
class ProblemCounts:
    """``n[i]`` samples of problem ``problem_ids[i]``, ``c[i]`` of them correct."""

    problem_ids: tuple[str, ...]
    n: np.ndarray
    c: np.ndarray
    source: str = ""
    model: str | None = None

    def __post_init__(self) -> None:
        n, c = np.asarray(self.n), np.asarray(self.c)
        if not (len(self.problem_ids) == len(n) == len(c)):
            raise ParameterError(f"{len(self.problem_ids)} problem ids, {len(n)} values of n and "
                                 f"{len(c)} of c: they must match", "problem_ids", "n", "c")
        if len(n) == 0:
            raise ParameterError("no problems", "n")
        if np.any(n < 1) or np.any(c < 0) or np.any(c > n):
            i = int(np.flatnonzero((n < 1) | (c < 0) | (c > n))[0])
            raise ParameterError(f"problem {self.problem_ids[i]!r} has n = {n[i]}, c = {c[i]}: need "
                                 "n >= 1 and 0 <= c <= n", "n", "c")

    @property
    def n_problems(self) -> int:
        return len(self.problem_ids)

    @property
    def min_samples(self) -> int:
        return int(np.min(self.n))

    @property
    def success_rate(self) -> np.ndarray:
        """Each problem's fraction of correct samples ``c / n``."""
        return np.asarray(self.c, float) / np.asarray(self.n, float)


def counts(problem_ids: Sequence[Any], n: Sequence[int], c: Sequence[int], *, source: str = "",
           model: str | None = None) -> ProblemCounts:
    """Build :class:`ProblemCounts` from sequences (integers checked)."""
    n_arr, c_arr = np.asarray(n), np.asarray(c)
    for name, arr in (("n", n_arr), ("c", c_arr)):
        vals = arr.astype(float)
        if not np.all(np.isfinite(vals)) or np.any(vals % 1):
            raise ParameterError(f"{name} must be whole numbers of samples", name)
    return ProblemCounts(tuple(str(p) for p in problem_ids), n_arr.astype(np.int64),
                         c_arr.astype(np.int64), source=source, model=model)


def _read(path: Path) -> Any:
    """The file as a frame of raw cells with row labels (runs.io's reader)."""
    from scalinglab.runs.io import read_table

    return read_table(path)  # its errors are InputError, naming file, row and column


def _whole_column(raw: Any, col: str, minimum: int, source: str, labels: dict[int, str]) -> np.ndarray:
    """A column of whole numbers >= ``minimum``; the first bad cell is reported by row."""
    import pandas as pd

    from scalinglab.runs.cells import not_a_number, show_cell

    cells = raw[col]
    values = pd.to_numeric(cells.astype(str).str.strip(), errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values) | (values % 1 != 0) | (values < minimum)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = (not_a_number(cells.iloc[i]) if not np.isfinite(values[i])
                else f"{show_cell(cells.iloc[i])} must be a whole number >= {minimum}")
        raise InputError(what, source=source, row=labels.get(i, f"row {i + 1}"),
                         column=col)
    return values.astype(np.int64)


def read_counts(
    path: str | Path,
    *,
    problem: str = "problem",
    n: str = "n",
    c: str = "c",
    correct: str = "correct",
    model: str | None = None,
    units: dict[str, str] | None = None,
) -> dict[str, ProblemCounts]:
    """Per-problem counts from a file, one entry per model (``model`` column) or one entry named
    after the file. ``units`` multiplies columns written in other units (``{"n": "1e3"}`` for
    samples counted in thousands); the products must still be whole counts.

    The file has columns ``problem, n, c`` (one row per problem) or ``problem, correct`` (one row
    per sample); the names are configurable. Raises :class:`InputError` naming the file, row and
    column of a bad cell, a problem listed twice in a counts file, or missing columns.
    """
    import pandas as pd

    from scalinglab.runs.cells import show_cell

    path = Path(path)
    source = str(path)
    raw = _read(path).reset_index(drop=True)
    if units:
        from scalinglab.runs.io import scale_columns

        raw = scale_columns(raw, units, source)
    labels: dict[int, str] = raw.attrs.get("row_labels", {})
    cols = set(raw.columns)
    if raw.empty:
        raise InputError("no rows", source=source)
    per_problem = n in cols and c in cols
    if problem not in cols or not (per_problem or correct in cols):
        raise InputError(
            f"need columns {problem!r} and either {n!r} and {c!r} (one row per problem) or {correct!r} "
            f"(one row per sample); columns are {list(raw.columns)}", source=source)
    if model is not None and model not in cols:
        raise InputError(f"no column {model!r} (the model column); columns are {list(raw.columns)}",
                         source=source)

    def where(i: int) -> str:
        return labels.get(i, f"row {i + 1}")

    pid = raw[problem].astype(str).str.strip()
    empty = np.flatnonzero((pid == "").to_numpy())
    if empty.size:
        raise InputError("the problem id is empty", source=source, row=where(int(empty[0])), column=problem)
    mod = raw[model].astype(str).str.strip() if model is not None else pd.Series([path.stem] * len(raw))
    if per_problem:
        nv = _whole_column(raw, n, 1, source, labels)
        cv = _whole_column(raw, c, 0, source, labels)
        over = np.flatnonzero(cv > nv)
        if over.size:
            i = int(over[0])
            raise InputError(f"{cv[i]} correct out of {nv[i]} samples", source=source, row=where(i), column=c)
        key = pd.Series(list(zip(mod, pid, strict=True)))
        dup = np.flatnonzero(key.duplicated().to_numpy())
        if dup.size:
            i = int(dup[0])
            first = int(np.flatnonzero((key == key.iloc[i]).to_numpy())[0])
            raise InputError(f"problem {show_cell(pid.iloc[i])} is listed twice (first at {where(first)})",
                             source=source, row=where(i), column=problem)
        frame = pd.DataFrame({"model": mod, "problem": pid, "n": nv, "c": cv})
    else:
        text = raw[correct].astype(str).str.strip().str.lower()
        # a float column (Parquet, JSONL, a pandas export) writes 1.0 and 0.0: numbers equal to
        # 1 or 0 are correctness values too, any other number is not
        number = pd.to_numeric(text, errors="coerce").to_numpy(float)
        ok = np.where(text.isin(_TRUE) | (number == 1), 1,
                      np.where(text.isin(_FALSE) | (number == 0), 0, -1))
        bad = np.flatnonzero(ok < 0)
        if bad.size:
            i = int(bad[0])
            raise InputError(f"{show_cell(raw[correct].iloc[i])} is not a correctness value (1/0, true/false)",
                             source=source, row=where(i), column=correct)
        frame = (pd.DataFrame({"model": mod, "problem": pid, "ok": ok})
                 .groupby(["model", "problem"], sort=False)["ok"].agg(["size", "sum"])
                 .rename(columns={"size": "n", "sum": "c"}).reset_index())
    out: dict[str, ProblemCounts] = {}
    for name, g in frame.groupby("model", sort=False):
        out[str(name)] = ProblemCounts(tuple(g["problem"]), g["n"].to_numpy(np.int64),
                                       g["c"].to_numpy(np.int64), source=source, model=str(name))
    return out


__all__ = ["ProblemCounts", "counts", "read_counts"]
