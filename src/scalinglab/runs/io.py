"""Read run tables from CSV, TSV, Parquet or JSONL, a chunk at a time.

Cells arrive as text (CSV) or native values (Parquet, JSONL) and are validated later by
:mod:`scalinglab.runs.validate`, so a bad cell is reported by file, row and column rather than
surfacing as a dtype error. Large files are streamed: a CSV is cut into blocks of about 8 MB at
record ends, each parsed by Arrow, a Parquet file a row group at a time, a JSONL file some
tens of thousands of lines at a time, so memory stays bounded whatever the file's size.

Rows are counted as a person counts them below the header (``row 3``); CSV and JSONL rows
also give their line in the file (``row 3 (line 4)``), found by re-reading the file only when
a message needs one, so quoted newlines and blank lines are counted right.

A CSV chunk stays an Arrow table from parse to store, so ``scalinglab import runs.csv`` never
loads pandas (its import was 0.2 s of a million-row import's 1.4 s with bytecode, 0.45 s
without); Parquet and JSONL chunks are pandas frames (their cells may be lists, dicts, dates).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from scalinglab.errors import InputError, ParameterError
from scalinglab.safefile import check_input
from scalinglab.values import parse_pairs  # noqa: F401  (re-exported: the one KEY=VALUE parser)

if TYPE_CHECKING:
    import pandas as pd

FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
           ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
#: bytes per CSV block (Arrow parses a block at a time)
CSV_BLOCK_BYTES = 8 << 20
#: bytes of the first CSV block: its rows are validated before the store is opened, and
#: nothing is written until they are (8 MB took 0.1 s, with the writer waiting)
FIRST_CSV_BLOCK_BYTES = 1 << 20
#: the longest row a CSV may have (a cell that large is not a run's value)
MAX_ROW_BYTES = 8 << 20
#: a byte that ``bytes.strip()`` keeps (ASCII whitespace is what it strips)
_NOT_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c]")
#: the most columns a file of runs may have: the import's cost grows faster than its width
#: (2k columns 5 s, 20k columns 110 s, 100k did not finish), and no run has thousands of values
MAX_COLUMNS = 4096
#: rows per chunk for Parquet and JSONL
CHUNK_ROWS = 65_536


@dataclass
class RawChunk:
    """Rows of a file as read: ``cells`` under the file's column names (an Arrow table for CSV
    and TSV, a pandas frame for Parquet and JSONL), ``start`` (0-based data row of its first
    row) and ``rows``, each row's 0-based data row when they are not simply consecutive (a CSV
    line with the wrong number of cells was left out)."""

    cells: pa.Table | pd.DataFrame
    start: int
    rows: np.ndarray | None = None
    body: bytes | memoryview | None = None  # a CSV block read with numbers as numbers

    def __len__(self) -> int:
        return len(self.cells)

    @property
    def columns(self) -> list[str]:
        cells = self.cells
        return list(cells.column_names) if isinstance(cells, pa.Table) else \
            [str(c) for c in cells.columns]

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as a pandas frame (an Arrow table's columns stay Arrow-backed)."""
        if isinstance(self.cells, pa.Table):
            import pandas as pd

            return self.cells.to_pandas(types_mapper=pd.ArrowDtype)
        return self.cells


