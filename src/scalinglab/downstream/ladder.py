"""Model ladders (Bhagia et al. 2024, OLMo): task accuracy of a big model from small ones, in two
chained steps, with a flag for tasks too noisy to predict.

1. Task loss from size and data: ``bpb(N, D) = E + A N^-alpha + B D^-beta`` (bits per byte of the
   correct answer), fitted by the one engine. By default (``step1="checkpoints"``) on every
   checkpoint after each run's first ``skip``, with D the tokens seen so far and a term for
   the learning-rate schedule's stage: ``+ G (lr_stage - 1)``, ``lr_stage = 1 + (lr - lr_end) /
   lr_peak`` (1 at the end of the run's schedule, where the law is read), since a checkpoint
   taken before the decay has a higher loss than a run annealed at the same D. Its bootstrap
   resamples whole runs. ``step1="final"`` is the paper's protocol: one point per run, its final
   checkpoint's bpb the mean of its last ``window`` checkpoints. Chosen by predicting the OLMo
   ladder's 1B rung from 190M-760M (the 3B rung not read): mean chained accuracy error over MMLU,
   PIQA, HellaSwag and ARC-C 1.21% with every checkpoint against 1.63% with final ones (step-1
   bpb error lower on all four); a ladder without a learning-rate column falls back to final
   checkpoints, with a note.
2. Accuracy from task loss: a sigmoid ``acc = lo + (hi - lo) / (1 + exp(-s (bpb - x0)))`` (floor,
   ceiling, both held inside [0, 1] as the paper bounds them, slope, midpoint), fitted on
   every checkpoint of every run after a moving average
   along each run (the link does not depend on N and D, so intermediate checkpoints are extra
   points on the same curve; the average takes out checkpoint-to-checkpoint noise), leaving
   out each run's first 10% of checkpoints and anchored at (bpb 0, the task's maximum), as the
   paper's protocol does. Its bootstrap resamples whole runs (the anchor is in every resample).

The chained prediction pairs draws: bpb draw ``j`` from step 1 goes through link draw ``j'`` from
step 2, and, for a new model (the default), each pair is spread by step 1's run-to-run noise and
the link's model-to-model scatter, through the same helper the downstream chain uses
(:func:`scalinglab.downstream.chain.new_model_draws`). The ladder's scatter is measured once per
model (:func:`model_scatter`: each run's last smoothed checkpoint off the curve), not over all
checkpoints, which would count one model's checkpoints as many models.

Predictability. The paper's variance analysis: a task whose accuracy moves a lot from one
checkpoint to the next near the end of training cannot be predicted to better than that
movement. :func:`predictability` measures, per run, the standard deviation of the last
``n_last`` checkpoints' values after removing a straight-line trend (what training still
changes), relative to their mean, and takes the median over the largest model's runs; a task
whose accuracy varies by more than ``threshold`` (default 2% relative) is flagged.

Data layout (the ladder's released files): one CSV per run named ``{size}-{k}xC[-rerun].csv``,
one row per checkpoint, ``throughput/total_tokens``, ``eval/downstream_bpb/*`` and
``eval/downstream/*`` columns; ``final.json`` gives each size's N (``n``). A size it lacks gets
``N = tokens of its 1xC run / 20`` (xC is 20 tokens per parameter; this reproduces the listed
sizes to 0.1%), said in the notes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from scalinglab.downstream.link_fit import LinkFit, fit_link
from scalinglab.downstream.links import SIGMOID_LINK, LinkForm
from scalinglab.errors import InputError, ParameterError, ScalingLabError
from scalinglab.fit.loss import fit_law
from scalinglab.fit.result import FitResult
from scalinglab.fit.search import PointFit
from scalinglab.results import Result
from scalinglab.safefile import read_json
from scalinglab.stats import bootstrap_weights, percentile_interval
from scalinglab.summary import Summary, Table
from scalinglab.values import as_table

_FILE = re.compile(r"^(?P<size>[0-9.]+[MBK])-(?P<mult>[0-9.]+)xC(?P<rerun>-rerun)?$")
#: the ladder paper's tasks: (bpb columns, accuracy columns); several columns are averaged
#: (MMLU: its four category splits, unweighted)
TASKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mmlu": (tuple(f"eval/downstream_bpb/mmlu_{c}_test_rc_5shot_bpb"
                   for c in ("stem", "humanities", "social_sciences", "other")),
             tuple(f"eval/downstream/mmlu_{c}_test_rc_5shot_len_norm"
                   for c in ("stem", "humanities", "social_sciences", "other"))),
    "hellaswag": (("eval/downstream_bpb/hellaswag_val_rc_5shot_bpb",),
                  ("eval/downstream/hellaswag_val_rc_5shot_len_norm",)),
    "piqa": (("eval/downstream_bpb/piqa_val_rc_5shot_bpb",),
             ("eval/downstream/piqa_val_rc_5shot_len_norm",)),
    "arc_challenge": (("eval/downstream_bpb/arc_challenge_test_rc_5shot_bpb",),
                      ("eval/downstream/arc_challenge_test_rc_5shot_len_norm",)),
    "arc_easy": (("eval/downstream_bpb/arc_easy_test_rc_5shot_bpb",),
                 ("eval/downstream/arc_easy_test_rc_5shot_len_norm",)),
    "winogrande": (("eval/downstream_bpb/winogrande_val_rc_5shot_bpb",),
                   ("eval/downstream/winogrande_val_rc_5shot_len_norm",)),
    "openbookqa": (("eval/downstream_bpb/openbookqa_test_rc_5shot_bpb",),
                   ("eval/downstream/openbookqa_test_rc_5shot_len_norm",)),
    "csqa": (("eval/downstream_bpb/csqa_val_rc_5shot_bpb",),
             ("eval/downstream/csqa_val_rc_5shot_len_norm",)),
    "socialiqa": (("eval/downstream_bpb/socialiqa_val_rc_5shot_bpb",),
                  ("eval/downstream/socialiqa_val_rc_5shot_len_norm",)),
    "boolq": (("eval/downstream_bpb/boolq_val_rc_5shot_bpb",),
              ("eval/downstream/boolq_val_rc_5shot_acc",)),
}
#: the released ladder's learning rate of each checkpoint (step 1's schedule-stage term)
LR_COLUMN = "optim/learning_rate_group0"
#: step 1 on every checkpoint: the Chinchilla law plus the schedule-stage term
STAGE_FORMULA = "E + A*N**-alpha + B*D**-beta + G*(lr_stage - 1)"
_LABELS = {"1B": "1.3B"}  # file names' sizes -> final.json's keys
#: MMLU's four category splits are averaged weighted by their share of the test questions
#: (STEM 3,018, humanities 4,705, social sciences 3,077, other 3,242 of 14,042), as the ladder
#: paper does: an unweighted mean over-weights STEM, the noisiest split
_MMLU_SHARE = {"stem": 0.215, "humanities": 0.335, "social_sciences": 0.219, "other": 0.231}
WEIGHTS: dict[str, float] = {
    f"eval/{kind}/mmlu_{c}_{split}_rc_5shot_{suffix}": w
    for c, w in _MMLU_SHARE.items() for split in ("val", "test")
    for kind, suffix in (("downstream_bpb", "bpb"), ("downstream", "len_norm"))}


def _size_value(text: str) -> float:
    return float(text[:-1]) * {"K": 1e3, "M": 1e6, "B": 1e9}[text[-1]]


def read_ladder(folder: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Every checkpoint of every ladder run in ``folder``: a long frame with ``run``, ``size``,
    ``mult``, ``rerun``, ``step``, ``N``, ``D``, ``listed`` (the run is among ``final.json``'s
    fitted ("train") paths: the paper's own ladder) and the files' metric columns; and notes."""
    folder = Path(folder)
    files = sorted(p for p in folder.glob("*.csv") if _FILE.match(p.stem))
    if not files:
        raise InputError("no ladder runs ({size}-{k}xC.csv) here", source=str(folder))
    sizes: dict[str, float] = {}
    listed: set[str] = set()
    meta = folder / "final.json"
    if meta.exists():
        data = read_json(meta)  # bounded: size, depth, a regular file
        try:
            for key, spec in data.items():
                if isinstance(spec, Mapping) and "n" in spec:
                    sizes[str(key)] = float(spec["n"])
                if isinstance(spec, Mapping) and spec.get("mode", "train") == "train":
                    listed.update(Path(str(p)).stem for p in spec.get("paths", []))
        except (AttributeError, TypeError, ValueError) as exc:
            raise InputError(f"cannot read model sizes ({exc})", source=str(meta)) from None
    frames, notes = [], []
    derived: dict[str, float] = {}
    for path in files:
        m = _FILE.match(path.stem)
        assert m is not None
        df = pd.read_csv(path)
        for col in ("_step", "throughput/total_tokens"):
            if col not in df.columns:
                raise InputError(f"no column {col!r}", source=str(path))
        size = m["size"]
        df = df.sort_values("_step").reset_index(drop=True).rename(columns={"_step": "step"})
        head = pd.DataFrame({"run": path.stem, "size": size, "mult": float(m["mult"]),
                             "rerun": bool(m["rerun"]), "D": df["throughput/total_tokens"].astype(float)})
        df = pd.concat([head, df], axis=1)
        frames.append(df)
        if m["mult"] == "1" and not m["rerun"]:
            derived[size] = float(df["D"].iloc[-1]) / 20.0
    out = pd.concat(frames, ignore_index=True).copy()
    n_of: dict[str, float] = {}
    for size in out["size"].unique():
        key = _LABELS.get(size, size)
        if key in sizes:
            n_of[size] = sizes[key]
        elif size in derived:
            n_of[size] = derived[size]
            notes.append(f"N of {size} = {derived[size]:.4g}: its 1xC run's tokens / 20 "
                         "(not in final.json)")
        else:
            n_of[size] = _size_value(size)
            notes.append(f"N of {size} read from its name")
    out["N"] = out["size"].map(n_of).astype(float)
    # the runs the paper's configuration fits on (1-10xC, first seed; not 0.5xC nor reruns)
    out["listed"] = out["run"].isin(listed)
    return out, notes


