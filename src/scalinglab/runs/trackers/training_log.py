"""Runs from plain-text training logs: one run per log file, lines matched by a format's regexes.

A format (:class:`LogFormat`) is data: the regex of a training line (named groups ``step`` and
``loss``, optionally ``tokens``, ``lr``, ``batch_size``, ``total`` for the planned last step), of
an evaluation line (``step``, ``eval_loss``), of lines that set hyperparameters, and of a line
saying the run failed. Presets cover nanoGPT, Megatron-LM and scalinglab's own sweep runner
(``scalinglab sweep run --log DIR``, whose lines the ``scalinglab_*`` functions below write, so
the writer and the reader cannot drift apart); ``pattern=`` takes a regex for anything else.

Wall time along the curve is read where the log has a clock: a ``time`` group (seconds since the
run started; scalinglab's own lines carry one), a timestamp opening the line (``2024-05-01
10:00:00``, ``[2024-05-01T10:00:00.123]``: seconds since the log's first timestamp), or
Megatron's ``elapsed time per iteration (ms)`` summed over the iterations between log lines.
nanoGPT's ``time 12.34ms`` is the time of one iteration only, so it gives no clock.

Whatever the format, a log whose last loss line is followed by a Python traceback is a crashed
run (kept as failed, with the exception's line as the reason), and so is one that stops well
before its planned last step.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from scalinglab.errors import InputError, ParameterError
from scalinglab.runs.trackers.base import (
    RawRun,
    ReadSpec,
    TrackerImport,
    build,
    series,
    tracker_run_id,
)
from scalinglab.runs.trackers.final import FinalRule
from scalinglab.runs.trackers.settings import RunSettings

#: a number as training loops print them: 3.2100, 3.210E+00, 1e-4, nan, inf
NUM = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|[nN]a[nN]|[iI]nf)"
LOG_SUFFIXES = (".log", ".txt", ".out", ".err")
#: a log compressed to keep it (``train.log.gz``) is read as the log it holds
_GZ = ".gz"
#: a terminal escape sequence (colour, cursor movement): loguru, rich and colorlog write them
#: into logs captured from a terminal, where they split 'iter 10' from the colour before it
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):")
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Interrupt|Exit)\b.*")


class _Then:
    """``first`` then, anywhere after it, ``then``: the two regexes a lazy ``first.*?then``
    would join, matched in two linear passes. One regex backtracked quadratically on a long
    line repeating ``first`` (a 1 MB Megatron line did not finish): each start rescanned the
    rest of the line. The match is the same: the leftmost ``first``, then the first ``then``
    after it."""

    def __init__(self, first: str, then: str) -> None:
        self.first = re.compile(first)
        self.then = re.compile(then)
        self.pattern = f"{first}.*?{then}"
        self.groupindex = {**self.first.groupindex, **self.then.groupindex}

    def search(self, line: str) -> _Joined | None:
        m = self.first.search(line)
        if m is None:
            return None
        n = self.then.search(line, m.end())
        return None if n is None else _Joined({**m.groupdict(), **n.groupdict()})


class _Joined(dict):
    """The named groups of a :class:`_Then` match, read like a match object's."""

    def groupdict(self) -> dict[str, str | None]:
        return dict(self)


#: a step beyond int64 cannot be stored (it wrapped to a negative step before)
_MAX_STEP = 2**63 - 1


@dataclass(frozen=True)
class LogFormat:
    """How to read one kind of training log.

    ``step_offset``: optimiser updates done when a training line says step ``s`` are
    ``s + step_offset`` (nanoGPT prints ``iter 0`` after the first update). ``planned``: the
    hyperparameter holding the planned last step, when the train line has no ``total`` group.
    ``renames``: hyperparameters whose usual meaning differs in this format (nanoGPT's
    ``batch_size`` is sequences per micro-step, not the batch).
    """

    name: str
    train: re.Pattern[str] | _Then
    eval: re.Pattern[str] | _Then | None = None
    fields: tuple[re.Pattern[str], ...] = ()  # searched in each train line: more series
    params: tuple[re.Pattern[str], ...] = ()  # key/value groups, a 'pairs' group, or named groups
    failure: re.Pattern[str] | None = None
    nan_line: re.Pattern[str] | _Then | None = None  # a step whose loss was non-finite ('step')
    step_offset: int = 0
    planned: str | None = None
    renames: Mapping[str, str] = field(default_factory=dict)
    example: str = ""


