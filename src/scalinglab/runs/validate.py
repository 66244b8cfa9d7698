"""From raw cells to rows the store can take: the import pipeline, as named pure steps.

A file is read in chunks (:mod:`scalinglab.runs.io`); :func:`plan_layout` decides once, from the
header, which column is which; :func:`prepare_chunk` turns each chunk into an Arrow table of
run rows plus the problems it found. Every step works on whole columns (Arrow kernels and
numpy), so a million rows cost seconds, not minutes, and a bad cell is still reported by file,
row and column. The store (:meth:`RunStore.import_frame`) stages the chunks and decides about
duplicates and conflicts in one transaction.

Rules, in the order a row is checked (its first failing rule is the reason shown):

1. a numeric cell must parse (:mod:`scalinglab.runs.cells`) and not be infinite;
2. a finished run needs N > 0, loss > 0, and D >= 1 token (or C > 0 FLOPs); failed and running
   runs may lack them (a crashed run is data), but what they give must be valid;
3. lr, batch, weight decay (>= 0), seq_len, steps must be positive when given;
4. derived values must be finite: ``C = 6*N*D`` of huge N and D overflows to inf and is rejected;
5. the status must be one of finished/failed/running or a tracker's word for one;
6. tags must parse, with valid keys (:data:`scalinglab.runs.schema.TAG_KEY`).

``invalid`` says what a bad row does: ``reject`` the import (listing up to 20 bad rows),
``skip`` it, or import it as ``failed`` with the reasons in ``error``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scalinglab.errors import InputError, ParameterError
from scalinglab.runs import arrays as A
from scalinglab.runs import ids
from scalinglab.runs.cells import (
    Column,
    NumericCells,
    cell_at,
    extra_cells,
    factorize,
    is_missing_cell,
    objects,
    parse_cells,
    show_cell,
    text_cells,
)
from scalinglab.runs.columns import (
    ALIASES,
    DESCRIPTIONS,
    MissingColumn,
    choose_columns,
    missing_column,
)
from scalinglab.runs.schema import (
    NUMERIC_COLUMNS,
    STATUS_WORDS,
    STATUSES,
    TAG_COLUMNS,
    canonical_json,
    check_tag_key,
    split_tag,
)

if TYPE_CHECKING:
    import pandas as pd

INVALID_CHOICES = ("reject", "skip", "failed")
#: the columns the alias table is asked for, in this order
WANTED = ("run_id", "name", "status", "error", "N", "D", "C", "loss", "lr", "batch_tokens",
          "batch_sequences", "weight_decay", "seq_len", "steps", "tags", "tag_list")
NUMBERS = ("N", "D", "C", "loss", "lr", "batch_tokens", "batch_sequences", "weight_decay",
           "seq_len", "steps")
#: columns consumed by the pipeline (everything else is kept in ``extra``)
CONSUMED = frozenset({*WANTED, *TAG_COLUMNS, "curve"}) - {"steps"}
#: at most this many bad rows are listed in an error or a note
MAX_LISTED = 20
#: staged run columns, in order, before the extra columns
STAGE_COLUMNS = ("_row", "_fp", "_given", "run_id", "name", "N", "D", "C", "loss", "lr",
                 "batch_tokens", "weight_decay", "seq_len", "tags", "status", "error")


@dataclass(frozen=True)
class Options:
    """What the caller asked for: ``source`` (named in errors), ``tags`` for every run,
    ``seq_len`` for batches given in sequences, and what to do with ``invalid`` rows."""

    source: str
    tags: Mapping[str, str] = field(default_factory=dict)
    seq_len: float | None = None
    invalid: str = "reject"


@dataclass(frozen=True)
class Layout:
    """Which column is which, decided once from the header (see :func:`plan_layout`)."""

    rename: dict[str, str]   # file column -> scalinglab name
    numbers: tuple[str, ...]  # numeric scalinglab columns present
    tag_columns: tuple[str, ...]
    extras: tuple[str, ...]   # scalinglab-side names kept in ``extra``
    d_from: str | None        # None (D given), "C" (D = C/6N) or "steps" (D = steps x batch)
    batch_from_sequences: bool
    notes: tuple[str, ...]

    @property
    def present(self) -> set[str]:
        return set(self.rename.values())

    def file_column(self, name: str) -> str:
        """The file's own name for a scalinglab column (errors name what the user sees)."""
        return next((src for src, dst in self.rename.items() if dst == name), name)


