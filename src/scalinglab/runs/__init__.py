"""Runs: the store, the import pipeline, filters, and which runs inform a law.

    from scalinglab.runs import RunStore, filter_frame
    store = RunStore("runs.duckdb")
    store.import_file("wandb_export.csv", invalid="failed")
    store.runs(where="N > 1e8 AND tags->>'dataset' = 'c4'")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: the run store a command opens when given no ``--store`` (and ``fit`` without a file)
DEFAULT_STORE = Path("scalinglab.duckdb")

__all__ = ["DEFAULT_STORE", "ImportReport", "InvalidRows", "RunStore", "Selection", "filter_frame", "parse_number",
           "select_runs"]


def __getattr__(name: str) -> Any:  # imported on first use: the CLI's start stays quick
    if name in ("RunStore", "ImportReport", "InvalidRows"):
        from scalinglab.runs import store

        return getattr(store, name)
    if name in ("select_runs", "Selection"):
        from scalinglab.runs import select

        return getattr(select, name)
    if name == "filter_frame":
        from scalinglab.runs.where import filter_frame

        return filter_frame
    if name == "parse_number":
        from scalinglab.runs.cells import parse_number

        return parse_number
    raise AttributeError(f"module 'scalinglab.runs' has no attribute {name!r}")
