"""What every tracker reader returns, and the rules the readers share.

A reader turns runs where they already live (TensorBoard event files, an MLflow store, a W&B
history export, plain training logs) into one :class:`TrackerImport`: a frame with one row per
run in scalinglab's column names, the loss curves as a long frame keyed by the run's row, and
notes saying what was inferred or mapped. Readers are pure: they read their input and write
nothing. The store's import pipeline validates the rows and lands runs and curves in one
transaction.

The shared rules live here so that every source says the same thing the same way:

- the final loss of a curve (:class:`FinalRule`: ``last``, ``ema:K`` or ``min``);
- where N, D, lr and the batch come from (logged hyperparameters under common names, an explicit
  mapping ``N=n_params``, or per-run settings from ``--set`` or a small mapping file), with a note
  per source;
- when a run is data about a failure rather than a result: no loss logged (crashed before the
  first log), a non-finite loss (diverged), a tracker status of failed or killed, or a log that
  stops before its planned last step. Such a run is kept as ``failed`` with the reason in
  ``error``; it never aborts the import.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import InputError, ParameterError, ScalingLabError, did_you_mean
from scalinglab.runs.cells import not_a_number
from scalinglab.runs.columns import ALIASES
from scalinglab.runs.schema import parse_number
from scalinglab.runs.trackers.final import FinalRule
from scalinglab.runs.trackers.settings import RunSettings

#: the columns a reader's ``curves`` frame has (``wall_s``: seconds since the run started, NaN
#: where the source keeps no clock)
CURVE_COLUMNS = ["row", "step", "tokens", "loss", "eval_loss", "wall_s"]

#: scalinglab names whose values are numbers (a mapped value must parse as one)
NUMERIC_TARGETS = ("N", "D", "C", "lr", "batch_tokens", "batch_sequences", "batch_size", "seq_len",
                   "weight_decay")

#: what a logged hyperparameter may set without a mapping, by the spellings of the import
#: pipeline's one alias table (:data:`scalinglab.runs.columns.ALIASES`). Matched exactly, then
#: ignoring case and a ``hparams/`` / ``config.`` style prefix, except one-letter names: a
#: hyperparameter ``n`` or ``d`` is not N or D.
PARAM_TARGETS = ("N", "D", "lr", "batch_tokens", "batch_sequences", "weight_decay", "seq_len")
_PREFIXES = ("hparams/", "hparam/", "hparams.", "config/", "config.", "params/", "params.",
             "hp/", "hp.")

#: loss names tried, in this order, when no loss tag is given
LOSS_CANDIDATES = ("train/loss", "loss", "train_loss", "training_loss", "loss/train", "Loss/train",
                   "train/lm_loss", "lm_loss", "lm loss")

#: logged series taken as the token count along the curve, when no mapping names one
TOKEN_SERIES = ("tokens", "train/tokens", "tokens_seen", "num_tokens", "consumed_tokens",
                "train/tokens_seen")

#: logged series of the learning rate (a schedule): the run's lr is its peak
LR_SERIES = ("lr", "learning_rate", "train/learning_rate", "train/lr", "lr-AdamW", "learning-rate")

#: columns the pipeline reads with a meaning of their own: a tracker parameter (or extra) of that
#: name is kept as ``param.NAME`` so it cannot replace the loss the reader computed
#: (``smooth_loss``), become a tag (``dataset``), be taken for the run's id, its FLOPs
#: (``flops``) or its batch (``bs``): every spelling in the pipeline's alias table
_RESERVED = {a for spellings in ALIASES.values() for a in spellings} | set(ALIASES) | {
    "source", "extra", "curve", "dataset", "architecture", "raw_loss", "batch_size"}


class MissingDependency(ScalingLabError):
    """An optional reader's package is not installed (the message says what to install)."""


