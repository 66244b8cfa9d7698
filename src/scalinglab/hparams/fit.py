"""Fit an optimal-lr law and an optimal-batch law from lr x batch grids, the way Step Law did.

Two estimators of each group's optimum, then one log-linear regression across groups:

* ``threshold`` (Step Law's procedure): every run within ``tolerance`` (0.25%) of its group's
  best loss is a sample of the optimum; regress ln lr and ln batch on the features over them.
* ``surface``: fit the group's convex quadratic landscape (:mod:`.landscape`) and regress its
  minimiser, one point per group. The minimiser averages over all runs near the optimum instead
  of thresholding noisy losses.

Intervals come from a vectorised bootstrap (:mod:`.bootstrap`). By default whole (N, D) groups are
resampled: runs of a group share its noise, so resampling runs (``resample="runs"``, what the
Step Law authors did) treats them as independent and gives narrower intervals than the data
support.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from scalinglab.errors import NotIdentifiable, ParameterError
from scalinglab.hparams.bootstrap import weighted_lstsq_batch
from scalinglab.hparams.grid import Grid
from scalinglab.hparams.landscape import fit_landscape
from scalinglab.hparams.pooled import pooled_configurations
from scalinglab.laws.base import LawInstance, Provenance
from scalinglab.laws.hparams import (
    FEATURES,
    HparamLaw,
    design_row,
    loglinear_law,
)
from scalinglab.results import Result, stack_draws
from scalinglab.stats import (
    Estimate,
    bootstrap_weights,
    check_count,
    check_level,
    percentile_interval,
)
from scalinglab.summary import Summary, Table, format_interval
from scalinglab.values import as_mapping, as_table

Method = Literal["threshold", "surface"]
Resample = Literal["groups", "runs"]
METHODS: tuple[str, ...] = ("threshold", "surface")


def parse_features(text: str | tuple[str, ...]) -> tuple[str, ...]:
    """``"N,D"`` or ``"ND"`` -> ("N", "D"); features are N, D, C (=6ND) and TPP (=D/N)."""
    if isinstance(text, tuple):
        return text
    parts = [p.strip() for p in text.replace("+", ",").split(",") if p.strip()]
    if len(parts) == 1 and parts[0] not in FEATURES and set(parts[0]) <= {"N", "D"}:
        parts = list(parts[0])
    bad = [p for p in parts if p not in FEATURES]
    if bad or not parts or len(set(parts)) != len(parts):
        raise ParameterError(f"features {text!r}: give a comma list of {list(FEATURES)}, e.g. N,D",
                             "lr_features", "bs_features")
    return tuple(parts)


@dataclass
class Optima:
    """The regression targets: one row per kept run (threshold) or per group (surface)."""

    frame: pd.DataFrame  # N, D, lr, batch_tokens, group (index)
    groups: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def group_optima(
    grid: Grid, method: Method = "threshold", tolerance: float = 0.0025, fit_window: float = 0.02
) -> Optima:
    """Per-group samples of the optimum that the law is regressed on."""
    if method not in METHODS:
        raise ParameterError(f"method must be one of {list(METHODS)}, not {method!r}", "method")
    rows: list[pd.DataFrame] = []
    groups: list[dict[str, Any]] = []
    warnings: list[str] = []
    repeated = 0
    for gi, ((N, D), runs) in enumerate(grid.groups()):
        g = _cells(runs) if method == "threshold" else runs
        repeated += len(runs) - len(g)
        best = g.loc[g["loss"].idxmin()]
        info: dict[str, Any] = {"N": N, "D": D, "n_runs": int(len(runs)),
                                "best_loss": float(best["loss"]), "best_lr": float(best["lr"]),
                                "best_batch_tokens": float(best["batch_tokens"])}
        # runs that diverged bracket the optimum too: their loss is worse than any finished run's
        dead = grid.diverged_of(runs)
        info["n_diverged"] = int(len(dead))
        info["lr_edge"] = _edge(float(best["lr"]), pd.concat([g["lr"], dead["lr"]]))
        info["batch_edge"] = _edge(float(best["batch_tokens"]),
                                   pd.concat([g["batch_tokens"], dead["batch_tokens"]]))
        if method == "threshold":
            kept = g[g["loss"] <= g["loss"].min() * (1.0 + tolerance)]
            info["n_kept"] = int(len(kept))
            rows.append(kept[["N", "D", "lr", "batch_tokens", "run_id"]].assign(group=gi))
        else:
            try:
                land = fit_landscape(g, window=fit_window)
            except NotIdentifiable as exc:
                warnings.append(f"{exc}; group left out")
                continue
            lr, bt = land.argmin_exp
            if not land.inside_grid(lr, bt):
                warnings.append(f"group N={N:.4g}, D={D:.4g}: fitted optimum lies outside the grid "
                                f"(lr {lr:.3g}, batch {bt:.3g}); extend the sweep")
            if land.window > fit_window:
                warnings.append(f"group N={N:.4g}, D={D:.4g}: window widened to {land.window:.0%}")
            info.update({"opt_lr": lr, "opt_batch_tokens": bt, "opt_loss": land.optimum["loss"],
                         "n_fit": land.n_fit, "window": land.window})
            rows.append(pd.DataFrame({"N": [N], "D": [D], "lr": [lr], "batch_tokens": [bt],
                                      "run_id": [",".join(g["run_id"])], "group": [gi]}))
        groups.append(info)
    if not rows:
        raise NotIdentifiable("no group gave an optimum")
    notes = [] if not repeated else [
        f"{repeated} run(s) repeat an (lr, batch) cell of their group: each cell's mean loss is "
        "its loss (the best of several seeds is luck, and a cell run twice is not twice the "
        "evidence)"]
    if method == "threshold":
        # the surface method says where its minimiser leaves the grid (above); the best run
        # cannot leave it, so a best run on the grid's edge is the only sign that the sweep
        # stopped before the loss turned up again
        warnings += _edge_warnings(groups)
    frame = pd.concat(rows, ignore_index=True)
    frame["group"] = pd.factorize(frame["group"])[0]
    return Optima(frame=frame, groups=groups, warnings=warnings, notes=notes)


def _cells(g: pd.DataFrame) -> pd.DataFrame:
    """One row per (lr, batch) cell of a group: repeated runs (seeds) averaged, their run ids
    joined with commas. A group without repeats is returned as it is."""
    if not g.duplicated(["lr", "batch_tokens"]).any():
        return g
    cells = g.groupby(["lr", "batch_tokens"], sort=False).agg(
        N=("N", "first"), D=("D", "first"), loss=("loss", "mean"),
        run_id=("run_id", lambda ids: ",".join(map(str, ids))))
    return cells.reset_index()


def _edge(best: float, values: pd.Series) -> str | None:
    """Where the group's best run sits on one axis of its grid: ``"only"`` (one value run),
    ``"low"``/``"high"`` (the smallest / largest value run) or None (inside: bracketed)."""
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        return "only"
    return "low" if best <= lo else "high" if best >= hi else None


def _edge_warnings(groups: list[dict[str, Any]]) -> list[str]:
    """One warning per axis naming the groups whose best run is on the grid's edge there: their
    optimum is not located (it may lie beyond the sweep), so the law is pulled to the edge."""
    out = []
    for axis, key, name in (("lr", "lr_edge", "best_lr"), ("batch", "batch_edge",
                                                            "best_batch_tokens")):
        hit = [g for g in groups if g.get(key)]
        if not hit:
            continue
        where = {"only": "its only {axis}", "low": "its lowest {axis}",
                 "high": "its highest {axis}"}
        shown = "; ".join(f"N={g['N']:.3g}, D={g['D']:.3g} at {where[g[key]].format(axis=axis)} "
                          f"{g[name]:.3g}" for g in hit[:4]) + ("; ..." if len(hit) > 4 else "")
        out.append(f"{axis}: optimum at the edge of the grid, not located, in {len(hit)} of "
                   f"{len(groups)} groups ({shown}): the best run there is a bound, not an "
                   f"estimate, and pulls the {axis} law towards the sweep's edge; extend the "
                   f"sweep past it")
    return out


def as_grid(frame: pd.DataFrame, columns: Mapping[str, str] | None = None, seq_len: int = 2048,
            weight_decay: bool = False, source: str = "dataframe",
            group_by: tuple[str, ...] | list[str] = ()) -> Grid:
    """A DataFrame of runs as a validated :class:`Grid` (run ids kept when it has a run_id)."""
    from scalinglab.hparams.grid import grid_from_frame

    columns = as_mapping(columns, "columns", "{'lr': 'learning_rate', 'batch': 'bs'}")
    if columns:
        absent = [c for c in columns.values() if c not in frame.columns]
        if absent:
            raise ParameterError(f"columns maps to {absent}, which the frame does not have", "columns")
        frame = frame.rename(columns={src: dst for dst, src in columns.items()})
    grid = grid_from_frame(frame.drop(columns=["run_id"], errors="ignore"), source=source,
                           seq_len=seq_len, weight_decay=weight_decay, group_by=tuple(group_by))
    if "run_id" in frame.columns:
        ids = frame["run_id"].astype(str).to_numpy()
        grid.frame["run_id"] = ids[grid.frame["row"].to_numpy(int) - 1]  # diverged runs left out
    return grid


def run_ids_of(frame: pd.DataFrame) -> list[str]:
    """The grid's run ids: its ``run_id`` column, else ``row-K`` by data row."""
    if "run_id" in frame.columns:
        return frame["run_id"].astype(str).tolist()
    rows = frame["row"] if "row" in frame.columns else pd.Series(np.arange(1, len(frame) + 1))
    return [f"row-{int(r)}" for r in rows]


