"""The newer commands (fit curves, predict curve, fit loss-to-loss --group, design pool
--observed, fit custom --group, runs --fit) under bad input: each is refused with one line
``error: ...`` naming the file, row and column where there is one, exit code 2, no traceback,
and nothing in the folder written or changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.laws.curves import MultiPowerLaw
from scalinglab.laws.loss_to_loss import shifted_power
from scalinglab.laws.schedules import Schedule, cosine

runner = CliRunner()
SCHED = "cosine:steps=4000,peak=3e-4,final=3e-5,warmup=200"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def refused(args: list[str], folder: Path, *expected: str) -> str:
    before = snapshot(folder)
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 2, (res.exit_code, res.output)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output and "np.float64" not in res.output
    for text in expected:
        assert text in lines[0], lines[0]
    assert snapshot(folder) == before
    return lines[0]


@pytest.fixture(scope="module")
def curves(tmp_path_factory) -> Path:
    """Two logged runs of a known multi-power law and a fit of them (no bootstrap: fast)."""
    folder = tmp_path_factory.mktemp("curves")
    truth = {"L0": 3.0, "A": 0.55, "alpha": 0.45, "B": 450.0, "C": 2.0, "beta": 0.55, "gamma": 0.6}
    rows = []
    for name, lr in {"cos": cosine(4000, 3e-4, 3e-5, 200), "flat": cosine(4000, 3e-4, 3e-4, 200)}.items():
        steps = np.arange(300, 4000, 100)
        loss = MultiPowerLaw().value(truth, Schedule(lr), steps)
        rows.append(pd.DataFrame({"run": name, "step": steps, "lr": lr[steps], "loss": loss}))
    pd.concat(rows).to_csv(folder / "curves.csv", index=False)
    res = runner.invoke(app, ["fit", "curves", str(folder / "curves.csv"), "-b", "0", "--save",
                              str(folder / "fit.json")])
    assert res.exit_code == 0, res.output
    return folder


def test_an_infinite_loss_in_a_curve_names_its_row_and_column(curves):
    frame = pd.read_csv(curves / "curves.csv")
    frame.loc[5, "loss"] = np.inf  # passed 'loss > 0' and ended in a numpy traceback
    frame.to_csv(curves / "bad_loss.csv", index=False)
    refused(["fit", "curves", curves / "bad_loss.csv"], curves, "bad_loss.csv", "row 6", "'loss'",
            "not finite")


def test_an_infinite_step_names_its_row(curves):
    frame = pd.read_csv(curves / "curves.csv").astype({"step": float})
    frame.loc[4, "step"] = np.inf  # an OverflowError traceback
    frame.to_csv(curves / "bad_step.csv", index=False)
    refused(["fit", "curves", curves / "bad_step.csv"], curves, "row 5", "'step'", "not a step number")
    frame[frame.run == "cos"].to_csv(curves / "bad_sched.csv", index=False)
    refused(["predict", "curve", "--fit", curves / "fit.json", "--schedule", curves / "bad_sched.csv"],
            curves, "row 5", "'step'", "not a step number")


def test_predict_curve_refuses_bad_numbers_in_its_options(curves):
    fit = curves / "fit.json"
    refused(["predict", "curve", "--fit", fit, "--schedule", SCHED, "--steps", "100,abc"], curves,
            "--steps", "'abc' is not a number")
    refused(["predict", "curve", "--fit", fit, "--best-wsd", "steps=4000,peak=abc,warmup=200"],
            curves, "--best-wsd peak", "'abc'")
    refused(["predict", "curve", "--fit", fit, "--best-wsd", "steps=4000,peak=inf,warmup=200"],
            curves, "--best-wsd peak must be finite")
    # 0 was read as "the fit's own level"
    refused(["predict", "curve", "--fit", fit, "--schedule", SCHED, "--level", "0"], curves,
            "--level must be in (0, 1)")


def test_predict_curve_level_is_checked_once_by_the_fit_and_named_as_the_flag(curves):
    """--level is the library's check (CurveFit refuses a level outside (0, 1) with a typed
    ParameterError), shown with the flag's name for --schedule, --compare and --best-wsd alike;
    the command kept a second copy of the rule, so its JSON error said UserError."""
    fit = curves / "fit.json"
    for mode in (["--schedule", SCHED], ["--compare", SCHED],
                 ["--best-wsd", "steps=4000,peak=3e-4,final=3e-5,warmup=200"]):
        for level, shown in (("1.5", "1.5"), ("nan", "nan")):
            refused(["predict", "curve", "--fit", fit, *mode, "--level", level], curves,
                    f"--level must be in (0, 1), not {shown}")
        res = runner.invoke(app, ["predict", "curve", "--fit", str(fit), *mode, "--level", "0", "--json"])
        assert res.exit_code == 2
        assert json.loads(res.stdout)["error"] == {
            "type": "ParameterError", "message": "--level must be in (0, 1), not 0.0", "exit_code": 2}


def test_a_schedule_file_with_text_for_an_lr_is_refused_not_skipped(curves):
    pd.DataFrame({"step": [0, 1, 2, 3], "lr": ["1e-4", "2e-4", "abc", "3e-4"]}).to_csv(
        curves / "sched.csv", index=False)
    refused(["predict", "curve", "--fit", curves / "fit.json", "--schedule", curves / "sched.csv"],
            curves, "sched.csv", "row 3", "'lr'", "'abc' is not a number")
    pd.DataFrame({"step": [0, 1, 2], "lr": [1e-4, -2e-4, 1e-4]}).to_csv(curves / "neg.csv", index=False)
    refused(["predict", "curve", "--fit", curves / "fit.json", "--schedule", curves / "neg.csv"],
            curves, "lr -0.0002 at step 1")  # a plain number, not np.float64(-0.0002)


@pytest.fixture
def l2l(tmp_path) -> Path:
    x = np.tile(np.linspace(2.6, 4.0, 8), 3)
    corpus = np.repeat(["a", "b", "c"], 8)
    params = {"a": (1.2, 0.8, 1.5), "b": (0.9, 1.1, 1.8), "c": (1.5, 0.6, 1.0)}
    y = np.concatenate([shifted_power({"x": x[:8]}, {"K": k, "kappa": kap, "E_x": ex, "E_y": 2.4})
                        for k, kap, ex in params.values()])
    frame = pd.DataFrame({"corpus": corpus, "x": x, "y": y})
    frame.to_csv(tmp_path / "l2l.csv", index=False)
    return tmp_path


def test_a_loss_to_loss_offset_must_be_a_positive_finite_number(l2l):
    for flag, value in (("--E-x", "inf"), ("--E-y", "-inf"), ("--E-x", "nan")):
        refused(["fit", "loss-to-loss", l2l / "l2l.csv", "--x", "x", "--y", "y", "-b", "0",
                 flag, value], l2l, f"{flag[2:].replace('-', '_')} = {value}",
                "must be a positive finite number")


def test_rows_without_a_group_are_left_out_with_a_note(l2l):
    frame = pd.read_csv(l2l / "l2l.csv").astype(object)
    frame.loc[3, "corpus"] = None  # was a group '' of one run, which failed the pooled fit
    frame.to_csv(l2l / "l2l.csv", index=False)
    res = runner.invoke(app, ["fit", "loss-to-loss", str(l2l / "l2l.csv"), "--x", "x", "--y", "y",
                              "--group", "corpus", "--shared", "E_y", "-b", "0", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert "1 rows without a corpus left out (first: row 4)" in out["notes"]
    assert set(out["fits"]) == {"a", "b", "c"}


@pytest.mark.parametrize(("cell", "shown"), [("999", "999"), ("2.5", "2.5"), ("x", "'x'")])
def test_an_observed_row_that_is_not_a_pool_row_names_the_file(tmp_path, cell, shown):
    n, d = np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5))
    pool = pd.DataFrame({"N": n.ravel(), "D": d.ravel()})
    pool.to_csv(tmp_path / "pool.csv", index=False)
    seen = pool.iloc[:4].assign(row=[1, 2, 3, 4], loss=[3.1, 3.0, 2.9, 2.8]).astype(object)
    seen.loc[2, "row"] = cell  # 2.5 was a ValueError traceback, 999 silently ignored
    seen.to_csv(tmp_path / "seen.csv", index=False)
    refused(["design", "pool", tmp_path / "pool.csv", "--law", "chinchilla", "--cost", "6*N*D",
             "--budget", "0.2", "--observed", tmp_path / "seen.csv", "--out", tmp_path / "next.csv"],
            tmp_path, "seen.csv", "row 3", "'row'", shown, "not a row of the pool (1 to 25)")


def test_options_a_grouped_fit_would_ignore_are_refused(tmp_path):
    n = np.tile(np.geomspace(1e8, 1e10, 8), 2)
    frame = pd.DataFrame({"N": n, "D": 20 * n, "g": np.repeat(["p", "q"], 8),
                          "loss": 1.7 + 400 / n**0.34 + 410 / (20 * n) ** 0.28})
    frame.to_csv(tmp_path / "runs.csv", index=False)
    base = ["fit", "custom", tmp_path / "runs.csv", "--formula", "E + A*N**-alpha + B*D**-beta",
            "--inputs", "N,D", "--group", "g", "-b", "0"]
    # --save wrote nothing, and said so nowhere
    refused([*base, "--save", tmp_path / "fit.json"], tmp_path, "--save does not combine with --group")
    line = refused([*base, "--per-group", "E", "--fix", "beta=0.28", "--holdout-top", "2"], tmp_path,
                   "--holdout-top, --fix do not combine with --group --per-group")
    assert "--json" not in line  # that hint is for --save only


def test_a_file_of_several_runs_is_not_one_schedule(curves):
    refused(["predict", "curve", "--fit", curves / "fit.json", "--compare",
             f"{curves / 'curves.csv'},{SCHED}"], curves, "curves.csv", "'run'", "not 2 runs (cos, flat)")


def test_a_negative_warmup_is_refused(curves):
    refused(["fit", "curves", curves / "curves.csv", "-b", "0", "--warmup", "-5"], curves, "--warmup")


def test_runs_fit_without_forecast_is_refused(tmp_path, curves):
    (tmp_path / "runs.csv").write_text("N,D,loss\n1e8,2e9,3.1\n")
    store = tmp_path / "runs.duckdb"
    assert runner.invoke(app, ["import", str(tmp_path / "runs.csv"), "--store", str(store)]).exit_code == 0
    refused(["runs", "--store", store, "--fit", curves / "fit.json"], tmp_path,
            "--fit goes with --forecast")


def test_a_saved_link_with_fitted_offsets_loads_back(l2l):
    # its offsets are bounded below the smallest losses: a constrained catalogue law that keeps
    # the catalogue's name, which loading refused ("the saved result's law ... has formula ...")
    save = l2l / "link.json"
    res = runner.invoke(app, ["fit", "loss-to-loss", str(l2l / "l2l.csv"), "--x", "x", "--y", "y",
                              "--group", "corpus", "-b", "0", "--save", str(save)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["predict", "loss-to-loss", "--fit", str(save), "--x", "3", "--group", "a"])
    assert res.exit_code == 0, res.output
    expected = shifted_power({"x": np.array([3.0])}, {"K": 1.2, "kappa": 0.8, "E_x": 1.5, "E_y": 2.4})
    assert f"{expected[0]:.4g}" in res.stdout


def test_a_bounded_catalogue_law_is_rebuilt_and_a_changed_formula_still_refused():
    from scalinglab.errors import ParameterError
    from scalinglab.laws.registry import get_law, law_from_dict

    law = get_law("chinchilla").bounded(alpha=(0.1, 0.9))
    spec = law.to_dict()
    assert spec["name"] == "chinchilla" and law_from_dict(spec).formula == law.formula
    with pytest.raises(ParameterError, match="has formula"):
        law_from_dict({**spec, "formula": spec["formula"] + " + 1"})
