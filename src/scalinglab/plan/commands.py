"""``scalinglab plan``: a budget (or N and D) -> model size, tokens, loss, lr, batch, weight decay."""

from __future__ import annotations

import typer

from scalinglab.clikit import JsonOption, UserError, emit_json, print_table
from scalinglab.plan.planner import DEFAULT_TAU, Plan, make_plan
from scalinglab.runs.schema import parse_number


def _num(text: str | None, what: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_number(text)
    except (TypeError, ValueError):
        raise UserError(f"{what} {text!r} is not a number (e.g. 1e21, 7B, 1.4T)") from None


def print_plan(plan: Plan) -> None:
    # a rich table on a terminal, plain aligned text when piped (nothing cut to a width)
    print_table(["quantity", "value", "interval / note"], plan.rows(), title=plan.title)
    typer.echo(f"loss interval: {plan.loss_interval_source}")
    for w in plan.warnings:
        typer.echo(f"warning: {w}")


def plan_cmd(
    compute: str | None = typer.Option(None, "--compute", help="Training FLOPs budget C "
                                       "(plus inference when --inference-tokens is set)."),
    params: str | None = typer.Option(None, "--params", help="Non-embedding parameters N."),
    tokens: str | None = typer.Option(None, "--tokens", help="Training tokens D."),
    law: str = typer.Option("hoffmann2022", "--law", help="Loss law: hoffmann2022, "
                            "besiroglu2024, or FIT.json from `fit chinchilla --save`."),
    hparams: str = typer.Option("steplaw", "--hparams", help="lr/batch law: steplaw, deepseek, "
                                "or FILE from `hparams fit --save`."),
    seq_len: int = typer.Option(2048, "--seq-len", help="Tokens per sequence."),
    tau: str = typer.Option(str(DEFAULT_TAU), "--tau", help="AdamW timescale (fraction of the "
                            "run) for weight decay, or FILE from `hparams tau --save`."),
    inference_tokens: str = typer.Option("0", "--inference-tokens", help="Tokens to be served "
                                         "over the model's life; adds 2NT to the cost."),
    batch_round: str = typer.Option("multiple8", "--round", help="Batch rounding: multiple8, "
                                    "pow2 or none."),
    unique_tokens: str | None = typer.Option(None, "--unique-tokens", help="Unique tokens "
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
    T = _num(inference_tokens, "--inference-tokens") or 0.0
    plan = make_plan(
        compute=_num(compute, "--compute"), params=_num(params, "--params"),
        tokens=_num(tokens, "--tokens"), loss_law=law, hparams_law=hparams, seq_len=seq_len,
        tau=tau, inference_tokens=T, batch_round=batch_round,  # type: ignore[arg-type]
        unique_tokens=_num(unique_tokens, "--unique-tokens"), allow_unidentified=allow_unidentified,
    )
    if as_json:
        emit_json(plan.to_dict())
    else:
        print_plan(plan)


