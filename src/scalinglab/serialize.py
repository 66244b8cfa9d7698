"""JSON as scalinglab writes it: every result's ``save()``, ``--save``, ``--json``, the report's
embedded data and the dashboard's API use :func:`to_json`, so a file written by one is read the
same by all. NaN and infinities (invalid JSON) become ``null``; numpy scalars and arrays,
paths, sets, tuples and dates become their plain JSON forms. A base module: it imports nothing
of scalinglab, so saving a result never loads the command line (typer, rich).

A saved result must load back to the same result, so an infinity (a parameter a refit drove to
its bound, A = inf) cannot become a bare ``null`` there: :func:`keep_infinities` lists every
infinity of a result's dict under ``"nonfinite"`` (JSON pointer -> ``"inf"``/``"-inf"``) beside
the ``null`` every JSON reader can read, and :func:`restore_infinities` puts them back on
loading. NaN stays ``null``, which every ``from_dict`` already reads as NaN."""

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


#: the key of a saved result's table of infinities (JSON pointer -> "inf" or "-inf")
NONFINITE_KEY = "nonfinite"


def _pointer_token(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _infinities(o: Any, path: str, out: dict[str, str]) -> None:
    if isinstance(o, (float, np.floating)):
        if math.isinf(o):
            out[path] = "inf" if o > 0 else "-inf"
    elif isinstance(o, dict):
        for k, v in o.items():
            _infinities(v, f"{path}/{_pointer_token(k)}", out)
    elif isinstance(o, (list, tuple)):
        for i, v in enumerate(o):
            _infinities(v, f"{path}/{i}", out)
    elif isinstance(o, np.ndarray) and o.dtype.kind == "f":
        if np.isinf(o).any():
            _infinities(o.tolist(), path, out)
    elif isinstance(o, np.ndarray) and o.dtype.kind == "O":
        _infinities(o.tolist(), path, out)


def keep_infinities(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a result's ``to_dict``) with its infinities listed under ``"nonfinite"``, so
    the saved file loads back exactly (:func:`restore_infinities`); ``data`` itself unchanged."""
    found: dict[str, str] = {}
    _infinities({k: v for k, v in data.items() if k != NONFINITE_KEY}, "", found)
    rest = {k: v for k, v in data.items() if k != NONFINITE_KEY}
    return {**rest, NONFINITE_KEY: found} if found else rest


def restore_infinities(data: dict[str, Any]) -> dict[str, Any]:
    """Put back (in place) the infinities :func:`keep_infinities` listed, and drop the list.
    Each entry must point at a ``null`` of ``data`` and say ``"inf"`` or ``"-inf"``; anything else
    is a :class:`ValueError` naming the entry."""
    table = data.pop(NONFINITE_KEY, None)
    if table is None:
        return data
    if not isinstance(table, dict):
        raise ValueError(f"field {NONFINITE_KEY!r}: expected an object of JSON pointers")
    for pointer, value in table.items():
        if value not in ("inf", "-inf") or not isinstance(pointer, str) or not pointer.startswith("/"):
            raise ValueError(f"field {NONFINITE_KEY!r}: {str(pointer)[:80]!r}: {str(value)[:20]!r} "
                             "is not a pointer to 'inf' or '-inf'")
        *parents, last = [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]
        node: Any = data
        try:
            for token in parents:
                node = node[int(token)] if isinstance(node, list) else node[token]
            key: Any = int(last) if isinstance(node, list) else last
            if node[key] is not None:
                raise KeyError(last)
        except (KeyError, IndexError, ValueError, TypeError):
            raise ValueError(f"field {NONFINITE_KEY!r}: {pointer[:80]!r} points at no null "
                             "of the file") from None
        node[key] = math.inf if value == "inf" else -math.inf
    return data


def to_json(obj: Any) -> str:
    """``obj`` as indented JSON, NaN as null."""
    return json.dumps(clean(obj), default=json_default, indent=2)


__all__ = ["NONFINITE_KEY", "clean", "json_default", "keep_infinities", "restore_infinities",
           "to_json"]
