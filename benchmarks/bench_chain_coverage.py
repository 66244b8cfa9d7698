"""Do chained downstream intervals cover held-out truths at their nominal rate?

    python benchmarks/bench_chain_coverage.py [--bootstrap K]

On Gadre et al.'s released RedPajama models (``../shared/data/ext/gadre_downstream_rpj.csv``) a
loss law (their tied form, ``gadre2024``) and one exponential link per error column (the 17- and
46-task averages and the 46 tasks) are fitted on a training split; every other model is
predicted by :func:`scalinglab.downstream.chain`. The share of held-out truths inside the 95%
interval is printed for the *curve* interval (both fits' parameter uncertainty: what the tool
showed before) and the *new-model* interval (plus both relations' model-to-model scatter).

Splits: ``gadre`` is the authors' (loss law on 5 runs, link on 6; the rest held out, the
smallest model left out as the authors do); ``small`` fits both on every model up to 154M and
predicts the 411M, 1.4B and 6.9B models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.downstream import chain, fit_links
from scalinglab.fit.loss import fit_arrays
from scalinglab.laws.registry import get_law

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ext" / "gadre_downstream_rpj.csv"


def splits(d: pd.DataFrame) -> dict[str, tuple[pd.Series, pd.Series, pd.Series]]:
    """name -> (loss-law rows, link rows, held-out rows)."""
    law = ((d.tok_mult == 20) & (d.N < 1e9)) | ((d.N < 2e7) & (d.tok_mult == 320))
    link = law | ((d.model == "open_lm_1b") & (d.tok_mult == 20))
    small = d.N < 2e8
    return {"gadre": (law, link, ~link & (d.N > 2e7)), "small": (small, small, ~small)}


def coverage(d: pd.DataFrame, law_rows: pd.Series, link_rows: pd.Series, held: pd.Series,
             bootstrap: int) -> dict[str, tuple[int, int, int]]:
    """group -> (curve hits, new-model hits, targets)."""
    metrics = [c for c in d.columns if c.startswith("err_")]
    t = d[law_rows]
    loss_fit = fit_arrays(get_law("gadre2024"), {"N": t.N.to_numpy(), "D": t.D.to_numpy()},
                          t.loss_c4_val.to_numpy(), bootstrap=bootstrap, seed=0)
    tl = d[link_rows]
    table = fit_links(tl.loss_c4_val.to_numpy(), {m: tl[m].to_numpy() for m in metrics}, "exp",
                      bootstrap=bootstrap)
    ho = d[held]
    pred = chain(loss_fit, table, ho.N.to_numpy(), ho.D.to_numpy())
    out = {}
    for group, names in (("averages", ["err_avg", "err_avg_subset"]),
                         ("46 tasks", [m for m in metrics if m not in ("err_avg", "err_avg_subset")])):
        hit_c = hit_n = total = 0
        for m in names:
            if m not in pred.metrics:
                continue
            truth = ho[m].to_numpy()
            for i in range(len(ho)):
                c, n = pred.curve[m][i], pred.metrics[m][i]
                hit_c += bool(c.lo <= truth[i] <= c.hi)
                hit_n += bool(n.lo <= truth[i] <= n.hi)
                total += 1
        out[group] = (hit_c, hit_n, total)
    truth = ho.loss_c4_val.to_numpy()
    out["loss"] = (sum(bool(pred.loss_curve[i].lo <= truth[i] <= pred.loss_curve[i].hi) for i in range(len(ho))),
                   sum(bool(pred.loss[i].lo <= truth[i] <= pred.loss[i].hi) for i in range(len(ho))), len(ho))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args(argv)
    if not DATA.exists():
        print(f"shared data absent: {DATA}")
        return 0
    d = pd.read_csv(DATA)
    print(f"{'split':8} {'figure':10} {'curve (before)':>16} {'new model':>12} {'targets':>8}")
    for name, (law, link, held) in splits(d).items():
        for group, (hc, hn, total) in coverage(d, law, link, held, args.bootstrap).items():
            print(f"{name:8} {group:10} {hc / total:>16.1%} {hn / total:>12.1%} {total:>8}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