NANOGPT = LogFormat(
    name="nanogpt",
    train=re.compile(rf"^iter (?P<step>\d+): loss (?P<loss>{NUM}),"),
    eval=re.compile(rf"^step (?P<step>\d+): train loss {NUM}, val loss (?P<eval_loss>{NUM})"),
    params=(
        re.compile(r"^tokens per iteration will be: (?P<tokens_per_iter>[\d,]+)"),
        re.compile(r"^number of parameters: (?P<reported_params>[\d.]+M)"),
        # configurator.py prints the config file it reads and each --key=value override
        # possessive and without a trailing pattern: linear on a 100 KB line (the lazy value
        # before an optional comment backtracked quadratically); the value is stripped after
        re.compile(r"^(?:Overriding: )?(?P<key>[a-z_][a-z0-9_]*+) = (?P<value>[^#]*+)"),
    ),
    step_offset=1,
    planned="max_iters",
    renames={"batch_size": "micro_batch_size", "tokens_per_iter": "batch_tokens"},
    example="iter 100: loss 3.2100, time 12.34ms, mfu 12.34%",
)

MEGATRON = LogFormat(
    name="megatron",
    train=_Then(r"iteration\s++(?P<step>\d++)\s*+/\s*+(?P<total>\d++)\s*+\|",
                rf"\blm loss:\s*+(?P<loss>{NUM})"),
    eval=_Then(r"validation loss at iteration\s++(?P<step>\d++)\b",
               rf"\blm loss value:\s*+(?P<eval_loss>{NUM})"),
    fields=(
        re.compile(rf"\blearning rate:\s*(?P<lr>{NUM})"),
        re.compile(r"\bglobal batch size:\s*(?P<batch_size>\d+)"),
        re.compile(r"\bconsumed samples:\s*(?P<consumed_samples>\d+)"),
        re.compile(r"\bconsumed tokens:\s*(?P<tokens>\d+)"),
        # the mean over the iterations since the last log line: summed, the run's clock
        re.compile(rf"\belapsed time per iteration \(ms\):\s*(?P<iter_ms>{NUM})"),
    ),
    # Megatron leaves 'lm loss' out of a line whose average is not > 0 (NaN included) and
    # counts the iterations with a NaN loss instead: such a line is a diverged step
    nan_line=_Then(r"iteration\s++(?P<step>\d++)\s*+/", r"\bnumber of nan iterations:\s*+[1-9]"),
    # print_args: "  seq_length ...................................... 2048"
    params=(re.compile(r"^\s+(?P<key>[a-z_][a-z0-9_]*) \.{2,} (?P<value>\S+)\s*$"),),
    step_offset=0,
    planned="train_iters",
    example="iteration      100/    5000 | ... | lm loss: 3.210000E+00 | ...",
)

SCALINGLAB = LogFormat(
    name="scalinglab",
    train=re.compile(rf"^step (?P<step>\d+)/(?P<total>\d+) \| tokens (?P<tokens>\d+) \| "
                     rf"loss (?P<loss>{NUM})(?: \| lr (?P<lr>{NUM}))?(?: \| time (?P<time>{NUM})s)?"),
    eval=re.compile(rf"^eval step (?P<step>\d+) \| tokens \d+ \| eval_loss (?P<eval_loss>{NUM})"),
    params=(re.compile(r"^scalinglab: (?P<pairs>.*)$"),),
    failure=re.compile(r"^failed: (?P<error>.+)$"),
    step_offset=0,
    renames={"run_id": "sweep_run_id"},
    example="step 100/1000 | tokens 409600 | loss 3.210000 | lr 1.000e-03",
)

FORMATS: dict[str, LogFormat] = {f.name: f for f in (NANOGPT, MEGATRON, SCALINGLAB)}


