"""``scalinglab fit loss-to-loss``, ``scalinglab predict loss-to-loss``, ``scalinglab fit translate``
and ``scalinglab fit ladder``."""

from __future__ import annotations

import warnings as pywarnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from scalinglab.clikit import (
    FormatOption,
    JsonOption,
    UnitsOption,
    UserError,
    bootstrap_option,
    output_format,
    parse_units,
    print_table,
    quantities,
    show_results,
)

BootOpt = bootstrap_option()
SeedOpt = typer.Option(0, "--seed", help="Random seed of the bootstrap (results are deterministic).")
SaveOpt = typer.Option(None, "--save", help="Write the fit with its bootstrap draws to this JSON file.")
WhereOpt = typer.Option(None, "--where", "-w", help="Keep rows where this SQL holds, e.g. \"iso_flop < 3e18\".")
NOpt = typer.Option(None, "--N", help="Column of model sizes (default: N or params).", show_default=False)
DOpt = typer.Option(None, "--D", help="Column of training tokens (default: D or tokens).", show_default=False)


def _check_save(save: Path | None, *inputs: Path) -> None:
    if save is not None and any(save.resolve() == p.resolve() for p in inputs):
        raise UserError(f"--save {save} is an input: an output never overwrites an input")


def _numeric_frame(table: Any, columns: list[str], text: list[str]) -> pd.DataFrame:
    data: dict[str, Any] = {c: table.numbers(c) for c in dict.fromkeys(columns)}
    for c in text:
        data[c] = table.text(c)
    frame = pd.DataFrame(data)
    frame["run_id"] = table.ids(None)
    return frame


def _pick(table: Any, given: str | None, spellings: tuple[str, ...], flag: str) -> str:
    if given is not None:
        table.require(given)
        return given
    for c in spellings:
        if c in table.columns:
            return c
    raise UserError(f"give {flag}: the file has none of the columns {list(spellings)}")


def fit_loss_to_loss_command(
    file: Path = typer.Argument(..., help="CSV, TSV, Parquet or JSONL, one row per model (or pair "
                                "of models).", show_default=False),
    x: str = typer.Option(..., "--x", help="Column of the loss to predict from (e.g. val_loss)."),
    y: str = typer.Option(..., "--y", help="Column of the loss to predict."),
    group: str = typer.Option(None, "--group", "-g", help="Column whose values each get their own "
                              "law (e.g. the training corpus).", show_default=False),
    pairing: str = typer.Option("train-to-test", "--pairing", help="train-to-test (one model's two "
                                "losses), train-to-train or test-to-test (models paired by N and D)."),
    offsets: str = typer.Option("fit", "--offsets", help="fit: fit E_x and E_y; scaling: each the "
                                "irreducible loss of a Chinchilla law of that loss in (N, D), per group."),
    e_x: float = typer.Option(None, "--E-x", help="Hold E_x at this value.", show_default=False),
    e_y: float = typer.Option(None, "--E-y", help="Hold E_y at this value.", show_default=False),
    shared: str = typer.Option(None, "--shared", metavar="PARAMS", help="With --group: fit these "
                               "parameters (kappa, E_y, comma-separated) as one value for every group "
                               "and the rest per group (partial pooling; E_y is then fitted).",
                               show_default=False),
    pair: str = typer.Option(None, "--pair", metavar="COLUMN=A,B", help="Pair runs by compute "
                             "first: each run with COLUMN = A (its --x) beside the run with COLUMN = B "
                             "and the same model size and tokens (its --y); for train-to-train and "
                             "test-to-test.", show_default=False),
    n_col: str = NOpt, d_col: str = DOpt, where: str = WhereOpt,
    units: list[str] = UnitsOption,
    bootstrap: int = BootOpt, seed: int = SeedOpt, save: Path = SaveOpt, json_: bool = JsonOption,
) -> None:
    """Fit a loss-to-loss law y = K (x - E_x)^kappa + E_y (Brandfonbrener et al. 2024), one per
    group, with bootstrap intervals.

    Example: scalinglab fit loss-to-loss sweep.csv --x val_loss --y hellaswag_loss --group data --offsets scaling --save l2l.json
    """
    from scalinglab.downstream.l2l import fit_loss_to_loss
    from scalinglab.downstream.table import read_models

    _check_save(save, file)
    key = pairing.replace("-", "_")
    if key not in ("train_to_test", "train_to_train", "test_to_test"):
        raise UserError(f"--pairing must be train-to-test, train-to-train or test-to-test, not {pairing!r}")
    if offsets not in ("fit", "scaling"):
        raise UserError(f"--offsets must be fit or scaling, not {offsets!r}")
    share = tuple(p.strip() for p in (shared or "").split(",") if p.strip())
    if share and not group:
        raise UserError("--shared needs --group (the groups that share the parameters)")
    table = read_models(file, parse_units(units)).where(where)
    cols = [x, y]
    if offsets == "scaling" or pair:
        n_col = _pick(table, n_col, ("N", "params"), "--N")
        d_col = _pick(table, d_col, ("D", "tokens"), "--D")
        cols += [n_col, d_col]
    if pair:
        from scalinglab.downstream.l2l import pair_by_compute

        by, _, values = pair.partition("=")
        sides = [v.strip() for v in values.split(",")]
        if not by or len(sides) != 2 or not all(sides):
            raise UserError(f"--pair {pair!r}: give COLUMN=A,B (e.g. data=fineweb-edu-100b,starcoder)")
        if group:
            raise UserError("--pair and --group cannot be combined (pair once per fit)")
        raw = _numeric_frame(table, cols, [by.strip()])
        frame = pair_by_compute(raw, by.strip(), sides[0], sides[1], x, y, on=(n_col, d_col))
        frame = frame.rename(columns={"x": f"{x} ({sides[0]})", "y": f"{y} ({sides[1]})"})
        x, y = f"{x} ({sides[0]})", f"{y} ({sides[1]})"
        if key == "train_to_test":
            key = "train_to_train"
    else:
        frame = _numeric_frame(table, cols, [group] if group else [])
    result = fit_loss_to_loss(frame, x, y, group, pairing=key, offsets=offsets, E_x=e_x, E_y=e_y,
                              N=n_col, D=d_col, shared=share, bootstrap=bootstrap, seed=seed,
                              source=str(file))
    show_results(result, save, json_)


