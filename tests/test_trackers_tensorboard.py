"""TensorBoard event files written by torch's SummaryWriter, read back as runs and curves."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from scalinglab.errors import InputError, ParameterError
from scalinglab.runs.trackers import RunSettings, read_tracker
from scalinglab.runs.trackers.base import MissingDependency

pytest.importorskip("tensorboard")
from torch.utils.tensorboard import SummaryWriter  # noqa: E402  (needs tensorboard)

STEPS = list(range(0, 200, 10))


def loss_at(step: int, n: float) -> float:
    return 2.0 + 40.0 / (step + 10) + 1e3 / n


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep as people log one: nested run dirs, hparams via add_hparams, a diverged run,
    a run that died before logging, new-style (tensor) scalars, a token counter."""
    root = tmp_path_factory.mktemp("tb")
    for n, lr in ((1e6, 1e-3), (4e6, 3e-3)):
        w = SummaryWriter(root / f"lr{lr:g}" / f"n{n:g}")
        for s in STEPS:
            w.add_scalar("train/loss", loss_at(s, n), s)
            w.add_scalar("tokens_seen", (s + 1) * 2048, s)
            if s % 50 == 0:
                w.add_scalar("val/loss", loss_at(s, n) + 0.1, s)
        w.add_hparams({"n_params": n, "lr": lr, "batch_size": 8, "optimizer": "adamw"},
                      {"hparam/final_loss": loss_at(STEPS[-1], n)})
        w.close()
    w = SummaryWriter(root / "diverged")
    for s, v in ((0, 3.0), (10, 2.9), (20, math.nan), (30, math.nan)):
        w.add_scalar("train/loss", v, s)
    w.add_hparams({"n_params": 2e6, "lr": 1.0}, {"hparam/final_loss": 0.0})
    w.close()
    w = SummaryWriter(root / "crashed")  # opened, then the job died
    w.add_hparams({"n_params": 8e6, "lr": 3e-3}, {"hparam/final_loss": 0.0}, run_name=".")
    w.close()
    w = SummaryWriter(root / "tensor_style")
    for s in STEPS:
        w.add_scalar("train/loss", loss_at(s, 2e6), s, new_style=True)
    w.close()
    return root


@pytest.fixture(scope="module")
def read(logdir: Path):
    return read_tracker("tensorboard", logdir, loss_tag="train/loss", eval_tag="val/loss")


def by_name(result, name):
    return result.runs.set_index("name").loc[name]


def test_one_run_per_run_directory_nested_too_and_add_hparams_dirs_folded_in(read):
    assert sorted(read.runs["name"]) == ["crashed", "diverged", "lr0.001/n1e+06",
                                         "lr0.003/n4e+06", "tensor_style"]
    assert any("folded into the run above" in n for n in read.notes)


def test_hparams_give_N_and_lr_and_the_loss_is_the_last_logged_value(read):
    r = by_name(read, "lr0.003/n4e+06")
    assert r["status"] == "finished"
    assert r["N"] == 4e6 and r["lr"] == pytest.approx(3e-3)
    assert r["loss"] == pytest.approx(loss_at(STEPS[-1], 4e6), rel=1e-6)  # float32 in the file
    assert r["optimizer"] == "adamw" and r["final_step"] == 190
    assert r["eval_loss"] == pytest.approx(loss_at(150, 4e6) + 0.1, rel=1e-6)


def test_the_curve_has_every_point_and_the_token_counter_as_its_axis(read):
    row = int(np.flatnonzero(read.runs["name"] == "lr0.001/n1e+06")[0])
    curve = read.curves[read.curves["row"] == row]
    assert curve["step"].tolist() == STEPS
    assert np.allclose(curve["loss"], [loss_at(s, 1e6) for s in STEPS], rtol=1e-6)
    assert curve["tokens"].tolist() == [(s + 1) * 2048 for s in STEPS]
    assert by_name(read, "lr0.001/n1e+06")["D"] == 191 * 2048
    evals = curve.dropna(subset=["eval_loss"])
    assert evals["step"].tolist() == [0, 50, 100, 150]


