"""Content-derived run ids, computed a column at a time.

A run without an id gets ``r-`` and 16 hex digits of a 64-bit hash of what it is: its numbers,
tags, extras and name. The same row imported twice gets the same id, and any change of value a
new one. Schema version 1 hashed a JSON dump of each row with SHA-1: about 10 us a row in
Python, 10 s for a million rows, most of it spent formatting floats. This hash works on whole
columns (float bits, string bytes) with numpy and costs about 30 ms per column per million rows;
``RunStore.migrate`` re-derives the ids of version-1 stores with it.

The hash is deterministic across processes and platforms (explicit little-endian words, no
Python ``hash``). A field is combined as ``h = fmix(h * K + fmix(key ^ value))``, with murmur3's
64-bit finaliser as ``fmix``; a missing field leaves ``h`` unchanged, so a column that is empty
everywhere does not change any id.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scalinglab.runs import arrays as A

_K = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
#: type tags, so the number 16 and the text "16" hash apart
NUMBER_TAG = np.uint64(0x6E756D626572)
TEXT_TAG = np.uint64(0x74657874)
JSON_TAG = np.uint64(0x6A736F6E)
_SEED = np.uint64(0x7363616C696E67)  # "scaling"


def _fmix_own(h: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser (``fmix``, a bijection that spreads every input bit), in
    place, on a uint64 array this module just made."""
    h ^= h >> _S33
    h *= _M1
    h ^= h >> _S33
    h *= _M2
    h ^= h >> _S33
    return h


def float_words(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(words, present)``: the bits of each float (-0.0 as 0.0); NaN is absent."""
    v = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 + 0.0 == +0.0
    present = ~np.isnan(v)
    words = np.where(present, v, 0.0).view(np.uint64)
    return _fmix_own(words ^ NUMBER_TAG), present


def text_words(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """``(words, present)``: a 64-bit hash of each string's UTF-8 bytes; null is absent.

    The bytes are read as little-endian 8-byte words (the last zero-padded) and folded with the
    length; rows are processed longest first, so a few long strings cost only their own words.
    A null string hashes as the empty string and is marked absent.
    """
    arr = A.single(arr)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if len(arr) > 4096 and _few_distinct(arr):  # a dataset, a status: hash the distinct values
        encoded = pc.dictionary_encode(arr)
        if len(encoded.dictionary) * 4 < len(arr):
            present = A.valid(arr)
            if len(encoded.dictionary) == 0:
                return np.zeros(len(arr), np.uint64), present
            words, _ = text_words(encoded.dictionary)
            codes = np.where(present, A.to_numpy(encoded.indices), 0).astype(np.int64)
            return words[codes], present
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    present = A.valid(arr)
    if n == 0:
        return np.zeros(0, np.uint64), present
    offsets = np.frombuffer(arr.buffers()[1], dtype="<i8")[arr.offset:arr.offset + n + 1]
    buf = arr.buffers()[2]
    raw = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)
    data = raw[offsets[0]:offsets[-1]]
    length = np.where(present, offsets[1:] - offsets[:-1], 0)
    n_words = (length + 7) // 8
    # copy every string into its own run of zero-padded 8-byte words
    word_start = np.concatenate([[0], np.cumsum(n_words)])
    padded = np.zeros(int(word_start[-1]) * 8, dtype=np.uint8)
    width = int(length[0])
    if present.all() and (length == width).all():  # fixed width: a reshape, no scatter
        padded.reshape(n, -1)[:, :width] = data.reshape(n, width)
    elif len(data):
        row_of_byte = np.repeat(np.arange(n), offsets[1:] - offsets[:-1])
        keep = present[row_of_byte]
        within = np.arange(len(data)) - (offsets[:-1] - offsets[0])[row_of_byte]
        padded[(8 * word_start[:-1][row_of_byte] + within)[keep]] = data[keep]
    words = padded.view("<u8").astype(np.uint64)
    h = _fmix_own(length.astype(np.uint64) ^ TEXT_TAG)
    most = int(n_words.max())
    if most and (n_words == most).all():  # every string the same length: plain columns
        grid = words.reshape(n, most)
        for k in range(most):
            h = _fmix_own(h * _K + grid[:, k])
        return _fmix_own(h), present
    order = np.argsort(-n_words, kind="stable")
    descending = -n_words[order]  # ascending, for searchsorted
    for k in range(most):
        rows = order[: int(np.searchsorted(descending, -k, side="left"))]  # rows with > k words
        h[rows] = _fmix_own(h[rows] * _K + words[word_start[rows] + k])
    return _fmix_own(h), present


def _few_distinct(arr: pa.Array) -> bool:
    """Whether a column looks low-cardinality, judged on 1,024 evenly spaced cells (encoding a
    million distinct names to find out cost more than hashing them)."""
    sample = arr.take(A.numbers(np.linspace(0, len(arr) - 1, 1024).astype(np.int64)))
    return len(pc.unique(sample)) < 256


def combine(fields: Iterable[tuple[str, np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """Fold named fields ``(name, words, present)`` into one 64-bit hash per row.

    Fields are combined in name order, so the result does not depend on column order.
    """
    h = np.full(n, _SEED, dtype=np.uint64)
    for name, words, present in sorted(fields, key=lambda f: f[0]):
        mixed = _fmix_own(np.asarray(words ^ key_word(name), dtype=np.uint64))
        mixed += h * _K
        _fmix_own(mixed)
        # in place, on arrays made here: a third fewer passes over the rows than a copy per
        # step (hashing was 0.15 s of process time per million rows with 19 fields)
        h = mixed if present.all() else np.where(present, mixed, h)
    return h


@lru_cache(maxsize=4096)
def key_word(name: str) -> np.uint64:
    """The hash of a field name (the same string hash as :func:`text_words`); cached, as every
    chunk of an import names the same fields (uncached: 0.12 s of process time per million
    rows, a tenth of a millisecond per call in Arrow's and numpy's overheads)."""
    words, _ = text_words(A.strings([name]).cast(pa.large_string()))
    return np.uint64(words[0])


_HEX2 = np.frombuffer("".join(f"{b:02x}" for b in range(256)).encode(), dtype=np.uint8).reshape(256, 2)


def hex_ids(h: np.ndarray, prefix: str = "r-") -> pa.Array:
    """``r-`` and 16 lower-case hex digits per hash, built as one Arrow string buffer."""
    n = len(h)
    p = np.frombuffer(prefix.encode(), dtype=np.uint8)
    width = len(p) + 16
    out = np.empty((n, width), dtype=np.uint8)
    out[:, : len(p)] = p
    big_endian = np.asarray(h, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(n, 8)
    out[:, len(p):] = _HEX2[big_endian].reshape(n, 16)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()),
                                       pa.py_buffer(out.tobytes()))