@dataclass(repr=False)
class HparamFit(Result):
    """Fitted optimal-lr and optimal-batch laws with bootstrap draws and what went in."""

    kind: ClassVar[str] = "hparam_fit"

    lr: LawInstance
    batch: LawInstance
    method: str
    n_groups: int
    run_ids: tuple[str, ...] = ()
    lr_draws: np.ndarray | None = None
    batch_draws: np.ndarray | None = None
    level: float = 0.95
    resample: str = "groups"
    tolerance: float = 0.0025
    fit_window: float = 0.02
    data_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""

    def _ci(self, inst: LawInstance, draws: np.ndarray | None) -> dict[str, list[float]]:
        if draws is None or len(draws) == 0:
            return {}
        lo, hi = percentile_interval(draws, self.level)
        return {k: [float(lo[i]), float(hi[i])] for i, k in enumerate(inst.law.param_names)}

    @property
    def ci(self) -> dict[str, dict[str, list[float]]]:
        """Percentile intervals of each coefficient: ``{"lr": {...}, "bs": {...}}``."""
        return {"lr": self._ci(self.lr, self.lr_draws), "bs": self._ci(self.batch, self.batch_draws)}

    def law(self, name: str = "fitted") -> HparamLaw:
        prov = Provenance(
            source=f"fitted by scalinglab ({self.method}) on {self.n_groups} (N, D) groups, "
            f"{self.n_runs} runs" + (f" of {self.source}" if self.source else ""),
            units="N: non-embedding parameters; D: tokens; batch in tokens",
            valid_range=self.data_range,
        )
        return HparamLaw(
            name=name, lr=self.lr.replace(provenance=prov), batch=self.batch.replace(provenance=prov),
            provenance=prov, lr_draws=self.lr_draws, batch_draws=self.batch_draws,
            interval_source=f"{self.resample} bootstrap of the fit", data_source=self.source,
        )

    def predict(self, N: float, D: float) -> dict[str, Estimate]:
        """Optimal ``lr`` and ``batch_tokens`` at (N, D) with their bootstrap intervals."""
        law = self.law()
        point = law.predict(N, D)
        iv = law.interval(N, D, self.level)
        return {k: Estimate(float(point[k]), *(float(x) for x in iv[k]) if iv else (None, None),
                            level=self.level) for k in ("lr", "batch_tokens")}

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        """The lr law's draws (``lr.<coefficient>``) and the batch law's (``bs.<coefficient>``),
        as :attr:`ci` names them."""
        return stack_draws([([f"{prefix}.{k}" for k in inst.law.param_names], draws) for
                            prefix, inst, draws in (("lr", self.lr, self.lr_draws),
                                                    ("bs", self.batch, self.batch_draws))])

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        n_boot = 0 if self.lr_draws is None else int(len(self.lr_draws))
        n_valid = 0 if self.lr_draws is None else int(np.isfinite(self.lr_draws).all(axis=1).sum())
        out: dict[str, Any] = {
            "kind": self.kind,
            "lr": dict(self.lr.params),
            "bs": dict(self.batch.params),
            "ci": self.ci,
            "level": self.level,
            "n_groups": self.n_groups,
            "n_runs": self.n_runs,
            "formula": {"lr": self.lr.law.formula, "bs": self.batch.law.formula},
            "features": {"lr": list(self.lr.law.inputs), "bs": list(self.batch.law.inputs)},
            "prefactor": {"lr": float(np.exp(self.lr.params["intercept"])),
                          "bs": float(np.exp(self.batch.params["intercept"]))},
            "method": self.method,
            "tolerance": self.tolerance,
            "fit_window": self.fit_window,
            "resample": self.resample,
            "n_bootstrap": n_boot,
            "n_bootstrap_valid": n_valid,
            "data_range": {k: list(v) for k, v in self.data_range.items()},
            "groups": self.groups,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "source": self.source,
            "run_ids": list(self.run_ids),
        }
        if include_draws and self.lr_draws is not None and self.batch_draws is not None:
            out["draws"] = {"lr": self.lr_draws.tolist(), "bs": self.batch_draws.tolist()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HparamFit:
        """Rebuild a fit saved by ``hparams fit --save`` (``to_dict(include_draws=True)``)."""
        feats = data.get("features") or {"lr": ["N", "D"], "bs": ["D"]}
        lr_law = loglinear_law("lr", tuple(feats["lr"]))
        bs_law = loglinear_law("batch_tokens", tuple(feats["bs"]))
        draws = data.get("draws") or data.get("boot") or {}  # "boot": files saved before 0.2
        ids = data.get("run_ids") or [f"run-{i + 1}" for i in range(int(data.get("n_runs", 0)))]
        return cls(
            lr=lr_law.with_params(data["lr"], label="fitted lr"),
            batch=bs_law.with_params(data["bs"], label="fitted batch"),
            method=str(data.get("method", "threshold")),
            n_groups=int(data.get("n_groups", 0)),
            run_ids=tuple(str(x) for x in ids),
            lr_draws=np.asarray(draws["lr"], dtype=float) if "lr" in draws else None,
            batch_draws=np.asarray(draws["bs"], dtype=float) if "bs" in draws else None,
            level=float(data.get("level", 0.95)),
            resample=str(data.get("resample", "groups")),
            tolerance=float(data.get("tolerance", 0.0025)),
            fit_window=float(data.get("fit_window", 0.02)),
            data_range={k: (float(v[0]), float(v[1]))
                        for k, v in (data.get("data_range") or {}).items()},
            groups=list(data.get("groups", [])),
            warnings=list(data.get("warnings", [])),
            notes=list(data.get("notes", [])),
            source=str(data.get("source", "")),
        )

    def summary(self) -> Summary:
        pct = f"{round(self.level * 100)}% interval"
        table = Table("coefficients (ln y = intercept + sum coef_f ln f)",
                      ["law", "coefficient", "estimate", pct])
        ci = self.ci
        for key, inst in (("lr", self.lr), ("bs", self.batch)):
            for k, v in inst.params.items():
                table.add_row(key, k, v, format_interval(ci[key].get(k)))
        title = (f"{self.method} fit: {self.n_groups} groups, {self.n_runs} runs "
                 f"({self.level:.0%} {self.resample} bootstrap)"
                 + (f", {self.source}" if self.source else ""))
        facts = [("lr", f"{self.lr.law.formula}"), ("batch", f"{self.batch.law.formula}")]
        return Summary(title=title, tables=[table], facts=facts, notes=list(self.notes),
                       warnings=list(self.warnings), data=self.to_dict())

    def _repr_items(self) -> list[str]:
        lr, bs = self.lr.params, self.batch.params
        coefs = " ".join(f"lr.{k}={v:.3f}" for k, v in lr.items() if k != "intercept")
        coefs += " " + " ".join(f"bs.{k}={v:.3f}" for k, v in bs.items() if k != "intercept")
        return [self.method, f"{self.n_groups} groups", coefs.strip()]


def fit_hparam_law(
    grid: Grid | pd.DataFrame,
    method: Method = "threshold",
    tolerance: float = 0.0025,
    lr_features: tuple[str, ...] = ("N", "D"),
    batch_features: tuple[str, ...] = ("D",),
    n_boot: int = 1000,
    resample: Resample = "groups",
    seed: int = 0,
    level: float = 0.95,
    fit_window: float = 0.02,
    *,
    columns: Mapping[str, str] | None = None,
    seq_len: int = 2048,
    group_by: tuple[str, ...] | list[str] = (),
) -> HparamFit:
    """Regress ln lr and ln batch_tokens of each group's optimum on ln features, with bootstrap.

    ``grid`` is a :class:`Grid` or a DataFrame of runs (N, D, lr, a batch column, loss; rename
    yours with ``columns={"N": "params", ...}``; a batch in sequences is converted with
    ``seq_len``). ``group_by`` columns keep configurations that share (N, D) apart; without
    them, groups that pool distinct configurations are detected and warned about
    (:func:`scalinglab.hparams.pooled.pooled_configurations`).
    """
    if not isinstance(grid, Grid):
        grid = as_grid(as_table(grid, "grid"), columns, seq_len, group_by=group_by)
    elif group_by:
        missing = [c for c in group_by if c not in grid.frame.columns]
        if missing:
            raise ParameterError(f"group_by names {missing}, which the grid does not have", "group_by")
        grid = replace(grid, notes=list(grid.notes), group_by=tuple(group_by))
    if resample not in ("groups", "runs"):
        raise ParameterError(f"resample must be 'groups' or 'runs', not {resample!r}", "resample")
    if not 0 < tolerance < 1:
        raise ParameterError(f"tolerance must be in (0, 1), not {tolerance}", "tolerance")
    n_boot = check_count(n_boot, "n_boot")
    check_level(level)
    if "run_id" not in grid.frame.columns:
        grid = replace(grid, frame=grid.frame.assign(run_id=run_ids_of(grid.frame)),
                       notes=list(grid.notes))
    pooling = pooled_configurations(grid.frame, grid.group_by)
    opt = group_optima(grid, method, tolerance, fit_window)
    f = opt.frame
    lr_law = loglinear_law("lr", tuple(lr_features))
    bs_law = loglinear_law("batch_tokens", tuple(batch_features))
    n_groups = int(f["group"].nunique())
    need = max(len(lr_features), len(batch_features)) + 1
    X_lr = design_row(lr_law, f["N"].to_numpy(), f["D"].to_numpy())
    X_bs = design_row(bs_law, f["N"].to_numpy(), f["D"].to_numpy())
    for X, feats in ((X_lr, lr_features), (X_bs, batch_features)):
        if n_groups < need or np.linalg.matrix_rank(X) < X.shape[1]:
            raise NotIdentifiable(
                f"features {list(feats)} cannot be identified from {n_groups} (N, D) group(s): "
                "vary each feature across groups (e.g. several N at each D)"
            )
    y_lr = np.log(f["lr"].to_numpy(float))
    y_bs = np.log(f["batch_tokens"].to_numpy(float))
    ones = np.ones((1, len(f)))
    W = ones
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        if resample == "groups":
            W = np.vstack([ones, bootstrap_weights(n_groups, n_boot, rng, f["group"].to_numpy())])
        else:
            W = np.vstack([ones, bootstrap_weights(len(f), n_boot, rng)])
    b_lr = weighted_lstsq_batch(X_lr, y_lr, W)
    b_bs = weighted_lstsq_batch(X_bs, y_bs, W)
    said = [n.removeprefix("warning: ") for n in grid.notes if n.startswith("warning: ")]
    warnings = pooling.warnings + said + opt.warnings
    notes = [n for n in grid.notes if not n.startswith("warning: ")] + opt.notes
    notes += [] if not grid.group_by else [
        f"configurations kept apart by {', '.join(grid.group_by)}: {n_groups} groups over "
        f"{grid.frame.groupby(['N', 'D']).ngroups} (N, D) points"]
    if n_boot > 0:
        bad = int((~np.isfinite(b_lr).all(axis=1) | ~np.isfinite(b_bs).all(axis=1))[1:].sum())
        if bad:
            warnings.append(f"{bad} of {n_boot} bootstrap resamples were singular and left out")
        if n_groups < 8 and resample == "groups":
            warnings.append(f"only {n_groups} groups: group-bootstrap intervals are rough")
    N, D = grid.frame["N"].to_numpy(float), grid.frame["D"].to_numpy(float)
    data_range = {"N": (float(N.min()), float(N.max())), "D": (float(D.min()), float(D.max())),
                  "TPP": (float((D / N).min()), float((D / N).max())),
                  "C": (float((6 * N * D).min()), float((6 * N * D).max()))}
    # threshold: the runs kept as samples of each group's optimum; surface: every run of the
    # groups whose landscape gave an optimum
    used = [rid for cell in f["run_id"] for rid in str(cell).split(",")]
    return HparamFit(
        lr=lr_law.with_params(dict(zip(lr_law.param_names, b_lr[0], strict=True)), label="fitted lr"),
        batch=bs_law.with_params(dict(zip(bs_law.param_names, b_bs[0], strict=True)),
                                 label="fitted batch"),
        method=method, n_groups=n_groups, run_ids=tuple(used),
        lr_draws=b_lr[1:] if n_boot > 0 else None, batch_draws=b_bs[1:] if n_boot > 0 else None,
        level=level, resample=resample, tolerance=tolerance, fit_window=fit_window,
        data_range=data_range, groups=opt.groups, warnings=warnings, notes=notes, source=grid.source,
    )


def load_hparam_law(spec: str | Path | HparamLaw) -> HparamLaw:
    """``steplaw``, ``deepseek``, or a JSON saved by ``scalinglab hparams fit --save`` (the one
    resolver, :func:`scalinglab.laws.resolve.resolve`)."""
    from scalinglab.laws.resolve import resolve

    return resolve(spec, "hparams", param="hparams law")  # type: ignore[no-any-return]
