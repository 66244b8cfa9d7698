"""The ``scalinglab`` command line. Each domain registers its own commands."""

from __future__ import annotations

from scalinglab.clikit import new_app

app = new_app(
    name="scalinglab",
    help="Make neural-network training predictable at scale: import runs, fit loss laws with "
    "bootstrap intervals, pick hyperparameters, plan a budget, run sweeps, and report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from scalinglab.demo import commands as demo_commands
    from scalinglab.design import commands as design_commands
    from scalinglab.downstream import commands as downstream_commands
    from scalinglab.fit import commands as fit_commands
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
