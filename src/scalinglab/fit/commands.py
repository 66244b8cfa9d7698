"""``scalinglab fit ...``: fit loss laws and IsoFLOP allocations from a file or the run store."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from scalinglab.clikit import (
    JsonOption,
    MapOption,
    ScaleAliasOption,
    TagOption,
    UnitsOption,
    UserError,
    bootstrap_option,
    check_output_early,
    console,
    emit_json,
    err_console,
    new_app,
    parse_map,
    parse_tags,
    print_summary,
    quantity,
    save_dict,
    save_results,
)
from scalinglab.summary import format_number

fit_app = new_app(
    help="Fit laws with bootstrap intervals: loss laws (Chinchilla, Kaplan, IsoFLOP, the catalogue, "
         "your own formula), downstream and benchmark links, loss-to-loss, ladders and loss curves.",
    no_args_is_help=True,
)

FileArg = typer.Argument(
    None, help="CSV, TSV, Parquet or JSONL of runs with columns N, D (or C) and loss; "
    "omit to read the run store.", show_default=False,
)
StoreOpt = typer.Option(None, "--store", help="DuckDB run store to read when no FILE is given "
                        "(default: scalinglab.duckdb).", show_default=False)
WhereOpt = typer.Option(None, "--where", "-w", help="Filter on the runs (store or file), e.g. "
                        "\"N > 1e8 AND loss < 4\".")
TagOpt = TagOption
MapOpt = MapOption
UnitsOpt = UnitsOption  # --units N=1e6: a file's units, on every fit that reads a file
ScaleUnitsOpt = ScaleAliasOption  # --scale N=1e6: the deprecated name of --units (not on law/custom)
BootOpt = bootstrap_option()
HoldoutOpt = typer.Option(0, "--holdout-top", min=0, help="Fit without the K largest-compute runs and "
                          "report the error predicting them.")
SeedOpt = typer.Option(0, "--seed", help="Random seed of the bootstrap (results are deterministic).")
ComputeOpt = typer.Option(None, "--compute", "-c", parser=quantity("--compute", positive=True),
                          help="Budget in FLOPs for N_opt, D_opt and loss, e.g. 1e21 or 3.4e19 "
                          "(repeatable; default: the largest run's compute).", show_default=False)
AtOpt = typer.Option(None, "--at", help="Predict the loss at a point, e.g. N=1e9,D=2e10 (repeatable).")
SaveOpt = typer.Option(None, "--save", help="Write what is shown (the fit, its bootstrap draws, the "
                       "figures at --compute/--at) to this JSON file (read back with "
                       "scalinglab.load_result; `scalinglab plan --law` takes it).")
AllRunsOpt = typer.Option(False, "--all-runs", help="Fit every run, not only the best setting's "
                          "runs at each (N, D).")
BestOpt = typer.Option(False, "--best-per-point", help="Keep only the lowest-loss run at each "
                       "(N, D) (default: every replicate of the best lr/batch setting).")
GroupByOpt = typer.Option(None, "--group-by", help="Columns that also distinguish points, e.g. "
                          "unique_tokens: runs differing in them are not merged.")
TieOpt = typer.Option(None, "--tie", help="Tie parameters, e.g. alpha=beta (repeatable).")
FixOpt = typer.Option(None, "--fix", help="Hold parameters fixed, e.g. E=1.69 (repeatable).")
BoundsOpt = typer.Option(None, "--bounds", help="Keep parameters in a range, e.g. alpha=0.1:1 "
                         "(repeatable; an empty side is open: E=1:).")
LossOpt = typer.Option("huber", "--loss", help="Estimator: huber, mse or asymmetric (Huber with "
                       "over-predictions penalised).")
DeltaOpt = typer.Option(1e-3, "--delta", help="Huber threshold on log-loss residuals.")
OverOpt = typer.Option(4.0, "--over-penalty", help="Factor on over-predicting residuals "
                       "(--loss asymmetric).")
WeightsOpt = typer.Option(None, "--weights", help="Per-run weights: a column, or sqrtC for sqrt(C).")
DropOpt = typer.Option(0, "--drop-highest", min=0, help="Leave out the K highest-loss runs first "
                       "(Epoch AI's Chinchilla refit drops 5).")
FlopOpt = typer.Option(None, "--flop-convention", help="What a given C (or budget) column is: "
                       "6ND (default: checked, a warning names the column and factor when it is "
                       "not), a factor to 6ND such as 1.2, or 'given' to take it as it is.",
                       show_default=False)
ScaleOpt = typer.Option(None, "--scale", help="Where residuals are taken: log (log y - log f; "
                        "needs positive targets) or linear (y - f, any sign; coefficients solved exactly, "
                        "--loss huber/asymmetric by reweighted least squares, mse plain least squares). "
                        "Default: log when every target is positive, else linear (said in the notes).")
NoiseFloorOpt = typer.Option(None, "--noise-floor", help="Relative error below which a prediction "
                             "error is 'within noise', e.g. 0.1% or 0.001 (default: the spread of "
                             "replicate runs when there are any; seed noise is 0.02-0.1% of loss).",
                             show_default=False)
def _top_fraction(value: float | None) -> float | None:
    """--lean-top / --select-top: a fraction of the runs. One message for every bad value (NaN
    passed a min/max range check and was told only "must be at most 0.99")."""
    if value is not None and not (math.isfinite(value) and 0.0 <= value <= 0.99):
        raise typer.BadParameter(f"must be a number between 0 and 0.99, not {value:g}")
    return value


LeanOpt = typer.Option(0.0, "--lean-top", callback=_top_fraction, help="Fit to extrapolate (linear scale): of the "
                       "fits within one standard error of the least-squares optimum, take the one that best "
                       "fits this top fraction of runs by compute, e.g. 0.1 (said in the notes).")
SelectOpt = typer.Option("optimum", "--select", help="Which optimum (linear scale): 'optimum', the "
                         "least-squares one; 'forward', of the distinct optima the search found, the one whose "
                         "refit without the top --select-top runs by compute predicts them best (said in the notes).")
SelectTopOpt = typer.Option(0.1, "--select-top", callback=_top_fraction, help="With --select forward: the "
                            "top fraction of runs by compute held out to choose the optimum.")
UniqueOpt = typer.Option(None, "--unique-tokens", help="Column (or store extra/tag) of unique "
                         "tokens: input U of data-constrained laws; runs differing in it are kept apart.")


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """The one progress display (elapsed, ETA) for the multi-start search and the bootstrap."""
    if not enabled:
        yield None
        return
    from scalinglab.sweep.display import stage_progress

    labels = {"starts": "optimising starts", "bootstrap": "bootstrap fits"}
    with stage_progress(console=err_console, labels=labels) as update:
        yield update


def _parse_at(items: list[str] | None, inputs: tuple[str, ...]) -> list[dict[str, float]]:
    from scalinglab.runs.io import parse_pairs
    from scalinglab.values import parse_quantity as parse_number  # the one human-number parser

    points = []
    for item in items or []:
        pairs = parse_pairs([item], "--at")
        try:
            point = {k: parse_number(v) for k, v in pairs.items()}
        except ValueError:
            raise UserError(f"--at {item!r}: values must be numbers, e.g. N=1e9,D=2e10") from None
        if set(point) != set(inputs):
            raise UserError(f"--at {item!r}: give exactly {', '.join(inputs)}, e.g. "
                            + ",".join(f"{k}=1e9" for k in inputs))
        points.append(point)
    return points


@dataclass
class _Estimation:
    """The constraint and estimator flags every fit command shares."""

    tie: list[str] | None = None
    fix: list[str] | None = None
    bounds: list[str] | None = None
    loss: str = "huber"
    delta: float = 1e-3
    over_penalty: float = 4.0
    weights: str | None = None
    drop_highest: int = 0
    unique_tokens: str | None = None
    flop_convention: str | None = None
    scale: str | None = None
    noise_floor: str | None = None
    lean_top: float = 0.0
    select: str = "optimum"
    select_top: float = 0.1

    def kwargs(self, law: Any) -> dict[str, Any]:
        return {"tie": parse_ties(self.tie, law.param_names), "fix": parse_fixes(self.fix),
                "bounds": parse_bounds(self.bounds), "loss": self.loss, "delta": self.delta,
                "over_penalty": self.over_penalty, "weights": self.weights,
                "drop_highest": self.drop_highest, "flop_convention": _convention(self.flop_convention),
                "noise_floor": _fraction(self.noise_floor, "--noise-floor"),
                **({"scale": _scale(self.scale)} if self.scale else {}),
                **({"lean_top": self.lean_top} if self.lean_top else {}),
                **({"select": self.select, "select_top": self.select_top} if self.select != "optimum" else {})}


def _fraction(text: str | None, flag: str) -> float | None:
    """``0.1%`` or ``0.001`` -> 0.001."""
    if text is None:
        return None
    t = str(text).strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise UserError(f"{flag} {text!r} is not a fraction (e.g. 0.1% or 0.001)") from None
    if not (math.isfinite(value) and 0 <= value < 1):
        raise UserError(f"{flag} must be a fraction between 0 and 1, not {text!r}")
    return value


def _scale(text: str) -> str:
    if "=" in text:  # the older unit flag's shape: say which flag that is now
        raise UserError(f"--scale is where residuals are taken, log or linear, not {text!r}; "
                        f"a column's units are --units {text}")
    if text.strip().lower() not in ("log", "linear"):
        raise UserError(f"--scale must be log or linear, not {text!r}")
    return text.strip().lower()


def _convention(text: str | None) -> Any:
    from scalinglab.errors import ParameterError
    from scalinglab.fit.consistency import parse_convention

    try:
        parse_convention(text)
    except ParameterError as exc:
        raise UserError(f"--flop-convention: {exc}") from None
    return text


def parse_ties(items: list[str] | None, params: tuple[str, ...]) -> dict[str, str]:
    """``["alpha=beta"]`` -> ``{"beta": "alpha"}``: each group follows its first parameter in the
    law's order (``alpha=beta=gamma`` ties three)."""
    out: dict[str, str] = {}
    for item in items or []:
        for part in item.split(","):
            names = [x.strip() for x in part.split("=") if x.strip()]
            if not part.strip():
                continue
            if len(names) < 2 or part.count("=") != len(names) - 1:
                raise UserError(f"--tie {part!r} must look like alpha=beta")
            unknown = [n for n in names if n not in params]
            if unknown:
                raise UserError(f"--tie {part!r}: {unknown} not among the law's parameters "
                                f"{list(params)}")
            names.sort(key=params.index)
            out.update({n: names[0] for n in names[1:]})
    return out


