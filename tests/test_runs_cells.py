"""One numeric grammar for every cell: checked against Python's own float() on the same text."""

from __future__ import annotations

import json
import math
import random
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from scalinglab.runs.cells import extra_cells, parse_cells, parse_number, show_cell, text_cells

SUFFIX = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}


def reference(text: str) -> float:
    """The grammar written out cell by cell with Python's float() (the parser before the
    vectorised one): strip, drop separators (a comma only where it groups digits by three),
    missing tokens, unit suffix."""
    text = text.strip()
    if "," in text and not re.fullmatch(r"[+-]?[0-9]{1,3}(,[0-9]{3})+([^0-9,][^,]*)?", text):
        raise ValueError(f"{text!r}: a comma that does not group thousands")
    text = text.replace(",", "").replace("_", "")
    if text.lower() in {"", "nan", "na", "n/a", "null", "none"}:
        return math.nan
    if text[-1] in SUFFIX and len(text) > 1:
        return float(text[:-1]) * SUFFIX[text[-1]]
    return float(text)


def corpus() -> list[str]:
    rng = random.Random(0)
    cells = ["1e5", ".5", "5.", "+1", "inf", "-inf", "Infinity", "1_000", " 1", "1 ", "0x10",
             "1e", "", "1.5e+3", "1E5", "+.5e-3", "NaN", "INF", "-0", "125M", "1.5B", "2,048",
             "abc", "M", "1.5 B", "NA", "n/a", "None", "null", "3e-4", "1e400", "-1e400", "1k",
             "7T", "1.2.3", "--1", "e5", "1e+", "0.1", "00012", ",", "_", "1e3k", "true",
             "3,1", "3,14", "1,0000", "12,34,567", "5,", ",5", "1,000.5", "-1,500M", "1,000,000"]
    for _ in range(5000):
        x = rng.choice([rng.uniform(-1e3, 1e3), 10 ** rng.uniform(-300, 300), rng.random()])
        text = rng.choice([repr(x), f"{x:.6g}", f"{x:e}", f"{x:.17g}"])
        cells.append(text + rng.choice(["", "", "M", "k", "B", " "]))
    return cells


def test_the_column_parser_agrees_with_float_on_every_cell_bit_for_bit():
    cells = corpus()
    got = parse_cells(pa.array(cells))
    for i, text in enumerate(cells):
        try:
            want, want_bad = reference(text), False
        except ValueError:
            want, want_bad = math.nan, True
        assert bool(got.bad[i]) == want_bad, text
        if not want_bad:
            assert (math.isnan(want) and math.isnan(got.values[i])) or got.values[i] == want, text
            assert bool(got.missing[i]) == math.isnan(want), text


def test_a_clean_column_takes_the_fast_path_and_keeps_exact_values():
    values = np.random.default_rng(1).lognormal(0, 30, 10_000)
    got = parse_cells(pa.array([repr(float(v)) for v in values]))
    assert np.array_equal(got.values, values)
    assert not got.bad.any() and not got.missing.any()


@pytest.mark.parametrize(("cell", "value"), [("125M", 1.25e8), ("1.5B", 1.5e9), ("2,048", 2048.0),
                                             (3, 3.0), (np.int64(7), 7.0), (2.5, 2.5)])
def test_parse_number_is_the_same_parser_for_one_cell(cell, value):
    assert parse_number(cell) == value


@pytest.mark.parametrize("cell", [True, "abc", [1, 2], {"a": 1}, "1.2.3"])
def test_not_a_number_raises_value_error(cell):
    with pytest.raises(ValueError, match="is not a number"):
        parse_number(cell)


def test_mixed_object_columns_mark_each_cell():
    got = parse_cells(pd.Series([1, "2k", None, True, float("nan"), "x", 10**400], dtype=object))
    assert got.values[0] == 1 and got.values[1] == 2000 and got.values[6] == math.inf
    assert list(got.missing) == [False, False, True, False, True, False, False]
    assert list(got.bad) == [False, False, False, True, False, True, False]


def test_arrow_backed_and_numeric_columns():
    got = parse_cells(pd.Series(["1", "2M"], dtype=pd.ArrowDtype(pa.string())))
    assert list(got.values) == [1.0, 2e6]
    got = parse_cells(pd.Series([1.0, None]))
    assert got.missing.tolist() == [False, True]
    assert parse_cells(pd.Series([True, False])).bad.all()


def test_messages_show_cells_as_written_not_as_numpy_reprs():
    assert show_cell(np.int64(-5)) == "-5"
    assert show_cell(np.float64(2.5)) == "2.5"
    assert show_cell("abc") == "'abc'"
    assert len(show_cell("x" * 500)) < 70


