"""Cells as people write them in run logs, read one way everywhere.

One numeric grammar serves the run import, fit files, hyperparameter grids and command-line
numbers: ``3e-4``, ``125M``, ``1.5B``, ``2,048``, ``1_000`` and ``inf`` are numbers (a comma only
where it groups digits by three: ``3,1`` is a decimal comma, not 31); an empty cell and
``nan``/``NA``/``N/A``/``null``/``none`` (any case) are *missing*; anything else, a boolean
included, is *not a number*. Whole columns are parsed with Arrow's compute kernels, so a
million-row column costs tens of milliseconds rather than a Python loop's seconds; the scalar
:func:`parse_number` is the same parser applied to one cell.

Arrow's string-to-double cast rounds correctly, as Python's ``float()`` does, so a value parsed
here is bit-for-bit the one ``float(text)`` gives (checked in ``tests/test_runs_cells.py``).

A column is an Arrow array (a CSV chunk: ``scalinglab import`` never loads pandas, which cost
0.2 to 0.45 s of its start), a pandas Series (frames, Parquet, JSONL, trackers) or a list.
pandas is looked up in ``sys.modules`` rather than imported: a value can only be a pandas
object (a Series, ``pd.NA``) when something has loaded pandas already.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scalinglab.runs import arrays as A

if TYPE_CHECKING:
    import pandas as pd

#: a column of cells: Arrow (CSV chunks), pandas (frames, Parquet, JSONL) or a list
Column = Any

#: cells that mean "no value" (compared case-insensitively, after trimming)
MISSING_TOKENS = ("", "nan", "na", "n/a", "null", "none")
#: unit suffixes: ``125M`` parameters, ``1.5B`` tokens, ``2T`` tokens
SUFFIXES = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}

# A plain decimal or scientific number, or an infinity; checked before the cast so that one bad
# cell marks that cell, not the whole column (Arrow's cast fails the column).
_NUMBER = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?)$"
_INTEGER = r"^[+-]?[0-9]{1,18}$"
#: a number whose commas separate thousands: 1 to 3 digits, then groups of ',ddd', then no
#: comma (a fraction, an exponent, a suffix may follow): '2,048', '1,000.5', '1,500M'
_GROUPED = r"^[+-]?[0-9]{1,3}(,[0-9]{3})+([^0-9,][^,]*)?$"


@dataclass(frozen=True)
class NumericCells:
    """A parsed column: ``values`` (float64, NaN where missing or bad) and two masks."""

    values: np.ndarray
    missing: np.ndarray
    bad: np.ndarray

    def __len__(self) -> int:
        return len(self.values)


def parse_number(value: Any) -> float:
    """One cell: a float (NaN when missing); ``ValueError`` when it is not a number."""
    cells = _parse_objects(objects([value]))
    if cells.bad[0]:
        raise ValueError(f"{show_cell(value)} is not a number")
    return float(cells.values[0])


def parse_cells(column: pd.Series | pa.Array | pa.ChunkedArray | Sequence[Any]) -> NumericCells:
    """Parse a whole column with the one numeric grammar (see the module docstring)."""
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        return _parse_arrow(column)
    pd = _pandas()
    if pd is None or not isinstance(column, pd.Series):
        return _parse_objects(objects(column))
    series = column
    arrow = arrow_of(series)
    if arrow is not None:
        return _parse_arrow(arrow)
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        n = len(series)
        return NumericCells(np.full(n, np.nan), np.zeros(n, bool), np.ones(n, bool))
    if pd.api.types.is_numeric_dtype(dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        return NumericCells(values, np.isnan(values), np.zeros(len(values), bool))
    return _parse_objects(series.to_numpy(dtype=object))


def _pandas() -> Any:
    """pandas when something has loaded it, else None (see the module docstring)."""
    return sys.modules.get("pandas")


def _pandas_missing() -> tuple[Any, ...]:
    """pandas' missing-value singletons (``pd.NA``, ``pd.NaT``); none when pandas is not loaded."""
    pd = _pandas()
    return () if pd is None else (pd.NA, pd.NaT)


