"""Hostile text on the way out (issue 25): run names carrying terminal escape sequences are
shown escaped, never raw, in every format; a run named ``<!--<script>`` cannot bend the HTML
report's scripts, so every chart's data still parses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.runs.store import RunStore
from scalinglab.summary import Table, printable

runner = CliRunner()

#: OSC 0 (window title), OSC 52 (clipboard), CSI 2J (clear screen), a bidi override, BEL, NUL
NAMES = ["title\x1b]0;pwned\x07", "clip\x1b]52;c;cm0gLXJmIH4=\x07", "clear\x1b[2J\x1b[H",
         "rtl\u202eexe.txt", "nul\x00bell\x07", "<!--<script>", "</script><b>x</b>&amp;\u2028"]
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e\u2028]")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    import pandas as pd

    rows = []
    for i, (n, d) in enumerate((n, d) for n in (1e7, 3e7, 1e8, 3e8) for d in (2e8, 1e9, 5e9)):
        rows.append({"run_id": f"r{i}", "name": NAMES[i % len(NAMES)], "N": n, "D": d,
                     "loss": 1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28,
                     "tags": json.dumps({"who": NAMES[(i + 1) % len(NAMES)]})})
    path = tmp_path / "runs.duckdb"
    RunStore(path).import_frame(pd.DataFrame(rows), source="names")
    return path


@pytest.mark.parametrize("fmt", ["table", "csv", "tsv", "json"])
def test_run_names_with_escape_sequences_are_never_printed_raw(store, fmt):
    res = runner.invoke(app, ["runs", "--store", str(store), "--format", fmt, "--status", "all"])
    assert res.exit_code == 0, res.output
    assert not RAW.search(res.output.replace("\n", "").replace("\t", "")), repr(res.output)
    assert "\x1b" not in res.output
    if fmt == "json":  # JSON keeps the exact names, escaped the JSON way
        assert {r["name"] for r in json.loads(res.stdout)} >= set(NAMES[:5])
    else:
        assert "\\x1b]0;pwned\\x07" in res.output


def test_an_error_quoting_an_escape_sequence_is_escaped(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("N,D,loss\n1e8,2e9,\x1b]0;pwned\x07\n")
    res = runner.invoke(app, ["import", str(bad), "--store", str(tmp_path / "s.duckdb")])
    assert res.exit_code == 2
    assert "\x1b" not in res.output and "\\x1b" in res.stderr


def test_printable_escapes_controls_and_keeps_text():
    assert printable("plain ünïcode – ok") == "plain ünïcode – ok"
    assert printable("a\x1b[2Jb\u202ec\x85") == "a\\x1b[2Jb\\u202ec\\x85"
    table = Table("t", ["name"], [["x\x1b]52;c;AA==\x07"]])
    for text in (table.as_text(), table.as_delimited()):
        assert "\x1b" not in text and "\\x1b]52" in text


def test_a_run_named_to_bend_the_report_script_leaves_every_chart_intact(tmp_path, store):
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--store", str(store), "--out", str(out), "--no-rolling",
                              "--bootstrap", "0"])
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    assert "<!--<script>" not in page and "\u2028" not in page
    blocks = re.findall(r'<script type="application/json" id="([\w-]+)">(.*?)</script>', page,
                        flags=re.S)
    assert {name for name, _ in blocks} >= {"sl-specs", "sl-runs", "sl-tables"}
    for name, body in blocks:
        assert "<" not in body and ">" not in body and "&" not in body, name
        json.loads(body)  # the page's scripts read exactly this
    specs = json.loads(dict(blocks)["sl-specs"])
    assert len(specs) >= 3
    assert "<!--<script>" in json.dumps(specs, ensure_ascii=False)  # the name itself survives