def test_a_refused_number_is_said_as_written_finite_or_missing():
    """The one phrase every reader's "not a number" error uses (pool, links, benchmark tables,
    counts, trackers): the cell as written, infinities called not finite, blanks missing."""
    from scalinglab.runs.cells import not_a_number

    assert not_a_number(np.float64(np.inf)) == "inf is not a finite number"
    assert not_a_number(-np.inf) == "-inf is not a finite number"
    assert not_a_number("inf") == "'inf' is not a finite number"
    assert not_a_number("abc") == "'abc' is not a number"
    assert not_a_number(np.int64(3)) == "3 is not a number"  # not np.int64(3)
    assert not_a_number(True) == "True is not a number"
    for blank in ("", "  ", None, np.nan, pd.NA):
        assert not_a_number(blank) == "is missing"


def test_extras_are_typed_cell_by_cell_so_chunking_cannot_change_them():
    column = pd.Series(["16", "0.5", "v2", "", "inf", "125M", "null"],
                       dtype=pd.ArrowDtype(pa.string()))
    typed = extra_cells(column)
    assert typed.ints.to_pylist() == [16, None, None, None, None, None, None]
    assert typed.floats.to_pylist() == [None, 0.5, None, None, None, None, None]
    assert typed.texts.to_pylist() == [None, None, "v2", None, "inf", "125M", None]
    halves = [extra_cells(column.iloc[:3]), extra_cells(column.iloc[3:])]
    words, present = typed.words()
    parts = [h.words() for h in halves]
    assert np.array_equal(words[present], np.concatenate([w[p] for w, p in parts]))
    objects = extra_cells(pd.Series([16, "16", 16.0, {"a": 1}, [1, float("nan")], None],
                                    dtype=object))
    assert objects.ints.to_pylist()[:2] == [16, 16]
    assert objects.jsons.to_pylist()[3:5] == ['{"a":1}', "[1,null]"]
    w, p = objects.words()
    assert w[0] == w[1] == w[2] and p.tolist() == [True] * 5 + [False]


def test_an_integer_with_a_plus_sign_beside_text_is_the_integer():
    typed = extra_cells(pd.Series(["+3", "x", "-4", " +12 "], dtype=pd.ArrowDtype(pa.string())))
    assert typed.ints.to_pylist() == [3, None, -4, 12]
    assert typed.texts.to_pylist() == [None, "x", None, None]


def test_text_cells_trim_and_treat_blank_as_missing():
    got = text_cells(pd.Series([" a ", "", None, 3, 2.0], dtype=object))
    assert got.to_pylist() == ["a", None, None, "3", "2"]


@pytest.mark.parametrize(("cells", "kept"), [
    (["16", "-3", "0", "120"], True), (["2.5", "1e-4", "-0.5", "3E+2"], True),
    (["007"], False), (["+5"], False), (["-05"], False), ([".5"], False), (["5."], False),
    (["1", "2.50"], True),
])
def test_numbers_already_spelt_as_json_are_kept_as_written(cells, kept):
    typed = extra_cells(pd.Series(cells, dtype=pd.ArrowDtype(pa.string())))
    assert (typed.tokens is not None) == kept
    if kept:  # what the store writes parses back to the very same numbers
        assert [json.loads(t) for t in typed.tokens.to_pylist()] == [float(c) for c in cells]


def test_arrays_built_from_buffers_are_the_ones_pyarrow_builds():
    """runs.arrays builds the import's arrays without pyarrow's pandas check: the same arrays."""
    from scalinglab.runs import arrays as A

    mask = np.array([True, False, True, True, False, False, True, False, True, False, True])
    assert A.bools(mask).equals(pa.array(mask))
    values = np.array([1.5, -0.0, np.inf, 2.0, 3.0])
    missing = np.array([False, True, False, False, True])
    assert A.numbers(values, missing).equals(pa.array(values, mask=missing))
    ids = np.array([1, 2**64 - 1], dtype=np.uint64)
    assert A.numbers(ids, type=pa.uint64()).equals(pa.array(ids, type=pa.uint64()))
    words = ["a", None, "héllo", ""]
    assert A.strings(words).equals(pa.array(words, type=pa.string()))
    assert A.text("x").equals(pa.scalar("x")) and not A.null(pa.string()).is_valid
    # back to numpy, from slices too (an offset into the buffers) and with nulls
    arrow = pa.array([1.0, None, 3.0, 4.0, 5.0])[1:]
    assert np.array_equal(A.to_numpy(arrow), arrow.to_numpy(zero_copy_only=False),
                          equal_nan=True)
    ints = pa.array([7, None, 9])
    assert np.array_equal(A.to_numpy(ints), [7.0, np.nan, 9.0], equal_nan=True)
    flags = pa.array(mask)[3:]
    assert A.to_numpy(flags).tolist() == mask[3:].tolist()
    assert A.valid(arrow).tolist() == [False, True, True, True]


@pytest.mark.parametrize("cell", ["3,1", "2,75", "1,0000", "12,34,567", "5,", ","])
def test_a_comma_that_does_not_group_thousands_is_not_a_number(cell):
    # '3,1' (a decimal comma, from a European spreadsheet) was read as 31: a loss ten times
    # the one written, imported without a word
    with pytest.raises(ValueError, match="is not a number"):
        parse_number(cell)
    assert parse_cells(pa.array([cell, "2,048"])).bad.tolist() == [True, False]
