"""``scalinglab import`` and ``scalinglab runs``: getting runs in, and looking at them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from scalinglab.clikit import DEFAULT_STORE, UserError, console, emit_json, new_app
from scalinglab.runs.io import parse_pairs


def import_runs(
    file: str = typer.Argument(..., help="CSV, TSV, Parquet or JSONL file of runs; with --from, "
                               "a TensorBoard log dir, an mlruns folder or sqlite:/// URI, a W&B "
                               "history export, or a training log (or folder of logs)."),
    mapping: list[str] = typer.Option(
        None, "--map", "-m",
        help="Rename columns: SCALINGLAB_NAME=FILE_COLUMN (repeatable or comma-separated); with "
        "--from, SCALINGLAB_NAME=HPARAM_PARAM_OR_METRIC.",
    ),
    tag: list[str] = typer.Option(None, "--tag", "-t", help="Tag every run: KEY=VALUE."),
    scale: list[str] = typer.Option(
        None, "--scale", help="Unit factor for a column, e.g. N=1e6 when N is in millions."
    ),
    seq_len: int = typer.Option(
        None, "--seq-len", help="Tokens per sequence, when the batch is given in sequences."
    ),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
    from_: str = typer.Option("file", "--from",
                              help="file, or where the runs live: tensorboard, mlflow, wandb, log."),
    loss_tag: str = typer.Option(None, "--loss-tag", help="--from: the loss scalar, metric or "
                                 "column (default: the one usual loss name logged)."),
    eval_tag: str = typer.Option(None, "--eval-tag", help="--from: a held-out loss to keep."),
    final: str = typer.Option(None, "--final", help="--from: final loss from the curve: last, min "
                              "or ema:K (default last; log: ema:10)."),
    settings: list[str] = typer.Option(None, "--set", help="--from: KEY=VALUE for every run, or "
                                       "a CSV/JSON file of values per run (run -> N, D, ...)."),
    experiment: str = typer.Option(None, "--experiment", help="--from mlflow: one experiment."),
    log_format: str = typer.Option(None, "--format", help="--from log: nanogpt, megatron or "
                                   "scalinglab (default: detected)."),
    pattern: str = typer.Option(None, "--pattern", help="--from log: a regex with (?P<step>..) "
                                "and (?P<loss>..), optionally (?P<tokens>..)."),
    json_: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Import runs into the store, all rows or none.

    Columns: N (non-embedding parameters), D (tokens) or C (FLOPs), loss; optional lr,
    batch_tokens (or batch_size with --seq-len), weight_decay, seq_len, tags, dataset,
    architecture, run_id, curve. Other columns are kept as extras. Re-importing is a no-op.

    With --from, runs are read where they live, each with its loss curve; crashed, diverged and
    killed runs are kept as failed, with the reason.

    Example: scalinglab import runs.csv --map loss=final_loss,N=params --tag dataset=c4

    Example: scalinglab import tb_logs/ --from tensorboard --loss-tag train/loss --set sizes.csv
    """
    from scalinglab.runs.store import RunStore

    if from_ != "file":
        return _import_tracked(file, from_, store, json_, mapping=mapping, tag=tag, scale=scale,
                               seq_len=seq_len, loss_tag=loss_tag, eval_tag=eval_tag, final=final,
                               settings=settings, experiment=experiment, log_format=log_format,
                               pattern=pattern)
    tracker_only = {"--loss-tag": loss_tag, "--eval-tag": eval_tag, "--final": final,
                    "--set": settings, "--experiment": experiment, "--format": log_format,
                    "--pattern": pattern}
    given = [flag for flag, v in tracker_only.items() if v]
    if given:
        raise UserError(f"{', '.join(given)} only apply with --from tensorboard|mlflow|wandb|log")
    report = RunStore(store).import_file(
        file,
        mapping=parse_pairs(mapping, "--map"),
        tags=parse_pairs(tag, "--tag"),
        seq_len=seq_len,
        scale=parse_pairs(scale, "--scale"),
    )
    if json_:
        emit_json({**report.to_dict(), "store": str(store)})
        return
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}" if not note.startswith("warning") else f"[bold yellow]{note}")
    console.print(
        f"[green]imported[/] {report.n_inserted} new runs from {file} into {store} "
        f"({report.n_skipped_duplicates} already there"
        + (f", {report.n_curve_points} curve points" if report.n_curve_points else "")
        + ")"
    )


