"""Arrow arrays and scalars built from numpy buffers, without pyarrow's pandas check.

pyarrow (measured: 26.0) imports pandas the first time it converts a numpy array, a list or a
Python scalar (``pa.array``, ``pa.scalar``, or a compute function given ``""`` or ``-1``), to
ask whether the value is a pandas object. That import was 0.2 s (with bytecode) to 0.45 s
(without) of ``scalinglab import runs.csv``, whose cells never are pandas objects. The import
pipeline builds its arrays here instead, from buffers (numbers without a copy), so a CSV import
never loads pandas (``tests/test_cli_startup.py`` checks it). The arrays are the ones
``pa.array`` gives for the same values (``tests/test_runs_cells.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def _bits(mask: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(np.ascontiguousarray(mask, dtype=bool), bitorder="little"))


def _unbits(buf: pa.Buffer, offset: int, n: int) -> np.ndarray:
    """The ``n`` bits from bit ``offset`` of an Arrow bitmap, as bools (:func:`_bits` undone)."""
    bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), count=offset + n, bitorder="little")
    return bits[offset:].astype(bool)


def bools(mask: np.ndarray) -> pa.BooleanArray:
    """A boolean array of a numpy mask (``pa.array(mask)``)."""
    mask = np.asarray(mask, dtype=bool)
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, _bits(mask)], null_count=0)


def numbers(values: np.ndarray, missing: np.ndarray | None = None,
            type: pa.DataType | None = None) -> pa.Array:
    """A numeric array of a 1-d numpy array, null where ``missing`` (``pa.array(values,
    mask=missing, type=type)``); the values are not copied when they are contiguous."""
    if type is not None:
        values = np.asarray(values, dtype=type.to_pandas_dtype())
    values = np.ascontiguousarray(values)
    typ = type or pa.from_numpy_dtype(values.dtype)
    n = len(values)
    nulls = int(np.count_nonzero(missing)) if missing is not None else 0
    validity = _bits(~np.asarray(missing, dtype=bool)) if nulls else None
    return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(values)], null_count=nulls)


def strings(values: Sequence[str | None] | np.ndarray) -> pa.StringArray:
    """A string array of Python strings, null where a value is None (``pa.array(values,
    type=pa.string())``). For short lists (distinct values); a column takes them by index."""
    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    n = len(encoded)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=n), out=offsets[1:])
    missing = np.fromiter((v is None for v in values), dtype=bool, count=n)
    nulls = int(missing.sum())
    validity = _bits(~missing) if nulls else None
    large = pa.Array.from_buffers(pa.large_string(), n, [
        validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))], null_count=nulls)
    return large.cast(pa.string())


def text(value: str) -> pa.Scalar:
    """A string scalar (``pa.scalar(value)``)."""
    return strings([value])[0]


def null(type: pa.DataType) -> pa.Scalar:
    """A null scalar of ``type`` (``pa.scalar(None, type)``)."""
    return pa.nulls(1, type)[0]


def integer(value: int, type: pa.DataType = pa.int64()) -> pa.Scalar:
    """An integer scalar (``pa.scalar(value, type)``)."""
    return numbers(np.array([value]), type=type)[0]


def single(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One Arrow array, without a copy when there is one chunk (a chunk of a file always is)."""
    if isinstance(arr, pa.ChunkedArray):
        return arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    return arr


def to_numpy(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An array's values in numpy (``arr.to_numpy(zero_copy_only=False)``): booleans as bool,
    numbers in their own dtype, floats in place of integers where a cell is null (NaN there).
    Numbers without nulls are a view of the Arrow buffer (read-only), as ``to_numpy`` gives."""
    arr = single(arr)
    typ = arr.type
    n = len(arr)
    if pa.types.is_boolean(typ) and not arr.null_count:
        buf = arr.buffers()[1]
        if buf is None or n == 0:
            return np.zeros(n, dtype=bool)
        return _unbits(buf, arr.offset, n)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        dtype = np.dtype(typ.to_pandas_dtype())
        buf = arr.buffers()[1]
        values = np.frombuffer(buf, dtype=dtype, count=n, offset=arr.offset * dtype.itemsize) \
            if buf is not None and n else np.zeros(n, dtype=dtype)
        if arr.null_count:
            values = values.astype(np.float64)
            values[~valid(arr)] = np.nan
        return values
    return arr.to_numpy(zero_copy_only=False)  # other types: pyarrow's own (and pandas)


def valid(arr: pa.Array) -> np.ndarray:
    """Which cells are not null (``np.asarray(arr.is_valid())``)."""
    n = len(arr)
    if not arr.null_count:
        return np.ones(n, dtype=bool)
    buf = arr.buffers()[0]
    if buf is None:  # a null-type array: no bitmap, every cell null
        return np.zeros(n, dtype=bool)
    return _unbits(buf, arr.offset, n)
