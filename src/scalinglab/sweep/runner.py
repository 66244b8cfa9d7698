"""Running a plan: skip what the store already has, train the rest, record every outcome.

One function, :func:`execute`, turns a :class:`RunSpec` into a store record; it never raises for
a run that fails (the failure *is* the record) except on Ctrl-C. The local backend calls it in
this process; the Ray backend calls it in Ray tasks and only the driver writes to the store, as
each result arrives, so every result lands exactly once however the tasks are scheduled or
retried. Results are written one by one: a crash loses at most the runs in flight.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import platform
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import torch

from scalinglab.clikit import UserError
from scalinglab.runs.store import RunStore
from scalinglab.sweep.data import Corpus, DataSpec, load_corpus
from scalinglab.sweep.plan import RunSpec, SweepPlan
from scalinglab.sweep.train import Diverged, train

Backend = Literal["local", "ray"]


@functools.lru_cache(maxsize=4)
def _corpus(spec: DataSpec) -> Corpus:
    return load_corpus(spec)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device is available to this PyTorch")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise UserError(f"--device must be cpu, cuda, cuda:K or auto, not {device!r}")
    return device


@dataclass
class Outcome:
    """A finished or failed run, ready for :meth:`RunStore.add_run`."""

    record: dict[str, Any]
    curve: pd.DataFrame | None = None

    @property
    def failed(self) -> bool:
        return self.record["status"] == "failed"

    def to_wire(self) -> dict[str, Any]:
        """Plain data for crossing a process boundary (Ray)."""
        curve = None if self.curve is None else self.curve.to_dict("list")
        return {"record": self.record, "curve": curve}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Outcome:
        return cls(d["record"], None if d["curve"] is None else pd.DataFrame(d["curve"]))


def execute(spec: RunSpec, device: str = "cpu", compile: bool = False, source: str = "sweep",
            on_step: Callable[[int, int, float], None] | None = None,
            log_dir: str | None = None) -> Outcome:
    """Train one planned run; a divergence or an error becomes a failed record, not an exception.

    With ``log_dir``, the run's training log is written as it goes to ``LOG_DIR/RUN_ID.log``, in
    the lines ``scalinglab import --from log`` reads back.
    """
    if log_dir is None:
        return _execute(spec, device, compile, source, on_step)
    from scalinglab.runs.trackers import training_log as fmt
    from scalinglab.sweep.train import lr_at

    os.makedirs(log_dir, exist_ok=True)
    with open(os.path.join(log_dir, f"{spec.run_id}.log"), "w", encoding="utf-8") as log:
        log.write(fmt.scalinglab_header(
            run_id=spec.run_id, N=int(spec.N), D=int(spec.D), lr=spec.train.lr,
            batch_tokens=spec.tokens_per_step, seq_len=spec.model.seq_len,
            weight_decay=spec.train.weight_decay, steps=spec.train.steps) + "\n")

        def logged(step: int, tokens: int, loss: float) -> None:
            log.write(fmt.scalinglab_step(step, spec.train.steps, tokens, loss,
                                          lr_at(step - 1, spec.train)) + "\n")
            log.flush()  # a crash keeps every line written so far
            if on_step is not None:
                on_step(step, tokens, loss)

        outcome = _execute(spec, device, compile, source, logged)
        rec = outcome.record
        if outcome.failed:
            log.write(fmt.scalinglab_failure(str(rec["error"])) + "\n")
        else:
            log.write(fmt.scalinglab_eval(spec.train.steps, int(rec["extra"]["tokens"]),
                                          float(rec["extra"]["eval_loss"])) + "\n")
    return outcome


def _execute(spec: RunSpec, device: str, compile: bool, source: str,
             on_step: Callable[[int, int, float], None] | None) -> Outcome:
    record = spec.record()
    record["source"] = source
    record["extra"]["device"] = device
    record["extra"]["host"] = platform.node()
    started = time.perf_counter()
    try:
        corpus = _corpus(spec.data)
        record["tags"].setdefault("dataset", corpus.name)
        record["tags"].setdefault("architecture", f"decoder-{spec.model.positions}")
        result = train(spec.model, spec.train, corpus, device=device, compile=compile,
                       on_step=on_step)
    except KeyboardInterrupt:
        raise
    except Diverged as exc:
        return _failed(record, str(exc), started)
    except Exception as exc:  # noqa: BLE001 - any failure of a run is recorded, not lost
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
        return _failed(record, f"{type(exc).__name__}: {exc}{where}", started)
    record.update(status="finished", error=None, loss=result.eval_loss)
    record["extra"].update(
        train_loss=result.train_loss, ema_loss=result.ema_loss, eval_loss=result.eval_loss,
        tokens=result.tokens, wall_time_s=round(result.wall_time_s, 3),
        tokens_per_s=round(result.tokens_per_s, 1), peak_mem_bytes=result.peak_mem_bytes,
    )
    return Outcome(record, result.curve)


def _failed(record: dict[str, Any], error: str, started: float) -> Outcome:
    record.update(status="failed", error=error, loss=None)
    record["extra"]["wall_time_s"] = round(time.perf_counter() - started, 3)
    return Outcome(record)


# -- the sweep -----------------------------------------------------------------------------------


@dataclass
class SweepReport:
    planned: int
    skipped: int = 0
    finished: int = 0
    failed: int = 0
    interrupted: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    wall_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Progress:
    """What a display needs to know; the CLI's rich display implements it, tests may not."""

    def start(self, total_runs: int, total_flops: float) -> None: ...
    def run_started(self, spec: RunSpec) -> None: ...
    def step(self, spec: RunSpec, tokens: int, loss: float) -> None: ...
    def run_done(self, spec: RunSpec, outcome: Outcome) -> None: ...


