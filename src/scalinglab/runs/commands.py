"""``scalinglab import``, ``scalinglab runs`` and ``scalinglab store``: getting runs in,
looking at them, and looking after the store file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from scalinglab.clikit import (
    DEFAULT_STORE,
    FormatOption,
    ScaleAliasOption,
    TagOption,
    UnitsOption,
    UserError,
    console,
    emit_json,
    err_console,
    new_app,
    output_format,
    parse_tags,
    parse_units,
    print_table,
)

_INVALID_HELP = ("What a bad row does: reject (the import; lists up to 20 bad rows), skip (it), "
                 "or failed (import it as a failed run with the reason).")
_CONFLICT_HELP = ("A run id already seen with other values: error (default; names both rows), "
                  "keep (the stored or first one) or replace (with the incoming row).")


def import_runs(
    file: str = typer.Argument(..., help="CSV, TSV, Parquet or JSONL file of runs; with --from, "
                               "a TensorBoard log dir, an mlruns folder or sqlite:/// URI, a W&B "
                               "history export, or a training log (or folder of logs)."),
    mapping: list[str] = typer.Option(
        None, "--map", "-m",
        help="Rename columns: SCALINGLAB_NAME=FILE_COLUMN (repeatable or comma-separated); with "
        "--from, SCALINGLAB_NAME=HPARAM_PARAM_OR_METRIC.",
    ),
    tag: list[str] = typer.Option(None, "--tag", "-t", metavar="KEY=VALUE",
                                  help="Tag every run: KEY=VALUE or KEY:VALUE (repeatable or "
                                  "comma-separated)."),
    units: list[str] = UnitsOption,
    scale: list[str] = ScaleAliasOption,
    seq_len: int = typer.Option(
        None, "--seq-len", help="Tokens per sequence, when the batch is given in sequences."
    ),
    invalid: str = typer.Option("reject", "--invalid", help=_INVALID_HELP),
    on_conflict: str = typer.Option("error", "--on-conflict", help=_CONFLICT_HELP),
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

    Columns: N (non-embedding parameters), D (tokens) or C (FLOPs), loss; optional name,
    status, error, run_id, lr, batch_tokens (or batch_size with --seq-len), weight_decay,
    seq_len, tags, dataset, architecture, curve. Other columns are kept as extras. Common
    spellings are recognised (a W&B runs export needs no --map: Name, State, Tags, params,
    tokens, train/loss, _step). Re-importing is a no-op.

    With --from, runs are read where they live, each with its loss curve; crashed, diverged and
    killed runs are kept as failed, with the reason.

    Example: scalinglab import runs.csv --map loss=final_loss,N=params --tag dataset=c4

    Example: scalinglab import tb_logs/ --from tensorboard --loss-tag train/loss --set sizes.csv
    """
    from scalinglab.errors import ConflictError
    from scalinglab.runs.columns import MissingColumn
    from scalinglab.runs.io import parse_pairs
    from scalinglab.runs.store import InvalidRows, RunStore

    tracked = None
    if from_ == "file":
        tracker_only = {"--loss-tag": loss_tag, "--eval-tag": eval_tag, "--final": final,
                        "--set": settings, "--experiment": experiment, "--format": log_format,
                        "--pattern": pattern}
        given = [flag for flag, v in tracker_only.items() if v]
        if given:
            raise UserError(f"{', '.join(given)} only apply with --from tensorboard|mlflow|wandb|log")
    given_units = parse_units(units, scale)
    try:
        if from_ != "file":
            tracked = _read_tracked(file, from_, mapping=mapping, seq_len=seq_len,
                                    loss_tag=loss_tag, eval_tag=eval_tag, final=final,
                                    settings=settings, experiment=experiment,
                                    log_format=log_format, pattern=pattern)
            report = RunStore(store).import_frame(
                _scaled(tracked.runs, given_units, file), source=file, tags=parse_tags(tag),
                seq_len=seq_len, curves=tracked.curves, invalid=invalid, on_conflict=on_conflict)
            report.notes = [*tracked.notes, *report.notes]
        else:
            report = RunStore(store).import_file(
                file,
                mapping=parse_pairs(mapping, "--map"),
                tags=parse_tags(tag),
                seq_len=seq_len,
                units=given_units,
                invalid=invalid,
                on_conflict=on_conflict,
            )
    except InvalidRows as exc:
        raise UserError(f"{exc}; nothing was imported (--invalid skip leaves such rows out, "
                        "--invalid failed keeps them as failed runs)") from None
    except MissingColumn as exc:
        if tracked is not None:  # no run logged it: the runs' columns are no help here
            raise UserError(f"{file}: no run logs {exc.name} under a known name; give it with "
                            f"--set {exc.name}=VALUE, a file of values per run (--set runs.csv), "
                            f"or --map {exc.name}=HPARAM") from None
        hint = f"({exc.name}=YOUR_COLUMN)"
        raise UserError(str(exc).replace(hint, f"with --map {exc.name}=YOUR_COLUMN")) from None
    except ConflictError as exc:
        raise UserError(f"{exc}; nothing was imported (--on-conflict keep or replace "
                        f"decides){_history_hint(file) if tracked is None else ''}") from None
    if json_:
        emit_json({**report.to_dict(), "store": str(store),
                   **({"from": from_, "n_failed_runs": tracked.n_failed} if tracked else {})})
        return
    from rich.markup import escape

    from scalinglab.summary import printable

    for note in report.notes:
        note = escape(printable(note))  # a note may quote a run's name or a file's cell
        line = f"[bold yellow]{note}" if note.startswith("warning") else f"[yellow]note:[/] {note}"
        console.print(line, highlight=False)
    extra = [f"{report.n_skipped_duplicates} already there"]
    if report.n_curve_points:
        extra.append(f"{report.n_curve_points} curve points")
    if report.n_failed:
        extra.append(f"{report.n_failed} as failed runs")
    if report.n_replaced:
        extra.append(f"{report.n_replaced} replaced")
    if report.n_kept:
        extra.append(f"{report.n_kept} conflicting rows left out")
    if report.n_skipped_invalid:
        extra.append(f"{report.n_skipped_invalid} invalid rows skipped")
    console.print(f"[green]imported[/] {report.n_inserted} new runs from {file} into {store} "
                  f"({', '.join(extra)})", highlight=False)


