"""Which runs inform a law: one rule, used by ``fit``, the report, the dashboard and the demo alike.

A store often holds learning-rate and batch sweeps: many runs at one (N, D), most of them
mistuned. A loss law describes *well-tuned* training, so at each point only the runs of its best
hyperparameter setting count (the setting with the lowest mean loss over its replicates). All
replicates of that setting are kept: keeping only the luckiest seed would bias the law low and
make its intervals too narrow (``best_per_point=True`` does it anyway, for those who want
Chinchilla's one-run-per-point convention).

A point is a distinct (N, D), or a distinct value of the law's inputs when the runs lack N or D,
extended by ``group_by`` columns: runs that differ in unique tokens (repeated-epoch studies) or
in dataset are different points, not replicates to be merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from scalinglab.errors import ParameterError
from scalinglab.values import as_table

#: hyperparameter columns whose values make a "setting" at one point
SETTING_COLUMNS = ("lr", "batch_tokens", "weight_decay")


@dataclass
class Selection:
    """The runs chosen and what the rule did, in words."""

    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    rule: str = ""


def point_keys(frame: pd.DataFrame, inputs: Sequence[str], group_by: Sequence[str] = ()) -> list[str]:
    """Columns whose values identify a point: (N, D) when present and the law's other inputs,
    plus ``group_by``. An input is never a setting to choose the best of: a law of (lr, bsz, N, D)
    fits every lr, where picking the best lr per (N, D) kept 297 of 2702 runs."""
    base = ["N", "D"] if {"N", "D"} <= set(frame.columns) else []
    base += [k for k in inputs if k in frame.columns and k not in base]
    missing = [c for c in group_by if c not in frame.columns]
    if missing:
        from scalinglab.errors import did_you_mean

        raise ParameterError(
            f"group_by names column(s) {missing} that the runs do not have"
            f"{did_you_mean(missing[0], [str(c) for c in frame.columns])}; their columns are "
            f"{[str(c) for c in frame.columns]}", "group_by")
    return base + [c for c in group_by if c not in base]


def _expand(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Make each of ``names`` a column: a store's runs keep extra fields and tags in dicts
    (``extra``, ``tags``), so ``group_by=["unique_tokens"]`` finds it there."""
    out = frame
    for name in names:
        if name in out.columns:
            continue
        for holder in ("extra", "tags"):
            if holder in out.columns and out[holder].map(lambda d, n=name: isinstance(d, dict)
                                                         and n in d).any():
                out = out.assign(**{name: out[holder].map(
                    lambda d, n=name: d.get(n) if isinstance(d, dict) else None)})
                break
    return out


def _key_frame(frame: pd.DataFrame, cols: Sequence[str]) -> list[pd.Series]:
    """Columns as groupby keys; missing values form their own group instead of vanishing."""
    return [frame[c].astype(object).where(frame[c].notna(), "<missing>") for c in cols]


def select_runs(
    frame: pd.DataFrame,
    inputs: Sequence[str] = ("N", "D"),
    *,
    best_per_point: bool = False,
    group_by: Sequence[str] = (),
    all_runs: bool = False,
) -> Selection:
    """The runs of ``frame`` (needs ``loss``) that inform a law of ``inputs``.

    Default: at each point, every replicate of the best hyperparameter setting. With
    ``best_per_point`` only the lowest-loss run of each point; with ``all_runs`` every run.
    Row order is kept (by compute where there is a ``C`` column).
    """
    if best_per_point and all_runs:
        raise ParameterError("best_per_point and all_runs exclude each other", "best_per_point",
                             "all_runs")
    frame = as_table(frame, "frame")
    if "loss" not in frame.columns:
        raise ParameterError(f"the runs have no loss column; columns are {list(frame.columns)}",
                             "frame")
    frame = _expand(frame.reset_index(drop=True), group_by)
    if all_runs or frame.empty:
        return Selection(frame, [], "every run")
    keys = point_keys(frame, inputs, group_by)
    point = _key_frame(frame, keys)
    where = f"({', '.join(keys)})"
    if best_per_point:
        order = frame.sort_values("loss", kind="stable").index
        first = ~frame.loc[order].duplicated(subset=keys, keep="first")
        keep = frame.index.isin(order[first.to_numpy()])
        rule = f"the lowest-loss run at each {where}"
    else:
        setting_cols = [c for c in SETTING_COLUMNS if c in frame.columns and c not in keys]
        setting = point + _key_frame(frame, setting_cols)
        mean = frame.groupby(setting, dropna=False)["loss"].transform("mean")
        best = mean.groupby(point, dropna=False).transform("min")
        keep = (mean <= best).to_numpy()
        what = f"best ({', '.join(setting_cols)}) setting" if setting_cols else "runs"
        rule = f"every replicate of the {what} at each {where}"
    chosen = frame[keep]
    if "C" in chosen.columns:
        chosen = chosen.sort_values(["C", *(k for k in keys if k != "C")], kind="stable")
    chosen = chosen.reset_index(drop=True)
    notes = []
    if len(chosen) < len(frame):
        notes.append(f"kept {rule}: {len(chosen)} of {len(frame)} runs"
                     + (" (the all-runs option fits every run)" if not best_per_point else ""))
    return Selection(chosen, notes, rule)
