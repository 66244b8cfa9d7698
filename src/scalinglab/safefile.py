"""The file rules every edge of scalinglab keeps: what it will read, and how it writes.

Base layer (imports nothing of scalinglab but :mod:`scalinglab.errors`), used wherever a path
the user named is opened:

- **Inputs are regular files** (:func:`check_input`, :func:`open_input`): a named pipe, a
  device, a socket or a folder is refused by name *before* anything reads it — reading a FIFO
  blocks forever and ``/dev/zero`` never ends. :func:`open_input` opens without blocking and
  checks the opened descriptor, so a path swapped for a FIFO after the check cannot hang either.
- **Bounded JSON** (:func:`read_json`): a size limit, a nesting-depth limit checked by a linear
  scan before parsing (Python's parser recurses: 100k nested brackets were a RecursionError),
  UTF-8 only; each failure is one :class:`~scalinglab.errors.InputError` naming the file.
- **Outputs never clobber inputs** (:func:`write_output`): refuses a path that is one of the
  command's inputs, a DuckDB file (a run store, by its magic bytes), a symbolic link, a folder
  or anything not a regular file; writes a temporary file in the same folder and renames it
  into place, so a full disk or a kill leaves the old file whole, never half a new one.
- **Logs and sidecars** (:func:`open_log`): ``O_NOFOLLOW`` and a regular-file check, so a
  planted symlink is not written through.
- **Private folders** (:func:`private_dir`): 0700, owned by this user, not a symlink; for
  caches and DuckDB's spill folder, which would otherwise be shared paths in ``/tmp``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from scalinglab.errors import InputError

#: the largest JSON file read back (a saved result with 10k bootstrap draws is a few MB)
MAX_JSON_BYTES = 256 * 1024 * 1024
#: the deepest nesting a saved file may have (scalinglab's own files nest fewer than 10 levels)
MAX_JSON_DEPTH = 64

#: bytes 8..12 of every DuckDB database file
DUCKDB_MAGIC = b"DUCK"


class OutputError(InputError):
    """An output path scalinglab refuses to write (an input, a store, a folder, a symlink)."""


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_input(path: str | Path, *, folder: bool = False, what: str = "") -> Path:
    """``path`` if it is a regular file (or, with ``folder=True``, a folder too); an
    :class:`InputError` naming it otherwise. Only ``stat`` is called: nothing is opened."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        detail = "a broken symbolic link" if os.path.islink(p) else "no such file"
        raise InputError(detail, source=str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror or exc})", source=str(p)) from None
    kind = _kind(st.st_mode)
    if kind is None or (folder and stat.S_ISDIR(st.st_mode)):
        return p
    expected = "a file or folder" if folder else "a regular file"
    raise InputError(f"is {kind}, not {expected}{' ' + what if what else ''}; refused before "
                     "reading (a pipe or device can block or never end)", source=str(p))


def open_input(path: str | Path, mode: str = "rb", encoding: str | None = None) -> IO[Any]:
    """Open a regular file for reading; never blocks on a FIFO (opened ``O_NONBLOCK``, checked
    with ``fstat`` on the descriptor, then switched back to blocking)."""
    p = check_input(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror or exc})", source=str(p)) from None
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise InputError(f"is {kind}, not a regular file", source=str(p))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, mode, encoding=encoding)
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, limit: int = MAX_JSON_BYTES) -> bytes:
    """A regular file's bytes, refused past ``limit`` (one line saying so)."""
    with open_input(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise InputError(f"{size:,} bytes, over the {limit:,}-byte limit for this file",
                             source=str(path))
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"over the {limit:,}-byte limit for this file", source=str(path))
    return data


