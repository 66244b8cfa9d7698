"""``scalinglab fit curves`` and ``scalinglab predict curve``: loss-curve laws on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scalinglab.clikit import (
    JsonOption,
    MapOption,
    UnitsOption,
    UserError,
    bootstrap_option,
    console,
    emit_json,
    err_console,
    parse_map,
    parse_units,
    print_summary,
    print_table,
    show_results,
)

#: what ``--fit`` of ``predict curve`` / ``runs --forecast`` must be (the one-line error says so)
CURVE_FIT_WANTED = "a curve fit (kind curve_fit: save one with `scalinglab fit curves --save`)"


def _store_frame(store: Path, where: str | None, schedule: str | None) -> tuple[Any, dict]:
    """The store's curves as a long frame, each run with its schedule (recorded, or --schedule)."""
    import pandas as pd

    from scalinglab.fit.curves import store_schedule, to_schedule
    from scalinglab.runs.store import RunStore

    rs = RunStore(store, read_only=True)
    runs = rs.runs(where=where, status=None)
    curves = rs.curves(list(runs["run_id"]))
    given = to_schedule(schedule) if schedule else None
    frames, schedules = [], {}
    for rec in runs.to_dict("records"):
        c = curves.get(str(rec["run_id"]))
        if c is None or not len(c):
            continue
        sched = given or store_schedule(rec)
        if sched is None:
            continue
        schedules[str(rec["run_id"])] = sched
        frames.append(pd.DataFrame({"run": str(rec["run_id"]), "step": c["step"],
                                    "loss": c["loss"]}))
    if not frames:
        raise UserError(f"{store}: no run with a loss curve and a known lr schedule (the sweep "
                        "records one; otherwise give --schedule)")
    return pd.concat(frames, ignore_index=True), schedules


