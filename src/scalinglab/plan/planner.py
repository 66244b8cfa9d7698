"""The planner: a budget (or a model and a token count) -> everything needed to launch the run.

It composes laws and says where they are extrapolated; it declares no formula of its own:
the allocation is ``laws.loss.compute_optimum``, the loss and its interval come from the loss law
(``FitResult.predict_interval`` for a fit with bootstrap draws), lr and batch from an
:class:`~scalinglab.laws.hparams.HparamLaw`, the lr correction for the rounded batch from the
square-root rule, and weight decay from the AdamW timescale law.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.fit.result import FitResult
from scalinglab.hparams.fit import load_hparam_law
from scalinglab.hparams.timescale import TauFit
from scalinglab.laws.base import LawInstance
from scalinglab.laws.hparams import (
    SQRT_RULE_ADAM,
    STEP_LAW,
    WEIGHT_DECAY_FOR_TAU,
    HparamLaw,
    range_warnings,
)
from scalinglab.laws.loss import allocation_params, compute_optimum
from scalinglab.laws.resolve import resolve
from scalinglab.results import Result
from scalinglab.summary import Summary, Table
from scalinglab.values import positive_number

BatchRound = Literal["multiple8", "pow2", "none"]
#: default AdamW timescale (fraction of the run); an assumption, stated in every plan
DEFAULT_TAU = 0.2


@dataclass(repr=False)
class Plan(Result):
    """A training plan. Intervals are ``None`` when the law has no uncertainty to give.

    A :class:`~scalinglab.results.Result` like any fit: ``summary()`` is the table ``scalinglab
    plan`` prints (one list of rows, :meth:`rows`), ``save``/``load_result`` round-trip it, and
    its repr is one line. ``run_ids``: the runs the loss law was fitted on (none for a
    published law)."""

    kind: ClassVar[str] = "plan"

    N: float
    D: float
    tokens_per_param: float
    train_flops: float
    inference_tokens: float
    inference_flops: float
    total_flops: float
    mode: str
    loss: float
    loss_interval: list[float] | None
    loss_interval_source: str
    N_interval: list[float] | None
    D_interval: list[float] | None
    lr: float
    lr_law: float
    #: the planned lr's interval: the law's interval moved to the planned batch by the same
    #: square-root rule as the lr itself (so it always holds ``lr``)
    lr_interval: list[float] | None
    batch_tokens_law: float
    batch_interval: list[float] | None
    batch_sequences: int
    batch_tokens: int
    batch_rounding: str
    seq_len: int
    steps: int
    tau: float
    tau_source: str
    weight_decay: float
    loss_law: dict[str, Any]
    hparams_law: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    #: data-constrained plans: the unique tokens available and the epochs over them (D/U)
    unique_tokens: float | None = None
    epochs: float | None = None
    #: the hparams law's own lr interval, at its own batch ``batch_tokens_law``
    lr_law_interval: list[float] | None = None
    #: why figures of this plan are not identified (None: they are); the loss is then no
    #: estimate, and with ``allow_unidentified`` a compute-optimal N and D are not either
    not_identified: str | None = None
    #: the unidentified loss-law parameters that a compute-optimal N and D rest on (a plan made
    #: with ``allow_unidentified``): when any, the whole plan is no estimate, not only its loss
    allocation_unidentified: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    notes: list[str] = field(default_factory=list)

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self), "run_ids": list(self.run_ids),
                "allocation_unidentified": list(self.allocation_unidentified)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["run_ids"] = tuple(values.get("run_ids") or ())
        if "allocation_unidentified" in values:
            values["allocation_unidentified"] = tuple(values["allocation_unidentified"] or ())
        else:
            values["allocation_unidentified"] = _old_allocation_unidentified(
                values.get("not_identified"))
        return cls(**values)

    def rows(self) -> list[list[str]]:
        """``[quantity, value, interval / note]``: what ``scalinglab plan`` prints."""
        rows: list[list[str]] = [
            ["parameters N", f"{self.N:.4g}", _iv(self.N_interval)],
            ["tokens D", f"{self.D:.4g}", _iv(self.D_interval)],
            ["tokens per parameter", f"{self.tokens_per_param:.1f}", ""],
        ]
        if self.unique_tokens is not None and self.epochs is not None:
            rows.append(["epochs over unique tokens", f"{self.epochs:.3g}",
                         f"U = {self.unique_tokens:.3g} unique tokens"])
        rows.append(["training FLOPs 6ND", f"{self.train_flops:.3g}", ""])
        if self.inference_tokens:
            rows.append(["inference FLOPs 2NT", f"{self.inference_flops:.3g}",
                         f"T = {self.inference_tokens:.3g} tokens"])
        rows += [
            ["predicted loss", "not identified" if self.not_identified else f"{self.loss:.4f}",
             _iv(self.loss_interval, ".4f") if self.loss_interval else "no interval"],
            ["learning rate", f"{self.lr:.4g}",
             f"{_iv(self.lr_interval)}; law {self.lr_law:.4g} {_iv(self.lr_law_interval)} at its "
             "batch, sqrt rule to the rounded batch"],
            ["batch (sequences)", f"{self.batch_sequences:,}", self.batch_rounding],
            ["batch (tokens)", f"{self.batch_tokens:,}",
             f"law {self.batch_tokens_law:,.0f} {_iv(self.batch_interval, ',.0f')}"],
            ["steps", f"{self.steps:,}", f"seq_len {self.seq_len}"],
            ["weight decay", f"{self.weight_decay:.3g}",
             f"tau = {self.tau:.3g} ({self.tau_source})"],
        ]
        return rows

    @property
    def title(self) -> str:
        # the whole plan is no estimate only when N and D rest on what the runs left unidentified;
        # an unidentified offset (Chinchilla's E) leaves N and D standing and only the loss open
        whole = bool(self.allocation_unidentified) and "compute-optimal" in self.mode
        return (("NOT IDENTIFIED - " if whole else "") + f"plan ({self.mode}; loss law "
                f"{self.loss_law.get('label', '')}, hparams {self.hparams_law.get('name', '')})")

    def summary(self) -> Summary:
        table = Table("", ["quantity", "value", "interval / note"])
        for row in self.rows():
            table.add_row(*row)
        return Summary(title=self.title, tables=[table],
                       notes=[f"loss interval: {self.loss_interval_source}", *self.notes],
                       warnings=list(self.warnings), data=self.to_dict())

    def __repr__(self) -> str:
        loss = f"{self.loss:.4g}" + (f" [{self.loss_interval[0]:.4g}, {self.loss_interval[1]:.4g}]"
                                     if self.loss_interval else "")
        return (f"<Plan {self.mode}: N={self.N:.3g}, D={self.D:.3g}, loss={loss}, "
                f"lr={self.lr:.3g}, batch={self.batch_tokens:,} tokens>")


def _old_allocation_unidentified(not_identified: str | None) -> tuple[str, ...]:
    """``allocation_unidentified`` for a plan saved before it was a field: such a plan said
    so only in words, ``"the loss law's fit depends on B, beta, which these runs do not
    identify: N, D, the loss and what follows from them are not estimates"`` (the names are
    all the fit's unidentified parameters, a superset of those N and D rest on; none of an old
    plan's figures depends on the difference)."""
    text = not_identified or ""
    named = re.search(r"depends on (.+?), which these runs do not identify", text)
    # the test the title made on such a plan's text before, kept for the files it was made on
    return tuple(named.group(1).split(", ")) if named and "N, D" in text else ()


