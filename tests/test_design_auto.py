"""`sweep auto`: it resumes after a real kill without repeating a finished run, its rounds stay
within the spend, and it says plainly what the runs leave unidentified (so does the demo)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scalinglab.design.auto import AutoResult
from scalinglab.design.propose import Proposal, ProposedRun
from scalinglab.fit.result import FitResult
from scalinglab.laws.loss import CHINCHILLA, HOFFMANN_2022
from scalinglab.stats import Estimate
from scalinglab.sweep.runner import SweepReport

ROOT = Path(__file__).resolve().parents[1]


def _result(unidentified: tuple[str, ...], remedy: Proposal | None) -> AutoResult:
    fit = FitResult(law=CHINCHILLA, params=dict(HOFFMANN_2022.params),
                    run_ids=tuple(f"r{i}" for i in range(21)), objective=0.0,
                    unidentified=unidentified)
    return AutoResult(Path("x"), 1e14, 3e12, 2.9e12, [], [], SweepReport(planned=21), fit=fit,
                      stop="the spend is used", remedy=remedy)


def test_identification_is_stated_plainly_with_what_would_identify_the_rest():
    assert _result((), None).identification() == (
        "every chinchilla parameter (E, A, B, alpha, beta) is identified by these 21 runs")
    before = {"E": Estimate(1.7, 1e-3, 10.0), "alpha": Estimate(0.3, 0.1, 1.6)}
    after = {"E": Estimate(1.7, 0.5, 5.0), "alpha": Estimate(0.3, 0.2, 0.9)}
    remedy = Proposal(target=1e14, runs=[ProposedRun(3e5, 6e7, 0.4), ProposedRun(1e6, 2e8, 0.2)],
                      before=before, after=after, spend=3e12, criterion="draws",
                      aim={"E": 1.0, "alpha": 1.0}, noise_std=0.01, identified_after=("E",))
    text = _result(("E", "alpha"), remedy).identification()
    assert text.startswith("E, alpha are not identified by these 21 runs")
    assert "N=3e+05, D=6e+07" in text and "N=1e+06, D=2e+08" in text
    assert "E from 4 to 1 decades" in text and "alpha from 1.5 to 0.7 wide" in text
    assert "expected to identify E; alpha would need more runs than these" in text
    remedy.identified_after = ()
    assert "E, alpha would need more runs" in _result(("E", "alpha"), remedy).identification()


# -- end to end ---------------------------------------------------------------------------------


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["SCALINGLAB_CACHE"] = str(tmp_path / "cache")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _seed_plan(tmp_path: Path) -> Path:
    """A tiny IsoFLOP seed (9 runs of 3k-12k parameters) on a small corpus."""
    from scalinglab.sweep.data import DataSpec
    from scalinglab.sweep.plan import Defaults, isoflop_plan

    rng = np.random.default_rng(1)
    words = ["def", "return", "self", "import", "class", "for", "in", "if", "else", "None"]
    corpus = tmp_path / "code.txt"
    corpus.write_text(" ".join(rng.choice(words, 40_000)))
    defaults = Defaults(seq_len=32, batch_tokens=256, lr=1e-2, eval_tokens=2048, min_steps=5)
    plan = isoflop_plan([3e8, 1e9, 3e9], sizes=3, span=8.0, tokens_per_param=2.0,
                        data=DataSpec(source=str(corpus)), defaults=defaults, name="auto")
    return plan.save(tmp_path / "seed.toml")


def _finished(store: Path) -> dict[str, float]:
    from scalinglab.runs.store import RunStore

    if not store.exists():
        return {}
    try:
        runs = RunStore(store, read_only=True, lock_timeout_s=5).runs()
    except Exception:  # noqa: BLE001 - the writer holds the lock for a moment: look again later
        return {}
    return {r: e["wall_time_s"] for r, e in zip(runs["run_id"], runs["extra"], strict=True)}


@pytest.mark.slow
def test_sweep_auto_resumes_after_a_kill_without_repeating_finished_runs(tmp_path):
    seed = _seed_plan(tmp_path)
    store, out = tmp_path / "runs.duckdb", tmp_path / "study"
    cmd = [sys.executable, "-m", "scalinglab.cli", "sweep", "auto", "--target", "1e11",
           "--spend", "2.5e10", "--seed-plan", str(seed), "--store", str(store), "--out", str(out),
           "--k", "2", "--max-runs", "13", "--bootstrap", "40", "--smallest", "0.01", "--json"]
    proc = subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 900
    try:
        while len(_finished(store)) < 4:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the seed did not train in time"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # a real kill: no cleanup, runs in flight are lost
        proc.wait()
    before = _finished(store)
    assert 4 <= len(before) < 13
    done = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, timeout=1800)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(done.stdout)
    after = _finished(store)
    # nothing finished before the kill was trained again
    assert {r: after[r] for r in before} == before
    assert result["sweep"]["skipped"] >= len(before)
    assert result["sweep"]["finished"] + result["sweep"]["failed"] == \
        result["sweep"]["planned"] - result["sweep"]["skipped"]
    state = json.loads((out / "auto.json").read_text())
    assert len(state["rounds"]) >= 2  # the seed and at least one designed round
    assert result["spent"] <= 2.5e10 and len(after) <= 13
    assert result["stop"] and result["identification"]
    # a third run has nothing left to do
    again = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, timeout=600)
    assert again.returncode == 0, again.stderr.decode()[-3000:]
    third = json.loads(again.stdout)
    assert third["sweep"]["finished"] == 0 and third["sweep"]["skipped"] == third["sweep"]["planned"]
    assert _finished(store) == after


def test_a_study_whose_finished_runs_all_lack_a_loss_stops_with_a_plain_error(tmp_path):
    # the fit's selection would drop every such run and fail on the empty rest with a
    # ParameterError about holdout_top, which escaped the loop; the study says what is wrong
    import pandas as pd

    from scalinglab.design.auto import AutoConfig
    from scalinglab.errors import NotIdentifiable
    from scalinglab.study.auto import _finish, _fit
    from scalinglab.study.study import FrameStore, Study

    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(6)], "N": np.geomspace(1e6, 1e8, 6),
                          "D": np.geomspace(1e8, 1e10, 6), "loss": np.nan, "status": "finished"})
    config = AutoConfig(target=1e18, spend=1e17, out=tmp_path / "study")
    with pytest.raises(NotIdentifiable, match="none of the study's 6 finished runs has a loss"):
        _fit(Study(FrameStore(frame)), config, bootstrap=0)
    result = AutoResult(config.out, config.target, config.spend, 0.0, [], [], SweepReport(planned=6))
    _finish(config, Study(FrameStore(frame)), result)
    assert result.fit is None
    assert result.error == "the study's runs cannot be fitted: none of the study's 6 finished runs has a loss"
    # no finished run at all: the error it always gave
    with pytest.raises(NotIdentifiable, match="no run of the study has finished yet"):
        _fit(Study(FrameStore(frame.assign(status="failed"))), config, bootstrap=0)
