"""`scalinglab fit ...` as a user types it: JSON schema, files, the store, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.fit import FitResult
from scalinglab.fit.synthetic import isoflop_runs

runner = CliRunner()


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("fit") / "runs.csv"
    isoflop_runs(budgets=np.geomspace(1e18, 1e21, 6), per_budget=8, noise=0.005, seed=0).to_csv(path, index=False)
    return path


def invoke(*args: str):
    return runner.invoke(app, ["fit", *args])


def flat(res) -> str:
    """Output with rich's panel borders and line wrapping undone, for matching messages."""
    return " ".join(res.output.replace("│", " ").split())


def test_every_fit_command_has_an_example():
    for name in ("chinchilla", "kaplan", "power", "isoflop"):
        res = invoke(name, "--help")
        assert res.exit_code == 0 and "Example: scalinglab fit " + name in res.output


def test_chinchilla_json_schema_with_holdout_and_save(runs_csv, tmp_path):
    save = tmp_path / "fit.json"
    res = invoke("chinchilla", str(runs_csv), "--json", "--bootstrap", "20", "--holdout-top", "3",
                 "--compute", "1e22", "--save", str(save))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["law"] == "chinchilla"
    assert set(out["params"]) == set(out["ci"]) == {"E", "A", "B", "alpha", "beta"}
    assert all(len(v) == 2 and v[0] <= v[1] for v in out["ci"].values())
    assert out["n_runs"] == 48 - 3 and out["n_bootstrap"] == 20
    assert out["objective"] > 0 and out["residual_std"] > 0
    assert set(out["derived"]) >= {"N_opt_exponent", "D_opt_exponent", "at_compute"}
    assert out["derived"]["at_compute"][0]["C"] == 1e22
    assert out["holdout"]["k"] == 3 and out["holdout"]["max_abs_rel_err"] >= 0
    saved = FitResult.from_dict(json.loads(save.read_text()))
    assert saved.draws.shape == (20, 5) and saved.params == out["params"]


