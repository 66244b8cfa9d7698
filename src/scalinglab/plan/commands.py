"""``scalinglab plan``: a budget (or N and D) -> model size, tokens, loss, lr, batch, weight decay."""

from __future__ import annotations

import typer

from scalinglab.clikit import JsonOption, emit_json, print_table, quantity
from scalinglab.plan.planner import DEFAULT_TAU, Plan, make_plan


def print_plan(plan: Plan) -> None:
    # a rich table on a terminal, plain aligned text when piped (nothing cut to a width)
    print_table(["quantity", "value", "interval / note"], plan.rows(), title=plan.title)
    typer.echo(f"loss interval: {plan.loss_interval_source}")
    for w in plan.warnings:
        typer.echo(f"warning: {w}")


def plan_cmd(
    compute: float | None = typer.Option(None, "--compute", parser=quantity("--compute"), help="Training FLOPs budget C "
                                       "(plus inference when --inference-tokens is set)."),
    params: float | None = typer.Option(None, "--params", parser=quantity("--params"), help="Non-embedding parameters N."),
    tokens: float | None = typer.Option(None, "--tokens", parser=quantity("--tokens"), help="Training tokens D."),
    law: str = typer.Option("hoffmann2022", "--law", help="Loss law: hoffmann2022, "
                            "besiroglu2024, or FIT.json from `fit chinchilla --save`."),
    hparams: str = typer.Option("steplaw", "--hparams", help="lr/batch law: steplaw, deepseek, "
                                "or FILE from `hparams fit --save`."),
    seq_len: int = typer.Option(2048, "--seq-len", help="Tokens per sequence."),
    tau: str = typer.Option(str(DEFAULT_TAU), "--tau", help="AdamW timescale (fraction of the "
                            "run) for weight decay, or FILE from `hparams tau --save`."),
    inference_tokens: float = typer.Option(0.0, "--inference-tokens",
                                           parser=quantity("--inference-tokens"), help="Tokens to be served "
                                         "over the model's life; adds 2NT to the cost."),
    batch_round: str = typer.Option("multiple8", "--round", help="Batch rounding: multiple8, "
                                    "pow2 or none."),
    unique_tokens: float | None = typer.Option(None, "--unique-tokens",
                                               parser=quantity("--unique-tokens"), help="Unique tokens "
                                             "available (with a data-constrained law, e.g. "
                                             "--law muennighoff2023_c4): epochs, N, D and loss "
                                             "under repetition."),
    allow_unidentified: bool = typer.Option(False, "--allow-unidentified", help="With a fit "
                                            "whose parameters are not identified, print the "
                                            "compute-optimal plan anyway, marked NOT IDENTIFIED "
                                            "(default: refuse and say which runs would identify it)."),
    as_json: bool = JsonOption,
) -> None:
    """Plan a training run: N, D, loss with interval, lr, batch, steps and weight decay.

    Example: scalinglab plan --compute 1e21 --law hoffmann2022 --hparams steplaw --json

    Example: scalinglab plan --params 1B --tokens 20B --law fit.json

    Example: scalinglab plan --compute 1e21 --law muennighoff2023_c4 --unique-tokens 10B
    """
    plan = make_plan(
        compute=compute, params=params, tokens=tokens, loss_law=law, hparams_law=hparams, seq_len=seq_len,
        tau=tau, inference_tokens=inference_tokens or 0.0, batch_round=batch_round,  # type: ignore[arg-type]
        unique_tokens=unique_tokens, allow_unidentified=allow_unidentified,
    )
    if as_json:
        emit_json(plan.to_dict())
    else:
        print_plan(plan)


