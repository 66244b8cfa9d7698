"""Runs from TensorBoard event files: one run per directory holding ``events.out.tfevents.*``.

Read with the ``tensorboard`` package's own ``EventAccumulator`` (the reader TensorBoard itself
uses), asked to keep *every* point: by default it keeps a reservoir sample of 10,000 scalars and
only 10 tensors per tag, and new-style scalars (``add_scalar(..., new_style=True)``, and every
TF2 ``tf.summary.scalar``) are tensors, so the defaults would silently thin a curve.

A run's id is its directory's path relative to the log directory (the directory's own name
when the log directory is itself one run): a resumed run, which gains an event file in the same
directory, keeps its id, so re-importing it is a named conflict (or, unchanged, a no-op), never a
second copy. The event files' names are not used: they change as a run resumes, and they hold
the host name and process id.

Hyperparameters come from the hparams plugin's session record. ``SummaryWriter.add_hparams``
writes that record, with its metric values, into a new sub-directory of the run directory (named
by the time), not into the run's own files; such a directory (hparams and at most one point per
scalar) is folded into the run above it rather than counted as a run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.errors import InputError
from scalinglab.runs.trackers.base import (
    RawRun,
    ReadSpec,
    Series,
    TrackerImport,
    build,
    clock,
    pick_loss_key,
    require,
    series,
    tracker_run_id,
)
from scalinglab.runs.trackers.final import FinalRule
from scalinglab.runs.trackers.settings import RunSettings
from scalinglab.safefile import check_input

_PURPOSE = "reading TensorBoard event files"


@dataclass
class _Dir:
    path: Path
    rel: str
    scalars: dict[str, Series] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    #: the event's wall time (Unix seconds) at each step of each tag
    times: dict[str, Series] = field(default_factory=dict)
    started: float | None = None  # the first event's wall time: the writer's creation
    empty: bool = False
    cut: list[str] = field(default_factory=list)  # event files that end inside a record
    corrupt: str | None = None  # an event file with a record that fails its checksum

    @property
    def hparams_only(self) -> bool:
        return bool(self.hparams) and all(len(s[0]) <= 1 for s in self.scalars.values())


def event_dirs(logdir: Path) -> list[Path]:
    """Directories under ``logdir`` (itself included) that hold event files, in path order."""
    out = []
    for root, dirs, files in os.walk(logdir):
        dirs.sort()
        if any("tfevents" in f for f in files):
            out.append(Path(root))
    return out


class _Stops(logging.Handler):
    """The event files TensorBoard's reader stopped in early. Its loader meets a record cut
    short or failing its checksum (a ``DataLossError``), logs "Truncated record in PATH" at
    debug level and reads no further in that file: a run whose file was damaged half-way was
    imported as finished, its final loss from the last step before the damage."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.paths: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Truncated record in") and record.args:
            self.paths.add(os.path.basename(str(record.args[0])))


@contextmanager
def _quiet() -> Any:
    """TensorBoard logs a warning per odd record; the import reports what matters itself.
    Yields a :class:`_Stops` that sees the reader's records (none reach the terminal)."""
    log = logging.getLogger("tensorboard")
    level, propagate = log.level, log.propagate
    stops = _Stops()
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(stops)
    try:
        yield stops
    finally:
        log.removeHandler(stops)
        log.setLevel(level)
        log.propagate = propagate


def _record_ends(path: Path, masked_crc32c: Any) -> str:
    """How the event file's records end: ``"whole"`` (at the file's end), ``"cut"`` (inside
    its last record: a run still being written, or killed mid-write) or ``"damaged"`` (a
    record's length fails its checksum, so the records cannot be followed past it).

    A record is an 8-byte length, its 4-byte checksum, that many bytes and their checksum:
    the lengths alone find the end, a seek per record (0.36 CPU s per million records, far
    less than the reader's own checksums); only the record that passes the end has its length
    checked.
    """
    size = path.stat().st_size
    at = 0
    with path.open("rb") as fh:
        while at < size:
            fh.seek(at)
            head = fh.read(12)
            if len(head) < 12:
                return "cut"
            at += 16 + int.from_bytes(head[:8], "little")
        if at == size:
            return "whole"
    length_ok = masked_crc32c(head[:8]) == int.from_bytes(head[8:], "little")
    return "cut" if length_ok else "damaged"


def _decimal(value: float) -> float:
    """A float32 from an event file as the shortest decimal that is that float32 (2.6, not
    2.5999999046325684): the value that was logged, as far as float32 can tell."""
    return float(str(np.float32(value)))