# -- scalinglab's own log lines (the sweep runner writes them; SCALINGLAB reads them) --------


def scalinglab_header(**values: Any) -> str:
    """``scalinglab: run_id=r-... N=... D=... lr=... batch_tokens=... seq_len=... steps=...``"""
    return "scalinglab: " + " ".join(f"{k}={v}" for k, v in values.items())


def scalinglab_step(step: int, steps: int, tokens: int, loss: float, lr: float | None = None,
                    wall_s: float | None = None) -> str:
    """``step 100/1000 | tokens 409600 | loss 3.210000 | lr 1.0000e-03 | time 12.345s``
    (``time``: wall-clock seconds since the run started)."""
    line = f"step {step}/{steps} | tokens {tokens} | loss {loss:.6f}"
    line += f" | lr {lr:.4e}" if lr is not None else ""
    return line + (f" | time {wall_s:.3f}s" if wall_s is not None else "")


def scalinglab_eval(step: int, tokens: int, eval_loss: float) -> str:
    return f"eval step {step} | tokens {tokens} | eval_loss {eval_loss:.6f}"


def scalinglab_failure(error: str) -> str:
    return "failed: " + " ".join(str(error).split())


# -- reading ---------------------------------------------------------------------------------


def custom_format(pattern: str) -> LogFormat:
    """A format from one regex with named groups ``step`` and ``loss`` (optionally ``tokens``,
    ``lr``, ``eval_loss``, and ``time``: seconds since the run started)."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ParameterError(f"pattern is not a valid regular expression: {exc}", "pattern") from None
    missing = [g for g in ("step", "loss") if g not in rx.groupindex]
    if missing:
        raise ParameterError(
            f"pattern needs the named groups (?P<step>...) and (?P<loss>...); it lacks "
            f"{', '.join(missing)}", "pattern",
        )
    return LogFormat(name="pattern", train=rx, example=pattern)


@dataclass
class _Parsed:
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    series: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    eval_steps: list[int] = field(default_factory=list)
    eval_losses: list[float] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    total: int | None = None
    failure: str | None = None
    last_loss_line: int = 0
    traceback_line: int = 0
    exception: str | None = None
    #: (step, seconds since the run started) of train lines with a clock, and where it came from
    times: list[tuple[int, float]] = field(default_factory=list)
    clock: str = ""


#: a timestamp opening a line, as logging and most launchers print one (ISO date, then time)
_STAMP = re.compile(r"^\W{0,3}(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,6})?)")


def _stamp(line: str) -> float | None:
    """The Unix time of a timestamp opening ``line`` (read as UTC: only differences count)."""
    m = _STAMP.match(line)
    if m is None:
        return None
    try:
        when = datetime.fromisoformat(m[1].replace(",", ".").replace(" ", "T"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC).timestamp()


def _parse(path: Path, fmt: LogFormat, source: str) -> _Parsed:
    out = _Parsed()
    first_stamp: float | None = None  # the log's first timestamp: the run's start
    summed, last_step = 0.0, 0  # Megatron's per-iteration times, summed
    # the clocks a train line may carry, best first: a timestamp that never moves (a launcher
    # printing whole seconds over a short run, or a fixed one) is no clock, and the next is used
    clocks: dict[str, list[tuple[int, float]]] = {
        "the log's time field": [], "the log lines' timestamps": [],
        "Megatron's elapsed time per iteration, summed": []}
    with closing(_lines(path, source)) as lines:
        for lineno, raw in enumerate(lines, start=1):
            line = _plain(raw.rstrip("\r\n"))
            stamp = _stamp(line)
            if first_stamp is None:
                first_stamp = stamp
            m = fmt.train.search(line)
            if m is not None:
                step = _step(m["step"], source, lineno)
                out.steps.append(step)
                out.losses.append(float(m["loss"]))
                out.last_loss_line = lineno
                groups = {k: v for k, v in m.groupdict().items() if v is not None}
                for rx in fmt.fields:
                    fm = rx.search(line)
                    if fm is not None:
                        groups.update({k: v for k, v in fm.groupdict().items() if v is not None})
                if "total" in groups:
                    out.total = _step(groups.pop("total"), source, lineno)
                given, iter_ms = groups.pop("time", None), groups.pop("iter_ms", None)
                if given is not None:
                    clocks["the log's time field"].append((step, float(given)))
                if stamp is not None and first_stamp is not None:
                    clocks["the log lines' timestamps"].append((step, stamp - first_stamp))
                if iter_ms is not None:
                    summed += float(iter_ms) / 1000.0 * max(0, step - last_step)
                    clocks["Megatron's elapsed time per iteration, summed"].append((step, summed))
                last_step = step
                for k, v in groups.items():
                    if k in ("step", "loss"):
                        continue
                    if k == "eval_loss":
                        out.eval_steps.append(step)
                        out.eval_losses.append(float(v))
                        continue
                    s, vals = out.series.setdefault(k, ([], []))
                    s.append(step)
                    vals.append(float(v))
                continue
            if fmt.nan_line is not None:
                m = fmt.nan_line.search(line)
                if m is not None:
                    out.steps.append(_step(m["step"], source, lineno))
                    out.losses.append(float("nan"))
                    out.last_loss_line = lineno
                    continue
            if fmt.eval is not None:
                m = fmt.eval.search(line)
                if m is not None:
                    out.eval_steps.append(_step(m["step"], source, lineno))
                    out.eval_losses.append(float(m["eval_loss"]))
                    continue
            if fmt.failure is not None:
                m = fmt.failure.search(line)
                if m is not None:
                    out.failure = m["error"].strip()
                    continue
            if _TRACEBACK.match(line):
                out.traceback_line, out.exception = lineno, None
                continue
            if out.traceback_line and _EXCEPTION.match(line):
                out.exception = line.strip()
                continue
            for rx in fmt.params:
                m = rx.search(line)
                if m is None:
                    continue
                groups = m.groupdict()
                if "key" in groups and "value" in groups:
                    out.params.setdefault(groups["key"], groups["value"].strip().strip("'\""))
                elif "pairs" in groups:
                    for pair in re.finditer(r"(\w+)=(\S+)", groups["pairs"]):
                        out.params.setdefault(pair[1], pair[2])
                else:
                    for k, v in groups.items():
                        if v is not None:
                            out.params.setdefault(k, v.replace(",", ""))
                break
    for name, points in clocks.items():
        if points and (name == "the log's time field"
                       or max(t for _, t in points) > min(t for _, t in points)):
            out.times, out.clock = points, name
            break
    return out


def _step(text: str, source: str, lineno: int) -> int:
    """A logged step as an int, refused past int64 (``int()`` of a 5,000-digit step is an
    error of its own, and a step over 2^63 - 1 cannot be stored)."""
    if len(text) > 19 or int(text) > _MAX_STEP:
        shown = text if len(text) <= 30 else text[:27] + "..."
        raise InputError(f"step {shown} is too large (at most 2^63 - 1)", source=source,
                         row=f"line {lineno}")
    return int(text)


def _is_log(path: Path) -> bool:
    """A log file by its name: ``*.log`` (or .txt, .out, .err), or one of those gzipped."""
    suffixes = [x.lower() for x in path.suffixes[-2:]]
    return bool(suffixes) and (suffixes[-1] in LOG_SUFFIXES or (
        suffixes[-1] == _GZ and len(suffixes) == 2 and suffixes[0] in LOG_SUFFIXES))


def _log_name(rel: str) -> str:
    """A log's run name: its path without the log suffix (nor ``.gz``)."""
    for end in (_GZ, *LOG_SUFFIXES):
        if rel.lower().endswith(end) and len(rel) > len(end):
            rel = rel[: -len(end)]
            if end != _GZ:
                break
    return rel


