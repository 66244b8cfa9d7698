"""Every object a person is handed prints as one short line (the numbers are in its summary,
its ``to_dict()`` and the CLI's tables), not a dump of every field."""

from __future__ import annotations

from pathlib import Path

from scalinglab.laws.loss import HOFFMANN_2022
from scalinglab.plan.planner import make_plan
from scalinglab.runs.store import RunStore


def test_a_plan_prints_as_one_short_line():
    plan = make_plan(compute=1e21, loss_law=HOFFMANN_2022)
    text = repr(plan)
    assert "\n" not in text and len(text) <= 240, text
    assert text.startswith("<Plan compute-optimal: N=") and "loss=" in text
    assert str(plan) == text


def test_import_reports_sweep_plans_and_hparam_laws_print_short(tmp_path: Path):
    from scalinglab.laws.hparams import PUBLISHED_HPARAM_LAWS
    from scalinglab.sweep.plan import isoflop_plan

    f = tmp_path / "r.csv"
    f.write_text("N,D,loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n")
    report = RunStore(tmp_path / "s.duckdb").import_file(f)
    sweep = isoflop_plan([1e13, 3e13, 1e14], sizes=5)
    for obj in (report, sweep, *sweep.runs[:2], *PUBLISHED_HPARAM_LAWS.values()):
        text = repr(obj)
        assert "\n" not in text and len(text) <= 200, text
        assert text.startswith(f"<{type(obj).__name__} ")
    assert "n_inserted=2" in repr(report) and "runs: 15" in repr(sweep)
