"""The sweep's live display: runs done / running / failed, tokens/s and ETA, with rich."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from scalinglab.sweep.plan import RunSpec
from scalinglab.sweep.runner import Outcome
from scalinglab.sweep.runner import Progress as ProgressProtocol


class RichProgress(ProgressProtocol):
    """Progress measured in FLOPs, so the ETA weighs a big run more than a small one."""

    def __init__(self, console: Console | None = None) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: Any = None
        self.done = self.failed = 0
        self.running: dict[str, int] = {}  # run_id -> tokens so far
        self.total = 0
        self.tokens = 0
        self.t0 = time.perf_counter()

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def _describe(self) -> str:
        rate = self.tokens / max(time.perf_counter() - self.t0, 1e-9)
        return (f"runs {self.done}/{self.total} done · {len(self.running)} in flight · "
                f"{self.failed} failed · {rate:,.0f} tok/s")

    def start(self, total_runs: int, total_flops: float) -> None:
        self.total = total_runs
        self.task = self.bar.add_task(self._describe(), total=max(total_flops, 1.0))

    def run_started(self, spec: RunSpec) -> None:
        self.running[spec.run_id] = 0
        self.bar.update(self.task, description=self._describe())

    def step(self, spec: RunSpec, tokens: int, loss: float) -> None:
        before = self.running.get(spec.run_id, 0)
        self.running[spec.run_id] = tokens
        self.tokens += tokens - before
        self.bar.update(self.task, advance=6.0 * spec.N * (tokens - before),
                        description=self._describe())

    def run_done(self, spec: RunSpec, outcome: Outcome) -> None:
        seen = self.running.pop(spec.run_id, 0)
        if outcome.failed:
            self.failed += 1
            self.bar.console.print(f"[red]failed[/] {spec.run_id} (N={spec.N:,}): "
                                   f"{outcome.record['error']}", highlight=False)
        self.done += 1
        rest = max(spec.D - seen, 0)
        if not outcome.failed:
            self.tokens += rest
        self.bar.update(self.task, advance=6.0 * spec.N * rest, description=self._describe())