def parse_fixes(items: list[str] | None) -> dict[str, float]:
    from scalinglab.runs.io import parse_pairs
    from scalinglab.values import parse_quantity as parse_number  # the one human-number parser

    out = {}
    for key, value in parse_pairs(items, "--fix").items():
        try:
            out[key] = parse_number(value)
        except ValueError:
            raise UserError(f"--fix {key}={value!r}: the value must be a number") from None
    return out


def parse_bounds(items: list[str] | None) -> dict[str, tuple[float, float]]:
    """``["alpha=0.1:1", "E=1:"]`` -> ``{"alpha": (0.1, 1.0), "E": (1.0, inf)}``."""
    from scalinglab.runs.io import parse_pairs
    from scalinglab.values import parse_quantity as parse_number  # the one human-number parser

    out = {}
    for key, value in parse_pairs(items, "--bounds").items():
        lo, sep, hi = value.partition(":")
        try:
            if not sep:
                raise ValueError
            out[key] = (parse_number(lo) if lo.strip() else -math.inf,
                        parse_number(hi) if hi.strip() else math.inf)
        except ValueError:
            raise UserError(f"--bounds {key}={value!r} must look like {key}=LO:HI, e.g. "
                            "alpha=0.1:1 (a side may be empty)") from None
    return out