def objects(column: Column) -> np.ndarray:
    """A column's cells as a 1-d object array of Python values (a list in a cell stays one)."""
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        column = column.to_pylist()
    else:
        pd = _pandas()
        if pd is not None and isinstance(column, pd.Series):
            return column.to_numpy(dtype=object)
    values = list(column)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # not ``out[:] = values``: numpy would unpack list cells
        out[i] = v
    return out


def cell_at(column: Column, i: int) -> Any:
    """Cell ``i`` of a column as a Python value (for a message quoting it)."""
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        return column[i].as_py()
    pd = _pandas()
    if pd is not None and isinstance(column, pd.Series):
        return column.iloc[i]
    return column[i]


def factorize(column: Column) -> tuple[np.ndarray, list[Any]]:
    """``(codes, distinct)``: each cell's code (0, 1, ... in order of first appearance; -1 for a
    missing cell) and the distinct cells as Python values, as ``pandas.factorize`` gives them."""
    arrow = arrow_of(column)
    if arrow is not None:
        arrow = A.single(arrow)
        if pa.types.is_dictionary(arrow.type):
            arrow = arrow.dictionary_decode()
        encoded = pc.dictionary_encode(arrow)
        codes = A.to_numpy(encoded.indices)
        if encoded.indices.null_count:  # NaN there: a missing cell is -1
            codes = np.where(A.valid(encoded.indices), codes, -1)
        return codes.astype(np.int64), encoded.dictionary.to_pylist()
    import pandas as pd

    codes, distinct = pd.factorize(pd.Series(objects(column), dtype=object)
                                   if not isinstance(column, pd.Series) else column,
                                   use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), list(distinct)


def arrow_of(series: Column) -> pa.ChunkedArray | pa.Array | None:
    """The Arrow array behind a column (itself, when it is one), without copying; None for
    other columns."""
    if isinstance(series, (pa.Array, pa.ChunkedArray)):
        return series
    pd = _pandas()
    if pd is None or not isinstance(series, pd.Series):
        return None
    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype):
        return pa.array(series)
    if isinstance(dtype, pd.StringDtype) and getattr(dtype, "storage", "") == "pyarrow":
        return pa.array(series)
    return None


def _parse_objects(cells: np.ndarray) -> NumericCells:
    """Mixed Python values (a JSONL or pandas object column): numbers, text, None, the rest."""
    n = len(cells)
    values = np.full(n, np.nan)
    missing = np.zeros(n, bool)
    bad = np.zeros(n, bool)
    text_at: list[int] = []
    text: list[str] = []
    na = _pandas_missing()
    for i, v in enumerate(cells):
        if v is None or (na and (v is na[0] or v is na[1])):
            missing[i] = True
        elif isinstance(v, (bool, np.bool_)):
            bad[i] = True
        elif isinstance(v, (int, np.integer)):
            values[i] = _int_to_float(int(v))
        elif isinstance(v, (float, np.floating)) or _is_decimal(v):
            values[i] = float(v)
            missing[i] = math.isnan(values[i])
        elif isinstance(v, str):
            text_at.append(i)
            text.append(v)
        else:  # lists, dicts, dates: not numbers
            bad[i] = True
    if text:
        parsed = _parse_arrow(A.strings(text))
        at = np.asarray(text_at, dtype=np.int64)
        values[at], missing[at], bad[at] = parsed.values, parsed.missing, parsed.bad
    return NumericCells(values, missing, bad)


def _is_decimal(v: Any) -> bool:
    """A ``decimal.Decimal``: a Parquet DECIMAL column (Spark and SQL exports write counts as
    DECIMAL(38,0)) read into Python objects; its N was "Decimal('100000000') is not a
    number". The module is looked up, not imported: a Decimal exists only once it is loaded."""
    decimal = sys.modules.get("decimal")
    return decimal is not None and isinstance(v, decimal.Decimal)


def _int_to_float(v: int) -> float:
    try:
        return float(v)
    except OverflowError:  # an integer beyond the float range is infinite, as "1e400" is
        return math.inf if v > 0 else -math.inf


