"""``scalinglab report`` and ``scalinglab serve``.

matplotlib, plotly, FastAPI and uvicorn are imported inside the commands: they cost most of a
second, and every other command (and ``--help``) should start fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from scalinglab.clikit import (
    DEFAULT_STORE,
    JsonOption,
    StoreOption,
    TagOption,
    UserError,
    bootstrap_option,
    check_output_early,
    console,
    emit_json,
    err_console,
    parse_tags,
    progress_display,
    quantity,
    write_file,
)

ResultOption = typer.Option(None, "--result", metavar="FILE",
                            help="A result saved with --save (fit downstream, fit benchmark, predict "
                            "downstream, testtime ...) to show as a section with its charts "
                            "(repeatable).")


def _make_folder(folder: Path, flag: str) -> None:
    """``--out`` may name a folder still to make; one that cannot be made is one line."""
    import os

    if os.path.lexists(folder) and not folder.is_dir():
        raise UserError(f"{flag}: {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{flag}: cannot create the folder {folder} "
                        f"({exc.strerror or type(exc).__name__})") from None


def _saved(paths: list[Path] | None) -> list:
    """The saved results, read before anything else: a bad file stops the command first."""
    from scalinglab.report.saved import load_saved

    return load_saved(paths or [])


def report(
    store: Path = StoreOption,
    out: Path = typer.Option(Path("report.html"), "--out", "-o", metavar="FILE",
                             help="HTML file to write."),
    tag: list[str] = TagOption,
    where: str = typer.Option(None, "--where", "-w", metavar="EXPR",
                              help="Only runs satisfying this filter, e.g. \"N > 1e8 AND "
                              "tags->>'dataset' = 'c4'\" (the same language as `runs --where`)."),
    law: list[str] = typer.Option(["chinchilla"], "--law", metavar="LAW",
                                  help="Loss law(s) to fit (repeat): chinchilla, kaplan, "
                                  "power_C, ..."),
    compute: float | None = typer.Option(None, "--compute", metavar="FLOPS",
                                         parser=quantity("--compute", positive=True),
                                help="Budget to plan, e.g. 1e21 (default: 100x the largest run)."),
    bootstrap: int = bootstrap_option(None, "Bootstrap resamples per fit (0: none)."),
    holdout: int = typer.Option(0, "--holdout-top", "--holdout", min=0, metavar="K",
                                help="Hold out the K largest-compute runs and report how well "
                                "the law predicts them."),
    seq_len: int = typer.Option(None, "--seq-len", min=1, metavar="TOKENS",
                                help="Sequence length of the plan (default: the runs')."),
    batch_tokens: float | None = typer.Option(None, "--batch-tokens", metavar="TOKENS",
                                              parser=quantity("--batch-tokens", positive=True),
                                     help="Batch of the plan in tokens (default: the runs' when "
                                     "they share one, else the lr/batch law's)."),
    figures_dir: Path = typer.Option(None, "--figures", metavar="DIR",
                                     help="Also save every figure as a static PNG in DIR."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    rolling: bool = typer.Option(None, "--rolling/--no-rolling",
                                 help="Check each law rolling forward in compute: fit below each "
                                 "budget, predict the runs above (default: when the runs span at "
                                 "least 3 compute budgets; --rolling tries with 2)."),
    result: list[Path] = ResultOption,
    json_: bool = JsonOption,
) -> None:
    """Write a self-contained HTML report of a run store: runs, fits with intervals and their
    quality, held-out and rolling-forward checks, compute-optimal allocation, hyperparameter laws, the plan and
    warnings, with interactive charts (no network needed to open it).

    \b
    Examples:
      scalinglab report --store runs.duckdb --out report.html
      scalinglab report --tag dataset:c4 --law chinchilla --law kaplan --compute 1e22
      scalinglab report --holdout-top 5 --figures figs/   # also save each figure as PNG
      scalinglab report --no-rolling --bootstrap 50       # faster: no rolling-forward refits
      scalinglab report --result link.json --result coverage.json   # saved fits as sections
    """
    from scalinglab.report.html import render_report, save_figures
    from scalinglab.runs.store import RunStore
    from scalinglab.study import Study
    from scalinglab.study.analysis import loss_laws

    unknown = [x for x in law if x not in loss_laws()]
    if unknown:
        raise UserError(f"--law {unknown[0]!r}: choose from {', '.join(loss_laws())}")
    loaded = _saved(result)
    if loaded and not os.path.lexists(store):
        # saved results alone (fitted from files, no run store): a report of them, said so
        from scalinglab.report.dashboard_api import EmptyStore

        runs: Any = EmptyStore(store)
    else:
        runs = RunStore(store, read_only=True)
    # outputs checked before the fits (minutes), not after: never the store, an input, a folder
    check_output_early(out, "--out")
    if figures_dir is not None and os.path.lexists(figures_dir) and not figures_dir.is_dir():
        raise UserError(f"--figures {figures_dir}: is a file, not a folder")
    tags = parse_tags(tag)
    with progress_display() as progress:
        study = Study(runs, tags=tags, where=where, bootstrap=bootstrap, seed=seed)
        summary = study.summarise(laws=law, compute=compute, holdout=holdout, seq_len=seq_len,
                                  batch_tokens=batch_tokens, progress=progress, rolling=rolling)
        if summary.runs.empty and not loaded:
            raise UserError(f"{store}: no finished runs" + (f" with tags {summary.tags}" if tag else "")
                            + (f" where {where}" if where else ""))
        summary.results += loaded
        html = render_report(summary, runs, progress=progress)
        _make_folder(out.parent, "--out")
        write_file(out, html, "--out")
        saved = save_figures(runs, figures_dir, summary=summary, progress=progress) if figures_dir else {}
    if json_:
        emit_json({"report": str(out), "figures": {k: str(v) for k, v in saved.items()},
                   "fits": {name: o.value.to_dict() if o.ok else {"error": o.error}
                            for name, o in summary.fits.items()},
                   "rolling": None if summary.rolling is None else {
                       name: o.value.to_dict() if o.ok else {"error": o.error}
                       for name, o in summary.rolling.items()},
                   "plan": (summary.plan.value.to_dict()
                            if summary.plan.ok and not summary.runs.empty else None),
                   "warnings": summary.warnings if not summary.runs.empty else [],
                   "results": [s.to_json() for s in loaded]})
        return
    shown = f", {len(loaded)} saved results" if loaded else ""
    if summary.runs.empty:
        err_console.print(f"note: no finished runs in {store}: the report shows the saved results "
                          "alone", highlight=False)
    console.print(f"wrote [bold]{out}[/] ({len(summary.runs)} runs{shown}, "
                  f"{len(summary.warnings) if not summary.runs.empty else 0} warnings)",
                  highlight=False)
    if saved:
        console.print(f"saved {len(saved)} figures in {figures_dir}", highlight=False)


def serve(
    store: Path = StoreOption,
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to listen on."),
    host: list[str] = typer.Option(None, "--host", metavar="NAME",
                                   help="Also answer for this host name (repeatable; the first "
                                   "is the address listened on). Default: 127.0.0.1 only."),
    bootstrap: int = bootstrap_option(None, "Default bootstrap resamples per fit."),
    result: list[Path] = ResultOption,
) -> None:
    """Watch a run store in a local web dashboard: runs by budget, the current fit and the plan
    on load, fits pinned side by side, overlaid loss curves, refreshing live while a sweep writes.

    The store is opened read-only per request, so a sweep can keep writing to it. The dashboard
    answers only for 127.0.0.1 and localhost (and the names given with --host), so a web page
    elsewhere cannot read the store through a rebound DNS name.

    \b
    Examples:
      scalinglab serve --store runs.duckdb            # then open http://127.0.0.1:8765
      scalinglab serve --port 9000
      scalinglab serve --host myhost.lan              # reachable on the LAN: no authentication
      scalinglab serve --result link.json             # saved fits under "More results"
    """
    import socket

    from scalinglab.report import server

    if not store.exists() and not store.parent.resolve().is_dir():
        raise UserError(f"{store}: no run store here, and no folder {store.parent} to wait in")
    saved = _saved(result)
    names = [h.strip() for h in (host or []) if h.strip()]
    bind = names[0] if names else "127.0.0.1"
    with socket.socket() as s:
        try:
            s.bind((bind, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {bind}:{port} ({exc.strerror or exc}); pick another "
                            "with --port or --host") from None
    console.print(f"scalinglab dashboard for {store} at [bold]http://{bind}:{port}[/] "
                  "(Ctrl+C to stop)", highlight=False)
    if not store.exists():  # the monitor may open before the sweep that writes the store
        err_console.print(f"note: {store} does not exist yet; the page shows runs as soon as a "
                          "sweep or an import creates it", highlight=False)
    server.serve(store, port=port, bootstrap=bootstrap, host=bind, allowed_hosts=names,
                 results=saved)


__all__ = ["DEFAULT_STORE", "report", "serve"]