def pending(plan: SweepPlan, store: RunStore, retry_failed: bool = False) -> list[RunSpec]:
    """Runs of the plan the store does not hold yet (failed ones too, with ``retry_failed``)."""
    done = store.runs(status=None)
    status = dict(zip(done["run_id"], done["status"], strict=True))
    skip = {"finished"} if retry_failed else {"finished", "failed"}
    return [r for r in plan.runs if status.get(r.run_id) not in skip]


def run_plan(plan: SweepPlan, store: RunStore, backend: Backend = "local", device: str = "cpu",
             address: str | None = None, cpus_per_run: int | None = None, compile: bool = False,
             retry_failed: bool = False, progress: Progress | None = None,
             source: str = "sweep", workers: int = 1, log_dir: str | None = None) -> SweepReport:
    """Train every pending run of ``plan`` and write each outcome to ``store`` as it arrives.

    ``workers`` > 1 (local backend, CPU) trains that many runs at once in worker processes,
    each with ``cpus_per_run`` threads (default: the cores shared out): small models use one core
    poorly, so two one-thread runs beat one two-thread run by about 1.3-1.6x on 2 cores.
    """
    device = resolve_device(device)
    if workers < 1:
        raise UserError(f"--workers must be at least 1, not {workers}")
    if workers > 1 and backend == "local":
        if device != "cpu":
            raise UserError("--workers > 1 is for CPU runs; on GPUs use --backend ray")
        backend = "pool"  # type: ignore[assignment]
        cpus_per_run = cpus_per_run or max(1, (os.cpu_count() or 1) // workers)
    todo = pending(plan, store, retry_failed)
    report = SweepReport(planned=len(plan.runs), skipped=len(plan.runs) - len(todo))
    progress = progress or Progress()
    progress.start(len(todo), sum(r.C for r in todo))
    started = time.perf_counter()
    runners = {"local": _local, "ray": _ray, "pool": functools.partial(_pool, workers=workers)}
    runner = runners.get(backend)
    if runner is None:
        raise UserError(f"--backend must be local or ray, not {backend!r}")
    try:
        for spec, outcome in runner(todo, device, address, cpus_per_run, compile, progress, source,
                                    log_dir):
            store.add_run(outcome.record, outcome.curve)
            if outcome.failed:
                report.failed += 1
                report.errors[spec.run_id] = str(outcome.record["error"])
            else:
                report.finished += 1
            progress.run_done(spec, outcome)
    except KeyboardInterrupt:
        report.interrupted = True
    report.wall_time_s = round(time.perf_counter() - started, 2)
    return report


def _local(todo: list[RunSpec], device: str, address: str | None, cpus: int | None,
           compile: bool, progress: Progress, source: str, log_dir: str | None = None
           ) -> Iterator[tuple[RunSpec, Outcome]]:
    if cpus:
        torch.set_num_threads(cpus)
    for spec in todo:
        progress.run_started(spec)
        step = functools.partial(_on_step, progress, spec)
        yield spec, execute(spec, device, compile, source, on_step=step, log_dir=log_dir)


def _on_step(progress: Progress, spec: RunSpec, _step: int, tokens: int, loss: float) -> None:
    progress.step(spec, tokens, loss)


def _remote_task(wire: dict[str, Any], device: str, compile: bool, source: str, threads: int,
                 log_dir: str | None = None) -> dict[str, Any]:
    """What a worker process (pool or Ray) runs: one run, returned as plain data; only the
    driver writes to the store."""
    torch.set_num_threads(max(1, threads))
    return execute(RunSpec.from_dict(wire), device, compile, source, log_dir=log_dir).to_wire()


def _pool(todo: list[RunSpec], device: str, address: str | None, cpus: int | None,
          compile: bool, progress: Progress, source: str, log_dir: str | None = None,
          workers: int = 2) -> Iterator[tuple[RunSpec, Outcome]]:
    """Runs in parallel worker processes on this machine (spawned: no forked torch state)."""
    if not todo:
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {}
        for spec in todo:
            futures[pool.submit(_remote_task, spec.to_dict(), device, compile, source, cpus or 1,
                                log_dir)] = spec
            progress.run_started(spec)
        try:
            for future in as_completed(futures):
                spec = futures[future]
                try:
                    outcome = Outcome.from_wire(future.result())
                except Exception as exc:  # noqa: BLE001 - a dead worker is a failed run, recorded
                    outcome = _failed({**spec.record(), "source": source},
                                      f"worker failed: {type(exc).__name__}: {exc}", time.perf_counter())
                yield spec, outcome
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _ray(todo: list[RunSpec], device: str, address: str | None, cpus: int | None,
         compile: bool, progress: Progress, source: str, log_dir: str | None = None
         ) -> Iterator[tuple[RunSpec, Outcome]]:
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs Ray: pip install 'scalinglab[ray]'") from None
    if not todo:
        return
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"address": address, "include_dashboard": False,
                                  "log_to_driver": False, "configure_logging": False}
        if address is None:  # a local cluster of this machine's cores
            kwargs["num_cpus"] = os.cpu_count() or 1
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise UserError(f"--address {address}: cannot connect to a Ray cluster: {exc}") from None
    cpus = cpus or 1
    gpu = 1 if device.startswith("cuda") else 0
    task = ray.remote(_remote_task).options(num_cpus=cpus, num_gpus=gpu, max_retries=1)
    refs = {}
    for spec in todo:
        refs[task.remote(spec.to_dict(), "cuda" if gpu else device, compile, source, cpus,
                         log_dir)] = spec
        progress.run_started(spec)
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            spec = refs.pop(ready[0])
            try:
                outcome = Outcome.from_wire(ray.get(ready[0]))
            except Exception as exc:  # noqa: BLE001 - a lost worker is a failed run, recorded
                record = spec.record()
                record.update(status="failed", error=f"Ray task failed: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}", source=source)
                outcome = Outcome(record)
            yield spec, outcome
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
