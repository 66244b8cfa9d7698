"""The progress line is a pure function of the sweep's events: done, in flight, failed, percent."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from scalinglab.sweep.display import RichProgress, stage_progress
from scalinglab.sweep.progress import (
    RunFinished,
    RunStarted,
    RunStep,
    SweepStarted,
    Tally,
    eta_s,
    fold,
    line,
    percent,
)

# three runs of 6N = 60 FLOPs/token: 100, 200 and 300 tokens -> 6,000 + 12,000 + 18,000 FLOPs
RUNS = {"a": 100, "b": 200, "c": 300}
FPT = 60.0


def begin(skipped: int = 0, planned: int = 3) -> SweepStarted:
    total = FPT * sum(RUNS.values())
    return SweepStarted(planned, skipped, total, 0.0 if not skipped else FPT * RUNS["a"])


def started(run: str) -> RunStarted:
    return RunStarted(run, FPT, RUNS[run])


def finished(run: str, failed: bool = False) -> RunFinished:
    return RunFinished(run, failed, FPT * RUNS[run], RUNS[run], "boom" if failed else None)


def test_a_fresh_sweep_starts_at_zero_of_all_its_runs():
    t = fold([begin()])
    assert (t.done, t.planned, len(t.in_flight), t.failed) == (0, 3, 0, 0)
    assert percent(t) == 0
    assert line(t, 0.0).startswith("runs 0/3 done · 0 in flight · 0 failed · 0%")


def test_a_resumed_sweep_counts_the_runs_it_skipped_never_0_of_0():
    t = fold([begin(skipped=1)])
    assert (t.done, t.planned) == (1, 3)
    assert line(t, 0.0).startswith("runs 1/3 done · 0 in flight · 0 failed · 1 from the store")
    assert percent(t) == 16  # run a's 6,000 of 36,000 FLOPs, floored


def test_a_sweep_with_nothing_left_to_train_is_complete_at_once():
    t = fold([SweepStarted(4, 4, 1e12, 1e12)])
    assert t.complete and percent(t) == 100
    assert line(t, 0.0) == "runs 4/4 done · 0 in flight · 0 failed · 4 from the store · 100%"


def test_only_runs_a_worker_has_started_are_in_flight():
    # a worker pool queues b and c; only a has begun
    t = fold([begin(), started("a")])
    assert list(t.in_flight) == ["a"] and "1 in flight" in line(t, 1.0)


def test_never_100_percent_while_a_run_is_in_flight():
    # every token of every run trained, the last one still evaluating and being written
    events = [begin(), started("a"), RunStep("a", 100, 2.0), finished("a"),
              started("b"), RunStep("b", 200, 2.0), finished("b"),
              started("c"), RunStep("c", 300, 2.0)]
    t = fold(events)
    assert t.fraction == 1.0 and percent(t) == 99
    t = t.after(finished("c"))
    assert t.complete and percent(t) == 100


def test_percent_is_floored_work_by_flops():
    # 35,999 of 36,000 FLOPs: rounding would say 100
    t = fold([begin(), finished("a"), finished("b"), started("c"), RunStep("c", 299, 2.0)])
    assert t.fraction == pytest.approx(35_940 / 36_000) and percent(t) == 99
    t = fold([begin(), started("c"), RunStep("c", 150, 2.0)])  # 9,000 / 36,000
    assert percent(t) == 25


def test_failed_runs_are_done_and_counted_apart():
    t = fold([begin(), started("a"), finished("a", failed=True), started("b")])
    assert (t.done, t.failed, t.finished, len(t.in_flight)) == (1, 1, 0, 1)
    assert line(t, 1.0).startswith("runs 1/3 done · 1 in flight · 1 failed")


def test_late_events_of_an_ended_run_are_ignored():
    # across processes, a worker's step can reach the driver after the run's result
    t = fold([begin(), started("a"), finished("a"), RunStep("a", 50, 2.0), started("a")])
    assert not t.in_flight and t.done == 1
    t = fold([begin(), RunStep("b", 50, 2.0)])  # a step before its start: nothing to size it
    assert not t.in_flight and t.tokens_trained == 0


def test_a_retried_task_restarts_its_count():
    t = fold([begin(), started("a"), RunStep("a", 60, 2.0), started("a"), RunStep("a", 30, 2.0)])
    assert t.in_flight["a"].tokens == 30 and t.tokens_trained == 30


def test_tokens_per_second_count_what_was_trained_this_session():
    # steps are throttled in workers: a finished run's unreported tail is counted at its end;
    # a failed run's is not (it never trained it)
    t = fold([begin(), started("a"), RunStep("a", 40, 2.0), finished("a"),
              started("b"), RunStep("b", 50, 2.0), finished("b", failed=True)])
    assert t.tokens_trained == 100 + 50
    assert "15 tok/s" in line(t, 10.0)


def test_the_eta_is_the_flops_left_at_this_sessions_rate():
    t = fold([begin(skipped=1), finished("b")])  # 12,000 FLOPs in 10 s; 18,000 left
    assert eta_s(t, 10.0) == pytest.approx(15.0)
    assert line(t, 10.0).endswith("eta 15s")
    assert eta_s(fold([begin()]), 5.0) is None  # nothing measured yet


@st.composite
def schedules(draw: st.DrawFn) -> tuple[int, list]:
    """A sweep of n runs on k workers, with events interleaved as processes deliver them."""
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, 3))
    skipped = draw(st.integers(0, n))
    tokens = {f"r{i}": draw(st.integers(1, 50)) for i in range(n)}
    todo = list(tokens)[skipped:]
    events: list = [SweepStarted(n, skipped, float(sum(tokens.values())),
                                 float(sum(tokens[r] for r in list(tokens)[:skipped])))]
    running: dict[str, int] = {}
    while todo or running:
        # "end" first, so the simplest schedule (what hypothesis shrinks towards) terminates
        moves = (["end", "step"] if running else []) + (["start"] if todo and len(running) < k else [])
        move = draw(st.sampled_from(moves))
        if move == "start":
            run = todo.pop(0)
            running[run] = 0
            events.append(RunStarted(run, 1.0, tokens[run]))
        else:
            run = draw(st.sampled_from(sorted(running)))
            if move == "step":
                running[run] = min(tokens[run], running[run] + draw(st.integers(1, 20)))
                events.append(RunStep(run, running[run], 1.0))
            else:
                del running[run]
                events.append(RunFinished(run, draw(st.booleans()), float(tokens[run]), tokens[run]))
    return n, events


@settings(max_examples=200, deadline=None)
@given(schedules())
def test_any_schedule_reaches_100_only_when_every_run_has_a_result(schedule):
    n, events = schedule
    t = Tally()
    for i, event in enumerate(events):
        t = t.after(event)
        pending = n - t.done
        assert 0 <= percent(t) <= 100
        assert (percent(t) == 100) == (pending == 0 and not t.in_flight)
        assert t.done + len(t.in_flight) <= n
        if i:
            assert f"runs {t.done}/{n} done · {len(t.in_flight)} in flight · {t.failed} failed" in line(t, 1.0)
    assert t.complete and t.done == n


def test_the_display_prints_one_plain_line_per_run_when_not_on_a_terminal():
    out = io.StringIO()
    clock = iter([0.0, 0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]).__next__
    display = RichProgress(Console(file=out, width=200), live=False, clock=clock)
    with display:
        for event in [begin(), started("a"), finished("a"),
                      started("b"), RunFinished("b", True, 12_000.0, 200, "diverged at step 3")]:
            display.handle(event)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("runs 0/3 done · 0 in flight · 0 failed · 0%")
    assert lines[1].startswith("a finished · runs 1/3 done · 0 in flight · 0 failed · 16%")
    assert lines[2] == "failed b: diverged at step 3"
    assert lines[3].startswith("b failed · runs 2/3 done · 0 in flight · 1 failed · 50%")
    assert len(lines) == 4


def test_the_live_bar_shows_the_tallys_percent_not_a_rounded_one():
    display = RichProgress(Console(file=io.StringIO(), width=200), live=True)
    with display:
        for event in [begin(), finished("a"), finished("b"), started("c"), RunStep("c", 299, 2.0)]:
            display.handle(event)
        task = display.bar.tasks[0]
        assert task.completed == 99 and "99%" in task.description


# -- elapsed time and the ETA, on a fake clock ---------------------------------------------------


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_sweep_line_shows_elapsed_time_and_an_eta_from_the_measured_throughput():
    out, clock = io.StringIO(), FakeClock()
    with RichProgress(Console(file=out, width=200), live=False, clock=clock) as display:
        display.handle(begin())
        display.handle(started("a"))
        clock.now += 10.0
        display.handle(finished("a"))  # 6,000 of 36,000 FLOPs in 10 s: 30,000 left, 50 s
        clock.now += 5.0
        display.handle(started("b"))
        display.handle(RunStep("b", 100, 2.0))  # 12,000 in 15 s: 24,000 left at 800/s, 30 s
        assert display.text().endswith("· 15s elapsed · eta 30s")
    lines = out.getvalue().splitlines()
    assert lines[0] == "runs 0/3 done · 0 in flight · 0 failed · 0% · eta ?"  # nothing measured
    assert lines[1] == ("a finished · runs 1/3 done · 0 in flight · 0 failed · 16% · "
                        "10 tok/s · 10s elapsed · eta 50s")


def test_without_the_plans_flops_the_eta_goes_by_runs_per_second():
    t = fold([SweepStarted(4, 1, 0.0, 0.0), started("a"), RunFinished("a", False, 0.0, 100),
              started("b"), RunFinished("b", True, 0.0, 200)])
    # 2 runs ended in 60 s; 1 left
    assert eta_s(t, 60.0) == pytest.approx(30.0)
    assert line(t, 60.0).endswith("1m00s elapsed · eta 30s")
    assert eta_s(fold([SweepStarted(4, 0, 0.0, 0.0)]), 60.0) is None


def test_every_other_long_job_shows_its_stage_with_elapsed_time_and_an_eta():
    out, clock = io.StringIO(), FakeClock()
    with stage_progress(console=Console(file=out, width=200), live=True, clock=clock,
                        labels={"bootstrap": "bootstrap fits"}) as update:
        update("bootstrap", 0, 200)
        clock.now += 12.0
        update("bootstrap", 40, 200)  # 40 in 12 s: 160 left, 48 s
        task = update.display.bar.tasks[0]
        assert task.description == "bootstrap fits 40/200 · 12s elapsed · eta 48s"
        assert task.completed == 20  # percent of the stage
        update("starts", 3, 0)  # a stage of unknown size: no bar fraction, no ETA
        clock.now += 3.0
        update("starts", 5, 0)
        assert task.description == "starts · 3s elapsed"


def test_on_a_log_a_slow_stage_is_one_line_and_a_quick_one_none():
    out, clock = io.StringIO(), FakeClock()
    with stage_progress(console=Console(file=out, width=200), live=False, clock=clock) as update:
        for done in range(0, 31):
            update("simulated studies", done, 30)  # 30 s: said once, when it passes 10 s
            clock.now += 1.0
        update("report", 0, 1)  # done within a second: a log gains nothing from it
        clock.now += 0.5
        update("report", 1, 1)
    assert out.getvalue().splitlines() == ["simulated studies 10/30 · 10s elapsed · eta 20s"]
    # a job of many stages (the report, the demo) writes each as it starts
    out, clock = io.StringIO(), FakeClock()
    with stage_progress(console=Console(file=out, width=200), live=False, clock=clock,
                        log_after=0.0) as update:
        update("reading runs", 0, 1)
        update("reading runs", 1, 1)
        update("drawing", 0, 3)
    assert out.getvalue().splitlines() == ["reading runs ...", "drawing ..."]


def test_one_progress_helper_draws_every_progress_display():
    """No face draws a bar of its own: rich.progress is imported by the one display only."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "src" / "scalinglab"
    drawers = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "rich.progress" or n.startswith("rich.progress.") for n in names):
                drawers.append(path.relative_to(package).as_posix())
    assert sorted(set(drawers)) == ["sweep/display.py"]