def plan_layout(columns: Sequence[Any], mapping: Mapping[str, str] | None,
                options: Options) -> Layout:
    """Decide, from the header alone, which column supplies which quantity.

    Raises :class:`InputError` for a missing required column (with a did-you-mean) and
    :class:`ParameterError` (``seq_len``) for a batch in sequences without a sequence length.
    """
    source = options.source
    cols = [str(c).strip() for c in columns]
    seen: set[str] = set()
    for c in cols:
        if c in seen:
            raise InputError(f"column {c!r} appears twice in the header", source=source)
        seen.add(c)
    choice = choose_columns(cols, WANTED, mapping, source)
    rename = {c: choice.rename.get(c, c) for c in cols}
    after = set(rename.values())
    notes = list(choice.notes)
    for name in ("N", "loss"):
        if name not in after:
            raise missing_column(name, cols, source)
    batch_from_sequences = "batch_tokens" not in after and "batch_sequences" in after
    if batch_from_sequences:
        file_col = next(s for s, d in rename.items() if d == "batch_sequences")
        if options.seq_len is None and "seq_len" not in after:
            raise ParameterError(
                f"{source}: column {file_col!r} looks like a batch size in sequences; give "
                "seq_len (tokens per sequence) or map a batch in tokens (batch_tokens=COLUMN)",
                "seq_len")
        notes.append(f"batch_tokens = {file_col} x seq_len")
    d_from = None
    if "D" not in after:
        if "C" in after:
            d_from = "C"
            notes.append("D = C/(6*N) (no token column given)")
        elif "steps" in after and ("batch_tokens" in after or batch_from_sequences):
            d_from = "steps"
            notes.append("D = steps x batch_tokens (no token column given)")
        else:
            hint = missing_column("D", cols, None).detail.split(";")[0]
            hint = hint[hint.index(")") + 1:] if ")" in hint else ""
            raise MissingColumn(
                f"missing column 'D' (training tokens) or 'C' (training FLOPs){hint}; columns "
                f"are {cols}; map a column to it (D=YOUR_COLUMN)", "D", source=source)
    elif "C" not in after:
        notes.append("C = 6*N*D (no compute column given)")
    numbers = tuple(c for c in NUMBERS if c in after)
    extras = tuple(rename[c] for c in cols if rename[c] not in CONSUMED)
    return Layout(rename=rename, numbers=numbers,
                  tag_columns=tuple(c for c in TAG_COLUMNS if c in after), extras=extras,
                  d_from=d_from, batch_from_sequences=batch_from_sequences, notes=tuple(notes))


# -- problems ---------------------------------------------------------------------------------