def test_new_style_tensor_scalars_are_read_in_full(read):
    # EventAccumulator keeps 10 tensors per tag unless told otherwise
    row = int(np.flatnonzero(read.runs["name"] == "tensor_style")[0])
    assert (read.curves["row"] == row).sum() == len(STEPS)


def test_a_diverged_and_a_crashed_run_are_kept_as_failed_with_the_reason(read):
    d, c = by_name(read, "diverged"), by_name(read, "crashed")
    assert d["status"] == "failed" and d["error"] == "diverged: train/loss is nan at step 20"
    assert c["status"] == "failed" and "no 'train/loss' logged" in c["error"]
    assert c["N"] == 8e6  # what it was going to be is still known
    assert any(n.startswith("2 runs kept as failed") for n in read.notes)


@pytest.mark.parametrize("rule, expected", [
    ("min", lambda v: min(v)),
    ("ema:5", lambda v: __import__("pandas").Series(v).ewm(span=5).mean().iloc[-1]),
])
def test_the_final_rule_applies_to_the_logged_curve(logdir, rule, expected):
    out = read_tracker("tensorboard", logdir, loss_tag="train/loss", final=rule)
    values = [float(str(np.float32(loss_at(s, 1e6)))) for s in STEPS]  # as logged, in float32
    assert by_name(out, "lr0.001/n1e+06")["loss"] == pytest.approx(expected(values), rel=1e-9)


def test_a_mapping_and_a_mapping_file_set_values_per_run(logdir, tmp_path):
    f = tmp_path / "sizes.json"
    f.write_text('{"tensor_style": {"N": 2e6, "D": 409600}}')
    out = read_tracker("tensorboard", logdir, loss_tag="train/loss",
                       mapping={"D": "hparam/final_loss"}, settings=RunSettings.build(file=f))
    t = by_name(out, "tensor_style")
    assert (t["N"], t["D"]) == (2e6, 409600)
    assert by_name(out, "lr0.001/n1e+06")["D"] == pytest.approx(loss_at(STEPS[-1], 1e6), rel=1e-6)


def test_the_loss_tag_is_found_when_only_one_usual_name_is_logged(logdir):
    out = read_tracker("tensorboard", logdir)
    assert "loss read from tag 'train/loss', the one usual loss name logged" in out.notes


def test_a_misspelt_loss_tag_gets_did_you_mean(logdir):
    with pytest.raises(ParameterError, match=r"loss_tag 'train/los': no run in .* logs it "
                                             r"\(did you mean 'train/loss'\?\)"):
        read_tracker("tensorboard", logdir, loss_tag="train/los")


def test_not_a_log_directory_is_one_line_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no TensorBoard event files"):
        read_tracker("tensorboard", tmp_path / "empty")
    with pytest.raises(InputError, match="no such directory"):
        read_tracker("tensorboard", tmp_path / "nope")
    bad = tmp_path / "garbage"
    bad.mkdir()
    (bad / "events.out.tfevents.1.host").write_bytes(b"not an event file at all" * 4)
    with pytest.raises(InputError, match="no readable TensorBoard record") as err:
        read_tracker("tensorboard", bad)
    assert str(bad / "events.out.tfevents.1.host") in str(err.value)


def test_a_zero_byte_event_file_is_a_run_that_died_at_once(tmp_path, logdir):
    import shutil

    root = tmp_path / "logs"
    shutil.copytree(logdir / "lr0.001", root / "ok")
    (root / "dead").mkdir()
    (root / "dead" / "events.out.tfevents.2.host").write_bytes(b"")
    out = read_tracker("tensorboard", root, loss_tag="train/loss")
    assert by_name(out, "dead")["status"] == "failed"
    assert "empty" in by_name(out, "dead")["error"]