def predict_loss_to_loss_command(
    fit: Path = typer.Option(..., "--fit", help="A fit saved by `fit loss-to-loss --save` or "
                             "`fit translate --save`."),
    x: list[str] = typer.Option(None, "--x", callback=quantities("--x"),
                                help="Values of x (repeatable or comma-separated).",
                                show_default=False),
    group: str = typer.Option(None, "--group", "-g", help="Which group's law (when it has several).",
                              show_default=False),
    params: list[str] = typer.Option(None, "--params", "-N", callback=quantities("--params", positive=True),
                                     help="With a translation: model "
                                     "size(s) N.", show_default=False),
    tokens: list[str] = typer.Option(None, "--tokens", "-D", callback=quantities("--tokens", positive=True),
                                     help="With a translation: training "
                                     "tokens D (one, or one per N).", show_default=False),
    new_run: bool = typer.Option(False, "--new-run", help="Intervals for one new run (adds the "
                                 "run-to-run scatter), not for the law's curve."),
    fmt: str = FormatOption, json_: bool = JsonOption,
) -> None:
    """Predict y (and its interval) from a saved loss-to-loss law at given x, or a translated law
    at given (N, D). An x at or below the law's E_x gets E_y, with a warning.

    Example: scalinglab predict loss-to-loss --fit l2l.json --x 2.3,2.1 --group fineweb-edu-100b
    """
    from scalinglab.downstream.l2l import LossToLossFit, Translation
    from scalinglab.results import load_saved

    result = load_saved(fit, (LossToLossFit, Translation), "a loss-to-loss law or translation "
                        "(kind loss_to_loss or loss_translation)")
    fmt = output_format(fmt, json_)
    with pywarnings.catch_warnings(record=True) as caught:
        pywarnings.simplefilter("always")
        if isinstance(result, LossToLossFit):
            if not x:
                raise UserError("give --x values")
            if group is None and len(result.fits) > 1:
                raise UserError(f"give --group: the fit has {sorted(result.fits)}")
            frame = result.predict(np.asarray(x, dtype=float), group, new_run=new_run)
        elif isinstance(result, Translation):
            if not params or not tokens:
                raise UserError("a translated law predicts at (N, D): give --params and --tokens")
            N, D = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)
            if len(N) != len(D) and 1 not in (len(N), len(D)):
                raise UserError(f"{len(N)} values of --params but {len(D)} of --tokens")
            frame = result.predict(N, D, new_run=new_run)
        else:
            raise UserError(f"{fit}: a {result.kind} result, not a loss-to-loss law or translation")
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    frame = frame.rename(columns={"lo": f"lo ({result.level:.0%})", "hi": f"hi ({result.level:.0%})"})
    what = (f"{result.y_name} predicted from {result.x_name}" if isinstance(result, LossToLossFit)
            else "the new corpus's loss predicted at (N, D)")
    spread = "where one new run will fall" if new_run else "the law's curve; --new-run for one run"
    print_table(list(frame.columns), frame.itertuples(index=False), fmt=fmt, exact=False,
                title=f"{what} by {fit} ({result.level:.0%} interval: {spread})")


