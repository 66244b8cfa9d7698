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


def _iv(xs: list[float] | None, fmt: str = ".3g") -> str:
    return f"[{xs[0]:{fmt}}, {xs[1]:{fmt}}]" if xs else "-"


def print_plan(plan: Plan) -> None:
    rows: list[list[str]] = [
        ["parameters N", f"{plan.N:.4g}", _iv(plan.N_interval)],
        ["tokens D", f"{plan.D:.4g}", _iv(plan.D_interval)],
        ["tokens per parameter", f"{plan.tokens_per_param:.1f}", ""],
    ]
    if plan.unique_tokens is not None and plan.epochs is not None:
        rows.append(["epochs over unique tokens", f"{plan.epochs:.3g}",
                     f"U = {plan.unique_tokens:.3g} unique tokens"])
    rows.append(["training FLOPs 6ND", f"{plan.train_flops:.3g}", ""])
    if plan.inference_tokens:
        rows.append(["inference FLOPs 2NT", f"{plan.inference_flops:.3g}",
                     f"T = {plan.inference_tokens:.3g} tokens"])
    rows += [
        ["predicted loss", "not identified" if plan.not_identified else f"{plan.loss:.4f}",
         _iv(plan.loss_interval, ".4f") if plan.loss_interval else "no interval"],
        ["learning rate", f"{plan.lr:.4g}",
         f"{_iv(plan.lr_interval)}; law {plan.lr_law:.4g} {_iv(plan.lr_law_interval)} at its batch, "
         "sqrt rule to the rounded batch"],
        ["batch (sequences)", f"{plan.batch_sequences:,}", plan.batch_rounding],
        ["batch (tokens)", f"{plan.batch_tokens:,}",
         f"law {plan.batch_tokens_law:,.0f} {_iv(plan.batch_interval, ',.0f')}"],
        ["steps", f"{plan.steps:,}", f"seq_len {plan.seq_len}"],
        ["weight decay", f"{plan.weight_decay:.3g}", f"tau = {plan.tau:.3g} ({plan.tau_source})"],
    ]
    # a rich table on a terminal, plain aligned text when piped (nothing cut to a width)
    print_table(["quantity", "value", "interval / note"], rows,
                title=("NOT IDENTIFIED - " if plan.not_identified and "compute-optimal" in plan.mode
                       else "") + f"plan ({plan.mode}; loss law {plan.loss_law['label']}, "
                      f"hparams {plan.hparams_law['name']})")
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


