"""Learning-rate schedules as per-step arrays: named shapes, files, and logs that hold only some steps.

A curve law (:mod:`scalinglab.laws.curves`) reads a schedule through its running sums, so the one
representation here is the lr of every optimiser step ``0 .. T-1``. Where it comes from:

- **exact**: the user gave the lr of every step (a per-step file, or a named shape such as
  ``cosine:steps=24000,peak=3e-4,final=3e-5,warmup=2160``);
- **integrated**: only the lr logged beside the loss is known (every 128 steps, say). The lr of the
  steps in between is interpolated linearly between logged steps, and before the first logged step
  it is taken to ramp linearly from 0 at step 0 (a linear warmup) — an assumption every such
  schedule states in its ``note``. On the multi-power law's released runs (lr logged every 128
  steps) the running sums this gives differ from the exact ones by < 2e-4 relatively
  (``tests/test_laws_curves.py``): a step drop is spread over the logging interval, a cosine's
  curvature is lost between two logged points, and nothing else.

Step convention: the loss logged at step ``t`` follows the updates of steps ``0..t`` and the summed
lr is ``S(t) = sum_{s <= t} lr[s]`` (one step's lr either way changes S by < 1e-3 relatively).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scalinglab.errors import InputError, ParameterError

__all__ = ["SHAPES", "Schedule", "constant", "cosine", "describe", "parse_schedule",
           "parse_schedules", "step_schedule", "wsd"]


#: The longest schedule held per step. Curves are represented by the lr of every optimiser step,
#: and a fit keeps a few such arrays per run (the lr, its running sums): 20M steps is 160 MB an
#: array, and 10-40x the longest published pre-training runs (0.5-2M steps). A step column that
#: holds tokens or samples instead of steps would otherwise ask for tens of GB and be killed.
MAX_STEPS = 20_000_000


def _check_length(last: int, where: str, column: str | None = None) -> None:
    if last + 1 > MAX_STEPS:
        raise InputError(f"step {last:,} is beyond the {MAX_STEPS:,} steps a schedule may hold "
                         "(is this column tokens or samples rather than optimiser steps?)",
                         source=where, column=column)


@dataclass(frozen=True, eq=False)
class Schedule:
    """The lr of every step ``0 .. len(lr) - 1``; ``exact`` False when it was integrated from the
    lr logged at some steps only (``note`` then says how)."""

    lr: np.ndarray
    name: str = "schedule"
    exact: bool = True
    note: str | None = None
    spec: str | None = None
    _cum: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        lr = np.ascontiguousarray(np.asarray(self.lr, dtype=float))
        if lr.ndim != 1 or lr.size == 0:
            raise ParameterError("a schedule needs the lr of at least one step", "schedule")
        if not np.isfinite(lr).all() or (lr < 0).any():
            bad = int(np.flatnonzero(~np.isfinite(lr) | (lr < 0))[0])
            raise ParameterError(f"schedule {self.name!r}: lr at step {bad} is {lr[bad]!r}; "
                                 "an lr must be finite and >= 0", "schedule")
        if not (lr > 0).any():
            raise ParameterError(f"schedule {self.name!r}: every lr is 0", "schedule")
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "_cum", np.cumsum(lr))

    @property
    def steps(self) -> int:
        """Steps the schedule covers (the last one is ``steps - 1``)."""
        return int(self.lr.size)

    @property
    def last_step(self) -> int:
        return self.steps - 1

    @property
    def cumulative(self) -> np.ndarray:
        """``S(t) = sum_{s <= t} lr[s]`` for every step t."""
        assert self._cum is not None
        return self._cum

    @property
    def peak_step(self) -> int:
        """The first step at the largest lr: the end of the warmup."""
        return int(np.argmax(self.lr))

    def summed(self, steps: np.ndarray) -> np.ndarray:
        return self.cumulative[np.asarray(steps, dtype=int)]

    def at(self, steps: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.lr[np.asarray(steps, dtype=int)]

    def renamed(self, name: str) -> Schedule:
        return Schedule(self.lr, name, self.exact, self.note, self.spec)

    @classmethod
    def from_logged(cls, steps: Sequence[int] | np.ndarray, lr: Sequence[float] | np.ndarray,
                    name: str = "schedule", total_steps: int | None = None,
                    source: str | None = None, warmup: int | None = None) -> Schedule:
        """A schedule from the lr at some steps (every step: exact; otherwise integrated).

        ``total_steps``: steps the run will take; past the last logged step the lr is held at its
        last logged value (with a note). ``warmup``: the steps of a linear warmup from 0 ending
        at the first logged lr, when the log starts after it (default: a warmup that ends at the
        first logged step). Missing lr cells must be dropped before (the caller
        knows rows and columns for its messages).
        """
        s = np.asarray(steps, dtype=float)
        v = np.asarray(lr, dtype=float)
        where = source or f"schedule {name!r}"
        if s.size == 0:
            raise InputError("no step with an lr", source=where, column="lr")
        if (s != np.round(s)).any() or (s < 0).any():
            raise InputError("steps must be whole numbers >= 0", source=where, column="step")
        order = np.argsort(s, kind="stable")
        s, v = s[order].astype(np.int64), v[order]
        same = np.flatnonzero(np.diff(s) == 0)
        if same.size:
            dup = same[np.flatnonzero(v[same] != v[same + 1])]
            if dup.size:
                raise InputError(f"step {int(s[dup[0]])} has two different lr values "
                                 f"({v[dup[0]]:g} and {v[dup[0] + 1]:g})", source=where, column="lr")
            keep = np.ones(s.size, dtype=bool)
            keep[same + 1] = False
            s, v = s[keep], v[keep]
        if not np.isfinite(v).all() or (v < 0).any():
            bad = int(np.flatnonzero(~np.isfinite(v) | (v < 0))[0])
            raise InputError(f"lr {v[bad]:g} at step {int(s[bad])}: an lr must be finite and >= 0",
                             source=where, column="lr")
        last = int(s[-1]) if total_steps is None else int(total_steps) - 1
        _check_length(max(last, int(s[-1])), where, "step")
        if last < s[-1]:
            raise ParameterError(f"total_steps {total_steps} ends before the last logged step "
                                 f"{int(s[-1])}", "total_steps")
        notes = []
        every = s[0] <= 1 and (np.diff(s) == 1).all()
        if every:
            full = np.empty(int(s[-1]) + 1)
            full[s] = v
            if s[0] == 1:
                full[0] = 0.0
        else:
            grid = np.arange(int(s[-1]) + 1)
            gap = int(np.diff(s).max()) if s.size > 1 else 0
            if s[0] > 0:  # before the first logged step: a linear warmup from 0
                first = int(s[0])
                end = first if warmup is None else min(int(warmup), first)
                head_s, head_v = [0], [0.0]
                if end < first:
                    head_s.append(end)
                    head_v.append(float(v[0]))
                s, v = np.concatenate([head_s, s]), np.concatenate([head_v, v])
                notes.append(f"lr before step {first} taken to rise linearly from 0 at step 0 to "
                             f"{v[-len(v) + len(head_s)]:g} at step {end}")
            full = np.interp(grid, s, v)
            notes.insert(0, f"lr integrated from {int(np.size(steps))} logged steps "
                            f"(linear between them, largest gap {gap} steps)")
        if last > full.size - 1:
            full = np.concatenate([full, np.full(last - full.size + 1, full[-1])])
            notes.append(f"lr held at {full[-1]:g} from step {int(s[-1]) + 1} to {last}")
        return cls(full, name, exact=every and not notes, note="; ".join(notes) or None)


# -- named shapes -----------------------------------------------------------------------------

def _warm(lr: np.ndarray, peak: float, warmup: int) -> np.ndarray:
    """Linear warmup over steps 0..warmup-1 reaching ``peak`` at step ``warmup``."""
    if warmup > 0:
        n = min(warmup, lr.size)
        lr[:n] = peak * np.arange(n) / warmup
    return lr


def constant(steps: int, peak: float, warmup: int = 0) -> np.ndarray:
    return _warm(np.full(int(steps), float(peak)), peak, warmup)


def cosine(steps: int, peak: float, final: float = 0.0, warmup: int = 0,
           decay_steps: int | None = None) -> np.ndarray:
    """Warmup, then a half cosine from ``peak`` at the warmup's end to ``final`` at
    ``decay_steps`` (default: the last step), held at ``final`` after."""
    steps, warmup = int(steps), int(warmup)
    end = int(decay_steps) if decay_steps is not None else steps
    t = np.arange(steps, dtype=float)
    frac = np.clip((t - warmup) / max(1, end - warmup), 0.0, 1.0)
    lr = final + 0.5 * (peak - final) * (1.0 + np.cos(np.pi * frac))
    return _warm(lr, peak, warmup)


def wsd(steps: int, peak: float, final: float = 0.0, warmup: int = 0,
        decay_start: int | None = None, decay: str = "linear", decay_steps: int | None = None
        ) -> np.ndarray:
    """Warmup-stable-decay: ``peak`` until ``decay_start``, then down to ``final`` at the last
    step (``exp``: geometric, ``linear``, ``cosine``, ``sqrt``: 1 - sqrt of the fraction)."""
    steps, warmup = int(steps), int(warmup)
    if decay_start is None:
        decay_start = steps - int(decay_steps) if decay_steps is not None else steps - steps // 5
    start = int(decay_start)
    t = np.arange(steps, dtype=float)
    frac = np.clip((t - start) / max(1, steps - 1 - start), 0.0, 1.0)
    if decay == "exp":
        if final <= 0:
            raise ParameterError("an exp decay needs final > 0", "final")
        lr = peak * (final / peak) ** frac
    elif decay == "linear":
        lr = peak + (final - peak) * frac
    elif decay == "cosine":
        lr = final + 0.5 * (peak - final) * (1.0 + np.cos(np.pi * frac))
    elif decay == "sqrt":
        lr = final + (peak - final) * (1.0 - np.sqrt(frac))
    else:
        raise ParameterError(f"decay {decay!r} is not one of exp, linear, cosine, sqrt", "decay")
    return _warm(lr, peak, warmup)


def step_schedule(steps: int, peak: float, warmup: int = 0, at: Sequence[int] = (),
                  to: Sequence[float] | None = None, factor: float | None = None) -> np.ndarray:
    """``peak`` after the warmup, dropping at the steps ``at`` to the values ``to`` (or by
    ``factor`` at each)."""
    lr = np.full(int(steps), float(peak))
    at = [int(a) for a in at]
    if to is None:
        if factor is None:
            raise ParameterError("a step schedule needs to=... or factor=...", "schedule")
        to = [peak * factor ** (i + 1) for i in range(len(at))]
    if len(to) != len(at):
        raise ParameterError(f"a step schedule needs one value per drop: at has {len(at)}, "
                             f"to has {len(to)}", "schedule")
    for a, v in sorted(zip(at, to, strict=True)):
        lr[a:] = v
    return _warm(lr, peak, warmup)


#: shape -> (function, the keys it takes)
SHAPES: dict[str, tuple] = {
    "constant": (constant, {"steps", "peak", "warmup"}),
    "cosine": (cosine, {"steps", "peak", "final", "warmup", "decay_steps"}),
    "wsd": (wsd, {"steps", "peak", "final", "warmup", "decay_start", "decay", "decay_steps"}),
    "step": (step_schedule, {"steps", "peak", "warmup", "at", "to", "factor"}),
}
_INT_KEYS = {"steps", "warmup", "decay_start", "decay_steps"}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _number(text: str, key: str, spec: str) -> float:
    text = text.strip().replace("_", "")
    mult = 1.0
    if text[-1:] in "kK" and _NUMBER.match(text[:-1]):
        text, mult = text[:-1], 1e3
    if not _NUMBER.match(text):
        raise ParameterError(f"schedule {spec!r}: {key}={text!r} is not a number", "schedule")
    return float(text) * mult


def parse_schedule(spec: str, reader: Callable[[Path], Schedule] | None = None) -> Schedule:
    """``cosine:steps=24000,peak=3e-4,final=3e-5,warmup=2160``, ``wsd:...,decay_start=20000,
    decay=exp``, ``constant:...``, ``step:...,at=8000+12000,to=9e-5+3e-5``, or a file of step and
    lr columns (CSV/Parquet/JSONL; every step: exact, otherwise integrated)."""
    text = spec.strip()
    shape, _, rest = text.partition(":")
    if shape not in SHAPES:
        path = Path(text[5:] if text.startswith("file:") else text)
        if reader is not None and path.is_file():
            return reader(path)
        raise ParameterError(f"schedule {spec!r}: not a file, nor one of "
                             f"{', '.join(f'{s}:' for s in SHAPES)}", "schedule")
    fn, allowed = SHAPES[shape]
    kwargs: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in allowed:
            raise ParameterError(f"schedule {spec!r}: {part!r} is not KEY=VALUE with KEY one of "
                                 f"{', '.join(sorted(allowed))}", "schedule")
        if key == "decay":
            kwargs[key] = value.strip()
        elif key in ("at", "to"):
            kwargs[key] = [_number(v, key, spec) for v in value.split("+")]
        else:
            kwargs[key] = _number(value, key, spec)
    for need in ("steps", "peak"):
        if need not in kwargs:
            raise ParameterError(f"schedule {spec!r} needs {need}=...", "schedule")
    for key in _INT_KEYS & kwargs.keys():
        kwargs[key] = int(round(float(kwargs[key])))  # type: ignore[arg-type]
    if int(kwargs["steps"]) < 2 or float(kwargs["peak"]) <= 0:  # type: ignore[arg-type]
        raise ParameterError(f"schedule {spec!r}: steps must be >= 2 and peak > 0", "schedule")
    _check_length(int(kwargs["steps"]) - 1, f"schedule {spec!r}")  # type: ignore[arg-type]
    lr = fn(**kwargs)  # type: ignore[operator]
    return Schedule(lr, name=shape if not rest else text, exact=True, spec=text)


def parse_schedules(specs: str | Sequence[str],
                    reader: Callable[[Path], Schedule] | None = None) -> list[Schedule]:
    """Several schedules: a list, or one string where each ``shape:`` (or a part without ``=``,
    a file) starts a new one (``cosine:steps=24000,peak=3e-4,wsd:steps=24000,peak=3e-4``)."""
    items = [specs] if isinstance(specs, str) else list(specs)
    out: list[Schedule] = []
    for item in items:
        parts: list[str] = []
        for tok in (t.strip() for t in item.split(",")):
            if not tok:
                continue
            if not parts or tok.partition(":")[0] in SHAPES or "=" not in tok:
                parts.append(tok)
            else:
                parts[-1] += "," + tok
        out.extend(parse_schedule(p, reader) for p in parts)
    return out


def describe(schedule: Schedule) -> str:
    """One line: name, steps, peak and final lr, and how it was obtained."""
    how = "exact per-step lr" if schedule.exact else (schedule.note or "integrated")
    return (f"{schedule.name}: {schedule.steps} steps, peak {schedule.lr.max():.3g}, final "
            f"{schedule.lr[-1]:.3g} ({how})")
