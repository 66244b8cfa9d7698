"""Several runs sharing a device: how runs are placed, and that Ray's packing holds on a CPU.

No GPU is lent to the test machine, so the GPU paths are checked where they are pure (which
device each local slot gets, which Ray request a run makes) and Ray's fractional packing is
shown on a fake accelerator: a custom resource of 1 per node, requested 0.25 per run, packs
exactly four runs at once, as ``num_gpus=0.25`` does on a GPU.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from scalinglab.errors import ParameterError
from scalinglab.runs.store import RunStore
from scalinglab.sweep.data import DataSpec
from scalinglab.sweep.model import ModelConfig
from scalinglab.sweep.plan import RunSpec, SweepPlan
from scalinglab.sweep.runner import device_slots, placement, ray_options, run_plan
from scalinglab.sweep.train import TrainConfig


def test_a_quarter_gpu_per_run_gives_four_slots_on_each_device_spread_over_them():
    assert device_slots("cuda", gpus_per_run=0.25, cuda_count=2) == ["cuda:0", "cuda:1"] * 4
    assert device_slots("cuda:1", gpus_per_run=0.5, cuda_count=2) == ["cuda:1"] * 2
    assert device_slots("cuda", gpus_per_run=0.3, cuda_count=1) == ["cuda:0"] * 3  # as Ray packs
    assert device_slots("cuda", gpus_per_run=1.0, cuda_count=1) == ["cuda:0"]


def test_workers_share_the_devices_round_robin_and_one_worker_is_the_old_behaviour():
    assert device_slots("cuda", workers=3, cuda_count=2) == ["cuda:0", "cuda:1", "cuda:0"]
    assert device_slots("cuda", workers=1, cuda_count=4) == ["cuda"]
    assert device_slots("cpu", workers=2) == ["cpu", "cpu"]
    assert device_slots("cpu") == ["cpu"]


def test_sharing_needs_a_gpu_and_one_way_of_asking():
    with pytest.raises(ParameterError, match="needs a CUDA GPU to share") as exc:
        device_slots("cpu", gpus_per_run=0.5)
    assert exc.value.parameters == ("gpus_per_run", "device")
    with pytest.raises(ParameterError, match="not both"):
        device_slots("cuda", workers=2, gpus_per_run=0.5, cuda_count=1)


def test_a_ray_run_asks_for_its_share_of_a_gpu():
    assert ray_options("cuda", gpus_per_run=0.25) == {"num_cpus": 1, "num_gpus": 0.25, "max_retries": 1}
    assert ray_options("cuda")["num_gpus"] == 1.0
    assert ray_options("cpu", cpus_per_run=2) == {"num_cpus": 2, "num_gpus": 0, "max_retries": 1}
    assert ray_options("cpu", resources_per_run={"slot": 0.25})["resources"] == {"slot": 0.25}


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"gpus_per_run": 0.0}, "gpus_per_run"),
    ({"gpus_per_run": 1.5}, "gpus_per_run"),
    ({"gpus_per_run": math.nan}, "gpus_per_run"),
    ({"gpus_per_run": True}, "gpus_per_run"),
    ({"workers": 0}, "workers"),
    ({"cpus_per_run": 0}, "cpus_per_run"),
    ({"backend": "slurm"}, "backend"),
    ({"device": "tpu"}, "device"),
    ({"device": "cuda:x"}, "device"),
    ({"backend": "ray", "workers": 2}, "workers"),
    ({"resources_per_run": {"slot": 1}}, "resources_per_run"),
])
def test_a_bad_resource_request_is_refused_naming_the_parameter(kwargs, parameter):
    with pytest.raises(ParameterError) as exc:
        placement(**kwargs)
    assert parameter in exc.value.parameters


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_asking_for_cuda_without_it_is_refused_before_anything_runs():
    with pytest.raises(ParameterError, match="sees no CUDA GPU"):
        placement(device="cuda", gpus_per_run=0.25)


def test_local_placement_is_one_process_or_a_pool_of_slots():
    one = placement()
    assert (one.backend, one.slots, one.concurrent) == ("local", ("cpu",), 1)
    pool = placement(workers=2, cpus_per_run=1)
    assert (pool.backend, pool.slots, pool.threads, pool.concurrent) == ("pool", ("cpu", "cpu"), 1, 2)
    ray = placement(backend="ray", cpus_per_run=2)
    assert ray.backend == "ray" and ray.concurrent is None and ray.ray_options["num_cpus"] == 2


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant (an interval's end before another's start)."""
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals],
                   key=lambda e: (e[0], e[1]))
    depth = best = 0
    for _, d in edges:
        depth += d
        best = max(best, depth)
    return best