def json_depth(data: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text, in one linear numpy pass: a quote
    preceded by an odd run of backslashes is escaped, brackets between real quotes are text.
    (A regular expression for strings goes quadratic on ``"\\"\\"...``.)"""
    import numpy as np

    codes = np.frombuffer(data, dtype=np.uint8)
    if codes.size == 0:
        return 0
    index = np.arange(codes.size)
    last_plain = np.maximum.accumulate(np.where(codes != ord("\\"), index, -1))
    quotes = np.flatnonzero(codes == ord('"'))
    before = quotes - 1
    run = np.where(before >= 0, before - last_plain[np.maximum(before, 0)], 0)
    real = np.zeros(codes.size, dtype=np.int32)
    real[quotes[run % 2 == 0]] = 1
    outside = (np.cumsum(real) - real) % 2 == 0
    step = (np.isin(codes, (ord("["), ord("{"))).astype(np.int32)
            - np.isin(codes, (ord("]"), ord("}"))).astype(np.int32)) * outside
    return int(np.cumsum(step).max(initial=0))


def loads_json(data: bytes | str, source: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text with the depth limit; one InputError naming ``source`` for any failure."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    depth = json_depth(raw)
    if depth > max_depth:
        raise InputError(f"JSON nested {depth} levels deep, over the limit of {max_depth}",
                         source=source)
    try:  # utf-8-sig: a BOM (Notepad, PowerShell write one) is not content
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", source=source) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc.msg} at line {exc.lineno})", source=source) from None
    except (RecursionError, ValueError) as exc:  # huge integers: int() digit limit
        raise InputError(f"not readable JSON ({' '.join(str(exc).split())[:120]})",
                         source=source) from None


def read_json(path: str | Path, *, limit: int = MAX_JSON_BYTES,
              max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON file, bounded: a regular file, at most ``limit`` bytes, ``max_depth`` deep, UTF-8."""
    return loads_json(read_bytes(path, limit), str(path), max_depth=max_depth)


# -- saved files: the envelope every saved result shares ------------------------------------------


def _saved_model() -> Any:
    """The pydantic model of what every saved result shares (built once, on first use: pydantic
    costs ~0.1 s to import and most commands never read a saved file)."""
    global _SAVED_MODEL
    if _SAVED_MODEL is not None:
        return _SAVED_MODEL
    import math

    from pydantic import BaseModel, ConfigDict, Field, field_validator

    class SavedEnvelope(BaseModel):
        model_config = ConfigDict(extra="allow")

        kind: str = Field(min_length=1, max_length=100)
        level: float | None = Field(default=None, gt=0, lt=1)
        run_ids: list[str] | None = None
        heldout_ids: list[str] | None = None
        warnings: list[str] | None = None
        notes: list[str] | None = None
        params: dict[str, float | None] | None = None
        draws: list[list[float | None]] | dict[str, Any] | None = None

        @field_validator("params")
        @classmethod
        def _finite_params(cls, v: dict[str, float | None] | None) -> Any:
            for name, x in (v or {}).items():
                if x is not None and not math.isfinite(x):
                    raise ValueError(f"parameter {name!r} is not a finite number")
            return v

    _SAVED_MODEL = SavedEnvelope
    return SavedEnvelope


_SAVED_MODEL: Any = None


def check_saved(data: Any, source: str) -> dict[str, Any]:
    """``data`` read from a saved result file, checked before any arithmetic: an object with a
    ``kind``; where present, ``level`` in (0, 1), ``run_ids``/``warnings``/``notes`` lists of
    text, ``params`` finite numbers, ``draws`` a rectangular table of numbers one column per
    parameter. One :class:`InputError` naming the file and the field otherwise."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object (a saved result), not {_json_type(data)}",
                         source=source)
    try:
        _saved_model().model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "the file"
        raise InputError(f"field {field!r}: {err.get('msg', 'invalid')}"
                         .replace("Value error, ", ""), source=source) from None
    draws, params = data.get("draws"), data.get("params")
    if isinstance(draws, list) and draws:
        widths = sorted({len(row) for row in draws})
        if len(widths) > 1:
            raise InputError(f"field 'draws': rows of different lengths ({widths[0]} and "
                             f"{widths[-1]} values)", source=source)
        if isinstance(params, dict) and widths[0] != len(params):
            raise InputError(f"field 'draws': {widths[0]} values per draw for {len(params)} "
                             "parameters", source=source)
    return data


def _json_type(v: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "true/false", type(None): "null"}.get(type(v), type(v).__name__)


# -- outputs -----------------------------------------------------------------------------------


def is_duckdb_file(path: str | Path) -> bool:
    """Whether ``path`` is a DuckDB database (bytes 8..12 are ``DUCK``); False for anything
    that cannot be opened as a regular file without blocking."""
    try:
        with open_input(path) as fh:
            head = fh.read(12)
    except (InputError, OSError):
        return False
    return len(head) == 12 and head[8:12] == DUCKDB_MAGIC


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_output(path: str | Path, *, inputs: Iterable[str | Path | None] = (),
                 flag: str = "") -> Path:
    """Why ``path`` must not be written, as an :class:`OutputError`; the path otherwise.

    Refused: a symbolic link (the write would land wherever it points), a folder or other
    non-regular file, a DuckDB file (a run store: overwriting one loses every run), one of the
    command's ``inputs``, and a path in a folder that does not exist.
    """
    p = Path(path)
    src = f"{flag} {p}" if flag else str(p)
    if os.path.islink(p):
        raise OutputError("is a symbolic link; refusing to write through it (give the real "
                          "path)", source=src)
    if os.path.lexists(p):
        kind = _kind(os.lstat(p).st_mode)
        if kind is not None:
            raise OutputError(f"is {kind}; an output must be a file path", source=src)
        if is_duckdb_file(p):
            raise OutputError("is a DuckDB file (a run store); refusing to overwrite it",
                              source=src)
        for other in inputs:
            if other is not None and _same(p, Path(other)):
                raise OutputError("is one of this command's inputs; refusing to overwrite it "
                                  "(choose another output path)", source=src)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"the folder {parent} does not exist", source=src)
    if not parent.is_dir():
        raise OutputError(f"{parent} is not a folder", source=src)
    return p


def write_output(path: str | Path, data: str | bytes | Callable[[IO[bytes]], None], *,
                 inputs: Iterable[str | Path | None] = (), flag: str = "") -> Path:
    """Write ``data`` (text as UTF-8, bytes, or a function writing to a binary file object) to
    ``path`` atomically, after :func:`check_output`: a temporary file in the same folder,
    flushed, then renamed over ``path``. A failure (full disk, permissions) is one
    :class:`OutputError`, the temporary file removed and any old file left whole."""
    p = check_output(path, inputs=list(inputs), flag=flag)
    src = f"{flag} {p}" if flag else str(p)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write here ({_why(exc)})", source=src) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(p))
        os.replace(tmp, p)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"cannot write it ({_why(exc)}); nothing was changed",
                          source=src) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def _mode_for(p: Path) -> int:
    """An existing file keeps its mode; a new one gets 0666 less the umask (mkstemp's 0600
    would surprise whoever shares the folder)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(p).st_mode)
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def output_dir(path: str | Path, *, flag: str = "") -> Path:
    """A folder to write files into (``report --figures DIR``): created if missing; a file, a
    symlink or a DuckDB store there is refused in one line."""
    p = Path(path)
    src = f"{flag} {p}" if flag else str(p)
    if os.path.islink(p):
        raise OutputError("is a symbolic link; give the real folder", source=src)
    if os.path.lexists(p) and not p.is_dir():
        raise OutputError("is a file, not a folder", source=src)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder ({_why(exc)})", source=src) from None
    return p


def open_log(path: str | Path, mode: str = "w") -> IO[str]:
    """Open a log or sidecar file for writing without following a symlink (``O_NOFOLLOW``)
    and without blocking on a FIFO; anything but a regular file is refused."""
    p = Path(path)
    flags = (os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
             | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0))
    if os.path.islink(p):
        raise OutputError("is a symbolic link; refusing to write through it", source=str(p))
    try:
        fd = os.open(p, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputError("is a symbolic link; refusing to write through it",
                              source=str(p)) from None
        if exc.errno == errno.ENXIO:
            raise OutputError("is a named pipe (FIFO), not a file", source=str(p)) from None
        raise OutputError(f"cannot write it ({_why(exc)})", source=str(p)) from None
    kind = _kind(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise OutputError(f"is {kind}, not a file", source=str(p))
    os.set_blocking(fd, True)
    return os.fdopen(fd, mode.replace("b", ""), encoding="utf-8")


def private_dir(path: str | Path) -> Path:
    """A folder only this user can enter (0700), created if missing. A folder that is a
    symlink or belongs to someone else is refused (another user could read or plant files in
    it); one of ours with looser permissions is tightened."""
    p = Path(path)
    try:
        p.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the private folder ({_why(exc)})",
                          source=str(p)) from None
    st = os.lstat(p)
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError("is not a folder (a symlink or a file); refusing to use it as a "
                          "private folder", source=str(p))
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise OutputError("belongs to another user; refusing to use it as a private folder",
                          source=str(p))
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(p, 0o700)
    return p


def confined_mirror(root: str | Path, dest: str | Path) -> list[str]:
    """Mirror the folder ``root`` into ``dest`` (an empty folder) so that a reader given
    ``dest`` sees only what lies inside ``root``: folders are made, each regular file becomes a
    link to its real path; a symlink whose target leaves ``root``, and anything that is not a
    regular file or folder (a FIFO, a device), is left out. Returns those left out, relative to
    ``root`` (for a note). Used for tracker stores read by third-party code that follows links
    (an MLflow param file linked to ``/etc/passwd`` was imported as a param)."""
    root_real = os.path.realpath(root)
    skipped: list[str] = []
    for here, dirs, files in os.walk(root_real):
        rel_dir = os.path.relpath(here, root_real)
        target_dir = os.path.join(dest, rel_dir) if rel_dir != "." else str(dest)
        os.makedirs(target_dir, exist_ok=True)
        for name in sorted(dirs + files):
            full = os.path.join(here, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            real = os.path.realpath(full)
            inside = real == root_real or real.startswith(root_real + os.sep)
            try:
                st = os.stat(full)
            except OSError:
                skipped.append(rel)
                continue
            if not inside or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                skipped.append(rel)
                if name in dirs:
                    dirs.remove(name)
                continue
            if stat.S_ISREG(st.st_mode) or os.path.islink(full):
                os.symlink(real, os.path.join(target_dir, name))
    return skipped


def user_temp_dir(name: str) -> Path:
    """``<system temp>/<name>-<uid>``, private to this user (see :func:`private_dir`)."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return private_dir(Path(tempfile.gettempdir()) / f"{name}-{uid}")


__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "OutputError", "check_input", "check_output", "check_saved", "confined_mirror",
           "is_duckdb_file", "json_depth", "loads_json", "open_input", "open_log", "output_dir",
           "private_dir", "read_bytes", "read_json", "user_temp_dir", "write_output"]