def _open_log(path: Path, mode: str, **text: str) -> IO[Any]:
    """A log file opened (``text`` the encoding arguments of a text mode), a gzipped one
    (``.gz``) decompressed."""
    opener: Any = gzip.open if path.suffix.lower() == _GZ else open
    return opener(path, mode, **text)


def _lines(path: Path, source: str | None = None) -> Iterator[str]:
    """A log's lines (a gzipped one decompressed: it was skipped in a folder, and read as
    garbage when named), undecodable bytes replaced, as a log may hold any; a file that cannot
    be read (a .gz cut short or not gzip) is one line naming it."""
    try:
        with _open_log(path, "rt", encoding="utf-8", errors="replace") as fh:
            yield from fh
    except (OSError, EOFError) as exc:  # EOFError, BadGzipFile (an OSError): a bad .gz
        raise InputError(f"cannot read: {getattr(exc, 'strerror', None) or exc}",
                         source=source or str(path)) from None


def _plain(line: str) -> str:
    """A log line without terminal escape sequences (a coloured 'iter 10: loss 2.9' was no
    training line: the run was "no 'loss' logged")."""
    return _ANSI.sub("", line) if "\x1b" in line else line


def _detect(path: Path, max_lines: int = 5000, enough: int = 20) -> LogFormat | None:
    """The preset whose training line matches most of the log's first lines (None: no line);
    reading stops once one preset has matched ``enough`` lines.

    Each file is detected on its own: a folder may hold a nanoGPT and a Megatron run side by
    side, and reading one with the other's regexes finds no loss in it.
    """
    counts = dict.fromkeys(FORMATS, 0)
    with closing(_lines(path)) as lines:
        for i, raw in enumerate(lines):
            if i >= max_lines:
                break
            line = _plain(raw)
            for name, fmt in FORMATS.items():
                if fmt.train.search(line):
                    counts[name] += 1
            if max(counts.values()) >= enough:
                break
    best = max(counts, key=lambda k: counts[k])
    return FORMATS[best] if counts[best] else None


