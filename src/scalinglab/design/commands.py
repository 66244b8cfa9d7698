"""``scalinglab simulate``, ``scalinglab design next`` and ``scalinglab sweep auto``.

Thin shells over :mod:`scalinglab.design`: parse, call the library, print its summary (or
``--json``). torch is imported only by the commands that plan or train runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from scalinglab.clikit import (
    DEFAULT_STORE,
    JsonOption,
    MapOption,
    TagOption,
    UnitsOption,
    UserError,
    command_inputs,
    console,
    emit_json,
    err_console,
    fraction,
    fractions,
    new_app,
    parse_map,
    parse_tags,
    parse_units,
    print_summary,
    quantities,
    quantity,
    quantity_range,
    save_dict,
    write_file,
)

if TYPE_CHECKING:
    from scalinglab.design.auto import AutoResult
    from scalinglab.sweep.data import DataSpec
    from scalinglab.sweep.plan import Defaults

design_app = new_app(help="Choose the runs that teach the most about a target budget.",
                     no_args_is_help=True)


# -- simulate ----------------------------------------------------------------------------------


def simulate_cmd(
    truth: str = typer.Option("besiroglu2024", "--truth", help="The known law: a published one "
                              "(hoffmann2022, besiroglu2024) or a fit saved with `fit --save`."),
    law: str = typer.Option(None, "--law", help="Law to fit (default: the truth's own)."),
    noise: float = typer.Option(0.01, "--noise", min=0.0, help="Log-normal sigma of each run's "
                                "loss about the law (per (N, D) point)."),
    seed_spread: float = typer.Option(0.0, "--seed-spread", min=0.0, help="Extra log-normal "
                                      "sigma from seed to seed (replicates differ by this)."),
    designs: str = typer.Option("isoflop,grid,adaptive", "--designs",
                                help="Designs to compare: isoflop, grid, adaptive."),
    spend: Any = typer.Option("1e21", "--spend", parser=quantities("--spend", positive=True),
                              help="Total FLOPs of a study (6ND summed), "
                              "comma-separated for several (the figure plots width vs spend)."),
    target: float = typer.Option("1e24", "--target", parser=quantity("--target", positive=True),
                                 help="Budget (FLOPs) to predict."),
    repeats: int = typer.Option(50, "--repeats", "-r", min=1, help="Studies per design and spend."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated noise (deterministic)."),
    bootstrap: int = typer.Option(200, "--bootstrap", "-b", min=2, help="Bootstrap resamples of each fit."),
    starts: int = typer.Option(None, "--starts", min=1, help="Thin the law's start grid to about "
                               "this many points (default: the whole grid)."),
    budgets: int = typer.Option(5, "--budgets", min=1, help="isoflop: number of budgets."),
    sizes: int = typer.Option(7, "--sizes", min=1, help="isoflop: model sizes per budget."),
    ratio: float = typer.Option(3.0, "--ratio", help="isoflop: factor between budgets."),
    span: float = typer.Option(16.0, "--span", help="isoflop: largest / smallest N of a budget."),
    tokens_per_param: float = typer.Option(20.0, "--tokens-per-param",
                                           help="isoflop, grid: tokens per parameter at the centre."),
    grid: str = typer.Option("6x6", "--grid", help="grid: SIZESxTOKENS, e.g. 6x6."),
    replicates: int = typer.Option(1, "--replicates", min=1, help="isoflop, grid: seeds per point."),
    k: int = typer.Option(4, "--k", min=1, help="adaptive: runs per round."),
    max_runs: int = typer.Option(40, "--max-runs", min=2, help="adaptive: most runs in all."),
    criterion: str = typer.Option("draws", "--criterion", help="adaptive: draws (bootstrap "
                                  "ensemble) or fisher (linearised)."),
    aim: str = typer.Option("loss,N_opt", "--aim", help="adaptive: figures at the target to "
                            "narrow (loss, N_opt, or law parameters)."),
    domain: Any = typer.Option("1,1000", "--domain-tpp", parser=quantity_range("--domain-tpp"),
                               help="adaptive: tokens per parameter "
                               "its runs may have, LOW,HIGH."),
    smallest: float = typer.Option(1e-4, "--smallest", parser=fraction("--smallest"),
                                   help="adaptive: smallest run, as a share of the spend "
                                   "(e.g. 1e-4 or 0.01%)."),
    workers: int = typer.Option(None, "--workers", "-j", min=1, help="Processes running studies "
                                "(default: one per core)."),
    figure: Path = typer.Option(None, "--figure", help="Write the width-vs-spend figure (PNG/SVG)."),
    save: Path = typer.Option(None, "--save", help="Write every study's outcome as JSON."),
    json_: bool = JsonOption,
) -> None:
    """Prove a design before trusting it: repeated simulated studies from a known law, each fitted
    by the real engine; per design, bias, 95% interval width and coverage of L, N_opt and D_opt
    at the target, and the FLOPs actually used.

    Examples:

        scalinglab simulate --truth hoffmann2022 --spend 1e21 --target 1e24 --repeats 50

        scalinglab simulate --designs isoflop,adaptive --spend 1e20,1e21,1e22 --figure width.png
    """
    from scalinglab.design.layouts import GridLayout, IsoflopLayout
    from scalinglab.design.loop import AdaptiveSettings, aim_from
    from scalinglab.design.simulate import (
        AdaptiveDesign,
        FixedDesign,
        Noise,
        resolve_truth,
        simulate,
    )

    chosen = [d.strip() for d in designs.split(",") if d.strip()]
    known = ("isoflop", "grid", "adaptive")
    bad = [d for d in chosen if d not in known]
    if bad or not chosen:
        raise UserError(f"--designs: unknown design(s) {bad}; choose from {', '.join(known)}")
    try:
        g_sizes, g_tokens = (int(x) for x in grid.lower().split("x"))
    except ValueError:
        raise UserError(f"--grid {grid!r}: write SIZESxTOKENS, e.g. 6x6") from None
    if criterion not in ("draws", "fisher"):
        raise UserError(f"--criterion must be draws or fisher, not {criterion!r}")
    made: dict[str, Any] = {
        "isoflop": lambda: FixedDesign("isoflop", IsoflopLayout(
            budgets, sizes, ratio, span, tokens_per_param, replicates)),
        "grid": lambda: FixedDesign("grid", GridLayout(
            g_sizes, g_tokens, tokens_per_param=tokens_per_param, replicates=replicates)),
        "adaptive": lambda: AdaptiveDesign("adaptive", AdaptiveSettings(
            k=k, max_runs=max_runs, criterion=criterion, aim=aim_from(aim),  # type: ignore[arg-type]
            smallest=smallest, tokens_per_param=domain)),
    }
    design_objs = [made[d]() for d in dict.fromkeys(chosen)]
    if workers is None:
        import os

        workers = os.cpu_count() or 1
    total = len(design_objs) * len(spend) * repeats
    # a bad --truth file is said alone, before any progress line is drawn
    truth_law = resolve_truth(truth)
    if json_:
        result = simulate(truth_law, design_objs, spend, target,
                          repeats=repeats, seed=seed, noise=Noise(noise, seed_spread), law=law,
                          bootstrap=bootstrap, starts=starts, workers=workers)
    else:
        from scalinglab.sweep.display import stage_progress

        with stage_progress(console=err_console) as update:
            update("simulated studies", 0, total)
            result = simulate(truth_law, design_objs, spend, target,
                              repeats=repeats, seed=seed, noise=Noise(noise, seed_spread), law=law,
                              bootstrap=bootstrap, starts=starts, workers=workers,
                              progress=lambda done, n: update("simulated studies", done, n))
    if save is not None:
        save_dict(save, result.to_dict(include_studies=True))
    if figure is not None:
        from scalinglab.design.figures import width_vs_spend

        fig = width_vs_spend(result)
        fmt = figure.suffix.lstrip(".").lower() or "png"
        write_file(figure, lambda fh: fig.savefig(fh, format=fmt, dpi=130), "--figure")
    if json_:
        emit_json(result.to_dict())
        return
    print_summary(result.summary())
    for path, what in ((figure, "figure"), (save, "studies")):
        if path is not None:
            console.print(f"wrote {what} {path}")


# -- the sweep's defaults --------------------------------------------------------------------


def _sweep_defaults(plan: Path | None, data: str, seq_len: int | None, batch_tokens: int | None,
                    lr: float | None) -> tuple[Defaults, DataSpec]:
    """Defaults and data of the runs to propose: from a plan file, or the `sweep plan` ones."""
    from scalinglab.design.sweeps import defaults_of
    from scalinglab.sweep.commands import data_spec
    from scalinglab.sweep.plan import Defaults, load_plan

    if plan is not None:
        base = load_plan(plan)
        defaults, spec = defaults_of(base), base.data
    else:  # --data as `sweep plan` reads it, in the same words
        defaults, spec = Defaults(), data_spec(data)
    changes = {k: v for k, v in (("seq_len", seq_len), ("batch_tokens", batch_tokens), ("lr", lr))
               if v is not None}
    if changes:
        from dataclasses import replace

        defaults = replace(defaults, **changes)
    return defaults, spec


def _hparams(spec: str | None) -> Any:
    if spec is None or spec.lower() == "none":
        return None
    from scalinglab.hparams.fit import load_hparam_law

    return load_hparam_law(spec)


_PLAN = typer.Option(None, "--plan", help="A sweep plan whose [data] and [defaults] the new runs "
                     "share (e.g. the plan that made the store's runs).")
_DATA = typer.Option("stdlib", "--data", help="Corpus when no --plan is given: 'stdlib', a text "
                     "file or folder, or a uint16 .bin/.npy array.")
_SEQ = typer.Option(None, "--seq-len", help="Context length (default: the plan's, else 128).")
_BATCH = typer.Option(None, "--batch-tokens", help="Tokens per step (default: the plan's, else 2048).")
_LR = typer.Option(None, "--lr", help="Peak learning rate (default: the plan's, else 3e-3).")
_HP = typer.Option(None, "--hparams", help="lr and batch per run from a law: steplaw, deepseek or "
                   "a `hparams fit --save` file (default: the plan's fixed lr and batch).")
_TPP = typer.Option("2,2000", "--tokens-per-param", parser=quantity_range("--tokens-per-param"),
                    help="Tokens per parameter the new runs may have, LOW,HIGH.")
_MAXTOK = typer.Option(None, "--max-tokens", parser=quantity("--max-tokens", positive=True),
                       help="Most tokens a new run may train on (bounds wall time: tiny models "
                       "run at about the same tokens/s as larger ones).")
_MAXN = typer.Option(None, "--max-params", parser=quantity("--max-params", positive=True),
                     help="Largest model a new run may have (keep the design where the "
                     "sweep's lr and batch are trusted).")
_CRIT = typer.Option("draws", "--criterion", help="draws (the bootstrap ensemble) or fisher.")
_AIM = typer.Option("loss,N_opt", "--aim", help="Figures at the target to narrow: loss, N_opt, or "
                    "law parameters (E, A, ...).")
_LAW = typer.Option("chinchilla", "--law", help="Loss law of the study.")


# -- design next -------------------------------------------------------------------------------


@design_app.command("next")
def design_next(
    target: float = typer.Option(..., "--target", parser=quantity("--target", positive=True),
                                 help="Budget (FLOPs) whose prediction matters."),
    spend: float = typer.Option(..., "--spend", parser=quantity("--spend", positive=True),
                                help="FLOPs (6ND) the next runs may use in all."),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store of the study."),
    k: int = typer.Option(4, "--k", min=1, help="How many runs to propose."),
    out: Path = typer.Option(Path("next.toml"), "--out", "-o", help="Plan file to write."),
    where: str = typer.Option(None, "--where", "-w", help="SQL filter on the store's runs."),
    tag: list[str] = TagOption,
    law: str = _LAW, plan: Path = _PLAN, data: str = _DATA, seq_len: int = _SEQ,
    batch_tokens: int = _BATCH, lr: float = _LR, hparams: str = _HP,
    tokens_per_param: Any = _TPP, max_tokens: float | None = _MAXTOK,
    max_params: float | None = _MAXN,
    smallest: float | None = typer.Option(None, "--smallest", parser=quantity("--smallest", positive=True),
                                          help="Smallest run to consider, FLOPs "
                                          "(default: a quarter of the store's smallest)."),
    bootstrap: int = typer.Option(200, "--bootstrap", "-b", min=20, help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    criterion: str = _CRIT, aim: str = _AIM,
    name: str = typer.Option("design", "--name", help="Sweep name (tag 'sweep') of the new runs."),
    json_: bool = JsonOption,
) -> None:
    """Propose the next k runs that most narrow the target's interval per FLOP, as an editable
    sweep plan, with the interval now and the one expected after them.

    Examples:

        scalinglab design next --store runs.duckdb --target 1e14 --spend 2e12 --k 4

        scalinglab design next --target 1e22 --spend 1e20 --plan iso.toml --hparams steplaw
    """
    import numpy as np

    from scalinglab.design.loop import aim_from
    from scalinglab.design.propose import propose
    from scalinglab.design.sweeps import SweepSpace, plan_of
    from scalinglab.fit.loss import fit_law
    from scalinglab.laws.registry import get_law
    from scalinglab.runs.select import select_runs
    from scalinglab.runs.store import RunStore

    if criterion not in ("draws", "fisher"):
        raise UserError(f"--criterion must be draws or fisher, not {criterion!r}")
    from scalinglab.design.targets import check_budget

    spec = get_law(law)
    c_target = check_budget(target, "target")
    c_spend = check_budget(spend, "spend")
    tags = parse_tags(tag)
    # --plan / --data checked before the store is read and the law fitted (it was after the fit)
    defaults, dspec = _sweep_defaults(plan, data, seq_len, batch_tokens, lr)
    if not store.exists():
        raise UserError(f"--store {store}: no run store here (run a sweep or import runs first)")
    runs = RunStore(store, read_only=True)
    every = runs.runs(where=where, tags=tags, status=None)
    finished = every[(every["status"] == "finished") & every["loss"].notna()]
    if finished.empty:
        raise UserError(f"{store}: no finished runs" + (f" match --where {where!r}" if where else ""))
    chosen = select_runs(finished.reset_index(drop=True), spec.inputs)
    fit = fit_law(spec, chosen.frame, bootstrap=bootstrap, seed=seed, source=str(store))
    fit.notes[:0] = chosen.notes
    low = smallest if smallest else float(finished["C"].min()) / 4.0
    space = SweepSpace((min(low, c_spend), c_spend), tokens_per_param,
                       defaults, dspec, _hparams(hparams), name=name,
                       max_tokens=max_tokens, max_params=max_params)
    cands = space.candidates()
    proposal = propose(fit, (every["N"].to_numpy(float), every["D"].to_numpy(float)), c_target,
                       c_spend, (cands.N, cands.D), k=k, aim=dict(aim_from(aim)),
                       criterion=criterion, cost=cands.C)  # type: ignore[arg-type]
    specs = [cands.specs[r.index] for r in proposal.runs]
    if specs:
        sweep = plan_of(specs, dspec, defaults, name, notes=[proposal.reason()])
        sweep.save(out, inputs=command_inputs("out"))
    if json_:
        emit_json(proposal.to_dict() | {"plan": str(out) if specs else None, "planned": [
            {"run_id": s.run_id, "N": s.N, "D": s.D, "C": s.C, "d_model": s.model.d_model,
             "n_layers": s.model.n_layers, "n_heads": s.model.n_heads, "steps": s.train.steps,
             "lr": s.train.lr, "batch_tokens": s.tokens_per_step} for s in specs]})
        return
    print_summary(proposal.summary())
    if specs:
        console.print(f"wrote {out}: {len(specs)} runs, {float(np.sum([s.C for s in specs])):.3g} "
                      f"FLOPs; read it, edit it, then: scalinglab sweep run {out} --store {store}",
                      soft_wrap=True)
    else:
        console.print("[yellow]no plan written[/]: " + "; ".join(proposal.warnings), soft_wrap=True)


# -- design pool / design replay ---------------------------------------------------------------

_POOL_LAW = typer.Option(None, "--law", help="Law of the catalogue (see `scalinglab fit laws`).")
_POOL_FORMULA = typer.Option(None, "--formula", help="Or a law you write, e.g. \"E + A*N**-a\" "
                             "(with --inputs).")
_POOL_INPUTS = typer.Option(None, "--inputs", help="Input columns of --formula, e.g. N,E.")
_POOL_BOUNDS = typer.Option(None, "--bounds", help="Bounds of a --formula parameter, "
                            "e.g. a=0:2 (repeatable).")
_POOL_COST = typer.Option(..., "--cost", help="Cost of a run: an expression over the pool's "
                          "columns, e.g. 6*N*D or N*E.")
_POOL_TARGET = typer.Option("top:10%", "--target", help="Rows to predict: top:10% (costliest "
                            "tenth), top:K, or a filter such as \"N >= 1e9\".")
_POOL_CRIT = typer.Option("fisher", "--criterion", help="fisher (Laplace at the estimate) or "
                          "draws (bootstrap ensemble).")
_POOL_POWER = typer.Option(1.0, "--cost-power", min=0.0, help="Gain per cost**P (1: per unit "
                           "cost; 0: cost only has to fit the budget).")
_POOL_DISC = typer.Option(True, "--discrepancy/--no-discrepancy", help="Choose for the fit's "
                          "expected error over the target, counting what the law cannot express "
                          "(runs near the target are worth more); --no-discrepancy trusts the "
                          "law's form.")


def _pool_law(law: str | None, formula: str | None, inputs: str | None,
              bounds: list[str] | None) -> Any:
    if (law is None) == (formula is None):
        raise UserError("give either --law NAME or --formula TEXT (with --inputs)")
    if law is not None:
        from scalinglab.laws.registry import get_law

        return get_law(law)
    if not inputs:
        raise UserError("--formula needs --inputs, e.g. --inputs N,D")
    from scalinglab.fit.commands import parse_bounds
    from scalinglab.laws.base import Law

    return Law.from_formula(formula, inputs, name="custom", bounds=parse_bounds(bounds))


def _read(path: Path, option: str, units: list[str] | None = None,
          columns: dict[str, str] | None = None) -> Any:
    """A table of experiments; ``units`` (``--units N=1e6``) multiply columns in other units,
    named by the file's column or by the name ``--map`` reads from it."""
    from scalinglab.runs.io import read_table, scale_columns

    if not path.exists():
        raise UserError(f"{option} {path}: no such file")
    given = parse_units(units)
    table = read_table(path)
    if not given:
        return table
    return scale_columns(table, {(columns or {}).get(k, k): v for k, v in given.items()},
                         str(path))