def _parse_arrow(arr: pa.Array | pa.ChunkedArray) -> NumericCells:
    arr = A.single(arr)
    typ = arr.type
    n = len(arr)
    if pa.types.is_dictionary(typ):
        arr = arr.dictionary_decode()
        typ = arr.type
    if pa.types.is_boolean(typ):
        missing = ~A.valid(arr)
        return NumericCells(np.full(n, np.nan), missing, ~missing)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        # an unsafe cast: Arrow refuses integers past 2^53 (a uint64 N of 2^64 - 1 was a
        # traceback); a float64 rounds them as any other number this large
        values = A.to_numpy(pc.cast(arr, pa.float64(), safe=False))
        values = np.where(~A.valid(arr), np.nan, values) if arr.null_count else values
        return NumericCells(values, np.isnan(values), np.zeros(n, bool))
    if pa.types.is_null(typ):
        return NumericCells(np.full(n, np.nan), np.ones(n, bool), np.zeros(n, bool))
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        return NumericCells(np.full(n, np.nan), np.zeros(n, bool), np.ones(n, bool))
    # fast path: a clean column casts as a whole (Arrow accepts a subset of our grammar,
    # with the same meaning: digits, exponents, inf, nan)
    if arr.null_count == 0:
        try:
            values = A.to_numpy(pc.cast(arr, pa.float64()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            return NumericCells(values, np.isnan(values), np.zeros(n, bool))
    return _parse_text(arr)


def _parse_text(arr: pa.Array) -> NumericCells:
    """The general path: trim, drop thousands separators, missing tokens, unit suffixes."""
    n = len(arr)
    null = ~A.valid(arr)
    s = pc.utf8_trim_whitespace(pc.fill_null(arr, A.text("")))
    misplaced = np.zeros(n, bool)
    if pc.any(pc.match_substring_regex(s, "[,_]")).as_py():
        # a comma separates thousands only where it groups digits by three: '3,1' (a decimal
        # comma) was 31, a value silently ten times another; now it is not a number
        misplaced = A.to_numpy(pc.and_(pc.match_substring(s, ","),
                                       pc.invert(pc.match_substring_regex(s, _GROUPED))))
        s = pc.replace_substring_regex(s, "[,_]", "")
    missing = A.to_numpy(pc.is_in(pc.utf8_lower(s), value_set=_tokens(MISSING_TOKENS))) | null
    missing &= ~misplaced  # ',' is not a blank
    has_suffix = A.to_numpy(pc.match_substring_regex(s, f".[{''.join(SUFFIXES)}]$"))
    factor = np.ones(n)
    if has_suffix.any():
        which = pc.index_in(pc.utf8_slice_codeunits(s, -1), value_set=_tokens(tuple(SUFFIXES)))
        table = np.array([*SUFFIXES.values(), 1.0])
        factor = table[np.where(A.valid(which), A.to_numpy(which), len(SUFFIXES)).astype(np.int64)]
        body = pc.if_else(A.bools(has_suffix), pc.utf8_slice_codeunits(s, 0, -1), s)
        body = pc.utf8_trim_whitespace(body)
    else:
        body = s
    numeric = A.to_numpy(pc.match_substring_regex(body, _NUMBER)) & ~missing & ~misplaced
    clean = pc.if_else(A.bools(numeric), body, A.text("nan"))
    with np.errstate(over="ignore", invalid="ignore"):
        values = A.to_numpy(pc.cast(clean, pa.float64())) * factor
    values[~numeric] = np.nan
    return NumericCells(values, missing, ~numeric & ~missing)


def plain_numbers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which text cells are plain numbers (no suffix, no separators): ``(is_int, is_float, value)``.

    For columns kept as extras: ``"16"`` stays the number 16 and ``"1.10"`` becomes 1.1, as a
    spreadsheet reads them, while ``"125M"`` or ``"v2"`` stay text. Decided cell by cell, so the
    result does not depend on how a file is split into chunks.
    """
    s = pc.utf8_trim_whitespace(pc.fill_null(arr, A.text("")))
    is_float = A.to_numpy(pc.match_substring_regex(
        s, r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"))
    is_int = A.to_numpy(pc.match_substring_regex(s, _INTEGER))
    values = A.to_numpy(pc.cast(pc.if_else(A.bools(is_float), s, A.text("nan")), pa.float64()))
    return is_int, is_float & ~is_int, values


def show_cell(value: Any) -> str:
    """A cell as an error message shows it: ``'abc'``, ``-5``, ``2.5`` (never ``np.int64(-5)``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:57] + "...")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def not_a_number(value: Any) -> str:
    """Why a cell read as a number was refused, naming it as written: ``'abc' is not a number``,
    ``inf is not a finite number`` (never ``np.float64(inf) is not a number``), or ``is missing``."""
    if is_missing_cell(value):
        return "is missing"
    try:  # an infinity read as a float, or written as text ('inf', '-Infinity')
        infinite = not isinstance(value, (bool, np.bool_)) and math.isinf(float(value))
    except (TypeError, ValueError, OverflowError):
        infinite = False
    return f"{show_cell(value)} is not a {'finite ' if infinite else ''}number"


def is_missing_cell(value: Any) -> bool:
    """True for None, NaN, NA and blank text: cells that hold no value."""
    if value is None:
        return True
    na = _pandas_missing()
    if na and (value is na[0] or value is na[1]):
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


@dataclass(frozen=True)
class ExtraCells:
    """A column kept in a run's ``extra``, typed cell by cell: integer, float, text or JSON.

    A cell that is a plain number is a number (``"16"`` -> 16, ``"0.5"`` -> 0.5); a non-finite
    number is kept as text (JSON has no ``inf``); lists and dicts (JSONL, frames) are JSON;
    missing cells (blank, ``nan``, ``null``...) are left out of ``extra``.
    """

    ints: pa.Array    # int64, null where the cell is not an integer
    floats: pa.Array  # float64, finite, null where the cell is not a float
    texts: pa.Array   # string, null where the cell is not text
    jsons: pa.Array   # string (JSON), null where the cell is not a list/dict/bool
    #: the numbers' own text when every one is already a JSON number (a clean CSV column):
    #: the store writes it as it is, which measured 1.6x faster than formatting the floats
    tokens: pa.Array | None = None

    def __len__(self) -> int:
        return len(self.ints)

    def numbers(self) -> np.ndarray:
        """The cells as float64, NaN where a cell is not a number."""
        n = len(self.ints)
        # an unsafe cast: Arrow refuses integers past 2^53 (a TensorBoard step of 2^62 was a
        # traceback); a float64 rounds them, as _parse_arrow does for the numeric columns
        ints = pc.cast(self.ints, pa.float64(), safe=False)
        num = self.floats if self.ints.null_count == n else \
            ints if self.floats.null_count == n else pc.coalesce(ints, self.floats)
        return np.asarray(A.to_numpy(num), dtype=float)

    def words(self) -> tuple[np.ndarray, np.ndarray]:
        """Hash words for run ids: numbers by value (16 and 16.0 alike), text by bytes."""
        from scalinglab.runs import ids

        n = len(self.ints)
        num_words, is_num = ids.float_words(self.numbers())
        none = (np.zeros(n, np.uint64), np.zeros(n, bool))
        text_words, is_text = ids.text_words(self.texts) if self.texts.null_count < n else none
        json_words, is_json = ids.text_words(self.jsons) if self.jsons.null_count < n else none
        words = np.where(is_num, num_words, np.where(is_text, text_words,
                                                     json_words ^ ids.JSON_TAG))
        return words, is_num | is_text | is_json


def extra_cells(column: Column) -> ExtraCells:
    """Type a column's cells for ``extra`` (see :class:`ExtraCells`)."""
    n = len(column)
    arrow = arrow_of(column)
    if arrow is not None:
        arrow = A.single(arrow)
        if pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type):
            return _extra_text(arrow)
        if pa.types.is_floating(arrow.type):  # a column scaled by --units: as a float column
            return _extra_floats(A.to_numpy(arrow))
        return _extra_objects(arrow.to_pandas().astype(object).to_numpy())  # lists, dates...
    pd = _pandas()
    if pd is None or not isinstance(column, pd.Series):
        return _extra_objects(objects(column))
    dtype = column.dtype
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        values = column.to_numpy(dtype=float, na_value=np.nan)
        ints = pa.array(column.to_numpy(dtype=object), type=pa.int64(), from_pandas=True)
        return ExtraCells(ints, _nulls(n, pa.float64()), _nulls(n, pa.string()),
                          _nulls(n, pa.string())) if np.isfinite(values).all() else \
            _extra_objects(column.to_numpy(dtype=object))
    if pd.api.types.is_float_dtype(dtype):
        return _extra_floats(column.to_numpy(dtype=float, na_value=np.nan))
    return _extra_objects(column.to_numpy(dtype=object))


