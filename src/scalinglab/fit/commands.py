"""``scalinglab fit ...``: fit loss laws and IsoFLOP allocations from a file or the run store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from scalinglab.clikit import (
    JsonOption,
    UserError,
    console,
    emit_json,
    err_console,
    new_app,
    to_json,
)

fit_app = new_app(
    help="Fit loss laws (Chinchilla, Kaplan, power laws, IsoFLOP) with bootstrap intervals.",
    no_args_is_help=True,
)

FileArg = typer.Argument(
    None, help="CSV, TSV, Parquet or JSONL of runs with columns N, D (or C) and loss; "
    "omit to read the run store.", show_default=False,
)
StoreOpt = typer.Option(None, "--store", help="DuckDB run store to read when no FILE is given "
                        "(default: scalinglab.duckdb).", show_default=False)
WhereOpt = typer.Option(None, "--where", "-w", help="SQL filter on the store, e.g. \"N > 1e8\".")
TagOpt = typer.Option(None, "--tag", "-t", help="Only store runs with tag KEY=VALUE (repeatable).")
MapOpt = typer.Option(None, "--map", "-m", help="Rename file columns: NAME=FILE_COLUMN, e.g. loss=final_loss.")
BootOpt = typer.Option(200, "--bootstrap", "-b", min=0, help="Bootstrap resamples for intervals (0: none).")
HoldoutOpt = typer.Option(0, "--holdout-top", min=0, help="Fit without the K largest-compute runs and "
                          "report the error predicting them.")
SeedOpt = typer.Option(0, "--seed", help="Random seed of the bootstrap (results are deterministic).")
ComputeOpt = typer.Option(None, "--compute", "-c", help="Budget in FLOPs for N_opt, D_opt and loss "
                          "(repeatable; default: the largest run's compute).", show_default=False)
AtOpt = typer.Option(None, "--at", help="Predict the loss at a point, e.g. N=1e9,D=2e10 (repeatable).")
SaveOpt = typer.Option(None, "--save", help="Write the fit with its bootstrap draws to this JSON file "
                       "(load with FitResult.from_dict, e.g. by `scalinglab plan`).")
AllRunsOpt = typer.Option(False, "--all-runs", help="Fit every run, not only the best at each (N, D).")


def register(app: typer.Typer) -> None:
    app.add_typer(fit_app, name="fit")


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr for the multi-start search and the bootstrap."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    labels = {"starts": "optimising starts", "bootstrap": "bootstrap fits"}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done)

        yield update


def _parse_at(items: list[str] | None, inputs: tuple[str, ...]) -> list[dict[str, float]]:
    from scalinglab.runs.io import parse_pairs
    from scalinglab.runs.schema import parse_number

    points = []
    for item in items or []:
        pairs = parse_pairs([item], "--at")
        try:
            point = {k: parse_number(v) for k, v in pairs.items()}
        except ValueError:
            raise UserError(f"--at {item!r}: values must be numbers, e.g. N=1e9,D=2e10") from None
        if set(point) != set(inputs):
            raise UserError(f"--at {item!r}: give exactly {', '.join(inputs)}, e.g. "
                            + ",".join(f"{k}=1e9" for k in inputs))
        points.append(point)
    return points


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    v = float(v)
    return f"{v:.4g}" if 1e-3 <= abs(v) < 1e5 or v == 0 else f"{v:.3e}"


def _interval(ci: Any) -> str:
    return "-" if not ci else f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def _fit_command(
    law_name: str, file: Path | None, store: Path | None, where: str | None, tag: list[str] | None,
    map_: list[str] | None, bootstrap: int, holdout_top: int, seed: int, compute: list[float] | None,
    at: list[str] | None, save: Path | None, json_: bool, all_runs: bool,
) -> None:
    from scalinglab.fit.data import load_runs
    from scalinglab.fit.loss import fit_law
    from scalinglab.fit.result import NotIdentifiable
    from scalinglab.laws.loss import get_loss_law
    from scalinglab.runs.io import parse_pairs

    law = get_loss_law(law_name)
    frame, source, notes = load_runs(file, store, where, parse_pairs(tag, "--tag"), law.inputs,
                                     parse_pairs(map_, "--map"), all_runs)
    points = _parse_at(at, law.inputs)
    try:
        with _progress(not json_) as progress:
            fit = fit_law(law, frame, bootstrap=bootstrap, holdout_top=holdout_top, seed=seed,
                          budgets=compute or None, at=points, progress=progress)
    except NotIdentifiable as exc:
        raise UserError(f"{source}: cannot fit the {law.name} law: {exc}") from None
    except ValueError as exc:
        raise UserError(f"{source}: {exc}") from None
    fit.extra["notes"] = notes + fit.extra.get("notes", [])
    fit.extra["source"] = source
    if save is not None:
        save.write_text(to_json(fit.to_dict(include_draws=True)))
    if json_:
        emit_json(fit.to_dict())
        return
    _print_fit(fit)
    if save is not None:
        console.print(f"[green]saved[/] the fit and its {fit.to_dict()['n_bootstrap']} bootstrap draws to {save}")


def params_table(fit: Any, title: str | None = None) -> Table:
    """Parameters with their intervals, flagging those the runs cannot identify (shared with the demo)."""
    unidentified = set(fit.extra.get("unidentified", []))
    ci = fit.ci
    if title is None:
        title = f"{fit.law.name}: {fit.law.formula}   ({fit.n_runs} runs, {fit.extra['source']})"
    table = Table(title=title, header_style="bold")
    table.add_column("parameter")
    table.add_column("estimate", justify="right")
    table.add_column(f"{fit.level:.0%} interval", justify="right")
    table.add_column("")
    for name, value in fit.params.items():
        flag = "[bold red]not identified[/]" if name in unidentified else ""
        table.add_row(name, _fmt(value), _interval(ci.get(name)), flag)
    return table


def _print_fit(fit: Any) -> None:
    d = fit.to_dict()
    console.print(params_table(fit))
    derived = d.get("derived", {})
    rows = [(k.replace("_", " "), v) for k, v in derived.items() if isinstance(v, dict) and "value" in v]
    for entry in derived.get("at_compute", []):
        for key in ("N_opt", "D_opt", "tokens_per_param", "loss"):
            rows.append((f"{key.replace('_', ' ')} at C={_fmt(entry['C'])}", entry[key]))
    for entry in derived.get("predictions", []):
        where = ", ".join(f"{k}={_fmt(v)}" for k, v in entry.items() if k != "loss")
        rows.append((f"loss at {where}", entry["loss"]))
    if rows:
        dt = Table(title="derived (C = 6ND)", header_style="bold")
        dt.add_column("figure")
        dt.add_column("estimate", justify="right")
        dt.add_column(f"{fit.level:.0%} interval", justify="right")
        for name, v in rows:
            dt.add_row(name, _fmt(v["value"]), _interval(v.get("ci")))
        console.print(dt)
    console.print(f"residual std of log loss: {fit.residual_std:.4g}   objective (sum of Huber): "
                  f"{fit.objective:.6g}   starts at the best optimum: "
                  f"{d['fit']['n_reached_best']} of {d['fit']['n_starts']}")
    if fit.holdout:
        h = fit.holdout
        console.print(f"holdout: the {h['k']} largest-compute runs, predicted from the rest: mean |rel err| "
                      f"{h['mean_abs_rel_err']:.2%}, max {h['max_abs_rel_err']:.2%}")
    for note in d.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")
    for w in fit.warnings:
        console.print(f"[bold yellow]warning:[/] {w}")


@fit_app.command("chinchilla")
def chinchilla(
    file: Path = FileArg, store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, bootstrap: int = BootOpt, holdout_top: int = HoldoutOpt,
    seed: int = SeedOpt, compute: list[float] = ComputeOpt, at: list[str] = AtOpt,
    save: Path = SaveOpt, json_: bool = JsonOption, all_runs: bool = AllRunsOpt,
) -> None:
    """Fit L = E + A/N^alpha + B/D^beta (Chinchilla Approach 3, as Besiroglu et al. 2024).

    Huber loss (delta 1e-3) on log-loss residuals, L-BFGS from 4,500 starting points, bootstrap
    intervals for every parameter and for N_opt, D_opt, tokens per parameter at a budget.

    Example: scalinglab fit chinchilla runs.csv --compute 1e22 --holdout-top 5 --save fit.json
    """
    _fit_command("chinchilla", file, store, where, tag, map_, bootstrap, holdout_top, seed,
                 compute, at, save, json_, all_runs)


@fit_app.command("kaplan")
def kaplan(
    file: Path = FileArg, store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, bootstrap: int = BootOpt, holdout_top: int = HoldoutOpt,
    seed: int = SeedOpt, compute: list[float] = ComputeOpt, at: list[str] = AtOpt,
    save: Path = SaveOpt, json_: bool = JsonOption, all_runs: bool = AllRunsOpt,
) -> None:
    """Fit Kaplan et al. 2020's L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D.

    Example: scalinglab fit kaplan --store runs.duckdb --where "N > 1e7" --json
    """
    _fit_command("kaplan", file, store, where, tag, map_, bootstrap, holdout_top, seed,
                 compute, at, save, json_, all_runs)


@fit_app.command("power")
def power(
    file: Path = FileArg,
    x: str = typer.Option("C", "--x", help="The variable: N (parameters), D (tokens) or C (FLOPs)."),
    store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, bootstrap: int = BootOpt, holdout_top: int = HoldoutOpt,
    seed: int = SeedOpt, at: list[str] = AtOpt, save: Path = SaveOpt, json_: bool = JsonOption,
    all_runs: bool = AllRunsOpt,
) -> None:
    """Fit a one-variable power law L = E + A x^-alpha, x one of N, D, C.

    Example: scalinglab fit power runs.csv --x C --at C=1e22 --json
    """
    if x not in ("N", "D", "C"):
        raise UserError(f"--x must be N, D or C, not {x!r}")
    _fit_command(f"power_{x}", file, store, where, tag, map_, bootstrap, holdout_top, seed,
                 None, at, save, json_, all_runs)


@fit_app.command("isoflop")
def isoflop(
    file: Path = FileArg, store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, bootstrap: int = BootOpt, seed: int = SeedOpt,
    budget: str = typer.Option(None, "--budget", help="Column or tag that labels each run's "
                               "compute budget (default: group runs by C)."),
    tol_dex: float = typer.Option(0.1, "--tol-dex", min=0.0, help="Runs whose C agree within this "
                                  "many decades share a budget (when grouping by C)."),
    compute: list[float] = ComputeOpt,
    save: Path = typer.Option(None, "--save", help="Write the result as JSON to this file."),
    json_: bool = JsonOption, all_runs: bool = AllRunsOpt,
) -> None:
    """Fit N_opt = k C^a and D_opt = k' C^b by Hoffmann et al.'s Approaches 1 and 2.

    Approach 1 takes the best run at each compute budget, Approach 2 the vertex of a parabola
    of loss against log N (IsoFLOP profile); intervals come from resampling runs within budgets.

    Example: scalinglab fit isoflop runs.csv --budget budget --compute 1e22
    """
    from scalinglab.fit.data import load_runs
    from scalinglab.fit.isoflop import fit_isoflop
    from scalinglab.fit.result import NotIdentifiable
    from scalinglab.runs.io import parse_pairs

    frame, source, notes = load_runs(file, store, where, parse_pairs(tag, "--tag"), ("N", "D", "C"),
                                     parse_pairs(map_, "--map"), all_runs)
    try:
        with err_console.status("fitting IsoFLOP parabolas", spinner="dots") if not json_ else _null():
            result = fit_isoflop(frame, bootstrap=bootstrap, seed=seed, budget=budget, tol_dex=tol_dex)
    except NotIdentifiable as exc:
        raise UserError(f"{source}: {exc}") from None
    except ValueError as exc:
        raise UserError(f"{source}: {exc}") from None
    result.notes[:0] = notes
    out = result.to_dict()
    out["source"] = source
    cs = compute or [max(b.C for b in result.budgets)]
    out["at_compute"] = [_iso_at(result, float(c)) for c in cs]
    if save is not None:
        save.write_text(to_json(out))
    if json_:
        emit_json(out)
        return
    _print_isoflop(result, out)


@contextmanager
def _null() -> Iterator[None]:
    yield None


def _iso_at(result: Any, c: float) -> dict[str, Any]:
    out: dict[str, Any] = {"C": c}
    for law in (result.approach1, result.approach2):
        if law is None:
            continue
        point, lo, hi = law.n_opt_interval(c)
        out[f"approach{law.approach}"] = {
            "N_opt": {"value": float(point), "ci": None if lo is None else [float(lo), float(hi)]},
            "D_opt": {"value": float(law.d_opt(c))},
        }
    return out


def _print_isoflop(result: Any, out: dict[str, Any]) -> None:
    table = Table(title=f"IsoFLOP budgets ({result.n_runs} runs, {out['source']})", header_style="bold")
    for col in ("C", "runs", "N_opt (vertex)", "loss there", "best run N", "status"):
        table.add_column(col, justify="right" if col != "status" else "left")
    for b in result.budgets:
        status = "ok" if b.ok else f"[yellow]excluded: {b.status}[/]"
        table.add_row(_fmt(b.C), str(b.n_runs), _fmt(b.N_opt) if b.ok else "-",
                      _fmt(b.loss_opt) if b.ok else "-", _fmt(b.best["N"]), status)
    console.print(table)
    laws = Table(title="N_opt ∝ C^a, D_opt ∝ C^b", header_style="bold")
    for col in ("approach", "budgets", "a", f"{result.level:.0%} interval", "b", f"{result.level:.0%} interval"):
        laws.add_column(col, justify="right")
    for law in (result.approach1, result.approach2):
        if law is None:
            continue
        ci = law.ci
        laws.add_row(str(law.approach), str(law.n_budgets), _fmt(law.a), _interval(ci.get("a")),
                     _fmt(law.b), _interval(ci.get("b")))
    console.print(laws)
    for entry in out["at_compute"]:
        for key in ("approach1", "approach2"):
            if key in entry:
                n = entry[key]["N_opt"]
                console.print(f"{key.replace('approach', 'Approach ')} at C={_fmt(entry['C'])}: N_opt "
                              f"{_fmt(n['value'])} {_interval(n['ci'])}, D_opt {_fmt(entry[key]['D_opt']['value'])}")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    for w in result.warnings:
        console.print(f"[bold yellow]warning:[/] {w}")

