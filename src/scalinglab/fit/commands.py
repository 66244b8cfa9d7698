"""``scalinglab fit ...``: fit loss laws and IsoFLOP allocations from a file or the run store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from scalinglab.clikit import (
    JsonOption,
    UserError,
    console,
    emit_json,
    err_console,
    new_app,
    print_summary,
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
AllRunsOpt = typer.Option(False, "--all-runs", help="Fit every run, not only the best setting's "
                          "runs at each (N, D).")
BestOpt = typer.Option(False, "--best-per-point", help="Keep only the lowest-loss run at each "
                       "(N, D) (default: every replicate of the best lr/batch setting).")
GroupByOpt = typer.Option(None, "--group-by", help="Columns that also distinguish points, e.g. "
                          "unique_tokens: runs differing in them are not merged.")


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


def _fit_command(
    law_name: str, file: Path | None, store: Path | None, where: str | None, tag: list[str] | None,
    map_: list[str] | None, bootstrap: int, holdout_top: int, seed: int, compute: list[float] | None,
    at: list[str] | None, save: Path | None, json_: bool, all_runs: bool, best_per_point: bool,
    group_by: str | None,
) -> None:
    from scalinglab.errors import NotIdentifiable
    from scalinglab.fit.data import load_runs
    from scalinglab.fit.loss import fit_law
    from scalinglab.laws.registry import get_law
    from scalinglab.runs.io import parse_pairs

    law = get_law(law_name)
    if all_runs and best_per_point:
        raise UserError("--all-runs and --best-per-point exclude each other")
    frame, source, notes = load_runs(file, store, where, _tags(tag), law.inputs,
                                     parse_pairs(map_, "--map"), all_runs, best_per_point,
                                     _columns(group_by))
    points = _parse_at(at, law.inputs)
    try:
        with _progress(not json_) as progress:
            fit = fit_law(law, frame, bootstrap=bootstrap, holdout_top=holdout_top, seed=seed,
                          source=source, progress=progress)
    except NotIdentifiable as exc:
        raise UserError(f"{source}: cannot fit the {law.name} law: {exc}") from None
    fit.notes[:0] = notes
    budgets = compute or None
    if save is not None:
        save.write_text(to_json(fit.to_dict(include_draws=True, compute=budgets, at=points)))
    if json_:
        emit_json(fit.to_dict(compute=budgets, at=points))
        return
    print_summary(fit.summary(compute=budgets, at=points))
    if save is not None:
        console.print(f"[green]saved[/] the fit and its {fit.n_draws} bootstrap draws to {save}")


def _tags(tag: list[str] | None) -> dict[str, str]:
    from scalinglab.report.analysis import parse_tag_filters

    return parse_tag_filters(tag or [])


def _columns(text: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in (text or "").split(",") if c.strip())


@fit_app.command("chinchilla")
def chinchilla(
    file: Path = FileArg, store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, bootstrap: int = BootOpt, holdout_top: int = HoldoutOpt,
    seed: int = SeedOpt, compute: list[float] = ComputeOpt, at: list[str] = AtOpt,
    save: Path = SaveOpt, json_: bool = JsonOption, all_runs: bool = AllRunsOpt,
    best_per_point: bool = BestOpt, group_by: str = GroupByOpt,
) -> None:
    """Fit L = E + A/N^alpha + B/D^beta (Chinchilla Approach 3, as Besiroglu et al. 2024).

    Huber loss (delta 1e-3) on log-loss residuals, L-BFGS from 4,500 starting points, bootstrap
    intervals for every parameter and for N_opt, D_opt, tokens per parameter at a budget.

    Example: scalinglab fit chinchilla runs.csv --compute 1e22 --holdout-top 5 --save fit.json
    """
    _fit_command("chinchilla", file, store, where, tag, map_, bootstrap, holdout_top, seed,
                 compute, at, save, json_, all_runs, best_per_point, group_by)


@fit_app.command("kaplan")
def kaplan(
    file: Path = FileArg, store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, bootstrap: int = BootOpt, holdout_top: int = HoldoutOpt,
    seed: int = SeedOpt, compute: list[float] = ComputeOpt, at: list[str] = AtOpt,
    save: Path = SaveOpt, json_: bool = JsonOption, all_runs: bool = AllRunsOpt,
    best_per_point: bool = BestOpt, group_by: str = GroupByOpt,
) -> None:
    """Fit Kaplan et al. 2020's L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D.

    Example: scalinglab fit kaplan --store runs.duckdb --where "N > 1e7" --json
    """
    _fit_command("kaplan", file, store, where, tag, map_, bootstrap, holdout_top, seed,
                 compute, at, save, json_, all_runs, best_per_point, group_by)


@fit_app.command("power")
def power(
    file: Path = FileArg,
    x: str = typer.Option("C", "--x", help="The variable: N (parameters), D (tokens) or C (FLOPs)."),
    store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, bootstrap: int = BootOpt, holdout_top: int = HoldoutOpt,
    seed: int = SeedOpt, at: list[str] = AtOpt, save: Path = SaveOpt, json_: bool = JsonOption,
    all_runs: bool = AllRunsOpt, best_per_point: bool = BestOpt, group_by: str = GroupByOpt,
) -> None:
    """Fit a one-variable power law L = E + A x^-alpha, x one of N, D, C.

    Example: scalinglab fit power runs.csv --x C --at C=1e22 --json
    """
    if x not in ("N", "D", "C"):
        raise UserError(f"--x must be N, D or C, not {x!r}")
    _fit_command(f"power_{x}", file, store, where, tag, map_, bootstrap, holdout_top, seed,
                 None, at, save, json_, all_runs, best_per_point, group_by)


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
    json_: bool = JsonOption, all_runs: bool = AllRunsOpt, best_per_point: bool = BestOpt,
    group_by: str = GroupByOpt,
) -> None:
    """Fit N_opt = k C^a and D_opt = k' C^b by Hoffmann et al.'s Approaches 1 and 2.

    Approach 1 takes the best run at each compute budget, Approach 2 the vertex of a parabola
    of loss against log N (IsoFLOP profile); intervals come from resampling runs within budgets.

    Example: scalinglab fit isoflop runs.csv --budget budget --compute 1e22
    """
    from scalinglab.fit.data import load_runs
    from scalinglab.fit.isoflop import fit_isoflop
    from scalinglab.runs.io import parse_pairs

    frame, source, notes = load_runs(file, store, where, _tags(tag), ("N", "D", "C"),
                                     parse_pairs(map_, "--map"), all_runs, best_per_point,
                                     _columns(group_by))
    with err_console.status("fitting IsoFLOP parabolas", spinner="dots") if not json_ else _null():
        result = fit_isoflop(frame, bootstrap=bootstrap, seed=seed, budget=budget, tol_dex=tol_dex,
                             source=source)
    result.notes[:0] = notes
    budgets = compute or None
    if save is not None:
        save.write_text(to_json(result.to_dict(include_draws=True, compute=budgets)))
    if json_:
        emit_json(result.to_dict(compute=budgets))
        return
    print_summary(result.summary(compute=budgets))


@contextmanager
def _null() -> Iterator[None]:
    yield None
