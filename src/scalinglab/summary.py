"""One summary object per result, rendered as text (CLI), HTML (report, dashboard, Jupyter) and a
dict (``--json``), like statsmodels' ``Summary``: the result decides *what* is shown, this module
alone decides *how*, so "not identified" looks the same everywhere.

A :class:`Summary` is a title, tables of cells, and lists of notes and warnings. A cell is a
number, text, an :class:`~scalinglab.stats.Estimate` (a value with its interval), or
:class:`NotIdentified` (a number the data do not pin down: rendered as "not identified", kept
in the dict with ``identified: false``).

Numbers are never cut: integers print exactly (batch 1024 is "1024"), other values with 4
significant digits, and plain text is aligned to its widest cell rather than to a terminal. A
table of raw data (``Table(exact=True)``, e.g. ``scalinglab runs``) prints every number in full
(:func:`format_exact`: the shortest text that reads back as the same float).
"""

from __future__ import annotations

import html as _html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalinglab.stats import Estimate


@dataclass(frozen=True)
class NotIdentified:
    """A value the data cannot identify; renderers show the words, not the number."""

    value: float | None = None
    why: str = ""


Cell = Any  # str | int | float | Estimate | NotIdentified | None

NOT_IDENTIFIED = "not identified"

#: parameter names as the papers write them, for HTML and terminals (plain text stays ASCII)
SYMBOLS = {"alpha": "α", "beta": "β", "gamma": "γ", "epsilon": "ε", "eta": "η", "delta": "δ"}


def symbol(name: str) -> str:
    """``alpha`` -> ``α``, ``alpha_N`` -> ``α_N``; other names unchanged."""
    head, sep, tail = str(name).partition("_")
    return SYMBOLS.get(head, head) + sep + tail


def formula_text(formula: str) -> str:
    """A law's formula with parameter names as the papers write them (``N^alpha`` -> ``N^α``)."""
    import re

    return re.sub(r"(?<![A-Za-z])(" + "|".join(SYMBOLS) + r")(?![A-Za-z])",
                  lambda m: SYMBOLS[m.group(1)], str(formula))


def _as_float(v: Any) -> float | str:
    """``v`` as a float, or already as its text when it is no finite number (None, NaN, inf,
    booleans, integers, text): what both number formats show the same way."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def format_number(v: Any, sig: int = 4) -> str:
    """Numbers as people read them: integers exactly (up to 1e7), others to ``sig`` digits."""
    x = _as_float(v)
    if isinstance(x, str):
        return x
    if x.is_integer() and abs(x) < 1e7:
        return str(int(x))
    return f"{x:.{sig}g}"


def format_exact(v: Any) -> str:
    """A number in full: integers exactly (up to 2**53), others as the shortest decimal that reads
    back as the same float (``repr``), so piping a table loses nothing."""
    x = _as_float(v)
    if isinstance(x, str):
        return x
    if x.is_integer() and abs(x) < 2.0**53:
        return str(int(x))
    return repr(x)


#: words that make a warning grave: a figure that is not an estimate, or a result refused
_GRAVE = ("not identif", "no compute-optimal plan", "impossible values", "cannot", "refused")


def tidy_warnings(warnings: Sequence[str]) -> list[str]:
    """Each warning once, the gravest first, otherwise in the order given.

    The same message reached from several places ("chinchilla: X", "plan: X") is said once
    with its places joined ("chinchilla, plan: X"); warnings that say a figure is not
    identified, or a result was refused, come before the rest (the demo once ended on ~15
    warnings, some twice, its unidentified plan among them)."""
    out = merge_places(warnings)
    grave = [w for w in out if any(g in w.lower() for g in _GRAVE)]
    return grave + [w for w in out if w not in grave]


def merge_places(items: Sequence[str]) -> list[str]:
    """Each message once, in the order first given; the same message from several places
    ("MMLU: X", "ARC-C: X") said once with the places joined ("MMLU, ARC-C: X")."""
    merged: dict[str, list[str]] = {}
    for w in items:
        w = str(w).strip()
        if not w:
            continue
        where, sep, what = w.partition(": ")
        if sep and where and len(where) <= 40 and " " not in where.strip(" ,") and what:
            merged.setdefault(what, [])
            if where not in merged[what]:
                merged[what].append(where)
        else:
            merged.setdefault(w, [])
    return [(", ".join(places) + ": " + what) if places else what for what, places in merged.items()]


def format_interval(ci: Any, sig: int = 4) -> str:
    if not ci:
        return "-"
    ends = [_as_float(v) for v in ci[:2]]
    if any(e == "-" for e in ends):
        # never "[4.086, -]": an end the draws could not give is said in words
        return "[no interval: too few usable bootstrap draws]"
    return f"[{format_number(ci[0], sig)}, {format_number(ci[1], sig)}]"


def format_count(v: Any, sig: int = 4) -> str:
    """Whole numbers in full (a run's parameters, tokens, batch: 124438272, not 1.244e+08), other
    numbers as :func:`format_number` does."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return format_number(v, sig)
    if not isinstance(v, bool) and math.isfinite(x) and x.is_integer() and abs(x) < 2.0**53:
        return str(int(x))
    return format_number(v, sig)


def cell_text(cell: Cell, exact: bool = False, counts: bool = False) -> str:
    """The plain text of one cell (the same words in every renderer); ``exact`` prints numbers
    in full (:func:`format_exact`) instead of to 4 significant digits, ``counts`` whole numbers
    in full (:func:`format_count`)."""
    if isinstance(cell, NotIdentified):
        return NOT_IDENTIFIED
    if isinstance(cell, Estimate):
        if not cell.identified:
            return NOT_IDENTIFIED
        if cell.ci is None and cell.note:
            return f"{format_number(cell.value)} ({cell.note})"
        return format_number(cell.value) + ("" if cell.ci is None else " " + format_interval(cell.ci))
    if isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
        return format_exact(cell) if exact else format_count(cell) if counts else format_number(cell)
    if isinstance(cell, dict):
        return ",".join(f"{k}={v}" for k, v in cell.items())
    return "" if cell is None else str(cell)


#: C0 and C1 control characters, DEL, line/paragraph separators and bidirectional overrides:
#: in a run's name they could retitle the terminal (OSC 0), fill the clipboard (OSC 52), clear
#: the screen (CSI 2J) or reorder what is shown
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u202e``),
    for terminals: user-provided text (run names, tags, file content in messages) is never
    written raw."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: (f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                                   else f"\\u{ord(m.group()):04x}"), text)


