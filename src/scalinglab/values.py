"""Values as people type them on a command line or in a request: one parser each.

:func:`parse_quantity` reads a human number (``7B``, ``1e21``, ``3.4e19``, ``1.4T``, ``2,048``,
``1_000``, ``125M``) and :func:`parse_fraction` a share (``5%``, ``0.05``): the scalar form of the run import's cell grammar
(:mod:`scalinglab.runs.cells`, checked to agree in ``tests/test_values.py``), in plain Python so
the command line parses a flag without loading pandas or Arrow. :func:`parse_pairs` reads
``KEY=VALUE`` lists (repeatable, comma-separated). Errors are :class:`ValueError` /
:class:`~scalinglab.errors.ParameterError` naming what was given; the command line turns them
into one line naming the flag (:class:`scalinglab.clikit.Quantity`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from scalinglab.errors import InputError, ParameterError

#: unit suffixes: ``125M`` parameters, ``1.5B`` tokens, ``2T`` tokens (as ``runs.cells``)
SUFFIXES = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}
_NUMBER = re.compile(r"[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf(inity)?)",
                     re.IGNORECASE)
#: what a person is shown when a value is not a number
EXAMPLES = "e.g. 1e21, 7B, 1.4T"


def parse_quantity(text: str | float | int) -> float:
    """``"7B"`` -> 7e9, ``"1e21"`` -> 1e21, ``"2,048"`` -> 2048.0; ``ValueError`` otherwise.

    Thousands separators (``,`` and ``_``) are dropped; one unit suffix (:data:`SUFFIXES`)
    multiplies; a number is read exactly as ``float()`` reads it. NaN and text are refused.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a number ({EXAMPLES})")
    if isinstance(text, (int, float)):
        if math.isnan(text):
            raise ValueError(f"{text!r} is not a number ({EXAMPLES})")
        return float(text)
    s = str(text).strip().replace(",", "").replace("_", "")
    factor = 1.0
    if len(s) > 1 and s[-1] in SUFFIXES and not s.lower().endswith("inf"):
        factor, s = SUFFIXES[s[-1]], s[:-1]
    if not _NUMBER.fullmatch(s):
        raise ValueError(f"{str(text)!r} is not a number ({EXAMPLES})")
    return float(s) * factor


def positive_number(value: Any, name: str, *, zero: bool = False) -> float:
    """``value`` (a number, or text :func:`parse_quantity` reads: ``"1e22"``, ``"7B"``) as a
    finite float above zero (or at zero, with ``zero``); else a
    :class:`~scalinglab.errors.ParameterError` naming ``name``. One check for the budgets and
    sizes a notebook passes (``res.optimum(-5)`` returned an optimum of NaNs,
    ``make_plan(compute=[1e22])`` was a TypeError from ``math.isfinite``)."""
    try:
        number = parse_quantity(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, not {value!r}"[:200], name) from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        raise ParameterError(f"{name} must be a {'non-negative' if zero else 'positive'} number, "
                             f"not {number:g}", name)
    return number


def parse_fraction(text: str | float | int) -> float:
    """``"5%"`` -> 0.05, ``"0.05"`` -> 0.05: a share, as a fraction or a percentage;
    ``ValueError`` for anything that is not a finite number."""
    s = str(text).strip()
    percent = s.endswith("%")
    try:
        value = parse_quantity(s[:-1] if percent else text)
    except ValueError:
        raise ValueError(f"{str(text)!r} is not a share (e.g. 0.05 or 5%)") from None
    if not math.isfinite(value):
        raise ValueError(f"{str(text)!r} is not a share (e.g. 0.05 or 5%)")
    return value / 100.0 if percent else value


def comma_parts(items: Iterable[str] | str | None) -> Iterator[str]:
    """The parts of a repeatable, comma-separated flag or cell (``["a=1,b=2", "c=3"]`` or one
    string), as written, skipping empty ones (``"a=1,,b=2"``, a trailing comma)."""
    if items is None:
        return
    for item in [items] if isinstance(items, str) else items:
        for part in str(item).split(","):
            if part.strip():
                yield part


