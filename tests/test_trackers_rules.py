"""The rules every tracker reader shares: final loss, where N/D come from, when a run failed."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import InputError, ParameterError
from scalinglab.runs.trackers.base import (
    RawRun,
    ReadSpec,
    assemble,
    build,
    series,
)
from scalinglab.runs.trackers.final import FinalRule
from scalinglab.runs.trackers.settings import RunSettings, read_settings_file


def spec(**kw) -> ReadSpec:
    return ReadSpec(**{"loss_key": "train/loss", "final": FinalRule(), "source": "src", **kw})


def run(steps=(10, 20, 30), losses=(3.0, 2.5, 2.2), **kw) -> RawRun:
    return RawRun(**{"name": "a", "keys": ("a",), "loss": series(steps, losses), **kw})


# -- the final loss ---------------------------------------------------------------------------


@pytest.mark.parametrize("span", [1, 3, 10, 50])
def test_ema_final_loss_equals_pandas_ewm_with_the_same_span(span):
    values = np.random.default_rng(span).normal(3.0, 0.2, 40)
    reference = pd.Series(values).ewm(span=span, adjust=True).mean().iloc[-1]
    assert FinalRule.parse(f"ema:{span}").apply(values) == pytest.approx(reference, rel=1e-12)


def test_last_and_min_are_the_last_and_the_lowest_point():
    values = np.array([3.0, 2.1, 2.4])
    assert FinalRule.parse("last").apply(values) == 2.4
    assert FinalRule.parse("min").apply(values) == 2.1
    assert str(FinalRule.parse(" EMA:20 ")) == "ema:20"


@pytest.mark.parametrize("bad", ["mean", "ema", "ema:0", "ema:x", "ema:2.5", "last:3"])
def test_a_bad_final_rule_is_one_parameter_error(bad):
    with pytest.raises(ParameterError, match="final must be last, min or ema:K") as err:
        FinalRule.parse(bad)
    assert err.value.parameters == ("final",)


# -- series ------------------------------------------------------------------------------------


def test_a_step_logged_twice_keeps_the_later_value_a_resumed_run_wrote():
    s, v = series([0, 10, 20, 10, 20, 30], [3.0, 2.9, 2.8, 2.95, 2.85, 2.7])
    assert s.tolist() == [0, 10, 20, 30]
    assert v.tolist() == [3.0, 2.95, 2.85, 2.7]


# -- status and reason -------------------------------------------------------------------------


def test_a_run_whose_loss_turns_nan_failed_and_keeps_its_finite_curve():
    row, curve = assemble(run((10, 20, 30, 40), (3.0, 2.5, float("nan"), 2.0)), spec(), Counter())
    assert row["status"] == "failed"
    assert row["error"] == "diverged: train/loss is nan at step 30"
    assert math.isnan(row["loss"]) and row["last_logged_loss"] == 2.5
    assert curve["step"].tolist() == [10, 20]


def test_a_run_with_no_loss_logged_failed_before_its_first_log():
    row, curve = assemble(RawRun("a", ("a",), loss=None, params={"N": 1e6}), spec(), Counter())
    assert row["status"] == "failed" and "no 'train/loss' logged" in row["error"]
    assert row["N"] == 1e6 and curve.empty


def test_the_trackers_own_failure_is_kept_with_its_reason():
    row, _ = assemble(run(status="failed", error="MLflow status KILLED"), spec(), Counter())
    assert (row["status"], row["error"]) == ("failed", "MLflow status KILLED")
    assert math.isnan(row["loss"])


def test_a_running_run_keeps_its_loss_so_far_and_stays_running():
    row, _ = assemble(run(status="running"), spec(), Counter())
    assert row["status"] == "running" and row["loss"] == 2.2


def test_a_log_stopping_more_than_one_interval_short_of_its_plan_is_partial():
    steps = tuple(range(10, 3010, 10))
    losses = tuple(np.linspace(4, 3, len(steps)))
    partial, _ = assemble(run(steps, losses, planned_steps=5000), spec(), Counter())
    assert partial["status"] == "failed"
    assert partial["error"].startswith("the log stops at step 3000 of 5000")
    # a log every 10 steps may end at 4995 of 5000: that is a finished run
    done, _ = assemble(run(tuple(range(5, 5000, 10)), tuple(np.linspace(4, 3, 500)),
                           planned_steps=5000), spec(), Counter())
    assert done["status"] == "finished"


# -- where N, D, lr and the batch come from ---------------------------------------------------


def test_logged_hyperparameters_under_common_names_become_scalinglab_columns():
    how = Counter()
    params = {"hparams/n_params": "125M", "learning_rate": 3e-4, "n": 7, "optimizer": "adamw",
              "smooth_loss": 1.0}
    row, _ = assemble(run(params=params), spec(), how)
    assert row["N"] == 125e6 and row["lr"] == 3e-4
    assert "n" in row and row["n"] == 7.0  # 'n' is not N: only the exact name is
    assert row["optimizer"] == "adamw"
    assert row["param.smooth_loss"] == 1.0  # could not replace the loss the reader computed
    assert how["N <- param 'hparams/n_params'"] == 1


def test_the_mapping_reads_a_hyperparameter_or_the_last_value_of_a_series():
    tokens = series([10, 20, 30], [1000, 2000, 3000])
    r = run(params={"width": 64, "model_size": 5e5}, scalars={"tokens_seen": tokens})
    row, curve = assemble(r, spec(mapping={"N": "model_size", "D": "tokens_seen"}), Counter())
    assert row["N"] == 5e5 and row["D"] == 3000
    assert curve["tokens"].tolist() == [1000, 2000, 3000]  # the D series is the token axis


def test_given_values_win_over_logged_ones_and_the_file_over_constants(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("run,N,D\na,2e6,4e7\n")
    settings = RunSettings.build({"N": "1e6", "lr": "1e-3"}, f)
    how = Counter()
    row, _ = assemble(run(params={"n_params": 9e9}), spec(settings=settings), how)
    assert (row["N"], row["D"], row["lr"]) == (2e6, 4e7, 1e-3)
    assert how["warning: N given overrides the logged value"] == 1


def test_D_is_updates_times_batch_when_no_token_count_is_logged():
    row, curve = assemble(run(params={"batch_tokens": 1024}), spec(step_offset=1), Counter())
    assert row["D"] == 31 * 1024  # the last logged step 30 is the 31st update (offset 1)
    assert curve["tokens"].tolist() == [11 * 1024, 21 * 1024, 31 * 1024]


def test_a_mapped_value_that_is_not_a_number_names_source_run_and_column():
    with pytest.raises(InputError) as err:
        assemble(run(params={"lr": "auto"}), spec(), Counter())
    assert str(err.value) == "src: run 'a', column \"lr (param 'lr')\": 'auto' is not a number"


def test_a_mapping_naming_nothing_any_run_logs_says_did_you_mean():
    with pytest.raises(ParameterError, match=r"logs a value named 'n_param' \(did you mean 'n_params'\?\)"):
        build([run(params={"n_params": 1})], spec(mapping={"N": "n_param"}))


# -- mapping files ----------------------------------------------------------------------------


def test_mapping_files_in_csv_and_json_give_the_same_values(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("run_dir,N,D\nlr1/s0,1e6,2e7\nlr2/s0,3e6,\n")
    js = tmp_path / "m.json"
    js.write_text(json.dumps({"lr1/s0": {"N": 1e6, "D": 2e7}, "lr2/s0": {"N": 3e6}}))
    listed = tmp_path / "l.json"
    listed.write_text(json.dumps([{"run": "lr1/s0", "N": 1e6, "D": 2e7}, {"run": "lr2/s0", "N": 3e6}]))
    values = [read_settings_file(p)[0] for p in (csv, js, listed)]
    as_numbers = [{k: {c: float(v) for c, v in d.items()} for k, d in x.items()} for x in values]
    assert as_numbers[0] == as_numbers[1] == as_numbers[2] == {
        "lr1/s0": {"N": 1e6, "D": 2e7}, "lr2/s0": {"N": 3e6}}


def test_a_mapping_file_naming_runs_not_in_this_import_is_a_warning_naming_them(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("run,N,D\nrun-a,1e6,2e7\nrun-bb,2e6,4e7\nbaseline,3e6,6e7\n")
    settings = RunSettings.build(file=f)
    runs = [RawRun("run-b", ("run-b",), None), RawRun("run-a", ("run-a",), None)]
    out = build(runs, spec(settings=settings))
    assert out.runs.set_index("name").loc["run-a", "N"] == 1e6  # the run it matches got its values
    warning = next(n for n in out.notes if "not in src" in n)
    assert warning == (f"warning: 2 of the 3 runs in {f} are not in src, so their values were "
                       "not used: 'run-bb' (row 2 (line 3)) (did you mean 'run-b'?); "
                       "'baseline' (row 3 (line 4))")


def test_a_mapping_file_matching_none_of_the_runs_is_an_error_with_the_line(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("run,N\nrun-bb,2e6\nrun-x,1e6\n")
    runs = [RawRun("run-b", ("run-b",), None), RawRun("run-a", ("run-a",), None)]
    with pytest.raises(InputError) as err:
        build(runs, spec(settings=RunSettings.build(file=f)))
    assert str(err.value).startswith(f"{f}: row 1 (line 2): none of the 2 runs it lists is in "
                                     "src: run 'run-bb' is not (did you mean 'run-b'?)")


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON"),
    ("[1, 2]", "expected an object with a 'run' key"),
    ('{"a": 3}', "expected an object of values"),
])
def test_a_broken_json_mapping_file_is_one_line(tmp_path, text, message):
    f = tmp_path / "m.json"
    f.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_settings_file(f)
    assert "\n" not in str(err.value) and str(f) in str(err.value)


def test_a_run_named_twice_in_a_mapping_file_is_an_error(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("run,N\na,1\na,2\n")
    with pytest.raises(InputError, match=r"row 2 \(line 3\), column 'run': run 'a' is given twice"):
        read_settings_file(f)


def test_build_counts_each_inference_once_and_lists_failed_runs():
    runs = [run(params={"N": 1}), RawRun("b", ("b",), None, params={"N": 2})]
    out = build(runs, spec())
    assert list(out.runs["status"]) == ["finished", "failed"]
    assert "N <- param 'N'" in out.notes
    assert any(n.startswith("1 run kept as failed: 'b': no 'train/loss' logged") for n in out.notes)
    assert out.curves["row"].tolist() == [0, 0, 0]
    assert out.runs.attrs["row_labels"] == {0: "run 'a'", 1: "run 'b'"}


def test_a_divergence_overrides_running_and_adds_to_the_trackers_own_failure():
    nan = float("nan")
    running, _ = assemble(run((1, 2), (3.0, nan), status="running"), spec(), Counter())
    assert (running["status"], running["error"]) == ("failed", "diverged: train/loss is nan at step 2")
    failed, _ = assemble(run((1, 2), (3.0, nan), status="failed", error="MLflow status FAILED"),
                         spec(), Counter())
    assert failed["error"] == "MLflow status FAILED; diverged: train/loss is nan at step 2"
    just_started, _ = assemble(RawRun("a", ("a",), None, status="running"), spec(), Counter())
    assert (just_started["status"], just_started["error"]) == ("running", None)


def test_a_given_key_close_to_a_scalinglab_name_is_warned_about():
    out = build([run()], spec(settings=RunSettings.build({"n": "1e6", "lr_": "1e-3", "notes": "x"})))
    assert "warning: 'n' is not a scalinglab column (did you mean 'N'?); kept as an extra" in out.notes
    assert "warning: 'lr_' is not a scalinglab column (did you mean 'lr'?); kept as an extra" in out.notes
    assert not any("'notes'" in n for n in out.notes)
