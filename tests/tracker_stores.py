"""An MLflow sweep with the failures real sweeps have, written by MlflowClient (see conftest)."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

STEPS = list(range(0, 100, 10))


def loss_at(step: int, n: float) -> float:
    return 2.0 + 30.0 / (step + 10) + 1e3 / n


def write_store(client) -> None:
    """A small sweep as MLflow users log one, with the failures real sweeps have."""
    sweep = client.create_experiment("sweep")
    other = client.create_experiment("other")

    started = iter(range(1_700_000_000_000, 1_800_000_000_000, 1000))

    def run(exp, name, n, status, losses=None, params=None, tags=None):
        r = client.create_run(exp, run_name=name, tags={"dataset": "c4", **(tags or {})},
                              start_time=next(started))
        rid = r.info.run_id
        for k, v in {"n_params": n, "learning_rate": 1e-3, "batch_tokens": 4096,
                     "schedule": "cosine", **(params or {})}.items():
            client.log_param(rid, k, v)
        for s, v in zip(STEPS, losses if losses is not None else [loss_at(s, n) for s in STEPS],
                        strict=False):
            client.log_metric(rid, "train/loss", v, step=s, timestamp=1_700_000_000_000 + s)
            if s % 30 == 0:
                client.log_metric(rid, "eval/loss", v + 0.1, step=s)
        if status != "RUNNING":
            client.set_terminated(rid, status, end_time=r.info.start_time + 60_000)
        return rid

    run(sweep, "small", 1e6, "FINISHED")
    rid = run(sweep, "large", 4e6, "FINISHED")
    # step 90 logged again later (a resumed job): the later value counts
    client.log_metric(rid, "train/loss", 2.25, step=90, timestamp=1_700_000_999_999)
    run(sweep, "oom", 8e6, "FAILED", losses=[3.0, 2.9])
    run(sweep, "preempted", 8e6, "KILLED", losses=[3.0, 2.9, 2.8])
    run(sweep, "diverged", 2e6, "FINISHED", losses=[3.0, 2.8, math.nan, math.nan])
    run(sweep, "live", 2e6, "RUNNING", losses=[3.0, 2.7])
    run(other, "elsewhere", 1e5, "FINISHED", tags={"dataset": "pile"})


def write_mlflow_stores(root: Path) -> dict[str, Path]:
    from mlflow.tracking import MlflowClient

    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 writes file stores only when asked
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # SQLAlchemy's, inside MLflow
        try:
            write_store(MlflowClient(tracking_uri=(root / "mlruns").as_uri()))
        finally:
            if old is None:
                os.environ.pop("MLFLOW_ALLOW_FILE_STORE")
        write_store(MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}"))
    return {"mlruns": root / "mlruns", "sqlite": root / "mlflow.db"}