def _iv(xs: list[float] | None, fmt: str = ".3g") -> str:
    return f"[{xs[0]:{fmt}}, {xs[1]:{fmt}}]" if xs else "-"


def resolve_loss_law(spec: str | Path | LawInstance | FitResult) -> LawInstance | FitResult:
    """``hoffmann2022``, ``besiroglu2024``, a LawInstance, or a ``fit --save`` JSON file
    (:func:`scalinglab.laws.resolve.resolve`, the one resolver)."""
    return resolve(spec, "loss_law", param="loss_law")  # type: ignore[no-any-return]


def resolve_tau(spec: float | str | Path | TauFit | LawInstance) -> float | LawInstance:
    """A number, a fitted tau law, or a ``hparams tau --save`` JSON file (the one resolver)."""
    return resolve(spec, "tau")  # type: ignore[no-any-return]


def round_batch(batch_tokens: float, seq_len: int, how: BatchRound) -> int:
    """Batch in whole sequences: nearest multiple of 8 (at least 8), nearest power of two in log
    space, or nearest whole sequence."""
    seqs = batch_tokens / seq_len
    if how == "multiple8":
        return max(8, int(round(seqs / 8.0)) * 8)
    if how == "pow2":
        return int(2 ** max(0, round(math.log2(max(seqs, 1.0)))))
    if how == "none":
        return max(1, int(round(seqs)))
    raise ParameterError(f"batch_round must be multiple8, pow2 or none, not {how!r}", "batch_round")