def _fit_command(
    law_name: Any, file: Path | None, store: Path | None, where: str | None, tag: list[str] | None,
    map_: list[str] | None, bootstrap: int, holdout_top: int, seed: int, compute: list[float] | None,
    at: list[str] | None, save: Path | None, json_: bool, all_runs: bool, best_per_point: bool,
    group_by: str | None, est: _Estimation | None = None, units: dict[str, str] | None = None,
) -> None:
    from scalinglab.errors import NotIdentifiable
    from scalinglab.fit.data import load_runs
    from scalinglab.fit.loss import fit_law
    from scalinglab.laws.registry import get_law

    law = get_law(law_name)
    est = est or _Estimation()
    check_output_early(save, "--save")  # before the fit, not after it
    if all_runs and best_per_point:
        raise UserError("--all-runs and --best-per-point exclude each other")
    options = est.kwargs(law)
    frame, source, notes = load_runs(file, store, where, _tags(tag), law.inputs,
                                     parse_map(map_), all_runs, best_per_point,
                                     _columns(group_by), unique_tokens=est.unique_tokens,
                                     scale=units)
    points = _parse_at(at, law.inputs)
    try:
        with _progress(not json_) as progress:
            fit = fit_law(law, frame, bootstrap=bootstrap, holdout_top=holdout_top, seed=seed,
                          source=source, progress=progress, **options)
    except NotIdentifiable as exc:
        raise UserError(f"{source}: cannot fit the {law.name} law: {exc}") from None
    fit.notes[:0] = notes
    # what is shown is what is saved: the fit read at --compute/--at is a result of its own
    shown = fit.at(compute, points) if compute or points else fit
    _save_and_show(shown, save, json_)
    if save is not None and not json_:
        console.print(f"[green]saved[/] the fit and its {fit.n_draws} bootstrap draws to {save}")


def _save_and_show(shown: Any, save: Path | None, json_: bool) -> None:
    """A fit command's ending: write what is shown, with its bootstrap draws, to ``--save``;
    then its JSON (``--json``) or its summary."""
    save_results(save, shown)  # the one --save writer: the same JSON, newline-ended, as every command
    if json_:
        emit_json(shown.to_dict())
        return
    print_summary(shown.summary())


def _units(units: list[str] | None, scale: list[str] | None = None) -> dict[str, str]:
    from scalinglab.clikit import parse_units

    return parse_units(units, scale)


def _tags(tag: list[str] | None) -> dict[str, str]:
    return parse_tags(tag)


def _columns(text: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in (text or "").split(",") if c.strip())


