"""Plain-text training logs: the sweep runner's own, nanoGPT's, Megatron's, and any regex."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from scalinglab.errors import InputError, ParameterError
from scalinglab.runs.trackers import RunSettings, read_tracker
from scalinglab.runs.trackers.training_log import (
    FORMATS,
    scalinglab_eval,
    scalinglab_failure,
    scalinglab_header,
    scalinglab_step,
)

# -- scalinglab's own training loop ---------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two real runs of the sweep runner with --log: one finishes, one diverges."""
    from scalinglab.sweep.data import DataSpec
    from scalinglab.sweep.model import ModelConfig
    from scalinglab.sweep.plan import RunSpec
    from scalinglab.sweep.runner import execute
    from scalinglab.sweep.train import TrainConfig

    root = tmp_path_factory.mktemp("sweep")
    words = np.random.default_rng(1).choice(["def", "return", "self", "for", "in", "if"], 20_000)
    (root / "code.txt").write_text(" ".join(words))
    data = DataSpec(source=str(root / "code.txt"))
    logs = root / "logs"

    def spec(lr: float) -> RunSpec:
        return RunSpec(ModelConfig(d_model=32, n_layers=1, n_heads=2, seq_len=32),
                       TrainConfig(lr=lr, batch_tokens=256, steps=12, eval_tokens=2048), data)

    good, bad = spec(1e-2), spec(1e30)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCALINGLAB_CACHE", str(root / "cache"))
        outcomes = {s.run_id: execute(s, log_dir=str(logs)) for s in (good, bad)}
    return logs, good, bad, outcomes


def test_the_runners_log_reads_back_as_the_run_it_trained(trained):
    logs, good, _, outcomes = trained
    out = read_tracker("log", logs, final="last")
    assert "lines read with the scalinglab format (detected)" in out.notes
    r = out.runs.set_index("name").loc[good.run_id]
    rec = outcomes[good.run_id].record
    assert r["status"] == "finished"
    assert (r["N"], r["D"], r["lr"], r["batch_tokens"], r["seq_len"]) == (
        rec["N"], rec["D"], rec["lr"], rec["batch_tokens"], rec["seq_len"])
    assert r["loss"] == pytest.approx(rec["extra"]["train_loss"], abs=1e-6)  # last train loss
    assert r["eval_loss"] == pytest.approx(rec["extra"]["eval_loss"], abs=1e-6)
    assert r["sweep_run_id"] == good.run_id


def test_the_logged_curve_is_the_curve_the_trainer_recorded(trained):
    logs, good, _, outcomes = trained
    out = read_tracker("log", logs)
    row = int(np.flatnonzero(out.runs["name"] == good.run_id)[0])
    logged = out.curves[out.curves["row"] == row].reset_index(drop=True)
    recorded = outcomes[good.run_id].curve
    assert logged["step"].tolist() == recorded["step"].tolist()
    assert logged["tokens"].tolist() == recorded["tokens"].tolist()
    assert np.allclose(logged["loss"], recorded["loss"], atol=1e-6)
    # the log's time field is the runner's clock, the one its curve's wall_s reads (the line is
    # written just after the point is recorded: within a few ms, printed to 1 ms)
    assert np.allclose(logged["wall_s"], recorded["wall_s"], atol=0.05)
    assert (np.diff(logged["wall_s"]) > 0).all()
    assert "wall time along the curve <- the log's time field" in out.notes
    # the default final loss is an EMA (span 10) of the logged training losses
    values = recorded["loss"].to_numpy()
    w = (1 - 2 / 11) ** np.arange(len(values) - 1, -1, -1)
    assert out.runs.loc[row, "loss"] == pytest.approx(float(w @ values / w.sum()), abs=1e-6)


def test_a_diverged_runs_log_is_a_failed_run_with_the_runners_reason(trained):
    logs, _, bad, outcomes = trained
    out = read_tracker("log", logs)
    r = out.runs.set_index("name").loc[bad.run_id]
    assert r["status"] == "failed"
    assert r["error"] == " ".join(outcomes[bad.run_id].record["error"].split())
    assert r["N"] == bad.N  # the header still says what it was