#: TensorFlow dtypes a scalar summary may hold: half, bfloat16, float, double, the integers
_NUMERIC_DTYPES = {1, 2, 3, 4, 5, 6, 9, 14, 17, 19, 22, 23}
#: the most elements a "scalar" tensor may claim (a huge shape was a MemoryError)
_MAX_TENSOR_ELEMENTS = 1 << 20


def _tensor_scalar(tensor_util: Any, proto: Any, tag: str, step: int, path: Path) -> float:
    """The first value of a scalar-plugin tensor, checked before it is decoded: a numeric
    dtype, a shape with no negative dimension and at most 2^20 elements. A hostile event file
    (a string tensor, an unknown dtype, a shape of 10^12) is one line naming the tag and step."""
    where = f"tag {tag!r}, step {step}"
    if proto.dtype not in _NUMERIC_DTYPES:
        raise InputError(f"{where}: a tensor of dtype {proto.dtype}, not a number",
                         source=str(path))
    dims = [d.size for d in proto.tensor_shape.dim]
    size = 1
    for d in dims:
        if d < 0:
            raise InputError(f"{where}: a tensor shape with a negative dimension {dims}",
                             source=str(path))
        size *= d
        if size > _MAX_TENSOR_ELEMENTS:
            raise InputError(f"{where}: a tensor of shape {dims[:8]}, far too large for a "
                             "scalar", source=str(path))
    try:
        arr = tensor_util.make_ndarray(proto)
        return _decimal(arr.reshape(-1)[0]) if arr.size else np.nan
    except (ValueError, TypeError, IndexError, OverflowError, MemoryError) as exc:
        raise InputError(f"{where}: an unreadable tensor ({' '.join(str(exc).split())[:120]})",
                         source=str(path)) from None


def _read_dir(path: Path, rel: str) -> _Dir:
    ea_mod = require("tensorboard.backend.event_processing.event_accumulator", _PURPOSE)
    hp_meta = require("tensorboard.plugins.hparams.metadata", _PURPOSE)
    tensor_util = require("tensorboard.util.tensor_util", _PURPOSE)
    keep_all = {ea_mod.SCALARS: 0, ea_mod.TENSORS: 0, ea_mod.IMAGES: 1, ea_mod.AUDIO: 1,
                ea_mod.HISTOGRAMS: 1, ea_mod.COMPRESSED_HISTOGRAMS: 1}
    out = _Dir(path, rel)
    files = sorted(p for p in path.iterdir() if "tfevents" in p.name)
    for p in files:  # the reader would block on a FIFO named like an event file
        check_input(p)
    try:
        with _quiet() as stops:
            acc = ea_mod.EventAccumulator(str(path), size_guidance=keep_all)
            acc.Reload()
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line naming the dir
        raise InputError(f"cannot read the event files: {type(exc).__name__}: {exc}",
                         source=str(path)) from None
    try:
        out.started = float(acc.FirstEventTimestamp())
    except ValueError:
        if all(p.stat().st_size == 0 for p in files):
            out.empty = True  # created, then nothing written: the run died at once
            return out
        raise InputError("no readable TensorBoard record: not an event file, or corrupt",
                         source=str(files[0])) from None
    crc = require("tensorboard.compat.tensorflow_stub.pywrap_tensorflow", _PURPOSE).masked_crc32c
    for p in files:
        ends = _record_ends(p, crc)
        if ends == "cut":  # a run still being written, or killed mid-write: what is there counts
            out.cut.append(p.name)
        elif (ends == "damaged" or p.name in stops.paths) and out.corrupt is None:
            out.corrupt = p.name  # the reader stopped at a record failing its checksum
    tags = acc.Tags()
    for tag in tags.get("scalars", []):
        events = acc.Scalars(tag)
        out.scalars[tag] = series((e.step for e in events), (_decimal(e.value) for e in events))
        out.times[tag] = series((e.step for e in events), (e.wall_time for e in events))
    for tag in tags.get("tensors", []):
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars" or tag in out.scalars:
            continue
        events = acc.Tensors(tag)
        values = []
        for e in events:
            values.append(_tensor_scalar(tensor_util, e.tensor_proto, tag, e.step, path))
        out.scalars[tag] = series((e.step for e in events), values)
        out.times[tag] = series((e.step for e in events), (e.wall_time for e in events))
    try:
        content = acc.PluginTagToContent("hparams")
    except KeyError:
        content = {}
    start = content.get(hp_meta.SESSION_START_INFO_TAG)
    if start is not None:
        info = hp_meta.parse_session_start_info_plugin_data(start)
        for name, value in info.hparams.items():
            kind = value.WhichOneof("kind")
            out.hparams[name] = (value.number_value if kind == "number_value"
                                 else value.bool_value if kind == "bool_value"
                                 else value.string_value)
    return out