@fit_app.command("chinchilla")
def chinchilla(
    file: Path = FileArg, store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, units: list[str] = UnitsOpt, scale_units: list[str] = ScaleUnitsOpt, bootstrap: int = BootOpt,
    holdout_top: int = HoldoutOpt,
    seed: int = SeedOpt, compute: list[float] = ComputeOpt, at: list[str] = AtOpt,
    save: Path = SaveOpt, json_: bool = JsonOption, all_runs: bool = AllRunsOpt,
    best_per_point: bool = BestOpt, group_by: str = GroupByOpt, tie: list[str] = TieOpt,
    fix: list[str] = FixOpt, bounds: list[str] = BoundsOpt, loss: str = LossOpt,
    delta: float = DeltaOpt, over_penalty: float = OverOpt, weights: str = WeightsOpt,
    drop_highest: int = DropOpt, unique_tokens: str = UniqueOpt, flop_convention: str = FlopOpt,
    noise_floor: str = NoiseFloorOpt,
) -> None:
    """Fit L = E + A/N^alpha + B/D^beta (Chinchilla Approach 3, as Besiroglu et al. 2024).

    Huber loss (delta 1e-3) on log-loss residuals, L-BFGS from 4,500 starting points, bootstrap
    intervals for every parameter and for N_opt, D_opt, tokens per parameter at a budget.

    Example: scalinglab fit chinchilla runs.csv --compute 1e22 --holdout-top 5 --save fit.json
    """
    _fit_command("chinchilla", file, store, where, tag, map_, bootstrap, holdout_top, seed,
                 compute, at, save, json_, all_runs, best_per_point, group_by,
                 _Estimation(tie, fix, bounds, loss, delta, over_penalty, weights, drop_highest,
                             unique_tokens, flop_convention, noise_floor=noise_floor),
                 units=_units(units, scale_units))


@fit_app.command("kaplan")
def kaplan(
    file: Path = FileArg, store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, units: list[str] = UnitsOpt, scale_units: list[str] = ScaleUnitsOpt, bootstrap: int = BootOpt,
    holdout_top: int = HoldoutOpt,
    seed: int = SeedOpt, compute: list[float] = ComputeOpt, at: list[str] = AtOpt,
    save: Path = SaveOpt, json_: bool = JsonOption, all_runs: bool = AllRunsOpt,
    best_per_point: bool = BestOpt, group_by: str = GroupByOpt, tie: list[str] = TieOpt,
    fix: list[str] = FixOpt, bounds: list[str] = BoundsOpt, loss: str = LossOpt,
    delta: float = DeltaOpt, over_penalty: float = OverOpt, weights: str = WeightsOpt,
    drop_highest: int = DropOpt, unique_tokens: str = UniqueOpt, flop_convention: str = FlopOpt,
    noise_floor: str = NoiseFloorOpt,
) -> None:
    """Fit Kaplan et al. 2020's L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D.

    Example: scalinglab fit kaplan --store runs.duckdb --where "N > 1e7" --json
    """
    _fit_command("kaplan", file, store, where, tag, map_, bootstrap, holdout_top, seed,
                 compute, at, save, json_, all_runs, best_per_point, group_by,
                 _Estimation(tie, fix, bounds, loss, delta, over_penalty, weights, drop_highest,
                             unique_tokens, flop_convention, noise_floor=noise_floor),
                 units=_units(units, scale_units))


@fit_app.command("power")
def power(
    file: Path = FileArg,
    x: str = typer.Option("C", "--x", help="The variable: N (parameters), D (tokens) or C (FLOPs)."),
    store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, units: list[str] = UnitsOpt, scale_units: list[str] = ScaleUnitsOpt, bootstrap: int = BootOpt,
    holdout_top: int = HoldoutOpt,
    seed: int = SeedOpt, at: list[str] = AtOpt, save: Path = SaveOpt, json_: bool = JsonOption,
    all_runs: bool = AllRunsOpt, best_per_point: bool = BestOpt, group_by: str = GroupByOpt,
    tie: list[str] = TieOpt, fix: list[str] = FixOpt, bounds: list[str] = BoundsOpt,
    loss: str = LossOpt, delta: float = DeltaOpt, over_penalty: float = OverOpt,
    weights: str = WeightsOpt, drop_highest: int = DropOpt, flop_convention: str = FlopOpt,
    noise_floor: str = NoiseFloorOpt,
) -> None:
    """Fit a one-variable power law L = E + A x^-alpha, x one of N, D, C.

    Example: scalinglab fit power runs.csv --x C --at C=1e22 --json
    """
    if x not in ("N", "D", "C"):
        raise UserError(f"--x must be N, D or C, not {x!r}")
    _fit_command(f"power_{x}", file, store, where, tag, map_, bootstrap, holdout_top, seed,
                 None, at, save, json_, all_runs, best_per_point, group_by,
                 _Estimation(tie, fix, bounds, loss, delta, over_penalty, weights, drop_highest,
                             flop_convention=flop_convention, noise_floor=noise_floor),
                 units=_units(units, scale_units))


