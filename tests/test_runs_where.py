"""``where`` filters: an expression over run columns, checked on DuckDB's own syntax tree."""

from __future__ import annotations

import pandas as pd
import pytest

from scalinglab.errors import ParameterError
from scalinglab.runs.where import compile_where, filter_frame

COLUMNS = ["run_id", "name", "N", "D", "C", "loss", "lr", "tags", "extra", "status"]


@pytest.mark.parametrize("where", [
    "N > 1e8 AND tags->>'dataset' = 'c4'",
    "n > 1",  # DuckDB names are case-insensitive
    "lower(name) LIKE 'sweep-%' OR loss BETWEEN 2 AND 3",
    "N IN (1e8, 2e8) AND NOT (lr IS NULL)",
    "CAST(extra->>'eval_loss' AS DOUBLE) < 3",
    "coalesce(lr, 0) < 1e-3 AND abs(ln(N) - 18) < 2",
    "CASE WHEN status = 'failed' THEN 1 ELSE 0 END = 0",
])
def test_expressions_over_run_columns_are_accepted(where):
    assert compile_where(where, COLUMNS).startswith("SELECT * FROM __runs WHERE (")


@pytest.mark.parametrize(("where", "why"), [
    ("read_text('/etc/passwd') IS NOT NULL", "function 'read_text' is not allowed"),
    ("1=1); COPY (SELECT 1) TO '/tmp/x.csv'; SELECT (1", "syntax error"),
    ("N > 1; DROP TABLE runs", "SELECT"),
    ("N > (SELECT max(N) FROM runs)", "subquery"),
    ("exists(SELECT 1)", "subquery"),
    ("N > 1 ORDER BY N", "filter expression only"),
    ("N > 1 UNION SELECT * FROM runs", "filter expression only"),
    ("N > 1 LIMIT 1", "filter expression only"),
    ("count(*) > 1", "is not allowed"),
    ("getenv('HOME') = 'x'", "function 'getenv'"),
    ("main.lower(name) = 'x'", "is not allowed"),
    ("current_setting('enable_external_access') = 'true'", "is not allowed"),
    ("N > ?", "filter expression only"),
    ("* > 1", "*"),
    ("NN > 1", "unknown column 'NN' (did you mean 'N'?)"),
    ("runs.N > 1", "plain column name"),
    ("N::INT[] = [1]", "casting to"),
    ("N >", "syntax error"),
    ("", "non-empty"),
])
def test_anything_else_is_refused_before_it_runs(where, why):
    with pytest.raises(ParameterError, match="where") as err:
        compile_where(where, COLUMNS)
    assert why in str(err.value)
    assert err.value.parameters == ("where",)


def test_deep_or_long_filters_are_refused():
    with pytest.raises(ParameterError, match="deeper"):
        compile_where("NOT " * 200 + "N > 1", COLUMNS)
    assert compile_where(" + ".join(["N"] * 50) + " > 1", COLUMNS)  # 50 terms nest 49 deep
    with pytest.raises(ParameterError, match="longer"):
        compile_where("N > 1 AND " * 1000 + "N > 1", COLUMNS)


def test_filter_frame_uses_the_same_language_and_keeps_order_and_index():
    df = pd.DataFrame({"N": [3e9, 1e7, 2e8], "tags": [{}, {"dataset": "c4"}, {"dataset": "pile"}],
                       "train/loss": [2.0, 3.5, 2.9]}, index=[7, 5, 6])
    assert list(filter_frame(df, "N > 1e8").index) == [7, 6]
    assert list(filter_frame(df, "tags->>'dataset' = 'c4'").index) == [5]
    assert list(filter_frame(df, "\"train/loss\" < 3").index) == [7, 6]
    assert filter_frame(df, None) is df
    with pytest.raises(ParameterError, match="unknown column 'loss'"):
        filter_frame(df, "loss < 3")


def test_a_second_statement_is_refused_in_the_filters_words_not_duckdbs():
    """"N > 1; DROP TABLE runs" was refused with DuckDB's "Only SELECT statements can be
    serialized to json!", naming its serialiser rather than the filter's mistake."""
    for where in ("N > 1; DROP TABLE runs", "N > 1; SELECT 1"):
        with pytest.raises(ParameterError, match="one expression, not several statements") as err:
            compile_where(where, COLUMNS)
        assert "serialized" not in str(err.value) and "json" not in str(err.value)
