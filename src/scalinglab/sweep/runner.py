"""Running a plan: skip what the store already has, train the rest, record every outcome.

One function, :func:`execute`, turns a :class:`RunSpec` into a store record; it never raises for
a run that fails (the failure *is* the record) except on Ctrl-C. Runs train one at a time in
this process, k at a time in worker processes (``workers``, or ``gpus_per_run`` on CUDA: several
small runs share one GPU), or as Ray tasks (fractional ``gpus_per_run`` lets Ray pack several on
a GPU). Only the driver writes to the store, as each result arrives, so every result lands
exactly once however the tasks are scheduled or retried; a crash loses at most the runs in
flight.

Sharing a GPU pays because small models leave it mostly idle: a 1M-parameter step is a few
hundred tiny kernels whose launch cost, paid by one Python thread, dominates. Processes that
share the device overlap one run's launch gaps with another's kernels. Without NVIDIA MPS the
contexts time-slice rather than run kernels concurrently; with ``nvidia-cuda-mps-control -d``
they can overlap. ``benchmarks/bench_sweep_share.py`` measures the gain against one run at a
time; the GPU figure has not been measured yet (no GPU was available when this was written).

Workers report when a run really starts and how far it is (throttled to a few events a second),
so the progress line counts runs in flight, not runs queued.
"""

from __future__ import annotations

import contextlib
import functools
import math
import multiprocessing
import os
import platform
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch

from scalinglab.errors import InputError, ParameterError, StoreBusy
from scalinglab.results import short_repr
from scalinglab.runs.store import RunStore
from scalinglab.sweep.data import STDLIB, Corpus, DataSpec, load_corpus
from scalinglab.sweep.plan import RunSpec, SweepPlan
from scalinglab.sweep.progress import (  # Progress re-exported: run_plan takes one
    Event,
    Progress,
    RunFinished,
    RunStarted,
    RunStep,
    SweepStarted,
    Tally,
    snapshot,
)
from scalinglab.sweep.train import Diverged, train

Backend = Literal["local", "ray"]
BACKENDS = ("local", "ray")


@functools.lru_cache(maxsize=4)
def _corpus(spec: DataSpec) -> Corpus:
    return load_corpus(spec)


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when available; checks that the device exists (ParameterError)."""
    if not isinstance(device, str):
        raise ParameterError(f"device must be cpu, cuda, cuda:K or auto, not {device!r}", "device")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        index = device[5:] if device.startswith("cuda:") else None
        if device != "cuda" and not (index and index.isdigit()):
            raise ParameterError(f"device must be cpu, cuda, cuda:K or auto, not {device!r}", "device")
        if not torch.cuda.is_available():
            raise ParameterError(f"device {device}: this PyTorch sees no CUDA GPU", "device")
        if index is not None and int(index) >= torch.cuda.device_count():
            raise ParameterError(f"device {device}: this machine has {torch.cuda.device_count()} "
                                 "CUDA GPU(s), numbered from 0", "device")
        return device
    if device not in ("cpu", "mps"):
        raise ParameterError(f"device must be cpu, cuda, cuda:K or auto, not {device!r}", "device")
    return device


# -- placement: where runs train and how many at once ------------------------------------------


def _share(gpus_per_run: float) -> int:
    """Runs per GPU for a fractional request, as Ray packs them (0.25 -> 4, 0.3 -> 3)."""
    return max(1, math.floor(1.0 / gpus_per_run + 1e-9))


def device_slots(device: str, workers: int = 1, gpus_per_run: float | None = None,
                 cuda_count: int = 0) -> list[str]:
    """The device of each run slot of the local backend: one entry per run trained at once.

    A pure function of the request (tests pass ``cuda_count``). ``gpus_per_run`` = 1/k puts k
    runs on each CUDA device (``cuda`` means every visible one, ``cuda:K`` just that one);
    ``workers`` = k runs k at once, round-robin over the devices. Slots are interleaved across
    devices, so the first runs spread over the GPUs before any GPU takes a second.
    """
    if gpus_per_run is not None:
        if not device.startswith("cuda"):
            raise ParameterError(f"gpus_per_run needs a CUDA GPU to share; device is {device}",
                                 "gpus_per_run", "device")
        if workers != 1:
            raise ParameterError("give workers or gpus_per_run, not both (gpus_per_run = 0.25 "
                                 "means 4 runs per GPU)", "workers", "gpus_per_run")
    if not device.startswith("cuda"):
        return [device] * workers
    devices = [device] if device != "cuda" else [f"cuda:{i}" for i in range(max(1, cuda_count))]
    if gpus_per_run is None:
        if workers == 1:
            return [device]  # one run at a time on the current device, as it always was
        return [devices[i % len(devices)] for i in range(workers)]
    return [d for _ in range(_share(gpus_per_run)) for d in devices]


@dataclass(frozen=True)
class Placement:
    """How a sweep's runs are placed: the backend, each local slot's device, Ray's request."""

    backend: str  # "local" (this process), "pool" (worker processes) or "ray"
    device: str
    slots: tuple[str, ...] = ("cpu",)
    threads: int = 1  # torch threads per run (None -> the cores shared out)
    ray_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def concurrent(self) -> int | None:
        """Runs trained at once (None for Ray: the cluster decides)."""
        return None if self.backend == "ray" else len(self.slots)