class TableReader:
    """A file of runs, opened: its ``columns`` (header), its chunks, and row labels."""

    def __init__(self, path: str | Path, chunk_rows: int = CHUNK_ROWS,
                 csv_block_bytes: int = CSV_BLOCK_BYTES) -> None:
        self.path = Path(path)
        self.source = str(path)
        if not self.path.exists():
            raise InputError("no such file", source=self.source)
        if self.path.is_dir():
            raise InputError("is a folder, not a file of runs", source=self.source)
        check_input(self.path)  # a FIFO or device: refused before reading
        fmt = FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise InputError(f"unknown format {self.path.suffix!r}; use .csv, .tsv, .parquet "
                             "or .jsonl", source=self.source)
        self.format = fmt
        self.chunk_rows = chunk_rows
        self.csv_block_bytes = csv_block_bytes
        self._lines: dict[int, int] = {}  # data row -> line (JSONL: filled while reading)
        #: CSV columns to parse as numbers when a block allows (set by the importer)
        self.numeric: set[str] = set()
        self.skipped_rows: list[str] = []
        self.columns = self._header()

    # -- the header -----------------------------------------------------------------------

    def _header(self) -> list[str] | None:
        """Column names; None for JSONL (each chunk has its own keys)."""
        try:
            if self.format in ("csv", "tsv"):
                with self.path.open(newline="", encoding="utf-8-sig") as fh:
                    header = next(csv.reader(fh, delimiter=self._delimiter), None)
                if not header or all(not h.strip() for h in header):
                    raise InputError("no header row (the first line must name the columns)",
                                     source=self.source)
                self._one_column_of_many(header)
                return self._not_too_wide([h.strip() for h in header])
            if self.format == "parquet":
                import pyarrow.parquet as pq

                return self._not_too_wide(
                    [str(c) for c in pq.ParquetFile(self.path).schema_arrow.names])
        except InputError:
            raise
        except UnicodeDecodeError:
            raise InputError("line 1: not UTF-8 text", source=self.source) from None
        except Exception as exc:  # pyarrow/csv errors carry their own words
            raise InputError(f"cannot read {self.format}: {_one_line(exc)}",
                             source=self.source) from None
        return None

    def _one_column_of_many(self, header: list[str]) -> None:
        """A header read as one column that holds another separator is a file separated by
        it (a European spreadsheet's ';', a TSV named .csv): said so, not "missing column
        'N'; columns are ['name;N;D;loss']; map a column to it with --map", which it was."""
        if len(header) != 1:
            return
        own = "tab" if self.format == "tsv" else "','"
        for sep, name, fix in ((";", "';'", "a CSV with ',' between cells and '.' in numbers"),
                               ("\t", "tab", "a .tsv (rename it)"),
                               (",", "','", "a .csv (rename it)")):
            if sep != self._delimiter and sep in header[0]:
                raise InputError(
                    f"line 1: the header is one column, {header[0][:60]!r}: the file is "
                    f"separated by {name}, but a {self.path.suffix} file is read as separated "
                    f"by {own}; save it as {fix}", source=self.source)

    def _not_too_wide(self, columns: list[str]) -> list[str]:
        if len(columns) > MAX_COLUMNS:
            raise InputError(f"{len(columns):,} columns, over the limit of {MAX_COLUMNS:,} for a "
                             "file of runs; keep the columns that matter (N, D, loss, the "
                             "hyperparameters) and drop the rest", source=self.source)
        return columns

    @property
    def _delimiter(self) -> str:
        return "," if self.format == "csv" else "\t"

    # -- chunks ---------------------------------------------------------------------------

    def chunks(self, skip_ragged: bool = False) -> Iterator[RawChunk]:
        """The file's rows, a chunk at a time (see the module docstring for sizes).

        ``skip_ragged`` leaves out CSV lines with the wrong number of cells (recorded in
        ``skipped_rows``) instead of raising.
        """
        try:
            if self.format in ("csv", "tsv"):
                yield from self._csv_chunks(skip_ragged)
            elif self.format == "parquet":
                yield from self._parquet_chunks()
            else:
                yield from self._jsonl_chunks()
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"cannot read {self.format}: {_one_line(exc)}",
                             source=self.source) from None

    def _csv_chunks(self, skip_ragged: bool) -> Iterator[RawChunk]:
        """CSV in blocks of about ``csv_block_bytes``, cut at record ends, each parsed by Arrow.

        Arrow's own streaming reader was measured holding the whole 229 MB test file in
        memory (it reads ahead); cutting the bytes here keeps one block in memory. A record
        ends at a newline outside quotes: where the count of ``"`` since the block's start (a
        record start) is even, as doubled quotes inside a quoted cell count two. A block with
        what is left of the last one is at most ``csv_block_bytes`` (unless a row is longer),
        and Arrow parses it as one block, so each column is one array: no copy joins its
        pieces (Arrow's 1 MB blocks made 16 pieces a column, 0.2 to 0.4 s of copies per
        million rows). A row of :data:`MAX_ROW_BYTES` or more is refused.
        """
        assert self.columns is not None
        names = self.columns
        record = 0  # data records before the current block
        with self.path.open("rb") as fh:
            if fh.read(3) != b"\xef\xbb\xbf":
                fh.seek(0)
            # the first block is small, so the store starts writing while the rest is read
            size = min(FIRST_CSV_BLOCK_BYTES, self.csv_block_bytes)
            carry = b""
            while True:  # past the header record
                block = fh.read(size)
                carry += block
                # lines that end in a lone CR (Excel for Mac's "CSV (Macintosh)") are cut at
                # CRs: cut at LFs, every row was one unfinished record ("no rows to import")
                eol = _line_end(carry, eof=not block)
                end = None if eol is None else _last_record_end(carry, first=True, eol=eol)
                if end is not None or not block:
                    carry = carry[end:] if end is not None else b""
                    break
            eof = False
            while not eof:
                if len(carry) >= MAX_ROW_BYTES:  # a record start, and no record end since
                    raise self._row_too_long()
                block = fh.read(max(size - len(carry), 1))
                size = self.csv_block_bytes
                eof = not block
                data = carry + block
                cut = len(data) if eof else _last_record_end(data, eol=eol)
                if cut is None:  # no record ends in this block: read on
                    carry = data
                    continue
                # the records as a view, not a copy of the block; a blank block is skipped
                # without stripping a copy of it (together 0.15 s per million rows)
                body, carry = memoryview(data)[:cut], data[cut:]
                if _NOT_BLANK.search(data, 0, cut) is None:
                    continue
                table, ragged = self._parse_block(body, names)
                if ragged and not skip_ragged:
                    n, expected, actual = ragged[0]
                    raise InputError(f"expected {expected} cells, got {actual}",
                                     source=self.source, row=self.label(record + n))
                rows = np.arange(record, record + table.num_rows + len(ragged))
                if ragged:
                    skipped = [record + n for n, _, _ in ragged]
                    labels = self.labels(skipped)
                    for (_, expected, actual), at in zip(ragged, skipped, strict=True):
                        self.skipped_rows.append(
                            f"{labels[at]}: expected {expected} cells, got {actual}")
                    rows = np.setdiff1d(rows, skipped)
                record += table.num_rows + len(ragged)
                if table.num_rows:
                    typed = any(pa.types.is_floating(t) for t in table.schema.types)
                    yield RawChunk(table, int(rows[0]), rows=None if not ragged else rows,
                                   body=body if typed else None)

    def _parse_block(self, body: bytes | memoryview, names: list[str], typed: bool = True
                     ) -> tuple[pa.Table, list[tuple[int, int, int]]]:
        """Parse complete records; ragged ones are left out and returned as
        ``(index in the block, expected cells, actual cells)``.

        Columns named in ``numeric`` are parsed as numbers by Arrow when every cell of the
        block is a plain number or a missing token (the common case; Arrow's parse rounds as
        ``float()`` does), which spares materialising their text. A block where one is not
        (``125M``, ``2,048``, ``abc``) is parsed as text, for the one numeric grammar
        (:mod:`scalinglab.runs.cells`) to read or to report.
        """
        ragged: list[tuple[int, int, int]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            ragged.append((row.number, row.expected_columns, row.actual_columns))
            return "skip"

        def parse(threads: bool, numbers: bool) -> pa.Table:
            ragged.clear()
            types = {c: (pa.float64() if numbers and c in self.numeric else pa.string())
                     for c in names}
            return pacsv.read_csv(
                pa.BufferReader(body),
                read_options=pacsv.ReadOptions(column_names=names, use_threads=threads,
                                               encoding="utf8", block_size=len(body) + 1),
                parse_options=pacsv.ParseOptions(delimiter=self._delimiter,
                                                 newlines_in_values=True,
                                                 invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, strings_can_be_null=False,
                    quoted_strings_can_be_null=False, null_values=_NULL_SPELLINGS))

        numbers = typed and bool(self.numeric)
        try:
            try:
                table = parse(threads=True, numbers=numbers)
            except pa.ArrowInvalid:
                if not numbers:
                    raise
                numbers = False
                table = parse(threads=True, numbers=False)
            if any(n is None for n, _, _ in ragged):  # numbered only when read serially
                table = parse(threads=False, numbers=numbers)
        except pa.ArrowInvalid as exc:
            raise self._csv_error(exc) from None
        return table, [(int(n) - 1, e, a) for n, e, a in ragged]

    def as_text(self, chunk: RawChunk) -> RawChunk:
        """The same rows with every cell as written (for messages that quote cells)."""
        if chunk.body is None:
            return chunk
        assert self.columns is not None
        table, _ = self._parse_block(chunk.body, self.columns, typed=False)
        return RawChunk(table, chunk.start, chunk.rows)

    def _csv_error(self, exc: Exception) -> InputError:
        text = _one_line(exc)
        if "UTF8" in text or "UTF-8" in text:
            line = _first_bad_utf8_line(self.path)
            return InputError("not UTF-8 text" + (f" (line {line})" if line else ""),
                              source=self.source)
        if "straddl" in text or "block size" in text:  # a cell Arrow cannot place in a block
            return self._row_too_long()
        return InputError(f"cannot read csv: {text}", source=self.source)

    def _row_too_long(self) -> InputError:
        return InputError(f"a row longer than {MAX_ROW_BYTES >> 20} MB (a cell that large is "
                          "not a run's value); shorten or drop that column", source=self.source)

    def _parquet_chunks(self) -> Iterator[RawChunk]:
        import pyarrow.parquet as pq

        start = 0
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=self.chunk_rows):
            frame = pa.Table.from_batches([batch]).to_pandas(types_mapper=_parquet_types)
            frame.columns = [str(c) for c in frame.columns]
            yield RawChunk(frame, start)
            start += batch.num_rows

    def _jsonl_chunks(self) -> Iterator[RawChunk]:
        start = 0
        records: list[dict] = []
        lines: list[int] = []
        # utf-8-sig: a BOM (Windows tools write one) is not content, as in a CSV
        with self.path.open(encoding="utf-8-sig") as fh:
            lineno = 0
            while True:
                try:
                    line = fh.readline()
                except UnicodeDecodeError:
                    raise InputError(f"line {lineno + 1}: not UTF-8 text",
                                     source=self.source) from None
                if not line:
                    break
                lineno += 1
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"line {lineno}: invalid JSON ({exc.msg})",
                                     source=self.source) from None
                if not isinstance(obj, dict):
                    raise InputError(f"line {lineno}: expected a JSON object per line",
                                     source=self.source)
                records.append(obj)
                lines.append(lineno)
                if len(records) >= self.chunk_rows:
                    yield self._jsonl_chunk(records, lines, start)
                    start += len(records)
                    records, lines = [], []
        if records:
            yield self._jsonl_chunk(records, lines, start)

    def _jsonl_chunk(self, records: list[dict], lines: list[int], start: int) -> RawChunk:
        for i, line in enumerate(lines):
            self._lines[start + i] = line
        import pandas as pd

        keys = {k for r in records for k in r}
        self._not_too_wide(list(keys))
        frame = pd.DataFrame.from_records(records)
        frame = frame.astype(object)
        frame.columns = [str(c).strip() for c in frame.columns]
        return RawChunk(frame, start)

    # -- labels ---------------------------------------------------------------------------

    def label(self, row: int) -> str:
        """How a person finds data row ``row`` (0-based): ``row 3 (line 4)`` or ``row 3``."""
        return self.labels([row])[row]

    def labels(self, rows: Sequence[int]) -> dict[int, str]:
        rows = sorted({int(r) for r in rows})
        if self.format == "parquet":
            return {r: f"row {r + 1}" for r in rows}
        if self.format == "jsonl":
            return {r: f"row {r + 1}" + (f" (line {self._lines[r]})" if r in self._lines
                                         else "") for r in rows}
        lines = csv_lines(self.path, self._delimiter, rows)
        return {r: f"row {r + 1}" + (f" (line {lines[r]})" if r in lines else "") for r in rows}


