"""``scalinglab report`` and ``scalinglab serve``.

matplotlib, FastAPI and uvicorn are imported inside the commands: they cost most of a second,
and every other command (and ``--help``) should start fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from scalinglab.clikit import DEFAULT_STORE, UserError, console, emit_json


def _tags(tag: list[str] | None) -> dict[str, str]:
    from scalinglab.report.analysis import parse_tag_filters

    return parse_tag_filters(tag or [])


def report(
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
    tag: list[str] = typer.Option(None, "--tag", "-t",
                                  help="Only runs with this tag, KEY:VALUE; repeat to combine."),
    law: list[str] = typer.Option(["chinchilla"], "--law",
                                  help="Loss law(s) to fit: chinchilla, kaplan, power_C, ..."),
    compute: float = typer.Option(None, "--compute",
                                  help="Budget to plan, FLOPs (default: 100x the largest run)."),
    bootstrap: int = typer.Option(200, "--bootstrap", min=0, help="Bootstrap resamples per fit."),
    holdout: int = typer.Option(0, "--holdout", min=0,
                                help="Hold out the k largest-compute runs to test extrapolation."),
    figures_dir: Path = typer.Option(None, "--figures",
                                     help="Also save every figure as PNG in this folder."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    json_: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write a self-contained HTML report of a run store: runs, fits with intervals,
    hyperparameter laws, the plan and warnings (figures embedded, no network needed).

    Examples:

        scalinglab report --store runs.duckdb --out report.html

        scalinglab report --tag dataset:c4 --law chinchilla --law kaplan --compute 1e22

        scalinglab report --figures figs/   # also save each figure as PNG
    """
    from scalinglab.report.analysis import loss_laws, summarise
    from scalinglab.report.html import render_report, save_figures
    from scalinglab.runs.store import RunStore

    unknown = [x for x in law if x not in loss_laws()]
    if unknown:
        raise UserError(f"--law {unknown[0]!r}: choose from {loss_laws()}")
    if compute is not None and not compute > 0:
        raise UserError(f"--compute must be a positive number of FLOPs, not {compute}")
    runs = RunStore(store, read_only=True)
    summary = summarise(runs, tags=_tags(tag), laws=law, compute=compute, bootstrap=bootstrap,
                        holdout=holdout, seed=seed)
    if summary.runs.empty:
        raise UserError(f"{store}: no finished runs" + (f" with tags {summary.tags}" if tag else ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(summary, runs), encoding="utf-8")
    saved = save_figures(runs, figures_dir, summary=summary) if figures_dir else {}
    if json_:
        emit_json({"report": str(out), "figures": {k: str(v) for k, v in saved.items()},
                   "fits": {name: o.value.to_dict() if o.ok else {"error": o.error}
                            for name, o in summary.fits.items()},
                   "warnings": summary.warnings})
        return
    console.print(f"wrote [bold]{out}[/] ({len(summary.runs)} runs, "
                  f"{len(summary.warnings)} warnings)")
    if saved:
        console.print(f"saved {len(saved)} figures in {figures_dir}")


def serve(
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port on 127.0.0.1."),
    bootstrap: int = typer.Option(100, "--bootstrap", min=0,
                                  help="Default bootstrap resamples per fit."),
) -> None:
    """Browse runs, fit laws and plan budgets in a local web dashboard (127.0.0.1 only).

    The store is opened read-only per request, so a sweep can keep writing to it.

    Examples:

        scalinglab serve --store runs.duckdb            # then open http://127.0.0.1:8765

        scalinglab serve --port 9000
    """
    import socket

    from scalinglab.report import server

    if not store.exists():
        raise UserError(f"{store}: no run store here (import runs or run a sweep first)")
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise UserError(f"port {port} on 127.0.0.1 is in use; pick another with --port") from None
    console.print(f"scalinglab dashboard for {store} at [bold]http://127.0.0.1:{port}[/] "
                  "(Ctrl+C to stop)")
    server.serve(store, port=port, bootstrap=bootstrap)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("serve")(serve)
