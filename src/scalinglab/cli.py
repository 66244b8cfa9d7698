"""The ``scalinglab`` command line. Each domain registers its own commands."""

from __future__ import annotations

import typer

from scalinglab.clikit import new_app

app = new_app(
    name="scalinglab",
    help="Make neural-network training predictable at scale: import runs, fit loss laws with "
    "bootstrap intervals, pick hyperparameters, plan a budget, run sweeps, and report.",
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


def _register() -> None:
    from scalinglab.demo import commands as demo_commands
    from scalinglab.design import commands as design_commands
    from scalinglab.downstream import commands as downstream_commands
    from scalinglab.fit import commands as fit_commands
    from scalinglab.fit import curve_commands
    from scalinglab.hparams import commands as hparams_commands
    from scalinglab.plan import commands as plan_commands
    from scalinglab.report import commands as report_commands
    from scalinglab.runs import commands as runs_commands
    from scalinglab.sweep import commands as sweep_commands
    from scalinglab.testtime import commands as testtime_commands

    for module in (
        runs_commands,
        fit_commands,
        hparams_commands,
        plan_commands,
        sweep_commands,
        report_commands,
        downstream_commands,
        curve_commands,
        testtime_commands,
        demo_commands,
        design_commands,
    ):
        module.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