def _history_hint(file: str) -> str:
    """A hint for a run-id conflict in a file with W&B's ``_step`` column: a history export
    has a row per logged step, so each run's rows disagree, and ``--on-conflict keep`` would
    have kept its first step's loss as the run's."""
    from scalinglab.errors import ScalingLabError
    from scalinglab.runs.io import TableReader

    try:
        columns = TableReader(file).columns or []
    except ScalingLabError:
        return ""
    if "_step" not in columns:
        return ""
    return ("; its rows look like a W&B history export, a row per logged step: import it with "
            "--from wandb")


def _read_tracked(path: str, kind: str, **opts: Any) -> Any:
    """``import --from KIND``: the tracker's reader, with ``--set`` pairs and file taken apart."""
    from scalinglab.runs.io import parse_pairs
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
    return read_tracker(
        kind, path, loss_tag=opts["loss_tag"], eval_tag=opts["eval_tag"],
        mapping=parse_pairs(opts["mapping"], "--map"), final=opts["final"],
        settings=RunSettings.build(constants, files[0] if files else None),
        experiment=opts["experiment"], log_format=opts["log_format"], pattern=opts["pattern"],
    )


def _scaled(frame: Any, units: dict[str, str], source: str) -> Any:
    from scalinglab.runs import io as runs_io

    return runs_io.scale_columns(frame, units, source)