def test_writer_and_reader_of_scalinglab_lines_agree(tmp_path):
    f = tmp_path / "r.log"
    f.write_text("\n".join([
        scalinglab_header(N=1000, D=4096, batch_tokens=256, steps=16),
        *(scalinglab_step(s, 16, s * 256, 5.0 / s, 1e-3) for s in range(1, 17)),
        scalinglab_eval(16, 4096, 4.2),
    ]) + "\n")
    out = read_tracker("log", f, log_format="scalinglab", final="last")
    r = out.runs.iloc[0]
    assert (r["name"], r["N"], r["D"], r["loss"], r["eval_loss"]) == ("r", 1000, 4096, 0.3125, 4.2)
    assert out.curves["tokens"].tolist() == [s * 256 for s in range(1, 17)]
    assert scalinglab_failure("diverged at step 3:\n  nan") == "failed: diverged at step 3: nan"


# -- other formats, in the lines their training scripts print --------------------------------


def nanogpt_log(iters: int, nan_from: int | None = None, crash: bool = False) -> str:
    lines = ["Overriding config with config/train_shakespeare_char.py:",
             "batch_size = 64", "block_size = 256 # context of up to 256 previous characters",
             "learning_rate = 1e-3 # with baby networks can afford to go a bit higher",
             f"max_iters = {iters}", "Overriding: dataset = shakespeare_char",
             "tokens per iteration will be: 16,384", "number of parameters: 10.65M"]
    for i in range(0, iters + 1, 10):
        if i % 50 == 0:
            lines.append(f"step {i}: train loss {3.0 - i / 1000:.4f}, val loss {3.1 - i / 1000:.4f}")
        loss = math.nan if nan_from is not None and i >= nan_from else 3.0 - i / 1000
        lines.append(f"iter {i}: loss {loss:.4f}, time 12.34ms, mfu 1.23%")
    if crash:
        lines += ["Traceback (most recent call last):", '  File "train.py", line 300, in <module>',
                  "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"]
    return "\n".join(lines) + "\n"


def test_nanogpt_logs_give_the_curve_the_batch_and_the_lr(tmp_path):
    f = tmp_path / "shakespeare.log"
    f.write_text(nanogpt_log(200))
    out = read_tracker("log", f, settings=RunSettings.build({"N": "1e7"}))
    r = out.runs.iloc[0]
    assert "lines read with the nanogpt format (detected)" in out.notes
    assert (r["status"], r["lr"], r["batch_tokens"], r["seq_len"]) == ("finished", 1e-3, 16384, 256)
    assert r["D"] == 201 * 16384  # iter 200 is the 201st update
    assert r["micro_batch_size"] == 64.0  # nanoGPT's batch_size is per micro-step, not the batch
    assert r["reported_params"] == "10.65M"  # as printed: it counts embeddings, so it is not N
    assert out.curves["step"].tolist()[:3] == [0, 10, 20]
    assert out.curves.dropna(subset=["eval_loss"])["step"].tolist() == [0, 50, 100, 150, 200]