class Problems:
    """Bad rows of one chunk, as rules (a mask, a column, a message per row) kept lazily.

    Messages are built only for the rows that are shown or stored, so a chunk with no bad
    rows costs one mask per rule.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.rules: list[tuple[np.ndarray, str | None, Callable[[int], str]]] = []

    def add(self, mask: np.ndarray, column: str | None, detail: Callable[[int], str]) -> None:
        if mask.any():
            self.rules.append((mask.copy(), column, detail))

    def mask(self) -> np.ndarray:
        out = np.zeros(self.n, bool)
        for m, _, _ in self.rules:
            out |= m
        return out

    def column_mask(self, column: str) -> np.ndarray:
        out = np.zeros(self.n, bool)
        for m, c, _ in self.rules:
            if c == column:
                out |= m
        return out

    def details(self, i: int) -> list[tuple[str | None, str]]:
        """Every problem of row ``i``, in rule order."""
        return [(c, fn(i)) for m, c, fn in self.rules if m[i]]


@dataclass(frozen=True)
class BadRow:
    """One row that is not a valid run: absolute 0-based ``row``, the ``column`` (as the file
    names it) and what is wrong."""

    row: int
    column: str | None
    detail: str


def describe(problems: list[tuple[str | None, str]]) -> str:
    """``"column 'loss': 'abc' is not a number; column 'N': is missing"``."""
    return "; ".join(f"column {c!r}: {d}" if c else d for c, d in problems)


# -- a prepared chunk ---------------------------------------------------------------------------


@dataclass
class Prepared:
    """A chunk's run rows (Arrow, :data:`STAGE_COLUMNS` then extra columns), curve points,
    and what was found on the way."""

    runs: pa.Table
    extra_keys: list[str]
    curves: pa.Table
    bad: list[BadRow]
    n_bad: int
    n_failed: int = 0
    n_skipped: int = 0
    notes: list[str] = field(default_factory=list)
    max_N: float = math.nan
    max_loss: float = math.nan
    max_lr: float = math.nan
    #: compute or budget columns given beside N and D, by the file's name for them: what the column
    #: is ("compute", "budget") and (N, D, C) of the finished valid rows, for the 6ND check
    #: (:func:`scalinglab.runs.flops.check_flops`)
    flop_columns: dict[str, tuple[str, np.ndarray, np.ndarray, np.ndarray]] = \
        field(default_factory=dict)


CURVE_SCHEMA = pa.schema([("_row", pa.int64()), ("step", pa.int64()), ("tokens", pa.float64()),
                          ("loss", pa.float64()), ("eval_loss", pa.float64()),
                          ("wall_s", pa.float64())])
#: what a curve point may hold besides its step: ``wall_s`` is wall-clock seconds since the run
#: started (a tracker's clock or the sweep runner's), never negative
POINT_FIELDS = ("step", "tokens", "loss", "eval_loss", "wall_s")


def prepare_chunk(frame: pd.DataFrame | pa.Table, layout: Layout, options: Options,
                  start: int = 0, curves: pd.DataFrame | None = None,
                  rows: np.ndarray | None = None) -> Prepared:
    """Validate and convert one chunk of raw rows (file column names) into run rows.

    ``frame`` is a pandas frame or an Arrow table (a CSV chunk, read without pandas);
    ``start`` is the absolute 0-based row of the chunk's first row, or ``rows`` each row's
    (when a reader left some out); ``curves`` an optional long frame of curve points whose
    ``row`` refers to rows of this chunk.
    """
    n = len(frame)
    at = np.arange(start, start + n, dtype=np.int64) if rows is None else \
        np.asarray(rows, dtype=np.int64)
    if isinstance(frame, pa.Table):
        col: dict[str, Column] = {name: A.single(frame.column(src))
                                  for src, name in layout.rename.items()}
    else:
        col = {name: frame[src] for src, name in layout.rename.items()}
    fname = layout.file_column
    problems = Problems(n)

    status, given_error = statuses(col, fname, problems, n)
    finished = status == "finished"
    cells = {name: parse_cells(col[name]) for name in layout.numbers}
    check_numbers(cells, col, fname, finished, problems)
    values = derive(cells, col, fname, layout, options, finished, problems)
    tags_json, tag_words = row_tags(col, layout, options, fname, problems, n)
    curve_points = curve_column(col, fname, problems, n) if "curve" in col else None
    names = text_cells(col["name"]) if "name" in col else pa.nulls(n, pa.string())
    given = text_cells(col["run_id"]) if "run_id" in col else pa.nulls(n, pa.string())

    bad = problems.mask()
    errors = given_error
    n_failed = n_skipped = 0
    if bad.any() and options.invalid == "failed":
        # a failed run keeps its tags (its row's, and the caller's --tag), as a crashed run
        # does: they were blanked, so `--tag dataset=c4 --status failed` did not find it; a
        # row whose tags are the problem has only the caller's (row_tags). Its id is still
        # made without them, as before: re-importing a file imported so is a no-op
        errors, status = mark_failed(problems, bad, values, errors, status)
        tag_words = np.where(bad, np.uint64(0), tag_words)
        n_failed = int(bad.sum())
    listed = [BadRow(int(at[i]), *problems.details(int(i))[0])
              for i in np.flatnonzero(bad)[:MAX_LISTED]]

    extras = {key: extra_cells(col[key]) for key in layout.extras}
    fields = [(c, *ids.float_words(values[c])) for c in NUMERIC_COLUMNS]
    fields.append(("tags", tag_words, tag_words != 0))
    fields.append(("name", *ids.text_words(names)))
    fields += [(f"extra.{k}", *x.words()) for k, x in extras.items()]
    content = ids.combine(fields, n)
    given_present = A.valid(given)
    run_ids = pc.if_else(A.bools(given_present), given, ids.hex_ids(content))
    status_arrow = _status_array(status)
    fingerprint = ids.combine([
        ("content", content, np.ones(n, bool)),
        ("run_id", *ids.text_words(given)),
        ("status", *ids.text_words(status_arrow)),
        ("error", *ids.text_words(errors)),
    ], n)

    columns: dict[str, Any] = {
        "_row": A.numbers(at),
        "_fp": A.numbers(fingerprint, type=pa.uint64()),
        "_given": A.bools(given_present),
        "run_id": run_ids, "name": names,
        **{c: A.numbers(values[c], missing=np.isnan(values[c])) for c in NUMERIC_COLUMNS},
        "tags": tags_json,
        "status": status_arrow,
        "error": errors,
    }
    for j, x in enumerate(extras.values()):
        columns.update({f"x{j}_i": x.ints, f"x{j}_f": x.floats, f"x{j}_s": x.texts,
                        f"x{j}_j": x.jsons,
                        f"x{j}_t": x.tokens if x.tokens is not None else pa.nulls(n, pa.string())})
    table = pa.table(columns)
    curve_table = _curve_table(curve_points, curves, at, n, options.source)
    if bad.any() and options.invalid == "skip":
        table = table.filter(A.bools(~bad))
        if len(curve_table):
            kept = A.numbers(at[~bad])
            curve_table = curve_table.filter(pc.is_in(curve_table["_row"], value_set=kept))
        n_skipped = int(bad.sum())

    ok = finished & ~bad
    out = Prepared(runs=table, extra_keys=list(extras), curves=curve_table, bad=listed,
                   n_bad=int(bad.sum()), n_failed=n_failed, n_skipped=n_skipped,
                   notes=list(layout.notes))
    out.max_N = _nanmax(values["N"][ok])
    out.max_loss = _nanmax(values["loss"][ok])
    out.max_lr = _nanmax(values["lr"][ok])
    if layout.d_from != "C":  # D = C/6N would agree with 6ND by construction
        given = {layout.file_column("C"): ("compute", values["C"])} if "C" in cells else {}
        given |= {key: ("budget", x.numbers()) for key, x in extras.items() if is_budget_name(key)}
        for name, (what, c) in given.items():
            keep = ok & np.isfinite(c)
            if keep.any():
                out.flop_columns[name] = (what, values["N"][keep], values["D"][keep], c[keep])
    return out


def _status_array(status: np.ndarray) -> pa.Array:
    """Each row's status as Arrow text, taken from the few words by index (building a string
    per row from Python objects cost 2 to 3 ms a chunk)."""
    words = list(STATUSES)
    index = np.full(len(status), -1, dtype=np.int64)
    for k, word in enumerate(words):
        index[status == word] = k
    if (index < 0).any():  # not one of the usual words (cannot happen today): each as it is
        return A.strings(list(status))
    return A.strings(words).take(A.numbers(index))


#: words that make an extra column a compute budget (``budget``, ``compute_budget``, ``flops_budget``...)
BUDGET_WORDS = ("budget", "flop", "compute")


def is_budget_name(name: str) -> bool:
    """Does an extra column's name say it holds a compute budget in FLOPs?"""
    low = name.lower()
    return any(w in low for w in BUDGET_WORDS)


