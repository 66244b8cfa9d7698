"""W&B history exports (long format: one row per logged step of a run) read as runs and curves."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from scalinglab.errors import InputError, ParameterError
from scalinglab.runs.trackers import RunSettings, read_tracker

STEPS = list(range(0, 100, 10))


def loss_at(step: int, n: float) -> float:
    return 2.0 + 30.0 / (step + 10) + 1e3 / n


def history_rows(run_id: str, name: str, n: float, diverge_at: int | None = None,
                 state: str = "finished") -> list[dict[str, object]]:
    """Rows as ``api.runs(...).histories()`` gives them: ``wandb.log(..., step=s)`` of the train
    metrics, then an eval row at some steps; W&B leaves a metric's cell empty where it was not
    logged, and writes a logged NaN as NaN."""
    rows = []
    for s in STEPS:
        loss = math.nan if diverge_at is not None and s >= diverge_at else loss_at(s, n)
        rows.append({"run_id": run_id, "name": name, "state": state, "_step": s,
                     "_runtime": s * 0.5 + 1, "_timestamp": 1.7e9 + s, "train/loss": loss,
                     "tokens": (s + 1) * 1024, "lr": 1e-3, "eval/loss": ""})
        if s % 30 == 0:
            rows.append({"run_id": run_id, "name": name, "state": state, "_step": s,
                         "_runtime": s * 0.5 + 1.2, "_timestamp": 1.7e9 + s + 0.5,
                         "train/loss": "", "tokens": "", "lr": "", "eval/loss": loss_at(s, n) + 0.1})
    return rows


def write(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: ("NaN" if isinstance(v, float) and math.isnan(v) else v)
                        for k, v in r.items()})
    return path


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    rows = (history_rows("a1b2c3", "small", 1e6) + history_rows("d4e5f6", "large", 4e6)
            + history_rows("g7h8i9", "blew-up", 2e6, diverge_at=40)
            + history_rows("j0k1l2", "crashed", 2e6, state="crashed")[:5])
    return write(tmp_path_factory.mktemp("wandb") / "history.csv", rows)


@pytest.fixture(scope="module")
def sizes(tmp_path_factory) -> RunSettings:
    f = tmp_path_factory.mktemp("map") / "sizes.csv"
    f.write_text("name,N\nsmall,1e6\nlarge,4e6\nblew-up,2e6\ncrashed,2e6\n")
    return RunSettings.build(file=f)


@pytest.fixture(scope="module")
def read(export, sizes):
    return read_tracker("wandb", export, eval_tag="eval/loss", settings=sizes)


def by_name(result, name):
    return result.runs.set_index("name").loc[name]


def test_runs_are_told_apart_by_id_and_labelled_by_name(read):
    assert list(read.runs["name"]) == ["small", "large", "blew-up", "crashed"]
    assert list(read.runs["wandb_run"]) == ["a1b2c3", "d4e5f6", "g7h8i9", "j0k1l2"]
    assert "runs told apart by column 'run_id', steps from '_step'" in read.notes


def test_sparse_eval_rows_do_not_break_the_training_curve(read):
    row = int(np.flatnonzero(read.runs["name"] == "large")[0])
    curve = read.curves[read.curves["row"] == row]
    assert curve["step"].tolist() == STEPS
    assert np.allclose(curve["loss"], [loss_at(s, 4e6) for s in STEPS])
    assert curve["tokens"].tolist() == [(s + 1) * 1024 for s in STEPS]
    ev = curve.dropna(subset=["eval_loss"])
    assert ev["step"].tolist() == [0, 30, 60, 90]
    assert np.allclose(ev["eval_loss"], [loss_at(s, 4e6) + 0.1 for s in (0, 30, 60, 90)])


def test_final_loss_tokens_and_constant_columns_give_the_run_values(read):
    r = by_name(read, "large")
    assert r["status"] == "finished" and r["loss"] == pytest.approx(loss_at(90, 4e6))
    assert (r["N"], r["D"], r["lr"]) == (4e6, 91 * 1024, 1e-3)
    assert r["wall_time_s"] == pytest.approx(46.2)
    assert "lr <- column 'lr'" in read.notes


def test_a_nan_loss_cell_is_a_divergence_and_a_crashed_state_a_failure(read):
    b, c = by_name(read, "blew-up"), by_name(read, "crashed")
    assert b["status"] == "failed" and b["error"] == "diverged: train/loss is nan at step 40"
    assert c["status"] == "failed" and c["error"] == "W&B state crashed"
    assert math.isnan(b["loss"]) and math.isnan(c["loss"])


def test_ema_final_loss_over_a_runs_points(export, sizes):
    import pandas as pd

    out = read_tracker("wandb", export, settings=sizes, final="ema:4")
    expected = pd.Series([loss_at(s, 1e6) for s in STEPS]).ewm(span=4).mean().iloc[-1]
    assert by_name(out, "small")["loss"] == pytest.approx(expected, rel=1e-12)


def test_a_bad_cell_names_file_row_line_and_column(tmp_path):
    rows = history_rows("a", "a", 1e6)
    rows[3]["train/loss"] = "3.1.4"
    f = write(tmp_path / "h.csv", rows)
    with pytest.raises(InputError) as err:
        read_tracker("wandb", f)
    assert str(err.value) == f"{f}: row 4 (line 5), column 'train/loss': '3.1.4' is not a number"


def test_a_fractional_step_and_a_missing_run_column_are_one_line_errors(tmp_path):
    rows = history_rows("a", "a", 1e6)
    rows[2]["_step"] = "2.5"
    f = write(tmp_path / "h.csv", rows)
    with pytest.raises(InputError, match=r"row 3 \(line 4\), column '_step': '2.5' is not a whole step"):
        read_tracker("wandb", f)
    g = write(tmp_path / "g.csv", [{"_step": 0, "train/loss": 3.0}])
    with pytest.raises(InputError, match=r"no run column \(one of \['run_id'"):
        read_tracker("wandb", g)


def test_the_run_and_step_columns_can_be_mapped(tmp_path):
    rows = [{"experiment": "x", "trainer/global_step": s, "loss": loss_at(s, 1e6)} for s in STEPS]
    f = write(tmp_path / "h.csv", rows)
    out = read_tracker("wandb", f, mapping={"run": "experiment", "step": "trainer/global_step"},
                       settings=RunSettings.build({"N": "1e6", "D": "1e8"}))
    assert list(out.runs["name"]) == ["x"] and out.curves["step"].tolist() == STEPS
    with pytest.raises(ParameterError, match=r"no column 'experimnt' .*\(did you mean 'experiment'\?\)"):
        read_tracker("wandb", f, mapping={"run": "experimnt"})


def test_a_panel_export_with_one_column_per_run_reads_as_one_history_per_run(tmp_path):
    rows = []
    for s in STEPS:
        row = {"Step": s}
        for name, n in (("small", 1e6), ("large", 4e6)):
            if name == "large" and s > 60:
                row.update({f"{name} - train/loss": "", f"{name} - train/loss__MIN": "",
                            f"{name} - train/loss__MAX": ""})
                continue
            row.update({f"{name} - train/loss": loss_at(s, n),
                        f"{name} - train/loss__MIN": loss_at(s, n) - 0.01,
                        f"{name} - train/loss__MAX": loss_at(s, n) + 0.01})
        rows.append(row)
    f = write(tmp_path / "panel.csv", rows)
    out = read_tracker("wandb", f, settings=RunSettings.build({"N": "1e6", "D": "1e7"}))
    assert "a W&B panel export (one column per run): read as one history per run" in out.notes
    assert list(out.runs["name"]) == ["small", "large"]
    large = out.curves[out.curves["row"] == 1]
    assert large["step"].tolist() == [0, 10, 20, 30, 40, 50, 60]
    assert np.allclose(large["loss"], [loss_at(s, 4e6) for s in range(0, 70, 10)])
    assert by_name(out, "small")["loss"] == pytest.approx(loss_at(90, 1e6))


def test_a_logged_learning_rate_schedule_gives_its_peak_as_lr(tmp_path):
    rows = [{"run_id": "a", "_step": s, "train/loss": loss_at(s, 1e6),
             "train/learning_rate": 3e-4 * min(1.0, (s + 10) / 40) * (1 - s / 200)} for s in STEPS]
    out = read_tracker("wandb", write(tmp_path / "h.csv", rows),
                       settings=RunSettings.build({"N": "1e6", "D": "1e7"}))
    peak = max(r["train/learning_rate"] for r in rows)
    assert out.runs.iloc[0]["lr"] == pytest.approx(peak)
    assert "lr = the peak of the logged 'train/learning_rate'" in out.notes


def test_a_runs_name_and_state_are_its_last_non_empty_cells(tmp_path):
    """A run renamed or resumed mid-history is what it was last; empty cells (rows logged
    before the name or state was set) do not count; a run with none keeps its id as its name
    and is finished."""
    first = history_rows("r1", "first", 1e6, state="running")[:4] + history_rows("r1", "renamed", 1e6)[4:]
    for r in first[-3:]:
        r["name"], r["state"] = "", ""
    second = history_rows("r2", "", 2e6, state="")
    read = read_tracker("wandb", write(tmp_path / "h.csv", first + second))
    assert list(read.runs["name"]) == ["renamed", "r2"]
    assert list(read.runs["status"]) == ["finished", "finished"]
    for r in first:
        r["state"] = ""
    first[3]["state"] = "crashed"  # the only state it logged
    read = read_tracker("wandb", write(tmp_path / "h2.csv", first + second))
    run = read.runs.set_index("name").loc["renamed"]
    assert run["status"] == "failed" and run["error"] == "W&B state crashed"