def _is_numeric(cell: Cell) -> bool:
    return isinstance(cell, (int, float, np.integer, np.floating, Estimate)) and not isinstance(cell, bool)


def cell_value(cell: Cell) -> Any:
    """The cell as JSON-able data."""
    if isinstance(cell, NotIdentified):
        return {"value": cell.value, "identified": False}
    if isinstance(cell, Estimate):
        return cell.to_dict()
    if isinstance(cell, np.generic):
        return cell.item()
    return cell


@dataclass
class Table:
    """Rows of cells under column headings; numeric columns align right."""

    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    #: the first column holds parameter names: shown as symbols (α, β) in HTML and terminals
    symbols: bool = False
    #: raw data rather than estimates: every number printed in full (see :func:`format_exact`)
    exact: bool = False
    #: raw counts: whole numbers in full, others to 4 digits (see :func:`format_count`)
    counts: bool = False
    #: one id per row, written as ``data-id`` on the HTML rows (the dashboard opens a run by it)
    row_ids: list[str] | None = None

    def add_row(self, *cells: Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.title!r}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def _right(self) -> list[bool]:
        return [any(_is_numeric(r[j]) for r in self.rows) for j in range(len(self.columns))]

    def texts(self) -> list[list[str]]:
        """Every cell as the plain text all renderers show."""
        return [[printable(cell_text(c, self.exact, self.counts)) for c in r] for r in self.rows]

    def as_text(self) -> str:
        texts = self.texts()
        widths = [max([len(h), *(len(r[j]) for r in texts)]) for j, h in enumerate(self.columns)]
        right = self._right()

        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if r else c.ljust(w)
                             for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

        out = [printable(self.title)] if self.title else []
        out += [line([printable(c) for c in self.columns]), line(["-" * w for w in widths])]
        out += [line(r) for r in texts]
        return "\n".join(out)

    def as_html(self) -> str:
        right = self._right()
        head = "".join(f'<th class="{"r" if r else "l"}">{_html.escape(c)}</th>'
                       for c, r in zip(self.columns, right, strict=True))
        body = []
        for row in self.rows:
            tds = []
            for j, (c, r) in enumerate(zip(row, right, strict=True)):
                cls = "r" if r else "l"
                if isinstance(c, NotIdentified) or (isinstance(c, Estimate) and not c.identified):
                    cls += " unidentified"
                text = (symbol(c) if self.symbols and j == 0 and isinstance(c, str)
                        else ", ".join(f"{k}={v}" for k, v in c.items()) if isinstance(c, dict)
                        else cell_text(c, self.exact, self.counts))
                tds.append(f'<td class="{cls}">{_html.escape(text)}</td>')
            rid = ("" if self.row_ids is None
                   else f' data-id="{_html.escape(str(self.row_ids[len(body)]), quote=True)}"')
            body.append(f"<tr{rid}>" + "".join(tds) + "</tr>")
        caption = f"<caption>{_html.escape(self.title)}</caption>" if self.title else ""
        return (f'<table class="sl-table">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table>")

    def __rich__(self) -> Any:
        from rich.table import Table as RichTable

        t = RichTable(title=self.title or None, header_style="bold")
        for c, r in zip(self.columns, self._right(), strict=True):
            # fold rather than crop: a number is never shown cut short
            t.add_column(c, justify="right" if r else "left", overflow="fold")
        for row in self.rows:
            cells = [f"[bold red]{NOT_IDENTIFIED}[/]" if isinstance(c, NotIdentified) or (
                isinstance(c, Estimate) and not c.identified) else _rich_escape(
                    printable(cell_text(c, self.exact, self.counts)))
                for c in row]
            if self.symbols and cells and isinstance(row[0], str):
                cells[0] = _rich_escape(symbol(row[0]))
            t.add_row(*cells)
        return t

    def as_delimited(self, sep: str = ",") -> str:
        """CSV (``sep=","``) or TSV: a header row, then every cell in full (numbers exact,
        dicts as JSON), quoted where needed."""
        import csv
        import io
        import json

        def raw(c: Cell) -> str:
            if isinstance(c, (dict, list)):
                return json.dumps(c, sort_keys=True)  # ensure_ascii: controls are escaped
            if isinstance(c, (NotIdentified, Estimate)) or c is None:
                return "" if c is None else cell_text(c, exact=True)
            return cell_text(c, exact=True) if _is_numeric(c) else printable(str(c))

        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=sep, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([raw(c) for c in r] for r in self.rows)
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": list(self.columns),
                "rows": [[cell_value(c) for c in r] for r in self.rows]}


