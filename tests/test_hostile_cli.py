"""The command line over a corpus of bad imports and --where injections (issue 11): every
rejected command exits 2 with one line on stderr, no traceback, and leaves the store and an
unrelated file byte for byte as they were."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.runs.store import RunStore

runner = CliRunner()
GOOD = "run_id,N,D,loss,dataset\na,1e8,2e9,3.1,c4\nb,2e8,4e9,2.9,c4\n"

#: name -> file body (bytes), or a callable writing the file
BAD_FILES: dict[str, bytes] = {
    "missing_loss.csv": b"N,D\n1e8,2e9\n",
    "missing_tokens.csv": b"N,loss\n1e8,3\n",
    "misspelt.csv": b"N,D,lsos\n1e8,2e9,3\n",
    "not_a_number.csv": b"N,D,loss\n1e8,2e9,abc\n",
    "infinite.csv": b"N,D,loss\n1e8,inf,3\n",
    "negative.csv": b"N,D,loss\n-5,2e9,3\n",
    "zero_loss.csv": b"N,D,loss\n1e8,2e9,0\n",
    "overflow.csv": b"N,D,loss\n1e200,1e200,3\n",
    "many_bad.csv": b"N,D,loss\n" + b"".join(b"1e8,2e9,x%d\n" % i for i in range(30)),
    "bad_status.csv": b"N,D,loss,status\n1e8,2e9,3,exploded\n",
    "bad_tags_json.csv": b'N,D,loss,tags\n1e8,2e9,3,"{not json"\n',
    "bad_tag_key.csv": b'N,D,loss,tags\n1e8,2e9,3,"{""$..*"": ""x""}"\n',
    "tag_not_kv.csv": b"N,D,loss,tags\n1e8,2e9,3,justaword\n",
    "batch_without_seq.csv": b"N,D,loss,batch_size\n1e8,2e9,3,64\n",
    "ragged.csv": b"N,D,loss\n1e8,2e9,3\n1e8,2e9\n",
    "latin1.csv": b"N,D,loss\n1e8,2e9,3\n1e8,2e9,\xe9\n",
    "empty.csv": b"",
    "header_only.csv": b"N,D,loss\n",
    "dup_header.csv": b"N,N,loss\n1,2,3\n",
    "conflict_inside.csv": b"run_id,N,D,loss\nz,1e8,2e9,3.5\nz,1e8,2e9,9.9\n",
    "conflict_store.csv": b"run_id,N,D,loss,dataset\na,1e8,2e9,9.9,c4\n",
    "bad_curve.csv": b'N,D,loss,curve\n1e8,2e9,3,"[1, ""x""]"\n',
    "garbage.csv": bytes(range(256)) * 4,
    "bad.jsonl": b'{"N": 1e8, "D": 2e9, "loss": 3}\n{oops\n',
    "not_objects.jsonl": b"[1, 2, 3]\n",
    "nan_loss.jsonl": b'{"N": 1e8, "D": 2e9, "loss": NaN}\n',
    "unknown.xlsx": b"PK\x03\x04",
    "garbage.parquet": b"not parquet at all",
}

#: extra arguments that are wrong whatever the file
BAD_ARGS: list[list[str]] = [
    ["--invalid", "sometimes"], ["--on-conflict", "merge"], ["--map", "loss=nope"],
    ["--map", "loss"], ["--units", "N=abc"], ["--units", "N=-1"], ["--units", "zz=1e6"],
    ["--tag", "$..*=x"], ["--tag", "novalue"], ["--seq-len", "0"],
]

WHERE_ATTACKS = [
    "read_text('{secret}') IS NOT NULL",
    "(SELECT length(content) FROM read_text('{secret}')) > 0",
    "1=1); COPY (SELECT 1) TO '{victim}'; SELECT (1",
    "1=1; COPY runs TO '{victim}'",
    "N > 0 UNION ALL SELECT * FROM read_csv('{victim}')",
    "N > 0; DROP TABLE runs",
    "getenv('HOME') = 'x'",
    "current_setting('enable_external_access') = 'false'",
    "N >",
    "NN > 1",
    "x'; --",
    "N > 1 " + "AND N > 1 " * 600,
]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "good.csv").write_text(GOOD)
    store = str(tmp_path / "runs.duckdb")
    res = runner.invoke(app, ["import", str(tmp_path / "good.csv"), "--store", store])
    assert res.exit_code == 0, res.output
    (tmp_path / "victim.txt").write_text("an unrelated file")
    (tmp_path / "secret.txt").write_text("the password")
    return tmp_path


def assert_rejected(res, before: dict[str, bytes], folder: Path) -> None:
    assert res.exit_code == 2, (res.exit_code, res.output)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output and "np.int64" not in res.output
    assert snapshot(folder) == before


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_every_bad_import_file_is_one_line_and_changes_nothing(workspace, name):
    bad_dir = workspace / "bad"
    bad_dir.mkdir()
    f = bad_dir / name
    f.write_bytes(BAD_FILES[name])
    before = snapshot(workspace)
    res = runner.invoke(app, ["import", str(f), "--store", str(workspace / "runs.duckdb")])
    assert_rejected(res, before, workspace)
    assert name.split(".")[0].split("_")[0] in res.stderr or str(f) in res.stderr


def test_the_many_bad_rows_are_listed_up_to_twenty(workspace):
    f = workspace / "many.csv"
    f.write_bytes(BAD_FILES["many_bad.csv"])
    res = runner.invoke(app, ["import", str(f), "--store", str(workspace / "runs.duckdb")])
    assert res.exit_code == 2
    assert "30 rows are not valid runs" in res.stderr and "and 10 more" in res.stderr
    assert res.stderr.count("is not a number") == 20 and "--invalid skip" in res.stderr


@pytest.mark.parametrize("args", BAD_ARGS, ids=lambda a: " ".join(a))
def test_bad_arguments_are_one_line_and_change_nothing(workspace, args):
    before = snapshot(workspace)
    res = runner.invoke(app, ["import", str(workspace / "good.csv"), "--store",
                              str(workspace / "runs.duckdb"), *args])
    assert_rejected(res, before, workspace)


@pytest.mark.parametrize("attack", WHERE_ATTACKS)
def test_where_injections_are_refused_and_read_or_write_nothing(workspace, attack):
    where = attack.format(secret=workspace / "secret.txt", victim=workspace / "victim.txt")
    before = snapshot(workspace)
    res = runner.invoke(app, ["runs", "--status", "all", "--store",
                              str(workspace / "runs.duckdb"), "--where", where, "--json"])
    assert_rejected(res, before, workspace)
    assert "the password" not in res.output
    # with --json, stdout holds only the JSON error object (scripts parse stdout)
    assert set(json.loads(res.stdout)) == {"error"} and "the password" not in res.stdout


MODELS = ("model,N,D,C,loss,err_a\n"
          + "".join(f"m{i},{n:g},{20 * n:g},{120 * n * n:g},{3 + 1e3 / n:.4f},{0.9 - 0.05 * i:.3f}\n"
                    for i, n in enumerate((1e6, 3e6, 1e7, 3e7, 1e8, 3e8))))


@pytest.mark.parametrize("command", [
    ["fit", "downstream", "{file}", "--metric", "err_a", "--loss", "loss", "-b", "0"],
    ["fit", "benchmark", "{file}", "--metric", "err_a", "--compute", "C", "-b", "0"],
    ["fit", "chinchilla", "{file}", "-b", "0"],
])
@pytest.mark.parametrize("attack", WHERE_ATTACKS[:6])
def test_where_on_a_file_is_the_same_safe_language(workspace, command, attack):
    """Every command that filters a file checks --where as the store does: the file-reading,
    file-writing and statement-stacking filters are refused before anything runs."""
    (workspace / "models.csv").write_text(MODELS)
    where = attack.format(secret=workspace / "secret.txt", victim=workspace / "victim.txt")
    before = snapshot(workspace)
    args = [a.format(file=workspace / "models.csv") for a in command]
    res = runner.invoke(app, [*args, "--where", where])
    assert_rejected(res, before, workspace)
    assert "the password" not in res.output


@pytest.mark.parametrize("args", [["--tag", "$..*=x"], ["--status", "weird"], ["--limit", "-1"]])
def test_runs_rejects_bad_filters_in_one_line(workspace, args):
    before = snapshot(workspace)
    res = runner.invoke(app, ["runs", "--store", str(workspace / "runs.duckdb"), *args])
    assert_rejected(res, before, workspace)


def test_stores_that_are_not_ours_are_refused_untouched(workspace):
    foreign = workspace / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.close()
    before = snapshot(workspace)
    for store in (foreign, workspace / "good.csv", workspace / "victim.txt"):
        for cmd in (["import", str(workspace / "good.csv")], ["runs"], ["store", "migrate"],
                    ["store", "info"]):
            res = runner.invoke(app, [*cmd, "--store", str(store)])
            assert_rejected(res, before, workspace)
    for cmd in (["runs"], ["store", "info"]):  # reads create nothing
        res = runner.invoke(app, [*cmd, "--store", str(workspace / "missing.duckdb")])
        assert_rejected(res, before, workspace)
    res = runner.invoke(app, ["import", str(workspace / "good.csv"), "--store",
                              str(workspace / "new.csv")])
    assert_rejected(res, before, workspace)


def test_what_a_good_import_and_the_reads_print(workspace):
    res = runner.invoke(app, ["runs", "--store", str(workspace / "runs.duckdb"), "--json",
                              "--where", "N > 1.5e8 AND tags->>'dataset' = 'c4'"])
    assert res.exit_code == 0 and [r["run_id"] for r in json.loads(res.stdout)] == ["b"]
    res = runner.invoke(app, ["store", "info", "--store", str(workspace / "runs.duckdb"),
                              "--json"])
    assert json.loads(res.stdout) | {"store": ""} == {"store": "", "schema_version": "3",
                                                      "runs": {"finished": 2}}


def test_wandb_runs_export_needs_no_map_and_keeps_crashed_runs(workspace):
    f = workspace / "wandb_export.csv"
    pd.DataFrame({
        "Name": ["tiny-1", "tiny-2", "small-1"], "State": ["finished", "crashed", "finished"],
        "Tags": ["baseline, lr-sweep", "baseline", ""], "params": [1.2e7, 1.2e7, 5e7],
        "tokens": [2.4e8, 2.4e8, 1e9], "train/loss": [3.91, None, 3.41],
        "lr": [3e-3, 3e-2, 1e-3], "_step": [7324, 300, 15258], "Runtime": [100, 20, 300],
    }).to_csv(f, index=False)
    store = str(workspace / "w.duckdb")
    res = runner.invoke(app, ["import", str(f), "--store", store, "--json"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    for mapped in ("'Name' as 'name'", "'State' as 'status'", "'params' as 'N'",
                   "'tokens' as 'D'", "'train/loss' as 'loss'", "'Tags' as 'tag_list'"):
        assert any(mapped in n for n in notes), mapped
    rows = json.loads(runner.invoke(app, ["runs", "--store", store, "--status", "all",
                                          "--json"]).stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["tiny-2"]["status"] == "failed" and by_name["tiny-2"]["error"] == "crashed"
    assert by_name["tiny-1"]["tags"] == {"baseline": "true", "lr-sweep": "true"}
    assert by_name["small-1"]["extra"]["steps"] == 15258
    finished = json.loads(runner.invoke(app, ["runs", "--store", store, "--json"]).stdout)
    assert sorted(r["name"] for r in finished) == ["small-1", "tiny-1"]  # fits never see it
    table = runner.invoke(app, ["runs", "--store", store, "--status", "all"])
    assert "tiny-1" in table.stdout and "crashed" in table.stdout


def test_a_wandb_runs_export_row_in_state_failed_gets_a_failure_reason_too(workspace):
    f = workspace / "wandb_failed.csv"
    pd.DataFrame({"Name": ["ok", "bad", "gone"], "State": ["finished", "failed", "crashed"],
                  "params": [1.2e7, 1.2e7, 1.2e7], "tokens": [2.4e8, 2.4e8, 2.4e8],
                  "train/loss": [3.91, None, None]}).to_csv(f, index=False)
    store = workspace / "wf.duckdb"
    res = runner.invoke(app, ["import", str(f), "--store", str(store)])
    assert res.exit_code == 0, res.output
    errors = RunStore(store).runs(status=None).set_index("name")["error"]
    assert errors["bad"] == "failed (no reason given in column 'State')"
    assert errors["gone"] == "crashed"
    assert errors.isna().tolist() == [n == "ok" for n in errors.index]


@pytest.mark.slow
def test_the_installed_command_prints_one_line_not_a_box(workspace):
    bad = workspace / "bad.csv"
    bad.write_bytes(BAD_FILES["many_bad.csv"])
    src = str(Path(__file__).resolve().parents[1] / "src")
    before = snapshot(workspace)
    for args in (["import", str(bad)], ["runs", "--where", "read_text('/etc/passwd') = ''"]):
        out = subprocess.run([sys.executable, "-m", "scalinglab.cli", *args, "--store",
                              str(workspace / "runs.duckdb")], capture_output=True, text=True,
                             env={"PYTHONPATH": src, "COLUMNS": "60", "PATH": "/usr/bin:/bin"})
        assert out.returncode == 2 and out.stdout == ""
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "Traceback" not in out.stderr
    assert snapshot(workspace) == before


def test_fits_and_listings_from_the_store_write_nothing(workspace):
    rows = "".join(f"r{i},{n:g},{20 * n:g},{1.8 + 400 / n ** 0.34 + 410 / (20 * n) ** 0.28:.5f},c4\n"
                   for i, n in enumerate([1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9]))
    (workspace / "more.csv").write_text("run_id,N,D,loss,dataset\n" + rows)
    store = str(workspace / "runs.duckdb")
    assert runner.invoke(app, ["import", str(workspace / "more.csv"), "--store", store]
                         ).exit_code == 0
    before = snapshot(workspace)
    for cmd in (["fit", "power", "--x", "N", "--store", store, "--bootstrap", "0", "--json"],
                ["runs", "--store", store, "--status", "all"],
                ["store", "info", "--store", store]):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0, res.output
        assert snapshot(workspace) == before


@pytest.mark.parametrize("command", [["fit", "isoflop"], ["fit", "chinchilla", "-b", "0"]])
def test_a_fit_file_whose_compute_overflows_names_its_row(workspace, command):
    rows = "".join(f"{n:g},{20 * n:g},{3 + 1e3 / n:.4f}\n" for n in np.geomspace(1e6, 1e8, 8))
    (workspace / "huge.csv").write_text("N,D,loss\n" + rows + "1e308,10,3.5\n")
    before = snapshot(workspace)
    res = runner.invoke(app, [*command, str(workspace / "huge.csv")])
    assert_rejected(res, before, workspace)
    assert "row 9 (line 10)" in res.stderr and "overflows" in res.stderr