#: cells Arrow reads as missing in a numeric column (the missing tokens, as usually written;
#: other spellings make the block be read as text, where any case is missing)
_NULL_SPELLINGS = ["", "nan", "NaN", "NAN", "na", "NA", "n/a", "N/A", "null", "NULL", "Null",
                   "none", "None", "NONE"]


def _line_end(head: bytes, eof: bool) -> bytes | None:
    """The file's line end, from its header's: ``b"\\r"`` where that is a lone CR (classic
    Mac), else ``b"\\n"`` (LF and CRLF files both end their records at an LF); None while
    ``head`` (the file's start) does not yet show it."""
    for m in re.finditer(rb"[\r\n]", head):
        at = m.start()
        if head.count(b'"', 0, at) % 2 == 0:  # outside quotes: the header's end
            if head[at:at + 1] == b"\n":
                return b"\n"
            if at + 1 == len(head):  # a CR, and the LF that may follow is not read yet
                return b"\n" if eof else None
            return b"\n" if head[at + 1:at + 2] == b"\n" else b"\r"
    return b"\n" if eof else None


def _last_record_end(data: bytes, first: bool = False, eol: bytes = b"\n") -> int | None:
    """Offset just past the last (or, with ``first``, the first) line end ``eol`` of ``data``
    that is outside quotes; None if there is none. ``data`` starts at a record start.

    Counting quotes with ``bytes.count`` (memchr speed) and stepping over line ends from the
    end: files rarely quote a newline, so this is usually one pass.
    """
    if first:
        at = data.find(eol)
        while at >= 0 and data.count(b'"', 0, at) % 2:
            at = data.find(eol, at + 1)
        return None if at < 0 else at + 1
    at = data.rfind(eol)
    quotes = data.count(b'"', 0, at) if at >= 0 else 0
    while at >= 0 and quotes % 2:
        prev = data.rfind(eol, 0, at)
        quotes -= data.count(b'"', prev + 1 if prev >= 0 else 0, at)
        at = prev
    return None if at < 0 else at + 1


