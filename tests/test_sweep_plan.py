"""Sweep plans: sensible shapes per budget, readable editable TOML, ids that follow the content."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from scalinglab.clikit import UserError
from scalinglab.sweep.plan import Defaults, grid_plan, isoflop_plan, load_plan


def test_isoflop_plan_spends_each_budget_on_models_around_the_rule_of_thumb():
    plan = isoflop_plan([1e11, 1e12], sizes=5, span=16)
    assert plan.kind == "isoflop" and len(plan.runs) == 10
    for budget in (1e11, 1e12):
        runs = [r for r in plan.runs if r.budget == budget]
        sizes = sorted(r.N for r in runs)
        assert len(set(sizes)) == 5
        assert 6 < sizes[-1] / sizes[0] < 40  # spans about the requested factor
        centre = math.sqrt(budget / (6 * 20))
        assert sizes[0] < centre < sizes[-1]
        for r in runs:
            assert r.C == 6 * r.N * r.D
            assert abs(math.log(r.C / budget)) < math.log(1.1)  # steps rounding only
            assert r.tags["budget"] == f"{budget:.3g}"


def test_grid_plan_crosses_lr_batch_and_size():
    plan = grid_plan([1e-3, 3e-3, 1e-2], [512, 1024], [1e5, 4e5], tokens=2e6)
    assert len(plan.runs) == 12
    assert {r.train.lr for r in plan.runs} == {1e-3, 3e-3, 1e-2}
    assert {r.tokens_per_step for r in plan.runs} == {512, 1024}
    for r in plan.runs:
        assert abs(r.D - 2e6) <= r.tokens_per_step


def test_a_plan_survives_a_round_trip_through_toml_with_the_same_ids(tmp_path: Path):
    plan = isoflop_plan([1e11, 3e11], sizes=3, defaults=Defaults(lr=5e-3))
    path = plan.save(tmp_path / "p.toml")
    text = path.read_text()
    assert text.startswith("# scalinglab sweep plan") and "[[runs]]" in text and "[defaults]" in text
    again = load_plan(path)
    assert [r.run_id for r in again.runs] == [r.run_id for r in plan.runs]
    assert [r.N for r in again.runs] == [r.N for r in plan.runs]
    assert again.notes == []


def test_editing_a_run_in_the_file_makes_it_a_new_run(tmp_path: Path):
    plan = isoflop_plan([1e11], sizes=3)
    path = plan.save(tmp_path / "p.toml")
    first = plan.runs[0]
    text = path.read_text().replace(f'run_id = "{first.run_id}"\n',
                                    f'run_id = "{first.run_id}"\nlr = 0.02\n', 1)
    path.write_text(text)
    edited = load_plan(path)
    assert edited.runs[0].train.lr == 0.02
    assert edited.runs[0].run_id != first.run_id
    assert edited.runs[1].run_id == plan.runs[1].run_id
    assert "edited" in edited.notes[0]


def test_plan_file_errors_name_the_run_and_key(tmp_path: Path):
    path = isoflop_plan([1e11], sizes=2).save(tmp_path / "p.toml")
    text = path.read_text()
    (tmp_path / "typo.toml").write_text(text.replace("[[runs]]\n", "[[runs]]\nlearning_rate = 1\n", 1))
    with pytest.raises(UserError, match=r"run 1: unknown key\(s\) \['learning_rate'\]"):
        load_plan(tmp_path / "typo.toml")
    (tmp_path / "heads.toml").write_text(re.sub(r"n_heads = \d+", "n_heads = 7", text, count=1))
    with pytest.raises(UserError, match="run 1: n_heads=7 does not divide"):
        load_plan(tmp_path / "heads.toml")
    (tmp_path / "bad.toml").write_text("[sweep\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_plan(tmp_path / "bad.toml")
    with pytest.raises(UserError, match="not found"):
        load_plan(tmp_path / "missing.toml")


def test_bad_budgets_are_refused():
    with pytest.raises(UserError, match="positive"):
        isoflop_plan([-1.0])
