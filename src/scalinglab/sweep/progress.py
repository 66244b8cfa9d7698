"""A sweep's progress as a pure function of its events: what the progress line says.

The runner emits four events: the sweep started (how many runs the plan has and how many the
store already holds), a run started (in a worker, when it really begins, not when it was
queued), a run reached a step, a run ended (finished or failed). :func:`fold` turns any
sequence of them into a :class:`Tally`; :func:`line` renders it. Display code only draws.

What the line promises:

* ``done`` counts every run with a result: finished or failed, this session or already in the
  store. A resumed sweep starts at ``5/20 done`` (never ``0/0``); a sweep with nothing left
  to train says ``20/20 done``.
* ``in flight`` counts runs a worker has started and not ended: queued runs are not in it.
* The percentage is work (FLOPs) with a result or trained so far, floored, and never 100 while
  any run is in flight or still to come (a run at its last step still has its held-out
  evaluation and its write to the store ahead of it).
* The time elapsed since the sweep started, and the ETA: the work left at the throughput this
  session measured (FLOPs trained, finished or in flight, per second of wall time: parallel
  workers count together); by runs per second when the plan's FLOPs are unknown. No ETA is
  guessed before anything was measured.

Every other long job (fits, simulations, the report) shows its progress with the same words,
:func:`work_line` (``stage 3/10 · 12s elapsed · eta 40s``), drawn by the one display of
:mod:`scalinglab.sweep.display`.

Events may arrive out of order across processes (a worker's "step" can reach the driver after
the driver has recorded the run's result); a run that has ended ignores later events.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType


@dataclass(frozen=True)
class SweepStarted:
    planned: int  # runs in the plan
    skipped: int  # of them already in the store (finished, or failed and not retried)
    flops_planned: float  # 6ND over every run of the plan
    flops_skipped: float


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    flops_per_token: float  # 6N
    tokens: int  # D, planned


@dataclass(frozen=True)
class RunStep:
    run_id: str
    tokens: int  # trained so far
    loss: float


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    failed: bool
    flops: float  # the run's planned FLOPs (6ND), counted as settled work
    tokens: int  # the run's planned tokens
    error: str | None = None
    loss: float | None = None  # its held-out loss, when it finished


Event = SweepStarted | RunStarted | RunStep | RunFinished


class Progress:
    """Receives the sweep's events; ignores them by default.

    The CLI's display (:class:`scalinglab.sweep.display.RichProgress`) folds them into its
    line; a notebook can log them.
    """

    def handle(self, event: Event) -> None: ...


@dataclass(frozen=True)
class _Flight:
    flops_per_token: float
    tokens_planned: int
    tokens: int = 0


@dataclass(frozen=True)
class Tally:
    """Where a sweep stands. Immutable: :meth:`after` returns the next tally."""

    planned: int = 0
    skipped: int = 0
    finished: int = 0
    failed: int = 0
    flops_planned: float = 0.0
    flops_skipped: float = 0.0
    flops_settled: float = 0.0  # runs with a result this session
    tokens_trained: int = 0  # this session, for tokens/s
    in_flight: Mapping[str, _Flight] = field(default_factory=lambda: MappingProxyType({}))
    settled: frozenset[str] = frozenset()

    @property
    def done(self) -> int:
        return self.skipped + self.finished + self.failed

    @property
    def complete(self) -> bool:
        return self.done >= self.planned and not self.in_flight

    @property
    def flops_in_flight(self) -> float:
        return sum(min(f.tokens, f.tokens_planned) * f.flops_per_token
                   for f in self.in_flight.values())

    @property
    def flops_this_session(self) -> float:
        return self.flops_settled + self.flops_in_flight

    @property
    def fraction(self) -> float:
        """Share of the plan's work done, in [0, 1]: by FLOPs, by runs when FLOPs are unknown."""
        if self.planned == 0:
            return 1.0
        if self.flops_planned > 0:
            done = self.flops_skipped + self.flops_this_session
            return min(1.0, done / self.flops_planned)
        return min(1.0, self.done / self.planned)

    def after(self, event: Event) -> Tally:
        if isinstance(event, SweepStarted):
            return Tally(planned=event.planned, skipped=event.skipped,
                         flops_planned=event.flops_planned, flops_skipped=event.flops_skipped)
        if event.run_id in self.settled:
            return self  # a late event of a run that has ended
        flights = dict(self.in_flight)
        if isinstance(event, RunStarted):
            lost = flights[event.run_id].tokens if event.run_id in flights else 0  # a retry
            flights[event.run_id] = _Flight(event.flops_per_token, event.tokens)
            return replace(self, in_flight=MappingProxyType(flights),
                           tokens_trained=self.tokens_trained - lost)
        if isinstance(event, RunStep):
            flight = flights.get(event.run_id)
            if flight is None:  # its start event has not arrived: nothing to size it by yet
                return self
            gained = max(0, event.tokens - flight.tokens)
            flights[event.run_id] = replace(flight, tokens=max(flight.tokens, event.tokens))
            return replace(self, in_flight=MappingProxyType(flights),
                           tokens_trained=self.tokens_trained + gained)
        # RunFinished
        flight = flights.pop(event.run_id, None)
        seen = flight.tokens if flight else 0
        rest = 0 if event.failed else max(0, event.tokens - seen)
        return replace(
            self,
            finished=self.finished + (not event.failed),
            failed=self.failed + event.failed,
            flops_settled=self.flops_settled + event.flops,
            tokens_trained=self.tokens_trained + rest,
            in_flight=MappingProxyType(flights),
            settled=self.settled | {event.run_id},
        )


