"""Runs in, tidy: the run store, reading files, the run record, and which runs inform a law."""

from scalinglab.runs.select import Selection, select_runs
from scalinglab.runs.store import ImportReport, RunStore

__all__ = ["ImportReport", "RunStore", "Selection", "select_runs"]