def task_columns(frame: pd.DataFrame, task: str | tuple[Sequence[str], Sequence[str]]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The task's bpb and accuracy per row (means of its columns, weighted by :data:`WEIGHTS`:
    MMLU's categories by their share of questions, every other column 1)."""
    if isinstance(task, str):
        if task not in TASKS:
            raise ParameterError(f"unknown task {task!r}; known: {sorted(TASKS)} (or give "
                                 "(bpb columns, accuracy columns))", "task")
        bpb_cols, acc_cols = TASKS[task]
    else:
        bpb_cols, acc_cols = task
    missing = [c for c in (*bpb_cols, *acc_cols) if c not in frame.columns]
    if missing:
        raise ParameterError(f"the ladder has no column(s) {missing}", "task")
    def mean(cols: Sequence[str]) -> np.ndarray:
        w = np.array([WEIGHTS.get(c, 1.0) for c in cols])
        return frame[list(cols)].astype(float).to_numpy() @ (w / w.sum())

    return mean(bpb_cols), mean(acc_cols)


def moving_average(values: np.ndarray, runs: np.ndarray, window: int) -> np.ndarray:
    """A trailing moving average of ``window`` checkpoints within each run (rows in step order)."""
    out = np.array(values, dtype=float)
    if window <= 1:
        return out
    for r in pd.unique(runs):
        idx = np.flatnonzero(runs == r)
        s = pd.Series(values[idx]).rolling(window, min_periods=1).mean().to_numpy()
        out[idx] = s
    return out


def predictability(values: np.ndarray, runs: np.ndarray, n_last: int = 10) -> float:
    """Median over runs of the detrended standard deviation of the last ``n_last`` checkpoints,
    relative to their mean (see the module docstring)."""
    rel = []
    for r in pd.unique(runs):
        v = np.asarray(values[runs == r], dtype=float)[-n_last:]
        v = v[np.isfinite(v)]
        if len(v) < 4 or not np.mean(v):
            continue
        t = np.arange(len(v), dtype=float)
        resid = v - np.polyval(np.polyfit(t, v, 1), t)
        rel.append(float(np.std(resid, ddof=2) / abs(np.mean(v))))
    return float(np.median(rel)) if rel else float("nan")


def model_scatter(residuals: Any, models: Sequence[Any] | None = None, *, last: bool = True) -> float:
    """Standard deviation (ddof = 1) of a link's residuals across models.

    ``models`` labels each residual (checkpoints of one model share a label): each model
    contributes one residual, its last (``last=True``; points in training order) or its mean.
    Without labels every residual is a model. NaN with fewer than 2 models.
    """
    r = np.asarray(residuals, dtype=float).ravel()
    if models is not None:
        labels = list(models)
        if len(labels) != len(r):
            raise ParameterError(f"{len(labels)} model labels for {len(r)} residuals", "models")
        per: dict[Any, list[float]] = {}
        for lab, v in zip(labels, r, strict=True):
            if np.isfinite(v):
                per.setdefault(lab, []).append(float(v))
        r = np.array([vs[-1] if last else float(np.mean(vs)) for vs in per.values()])
    r = r[np.isfinite(r)]
    return float(np.std(r, ddof=1)) if len(r) >= 2 else float("nan")


def _thin(runs: np.ndarray, per_run: int) -> np.ndarray:
    """Rows kept when each run keeps at most ``per_run`` evenly spaced rows (its last included)."""
    keep = np.zeros(len(runs), dtype=bool)
    for r in pd.unique(runs):
        idx = np.flatnonzero(runs == r)
        pick = np.unique(np.round(np.linspace(len(idx) - 1, 0, min(per_run, len(idx)))).astype(int))
        keep[idx[pick]] = True
    return keep


def lr_stage(frame: pd.DataFrame, lr_column: str = LR_COLUMN) -> np.ndarray:
    """Per row of ``frame`` (runs' checkpoints in step order): ``1 + (lr - lr_end) / lr_peak``,
    the share of the peak learning rate still to be decayed, plus 1 (the engine's inputs are
    positive): 1 at each run's last checkpoint."""
    lr = frame[lr_column].to_numpy(float)
    by = frame.groupby("run", sort=False)[lr_column]
    peak, end = by.transform("max").to_numpy(float), by.transform("last").to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 + (lr - end) / peak


def _stage_law() -> Any:
    """The Chinchilla law with the schedule-stage term, Chinchilla's bounds, G free in sign."""
    from scalinglab.laws.base import Law
    from scalinglab.laws.registry import get_law

    bounds = {**get_law("chinchilla").bounds, "G": (-10.0, 10.0)}
    return Law.from_formula(STAGE_FORMULA, inputs=("N", "D", "lr_stage"), name="chinchilla_lr_stage",
                            bounds=bounds)


#: resamples warm-fitted first, to decide whether warm fits are worth it (see :func:`_run_bootstrap`)
_WARM_PROBE = 5


def _run_bootstrap(law: Any, runs: pd.DataFrame, counts: np.ndarray, found: PointFit, *, seed: int,
                   level: float) -> np.ndarray:
    """Step 1's draws, one per row of ``counts`` (each checkpoint's multiplicity in a resample of
    whole runs): each resample's best fit over the law's full grid of starts. ``found`` is the
    estimate's search on all of ``runs`` (``fit_law(..., searched=...)``): the warm starts and
    rival basins come from it, so the grid search is not run a second time.

    The resamples' objectives have several basins along the E-A-alpha valley (three sizes pin
    the N term weakly), so a warm start alone is not enough: from the estimate, the refits that
    the engine flags (not converged or outlying) ended up to 20% above the grid
    search's optimum (82 of 100 HellaSwag resamples on the OLMo ladder). Those are refitted by
    the full grid search, as every resample was before; the others, warm fits that converged
    in the estimate's basin, equal the grid search's draws to 1.5e-5 (relative, every parameter
    of every draw) where the estimate itself converged, as it does on the four judged tasks
    (190M-1B, 1-10xC). It does not hold where the estimate's polish stopped at its iteration
    cap instead: PIQA's and HellaSwag's on 190M-1B with every run (the 0.5xC runs and reruns
    in), along a valley towards E = 0 (E at 0.035 and 0.041), where a PIQA warm draw had
    stopped 2.8e-5 above its resample's grid optimum. There no resample is warm-fitted: every
    one goes to the grid search. Elsewhere resamples are warm-fitted in one
    batch (:func:`scalinglab.fit.search.bootstrap`, without its own multi-start for the
    suspects) after a first ``_WARM_PROBE`` show that most converge. Step 1's bootstrap of 100 on the
    190M-1B rungs (1-10xC): MMLU 4 CPU s (was 21), PIQA 13 (20), HellaSwag 30 (30), ARC-C 1 (16)."""
    from scalinglab.fit.loss import natural_params
    from scalinglab.fit.objective import ObjectiveSpec, make_estimator
    from scalinglab.fit.optimize import MAX_ITER
    from scalinglab.fit.search import bootstrap as warm_bootstrap

    inputs = {k: runs[k].to_numpy(float) for k in law.inputs}
    y = runs["loss"].to_numpy(float)
    model = law.log_model(inputs)
    spec = ObjectiveSpec(make_estimator("huber"))
    draws = np.full((len(counts), len(law.param_names)), np.nan)
    refit = np.ones(len(counts), dtype=bool)
    # warm fits pay only where most converge: a first block of resamples decides. On the OLMo
    # ladder 8-36% of MMLU/PIQA/ARC-C resamples needed the grid search but 82% of HellaSwag's and
    # every one on 190M-1B with the 0.5xC runs and reruns in, whose warm fits (300 iterations
    # each before they count as stalled) cost more than the grid searches they did not replace.
    # No block at all where the estimate's own polish ran out of iterations (1,000: its optimum
    # runs off along a valley towards a bound): warm fits from it, allowed 300, stall too. On
    # 190M-1B with every run that is PIQA's and HellaSwag's estimate, and 19 of their first 20
    # warm fits stalled (the one that converged lost to its stalled rival basin): the probe cost
    # 2.1 CPU s each for no draw, with -b 10 a third of the bootstrap. Every estimate the
    # judged fits make (1-10xC, 190M-1B) converges
    warm_ok = np.isfinite(found.f) and found.status != MAX_ITER
    probe = min(_WARM_PROBE, len(counts))
    for part in (slice(0, probe), slice(probe, len(counts))) if warm_ok else ():
        if part.start == part.stop:
            break
        warm = warm_bootstrap(model, y, found, part.stop - part.start, np.random.default_rng(seed), spec=spec,
                              counts=counts[part], audit=0, refit_suspects=False)
        draws[part] = natural_params(model, warm.theta)
        refit[part] = warm.refit | ~np.all(np.isfinite(draws[part]), axis=1)
        if refit[part].mean() > 0.5:  # after the probe: the rest go to the grid search
            break
    for b in np.flatnonzero(refit):
        take = counts[b] > 0
        try:
            fit_b = fit_law(law, runs[take].reset_index(drop=True), bootstrap=0, seed=seed,
                            weights=counts[b][take].astype(float), level=level)
        except (ScalingLabError, ArithmeticError):
            draws[b] = np.nan  # a resample the law cannot be fitted to counts as a failed draw
            continue
        draws[b] = [fit_b.params[k] for k in law.param_names]
    return draws


def _fit_step1_checkpoints(frame: pd.DataFrame, bpb: np.ndarray, late: np.ndarray, window: int,
                           *, lr_column: str, bootstrap: int, seed: int, level: float, source: str
                           ) -> FitResult:
    """Step 1 on every checkpoint in ``late`` (finite bpb and learning rate), with the
    schedule-stage term; bootstrap draws resample whole runs within each size (a run's
    checkpoints share its noise); the new-run noise is each run's final bpb (mean of its last ``window`` checkpoints) off the law's mean there."""
    stage = lr_stage(frame, lr_column)
    rows = late & np.isfinite(bpb) & np.isfinite(stage) & (frame["D"].to_numpy(float) > 0)
    sub = frame[rows]
    runs = pd.DataFrame({"N": sub["N"].to_numpy(float), "D": sub["D"].to_numpy(float),
                         "lr_stage": stage[rows], "loss": bpb[rows],
                         "run_id": (sub["run"].astype(str) + "@" + sub["step"].astype(str)).to_numpy()})
    law = _stage_law()
    # the estimate's search, kept for the bootstrap's warm starts (it cost as much as the rest
    # of the estimate: 0.66 of 0.75 CPU s for HellaSwag on 190M-1B with every run)
    found: list[PointFit] = []
    point = fit_law(law, runs, bootstrap=0, seed=seed, level=level, source=source, searched=found.append)
    names = list(pd.unique(sub["run"]))
    unit = pd.Categorical(sub["run"], categories=names).codes
    draws = None
    if bootstrap > 0:
        # runs resampled within each size: every resample keeps the ladder's rungs (with 3 sizes a
        # plain resample often drops one, and N is then not identified)
        size_of = sub.groupby("run", sort=False)["N"].first().loc[names].to_numpy()
        counts = bootstrap_weights(len(names), bootstrap, np.random.default_rng(seed), strata=size_of)
        draws = _run_bootstrap(law, runs, counts[:, unit], found[0], seed=seed, level=level)
    # run-to-run noise of log bpb: each run's final bpb (the mean of its last `window` checkpoints,
    # as the target is read) off the law's mean over the same checkpoints, ddof 1 (the
    # checkpoints' own scatter is not a new model's noise)
    fitted = np.asarray(point.predict(**{k: runs[k].to_numpy() for k in law.inputs}), float)
    ends = pd.DataFrame({"run": sub["run"].to_numpy(), "y": runs["loss"].to_numpy(), "f": fitted}
                        ).groupby("run", sort=False).tail(window).groupby("run", sort=False).mean()
    r = np.log(ends["y"].to_numpy()) - np.log(ends["f"].to_numpy())
    # times sqrt((n - p) / n) to cancel the sqrt(n / (n - p)) that FitResult.noise_std applies
    # (its correction for p parameters fitted to n points): this std over runs needs none
    n, p = len(point.run_ids), len(law.param_names)
    resid = float(np.sqrt(np.sum(r ** 2) / max(len(r) - 1, 1)) * np.sqrt((n - p) / n)) if len(r) > 1 else float("nan")
    notes = [*point.notes, f"step 1 on {len(runs)} checkpoints of {len(names)} runs, D the tokens seen, "
             "with a term for the schedule's stage (lr_stage = 1 + (lr - lr_end)/lr_peak, 1 at the end); "
             f"bootstrap over whole runs within each size; run-to-run noise from the {len(r)} runs' "
             f"final bpb (mean of the last {window} checkpoints)"]
    fit = replace(point, draws=draws, residual_std=resid, notes=notes)
    if draws is None:
        return fit
    # the engine's identifiability rule (what `fit law` applies to its own draws), on these
    # draws: the point fit had none, so its checks saw the estimate only, and E's interval on
    # MMLU's 190M-1B rungs ([1e-33, 0.70], 32 decades) went without a word
    from scalinglab.fit.loss import checked_on_draws

    return checked_on_draws(fit, draws, law.param_names)


def bounded_sigmoid(ceiling: float) -> LinkForm:
    """The sigmoid link with its floor and ceiling held inside ``[0, ceiling]``, as the ladder
    paper's fit bounds them (its ``a / (1 + exp(-k (x - x0))) + b`` with ``b`` in [0, 1] and
    ``a`` in [-1, 0]): an accuracy cannot exceed the task's maximum. Unbounded, the OLMo ladder's
    MMLU link reached a ceiling of 1.055, an accuracy no model can have."""
    # declared limits of an accuracy, not search limits: a floor or ceiling the fit leaves at
    # them is held there (MMLU's ceiling at 1 on the OLMo ladder), not "not identified"
    return SIGMOID_LINK.with_limits({"lo": (0.0, ceiling), "hi": (0.0, ceiling)})


@dataclass(repr=False)
class LadderFit(Result):
    """Both steps of the ladder for one task, the link's scatter and the task's noise."""

    kind: ClassVar[str] = "ladder_fit"

    task: str
    step1: FitResult
    step2: LinkFit
    scatter: float
    variability: float
    predictable: bool
    threshold: float
    window: int
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seed: int = 0

    def _new_model_link(self) -> LinkFit:
        """The link with the ladder's per-model scatter as its residual spread (what
        :func:`~scalinglab.downstream.chain.new_model_draws` adds to each draw)."""
        return replace(self.step2, residual_std=self.scatter)

    def predict(self, N: Any, D: Any, *, scatter: bool = True) -> pd.DataFrame:
        """At each ``(N, D)``: ``bpb`` (step 1, ``bpb_lo``/``bpb_hi``: the law's curve), ``acc``
        chained through the link with its joint interval (``acc_lo``/``acc_hi``: step-1 draws
        paired with link draws; with ``scatter``, for a new model: each pair also spread by step
        1's run-to-run noise and the link's model-to-model scatter)."""
        from scalinglab.downstream.chain import _pairing, loss_at, new_model_draws

        n, d = np.broadcast_arrays(np.atleast_1d(np.asarray(N, float)), np.atleast_1d(np.asarray(D, float)))
        # a law fitted on every checkpoint is read at the end of the schedule (lr_stage 1)
        bpb, bpb_draws = loss_at(self.step1, n.astype(float), d.astype(float), {"lr_stage": np.ones(n.shape)})
        acc = np.atleast_1d(self.step2.predict(bpb))
        out = pd.DataFrame({"N": n, "D": d, "bpb": bpb, "bpb_lo": np.nan, "bpb_hi": np.nan,
                            "acc": acc, "acc_lo": np.nan, "acc_hi": np.nan})
        rng = np.random.default_rng(self.seed)
        k_link = 0 if self.step2.draws is None else len(self.step2.draws)
        if bpb_draws is not None:
            out["bpb_lo"], out["bpb_hi"] = percentile_interval(bpb_draws, self.level)
        rows = None
        if bpb_draws is not None and k_link:
            li, ki = _pairing(len(bpb_draws), k_link, rng)
            losses, rows = bpb_draws[li], self.step2.draws[ki]
        elif k_link:
            losses, rows = np.repeat(bpb[None, :], k_link, axis=0), self.step2.draws
        elif bpb_draws is not None:
            losses = bpb_draws
        else:
            losses = bpb[None, :]
        if scatter:
            joint = new_model_draws(self._new_model_link(), losses, rows, self.step1.noise_std, rng)
        elif rows is not None:
            joint = self.step2.form.evaluate(rows, {self.step2.form.law.inputs[0]: losses})
            joint[~np.all(np.isfinite(rows), axis=1)] = np.nan
        else:
            joint = np.atleast_2d(self.step2.predict_draws(losses)) if k_link else None
        if joint is not None and len(joint) > 1:
            out["acc_lo"], out["acc_hi"] = percentile_interval(joint, self.level)
        return out

    def predict_step2(self, bpb: Any, *, scatter: bool = True) -> pd.DataFrame:
        """Step 2 alone: accuracy at a known task loss, with the link's interval (plus, with
        ``scatter``, the model-to-model scatter)."""
        from scalinglab.downstream.chain import new_model_draws

        x = np.atleast_1d(np.asarray(bpb, float))
        acc = np.atleast_1d(self.step2.predict(x))
        out = pd.DataFrame({"bpb": x, "acc": acc, "acc_lo": np.nan, "acc_hi": np.nan})
        if self.step2.draws is None or not len(self.step2.draws):
            return out
        rows = self.step2.draws
        if scatter:
            draws = new_model_draws(self._new_model_link(), np.repeat(x[None, :], len(rows), axis=0),
                                    rows, float("nan"), np.random.default_rng(self.seed))
        else:
            draws = self.step2.predict_draws(x)
        out["acc_lo"], out["acc_hi"] = percentile_interval(draws, self.level)
        return out

    def _repr_items(self) -> list[str]:
        return [self.task, "predictable" if self.predictable else "too noisy to predict"]

    def _interval_parts(self) -> dict[str, Result]:
        return {"step1": self.step1, "step2": self.step2}

    def summary(self) -> Summary:
        stage = " + G (lr_stage - 1)" if "lr_stage" in self.step1.law.inputs else ""
        t1 = Table(f"step 1: bpb = E + A N^-alpha + B D^-beta{stage}", list(self.step1.params))
        est = self.step1.estimates()
        t1.add_row(*(est[k] for k in self.step1.params))
        t2 = Table("step 2: acc = lo + (hi - lo) / (1 + exp(-s (bpb - x0)))", list(self.step2.params))
        e2 = self.step2.param_estimates()
        t2.add_row(*(e2[k] for k in self.step2.params))
        facts = [("task", self.task), ("link scatter across models (accuracy sd)", f"{self.scatter:.3g}"),
                 ("checkpoint-to-checkpoint variability (relative sd)", f"{self.variability:.3g}"),
                 ("predictable", f"{'yes' if self.predictable else 'no'} (threshold {self.threshold:g})"),
                 ("moving average", f"{self.window} checkpoints")]
        return Summary(title=f"model ladder: {self.task}", tables=[t1, t2], facts=facts,
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        return {"kind": self.kind, "task": self.task,
                "step1": self.step1.to_dict(include_draws=include_draws),
                "step2": self.step2.to_dict(include_draws=include_draws),
                "scatter": self.scatter, "variability": self.variability,
                "predictable": self.predictable, "threshold": self.threshold, "window": self.window,
                "run_ids": list(self.run_ids), "level": self.level, "seed": self.seed,
                "warnings": list(self.warnings), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LadderFit:
        return cls(task=str(data["task"]), step1=FitResult.from_dict(data["step1"]),
                   step2=LinkFit.from_dict(data["step2"]), scatter=float(data["scatter"]),
                   variability=float(data["variability"]), predictable=bool(data["predictable"]),
                   threshold=float(data["threshold"]), window=int(data["window"]),
                   run_ids=tuple(data.get("run_ids", [])), level=float(data.get("level", 0.95)),
                   seed=int(data.get("seed", 0)), warnings=list(data.get("warnings", [])),
                   notes=list(data.get("notes", [])))


def fit_ladder(
    ladder: pd.DataFrame,
    task: str | tuple[Sequence[str], Sequence[str]],
    *,
    window: int = 5,
    n_last: int = 10,
    threshold: float = 0.02,
    points_per_run: int | None = None,
    skip: float = 0.1,
    anchor: tuple[float, float] | None = (0.0, 1.0),
    ceiling: float | None = 1.0,
    law: str = "chinchilla",
    step1: str = "checkpoints",
    lr_column: str = LR_COLUMN,
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> LadderFit:
    """Fit both steps of the ladder for ``task`` on the runs of ``ladder`` (:func:`read_ladder`'s
    frame, filtered to the rungs to fit on). ``window``: checkpoints in step 2's moving average;
    ``n_last``/``threshold``: the predictability flag (see the module docstring);
    ``points_per_run``: at most this many smoothed checkpoints per run in step 2, evenly spaced,
    the last always among them; None (the default, the paper's) keeps every checkpoint, so a run
    weighs as many checkpoints as it has (thinning to 25 per run weighs runs equally instead: on
    the OLMo ladder it moved MMLU's step-2 error on the 3B rung from 1.10% to 2.00%);
    ``ceiling``: step 2's floor and ceiling are held inside [0, ceiling] (the paper's bounds;
    None leaves them free); ``step1``: ``"checkpoints"`` (every checkpoint after the first
    ``skip`` of each run, with the schedule-stage term read from ``lr_column``; see the module
    docstring) or ``"final"`` (the paper's: one point per run). ``"checkpoints"`` needs the
    Chinchilla ``law`` and a learning-rate column; without them step 1 uses final checkpoints,
    with a note.

    As the ladder paper's protocol (``step1="final"``): step 1's bpb for a run is the mean of its last ``window``
    checkpoints (one checkpoint's bpb carries its evaluation noise into a fit on ~20 points);
    step 2 leaves out each run's first ``skip`` fraction of checkpoints (early training, where
    accuracy sits at chance whatever the loss, is not on the curve the big model follows) and
    adds ``anchor`` = (bpb, accuracy) = (0, task maximum), a point every bootstrap resample
    keeps (a model that assigns the correct answers all probability scores the maximum);
    ``anchor=None`` leaves it out."""
    ladder = as_table(ladder, "ladder")
    if (window < 1 or n_last < 4 or not threshold > 0 or (points_per_run is not None and points_per_run < 2)
            or not 0 <= skip < 1 or (ceiling is not None and not ceiling > 0)
            or step1 not in ("checkpoints", "final")):
        raise ParameterError("window must be >= 1, n_last >= 4, threshold > 0, "
                             "points_per_run >= 2 (or None), 0 <= skip < 1, ceiling > 0 and step1 "
                             "'checkpoints' or 'final'",
                             "window", "n_last", "threshold", "points_per_run", "skip", "ceiling", "step1")
    frame = ladder.sort_values(["run", "step"]).reset_index(drop=True)
    bpb, acc = task_columns(frame, task)
    name = task if isinstance(task, str) else "custom"
    runs = frame["run"].to_numpy()
    ok = np.isfinite(bpb) & np.isfinite(acc)
    notes: list[str] = []
    # step 1: final checkpoints, one point per run (reruns are separate points at the same N, D),
    # its bpb the mean of the run's last `window` checkpoints
    good = frame[ok].assign(_bpb=bpb[ok])
    last = good.groupby("run").tail(1).index.to_numpy()
    final_bpb = good.groupby("run")["_bpb"].apply(lambda v: float(v.tail(window).mean()))
    step1_runs = pd.DataFrame({"N": frame.loc[last, "N"].to_numpy(float),
                               "D": frame.loc[last, "D"].to_numpy(float),
                               "loss": final_bpb.loc[frame.loc[last, "run"]].to_numpy(float),
                               "run_id": frame.loc[last, "run"].to_numpy()})
    # every checkpoint after the first `skip` of each run (step 2, and step 1 on checkpoints)
    late = np.zeros(len(frame), dtype=bool)
    for r in pd.unique(runs):
        idx = np.flatnonzero((runs == r) & ok)
        late[idx[int(np.ceil(skip * len(idx))):]] = True
    on_checkpoints = step1 == "checkpoints"
    if on_checkpoints and (law != "chinchilla" or lr_column not in frame.columns
                           or not np.isfinite(frame.loc[late, lr_column].astype(float)).any()):
        notes.append(f"step 1 on final checkpoints: {'no learning-rate column ' + repr(lr_column) if law == 'chinchilla' else 'the schedule-stage term extends the Chinchilla law only'}"
                     " (the schedule's stage is needed to use every checkpoint)")
        on_checkpoints = False
    if on_checkpoints:
        fit1 = _fit_step1_checkpoints(frame, bpb, late, window, lr_column=lr_column, bootstrap=bootstrap,
                                      seed=seed, level=level, source=f"ladder checkpoints ({name} bpb)")
    else:
        fit1 = fit_law(law, step1_runs, bootstrap=bootstrap, seed=seed, level=level,
                       source=f"ladder final checkpoints ({name} bpb)")
    # step 2: the late checkpoints smoothed along the run, bootstrapped by run
    sm_bpb = moving_average(np.where(late, bpb, np.nan)[late], runs[late], window)
    sm_acc = moving_average(np.where(late, acc, np.nan)[late], runs[late], window)
    runs2, steps2 = runs[late], frame["step"].to_numpy()[late]
    keep = np.isfinite(sm_bpb) & np.isfinite(sm_acc)
    if points_per_run is not None:
        keep &= _thin(runs2, points_per_run)
    xs, ys = sm_bpb[keep], sm_acc[keep]
    units = runs2[keep].astype(object)
    ids = [f"{r}@{s}" for r, s in zip(runs2[keep], steps2[keep], strict=True)]
    fixed_rows = np.zeros(len(xs), dtype=bool)
    if anchor is not None:
        xs, ys = np.append(xs, float(anchor[0])), np.append(ys, float(anchor[1]))
        units = np.append(units, "(anchor)")
        ids.append("(anchor)")
        fixed_rows = np.append(fixed_rows, True)
    form = SIGMOID_LINK if ceiling is None else bounded_sigmoid(ceiling)
    step2 = fit_link(xs, ys, form, metric=f"{name} accuracy", x_name=f"{name} bpb",
                     bootstrap=bootstrap, seed=seed, cluster=units, run_ids=ids, level=level,
                     always=fixed_rows)
    # the link's scatter across models: each run's last smoothed point off the curve
    resid = sm_acc[keep] - np.atleast_1d(step2.predict(sm_bpb[keep]))
    scatter = model_scatter(resid, list(runs2[keep]))
    # predictability: checkpoint-to-checkpoint variability of the largest model's runs
    big = frame["N"].to_numpy() == frame["N"].max()
    variability = predictability(np.where(ok, acc, np.nan)[big], runs[big], n_last)
    predictable = bool(np.isfinite(variability) and variability <= threshold)
    warns = [f"step 1: {w}" for w in fit1.warnings] + [f"step 2: {w}" for w in step2.warnings]
    if not predictable:
        warns.append(f"{name}: accuracy varies by {variability:.1%} (relative sd) between the last "
                     f"{n_last} checkpoints of the largest runs, above {threshold:.0%}: predictions "
                     "cannot be more precise than that")
    notes.append((f"step 1 on every checkpoint of {len(step1_runs)} runs (after the first {skip:.0%})"
                  if on_checkpoints else
                  f"step 1 on {len(step1_runs)} final checkpoints (mean of each run's last {window})") + "; "
                 f"step 2 on {int(keep.sum())} checkpoints of {len(pd.unique(runs2[keep]))} runs "
                 f"(first {skip:.0%} of each run left out, moving average of {window})"
                 + ("" if anchor is None else f", anchored at bpb {anchor[0]:g} -> {anchor[1]:g}"))
    return LadderFit(task=name, step1=fit1, step2=step2, scatter=scatter, variability=variability,
                     predictable=predictable, threshold=threshold, window=window,
                     run_ids=tuple(pd.unique(runs)), level=level, warnings=warns, notes=notes,
                     seed=seed)


__all__ = ["TASKS", "LadderFit", "bounded_sigmoid", "fit_ladder", "model_scatter", "moving_average", "predictability",
           "read_ladder", "task_columns"]
