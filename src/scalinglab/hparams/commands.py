"""``scalinglab hparams``: fit, predict, evaluate and inspect optimal lr / batch laws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from scalinglab.clikit import (
    JsonOption,
    MapOption,
    TagOption,
    UnitsOption,
    UserError,
    bootstrap_option,
    console,
    emit_json,
    new_app,
    parse_map,
    parse_tags,
    parse_units,
    print_summary,
    print_table,
    quantity,
    save_results,
)
from scalinglab.errors import NotIdentifiable
from scalinglab.hparams.evaluate import evaluate_laws
from scalinglab.hparams.fit import (
    METHODS,
    fit_hparam_law,
    load_hparam_law,
    parse_features,
)
from scalinglab.hparams.grid import read_grid
from scalinglab.hparams.landscape import fit_landscape
from scalinglab.hparams.timescale import fit_tau_law
from scalinglab.laws.hparams import LR_TRANSFER_RULES, WEIGHT_DECAY_FOR_TAU
from scalinglab.summary import format_interval, format_number

app = new_app(
    name="hparams",
    help="Optimal learning rate and batch size: fit laws from lr x batch grids (Step Law "
    "procedure), predict, evaluate on held-out groups, inspect the plateau.\n\n"
    "Example: scalinglab hparams fit runs.csv --json",
    no_args_is_help=True,
)

#: failure reasons of the machine's, not the optimiser's (a regular expression on ``error``)
MACHINE_FAILURES = r"oom|out of memory|preempt|cancel|time ?limit|timeout|killed"

SeqLenOption = typer.Option(2048, "--seq-len", help="Tokens per sequence, to convert a batch "
                            "given in sequences (column bs) to tokens.")
BatchUnitOption = typer.Option("auto", "--batch-unit", help="Unit of the batch column: auto "
                               "(batch_tokens = tokens, bs = sequences), tokens or sequences.")


def _save_and_emit(fit: Any, save: Path | None, as_json: bool) -> dict[str, Any] | None:
    """Write the fit (with its bootstrap draws) to ``--save``; print JSON and return None with
    ``--json``, else return the fit's summary for the table."""
    save_results(save, fit)
    out = fit.to_dict()
    if as_json:
        emit_json(out)
        return None
    return out


GridArg = typer.Argument(None, metavar="[GRID]", show_default=False,
                         help="CSV/TSV/Parquet/JSONL with N, D, lr, batch (batch_tokens or bs) "
                         "and loss (or 'smooth loss'); omit to read the run store.")
StoreOpt = typer.Option(None, "--store", show_default=False, metavar="FILE",
                        help="Run store to read when no GRID is given (default: scalinglab.duckdb).")
TagOpt = TagOption
WhereOpt = typer.Option(None, "--where", "-w", help="Filter on the store's run columns, e.g. \"N > 1e7\".")