def _formats(files: list[Path], source: str) -> tuple[dict[Path, LogFormat], list[str]]:
    """Each file's detected format, and a note on what was detected.

    A file no format matches (a run that crashed before its first loss line) is read with the
    folder's most common format, so its hyperparameters and its traceback still count.
    """
    found = {p: _detect(p) for p in files}
    known = [f for f in found.values() if f is not None]
    if not known:
        raise InputError(f"no line matches a known training-log format ({', '.join(FORMATS)}, "
                         f"e.g. {NANOGPT.example!r}); give a pattern with named groups step and "
                         "loss", source=source)
    counts = Counter(f.name for f in known)
    common = FORMATS[counts.most_common(1)[0][0]]
    if len(counts) == 1:
        notes = [f"lines read with the {common.name} format (detected)"]
    else:
        notes = ["lines read with the format detected in each file: " + ", ".join(
            f"{name} ({n} file{'s' if n > 1 else ''})" for name, n in counts.most_common())]
    unmatched = [p for p, f in found.items() if f is None]
    if unmatched:
        notes.append(f"{len(unmatched)} file{'s' if len(unmatched) > 1 else ''} with no training "
                     f"line read with the {common.name} format, the most common here")
    return {p: f or common for p, f in found.items()}, notes


def log_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and _is_log(p)
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


