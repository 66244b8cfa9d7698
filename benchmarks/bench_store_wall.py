"""What curves with wall time (schema version 3) and a recorded sweep state cost the store.

    python benchmarks/bench_store_wall.py                 # 1,000 runs x 1,000 points
    python benchmarks/bench_store_wall.py --runs 200 --points 500

Prints CPU seconds of this process (they move less with a shared machine's load than wall
time; both are printed): an import of the curves with ``wall_s``, ``store migrate`` of the same
store written as version 2 (no ``wall_s``), one ``RunStore.record_sweep`` (the sweep runner
writes one as each run starts and ends) and one ``curve`` read.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from scalinglab.runs.store import RunStore
from scalinglab.sweep.progress import SweepStarted, fold, snapshot


def timed(label: str, fn, repeat: int = 1) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        fn()
    cpu = (time.process_time() - cpu) / repeat
    wall = (time.perf_counter() - wall) / repeat
    print(f"{label}: {cpu:.4f} CPU s, {wall:.4f} wall s" + (f" (mean of {repeat})" if repeat > 1 else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--points", type=int, default=1000)
    args = ap.parse_args()
    n, k = args.runs, args.points
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.duckdb"
        store = RunStore(path)
        frame = pd.DataFrame({"N": np.geomspace(1e6, 1e9, n), "D": 1e9, "loss": 3.0})
        curves = pd.DataFrame({"row": np.repeat(np.arange(n), k), "step": np.tile(np.arange(k), n),
                               "loss": 3.0, "wall_s": np.tile(np.arange(k) * 0.5, n)})
        timed(f"import {n:,} runs x {k:,} points with wall_s",
              lambda: store.import_frame(frame, curves=curves, source="bench"))
        con = duckdb.connect(str(path))  # the same store as version 2 left it
        con.execute("ALTER TABLE curves DROP COLUMN wall_s")
        con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        con.close()
        old = RunStore(path)
        timed(f"store migrate 2 -> 3, {n * k:,} curve points", old.migrate)
        state = snapshot(fold([SweepStarted(100, 0, 1e18, 0.0)]), 1.0, "bench", time.time())
        timed("record_sweep", lambda: old.record_sweep(state), repeat=50)
        rid = old.runs()["run_id"].iloc[0]
        timed("curve read", lambda: old.curve(rid), repeat=20)


if __name__ == "__main__":
    main()