def list_runs(
    where: str = typer.Option(
        None, "--where", "-w",
        help="Filter expression over the run columns, e.g. \"N > 1e8 AND tags->>'dataset' = "
        "'c4'\" (no statements or subqueries); imported extra columns by name."),
    tag: list[str] = TagOption,
    status: str = typer.Option("finished", "--status", help="finished, failed, running or all."),
    limit: int = typer.Option(50, "--limit", help="Rows to show in the table (csv, tsv and JSON "
                              "show all)."),
    columns: list[str] = typer.Option(
        None, "--columns", "-c", metavar="A,B,...",
        help="Columns to show, in order (repeatable or comma-separated): run_id, name, N, D, C, "
        "loss, lr, batch_tokens, weight_decay, seq_len, status, error, source, tags, or an "
        "extra column's name. Default: every column for csv/tsv, the usual ones for a table."),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
    json_: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    fmt: str = FormatOption,
    forecast: bool = typer.Option(False, "--forecast", help="The final loss of every unfinished "
                                  "run with a curve and a known schedule, with an interval "
                                  "(multi-power law; see --fit)."),
    fit: Path = typer.Option(None, "--fit", help="With --forecast: a curve fit (fit curves "
                             "--save) whose shape the forecasts keep, fitting each run's level."),
) -> None:
    """List runs in the store as a table. Reads only: never writes or creates a file.

    --format csv writes every column (tags as JSON, each extra column as its own), missing
    values as empty cells and numbers in full, so pandas.read_csv reads the store's numbers
    back as numbers. Titles and notes go to stderr: stdout holds the runs alone.

    Example: scalinglab runs --where "N > 1e8 AND lr < 1e-3" --tag dataset=c4

    Example: scalinglab runs --format csv --columns run_id,N,D,loss > runs.csv
    """
    from scalinglab.errors import ParameterError
    from scalinglab.runs.export import export_frame, to_delimited
    from scalinglab.runs.store import RunStore

    if fit is not None and not forecast:  # it was ignored, and the plain listing shown
        raise UserError("--fit goes with --forecast (the curve fit the forecasts keep)")
    if forecast:
        from scalinglab.fit.curve_commands import forecast_runs

        forecast_runs(store, where, parse_tags(tag), fit, output_format(fmt, json_))
        return

    statuses = ("finished", "failed", "running", "all")
    if status not in statuses:
        raise UserError(f"--status must be one of {', '.join(statuses)}, not {status!r}")
    if limit < 0:
        raise UserError(f"--limit must be 0 or more, not {limit}")
    fmt = output_format(fmt, json_)
    run_store = RunStore(store, read_only=True)
    df = run_store.runs(where=where, status=None if status == "all" else status,
                        tags=parse_tags(tag))
    if fmt == "json" and not columns:
        emit_json(df.to_dict(orient="records"))
        return
    named = bool(df["name"].notna().any()) if len(df) else False
    failed = status != "finished" and bool((df["status"] != "finished").any()) if len(df) else False
    usual = ["run_id", *(["name"] if named else []), "N", "D", "C", "loss", "lr", "batch_tokens",
             "status", "tags", *(["error"] if failed else [])]
    try:
        flat = export_frame(df, columns or (usual if fmt == "table" else None))
    except ParameterError as exc:
        if not columns:
            raise UserError(f"--columns: {exc}") from None
        try:  # an extra column these runs lack, though others have it: an empty column
            flat = export_frame(df, columns, extra_keys=run_store.extra_keys())
        except ParameterError as exc:
            raise UserError(f"--columns: {exc}") from None
    if fmt in ("csv", "tsv"):
        typer.echo(to_delimited(flat, "," if fmt == "csv" else "\t"), nl=False)
        return
    if fmt == "json":
        emit_json(flat.astype(object).where(flat.notna(), None).to_dict(orient="records"))
        return
    shown = flat.head(limit)
    if "tags" in shown:  # KEY=VALUE words read better than JSON in a table
        shown = shown.assign(tags=[",".join(f"{k}={v}" for k, v in t.items()) if isinstance(t, dict)
                                   else "" for t in df["tags"].head(limit)])
    # every value in full: a piped table is data (scalinglab runs | cat), not a glance
    print_table(list(shown.columns),
                ([None if _missing(v) else v for v in r] for r in shown.itertuples(index=False)),
                title=f"{len(df)} runs in {store}")
    if len(df) > limit:
        err_console.print(f"... {len(df) - limit} more (use --limit, --format csv or --json)",
                          highlight=False)
    stopped = [(r["name"] if isinstance(r["name"], str) else r["run_id"], r["error"])
               for r in df.head(limit).to_dict("records")
               if r["status"] != "finished" and isinstance(r["error"], str) and r["error"]]
    if stopped:
        err_console.print("[bold]why the runs that did not finish stopped:[/]")
        for label, error in stopped:
            err_console.print(f"  {escape(str(label))}: {escape(error)}", highlight=False)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


store_app = new_app(name="store", help="Look after a run store file.", no_args_is_help=True)


@store_app.command("migrate")
def migrate_store(
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
) -> None:
    """Bring a run store written by an older scalinglab to the current schema.

    One transaction; reading an old store works without it, writing needs it.

    Example: scalinglab store migrate --store runs.duckdb
    """
    from scalinglab.runs.store import SCHEMA_VERSION, RunStore

    old = RunStore(store).migrate()
    if old is None:
        console.print(f"{store} is already at schema version {SCHEMA_VERSION}")
    else:
        console.print(f"[green]migrated[/] {store} from schema version {old} to "
                      f"{SCHEMA_VERSION}")


@store_app.command("info")
def store_info(
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
    json_: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Say what a store holds: its schema version and runs per status. Reads only.

    Example: scalinglab store info --store runs.duckdb
    """
    from scalinglab.runs.store import SCHEMA_VERSION, RunStore

    runs = RunStore(store, read_only=True)
    info = {"store": str(store), "schema_version": runs.version(), "runs": runs.counts()}
    if json_:
        emit_json(info)
        return
    note = "" if info["schema_version"] == SCHEMA_VERSION else \
        " (older: run 'scalinglab store migrate' before writing to it)"
    console.print(f"{store}: schema version {info['schema_version']}{note}; "
                  + (", ".join(f"{n} {s}" for s, n in sorted(info["runs"].items())) or "no runs"))


