"""The Study: one object between the runs and every face (issue 28). It answers with registered
results, filters as it was told, and caches each answer until the store changes."""

from __future__ import annotations

import numpy as np
import pytest
from report_synth import isoflop_runs

from scalinglab.errors import ParameterError
from scalinglab.fit.result import FitResult
from scalinglab.plan.planner import Plan
from scalinglab.results import REGISTRY
from scalinglab.runs.store import RunStore
from scalinglab.study import DEFAULT_BOOTSTRAP, Study
from scalinglab.study.analysis import fit_loss_law


@pytest.fixture()
def store(tmp_path):
    runs = isoflop_runs(budgets=(1e17, 1e18, 1e19, 1e20), per_budget=5, noise=0.003)
    path = tmp_path / "runs.duckdb"
    with RunStore(path) as s:
        s.import_frame(runs.assign(tags=[{"dataset": "c4"}] * len(runs)), source="synthetic")
        s.add_run({"run_id": "other", "N": 1e8, "D": 2e9, "loss": 9.0, "tags": {"dataset": "pile"}})
    return path


def test_answers_are_registered_results_and_the_same_as_the_engine_gives(store):
    study = Study(store, tags={"dataset": "c4"}, bootstrap=10)
    fit = study.fit("chinchilla")
    assert isinstance(fit, FitResult) and REGISTRY[fit.kind] is FitResult
    direct = fit_loss_law(RunStore(store).runs(tags={"dataset": "c4"}), "chinchilla", 10, 0, 0)
    assert fit.params == pytest.approx(direct.params, rel=1e-9)
    assert set(fit.run_ids) == set(direct.run_ids) and "other" not in fit.run_ids
    plan = study.plan(1e22)
    assert isinstance(plan, Plan) and plan.run_ids == fit.run_ids
    iso = study.isoflop()
    assert iso.kind in REGISTRY and len(iso.budgets) == 4
    assert set(study.allocation(1e22)) == {f"approach{a.approach}" for a in iso.approaches}
    rolled = study.rolling("chinchilla")
    assert rolled.kind == "rolling_forward"


def test_an_answer_is_cached_until_the_store_changes(store):
    study = Study(store, bootstrap=0)
    first = study.fit("chinchilla")
    assert study.fit("chinchilla") is first  # cached: the same object
    assert study.fit("chinchilla", bootstrap=5) is not first  # another question
    state = study.state()
    with RunStore(store) as s:
        s.add_run({"run_id": "new", "N": 3e8, "D": 6e9, "loss": 3.3})
    assert study.state() != state
    again = study.fit("chinchilla")
    assert again is not first and "new" in again.run_ids


def test_filters_and_selection_are_the_studys_own(store):
    assert len(Study(store).runs()) == 21
    assert len(Study(store, tags={"dataset": "pile"}).runs()) == 1
    assert len(Study(store, where="N > 5e8").runs()) < 21
    assert len(Study(store).runs(status=None)) == 21
    with pytest.raises(ParameterError, match="selection takes best_per_point and group_by"):
        Study(store, selection={"best": True})


def test_a_frame_is_a_study_too(store):
    frame = RunStore(store).runs()
    study = Study(frame, where="loss < 9", bootstrap=0)
    assert "other" not in set(study.runs()["run_id"])
    assert study.fit("chinchilla").n_runs == 20
    assert study.state() == Study(frame).state()  # the frame's content is its state


def test_one_default_bootstrap():
    from scalinglab.cli import app  # noqa: F401  (the commands read it through clikit)
    from scalinglab.clikit import bootstrap_option
    from scalinglab.stats import DEFAULT_BOOTSTRAP as base

    assert DEFAULT_BOOTSTRAP == base == bootstrap_option().default
    assert Study(frame_or_path := "x.duckdb").bootstrap == base, frame_or_path
    assert np.isfinite(base)