def require(module: str, purpose: str) -> Any:
    """Import an optional package, or raise one clear line saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise MissingDependency(
            f"{purpose} needs the {top!r} package: pip install 'scalinglab[trackers]'"
        ) from None


# -- one run, as a reader found it ---------------------------------------------------------------

Series = tuple[np.ndarray, np.ndarray]  # steps (int64, increasing, unique), values (float64)


def series(steps: Iterable[Any], values: Iterable[Any]) -> Series:
    """Points sorted by step; of repeated steps the last logged wins (a resumed run logs a step
    again after restarting from a checkpoint, and the later value is the one that counts)."""
    s = np.asarray(list(steps), dtype=np.int64)
    v = np.asarray(list(values), dtype=np.float64)
    if len(s) == 0:
        return s, v
    order = np.argsort(s, kind="stable")
    s, v = s[order], v[order]
    keep = np.ones(len(s), dtype=bool)
    keep[:-1] = s[1:] != s[:-1]
    return s[keep], v[keep]


@dataclass
class RawRun:
    """One run as its source holds it, before the shared rules turn it into a row.

    ``keys`` are the names a mapping file may use for it (its label first). ``params`` are the
    logged hyperparameters (raw values), ``scalars`` every logged series by name (for a mapping
    ``D=tokens_seen`` that names a series), ``loss``/``eval_loss`` the two curves (None when not
    logged at all), ``tokens`` the token count along the curve when the source has one,
    ``wall`` the wall-clock seconds since the run started at each logged step, when the source
    keeps a clock (TensorBoard's event times, MLflow's metric timestamps, W&B's ``_runtime``, a
    log line's time).
    """

    name: str
    keys: tuple[str, ...]
    loss: Series | None
    params: dict[str, Any] = field(default_factory=dict)
    scalars: Mapping[str, Series] = field(default_factory=dict)
    eval_loss: Series | None = None
    tokens: Series | None = None
    status: str = "finished"
    error: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    planned_steps: int | None = None
    run_id: str | None = None
    step_offset: int | None = None  # this run's, when its source differs per run (else spec's)
    wall: Series | None = None
    clock: str = ""  # what ``wall`` was read from, for the notes ("TensorBoard event times")


def tracker_run_id(kind: str, *identity: str) -> str:
    """A run id from the run's identity in its tracker (not from its values).

    Re-importing the same runs then finds the same ids: unchanged runs are recognised, and a run
    whose values changed (it finished since, or another final-loss rule was asked for) is a
    conflict to resolve rather than a second copy. Ids are plain ``[A-Za-z0-9_.-]`` text.
    """
    if len(identity) == 1 and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", identity[0]):
        return f"{kind}-{identity[0]}"
    blob = "\x1f".join(identity).encode("utf-8", "surrogateescape")
    return f"{kind}-{hashlib.sha1(blob).hexdigest()[:16]}"


@dataclass(frozen=True)
class ReadSpec:
    """How a reader's runs become rows: the same for every run of one import.

    ``step_offset``: optimiser updates done when step ``s`` is logged are ``s + step_offset``
    (nanoGPT logs ``iter 0`` after the first update, so its offset is 1; a SummaryWriter's
    ``global_step`` is taken as updates done).
    """

    loss_key: str
    final: FinalRule
    mapping: dict[str, str] = field(default_factory=dict)
    settings: RunSettings = field(default_factory=RunSettings)
    step_offset: int = 0
    source: str = ""
    param_word: str = "param"  # how notes call a logged hyperparameter (hparam, param, field)


@dataclass
class TrackerImport:
    """Runs read from a tracker, ready for :meth:`RunStore.import_frame`.

    ``runs``: one row per run, scalinglab column names (``name``, ``status``, ``error``, ``N``,
    ``D``, ``loss``, ``lr``, ``batch_tokens``, ``tags``, ...; other values kept as extras).
    ``curves``: long frame, ``row`` = 0-based position of the run in ``runs``, ``step``,
    ``tokens`` (NaN when unknown), ``loss``, ``eval_loss`` (NaN when not logged at that step).
    ``notes``: what was inferred or mapped, to tell the user.
    """

    runs: pd.DataFrame
    curves: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def n_failed(self) -> int:
        return int((self.runs["status"] == "failed").sum()) if len(self.runs) else 0

    def __repr__(self) -> str:
        return (f"<TrackerImport {len(self.runs)} runs ({self.n_failed} failed), "
                f"{len(self.curves)} curve points from {self.source}>")


def param_lookup(params: Mapping[str, Any]) -> dict[str, str]:
    """Normalised name -> original name, for alias matching (``hparams/LR`` -> ``lr``)."""
    out: dict[str, str] = {}
    for name in params:
        key = name.strip().lower()
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        out.setdefault(key, name)
    return out


def check_mapping(mapping: Mapping[str, str], runs: Sequence[RawRun], source: str) -> None:
    """A mapping must name something at least one run logs; a typo gets 'did you mean'."""
    if not runs:
        return
    seen: set[str] = set()
    for run in runs:
        seen.update(run.params)
        seen.update(run.scalars)
    for target, name in mapping.items():
        if name not in seen:
            raise ParameterError(
                f"mapping {target}={name}: no run in {source} logs a value named {name!r}"
                f"{did_you_mean(name, sorted(seen))}; names are {_shown(seen)}", "mapping",
            )


def _shown(names: Iterable[str], limit: int = 12) -> str:
    names = sorted(names)
    return "[" + ", ".join(repr(n) for n in names[:limit]) + (", ..." if len(names) > limit else "") + "]"


def pick_loss_key(loss_key: str | None, available: Iterable[str], source: str,
                  parameter: str = "loss_tag", what: str = "tag") -> tuple[str, str | None]:
    """The loss series to read: the one given, or the only common loss name present.

    Returns the key and a note when it was chosen here.
    """
    names = set(available)
    if loss_key:
        if loss_key not in names:
            raise ParameterError(
                f"{parameter} {loss_key!r}: no run in {source} logs it"
                f"{did_you_mean(loss_key, sorted(names))}; {what}s are {_shown(names)}", parameter,
            )
        return loss_key, None
    found = [c for c in LOSS_CANDIDATES if c in names]
    if not found:
        raise ParameterError(
            f"{parameter} is needed: {source} logs no {what} with a usual loss name; "
            f"{what}s are {_shown(names)}", parameter,
        )
    if len(found) > 1:
        raise ParameterError(
            f"{parameter} is needed: {source} logs several loss-like {what}s {found}; "
            f"choose one", parameter,
        )
    return found[0], f"loss read from {what} {found[0]!r}, the one usual loss name logged"


# -- the shared rules: one RawRun -> one row and its curve --------------------------------------


def _number(value: Any, spec: ReadSpec, run: RawRun, column: str) -> float:
    try:
        return parse_number(value)
    except (TypeError, ValueError):
        raise InputError(not_a_number(value), source=spec.source,
                         row=f"run {run.name!r}", column=column) from None


def _last_finite(s: Series | None) -> float:
    if s is None:
        return math.nan
    ok = np.isfinite(s[1])
    return float(s[1][ok][-1]) if ok.any() else math.nan


def _param_value(v: Any) -> Any:
    """A logged hyperparameter as an extra: numbers as numbers, the rest as text."""
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else str(f)
    text = str(v)
    try:
        f = float(text)
    except ValueError:
        return text
    return f if math.isfinite(f) else text


def assemble(run: RawRun, spec: ReadSpec, how: Counter[str]) -> tuple[dict[str, Any], pd.DataFrame]:
    """Apply the shared rules to one run: its values (with where each came from counted in
    ``how``), its status and reason, its final loss and its cleaned curve."""
    row, curve = _assemble(run, spec, how)
    return row, pd.DataFrame(curve)


def _assemble(run: RawRun, spec: ReadSpec, how: Counter[str], shared: frozenset[str] = frozenset()
              ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """:func:`assemble` with the curve as arrays: a DataFrame per run cost ~2 ms, minutes for
    100k runs. ``shared`` are keys that name more than one run of the import."""
    row: dict[str, Any] = {"name": run.name}
    if run.run_id is not None:
        row["run_id"] = run.run_id
    used: set[str] = set()
    lookup = param_lookup(run.params)

    # 1. logged hyperparameters under a spelling of the one alias table
    for target in PARAM_TARGETS:
        if target in spec.mapping:
            continue
        spellings = ALIASES.get(target, (target,))
        src = next((a for a in spellings if a in run.params), None) or next(
            (lookup[a.lower()] for a in spellings if len(a) > 1 and a.lower() in lookup), None)
        if src is not None:
            row[target] = _number(run.params[src], spec, run, f"{target} ({spec.param_word} {src!r})")
            used.add(src)
            how[f"{target} <- {spec.param_word} {src!r}"] += 1
    # 2. the explicit mapping: a hyperparameter, or the last value of a logged series
    tokens = run.tokens
    for target, src in spec.mapping.items():
        if src in run.params:
            value: Any = run.params[src]
            what = f"{spec.param_word} {src!r}"
            used.add(src)
        elif src in run.scalars:
            value = _last_finite(run.scalars[src])
            what = f"last value of {src!r}"
            if target == "D":
                tokens = run.scalars[src]  # the token count along the curve, too
        else:
            continue  # logged by other runs only: this run has no value (validation says so)
        row[target] = (_number(value, spec, run, f"{target} ({what})")
                       if target in NUMERIC_TARGETS else value)
        how[f"{target} <- {what}"] += 1
    if tokens is None:
        name = next((t for t in TOKEN_SERIES if t in run.scalars and len(run.scalars[t][0])), None)
        if name is not None:
            tokens = run.scalars[name]
            how[f"tokens along the curve <- {name!r}"] += 1
    # 3. values the user gave (mapping file per run over --set constants) win over logged ones
    for target, value in spec.settings.for_run(*_own_keys_first(run.keys, shared)).items():
        given = (_number(value, spec, run, f"{target} (given)") if target in NUMERIC_TARGETS
                 else value)
        old = row.get(target)
        if isinstance(old, float) and isinstance(given, float) and not math.isclose(old, given, rel_tol=1e-9):
            how[f"warning: {target} given overrides the logged value"] += 1
        row[target] = given
        how[f"{target} given"] += 1

    # 4. a learning-rate schedule logged as a series: its peak is the run's lr
    if "lr" not in row:
        name = next((t for t in LR_SERIES if t in run.scalars and len(run.scalars[t][0])), None)
        if name is not None and np.isfinite(run.scalars[name][1]).any():
            row["lr"] = float(np.nanmax(run.scalars[name][1]))
            how[f"lr = the peak of the logged {name!r}"] += 1

    offset = spec.step_offset if run.step_offset is None else run.step_offset
    # the loss curve: finite points, and the first non-finite one if the run diverged
    status, error = run.status, run.error
    loss_s = run.loss
    steps = np.zeros(0, dtype=np.int64)
    values = np.zeros(0)
    diverged_at: int | None = None
    if loss_s is not None and len(loss_s[0]):
        finite = np.isfinite(loss_s[1])
        if not finite.all():
            first = int(np.argmin(finite))
            diverged_at = int(loss_s[0][first])
            bad_value = loss_s[1][first]
            steps, values = loss_s[0][:first], loss_s[1][:first]
        else:
            steps, values = loss_s
    if diverged_at is not None:  # whatever the tracker says: a running run that diverged is lost
        reason = f"diverged: {spec.loss_key} is {bad_value} at step {diverged_at}"
        error = f"{error}; {reason}" if status == "failed" and error else reason
        status = "failed"
    elif status == "finished":
        if len(values) == 0:
            status = "failed"
            error = f"no {spec.loss_key!r} logged (crashed before the first log?)"
        elif (run.planned_steps is not None
              and int(steps[-1]) + offset + _log_interval(steps) <= run.planned_steps):
            # short of the plan by more than one logging interval: a log every 10 steps may
            # well end at 4995 of 5000, one that ends at 3000 stopped early
            status = "failed"
            error = (f"the log stops at step {int(steps[-1])} of {run.planned_steps} "
                     "(crashed, killed or still running?)")
    elif status == "failed" and not error:
        error = "failed"
    row["status"], row["error"] = status, error
    if len(values) and status != "failed":
        row["loss"] = spec.final.apply(values)
    else:
        row["loss"] = math.nan
        if len(values):
            row["last_logged_loss"] = float(values[-1])

    # tokens: logged along the curve, or steps x batch_tokens when the batch is known
    batch = row.get("batch_tokens")
    sequences = row.get("batch_sequences", row.get("batch_size"))
    if batch is None and sequences is not None and "seq_len" in row:
        batch = sequences * row["seq_len"]
    token_at: np.ndarray | None = None
    if tokens is not None and len(tokens[0]):
        token_at = np.interp(steps, tokens[0], tokens[1], left=np.nan, right=np.nan) if len(steps) else None
        if "D" not in row:
            row["D"] = _last_finite(tokens)
            how["D <- last logged token count"] += 1
    elif batch is not None and math.isfinite(batch) and len(steps):
        token_at = (steps + offset) * float(batch)
        if "D" not in row and token_at[-1] >= 1:  # a run that died at step 0 trained no tokens
            row["D"] = float(token_at[-1])
            how["D = updates at the last logged step x batch_tokens (no token count logged)"] += 1

    if len(steps):
        row["final_step"] = int(steps[-1])
        row["loss_rule"] = f"{spec.final} of {spec.loss_key!r}"
    ev = _last_finite(run.eval_loss)
    if math.isfinite(ev):
        row["eval_loss"] = ev
    row["tags"] = dict(run.tags)
    for k, v in run.extra.items():
        row[k if k not in _RESERVED and k not in row else f"extra.{k}"] = v
    for name, v in run.params.items():
        if name not in used and name not in spec.mapping.values():
            key = name if name not in _RESERVED and name not in row else f"param.{name}"
            row.setdefault(key, _param_value(v))

    n = len(steps)
    arrays = {"step": np.asarray(steps), "loss": np.asarray(values, dtype=float),
              "tokens": (np.full(n, np.nan) if token_at is None
                         else np.asarray(token_at, dtype=float)),
              "eval_loss": np.full(n, np.nan)}
    if run.eval_loss is not None and len(run.eval_loss[0]):
        es, ev_values = run.eval_loss
        ok = np.isfinite(ev_values)
        ev_frame = pd.DataFrame({"step": es[ok], "eval_loss": ev_values[ok]})
        curve = pd.DataFrame(arrays).drop(columns="eval_loss").merge(ev_frame, on="step",
                                                                     how="outer")
        curve = curve.sort_values("step", kind="stable").reset_index(drop=True)
        if tokens is not None and len(tokens[0]):
            curve["tokens"] = np.interp(curve["step"], tokens[0], tokens[1], left=np.nan, right=np.nan)
        elif batch is not None and math.isfinite(batch):
            curve["tokens"] = (curve["step"] + offset) * float(batch)
        arrays = {c: curve[c].to_numpy() for c in ("step", "tokens", "loss", "eval_loss")}
    arrays["wall_s"] = wall_at(run.wall, arrays["step"])
    if np.isfinite(arrays["wall_s"]).any():
        how[f"wall time along the curve <- {run.clock or 'the logged clock'}"] += 1
    return row, arrays


def clock(parts: Iterable[Series | None], start: float | None = None) -> Series | None:
    """One clock from the times logged with several series (the loss's first: at a step both
    logged, its time wins), as seconds since ``start`` (default: the earliest time logged)."""
    steps: list[np.ndarray] = []
    times: list[np.ndarray] = []
    for part in parts:
        if part is None or not len(part[0]):
            continue
        seen = np.concatenate(steps) if steps else np.zeros(0, np.int64)
        new = ~np.isin(part[0], seen)
        steps.append(part[0][new])
        times.append(part[1][new])
    if not steps or not sum(len(s) for s in steps):
        return None
    all_t = np.concatenate(times)
    origin = float(np.nanmin(all_t)) if start is None else min(float(start),
                                                                float(np.nanmin(all_t)))
    return series(np.concatenate(steps), all_t - origin)


def wall_at(wall: Series | None, steps: np.ndarray) -> np.ndarray:
    """Seconds since the run started at each of ``steps``: the clock logged at that step, else
    interpolated between the logged steps around it (NaN outside them, or with no clock)."""
    out = np.full(len(steps), np.nan)
    if wall is None or not len(wall[0]) or not len(steps):
        return out
    ws, wv = wall
    ok = np.isfinite(wv)
    ws, wv = ws[ok], wv[ok]
    if not len(ws):
        return out
    steps = np.asarray(steps, dtype=np.int64)
    out = np.interp(steps, ws, wv, left=np.nan, right=np.nan)
    return np.where(out < 0, 0.0, out)  # a clock a hair before its start is the start


def _log_interval(steps: np.ndarray) -> int:
    """The usual gap between logged steps (1 for a single point)."""
    if len(steps) < 2:
        return 1
    return max(1, int(np.median(np.diff(steps))))


#: names a mapped or given value usually means (anything else is kept as an extra)
TARGETS = (*NUMERIC_TARGETS, "dataset", "architecture", "name", "status", "error")


def misspelt_targets(keys: Iterable[str]) -> list[str]:
    """A warning for each key that is not a scalinglab name but is close to one (``n`` for N)."""
    out = []
    for key in dict.fromkeys(keys):
        if key not in TARGETS:
            hint = did_you_mean(key, TARGETS) or (
                f" (did you mean {key.upper()!r}?)" if key.upper() in TARGETS else "")
            if hint:
                out.append(f"warning: {key!r} is not a scalinglab column{hint}; kept as an extra")
    return out


def _own_keys_first(keys: Sequence[str], shared: frozenset[str]) -> list[str]:
    """A run's keys, those no other run of the import has first: a mapping file's row for a
    run's id wins over its row for a name two runs share (W&B and MLflow names are not unique;
    the name's row won, giving one run the other's values without a word)."""
    return sorted(keys, key=lambda k: k in shared)  # stable: the source's order otherwise


def _shared_keys(runs: Sequence[RawRun], settings: RunSettings) -> tuple[frozenset[str], list[str]]:
    """Keys that name more than one run, and a warning for each mapping-file row that gives
    its values to several runs by such a key (no row names them apart)."""
    count = Counter(k for r in runs for k in set(r.keys))
    shared = frozenset(k for k, c in count.items() if c > 1)
    warnings = []
    for key in sorted(shared & settings.per_run.keys()):
        takers = [r for r in runs if key in r.keys
                  and not any(k in settings.per_run for k in r.keys if k not in shared)]
        if len(takers) > 1:
            ids = ", ".join(repr(r.run_id or r.keys[-1]) for r in takers[:5])
            warnings.append(f"warning: {key!r} in {settings.source} names {len(takers)} runs "
                            f"({ids}{' ...' if len(takers) > 5 else ''}); its values were given "
                            "to each (key a row by a run's id to tell them apart)")
    return shared, warnings


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The runs' rows as a frame, an integer value kept an integer where another run lacks
    it: pandas made the column float (a run with no loss logged had no ``final_step``, and
    every other run's step 100 was stored and shown as 100.0)."""
    frame = pd.DataFrame(rows)
    for c in frame.columns:
        if frame[c].dtype.kind == "f" and frame[c].isna().any() and any(
                isinstance(r.get(c), (int, np.integer)) and not isinstance(r.get(c), bool)
                for r in rows):
            frame[c] = pd.Series([r.get(c) for r in rows], index=frame.index, dtype=object)
    return frame


