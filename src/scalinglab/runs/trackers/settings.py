"""Values the user gives per run (a small mapping file) or for every run (``--set N=1e6``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalinglab.errors import InputError, ScalingLabError, did_you_mean
from scalinglab.safefile import check_input, read_json


@dataclass
class RunSettings:
    """Values the user gives per run (a mapping file) or for every run (``--set N=1e6``).

    ``per_run`` maps a run's name (a TensorBoard run directory relative to the log dir, an
    MLflow run name or id, a W&B run name or id, a log file's name or stem) to its values.
    """

    constants: dict[str, str] = field(default_factory=dict)
    per_run: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # run key -> where it is in the file

    @classmethod
    def build(cls, constants: Mapping[str, Any] | None = None,
              file: str | Path | None = None) -> RunSettings:
        out = cls(constants={str(k): str(v) for k, v in (constants or {}).items()})
        if file is not None:
            out.per_run, out.labels = read_settings_file(file)
            out.source = str(file)
        return out

    def for_run(self, *keys: str) -> dict[str, str]:
        """Constants, overridden by the first of ``keys`` (names of one run) the file has."""
        values = dict(self.constants)
        for key in keys:
            if key in self.per_run:
                values.update(self.per_run[key])
                break
        return values

    def check_known(self, runs: Sequence[Sequence[str]], where: str) -> list[str]:
        """Warnings for the runs the mapping file names that are not in this import.

        A file may well list more runs than one import reads (one file of sizes for a whole
        sweep, imported a folder at a time), so those are named, not refused; a file that
        matches none of the runs is surely the wrong file (or every name is misspelt), and
        is an error.
        """
        if not self.per_run:
            return []
        known = {k for keys in runs for k in keys}
        unknown = [key for key in self.per_run if key not in known]
        if not unknown:
            return []
        names = sorted({keys[0] for keys in runs})
        shown = ", ".join(repr(n) for n in names[:8]) + (" ..." if len(names) > 8 else "")

        def one(key: str) -> str:
            where_in = self.labels.get(key)
            return (f"{key!r}" + (f" ({where_in})" if where_in else "")
                    + did_you_mean(key, names))

        if len(unknown) == len(self.per_run):
            first = unknown[0]
            raise InputError(
                f"none of the {len(unknown)} runs it lists is in {where}: run {first!r} is not"
                f"{did_you_mean(first, names)}; runs are {shown}",
                source=self.source, row=self.labels.get(first),
            )
        listed = "; ".join(one(k) for k in unknown[:10])
        more = f"; and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        return [f"warning: {len(unknown)} of the {len(self.per_run)} runs in {self.source} "
                f"{'are' if len(unknown) > 1 else 'is'} not in {where}, so "
                f"{'their' if len(unknown) > 1 else 'its'} values were not used: "
                f"{listed}{more}"]


#: a mapping file of per-run values is small; a 100 MB one is a mistake
_SETTINGS_MAX_BYTES = 64 * 1024 * 1024

_RUN_KEYS = ("run", "name", "run_name", "run_dir", "dir", "path", "file", "id", "run_id")


def read_settings_file(path: str | Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """A small mapping file of per-run values: ``{run: {N: ..., D: ...}}``.

    CSV (a run column, named ``run``/``name``/``run_dir``/... or else the first, then one column
    per value) or JSON (an object of objects keyed by run, or a list of objects with a ``run``
    key). Returns the values and, per run, where it is in the file (for messages).
    """
    path = Path(path)
    source = str(path)
    check_input(path)
    values: dict[str, dict[str, str]] = {}
    labels: dict[str, str] = {}
    if path.suffix.lower() == ".json":
        obj = read_json(path, limit=_SETTINGS_MAX_BYTES)  # bounded: size, depth, UTF-8
        if isinstance(obj, dict):
            items = list(obj.items())
        elif isinstance(obj, list):
            items = []
            for i, entry in enumerate(obj):
                key = next((k for k in _RUN_KEYS if isinstance(entry, dict) and k in entry), None)
                if key is None:
                    raise InputError(f"expected an object with a 'run' key, got {entry!r:.60}",
                                     source=source, row=f"entry {i + 1}")
                rest = {k: v for k, v in entry.items() if k != key}
                items.append((entry[key], rest))
        else:
            raise InputError("expected an object {run: {N: ..., D: ...}} or a list of objects",
                             source=source)
        for i, (run, vals) in enumerate(items):
            if not isinstance(vals, dict):
                raise InputError(f"expected an object of values, got {vals!r:.60}", source=source,
                                 row=f"run {run!r}")
            values[str(run)] = {str(k): _text(v) for k, v in vals.items() if v is not None}
            labels[str(run)] = f"entry {i + 1} (run {str(run)!r})"
        return values, labels
    from scalinglab.runs.io import read_table

    try:
        df = read_table(path)
    except ScalingLabError:
        raise
    except Exception as exc:  # the old reader raises the CLI's error type; keep one line
        raise InputError(str(getattr(exc, "message", exc)), source=source) from None
    if df.empty or len(df.columns) < 2:
        raise InputError("expected a run column and at least one value column", source=source)
    lower = {c.lower(): c for c in df.columns}
    run_col = next((lower[k] for k in _RUN_KEYS if k in lower), df.columns[0])
    row_labels = df.attrs.get("row_labels", {})
    for i, rec in enumerate(df.to_dict("records")):
        run = str(rec.pop(run_col)).strip()
        where = str(row_labels.get(i, f"row {i + 1}"))
        if not run:
            raise InputError("the run name is empty", source=source, row=where, column=run_col)
        if run in values:
            raise InputError(f"run {run!r} is given twice (also {labels[run]})", source=source,
                             row=where, column=run_col)
        values[run] = {k: _text(v) for k, v in rec.items() if _text(v) != ""}
        labels[run] = where
    return values, labels


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()