#: CSS for rendered summaries (the report and the dashboard include it)
CSS = ".sl-table td.unidentified{color:#b3261e;font-style:italic}" \
      ".sl-table caption{text-align:left;font-weight:600;padding:4px 0}"


def _rich_escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@dataclass
class Summary:
    """What a result says about itself, renderable three ways.

    ``data`` is the result's ``to_dict()`` (what ``--json`` prints); ``facts`` are short
    ``label: value`` lines (residual spread, holdout error...). Warnings and notes are shown
    once each, the gravest first (:func:`tidy_warnings`).
    """

    title: str
    tables: list[Table] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.warnings = tidy_warnings(self.warnings)
        self.notes = list(dict.fromkeys(self.notes))

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def as_text(self) -> str:
        parts = [printable(self.title), ""]
        for t in self.tables:
            parts += [t.as_text(), ""]
        parts += [printable(f"{k}: {v}") for k, v in self.facts]
        parts += [f"note: {printable(n)}" for n in self.notes]
        parts += [f"warning: {printable(w)}" for w in self.warnings]
        return "\n".join(parts).rstrip() + "\n"

    def __str__(self) -> str:
        return self.as_text()

    def as_html(self) -> str:
        e = _html.escape
        parts = [f'<div class="sl-summary"><h3>{e(formula_text(self.title))}</h3>']
        parts += [t.as_html() for t in self.tables]
        if self.facts:
            parts.append("<ul class=\"sl-facts\">" + "".join(
                f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in self.facts) + "</ul>")
        for kind, items in (("note", self.notes), ("warn", self.warnings)):
            if items:
                parts.append(f'<ul class="sl-{kind}">' + "".join(f"<li>{e(x)}</li>" for x in items)
                             + "</ul>")
        parts.append("</div>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.as_html()

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield f"[bold]{_rich_escape(printable(formula_text(self.title)))}[/]"
        for t in self.tables:
            yield t.__rich__()
        for k, v in self.facts:
            yield f"{_rich_escape(printable(k))}: {_rich_escape(printable(v))}"
        for n in self.notes:
            yield f"[yellow]note:[/] {_rich_escape(printable(n))}"
        for w in self.warnings:
            yield f"[bold yellow]warning:[/] {_rich_escape(printable(w))}"


__all__ = ["NotIdentified", "Summary", "Table", "cell_text", "format_count", "format_exact",
           "format_interval", "format_number", "formula_text", "printable", "symbol"]