def _grid(path: Path | None, seq_len: int, batch_unit: str, weight_decay: bool = False,
          store: Path | None = None, tag: list[str] | None = None, where: str | None = None,
          mapping: dict[str, str] | None = None, group_by: tuple[str, ...] = (),
          units: list[str] | None = None):
    """The lr x batch grid from a file, or from the store's finished runs that have an lr and a
    batch (a `sweep plan grid` sweep lands there)."""
    if batch_unit not in ("auto", "tokens", "sequences"):
        raise UserError(f"--batch-unit must be auto, tokens or sequences, not {batch_unit!r}")
    if path is not None:
        if store is not None or tag or where:
            raise UserError("give a GRID file or --store/--tag/--where, not both")
        return read_grid(path, seq_len=seq_len, batch_unit=batch_unit,  # type: ignore[arg-type]
                         weight_decay=weight_decay, mapping=mapping, group_by=group_by,
                         units=parse_units(units))
    if units:
        raise UserError("--units converts a file's columns; the store holds runs already in "
                        "scalinglab's units (import --units)")
    from scalinglab.clikit import DEFAULT_STORE
    from scalinglab.hparams.fit import as_grid
    from scalinglab.runs.store import RunStore

    path = store or DEFAULT_STORE
    rs = RunStore(path, read_only=True)
    runs = rs.runs(where=where, tags=parse_tags(tag))
    need = ["lr", "batch_tokens", "loss"] + (["weight_decay"] if weight_decay else [])
    runs = runs.dropna(subset=need)
    if not runs.empty:
        # failed runs of the sweep are data: one that diverged marks its lr as past the optimum
        # (the grid keeps them apart, see Grid.diverged); a run stopped for a reason of the
        # machine's (memory, preemption, time) says nothing about the optimiser and stays out
        import pandas as pd

        failed = rs.runs(where=where, status="failed", tags=parse_tags(tag))
        failed = failed.dropna(subset=["N", "D", "lr", "batch_tokens"])
        machine = failed["error"].fillna("").str.lower().str.contains(MACHINE_FAILURES)
        runs = pd.concat([runs, failed[~machine].assign(loss=float("nan"))], ignore_index=True)
    if runs.empty:
        raise UserError(f"{path}: no finished runs with {', '.join(need)}"
                        + (f" and tags {tag}" if tag else "") + "; run a grid sweep first "
                        "(scalinglab sweep plan grid ...)")
    from scalinglab.runs.select import _expand

    wanted = [*(mapping or {}).values(), *group_by]
    runs = _expand(runs, wanted)
    absent = [c for c in wanted if c not in runs.columns]
    if absent:
        raise UserError(f"{path}: no run has {absent} (a column, extra or tag)")
    cols = list(dict.fromkeys(["run_id", "N", "D", *need, *wanted]))
    frame = runs[cols].reset_index(drop=True)
    for name, col in (mapping or {}).items():
        frame = frame.rename(columns={name: f"{name} (store)"}).rename(columns={col: name})
    return as_grid(frame, weight_decay=weight_decay, source=str(path), group_by=group_by)


def _short(x: float, digits: int = 2) -> str:
    """2.2e8 rather than 2.15e+08: tables of many numbers stay readable at 80 columns."""
    mantissa, exp = f"{x:.{digits - 1}e}".split("e")
    return f"{float(mantissa):g}e{int(exp)}"


def _fmt_ci(ci: dict[str, list[float]], key: str) -> str:
    return f"[{ci[key][0]:.3f}, {ci[key][1]:.3f}]" if key in ci else "-"


@app.command("fit")
def fit_cmd(
    grid_path: Path = GridArg,
    store: Path = StoreOpt, tag: list[str] = TagOpt, where: str = WhereOpt,
    method: str = typer.Option("threshold", "--method", help="threshold (Step Law: runs within "
                               "--tolerance of the group's best) or surface (minimiser of each "
                               "group's fitted convex landscape)."),
    tolerance: float = typer.Option(0.0025, "--tolerance", help="Relative loss tolerance of the "
                                    "threshold method."),
    fit_window: float = typer.Option(0.02, "--fit-window", help="Runs within this relative loss "
                                     "of the best are used to fit a group's landscape (surface)."),
    lr_features: str = typer.Option("N,D", "--lr-features", help="Features of the lr law, from "
                                    "N, D, C (=6ND), TPP (=D/N)."),
    bs_features: str = typer.Option("D", "--bs-features", help="Features of the batch law."),
    bootstrap: int = bootstrap_option(1000),
    resample: str = typer.Option("groups", "--resample", help="Bootstrap unit: groups (whole "
                                 "(N, D) groups; honest) or runs (as Step Law did; narrower)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap (results are deterministic)."),
    seq_len: int = SeqLenOption,
    batch_unit: str = BatchUnitOption,
    units: list[str] = UnitsOption,
    save: Path | None = typer.Option(None, "--save", help="Write the fit, bootstrap draws "
                                     "included, to this JSON (for predict/evaluate/plan)."),
    as_json: bool = JsonOption,
    map_: list[str] = MapOption,
    group_by: str = typer.Option(None, "--group-by", help="Columns that tell configurations "
                                 "sharing (N, D) apart (e.g. num_experts): kept as separate "
                                 "groups. Without it, pooled configurations are detected and warned about."),
) -> None:
    """Fit ln lr = a + b ln N + c ln D and ln batch = d + e ln D from lr x batch grids.

    Example: scalinglab hparams fit dense_lr_bs_loss.csv --method surface --bootstrap 500 --json

    Example: scalinglab hparams fit --store runs.duckdb --tag sweep=grid --save hp.json
    """
    groups = tuple(c.strip() for c in (group_by or "").split(",") if c.strip())
    grid = _grid(grid_path, seq_len, batch_unit, store=store, tag=tag, where=where,
                 mapping=parse_map(map_), group_by=groups, units=units)
    try:
        fit = fit_hparam_law(grid, method=method, tolerance=tolerance,  # type: ignore[arg-type]
                             lr_features=parse_features(lr_features),
                             batch_features=parse_features(bs_features), n_boot=bootstrap,
                             resample=resample, seed=seed, fit_window=fit_window)  # type: ignore[arg-type]
    except NotIdentifiable as exc:
        raise UserError(f"{grid.source}: {exc}") from None
    out = _save_and_emit(fit, save, as_json)
    if out is None:
        return
    print_summary(fit.summary())  # its warnings included
    if save is not None:
        console.print(f"saved to {save}")


