"""JSON as scalinglab writes it: every result's ``save()``, ``--save``, ``--json``, the report's
embedded data and the dashboard's API use :func:`to_json`, so a file written by one is read the
same by all. NaN and infinities (invalid JSON) become ``null``; numpy scalars and arrays,
paths, sets, tuples and dates become their plain JSON forms. A base module: it imports nothing
of scalinglab, so saving a result never loads the command line (typer, rich)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)``: the plain form of what ``json`` cannot write itself."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    if hasattr(o, "isoformat"):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def clean(o: Any) -> Any:
    """Replace NaN/inf (invalid JSON) by null, recursively."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [clean(v) for v in o]
    if isinstance(o, np.ndarray):
        return clean(o.tolist())
    if isinstance(o, np.generic):
        return clean(o.item())
    return o


def to_json(obj: Any) -> str:
    """``obj`` as indented JSON, NaN as null."""
    return json.dumps(clean(obj), default=json_default, indent=2)


__all__ = ["clean", "json_default", "to_json"]