def _extra_floats(values: np.ndarray) -> ExtraCells:
    """Floats (NaN missing): finite ones are numbers, infinities text (JSON has no ``inf``)."""
    n = len(values)
    finite = np.isfinite(values)
    inf = np.isinf(values)
    texts = A.strings(list(np.where(inf, np.where(values > 0, "inf", "-inf"), None))) \
        if inf.any() else _nulls(n, pa.string())
    return ExtraCells(_nulls(n, pa.int64()), A.numbers(values, missing=~finite), texts,
                      _nulls(n, pa.string()))


_JSON_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"


def _json_tokens(arr: pa.Array, integers: bool = False) -> pa.Array | None:
    """``arr`` itself when every cell is a JSON number as written (``2.5``, ``1e-4``; not
    ``+1``, ``.5``, ``007``), else None. Integers are checked with plain character kernels
    (digits, no leading zero), three times cheaper than the regular expression."""
    if integers:
        body = pc.utf8_ltrim(arr, characters="-")
        length = pc.utf8_length(body)
        one = A.integer(1, length.type)
        ok = pc.and_(pc.ascii_is_decimal(body), pc.or_(
            pc.not_equal(pc.utf8_slice_codeunits(body, 0, 1), A.text("0")),
            pc.equal(length, one)))
        ok = pc.and_(ok, pc.less_equal(pc.subtract(pc.utf8_length(arr), length), one))
    else:
        ok = pc.match_substring_regex(arr, _JSON_NUMBER)
    if pc.all(ok).as_py():
        return arr.cast(pa.string())
    return None