@app.command("predict")
def predict_cmd(
    law: str = typer.Option("steplaw", "--law", help="steplaw, deepseek, or a FITTED.json saved "
                            "by `hparams fit --save`."),
    params: float = typer.Option(..., "--params", parser=quantity("--params", positive=True),
                                 help="Non-embedding parameters N (e.g. 1e9, 1B)."),
    tokens: float = typer.Option(..., "--tokens", parser=quantity("--tokens", positive=True),
                                 help="Training tokens D (e.g. 2e10, 20B)."),
    seq_len: int = typer.Option(2048, "--seq-len", help="Tokens per sequence."),
    tau: float = typer.Option(0.2, "--tau", help="AdamW timescale (fraction of the run) for the "
                              "weight decay; an assumption unless you fitted one."),
    as_json: bool = JsonOption,
) -> None:
    """Optimal lr and batch at (N, D), with an interval when the law has one.

    Example: scalinglab hparams predict --law steplaw --params 1B --tokens 20B --json
    """
    hp = load_hparam_law(law)
    N, D = params, tokens
    pred = hp.predict(N, D)
    lr, bt = float(pred["lr"]), float(pred["batch_tokens"])
    iv = hp.interval(N, D)
    out: dict[str, Any] = {
        "law": hp.name, "N": N, "D": D, "lr": lr, "batch_tokens": bt,
        "batch_sequences": bt / seq_len, "seq_len": seq_len,
        "lr_interval": [float(x) for x in iv["lr"]] if iv else None,
        "batch_interval": [float(x) for x in iv["batch_tokens"]] if iv else None,
        "interval_source": iv["source"] if iv else "no interval: the law gives none",
        "tau": tau,
        "weight_decay": float(WEIGHT_DECAY_FOR_TAU.predict(batch_tokens=bt, lr=lr, tau=tau, D=D)),
        "warnings": hp.check_range(N, D),
        "provenance": hp.provenance.to_dict(),
    }
    if as_json:
        emit_json(out)
        return
    def interval(xs: list[float] | None) -> str:
        return format_interval(xs) if xs else "none"

    print_table(["quantity", "value", "95% interval"], [
        ["lr", format_number(lr), interval(out["lr_interval"])],
        ["batch (tokens)", round(bt), interval(out["batch_interval"])],
        ["batch (sequences)", format_number(bt / seq_len), ""],
        [f"weight decay (tau={tau:g})", format_number(out["weight_decay"]), ""],
    ], title=f"{hp.name} at N={format_number(N)}, D={format_number(D)}")
    for w in out["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")


