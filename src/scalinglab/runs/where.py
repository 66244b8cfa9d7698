"""``--where``: a filter over runs, parsed and checked before anything runs.

A filter is one boolean expression over the run columns, in DuckDB's SQL expression syntax:
comparisons, ``AND``/``OR``/``NOT``, ``IN``, ``BETWEEN``, ``IS NULL``, ``LIKE``, arithmetic, a
few pure functions (``lower``, ``abs``, ``ln``, ...) and JSON access to tags and extras
(``tags->>'dataset' = 'c4'``, ``extra->>'eval_loss'``)::

    N > 1e8 AND tags->>'dataset' = 'c4'
    loss < 3 OR (lr BETWEEN 1e-4 AND 1e-3 AND name LIKE 'sweep-%')

It is never spliced into SQL. DuckDB's own parser turns it into a syntax tree
(``json_serialize_sql``); the tree must be exactly ``SELECT * FROM runs WHERE <expression>``
and every node of the expression must be on an allow-list (no subqueries, no statements, no
table functions, no function that reads or writes files, only known columns). What runs is
DuckDB's rendering of the checked tree (``json_deserialize_sql``), over a view holding only the
run columns, on a connection with external access disabled. A hostile test's filters
(``read_text('/etc/passwd')``, ``1=1); COPY ... TO '...'; --``) are refused before any query.

:func:`filter_frame` applies the same language to a pandas frame (files, in memory).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from scalinglab.errors import ParameterError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

#: the name of the relation a filter is written against
RELATION = "__runs"
#: longest filter accepted, and deepest expression (bounds the work one filter can ask for)
MAX_LENGTH = 4000
MAX_DEPTH = 100

_CLASSES = {"COLUMN_REF", "CONSTANT", "COMPARISON", "CONJUNCTION", "OPERATOR", "BETWEEN",
            "CAST", "CASE", "FUNCTION", "TYPE"}
#: types a filter may cast to (``CAST(extra->>'eval_loss' AS DOUBLE)``)
TYPES = frozenset({"DOUBLE", "FLOAT", "REAL", "FLOAT8", "FLOAT4", "DECIMAL", "NUMERIC",
                   "INTEGER", "INT", "INT4", "INT8", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT",
                   "UBIGINT", "UINTEGER", "VARCHAR", "TEXT", "STRING", "CHAR", "BOOLEAN", "BOOL",
                   "JSON"})
_OPERATORS = {"OPERATOR_NOT", "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL", "COMPARE_IN",
              "COMPARE_NOT_IN", "OPERATOR_COALESCE"}
#: pure scalar functions and operators a filter may call
FUNCTIONS = frozenset({
    "+", "-", "*", "/", "//", "%", "^", "**", "->>", "->", "~~", "!~~", "~~*", "!~~*", "||",
    "abs", "ln", "log", "log2", "log10", "exp", "sqrt", "pow", "power", "round", "floor",
    "ceil", "ceiling", "greatest", "least", "sign", "isnan", "isinf", "isfinite",
    "lower", "upper", "lcase", "ucase", "length", "strlen", "trim", "ltrim", "rtrim",
    "contains", "starts_with", "ends_with", "prefix", "suffix", "regexp_matches",
    "substring", "substr", "left", "right", "concat", "replace", "ifnull", "nullif",
    "coalesce", "json_extract", "json_extract_string", "json_exists", "json_value",
    "json_type", "json_array_length", "list_contains", "array_contains", "json_keys",
})
_POSITION_KEYS = {"query_location", "query_location_length"}


def connect_sandbox() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that cannot touch files."""
    con = duckdb.connect(":memory:", config={"enable_external_access": False})
    con.execute("SET lock_configuration = true")
    return con


_local = threading.local()


