"""``scalinglab testtime ...``: pass@k, coverage, samples for a coverage, budgets, verifiers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scalinglab.clikit import (
    JsonOption,
    UnitsOption,
    UserError,
    console,
    emit_json,
    new_app,
    parse_units,
    quantities,
    quantity,
    quantity_pairs,
    save_results,
    show_results,
    whole_numbers,
)

app = new_app(
    help="Test-time scaling from per-problem sample counts: unbiased pass@k, the coverage law "
    "log coverage = a k^b, samples needed for a coverage, a bigger model or more samples at a "
    "budget, and where an imperfect verifier stops helping.\n\n"
    "Input: one row per problem (problem, n, c) or one row per sample (problem, correct), CSV or JSONL.",
    no_args_is_help=True,
)

FileArg = typer.Argument(..., help="Per-problem counts (columns problem, n, c) or per-sample rows "
                         "(problem, correct): CSV, TSV, Parquet or JSONL.", show_default=False)
ProblemOpt = typer.Option("problem", "--problem", help="Column of problem ids.")
NOpt = typer.Option("n", "--n", help="Column of samples drawn per problem.")
COpt = typer.Option("c", "--c", help="Column of correct samples per problem.")
CorrectOpt = typer.Option("correct", "--correct", help="Column of per-sample correctness (1/0, "
                          "true/false), for one row per sample.")
ModelOpt = typer.Option(None, "--model", help="Column of model names: one result per model.")
KOpt = typer.Option(None, "--k", "-k", callback=whole_numbers("--k"), help="Sample counts k (repeatable or comma-separated; "
                    "default 1, 2, 4, ... up to the samples per problem).")
BootOpt = typer.Option(1000, "--bootstrap", "-b", min=0, help="Bootstrap resamples of problems (0: none).")
SeedOpt = typer.Option(0, "--seed", help="Random seed of the bootstrap.")
SaveOpt = typer.Option(None, "--save", help="Write the result (with its draws) to this JSON file.")


def _counts(file: Path, problem: str, n: str, c: str, correct: str, model: str | None,
            units: list[str] | None = None) -> dict[str, Any]:
    from scalinglab.testtime.counts import read_counts

    return read_counts(file, problem=problem, n=n, c=c, correct=correct, model=model,
                       units=parse_units(units))


@app.command("pass-at-k")
def pass_at_k_command(
    file: Path = FileArg, k: list[str] = KOpt, problem: str = ProblemOpt, n: str = NOpt,
    c: str = COpt, correct: str = CorrectOpt, model: str = ModelOpt, bootstrap: int = BootOpt,
    seed: int = SeedOpt, save: Path = SaveOpt, units: list[str] = UnitsOption, json_: bool = JsonOption,
) -> None:
    """Unbiased pass@k (Chen et al. 2021) with intervals from resampling problems.

    Example: scalinglab testtime pass-at-k samples.jsonl --k 1,10,100 --json
    """
    from scalinglab.testtime.passk import estimate_pass_at_k

    data = _counts(file, problem, n, c, correct, model, units)
    show_results({m: estimate_pass_at_k(d, k, bootstrap=bootstrap, seed=seed) for m, d in data.items()},
          save, json_)


def _targets(items: list[float] | None) -> list[float]:
    for t in items or []:
        if not 0 < t < 1:
            raise UserError(f"--target must be strictly between 0 and 1, not {t}")
    return list(items or [])


@app.command("coverage")
def coverage_command(
    file: Path = FileArg, k: list[str] = KOpt,
    target: list[float] = typer.Option(None, "--target", help="Also give the samples needed for this "
                                       "coverage (repeatable), e.g. 0.9."),
    problem: str = ProblemOpt, n: str = NOpt, c: str = COpt, correct: str = CorrectOpt,
    model: str = ModelOpt, bootstrap: int = typer.Option(500, "--bootstrap", "-b", min=0,
                                                         help="Bootstrap resamples of problems."),
    seed: int = SeedOpt, save: Path = SaveOpt, units: list[str] = UnitsOption, json_: bool = JsonOption,
) -> None:
    """Fit Large Language Monkeys' coverage law, log coverage = a k^b, to pass@k over k.

    Example: scalinglab testtime coverage samples.csv --target 0.9 --save coverage.json
    """
    from scalinglab.testtime.coverage import fit_coverage

    targets = _targets(target)
    data = _counts(file, problem, n, c, correct, model, units)
    fits = {m: fit_coverage(d, k, bootstrap=bootstrap, seed=seed) for m, d in data.items()}
    for f in fits.values():
        f.targets = tuple(targets)  # saved with the fit, so a report marks them
    save_results(save, fits)
    answers = {m: {t: f.samples_for(t) for t in targets} for m, f in fits.items()}
    if json_:
        out = {m: {**f.to_dict(), "samples_for": [{"coverage": t, **e.to_dict()} for t, e in answers[m].items()]}
               for m, f in fits.items()}
        emit_json(next(iter(out.values())) if len(out) == 1 else out)
        return
    for m, f in fits.items():
        console.print(f.summary())
        for t, e in answers[m].items():
            console.print(_samples_line(t, e))
    if save is not None:
        console.print(f"[green]saved[/] to {save}")


def _samples_line(target: float, e: Any) -> str:
    from scalinglab.summary import cell_text

    text = f"samples per problem for coverage {target:g}: {cell_text(e)}"
    return text + (f"  [yellow]({e.note})[/]" if e.note else "")


def _load_coverage(spec: str, problem: str, n: str, c: str, correct: str, bootstrap: int,
                   seed: int) -> Any:
    """A saved coverage fit (JSON with kind coverage_fit) or a counts file to fit."""
    from scalinglab.testtime.coverage import CoverageFit, fit_coverage

    path = Path(spec)
    if path.suffix.lower() == ".json" and path.exists():
        from scalinglab.results import load_saved

        return load_saved(path, CoverageFit, "a saved coverage fit (kind coverage_fit); give the "
                          "counts file or a single-model `testtime coverage --save` file")
    data = _counts(path, problem, n, c, correct, None)
    (counts,) = data.values()
    return fit_coverage(counts, bootstrap=bootstrap, seed=seed)


@app.command("samples-for-coverage")
def samples_command(
    source: str = typer.Argument(..., help="A coverage fit saved by `testtime coverage --save`, or a "
                                 "counts file (fitted first).", show_default=False),
    coverage: list[float] = typer.Option(..., "--coverage", help="Target coverage, 0 < X < 1 (repeatable)."),
    problem: str = ProblemOpt, n: str = NOpt, c: str = COpt, correct: str = CorrectOpt,
    bootstrap: int = typer.Option(500, "--bootstrap", "-b", min=0, help="Bootstrap resamples (when fitting)."),
    seed: int = SeedOpt, json_: bool = JsonOption,
) -> None:
    """How many samples per problem reach a coverage: k = (log X / a)^(1/b).

    Example: scalinglab testtime samples-for-coverage coverage.json --coverage 0.9 --coverage 0.95
    """
    for t in coverage:
        if not 0 < t < 1:
            raise UserError(f"--coverage must be strictly between 0 and 1, not {t}")
    fit = _load_coverage(source, problem, n, c, correct, bootstrap, seed)
    answers = {t: fit.samples_for(t) for t in coverage}
    if json_:
        emit_json({"params": fit.params, "max_k_observed": fit.max_k,
                   "samples_for": [{"coverage": t, **e.to_dict()} for t, e in answers.items()]})
        return
    console.print(f"coverage law: log coverage = {fit.params['a']:.4g} k^{fit.params['b']:.4g} "
                  f"(fitted up to k = {fit.max_k})")
    for t, e in answers.items():
        console.print(_samples_line(t, e))


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f"{flag} {item!r} must look like NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


@app.command("budget")
def budget_command(
    model: list[str] = typer.Option(..., "--model", help="NAME=PATH: a model's counts file or saved "
                                    "coverage fit (repeatable; at least two to compare)."),
    params: list[str] = typer.Option(..., "--params", help="NAME=N: the model's parameters, e.g. 8b=8B (repeatable)."),
    budget: list[str] = typer.Option(..., "--budget", callback=quantities("--budget", positive=True),
                                     help="Inference FLOPs per problem (repeatable or "
                                     "comma-separated)."),
    prompt_tokens: float = typer.Option(..., "--prompt-tokens", parser=quantity("--prompt-tokens"),
                                        help="Prompt tokens per problem."),
    generated_tokens: float = typer.Option(..., "--generated-tokens",
                                           parser=quantity("--generated-tokens", positive=True),
                                           help="Generated tokens per sample."),
    share_prompt: bool = typer.Option(True, "--share-prompt/--no-share-prompt",
                                      help="The prompt is processed once for all samples (KV cache)."),
    problem: str = ProblemOpt, n: str = NOpt, c: str = COpt, correct: str = CorrectOpt,
    bootstrap: int = typer.Option(500, "--bootstrap", "-b", min=0, help="Bootstrap resamples (when fitting)."),
    seed: int = SeedOpt, save: Path = SaveOpt, json_: bool = JsonOption,
) -> None:
    """A bigger model or more samples? Coverage each model reaches at a fixed inference budget.

    Example: scalinglab testtime budget --model 8b=small.csv --params 8b=8e9 --model 70b=big.csv --params 70b=7e10 --prompt-tokens 500 --generated-tokens 300 --budget 1e15,1e16
    """
    from scalinglab.testtime.budget import Option, SampleCost, compare_at_budget

    models = _pairs(model, "--model")
    sizes = quantity_pairs("--params", positive=True)(params)  # {name: N}, human numbers
    if set(models) != set(sizes):
        raise UserError(f"give --params for exactly the --model names: models {sorted(models)}, "
                        f"params {sorted(sizes)}")
    if not prompt_tokens >= 0:
        raise UserError("--prompt-tokens must be 0 or more")
    options = []
    for name, path in models.items():
        cov = _load_coverage(path, problem, n, c, correct, bootstrap, seed)
        options.append(Option(name, cov, SampleCost(sizes[name], prompt_tokens, generated_tokens,
                                                    share_prompt)))
    result = compare_at_budget(options, budget, seed=seed)
    show_results(result, save, json_)


@app.command("verifier")
def verifier_command(
    file: Path = FileArg,
    recall: float = typer.Option(..., "--recall", help="Probability the verifier accepts a correct sample."),
    false_positive_rate: float = typer.Option(None, "--false-positive-rate", "--fpr",
                                              help="Probability it accepts a wrong sample.",
                                              show_default=False),
    precision: float = typer.Option(None, "--precision", help="Or its precision at this benchmark's "
                                    "rate of correct samples.", show_default=False),
    k: list[str] = KOpt,
    tol: float = typer.Option(0.005, "--tol", help="More samples 'stop helping' once every further "
                              "doubling of k gains less than this accuracy."),
    problem: str = ProblemOpt, n: str = NOpt, c: str = COpt, correct: str = CorrectOpt,
    model: str = ModelOpt, bootstrap: int = BootOpt, seed: int = SeedOpt, save: Path = SaveOpt,
    units: list[str] = UnitsOption, json_: bool = JsonOption,
) -> None:
    """Accuracy when an imperfect verifier picks the answer: its ceiling and where it levels off.

    Example: scalinglab testtime verifier samples.csv --recall 0.9 --precision 0.8
    """
    import numpy as np

    from scalinglab.testtime.verifier import Verifier, analyze_verifier

    if (false_positive_rate is None) == (precision is None):
        raise UserError("give exactly one of --false-positive-rate and --precision")
    data = _counts(file, problem, n, c, correct, model, units)
    results = {}
    for name, d in data.items():
        if precision is not None:
            v = Verifier.from_precision(precision, recall, float(np.mean(d.success_rate)))
        else:
            v = Verifier(recall, false_positive_rate)
        results[name] = analyze_verifier(d, v, k, tol=tol, bootstrap=bootstrap, seed=seed)
    show_results(results, save, json_)


__all__ = ["app"]