def ray_options(device: str, cpus_per_run: float | None = None,
                gpus_per_run: float | None = None,
                resources_per_run: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Ray task options for one run: CPUs, a GPU share, custom resources; a pure function."""
    cuda = device.startswith("cuda")
    if gpus_per_run is not None and not cuda:
        raise ParameterError(f"gpus_per_run needs a CUDA GPU to share; device is {device}",
                             "gpus_per_run", "device")
    options: dict[str, Any] = {"num_cpus": cpus_per_run or 1,
                               "num_gpus": (gpus_per_run or 1.0) if cuda else 0,
                               "max_retries": 1}
    if resources_per_run:
        options["resources"] = dict(resources_per_run)
    return options


def placement(backend: str = "local", device: str = "cpu", workers: int = 1,
              gpus_per_run: float | None = None, cpus_per_run: int | None = None,
              resources_per_run: Mapping[str, float] | None = None) -> Placement:
    """Check a sweep's resource request and say where its runs go (ParameterError if bad).

    Called before the store is opened, so a bad request leaves it untouched.
    """
    if backend not in BACKENDS:
        raise ParameterError(f"backend must be local or ray, not {backend!r}", "backend")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be a whole number >= 1, not {workers!r}", "workers")
    if cpus_per_run is not None and (isinstance(cpus_per_run, bool) or not isinstance(cpus_per_run, int)
                                     or cpus_per_run < 1):
        raise ParameterError(f"cpus_per_run must be a whole number >= 1, not {cpus_per_run!r}",
                             "cpus_per_run")
    if gpus_per_run is not None and not (isinstance(gpus_per_run, (int, float))
                                         and not isinstance(gpus_per_run, bool)
                                         and 0 < gpus_per_run <= 1):
        raise ParameterError(f"gpus_per_run must be a share of one GPU in (0, 1], not "
                             f"{gpus_per_run!r}", "gpus_per_run")
    if resources_per_run and backend != "ray":
        raise ParameterError("resources_per_run are Ray resources; use backend='ray'",
                             "resources_per_run", "backend")
    device = resolve_device(device)
    if backend == "ray":
        if workers != 1:
            raise ParameterError("workers counts local worker processes; Ray trains as many "
                                 "runs at once as the cluster's resources allow (see "
                                 "gpus_per_run and cpus_per_run)",
                                 "workers", "gpus_per_run", "cpus_per_run")
        opts = ray_options(device, cpus_per_run, gpus_per_run, resources_per_run)
        return Placement("ray", "cuda" if device.startswith("cuda") else device,
                         threads=int(cpus_per_run or 1), ray_options=opts)
    cuda_count = torch.cuda.device_count() if device.startswith("cuda") else 0
    slots = tuple(device_slots(device, workers, gpus_per_run, cuda_count))
    if len(slots) == 1:
        return Placement("local", device, slots, threads=cpus_per_run or 0)
    threads = cpus_per_run or max(1, (os.cpu_count() or 1) // len(slots))
    return Placement("pool", device, slots, threads=threads)


# -- one run --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """A finished or failed run, ready for :meth:`RunStore.add_run`."""

    record: dict[str, Any]
    curve: pd.DataFrame | None = None

    @property
    def failed(self) -> bool:
        return self.record["status"] == "failed"

    def to_wire(self) -> dict[str, Any]:
        """Plain data for crossing a process boundary (worker processes, Ray)."""
        curve = None if self.curve is None else self.curve.to_dict("list")
        return {"record": self.record, "curve": curve}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Outcome:
        return cls(d["record"], None if d["curve"] is None else pd.DataFrame(d["curve"]))


def execute(spec: RunSpec, device: str = "cpu", compile: bool = False, source: str = "sweep",
            on_step: Callable[[int, int, float], None] | None = None,
            log_dir: str | None = None) -> Outcome:
    """Train one planned run; a divergence or an error becomes a failed record, not an exception.

    ``extra`` records ``started_at``/``ended_at`` (Unix seconds, so runs trained side by side
    can be seen overlapping) and ``compile_s``, the compile and warm-up time that
    ``tokens_per_s`` leaves out. With ``log_dir``, the run's training log is written as it goes to ``LOG_DIR/RUN_ID.log``, in
    the lines ``scalinglab import --from log`` reads back.
    """
    if log_dir is None:
        return _execute(spec, device, compile, source, on_step)
    from scalinglab.runs.trackers import training_log as fmt
    from scalinglab.safefile import open_log
    from scalinglab.sweep.train import lr_at

    os.makedirs(log_dir, exist_ok=True)
    started = time.perf_counter()  # the run's clock: its log lines and its curve's wall_s
    # O_NOFOLLOW: a RUN_ID.log planted as a symlink is refused, not written through
    with open_log(os.path.join(log_dir, f"{spec.run_id}.log")) as log:
        log.write(fmt.scalinglab_header(
            run_id=spec.run_id, N=int(spec.N), D=int(spec.D), lr=spec.train.lr,
            batch_tokens=spec.tokens_per_step, seq_len=spec.model.seq_len,
            weight_decay=spec.train.weight_decay, steps=spec.train.steps) + "\n")

        def logged(step: int, tokens: int, loss: float) -> None:
            log.write(fmt.scalinglab_step(step, spec.train.steps, tokens, loss,
                                          lr_at(step - 1, spec.train),
                                          wall_s=time.perf_counter() - started) + "\n")
            log.flush()  # a crash keeps every line written so far
            if on_step is not None:
                on_step(step, tokens, loss)

        outcome = _execute(spec, device, compile, source, logged, started)
        rec = outcome.record
        if outcome.failed:
            log.write(fmt.scalinglab_failure(str(rec["error"])) + "\n")
        else:
            log.write(fmt.scalinglab_eval(spec.train.steps, int(rec["extra"]["tokens"]),
                                          float(rec["extra"]["eval_loss"])) + "\n")
    return outcome


def _execute(spec: RunSpec, device: str, compile: bool, source: str,
             on_step: Callable[[int, int, float], None] | None,
             started: float | None = None) -> Outcome:
    record = spec.record()
    record["source"] = source
    record["extra"].update(device=device, host=platform.node(), started_at=round(time.time(), 3))
    started = time.perf_counter() if started is None else started
    try:
        corpus = _corpus(spec.data)
        record["tags"].setdefault("dataset", corpus.name)
        record["tags"].setdefault("architecture", f"decoder-{spec.model.positions}")
        result = train(spec.model, spec.train, corpus, device=device, compile=compile,
                       on_step=on_step, clock_start=started)
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
        tokens_per_s=round(result.tokens_per_s, 1), compile_s=round(result.compile_s, 3),
        peak_mem_bytes=result.peak_mem_bytes, ended_at=round(time.time(), 3),
    )
    return Outcome(record, result.curve)


def _failed(record: dict[str, Any], error: str, started: float) -> Outcome:
    record.update(status="failed", error=error, loss=None)
    record["extra"]["wall_time_s"] = round(time.perf_counter() - started, 3)
    record["extra"]["ended_at"] = round(time.time(), 3)
    return Outcome(record)


# -- the sweep -----------------------------------------------------------------------------------


@dataclass
class SweepReport:

    __repr__ = short_repr  # one short line, not every field
    planned: int
    skipped: int = 0
    finished: int = 0
    failed: int = 0
    interrupted: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    wall_time_s: float = 0.0
    concurrent: int | None = 1  # runs trained at once (None: as many as Ray's resources allow)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def pending(plan: SweepPlan, store: RunStore, retry_failed: bool = False) -> list[RunSpec]:
    """Runs of the plan the store does not hold yet (failed ones too, with ``retry_failed``)."""
    done = store.runs(status=None)
    status = dict(zip(done["run_id"], done["status"], strict=True))
    skip = {"finished"} if retry_failed else {"finished", "failed"}
    return [r for r in plan.runs if status.get(r.run_id) not in skip]


def check_data(plan: SweepPlan, runs: list[RunSpec] | None = None) -> None:
    """Load each data source the runs use and check every run can train on it.

    Raises :class:`InputError` for a missing or unreadable source, or a run whose vocabulary is
    smaller than the data's or whose sequence does not fit the held-out text, naming the plan's
    run and key. The corpora stay cached for the runs of this process.
    """
    index = {id(r): i for i, r in enumerate(plan.runs, start=1)}
    for spec in plan.runs if runs is None else runs:
        corpus = _corpus(spec.data)
        where = {"source": plan.source or plan.name, "row": f"run {index.get(id(spec), '?')}"}
        if spec.model.vocab_size < corpus.vocab_size:
            raise InputError(f"{spec.model.vocab_size} is smaller than the vocabulary of "
                             f"{corpus.name} ({corpus.vocab_size})", column="vocab_size", **where)
        shortest = min(len(corpus.train), len(corpus.val))
        if spec.model.seq_len + 1 >= shortest:
            raise InputError(f"{spec.model.seq_len} does not fit the data ({shortest:,} tokens in "
                             "its smaller split)", column="seq_len", **where)


def data_is_local(plan: SweepPlan) -> bool:
    """Whether every run's data source is on this machine (a remote cluster may differ)."""
    return all(r.data.source == STDLIB or Path(r.data.source).exists() for r in plan.runs)


def run_plan(plan: SweepPlan, store: RunStore, backend: Backend = "local", device: str = "cpu",
             address: str | None = None, cpus_per_run: int | None = None, compile: bool = False,
             retry_failed: bool = False, progress: Progress | None = None,
             source: str = "sweep", workers: int = 1, gpus_per_run: float | None = None,
             resources_per_run: Mapping[str, float] | None = None,
             log_dir: str | None = None) -> SweepReport:
    """Train every pending run of ``plan`` and write each outcome to ``store`` as it arrives.

    Parameters
    ----------
    backend : "local" trains here (``workers`` > 1: in that many worker processes); "ray" as Ray
        tasks on the cluster at ``address`` (default: a cluster of this machine).
    device : cpu, cuda, cuda:K, mps or auto.
    workers : local runs trained at once, each with ``cpus_per_run`` threads (default: the
        cores shared out). Small models use one core poorly: on 2 cores two one-thread runs
        beat one two-thread run by about 1.3-1.6x.
    gpus_per_run : a share of one GPU per run, e.g. 0.25 for four runs per GPU: Ray packs
        tasks by it; the local backend starts that many worker processes per CUDA device.
    resources_per_run : Ray custom resources each run needs (e.g. ``{"gpu_slot": 0.25}`` on a
        cluster started with ``--resources '{"gpu_slot": 1}'``).
    log_dir : write each run's training log to ``LOG_DIR/RUN_ID.log`` as it trains (read back
        with ``scalinglab import LOG_DIR --from log``).

    The request and the data are checked before anything is trained or written
    (:func:`placement`, :func:`check_data`). With several runs at once, the biggest start first
    (longest-processing-time order), so the last run to finish is a short one.
    """
    where = placement(backend, device, workers, gpus_per_run, cpus_per_run, resources_per_run)
    todo = pending(plan, store, retry_failed)
    if backend != "ray" or address is None or data_is_local(plan):
        check_data(plan, todo)  # a remote cluster's workers may hold data this machine lacks
    report = SweepReport(planned=len(plan.runs), skipped=len(plan.runs) - len(todo),
                         concurrent=where.concurrent)
    progress = _Recorded(progress or Progress(), store, plan.name)
    total = sum(r.C for r in plan.runs)
    progress.handle(SweepStarted(len(plan.runs), report.skipped, total,
                                 total - sum(r.C for r in todo)))
    started = time.perf_counter()
    runner = {"local": _local, "pool": _pool, "ray": functools.partial(_ray, address=address)}
    try:
        for spec, outcome in runner[where.backend](todo, where, compile, progress, source,
                                                   log_dir=log_dir):
            store.add_run(outcome.record, outcome.curve)
            if outcome.failed:
                report.failed += 1
                report.errors[spec.run_id] = str(outcome.record["error"])
            else:
                report.finished += 1
            progress.handle(RunFinished(spec.run_id, outcome.failed, spec.C, spec.D,
                                        outcome.record.get("error"), outcome.record.get("loss")))
    except KeyboardInterrupt:
        report.interrupted = True
    report.wall_time_s = round(time.perf_counter() - started, 2)
    progress.record(interrupted=report.interrupted)
    return report


class _Recorded(Progress):
    """Passes the sweep's events on, and keeps where the sweep stands in the store (at its
    start and as each run starts and ends), so ``scalinglab serve`` shows its progress and ETA
    without talking to this process."""

    def __init__(self, inner: Progress, store: RunStore, name: str) -> None:
        self.inner, self.store, self.name = inner, store, name
        self.tally = Tally()
        self.t0 = time.perf_counter()

    def handle(self, event: Event) -> None:
        self.tally = self.tally.after(event)
        if isinstance(event, SweepStarted):
            self.t0 = time.perf_counter()
        self.inner.handle(event)
        if not isinstance(event, RunStep):
            self.record()

    def record(self, interrupted: bool = False) -> None:
        state = snapshot(self.tally, time.perf_counter() - self.t0, self.name, time.time(),
                         interrupted)
        with contextlib.suppress(StoreBusy):  # a monitor's line is not worth stopping a sweep
            self.store.record_sweep(state)


def _started(spec: RunSpec) -> RunStarted:
    return RunStarted(spec.run_id, 6.0 * spec.N, spec.D)


def _local(todo: list[RunSpec], where: Placement, compile: bool, progress: Progress,
           source: str, log_dir: str | None = None) -> Iterator[tuple[RunSpec, Outcome]]:
    if where.threads:
        torch.set_num_threads(where.threads)
    for spec in todo:
        progress.handle(_started(spec))

        def on_step(_step: int, tokens: int, loss: float, run_id: str = spec.run_id) -> None:
            progress.handle(RunStep(run_id, tokens, loss))

        yield spec, execute(spec, where.slots[0], compile, source, on_step=on_step, log_dir=log_dir)


class _Reporter:
    """A worker's side of the event channel: start, then steps at most every ``every_s``."""

    def __init__(self, sink: Any, spec: RunSpec, every_s: float = 0.5) -> None:
        self.sink, self.spec, self.every_s, self.last = sink, spec, every_s, -math.inf

    def put(self, event: Event) -> None:
        with contextlib.suppress(Exception):  # progress is best effort; the run goes on
            self.sink.put_nowait(event)

    def started(self) -> None:
        self.put(_started(self.spec))

    def step(self, _step: int, tokens: int, loss: float) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self.put(RunStep(self.spec.run_id, tokens, loss))


_WORKER_EVENTS: Any = None  # the pool worker's event queue, set by _init_worker


def _init_worker(events: Any) -> None:
    global _WORKER_EVENTS
    _WORKER_EVENTS = events


def _remote_task(wire: dict[str, Any], device: str, compile: bool, source: str, threads: int,
                 events: Any = None, log_dir: str | None = None) -> dict[str, Any]:
    """What a worker process (pool or Ray) runs: one run, returned as plain data; only the
    driver writes to the store. ``events`` (or the pool's queue) hears when it starts and steps."""
    torch.set_num_threads(max(1, threads))
    spec = RunSpec.from_dict(wire)
    sink = events if events is not None else _WORKER_EVENTS
    reporter = _Reporter(sink, spec) if sink is not None else None
    if reporter:
        reporter.started()
    return execute(spec, device, compile, source, on_step=reporter.step if reporter else None,
                   log_dir=log_dir).to_wire()


def _drain(events: Any, progress: Progress) -> None:
    while True:
        try:
            event = events.get_nowait()
        except Exception:  # noqa: BLE001 - queue.Empty, ray.util.queue.Empty, a closed queue
            return
        progress.handle(event)


def _biggest_first(todo: list[RunSpec]) -> list[RunSpec]:
    return sorted(todo, key=lambda r: -r.C)


def _pool(todo: list[RunSpec], where: Placement, compile: bool, progress: Progress,
          source: str, log_dir: str | None = None) -> Iterator[tuple[RunSpec, Outcome]]:
    """Runs in worker processes on this machine, one per slot (spawned: no forked torch or CUDA
    state). A run is submitted only when a slot is free, so it knows its device.

    A worker that dies (killed for memory, a segfault in a kernel) breaks the whole pool: the
    runs in flight are recorded as failed with that cause (``--retry-failed`` reruns them; which
    one died cannot be told), and a fresh pool takes the rest.
    """
    if not todo:
        return
    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    queue_ = _biggest_first(todo)
    free = list(where.slots)
    running: dict[Future[dict[str, Any]], tuple[RunSpec, str, ProcessPoolExecutor]] = {}

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=len(where.slots), mp_context=ctx,
                                   initializer=_init_worker, initargs=(events,))

    pool = new_pool()
    try:
        while queue_ or running:
            while queue_ and free:
                spec, slot = queue_.pop(0), free.pop(0)
                args = (spec.to_dict(), slot, compile, source, where.threads, None, log_dir)
                try:
                    future = pool.submit(_remote_task, *args)
                except BrokenProcessPool:  # a worker died since the last look: start afresh
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = new_pool()
                    future = pool.submit(_remote_task, *args)
                running[future] = (spec, slot, pool)
            done, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
            _drain(events, progress)
            broken = False
            for future in done:
                spec, slot, owner = running.pop(future)
                free.append(slot)
                try:
                    outcome = Outcome.from_wire(future.result())
                except Exception as exc:  # noqa: BLE001 - a dead worker is a failed run, recorded
                    broken = broken or (isinstance(exc, BrokenProcessPool) and owner is pool)
                    why = ("a worker process died (out of memory, or a crash in native code); "
                           "the runs in flight with it are recorded failed"
                           if isinstance(exc, BrokenProcessPool) else f"{type(exc).__name__}: {exc}")
                    outcome = _failed({**spec.record(), "source": source},
                                      f"worker failed: {why}", time.perf_counter())
                yield spec, outcome
            if broken:
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        events.cancel_join_thread()
        events.close()