def test_file_with_compute_instead_of_tokens_derives_D_and_says_so(runs_csv, tmp_path):
    f = tmp_path / "nc.csv"
    # a column the alias table does not know ('tokens' would be read as D)
    f.write_text(runs_csv.read_text().replace("N,D,C,loss", "N,toks,C,loss"))
    res = invoke("power", str(f), "--x", "N", "--json", "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    res = invoke("kaplan", str(f), "--json", "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    assert any("D = C/(6N)" in n for n in json.loads(res.stdout)["notes"])


def test_table_output_shows_parameters_intervals_and_derived_figures(runs_csv):
    res = invoke("power", str(runs_csv), "--x", "C", "--bootstrap", "20", "--at", "C=1e22")
    assert res.exit_code == 0, res.output
    for text in ("alpha", "95% interval", "loss at C=1e+22", "residual std"):
        assert text in res.stdout


def test_bad_cell_exits_2_naming_file_row_and_column(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("N,D,loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n3e8,oops,2.8\n")
    res = invoke("chinchilla", str(f))
    assert res.exit_code == 2
    msg = flat(res)
    assert "bad.csv: row 3 (line 4), column 'D': 'oops' is not a number" in msg
    assert "Traceback" not in msg


def test_missing_column_is_named(tmp_path):
    f = tmp_path / "nol.csv"
    f.write_text("N,D,final\n1e8,2e9,3.1\n")
    res = invoke("chinchilla", str(f), "--json")
    assert res.exit_code == 2 and "missing column(s) ['loss']" in flat(res)
    assert "map a column to it (loss=YOUR_COLUMN)" in flat(res)


def test_unidentifiable_design_is_a_plain_error(tmp_path):
    f = tmp_path / "oneD.csv"
    rows = "\n".join(f"{n:g},1e10,{2 + 100 / n ** 0.3:.5f}" for n in np.geomspace(1e7, 1e9, 8))
    f.write_text("N,D,loss\n" + rows + "\n")
    res = invoke("chinchilla", str(f), "--json")
    assert res.exit_code == 2
    assert "all runs have D = 1e+10" in flat(res) and "power law in N" in flat(res)


def test_fit_from_the_store_with_a_filter(tmp_path):
    from scalinglab.runs.store import RunStore

    store = tmp_path / "s.duckdb"
    runs = isoflop_runs(budgets=[1e18, 1e19, 1e20, 1e21], per_budget=6, noise=0.003)
    RunStore(store).import_frame(runs[["N", "D", "loss"]], source="synthetic")
    res = invoke("isoflop", "--store", str(store), "--where", "C > 5e18", "--json", "--bootstrap", "20")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n_budgets"] == 3 and out["n_runs"] == 18
    assert 0.4 < out["approach2"]["N_opt_exponent"] < 0.65
    assert out["at_compute"][0]["approach2"]["N_opt"]["ci"] is not None


@pytest.mark.parametrize("args", [
    ("chinchilla", "--compute", "1e22", "--compute", "3e23", "--at", "N=1e9,D=2e10"),
    ("isoflop", "--compute", "1e22"),
])
def test_save_keeps_what_the_command_showed(runs_csv, tmp_path, args):
    """--compute/--at read the fit somewhere: the saved file is that reading (kind *_at), and
    the loaded result renders the text the command printed, figures at those budgets included."""
    from scalinglab import load_result

    save = tmp_path / "shown.json"
    res = invoke(args[0], str(runs_csv), *args[1:], "--bootstrap", "20", "--save", str(save))
    assert res.exit_code == 0, res.output
    back = load_result(save)
    assert back.kind == f"{'loss_fit' if args[0] == 'chinchilla' else 'isoflop'}_at"
    text = back.summary().as_text()
    assert res.stdout.startswith(text)
    assert "C=1e+22" in text or "1e+22" in text
    if args[0] == "chinchilla":
        assert "N opt at C=3e+23" in text and "loss at N=1e+09, D=2e+10" in text
        from scalinglab.laws.resolve import resolve

        assert isinstance(back, FitResult)  # whatever takes a fit takes it (plan --law, ...)
        assert resolve(str(save), "loss_law").params == back.params


@pytest.mark.parametrize("args", [
    ("chinchilla",),
    ("isoflop",),
    ("custom", "--formula", "E + A*N**-alpha", "--inputs", "N", "--group", "budget",
     "--per-group", "E"),
])
def test_every_fit_save_is_the_one_saved_file_format_and_loads_back(runs_csv, tmp_path, args):
    """``fit ... --save F`` writes what every other ``--save`` writes (``clikit.save_results``):
    the result's JSON, infinities kept, ending in one newline (it ended in ``}``); the file loads
    back through ``results.load_saved`` as any command that reads a saved fit reads it."""
    import pandas as pd

    from scalinglab.clikit import to_json
    from scalinglab.results import Result, load_saved

    file = runs_csv
    if args[0] == "custom":  # the joint per-group fit has a writer of its own
        frame = pd.read_csv(runs_csv)
        frame["budget"] = np.log10(frame["C"]).round().astype(int).astype(str)
        file = tmp_path / "grouped.csv"
        frame[["N", "budget", "loss"]].to_csv(file, index=False)
    save = tmp_path / "fit.json"
    res = invoke(args[0], str(file), *args[1:], "--bootstrap", "5", "--save", str(save))
    assert res.exit_code == 0, res.output
    text = save.read_text(encoding="utf-8")
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == to_json(json.loads(text)) + "\n"  # the same bytes as before, plus the newline
    back = load_saved(save, Result, "a saved fit")
    assert back.kind == {"chinchilla": "loss_fit", "isoflop": "isoflop", "custom": "joint_fit"}[args[0]]
    if args[0] != "custom":  # the joint file also says its source and --group
        assert back.to_dict(include_draws=True) == json.loads(text)


def test_a_fit_left_without_runs_is_one_line_naming_why(tmp_path):
    """--map loss=COLUMN with that column empty for every run, or --where that keeps none: one
    line saying how many runs were read and why they went (not "--holdout-top must be between
    0 and -1", which it said for the first), exit 2 as for every input error."""
    import pandas as pd

    from scalinglab.runs.store import RunStore

    store = tmp_path / "s.duckdb"
    runs = isoflop_runs(budgets=[1e18, 1e19, 1e20], per_budget=4, noise=0.003)[["N", "D", "loss"]]
    RunStore(store).import_frame(runs.assign(val_loss="pending"), source="synthetic")
    res = invoke("chinchilla", "--store", str(store), "--map", "loss=val_loss", "-b", "0", "--json")
    assert res.exit_code == 2
    message = (f"{store}: no runs with a loss to fit: 12 runs read, 12 dropped because they have "
               "no loss")
    assert res.stderr.strip() == f"error: {message}"
    assert json.loads(res.stdout)["error"] == {"type": "NothingToFit", "message": message,
                                               "exit_code": 2}
    f = tmp_path / "runs.csv"
    pd.DataFrame(runs).to_csv(f, index=False)
    res = invoke("chinchilla", str(f), "--where", "N > 1e15", "-b", "0")
    assert res.exit_code == 2
    assert res.stderr.strip() == (f"error: {f}: no runs with a loss to fit: 12 runs read, 12 "
                                  "dropped because they do not satisfy where 'N > 1e15'")