@app.command("evaluate")
def evaluate_cmd(
    grid_path: Path = GridArg,
    store: Path = StoreOpt, tag: list[str] = TagOpt, where: str = WhereOpt,
    law: list[str] = typer.Option(["steplaw", "deepseek"], "--law", help="Laws to compare "
                                  "(repeat): steplaw, deepseek, FITTED.json."),
    refit: str = typer.Option("threshold,surface", "--refit", help="Also refit on the remaining "
                              "groups of each fold with these methods (comma list, or none)."),
    holdout_groups: int = typer.Option(1, "--holdout-groups", help="(N, D) groups held out per "
                                       "fold."),
    split: str = typer.Option("random", "--split", help="random folds covering every group, or "
                              "largest: hold out the K largest budgets once (extrapolation)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random folds (--split random)."),
    tolerance: float = typer.Option(0.0025, "--tolerance", help="Relative loss tolerance of the "
                                    "threshold refit (--refit threshold)."),
    fit_window: float = typer.Option(0.02, "--fit-window", help="Runs within this relative loss "
                                     "of a group's best fit its landscape: the surface refit and "
                                     "the surface reading of the excess loss."),
    seq_len: int = SeqLenOption,
    batch_unit: str = BatchUnitOption,
    units: list[str] = UnitsOption,
    as_json: bool = JsonOption,
) -> None:
    """Relative excess loss of each law's (lr, batch) on held-out (N, D) groups.

    Example: scalinglab hparams evaluate dense_lr_bs_loss.csv --law steplaw --law deepseek --holdout-groups 1
    """
    grid = _grid(grid_path, seq_len, batch_unit, store=store, tag=tag, where=where, units=units)
    methods = [] if refit.strip().lower() == "none" else [
        m.strip() for m in refit.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UserError(f"--refit {bad}: choose from {list(METHODS)} or none")
    laws = {Path(x).stem if Path(x).suffix == ".json" else x: load_hparam_law(x) for x in law}
    ev = evaluate_laws(grid, laws, methods=methods, holdout_groups=holdout_groups,
                       split=split, seed=seed, tolerance=tolerance,  # type: ignore[arg-type]
                       fit_window=fit_window)
    if as_json:
        emit_json(ev.to_dict())
        return
    s = ev.summary()
    readings = ("surface", "cubic", "nearest")
    print_table(["law", "groups", *readings], [
        [r.law, int(r.groups), *(f"{100 * getattr(r, 'mean_' + x):.3f} / "
                                 f"{100 * getattr(r, 'max_' + x):.3f}" for x in readings)]
        for r in s.itertuples()],
        title=f"excess loss (%, mean / max) on held-out groups ({ev.split}, "
              f"{ev.holdout_groups} per fold)")
    for n in ev.notes:
        kind = "warning" if n.startswith("warning: ") else "note"
        console.print(f"[yellow]{kind}:[/] {n.removeprefix('warning: ')}")


@app.command("plateau")
def plateau_cmd(
    grid_path: Path = GridArg,
    store: Path = StoreOpt, tag: list[str] = TagOpt, where: str = WhereOpt,
    params: float | None = typer.Option(None, "--params", parser=quantity("--params", positive=True),
                                        help="N of the group (default: all)."),
    tokens: float | None = typer.Option(None, "--tokens", parser=quantity("--tokens", positive=True),
                                        help="D of the group (default: all)."),
    eps: float = typer.Option(0.0025, "--eps", help="Relative loss within which a setting counts "
                              "as on the plateau."),
    fit_window: float = typer.Option(0.02, "--fit-window", help="Runs within this relative loss "
                                     "of the group's best fit its landscape (widened when the fit "
                                     "is not convex)."),
    seq_len: int = SeqLenOption,
    batch_unit: str = BatchUnitOption,
    units: list[str] = UnitsOption,
    as_json: bool = JsonOption,
) -> None:
    """Fit each group's convex landscape in (ln lr, ln batch): optimum and the eps-plateau.

    Example: scalinglab hparams plateau dense_lr_bs_loss.csv --params 429260800 --tokens 40e9 --json
    """
    grid = _grid(grid_path, seq_len, batch_unit, store=store, tag=tag, where=where, units=units)
    N, D = params, tokens
    out = []
    for (n, d), g in grid.groups():
        if (N is not None and not np.isclose(n, N, rtol=1e-3)) or (
                D is not None and not np.isclose(d, D, rtol=1e-3)):
            continue
        try:
            land = fit_landscape(g, window=fit_window)
        except NotIdentifiable as exc:
            raise UserError(f"{grid.source}: {exc}") from None
        within = g[g["loss"] <= land.optimum["loss"] * (1 + eps)]
        item = land.to_dict(eps)
        item["runs_within_eps"] = int(len(within))
        out.append(item)
    if not out:
        raise UserError(f"{grid.source}: no group with N={'any' if N is None else f'{N:g}'}, "
                        f"D={'any' if D is None else f'{D:g}'}")
    if as_json:
        emit_json(out if len(out) > 1 else out[0])
        return
    rows = []
    for it in out:
        p, o = it["plateau"], it["optimum"]
        rows.append([_short(it["N"], 3), _short(it["D"], 3), _short(o["lr"]),
                     f"{_short(p['lr'][0])}-{_short(p['lr'][1])}", _short(o["batch_tokens"]),
                     f"{_short(p['batch_tokens'][0])}-{_short(p['batch_tokens'][1])}",
                     f"{o['loss']:.4f}"])
    print_table(["N", "D", "lr*", "lr plateau", "batch*", "batch plateau", "loss*"], rows,
                title=f"optimum and plateau (within {eps:.2%}) of each group's landscape")
    for n in grid.notes:  # a batch unit that looks mistaken moves every batch* and plateau
        if n.startswith("warning: "):
            console.print(f"[yellow]warning:[/] {n.removeprefix('warning: ')}")


@app.command("tau")
def tau_cmd(
    grid_path: Path = typer.Argument(None, metavar="[GRID]", show_default=False,
                                     help="Runs with N, D, lr, batch, weight_decay and loss (a "
                                     "weight-decay sweep); omit to read the run store."),
    store: Path = StoreOpt, tag: list[str] = TagOpt, where: str = WhereOpt,
    bootstrap: int = bootstrap_option(1000),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap (results are deterministic)."),
    seq_len: int = SeqLenOption,
    batch_unit: str = BatchUnitOption,
    units: list[str] = UnitsOption,
    save: Path | None = typer.Option(None, "--save", help="Write the tau law (for plan --tau)."),
    as_json: bool = JsonOption,
) -> None:
    """Fit the optimal AdamW timescale tau = B/(lr wd D) as a power law in D/N (Power Lines).

    Example: scalinglab hparams tau wd_sweep.csv --save tau.json --json
    """
    grid = _grid(grid_path, seq_len, batch_unit, weight_decay=True, store=store, tag=tag,
                 where=where, units=units)
    try:
        fit = fit_tau_law(grid, n_boot=bootstrap, seed=seed)
    except NotIdentifiable as exc:
        raise UserError(f"{grid.source}: {exc}") from None
    out = _save_and_emit(fit, save, as_json)
    if out is None:
        return
    p, ci = out["params"], out["ci"]
    console.print(f"tau_opt = {out['prefactor']:.3g} * (D/N)^{p['coef_TPP']:.3f}  "
                  f"(coef_TPP {fit.level:.0%} interval {_fmt_ci(ci, 'coef_TPP')}, "
                  f"{out['n_groups']} groups)")


@app.command("transfer")
def transfer_cmd(
    lr: float = typer.Option(..., "--lr", parser=quantity("--lr", positive=True),
                             help="Learning rate tuned at --from-batch."),
    from_batch: float = typer.Option(..., "--from-batch", parser=quantity("--from-batch", positive=True),
                                     help="Batch (tokens) the lr was tuned at."),
    to_batch: float = typer.Option(..., "--to-batch", parser=quantity("--to-batch", positive=True),
                                   help="New batch (tokens)."),
    optimizer: str = typer.Option("adam", "--optimizer", help="adam (square-root rule) or sgd "
                                  "(linear rule)."),
    as_json: bool = JsonOption,
) -> None:
    """Move a learning rate to another batch size: square-root rule (Adam) or linear (SGD).

    Example: scalinglab hparams transfer --lr 3e-4 --from-batch 0.5M --to-batch 2M --json
    """
    rule = LR_TRANSFER_RULES.get(optimizer.lower())
    if rule is None:
        raise UserError(f"--optimizer must be one of {sorted(LR_TRANSFER_RULES)}, not {optimizer!r}")
    b0, b1 = from_batch, to_batch
    new = float(rule.predict(lr=lr, batch_tokens=b0, new_batch_tokens=b1))
    out = {"lr": new, "from_lr": lr, "from_batch": b0, "to_batch": b1, "rule": rule.label,
           "formula": rule.law.formula, "exponent": rule.params["exponent"],
           "provenance": rule.provenance.to_dict() if rule.provenance else None}
    if as_json:
        emit_json(out)
    else:
        console.print(f"lr {lr:.4g} at {b0:,.0f} tokens -> {new:.4g} at {b1:,.0f} tokens "
                      f"({rule.label})")