def read_training_logs(
    path: str | Path,
    format: str | None = None,
    pattern: str | None = None,
    mapping: Mapping[str, str] | None = None,
    settings: RunSettings | None = None,
    final: str | FinalRule = "ema:10",
) -> TrackerImport:
    """Read a training log, or every log (``*.log``, ``*.txt``, ``*.out``, ``*.err``, each
    gzipped too: ``train.log.gz``) in a folder.

    Parameters
    ----------
    path
        A log file or a folder of them; each file is one run, named by its path (without the
        suffix) relative to the folder.
    format
        ``nanogpt``, ``megatron`` or ``scalinglab`` for every file; by default each file's own
        (the one whose lines match it).
    pattern
        A regex for other logs, with named groups ``step`` and ``loss`` (optionally ``tokens``,
        ``lr``, ``eval_loss``); overrides ``format``.
    mapping
        scalinglab name -> a hyperparameter the log prints, or a series of the train line.
    settings
        Values per run (keyed by file name, stem or relative path) or for all runs: N and D when
        the log does not print them.
    final
        ``last``, ``min`` or ``ema:K`` (default ``ema:10``: a logged training loss is one batch's,
        so the last one alone is noisy).
    """
    root = Path(path)
    source = str(path)
    rule = FinalRule.parse(final)
    if not root.exists():
        raise InputError("no such file or folder", source=source)
    files = log_files(root)
    if not files:
        raise InputError(f"no log files ({', '.join('*' + s for s in LOG_SUFFIXES)}, or "
                         "gzipped) in it",
                         source=source)
    if pattern is not None:
        fmt = custom_format(pattern)
        chosen = "the given pattern"
    elif format is not None:
        fmt = FORMATS.get(format.strip().lower())  # type: ignore[assignment]
        if fmt is None:
            raise ParameterError(f"format must be one of {', '.join(FORMATS)}, not {format!r}",
                                 "format")
        chosen = f"the {fmt.name} format"
    if pattern is not None or format is not None:  # what the user says applies to every file
        formats = dict.fromkeys(files, fmt)
        parsed = {p: _parse(p, fmt, str(p)) for p in files}
        if not any(x.steps for x in parsed.values()):
            raise InputError(f"no line matches {chosen} (e.g. {fmt.example!r})", source=source)
        notes = [f"lines read with {chosen}"]
    else:
        formats, notes = _formats(files, source)
        parsed = {p: _parse(p, formats[p], str(p)) for p in files}
    raws = []
    for p, x in parsed.items():
        fmt = formats[p]
        rel = p.relative_to(root).as_posix() if root.is_dir() else p.name
        name = _log_name(rel)
        params: dict[str, Any] = {fmt.renames.get(k, k): v for k, v in x.params.items()}
        scalars = {k: series(s, v) for k, (s, v) in x.series.items()}
        if "batch_size" in scalars and "global_batch_size" not in params:
            params["global_batch_size"] = float(scalars["batch_size"][1][-1])
        planned = x.total
        if planned is None and fmt.planned and fmt.planned in params:
            try:
                planned = int(float(params[fmt.planned]))
            except ValueError:
                planned = None
        status, error = "finished", None
        if x.failure:
            status, error = "failed", x.failure
        elif x.traceback_line > x.last_loss_line:
            status = "failed"
            error = (f"the log ends in a Python traceback (line {x.traceback_line})"
                     + (f": {x.exception}" if x.exception else ""))
        raws.append(RawRun(
            name=name, keys=(name, p.name, rel, p.stem), loss=series(x.steps, x.losses)
            if x.steps else None, params=params, scalars=scalars,
            eval_loss=series(x.eval_steps, x.eval_losses) if x.eval_steps else None,
            tokens=scalars.get("tokens"), status=status, error=error,
            extra={"log_file": rel}, planned_steps=planned, run_id=_log_run_id(p, name, params),
            step_offset=fmt.step_offset,
            wall=series([t[0] for t in x.times], [t[1] for t in x.times]) if x.times else None,
            clock=x.clock,
        ))
    spec = ReadSpec(loss_key="loss", final=rule, mapping=dict(mapping or {}),
                    settings=settings or RunSettings(), source=source,
                    param_word="logged value")
    return build(raws, spec, notes)


def _log_run_id(path: Path, name: str, params: Mapping[str, Any]) -> str:
    """The sweep's own id for its logs; else the log's name and opening bytes (its config and
    first lines), which stay the same as the log grows."""
    own = params.get("sweep_run_id")
    if isinstance(own, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", own):
        return own
    try:  # the log's own bytes, a gzipped one's decompressed: the same run either way
        with _open_log(path, "rb") as fh:
            head = fh.read(4096)
    except (OSError, EOFError):
        head = b""
    return tracker_run_id("log", name, head.decode("utf-8", "replace"))


__all__ = ["FORMATS", "MEGATRON", "NANOGPT", "SCALINGLAB", "LogFormat", "custom_format",
           "read_training_logs", "scalinglab_eval", "scalinglab_failure", "scalinglab_header",
           "scalinglab_step"]