@design_app.command("pool")
def design_pool_cmd(
    candidates: Path = typer.Argument(..., help="Table of runnable experiments (CSV, Parquet, "
                                      "JSONL): the law's inputs, one run a row."),
    cost: str = _POOL_COST,
    budget: float = typer.Option(..., "--budget", parser=fraction("--budget"),
                                 help="Share of the pool's total cost the study "
                                 "may spend in all, observed runs included (e.g. 0.05 or 5%)."),
    target: str = _POOL_TARGET,
    law: str = _POOL_LAW, formula: str = _POOL_FORMULA, inputs: str = _POOL_INPUTS,
    bounds: list[str] = _POOL_BOUNDS,
    observed: Path = typer.Option(None, "--observed", help="Runs made so far: rows of the pool "
                                  "with their outcome (a previous --out with the outcome filled "
                                  "in, appended to each round)."),
    outcome: str = typer.Option("loss", "--outcome", help="Outcome column of --observed."),
    map_: list[str] = MapOption,
    units: list[str] = UnitsOption,
    k: int = typer.Option(8, "--k", min=1, help="Most runs to propose this round."),
    criterion: str = _POOL_CRIT, cost_power: float = _POOL_POWER,
    discrepancy: bool = _POOL_DISC,
    bootstrap: int = typer.Option(100, "--bootstrap", "-b", min=0, help="Resamples for "
                                  "--criterion draws."),
    seed: int = typer.Option(0, "--seed", help="Seed of the prior draws and the bootstrap."),
    out: Path = typer.Option(Path("proposed.csv"), "--out", "-o", help="Where to write the "
                             "proposed runs (CSV, an empty outcome column to fill in)."),
    json_: bool = JsonOption,
) -> None:
    """Propose the next runs from a pool of candidates: those expected to lower the fit's error
    over the target rows most (what the law cannot express counted; per unit cost, or in all
    when that does better), identification first.

    Examples:

        scalinglab design pool pool.csv --law chinchilla --cost "6*N*D" --target top:10% --budget 0.05

        scalinglab design pool pool.csv --law chinchilla --cost "6*N*D" --budget 0.05 --observed done.csv
    """
    import pandas as pd

    from scalinglab.design.pool import design_pool

    spec = _pool_law(law, formula, inputs, bounds)
    if criterion not in ("draws", "fisher"):
        raise UserError(f"--criterion must be draws or fisher, not {criterion!r}")
    inputs_paths = {candidates.resolve()} | ({observed.resolve()} if observed else set())
    if out.resolve() in inputs_paths:
        raise UserError(f"--out {out} is an input; write the proposal to another file")
    pool = _read(candidates, "CANDIDATES", units, parse_map(map_))
    seen = _read(observed, "--observed", units, parse_map(map_)) if observed is not None else None
    proposal = design_pool(pool, spec, cost=cost, target=target, budget=budget, observed=seen,
                           observed_source=str(observed),  # its errors name the file
                           outcome=outcome, columns=parse_map(map_), k=k,
                           criterion=criterion,  # type: ignore[arg-type]
                           cost_power=cost_power, bootstrap=bootstrap, seed=seed,
                           discrepancy=discrepancy, source=str(candidates))
    if proposal.runs:
        frame = pd.DataFrame(proposal.runs)
        frame[outcome] = ""
        write_file(out, frame.to_csv(index=False), "--out")  # atomic; never a store or input
    if json_:
        emit_json(proposal.to_dict() | {"file": str(out) if proposal.runs else None})
        return
    print_summary(proposal.summary())
    if proposal.runs:
        console.print(f"wrote {out}: {len(proposal.runs)} runs, cost {proposal.cost:.4g}; run them, "
                      f"fill in {outcome!r}, append them to the observed file, then call again "
                      "with --observed", soft_wrap=True)
    else:
        console.print("[yellow]nothing proposed[/]: " + "; ".join(proposal.warnings or
                                                                  proposal.notes), soft_wrap=True)


