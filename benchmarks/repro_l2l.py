"""Reproduce loss-to-loss prediction (Brandfonbrener et al. 2024) and the OLMo model ladder
(Bhagia et al. 2024) from the authors' released runs.

    python benchmarks/repro_l2l.py [--bootstrap 100] [--only translation,test,pooled,1e21,ladder] [--json]

Rows (each beside the published figure; nothing here is tuned towards it):

- Translation (``loss_to_loss/sweep.csv``): for each target corpus, a Chinchilla law fitted on
  every run of each other corpus is translated with the target's few runs at ~20 tokens per
  parameter (the authors' ``chinchilla_df``: 16 < D/N < 23, one per budget), each paired with
  the source corpus's run of the same N and D; R² of the translated law on all the target's runs
  (mean over the 5 source corpora), beside a Chinchilla law refitted on those few runs alone.
- Train-to-test and test-to-test 20x beyond the compute fitted: the sweep's own released runs
  stand in for the authors' 1e21-FLOP models (``extrapolation.csv`` is not shipped): fit on the
  budgets up to 2.1e18 FLOPs, predict every run of the 4.84e19 budget (23x). MMLU-Humanities:
  train-to-test (the corpus's Chinchilla law on its training loss, through the train-to-test
  law, intervals joint and for a new run); HellaSwag: test-to-test from the same-(N, D) model on
  FineWeb-edu (FineWeb for FineWeb-edu itself). Mean absolute relative error per corpus and how
  many held-out runs fall inside the 95% interval; a Chinchilla law fitted per corpus on the
  test loss for contrast. MMLU-Humanities also as the paper pairs it (x = each held-out run's
  measured training loss, not the law's prediction), refitted with the held-out runs in (what
  the law's form allows), and with the fit stopped at other budgets (50x, 11x below).
- The same 23x split with the six corpora fitted jointly (partial pooling, the judged rows): the
  exponent kappa, the test set's irreducible loss E_y, both, or neither shared across corpora,
  the choice made on the fitted budgets alone (fit up to 9.6e17 FLOPs, predict the 2.1e18
  budget's runs from their true x, smallest worst-corpus error); every candidate's validation
  error is printed. The 4.84e19 runs are read only to score the chosen fit. The rows above
  ("each corpus alone") are the per-corpus method, for the before/after comparison.
- The paper's own target, when ``loss_to_loss/extrapolation.csv`` (the authors' 1e21-FLOP runs,
  one 3.3B model per corpus) is in the shared data: every sweep run fitted, each 1e21 model
  predicted from its measured loss. What the targets mean: the published 1.2% and 2.8% are the
  paper's best figures, not a bound over corpora. The authors' own notebook protocol (E_x, E_y
  from their per-corpus scaling-law fits, K and kappa by least squares in log space) on those
  runs gives MMLU-Humanities train-to-test errors from -3.5% (StarCoder) to +4.7% (SlimPajama),
  mean |error| 3.0%, with the authors' own offsets (their opt_params_data.csv), and HellaSwag
  test-to-test from FineWeb-edu up to -1.95% (Proof-Pile-2), measured here from
  KempnerInstitute/loss-to-loss-notebooks@457ce81; the worst-corpus rows below hold every
  corpus to the best figure, a stricter reading than the paper's own result. The same notebook
  protocol on the 23x split is printed beside ours ("the authors' notebook protocol" rows):
  offsets from Kaplan-style laws with E, K and kappa by least squares in logs.
- Ladder (``olmo_ladder/``): both steps fitted on the 190M-1B rungs as the paper's
  ``final.json`` lists them (1-10xC, first seed), with its protocol for step 2 (every
  checkpoint after the first 10%, moving average of 5, anchored at zero loss, floor and ceiling
  inside [0, 1]; MMLU's categories weighted by questions) and step 1 chosen on the 1B rung
  before the 3B rung was scored: every checkpoint after the first 10% with D the tokens seen and
  a term for the schedule's stage (``fit_ladder``'s default), against the paper's mean bpb of
  each run's last 5 checkpoints (beside, as "the paper's step 1"); the rule (fit 190M-760M,
  predict 1B, mean chained error over the four tasks lower and no task worse by more than 0.25
  points) is in ``_ladder_validation``. Then the 3B rung predicted, its truth the mean of each run's last 5 checkpoints (as the
  paper's code reads its target). Judged on the 3B runs laid out as the ladder's rungs are
  (1-10xC, first seed); 0.5xC and the rerun beside. Step-1 (bpb), step-2 (accuracy from the
  true bpb) and chained relative errors, the chained error split into step 1's error carried
  through the link and step 2's, beside the paper's 7B errors (a different, bigger target: the
  shipped ladder does not include the 7B). When the shared data holds the paper's own 7B-4T
  evaluation (``olmo_ladder/peteish7_eval_anneal.csv``, from the same repository), the same fits
  are judged on it too. The paper's released scripts reach the same step-1 and step-2 optima as
  these fits on these rungs (checked against allenai/OLMo-ladder@67a3f44), so the protocol is
  the paper's; its published 7B figures come from another evaluation of the 7B than the one it
  released (see the last ladder row).

Below the table, each judged row again as met or missed against its target.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.downstream.l2l import (
    Translation,
    fit_loss_to_loss,
    irreducible,
    r_squared,
    translate,
)
from scalinglab.downstream.ladder import fit_ladder, read_ladder, task_columns
from scalinglab.fit import fit_law

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
SWEEP = DATA / "loss_to_loss" / "sweep.csv"
#: the authors' 1e21-FLOP runs (one 3.3B model per corpus; their repository's data/extrapolation.csv
#: at the sweep's commit): the paper's own target, used when the shared data has it
EXTRAP = DATA / "loss_to_loss" / "extrapolation.csv"
LADDER = DATA / "olmo_ladder"
#: the paper's own 7B-4T target (allenai/OLMo-ladder@67a3f44,
#: src/scripts/paper/data/ladder-runs/peteish7_eval_anneal.csv): used when the shared data has it
SEVEN_B = LADDER / "peteish7_eval_anneal.csv"
L2L = "Brandfonbrener et al. 2024"
OLMO = "Bhagia et al. 2024 (OLMo ladder)"
HS = "eval/downstream_ce_loss/hellaswag_test_ce_loss"
MMLU_H = "eval/downstream_ce_loss/mmlu_humanities_test_ce_loss"
#: fit below this compute, predict the top budget (4.84e19 / 2.09e18 = 23x)
CUT = 2.1e18
#: other places for the fit to stop (50x, 10.6x below the top budget): how much the error on the
#: same held-out runs depends on which budgets the link is fitted to
CUTS = (9.6e17, 4.6e18)

Row = dict[str, Any]


def row(paper: str, figure: str, published: Any, ours: Any = None, ci: Any = None,
        inside: bool | None = None, note: str = "", contrast: bool = False) -> Row:
    return {"paper": paper, "figure": figure, "published": published, "ours": ours, "ci": ci,
            "inside": None if inside is None else bool(inside), "note": note, "contrast": contrast}


def _runs(frame: pd.DataFrame, loss: str) -> pd.DataFrame:
    return pd.DataFrame({"N": frame["params"].to_numpy(float), "D": frame["tokens"].to_numpy(float),
                         "loss": frame[loss].to_numpy(float), "run_id": frame["id"].astype(str).to_numpy()})


# -- translation ------------------------------------------------------------------------------------


def translation_rows(bootstrap: int) -> list[Row]:
    if not SWEEP.exists():
        return [row(L2L, "translation mean R²", 0.990, note=f"data absent: {SWEEP} not found")]
    sweep = pd.read_csv(SWEEP)
    few = sweep[(sweep["data_ratio"] > 16) & (sweep["data_ratio"] < 23) & (sweep["n_layers"] != 20)]
    corpora = sorted(sweep["data"].unique())
    # the source laws need points only (R² of the translated law); the intervals below come from
    # the link's own bootstrap
    source = {c: fit_law("chinchilla", _runs(sweep[sweep["data"] == c], "val_loss"), bootstrap=0)
              for c in corpora}
    out: list[Row] = []
    means, refits, unpaired = [], [], []
    for target in corpora:
        every = _runs(sweep[sweep["data"] == target], "val_loss")
        mine = few[few["data"] == target]
        scores = []
        for origin in corpora:
            if origin == target:
                continue
            paired = mine.merge(few[few["data"] == origin][["tokens", "val_loss"]]
                                .rename(columns={"val_loss": "x"}), on="tokens")
            runs = _runs(paired, "val_loss").assign(x=paired["x"].to_numpy(float))
            tr = translate(source[origin], runs, x="x", baseline=None, bootstrap=bootstrap)
            scores.append(tr.score(every)["translated"])
            # the command's default: no paired runs, x from the old law at each new run's (N, D)
            by_law = translate(source[origin], runs.drop(columns="x"), baseline=None, bootstrap=0)
            unpaired.append(by_law.score(every)["translated"])
        refit_runs = _runs(mine, "val_loss")
        try:
            refit = fit_law("chinchilla", refit_runs, bootstrap=0)
            r_refit = r_squared(every["loss"], refit.predict(N=every["N"], D=every["D"]))
        except Exception as exc:  # a refit the runs cannot identify is the baseline's failure
            r_refit, why = float("nan"), str(exc)
        else:
            why = ""
        mean = float(np.mean(scores))
        means.append(mean)
        refits.append(r_refit)
        out.append(row(L2L, f"translation R² {target}", None, mean,
                       (float(np.min(scores)), float(np.max(scores))),
                       note=f"range over 5 source corpora; refit on the {len(refit_runs)} runs alone: "
                            + (f"R² {r_refit:.4f}" if np.isfinite(r_refit) else f"not fitted ({why})")
                            + ("; translation ahead" if not np.isfinite(r_refit) or mean > r_refit
                               else "; REFIT AHEAD")))
    ahead = sum(1 for m, r in zip(means, refits, strict=True) if not np.isfinite(r) or m > r)
    out.append(row(L2L, "translation mean R² (held-out corpora)", 0.990, float(np.mean(means)),
                   inside=float(np.mean(means)) >= 0.990,
                   note=f"ahead of the few-run refit on {ahead} of {len(means)} corpora"))
    out.append(row(L2L, "translation ahead of the few-run refit, corpora", f"{len(means)}/{len(means)}",
                   f"{ahead}/{len(means)}", inside=ahead == len(means),
                   note="R² of the translated law against the Chinchilla law refitted on the same runs"))
    out.append(row(L2L, "translation mean R², x from the old law (no paired runs)", None,
                   float(np.mean(unpaired)), note="`fit translate` without --x: each new run's x is "
                   "the old law's prediction at its (N, D)"))
    out.append(row(L2L, "few-run refit mean R²", 0.961, float(np.nanmean(refits)), contrast=True,
                   note="Chinchilla refitted on the same few runs alone (for contrast)"))
    return out


# -- train-to-test and test-to-test beyond the sweep ------------------------------------------------


def _score(pred: pd.DataFrame, truth: np.ndarray) -> tuple[float, int]:
    err = float(np.mean(np.abs(pred["y"].to_numpy() - truth) / truth))
    inside = int(np.sum((pred["lo"].to_numpy() <= truth) & (truth <= pred["hi"].to_numpy())))
    return err, inside


def _pair(frame: pd.DataFrame, corpus: str, origin: str, loss: str) -> pd.DataFrame:
    """``corpus``'s runs with the ``loss`` of ``origin``'s run of the same N and D as ``x``."""
    return frame[frame["data"] == corpus][["tokens", "params", loss]].merge(
        frame[frame["data"] == origin][["tokens", loss]].rename(columns={loss: "x"}), on="tokens")


#: the Kaplan-style law with an irreducible term that Brandfonbrener et al.'s notebooks take
#: their offsets from (their ``kaplan_curve``, the fits they keep): ((A/N)^(alpha/beta) + B/D)^beta + E
KAPLAN_E = "E + ((N_c/N)**(alpha_N/alpha_D) + D_c/D)**alpha_D"


def _authors_link(runs_x: pd.DataFrame, runs_y: pd.DataFrame, x: np.ndarray, y: np.ndarray,
                  x_new: np.ndarray, truth: np.ndarray) -> float:
    """Mean |relative error| of a loss-to-loss link as the authors' notebooks fit it (their
    ``loss_relationships.ipynb``, ``fit_entropy = False``): E_x and E_y the irreducible losses of
    Kaplan-style laws fitted to the x loss (``runs_x``: N, D, loss) and the y loss (``runs_y``),
    both held; K and kappa by least squares of log(y - E_y) on log(x - E_x), on the pairs
    (``x``, ``y``). NaN when an offset is at or above a loss it shifts (the log is undefined)."""
    from scalinglab.laws.base import Law

    law = Law.from_formula(KAPLAN_E, inputs=("N", "D"))
    ex = float(fit_law(law, runs_x, bootstrap=0).params["E"])
    ey = float(fit_law(law, runs_y, bootstrap=0).params["E"])
    if ex >= min(x.min(), x_new.min()) or ey >= y.min():
        return float("nan")
    kappa, log_k = np.polyfit(np.log(x - ex), np.log(y - ey), 1)
    pred = np.exp(log_k) * (x_new - ex) ** kappa + ey
    return float(np.mean(np.abs(pred - truth) / truth))


def _split_sweep() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, float]:
    """The sweep, its runs up to ``CUT`` (fitted), its top budget's runs (predicted) and how far
    beyond the fitted budgets those lie (their compute over the largest fitted)."""
    sweep = pd.read_csv(SWEEP)
    top = sweep["iso_flop"].max()
    part, target = sweep[sweep["iso_flop"] <= CUT], sweep[sweep["iso_flop"] == top]
    return sweep, part, target, float(top / part["iso_flop"].max())


def extrapolation_rows(bootstrap: int) -> list[Row]:
    if not SWEEP.exists():
        return [row(L2L, "HellaSwag test-to-test error", 0.012, note=f"data absent: {SWEEP} not found")]
    sweep, fit_part, target, ratio = _split_sweep()
    top = float(target["iso_flop"].max())
    out: list[Row] = []
    tot = {"mmlu": [0, 0], "hs": [0, 0], "mmlu_fixed": [0, 0], "hs_fixed": [0, 0]}
    tot["mmlu_true"] = [0, 0]
    errs: dict[str, list[Any]] = {"mmlu": [], "hs": [], "mmlu_base": [], "hs_base": [], "mmlu_true": [],
                                  "mmlu_oracle": [], "mmlu_cuts": []}
    for corpus in sorted(sweep["data"].unique()):
        fp, tg = fit_part[fit_part["data"] == corpus], target[target["data"] == corpus]
        # MMLU-Humanities, train-to-test: the corpus's law of its training loss, then the
        # train-to-test law (E_x = that law's irreducible loss, E_y fitted), jointly bootstrapped
        law = fit_law("chinchilla", _runs(fp, "val_loss"), bootstrap=bootstrap)
        runs = _runs(fp, MMLU_H).assign(x=fp["val_loss"].to_numpy(float))
        tr = translate(law, runs, x="x", baseline=None, bootstrap=bootstrap)
        pred = tr.predict(tg["params"].to_numpy(float), tg["tokens"].to_numpy(float), new_run=True)
        truth = tg[MMLU_H].to_numpy(float)
        e, k = _score(pred, truth)
        # before: E_old held at its point value (its draws not carried), for the coverage contrast
        fixed = replace(translate(replace(law, draws=None), runs, x="x", baseline=None,
                                  bootstrap=bootstrap), source=law)
        tot["mmlu_fixed"][0] += _score(fixed.predict(tg["params"].to_numpy(float),
                                                     tg["tokens"].to_numpy(float), new_run=True), truth)[1]
        tot["mmlu_fixed"][1] += len(truth)
        errs["mmlu"].append(e)
        tot["mmlu"][0] += k
        tot["mmlu"][1] += len(truth)
        base = fit_law("chinchilla", _runs(fp, MMLU_H), bootstrap=0)
        errs["mmlu_base"].append(float(np.mean(np.abs(base.predict(N=tg["params"], D=tg["tokens"]) - truth) / truth)))
        # the paper's pairing: each held-out run's own training loss as x (the authors give
        # the 1e21 model's measured training loss), the same link
        x_true = tg["val_loss"].to_numpy(float)
        y_t, lo_t, hi_t = tr.link.predict_interval(new_run=True, x=x_true)
        errs["mmlu_true"].append(float(np.mean(np.abs(y_t - truth) / truth)))
        tot["mmlu_true"][0] += int(np.sum((lo_t <= truth) & (truth <= hi_t)))
        tot["mmlu_true"][1] += len(truth)
        # what the shifted power law allows: the link refitted with the held-out runs in it
        every = sweep[sweep["data"] == corpus]
        every_runs = _runs(every, MMLU_H).assign(x=every["val_loss"].to_numpy(float))
        allin = translate(law, every_runs, x="x", baseline=None, bootstrap=0).link.predict(x=x_true)
        errs["mmlu_oracle"].append(float(np.mean(np.abs(allin - truth) / truth)))
        # how much the error moves with where the fitted budgets stop (same targets, true x)
        moved = []
        for cut in CUTS:
            part = sweep[(sweep["data"] == corpus) & (sweep["iso_flop"] <= cut)]
            law_c = fit_law("chinchilla", _runs(part, "val_loss"), bootstrap=0)
            tr_c = translate(law_c, _runs(part, MMLU_H).assign(x=part["val_loss"].to_numpy(float)),
                             x="x", baseline=None, bootstrap=0)
            moved.append(float(np.mean(np.abs(tr_c.link.predict(x=x_true) - truth) / truth)))
        errs["mmlu_cuts"].append(moved)
        errs.setdefault("mmlu_authors", []).append((corpus, _authors_link(
            _runs(fp, "val_loss"), _runs(fp, MMLU_H), fp["val_loss"].to_numpy(float),
            fp[MMLU_H].to_numpy(float), x_true, truth)))
        out.append(row(L2L, f"MMLU-H train-to-test |rel err| {corpus}", None, e,
                       note=f"{k}/{len(truth)} held-out runs inside the 95% new-run interval; "
                            f"Chinchilla on the test loss: {errs['mmlu_base'][-1]:.2%}; given each "
                            f"run's true training loss (the paper's pairing) {errs['mmlu_true'][-1]:.2%}; "
                            f"the link refitted with the held-out runs in it {errs['mmlu_oracle'][-1]:.2%}; "
                            "true-x error when the fit stops "
                            + ", ".join(f"{top / c:.0f}x below: {m:.2%}" for c, m in zip(CUTS, moved, strict=True))))
        # HellaSwag, test-to-test from the same-(N, D) model on another corpus
        origin = "fineweb-edu-100b" if corpus != "fineweb-edu-100b" else "fineweb-100b"
        pf, pt = (_pair(frame, corpus, origin, HS) for frame in (fit_part, target))
        # the offsets: irreducible losses of each corpus's scaling law of the HellaSwag loss (the
        # paper's way), with their bootstrap draws carried into the link's draws
        law_x = fit_law("chinchilla", _runs(fit_part[fit_part["data"] == origin], HS), bootstrap=bootstrap)
        law_y = fit_law("chinchilla", _runs(fp, HS), bootstrap=bootstrap)
        l2l = fit_loss_to_loss(pf, "x", HS, pairing="test_to_test", E_x=law_x, E_y=law_y,
                               bootstrap=bootstrap)
        p = l2l.predict(pt["x"].to_numpy(float), new_run=True)
        truth = pt[HS].to_numpy(float)
        e, k = _score(p, truth)
        # before: the offsets held at their point values
        ex, ey = irreducible(law_x)[0], irreducible(law_y)[0]
        held = fit_loss_to_loss(pf, "x", HS, pairing="test_to_test",
                                E_x=min(ex, pf["x"].min() * 0.9999), E_y=min(ey, pf[HS].min() * 0.9999),
                                bootstrap=bootstrap)
        tot["hs_fixed"][0] += _score(held.predict(pt["x"].to_numpy(float), new_run=True), truth)[1]
        tot["hs_fixed"][1] += len(truth)
        errs["hs"].append(e)
        origin_part = fit_part[fit_part["data"] == origin]
        errs.setdefault("hs_authors", []).append((corpus, _authors_link(
            _runs(origin_part, HS), _runs(fp, HS), pf["x"].to_numpy(float), pf[HS].to_numpy(float),
            pt["x"].to_numpy(float), truth)))
        tot["hs"][0] += k
        tot["hs"][1] += len(truth)
        base = fit_law("chinchilla", _runs(fp, HS), bootstrap=0)
        errs["hs_base"].append(float(np.mean(np.abs(base.predict(N=pt["params"], D=pt["tokens"]) - truth) / truth)))
        out.append(row(L2L, f"HellaSwag test-to-test |rel err| {corpus}", None, e,
                       note=f"from {origin}; {k}/{len(truth)} inside the 95% new-run interval; "
                            f"Chinchilla on the test loss: {errs['hs_base'][-1]:.2%}"))
    worst_true = float(np.max(errs["mmlu_true"]))
    k, n = tot["mmlu_true"]
    # each corpus alone: the "before" of the pooled rows below, which carry the judgement
    out.append(row(L2L, f"MMLU-Humanities train-to-test given the true training loss (the paper's pairing), "
                        f"each corpus alone, worst corpus, {ratio:.0f}x beyond", 0.028, worst_true,
                   contrast=True,
                   note=f"mean over corpora {np.mean(errs['mmlu_true']):.2%}; {k}/{n} inside the 95% "
                        "new-run interval; worst "
                        f"{sorted(sweep['data'].unique())[int(np.argmax(errs['mmlu_true']))]}"))
    out.append(row(L2L, "MMLU-H train-to-test, link refitted with the held-out runs in it (the form's floor)",
                   None, float(np.max(errs["mmlu_oracle"])), contrast=True,
                   note=f"worst corpus; mean {np.mean(errs['mmlu_oracle']):.2%} (against {worst_true:.2%} / "
                        f"{np.mean(errs['mmlu_true']):.2%} when they are predicted): the held-out runs lie "
                        "close to a shifted power law, so the misses above are the link's "
                        "extrapolation, not outlying runs"))
    cuts = np.array(errs["mmlu_cuts"])
    out.append(row(L2L, "MMLU-H train-to-test given the true training loss, fit stopped elsewhere", None,
                   None, contrast=True,
                   note="worst corpus / mean: " + "; ".join(
                       f"{top / c:.0f}x beyond {np.max(cuts[:, i]):.2%} / {np.mean(cuts[:, i]):.2%}"
                       for i, c in enumerate(CUTS))
                        + f"; {ratio:.0f}x beyond {worst_true:.2%} / {np.mean(errs['mmlu_true']):.2%}"))
    for key, ours_key, label in (("mmlu_authors", "mmlu_true", "MMLU-H train-to-test given the true training loss"),
                                 ("hs_authors", "hs", "HellaSwag test-to-test")):
        authors = errs[key]
        ok = np.array([np.isfinite(e) for _, e in authors])
        defined = np.array([e for _, e in authors])[ok]
        mine = np.array(errs[ours_key])[ok]
        out.append(row(L2L, f"{label}, the authors' notebook protocol", None,
                       float(np.max(defined)) if len(defined) else None, contrast=True,
                       note=f"worst of the {len(defined)} corpora it is defined for, mean {np.mean(defined):.2%} "
                            f"(ours on those: worst {np.max(mine):.2%}, mean {np.mean(mine):.2%}); offsets: "
                            "the irreducible losses of Kaplan-style laws (with E) fitted to each loss, "
                            "K and kappa by least squares in logs: "
                            + ", ".join(f"{c} {e:.2%}" if np.isfinite(e) else f"{c} undefined (an offset "
                                        "at or above the losses it shifts)" for c, e in authors)))
    for key, label, pub in (("hs", "HellaSwag test-to-test", 0.012),
                            ("mmlu", "MMLU-Humanities train-to-test", 0.028)):
        worst = float(np.max(errs[key]))
        k, n = tot[key]
        kf, nf = tot[f"{key}_fixed"]
        out.append(row(L2L, f"{label} |rel err|, each corpus alone, worst corpus, {ratio:.0f}x beyond",
                       pub, worst, contrast=True,
                       note=f"mean over corpora {np.mean(errs[key]):.2%}; the published "
                            "figure is at 1e21 FLOPs on other runs"))
        out.append(row(L2L, f"{label}, each corpus alone: held-out runs inside the 95% new-run interval",
                       0.95, k / n, contrast=True,
                       note=f"{k}/{n} with the offsets' uncertainty carried; {kf}/{nf} "
                            f"({kf / nf:.0%}) with the offsets held at their point values"))
        out.append(row(L2L, f"{label}: Chinchilla on the test loss, mean |rel err|", "3.9-5.5%",
                       float(np.mean(errs[f'{key}_base'])), contrast=True,
                       note="a scaling law fitted per corpus on the test loss (the paper's baseline)"))
    return out


# -- partial pooling across corpora ---------------------------------------------------------------

#: what may be shared across corpora, each candidate validated before use: nothing (each corpus
#: alone, the per-corpus method above), the exponent, the test set's irreducible loss, or both
CANDIDATES: tuple[tuple[str, ...], ...] = ((), ("kappa",), ("E_y",), ("kappa", "E_y"))


def _label(shared: tuple[str, ...]) -> str:
    return "each corpus alone" if not shared else "shared " + " and ".join(shared)


def _origin(corpus: str) -> str:
    return "fineweb-edu-100b" if corpus != "fineweb-edu-100b" else "fineweb-100b"


def _pooled_links(part: pd.DataFrame, task: str, shared: tuple[str, ...], bootstrap: int
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per corpus, the law of x in (N, D) and the link fitted on ``part``: MMLU-Humanities
    train-to-test (x: the corpus's training loss, E_x its Chinchilla law's irreducible loss) or
    HellaSwag test-to-test (x: the same-(N, D) model on FineWeb-edu, E_x that corpus's law's).
    ``shared`` empty: each corpus alone, as the rows above fit it (MMLU: E_y fitted; HellaSwag:
    E_y from the corpus's own Chinchilla law of the HellaSwag loss); otherwise one pooled fit."""
    corpora = sorted(part["data"].unique())
    laws, links = {}, {}
    if task == "mmlu":
        frames = {c: part[part["data"] == c] for c in corpora}
        for c, f in frames.items():
            laws[c] = fit_law("chinchilla", _runs(f, "val_loss"), bootstrap=bootstrap)
        if not shared:
            for c, f in frames.items():
                links[c] = translate(laws[c], _runs(f, MMLU_H).assign(x=f["val_loss"].to_numpy(float)),
                                     x="x", baseline=None, bootstrap=bootstrap)
            return laws, links
        both = part[["data", "val_loss", MMLU_H]]
        fit = fit_loss_to_loss(both, "val_loss", MMLU_H, "data", E_x=laws, shared=shared,
                               bootstrap=bootstrap)
        for c in corpora:
            links[c] = Translation(source=laws[c], link=fit.fit(c), baseline=None, x_from="training loss",
                                   source_draw=fit.draw_index)
        return laws, links
    pairs = pd.concat([_pair(part, c, _origin(c), HS).assign(data=c) for c in corpora], ignore_index=True)
    for c in corpora:
        laws[c] = fit_law("chinchilla", _runs(part[part["data"] == _origin(c)], HS), bootstrap=bootstrap)
    if not shared:
        for c in corpora:
            law_y = fit_law("chinchilla", _runs(part[part["data"] == c], HS), bootstrap=bootstrap)
            links[c] = fit_loss_to_loss(pairs[pairs["data"] == c], "x", HS, pairing="test_to_test",
                                        E_x=laws[c], E_y=law_y, bootstrap=bootstrap)
        return laws, links
    fit = fit_loss_to_loss(pairs, "x", HS, "data", pairing="test_to_test", E_x=laws, shared=shared,
                           bootstrap=bootstrap)
    return laws, {c: fit for c in corpora}