@fit_app.command("isoflop")
def isoflop(
    file: Path = FileArg, store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, units: list[str] = UnitsOpt, scale_units: list[str] = ScaleUnitsOpt, bootstrap: int = BootOpt,
    seed: int = SeedOpt,
    budget: str = typer.Option(None, "--budget", help="Column, extra column or tag that labels "
                               "each run's compute budget (default: group runs by C)."),
    tol_dex: float = typer.Option(0.1, "--tol-dex", min=0.0, help="Runs whose C agree within this "
                                  "many decades share a budget (when grouping by C)."),
    compute: list[float] = ComputeOpt,
    save: Path = typer.Option(None, "--save", help="Write the result as JSON to this file."),
    json_: bool = JsonOption, all_runs: bool = AllRunsOpt, best_per_point: bool = BestOpt,
    group_by: str = GroupByOpt,
    method: str = typer.Option("parabola", "--method", help="Approach 2's minimum per budget: "
                               "parabola (Hoffmann et al.) or akima (Porian et al.: interpolated)."),
    flop_convention: str = FlopOpt,
    compare: bool = typer.Option(False, "--compare", help="Compare Approaches 1 and 2 (and a "
                                 "loss law with --compare-law): the ratio of their N_opt at each "
                                 "--compute budget with the interval of the ratio (joint draws); "
                                 "--save keeps them."),
    compare_law: Path = typer.Option(None, "--compare-law", help="A loss-law fit saved with "
                                     "`fit chinchilla --save` to compare with (implies --compare).",
                                     show_default=False),
) -> None:
    """Fit N_opt = k C^a and D_opt = k' C^b by Hoffmann et al.'s Approaches 1 and 2.

    Approach 1 takes the best run at each compute budget (budgets with fewer than 3 model sizes
    are skipped), Approach 2 the minimum of the IsoFLOP profile of loss against log N: a
    parabola's vertex, or with --method akima an Akima interpolation's minimum. Intervals come
    from resampling runs within budgets.

    Example: scalinglab fit isoflop runs.csv --budget budget --method akima --compute 1e22
    """
    from scalinglab.fit.data import load_runs
    from scalinglab.fit.isoflop import fit_isoflop

    check_output_early(save, "--save")
    frame, source, notes = load_runs(file, store, where, _tags(tag), ("N", "D", "C"),
                                     parse_map(map_), all_runs, best_per_point,
                                     _columns(group_by),
                                     scale=_units(units, scale_units))
    with err_console.status("fitting IsoFLOP parabolas", spinner="dots") if not json_ else _null():
        result = fit_isoflop(frame, bootstrap=bootstrap, seed=seed, budget=budget, tol_dex=tol_dex,
                             source=source, method=method,
                             flop_convention=_convention(flop_convention))
    result.notes[:0] = notes
    if compare or compare_law:  # part of the result: its summary shows them, --save keeps them
        result.comparisons = _compare(result, compute, compare_law)
    shown = result.at(compute) if compute else result  # what is shown is what is saved
    _save_and_show(shown, save, json_)


