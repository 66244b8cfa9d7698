"""``scalinglab demo``: the main job on the embedded default (a DuckDB file, the CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    quick: bool = typer.Option(False, "--quick", help="Fewer runs: 67 s measured on an idle "
                               "2-core machine (244 s without)."),
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
      scalinglab demo              # 244 s on an idle 2-core machine
      scalinglab demo --quick      # 67 s on an idle 2-core machine
      scalinglab demo --device cuda --out demo-gpu
    """
    from scalinglab.demo.job import run_demo
    from scalinglab.design.commands import round_line
    from scalinglab.sweep.display import RichProgress

    sweep_bar = RichProgress(console=None if not json_ else _quiet())
    stages = _Stages(sweep_bar, enabled=not json_)

    def announce(summary: dict[str, Any]) -> None:
        # each adaptive round's fit and decision, printed above the one live bar
        if not json_:
            sweep_bar.say(round_line(summary, 1e14))

    with sweep_bar:
        try:
            result = run_demo(out, quick=quick, device=device, bootstrap=bootstrap,
                              progress=sweep_bar, analysis_progress=stages, on_round=announce)
        finally:
            stages.close()
    if json_:
        emit_json(result.to_dict())
        return
    _print_demo(result)


class _Stages:
    """One live display at a time: the sweep's bar until the analysis starts, then the
    analysis's line (two live displays on one terminal redraw over each other)."""

    def __init__(self, sweep_bar: Any, enabled: bool = True) -> None:
        self.sweep_bar = sweep_bar
        self.enabled = enabled
        self.cm: Any = None
        self.update: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        from scalinglab.clikit import progress_display

        if self.update is None:
            self.sweep_bar.close()
            self.cm = progress_display(self.enabled)
            self.update = self.cm.__enter__()
        self.update(stage, done, total)

    def close(self) -> None:
        if self.cm is not None:
            self.cm.__exit__(None, None, None)
            self.cm = None


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
        console.print(f"[bold]plan for {s.compute:.3g} FLOPs[/] (saved to {r.larger_plan_path}): N = {p.N:.3g}, D = {p.D:.3g} "
                      f"({p.tokens_per_param:.1f} tokens/param), {p.steps:,} steps, "
                      + ("loss not identified" if p.not_identified else f"loss {p.loss:.3f}{iv}")
                      + f", lr {p.lr:.3g}, batch {p.batch_tokens:,} tokens, "
                      f"weight decay {p.weight_decay:.3g}")
    # a refused plan is among the warnings below (once), with the runs that would identify it
    for w in r.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"\n[bold]files written[/] in {r.out_dir}:", highlight=False)
    for what, path in r.files():
        console.print(f"  {path}  [dim]{what}[/]", highlight=False)


