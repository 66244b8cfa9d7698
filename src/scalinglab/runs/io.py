"""Read run tables from CSV, Parquet or JSONL, rename columns and scale units.

Everything is read as text-or-native values and validated later by :mod:`runs.schema`, so a bad
cell is reported by file, row and column rather than surfacing as a pandas dtype error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from scalinglab.clikit import UserError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
           ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    """``["loss=final_loss", "N=params"]`` -> dict; errors say which pair is malformed."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        for part in pair.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise UserError(f"{what} {part!r} must look like KEY=VALUE")
            out[key.strip()] = value.strip()
    return out


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a file into a frame of raw values with ``attrs['row_labels']`` for error messages."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unknown format {path.suffix!r}; use .csv, .tsv, .parquet or .jsonl")
    try:
        if fmt in ("csv", "tsv"):
            df = pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype=str,
                             keep_default_na=False, skipinitialspace=True)
            labels = {i: f"row {i + 1} (line {i + 2})" for i in range(len(df))}
        elif fmt == "parquet":
            df = pd.read_parquet(path)
            labels = {i: f"row {i + 1}" for i in range(len(df))}
        else:
            records, labels = [], {}
            with path.open() as fh:
                for lineno, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise UserError(f"{path}: line {lineno}: invalid JSON ({exc.msg})") from None
                    if not isinstance(obj, dict):
                        raise UserError(f"{path}: line {lineno}: expected a JSON object per line")
                    labels[len(records)] = f"row {len(records) + 1} (line {lineno})"
                    records.append(obj)
            df = pd.DataFrame.from_records(records)
    except UserError:
        raise
    except Exception as exc:  # pandas/pyarrow parse errors carry their own position
        raise UserError(f"{path}: cannot read {fmt}: {exc}") from None
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["row_labels"] = labels
    return df


def apply_mapping(
    df: pd.DataFrame, mapping: Mapping[str, str] | None, source: str
) -> pd.DataFrame:
    """Rename file columns to scalinglab names: ``{"loss": "final_loss"}`` means loss <- final_loss."""
    mapping = dict(mapping or {})
    missing = [src for src in mapping.values() if src not in df.columns]
    if missing:
        raise UserError(
            f"{source}: --map refers to column(s) {missing} not in the file; columns are {list(df.columns)}"
        )
    renamed = df.rename(columns={src: dst for dst, src in mapping.items()})
    # a mapped target replaces an existing column of that name
    renamed = renamed.loc[:, ~renamed.columns.duplicated(keep="last")]
    renamed.attrs = df.attrs
    return renamed


def apply_scale(df: pd.DataFrame, scale: Mapping[str, str] | None, source: str) -> pd.DataFrame:
    """Multiply columns given in other units, e.g. ``{"N": "1e6"}`` for parameters in millions."""
    if not scale:
        return df
    from scalinglab.runs.schema import parse_number

    out = df.copy()
    out.attrs = df.attrs
    for col, factor in scale.items():
        if col not in out.columns:
            raise UserError(f"{source}: --scale names column {col!r} which is not in the file")
        try:
            f = parse_number(factor)
        except ValueError:
            raise UserError(f"--scale {col}={factor}: {factor!r} is not a number") from None

        def times(v: object, f: float = f) -> object:
            try:
                return parse_number(v) * f
            except (TypeError, ValueError):
                return v  # left for validation to report with its row

        out[col] = out[col].map(times)
    return out
