"""Ruan et al. 2024's observational scaling: a benchmark predicted from a few capability scores.

For a target benchmark and the models' other benchmark scores:

1. the other benchmarks' accuracies (holes imputed) are reduced to ``k`` principal components,
   the capability scores ``S`` (fitted on the training models only);
2. the target is a sigmoid of a linear index of the scores between a floor and a ceiling,
   ``y = lo + (hi - lo) sigmoid(alpha + beta . S)`` (the floor at chance level, the ceiling 1);
3. within each model family, each score is log-linear in compute with a shared slope and a
   family offset, ``S_j = w_j log10 C + b_(j, family)``; the offset of the first score, divided
   by its slope, is the family's compute efficiency: how many decades of compute it is ahead of
   (or behind) the reference family at the same capability.

The target is left out of the components (a benchmark cannot help predict itself). With
``fit_below=C`` the models at or below C FLOPs are fitted and the larger ones are scored two
ways: from their observed other benchmarks (the observational prediction), and from their
compute alone through their family's offset (for families seen in training); a plain sigmoid
in log-compute fitted on the same models is the baseline. The bootstrap resamples training
models and redoes the components, the link and the family regression for each resample, so the
intervals carry the uncertainty of the axes too; differences of mean absolute error against
the baseline are paired draw by draw (the baseline uses the same resamples).

The imputation is done once, on all training models, not per resample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from scalinglab.downstream.benchmark import (
    BenchmarkFit,
    fit_benchmark,
    held_out_scores,
    split_by_compute,
)
from scalinglab.downstream.curvefit import batched_lm
from scalinglab.downstream.links import fit_form, sigmoid_in_scores
from scalinglab.downstream.pca import Components, fit_components, fit_imputer
from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.results import Result
from scalinglab.stats import Estimate, bootstrap_weights, percentile_interval
from scalinglab.summary import Summary, Table, format_number


@dataclass(frozen=True)
class FamilyFit:
    """``S_j = slope_j log10 C + offset[family]_j`` (shared slopes, per-family offsets)."""

    families: tuple[str, ...]
    slope: np.ndarray  # (k,)
    offset: np.ndarray  # (n_families, k)

    def predict(self, logC: np.ndarray, family: Sequence[str]) -> np.ndarray:
        """Scores from compute (NaN for families not fitted)."""
        index = {f: i for i, f in enumerate(self.families)}
        out = np.full((len(logC), len(self.slope)), np.nan)
        for r, (x, fam) in enumerate(zip(logC, family, strict=True)):
            if fam in index:
                out[r] = self.slope * x + self.offset[index[fam]]
        return out


def fit_family(S: np.ndarray, logC: np.ndarray, family: np.ndarray,
               weights: np.ndarray | None = None) -> FamilyFit:
    """Weighted least squares of every score on log-compute with one intercept per family.

    Families with zero total weight (absent from a resample) get NaN offsets."""
    w = np.ones(len(logC)) if weights is None else np.asarray(weights, dtype=float)
    fams = tuple(sorted(set(family.tolist())))
    onehot = (family[:, None] == np.array(fams, dtype=object)[None, :]).astype(float)
    present = (onehot * w[:, None]).sum(axis=0) > 0
    design = np.column_stack([logC, onehot[:, present]])
    sw = np.sqrt(w)[:, None]
    coef = np.linalg.lstsq(design * sw, S * sw, rcond=None)[0]
    offset = np.full((len(fams), S.shape[1]), np.nan)
    offset[present] = coef[1:]
    return FamilyFit(families=fams, slope=coef[0], offset=offset)


@dataclass(repr=False)
class ObservationalFit(Result):
    """Ruan et al.'s observational fit of one ``target`` benchmark (see the module docstring)."""

    kind: ClassVar[str] = "observational_fit"

    target: str
    predictors: tuple[str, ...]
    n_components: int
    explained: list[Estimate]
    loadings: np.ndarray
    link_params: dict[str, float]
    link_ci: dict[str, tuple[float, float]]
    families: dict[str, Estimate]
    reference_family: str | None
    slope: Estimate | None
    fit_below: float | None
    test: list[dict[str, Any]]
    mae_scores: Estimate | None
    mae_compute: Estimate | None
    mae_baseline: Estimate | None
    mae_baseline_compute: Estimate | None
    gain: Estimate | None
    baseline: BenchmarkFit | None
    #: models outside the fitted and held-out sets that the scores still predict: those
    #: without a compute value ("no FLOPs") and those without a target score ("no score")
    unplaced: list[dict[str, Any]] = field(default_factory=list)
    mae_unplaced: Estimate | None = None
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the link parameters held at given values (the chance floor ``lo``, the ceiling ``hi``)
    link_fixed: tuple[str, ...] = ()

    @property
    def heldout_ids(self) -> tuple[str, ...]:
        return tuple(str(r["id"]) for r in self.test)

    def _repr_items(self) -> list[str]:
        items = [f"{self.target} from {self.n_components} PCs of {len(self.predictors)} benchmarks"]
        if self.mae_scores is not None:
            items.append(f"held-out MAE {self.mae_scores:.3g} (baseline {self.mae_baseline:.3g})")
        return items

    def summary(self) -> Summary:
        pcs = Table("capability scores (principal components of the other benchmarks)",
                    ["component", "share of variance", *self.predictors])
        for j in range(self.n_components):
            pcs.add_row(f"S{j + 1}", self.explained[j], *self.loadings[:, j].tolist())
        link = Table(f"{self.target} = lo + (hi - lo) sigmoid(alpha + beta . S)", ["parameter", "estimate"])
        for name, v in self.link_params.items():
            ci = self.link_ci.get(name)
            link.add_row(name, Estimate.held(v, level=self.level) if name in self.link_fixed else
                         Estimate(v, None if ci is None else ci[0], None if ci is None else ci[1], self.level))
        tables = [pcs, link]
        if self.families:
            ft = Table(f"compute efficiency vs {self.reference_family} (decades of FLOPs at equal S1)",
                       ["family", "offset"])
            for fam, est in self.families.items():
                ft.add_row(fam, est)
            tables.append(ft)
        if self.test:
            tt = Table(f"held-out models (above {format_number(self.fit_below)} FLOPs)",
                       ["model", "family", "C", "actual", "from scores", "from compute", "sigmoid(log C)"])
            for r in self.test:
                tt.add_row(r["id"], r["family"], r["C"], r["actual"], r["from_scores"],
                           r["from_compute"], r["baseline"])
            tables.append(tt)
        if self.unplaced:
            ut = Table("models predicted from their other benchmarks alone (no FLOPs, or no "
                       f"{self.target} score)", ["model", "family", "why", "actual", "from scores"])
            for r in self.unplaced:
                ut.add_row(r["id"], r["family"], r["why"], r["actual"], r["from_scores"])
            tables.append(ut)
        facts = []
        if self.mae_unplaced is not None:
            facts.append(("MAE from scores, models without FLOPs", f"{self.mae_unplaced}"))
        if self.slope is not None:
            facts.append(("S1 per decade of compute (within a family)", f"{self.slope}"))
        for label, est in (("MAE from scores", self.mae_scores), ("MAE sigmoid(log C)", self.mae_baseline),
                           ("MAE from compute + family offset", self.mae_compute),
                           ("MAE sigmoid(log C), same models", self.mae_baseline_compute),
                           ("baseline MAE - observational MAE (paired draws)", self.gain)):
            if est is not None:
                facts.append((label, f"{est}"))
        return Summary(title=f"observational scaling: {self.target}", tables=tables, facts=facts,
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        def est(e: Estimate | None) -> Any:
            return None if e is None else e.to_dict()

        return {
            "kind": self.kind, "target": self.target, "predictors": list(self.predictors),
            "n_components": self.n_components, "explained": [e.to_dict() for e in self.explained],
            "loadings": self.loadings.tolist(), "link_params": dict(self.link_params),
            "link_ci": {k: list(v) for k, v in self.link_ci.items()}, "link_fixed": list(self.link_fixed),
            "families": {f: e.to_dict() for f, e in self.families.items()},
            "reference_family": self.reference_family, "slope": est(self.slope),
            "fit_below": self.fit_below,
            "test": [{**r, **{k: est(r[k]) for k in ("from_scores", "from_compute", "baseline")}}
                     for r in self.test],
            "mae_scores": est(self.mae_scores), "mae_compute": est(self.mae_compute),
            "mae_baseline": est(self.mae_baseline), "mae_baseline_compute": est(self.mae_baseline_compute),
            "mae_gain": est(self.gain),
            "unplaced": [{**r, "from_scores": est(r["from_scores"])} for r in self.unplaced],
            "mae_unplaced": est(self.mae_unplaced),
            "baseline": None if self.baseline is None else self.baseline.to_dict(include_draws),
            "run_ids": list(self.run_ids), "level": self.level,
            "warnings": list(self.warnings), "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObservationalFit:
        level = float(data.get("level", 0.95))

        def est(d: Any) -> Estimate | None:
            return None if d is None else Estimate.from_dict(d, level)

        return cls(
            target=str(data["target"]), predictors=tuple(data["predictors"]),
            n_components=int(data["n_components"]),
            explained=[Estimate.from_dict(e, level) for e in data["explained"]],
            loadings=np.asarray(data["loadings"], dtype=float),
            link_params={k: float(v) for k, v in data["link_params"].items()},
            link_ci={k: (float(v[0]), float(v[1])) for k, v in (data.get("link_ci") or {}).items()},
            link_fixed=tuple(str(k) for k in data.get("link_fixed") or ()),
            families={f: Estimate.from_dict(e, level) for f, e in (data.get("families") or {}).items()},
            reference_family=data.get("reference_family"), slope=est(data.get("slope")),
            fit_below=None if data.get("fit_below") is None else float(data["fit_below"]),
            test=[{**r, **{k: est(r.get(k)) for k in ("from_scores", "from_compute", "baseline")}}
                  for r in data.get("test", [])],
            mae_scores=est(data.get("mae_scores")), mae_compute=est(data.get("mae_compute")),
            mae_baseline=est(data.get("mae_baseline")),
            mae_baseline_compute=est(data.get("mae_baseline_compute")), gain=est(data.get("mae_gain")),
            baseline=None if data.get("baseline") is None else BenchmarkFit.from_dict(data["baseline"]),
            unplaced=[{**r, "from_scores": est(r.get("from_scores"))} for r in data.get("unplaced", [])],
            mae_unplaced=est(data.get("mae_unplaced")),
            run_ids=tuple(data.get("run_ids", [])), level=level,
            warnings=list(data.get("warnings", [])), notes=list(data.get("notes", [])),
        )


def fit_observational(
    scores: Mapping[str, Any],
    target: str,
    *,
    compute: Any = None,
    family: Any = None,
    fit_below: float | None = None,
    n_components: int = 3,
    chance: float | None = 0.0,
    ceiling: float | None = 1.0,
    impute_rank: int = 1,
    reference_family: str | None = None,
    model_ids: Sequence[str] | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> ObservationalFit:
    """Fit Ruan et al.'s observational law for ``target`` from the other benchmarks in ``scores``.

    Parameters
    ----------
    scores : benchmark name -> accuracy per model (NaN where missing), the target among them.
    compute : training FLOPs per model (NaN where unknown); needed for ``fit_below``, the family
        offsets and the baseline.
    family : model family per model; with ``compute``, enables the per-family offsets.
    fit_below : fit on models at or below this many FLOPs, score those above.
    n_components : capability scores kept (Ruan et al. use 3).
    chance, ceiling : the link's floor and ceiling (None: fitted).
    impute_rank : rank of the iterative imputation of missing scores (their default, 1).
    reference_family : the family offsets are relative to this one (default: the family with
        the most training models).
    """
    if target not in scores:
        raise ParameterError(f"target {target!r} is not among the benchmarks {sorted(scores)}", "target")
    predictors = tuple(k for k in scores if k != target)
    if len(predictors) < n_components:
        raise ParameterError(f"{len(predictors)} other benchmarks cannot give {n_components} components",
                             "n_components")
    y_all = np.asarray(scores[target], dtype=float).ravel()
    n = len(y_all)
    X_all = np.column_stack([np.asarray(scores[k], dtype=float).ravel() for k in predictors])
    ids = np.array([str(m) for m in model_ids]) if model_ids is not None else np.arange(n).astype(str)
    C = np.full(n, np.nan) if compute is None else np.asarray(compute, dtype=float).ravel()
    fam = None if family is None else np.array([str(f) for f in np.asarray(family, dtype=object).ravel()],
                                               dtype=object)
    if fit_below is not None and compute is None:
        raise ParameterError("fit_below needs the models' compute", "fit_below", "compute")

    usable = np.isfinite(y_all) & np.isfinite(X_all).any(axis=1)
    notes: list[str] = []
    if (~usable).any():
        notes.append(f"{int((~usable).sum())} models without a {target} score or any other score were left out")
    if fit_below is None:
        train, test = usable.copy(), np.zeros(n, dtype=bool)
    else:
        tr, te, _ = split_by_compute(C, fit_below)
        train, test = usable & tr, usable & te
    form = sigmoid_in_scores(n_components)
    fixed = {k: v for k, v in (("lo", chance), ("hi", ceiling)) if v is not None}
    n_free = len(form.param_names) - len(fixed)
    if train.sum() < n_free + 1:
        raise NotIdentifiable(f"{int(train.sum())} training models cannot identify {n_free} link parameters")

    imputer, X_tr = fit_imputer(X_all[train], rank=impute_rank)
    X_te = imputer.fill(X_all[test]) if test.any() else np.zeros((0, len(predictors)))
    n_missing = int((~np.isfinite(X_all[train | test])).sum())
    if n_missing:
        notes.append(f"{n_missing} missing scores of other benchmarks were imputed (rank {impute_rank}, "
                     "fitted on the training models)")
    comps = fit_components(X_tr, n_components)
    S_tr, S_te = comps.scores(X_tr), comps.scores(X_te)
    names = form.law.inputs
    y_tr, y_te = y_all[train], y_all[test]
    raw = fit_form(form, {s: S_tr[:, j] for j, s in enumerate(names)}, y_tr, fixed=fixed, bootstrap=0)
    theta = raw.params

    logC_tr = np.log10(C[train]) if compute is not None else None
    fam_ok = None
    fam_fit = None
    if fam is not None and compute is not None:
        fam_ok = np.isfinite(logC_tr)
        if fam_ok.sum() >= 3:
            fam_fit = fit_family(S_tr[fam_ok], logC_tr[fam_ok], fam[train][fam_ok])
        else:
            fam_ok = None

    # -- bootstrap: resample training models, redo components, link and family regression --------
    K = bootstrap
    w = bootstrap_weights(int(train.sum()), K, np.random.default_rng(seed)) if K > 0 else np.zeros((0, int(train.sum())))
    comp_draws = [fit_components(X_tr, n_components, weights=w[r], align=comps.loadings) for r in range(K)]
    S_tr_b = np.stack([c.scores(X_tr) for c in comp_draws]) if K else np.zeros((0, *S_tr.shape))
    S_te_b = np.stack([c.scores(X_te) for c in comp_draws]) if K else np.zeros((0, *S_te.shape))
    lower, upper = form.bounds()
    free = np.array([k not in fixed for k in form.param_names])
    theta_b = np.zeros((0, len(theta)))
    if K:
        def predict(th: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return form.evaluate(th, {s: S_tr_b[rows][:, :, j] for j, s in enumerate(names)})

        res = batched_lm(predict, np.tile(theta, (K, 1)), y_tr, weights=w, lower=lower, upper=upper, free=free)
        theta_b = res.x.copy()
        theta_b[~np.isfinite(res.cost)] = np.nan
        theta_b[(w > 0).sum(axis=1) < n_free] = np.nan
    explained = [Estimate.from_draws(comps.explained[j], np.array([c.explained[j] for c in comp_draws]), level)
                 for j in range(n_components)]
    link_ci = {}
    if K:
        lo_c, hi_c = percentile_interval(theta_b, level)
        link_ci = {k: (float(lo_c[i]), float(hi_c[i])) for i, k in enumerate(form.param_names) if k not in fixed}

    # -- held-out predictions ----------------------------------------------------------------
    def link_at(th: np.ndarray, S: np.ndarray) -> np.ndarray:
        return form.evaluate(th, {s: S[..., j] for j, s in enumerate(names)})

    pred_s = link_at(theta[None, :], S_te)[0] if test.any() else np.zeros(0)
    draws_s = link_at(theta_b, S_te_b) if K and test.any() else None
    ests_s, mae_s, mae_s_draws = held_out_scores(pred_s, draws_s, y_te, level)

    families: dict[str, Estimate] = {}
    slope_est = None
    ref = None
    pred_c = np.full(int(test.sum()), np.nan)
    draws_c = None
    fam_draws = []
    if fam_fit is not None and fam_ok is not None:
        counts = {f: int(np.sum(fam[train][fam_ok] == f)) for f in fam_fit.families}
        ref = reference_family or max(counts, key=lambda f: (counts[f], f))
        if ref not in fam_fit.families:
            raise ParameterError(f"reference family {ref!r} has no training model; families are "
                                 f"{list(fam_fit.families)}", "reference_family")
        i_ref = fam_fit.families.index(ref)
        fam_draws = [fit_family(S_tr_b[r][fam_ok], logC_tr[fam_ok], fam[train][fam_ok], weights=w[r][fam_ok])
                     for r in range(K)]
        slope_est = Estimate.from_draws(fam_fit.slope[0], np.array([f.slope[0] for f in fam_draws]), level)
        for i, f in enumerate(fam_fit.families):
            value = (fam_fit.offset[i, 0] - fam_fit.offset[i_ref, 0]) / fam_fit.slope[0]
            d = np.array([(fd.offset[i, 0] - fd.offset[i_ref, 0]) / fd.slope[0] for fd in fam_draws])
            families[f] = Estimate.from_draws(value, d if K else None, level)
        if test.any():
            logC_te = np.log10(C[test])
            S_hat = fam_fit.predict(logC_te, list(fam[test]))
            pred_c = link_at(theta[None, :], S_hat)[0]
            if K:
                S_hat_b = np.stack([fd.predict(logC_te, list(fam[test])) for fd in fam_draws])
                draws_c = link_at(theta_b, S_hat_b)
        known_fam = np.isfinite(pred_c)
        if test.any() and (~known_fam).any():
            notes.append(f"{int((~known_fam).sum())} held-out models are of families with no training "
                         "model: no prediction from compute for them")
        if K:
            notes.append("a family absent from a bootstrap resample has no offset in that draw; the "
                         "MAE from compute of that draw is over the models it predicts")
    else:
        known_fam = np.zeros(int(test.sum()), dtype=bool)

    # -- the baseline on the same models, with the same resamples ----------------------------
    baseline = None
    mae_b = mae_bc = gain = mae_c = None
    pred_b_ests: list[Estimate | None] = [None] * int(test.sum())
    if compute is not None and np.isfinite(C[train]).sum() >= 3:
        y_for_base = np.where(train | test, y_all, np.nan)
        baseline = fit_benchmark(C, y_for_base, metric=target, chance=chance, ceiling=ceiling,
                                 fit_below=fit_below, model_ids=list(ids), bootstrap=K, seed=seed,
                                 level=level)
        if test.any():
            base_pred = np.atleast_1d(baseline.link.predict(np.log10(C[test])))
            base_draws = baseline.link.predict_draws(np.log10(C[test])) if K else None
            pred_b_ests, mae_b, mae_b_draws = held_out_scores(base_pred, base_draws, y_te, level)
            same_models = int(train.sum()) == len(baseline.link.x)
            if mae_s_draws is not None and mae_b_draws is not None and same_models:
                gain = Estimate.from_draws(mae_b.value - mae_s.value, mae_b_draws - mae_s_draws, level)
            if known_fam.any():
                _, mae_c, _ = held_out_scores(
                    pred_c[known_fam], None if draws_c is None else draws_c[:, known_fam], y_te[known_fam],
                    level, partial_draws=True)
                _, mae_bc, _ = held_out_scores(
                    base_pred[known_fam], None if base_draws is None else base_draws[:, known_fam],
                    y_te[known_fam], level)
        if int(train.sum()) != len(baseline.link.x):
            notes.append("the baseline was fitted on the training models with a compute value")
    # -- models in neither set that their other benchmarks still place ------------------------
    has_x = np.isfinite(X_all).any(axis=1)
    no_flops = usable & ~np.isfinite(C) if fit_below is not None else np.zeros(n, dtype=bool)
    no_score = has_x & ~np.isfinite(y_all)
    unplaced_rows: list[dict[str, Any]] = []
    mae_u = None
    extra = no_flops | no_score
    if extra.any():
        S_x = comps.scores(imputer.fill(X_all[extra]))
        S_x_b = np.stack([c.scores(imputer.fill(X_all[extra])) for c in comp_draws]) if K else None
        pred_x = link_at(theta[None, :], S_x)[0]
        draws_x = link_at(theta_b, S_x_b) if K else None
        for j, i in enumerate(np.flatnonzero(extra)):
            unplaced_rows.append({
                "id": str(ids[i]), "family": None if fam is None else str(fam[i]),
                "why": "no FLOPs" if no_flops[i] else "no score",
                "actual": float(y_all[i]) if np.isfinite(y_all[i]) else None,
                "from_scores": Estimate.from_draws(pred_x[j], None if draws_x is None else draws_x[:, j], level)})
        scored = no_flops[extra]
        if scored.any():
            _, mae_u, _ = held_out_scores(pred_x[scored], None if draws_x is None else draws_x[:, scored],
                                          y_all[extra][scored], level)
        notes.append(f"{int(extra.sum())} models outside the fitted and held-out sets are predicted from "
                     "their other benchmarks alone" + (f" ({int(no_flops.sum())} without FLOPs, scored "
                                                      "against their actual value)" if no_flops.any() else ""))
    c_ests = [Estimate.from_draws(pred_c[i], None if draws_c is None else draws_c[:, i], level)
              if np.isfinite(pred_c[i]) else None for i in range(int(test.sum()))]
    test_rows = [
        {"id": str(ids[test][i]), "family": None if fam is None else str(fam[test][i]),
         "C": float(C[test][i]), "actual": float(y_te[i]), "from_scores": ests_s[i],
         "from_compute": c_ests[i], "baseline": pred_b_ests[i]}
        for i in range(int(test.sum()))
    ]
    warnings = list(raw.warnings)
    if K:
        failed = float(np.mean(~np.all(np.isfinite(theta_b), axis=1)))
        if failed > 0.05:
            warnings.append(f"{failed:.0%} of bootstrap resamples could not be fitted")
    notes.append(f"{target} is predicted from components of the other benchmarks "
                 f"({', '.join(predictors)}), never from itself")
    return ObservationalFit(
        target=target, predictors=predictors, n_components=n_components, explained=explained,
        loadings=comps.loadings,
        link_params=dict(zip(form.param_names, theta.tolist(), strict=True)), link_ci=link_ci,
        families=families, reference_family=ref, slope=slope_est, fit_below=fit_below,
        test=test_rows, mae_scores=mae_s, mae_compute=mae_c, mae_baseline=mae_b,
        mae_baseline_compute=mae_bc, gain=gain, baseline=baseline,
        unplaced=unplaced_rows, mae_unplaced=mae_u,
        run_ids=tuple(ids[train]), level=level, warnings=warnings, notes=notes,
        link_fixed=tuple(fixed),
    )


def components_of(scores: Mapping[str, Any], n_components: int = 3, impute_rank: int = 1) -> tuple[Components, tuple[str, ...]]:
    """Principal components of all the benchmarks in ``scores`` (holes imputed), e.g. to see how
    much of the variance the first one explains."""
    names = tuple(scores)
    X = np.column_stack([np.asarray(scores[k], dtype=float).ravel() for k in names])
    keep = np.isfinite(X).any(axis=1)
    _, filled = fit_imputer(X[keep], rank=impute_rank)
    return fit_components(filled, n_components), names


__all__ = ["FamilyFit", "ObservationalFit", "components_of", "fit_family", "fit_observational"]