def _nanmax(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(v.max()) if len(v) else math.nan


# -- the steps ----------------------------------------------------------------------------------


def statuses(col: Mapping[str, Column], fname: Callable[[str], str], problems: Problems,
             n: int) -> tuple[np.ndarray, pa.Array]:
    """Each row's status (finished when not given) and error text.

    Trackers' words are mapped (``crashed``/``killed``/``failed`` -> failed, ``running``,
    ``finished``, MLflow's ``FINISHED``...); a failed run without an error gets its tracker
    word (``crashed``) as the error, so the reason is not lost, and a bare ``failed`` says that
    the file gave no reason.
    """
    errors = text_cells(col["error"]) if "error" in col else pa.nulls(n, pa.string())
    if "status" not in col:
        return np.full(n, "finished", dtype=object), errors
    # a status column has a handful of distinct words: map those, then every row by its code
    codes, distinct = factorize(col["status"])
    words_u = text_cells(distinct).to_pylist()
    lower_u = [(w or "finished").lower() for w in words_u] + ["finished"]
    index_u = np.array([list(STATUS_WORDS).index(w) if w in STATUS_WORDS else -1
                        for w in lower_u], dtype=np.int64)
    index = index_u[codes]  # code -1 (a missing cell) takes the last entry: finished
    unknown = index < 0
    mapped = np.array([*STATUS_WORDS.values(), "failed"], dtype=object)[index]
    raw = [words_u[c] if c >= 0 else None for c in codes] if unknown.any() else None
    problems.add(unknown, fname("status"),
                 lambda i: f"{show_cell(raw[i])} is not a run status; use one of "
                           f"{list(STATUSES)} (or a tracker's word for one, e.g. crashed)")
    say = (mapped == "failed") & ~unknown
    if say.any():
        # the tracker's word is the reason (crashed, killed, oom); a bare "failed" says only
        # that, so the reason says where it came from and that nothing more was given
        bare = f"failed (no reason given in column {fname('status')!r})"
        word = A.strings([bare if w == "failed" else w for w in lower_u]).take(
            A.numbers(np.where(codes < 0, len(lower_u) - 1, codes)))
        errors = pc.if_else(A.bools(say & ~A.valid(errors)), word, errors)
    return mapped, errors


def check_numbers(cells: dict[str, NumericCells], col: Mapping[str, Column],
                  fname: Callable[[str], str], finished: np.ndarray, problems: Problems) -> None:
    """Rules 1-3 of the module docstring, one mask per rule."""
    raw = {name: col[name] for name in cells}

    def shown(name: str) -> Callable[[int], str]:
        return lambda i: show_cell(cell_at(raw[name], i))

    for name, c in cells.items():
        s = shown(name)
        problems.add(c.bad, fname(name), lambda i, s=s: f"{s(i)} is not a number")
        problems.add(np.isinf(c.values), fname(name), lambda i, s=s: f"{s(i)} is infinite")
    limits = {
        "N": (lambda v: v > 0, "must be a positive number"),
        "loss": (lambda v: v > 0, "must be > 0"),
        "D": (lambda v: v >= 1, "must be >= 1 token"),
        "C": (lambda v: v > 0, "must be > 0 FLOPs"),
    }
    with np.errstate(invalid="ignore"):
        for name, (ok, words) in limits.items():
            if name not in cells:
                continue
            c, s = cells[name], shown(name)
            needed = name in ("N", "loss") or (name == "D") or ("D" not in cells)
            if needed:
                problems.add(c.missing & finished, fname(name), lambda i: "is missing")
            finite = np.isfinite(c.values)
            problems.add(finite & ~ok(c.values), fname(name),
                         lambda i, s=s, w=words: f"{s(i)} {w}")
        for name in ("lr", "batch_tokens", "batch_sequences", "weight_decay", "seq_len", "steps"):
            if name not in cells:
                continue
            c, s = cells[name], shown(name)
            bad = (c.values < 0) if name == "weight_decay" else (c.values <= 0)
            problems.add(bad & np.isfinite(c.values), fname(name),
                         lambda i, s=s: f"{s(i)} must be positive")


def derive(cells: dict[str, NumericCells], col: Mapping[str, Column],
           fname: Callable[[str], str], layout: Layout, options: Options,
           finished: np.ndarray, problems: Problems) -> dict[str, np.ndarray]:
    """The stored numbers: D from C or steps, C = 6ND, batch from sequences; rule 4."""
    n = len(finished)
    nan = np.full(n, np.nan)

    def good(name: str) -> np.ndarray:
        if name not in cells:
            return nan
        v = cells[name].values.copy()
        v[problems.column_mask(fname(name))] = np.nan
        return v

    out = {name: good(name) for name in ("N", "loss", "lr", "weight_decay")}
    seq = good("seq_len") if "seq_len" in cells else np.full(
        n, np.nan if options.seq_len is None else float(options.seq_len))
    out["seq_len"] = seq
    with np.errstate(over="ignore", invalid="ignore"):
        batch = good("batch_tokens") if "batch_tokens" in cells else (
            good("batch_sequences") * seq if layout.batch_from_sequences else nan)
        over = np.isinf(batch)
        problems.add(over, fname("batch_sequences"),
                     lambda i: "batch_tokens = batch x seq_len overflows to inf")
        out["batch_tokens"] = np.where(over, np.nan, batch)
        N = out["N"]
        if layout.d_from is None:
            D = good("D")
            C = good("C") if "C" in cells else nan
            C = np.where(np.isnan(C), 6.0 * N * D, C)
        elif layout.d_from == "C":
            C = good("C")
            D = C / (6.0 * N)
            low = D < 1
            problems.add(low, fname("C"), lambda i: f"implies D = {D[i]:.3g} < 1 token")
            D = np.where(low, np.nan, D)
        else:
            D = good("steps") * out["batch_tokens"]
            problems.add(finished & np.isnan(D) & ~np.isnan(N), fname("steps"),
                         lambda i: "D = steps x batch_tokens needs both")
            C = 6.0 * N * D
        overflow = np.isinf(C) | np.isinf(D)
        shown_N, shown_D = N, D
        problems.add(overflow, None,
                     lambda i: f"C = 6*N*D overflows to inf (N = {shown_N[i]:.3g}, "
                               f"D = {shown_D[i]:.3g})")
    out["D"] = np.where(overflow, np.nan, D)
    out["C"] = np.where(overflow, np.nan, C)
    return out


def mark_failed(problems: Problems, bad: np.ndarray, values: dict[str, np.ndarray],
                errors: pa.Array, status: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """``invalid="failed"``: bad rows become failed runs, their reasons in ``error``."""
    reasons = errors.to_pylist()
    for i in np.flatnonzero(bad):
        why = describe(problems.details(int(i)))
        reasons[i] = why if not reasons[i] else f"{why}; {reasons[i]}"
    status = np.where(bad, "failed", status)
    return A.strings(reasons), status


def row_tags(col: Mapping[str, Column], layout: Layout, options: Options,
             fname: Callable[[str], str], problems: Problems, n: int
             ) -> tuple[pa.Array, np.ndarray]:
    """Each row's tags as canonical JSON, and their hash words (0 where a run has no tags).

    From the ``tags`` column (a JSON object, ``k=v;k=v``, or a dict), the tag columns
    (``dataset``, ``architecture``), W&B's ``Tags`` list (each label -> ``label=true``) and the
    caller's tags (which win). Rows are grouped by their distinct combinations of these cells,
    so a million rows with three datasets parse three tag sets.
    """
    sources = [s for s in ("tags", *layout.tag_columns, "tag_list") if s in col]
    if not sources and not options.tags:
        return A.strings(["{}"]).take(A.numbers(np.zeros(n, np.int64))), np.zeros(n, np.uint64)
    codes, uniques = [], []
    key = np.zeros(n, dtype=np.int64)
    for s in sources:
        series = col[s]
        if not isinstance(series, pa.Array) and series.dtype == object:  # dicts as JSON
            series = series.map(lambda v: canonical_json(v) if isinstance(v, (dict, list)) else v)
        c, u = factorize(series)
        codes.append(c)
        uniques.append(u)
        # one integer per combination (mixed radix); factorised again below
        key = _codes(key * (len(u) + 1) + (c + 1))
    inverse, first = _first_of_each(key)
    combos = [[c[i] for c in codes] for i in first]
    texts: list[str] = []
    failures: dict[int, tuple[str | None, str]] = {}
    for k, combo in enumerate(combos):
        cells = {s: (uniques[j][code] if code >= 0 else None) for j, (s, code)
                 in enumerate(zip(sources, combo, strict=True))}
        try:
            tags = _combine_tags(cells, options.tags)
        except InputError as exc:
            failures[k] = (fname(exc.column) if exc.column else None, exc.detail)
            given = dict(options.tags)  # checked already: the caller's tags, for a failed run
            texts.append(canonical_json(given) if given else "{}")
            continue
        texts.append(canonical_json(tags) if tags else "{}")
    for k, (column, detail) in failures.items():
        problems.add(inverse == k, column, lambda i, d=detail: d)
    unique_json = A.strings(texts)
    words, _ = ids.text_words(unique_json)
    words = np.where(np.array([t == "{}" for t in texts]), np.uint64(0), words)
    return unique_json.take(A.numbers(inverse)), words[inverse]


def _first_of_each(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(inverse, first)``: each row's group (0, 1, ... by first appearance) and each group's
    first row."""
    inverse = _codes(key) if len(key) else np.zeros(0, dtype=np.int64)
    _, first = np.unique(inverse, return_index=True)
    return inverse, first


def _codes(key: np.ndarray) -> np.ndarray:
    """Integers renumbered 0, 1, ... by first appearance (a hash, as ``pandas.factorize``)."""
    return A.to_numpy(pc.dictionary_encode(A.numbers(key)).indices).astype(np.int64)


def _combine_tags(cells: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    if cells.get("tags") is not None:
        tags.update(parse_tags(cells["tags"]))
    for c in TAG_COLUMNS:
        v = cells.get(c)
        if v is not None and not is_missing_cell(v):
            tags[c] = _tag_text(v)
    if cells.get("tag_list") is not None:
        tags.update(parse_tags(cells["tag_list"], labels=True, column="tag_list"))
    tags.update(given)
    for k in tags:
        why = check_tag_key(k)
        if why:
            raise InputError(why, column="tags")
    return tags


def _tag_text(v: Any) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def parse_tags(v: Any, labels: bool = False, column: str = "tags") -> dict[str, str]:
    """Tags as a dict, a JSON object string, or ``k=v;k:v`` (``,`` works too; each pair split by
    :func:`~scalinglab.runs.schema.split_tag`).

    With ``labels`` (W&B's ``Tags`` column: ``baseline, lr-sweep``) a bare word is a label,
    stored as ``word=true``; otherwise a part without ``=`` is an error.
    """
    if is_missing_cell(v):
        return {}
    if isinstance(v, dict):
        return {str(k): _tag_text(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return {str(x).strip(): "true" for x in v if str(x).strip()}
    text = str(v).strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg})", column=column) from None
        if not isinstance(obj, dict):
            raise InputError("expected a JSON object of tags", column=column)
        return {str(k): _tag_text(x) for k, x in obj.items()}
    if labels and text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            items = None
        if isinstance(items, list):
            return {str(x).strip(): "true" for x in items if str(x).strip()}
    out: dict[str, str] = {}
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        k, sep, x = split_tag(part)
        if not sep:
            if labels:
                out[part.strip()] = "true"
                continue
            raise InputError(f"{part.strip()!r} is not KEY=VALUE or KEY:VALUE", column=column)
        out[k.strip()] = x.strip()
    return out


def curve_column(col: Mapping[str, Column], fname: Callable[[str], str],
                 problems: Problems, n: int) -> list[tuple[int, dict[str, Any]]]:
    """Points of a ``curve`` cell per row (a list of losses, of ``[step, tokens, loss]``, or of
    dicts), as ``(row, point)``; a malformed curve is a problem of its row."""
    out: list[tuple[int, dict[str, Any]]] = []
    failures: dict[int, str] = {}
    for i, v in enumerate(objects(col["curve"])):
        if is_missing_cell(v):
            continue
        try:
            out += [(i, p) for p in parse_curve(v)]
        except InputError as exc:
            failures[i] = exc.detail
    if failures:
        mask = np.zeros(n, bool)
        mask[list(failures)] = True
        problems.add(mask, fname("curve"), lambda i: failures[i])
    return out


def parse_curve(v: Any) -> list[dict[str, Any]]:
    """One cell's loss curve; raises :class:`InputError` (no source) when it is malformed.

    A point is a loss, ``[step, loss]``, ``[step, tokens, loss]`` or a dict of
    :data:`POINT_FIELDS` (``{"step": 10, "loss": 3.2, "wall_s": 41.5}``)."""
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg})") from None
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if not isinstance(v, list):
        raise InputError("expected a list of points")
    points = []
    for j, p in enumerate(v):
        if isinstance(p, dict):
            point = {k: p.get(k) for k in POINT_FIELDS}
            if point["step"] is None:
                point["step"] = j
        elif isinstance(p, (list, tuple)) and len(p) in (2, 3):
            point = {"step": p[0], "tokens": p[1] if len(p) == 3 else None, "loss": p[-1],
                     "eval_loss": None, "wall_s": None}
        elif isinstance(p, (int, float)) and not isinstance(p, bool):
            point = {"step": j, "tokens": None, "loss": p, "eval_loss": None, "wall_s": None}
        else:
            raise InputError(f"point {j} ({show_cell(p)}) is not understood")
        for key in POINT_FIELDS:
            x = point[key]
            if x is None:
                continue
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise InputError(f"point {j} has a {key} that is not a number ({show_cell(x)})")
            if key == "wall_s" and not (math.isfinite(x) and x >= 0):
                raise InputError(f"point {j} has a wall_s of {x} (seconds since the run "
                                 "started: a finite number >= 0)")
        if not (isinstance(point["step"], int) or float(point["step"]).is_integer()):
            raise InputError(f"point {j} has a step that is not a whole number")
        if point["loss"] is None or not math.isfinite(point["loss"]):
            raise InputError(f"point {j} loss is {point['loss']}")
        points.append(point)
    return points


def _curve_table(points: list[tuple[int, dict[str, Any]]] | None, curves: pd.DataFrame | None,
                 at: np.ndarray, n: int, source: str) -> pa.Table:
    parts = []
    if points:
        parts.append(pa.table({
            "_row": A.numbers(np.array([int(at[i]) for i, _ in points], dtype=np.int64)),
            "step": A.numbers(np.array([int(p["step"]) for _, p in points], dtype=np.int64)),
            **{k: _floats([_float(p[k]) for _, p in points])
               for k in ("tokens", "loss", "eval_loss", "wall_s")},
        }, schema=CURVE_SCHEMA))
    if curves is not None and len(curves):
        parts.append(curve_frame(curves, n, source, int(at[0]) if n else 0))
    if not parts:
        # not ``CURVE_SCHEMA.empty_table()``, which loads pandas (see runs.arrays)
        return pa.Table.from_arrays([pa.nulls(0, f.type) for f in CURVE_SCHEMA],
                                    schema=CURVE_SCHEMA)
    return pa.concat_tables(parts)


def _floats(values: list[float | None]) -> pa.Array:
    """Optional floats as a float64 array, null where None (NaN stays NaN)."""
    missing = np.array([v is None for v in values], dtype=bool)
    return A.numbers(np.array([np.nan if v is None else v for v in values], dtype=np.float64),
                     missing=missing)


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def curve_frame(curves: pd.DataFrame, n_runs: int, source: str, start: int = 0) -> pa.Table:
    """Validate a long curve frame (``row``, ``step``, ``loss``[, ``tokens``, ``eval_loss``,
    ``wall_s``]).

    ``row`` is the 0-based position of a run's row among ``n_runs`` rows. Points without a
    finite loss keep their ``eval_loss``; points with neither are dropped (trackers log eval
    and train losses at different steps). A malformed point is an :class:`InputError` naming
    the point and column.
    """
    cols = [str(c) for c in curves.columns]
    for need in ("row", "step", "loss"):
        if need not in cols:
            from scalinglab.errors import did_you_mean

            raise InputError(f"the curves need columns row, step and loss; {need!r} is missing"
                             f"{did_you_mean(need, cols)}; columns are {cols}", source=source)
    out: dict[str, np.ndarray] = {}
    for name in ("row", *POINT_FIELDS):
        if name not in cols:
            out[name] = np.full(len(curves), np.nan)
            continue
        c = parse_cells(curves[name])
        bad = c.bad | ((np.isnan(c.values) | np.isinf(c.values)) & (name in ("row", "step")))
        if name in ("row", "step"):
            bad |= ~np.isnan(c.values) & (np.floor(c.values) != c.values)
        if name == "row":
            bad |= ~np.isnan(c.values) & ((c.values < 0) | (c.values >= n_runs))
        if name == "wall_s":  # seconds since the run started: a clock never reads negative
            bad |= np.isinf(c.values) | (c.values < 0)
        if bad.any():
            j = int(np.argmax(bad))
            cell = show_cell(curves[name].iloc[j])
            what = (f"{cell} is not a row of the runs (0 to {n_runs - 1})" if name == "row"
                    and not c.bad[j] and not np.isnan(c.values[j]) else
                    f"{cell} is not seconds since the run started (a finite number >= 0)"
                    if name == "wall_s" and not c.bad[j] else
                    f"{cell} is not a {'whole number' if name in ('row', 'step') else 'number'}")
            raise InputError(what, source=f"{source} (curves)", row=f"point {j + 1}",
                             column=name)
        out[name] = np.where(np.isinf(c.values), np.nan, c.values)
    keep = ~(np.isnan(out["loss"]) & np.isnan(out["eval_loss"]))
    return pa.table({
        "_row": pa.array(out["row"][keep].astype(np.int64) + start),
        "step": pa.array(out["step"][keep].astype(np.int64)),
        "tokens": pa.array(out["tokens"][keep], mask=np.isnan(out["tokens"][keep])),
        "loss": pa.array(out["loss"][keep], mask=np.isnan(out["loss"][keep])),
        "eval_loss": pa.array(out["eval_loss"][keep], mask=np.isnan(out["eval_loss"][keep])),
        "wall_s": pa.array(out["wall_s"][keep], mask=np.isnan(out["wall_s"][keep])),
    }, schema=CURVE_SCHEMA)


def check_invalid(invalid: str) -> None:
    if invalid not in INVALID_CHOICES:
        raise ParameterError(f"invalid must be one of {list(INVALID_CHOICES)}, not {invalid!r}",
                             "invalid")


__all__ = [
    "ALIASES",
    "DESCRIPTIONS",
    "BadRow",
    "Layout",
    "Options",
    "Prepared",
    "plan_layout",
    "prepare_chunk",
]
