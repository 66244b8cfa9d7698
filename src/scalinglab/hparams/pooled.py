"""Distinct configurations pooled into one (N, D) group of an lr x batch grid.

An optimal-hyperparameter law regresses each (N, D) group's optimum on ln N and ln D. A grid
whose groups mix configurations that share (N, D) - a mixture-of-experts sweep where models with
different expert counts have the same total parameters and tokens - gives each group one
"optimum" drawn from several landscapes at once: on such a grid 16 configurations became 12
groups and the lr law's N coefficient came out 17 [-68, 85], with no word said.

:func:`pooled_configurations` looks at each group for the two signs of it:

* a column of the file (other than the run's identity and the hyperparameters swept) that
  splits one group into sub-grids, each sweeping lr and batch on its own: it tells
  configurations apart (``num_experts``, ``N_active``, ``arch``); where the sub-grids share
  (lr, batch) cells their losses must differ by more than seed noise, else they are replicates;
* the same (lr, batch) cell run more than once with losses further apart than seed noise
  (0.02-0.1% of loss between reruns; over 0.3% here), with no column to say why.

Columns whose every value in a group is different (run names, paths) identify runs, not
configurations; a column named like a seed marks replicates, which belong together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: columns that are the grid itself, or follow from it (steps from tokens and batch)
SWEPT = ("N", "D", "lr", "batch_tokens", "loss", "row", "run_id", "weight_decay")
#: names of columns that number replicates of one configuration
REPLICATE_WORDS = ("seed", "replicate", "rerun", "repeat", "trial")
#: the spread of losses at one (lr, batch) cell above which repeats are not seed noise
REPEAT_SPREAD = 0.003


@dataclass
class Pooling:
    """What :func:`pooled_configurations` found: groups that pool configurations, the columns
    that tell them apart, and a warning to print (empty when nothing is pooled)."""

    groups: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def pooled(self) -> bool:
        return bool(self.groups)


def _order(value: str) -> tuple[int, float, str]:
    try:
        return 0, float(value), ""
    except ValueError:
        return 1, 0.0, value


def _show(value: str) -> str:
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value


def _replicate_column(name: str) -> bool:
    low = name.lower()
    return any(w in low for w in REPLICATE_WORDS)


def _configurations(g: pd.DataFrame, values: pd.Series, cells: pd.Series,
                    swept: list[str]) -> bool:
    """Does ``values`` split group ``g`` into sub-grids of its own (configurations)?

    Each of at least two values must span every hyperparameter swept in the group (steps
    computed from the batch, or a label per learning rate, span only one); and where two
    values share an (lr, batch) cell, their losses there must differ by more than seed noise
    (two sweeps of one configuration are replicates, not configurations)."""
    spans = [v for v, sub in g.groupby(values.to_numpy())
             if all(sub[k].nunique() >= 2 for k in swept)]
    if len(spans) < 2:
        return False
    shared = pd.DataFrame({"cell": cells.to_numpy(), "value": values.to_numpy(),
                           "loss": g["loss"].to_numpy(float)})
    both = shared.groupby("cell").filter(lambda c: c["value"].nunique() > 1)
    if both.empty:
        return True
    by_cell = both.groupby("cell")["loss"]
    return float(np.median((by_cell.max() - by_cell.min()) / by_cell.min())) > REPEAT_SPREAD


def pooled_configurations(frame: pd.DataFrame, group_by: Sequence[str] = (),
                          swept: Sequence[str] = SWEPT) -> Pooling:
    """Groups of ``frame`` (by N, D and ``group_by``) that pool distinct configurations."""
    keys = ["N", "D", *group_by]
    extra = [c for c in frame.columns if c not in swept and c not in keys
             and not _replicate_column(str(c))]
    out = Pooling()
    columns: dict[str, set[str]] = {}
    for key, g in frame.groupby([frame[k].astype(str) if k in group_by else frame[k] for k in keys],
                                sort=True):
        cell = [g["lr"].to_numpy(float), g["batch_tokens"].to_numpy(float)]
        cells = pd.Series(list(zip(*cell, strict=True)), index=g.index)
        repeated = cells.duplicated(keep=False)
        found: dict[str, list[str]] = {}
        swept_here = [k for k in ("lr", "batch_tokens") if g[k].nunique() > 1]
        for col in extra:
            values = g[col].astype(str)
            if values.nunique() < 2 or values.nunique() == len(g):
                continue  # constant, or a run's own name
            if _configurations(g, values, cells, swept_here):
                found[str(col)] = [_show(v) for v in sorted(values.unique().tolist(), key=_order)[:6]]
        spread = float("nan")
        if repeated.any():
            loss = g["loss"].to_numpy(float)
            by_cell = pd.Series(loss[repeated.to_numpy()]).groupby(cells[repeated].to_numpy())
            spread = float(np.nanmedian((by_cell.max() - by_cell.min()) / by_cell.min()))
        if found or (repeated.any() and spread > REPEAT_SPREAD):
            n_configs = (int(g[list(found)].astype(str).drop_duplicates().shape[0]) if found
                         else int(cells[repeated].value_counts().max()))
            out.groups.append({"N": float(key[0]), "D": float(key[1]), "n_runs": int(len(g)),
                               "configurations": n_configs, "columns": found,
                               "repeat_spread": spread})
            for col in found:
                columns.setdefault(col, set())
    if not out.groups:
        return out
    out.columns = sorted(columns)
    n_groups = int(frame.groupby([frame[k].astype(str) if k in group_by else frame[k]
                                  for k in keys]).ngroups)
    shown = "; ".join(
        f"N={g['N']:.3g}, D={g['D']:.3g}: {g['configurations']} configurations"
        + (f" ({'; '.join(f'{c} = ' + ', '.join(v) for c, v in g['columns'].items())})" if g["columns"] else
           f" (the same lr and batch run again with losses {100 * g['repeat_spread']:.2g}% apart, "
           "beyond seed noise)")
        for g in out.groups[:4]) + ("; ..." if len(out.groups) > 4 else "")
    how = (f"--group-by {','.join(out.columns)} to keep them apart, or --map N=COLUMN if a column "
           "(e.g. active parameters) is the size the law should see" if out.columns else
           "--group-by COLUMN naming what tells them apart (or drop the extra runs)")
    out.warnings.append(
        f"{len(out.groups)} of {n_groups} (N, D) groups pool distinct configurations ({shown}): "
        "each group's optimum mixes several lr x batch landscapes, so the laws' coefficients "
        f"and intervals do not describe any one of them; use {how}")
    return out


__all__ = ["Pooling", "pooled_configurations"]
