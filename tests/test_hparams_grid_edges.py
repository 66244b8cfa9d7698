"""Grids as users run them: a sweep that stops before the optimum, one learning rate only,
diverged runs: said, not fitted silently."""


import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import InputError
from scalinglab.hparams.commands import _grid
from scalinglab.hparams.fit import fit_hparam_law
from scalinglab.hparams.grid import grid_from_frame
from scalinglab.hparams.synthetic import synthetic_grid
from scalinglab.runs.store import RunStore


def lr_rank(frame):
    """1 for each group's lowest lr, 2 for the next, ... (13 lrs around the optimum)."""
    return frame.groupby(["N", "D"])["lr"].rank(method="dense")


def test_a_sweep_that_stops_below_the_optimum_lr_is_flagged_as_at_the_edge():
    full = synthetic_grid()
    low = full[lr_rank(full) <= 5]  # the 5 lowest of 13 lrs: the loss still falls at the top
    fit = fit_hparam_law(low, n_boot=0)
    said = [w for w in fit.warnings if w.startswith("lr: optimum at the edge of the grid, not located")]
    assert said and "in 9 of 9 groups" in said[0] and "its highest lr" in said[0]
    assert all(g["lr_edge"] == "high" and g["batch_edge"] is None for g in fit.groups)
    # the full sweep brackets every optimum: nothing said
    assert not any("edge of the grid" in w for w in fit_hparam_law(full, n_boot=0).warnings)


def test_one_learning_rate_per_group_locates_no_lr_optimum():
    full = synthetic_grid()
    one = full[lr_rank(full) == 7]
    fit = fit_hparam_law(one, n_boot=0)
    said = [w for w in fit.warnings if w.startswith("lr: optimum at the edge of the grid")]
    assert said and "its only lr" in said[0]
    assert {g["lr_edge"] for g in fit.groups} == {"only"}
    assert not any(w.startswith("batch:") for w in fit.warnings)  # batch was swept


def top_lrs_diverged(frame, above: int):
    """The grid with every run above the ``above``-th lr of its group diverged (loss NaN, inf or
    an empty cell, as logs write it)."""
    out = frame.copy()
    out["loss"] = out["loss"].astype(object)
    dead = out.index[lr_rank(frame) > above]
    for i, j in enumerate(dead):
        out.loc[j, "loss"] = ("nan", "inf", "")[i % 3]
    return out


def test_diverged_runs_are_read_kept_apart_and_bracket_the_optimum():
    full = synthetic_grid(noise=0.001)
    grid = grid_from_frame(top_lrs_diverged(full, above=10), source="grid.csv")
    assert len(grid.frame) == 9 * 10 * 11 and len(grid.diverged) == 9 * 3 * 11
    assert np.isfinite(grid.frame["loss"]).all()
    assert any("without a finite loss" in n and "read as diverged" in n for n in grid.notes)
    # the fit sees only the finished runs: the same law as without the diverged rows
    kept = full[lr_rank(full) <= 10]
    assert fit_hparam_law(grid, n_boot=0).lr.params == fit_hparam_law(kept, n_boot=0).lr.params
    # the best finished lr is the highest that finished, but a run above it diverged: bracketed
    top = full[lr_rank(full) <= 8]
    fit = fit_hparam_law(grid_from_frame(top_lrs_diverged(top, above=7)), n_boot=0)
    assert not any("edge of the grid" in w for w in fit.warnings)
    assert {g["n_diverged"] for g in fit.groups} == {11}


def test_a_grid_where_no_run_finished_is_refused_by_column():
    frame = synthetic_grid().head(20).assign(loss=float("nan"))
    with pytest.raises(InputError, match="column .loss.: no run has a finite loss"):
        grid_from_frame(frame, source="grid.csv")
    # a negative loss is still a bad cell, not a diverged run
    with pytest.raises(InputError, match="row 1.*loss.*positive"):
        grid_from_frame(synthetic_grid().head(20).assign(loss=-1.0), source="grid.csv")


def test_failed_runs_in_the_store_bracket_the_optimum_unless_the_machine_stopped_them(tmp_path):
    top = synthetic_grid(noise=0.001)
    top = top[lr_rank(top) <= 8].reset_index(drop=True)
    dead = lr_rank(top) == 8

    def grid_whose_top_lr_failed(status):
        """The grid read from a store where every group's top-lr run failed with ``status``."""
        csv = tmp_path / f"{status}.csv"
        top.assign(loss=top["loss"].where(~dead, float("nan")),
                   status=np.where(dead, status, "finished")).to_csv(csv, index=False)
        store = tmp_path / f"{status}.duckdb"
        RunStore(store).import_file(csv, invalid="failed")
        return _grid(None, 2048, "auto", store=store)

    grid = grid_whose_top_lr_failed("diverged")
    assert len(grid.diverged) == int(dead.sum())
    assert not any("edge of the grid" in w for w in fit_hparam_law(grid, n_boot=0).warnings)
    # out of memory says nothing about the lr: without those runs the top lr is the edge
    grid = grid_whose_top_lr_failed("oom")
    assert len(grid.diverged) == 0
    assert any("edge of the grid" in w for w in fit_hparam_law(grid, n_boot=0).warnings)


