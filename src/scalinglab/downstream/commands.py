"""``scalinglab fit downstream``, ``scalinglab fit benchmark`` and ``scalinglab predict downstream``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from scalinglab.clikit import (
    JsonOption,
    UnitsOption,
    UserError,
    bootstrap_option,
    new_app,
    parse_units,
    quantities,
    show_results,
)

predict_app = new_app(
    help="Predict from saved fits, with intervals: downstream metrics at a model size and token "
    "count chained through a loss law (joint bootstrap intervals), one loss from another "
    "(`predict loss-to-loss`), a loss curve under an lr schedule (`predict curve`).",
    no_args_is_help=True,
)

FileArg = typer.Argument(..., help="CSV, TSV, Parquet or JSONL with one row per model (or run).",
                         show_default=False)
MetricOpt = typer.Option(..., "--metric", help="Metric column, or a pattern such as 'err_*' "
                         "(repeatable); every match is fitted and shown in one table.")
BootOpt = bootstrap_option()
SeedOpt = typer.Option(0, "--seed", help="Random seed of the bootstrap (results are deterministic).")
WhereOpt = typer.Option(None, "--where", "-w", help="Keep rows where this SQL holds, e.g. "
                        "\"tok_mult = 20 AND N < 2e9\" (quote odd names: \"\\\"FLOPs (1E21)\\\" < 84\").")
IdOpt = typer.Option(None, "--id", help="Column naming each row (default: run_id, model, Model or "
                     "name if present, else the row number).")
SaveOpt = typer.Option(None, "--save", help="Write the fit with its bootstrap draws to this JSON file.")


def fit_downstream(
    file: Path = FileArg,
    metric: list[str] = MetricOpt,
    loss: str = typer.Option("loss", "--loss", "-l", help="Column of the loss the metric is linked to "
                             "(e.g. loss_c4_val); a loss law must predict this same loss."),
    link: str = typer.Option("exp", "--link", help="exp: Gadre et al.'s Err = eps - k exp(-gamma L); "
                             "sigmoid: y = lo + (hi - lo)/(1 + exp(-s (L - x0)))."),
    floor: float = typer.Option(None, "--floor", help="sigmoid: fix lo (e.g. chance accuracy) "
                                "instead of fitting it.", show_default=False),
    ceiling: float = typer.Option(None, "--ceiling", help="sigmoid: fix hi (e.g. 1) instead of "
                                  "fitting it.", show_default=False),
    where: str = WhereOpt, id_: str = IdOpt,
    cluster: str = typer.Option(None, "--cluster", help="Column whose equal values are resampled "
                                "together (e.g. checkpoints of one model)."),
    units: list[str] = UnitsOption,
    bootstrap: int = BootOpt, seed: int = SeedOpt, save: Path = SaveOpt, json_: bool = JsonOption,
) -> None:
    """Fit downstream metrics (errors, accuracies) against a loss: one link per metric column.

    Example: scalinglab fit downstream models.csv --metric 'err_*' --loss loss_c4_val --save link.json
    """
    from scalinglab.downstream.link_fit import fit_links
    from scalinglab.downstream.links import LINKS
    from scalinglab.downstream.table import read_models

    if link not in LINKS:
        raise UserError(f"--link must be one of {', '.join(sorted(LINKS))}, not {link!r}")
    fixed = {k: v for k, v in (("lo", floor), ("hi", ceiling)) if v is not None}
    if fixed and link != "sigmoid":
        raise UserError("--floor and --ceiling apply to --link sigmoid only")
    table = read_models(file, parse_units(units)).where(where)
    names = [m for m in table.match(metric) if m != loss]
    if not names:
        raise UserError(f"--metric {metric!r} matches only the loss column {loss!r}")
    x = table.numbers(loss, missing_ok=True)
    result = fit_links(x, {m: table.numbers(m) for m in names}, link, x_name=loss, fixed=fixed,
                       bootstrap=bootstrap, seed=seed,
                       cluster=None if cluster is None else table.text(cluster),
                       run_ids=table.ids(id_))
    if not result.fits:
        reasons = "; ".join(f"{m}: {why}" for m, why in result.failed.items())
        raise UserError(f"{table.source}: no metric could be fitted ({reasons})")
    if where:
        result.notes.insert(0, f"rows where {where}: {len(table)}")
    show_results(result, save, json_)


def _chance(items: list[str] | None, flag: str = "--chance",
            default: float | None = 0.0) -> tuple[float | None, dict[str, float | None]]:
    """``--chance 0.25`` (every metric) and/or ``--chance MMLU=0.25`` / ``--chance NAME=fit``
    (``--ceiling`` reads the same way)."""
    from scalinglab.values import parse_quantity as parse_number  # the one human-number parser

    per: dict[str, float | None] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        text = value if sep else key
        if text.strip().lower() == "fit":
            v = None
        else:
            try:
                v = parse_number(text)
            except (TypeError, ValueError):
                raise UserError(f"{flag} {item!r}: give a number, NAME=NUMBER, or NAME=fit") from None
        if sep:
            per[key.strip()] = v
        else:
            default = v
    return default, per


def fit_benchmark_command(
    file: Path = FileArg,
    metric: list[str] = MetricOpt,
    compute: str = typer.Option("C", "--compute", "-c", help="Column of training FLOPs."),
    compute_scale: float = typer.Option(1.0, "--compute-scale", help="Multiply the compute column by "
                                        "this (e.g. 1e21 for a column in units of 1e21 FLOPs)."),
    chance: list[str] = typer.Option(None, "--chance", help="Floor of the sigmoid: a number for every "
                                     "metric, NAME=NUMBER for one, NAME=fit to fit it (default 0)."),
    ceiling: list[str] = typer.Option(None, "--ceiling", help="Ceiling of the sigmoid: a number "
                                      "for every metric, NAME=NUMBER for one, NAME=fit to fit it "
                                      "(default 1)."),
    predictor: list[str] = typer.Option(None, "--predictor", help="Benchmarks the observational law "
                                        "predicts from (column or pattern, repeatable; default: the "
                                        "other --metric columns). Targets are the --metric columns."),
    observational: bool = typer.Option(False, "--observational", help="Fit Ruan et al.'s "
                                       "observational law even without --family (no compute offsets)."),
    fit_below: float = typer.Option(None, "--fit-below", help="Fit on models with at most this many "
                                    "FLOPs and score the larger ones.", show_default=False),
    family: str = typer.Option(None, "--family", help="Column of model families: also fit Ruan et "
                               "al.'s observational law (principal components of the other metrics, "
                               "per-family compute offsets, sigmoid link)."),
    components: int = typer.Option(3, "--components", min=1, help="Principal components (with --family)."),
    where: str = WhereOpt, id_: str = IdOpt,
    units: list[str] = UnitsOption,
    bootstrap: int = BootOpt, seed: int = SeedOpt, save: Path = SaveOpt, json_: bool = JsonOption,
) -> None:
    """Fit benchmark accuracy against log training compute: a sigmoid between chance and 1.

    Example: scalinglab fit benchmark evals.csv --metric MMLU --metric ARC-C --compute "FLOPs (1E21)" --compute-scale 1e21 --chance 0.25 --fit-below 8.4e22 --family "Model Family"
    """
    from scalinglab.downstream.benchmark import fit_benchmarks
    from scalinglab.downstream.observational import fit_observational
    from scalinglab.downstream.table import read_models
    from scalinglab.errors import NotIdentifiable

    if not compute_scale > 0:
        raise UserError("--compute-scale must be positive")
    table = read_models(file, parse_units(units)).where(where)
    names = [m for m in table.match(metric) if m not in (compute, family)]
    preds = [m for m in table.match(predictor) if m not in (compute, family, *names)] if predictor else []
    no_flops = compute not in table.columns and (bool(preds) or observational)
    if no_flops and fit_below is not None:
        raise UserError(f"--fit-below needs the compute column {compute!r}, which the file lacks")
    # observational scaling needs no FLOPs: without a compute column the targets are predicted
    # from the predictors alone (no sigmoid in compute, no family offsets)
    C = np.full(len(table), np.nan) if no_flops else table.numbers(compute, positive=True) * compute_scale
    scores = {m: table.numbers(m) for m in names}
    default, per = _chance(chance)
    floors = {m: per.get(m, default) for m in names}
    top_default, top_per = _chance(ceiling, "--ceiling", 1.0)
    tops = {m: top_per.get(m, top_default) for m in names}
    for flag, given in (("--chance", per), ("--ceiling", top_per)):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise UserError(f"{flag} names {unknown}, which are not among the metrics {names}")
    ids = table.ids(id_)
    if no_flops:
        from scalinglab.downstream.benchmark import BenchmarkTable

        result = BenchmarkTable(fits={}, fit_below=None, notes=[
            f"no compute column {compute!r}: no sigmoid in compute; targets predicted from "
            "their predictor benchmarks only"])
    else:
        result = fit_benchmarks(C, scores, chance=floors, ceiling=tops, fit_below=fit_below,
                                model_ids=ids, bootstrap=bootstrap, seed=seed)
    if family is not None or observational or preds:
        others = {m: table.numbers(m) for m in preds}
        need = components + (0 if preds else 1)
        if len(preds or names) < need:
            flag = "--family" if family is not None and not preds else "the observational law"
            raise UserError(f"{flag} needs at least {need} metrics (each is predicted from "
                            f"{components} components of {'the predictors' if preds else 'the others'}); "
                            f"got {len(preds or names)}")
        fams = None if family is None else table.text(family)
        for m in names:
            pool = {m: scores[m], **others} if preds else scores
            try:
                result.observational[m] = fit_observational(
                    pool, m, compute=None if no_flops else C, family=None if no_flops else fams, fit_below=fit_below, n_components=components,
                    chance=floors[m], ceiling=tops[m], model_ids=ids, bootstrap=bootstrap, seed=seed)
            except NotIdentifiable as exc:
                result.failed[f"{m} (observational)"] = str(exc)
    if not result.fits and not result.observational:
        reasons = "; ".join(f"{m}: {why}" for m, why in result.failed.items())
        raise UserError(f"{table.source}: no metric could be fitted ({reasons})")
    show_results(result, save, json_)


def load_loss_law(spec: str) -> Any:
    """A saved fit (``fit chinchilla --save``) or the name of a published loss law."""
    from scalinglab.laws.resolve import resolve

    return resolve(spec, "loss_law", param="--loss-law")


def load_link(path: Path) -> Any:
    """A link saved by ``fit downstream --save`` (one metric or a table of them)."""
    from scalinglab.laws.resolve import resolve

    return resolve(path, "link", param="--link")


def predict_downstream(
    loss_law: str = typer.Option(..., "--loss-law", help="Loss-law fit saved with `fit chinchilla "
                                 "--save` (its bootstrap draws are used), or a published law's name."),
    link: Path = typer.Option(..., "--link", help="Link saved with `fit downstream --save`."),
    params: list[str] = typer.Option(..., "--params", "-N", callback=quantities("--params", positive=True),
                                     help="Model size(s) N, e.g. 7B (repeatable or "
                                     "comma-separated; paired with --tokens)."),
    tokens: list[str] = typer.Option(..., "--tokens", "-D", callback=quantities("--tokens", positive=True),
                                     help="Training tokens D (one, or one per N)."),
    seed: int = SeedOpt, save: Path = SaveOpt, json_: bool = JsonOption,
) -> None:
    """Predict the loss and the downstream metric(s) at (N, D): loss law, then link, with intervals
    from pairing the two fits' bootstrap draws.

    Example: scalinglab predict downstream --loss-law fit.json --link link.json --params 7e9 --tokens 1.4e11 --json
    """
    from scalinglab.downstream.chain import chain

    N, D = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)  # typed: numbers
    if len(N) != len(D) and 1 not in (len(N), len(D)):
        raise UserError(f"{len(N)} values of --params but {len(D)} of --tokens: give one each, or one "
                        "of them once")
    result = chain(load_loss_law(loss_law), load_link(link), N, D, seed=seed)
    show_results(result, save, json_)


predict_app.command("downstream")(predict_downstream)


__all__ = ["fit_benchmark_command", "fit_downstream", "load_link", "load_loss_law", "predict_app",
           "predict_downstream"]
