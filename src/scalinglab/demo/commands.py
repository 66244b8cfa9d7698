"""``scalinglab demo``: the main job on the embedded default (a DuckDB file, the CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from scalinglab.clikit import JsonOption, console, emit_json

if TYPE_CHECKING:
    from rich.console import Console

    from scalinglab.demo.job import DemoResult

_JSON = JsonOption


def _quiet() -> Console:
    from rich.console import Console

    return Console(stderr=True, quiet=True)


def demo(
    quick: bool = typer.Option(False, "--quick", help="About 1 minute instead of about 5."),
    out: Path = typer.Option(Path("scalinglab-demo"), "--out", "-o", help="Folder to write into."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    bootstrap: int = typer.Option(None, "--bootstrap", "-b", min=0, metavar="K",
                                  help="Bootstrap resamples (default 200; 100 with --quick)."),
    json_: bool = _JSON,
) -> None:
    """Train a tiny IsoFLOP sweep of real transformers on the Python standard library's source,
    fit the loss law with bootstrap intervals, check it on the largest budget, plan a 100x larger
    budget, and write the plan, store, figures and an HTML report (with the check) into --out.

    \b
    Examples:
      scalinglab demo              # about 5 minutes on 2 CPU cores
      scalinglab demo --quick      # about 1 minute
      scalinglab demo --device cuda --out demo-gpu
    """
    from scalinglab.clikit import progress_display
    from scalinglab.demo.job import run_demo
    from scalinglab.sweep.display import RichProgress

    with RichProgress(console=None if not json_ else _quiet()) as progress, \
            progress_display() as analysis_progress:
        result = run_demo(out, quick=quick, device=device, bootstrap=bootstrap, progress=progress,
                          analysis_progress=analysis_progress)
    if json_:
        emit_json(result.to_dict())
        return
    _print_demo(result)


def _print_demo(r: DemoResult) -> None:
    from scalinglab.clikit import print_summary

    s = r.summary
    sweep = r.sweep
    console.print(f"\n[bold]sweep[/]: {sweep.finished} trained, {sweep.failed} failed, "
                  f"{sweep.skipped} already done, {sweep.wall_time_s:.0f} s")
    fit = s.primary_fit
    if fit is None:
        console.print(f"[red]loss law not fitted[/]: {r.to_dict()['fit_error']}")
    else:
        print_summary(fit.summary())
    iso = s.isoflop.value
    if iso is not None and iso.approach2 is not None:
        a = iso.approach2
        console.print(f"IsoFLOP (approach 2): N_opt ∝ C^{a.a:.3f}, D_opt ∝ C^{a.b:.3f}")
    elif s.isoflop.error:
        console.print(f"[yellow]IsoFLOP[/]: {s.isoflop.error}")
    ex = r.extrapolation
    if ex is not None:
        console.print(f"[bold]held-out check[/]: {ex.headline()}", highlight=False)
    elif r.extrapolation_error:
        console.print(f"[yellow]held-out check[/]: {r.extrapolation_error}")
    if s.plan.ok:
        p = s.plan.value
        iv = (f" [{p.loss_interval[0]:.3f}, {p.loss_interval[1]:.3f}]" if p.loss_interval else "")
        console.print(f"[bold]plan for {s.compute:.3g} FLOPs[/]: N = {p.N:.3g}, D = {p.D:.3g} "
                      f"({p.tokens_per_param:.1f} tokens/param), {p.steps:,} steps, "
                      f"loss {p.loss:.3f}{iv}, lr {p.lr:.3g}, batch {p.batch_tokens:,} tokens, "
                      f"weight decay {p.weight_decay:.3g}")
    for w in r.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"wrote {r.report_path}, {len(r.figures)} figures, plan {r.plan_path} and "
                  f"store {r.store_path}")


