"""``scalinglab import``, ``scalinglab runs`` and ``scalinglab store``: getting runs in,
looking at them, and looking after the store file."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from scalinglab.clikit import DEFAULT_STORE, UserError, console, emit_json, new_app
from scalinglab.runs.io import parse_pairs

_INVALID_HELP = ("What a bad row does: reject (the import; lists up to 20 bad rows), skip (it), "
                 "or failed (import it as a failed run with the reason).")
_CONFLICT_HELP = ("A run id already seen with other values: error (default; names both rows), "
                  "keep (the stored or first one) or replace (with the incoming row).")


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
    invalid: str = typer.Option("reject", "--invalid", help=_INVALID_HELP),
    on_conflict: str = typer.Option("error", "--on-conflict", help=_CONFLICT_HELP),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
    json_: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Import runs into the store, all rows or none.

    Columns: N (non-embedding parameters), D (tokens) or C (FLOPs), loss; optional name,
    status, error, run_id, lr, batch_tokens (or batch_size with --seq-len), weight_decay,
    seq_len, tags, dataset, architecture, curve. Other columns are kept as extras. Common
    spellings are recognised (a W&B runs export needs no --map: Name, State, Tags, params,
    tokens, train/loss, _step). Re-importing is a no-op.

    Example: scalinglab import runs.csv --map loss=final_loss,N=params --tag dataset=c4
    """
    from scalinglab.errors import ConflictError
    from scalinglab.runs.columns import MissingColumn
    from scalinglab.runs.store import InvalidRows, RunStore

    try:
        report = RunStore(store).import_file(
            file,
            mapping=parse_pairs(map_, "--map"),
            tags=parse_pairs(tag, "--tag"),
            seq_len=seq_len,
            scale=parse_pairs(scale, "--scale"),
            invalid=invalid,
            on_conflict=on_conflict,
        )
    except InvalidRows as exc:
        raise UserError(f"{exc}; nothing was imported (--invalid skip leaves such rows out, "
                        "--invalid failed keeps them as failed runs)") from None
    except MissingColumn as exc:
        hint = f"({exc.name}=YOUR_COLUMN)"
        raise UserError(str(exc).replace(hint, f"with --map {exc.name}=YOUR_COLUMN")) from None
    except ConflictError as exc:
        raise UserError(f"{exc}; nothing was imported (--on-conflict keep or replace "
                        "decides)") from None
    if json_:
        emit_json({**report.to_dict(), "store": str(store)})
        return
    for note in report.notes:
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


def list_runs(
    where: str = typer.Option(
        None, "--where", "-w",
        help="Filter expression over the run columns, e.g. \"N > 1e8 AND tags->>'dataset' = "
        "'c4'\" (no statements or subqueries)."),
    tag: list[str] = typer.Option(None, "--tag", "-t", help="Only runs with tag KEY=VALUE."),
    status: str = typer.Option("finished", "--status", help="finished, failed, running or all."),
    limit: int = typer.Option(50, "--limit", help="Rows to show in the table (JSON shows all)."),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
    json_: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List runs in the store as a table. Reads only: never writes or creates a file.

    Example: scalinglab runs --where "N > 1e8 AND lr < 1e-3" --tag dataset=c4
    """
    from scalinglab.runs.store import RunStore

    statuses = ("finished", "failed", "running", "all")
    if status not in statuses:
        raise UserError(f"--status must be one of {', '.join(statuses)}, not {status!r}")
    if limit < 0:
        raise UserError(f"--limit must be 0 or more, not {limit}")
    df = RunStore(store, read_only=True).runs(
        where=where, status=None if status == "all" else status, tags=parse_pairs(tag, "--tag")
    )
    if json_:
        emit_json(df.to_dict(orient="records"))
        return
    table = Table(title=f"{len(df)} runs in {store}", header_style="bold", box=box.SIMPLE_HEAD)
    shown = df.head(limit)
    named = bool(shown["name"].notna().any())
    numbers = ("N", "D", "loss", "lr", "batch_tokens")  # C (6ND unless given) is in --json
    cells = {c: [_num(v) for v in shown[c]] for c in numbers}
    table.add_column("run_id", no_wrap=True, max_width=10)
    if named:
        widest = int(shown["name"].dropna().astype(str).str.len().max())
        table.add_column("name", overflow="fold", min_width=min(widest, 16))
    for c in numbers:  # numbers are never cut: 1.2e7 rather than 1.2…
        width = max([len(c), *(len(x) for x in cells[c])])
        table.add_column(c if c != "batch_tokens" else "batch", justify="right", no_wrap=True,
                         min_width=min(width, 8))
    table.add_column("status", no_wrap=True)
    table.add_column("tags", overflow="fold", min_width=8)
    errors = []
    for i, (_, r) in enumerate(shown.iterrows()):
        status = str(r["status"])
        label = str(r["name"]) if isinstance(r["name"], str) else str(r["run_id"])
        if status != "finished" and isinstance(r["error"], str) and r["error"]:
            errors.append(f"  {escape(label)}: {escape(r['error'])}")
        table.add_row(
            escape(str(r["run_id"])),
            *([escape(str(r["name"])) if isinstance(r["name"], str) else "-"] if named else []),
            *(cells[c][i] for c in numbers),
            status if status == "finished" else f"[red]{escape(status)}[/]",
            escape(",".join(f"{k}={v}" for k, v in r["tags"].items())),
        )
    console.print(table)
    if errors:
        console.print("[bold]why the runs that did not finish stopped:[/]")
        for line in errors:
            console.print(line, highlight=False)
    if len(df) > limit:
        console.print(f"... {len(df) - limit} more (use --limit or --json)")


def _num(v: object) -> str:
    """Compact: ``3.91``, ``2048``, ``1.2e7`` (no ``e+07``), ``-`` for none."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    x = float(v)
    if x.is_integer() and abs(x) < 1e6:
        return str(int(x))
    text = f"{x:.4g}" if x == 0 or 1e-3 <= abs(x) < 1e5 else f"{x:.3g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


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


def register(app: typer.Typer) -> None:
    app.command("import")(import_runs)
    app.command("runs")(list_runs)
    app.add_typer(store_app)