def test_a_nan_loss_a_traceback_and_an_early_stop_are_failed_runs(tmp_path):
    (tmp_path / "nan.log").write_text(nanogpt_log(200, nan_from=120))
    (tmp_path / "oom.log").write_text(nanogpt_log(100, crash=True))
    text = nanogpt_log(300)
    (tmp_path / "cut.log").write_text(text.replace("max_iters = 300", "max_iters = 5000"))
    out = read_tracker("log", tmp_path, settings=RunSettings.build({"N": "1e7"}))
    r = out.runs.set_index("name")
    assert r.loc["nan", "error"] == "diverged: loss is nan at step 120"
    assert r.loc["oom", "error"].startswith("the log ends in a Python traceback (line ")
    assert r.loc["oom", "error"].endswith("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert r.loc["cut", "error"].startswith("the log stops at step 300 of 5000")
    assert (r["status"] == "failed").all()


MEGATRON_ARGS = """------------------------ arguments ------------------------
  global_batch_size ............................... 32
  lr .............................................. 0.0003
  seq_length ...................................... 1024
  train_iters ..................................... 300
-------------------- end of arguments ---------------------
"""


def megatron_line(it: int, total: int, loss: float | None, lr: float = 3e-4) -> str:
    head = (f" [2024-05-01 12:00:00] iteration {it:8d}/{total:8d} | consumed samples: {it * 32:12d} |"
            f" elapsed time per iteration (ms): 512.3 | learning rate: {lr:.6E} |"
            f" global batch size: {32:5d} |")
    body = f" lm loss: {loss:.6E} |" if loss is not None else ""
    nans = 0 if loss is not None else 10
    return (head + body + " loss scale: 1.0 | grad norm: 1.234 |"
            f" number of skipped iterations:   0 | number of nan iterations: {nans:3d} |")


def test_megatron_logs_give_curve_validation_and_arguments(tmp_path):
    lines = [MEGATRON_ARGS]
    for it in range(10, 310, 10):
        lines.append(megatron_line(it, 300, 3.0 - it / 1000, lr=3e-4 * min(1, it / 100)))
        if it % 100 == 0:
            lines.append(f" validation loss at iteration {it} | lm loss value: {3.05 - it / 1000:.6E} |"
                         f" lm loss PPL: 2.1E+01 |")
    f = tmp_path / "gpt.out"
    f.write_text("\n".join(lines) + "\n")
    out = read_tracker("log", f, settings=RunSettings.build({"N": "1.2e8"}), final="last")
    r = out.runs.iloc[0]
    assert "lines read with the megatron format (detected)" in out.notes
    assert (r["status"], r["loss"], r["lr"], r["seq_len"]) == ("finished", 2.7, 3e-4, 1024)
    assert r["D"] == 300 * 32 * 1024  # iterations x global batch x sequence length
    assert out.curves.dropna(subset=["eval_loss"])["eval_loss"].tolist() == pytest.approx([2.95, 2.85, 2.75])


def test_a_megatron_run_whose_loss_went_nan_is_diverged(tmp_path):
    lines = [MEGATRON_ARGS] + [megatron_line(it, 300, 3.0) for it in (10, 20)]
    lines += [megatron_line(it, 300, None) for it in (30, 40)]  # Megatron drops a NaN 'lm loss'
    f = tmp_path / "gpt.log"
    f.write_text("\n".join(lines) + "\n")
    out = read_tracker("log", f, log_format="megatron", settings=RunSettings.build({"N": "1e8"}))
    assert out.runs.iloc[0]["error"] == "diverged: loss is nan at step 30"


def test_a_pattern_reads_any_other_log(tmp_path):
    f = tmp_path / "custom.txt"
    f.write_text("".join(f"[train] it={s} seen={s * 512} loss={4 - s / 100:.3f}\n" for s in range(1, 51)))
    out = read_tracker("log", f, pattern=r"it=(?P<step>\d+) seen=(?P<tokens>\d+) loss=(?P<loss>\S+)",
                       settings=RunSettings.build({"N": "5e5"}), final="min")
    r = out.runs.iloc[0]
    assert (r["loss"], r["D"]) == (3.5, 50 * 512)
    assert out.curves["tokens"].tolist()[-1] == 50 * 512


@pytest.mark.parametrize("pattern, message", [
    (r"it=(?P<step>\d+", "pattern is not a valid regular expression"),
    (r"it=(?P<step>\d+) (\S+)", "it lacks loss"),
])
def test_a_bad_pattern_is_one_parameter_error(tmp_path, pattern, message):
    f = tmp_path / "x.log"
    f.write_text("it=1 3.0\n")
    with pytest.raises(ParameterError, match=message) as err:
        read_tracker("log", f, pattern=pattern)
    assert err.value.parameters == ("pattern",)


def test_a_log_no_format_matches_names_the_formats(tmp_path):
    f = tmp_path / "x.log"
    f.write_text("hello\nworld\n")
    with pytest.raises(InputError, match="no line matches a known training-log format") as err:
        read_tracker("log", f)
    for name in FORMATS:
        assert name in str(err.value)
    with pytest.raises(InputError, match="no line matches the nanogpt format"):
        read_tracker("log", f, log_format="nanogpt")
    with pytest.raises(ParameterError, match="log_format must be one of nanogpt, megatron, scalinglab"):
        read_tracker("log", f, log_format="fairseq")


def test_options_that_do_not_apply_to_a_source_are_refused(tmp_path):
    with pytest.raises(ParameterError, match="experiment cannot be used with kind 'log'"):
        read_tracker("log", tmp_path, experiment="x")
    with pytest.raises(ParameterError, match="kind must be one of"):
        read_tracker("comet", tmp_path)


def test_a_folder_of_logs_is_one_run_per_file_named_by_its_path(tmp_path):
    for name in ("a/run1.log", "a/run2.txt", "b/run3.out", ".hidden/x.log", "notes.md"):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(nanogpt_log(20))
    out = read_tracker("log", tmp_path, settings=RunSettings.build({"N": "1e6"}))
    assert list(out.runs["name"]) == ["a/run1", "a/run2", "b/run3"]
    assert Path(out.runs.iloc[0]["log_file"]) == Path("a/run1.log")


def test_a_folder_of_logs_in_mixed_formats_reads_each_file_with_its_own_format(tmp_path):
    (tmp_path / "nano.log").write_text(nanogpt_log(200))
    lines = [MEGATRON_ARGS] + [megatron_line(it, 300, 3.0 - it / 1000) for it in range(10, 310, 10)]
    (tmp_path / "mega.log").write_text("\n".join(lines) + "\n")
    (tmp_path / "nano2.log").write_text(nanogpt_log(100))
    out = read_tracker("log", tmp_path, settings=RunSettings.build({"N": "1e7"}), final="last")
    r = out.runs.set_index("name")
    assert (r["status"] == "finished").all(), r["error"].tolist()
    assert r.loc["nano", "loss"] == pytest.approx(2.8) and r.loc["mega", "loss"] == pytest.approx(2.7)
    # each keeps its format's step convention: nanoGPT's iter 200 is the 201st update
    assert r.loc["nano", "D"] == 201 * 16384 and r.loc["mega", "D"] == 300 * 32 * 1024
    assert ("lines read with the format detected in each file: nanogpt (2 files), "
            "megatron (1 file)") in out.notes
    # a format given applies to every file: the Megatron log then has no nanoGPT loss line
    forced = read_tracker("log", tmp_path, log_format="nanogpt",
                          settings=RunSettings.build({"N": "1e7"}))
    f = forced.runs.set_index("name")
    assert f.loc["mega", "status"] == "failed" and "no 'loss' logged" in f.loc["mega", "error"]
    assert (f.loc[["nano", "nano2"], "status"] == "finished").all()


def test_a_log_with_no_training_line_beside_others_is_read_with_the_folders_format(tmp_path):
    (tmp_path / "ok.log").write_text(nanogpt_log(100))
    crashed = nanogpt_log(0, crash=True).replace("iter 0: loss 3.0000, time 12.34ms, mfu 1.23%\n", "")
    (tmp_path / "died.log").write_text(crashed)
    out = read_tracker("log", tmp_path, settings=RunSettings.build({"N": "1e7"}))
    r = out.runs.set_index("name")
    assert r.loc["died", "status"] == "failed"
    assert r.loc["died", "lr"] == 1e-3  # its nanoGPT config lines were read
    assert "1 file with no training line read with the nanogpt format, the most common here" in out.notes
