"""Shared fixtures: tracker stores written once per test session by the real libraries.

The suite trains and fits tiny models (d_model 16-32, a few hundred points), whose matrix
products are too small to gain from a second thread: with torch's default two OpenMP threads a
4-run `sweep run` of test_hostile_sweep cost 50 CPU s on a busy 2-core machine, with one thread
6.7 CPU s (same runs, same losses: `/usr/bin/time` on `scalinglab sweep run`, 14:50 UTC). So the
suite runs with one BLAS/OpenMP thread per process, set here before anything imports torch or
numpy; subprocesses the tests start inherit it. Tests that choose threads themselves (the
sweep's --cpus-per-run, Placement.threads) still set them through torch.set_num_threads.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from tracker_stores import write_mlflow_stores  # noqa: E402


@pytest.fixture(scope="session")
def mlflow_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An mlruns folder and an SQLite store of the same small sweep, written by MlflowClient
    (MLflow's SQLite store takes about 5 s to create: its migrations run once, here)."""
    pytest.importorskip("mlflow")
    return write_mlflow_stores(tmp_path_factory.mktemp("mlflow"))