def _compare(result: Any, compute: list[float] | None, law_path: Path | None) -> list[Any]:
    """Comparisons of N_opt between the approaches at each budget asked for (default: the
    largest budget and 10x and 100x it)."""
    from scalinglab.fit.compare import compare_n_opt

    top = max(b.C for b in result.budgets)
    cs = list(compute) if compute else [top, 10 * top, 100 * top]
    methods: list[tuple[str, Any]] = [(f"Approach {a.approach}", a) for a in result.approaches]
    if law_path is not None:
        import json

        from scalinglab.fit.result import FitResult

        try:
            fit = FitResult.from_dict(json.loads(law_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"--compare-law {law_path}: not a saved loss-law fit ({exc})") from None
        methods.append((f"loss law ({law_path.name})", fit))
    if len(methods) < 2:
        raise UserError("--compare needs two methods: this IsoFLOP fit has one approach; add "
                        "--compare-law FIT.json")
    out = []
    for c in cs:
        for i in range(len(methods)):
            for j in range(i + 1, len(methods)):
                (na, a), (nb, b) = methods[j], methods[i]
                joint = hasattr(a, "log_kn") and hasattr(b, "log_kn")  # both from the same resamples
                out.append(compare_n_opt(a, b, float(c), names=(na, nb), joint=joint))
    return out


@contextmanager
def _null() -> Iterator[None]:
    yield None


@fit_app.command("law")
def law_cmd(
    name: str = typer.Argument(..., help="A law of the catalogue (see `scalinglab fit laws`)."),
    file: Path = FileArg, store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, units: list[str] = UnitsOpt, bootstrap: int = BootOpt,
    holdout_top: int = HoldoutOpt,
    seed: int = SeedOpt, compute: list[float] = ComputeOpt, at: list[str] = AtOpt,
    save: Path = SaveOpt, json_: bool = JsonOption, all_runs: bool = AllRunsOpt,
    best_per_point: bool = BestOpt, group_by: str = GroupByOpt, tie: list[str] = TieOpt,
    fix: list[str] = FixOpt, bounds: list[str] = BoundsOpt, loss: str = LossOpt,
    delta: float = DeltaOpt, over_penalty: float = OverOpt, weights: str = WeightsOpt,
    drop_highest: int = DropOpt, unique_tokens: str = UniqueOpt, flop_convention: str = FlopOpt,
    scale: str = ScaleOpt, noise_floor: str = NoiseFloorOpt, lean_top: float = LeanOpt,
    select: str = SelectOpt, select_top: float = SelectTopOpt,
) -> None:
    """Fit any law of the catalogue by name (gadre2024, muennighoff2023, broken_power_C, ...).

    Example: scalinglab fit law muennighoff2023 runs.csv --unique-tokens unique_tokens --fix E=1.87
    """
    _fit_command(name, file, store, where, tag, map_, bootstrap, holdout_top, seed, compute, at,
                 save, json_, all_runs, best_per_point, group_by,
                 _Estimation(tie, fix, bounds, loss, delta, over_penalty, weights, drop_highest,
                             unique_tokens, flop_convention, scale, noise_floor, lean_top, select, select_top),
                 units=_units(units))


@fit_app.command("laws")
def laws_cmd(json_: bool = JsonOption) -> None:
    """List the catalogue: each law's formula, parameters and source.

    Example: scalinglab fit laws --json
    """
    from scalinglab.laws.curves import get_curve_law, list_curve_laws
    from scalinglab.laws.registry import get_law, list_laws

    rows = [get_law(n).to_dict() for n in list_laws()]
    rows += [get_curve_law(n).describe() for n in list_curve_laws()]  # fitted by `fit curves`
    if json_:
        emit_json(rows)
        return
    for r in rows:
        prov = r.get("provenance") or {}
        console.print(f"[bold]{r['name']}[/]: {r['formula']}  [dim]({', '.join(r['params'])})[/]")
        if prov.get("source"):
            console.print(f"    [dim]{prov['source']}[/]", highlight=False)
        if prov.get("units"):
            console.print(f"    [dim]units: {prov['units']}[/]", highlight=False)
        # a law's form holds wherever its fit's runs do; a range here is the published data's
        span = ", ".join(f"{k} {format_number(lo)}-{format_number(hi)}"
                         for k, (lo, hi) in (prov.get("valid_range") or {}).items())
        console.print(f"    [dim]range: {span or 'that of the runs it is fitted on'}[/]",
                      highlight=False)


@fit_app.command("custom")
def custom_cmd(
    file: Path = FileArg,
    formula: str = typer.Option(..., "--formula", help="The law, e.g. \"E + A*N**-alpha + "
                                "B*D**-beta\" (arithmetic, exp, log, log10, sqrt, min, max, abs, tanh, sigmoid, softplus, "
                                "clip)."),
    inputs: str = typer.Option(..., "--inputs", help="Input columns, e.g. N,D; every other name "
                               "is a parameter."),
    name: str = typer.Option("custom", "--name", help="Name of the law in results."),
    define: list[str] = typer.Option(None, "--define", help="A shorthand used in the formula, "
                                     "NAME=EXPR, e.g. Deff=\"U*(1 + R*(1 - exp(-(D/U - 1)/R)))\" "
                                     "(repeatable, in order)."),
    store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, units: list[str] = UnitsOpt, bootstrap: int = BootOpt,
    holdout_top: int = HoldoutOpt,
    seed: int = SeedOpt, compute: list[float] = ComputeOpt, at: list[str] = AtOpt,
    save: Path = SaveOpt, json_: bool = JsonOption, all_runs: bool = AllRunsOpt,
    best_per_point: bool = BestOpt, group_by: str = GroupByOpt, tie: list[str] = TieOpt,
    fix: list[str] = FixOpt, bounds: list[str] = BoundsOpt, loss: str = LossOpt,
    delta: float = DeltaOpt, over_penalty: float = OverOpt, weights: str = WeightsOpt,
    drop_highest: int = DropOpt, unique_tokens: str = UniqueOpt, flop_convention: str = FlopOpt,
    scale: str = ScaleOpt, noise_floor: str = NoiseFloorOpt, lean_top: float = LeanOpt,
    select: str = SelectOpt, select_top: float = SelectTopOpt,
    group: str = typer.Option(None, "--group", help="Fit per group of this column: one law per "
                              "group, or with --per-group one joint fit."),
    per_group: str = typer.Option(None, "--per-group", help="With --group: these parameters get "
                                  "one value per group (e.g. E,A); the others are shared across "
                                  "groups (a joint least-squares fit on the linear scale)."),
    ctx: typer.Context = None,  # type: ignore[assignment]  (typer passes it: which options were typed)
) -> None:
    """Fit a law you write: parsed safely (no eval), symbolic gradients, multi-start, bootstrap.

    On the log scale (positive targets), parameters that only scale (never in an exponent) are
    fitted as logarithms, so they stay positive. On the linear scale (--scale linear, the default
    when a target is <= 0) every parameter keeps its sign, coefficients and offsets are solved
    exactly, and --bounds keep the fit inside. A column in other units: --units N=1e6.

    Example: scalinglab fit custom runs.csv --formula "E + A*N**-alpha + B*D**-beta" --inputs N,D --save fit.json
    """
    from scalinglab.laws.base import Law

    declared = parse_bounds(bounds)
    definitions = []
    for item in define or []:
        key, sep, body = item.partition("=")
        if not sep or not key.strip() or not body.strip():
            raise UserError(f"--define {item!r} must look like NAME=EXPRESSION")
        definitions.append((key.strip(), body.strip()))
    law = Law.from_formula(formula, inputs, name=name, definitions=definitions,
                           bounds={k: v for k, v in declared.items()})
    est = _Estimation(tie, fix, bounds, loss, delta, over_penalty, weights, drop_highest,
                      unique_tokens, flop_convention, scale, noise_floor, lean_top, select, select_top)
    if per_group and not group:
        raise UserError("--per-group needs --group COLUMN")
    if group:
        # options the grouped fits do not use were silently ignored (--save wrote nothing)
        # the joint fit (--per-group) is one result and saves; one fit per group does not
        unused = [flag for flag, given in (("--save", save and not per_group), ("--holdout-top", holdout_top),
                                           ("--compute", compute), ("--at", at)) if given]
        if per_group:  # the joint fit is least squares on the linear scale, without these
            unused += [flag for flag, given in (
                ("--tie", tie), ("--fix", fix), ("--weights", weights), ("--drop-highest", drop_highest),
                ("--noise-floor", noise_floor), ("--scale log", scale == "log"),
                # huber is the default: refused only where typed (the fit's notes say it is
                # least squares); mse is what the joint fit does
                ("--loss " + str(loss), loss != "mse" and (loss != "huber" or _typed(ctx, "loss"))),
                ("--delta", _typed(ctx, "delta")), ("--over-penalty", _typed(ctx, "over_penalty"))) if given]
        if unused:
            raise UserError(f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not combine "
                            f"with --group{' --per-group' if per_group else ''}"
                            + (" (use --json to keep the grouped fits)" if "--save" in unused else ""))
        _fit_groups(law, file, store, where, tag, map_, all_runs, best_per_point, group_by, group,
                    per_group, bootstrap, seed, json_, est, _units(units), save)
        return
    _fit_command(law, file, store, where, tag, map_, bootstrap, holdout_top, seed, compute, at,
                 save, json_, all_runs, best_per_point, group_by, est, units=_units(units))


def _typed(ctx: typer.Context | None, param: str) -> bool:
    """Whether the command line gave ``param`` (not its default), where a default and a typed
    value look alike (``--loss huber``)."""
    source = None if ctx is None else ctx.get_parameter_source(param)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _fit_groups(law: Any, file: Path | None, store: Path | None, where: str | None,
                tag: list[str] | None, map_: list[str] | None, all_runs: bool, best_per_point: bool,
                group_by: str | None, group: str, per_group: str | None, bootstrap: int, seed: int,
                json_: bool, est: _Estimation, units: dict[str, str] | None = None,
                save: Path | None = None) -> None:
    """``fit custom --group COL [--per-group E,A]``: one fit per group, or one joint fit with
    the named parameters per group and the rest shared (its bootstrap resamples the runs within
    each group: intervals like every other fit; ``--save`` keeps it with its draws)."""
    from scalinglab.errors import NotIdentifiable, ParameterError
    from scalinglab.fit.data import load_runs
    from scalinglab.fit.loss import compute_note, fit_law, run_compute
    from scalinglab.fit.lsq import fit_joint

    frame, source, notes = load_runs(file, store, where, _tags(tag), law.inputs, parse_map(map_),
                                     all_runs, best_per_point, _columns(group_by),
                                     unique_tokens=est.unique_tokens, scale=units,
                                     keep_apart=(group,))
    if group not in frame.columns:  # checked here, so the message names --group, not --group-by
        from scalinglab.errors import columns_hint

        columns = [str(c) for c in frame.columns if c not in ("extra", "tags")]
        for holder in ("extra", "tags"):  # a store's runs: the extra fields and tags --group reads
            if holder in frame.columns:
                columns += sorted({str(k) for d in frame[holder] if isinstance(d, dict)
                                   for k in d} - set(columns))
        raise UserError(f"{source}: --group {group!r} is not a column of the runs"
                        f"{columns_hint(group, columns)}")
    labels = frame[group].astype(str)
    shared_names = _columns(per_group)
    if shared_names:
        check_output_early(save, "--save")  # before the fit, not after it
    try:
        if shared_names:
            if law.definition.get("definitions"):
                raise UserError("--per-group does not combine with --define (write the formula out)")
            compute = None
            if est.lean_top or est.select != "optimum":
                # the top runs by compute, by fit_law's own rule (as the fits without
                # --per-group order them)
                compute, basis = run_compute({k: frame[k] for k in law.inputs},
                                             frame.get("C"))
                notes = notes + compute_note(basis, 0, est.lean_top, est.select)
            joint = fit_joint([law.definition["formula"]], {k: frame[k] for k in law.inputs},
                              frame["loss"].to_numpy(float), groups=labels.tolist(),
                              per_group=shared_names, bounds=law.bounds, seed=seed,
                              compute=compute, lean_top=est.lean_top, select=est.select,
                              select_top=est.select_top, bootstrap=bootstrap,
                              run_ids=frame["run_id"].astype(str).tolist() if "run_id" in frame else None)
            joint.notes[:0] = notes
            # one to_dict (its estimates() reads every draw); the draws only in the saved file
            saved = joint.to_dict(include_draws=save is not None) | {"source": source, "group": group}
            out = {k: v for k, v in saved.items() if k != "draws"}
            if save is not None:
                from scalinglab.serialize import keep_infinities

                save_dict(save, keep_infinities(saved))
            if json_:
                emit_json(out)
                return
            console.print(f"[bold]{law.name}[/] on {source}: {len(frame)} runs in "
                          f"{len(joint.groups)} groups of {group!r}; per group: {', '.join(shared_names)}")
            print_summary(joint.summary())
            if save is not None:
                n = 0 if joint.draws is None else len(joint.draws)
                console.print(f"[green]saved[/] the joint fit and its {n} bootstrap draws to {save}")
            return
        fits = {}
        for g in sorted(set(labels)):
            sub = frame[(labels == g).to_numpy()].reset_index(drop=True)
            fits[g] = fit_law(law, sub, bootstrap=bootstrap, seed=seed,
                              source=f"{source} [{group} = {g}]", **est.kwargs(law))
    except (NotIdentifiable, ParameterError) as exc:
        raise UserError(f"{source}: cannot fit the {law.name} law per {group!r}: {exc}") from None
    if json_:
        emit_json({"group": group, "source": source, "notes": notes,
                   "fits": {g: f.to_dict() for g, f in fits.items()}})
        return
    for g, f in fits.items():
        console.print(f"[bold]{group} = {g}[/]")
        print_summary(f.summary())


@fit_app.command("select")
def select_cmd(
    file: Path = FileArg,
    laws: str = typer.Option("chinchilla,chinchilla_tied,kaplan,power_C", "--laws",
                             help="Candidate laws of the catalogue, comma separated."),
    store: Path = StoreOpt, where: str = WhereOpt, tag: list[str] = TagOpt,
    map_: list[str] = MapOpt, units: list[str] = UnitsOpt, scale_units: list[str] = ScaleUnitsOpt,
    bootstrap: int = typer.Option(50, "--bootstrap", "-b", min=0, help="Bootstrap resamples per "
                                  "fit (for the bands' coverage; 0: none)."),
    seed: int = SeedOpt,
    steps: int = typer.Option(6, "--steps", min=1, help="Compute cut-offs to fit below."),
    min_train: int = typer.Option(3, "--min-train", min=1, help="Budgets a cut-off fits on at least."),
    by: str = typer.Option("C", "--by", help="Roll forward in C (compute), N (model size: fit the "
                           "smaller models, predict the bigger) or D."),
    json_: bool = JsonOption, all_runs: bool = AllRunsOpt, best_per_point: bool = BestOpt,
    group_by: str = GroupByOpt, loss: str = LossOpt, delta: float = DeltaOpt,
    over_penalty: float = OverOpt, weights: str = WeightsOpt, unique_tokens: str = UniqueOpt,
    target: float = typer.Option(None, "--target", help="Where the question is, in the --by "
                                 "variable (e.g. the FLOPs of the planned run): says whether the "
                                 "evidence reaches that far.", show_default=False),
) -> None:
    """Rank candidate laws by rolling-forward error (fit below each compute level, predict
    above) and say which to trust.

    Example: scalinglab fit select runs.csv --laws chinchilla,chinchilla_tied,gadre2024 --json
    """
    from scalinglab.fit.data import load_runs
    from scalinglab.fit.validate import select_laws
    from scalinglab.laws.registry import get_law

    names = _columns(laws)
    if not names:
        raise UserError("--laws needs at least one law")
    candidates = [get_law(n) for n in names]
    needed = tuple(dict.fromkeys(x for law in candidates for x in law.inputs))
    frame, source, notes = load_runs(file, store, where, _tags(tag), needed,
                                     parse_map(map_), all_runs, best_per_point,
                                     _columns(group_by), unique_tokens=unique_tokens,
                                     scale=_units(units, scale_units))
    with err_console.status("rolling-forward fits", spinner="dots") if not json_ else _null():
        result = select_laws(frame, candidates, target=target, bootstrap=bootstrap, seed=seed, steps=steps,
                             min_train=min_train, source=source, by=by, loss=loss, delta=delta,
                             over_penalty=over_penalty, weights=weights)
    result.notes[:0] = notes
    if json_:
        emit_json(result.to_dict())
        return
    print_summary(result.summary())