def _parquet_types(typ: pa.DataType) -> pd.ArrowDtype | None:
    """Keep Parquet's text and numbers Arrow-backed (no copies); lists become Python objects."""
    import pandas as pd

    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_floating(typ) \
            or pa.types.is_integer(typ) or pa.types.is_boolean(typ):
        return pd.ArrowDtype(typ)
    return None


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    """Python's csv reader refuses cells over 128 KB (a 200 KB cell was a traceback while
    wording another row's message); Arrow reads cells up to the block size, so this does too."""
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def csv_lines(path: Path, delimiter: str, rows: Sequence[int]) -> dict[int, int]:
    """The first physical line of each data row in ``rows`` (0-based rows below the header).

    Counts as Arrow's reader does: blank lines are not rows, a quoted cell may span lines.
    Reads the file up to the last row asked for; used only to word messages.
    """
    wanted = set(rows)
    if not wanted:
        return {}
    last = max(wanted)
    out: dict[int, int] = {}
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh, \
            _field_limit(CSV_BLOCK_BYTES):
        reader = csv.reader(fh, delimiter=delimiter)
        line_after = 0
        row = -1  # the header is row -1
        for record in reader:
            first_line = line_after + 1
            line_after = reader.line_num
            if not record:  # a blank line
                continue
            if row in wanted:
                out[row] = first_line
            if row >= last:
                break
            row += 1
    return out