def test_without_the_tensorboard_package_the_error_is_one_line(monkeypatch, logdir):
    for name in list(sys.modules):
        if name == "tensorboard" or name.startswith("tensorboard."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import raises ImportError
    with pytest.raises(MissingDependency) as err:
        read_tracker("tensorboard", logdir, loss_tag="train/loss")
    assert str(err.value) == ("reading TensorBoard event files needs the 'tensorboard' package: "
                              "pip install 'scalinglab[trackers]'")


def _write_run(run_dir: Path, steps: range, n: float) -> None:
    w = SummaryWriter(run_dir)
    for s in steps:
        w.add_scalar("train/loss", loss_at(s, n), s)
    w.close()


def test_a_run_id_is_the_run_directory_relative_to_the_logdir_not_its_event_files(tmp_path):
    import socket

    given = RunSettings.build({"N": 1e6, "D": 1e6})
    _write_run(tmp_path / "logs" / "sweep" / "small", range(0, 50, 10), 1e6)
    out = read_tracker("tensorboard", tmp_path / "logs", loss_tag="train/loss", settings=given)
    moved = tmp_path / "elsewhere"
    (tmp_path / "logs").rename(moved)  # the same runs, another place on disk
    again = read_tracker("tensorboard", moved, loss_tag="train/loss", settings=given)
    assert out.runs["run_id"].tolist() == again.runs["run_id"].tolist()
    assert by_name(out, "sweep/small")["run_id"].startswith("tb-")
    host = socket.gethostname()
    assert host not in by_name(out, "sweep/small")["run_id"]
    # a log dir that is itself one run directory: the id is its name
    alone = read_tracker("tensorboard", moved / "sweep" / "small", loss_tag="train/loss",
                         settings=given)
    assert alone.runs["run_id"].tolist() == ["tb-small"]
    assert alone.runs["name"].tolist() == ["small"]


def test_a_resumed_run_keeps_its_id_and_reimporting_it_is_a_named_conflict_not_a_copy(tmp_path):
    from scalinglab.errors import ConflictError
    from scalinglab.runs.store import RunStore

    logs, store = tmp_path / "logs", RunStore(tmp_path / "s.duckdb")
    given = RunSettings.build({"N": 1e6, "D": 2e6})
    _write_run(logs / "run_a", range(0, 50, 10), 1e6)
    _write_run(logs / "run_b", range(0, 100, 10), 4e6)

    def imported(on_conflict: str = "error"):
        out = read_tracker("tensorboard", logs, loss_tag="train/loss", settings=given)
        return out, store.import_frame(out.runs, source=str(logs), curves=out.curves,
                                       on_conflict=on_conflict)

    first, _ = imported()
    # run_a resumes from its checkpoint: a second event file in the same directory
    _write_run(logs / "run_a", range(40, 100, 10), 1e6)
    assert len(list((logs / "run_a").glob("events.out.tfevents.*"))) == 2
    resumed = read_tracker("tensorboard", logs, loss_tag="train/loss", settings=given)
    assert resumed.runs["run_id"].tolist() == first.runs["run_id"].tolist()
    with pytest.raises(ConflictError, match=r"run 'tb-run_a' is already in the store"):
        imported()
    _, report = imported(on_conflict="replace")
    assert (report.n_replaced, report.n_inserted, report.n_skipped_duplicates) == (1, 1, 1)
    stored = store.runs(status=None)
    assert sorted(stored["run_id"]) == ["tb-run_a", "tb-run_b"]  # one copy of each
    assert stored.set_index("run_id").loc["tb-run_a", "loss"] == pytest.approx(
        loss_at(90, 1e6), rel=1e-6)
    assert store.curve("tb-run_a")["step"].tolist() == list(range(0, 100, 10))
    # and importing the same files once more adds nothing
    _, report = imported()
    assert (report.n_inserted, report.n_skipped_duplicates) == (0, 2)
