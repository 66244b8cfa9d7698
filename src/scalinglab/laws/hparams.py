"""Hyperparameter laws: optimal learning rate and batch size, AdamW weight decay, lr transfer.

Each law is data (:class:`~scalinglab.laws.base.Law`) with numbers attached as a
:class:`~scalinglab.laws.base.LawInstance`; an :class:`HparamLaw` pairs an lr law with a batch
law, knows where it was fitted (``Provenance.valid_range``) and, when its source gives one, its
uncertainty. Fitting (``scalinglab.hparams``) produces the same objects, so the planner, the
evaluation and the CLI treat published and fitted laws alike.

Inputs are named ``N`` (non-embedding parameters), ``D`` (training tokens), ``C`` (training FLOPs,
taken as ``6 N D``) and ``TPP`` (tokens per parameter, ``D / N``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from scipy.stats import norm

from scalinglab.laws.base import ArrayLike, Law, LawInstance, Provenance
from scalinglab.results import short_repr
from scalinglab.stats import percentile_interval

#: inputs a hyperparameter law may use, all derived from (N, D)
FEATURES = ("N", "D", "C", "TPP")


def feature_values(N: ArrayLike, D: ArrayLike) -> dict[str, np.ndarray]:
    """Every input a law may ask for, from N and D (``C = 6ND``, ``TPP = D/N``)."""
    n, d = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    return {"N": n, "D": d, "C": 6.0 * n * d, "TPP": d / n}


def loglinear_law(output: str, features: tuple[str, ...]) -> Law:
    """``ln output = intercept + sum_f coef_f ln f``: a power law, linear in log space.

    Step Law fits its laws as least squares on logs, so the parameters are the regression
    coefficients themselves (and bootstrap draws of them give bands); ``exp(intercept)`` is the
    prefactor.
    """
    unknown = [f for f in features if f not in FEATURES]
    if unknown or not features:
        raise ValueError(f"features must be a non-empty subset of {FEATURES}, not {features}")
    names = ("intercept", *(f"coef_{f}" for f in features))

    def fn(x: Mapping[str, np.ndarray], p: Mapping[str, float]) -> np.ndarray:
        log = p["intercept"] + sum(p[f"coef_{f}"] * np.log(x[f]) for f in features)
        return np.exp(log)

    terms = " + ".join(f"coef_{f} ln {f}" for f in features)
    return Law(
        name=f"{output}_power_{''.join(features)}",
        formula=f"ln {output} = intercept + {terms}",
        inputs=features,
        output=output,
        param_names=names,
        fn=fn,
        bounds={k: (-50.0, 50.0) for k in names},
    )


def design_row(law: Law, N: ArrayLike, D: ArrayLike) -> np.ndarray:
    """Rows ``[1, ln f1, ln f2, ...]`` of a log-linear law: ``ln y = row @ coefficients``."""
    x = feature_values(N, D)
    cols = [np.ones_like(x["N"])] + [np.log(x[f]) for f in law.inputs]
    return np.stack(np.broadcast_arrays(*cols), axis=-1)


# Learning rate transfer across batch sizes -------------------------------------------------------

LR_TRANSFER = Law(
    name="lr_batch_transfer",
    formula="lr_new = lr * (new_batch_tokens / batch_tokens)^exponent",
    inputs=("lr", "batch_tokens", "new_batch_tokens"),
    output="lr",
    param_names=("exponent",),
    fn=lambda x, p: x["lr"] * (x["new_batch_tokens"] / x["batch_tokens"]) ** p["exponent"],
    bounds={"exponent": (0.0, 1.0)},
)

SQRT_RULE_ADAM = LR_TRANSFER.with_params(
    {"exponent": 0.5},
    provenance=Provenance(
        source="square-root scaling rule for Adam-type optimisers (Malladi et al. 2022, "
        "'On the SDEs and Scaling Rules for Adaptive Gradient Algorithms')",
        url="https://arxiv.org/abs/2205.10287",
        units="lr: peak learning rate; batch in tokens",
        notes="A rule, not a fit: holds below the critical batch size (McCandlish et al. 2018); "
        "beyond it, larger batches buy less and the rule over-raises the lr.",
    ),
    label="sqrt (Adam)",
)

LINEAR_RULE_SGD = LR_TRANSFER.with_params(
    {"exponent": 1.0},
    provenance=Provenance(
        source="linear scaling rule for SGD (Goyal et al. 2017, 'Accurate, Large Minibatch SGD')",
        url="https://arxiv.org/abs/1706.02677",
        units="lr: peak learning rate; batch in tokens",
        notes="A rule, not a fit: for (momentum) SGD below the critical batch size, with warmup.",
    ),
    label="linear (SGD)",
)

LR_TRANSFER_RULES: dict[str, LawInstance] = {"adam": SQRT_RULE_ADAM, "sgd": LINEAR_RULE_SGD}


# AdamW timescale --------------------------------------------------------------------------------

_TIMESCALE_SOURCE = Provenance(
    source="AdamW timescale: Wang & Aitchison 2024, 'How to set AdamW's weight decay as you scale "
    "model and dataset size'; Bergsma et al. 2025, 'Power Lines'",
    url="https://arxiv.org/abs/2505.13738",
    units="batch_tokens and D in tokens; lr: peak learning rate; weight_decay: decoupled lambda "
    "as in torch.optim.AdamW (per-step decay lr*lambda); tau: fraction of the training run",
    notes="AdamW's weights are an EMA of updates with timescale 1/(lr*lambda) steps; over "
    "D/B steps that is tau = B/(lr*lambda*D) of the run. Power Lines finds the optimal tau "
    "falls as a power law in tokens per parameter; fit yours with `scalinglab hparams tau`.",
)

ADAMW_TIMESCALE = Law(
    name="adamw_timescale",
    formula="tau = batch_tokens / (lr * weight_decay * D)",
    inputs=("batch_tokens", "lr", "weight_decay", "D"),
    output="tau",
    param_names=(),
    fn=lambda x, p: x["batch_tokens"] / (x["lr"] * x["weight_decay"] * x["D"]),
    provenance=_TIMESCALE_SOURCE,
).with_params({})

WEIGHT_DECAY_FOR_TAU = Law(
    name="weight_decay_for_tau",
    formula="weight_decay = batch_tokens / (lr * tau * D)",
    inputs=("batch_tokens", "lr", "tau", "D"),
    output="weight_decay",
    param_names=(),
    fn=lambda x, p: x["batch_tokens"] / (x["lr"] * x["tau"] * x["D"]),
    provenance=_TIMESCALE_SOURCE,
).with_params({})

#: the family for a fitted optimal timescale, ``tau_opt = exp(intercept) * TPP^coef_TPP``
TAU_LAW = loglinear_law("tau", ("TPP",))


# Paired lr / batch laws ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class HparamLaw:
    """An optimal-lr law and an optimal-batch law, with where they hold and how sure they are.

    Uncertainty comes either as bootstrap ``*_draws`` of the log-linear coefficients (a fit) or as
    their Gaussian summary ``*_cov`` (Step Law's published bootstrap); without either there is no
    interval, and :meth:`interval` says so by returning ``None``.
    """

    __repr__ = short_repr  # one short line, not every field

    name: str
    lr: LawInstance
    batch: LawInstance
    provenance: Provenance
    lr_draws: np.ndarray | None = None
    batch_draws: np.ndarray | None = None
    lr_cov: np.ndarray | None = None
    batch_cov: np.ndarray | None = None
    #: how the interval was obtained, shown beside it
    interval_source: str = "bootstrap of the fit"
    #: the runs file or store a fitted law came from (empty for published laws)
    data_source: str = ""
    #: (N, D) points known to be among the runs it was fitted on (Step Law: its released
    #: grid), so an evaluation can say where it is not a held-out prediction
    fitted_points: tuple[tuple[float, float], ...] = ()

    def predict(self, N: ArrayLike, D: ArrayLike) -> dict[str, np.ndarray]:
        """``{"lr", "batch_tokens"}`` at (N, D)."""
        x = feature_values(N, D)
        return {
            "lr": self.lr.predict(**{k: x[k] for k in self.lr.law.inputs}),
            "batch_tokens": self.batch.predict(**{k: x[k] for k in self.batch.law.inputs}),
        }

    def _band(
        self, inst: LawInstance, draws: np.ndarray | None, cov: np.ndarray | None,
        N: ArrayLike, D: ArrayLike, level: float,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        row = design_row(inst.law, N, D)
        if draws is not None and len(draws):
            vals = np.exp(row @ np.asarray(draws).T)  # (..., K)
            return percentile_interval(vals, level, axis=-1)
        if cov is not None:
            sd = np.sqrt(np.einsum("...i,ij,...j->...", row, np.asarray(cov), row))
            z = norm.ppf(0.5 + level / 2.0)
            point = np.log(inst.predict(**{k: feature_values(N, D)[k] for k in inst.law.inputs}))
            return np.exp(point - z * sd), np.exp(point + z * sd)
        return None

    def interval(self, N: ArrayLike, D: ArrayLike, level: float = 0.95) -> dict[str, Any] | None:
        """``{"lr": (lo, hi), "batch_tokens": (lo, hi), "source": ...}`` or None without one."""
        lr = self._band(self.lr, self.lr_draws, self.lr_cov, N, D, level)
        batch = self._band(self.batch, self.batch_draws, self.batch_cov, N, D, level)
        if lr is None or batch is None:
            return None
        return {"lr": lr, "batch_tokens": batch, "level": level,
                "source": self.interval_source}

    def check_range(self, N: float, D: float) -> list[str]:
        """Warnings, each with the range, for (N, D) outside where the law was fitted."""
        return range_warnings(self.provenance.valid_range, N, D, f"hparam law {self.name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lr": {"formula": self.lr.law.formula, "params": dict(self.lr.params)},
            "bs": {"formula": self.batch.law.formula, "params": dict(self.batch.params)},
            "provenance": self.provenance.to_dict(),
        }


def range_warnings(
    valid_range: Mapping[str, tuple[float, float]], N: float, D: float, what: str
) -> list[str]:
    """Say which of N, D, C = 6ND and D/N (key ``TPP``) fall outside ``valid_range``, and by how
    much. Ranges of C and D/N matter on their own: fitted data cover a diagonal band, so a plan
    can sit inside the N and D ranges yet far from any run."""
    values = {"N": N, "D": D, "C": 6.0 * N * D, "TPP": D / N}
    return outside_range(valid_range, values, what, {"C": "C = 6ND", "TPP": "D/N"})


def outside_range(
    valid_range: Mapping[str, tuple[float, float]], values: Mapping[str, float], what: str,
    labels: Mapping[str, str] | None = None,
) -> list[str]:
    """One warning per value of ``values`` outside its range in ``valid_range`` (a value without
    a range is not checked), with the range and how far beyond it lies: the one wording of
    "extrapolating" for plans, hyperparameter laws and a fit read at a point or budget."""
    out = []
    for key, v in values.items():
        if key not in valid_range:
            continue
        lo, hi = valid_range[key]
        if v < lo or v > hi:
            # how far, as a factor, where both sides have one sign (a point at 0 or below a
            # positive range, as --at N=1e9,D=0, is beyond it by no factor: said without one)
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.float64(lo) / v if v < lo else np.float64(v) / hi
            far = f" (x{factor:.3g} beyond)" if factor > 0 and np.isfinite(factor) else ""
            out.append(
                f"{(labels or {}).get(key, key)} = {v:.3g} is outside the range of {what} "
                f"[{lo:.3g}, {hi:.3g}]{far}; extrapolating"
            )
    return out


LR_ND = loglinear_law("lr", ("N", "D"))
BATCH_D = loglinear_law("batch_tokens", ("D",))
LR_C = loglinear_law("lr", ("C",))
BATCH_C = loglinear_law("batch_tokens", ("C",))


@cache
def steplaw_bootstrap() -> dict[str, Any]:
    """The shipped summary (mean, covariance, quantiles) of Step Law's 1,000 bootstrap fits."""
    text = resources.files("scalinglab").joinpath("data/steplaw_bootstrap.json").read_text()
    return json.loads(text)


#: the 17 (N, D) points of Step Law's released dense grid (github.com/step-law/steplaw, data/),
#: a subset of the runs the published law was fitted on
STEP_LAW_RELEASED_POINTS: tuple[tuple[float, float], ...] = tuple(
    (n, d) for n, ds in (
        (214663680.0, (4e9, 11.4e9, 20e9, 100e9)),
        (268304384.0, (5e9, 14.2e9, 25e9, 80e9)),
        (429260800.0, (8e9, 22.7e9, 40e9, 50e9)),
        (536872960.0, (10e9, 28.4e9, 50e9)),
        (1073741824.0, (20e9, 56.9e9)),
    ) for d in ds)


def _steplaw() -> HparamLaw:
    summary = steplaw_bootstrap()
    cov = np.asarray(summary["cov"], dtype=float)
    prov = Provenance(
        source="Li et al. 2025, 'Predictable Scale: Part I' (Step Law), dense models",
        url="https://arxiv.org/abs/2503.04715",
        units="N: non-embedding parameters; D: training tokens; lr: peak lr (AdamW, final lr "
        "1e-5); batch in tokens",
        # The released dense grid (github.com/step-law/steplaw, data/) spans these; the paper
        # fitted on more runs, so treat this as where the law was checked, not a hard limit.
        valid_range={"N": (2.1e8, 1.1e9), "D": (4e9, 1e11), "TPP": (3.7, 470.0)},
        notes="lr = 1.79 N^-0.713 D^0.307, batch_tokens = 0.58 D^0.571. Interval: Gaussian "
        "summary (mean, covariance) of the authors' 1,000 bootstrap fits (shipped in "
        "scalinglab/data/steplaw_bootstrap.json), centred on the published point.",
    )
    lr = LR_ND.with_params(
        {"intercept": float(np.log(1.79)), "coef_N": -0.713, "coef_D": 0.307},
        provenance=prov, label="steplaw lr",
    )
    batch = BATCH_D.with_params(
        {"intercept": float(np.log(0.58)), "coef_D": 0.571}, provenance=prov, label="steplaw batch"
    )
    return HparamLaw(
        name="steplaw", lr=lr, batch=batch, provenance=prov,
        lr_cov=cov[:3, :3], batch_cov=cov[3:, 3:],
        interval_source="Gaussian summary of Step Law's 1,000 published bootstrap fits",
        fitted_points=STEP_LAW_RELEASED_POINTS,
    )


def _deepseek() -> HparamLaw:
    prov = Provenance(
        source="DeepSeek-AI 2024, 'DeepSeek LLM: Scaling Open-Source Language Models with "
        "Longtermism', section 3.1",
        url="https://arxiv.org/abs/2401.02954",
        units="C: training FLOPs (the paper uses C = M D with M non-embedding FLOPs/token, "
        "attention included; here C = 6ND); lr: peak lr; batch in tokens",
        # Approximate: the grid searches behind the fit span about 1e17-2e19 FLOPs (the paper's
        # Fig. 3); larger budgets were only spot-checked. Conservative on purpose.
        valid_range={"C": (1e17, 2e19)},
        notes="lr = 0.3118 C^-0.125, batch_tokens = 0.2920 C^0.3271, fitted on small-budget grid "
        "searches (about 1e17-2e19 FLOPs; range approximate). No published interval.",
    )
    lr = LR_C.with_params(
        {"intercept": float(np.log(0.3118)), "coef_C": -0.125}, provenance=prov, label="deepseek lr"
    )
    batch = BATCH_C.with_params(
        {"intercept": float(np.log(0.2920)), "coef_C": 0.3271},
        provenance=prov, label="deepseek batch",
    )
    return HparamLaw(name="deepseek", lr=lr, batch=batch, provenance=prov)


STEP_LAW = _steplaw()
DEEPSEEK = _deepseek()

PUBLISHED_HPARAM_LAWS: dict[str, HparamLaw] = {"steplaw": STEP_LAW, "deepseek": DEEPSEEK}
