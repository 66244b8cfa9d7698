"""Readers for runs where they already live: TensorBoard, MLflow, W&B history exports, logs.

Each reader is a pure function returning a :class:`TrackerImport` (runs in scalinglab's column
names, long-format loss curves keyed by the run's row, notes on what was inferred) that
:meth:`scalinglab.runs.store.RunStore.import_frame` validates and stores in one transaction.
The TensorBoard and MLflow readers need the optional ``trackers`` extra
(``pip install 'scalinglab[trackers]'``), imported only when used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scalinglab.errors import ParameterError
from scalinglab.runs.trackers.base import (
    MissingDependency,
    TrackerImport,
)
from scalinglab.runs.trackers.final import FinalRule
from scalinglab.runs.trackers.settings import RunSettings
from scalinglab.safefile import check_input

#: the sources ``read_tracker`` reads, with the reader's own final-loss default
SOURCES: dict[str, str] = {"tensorboard": "last", "mlflow": "last", "wandb": "last", "log": "ema:10"}


def read_tracker(
    kind: str,
    path: str | Path,
    *,
    loss_tag: str | None = None,
    eval_tag: str | None = None,
    mapping: Mapping[str, str] | None = None,
    settings: RunSettings | None = None,
    final: str | None = None,
    experiment: str | None = None,
    log_format: str | None = None,
    pattern: str | None = None,
) -> TrackerImport:
    """Read runs from ``path`` with the reader for ``kind`` (see :data:`SOURCES`).

    Options a source has no use for must be left unset (an ``experiment`` for a log is a
    mistake worth saying, not ignoring).
    """
    if kind not in SOURCES:
        raise ParameterError(f"kind must be one of {', '.join(SOURCES)}, not {kind!r}", "kind")
    given = {"experiment": experiment, "log_format": log_format, "pattern": pattern,
             "loss_tag": loss_tag, "eval_tag": eval_tag}
    allowed = {"tensorboard": {"loss_tag", "eval_tag"}, "mlflow": {"loss_tag", "eval_tag", "experiment"},
               "wandb": {"loss_tag", "eval_tag"}, "log": {"log_format", "pattern"}}[kind]
    extra = [k for k, v in given.items() if v is not None and k not in allowed]
    if extra:
        raise ParameterError(f"{', '.join(extra)} cannot be used with kind {kind!r}", *extra)
    if log_format is not None:
        from scalinglab.runs.trackers.training_log import FORMATS

        if log_format.strip().lower() not in FORMATS:
            raise ParameterError(f"log_format must be one of {', '.join(FORMATS)}, not "
                                 f"{log_format!r}", "log_format")
    if not (kind == "mlflow" and "://" in str(path)) and os.path.lexists(path):
        check_input(path, folder=True)  # a FIFO or device: refused before any reader opens it
    rule = final or SOURCES[kind]
    common: dict[str, Any] = {"mapping": mapping, "settings": settings, "final": rule}
    if kind == "tensorboard":
        from scalinglab.runs.trackers.tensorboard_events import read_tensorboard

        return read_tensorboard(path, loss_tag=loss_tag, eval_tag=eval_tag, **common)
    if kind == "mlflow":
        from scalinglab.runs.trackers.mlflow_store import read_mlflow

        return read_mlflow(path, experiment=experiment, loss_tag=loss_tag, eval_tag=eval_tag,
                           **common)
    if kind == "wandb":
        from scalinglab.runs.trackers.wandb_history import read_wandb_history

        return read_wandb_history(path, loss_tag=loss_tag, eval_tag=eval_tag, **common)
    from scalinglab.runs.trackers.training_log import read_training_logs

    return read_training_logs(path, format=log_format, pattern=pattern, **common)


__all__ = ["SOURCES", "FinalRule", "MissingDependency", "RunSettings", "TrackerImport",
           "read_tracker"]
