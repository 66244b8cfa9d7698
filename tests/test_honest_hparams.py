"""`hparams fit` says when a grid pools distinct configurations at one (N, D) and can keep them
apart (--group-by) or read the size the law should see from another column (--map); `hparams
evaluate` says a published law is not held out only where it was fitted (issue 24, item 3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.hparams.evaluate import evaluate_laws
from scalinglab.hparams.fit import fit_hparam_law
from scalinglab.hparams.grid import grid_from_frame, read_grid
from scalinglab.hparams.pooled import pooled_configurations
from scalinglab.hparams.synthetic import synthetic_grid
from scalinglab.laws.hparams import STEP_LAW

ROOT = Path(__file__).resolve().parents[1]
DENSE = ROOT / ".." / "shared" / "data" / "steplaw" / "dense_lr_bs_loss.csv"
runner = CliRunner()


def moe_grid(shared_lr: bool = True, seed: int = 0) -> pd.DataFrame:
    """16 mixture-of-experts configurations on 12 (N_total, D) points: 4 points carry two expert
    counts (8 and 64), whose active parameters, hence optimal lr, differ."""
    rng = np.random.default_rng(seed)
    points = [(nt, D) for nt in (2e8, 4e8, 8e8, 1.6e9) for D in (5e9, 2e10, 8e10)]
    configs = [(nt, D, 8) for nt, D in points] + [(nt, D, 64) for nt, D in points[::3]]
    rows = []
    for nt, D, E in configs:
        na = nt * (8 / E) ** 0.5 / 4
        lr_opt, bs_opt = 1.8 * na ** -0.71 * D ** 0.31, 0.58 * D ** 0.57
        lrs = 2.0 ** np.arange(-14, -4) if shared_lr else lr_opt * 2.0 ** np.arange(-3, 4)
        for lr in lrs:
            for bs in 2.0 ** np.round(np.log2(bs_opt) + np.arange(-2, 3)):
                loss = (2.0 + 30 * na ** -0.2 + 0.02 * np.log(lr / lr_opt) ** 2
                        + 0.01 * np.log(bs / bs_opt) ** 2)
                rows.append({"N": nt, "D": D, "num_experts": E, "N_active": na, "lr": lr,
                             "batch_tokens": bs, "steps": D / bs,
                             "loss": loss * np.exp(rng.normal(0, 3e-4))})
    return pd.DataFrame(rows)


def fit_json(tmp_path, frame, *args):
    path = tmp_path / "grid.csv"
    frame.to_csv(path, index=False)
    res = runner.invoke(app, ["hparams", "fit", str(path), "--bootstrap", "50", "--json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.parametrize("shared_lr", [True, False])
def test_a_pooled_moe_grid_says_so_and_names_the_column(tmp_path, shared_lr):
    # the case that exposed it: 16 configurations became 12 groups without a word
    out = fit_json(tmp_path, moe_grid(shared_lr))
    assert out["n_groups"] == 12
    warning = next(w for w in out["warnings"] if "pool distinct configurations" in w)
    assert warning.startswith("4 of 12 (N, D) groups pool distinct configurations")
    assert "num_experts = 8, 64" in warning and "--group-by" in warning and "--map N=" in warning
    assert "steps" not in warning  # a column computed from the batch is not a configuration


def test_group_by_keeps_configurations_apart_and_map_reads_the_active_size(tmp_path):
    out = fit_json(tmp_path, moe_grid(), "--group-by", "num_experts")
    assert out["n_groups"] == 16
    assert not any("pool" in w for w in out["warnings"])
    assert any("kept apart by num_experts: 16 groups over 12" in n for n in out["notes"])
    out = fit_json(tmp_path, moe_grid(), "--map", "N=N_active")
    assert out["n_groups"] == 16 and not any("pool" in w for w in out["warnings"])
    # the law now sees the size that sets the optimum: lr ~ N_active^-0.71
    assert out["lr"]["coef_N"] == pytest.approx(-0.71, abs=0.08)
    res = runner.invoke(app, ["hparams", "fit", str(tmp_path / "grid.csv"), "--group-by", "experts"])
    assert res.exit_code == 2 and "experts" in res.output


def test_replicates_are_not_configurations():
    frame = synthetic_grid(STEP_LAW, noise=3e-4, seed=1)
    twice = pd.concat([frame.assign(seed=0, sweep="a"),
                       frame.assign(seed=1, sweep="b", loss=frame.loss * (1 + 2e-4))])
    grid = grid_from_frame(twice)
    assert not pooled_configurations(grid.frame).pooled
    fit = fit_hparam_law(grid, n_boot=0)
    assert not any("pool" in w for w in fit.warnings)


@pytest.mark.skipif(not DENSE.exists(), reason=f"shared data absent: {DENSE}")
def test_step_laws_dense_grid_is_not_pooled_and_steplaw_is_not_held_out_on_it():
    grid = read_grid(DENSE)
    assert not pooled_configurations(grid.frame).pooled  # h, numl, ti, exp_name vary, but per (N, D) or per run
    ev = evaluate_laws(grid, {"steplaw": STEP_LAW}, methods=())
    assert any(n.startswith("steplaw was fitted on runs at 17 of these 17 (N, D) points") for n in ev.notes)


def test_evaluate_does_not_claim_steplaw_saw_runs_it_never_saw():
    grid = grid_from_frame(synthetic_grid(STEP_LAW, noise=1e-4, seed=2))
    ev = evaluate_laws(grid, {"steplaw": STEP_LAW}, methods=())
    assert not any("steplaw was fitted" in n or "superset" in n for n in ev.notes)