def fit_translate_command(
    from_law: Path = typer.Option(..., "--from-law", help="A loss law of N and D fitted on the old "
                                  "corpus, saved by `fit ... --save`."),
    runs: Path = typer.Option(..., "--runs", help="The new corpus's few runs (model size, tokens, loss)."),
    loss: str = typer.Option("loss", "--loss", "-l", help="Column of the new runs' loss."),
    x: str = typer.Option(None, "--x", help="Column of the old corpus's loss of the model with the "
                          "same N and D (default: the old law's prediction there).", show_default=False),
    baseline: str = typer.Option("chinchilla", "--baseline", help="Law refitted on the new runs "
                                 "alone for comparison ('none': no refit)."),
    n_col: str = NOpt, d_col: str = DOpt,
    units: list[str] = UnitsOption,
    bootstrap: int = BootOpt, seed: int = SeedOpt, save: Path = SaveOpt, json_: bool = JsonOption,
) -> None:
    """Translate a fitted law to a new corpus from a few runs: L_new = K (L_old - E_old)^kappa +
    E_new, against a law refitted on those runs alone (Brandfonbrener et al. 2024).

    Example: scalinglab fit translate --from-law fit.json --runs new_corpus.csv --save translated.json
    """
    from scalinglab.downstream.l2l import translate
    from scalinglab.downstream.table import read_models
    from scalinglab.fit.result import FitResult
    from scalinglab.results import load_saved

    _check_save(save, from_law, runs)
    source = load_saved(from_law, FitResult, "a fitted loss law for --from-law (kind loss_fit)")
    assert isinstance(source, FitResult)
    missing = [k for k in source.law.inputs if k not in ("N", "D", "C")]
    if missing:
        raise UserError(f"--from-law: its law needs {missing}; translation needs a law of N and D")
    table = read_models(runs, parse_units(units))
    n_col = _pick(table, n_col, ("N", "params"), "--N")
    d_col = _pick(table, d_col, ("D", "tokens"), "--D")
    frame = _numeric_frame(table, [n_col, d_col, loss, *([x] if x else [])], [])
    frame = frame.rename(columns={n_col: "N", d_col: "D"})
    result = translate(source, frame, loss=loss, x=x, N="N", D="D",
                       baseline=None if baseline.lower() == "none" else baseline,
                       bootstrap=bootstrap, seed=seed, source_name=str(runs))
    show_results(result, save, json_)


def fit_ladder_command(
    folder: Path = typer.Argument(..., help="Folder of ladder runs ({size}-{k}xC.csv, one row per "
                                  "checkpoint; final.json with each size's N).", show_default=False),
    task: list[str] = typer.Option(..., "--task", help="Task(s): mmlu, hellaswag, piqa, "
                                   "arc_challenge, arc_easy, winogrande, openbookqa, csqa, socialiqa, boolq."),
    fit_below: float = typer.Option(None, "--fit-below", help="Fit on models with N below this "
                                    "(the larger ones are predicted and scored).", show_default=False),
    window: int = typer.Option(5, "--window", min=1, help="Checkpoints in step 2's moving average."),
    threshold: float = typer.Option(0.02, "--threshold", help="Relative checkpoint-to-checkpoint "
                                    "sd above which a task is flagged as too noisy to predict."),
    step1: str = typer.Option("checkpoints", "--step1", help="Step 1 on every checkpoint with a "
                              "term for the learning-rate schedule's stage ('checkpoints', needs "
                              "the lr column) or on each run's final checkpoints ('final', the paper's)."),
    bootstrap: int = BootOpt, seed: int = SeedOpt, save: Path = SaveOpt, json_: bool = JsonOption,
) -> None:
    """Fit the OLMo model ladder's two steps per task: task loss (bpb) from (N, D), then accuracy
    from task loss through a sigmoid, with a predictability flag (Bhagia et al. 2024).

    Example: scalinglab fit ladder olmo_ladder/ --task mmlu --task hellaswag --fit-below 2e9
    """
    from scalinglab.downstream.ladder import fit_ladder, read_ladder, task_columns

    ladder, notes = read_ladder(folder)
    fit_on = ladder if fit_below is None else ladder[ladder["N"] < fit_below]
    if fit_on.empty:
        raise UserError(f"--fit-below {fit_below:g} leaves no runs")
    results = {}
    for i, t in enumerate(task, 1):
        # each task is a few CPU minutes with the default resamples (mmlu and hellaswag on the
        # shared ladder: 194 CPU s in all): say what is running rather than sit silent
        typer.echo(f"fitting {t} ({i} of {len(task)}, {fit_on['run'].nunique()} runs, "
                   f"{bootstrap} resamples)...", err=True)
        fit = fit_ladder(fit_on, t, window=window, threshold=threshold, bootstrap=bootstrap, seed=seed,
                         step1=step1)
        fit.notes[:0] = notes
        if fit_below is not None:
            held = ladder[ladder["N"] >= fit_below]
            if not held.empty:
                final = held.sort_values(["run", "step"]).groupby("run").tail(1)
                bpb, acc = task_columns(final, t)
                p = fit.predict(final["N"].to_numpy(float), final["D"].to_numpy(float))
                for run, a, b, row in zip(final["run"], acc, bpb, p.itertuples(index=False), strict=True):
                    fit.notes.append(f"held out {run}: bpb {b:.4f} (predicted {row.bpb:.4f}), accuracy "
                                     f"{a:.4f} (predicted {row.acc:.4f} [{row.acc_lo:.4f}, {row.acc_hi:.4f}])")
        results[t] = fit
    show_results(results if len(results) > 1 else next(iter(results.values())), save, json_)


__all__ = ["fit_ladder_command", "fit_loss_to_loss_command", "fit_translate_command",
           "predict_loss_to_loss_command"]