def _allocation(
    inst: LawInstance, compute: float | None, params: float | None, tokens: float | None,
    T: float, fixed: dict[str, float] | None = None,
) -> tuple[float, float, str]:
    # compute, params and tokens come checked (make_plan reads each with positive_number)
    given = sum(x is not None for x in (compute, params, tokens))
    if given == 0 or given == 3 or (given == 1 and compute is None):
        raise ParameterError("give compute alone (compute-optimal), or two of compute, params, "
                             "tokens", "compute", "params", "tokens")
    if compute is not None and params is None and tokens is None:
        try:
            N, D = compute_optimum(inst, compute, inference_tokens=T, fixed_inputs=fixed)
        except (ArithmeticError, ValueError) as exc:
            raise NotIdentifiable(f"cannot find a compute optimum with this loss law: {exc}") from None
        if not D >= 1:
            raise ParameterError(f"compute {compute:.3g} leaves no training tokens after inference "
                                 f"on {T:.3g} tokens", "compute")
        return N, D, "compute-optimal" + (" with inference" if T > 0 else "")
    if params is not None and tokens is not None:
        return params, tokens, "given N and D"
    if compute is not None and params is not None:
        D = (compute - 2 * params * T) / (6 * params)
        if D < 1:
            raise ParameterError(f"compute {compute:.3g} is too small for N = {params:.3g}",
                                 "compute")
        return params, D, "given compute and N"
    assert compute is not None and tokens is not None
    N = compute / (6 * tokens + 2 * T)
    if N < 1:  # as D < 1 is refused above: 1e20 FLOPs over 1e21 tokens once planned N = 0.017
        raise ParameterError(f"compute {compute:.3g} is too small for D = {tokens:.3g} tokens "
                             f"(N = {N:.3g} parameters)", "compute")
    return N, tokens, "given compute and D"


