"""The sweep's live display on stderr: the line of :mod:`scalinglab.sweep.progress`, drawn.

On a terminal it is a bar that redraws in place; otherwise (a pipe, a CI log) it is one plain
line per run that ends, so logs read top to bottom. Either way it writes to stderr, leaving
stdout to the command's result (``--json`` output parses).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, TextColumn
from rich.progress import Progress as RichBar

from scalinglab.sweep.progress import (
    Event,
    RunFinished,
    SweepStarted,
    Tally,
    line,
    percent,
)
from scalinglab.sweep.runner import Progress


class RichProgress(Progress):
    """Folds the sweep's events into a :class:`Tally` and draws :func:`line` of it."""

    def __init__(self, console: Console | None = None, live: bool | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal if live is None else live
        self.clock = clock
        self.t0 = clock()
        self.tally = Tally()
        self.bar: Any = None
        self.task: Any = None
        if self.live:
            self.bar = RichBar(TextColumn("{task.description}"), BarColumn(),
                               console=self.console, transient=False)

    def __enter__(self) -> RichProgress:
        if self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task("", total=100)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def say(self, message: str) -> None:
        """A line above the bar (or in the log), e.g. an adaptive round's decision."""
        self._say(escape(message))

    def close(self) -> None:
        """Stop drawing the bar now (its last state stays on screen); idempotent."""
        if self.bar is not None:
            self._redraw()
            self.bar.stop()
            self.bar = None

    def text(self) -> str:
        return line(self.tally, self.clock() - self.t0)

    def _say(self, message: str) -> None:
        printer = self.bar.console if self.bar is not None else self.console
        printer.print(message, highlight=False, soft_wrap=True)

    def _redraw(self) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=percent(self.tally),
                            description=escape(self.text()))

    def handle(self, event: Event) -> None:
        self.tally = self.tally.after(event)
        if isinstance(event, SweepStarted):
            self.t0 = self.clock()
            if not self.live:
                self._say(self.text())
        elif isinstance(event, RunFinished):
            if event.failed:
                self._say(f"[red]failed[/] {event.run_id}: {escape(str(event.error))}")
            if not self.live:
                what = "failed" if event.failed else (
                    f"finished, loss {event.loss:.4f}" if event.loss is not None else "finished")
                self._say(f"{event.run_id} {what} · {escape(self.text())}")
        self._redraw()