def test_a_batch_column_in_the_other_unit_is_said():
    good = synthetic_grid()
    # tokens under a name read as sequences: every batch 2048x too big, 22 steps a run
    as_seqs = grid_from_frame(good.rename(columns={"batch_tokens": "bs"}), source="grid.csv")
    assert any(n.startswith("warning: the median run takes") and "--batch-unit tokens" in n
               for n in as_seqs.notes)
    fit = fit_hparam_law(as_seqs, n_boot=0)
    assert any("--batch-unit tokens" in w for w in fit.warnings)
    # sequences under a tokens name: a batch smaller than one sequence
    as_tokens = grid_from_frame(good.assign(batch_tokens=good["batch_tokens"] / 2048))
    assert any("less than one sequence" in n and "--batch-unit sequences" in n
               for n in as_tokens.notes)
    # a steps column settles it: D = steps x batch
    steps = good.assign(steps=good["D"] / good["batch_tokens"])
    assert not [n for n in grid_from_frame(steps).notes if n.startswith("warning")]
    wrong = grid_from_frame(steps.rename(columns={"batch_tokens": "bs"}))
    said = [n for n in wrong.notes if n.startswith("warning: D is")]
    assert said and "0.000488 x steps x batch" in said[0] and "--batch-unit tokens fits" in said[0]
    assert not [n for n in grid_from_frame(good).notes if n.startswith("warning")]


def test_a_cell_run_again_is_one_cell_with_its_mean_loss():
    grid = synthetic_grid(noise=0.001, seed=3)
    base = fit_hparam_law(grid, n_boot=0)
    # every kept run of one group run again with the same loss: the same evidence, the same law
    again = grid[(grid["N"] == 2e8) & (grid["D"] == 5e9)]
    again = again[again["loss"] <= again["loss"].min() * 1.0025]
    fit = fit_hparam_law(pd.concat([grid, again]), n_boot=0)
    assert fit.lr.params == pytest.approx(base.lr.params, abs=1e-12)
    assert fit.batch.params == pytest.approx(base.batch.params, abs=1e-12)
    assert fit.n_runs == base.n_runs + len(again)  # both runs of a kept cell were used
    assert any("repeat an (lr, batch) cell" in n for n in fit.notes)
    # seeds: a cell's best-of-two is luck; its mean is the cell's loss
    lucky = grid.assign(loss=grid["loss"] * 0.999)
    unlucky = grid.assign(loss=grid["loss"] * 1.001)
    fit = fit_hparam_law(pd.concat([lucky, unlucky]), n_boot=0)
    assert fit.lr.params == pytest.approx(base.lr.params, abs=1e-9)


def test_plateau_and_evaluate_say_a_batch_unit_that_looks_mistaken(tmp_path):
    from typer.testing import CliRunner

    from scalinglab.cli import app

    path = tmp_path / "grid.csv"
    synthetic_grid().rename(columns={"batch_tokens": "bs"}).to_csv(path, index=False)
    for args in (["hparams", "plateau", str(path)],
                 ["hparams", "evaluate", str(path), "--law", "steplaw", "--refit", "none"]):
        out = CliRunner().invoke(app, args)
        assert out.exit_code == 0, out.output
        assert "warning: the median run takes 22.1 optimizer steps" in " ".join(out.output.split())


def test_a_diverged_run_brackets_only_its_own_configuration():
    top = synthetic_grid(noise=0.001)
    top = top[lr_rank(top) <= 8]
    a = top_lrs_diverged(top, above=7).assign(experts=8)  # its 8th lr diverged: bracketed
    b = top[lr_rank(top) <= 7].assign(experts=64)  # stops at the 7th lr: not bracketed
    fit = fit_hparam_law(grid_from_frame(pd.concat([a, b]), group_by=["experts"]), n_boot=0)
    edge = {(g["N"], g["D"], g["n_diverged"]) for g in fit.groups if g["lr_edge"] == "high"}
    assert edge and all(n_dead == 0 for _, _, n_dead in edge)