def read_tensorboard(
    logdir: str | Path,
    loss_tag: str | None = None,
    eval_tag: str | None = None,
    mapping: Mapping[str, str] | None = None,
    settings: RunSettings | None = None,
    final: str | FinalRule = "last",
) -> TrackerImport:
    """Read every run under ``logdir``.

    Parameters
    ----------
    logdir
        A TensorBoard log directory; each directory below it (nested too) holding event files is
        one run, named by its path relative to ``logdir``.
    loss_tag
        The scalar tag of the training loss; when None, the one usual loss name logged
        (``train/loss``, ``loss``, ...), else an error listing the tags.
    eval_tag
        A scalar tag of held-out loss, kept on the curve and as ``eval_loss``.
    mapping
        scalinglab name -> hparam name or scalar tag (its last value), e.g. ``{"N": "n_params"}``.
        A tag mapped to D is also the curve's token axis.
    settings
        Values given per run (a mapping file keyed by run directory) or for all runs.
    final
        ``last``, ``min`` or ``ema:K``: how the curve becomes the final loss.
    """
    root = Path(logdir)
    source = str(logdir)
    if not root.is_dir():
        raise InputError("no such directory (give a TensorBoard log directory)"
                         if not root.exists() else "is not a directory (give the log directory "
                         "that holds the runs' event files)", source=source)
    rule = FinalRule.parse(final)
    dirs = event_dirs(root)
    if not dirs:
        raise InputError("no TensorBoard event files (events.out.tfevents.*) in it or below it",
                         source=source)
    read = []
    for path in dirs:
        rel = path.relative_to(root).as_posix()
        read.append(_read_dir(path, root.resolve().name if rel == "." else rel))
    notes: list[str] = []
    by_path = {d.path: d for d in read}
    runs_dirs: list[_Dir] = []
    folded = 0
    for d in read:
        parent = next((by_path[p] for p in d.path.parents if p in by_path), None)
        if d.hparams_only and parent is not None:
            for k, v in d.hparams.items():
                parent.hparams.setdefault(k, v)
            for k, s in d.scalars.items():
                parent.scalars.setdefault(k, s)
            folded += 1
        else:
            runs_dirs.append(d)
    if folded:
        notes.append(f"hparams of {folded} sub-director{'ies' if folded > 1 else 'y'} written by "
                     "add_hparams folded into the run above")
    all_tags = {t for d in runs_dirs for t in d.scalars}
    key, note = pick_loss_key(loss_tag, all_tags, source)
    if note:
        notes.append(note)
    for d in read:
        for name in d.cut:
            last = d.scalars[key][0] if key in d.scalars else ()
            notes.append(f"warning: {d.rel}/{name} ends inside a record (the run is still being "
                         "written, or was killed mid-write); read up to its last whole record"
                         + (f", {key!r} to step {int(last[-1])}" if len(last) else ""))
    if eval_tag is not None:
        pick_loss_key(eval_tag, all_tags, source, parameter="eval_tag")
    raws = []
    for d in runs_dirs:
        raws.append(RawRun(
            name=d.rel,
            keys=(d.rel, str(d.path)),
            loss=d.scalars.get(key),
            params=dict(d.hparams),
            scalars=d.scalars,
            eval_loss=d.scalars.get(eval_tag) if eval_tag else None,
            tokens=None,
            status="failed" if d.empty or d.corrupt else "finished",
            error="the event files are empty (the run died before writing anything)" if d.empty
            else f"a damaged record in {d.corrupt} (it fails its checksum): the events after "
            "it in that file could not be read" if d.corrupt else None,
            extra={"run_dir": d.rel},
            run_id=tracker_run_id("tb", d.rel),
            # every event carries its wall time; the run's clock starts at its first event
            # (the file-version record SummaryWriter writes when it is created)
            wall=clock([d.times.get(key), d.times.get(eval_tag) if eval_tag else None],
                       d.started),
            clock="TensorBoard event wall times",
        ))
    spec = ReadSpec(loss_key=key, final=rule, mapping=dict(mapping or {}),
                    settings=settings or RunSettings(), source=source, param_word="hparam")
    return build(raws, spec, notes)
