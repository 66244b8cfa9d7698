"""Grids as users run them: a sweep that stops before the optimum, one learning rate only:
said, not fitted silently."""


from scalinglab.hparams.fit import fit_hparam_law
from scalinglab.hparams.synthetic import synthetic_grid


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