@contextmanager
def _sandbox() -> Iterator[duckdb.DuckDBPyConnection]:
    """This thread's sandbox, opened once (a DuckDB connection costs ~0.1 s to open)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = connect_sandbox()
    cursor = con.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def compile_where(where: str, columns: Iterable[str] | Mapping[str, str]) -> str:
    """Check ``where`` and return the SQL to run: ``SELECT * FROM __runs WHERE (...)``.

    ``columns`` are the names a filter may use, or a mapping of each to the column of
    ``__runs`` that holds it. A name matches as spelt, else in any case when only one column
    is spelt so (``n > 1e8`` is ``N``); names that differ only in case (an extra ``LR`` beside
    the run column ``lr``) are each reached as spelt: SQL's case-blind names made ``LR > 0.15``
    filter on ``lr``, without a word. Raises :class:`ParameterError` (``where``) saying what
    is wrong: a syntax error, an unknown or ambiguous column (with a did-you-mean), a
    statement or subquery, a function that is not allowed.
    """
    if not isinstance(where, str) or not where.strip():
        raise ParameterError("where must be a non-empty expression", "where")
    if len(where) > MAX_LENGTH:
        raise ParameterError(f"where is longer than {MAX_LENGTH} characters", "where")
    if "\x00" in where:
        raise ParameterError("where contains a NUL character", "where")
    allowed = _Columns(columns)
    tree = _parse(f"SELECT * FROM {RELATION} WHERE {where}", where)
    _check_shape(tree, where)
    clause = tree["statements"][0]["node"]["where_clause"]
    _check_expression(clause, allowed, where, 0)
    with _sandbox() as con:
        sql = con.execute("SELECT json_deserialize_sql(?)", [json.dumps(tree)]).fetchall()[0][0]
    return str(sql)


def _parse(statement: str, where: str) -> dict[str, Any]:
    with _sandbox() as con:
        try:
            tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [statement]).fetchall()[0][0])
        except duckdb.Error as exc:
            raise _refuse(where, _first_line(str(exc)) + _reserved_hint(str(exc))) from None
    if tree.get("error"):
        msg = str(tree.get("error_message", "cannot parse it"))
        if "Only SELECT statements can be serialized" in msg:
            # "N > 1; DROP TABLE runs": DuckDB's own words named its JSON serialiser, not the
            # filter's mistake (the dashboard's filter box showed them)
            raise _refuse(where, "it must be one expression, not several statements (a filter is "
                                 "the condition of one SELECT; ';' ends it)")
        raise _refuse(where, _first_line(msg) + _reserved_hint(msg))
    return tree


def _reserved_hint(message: str) -> str:
    """``group = 'pile'`` fails as a syntax error: GROUP is an SQL keyword. Say so, and how to
    quote a column that has such a name."""
    import re

    m = re.search(r'at or near "([A-Za-z_][A-Za-z0-9_]*)"', message)
    if not m:
        return ""
    word = m.group(1)
    with _sandbox() as con:
        reserved = {r[0].lower() for r in con.execute(
            "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'").fetchall()}
    if word.lower() not in reserved:
        return ""
    return (f" ({word!r} is a reserved word: quote a column of that name in double quotes, "
            f"e.g. \"{word}\" = 'value')")


@lru_cache(maxsize=1)
def _template() -> str:
    with _sandbox() as con:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)",
                                      [f"SELECT * FROM {RELATION} WHERE TRUE"]).fetchall()[0][0])
    return _shape_key(tree)


def _shape_key(tree: dict[str, Any]) -> str:
    """The statement with its WHERE clause and source positions removed, as canonical JSON."""
    def strip(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items()
                    if k not in _POSITION_KEYS and k != "where_clause"}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o

    return json.dumps(strip(tree), sort_keys=True)


def _check_shape(tree: dict[str, Any], where: str) -> None:
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise _refuse(where, "it must be one expression, not several statements")
    if statements[0].get("node", {}).get("type") != "SELECT_NODE" or \
            _shape_key(tree) != _template():
        raise _refuse(where, "it must be a filter expression only (no ORDER BY, LIMIT, UNION, "
                             "GROUP BY or other clauses)")


class _Columns:
    """The names a filter may use, each with the ``__runs`` column it reads."""

    def __init__(self, columns: Iterable[str] | Mapping[str, str]) -> None:
        self.target = dict(columns) if isinstance(columns, Mapping) else \
            {str(c): str(c) for c in columns}
        self.by_lower: dict[str, list[str]] = {}
        for name in self.target:
            self.by_lower.setdefault(name.lower(), []).append(name)

    def resolve(self, name: str, where: str) -> str:
        if name in self.target:
            return self.target[name]
        same = self.by_lower.get(name.lower(), [])
        if len(same) == 1:
            return self.target[same[0]]
        if same:
            raise _refuse(where, f"{name!r} could be any of {sorted(same)} (names that differ "
                          "only in case): write the one you mean as it is spelt")
        raise _refuse(where, f"unknown column {name!r}{did_you_mean(name, list(self.target))}; "
                      f"columns are {sorted(self.target)}")


def _check_expression(node: Any, allowed: _Columns, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _refuse(where, f"it nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, list):
        for item in node:
            _check_expression(item, allowed, where, depth)
        return
    if not isinstance(node, dict):
        return
    cls = node.get("class")
    if cls is not None:
        if cls not in _CLASSES:
            what = {"SUBQUERY": "a subquery", "STAR": "*", "WINDOW": "a window function",
                    "PARAMETER": "a parameter", "LAMBDA": "a lambda"}.get(cls, cls.lower())
            raise _refuse(where, f"{what} is not allowed in a filter")
        if cls == "OPERATOR" and node.get("type") not in _OPERATORS:
            raise _refuse(where, f"the operator {str(node.get('type')).lower()} is not allowed")
        if cls == "COLUMN_REF":
            names = node.get("column_names") or []
            if len(names) != 1:
                raise _refuse(where, f"{'.'.join(map(str, names))!r}: use a plain column name")
            node["column_names"] = [allowed.resolve(str(names[0]), where)]
        if cls == "TYPE" and (node.get("schema") or node.get("catalog") or
                              str(node.get("type_name", "")).upper() not in TYPES):
            raise _refuse(where, f"casting to {node.get('type_name')!r} is not allowed")
        if cls == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if node.get("schema") or node.get("catalog") or name not in FUNCTIONS:
                raise _refuse(where, f"the function {node.get('function_name')!r} is not "
                                     "allowed in a filter")
            if node.get("filter") or node.get("distinct") or \
                    (node.get("order_bys") or {}).get("orders"):
                raise _refuse(where, "aggregate clauses are not allowed in a filter")
    for key, value in node.items():
        if key in ("class", "type", "alias", "function_name", "column_names", "type_name"):
            continue
        _check_expression(value, allowed, where, depth + (cls is not None))


def _refuse(where: str, why: str) -> ParameterError:
    return ParameterError(f"invalid where expression {where!r}: {why}", "where")


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line[:300]


def filter_frame(frame: pd.DataFrame, where: str | None) -> pd.DataFrame:
    """The rows of ``frame`` that satisfy ``where`` (the same language as the store's).

    Columns of dicts or lists (``tags``, ``extra``) are seen as JSON, so ``tags->>'dataset'``
    works on a frame from :meth:`RunStore.runs` too. Row order and index are kept.
    """
    if where is None or not str(where).strip():
        return frame
    import pandas as pd

    # each column under its place (__c0, __c1...): DuckDB renames columns that differ only in
    # case ('X', 'x'), and 'x > 2' filtered on X
    names: dict[str, str] = {}
    for j, c in enumerate(frame.columns):
        names.setdefault(str(c), f"__c{j}")
    sql = compile_where(where, names)
    view = pd.DataFrame({f"__c{j}": _duck_column(frame.iloc[:, j]).to_numpy()
                         for j in range(frame.shape[1])})
    view["__pos"] = np.arange(len(frame))
    with _sandbox() as con:
        con.register(RELATION, view)
        try:
            pos = con.execute(f"SELECT __pos FROM ({sql}) ORDER BY __pos").fetchnumpy()["__pos"]
        except duckdb.Error as exc:
            raise _refuse(where, _first_line(str(exc))) from None
    return frame.iloc[np.asarray(pos, dtype=np.int64)]


def _duck_column(series: pd.Series) -> pd.Series:
    """A column DuckDB can scan: dict/list cells as JSON text, mixed objects as text."""
    if series.dtype != object:
        return series
    import pandas as pd

    values = series.to_numpy(dtype=object)
    if any(isinstance(v, (dict, list)) for v in values):
        from scalinglab.runs.schema import canonical_json

        return pd.Series([canonical_json(v) if isinstance(v, (dict, list)) else
                          (None if v is None else str(v)) for v in values], dtype=object)
    kinds = {type(v) for v in values if v is not None and not (isinstance(v, float) and v != v)}
    if len(kinds) > 1:
        return pd.Series([None if v is None else str(v) for v in values], dtype=object)
    return series
