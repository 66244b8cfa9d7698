"""Real wall time along the curve, from every source that keeps a clock.

``wall_s`` is seconds since the run started: TensorBoard's event wall times (from the run's first
event), MLflow's metric timestamps (from the run's start_time), W&B's ``_runtime`` (or
``_timestamp`` from the first row), and training logs with a time field, timestamped lines or
Megatron's per-iteration times. A source without one leaves ``wall_s`` empty, never 0.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.runs.store import RunStore
from scalinglab.runs.trackers import RunSettings, read_tracker

SIZES = RunSettings.build({"N": "1e6"})


def curve_of(result, name: str) -> pd.DataFrame:
    row = int(np.flatnonzero(result.runs["name"] == name)[0])
    return result.curves[result.curves["row"] == row].reset_index(drop=True)


# -- TensorBoard ---------------------------------------------------------------------------------


def test_tensorboard_event_wall_times_are_seconds_since_the_runs_first_event(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    # times in the past, before the writer's own first event: the clock starts at the earliest
    t0 = 1_700_000_000.0
    w = SummaryWriter(tmp_path / "timed")
    for s in range(0, 50, 10):
        w.add_scalar("train/loss", 3.0 - s / 100, s, walltime=t0 + 2.5 * s)
        if s % 20 == 0:
            w.add_scalar("val/loss", 3.1 - s / 100, s, walltime=t0 + 2.5 * s + 1.0)
    w.close()
    w = SummaryWriter(tmp_path / "live")  # times as a real run logs them
    for s in range(3):
        w.add_scalar("train/loss", 3.0, s)
    w.close()
    out = read_tracker("tensorboard", tmp_path, loss_tag="train/loss", eval_tag="val/loss")
    timed = curve_of(out, "timed")
    # at a step both logged, the training loss's time is the point's
    assert timed["wall_s"].tolist() == [2.5 * s for s in range(0, 50, 10)]
    live = curve_of(out, "live")["wall_s"]
    assert (live >= 0).all() and (live < 60).all() and live.is_monotonic_increasing
    assert "wall time along the curve <- TensorBoard event wall times" in out.notes


# -- MLflow --------------------------------------------------------------------------------------


def test_mlflow_metric_timestamps_are_seconds_since_the_runs_start(tmp_path):
    pytest.importorskip("mlflow")
    import os

    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    exp = client.create_experiment("sweep")
    start = 1_700_000_000_000
    run = client.create_run(exp, run_name="timed", start_time=start)
    rid = run.info.run_id
    client.log_param(rid, "n_params", 1e6)
    client.log_param(rid, "tokens", 5e6)
    for s in range(0, 50, 10):
        client.log_metric(rid, "train/loss", 3.0 - s / 100, step=s, timestamp=start + 5000 + 250 * s)
    client.set_terminated(rid, "FINISHED", end_time=start + 60_000)
    out = read_tracker("mlflow", tmp_path / "mlruns")
    wall = curve_of(out, "timed")["wall_s"].tolist()
    assert wall == pytest.approx([5.0 + 0.25 * s for s in range(0, 50, 10)])
    assert "wall time along the curve <- MLflow metric timestamps" in out.notes
    store = RunStore(tmp_path / "s.duckdb")
    store.import_frame(out.runs, curves=out.curves, source="mlruns")
    (run_id,) = store.runs()["run_id"]
    assert store.curve(run_id)["wall_s"].tolist() == pytest.approx(wall)


# -- W&B -----------------------------------------------------------------------------------------


def _write(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_wandb_runtime_is_the_clock_and_the_loss_rows_time_wins(tmp_path):
    rows = []
    for s in range(0, 50, 10):
        rows.append({"run_id": "a1", "_step": s, "_runtime": 1.0 + 0.5 * s,
                     "_timestamp": 1.7e9 + s, "train/loss": 3.0 - s / 100, "eval/loss": ""})
        if s % 20 == 0:  # an eval row at the same step, logged a little later
            rows.append({"run_id": "a1", "_step": s, "_runtime": 1.2 + 0.5 * s,
                         "_timestamp": 1.7e9 + s + 0.2, "train/loss": "",
                         "eval/loss": 3.1 - s / 100})
    out = read_tracker("wandb", _write(tmp_path / "h.csv", rows), eval_tag="eval/loss",
                       settings=SIZES)
    assert curve_of(out, "a1")["wall_s"].tolist() == [1.0 + 0.5 * s for s in range(0, 50, 10)]
    assert "wall time along the curve <- W&B _runtime" in out.notes


def test_wandb_timestamps_alone_count_from_the_first_row_and_no_clock_is_no_time(tmp_path):
    rows = [{"run_id": "b2", "_step": s, "_timestamp": 1.7e9 + 3 * s, "loss": 3 - s / 100}
            for s in range(5)]
    out = read_tracker("wandb", _write(tmp_path / "t.csv", rows), settings=SIZES)
    assert curve_of(out, "b2")["wall_s"].tolist() == [0.0, 3.0, 6.0, 9.0, 12.0]
    bare = [{"run_id": "c3", "_step": s, "loss": 3 - s / 100} for s in range(3)]
    out = read_tracker("wandb", _write(tmp_path / "b.csv", bare), settings=SIZES)
    assert curve_of(out, "c3")["wall_s"].isna().all()
    assert not any("wall time" in n for n in out.notes)


# -- training logs -------------------------------------------------------------------------------


def test_timestamped_log_lines_give_seconds_since_the_first_timestamp(tmp_path):
    lines = ["2024-05-01 10:00:00,000 INFO starting"]
    for i, s in enumerate(range(10, 60, 10)):
        lines.append(f"2024-05-01 10:00:{11 * (i + 1):02d},500 INFO step={s} loss={3 - s / 100}")
    f = tmp_path / "run.log"
    f.write_text("\n".join(lines) + "\n")
    out = read_tracker("log", f, pattern=r"step=(?P<step>\d+) loss=(?P<loss>[\d.]+)",
                       settings=SIZES)
    assert curve_of(out, "run")["wall_s"].tolist() == [11.5, 22.5, 33.5, 44.5, 55.5]
    assert "wall time along the curve <- the log lines' timestamps" in out.notes


def test_a_time_group_in_a_pattern_is_seconds_since_the_start(tmp_path):
    f = tmp_path / "run.txt"
    f.write_text("".join(f"it {s} loss {3 - s / 100} t={s * 1.5}s\n" for s in range(1, 4)))
    out = read_tracker("log", f, pattern=r"it (?P<step>\d+) loss (?P<loss>[\d.]+) "
                       r"t=(?P<time>[\d.]+)s", settings=SIZES)
    assert curve_of(out, "run")["wall_s"].tolist() == [1.5, 3.0, 4.5]


def test_megatron_per_iteration_times_are_summed_when_its_timestamps_do_not_move(tmp_path):
    from test_trackers_logs import MEGATRON_ARGS, megatron_line

    lines = [MEGATRON_ARGS] + [megatron_line(it, 300, 3.0 - it / 1000) for it in (10, 20, 40)]
    f = tmp_path / "gpt.out"
    f.write_text("\n".join(lines) + "\n")
    out = read_tracker("log", f, settings=RunSettings.build({"N": "1.2e8"}))
    # 512.3 ms per iteration: 10, then 10 more, then 20 more iterations
    assert curve_of(out, "gpt")["wall_s"].tolist() == pytest.approx([5.123, 10.246, 20.492])
    assert "wall time along the curve <- Megatron's elapsed time per iteration, summed" in out.notes


def test_nanogpt_iteration_times_are_no_clock(tmp_path):
    f = tmp_path / "nano.log"
    f.write_text("".join(f"iter {s}: loss {3 - s / 100:.4f}, time 12.34ms, mfu 1.00%\n"
                         for s in range(0, 50, 10)))
    out = read_tracker("log", f, settings=SIZES)
    assert curve_of(out, "nano")["wall_s"].isna().all() and len(curve_of(out, "nano")) == 5
    assert not math.isnan(out.runs.iloc[0]["loss"])
