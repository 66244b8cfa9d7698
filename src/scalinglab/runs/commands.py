"""``scalinglab import`` and ``scalinglab runs``: getting runs in, and looking at them."""

from __future__ import annotations

from pathlib import Path

import typer

from scalinglab.clikit import (
    DEFAULT_STORE,
    FormatOption,
    TagOption,
    console,
    emit_json,
    output_format,
    parse_tags,
    print_table,
)
from scalinglab.runs.io import parse_pairs


def import_runs(
    file: Path = typer.Argument(..., help="CSV, TSV, Parquet or JSONL file of runs."),
    map_: list[str] = typer.Option(
        None, "--map", "-m",
        help="Rename columns: SCALINGLAB_NAME=FILE_COLUMN (repeatable or comma-separated).",
    ),
    tag: list[str] = typer.Option(None, "--tag", "-t", help="Tag every run: KEY=VALUE."),
    scale: list[str] = typer.Option(
        None, "--scale", help="Unit factor for a column, e.g. N=1e6 when N is in millions."
    ),
    seq_len: int = typer.Option(
        None, "--seq-len", help="Tokens per sequence, when the batch is given in sequences."
    ),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
    json_: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Import runs into the store, all rows or none.

    Columns: N (non-embedding parameters), D (tokens) or C (FLOPs), loss; optional lr,
    batch_tokens (or batch_size with --seq-len), weight_decay, seq_len, tags, dataset,
    architecture, run_id, curve. Other columns are kept as extras. Re-importing is a no-op.

    Example: scalinglab import runs.csv --map loss=final_loss,N=params --tag dataset=c4
    """
    from scalinglab.runs.store import RunStore

    report = RunStore(store).import_file(
        file,
        mapping=parse_pairs(map_, "--map"),
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


def list_runs(
    where: str = typer.Option(None, "--where", "-w", help="SQL filter, e.g. \"N > 1e8\"."),
    tag: list[str] = TagOption,
    status: str = typer.Option("finished", "--status", help="finished, failed, running or all."),
    limit: int = typer.Option(50, "--limit", help="Rows to show in the table (JSON shows all)."),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
    json_: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    fmt: str = FormatOption,
) -> None:
    """List runs in the store as a table.

    Example: scalinglab runs --where "N > 1e8 AND lr < 1e-3" --tag dataset=c4
    """
    from scalinglab.runs.store import RunStore

    df = RunStore(store, read_only=True).runs(
        where=where, status=None if status == "all" else status, tags=parse_tags(tag)
    )
    fmt = output_format(fmt, json_)
    if fmt == "json":
        emit_json(df.to_dict(orient="records"))
        return
    cols = ["run_id", "N", "D", "C", "loss", "lr", "batch_tokens", "status", "tags"]
    shown = df if fmt != "table" else df.head(limit)
    # every value in full: a piped table is data (scalinglab runs | cat), not a glance
    print_table(cols, ([r[c] for c in cols] for r in shown.to_dict("records")),
                title=f"{len(df)} runs in {store}" if fmt == "table" else "", fmt=fmt)
    if fmt == "table" and len(df) > limit:
        console.print(f"... {len(df) - limit} more (use --limit, --format csv or --json)")


def register(app: typer.Typer) -> None:
    app.command("import")(import_runs)
    app.command("runs")(list_runs)
