"""The run record: which columns a run has, their units, and what makes a value valid.

The import pipeline (:mod:`scalinglab.runs.validate`), the store and the sweep runner share
these definitions, so every path rejects the same things with the same words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from scalinglab.errors import InputError, ParameterError
from scalinglab.runs import ids
from scalinglab.runs.cells import (
    canonical_json,  # noqa: F401  (re-exported: it lives with the cells it spells)
    extra_cells,
    parse_number,  # noqa: F401  (re-exported: the one cell parser)
    show_cell,
)
from scalinglab.runs.columns import ALIASES, DESCRIPTIONS
from scalinglab.values import comma_parts

#: numeric columns of a stored run, with units (shown in errors and `scalinglab runs`)
NUMERIC_COLUMNS: dict[str, str] = {
    k: DESCRIPTIONS[k]
    for k in ("N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay", "seq_len")
}
REQUIRED = ("N", "loss")
TEXT_COLUMNS = ("run_id", "name", "status", "error", "source")
STATUSES = ("finished", "failed", "running")
#: columns that become tags when present
TAG_COLUMNS = ("dataset", "architecture")
#: loss-like columns, best first (the alias table's entry; kept for older imports)
LOSS_ALIASES = ALIASES["loss"]
#: a batch given in sequences is converted with seq_len
BATCH_SEQ_ALIASES = ALIASES["batch_sequences"]

#: how trackers and people spell a run's state -> the store's three statuses
STATUS_WORDS: dict[str, str] = {
    **{w: "finished" for w in ("finished", "complete", "completed", "done", "success",
                               "succeeded", "ok")},
    **{w: "failed" for w in ("failed", "failure", "crashed", "killed", "error", "errored",
                             "preempted", "cancelled", "canceled", "diverged", "oom")},
    **{w: "running" for w in ("running", "preempting", "pending", "queued", "scheduled",
                              "started", "in progress")},
}

#: a tag key: a word character, then word characters or . - / + (at most 64). No quotes, $, *,
#: brackets, '=' or ':' (the dashboard's filter syntax), so a key can never be read as a path.
TAG_KEY = re.compile(r"^\w[\w.\-/+]{0,63}$")


def split_tag(part: str) -> tuple[str, str, str]:
    """``"dataset=c4"`` or ``"dataset:c4"`` -> ``("dataset", "=", "c4")``: split at the first
    ``=`` or ``:``, so a value may hold the other (``url=http://x``, ``at:12=3``); a key never
    holds either (:data:`TAG_KEY`). No separator: ``(part, "", "")``. The one rule for every
    place a tag is written as text (``--tag``, filters, a file's tags cell)."""
    cut = min((i for i in (part.find("="), part.find(":")) if i >= 0), default=-1)
    if cut < 0:
        return part, "", ""
    return part[:cut], part[cut], part[cut + 1:]


def parse_tag_filters(items: Iterable[str] | str | None) -> dict[str, str]:
    """``["dataset:c4", "sweep=a"]`` (or one comma-separated string) -> ``{"dataset": "c4", ...}``."""
    out: dict[str, str] = {}
    for part in map(str.strip, comma_parts(items)):
        key, found, value = split_tag(part)
        if not found or not key.strip() or not value.strip():
            raise ParameterError(f"tag filter {part!r}: write KEY=VALUE or KEY:VALUE, e.g. "
                                 "dataset=c4", "tag")
        out[key.strip()] = value.strip()
    return out


def check_tag_key(key: str) -> str | None:
    """The reason ``key`` is not a valid tag key, or None."""
    if not isinstance(key, str) or not TAG_KEY.match(key):
        return (f"tag key {key!r} is not valid: use letters, digits and _ . - / + "
                "(starting with a letter, digit or _; at most 64)")
    return None


def run_id_for(row: dict[str, Any]) -> str:
    """The content-derived id of one run record (the same hash an import computes per column).

    ``row`` holds run columns (``N``, ``D``, ``C``, ``loss``, ...), ``tags`` and ``extra``
    dicts, and optionally ``name``.
    """
    fields = []
    for col in NUMERIC_COLUMNS:
        v = row.get(col)
        fields.append((col, *ids.float_words(np.array([np.nan if v is None else float(v)]))))
    tags = dict(row.get("tags") or {})
    fields.append(("tags", *_text_field([canonical_json(tags)] if tags else [None])))
    if row.get("name") is not None:
        fields.append(("name", *_text_field([str(row["name"])])))
    for key, value in dict(row.get("extra") or {}).items():
        fields.append(extra_field(key, [value]))
    return ids.hex_ids(ids.combine(fields, 1)).to_pylist()[0]


def _text_field(values: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    return ids.text_words(pa.array(values, type=pa.large_string()))


def extra_field(key: str, cells: Any) -> tuple[str, np.ndarray, np.ndarray]:
    """The hash field of an extra column (its cells typed by :func:`cells.extra_cells`)."""
    return (f"extra.{key}", *extra_cells(cells).words())


def invalid_status(value: Any) -> InputError:
    return InputError(f"{show_cell(value)} is not a run status; use one of {list(STATUSES)} "
                      "(or a tracker's word for one, e.g. crashed, killed)", column="status")
