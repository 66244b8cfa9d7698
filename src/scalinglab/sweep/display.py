"""The one progress display: every long job's progress on stderr, drawn the same way.

:class:`ProgressDisplay` draws a line of text (and a bar, when the work's fraction is known): on
a terminal it redraws in place; otherwise (a pipe, a CI log) it prints plain lines, so logs read
top to bottom. Either way it writes to stderr, leaving stdout to the command's result
(``--json`` output parses). Two faces of it:

- :class:`RichProgress`, the sweep's (``sweep run``, ``sweep auto``, ``demo``): the line of
  :mod:`scalinglab.sweep.progress` (runs done / total, in flight, failed, elapsed, ETA), one
  plain line per run that ends when not on a terminal;
- :func:`stage_progress`, every other long job's (fits and their bootstrap, ``design
  simulate``, the report): ``update(stage, done, total)`` shown as
  :func:`~scalinglab.sweep.progress.work_line`, one plain line per stage that runs past
  :data:`LOG_AFTER_S` when not on a terminal.

Nothing here imports torch: the fit commands use it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape

from scalinglab.sweep.progress import (
    Event,
    Progress,
    RunFinished,
    SweepStarted,
    Tally,
    line,
    percent,
    work_line,
)

#: ``update(stage, done, total)``: what a long job calls as it goes (total 0: not known)
StageUpdate = Callable[[str, int, int], None]


class ProgressDisplay:
    """A line of progress on stderr: a live bar on a terminal, plain lines elsewhere.

    ``show(text, fraction)`` redraws the live line (and its bar, ``fraction`` in [0, 1]; None
    for work of unknown size); on a log it does nothing, and ``say`` prints what a log should
    keep. ``transient`` clears the live line at the end (a fit's bar), else it stays (a sweep's).
    """

    def __init__(self, console: Console | None = None, live: bool | None = None,
                 transient: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal if live is None else live
        self.transient = transient
        self.bar: Any = None
        self.task: Any = None
        self._text, self._fraction = "", None  # the last line, drawn when the bar starts

    def __enter__(self) -> ProgressDisplay:
        if self.live and self.bar is None:
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as RichBar

            self.bar = RichBar(TextColumn("{task.description}"), BarColumn(),
                               console=self.console, transient=self.transient)
            self.bar.start()
            self.task = self.bar.add_task(escape(self._text), total=100)
            self.show(self._text, self._fraction)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def show(self, text: str, fraction: float | None = None) -> None:
        self._text, self._fraction = text, fraction
        if self.bar is not None and self.task is not None:
            done = None if fraction is None else 100 * min(1.0, max(0.0, fraction))
            self.bar.update(self.task, description=escape(text), completed=done or 0,
                            total=100 if fraction is not None else None)

    def say(self, message: str, markup: bool = False) -> None:
        """A line above the live one (or in the log). ``markup``: the message holds rich
        markup (``[red]failed[/]``) and escapes its own text."""
        printer = self.bar.console if self.bar is not None else self.console
        printer.print(message if markup else escape(message), highlight=False, soft_wrap=True)

    def close(self) -> None:
        """Stop drawing now (the last line stays on screen unless transient); idempotent."""
        if self.bar is not None:
            self.show(self._text, self._fraction)
            self.bar.stop()
            self.bar = None


#: on a log, a fit's or a simulation's stage is written once it has run this long (seconds): a
#: ten-minute bootstrap is never silent in a CI log, while a one-second fit adds no line, so a
#: command that then fails still says so in one line on stderr (tests/test_hostile_files.py).
#: Jobs made of many stages (the report, the demo) write each as it starts (``log_after=0``)
LOG_AFTER_S = 10.0


class _Stages:
    """``update(stage, done, total)`` over one :class:`ProgressDisplay` (kept as ``display``)."""

    def __init__(self, display: ProgressDisplay, labels: dict[str, str] | None,
                 clock: Callable[[], float], log_after: float = LOG_AFTER_S) -> None:
        self.display = display
        self.labels = labels or {}
        self.clock = clock
        self.log_after = log_after
        self.began: dict[str, float] = {}
        self.logged: set[str] = set()

    def __call__(self, stage: str, done: int, total: int) -> None:
        name = self.labels.get(stage, stage)
        self.began.setdefault(stage, self.clock())
        elapsed = self.clock() - self.began[stage]
        text = work_line(name, done, total or None, elapsed)
        if not self.display.live and stage not in self.logged and elapsed >= self.log_after:
            self.logged.add(stage)
            self.display.say(f"{name} ..." if self.log_after <= 0 else text)
        self.display.show(text, done / total if total else None)


@contextmanager
def stage_progress(enabled: bool = True, console: Console | None = None, live: bool | None = None,
                   labels: dict[str, str] | None = None,
                   clock: Callable[[], float] = time.perf_counter,
                   log_after: float = LOG_AFTER_S) -> Iterator[StageUpdate]:
    """``update(stage, done, total)`` for a long job, shown as ``stage 3/10 · 12s elapsed ·
    eta 40s`` (elapsed and ETA per stage, from the rate so far). On a terminal the line redraws
    and is cleared at the end; on a log, one line for each stage that runs ``log_after`` seconds
    (0: each as it starts, ``stage ...``), so a slow step is never silent. ``labels`` renames
    stages for people (``starts`` -> ``optimising starts``)."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    display = ProgressDisplay(console, live=live, transient=True)
    with display:
        yield _Stages(display, labels, clock, log_after)


class RichProgress(Progress):
    """The sweep's display: folds its events into a :class:`Tally` and shows :func:`line` of
    it (runs done / total, in flight, failed, percent, throughput, elapsed, ETA)."""

    def __init__(self, console: Console | None = None, live: bool | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.display = ProgressDisplay(console, live=live)
        self.console = self.display.console
        self.live = self.display.live
        self.clock = clock
        self.t0 = clock()
        self.tally = Tally()

    @property
    def bar(self) -> Any:
        return self.display.bar

    def __enter__(self) -> RichProgress:
        self.display.__enter__()
        self._redraw()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def say(self, message: str) -> None:
        """A line above the bar (or in the log), e.g. an adaptive round's decision."""
        self.display.say(message)

    def close(self) -> None:
        """Stop drawing the bar now (its last state stays on screen); idempotent."""
        if self.display.bar is not None:
            self._redraw()
        self.display.close()

    def text(self) -> str:
        return line(self.tally, self.clock() - self.t0)

    def _redraw(self) -> None:
        if self.display.bar is not None:
            self.display.show(self.text(), percent(self.tally) / 100)

    def handle(self, event: Event) -> None:
        self.tally = self.tally.after(event)
        if isinstance(event, SweepStarted):
            self.t0 = self.clock()
            if not self.live:
                self.display.say(self.text())
        elif isinstance(event, RunFinished):
            if event.failed:
                self.display.say(f"[red]failed[/] {escape(event.run_id)}: "
                                 f"{escape(str(event.error))}", markup=True)
            if not self.live:
                what = "failed" if event.failed else (
                    f"finished, loss {event.loss:.4f}" if event.loss is not None else "finished")
                self.display.say(f"{event.run_id} {what} · {self.text()}")
        self._redraw()
