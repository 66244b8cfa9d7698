"""The study layer: one :class:`Study` between the runs and every face (see :mod:`.study`).

    from scalinglab.study import Study
    study = Study("runs.duckdb", tags={"dataset": "c4"})
    study.fit("chinchilla"); study.isoflop(); study.plan(1e22)
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_BOOTSTRAP", "Study", "resolve"]


def __getattr__(name: str) -> Any:  # loaded on first use: the CLI's start stays quick
    if name in ("Study", "DEFAULT_BOOTSTRAP", "FrameStore"):
        from scalinglab.study import study

        return getattr(study, name)
    if name == "resolve":
        from scalinglab.study.resolve import resolve

        return resolve
    raise AttributeError(f"module 'scalinglab.study' has no attribute {name!r}")
