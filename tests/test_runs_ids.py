"""Content-derived run ids: a column-wise hash, checked against a byte-by-byte reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from scalinglab.runs import ids
from scalinglab.runs.schema import run_id_for

MASK = (1 << 64) - 1


def fmix(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK
    return h ^ (h >> 33)


def reference_text(s: str) -> int:
    """The documented string hash, one 8-byte little-endian word at a time."""
    b = s.encode()
    h = fmix(len(b) ^ 0x74657874)
    for k in range(0, len(b), 8):
        h = fmix((h * 0x9E3779B97F4A7C15 + int.from_bytes(b[k:k + 8].ljust(8, b"\0"),
                                                           "little")) & MASK)
    return fmix(h)


def test_string_hash_matches_the_reference_for_every_length_and_layout():
    strings = ["", "a", "abcdefgh", "abcdefghi", "exp-0000001", "ü日本語", "x" * 1000, "tail"]
    for batch in (strings, ["aaaa", "bbbb"], ["abcdefghij", "abcdefghik"],
                  [f"exp-{i}" for i in range(5000)]):  # ragged, fixed width, dictionary path
        words, present = ids.text_words(pa.array(batch))
        assert present.all()
        assert [int(w) for w in words] == [reference_text(s) for s in batch]


def test_nulls_are_absent_and_slices_hash_like_whole_arrays():
    arr = pa.array(["a", None, "ccc", "dddddddddd"])
    words, present = ids.text_words(arr)
    assert present.tolist() == [True, False, True, True]
    sliced, _ = ids.text_words(arr.slice(2))
    assert (sliced == words[2:]).all()


def test_a_field_missing_everywhere_changes_no_id_and_field_order_does_not_matter():
    n_words, n_present = ids.float_words(np.array([1e8, 2e8]))
    empty = (np.zeros(2, np.uint64), np.zeros(2, bool))
    a = ids.combine([("N", n_words, n_present)], 2)
    b = ids.combine([("lr", *empty), ("N", n_words, n_present)], 2)
    assert (a == b).all()
    d_words, d_present = ids.float_words(np.array([1e9, 1e9]))
    assert (ids.combine([("N", n_words, n_present), ("D", d_words, d_present)], 2) ==
            ids.combine([("D", d_words, d_present), ("N", n_words, n_present)], 2)).all()


def test_negative_zero_and_nan_are_normalised():
    words, present = ids.float_words(np.array([0.0, -0.0, np.nan]))
    assert words[0] == words[1] and present.tolist() == [True, True, False]


def test_hex_ids_spell_the_hash():
    out = ids.hex_ids(np.array([0, MASK, 0x0123456789ABCDEF], dtype=np.uint64)).to_pylist()
    assert out == ["r-0000000000000000", "r-ffffffffffffffff", "r-0123456789abcdef"]


def test_run_id_for_is_stable_and_sensitive_to_every_value():
    rec = {"N": 1e8, "D": 2e9, "C": 1.2e18, "loss": 3.1, "tags": {"dataset": "c4"},
           "extra": {"n_layer": 12}}
    rid = run_id_for(rec)
    assert rid == run_id_for(dict(rec)) and rid.startswith("r-") and len(rid) == 18
    # 16 and "16" and 16.0 are one value; the same dict in another key order is the same run
    assert run_id_for({**rec, "extra": {"n_layer": "12"}}) == rid
    assert run_id_for({**rec, "tags": {"dataset": "c4"}, "extra": {"n_layer": 12.0}}) == rid
    changed = [{**rec, "loss": 3.1000000000000005}, {**rec, "tags": {"dataset": "pile"}},
               {**rec, "extra": {"n_layer": 13}}, {**rec, "name": "a"}, {**rec, "lr": 1e-3}]
    assert len({run_id_for(r) for r in changed} | {rid}) == len(changed) + 1