def _int_tokens(arr: pa.Array, ints: pa.Array) -> pa.Array | None:
    """:func:`_json_tokens` of a column whose cells all cast to ``ints``: when each cell is
    spelt as Arrow writes its integer, it is JSON as written (two kernels, a third of the cost
    of the character checks: 0.1 s of process time per million rows with four such columns);
    otherwise (``-0``, ``007``...) the character checks decide."""
    text = arr.cast(pa.string())
    if pc.all(pc.equal(pc.cast(ints, pa.string()), text)).as_py():
        return text
    return _json_tokens(arr, integers=True)


@lru_cache(maxsize=8)
def _tokens(words: tuple[str, ...]) -> pa.Array:
    return A.strings(words)


@lru_cache(maxsize=16)
def _nulls(n: int, typ: pa.DataType) -> pa.Array:
    return pa.nulls(n, type=typ)  # immutable, so one per (length, type) serves every column


def _extra_text(arr: pa.Array) -> ExtraCells:
    n = len(arr)
    if arr.null_count == 0:  # fast paths: a column of integers, or of plain floats
        first = arr[0].as_py() if n else ""
        if not any(ch in first for ch in ".eEnN"):  # skip a doomed integer parse of floats
            try:
                ints = pc.cast(arr, pa.int64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
            else:
                return ExtraCells(ints, _nulls(n, pa.float64()), _nulls(n, pa.string()),
                                  _nulls(n, pa.string()), _int_tokens(arr, ints))
        try:
            values = A.to_numpy(pc.cast(arr, pa.float64()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            finite = np.isfinite(values)
            if finite.all():
                return ExtraCells(_nulls(n, pa.int64()), A.numbers(values),
                                  _nulls(n, pa.string()), _nulls(n, pa.string()),
                                  _json_tokens(arr))
    s = pc.utf8_trim_whitespace(pc.fill_null(arr, A.text("")))
    missing = A.to_numpy(pc.is_in(pc.utf8_lower(s), value_set=_tokens(MISSING_TOKENS)))
    is_int, is_float, values = plain_numbers(s)
    finite = np.isfinite(values)
    is_float &= finite
    # Arrow's integer cast refuses the leading + that _INTEGER allows ("+3" beside text was
    # an ArrowInvalid traceback)
    ints = pc.cast(pc.if_else(A.bools(is_int), pc.utf8_ltrim(s, characters="+"),
                              A.null(pa.string())), pa.int64())
    floats = A.numbers(np.where(is_float, values, 0.0), missing=~is_float)
    text = ~(is_int | is_float | missing)
    texts = pc.if_else(A.bools(text), s, A.null(pa.string()))
    return ExtraCells(ints, floats, texts, _nulls(n, pa.string()))


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys, compact separators and non-finite floats as null (one spelling
    per value, so stored JSON compares as text)."""
    return json.dumps(_finite(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _finite(obj.item())
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_finite(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    return obj


def _extra_objects(cells: np.ndarray) -> ExtraCells:
    """Mixed Python values, one by one (frames and JSONL: small, or already in memory)."""
    n = len(cells)
    ints: list[int | None] = [None] * n
    floats: list[float | None] = [None] * n
    texts: list[str | None] = [None] * n
    jsons: list[str | None] = [None] * n
    strings: list[tuple[int, str]] = []
    for i, v in enumerate(cells):
        if is_missing_cell(v):
            continue
        if isinstance(v, np.generic):
            v = v.item()
        if _is_decimal(v):  # a number: an integer when it is one, else a float
            if v.is_nan():
                continue
            v = int(v) if v.is_finite() and v == v.to_integral_value() else float(v)
        if isinstance(v, bool):
            jsons[i] = "true" if v else "false"
        elif isinstance(v, int):
            if -(2**63) <= v < 2**63:
                ints[i] = v
            else:
                floats[i] = _int_to_float(v) if math.isfinite(_int_to_float(v)) else None
                texts[i] = None if floats[i] is not None else str(v)
        elif isinstance(v, float):
            if math.isfinite(v):
                floats[i] = v
            else:
                texts[i] = "inf" if v > 0 else "-inf"
        elif isinstance(v, str):
            strings.append((i, v))
        elif isinstance(v, (dict, list, tuple, np.ndarray)):
            jsons[i] = canonical_json(v)
        else:  # dates and other objects: their text
            texts[i] = str(v)
    if strings:
        typed = _extra_text(pa.array([s for _, s in strings], type=pa.string()))
        for j, (i, _) in enumerate(strings):
            ints[i] = typed.ints[j].as_py()
            floats[i] = typed.floats[j].as_py()
            texts[i] = typed.texts[j].as_py()
    return ExtraCells(pa.array(ints, type=pa.int64()), pa.array(floats, type=pa.float64()),
                      pa.array(texts, type=pa.string()), pa.array(jsons, type=pa.string()))


def text_cells(column: Column) -> pa.Array:
    """A text column (names, statuses, ids) as trimmed strings; missing cells are null."""
    arrow = arrow_of(column)
    if arrow is None:
        values = [None if is_missing_cell(v) else (v if isinstance(v, str) else _text_of(v))
                  for v in objects(column)]
        arrow = A.strings(values)
    elif isinstance(arrow, pa.ChunkedArray):
        arrow = A.single(arrow)
    if not (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
        return text_cells(arrow.to_pylist())
    s = pc.utf8_trim_whitespace(arrow)
    return pc.if_else(pc.equal(s, A.text("")), A.null(s.type), s).cast(pa.string())


def _text_of(v: Any) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
