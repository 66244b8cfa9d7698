"""How long the dashboard takes to answer what its page asks on first load, cold and cached.

    python benchmarks/bench_dashboard.py [--runs-per-budget 7] [--bootstrap 100] [--repeat 3]

Builds the synthetic store ``bench_report.py`` uses (an IsoFLOP sweep of 5 budgets with loss
curves and an lr x batch grid), then asks the app (in process, through FastAPI's test client)
for the summary, the fit and every chart the page draws, first on a cold cache (each answer
computed once) and then again (answered from the Study's cache, keyed by the store's state).
Prints CPU seconds of this process (reliable on a shared machine) beside wall seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

#: the charts the page draws on first load (every version of the app serves these)
PAGE_CHARTS = ("overview", "parity", "residuals", "corner", "isoflop", "allocation", "heatmap",
               "curves")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs-per-budget", type=int, default=7)
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="cold rounds (a fresh app each)")
    args = ap.parse_args()

    from fastapi.testclient import TestClient
    from report_synth import all_runs

    from scalinglab.report import server
    from scalinglab.runs.store import RunStore

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.duckdb"
        runs = all_runs(per_budget=args.runs_per_budget)
        with RunStore(path) as store:
            store.import_frame(runs, source="bench")
        urls = ["/api/summary", "/api/fit"] + [f"/api/charts/{c}" for c in PAGE_CHARTS]
        params = {"bootstrap": args.bootstrap}

        def round_trip(client: TestClient) -> tuple[float, float]:
            cpu, wall = time.process_time(), time.perf_counter()
            for url in urls:
                response = client.get(url, params=params)
                assert response.status_code == 200, (url, response.text[:200])
            return time.process_time() - cpu, time.perf_counter() - wall

        cold, warm = [], []
        for _ in range(args.repeat):
            client = TestClient(server.create_app(path, bootstrap=args.bootstrap),
                                base_url="http://127.0.0.1:8765")
            cold.append(round_trip(client))
            warm.append(round_trip(client))
        best = min(cold)
        print(f"dashboard first load ({len(urls)} requests, {len(runs)} runs, "
              f"bootstrap {args.bootstrap}), best of {args.repeat}:")
        print(f"  cold   {best[0]:6.2f} CPU s  {best[1]:6.2f} wall s")
        print(f"  cached {min(warm)[0]:6.2f} CPU s  {min(warm)[1]:6.2f} wall s")


if __name__ == "__main__":
    main()
