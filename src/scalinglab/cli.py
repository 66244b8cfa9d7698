"""The ``scalinglab`` command line: one table of commands, each imported when it runs.

:data:`COMMANDS` names every top-level command, the module and attribute that defines it
(a function is a command, a Typer app a group) and the line ``--help`` lists. Nothing here
imports an area's module: ``scalinglab --version`` and ``--help`` load typer and this file only,
and ``scalinglab runs`` loads the run store but no torch, scipy or sympy (measured by
``benchmarks/bench_cli.py``; ``tests/test_cli_startup.py`` checks what each imports). A new
command is a line here; an area never adds commands to another area's group (``extra`` does).
"""

from __future__ import annotations

import typer

from scalinglab.clikit import CommandEntry, LazyGroup, new_app

#: every top-level command, in the order ``--help`` lists them (commands, then groups)
COMMANDS: dict[str, CommandEntry] = {
    "import": CommandEntry("scalinglab.runs.commands:import_runs",
                           "Import runs into the store, all rows or none."),
    "runs": CommandEntry("scalinglab.runs.commands:list_runs", "List runs in the store as a table."),
    "plan": CommandEntry("scalinglab.plan.commands:plan_cmd",
                         "Plan a training run: N, D, loss with interval, lr, batch, steps and "
                         "weight decay."),
    "report": CommandEntry("scalinglab.report.commands:report",
                           "Write a self-contained HTML report of a run store: runs, fits with "
                           "intervals and their quality, held-out and rolling-forward checks, "
                           "compute-optimal allocation, hyperparameter laws, the plan and warnings, "
                           "with interactive charts (no network needed to open it)."),
    "serve": CommandEntry("scalinglab.report.commands:serve",
                          "Watch a run store in a local web dashboard: runs by budget, the current "
                          "fit and the plan on load, fits pinned side by side, overlaid loss "
                          "curves, refreshing live while a sweep writes."),
    "demo": CommandEntry("scalinglab.demo.commands:demo",
                         "Train a tiny IsoFLOP sweep of real transformers on the Python standard "
                         "library's source, fit the loss law with bootstrap intervals, check it on "
                         "the largest budget, plan a 100x larger budget, and write the plan, store, "
                         "figures and an HTML report (with the check) into --out."),
    "simulate": CommandEntry("scalinglab.design.commands:simulate_cmd",
                             "Prove a design before trusting it: repeated simulated studies from a "
                             "known law, each fitted by the real engine; per design, bias, 95% "
                             "interval width and coverage of L, N_opt and D_opt at the target, and "
                             "the FLOPs actually used."),
    "store": CommandEntry("scalinglab.runs.commands:store_app", "Look after a run store file."),
    "fit": CommandEntry("scalinglab.fit.commands:fit_app",
                        "Fit laws with bootstrap intervals: loss laws (Chinchilla, Kaplan, IsoFLOP, "
                        "the catalogue, your own formula), downstream and benchmark links, "
                        "loss-to-loss, ladders and loss curves.",
                        extra={"downstream": "scalinglab.downstream.commands:fit_downstream",
                               "benchmark": "scalinglab.downstream.commands:fit_benchmark_command",
                               "loss-to-loss":
                                   "scalinglab.downstream.l2l_commands:fit_loss_to_loss_command",
                               "translate": "scalinglab.downstream.l2l_commands:fit_translate_command",
                               "ladder": "scalinglab.downstream.l2l_commands:fit_ladder_command",
                               "curves": "scalinglab.fit.curve_commands:fit_curves_command"}),
    "hparams": CommandEntry("scalinglab.hparams.commands:app",
                            "Optimal learning rate and batch size: fit laws from lr x batch grids "
                            "(Step Law procedure), predict, evaluate on held-out groups, inspect "
                            "the plateau."),
    "sweep": CommandEntry("scalinglab.sweep.commands:sweep_app",
                          "Plan and run sweeps of real transformers into the run store.",
                          extra={"auto": "scalinglab.design.commands:sweep_auto"}),
    "predict": CommandEntry("scalinglab.downstream.commands:predict_app",
                            "Predict from saved fits, with intervals: downstream metrics at a "
                            "model size and token count chained through a loss law (joint "
                            "bootstrap intervals), one loss from another (`predict "
                            "loss-to-loss`), a loss curve under an lr schedule (`predict curve`).",
                            extra={"loss-to-loss": "scalinglab.downstream.l2l_commands:"
                                                   "predict_loss_to_loss_command",
                                   "curve": "scalinglab.fit.curve_commands:predict_curve_command"}),
    "testtime": CommandEntry("scalinglab.testtime.commands:app",
                             "Test-time scaling from per-problem sample counts: unbiased pass@k, "
                             "the coverage law log coverage = a k^b, samples needed for a coverage, "
                             "a bigger model or more samples at a budget, and where an imperfect "
                             "verifier stops helping."),
    "design": CommandEntry("scalinglab.design.commands:design_app",
                           "Choose the runs that teach the most about a target budget."),
}


class _Root(LazyGroup):
    table = COMMANDS


app = new_app(
    name="scalinglab",
    help="Make neural-network training predictable at scale: import runs, fit loss laws with "
    "bootstrap intervals, pick hyperparameters, plan a budget, run sweeps, and report.",
    cls=_Root,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def version() -> str:
    """The installed distribution's version (the source tree's when run from a checkout)."""
    from importlib import metadata

    import scalinglab

    try:
        installed = metadata.version("scalinglab")
    except metadata.PackageNotFoundError:
        installed = None
    return installed if installed == scalinglab.__version__ else scalinglab.__version__


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"scalinglab {version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", is_eager=True, callback=_show_version,
                                      help="Print the version and exit."),
) -> None:
    """Make neural-network training predictable at scale: import runs, fit loss laws with
    bootstrap intervals, pick hyperparameters, plan a budget, run sweeps, and report."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
