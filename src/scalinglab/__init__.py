"""scalinglab: make neural-network training predictable at scale.

A notebook-sized tour (see the README's "From Python")::

    import scalinglab as sl
    res = sl.fit_law("chinchilla", df, columns={"N": "params", "D": "tokens"}, bootstrap=200)
    res                       # one line; res.summary() is the full story (HTML in Jupyter)
    res.optimum(1e22)         # N, D, tokens per parameter and loss at a budget, with intervals
    plan = sl.make_plan(compute=1e22, loss_law=res, hparams_law=sl.STEP_LAW)

Names are loaded on first use, so ``import scalinglab`` (and the CLI) start fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.2.0"

_EXPORTS: dict[str, str] = {
    # fitting
    "fit_law": "scalinglab.fit.loss",
    "fit_arrays": "scalinglab.fit.loss",
    "fit_joint": "scalinglab.fit.lsq",
    "fit_isoflop": "scalinglab.fit.isoflop",
    "fit_hparam_law": "scalinglab.hparams.fit",
    "fit_tau_law": "scalinglab.hparams.timescale",
    "select_runs": "scalinglab.runs.select",
    "fit_loss_to_loss": "scalinglab.downstream.l2l",
    "translate": "scalinglab.downstream.l2l",
    "fit_ladder": "scalinglab.downstream.ladder",
    "fit_curves": "scalinglab.fit.curves",
    # results
    "FitResult": "scalinglab.fit.result",
    "JointFit": "scalinglab.fit.lsq",
    "IsoFlopResult": "scalinglab.fit.isoflop",
    "HparamFit": "scalinglab.hparams.fit",
    "TauFit": "scalinglab.hparams.timescale",
    "CurveFit": "scalinglab.fit.curves",
    "load_result": "scalinglab.results",
    "Estimate": "scalinglab.stats",
    # laws
    "Law": "scalinglab.laws.base",
    "LawInstance": "scalinglab.laws.base",
    "Provenance": "scalinglab.laws.base",
    "get_law": "scalinglab.laws.registry",
    "list_laws": "scalinglab.laws.registry",
    "published_laws": "scalinglab.laws.registry",
    "CHINCHILLA": "scalinglab.laws.loss",
    "KAPLAN": "scalinglab.laws.loss",
    "HOFFMANN_2022": "scalinglab.laws.loss",
    "BESIROGLU_2024": "scalinglab.laws.loss",
    "STEP_LAW": "scalinglab.laws.hparams",
    "DEEPSEEK": "scalinglab.laws.hparams",
    # planning and data
    "make_plan": "scalinglab.plan.planner",
    "Plan": "scalinglab.plan.planner",
    "RunStore": "scalinglab.runs.store",
    # adaptive design over a pool of candidate runs
    "design_pool": "scalinglab.design.pool",
    "replay_study": "scalinglab.design.pool",
    # errors
    "ScalingLabError": "scalinglab.errors",
    "InputError": "scalinglab.errors",
    "ParameterError": "scalinglab.errors",
    "NotIdentifiable": "scalinglab.errors",
    "StoreError": "scalinglab.errors",
    "StoreBusy": "scalinglab.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scalinglab' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