def make_plan(
    compute: float | None = None,
    params: float | None = None,
    tokens: float | None = None,
    loss_law: str | Path | LawInstance | FitResult = "hoffmann2022",
    hparams_law: str | Path | HparamLaw = STEP_LAW,
    seq_len: int = 2048,
    tau: float | str | Path | TauFit | LawInstance = DEFAULT_TAU,
    inference_tokens: float = 0.0,
    batch_round: BatchRound = "multiple8",
    unique_tokens: float | None = None,
    batch_tokens: float | None = None,
    allow_unidentified: bool = False,
) -> Plan:
    """Plan a run from a training budget (``compute``, FLOPs) or from ``params`` and ``tokens``.

    ``compute`` alone gives the loss law's optimum under ``C = 6ND`` (plus ``2 N T`` of inference
    when ``inference_tokens`` T > 0, following Sardana et al. 2023); two of the three fix the run.

    ``unique_tokens`` U answers "I only have U unique tokens": with a data-constrained law (an
    input ``U``, e.g. ``muennighoff2023_c4`` or a ``fit law muennighoff2023`` result) the
    allocation and the loss account for repeating the data over ``D/U`` epochs.
    ``batch_tokens`` fixes the batch (e.g. the one the runs were trained at) instead of the lr/batch
    law's; the law's lr is then moved to it by the square-root rule, and both stay in the plan.

    A fitted law whose parameters the runs do not identify cannot allocate a budget: a
    compute-optimal plan is then refused (:class:`NotIdentifiable`, naming the parameters and
    the runs that would identify them) unless ``allow_unidentified``, which makes it marked as
    not identified. With N and D given, the plan stands and its loss is marked not identified.
    """
    law = resolve_loss_law(loss_law)
    # numbers first: compute="1e22" (or a list) was a TypeError from math.isfinite further down
    compute, params, tokens = (None if x is None else positive_number(x, name)
                               for name, x in (("compute", compute), ("params", params), ("tokens", tokens)))
    fit = law if isinstance(law, FitResult) else None
    inst = fit.instance if fit is not None else law
    assert isinstance(inst, LawInstance)
    if not {"N", "D"} <= set(inst.law.inputs):
        raise ParameterError(f"loss law {inst.label!r} ({inst.law.formula}) does not depend on "
                             "both N and D, so it cannot allocate a budget; fit a law of N and D "
                             "(e.g. chinchilla or kaplan)", "loss_law")
    hp = load_hparam_law(hparams_law)
    tau_spec = resolve_tau(tau)
    if seq_len <= 0:
        raise ParameterError(f"seq_len must be positive, not {seq_len}", "seq_len")
    T = float(inference_tokens)
    if T < 0:
        raise ParameterError(f"inference_tokens must be >= 0, not {T:g}", "inference_tokens")
    extra = set(inst.law.inputs) - {"N", "D"}
    fixed: dict[str, float] = {}
    if unique_tokens is not None:
        if not (math.isfinite(unique_tokens) and unique_tokens > 0):
            raise ParameterError(f"unique_tokens must be a positive number, not {unique_tokens:g}",
                                 "unique_tokens")
        if "U" not in inst.law.inputs:
            raise ParameterError(f"loss law {inst.label!r} ({inst.law.formula}) does not model "
                                 "repeated data; use a data-constrained law (e.g. "
                                 "muennighoff2023_c4, or a fit of muennighoff2023) with "
                                 "unique_tokens", "unique_tokens", "loss_law")
        fixed["U"] = float(unique_tokens)
    missing = sorted(extra - set(fixed))
    if missing:
        raise ParameterError(f"loss law {inst.label!r} needs {missing} besides N and D: give "
                             "unique_tokens", "unique_tokens")
    unidentified = fit.depends_on_unidentified(fit.law.param_names) if fit is not None else None
    optimal = compute is not None and params is None and tokens is None
    # the unidentified parameters the allocation rests on: an offset such as Chinchilla's E moves
    # every loss by the same amount, so N and D stand without it and only the loss is no estimate
    moving = (allocation_params(inst, sorted(fit.unidentified), compute, T, fixed)
              if unidentified and optimal and fit is not None else [])
    if moving and not allow_unidentified:
        # N and D would be where the fit stopped (the demo once planned N = 3.0e4 at 18,422
        # tokens per parameter from such a fit)
        raise NotIdentifiable(
            f"no compute-optimal plan for {compute:.3g} FLOPs: the loss law's fit "
            f"{fit.depends_on_unidentified(moving)}, and N, D, the loss, lr and batch all follow "
            f"from them. {identifying_runs(fit, compute)}")
    N, D, mode = _allocation(inst, compute, params, tokens, T, fixed)
    if fixed:
        mode += f" with {fixed['U']:.3g} unique tokens"
    warnings: list[str] = []
    not_identified = None
    if unidentified:
        # say so first, and show no interval as if the runs had pinned these figures
        what = ("N, D, the loss and what follows from them are not estimates" if moving
                else "the loss is not an estimate")
        not_identified = f"the loss law's fit {unidentified}: {what}"
        warnings.append(f"NOT IDENTIFIED: {not_identified}. {identifying_runs(fit, compute or 6.0 * N * D)}")

    # loss and its interval
    loss = float(inst.predict(N=N, D=D, **fixed))
    loss_iv: list[float] | None = None
    N_iv = D_iv = None
    if fit is not None and fit.n_draws and mode.startswith("compute-optimal") and not moving:
        # N and D rest only on identified parameters here (see ``moving``), so their draws hold
        opt = fit.optimum(6.0 * N * D + 2.0 * N * T, inference_tokens=T, fixed=fixed)
        N_iv = None if opt.N.ci is None else list(opt.N.ci)
        D_iv = None if opt.D.ci is None else list(opt.D.ci)
    if not_identified:
        source = f"no interval: {not_identified}"
    elif fit is not None and fit.n_draws:
        _, lo, hi = fit.predict_interval(N=N, D=D, **fixed)
        loss_iv = [float(lo), float(hi)]
        source = f"{fit.level:.0%} percentile interval over the fit's {fit.n_draws} bootstrap draws"
    elif fit is not None:
        source = "no interval: the fit was saved without bootstrap draws"
    else:
        source = ("no interval: the published law gives point estimates only (reported standard "
                  "errors without their covariance cannot give an honest band)")
    valid = fit.data_range if fit is not None else (
        inst.provenance.valid_range if inst.provenance else {})
    warnings += range_warnings(valid, N, D, f"loss law {inst.label!r}")
    if "U" in fixed and "U" in valid:
        lo_u, hi_u = valid["U"]
        if not lo_u <= fixed["U"] <= hi_u:
            warnings.append(f"{fixed['U']:.3g} unique tokens is outside the range the loss law "
                            f"{inst.label!r} was fitted on ({lo_u:.3g} to {hi_u:.3g})")

    # lr and batch
    pred = hp.predict(N, D)
    lr_law, bt_law = float(pred["lr"]), float(pred["batch_tokens"])
    iv = hp.interval(N, D)
    warnings += hp.check_range(N, D)
    if batch_tokens is not None and not (math.isfinite(batch_tokens) and batch_tokens > 0):
        raise ParameterError(f"batch_tokens must be a positive number, not {batch_tokens:g}",
                             "batch_tokens")
    seqs = round_batch(bt_law if batch_tokens is None else float(batch_tokens), seq_len, batch_round)
    bt = seqs * seq_len
    lr = float(SQRT_RULE_ADAM.predict(lr=lr_law, batch_tokens=bt_law, new_batch_tokens=bt))
    if bt_law < seq_len:
        warnings.append(f"the law's batch ({bt_law:.3g} tokens) is below one sequence of {seq_len}")
    if D < bt:
        # a plan whose tokens do not fill one batch cannot be trained as written: its "1 step"
        # would read bt tokens, not D, and N, D, the loss and the lr follow laws read thousands of
        # times below any model they saw (1e3 FLOPs once planned 12 tokens, a 16,384-token batch)
        raise ParameterError(
            f"{6.0 * N * D + 2.0 * N * T:.3g} FLOPs is too small a budget to plan: D = {D:.3g} "
            f"tokens is less than one batch of {bt:,} tokens ({seqs} x {seq_len}); one batch at "
            f"N = {N:.3g} takes {6.0 * N * bt:.3g} FLOPs (a larger compute, or a smaller batch: "
            f"batch_round none or a shorter seq_len)", "compute", "batch_round", "seq_len")
    steps = int(math.ceil(D / bt))
    if steps < 1000:
        warnings.append(f"only {steps} optimizer steps: warmup and schedule will dominate")

    # weight decay from the AdamW timescale
    if isinstance(tau_spec, LawInstance):
        tau_v = float(tau_spec.predict(TPP=D / N))
        tau_src = f"{tau_spec.label}: {tau_spec.law.formula} at D/N = {D / N:.3g}"
        prov_range = tau_spec.provenance.valid_range if tau_spec.provenance else {}
        if "TPP" in prov_range:
            warnings += range_warnings({"TPP": prov_range["TPP"]}, N, D, "the tau law")
    else:
        tau_v = float(tau_spec)
        if not tau_v > 0:
            raise ParameterError(f"tau must be positive, not {tau_v:g}", "tau")
        tau_src = "given" if tau_v != DEFAULT_TAU else (
            "default assumption (not fitted): give --tau or fit one with `hparams tau`")
    wd = float(WEIGHT_DECAY_FOR_TAU.predict(batch_tokens=bt, lr=lr, tau=tau_v, D=D))

    def pair(x: Any) -> list[float] | None:
        return None if x is None else [float(np.asarray(x[0])), float(np.asarray(x[1]))]

    return Plan(
        N=N, D=D, tokens_per_param=D / N, train_flops=6.0 * N * D, inference_tokens=T,
        inference_flops=2.0 * N * T, total_flops=6.0 * N * D + 2.0 * N * T, mode=mode,
        loss=loss, loss_interval=loss_iv, loss_interval_source=source,
        N_interval=N_iv, D_interval=D_iv,
        lr=lr, lr_law=lr_law,
        lr_interval=[x * lr / lr_law for x in pair(iv["lr"])] if iv else None,  # type: ignore[union-attr]
        batch_tokens_law=bt_law, batch_interval=pair(iv["batch_tokens"]) if iv else None,
        batch_sequences=seqs, batch_tokens=bt,
        batch_rounding=("given batch, " if batch_tokens is not None else "") + {
            "multiple8": "nearest multiple of 8 sequences", "pow2":
            "nearest power of two (sequences)", "none": "nearest sequence"}[batch_round],
        seq_len=seq_len, steps=steps, tau=tau_v, tau_source=tau_src, weight_decay=wd,
        loss_law={"label": inst.label, "formula": inst.law.formula, "params": dict(inst.params),
                  "source": inst.provenance.source if inst.provenance else ""},
        hparams_law=hp.to_dict(),
        warnings=warnings,
        unique_tokens=fixed.get("U"),
        epochs=D / fixed["U"] if "U" in fixed else None,
        lr_law_interval=pair(iv["lr"]) if iv else None,
        not_identified=not_identified,
        allocation_unidentified=tuple(moving),
        run_ids=tuple(fit.run_ids) if fit is not None else (),
    )


def identifying_runs(fit: Any, compute: float) -> str:
    """In words, the runs that would identify a Chinchilla-type law for a plan at ``compute``:
    what the fit's runs span now and what an IsoFLOP sweep should add."""
    rng = getattr(fit, "data_range", {}) or {}
    span = ""
    if "N" in rng and "D" in rng:
        (n_lo, n_hi), (d_lo, d_hi) = rng["N"], rng["D"]
        span = (f" (the runs now span N {n_lo:.3g}-{n_hi:.3g}, D {d_lo:.3g}-{d_hi:.3g}"
                + (f", compute up to {fit.compute_range[1]:.3g}" if getattr(fit, "compute_range", None)
                   else "") + ")")
    top = compute / 10.0
    return (f"Runs that would identify it: an IsoFLOP sweep of 3 or more model sizes at each of 3 "
            f"or more budgets, the largest near {top:.3g} FLOPs (a tenth of the plan's), with 5 to "
            f"100 tokens per parameter at each budget so the loss turns up on both sides{span}; "
            "`scalinglab design next` picks those that narrow the law most per FLOP")
