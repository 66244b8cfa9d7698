"""The runs table the dashboard and the report share: its data, its script and its style.

The table itself is drawn in the browser by ``templates/runs_table.js`` (sorting with
``aria-sort``, a search box, status badges with the failure reason on hover, a column chooser,
range filters, colour and group by any column or tag, a CSV download of what is shown, human
units). This module says what it holds: one column spec per run column that some run has, one
per tag key and per extra column (hidden until chosen), and every run as plain JSON values, so
the page can sort numbers as numbers and the CSV carries them in full.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

#: run columns in the order shown: (key, label, kind, unit, shown by default)
RUN_COLUMNS: tuple[tuple[str, str, str, str, bool], ...] = (
    ("run_id", "run", "id", "", True),
    ("name", "name", "text", "", True),
    ("status", "status", "status", "", True),
    ("N", "N (params)", "num", "count", True),
    ("D", "D (tokens)", "num", "tokens", True),
    ("C", "C (FLOPs)", "num", "flops", True),
    ("loss", "loss", "num", "", True),
    ("lr", "lr", "num", "", True),
    ("batch_tokens", "batch (tokens)", "num", "tokens", True),
    ("weight_decay", "weight decay", "num", "", False),
    ("seq_len", "seq len", "num", "count", False),
    ("tags", "tags", "text", "", True),
    ("source", "source", "text", "", False),
    ("created_at", "added", "date", "", False),
    ("error", "why it stopped", "text", "", False),
)
#: columns always listed, whether or not any run has them
ALWAYS = frozenset({"run_id", "status", "N", "D", "C", "loss"})


def payload(runs: pd.DataFrame) -> dict[str, Any]:
    """``{"columns": [...], "rows": [...]}`` for ``SLRunsTable.setData``.

    A column appears when some run has a value in it (the fixed ones always); tag keys become
    ``tag:KEY`` columns and extra columns ``extra:KEY`` ones, hidden until chosen. Rows carry
    ``tags`` and ``extra`` as objects; missing numbers are ``null``.
    """
    columns: list[dict[str, Any]] = []
    for key, label, kind, unit, shown in RUN_COLUMNS:
        if key not in runs:
            continue
        if key not in ALWAYS and not _has_values(runs[key]):
            continue
        columns.append({"key": key, "label": label, "kind": kind, "unit": unit, "hidden": not shown})
    tag_keys = _keys(runs, "tags")
    extra_keys = _keys(runs, "extra")
    for k in tag_keys:
        columns.append({"key": f"tag:{k}", "label": f"tag {k}", "kind": "text", "unit": "",
                        "hidden": True})
    for k in extra_keys:
        values = [x.get(k) for x in runs["extra"] if isinstance(x, dict)]
        numeric = all(_is_number(v) for v in values if v is not None)
        # a sweep's started_at (seconds since 1970) reads as a date
        kind = "date" if numeric and k.endswith("_at") else "num" if numeric else "text"
        columns.append({"key": f"extra:{k}", "label": k, "kind": kind, "unit": "",
                        "hidden": True})
    keep = [c["key"] for c in columns if ":" not in c["key"]]
    rows = []
    for rec in runs.to_dict("records"):
        row = {k: _clean(rec.get(k)) for k in keep}
        row["tags"] = rec.get("tags") if isinstance(rec.get("tags"), dict) else {}
        row["extra"] = ({k: _clean(v) for k, v in rec["extra"].items()}
                        if isinstance(rec.get("extra"), dict) else {})
        if "error" not in row:
            row["error"] = _clean(rec.get("error"))
        row["run_id"] = str(rec["run_id"])
        rows.append(row)
    return {"columns": columns, "rows": rows, "tag_keys": tag_keys, "extra_keys": extra_keys}


def _has_values(col: pd.Series) -> bool:
    if col.dtype == object:
        return any(v not in (None, "") and not (isinstance(v, float) and math.isnan(v))
                   and v != {} for v in col)
    return bool(col.notna().any())


def _keys(runs: pd.DataFrame, column: str) -> list[str]:
    if column not in runs:
        return []
    seen: dict[str, None] = {}
    for d in runs[column]:
        if isinstance(d, dict):
            seen.update(dict.fromkeys(map(str, d)))
    return sorted(seen)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _clean(v: Any) -> Any:
    """A JSON-able cell: NaN and NaT as null, numpy scalars as Python ones, times as ISO text."""
    if v is None:
        return None
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return None if pd.isna(v) else pd.Timestamp(v).isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@lru_cache(maxsize=2)
def asset(name: str) -> str:
    """The table's script (``"js"``) or style (``"css"``), as shipped in ``templates/``."""
    if name not in ("js", "css"):
        raise ValueError(f"runs table assets are js and css, not {name!r}")
    return resources.files("scalinglab.report").joinpath(f"templates/runs_table.{name}").read_text(
        encoding="utf-8")
