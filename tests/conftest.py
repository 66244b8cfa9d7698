"""Shared fixtures: tracker stores written once per test session by the real libraries."""

from __future__ import annotations

from pathlib import Path

import pytest
from tracker_stores import write_mlflow_stores


@pytest.fixture(scope="session")
def mlflow_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An mlruns folder and an SQLite store of the same small sweep, written by MlflowClient
    (MLflow's SQLite store takes about 5 s to create: its migrations run once, here)."""
    pytest.importorskip("mlflow")
    return write_mlflow_stores(tmp_path_factory.mktemp("mlflow"))
