"""Running plans: every outcome reaches the store once, reruns resume, failures are kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scalinglab.errors import InputError
from scalinglab.runs.store import RunStore
from scalinglab.sweep.data import DataSpec
from scalinglab.sweep.model import ModelConfig
from scalinglab.sweep.plan import RunSpec, SweepPlan
from scalinglab.sweep.progress import RunStarted, RunStep, Tally
from scalinglab.sweep.runner import Progress, run_plan
from scalinglab.sweep.train import TrainConfig


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DataSpec:
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(1)
    words = ["def", "return", "self", "import", "class", "for", "in", "if", "else", "None"]
    (folder / "code.txt").write_text(" ".join(rng.choice(words, 40_000)))
    return DataSpec(source=str(folder / "code.txt"))


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))


def spec(data: DataSpec, d: int = 32, lr: float = 1e-2, steps: int = 12) -> RunSpec:
    model = ModelConfig(d_model=d, n_layers=1, n_heads=2, seq_len=32)
    return RunSpec(model, TrainConfig(lr=lr, batch_tokens=256, steps=steps, eval_tokens=2048),
                   data, {"sweep": "t"})


def plan_of(*runs: RunSpec) -> SweepPlan:
    return SweepPlan("t", "custom", list(runs), runs[0].data)


def test_finished_runs_land_in_the_store_with_their_curves(tmp_path, data):
    store = RunStore(tmp_path / "s.duckdb")
    plan = plan_of(spec(data, 32), spec(data, 64))
    report = run_plan(plan, store)
    assert (report.finished, report.failed, report.skipped) == (2, 0, 0)
    runs = store.runs()
    assert sorted(runs["run_id"]) == sorted(r.run_id for r in plan.runs)
    row = runs.set_index("run_id").loc[plan.runs[1].run_id]
    assert row["N"] == plan.runs[1].N and row["D"] == 12 * 256 and row["C"] == 6 * row["N"] * row["D"]
    assert row["lr"] == 1e-2 and row["batch_tokens"] == 256 and row["seq_len"] == 32
    assert row["loss"] == row["extra"]["eval_loss"]
    for key in ("train_loss", "ema_loss", "tokens_per_s", "wall_time_s", "peak_mem_bytes",
                "C_attention", "embedding_params"):
        assert row["extra"][key] > 0
    assert row["tags"]["sweep"] == "t" and "architecture" in row["tags"]
    curve = store.curve(plan.runs[1].run_id)
    assert len(curve) == 12
    # the runner's clock along the curve: seconds since the run started, rising, and within
    # the run's whole wall time (which adds the final held-out evaluation and the write)
    wall = curve["wall_s"].to_numpy()
    assert (wall > 0).all() and (np.diff(wall) > 0).all()
    assert wall[-1] <= row["extra"]["wall_time_s"]
    # where the sweep stands is kept in the store for a monitor that only reads it
    state = store.sweep_progress()
    assert (state["name"], state["planned"], state["done"], state["running"], state["failed"],
            state["complete"], state["eta_s"]) == ("t", 2, 2, 0, 0, True, 0.0)


def test_a_rerun_skips_what_is_done(tmp_path, data):
    store = RunStore(tmp_path / "s.duckdb")
    plan = plan_of(spec(data, 32), spec(data, 64))
    run_plan(plan_of(plan.runs[0]), store)
    report = run_plan(plan, store)
    assert (report.skipped, report.finished) == (1, 1)
    report = run_plan(plan, store)
    assert (report.skipped, report.finished) == (2, 0)
    assert store.counts() == {"finished": 2}


def test_a_diverging_run_is_recorded_as_failed_and_the_sweep_goes_on(tmp_path, data):
    store = RunStore(tmp_path / "s.duckdb")
    bad, good = spec(data, 32, lr=1e30), spec(data, 64)
    report = run_plan(plan_of(bad, good), store)
    assert (report.finished, report.failed) == (1, 1)
    failed = store.run(bad.run_id)
    assert failed["status"] == "failed" and "diverged" in failed["error"]
    assert failed["N"] == bad.N and failed["D"] == bad.D  # planned size kept for the record
    assert store.has_run(good.run_id)
    assert run_plan(plan_of(bad, good), store).skipped == 2  # a failure is a result
    assert run_plan(plan_of(bad, good), store, retry_failed=True).failed == 1


def test_a_crashing_run_is_recorded_with_its_error(tmp_path, data, monkeypatch):
    # a crash the plan cannot foresee (the device runs out of memory mid-run): the runner's
    # handling is under test, so training itself is made to fail
    import scalinglab.sweep.runner as runner

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(runner, "train", out_of_memory)
    store = RunStore(tmp_path / "s.duckdb")
    crash = spec(data, 32)
    report = run_plan(plan_of(crash), store)
    rec = store.run(crash.run_id)
    assert report.failed == 1 and rec["status"] == "failed"
    assert rec["error"].startswith("RuntimeError: CUDA out of memory") and "test_sweep_runner.py" in rec["error"]


def test_a_run_the_data_cannot_feed_is_refused_before_anything_trains(tmp_path, data):
    store = RunStore(tmp_path / "s.duckdb")
    good = spec(data, 32)
    small_vocab = RunSpec(ModelConfig(d_model=32, n_layers=1, n_heads=2, seq_len=32, vocab_size=100),
                          TrainConfig(lr=1e-2, batch_tokens=256, steps=5), data)
    with pytest.raises(InputError, match="vocab_size.*smaller than the vocabulary") as exc:
        run_plan(plan_of(good, small_vocab), store)
    assert (exc.value.row, exc.value.column) == ("run 2", "vocab_size")
    assert store.runs(status=None).empty  # not even the good run was trained


class InterruptSecondRun(Progress):
    def __init__(self) -> None:
        self.started = 0

    def handle(self, event) -> None:
        if isinstance(event, RunStarted):
            self.started += 1
        if isinstance(event, RunStep) and self.started == 2:
            raise KeyboardInterrupt


def test_ctrl_c_loses_only_the_run_in_flight(tmp_path, data):
    store = RunStore(tmp_path / "s.duckdb")
    plan = plan_of(spec(data, 32), spec(data, 64), spec(data, 96))
    report = run_plan(plan, store, progress=InterruptSecondRun())
    assert report.interrupted and report.finished == 1
    assert store.counts() == {"finished": 1}
    report = run_plan(plan, store)
    assert (report.skipped, report.finished) == (1, 2)


class Recorder(Progress):
    def __init__(self) -> None:
        self.events: list = []

    def handle(self, event) -> None:
        self.events.append(event)


def test_worker_processes_train_runs_side_by_side_and_the_driver_writes_each_once(tmp_path, data):
    store = RunStore(tmp_path / "s.duckdb")
    plan = plan_of(spec(data, 32), spec(data, 64), spec(data, 32, lr=1e30), spec(data, 96))
    recorder = Recorder()
    report = run_plan(plan, store, workers=2, progress=recorder)
    assert (report.finished, report.failed, report.concurrent) == (3, 1, 2)
    every = store.runs(status=None)
    assert sorted(every["run_id"]) == sorted(r.run_id for r in plan.runs)
    assert "diverged" in store.run(plan.runs[2].run_id)["error"]
    assert all(len(store.curve(r.run_id)) == 12 for r in (plan.runs[0], plan.runs[1], plan.runs[3]))
    # the workers said when each run began, so "in flight" never counted a queued run
    assert {e.run_id for e in recorder.events if isinstance(e, RunStarted)} == set(every["run_id"])
    tally, most = Tally(), 0
    for event in recorder.events:
        tally = tally.after(event)
        most = max(most, len(tally.in_flight))
    assert most <= 2 and tally.complete
    # and the runs' own clocks agree: never more than two at once
    edges = sorted([(e["started_at"], 1) for e in every["extra"]]
                   + [(e["ended_at"], -1) for e in every["extra"]])
    depth = [sum(d for _, d in edges[:i + 1]) for i in range(len(edges))]
    assert max(depth) <= 2


def test_worker_processes_train_the_same_runs_as_one_process(tmp_path, data):
    plan = plan_of(spec(data, 32), spec(data, 64))
    alone = RunStore(tmp_path / "a.duckdb")
    pooled = RunStore(tmp_path / "b.duckdb")
    run_plan(plan, alone, cpus_per_run=1)
    run_plan(plan, pooled, workers=2, cpus_per_run=1)
    a, b = alone.runs().set_index("run_id"), pooled.runs().set_index("run_id")
    assert (a["loss"] == b.loss[a.index]).all()  # one thread each: bit for bit


@pytest.mark.slow
def test_the_ray_backend_writes_each_result_exactly_once(tmp_path, data):
    pytest.importorskip("ray")
    store = RunStore(tmp_path / "s.duckdb")
    plan = plan_of(spec(data, 32), spec(data, 64, lr=1e30))
    report = run_plan(plan, store, backend="ray", cpus_per_run=1)
    assert (report.finished, report.failed) == (1, 1)
    every = store.runs(status=None)
    assert sorted(every["run_id"]) == sorted(r.run_id for r in plan.runs)  # once each
    assert every.set_index("run_id").loc[plan.runs[1].run_id, "status"] == "failed"
    curve = store.curve(plan.runs[0].run_id)
    assert len(curve) == 12 and curve["step"].is_unique
    assert run_plan(plan, store, backend="ray").skipped == 2


class KillAWorker(Progress):
    """The OOM killer, played by the test: SIGKILL a worker once the first run has begun."""

    def __init__(self) -> None:
        self.killed = False

    def handle(self, event) -> None:
        if isinstance(event, RunStarted) and not self.killed:
            import multiprocessing
            import os
            import signal

            workers = multiprocessing.active_children()
            if workers:
                os.kill(workers[0].pid, signal.SIGKILL)
                self.killed = True


@pytest.mark.slow
def test_a_worker_killed_mid_run_costs_only_the_runs_in_flight(tmp_path, data):
    store = RunStore(tmp_path / "s.duckdb")
    plan = plan_of(*(spec(data, 32, lr=1e-2 * (1 + i / 10), steps=40) for i in range(5)))
    killer = KillAWorker()
    report = run_plan(plan, store, workers=2, cpus_per_run=1, progress=killer)
    assert killer.killed
    every = store.runs(status=None).set_index("run_id")
    assert sorted(every.index) == sorted(r.run_id for r in plan.runs)  # every run has a record
    failed = every[every["status"] == "failed"]
    assert 1 <= len(failed) <= 2 and report.failed == len(failed)  # at most the two in flight
    assert all("a worker process died" in e for e in failed["error"])
    assert report.finished == 5 - len(failed)  # a fresh pool trained the rest
