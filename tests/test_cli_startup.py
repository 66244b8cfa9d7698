"""The command line starts without the heavy libraries: each command imports only what it
needs, so ``scalinglab --version`` answers in a fraction of a second (issue 28; timings are in
``benchmarks/bench_cli.py``). Checked in a fresh interpreter, the way the ``scalinglab`` script
runs, by the modules loaded when it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scalinglab.cli import COMMANDS, app
from scalinglab.runs.store import RunStore

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = {"torch", "scipy", "sympy", "plotly", "matplotlib", "ray"}

#: run as the entry point does; at exit, write the top-level names of every loaded module
WRAPPER = r"""
import atexit, json, sys
def _loaded(path=sys.argv[1]):
    with open(path, "w") as out:
        json.dump(sorted({name.partition(".")[0] for name in sys.modules}), out)
atexit.register(_loaded)
sys.argv = ["scalinglab", *sys.argv[2:]]
from scalinglab.cli import main
main()
"""


def loaded_by(tmp_path: Path, *args: str) -> set[str]:
    record = tmp_path / "modules.json"
    out = subprocess.run([sys.executable, "-c", WRAPPER, str(record), *args], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(record.read_text()))


@pytest.mark.parametrize("args", [["--version"], ["--help"], []])  # bare: the help too
def test_version_and_help_load_no_heavy_library_and_no_pandas(tmp_path, args):
    loaded = loaded_by(tmp_path, *args)
    assert "scalinglab" in loaded and "typer" in loaded  # the check sees what was loaded
    assert not (HEAVY | {"pandas"}) & loaded, sorted((HEAVY | {"pandas"}) & loaded)


def test_listing_runs_loads_the_store_but_no_heavy_library(tmp_path):
    store = tmp_path / "runs.duckdb"
    with RunStore(store) as s:
        s.add_run({"run_id": "a", "N": 1e6, "D": 2e7, "loss": 3.5})
    for args in (["runs", "--help"], ["runs", "--store", str(store)],
                 ["runs", "--store", str(store), "--tag", "dataset=c4", "--json"]):
        loaded = loaded_by(tmp_path, *args)
        assert not HEAVY & loaded, (args, sorted(HEAVY & loaded))
    assert "duckdb" in loaded


def test_every_command_of_the_table_loads_and_lists_its_own_help():
    from typer.main import get_command

    root = get_command(app)
    assert list(root.list_commands(None)) == list(COMMANDS)  # --help's order is the table's
    for name, entry in COMMANDS.items():
        command = root.get_command(None, name)
        assert command is not None, name
        # the line --help lists without importing the command is the command's own
        assert entry.help == command.get_short_help_str(10_000), name


def test_commands_that_live_in_another_area_join_their_group():
    from typer.main import get_command

    root = get_command(app)
    assert {"downstream", "benchmark", "chinchilla"} <= set(root.get_command(None, "fit").commands)
    assert {"auto", "run", "plan"} <= set(root.get_command(None, "sweep").commands)


def test_no_area_registers_commands_itself():
    """Commands join the command line through ``cli.COMMANDS`` (a line there, ``extra`` for a
    command in another area's group): a ``register(app)`` of an area's own is never called."""
    import ast

    found = []
    for path in SRC.joinpath("scalinglab").rglob("*commands.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name == "register":
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not found, f"add these commands to scalinglab.cli.COMMANDS instead: {found}"


def test_importing_a_csv_loads_no_pandas(tmp_path):
    """A CSV stays Arrow from parse to store (runs.io, runs.arrays): importing pandas was 0.2 s
    (with bytecode) to 0.45 s (without) of ``scalinglab import runs.csv`` (issue 28)."""
    csv = tmp_path / "runs.csv"
    csv.write_text("name,N,D,loss,status,dataset,lr,note\n"
                   "a,1e8,2e9,3.1,finished,c4,1e-3,x\n"
                   "b,2e8,4e9,,crashed,c4,,\n"
                   "c,125M,1.5B,2.9,finished,pile,3e-4,7\n")
    store = tmp_path / "runs.duckdb"
    args = ["import", str(csv), "--store", str(store), "--tag", "sweep=a", "--units", "D=1"]
    for _ in range(2):  # a new store, then a re-import (every row a repeat)
        loaded = loaded_by(tmp_path, *args)
        assert {"pyarrow", "duckdb"} <= loaded
        assert "pandas" not in loaded
    runs = RunStore(store).runs(status=None)
    assert sorted(runs["name"]) == ["a", "b", "c"]
    crashed = runs[runs["name"] == "b"].iloc[0]
    assert crashed["status"] == "failed" and crashed["error"] == "crashed"
    c = runs[runs["name"] == "c"].iloc[0]
    assert (c["N"], c["D"], c["tags"]) == (125e6, 1.5e9, {"dataset": "pile", "sweep": "a"})
    assert runs[runs["name"] == "a"].iloc[0]["extra"] == {"note": "x"}
    assert c["extra"] == {"note": 7}


def test_python_dash_m_runs_the_same_command_line() -> None:
    """`python -m scalinglab` where the script is not on PATH (a checkout on PYTHONPATH): the
    same commands, under the same name in its usage lines, without the heavy libraries."""
    probe = ("import runpy, sys; sys.argv = ['scalinglab', '--help']\n"
             "try:\n    runpy.run_module('scalinglab', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print(sorted({m.partition('.')[0] for m in sys.modules} & set(sys.argv[1:])))")
    probe = probe.replace("sys.argv[1:]", repr(sorted(HEAVY | {"pandas"})))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Usage: scalinglab [OPTIONS] COMMAND" in out.stdout and out.stdout.rstrip().endswith("[]")
    version = subprocess.run([sys.executable, "-m", "scalinglab", "--version"], capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("scalinglab ")