def test_overlap_counting():
    assert _max_overlap([(0, 1), (1, 2)]) == 1
    assert _max_overlap([(0, 3), (1, 2), (1.5, 4), (3.5, 5)]) == 3


# -- Ray on a fake accelerator ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    # 8 logical CPUs on a 2-core machine, and one "fake_gpu" standing for one GPU
    ray.init(num_cpus=8, resources={"fake_gpu": 1}, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_a_quarter_share_packs_exactly_four_runs_on_one_device(ray_cluster):
    """Ray's fractional packing with the runner's own task options: a gauge in an actor counts
    tasks running at once, and each task waits (up to 60 s) until four are in. If Ray packed
    fewer, every task would time out and the gauge would never read 4; a fifth never enters."""
    ray = ray_cluster

    @ray.remote(num_cpus=0)
    class Gauge:
        def __init__(self) -> None:
            self.now = self.most = 0

        def enter(self) -> int:
            self.now += 1
            self.most = max(self.most, self.now)
            return self.most

        def leave(self) -> None:
            self.now -= 1

        def read(self) -> tuple[int, int]:
            return self.now, self.most

    gauge = Gauge.remote()

    def one_run(i: int, gauge) -> int:
        import time as _time

        import ray as _ray

        _ray.get(gauge.enter.remote())
        deadline = _time.monotonic() + 60
        while _ray.get(gauge.read.remote())[1] < 4 and _time.monotonic() < deadline:
            _time.sleep(0.02)
        _time.sleep(0.2)
        _ray.get(gauge.leave.remote())
        return i

    options = ray_options("cpu", cpus_per_run=1, resources_per_run={"fake_gpu": 0.25})
    task = ray.remote(one_run).options(**options)
    t0 = time.monotonic()
    results = ray.get([task.remote(i, gauge) for i in range(8)])
    assert sorted(results) == list(range(8))
    assert ray.get(gauge.read.remote()) == (0, 4)
    assert time.monotonic() - t0 < 55  # nobody waited out the deadline


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> DataSpec:
    folder = tmp_path_factory.mktemp("corpus")
    words = ["def", "return", "self", "import", "class", "for", "in", "if", "else", "None"]
    (folder / "code.txt").write_text(" ".join(np.random.default_rng(1).choice(words, 40_000)))
    return DataSpec(source=str(folder / "code.txt"))


@pytest.mark.slow
def test_runs_sharing_a_fake_gpu_through_ray_each_land_once_four_at_a_time_at_most(
        ray_cluster, corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))
    runs = [RunSpec(ModelConfig(d_model=32, n_layers=1, n_heads=2, seq_len=32),
                    TrainConfig(lr=1e-2 * (1 + i / 10), batch_tokens=256, steps=60,
                                eval_tokens=2048), corpus, {"sweep": "share"})
            for i in range(8)]
    runs.append(RunSpec(runs[0].model, TrainConfig(lr=1e30, batch_tokens=256, steps=60), corpus))
    store = RunStore(tmp_path / "s.duckdb")
    plan = SweepPlan("share", "custom", runs, corpus)
    report = run_plan(plan, store, backend="ray", cpus_per_run=1,
                      resources_per_run={"fake_gpu": 0.25})
    assert (report.finished, report.failed) == (8, 1)
    every = store.runs(status=None)
    assert sorted(every["run_id"]) == sorted(r.run_id for r in runs)  # once each
    finished = every[every["status"] == "finished"]
    spans = [(e["started_at"], e["ended_at"]) for e in finished["extra"]]
    assert 2 <= _max_overlap(spans) <= 4  # side by side, never beyond the device's share
    assert all(len(store.curve(r)) == 60 for r in finished["run_id"])
    assert run_plan(plan, store, backend="ray").skipped == 9
