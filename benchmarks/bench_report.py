"""How long the report takes, stage by stage, and what one query for many curves saves.

    python benchmarks/bench_report.py [--runs-per-budget 7] [--bootstrap 200]

Builds a synthetic store (an IsoFLOP sweep of 5 budgets with loss curves and an lr x batch grid,
as the tests use), then times ``report``'s stages as its progress line reports them (fits,
IsoFLOP, lr/batch laws, plan, each chart) and the curves of every run read one connection per
run (the naive reference, what the dashboard did per request) against one query
(``RunStore.curves``), printing the ratio measured in this run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs-per-budget", type=int, default=7)
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()

    from report_synth import all_runs

    from scalinglab.report.analysis import summarise
    from scalinglab.report.html import render_report
    from scalinglab.runs.store import RunStore

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.duckdb"
        with RunStore(path) as store:
            store.import_frame(all_runs(per_budget=args.runs_per_budget), source="bench")
        store = RunStore(path, read_only=True)

        stages: list[tuple[str, float]] = []
        last = [time.perf_counter(), ""]

        def progress(stage: str, done: int, total: int) -> None:
            if stage != last[1]:
                now = time.perf_counter()
                if last[1]:
                    stages.append((last[1], now - last[0]))
                last[0], last[1] = now, stage

        t0 = time.perf_counter()
        summary = summarise(store, bootstrap=args.bootstrap, progress=progress)
        html = render_report(summary, store, progress=progress)
        stages.append((last[1], time.perf_counter() - last[0]))
        total = time.perf_counter() - t0
        print(f"report of {len(summary.runs)} runs, bootstrap {args.bootstrap}: {total:.1f} s, "
              f"{len(html) / 1e6:.1f} MB; longest silence between progress lines "
              f"{max(s for _, s in stages):.1f} s")
        for stage, seconds in stages:
            print(f"  {seconds:6.2f} s  {stage}")

        ids = summary.runs["run_id"].astype(str).tolist()
        t = time.perf_counter()
        naive = {r: c for r in ids if len(c := store.curve(r))}
        t_naive = time.perf_counter() - t
        t = time.perf_counter()
        batched = store.curves(ids)
        t_batched = time.perf_counter() - t
        assert set(naive) == set(batched) and all(naive[r].equals(batched[r]) for r in naive)
        print(f"curves of {len(ids)} runs: one connection per run {t_naive:.3f} s, one query "
              f"{t_batched:.3f} s ({t_naive / t_batched:.1f}x)")


if __name__ == "__main__":
    main()