def _link_predict(link: Any, corpus: str, x: np.ndarray) -> pd.DataFrame:
    """The link's prediction (``y``, ``lo``, ``hi`` for a new run) at the true ``x``."""
    if isinstance(link, Translation):
        y, lo, hi = link.link.predict_interval(new_run=True, x=x)
        return pd.DataFrame({"y": y, "lo": lo, "hi": hi})
    return link.predict(x, group=corpus if link.group_name else None, new_run=True)


def _targets(frame: pd.DataFrame, task: str, corpus: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """x (the true loss the link starts from), the truth, and the runs, of ``corpus`` in ``frame``."""
    if task == "mmlu":
        t = frame[frame["data"] == corpus]
        return t["val_loss"].to_numpy(float), t[MMLU_H].to_numpy(float), t
    t = _pair(frame, corpus, _origin(corpus), HS)
    return t["x"].to_numpy(float), t[HS].to_numpy(float), t


def _validate(sweep: pd.DataFrame, task: str) -> tuple[tuple[str, ...], list[Row]]:
    """Choose what to share without the held-out budget: fit on the budgets below the top fitted
    one (<= 9.6e17 FLOPs), predict the top fitted budget's runs (2.1e18) from their true x, and
    keep the candidate with the smallest worst-corpus error (then mean). Nothing at 4.84e19 is
    read."""
    budgets = sorted(b for b in sweep["iso_flop"].unique() if b <= CUT)
    part, held = sweep[sweep["iso_flop"] < budgets[-1]], sweep[sweep["iso_flop"] == budgets[-1]]
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for shared in CANDIDATES:
            _, links = _pooled_links(part, task, shared, 0)
            errs = []
            for c in sorted(links):
                x, truth, _ = _targets(held, task, c)
                p = _link_predict(links[c], c, x)
                errs.append(float(np.mean(np.abs(p["y"].to_numpy() - truth) / truth)))
            scores[shared] = (max(errs), float(np.mean(errs)))
    chosen = min(scores, key=lambda s: scores[s])
    name = "MMLU-H train-to-test" if task == "mmlu" else "HellaSwag test-to-test"
    rows = [row(L2L, f"{name}, validation (fit <= {budgets[-2]:.2g}, predict the {budgets[-1]:.2g} "
                     f"budget, true x): {_label(s)}", None, scores[s][0], contrast=True,
                note=f"worst corpus; mean {scores[s][1]:.2%}" + ("; CHOSEN" if s == chosen else ""))
            for s in CANDIDATES]
    return chosen, rows


def pooled_rows(bootstrap: int) -> list[Row]:
    """Train-to-test and test-to-test 23x beyond the fitted budgets with the corpora fitted
    jointly: what they share chosen by :func:`_validate` (on the fitted budgets alone), then fitted
    on every budget up to 2.1e18 and judged on the 4.84e19 runs."""
    if not SWEEP.exists():
        return [row(L2L, "pooled train-to-test", 0.028, note=f"data absent: {SWEEP} not found")]
    sweep, part, target, ratio = _split_sweep()
    out: list[Row] = []
    for task, pub, name in (("mmlu", 0.028, "MMLU-Humanities train-to-test"),
                            ("hs", 0.012, "HellaSwag test-to-test")):
        chosen, rows = _validate(sweep, task)
        out += rows
        laws, links = _pooled_links(part, task, chosen, bootstrap)
        res: dict[str, list[float]] = {"true": [], "law": []}
        inside = {"true": 0, "law": 0}
        n = 0
        per = []
        for c in sorted(links):
            x, truth, t = _targets(target, task, c)
            p = _link_predict(links[c], c, x)
            res["true"].append(float(np.mean(np.abs(p["y"].to_numpy() - truth) / truth)))
            inside["true"] += _score(p, truth)[1]
            n += len(truth)
            if task == "mmlu":
                pl = links[c].predict(t["params"].to_numpy(float), t["tokens"].to_numpy(float),
                                      baseline=False, new_run=True)
                e, k = _score(pl, truth)
                res["law"].append(e)
                inside["law"] += k
            per.append(f"{c} {res['law' if task == 'mmlu' else 'true'][-1]:.2%}")
        how = f"validated choice: {_label(chosen)}"
        if task == "mmlu":
            worst = float(np.max(res["law"]))
            out.append(row(L2L, f"{name} |rel err| (x from the law), worst corpus, {ratio:.0f}x beyond; "
                                f"target <= {pub:.1%}", pub, worst, inside=worst <= pub,
                           note=f"{how}; mean {np.mean(res['law']):.2%}; " + ", ".join(per)))
            out.append(row(L2L, f"{name}: held-out runs inside the 95% new-run interval (x from the law)",
                           0.95, inside["law"] / n, inside=inside["law"] / n >= 0.90,
                           note=f"{inside['law']}/{n}; {how}"))
            worst_true = float(np.max(res["true"]))
            out.append(row(L2L, f"{name} given the true training loss (the paper's pairing), worst corpus, "
                                f"{ratio:.0f}x beyond; target <= {pub:.1%}", pub, worst_true,
                           inside=worst_true <= pub,
                           note=f"{how}; mean {np.mean(res['true']):.2%}; {inside['true']}/{n} inside "
                                "the 95% new-run interval"))
        else:
            worst = float(np.max(res["true"]))
            out.append(row(L2L, f"{name} |rel err|, worst corpus, {ratio:.0f}x beyond; target <= {pub:.1%}",
                           pub, worst, inside=worst <= pub,
                           note=f"{how}; mean {np.mean(res['true']):.2%}; " + ", ".join(per)))
            # where the error is: x is each run's measured FineWeb-edu loss (no law of x in it),
            # so it is the link's; refitted with the held-out runs in, the same link form
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, every = _pooled_links(sweep, task, chosen, 0)
            floor = []
            for c in sorted(every):
                x, truth, _ = _targets(target, task, c)
                floor.append(f"{c} {np.mean(np.abs(_link_predict(every[c], c, x)['y'].to_numpy() - truth) / truth):.2%}")
            out.append(row(L2L, f"{name}, link refitted with the held-out runs in it (the form's floor)", None,
                           None, contrast=True,
                           note="x is the measured loss of the same-(N, D) model, so the error above is "
                                "the link's extrapolation (x 2.48-2.63 against >= 2.94 fitted), not x's: "
                                + ", ".join(floor)))
            out.append(row(L2L, f"{name}: held-out runs inside the 95% new-run interval", 0.95,
                           inside["true"] / n, inside=inside["true"] / n >= 0.90,
                           note=f"{inside['true']}/{n}; {how}"))
    return out


# -- the OLMo ladder -------------------------------------------------------------------------------


#: the paper's 7B-4T target (its predict.py command): where the same fit's link is evaluated to
#: compare how much a step-1 error is amplified there and at the 3B rung
_N7B, _D7B = 6887575552, 3945065873408


def _elasticity(fit: Any, bpb: np.ndarray) -> np.ndarray:
    """|d ln acc / d ln bpb| of the fitted link at ``bpb``: how many percent of accuracy one
    percent of task-loss error costs."""
    h = 1e-4
    up, down = (np.atleast_1d(fit.step2.predict(bpb + s)) for s in (h, -h))
    return np.abs((up - down) / (2 * h) * bpb / np.atleast_1d(fit.step2.predict(bpb)))


def _seven_b_row(fit: Any, task: str, pub: float, seven: pd.DataFrame) -> Row:
    """The chained error at the paper's own target, its released 7B-4T evaluation (truth: the
    mean of its last 5 rows, as the paper's code reads it; D: its last token count)."""
    tail = seven.tail(5)
    b, a = (float(np.mean(v)) for v in task_columns(tail, task))
    p = fit.predict(_N7B, float(seven["throughput/total_tokens"].iloc[-1])).iloc[0]
    s2 = float(np.atleast_1d(fit.step2.predict(np.array([b])))[0])
    err = abs(float(p["acc"]) - a) / a
    return row(OLMO, f"{task} chained: acc |rel err| at the paper's 7B-4T (its released evaluation)", pub,
               err, inside=err <= pub,
               note=f"step 1 bpb {(float(p['bpb']) - b) / b:+.2%}, step 2 at the true bpb {(s2 - a) / a:+.2%}, "
                    f"chained {(float(p['acc']) - a) / a:+.2%}; accuracy {a:.4f} "
                    f"{'inside' if p['acc_lo'] <= a <= p['acc_hi'] else 'OUTSIDE'} the joint 95% interval "
                    f"[{p['acc_lo']:.4f}, {p['acc_hi']:.4f}]")


def _truth(rung: pd.DataFrame, task: str, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bpb and accuracy of each of ``runs`` (in that order) as the paper's code reads its
    target: the mean of the run's last 5 checkpoints (one checkpoint's evaluation noise is not
    the law's error)."""
    tail = rung.sort_values(["run", "step"]).groupby("run").tail(5)
    b_all, a_all = task_columns(tail, task)
    means = pd.DataFrame({"run": tail["run"].to_numpy(), "b": b_all, "a": a_all}).groupby("run").mean()
    return means.loc[runs, "b"].to_numpy(), means.loc[runs, "a"].to_numpy()


def _ladder_validation(below: pd.DataFrame, tasks: list[str]) -> tuple[str, list[Row]]:
    """Choose step 1's data without the largest rung: fit both steps on the rungs below the
    second largest (``below`` holds no run of the largest), predict the second largest's runs
    (1-10xC, first seed) and score each candidate by its chained accuracy error averaged over
    ``tasks``. Every checkpoint (with the schedule-stage term) is kept over final checkpoints
    (the paper's) only if it lowers that mean and raises no task's error by more than 0.25
    points: the rule was written before either was scored on the largest rung."""
    second = below["N"].max()
    fit_on, held = below[(below["N"] < second) & below["listed"]], below[(below["N"] == second) & below["listed"]]
    final = held.sort_values(["run", "step"]).groupby("run").tail(1)
    size = final["size"].iloc[0]
    errs: dict[str, list[float]] = {"final": [], "checkpoints": []}
    step1_errs: dict[str, list[float]] = {"final": [], "checkpoints": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for task in tasks:
            b, a = _truth(held, task, final["run"].to_numpy())
            for mode in errs:
                p = fit_ladder(fit_on, task, bootstrap=0, step1=mode).predict(
                    final["N"].to_numpy(float), final["D"].to_numpy(float), scatter=False)
                errs[mode].append(float(np.mean(np.abs(p["acc"].to_numpy() - a) / a)))
                step1_errs[mode].append(float(np.mean(np.abs(p["bpb"].to_numpy() - b) / b)))
    gain = np.mean(errs["checkpoints"]) < np.mean(errs["final"])
    worse = max(c - f for c, f in zip(errs["checkpoints"], errs["final"], strict=True))
    chosen = "checkpoints" if gain and worse <= 0.0025 else "final"
    rows = [row(OLMO, f"ladder validation (fit below {size}, predict {size} 1-10xC): step 1 on "
                      f"{'every checkpoint + schedule-stage term' if mode == 'checkpoints' else 'final checkpoints'}"
                      ", mean chained |rel err|", None, float(np.mean(errs[mode])), contrast=True,
                note="chained " + ", ".join(f"{t} {e:.2%}" for t, e in zip(tasks, errs[mode], strict=True))
                     + "; step 1 bpb " + ", ".join(f"{t} {e:.2%}" for t, e in zip(tasks, step1_errs[mode], strict=True))
                     + ("; CHOSEN" if mode == chosen else ""))
            for mode in ("final", "checkpoints")]
    return chosen, rows


def ladder_rows(bootstrap: int) -> list[Row]:
    published = {"mmlu": 0.0067, "piqa": 0.011, "hellaswag": 0.025, "arc_challenge": 0.175}
    if not LADDER.exists():
        return [row(OLMO, "chained error MMLU", 0.0067, note=f"data absent: {LADDER} not found")]
    ladder, _ = read_ladder(LADDER)
    biggest = ladder["N"].max()
    # the paper's ladder: the runs its final.json fits on (1-10xC, first seed, below 3B)
    small, big = ladder[(ladder["N"] < biggest) & ladder["listed"]], ladder[ladder["N"] == biggest]
    final = big.sort_values(["run", "step"]).groupby("run").tail(1)
    size = final["size"].iloc[0]
    # the judged targets: the 3B rung laid out as the paper lays out every rung (1, 2, 5, 10xC,
    # first seed). 3B-0.5xC (10 tokens per parameter) lies below every fitted run's D/N
    # (20-200), a step-1 extrapolation the paper's ladder never asks for, and the rerun repeats
    # 1xC; both are reported beside, not dropped
    design = (final["mult"].to_numpy() >= 1) & ~final["rerun"].to_numpy()
    runs = final["run"].to_numpy()
    seed_pair = [np.flatnonzero((final["mult"].to_numpy() == 1) & (final["rerun"].to_numpy() == r))
                 for r in (False, True)]
    out: list[Row] = []
    amp: dict[str, str] = {}
    seven = pd.read_csv(SEVEN_B) if SEVEN_B.exists() else None
    if seven is None:
        out.append(row(OLMO, "chained errors at the paper's 7B-4T", None, contrast=True,
                       note=f"data absent: {SEVEN_B.name} (allenai/OLMo-ladder@67a3f44, "
                            "src/scripts/paper/data/ladder-runs/) is not in the shared data"))
    chosen, validation = _ladder_validation(ladder[ladder["N"] < biggest], list(published))
    out += validation
    for task, pub in published.items():
        fit = fit_ladder(small, task, bootstrap=bootstrap, step1=chosen)
        paper = fit_ladder(small, task, bootstrap=0, step1="final")  # the paper's step 1, beside
        bpb, acc = _truth(big, task, runs)
        chained = fit.predict(final["N"].to_numpy(float), final["D"].to_numpy(float))
        at_true = np.atleast_1d(fit.step2.predict(bpb))
        e1 = (chained["bpb"].to_numpy() - bpb) / bpb  # signed
        e2 = (at_true - acc) / acc
        carried = (chained["acc"].to_numpy() - at_true) / acc  # step 1's error through the link
        ec = e2 + carried
        inside = (chained["acc_lo"].to_numpy() <= acc) & (acc <= chained["acc_hi"].to_numpy())
        in1 = (chained["bpb_lo"].to_numpy() <= bpb) & (bpb <= chained["bpb_hi"].to_numpy())
        ela = _elasticity(fit, bpb)
        b7 = float(fit.predict(_N7B, _D7B, scatter=False)["bpb"].iloc[0])
        ela7 = float(_elasticity(fit, np.array([b7]))[0])
        i10 = int(np.flatnonzero(design & (final["mult"].to_numpy() == 10))[0])
        s0, s1 = seed_pair[0][0], seed_pair[1][0]
        seed_b, seed_a = abs(bpb[s0] / bpb[s1] - 1), abs(acc[s0] / acc[s1] - 1)
        flag = "predictable" if fit.predictable else "FLAGGED too noisy"
        d = design
        amp[task] = (f"{task} {np.min(ela[d]):.2g}-{np.max(ela[d]):.2g}% at {size} vs {ela7:.2g}% at 7B "
                     f"(step-1 bias {np.mean(e1[d]):+.2%})")

        def signed(v: np.ndarray, d: np.ndarray = d) -> str:
            return ", ".join(f"{r.removeprefix(size + '-')} {x:+.2%}" for r, x in zip(runs[d], v[d], strict=True))

        out.append(row(OLMO, f"{task} step 1: bpb |rel err| ({size} 1-10xC)", None, float(np.mean(np.abs(e1[d]))),
                       note=f"signed: {signed(e1)}; all {len(runs)} {size} runs {np.mean(np.abs(e1)):.2%}; "
                            f"{int(in1.sum())}/{len(runs)} inside the law's 95% interval; seed noise "
                            f"(1xC vs its rerun) {seed_b:.2%}"))
        out.append(row(OLMO, f"{task} step 2: acc |rel err| at the true bpb ({size} 1-10xC)", None,
                       float(np.mean(np.abs(e2[d]))),
                       note=f"signed: {signed(e2)}; all runs {np.mean(np.abs(e2)):.2%}; link scatter "
                            f"across ladder models {fit.scatter:.3g} (accuracy sd)"))
        out.append(row(OLMO, f"{task} chained: acc |rel err| ({size} 1-10xC; target <= paper's 7B)", pub,
                       float(np.mean(np.abs(ec[d]))), inside=float(np.mean(np.abs(ec[d]))) <= pub,
                       note=f"signed: {signed(ec)} = step 1 carried {np.mean(carried[d]):+.2%} + step 2 "
                            f"{np.mean(e2[d]):+.2%} (mean); the link turns 1% of bpb into "
                            f"{np.min(ela[d]):.2g}-{np.max(ela[d]):.2g}% of accuracy here, {ela7:.2g}% at the "
                            f"7B-4T point (bpb {b7:.3f} predicted); {size}-10xC alone {abs(ec[i10]):.2%}; "
                            f"{int(inside[d].sum())}/{int(d.sum())} inside the joint 95% interval; seed noise "
                            f"in acc {seed_a:.2%}; checkpoint variability {fit.variability:.2%} -> {flag}"))
        pc = paper.predict(final["N"].to_numpy(float), final["D"].to_numpy(float), scatter=False)
        e1p = (pc["bpb"].to_numpy() - bpb) / bpb
        ecp = (pc["acc"].to_numpy() - acc) / acc
        out.append(row(OLMO, f"{task} chained with the paper's step 1 (final checkpoints only; {size} 1-10xC)",
                       pub, float(np.mean(np.abs(ecp[d]))), contrast=True,
                       note=f"step 1 bpb |rel err| {np.mean(np.abs(e1p[d])):.2%} (signed {signed(e1p)}); "
                            f"chained signed {signed(ecp)}; the judged row above fits step 1 on "
                            f"{'every checkpoint with the schedule-stage term' if chosen == 'checkpoints' else 'final checkpoints'}"
                            " (validated on the 1B rung)"))
        out.append(row(OLMO, f"{task} chained, all {len(runs)} {size} runs (with 0.5xC and the rerun)", pub,
                       float(np.mean(np.abs(ec))), contrast=True,
                       note=f"{size}-0.5xC {abs(ec[~d & ~final['rerun'].to_numpy()][0]):.2%}; "
                            f"{int(inside.sum())}/{len(runs)} inside"))
        if seven is not None:
            out.append(_seven_b_row(fit, task, pub, seven))
    ratio_n = biggest / small["N"].max()
    flops = final["N"].to_numpy(float) * final["D"].to_numpy(float)
    top = (small.groupby("run")[["N", "D"]].max().prod(axis=1)).max()
    out.append(row(OLMO, f"what the {size} rung can show", None, contrast=True,
                   note=f"{size} is {ratio_n:.1f}x the largest fitted N and {flops[design].max() / top:.0f}x its "
                        f"compute (the paper's 7B-4T: {_N7B / small['N'].max():.1f}x and "
                        f"{_N7B * _D7B / top:.0f}x). Accuracy lost per 1% of bpb error (the link's "
                        f"slope x bpb/acc): {'; '.join(amp.values())}. The published errors are one "
                        "7B model each, not a mean over runs, and the 7B is not in the shared data: "
                        "the rows test the method's protocol on a shorter, different extrapolation, "
                        "not the paper's figure. The paper's released scripts (step1.py, step2.py at "
                        "allenai/OLMo-ladder@67a3f44) on these rungs reach the same optima as the "
                        "fits with the paper's step 1 (MMLU step 1 E 0.454, A 38.1, B 100.1, alpha 0.226, beta 0.236; link x0 "
                        "0.616, slope 4.83), so the errors above are the paper's protocol's. Its "
                        "published 7B figures (chained_main.csv: MMLU bpb 0.749, accuracy 0.516) "
                        "are not those of its released 7B evaluation (peteish7_eval_anneal.csv: "
                        "0.777, 0.490); on that file the same commit's variance.csv lists chained "
                        "errors MMLU 1.28%, HellaSwag 1.44%, PIQA 1.01%, ARC-C 16.9%, which the fits "
                        "with the paper's step 1 reproduce"))
    return out


def paper_target_rows(bootstrap: int) -> list[Row]:
    """The paper's own extrapolation: every sweep run fitted, each corpus's 1e21-FLOP model
    predicted (20x the sweep's top budget), x its measured loss, as the authors pair them."""
    if not (SWEEP.exists() and EXTRAP.exists()):
        return [row(L2L, "MMLU-H train-to-test at 1e21 FLOPs (the authors' runs)", 0.028,
                    note=f"data absent: {EXTRAP} not found (the authors' data/extrapolation.csv, "
                         "KempnerInstitute/loss-to-loss-notebooks@457ce81)")]
    sweep, big = pd.read_csv(SWEEP), pd.read_csv(EXTRAP)
    ratio = float(big["iso_flop"].max() / sweep["iso_flop"].max())
    res: dict[str, list[tuple[str, float, bool]]] = {"mmlu": [], "chained": [], "hs": []}
    for corpus in sorted(sweep["data"].unique()):
        d, b = sweep[sweep["data"] == corpus], big[big["data"] == corpus]
        if b.empty:
            continue
        law = fit_law("chinchilla", _runs(d, "val_loss"), bootstrap=bootstrap)
        tr = translate(law, _runs(d, MMLU_H).assign(x=d["val_loss"].to_numpy(float)), x="x",
                       baseline=None, bootstrap=bootstrap)
        t = float(b[MMLU_H].iloc[0])
        y, lo, hi = tr.link.predict_interval(new_run=True, x=b["val_loss"].to_numpy(float))
        res["mmlu"].append((corpus, (float(y[0]) - t) / t, bool(lo[0] <= t <= hi[0])))
        pc = tr.predict(b["params"].to_numpy(float), b["tokens"].to_numpy(float), new_run=True,
                        baseline=False).iloc[0]
        res["chained"].append((corpus, (float(pc["y"]) - t) / t, bool(pc["lo"] <= t <= pc["hi"])))
        origin = "fineweb-edu-100b" if corpus != "fineweb-edu-100b" else "fineweb-100b"
        o = sweep[sweep["data"] == origin]
        pairs = d[["tokens", HS]].merge(o[["tokens", HS]].rename(columns={HS: "x"}), on="tokens")
        law_x = fit_law("chinchilla", _runs(o, HS), bootstrap=bootstrap)
        law_y = fit_law("chinchilla", _runs(d, HS), bootstrap=bootstrap)
        link = fit_loss_to_loss(pairs, "x", HS, pairing="test_to_test", E_x=law_x, E_y=law_y,
                                bootstrap=bootstrap)
        th = float(b[HS].iloc[0])
        ph = link.predict(big.loc[big["data"] == origin, HS].to_numpy(float), new_run=True).iloc[0]
        res["hs"].append((corpus, (float(ph["y"]) - th) / th, bool(ph["lo"] <= th <= ph["hi"])))
    out: list[Row] = []
    for key, label, pub, contrast in (
            ("mmlu", "MMLU-H train-to-test, x = the run's training loss", 0.028, False),
            ("chained", "MMLU-H train-to-test, x from the corpus's Chinchilla law", 0.028, True),
            ("hs", "HellaSwag test-to-test from FineWeb-edu", 0.012, False)):
        errs = np.array([abs(e) for _, e, _ in res[key]])
        inside = sum(k for _, _, k in res[key])
        worst = float(errs.max())
        out.append(row(L2L, f"{label}, 1e21 FLOPs ({ratio:.0f}x, the authors' runs), worst corpus; "
                            f"target <= {pub:.1%}", pub, worst, inside=None if contrast else worst <= pub,
                       contrast=contrast,
                       note=f"mean {errs.mean():.2%}; {inside}/{len(errs)} inside the 95% new-run interval; "
                            + ", ".join(f"{c} {e:+.2%}" for c, e, _ in res[key])))
    return out


SECTIONS = {"translation": translation_rows, "test": extrapolation_rows, "pooled": pooled_rows,
            "1e21": paper_target_rows,
            "ladder": ladder_rows}


def section(bootstrap: int = 100, only: list[str] | None = None) -> list[Row]:
    rows: list[Row] = []
    for name, make in SECTIONS.items():
        if only and name not in only:
            continue
        t = time.perf_counter()
        rows += make(bootstrap)
        print(f"[{name}: {time.perf_counter() - t:.0f} s]", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--only", default="", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = section(args.bootstrap, [s for s in args.only.split(",") if s] or None)
    if args.json:
        print(json.dumps(rows, indent=1, default=float))
        return 0
    sys.path.insert(0, str(Path(__file__).parent))
    from reproduce import print_table, verdict

    print_table(rows)
    print(verdict(rows))
    print(targets(rows))
    return 0


def _pct(v: Any) -> str:
    return f"{v:.2%}" if isinstance(v, float) and abs(v) < 1 else str(v)


def targets(rows: list[Row]) -> str:
    """Issue 22's targets, one line each: met or missed, ours beside the target (the published
    figure, or the nominal coverage)."""
    lines = ["issue 22 targets (each judged row: ours | target):"]
    for r in rows:
        if r.get("inside") is None or r.get("contrast"):
            continue
        ours = f"{r['ours']:.4f}" if "R²" in r["figure"] else _pct(r["ours"])
        want = (str(r["published"]) if isinstance(r["published"], str)
                else f">= {r['published']:.3f}" if "R²" in r["figure"]
                else ">= 90% of runs (nominal 95%)" if "inside the 95%" in r["figure"]
                else f"<= {_pct(r['published'])}")
        lines.append(f"  {'MET   ' if r['inside'] else 'MISSED'} {r['figure']}: {ours} | {want}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
