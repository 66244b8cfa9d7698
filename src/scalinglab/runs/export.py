"""Runs as a flat table for export (``scalinglab runs --format csv|tsv``): every run column,
the tags as one JSON object, each extra column as a column of its own; missing values as empty
cells and numbers in full, so ``pandas.read_csv`` gives back the store's numbers and dtypes
(float columns as floats, not text because of a ``-``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from scalinglab.errors import ParameterError, did_you_mean

#: run columns in export order (``extra`` is spread into its keys)
COLUMNS = ("run_id", "name", "N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay",
           "seq_len", "status", "error", "source", "tags")


def export_frame(runs: pd.DataFrame, columns: Sequence[str] | None = None,
                 extra_keys: Sequence[str] = ()) -> pd.DataFrame:
    """``runs`` (as :meth:`RunStore.runs` gives them) flattened: :data:`COLUMNS`, then each
    extra key (``extra.KEY`` where it would clash with a run column). ``columns`` picks and
    orders them; an unknown name raises :class:`ParameterError` (``columns``) with the names.
    ``extra_keys`` are extra keys known elsewhere (the store's) that these runs may lack: such
    a column is empty, not unknown (a filter that matched no run made ``--columns run_id,seed``
    "no column 'seed'", exit 2)."""
    out = pd.DataFrame(index=runs.index)
    for c in COLUMNS:
        if c == "tags":
            out[c] = [json.dumps(t, sort_keys=True) if isinstance(t, dict) and t else None
                      for t in runs.get(c, pd.Series([None] * len(runs), index=runs.index))]
        elif c in runs:
            out[c] = runs[c]
    extras = runs["extra"] if "extra" in runs else pd.Series([], dtype=object)
    keys: dict[str, None] = {}
    for d in extras:
        if isinstance(d, dict):
            keys.update(dict.fromkeys(map(str, d)))
    for k in extra_keys:
        keys.setdefault(str(k), None)
    for k in keys:
        name = f"extra.{k}" if k in out.columns else k
        values = [d.get(k) if isinstance(d, dict) else None for d in extras]
        col = pd.Series(values, index=runs.index, dtype=object)
        numeric = pd.to_numeric(col, errors="coerce")
        # a column of numbers (and gaps) stays numeric; anything else is text
        out[name] = numeric if numeric.notna().sum() == col.notna().sum() else col
    if columns:
        wanted = [c.strip() for item in columns for c in str(item).split(",") if c.strip()]
        unknown = [c for c in wanted if c not in out.columns]
        if unknown:
            raise ParameterError(f"no column {unknown[0]!r}"
                                 f"{did_you_mean(unknown[0], list(out.columns))}; columns are "
                                 f"{', '.join(out.columns)}", "columns")
        out = out[wanted]
    return out.reset_index(drop=True)


def to_delimited(frame: pd.DataFrame, sep: str = ",") -> str:
    """CSV or TSV text: a header, missing values as empty cells, floats in full (``repr``);
    control characters in text (a run named with an escape sequence) shown escaped, as in
    every terminal output (:func:`scalinglab.summary.printable`)."""
    from scalinglab.summary import printable

    safe = frame.copy()
    safe.columns = [printable(str(c)) for c in frame.columns]
    for i, c in enumerate(frame.columns):
        col = frame[c]
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            safe.isetitem(i, col.map(lambda v: printable(v) if isinstance(v, str) else v))
    return safe.to_csv(index=False, sep=sep, na_rep="", lineterminator="\n")