def _first_bad_utf8_line(path: Path) -> int | None:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return lineno
    return None


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def read_table(path: str | Path) -> pd.DataFrame:
    """A whole (small) file as one frame of raw cells, with ``attrs['row_labels']``.

    For fit files and hyperparameter grids, which are read whole; the run import streams
    instead (:class:`TableReader`).
    """
    import pandas as pd

    reader = TableReader(path)
    chunks = list(reader.chunks())
    if not chunks:
        frame = pd.DataFrame(columns=reader.columns or [])
    else:
        frame = pd.concat([c.frame for c in chunks], ignore_index=True) if len(chunks) > 1 \
            else chunks[0].frame
    frame.attrs["row_labels"] = _LazyLabels(reader, len(frame))
    return frame


class _LazyLabels(Mapping[int, str]):
    """``row -> label`` computed on first use (a message needs only a few)."""

    def __init__(self, reader: TableReader, n: int) -> None:
        self.reader = reader
        self.n = n

    def __getitem__(self, row: int) -> str:
        if not 0 <= int(row) < self.n:
            raise KeyError(row)
        return self.reader.label(int(row))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n

    def __deepcopy__(self, memo: dict) -> _LazyLabels:
        return self


def apply_mapping(df: pd.DataFrame, mapping: Mapping[str, str] | None,
                  source: str) -> pd.DataFrame:
    """Rename file columns to scalinglab names: ``{"loss": "final_loss"}`` means loss <- final_loss.

    A column displaced by a mapped one (the file's own ``loss`` when ``loss=final_loss``) is
    kept as ``raw_loss``, not dropped.
    """
    from scalinglab.runs.columns import choose_columns

    mapping = dict(mapping or {})
    choice = choose_columns([str(c) for c in df.columns], (), mapping, source)
    renamed = df.rename(columns=choice.rename)
    renamed.attrs = df.attrs
    return renamed


