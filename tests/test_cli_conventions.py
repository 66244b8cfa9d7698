"""The command line's conventions as a person (or a script) meets them: ``--version``, errors on
one line, a JSON error with ``--json``, help wrapped once, flags named the same everywhere, and
output that keeps every digit when piped."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scalinglab import __version__
from scalinglab.cli import app
from scalinglab.clikit import plain_message
from scalinglab.runs.store import RunStore

SRC = Path(__file__).resolve().parents[1] / "src"
runner = CliRunner()

#: a run whose numbers a 4-significant-digit table would cut: the test looks for each in full
RUN = {"run_id": "r-755a3fbc0011223344556677", "N": 6224.0, "D": 1234567891.0, "loss": 3.456789123456,
       "lr": 0.00031234, "batch_tokens": 1024.0}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "runs.duckdb"
    with RunStore(path) as s:
        s.add_run({**RUN, "tags": {"dataset": "owt"}})
        s.add_run({"run_id": "other", "N": 1e8, "D": 2e9, "loss": 2.5, "tags": {"dataset": "c4"}})
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, its stdout a pipe (as in ``scalinglab ... | cat``)."""
    full_env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    return subprocess.run([sys.executable, "-m", "scalinglab.cli", *args], capture_output=True,
                          text=True, env=full_env, timeout=120)


def test_version_prints_the_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"scalinglab {__version__}"


def test_runs_piped_shows_every_value_in_full(store):
    out = cli("runs", "--store", str(store))
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith(RUN["run_id"]))
    for text in (RUN["run_id"], "6224", "1234567891", "3.456789123456", "0.00031234", "1024",
                 "dataset=owt"):
        assert text in line.split(), (text, line)
    assert "…" not in out.stdout and "│" not in out.stdout  # plain aligned text, no box