@design_app.command("replay")
def design_replay_cmd(
    table: Path = typer.Argument(..., help="A pool whose outcomes are known (CSV, Parquet, "
                                 "JSONL): revealed only once the design picks a run."),
    cost: str = _POOL_COST,
    target: str = _POOL_TARGET,
    budgets: Any = typer.Option("0.01,0.05,0.1", "--budgets", parser=fractions("--budgets"),
                                help="Budget shares, in turn (e.g. 1%,5%,10%)."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Replays per selection."),
    law: str = _POOL_LAW, formula: str = _POOL_FORMULA, inputs: str = _POOL_INPUTS,
    bounds: list[str] = _POOL_BOUNDS,
    outcome: str = typer.Option("loss", "--outcome", help="Outcome column."),
    map_: list[str] = MapOption,
    units: list[str] = UnitsOption,
    k: int = typer.Option(8, "--k", min=1, help="Most runs per round."),
    criterion: str = _POOL_CRIT, cost_power: float = _POOL_POWER,
    discrepancy: bool = _POOL_DISC,
    json_: bool = JsonOption,
) -> None:
    """Replay a pool design on a table with known outcomes, against random and cheapest-first
    selection: target-region R² at each budget share.

    Example: scalinglab design replay runs.csv --law chinchilla --cost "6*N*D" --budgets 0.01,0.05,0.1
    """
    from scalinglab.design.pool import replay_study

    spec = _pool_law(law, formula, inputs, bounds)
    if criterion not in ("draws", "fisher"):
        raise UserError(f"--criterion must be draws or fisher, not {criterion!r}")
    result = replay_study(_read(table, "TABLE", units, parse_map(map_)), spec, cost=cost, target=target,
                          budgets=budgets, seeds=range(seeds),
                          outcome=outcome, columns=parse_map(map_), k=k,
                          criterion=criterion,  # type: ignore[arg-type]
                          cost_power=cost_power, discrepancy=discrepancy, source=str(table))
    if json_:
        emit_json(result.to_dict())
        return
    print_summary(result.summary())


# -- sweep auto --------------------------------------------------------------------------------


def sweep_auto(
    target: float = typer.Option(..., "--target", parser=quantity("--target", positive=True),
                                 help="Budget (FLOPs) whose prediction matters."),
    spend: float = typer.Option(..., "--spend", parser=quantity("--spend", positive=True),
                                help="FLOPs (6ND) the whole study may use."),
    until_ci: float | None = typer.Option(None, "--until-ci", parser=fraction("--until-ci", at_most=None),
                                          help="Stop once L(target)'s 95% interval is "
                                 "narrower than this share of it (e.g. 2%) and every parameter "
                                 "is identified."),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store."),
    out: Path = typer.Option(Path("auto"), "--out", "-o", help="Folder of the study's plans and "
                             "state (rerun with the same folder to resume)."),
    k: int = typer.Option(4, "--k", min=1, help="Runs per round."),
    max_runs: int = typer.Option(40, "--max-runs", min=2, help="Most runs in all, seed included."),
    seed_fraction: float = typer.Option(0.05, "--seed-fraction", parser=fraction("--seed-fraction"),
                                        help="Share of the spend the "
                                        "seed design gets."),
    seed_tpp: float = typer.Option(20.0, "--seed-tokens-per-param", help="Centre of the seed's "
                                   "sizes (tokens per parameter)."),
    smallest: float = typer.Option(1e-3, "--smallest", parser=fraction("--smallest"),
                                   help="Smallest run, as a share of the spend (e.g. 0.1%)."),
    seed_plan: Path = typer.Option(None, "--seed-plan", help="Start from this sweep plan (e.g. "
                                   "one already run) instead of the built-in seed design."),
    law: str = _LAW, plan: Path = _PLAN, data: str = _DATA, seq_len: int = _SEQ,
    batch_tokens: int = _BATCH, lr: float = _LR, hparams: str = _HP,
    tokens_per_param: Any = _TPP, max_tokens: float | None = _MAXTOK,
    max_params: float | None = _MAXN, criterion: str = _CRIT, aim: str = _AIM,
    bootstrap: int = typer.Option(200, "--bootstrap", "-b", min=20, help="Bootstrap resamples of "
                                  "every fit of the study."),
    name: str = typer.Option("auto", "--name", help="Sweep name (tag 'sweep') of the runs."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:K or auto."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Local CPU runs at once."),
    json_: bool = JsonOption,
) -> None:
    """Seed a small design, train it, fit, design the next runs, train them, ... until the
    target's interval is tight enough or the spend is used. Resumable: rerun the same command.

    Examples:

        scalinglab sweep auto --target 1e14 --spend 3e12 --store runs.duckdb --workers 2

        scalinglab sweep auto --target 1e22 --spend 1e20 --until-ci 2% --device cuda --out study
    """
    from scalinglab.design.auto import AutoConfig
    from scalinglab.design.layouts import IsoflopLayout
    from scalinglab.design.loop import SEED_LAYOUT, AdaptiveSettings, aim_from
    from scalinglab.runs.store import RunStore
    from scalinglab.study.auto import run_auto
    from scalinglab.sweep.display import RichProgress
    from scalinglab.sweep.plan import load_plan

    if criterion not in ("draws", "fisher"):
        raise UserError(f"--criterion must be draws or fisher, not {criterion!r}")
    seed_runs = None if seed_plan is None else load_plan(seed_plan)
    defaults, dspec = _sweep_defaults(plan or seed_plan, data, seq_len, batch_tokens, lr)
    seed_layout = IsoflopLayout(SEED_LAYOUT.budgets, SEED_LAYOUT.sizes, SEED_LAYOUT.ratio,
                                SEED_LAYOUT.span, seed_tpp)
    settings = AdaptiveSettings(
        k=k, max_runs=max_runs, seed=seed_layout, seed_fraction=seed_fraction,
        aim=aim_from(aim), criterion=criterion,  # type: ignore[arg-type]
        bootstrap=bootstrap,
        until_ci=until_ci, smallest=smallest, tokens_per_param=tokens_per_param)
    config = AutoConfig(target, spend, out, settings,
                        defaults, dspec, _hparams(hparams), law, final_bootstrap=bootstrap,
                        name=name, run_options={"device": device, "workers": workers},
                        seed_plan=seed_runs,
                        max_tokens=max_tokens, max_params=max_params)
    runs = RunStore(store)

    progress = RichProgress(console=None if not json_ else _quiet())

    def on_round(summary: dict[str, Any]) -> None:
        # above the one live line (stderr), as the demo announces its rounds: a line printed
        # to stdout under a live display on the terminal is drawn over
        if not json_:
            progress.say(round_line(summary, config.target))

    with progress:
        result = run_auto(config, runs, progress=progress, on_round=on_round)
    if json_:
        emit_json(result.to_dict() | {"store": str(store)})
    else:
        print_auto(result)
    if result.interrupted:
        if not json_:
            console.print("[yellow]interrupted[/]: finished runs are saved; run the same command "
                          "to resume")
        raise typer.Exit(130)


def _quiet() -> Any:
    from rich.console import Console

    return Console(stderr=True, quiet=True)


def _iv(entry: dict[str, Any]) -> str:
    ci = entry.get("ci")
    value = entry.get("value")
    if value is None:
        return "-"
    text = f"{value:.4g}"
    if ci:
        text += f" [{ci[0]:.4g}, {ci[1]:.4g}]"
    if entry.get("identified") is False:
        text += " (not identified)"
    return text


def round_line(summary: dict[str, Any], target: float) -> str:
    """One progress line per round: spend, the target's interval and its width, what is next."""
    nxt = summary.get("next") or []
    tail = (f" -> next {len(nxt)} runs, {sum(r['C'] for r in nxt):.3g} FLOPs" if nxt else
            f" -> stop: {summary.get('stop')}")
    unid = summary.get("unidentified") or []
    return (f"round {summary['round']}: {summary['runs']} runs, {summary['spent']:.3g} FLOPs "
            f"({summary['spent_fraction']:.0%} of the spend) | L({target:.3g}) = "
            f"{_iv(summary['loss'])}, {summary['loss_width']:.1%} wide | N_opt = "
            f"{_iv(summary['N_opt'])}" + (f" | not identified: {', '.join(unid)}" if unid else "")
            + tail)


def print_auto(result: AutoResult) -> None:
    """The study's rounds (the interval shrinking), its final fit, and what is still unknown."""
    from scalinglab.summary import Summary, Table

    table = Table("rounds", ["round", "runs", "FLOPs spent", f"L({result.target:.3g})",
                             "width", "N_opt", "not identified"])
    for h in result.history:
        table.add_row(h["round"], h["runs"], h["spent"], _iv(h["loss"]), f"{h['loss_width']:.1%}",
                      _iv(h["N_opt"]), ", ".join(h["unidentified"]) or "-")
    sweep = result.sweep
    print_summary(Summary(title=f"sweep auto: {result.out}", tables=[table], facts=[
        ("runs", f"{sweep.finished} trained, {sweep.failed} failed, {sweep.skipped} already done"),
        ("spend", f"{result.spent:.4g} of {result.spend:.4g} FLOPs"),
        ("stopped", result.stop or result.error or "-")]))
    if result.fit is not None:
        print_summary(result.fit.summary(compute=[result.target]))
    console.print(("[bold]identification[/]: " if result.fit is not None and not result.unidentified
                   else "[bold yellow]identification[/]: ") + result.identification(),
                  highlight=False, soft_wrap=True)


