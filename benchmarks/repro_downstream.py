"""Reproduce published downstream-scaling numbers with scalinglab, beside the published ones.

    python benchmarks/repro_downstream.py [--bootstrap K] [--json]

``section()`` returns rows ``{paper, figure, published, ours, ci, inside, note}`` for the top-level
``benchmarks/reproduce.py``; run as a script it prints them. It reads the released data in
``../shared/data/ext`` (see its README) and reports what that data gives, with intervals:

- Gadre et al. 2024 (RedPajama): the 17-task loss-to-error link ``Err = eps - k exp(-gamma L)``
  fitted on the six models the authors used (the four small models at M = 20, the 11M model at
  M = 320, the 1.4B model at M = 20; neither predicted model), and the chained prediction of the
  17-task error of the 1.4B model at M = 640 and the 6.9B model at M = 20, once through the
  authors' published loss law and once through loss laws scalinglab fits itself.
- Ruan et al. 2024 (observational scaling): the share of variance of the first principal
  component of the eight benchmarks, and, for each benchmark, the mean absolute error on models
  above 8.4e22 FLOPs (Llama-2-7B's compute, the cut-off of their README) of the observational
  prediction fitted below the cut-off, against a sigmoid in log-FLOPs fitted on the same models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.downstream import chain, components_of, fit_benchmark, fit_link, fit_observational
from scalinglab.errors import NotIdentifiable
from scalinglab.fit.loss import fit_arrays
from scalinglab.fit.result import NotIdentifiable as LossLawNotIdentifiable
from scalinglab.laws.loss import CHINCHILLA
from scalinglab.stats import Estimate

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ext"
GADRE = "Gadre et al. 2024"
RUAN = "Ruan et al. 2024"

# The authors' RedPajama loss law (scaling/shared.py fit on 5 runs) ties the exponents:
# L = E + a N^-eta + b 6^(-eta/2) (M N)^-eta, i.e. Chinchilla with alpha = beta = eta and
# B = b 6^(-eta/2) = 287.2 (README of the data). Their JSON keeps b = 366.687.
_ETA = 0.2728507061786173
GADRE_LOSS_LAW = CHINCHILLA.with_params(
    {"E": 1.836648408738623, "A": 166.210992120337, "B": 366.6871979615622 * 6 ** (-_ETA / 2),
     "alpha": _ETA, "beta": _ETA}, label="Gadre et al. RedPajama loss law (published)")

# benchmark floors: four-way multiple choice 0.25, two-way 0.5, open answers 0; TruthfulQA's
# (mc2) chance level is not a clean number, so its floor is fitted
CHANCE = {"MMLU": 0.25, "ARC-C": 0.25, "HellaSwag": 0.25, "Winograd": 0.5, "TruthfulQA": None,
          "GSM8K": 0.0, "XWinograd": 0.5, "HumanEval": 0.0}
CUTOFF = 8.4e22


def _row(paper: str, figure: str, published: float | None, est: Estimate | float | None,
         note: str = "") -> dict[str, Any]:
    if isinstance(est, Estimate):
        ours, ci = est.value, (None if est.ci is None else [est.lo, est.hi])
    else:
        ours, ci = est, None
    inside = None if published is None or ci is None else bool(ci[0] <= published <= ci[1])
    return {"paper": paper, "figure": figure, "published": published, "ours": ours, "ci": ci,
            "inside": inside, "note": note}


def _missing(paper: str, path: Path) -> list[dict[str, Any]]:
    return [_row(paper, "all", None, None, f"data absent: {path} (rows skipped)")]


def _signed_rel_err(point: float, draws: np.ndarray | None, actual: float) -> Estimate:
    """(predicted - actual) / actual, with the interval of the same quantity over the draws.

    Signed, not absolute: the interval of |error| never reaches 0 however wide the prediction's
    interval is, so it could not say whether a published error of 0.05% is consistent with us."""
    values = None if draws is None else (draws - actual) / actual
    return Estimate.from_draws((point - actual) / actual, values)


def _error_row(figure: str, published: float, est: Estimate, note: str) -> dict[str, Any]:
    """A row for a published |relative error|: inside when +published or -published lies in our
    interval of the signed error; the note says whether 0 (the actual value) does."""
    row = _row(GADRE, figure, published, est, note)
    if est.ci is not None:
        row["inside"] = bool(est.lo <= published <= est.hi or est.lo <= -published <= est.hi)
        row["note"] += ("; the actual value is " + ("inside" if est.lo <= 0 <= est.hi else "OUTSIDE")
                        + " our interval")
    row["note"] += "; ours is signed (predicted - actual)/actual, the paper gives its magnitude"
    return row


def gadre_rows(bootstrap: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    path = DATA / "gadre_downstream_rpj.csv"
    if not path.exists():
        return _missing(GADRE, path)
    d = pd.read_csv(path)
    small = d["N"] < 1e9
    link_runs = (small & (d["tok_mult"] == 20)) | ((d["N"] < 2e7) & (d["tok_mult"] == 320)) | (
        (d["model"] == "open_lm_1b") & (d["tok_mult"] == 20))
    law_runs = link_runs & (d["model"] != "open_lm_1b")
    targets = [("open_lm_1b", 640, 0.0364, 0.0071), ("open_lm_7b", 20, 0.0005, 0.0073)]
    predicted = np.zeros(len(d), dtype=bool)
    for model, m, _, _ in targets:
        predicted |= (d["model"] == model) & (d["tok_mult"] == m)
    ids = [f"{r.model}@M={r.tok_mult:g}" for r in d.itertuples()]

    t = d[link_runs]
    link = fit_link(t["loss_c4_val"], t["err_avg_subset"], "exp", metric="err_avg_subset",
                    x_name="loss_c4_val", bootstrap=bootstrap, seed=seed,
                    run_ids=[ids[i] for i in np.flatnonzero(link_runs)])
    est = link.param_estimates()
    rows = [_row(GADRE, "RedPajama 17-task link Err(L) = eps - k exp(-gamma L)", pub, est[name],
                 f"{name}; least squares on the authors' 6 models, bootstrap over them ({bootstrap})")
            for name, pub in (("k", 2.206), ("gamma", 0.7146), ("eps", 0.8570))]

    N = np.array([float(d.loc[(d.model == mdl) & (d.tok_mult == m), "N"].iloc[0]) for mdl, m, _, _ in targets])
    D = N * np.array([m for _, m, _, _ in targets])
    actual_err = [float(d.loc[(d.model == mdl) & (d.tok_mult == m), "err_avg_subset"].iloc[0])
                  for mdl, m, _, _ in targets]
    actual_loss = [float(d.loc[(d.model == mdl) & (d.tok_mult == m), "loss_c4_val"].iloc[0])
                   for mdl, m, _, _ in targets]

    laws: list[tuple[str, Any, str]] = [("the authors' loss law", GADRE_LOSS_LAW,
                                         "published law has no draws: the interval is the link's")]
    train = d[law_runs]
    try:
        own = fit_arrays(CHINCHILLA, {"N": train["N"].to_numpy(), "D": train["D"].to_numpy()},
                         train["loss_c4_val"].to_numpy(), bootstrap=bootstrap, seed=seed)
        laws.append(("untied Chinchilla fitted on the authors' 5 runs", own, ""))
    except (NotIdentifiable, LossLawNotIdentifiable) as exc:
        for (mdl, m, pub, _), _a in zip(targets, actual_err, strict=True):
            rows.append(_row(GADRE, f"chained 17-task error, {mdl} M={m}", pub, None,
                             f"untied Chinchilla on the authors' 5 loss-law runs: not identifiable ({exc})"))
    rest = d[~predicted]
    own_all = fit_arrays(CHINCHILLA, {"N": rest["N"].to_numpy(), "D": rest["D"].to_numpy()},
                         rest["loss_c4_val"].to_numpy(), bootstrap=bootstrap, seed=seed)
    laws.append((f"untied Chinchilla fitted on the {len(rest)} runs other than the two predicted",
                 own_all, "a different design from the authors' 5 runs"))

    for label, law, extra in laws:
        pred = chain(law, link, N, D, seed=seed)
        for i, (mdl, m, pub_err, pub_loss) in enumerate(targets):
            est = pred.metrics["err_avg_subset"][i]
            draws = pred.draws.get("err_avg_subset")
            rows.append(_error_row(
                f"chained 17-task error, {mdl} M={m}: relative error", pub_err,
                _signed_rel_err(est.value, None if draws is None else draws[:, i], actual_err[i]),
                f"through {label}; predicted {est:.4f} vs actual {actual_err[i]:.4f}"
                + (f"; {extra}" if extra else "")))
            loss = pred.loss[i]
            rows.append(_error_row(
                f"loss prediction, {mdl} M={m}: relative error", pub_loss,
                _signed_rel_err(loss.value, None if pred.loss_draws is None else pred.loss_draws[:, i],
                                actual_loss[i]),
                f"through {label}; predicted {loss:.4f} vs actual {actual_loss[i]:.4f}"))
    return rows


def ruan_rows(bootstrap: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    path = DATA / "obsscaling_base_llm_benchmark_eval.csv"
    if not path.exists():
        return _missing(RUAN, path)
    d = pd.read_csv(path)
    benchmarks = list(CHANCE)
    scores = {b: d[b].to_numpy(float) for b in benchmarks}
    comps, _ = components_of(scores, n_components=3)
    rng = np.random.default_rng(seed)
    X = np.column_stack([scores[b] for b in benchmarks])
    keep = np.isfinite(X).any(axis=1)
    share = []
    for _ in range(bootstrap):
        pick = rng.integers(0, keep.sum(), keep.sum())
        sub = {b: scores[b][keep][pick] for b in benchmarks}
        share.append(components_of(sub, n_components=1)[0].explained[0])
    rows = [_row(RUAN, "share of variance of PC1 (8 benchmarks, 148 models)", 0.80,
                 Estimate.from_draws(comps.explained[0], np.array(share)),
                 "published: 'about 80%'; missing scores imputed (rank 1), bootstrap over models")]
    C = d["FLOPs (1E21)"].to_numpy(float) * 1e21
    ids = list(d["Model"])
    fam = list(d["Model Family"])
    for b in benchmarks:
        obs = fit_observational(scores, b, compute=C, family=fam, fit_below=CUTOFF, n_components=3,
                                chance=CHANCE[b], model_ids=ids, bootstrap=bootstrap, seed=seed)
        base = fit_benchmark(C, np.where([r in set(obs.run_ids) or r in set(obs.heldout_ids)
                                          for r in ids], scores[b], np.nan),
                             metric=b, chance=CHANCE[b], fit_below=CUTOFF, model_ids=ids,
                             bootstrap=bootstrap, seed=seed)
        n_tr, n_te = len(obs.run_ids), len(obs.test)
        floor = "fitted floor" if CHANCE[b] is None else f"floor {CHANCE[b]:g}"
        rows.append(_row(RUAN, f"{b}: MAE above {CUTOFF:.2g} FLOPs, observational (3 PCs of the other 7)",
                         None, obs.mae_scores,
                         f"fitted on {n_tr} models, scored on {n_te}; {floor}; interval: MAE under the "
                         "fit's bootstrap draws"))
        rows.append(_row(RUAN, f"{b}: MAE above {CUTOFF:.2g} FLOPs, sigmoid in log10 FLOPs (baseline)",
                         None, base.mae, f"same {n_tr} + {n_te} models; {floor}"))
        if obs.gain is not None:
            rows.append(_row(RUAN, f"{b}: baseline MAE minus observational MAE", None, obs.gain,
                             "paired over the same bootstrap resamples; > 0: observational is better"))
        if obs.mae_compute is not None:
            rows.append(_row(RUAN, f"{b}: MAE from compute + family offset (observational)", None,
                             obs.mae_compute,
                             f"held-out models of families seen below the cut-off; the baseline on the "
                             f"same models: {obs.mae_baseline_compute.value:.4f}"))
    return rows


def section(bootstrap: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """Rows ``{paper, figure, published, ours, ci, inside, note}`` for the reproduction report."""
    return gadre_rows(bootstrap, seed) + ruan_rows(bootstrap, seed)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = section(args.bootstrap, args.seed)
    if args.json:
        from scalinglab.clikit import to_json

        print(to_json(rows))
        return 0
    for r in rows:
        ci = "-" if r["ci"] is None else f"[{_fmt(r['ci'][0])}, {_fmt(r['ci'][1])}]"
        inside = {True: "inside", False: "OUTSIDE", None: ""}[r["inside"]]
        print(f"{r['paper']} | {r['figure']}\n    published {_fmt(r['published'])}  ours {_fmt(r['ours'])} "
              f"{ci} {inside}\n    {r['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