def test_runs_as_csv_reads_back_to_the_same_numbers(store):
    result = runner.invoke(app, ["runs", "--store", str(store), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = {r["run_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    got = rows[RUN["run_id"]]
    for key in ("N", "D", "loss", "lr", "batch_tokens"):
        assert float(got[key]) == RUN[key]
    assert json.loads(got["tags"]) == {"dataset": "owt"}


@pytest.mark.parametrize("tag", ["dataset=owt", "dataset:owt"])
def test_tag_filters_take_key_equals_or_key_colon_value(store, tag):
    result = runner.invoke(app, ["runs", "--store", str(store), "--tag", tag, "--json"])
    assert result.exit_code == 0, result.output
    assert [r["run_id"] for r in json.loads(result.stdout)] == [RUN["run_id"]]


@pytest.mark.parametrize("tag", ["dataset=owt", "dataset:owt"])
def test_import_tags_runs_given_key_equals_or_key_colon_value(tmp_path, tag):
    f = tmp_path / "runs.csv"
    f.write_text("run_id,N,D,loss,tags\na,1e6,2e7,3.5,\nb,2e6,4e7,3.2,sweep:s1;url=http://x\n")
    store = tmp_path / "s.duckdb"
    result = runner.invoke(app, ["import", str(f), "--store", str(store), "--tag", tag])
    assert result.exit_code == 0, result.output
    tags = RunStore(store).runs().set_index("run_id")["tags"]
    assert tags["a"] == {"dataset": "owt"}
    # a file's tags cell follows the same rule: split at the first '=' or ':'
    assert tags["b"] == {"dataset": "owt", "sweep": "s1", "url": "http://x"}


def test_a_malformed_import_tag_says_both_forms(tmp_path):
    f = tmp_path / "runs.csv"
    f.write_text("run_id,N,D,loss\na,1e6,2e7,3.5\n")
    result = runner.invoke(app, ["import", str(f), "--store", str(tmp_path / "s.duckdb"),
                                 "--tag", "dataset"])
    assert result.exit_code == 2
    assert "--tag 'dataset': write KEY=VALUE or KEY:VALUE" in result.output


def test_every_tag_option_says_it_takes_both_forms():
    from typer.main import get_command

    def commands(group, path=()):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from commands(cmd, (*path, name))
            else:
                yield (*path, name), cmd

    found = 0
    for path, cmd in commands(get_command(app)):
        for param in cmd.params:
            if "--tag" in getattr(param, "opts", []):
                found += 1
                assert "KEY=VALUE" in param.help and "KEY:VALUE" in param.help, (path, param.help)
    assert found >= 15  # import, runs, report, every fit, hparams and design command


def test_every_option_and_argument_of_every_command_says_what_it_is_for():
    """``--help`` of each command (the lazily loaded ones included) explains every option and
    argument: none is listed bare with only its default (hparams evaluate's --seed, --tolerance
    and --fit-window were)."""
    from typer.main import get_command

    root = get_command(app)
    ctx = root.make_context("scalinglab", [], resilient_parsing=True)

    def commands(group, path=()):
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            yield (*path, name), cmd
            if hasattr(cmd, "list_commands"):
                yield from commands(cmd, (*path, name))

    bare, leaves = [], 0
    for path, cmd in commands(root):
        leaves += not hasattr(cmd, "list_commands")
        for param in cmd.params:
            if not getattr(param, "hidden", False) and not (getattr(param, "help", None) or "").strip():
                bare.append((" ".join(path), param.opts))
    assert leaves >= 40  # every command was reached, not only the top-level groups
    assert bare == []


@pytest.mark.parametrize(("args", "says"), [
    (["runs", "--bogus"], "No such option: --bogus"),
    (["fit", "chinchilla", "--bootstrap", "many"], "--bootstrap: expected a whole number"),
    (["runs", "--store", "nowhere.duckdb"], "no run store here"),
    (["hparams", "fit", "--n-boot", "3"], "--n-boot is now --bootstrap"),
])
def test_errors_are_one_line_on_stderr_with_exit_code_2(args, says):
    out = cli(*args, env={"COLUMNS": "40"})  # narrow: a wrapped box would show here
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and says in lines[0]
    assert not set("╭│╰") & set(out.stderr)


def test_with_json_an_error_is_also_a_json_object_on_stdout(store):
    out = cli("report", "--store", str(store), "--law", "moore", "--json")
    assert out.returncode == 2
    body = json.loads(out.stdout)
    assert body["error"]["exit_code"] == 2 and "--law 'moore'" in body["error"]["message"]
    assert out.stderr.count("\n") == 1 and "--law 'moore'" in out.stderr


def test_help_is_wrapped_once_and_flags_take_no_value():
    wide = runner.invoke(app, ["report", "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert wide.exit_code == 0
    # the docstring's first paragraph, hard-wrapped at ~95 columns in the source, is wrapped
    # again only at the terminal's width: every line but its last fills most of 200 columns
    lines = wide.stdout.split("\n\n")[1].splitlines()
    assert lines[0].strip().startswith("Write a self-contained HTML report")
    assert len(lines) >= 2 and all(len(line) > 150 for line in lines[:-1])
    narrow = runner.invoke(app, ["report", "--help"], terminal_width=60, env={"COLUMNS": "60"})
    # at 60 columns prose fits; example lines (kept as written, after a \\b) may run longer
    prose = [line for line in narrow.stdout.splitlines() if not line.strip().startswith("scalinglab ")]
    assert max(len(line) for line in prose) <= 60
    json_line = next(line for line in wide.stdout.splitlines() if "--json" in line)
    assert "BOOL" not in json_line and "<bool>" not in json_line
    assert "<list[str]>" not in wide.stdout and "--tag KEY=VALUE" in wide.stdout


def test_the_same_flags_are_spelled_the_same_in_every_command():
    from typer.main import get_command

    root = get_command(app)

    def commands(group, path=()):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from commands(cmd, (*path, name))
            else:
                yield (*path, name), cmd

    seen = {}
    for path, cmd in commands(root):
        flags = {o for p in cmd.params for o in getattr(p, "opts", [])}
        assert "--n-boot" not in flags, path
        for flag in flags & {"--bootstrap", "--tag", "--map", "--store"}:
            seen.setdefault(flag, []).append(" ".join(path))
    assert len(seen["--bootstrap"]) >= 6 and len(seen["--tag"]) >= 6


def test_pydantic_wording_is_reworded_for_people():
    assert plain_message("Invalid value for '--bootstrap' / '-b': Input should be a valid integer, "
                         "unable to parse string as an integer") == "--bootstrap: expected a whole number"
    assert plain_message("Invalid value for '--limit': Input should be greater than or equal to 1"
                         ) == "--limit: must be at least 1"


def test_values_read_without_pydantic_are_those_typer_reads():
    # only plain str, Path and list[str] parameters skip Typer's adapter; a Path option with a
    # path_type of str (read by the adapter) stays a str, its default included
    import typer
    from click.testing import CliRunner as ClickRunner
    from typer.main import get_command

    from scalinglab.clikit import _tidy

    demo = typer.Typer(add_completion=False)

    @demo.command()
    def show(as_text: Path = typer.Option(Path("a.txt"), "--as-text", path_type=str),
             path: Path = typer.Option(Path("b.txt"), "--path"), name: str = typer.Option("x", "--name"),
             tags: list[str] = typer.Option(None, "--tag")) -> None:
        print(type(as_text).__name__, type(path).__name__, type(name).__name__, tags)

    quick = get_command(demo)
    _tidy(quick)
    assert {p.name: p._runtime_param.kind for p in quick.params} == {
        "as_text": "other", "path": "path", "name": "str", "tags": "list_str"}
    for args in ([], ["--as-text", "c.txt", "--path", "d.txt", "--name", "y", "--tag", "t", "--tag", "u"]):
        typers = ClickRunner().invoke(get_command(demo), args).output  # Typer's adapters alone
        assert ClickRunner().invoke(quick, args).output == typers
        assert typers.split()[:3] == ["str", "PosixPath", "str"]