def fit_curves_command(
    file: Path = typer.Argument(None, help="CSV, TSV, Parquet or JSONL with a row per logged step: "
                                "run, step, lr, loss (rows without a loss are fine); omit to read "
                                "the run store's curves.", show_default=False),
    law: str = typer.Option("multipower", "--law", help="multipower (Luo et al. 2025), momentum "
                            "(Tissue et al. 2024), or auto (the law, and for the multi-power law "
                            "the --shrink, that best predicts each run left out of the fit; "
                            "needs 3 runs), or stack (those laws averaged, weighted by how "
                            "well their mixture predicts each run left out; needs 3 runs)."),
    shrink: float = typer.Option(0.0, "--shrink", help="Multi-power law: strength of a Gaussian "
                                 "prior on log C, beta, gamma towards 2, 0.6, 0.5 (the decay "
                                 "shape three runs pin down loosely); 0: none. --law auto picks "
                                 "it from 0, 0.01, 0.1, 1."),
    map_: list[str] = MapOption,
    store: Path = typer.Option(None, "--store", help="DuckDB run store to read when no FILE is "
                               "given (default: scalinglab.duckdb).", show_default=False),
    where: str = typer.Option(None, "--where", "-w", help="Filter on the store's runs."),
    schedule: str = typer.Option(None, "--schedule", help="With --store: the schedule of every "
                                 "run, when the store does not know it (e.g. cosine:steps=...)."),
    schedules: Path = typer.Option(None, "--schedules", help="File of the exact per-step lr: "
                                   "columns run, step, lr (names as in --map).", show_default=False),
    warmup: int = typer.Option(None, "--warmup", min=0, help="Steps of the linear warmup when the log "
                               "starts after it (the lr before is integrated from 0)."),
    bootstrap: int = bootstrap_option(100),
    resample: str = typer.Option("auto", "--resample", help="runs, blocks (of consecutive points "
                                 "within each run) or auto (runs from 6 runs up)."),
    level: float = typer.Option(0.95, "--level", help="Interval level."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the bootstrap."),
    save: Path = typer.Option(None, "--save", help="Write the fit with its draws to this JSON file."),
    units: list[str] = UnitsOption,
    json_: bool = JsonOption,
) -> None:
    """Fit a loss-curve law to whole loss curves across lr schedules.

    Example: scalinglab fit curves curves.csv --map run=schedule --save fit.json
    """
    from scalinglab.fit.curves import fit_curves
    from scalinglab.runs.io import read_table, scale_columns

    columns = parse_map(map_)
    exact = None
    if file is None:
        if units:
            raise UserError("--units converts a FILE's columns; the store holds runs already in "
                            "scalinglab's units")
        frame, exact = _store_frame(store or Path("scalinglab.duckdb"), where, schedule)
        source = str(store or "scalinglab.duckdb")
        columns = {}
    else:
        if where or schedule:
            raise UserError("--where and --schedule go with --store (no FILE)")
        frame, source = read_table(file), str(file)
        # a column in other units (tokens in millions: --units tokens=1e6), by the file's name
        # for it or the name --map reads from it
        frame = scale_columns(frame, {columns.get(k, k): v for k, v in
                                      parse_units(units).items()}, source)
    if schedules is not None:
        exact = _schedules_file(schedules, columns)
    if save is not None and file is not None and save.resolve() == file.resolve():
        raise UserError("--save would overwrite the input FILE")
    result = fit_curves(frame, law=law, columns=columns, bootstrap=bootstrap, resample=resample,
                        level=level, seed=seed, schedules=exact, warmup=warmup, source=source,
                        shrink=shrink)
    show_results(result, save, json_)


def _schedules_file(path: Path, columns: dict[str, str]) -> dict:
    from scalinglab.errors import InputError
    from scalinglab.laws.schedules import Schedule
    from scalinglab.runs.io import read_table

    frame = read_table(path)
    run, step, lr = (columns.get(k, k) for k in ("run", "step", "lr"))
    for col in (run, step, lr):
        if col not in frame.columns:
            raise InputError(f"no column {col!r}", source=str(path), column=col)
    out = {}
    for rid, g in frame.groupby(run, sort=False):
        g = g.dropna(subset=[lr])
        out[str(rid)] = Schedule.from_logged(g[step].to_numpy(float), g[lr].to_numpy(float),
                                             name=str(rid), source=str(path))
        if not out[str(rid)].exact:
            raise InputError(f"run {rid!r}: --schedules needs the lr of every step "
                             f"({out[str(rid)].note})", source=str(path), column=lr)
    return out


def predict_curve_command(
    fit: Path = typer.Option(..., "--fit", help="A fit saved by `scalinglab fit curves --save`."),
    schedule: list[str] = typer.Option(None, "--schedule", help="Schedule to predict: "
                                       "cosine:steps=24000,peak=3e-4,final=3e-5,warmup=2160, "
                                       "wsd:...,decay_start=20000,decay=exp|linear, constant:..., "
                                       "step:...,at=8000,to=9e-5, or a file of step and lr."),
    compare: list[str] = typer.Option(None, "--compare", help="Rank schedules by predicted final "
                                      "loss (comma-separated, each shape: starts a new one)."),
    best_wsd: str = typer.Option(None, "--best-wsd", help="The WSD decay length with the lowest "
                                 "final loss: steps=24000,peak=3e-4,final=3e-5,warmup=2160"
                                 "[,decay=exp]."),
    steps: str = typer.Option(None, "--steps", help="Steps to predict (comma-separated; default "
                              "~400 after the warmup)."),
    band: str = typer.Option("prediction", "--band", help="prediction (the loss as logged) or "
                             "mean (the law)."),
    level: float = typer.Option(None, "--level", help="Interval level (default: the fit's)."),
    json_: bool = JsonOption,
) -> None:
    """Predict the loss curve of an lr schedule from a fitted curve law, compare schedules, or
    choose a WSD decay length.

    Example: scalinglab predict curve --fit fit.json --schedule cosine:steps=72000,peak=3e-4,final=3e-5,warmup=2160
    """
    import numpy as np

    from scalinglab.fit.curves import CurveFit
    from scalinglab.results import load_saved

    result = load_saved(fit, CurveFit, CURVE_FIT_WANTED)
    assert isinstance(result, CurveFit)
    if not (schedule or compare or best_wsd):
        raise UserError("give --schedule, --compare or --best-wsd")
    out: dict[str, Any] = {}
    preds: dict[str, Any] = {}
    # the interval's level and kind, in the output too: lo/hi alone do not say what they hold
    shown = result.level if level is None else level
    what = {"prediction": "where the loss as logged will fall (law and noise)",
            "mean": "the law's curve (no logging noise)"}.get(band, band)
    if schedule:
        from scalinglab.fit.curves import to_schedule
        from scalinglab.values import parse_number_list

        at = None if steps is None else np.array(parse_number_list(steps, "--steps"))
        for spec in schedule:
            sched = to_schedule(spec)
            preds[spec] = result.predict(sched, steps=at, level=level, band=band)
        out["curves"] = {k: v.to_dict(orient="list") for k, v in preds.items()}
        out["band"], out["level"] = band, shown
        if not json_:
            for spec, p in preds.items():
                tail = p.iloc[np.unique(np.linspace(0, len(p) - 1, min(len(p), 12)).astype(int))]
                print_table(["step", "lr", "loss", "lo", "hi"], tail.itertuples(index=False), exact=False,
                            title=f"{spec} ({len(p)} steps predicted; lo, hi: {shown:.0%} "
                                  f"{band} band, {what})")
    if compare:
        ranked = result.compare(",".join(compare), level=level)
        out["compare"] = ranked.to_dict(orient="records")
        if not json_:
            cols = ["rank", "schedule", "loss", "lo", "hi", "p_best", "gap"]
            print_table(cols, ranked[cols].itertuples(index=False), exact=False,
                        title=f"schedules ranked by predicted final loss (lo, hi: the law's "
                        f"{shown:.0%} interval; p_best: share of bootstrap draws where it is "
                        "best; gap: its loss above the best's)")
    if best_wsd:
        kw = _pairs(best_wsd)
        try:
            frame = result.best_wsd(int(_number(kw.pop("steps"), "--best-wsd steps")),
                                    _number(kw.pop("peak"), "--best-wsd peak"),
                                    _number(kw.pop("final", "0") or "0", "--best-wsd final"),
                                    warmup=int(_number(kw.pop("warmup", "0"), "--best-wsd warmup")),
                                    decay=kw.pop("decay", "exp"), level=level)
        except KeyError as exc:
            raise UserError(f"--best-wsd needs {exc.args[0]}=...") from None
        if kw:
            raise UserError(f"--best-wsd: unknown key(s) {', '.join(kw)}")
        out["best_wsd"] = {"best": frame.attrs["best"], "candidates": frame.to_dict(orient="records")}
        if not json_:
            b = frame.attrs["best"]
            console.print(f"best decay length: {b['decay_steps']:.0f} steps ({shown:.0%} of draws "
                          f"between {b['ci'][0]:.0f} and {b['ci'][1]:.0f}); final loss "
                          f"{b['loss']:.4f}")
            head = frame.head(8)
            print_table(list(head.columns), head.itertuples(index=False), exact=False,
                        title=f"best candidates (final loss; lo, hi: the law's {shown:.0%} "
                        "interval; p_best: share of bootstrap draws where it is best)")
    warnings = list(dict.fromkeys(w for f in [*preds.values(), *([ranked] if compare else [])]
                                  for w in f.attrs.get("warnings", [])))
    if json_:
        emit_json({**out, "warnings": warnings} if out else out)
    elif not out:
        print_summary(result.summary())
    for w in [] if json_ else warnings:
        err_console.print(f"warning: {w}", markup=False, highlight=False)


def _number(text: str, flag: str) -> float:
    """One finite number the user typed (``24000``, ``24k``, ``3e-4``), or one line naming the
    flag: the library's own number reader (:func:`values.parse_number_list`)."""
    from scalinglab.values import parse_number_list

    values = parse_number_list(text, flag)
    if len(values) != 1:
        raise UserError(f"{flag}: {text.strip()!r} is not one number")
    return values[0]


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise UserError(f"--best-wsd: {part!r} is not KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def forecast_runs(store: Path, where: str | None, tags: dict[str, str], fit: Path | None,
                  fmt: str) -> None:
    """``runs --forecast``: each unfinished run's final loss, with its interval."""
    import math

    from scalinglab.errors import ScalingLabError
    from scalinglab.fit.curves import CurveFit, forecast, store_schedule
    from scalinglab.results import load_saved
    from scalinglab.runs.store import RunStore

    prior = None
    if fit is not None:
        prior = load_saved(fit, CurveFit, CURVE_FIT_WANTED)
    rs = RunStore(store, read_only=True)
    runs = rs.runs(where=where, status=None, tags=tags)
    runs = runs[runs["status"] != "finished"]
    curves = rs.curves(list(runs["run_id"]))
    rows = []
    for rec in runs.to_dict("records"):
        rid = str(rec["run_id"])
        c = curves.get(rid)
        sched = store_schedule(rec)
        row: dict[str, Any] = {"run_id": rid, "status": rec["status"], "logged_step": None,
                               "last_step": None, "loss": math.nan, "lo": math.nan,
                               "hi": math.nan, "note": ""}
        if c is None or not len(c):
            row["note"] = "no loss curve"
        elif sched is None:
            row["note"] = "schedule unknown (the store has no steps/schedule for it)"
        else:
            try:
                _, about = forecast(c, sched, fit=prior, steps=[sched.last_step], bootstrap=60)
            except ScalingLabError as exc:
                row["note"] = str(exc)
            else:
                row.update({k: about[k] for k in ("logged_step", "last_step", "loss", "lo", "hi")})
                row["note"] = "; ".join([about["method"], *about["warnings"]])
        rows.append(row)
    cols = ["run_id", "status", "logged_step", "last_step", "loss", "lo", "hi", "note"]
    if fmt == "json":
        emit_json(rows)
        return
    print_table(cols, ([r[c] for c in cols] for r in rows), fmt=fmt, exact=fmt != "table",
                title=f"forecast final loss of {len(rows)} unfinished run"
                      f"{'' if len(rows) == 1 else 's'} in {store} "
                      "(95% interval of the loss as logged)")
    if prior is None and any(math.isfinite(r["loss"]) for r in rows):
        # what to do next: a run's own partial curve pins the decay shape loosely (on the 25M
        # cosine_72000 logged to step 30k: 3.129 [1.576, 3.211] alone, 3.221 [3.192, 3.233]
        # with the law of the nine released curves; it ended at 3.204)
        err_console.print("note: each forecast fits the law to that run's curve alone; for "
                          "narrower intervals fit finished runs (`scalinglab fit curves --save "
                          "fit.json`) and pass --fit fit.json: the law's shape from them, the "
                          "level from each run", markup=False, highlight=False, soft_wrap=True)