def build(runs: Sequence[RawRun], spec: ReadSpec, notes: list[str] | None = None) -> TrackerImport:
    """Every run through :func:`assemble`, one frame of rows, one long frame of curves."""
    notes = list(notes or [])
    notes += spec.settings.check_known([r.keys for r in runs], spec.source)
    shared, warnings = _shared_keys(runs, spec.settings)
    notes += warnings
    check_mapping(spec.mapping, runs, spec.source)
    notes += misspelt_targets([*spec.mapping, *spec.settings.constants,
                               *{k for v in spec.settings.per_run.values() for k in v}])
    how: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    curves: dict[str, list[np.ndarray]] = {c: [] for c in CURVE_COLUMNS}
    for i, run in enumerate(runs):
        row, curve = _assemble(run, spec, how, shared)
        rows.append(row)
        if len(curve["step"]):
            for c in CURVE_COLUMNS:
                curves[c].append(curve[c] if c != "row" else np.full(len(curve["step"]), i))
    n = len(runs)
    for what, count in how.items():
        notes.append(f"{what} ({count} of {n} runs)" if count != n else f"{what}")
    notes.append(f"loss = {spec.final} of {spec.loss_key!r} over the logged points")
    frame = _frame(rows)
    if len(frame):
        failed = frame[frame["status"] == "failed"]
        if len(failed):
            shown = "; ".join(f"{r['name']!r}: {r['error']}" for _, r in failed.head(5).iterrows())
            more = f"; ... {len(failed) - 5} more" if len(failed) > 5 else ""
            notes.append(f"{len(failed)} run{'s' if len(failed) > 1 else ''} kept as failed: "
                         f"{shown}{more}")
    frame.attrs["row_labels"] = {i: f"run {r.name!r}" for i, r in enumerate(runs)}
    curve_frame = (pd.DataFrame({c: np.concatenate(curves[c]) for c in CURVE_COLUMNS})
                   if curves["row"] else
                   pd.DataFrame({c: pd.Series(dtype=float) for c in CURVE_COLUMNS}))
    if len(curve_frame):
        curve_frame["row"] = curve_frame["row"].astype("int64")
        curve_frame["step"] = curve_frame["step"].astype("int64")
    return TrackerImport(runs=frame, curves=curve_frame, notes=notes, source=spec.source)
