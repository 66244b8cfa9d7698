"""Optimal learning rate and batch size: fit laws from lr x batch grids, evaluate, inspect."""

from scalinglab.hparams.evaluate import Evaluation, evaluate_laws
from scalinglab.hparams.fit import HparamFit, fit_hparam_law, group_optima, load_hparam_law
from scalinglab.hparams.grid import Grid, grid_from_frame, read_grid
from scalinglab.hparams.landscape import Landscape, fit_landscape
from scalinglab.hparams.timescale import TauFit, fit_tau_law

__all__ = [
    "Evaluation", "Grid", "HparamFit", "Landscape", "TauFit", "evaluate_laws", "fit_hparam_law",
    "fit_landscape", "fit_tau_law", "grid_from_frame", "group_optima", "load_hparam_law",
    "read_grid",
]