def scale_columns(df: pd.DataFrame | pa.Table, scale: Mapping[str, str] | None,
                  source: str) -> pd.DataFrame | pa.Table:
    """Multiply columns given in other units, e.g. ``{"N": "1e6"}`` for parameters in millions
    (the command line's ``--units N=1e6``).

    Cells that are not numbers are left as they are, for validation to report with their row.
    An Arrow table (a CSV chunk) stays one, its scaled columns float64 with missing cells null,
    unless a scaled column holds a cell that is not a number: then it is a pandas frame, whose
    object columns keep such a cell beside the scaled numbers.
    """
    if not scale:
        return df
    from scalinglab.runs import arrays as A
    from scalinglab.runs.cells import parse_cells

    if isinstance(df, pa.Table):
        table = df
        for col, factor in scale.items():
            f = _scale_factor(col, factor, table.column_names, source)
            cells = parse_cells(table.column(col))
            if cells.bad.any():
                import pandas as pd

                return scale_columns(df.to_pandas(types_mapper=pd.ArrowDtype), scale, source)
            with np.errstate(over="ignore"):
                scaled = cells.values * f
            table = table.set_column(table.column_names.index(col), col,
                                     A.numbers(scaled, missing=cells.missing))
        return table
    import pandas as pd

    out = df.copy()
    out.attrs = df.attrs
    for col, factor in scale.items():
        f = _scale_factor(col, factor, [str(c) for c in out.columns], source)
        cells = parse_cells(out[col])
        with np.errstate(over="ignore"):
            scaled = cells.values * f
        keep = cells.bad | cells.missing
        if keep.any():
            values = out[col].astype(object).to_numpy()
            values[~keep] = scaled[~keep]
            out[col] = pd.Series(values, index=out.index, dtype=object)
        else:
            out[col] = scaled
    return out


def _scale_factor(col: str, factor: str, columns: list[str], source: str) -> float:
    """``--units COL=FACTOR``'s factor, once its column is known to be in the file."""
    from scalinglab.errors import did_you_mean
    from scalinglab.runs.cells import parse_number

    if col not in columns:
        raise InputError(f"units {col}={factor}: no column {col!r} in the file"
                         f"{did_you_mean(col, columns)}", source=source)
    try:
        f = parse_number(factor)
    except ValueError:
        raise ParameterError(f"units {col}={factor}: {factor!r} is not a number",
                             "units") from None
    if not np.isfinite(f) or f <= 0:
        raise ParameterError(f"units {col}={factor}: the factor must be a positive number",
                             "units")
    return f


def apply_scale(df: pd.DataFrame, scale: Mapping[str, str] | None, source: str) -> pd.DataFrame:
    """Older name of :func:`scale_columns`."""
    return scale_columns(df, scale, source)


__all__ = ["FORMATS", "RawChunk", "TableReader", "apply_mapping", "csv_lines", "parse_pairs",
           "read_table", "scale_columns"]