def parse_pairs(items: Iterable[str] | str | None, what: str = "value") -> dict[str, str]:
    """``["loss=final_loss", "N=params,D=tokens"]`` -> ``{"loss": "final_loss", ...}``.

    Repeatable and comma-separated; a pair splits at its first ``=``; an empty item is skipped;
    a malformed one raises :class:`ParameterError` naming ``what`` and the pair."""
    out: dict[str, str] = {}
    for part in comma_parts(items):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ParameterError(f"{what} {part!r} must look like KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def parse_quantities(items: Iterable[str] | str | None, what: str = "value") -> dict[str, float]:
    """``["N=7B,D=1.4T"]`` -> ``{"N": 7e9, "D": 1.4e12}``: KEY=VALUE pairs of human numbers."""
    out = {}
    for key, value in parse_pairs(items, what).items():
        try:
            out[key] = parse_quantity(value)
        except ValueError:
            raise ParameterError(f"{what} {key}={value!r}: not a number ({EXAMPLES})") from None
    return out


def parse_number_list(items: Iterable[str] | str | None, what: str = "value", *,
                      positive: bool = False) -> list[float]:
    """``["7B,13B", "70B"]`` -> ``[7e9, 1.3e10, 7e10]``: repeatable, comma-separated human numbers.

    Each must be finite (and above zero with ``positive``); a bad one raises
    :class:`ParameterError` naming ``what`` (the flag, on the command line) and the item."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    out: list[float] = []
    for item in items:
        for part in str(item).split(","):
            try:
                v = parse_quantity(part)
            except ValueError:
                raise ParameterError(f"{what} {part!r} is not a number ({EXAMPLES})") from None
            if not math.isfinite(v):
                raise ParameterError(f"{what} must be finite, not {part!r}")
            if positive and v <= 0:
                raise ParameterError(f"{what} must be positive, not {part!r}")
            out.append(v)
    return out


def as_table(data: Any, what: str = "frame") -> Any:
    """``data`` as a pandas DataFrame: a DataFrame as it is, a dict of columns or a list of
    records (one dict per run) made into one. Anything else (a path, a numpy array, a Series, a
    list of numbers, None) raises :class:`~scalinglab.errors.InputError` naming ``what`` and
    the type given, where it would otherwise fail deep inside a fit on a missing
    ``.columns``/``.rename`` (a notebook user's first mistake). pandas is imported here, when a
    table is given, so this module stays light for the command line."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas") and not isinstance(data, (str, bytes)):  # polars, pyarrow
        return as_table(data.to_pandas(), what)
    hint = ("give a pandas DataFrame (one row per run), a dict of columns or a list of records")
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        raise InputError(f"got a path ({str(data)!r}), not a table: read it first "
                         "(pandas.read_csv / read_parquet); " + hint, source=what)
    records = isinstance(data, (list, tuple)) and bool(data) and all(isinstance(r, Mapping) for r in data)
    if isinstance(data, Mapping) or records:
        try:
            return pd.DataFrame(data)
        except (ValueError, TypeError) as exc:  # columns of unequal lengths, scalars only
            raise InputError(f"cannot make a table of it ({exc}); {hint}", source=what) from None
    raise InputError(f"got {type(data).__module__.split('.')[0] + '.' if type(data).__module__ != 'builtins' else ''}"
                     f"{type(data).__name__}, not a table; {hint}", source=what)


def as_mapping(value: Any, what: str, example: str) -> Mapping[Any, Any]:
    """``value`` if it is a mapping (``{}`` for None), else a
    :class:`~scalinglab.errors.ParameterError` naming ``what`` with an ``example`` of the form:
    ``columns=["N"]`` or ``tie="beta=alpha"`` were an AttributeError ('list' object has no
    attribute 'items') or, for ``fix="E=1.69"``, read character by character."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ParameterError(f"{what} must be a dict such as {example}, not {type(value).__name__} "
                             f"{value!r}"[:300], what)
    return value


def as_columns(data: Any, needed: Iterable[str] = (), what: str = "inputs") -> Mapping[str, Any]:
    """``data`` as columns by name: a mapping (``{"N": array, ...}``) or a DataFrame, with every
    name in ``needed``; else :class:`~scalinglab.errors.ParameterError` naming ``what`` (a list
    or an array was a TypeError from indexing it by name, a missing name a bare KeyError)."""
    from scalinglab.errors import did_you_mean

    if not isinstance(data, Mapping):
        if hasattr(data, "columns") and hasattr(data, "__getitem__"):  # a DataFrame
            data = {str(c): data[c] for c in data.columns}
        else:
            raise ParameterError(f"{what} must map each input's name to its values "
                                 f"({{'N': [...], ...}} or a DataFrame), not {type(data).__name__}", what)
    missing = [k for k in needed if k not in data]
    if missing:
        hint = did_you_mean(missing[0], [str(k) for k in data])
        raise ParameterError(f"{what} lack {missing}{hint}; given: {sorted(map(str, data))}", what)
    return data


__all__ = ["EXAMPLES", "SUFFIXES", "as_columns", "as_mapping", "as_table", "positive_number", "comma_parts", "parse_fraction", "parse_number_list", "parse_pairs",
           "parse_quantities", "parse_quantity"]