def _import_tracked(path: str, kind: str, store: Path, json_: bool, **opts: Any) -> None:
    """``import --from KIND``: read with the tracker's reader, then the store's one pipeline."""
    from scalinglab.runs import io as runs_io
    from scalinglab.runs.store import RunStore
    from scalinglab.runs.trackers import SOURCES, RunSettings, read_tracker

    if kind not in SOURCES:
        raise UserError(f"--from must be file, {', '.join(SOURCES)}, not {kind!r}")
    pairs = [x for x in opts["settings"] or [] if "=" in x]
    files = [x for x in opts["settings"] or [] if "=" not in x]
    if len(files) > 1:
        raise UserError(f"--set takes one mapping file, not {len(files)} ({', '.join(files)})")
    constants = parse_pairs(pairs, "--set")
    if opts["seq_len"] is not None:
        constants.setdefault("seq_len", str(opts["seq_len"]))
    result = read_tracker(
        kind, path, loss_tag=opts["loss_tag"], eval_tag=opts["eval_tag"],
        mapping=parse_pairs(opts["mapping"], "--map"), final=opts["final"],
        settings=RunSettings.build(constants, files[0] if files else None),
        experiment=opts["experiment"], log_format=opts["log_format"], pattern=opts["pattern"],
    )
    runs = runs_io.apply_scale(result.runs, parse_pairs(opts["scale"], "--scale"), path)
    report = RunStore(store).import_frame(runs, source=path, tags=parse_pairs(opts["tag"], "--tag"),
                                          seq_len=opts["seq_len"], curves=result.curves)
    report.notes = [*result.notes, *report.notes]
    if json_:
        emit_json({**report.to_dict(), "store": str(store), "from": kind,
                   "n_failed": result.n_failed})
        return
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}" if not note.startswith("warning") else f"[bold yellow]{note}")
    console.print(
        f"[green]imported[/] {report.n_inserted} new runs ({result.n_failed} failed) from {path} "
        f"into {store} ({report.n_skipped_duplicates} already there, {report.n_curve_points} "
        "curve points)"
    )


def list_runs(
    where: str = typer.Option(None, "--where", "-w", help="SQL filter, e.g. \"N > 1e8\"."),
    tag: list[str] = typer.Option(None, "--tag", "-t", help="Only runs with tag KEY=VALUE."),
    status: str = typer.Option("finished", "--status", help="finished, failed, running or all."),
    limit: int = typer.Option(50, "--limit", help="Rows to show in the table (JSON shows all)."),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
    json_: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List runs in the store as a table.

    Example: scalinglab runs --where "N > 1e8 AND lr < 1e-3" --tag dataset=c4
    """
    from scalinglab.runs.store import RunStore

    df = RunStore(store, read_only=True).runs(
        where=where, status=None if status == "all" else status, tags=parse_pairs(tag, "--tag")
    )
    if json_:
        emit_json(df.to_dict(orient="records"))
        return
    table = Table(title=f"{len(df)} runs in {store}", header_style="bold")
    named = bool(df["name"].notna().any()) if len(df) else False
    texts = ("run_id", "name", "status", "tags")
    for col in ("run_id", *(["name"] if named else []), "N", "D", "C", "loss", "lr",
                "batch_tokens", "status", "tags"):
        table.add_column(col, justify="left" if col in texts else "right")
    for _, r in df.head(limit).iterrows():
        table.add_row(
            str(r.run_id)[:20],
            *([str(r["name"]) if isinstance(r["name"], str) else "-"] if named else []),
            *(_num(r[c]) for c in ("N", "D", "C", "loss", "lr", "batch_tokens")),
            str(r.status) if r.status == "finished" else f"[red]{r.status}",
            ",".join(f"{k}={v}" for k, v in r.tags.items()),
        )
    console.print(table)
    if len(df) > limit:
        console.print(f"... {len(df) - limit} more (use --limit or --json)")


def _num(v: object) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{float(v):.4g}"


store_app = new_app(name="store", help="Look after a run store file.", no_args_is_help=True)


@store_app.command("migrate")
def migrate_store(
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
) -> None:
    """Bring a run store written by an older scalinglab to the current schema.

    Example: scalinglab store migrate --store runs.duckdb
    """
    from scalinglab.runs.store import SCHEMA_VERSION, RunStore

    old = RunStore(store).migrate()
    if old is None:
        console.print(f"{store} is already at schema version {SCHEMA_VERSION}")
    else:
        console.print(f"[green]migrated[/] {store} from schema version {old} to {SCHEMA_VERSION}")


def register(app: typer.Typer) -> None:
    app.command("import")(import_runs)
    app.command("runs")(list_runs)
    app.add_typer(store_app)