def _ray(todo: list[RunSpec], where: Placement, compile: bool, progress: Progress,
         source: str, address: str | None = None,
         log_dir: str | None = None) -> Iterator[tuple[RunSpec, Outcome]]:
    try:
        import ray
        from ray.util.queue import Queue
    except ImportError:
        raise ParameterError("backend='ray' needs Ray: pip install 'scalinglab[ray]'",
                             "backend") from None
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
        except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, ValueError, RuntimeError...
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise ParameterError(f"address {address}: cannot start or join a Ray cluster "
                                 f"({first})", "address") from None
    events = Queue(actor_options={"num_cpus": 0})
    task = ray.remote(_remote_task).options(**where.ray_options)
    refs = {}
    for spec in _biggest_first(todo):
        refs[task.remote(spec.to_dict(), where.device, compile, source, where.threads,
                         events, log_dir)] = spec
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.25)
            _drain(events, progress)
            for ref in ready:
                spec = refs.pop(ref)
                try:
                    outcome = Outcome.from_wire(ray.get(ref))
                except Exception as exc:  # noqa: BLE001 - a lost worker is a failed run, recorded
                    record = spec.record()
                    first = str(exc).splitlines()[0] if str(exc) else ""
                    record.update(status="failed", source=source,
                                  error=f"Ray task failed: {type(exc).__name__}: {first}")
                    outcome = Outcome(record)
                yield spec, outcome
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
        with contextlib.suppress(Exception):  # already gone with its cluster
            ray.kill(events.actor)
        if started_here:
            ray.shutdown()