def fold(events: Iterable[Event], start: Tally | None = None) -> Tally:
    tally = start or Tally()
    for event in events:
        tally = tally.after(event)
    return tally


def percent(tally: Tally) -> int:
    """Whole percent done, floored; 100 only when every run has a result and none is running."""
    if tally.complete:
        return 100
    return min(99, math.floor(100 * tally.fraction))


def eta_s(tally: Tally, elapsed_s: float) -> float | None:
    """Seconds left at this session's measured throughput; None before any was measured.

    By FLOPs (settled and in flight), so a large run left counts for what it is; by runs when
    the plan's FLOPs are unknown."""
    if tally.complete:
        return 0.0
    if elapsed_s <= 0:
        return None
    if tally.flops_planned > 0:
        left = max(0.0, tally.flops_planned - tally.flops_skipped - tally.flops_this_session)
        return rate_eta(tally.flops_this_session, left, elapsed_s)
    return rate_eta(tally.finished + tally.failed, tally.planned - tally.done, elapsed_s)


def rate_eta(done: float, left: float, elapsed_s: float) -> float | None:
    """Seconds to do ``left`` more at the rate measured so far (``done`` in ``elapsed_s``);
    None before anything was done (no rate to go by)."""
    if done <= 0 or elapsed_s <= 0 or not math.isfinite(done / elapsed_s):
        return None
    return max(0.0, left) * elapsed_s / done


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def line(tally: Tally, elapsed_s: float) -> str:
    """``runs 7/20 done · 2 in flight · 1 failed · 5 from the store · 43% · 1,234 tok/s ·
    1m10s elapsed · eta 3m05s``"""
    parts = [f"runs {tally.done}/{tally.planned} done", f"{len(tally.in_flight)} in flight",
             f"{tally.failed} failed"]
    if tally.skipped:
        parts.append(f"{tally.skipped} from the store")
    parts.append(f"{percent(tally)}%")
    if elapsed_s > 0 and tally.tokens_trained:
        parts.append(f"{tally.tokens_trained / elapsed_s:,.0f} tok/s")
    if elapsed_s > 0:
        parts.append(f"{duration(elapsed_s)} elapsed")
    if not tally.complete:
        parts.append(f"eta {duration(eta_s(tally, elapsed_s))}")
    return " · ".join(parts)


def snapshot(tally: Tally, elapsed_s: float, name: str = "", now: float | None = None,
             interrupted: bool = False) -> dict[str, object]:
    """Where a sweep stands, as data a monitor can show without the sweep's process: runs
    planned / done / running / failed, percent, elapsed and ETA seconds at ``now`` (Unix time),
    and the line the terminal shows."""
    eta = eta_s(tally, elapsed_s)
    return {"name": name, "planned": tally.planned, "done": tally.done,
            "running": len(tally.in_flight), "failed": tally.failed, "skipped": tally.skipped,
            "percent": percent(tally), "elapsed_s": round(max(0.0, elapsed_s), 3),
            "eta_s": None if eta is None else round(eta, 3), "complete": tally.complete,
            "interrupted": interrupted, "updated_at": None if now is None else round(now, 3),
            "line": line(tally, elapsed_s)}


def work_line(stage: str, done: int, total: int | None, elapsed_s: float) -> str:
    """One stage of a long job: ``bootstrap fits 40/200 · 12s elapsed · eta 48s``; without a
    known total, ``optimising starts · 3s elapsed``. The ETA is the rate so far (items per
    second since the stage began) over the items left."""
    parts = [f"{stage} {done}/{total}" if total else stage]
    if elapsed_s > 0:
        parts.append(f"{duration(elapsed_s)} elapsed")
    if total and done < total:
        parts.append(f"eta {duration(rate_eta(done, total - done, elapsed_s))}")
    return " · ".join(parts)
