"""Time the loss-curve fit and its peak memory, and measure how often its forecast bands cover
the truth.

    python benchmarks/bench_curves.py [--bootstrap 100] [--reference-resamples 4]
    python benchmarks/bench_curves.py --memory          # the peak-memory cases alone
    python benchmarks/bench_curves.py --memory --every 1  # ... the 72k band at every step
    python benchmarks/bench_curves.py --coverage 200 [--level 0.9] [--law stack]
    python benchmarks/bench_curves.py --laws 3

Default: the multi-power law fitted to three 24,000-step curves (the released 25M cosine_24000,
constant_24000 and wsdcon_9, exact per-step lr) with 100 bootstrap resamples, the complete
``fit_curves`` call timed (target: < 30 s on 2 cores). The reference, measured in the same run:
the same fit as a straightforward implementation writes it — one ``scipy.optimize.minimize``
(L-BFGS-B, analytic gradient) per start and per resample on the law's exact per-step sums; it
runs ``--reference-resamples`` of the resamples and is scaled linearly to all of them (stated).
Also: one evaluation of the law with the exact sums against the grouped ones.

Peak memory (also ``--memory`` alone): each case in a fresh interpreter that reports its own peak
resident set size (``VmHWM``), beside the reference measured in the same run, a process that
imports the same modules and reads the same data but fits nothing. Cases: ``24k``, the fit above
(100 resamples) with the six held-out curves predicted at their logged steps and the authors'
exact sum on the 72,000-step cosine (what ``reproduce.py --only multi-power`` does per model
size); ``72k``, the law fitted to constant_72000, cosine_72000 and wsd_20000_24000 with 100
resamples and a 95% band for an unseen 72,000-step cosine (to 1e-5) at every 8th step (8,730
steps; ``--every 1``: every step, 69,839), its CPU time split into the fit, the curve draws and
the band, the band beside its reference in the same run (the same band written plainly:
np.quantile down the (K * 20, points) widened draws, checked equal bit for bit); then, in the
same process with its peak reset, ``forecast`` with that fit of a run logged every 8th (or
``--every``) step to 36,000 of a 72,000-step cosine. Target
(issue: a few 72,000-step curves with 100 resamples must not need GBs): every case < 1,000 MB.
Measured (2 shared cores, the reference 256 MB): ``24k`` 410 MB and 5.0 s CPU, ``72k`` 351 MB
and 20 s CPU; before the decay sum, designs and bands were taken in slices (laws/curves.py
``DECAY_CHUNK``, ``DESIGN_TERMS``; fit/curves.py ``BAND_ELEMENTS``) 2,439 MB / 13.8 s and
2,365 MB / 54 s, with the same numbers out. Of ``72k``'s ~21 s CPU the fit is ~20 s (its decay
sum with gradient; leave-one-run-out refits ~40% of it). Before -> after the band's ends were
selected in place (stats._linear_ends), the decay's terms worked in cached blocks, in place,
forecast's steps sliced and its decay sum made once per draw (same load, same numbers bit for
bit): every 8th step, draws 1.96 -> 1.31 s, band 0.44 -> 0.11 s (plain reference 0.35 s);
every step (``--every 1``, peak 403 -> 401 MB), draws 14.2 -> 9.7 s, band 3.0 -> 0.70 s (plain
2.2 s); forecast of a run logged at every step, +662 -> +132 MB and 27 -> 4.3 s.

``--coverage N``: N replicates of a simulation with known truth (three noisy curves of a known
multi-power law, 0.1% log-normal noise, logged every 128 steps), each fitted with 100 block
resamples; the share of replicates whose ``level`` band for the cosine run's final loss covers
a fresh noisy observation of it, with its binomial 95% interval.

``--laws N``: does choosing (``law="auto"``) or stacking (``law="stack"``) lose when one law is
true? N seeds of three noisy curves (0.1%, logged every 512 steps) of each of three truths (the
multi-power law near the shrinkage's centre, the multi-power law with a far decay shape, the
momentum law), fitted by the plain multi-power law, the momentum law, auto and stack; the mean
error against the truth on two schedules none was fitted on (a 36,000-step cosine, a linear-decay
WSD), and what auto chose and how the stack weighed the laws.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from scalinglab.fit.curves import fit_curves, forecast
from scalinglab.laws.curves import FIT_RATIO, MultiPowerLaw
from scalinglab.laws.schedules import Schedule, cosine

ROOT = Path(__file__).resolve().parents[1]
CURVES = ROOT / ".." / "shared" / "data" / "curves"
TRAIN = ("cosine_24000", "constant_24000", "wsdcon_9")


#: peak-memory target of every ``--memory`` case (MB)
TARGET_MB = 1000.0
LONG = ("constant_72000", "cosine_72000", "wsd_20000_24000")


def released() -> tuple[pd.DataFrame, dict[str, Schedule]]:
    curves = pd.read_csv(CURVES / "mpl_curves_25M.csv")
    exact = pd.read_parquet(CURVES / "mpl_schedules.parquet")
    schedules = {n: Schedule(g.sort_values("step")["lr"].to_numpy(), n)
                 for n, g in exact.groupby("schedule") if n in TRAIN}
    return curves[curves.schedule.isin(TRAIN)], schedules


def reference_fit(frame: pd.DataFrame, schedules: dict[str, Schedule], theta0: np.ndarray,
                  weights: np.ndarray) -> tuple[np.ndarray, float]:
    """One scipy L-BFGS-B run per row of ``weights`` on the exact sums; (thetas, CPU seconds)."""
    law = MultiPowerLaw()
    runs = [frame[frame.schedule == n].sort_values("step") for n in TRAIN]
    steps = [g["step"].to_numpy() for g in runs]
    keep = [s > schedules[n].peak_step for s, n in zip(steps, TRAIN, strict=True)]
    design = law.prepare([schedules[n] for n in TRAIN], [s[k] for s, k in zip(steps, keep, strict=True)],
                         ratio=None)
    log_y = np.log(np.concatenate([g["loss"].to_numpy()[k] for g, k in zip(runs, keep, strict=True)]))
    out = []
    t = time.process_time()
    for w in weights:
        def fg(th: np.ndarray, w: np.ndarray = w) -> tuple[float, np.ndarray]:
            L, J = law.evaluate(th[None], design)
            r = np.log(L[0]) - log_y
            c = np.clip(r, -1e-3, 1e-3)
            f = float(np.sum(w * (c * r - 0.5 * c * c))) / 1e-3
            g = (w * c / 1e-3) @ (J[0] / L[0][:, None])
            return (f, g) if np.isfinite(f) else (np.inf, np.zeros_like(th))
        out.append(minimize(fg, theta0, jac=True, method="L-BFGS-B").x)
    return np.asarray(out), time.process_time() - t


def timing(bootstrap: int, n_ref: int) -> None:
    frame, schedules = released()
    t, cpu = time.perf_counter(), time.process_time()
    fit = fit_curves(frame, columns={"run": "schedule"}, bootstrap=bootstrap, schedules=schedules)
    ours, ours_cpu = time.perf_counter() - t, time.process_time() - cpu
    print(f"fit_curves: 3 curves x 24,000 steps ({len(fit.residuals())} points), {bootstrap} block "
          f"resamples: {ours:.1f} s wall, {ours_cpu:.1f} s CPU (target < 30 s on 2 cores; wall "
          f"time on a shared machine includes waiting)")
    rng = np.random.default_rng(0)
    w = rng.poisson(1.0, size=(n_ref, len(fit.residuals()))).astype(float)
    _, ref = reference_fit(frame, schedules, fit.theta, w)
    per = ref / n_ref  # CPU seconds
    print(f"reference (scipy L-BFGS-B per resample, exact sums, warm start): {per:.1f} s CPU per "
          f"resample ({n_ref} run) -> {per * bootstrap:.0f} s for {bootstrap} scaled; ratio "
          f"{per * bootstrap / ours_cpu:.0f}x in CPU time")
    law = MultiPowerLaw()
    steps = [np.asarray(fit.points[n]["step"], dtype=int) for n in TRAIN]
    for ratio, label in ((None, "exact sums"), (FIT_RATIO, f"grouped (ratio {FIT_RATIO})")):
        d = law.prepare([schedules[n] for n in TRAIN], steps, ratio)
        theta = np.repeat(fit.theta[None], 4, axis=0)  # the exact sums' arrays are 4 x 1.9M
        t = time.process_time()
        law.evaluate(theta, d)
        print(f"one evaluation with gradient, 4 parameter rows, {label}: "
              f"{time.process_time() - t:.3f} s CPU ({d.terms['w'].size} terms)")


def _peak_mb() -> float:
    """This process's peak resident set size (VmHWM: its own, not its parent's before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # not Linux: ru_maxrss (kB on Linux, bytes on macOS)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_case(case: str, bootstrap: int, every: int = 8) -> dict[str, float]:
    """Child of ``--memory``: one case (see the module docstring); its peak MB and CPU s."""
    # the reproduction's own data, held-out curves and the authors' parameters (repro_curves.py)
    from repro_curves import AUTHORS, HELD_OUT, _load

    curves, schedules = _load("25M")
    cpu = time.process_time()
    if case == "24k":
        fit = fit_curves(curves[curves.schedule.isin(TRAIN)], columns={"run": "schedule"},
                         bootstrap=bootstrap, schedules=schedules, warmup=2160)
        for name in HELD_OUT:
            steps = curves[curves.schedule == name]["step"].sort_values().to_numpy()
            fit.curve_draws(schedules[name], steps)
        authors = dict(zip(MultiPowerLaw.params, AUTHORS["25M"], strict=True))
        steps = curves[curves.schedule == "cosine_72000"]["step"].sort_values().to_numpy()
        MultiPowerLaw(warmup_terms=True).value(authors, schedules["cosine_72000"], steps, ratio=None)
    elif case == "72k":
        fit = fit_curves(curves[curves.schedule.isin(LONG)], columns={"run": "schedule"},
                         bootstrap=bootstrap, schedules=schedules, warmup=2160)
        fit_cpu = time.process_time() - cpu
        target = Schedule(cosine(72000, 3e-4, 1e-5, 2160), "cosine_72000_to_1e-5")
        steps = np.arange(2161, 72000, every)
        # what CurveFit.predict does, its two costs timed apart
        t = time.process_time()
        draws = fit.curve_draws(target, steps)
        draws_cpu = time.process_time() - t
        t = time.process_time()
        band = fit._band(draws, "prediction", fit.level, fit.seed, fit.discrepancy_for(target))
        band_cpu = time.process_time() - t
        out = {"peak_mb": _peak_mb(), "cpu": time.process_time() - cpu, "fit_cpu": fit_cpu,
               "draws_cpu": draws_cpu, "band_cpu": band_cpu, "points": int(steps.size)}
        t = time.process_time()
        plain = plain_band(draws, fit.sigma, fit.discrepancy_for(target), fit.level, fit.seed)
        out["plain_band_cpu"] = time.process_time() - t
        out["band_identical"] = bool(np.array_equal(np.array(band), plain))
        # forecast of a run logged at every ``every``-th step to half of a 72,000-step cosine
        # (its loss the fit's own law with 0.1% noise), its peak measured from here
        run = Schedule(cosine(72000, 3e-4, 3e-5, 2160), "cosine_72000")
        st = np.arange(2200, 36000, every)
        loss = fit.law.value(fit.params, run, st)
        loss = loss * np.exp(1e-3 * np.random.default_rng(0).standard_normal(st.size))
        del draws, band, plain
        out["forecast_start_mb"] = _reset_peak()
        t = time.process_time()
        forecast(pd.DataFrame({"step": st, "loss": loss}), run, fit=fit)
        out.update(forecast_cpu=time.process_time() - t, forecast_peak_mb=_peak_mb(),
                   forecast_points=int(st.size))
        return out
    elif case != "imports":
        raise ValueError(f"unknown memory case {case!r}")
    return {"peak_mb": _peak_mb(), "cpu": time.process_time() - cpu}


def _reset_peak() -> float:
    """Start this process's peak (VmHWM) again from its present size (Linux 4.0+); that size."""
    Path("/proc/self/clear_refs").write_text("5")
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def plain_band(curves: np.ndarray, noise: float, discrepancy: float, level: float, seed: int
               ) -> np.ndarray:
    """The reference of the band's CPU time: ``draw_band`` written plainly, its widened draws
    (K * NOISE_DRAWS, points) down the first axis and np.quantile's ends, a slice of points at a
    time as the shipped one takes them; (lo, hi), to be the shipped band bit for bit."""
    from scalinglab.fit.curves import BAND_ELEMENTS, NOISE_DRAWS

    K = len(curves) - 1
    rng = np.random.default_rng(seed)
    z = noise * rng.standard_normal((K, NOISE_DRAWS, 1))
    if discrepancy > 0:
        z = z + discrepancy * rng.standard_normal((K, NOISE_DRAWS, 1))
    q = (1.0 - level) / 2.0
    n = curves.shape[1]
    out = np.empty((2, n))
    per = max(1, BAND_ELEMENTS // (K * NOISE_DRAWS))
    for a in range(0, n, per):
        part = curves[1:, a:a + per]
        logs = np.log(np.where(part > 0, part, np.nan))
        wide = (logs[:, None, :] + z).reshape(-1, logs.shape[1])
        quantile = np.nanquantile if np.isnan(wide).any() else np.quantile
        out[:, a:a + per] = quantile(wide, [q, 1.0 - q], axis=0)
    return np.exp(out)


def memory(bootstrap: int, every: int = 8) -> None:
    """Peak RSS of each case in its own interpreter, beside the imports-and-data reference."""
    import json
    import os
    import subprocess

    got = {}
    for case in ("imports", "24k", "72k"):
        out = subprocess.run([sys.executable, __file__, "--memory-case", case, "--bootstrap",
                              str(bootstrap), "--every", str(every)], check=True,
                             capture_output=True, text=True, env=os.environ.copy())
        got[case] = json.loads(out.stdout.strip().splitlines()[-1])
    ref = got["imports"]["peak_mb"]
    print(f"peak memory (RSS, own process each; reference: imports and data, nothing fitted: "
          f"{ref:.0f} MB)")
    labels = {"24k": f"fit 3 x 24,000-step curves, {bootstrap} resamples, 6 held-out curves, "
                     "authors' exact sum at 72,000 steps",
              "72k": f"fit 2 x 72,000 + 1 x 24,000-step curves, {bootstrap} resamples, band at "
                     f"{'every step' if every == 1 else f'every {every}th step'} of a "
                     "72,000-step cosine"}
    for case, label in labels.items():
        mb, cpu = got[case]["peak_mb"], got[case]["cpu"]
        print(f"  {label}: {mb:.0f} MB ({mb / ref:.2f}x the reference, +{mb - ref:.0f} MB), "
              f"{cpu:.1f} s CPU; target < {TARGET_MB:.0f} MB: "
              f"{'met' if mb < TARGET_MB else 'NOT met'}")
    g = got["72k"]
    print(f"    of which: fit {g['fit_cpu']:.1f} s, curve draws at {g['points']:,} steps "
          f"{g['draws_cpu']:.2f} s, band {g['band_cpu']:.2f} s CPU; reference (the same band "
          f"written plainly, np.quantile down the draws' axis, same run): "
          f"{g['plain_band_cpu']:.2f} s, ratio {g['plain_band_cpu'] / g['band_cpu']:.1f}x; "
          f"band values {'identical' if g['band_identical'] else 'DIFFERENT'} bit for bit")
    fmb = g["forecast_peak_mb"] - g["forecast_start_mb"]
    print(f"  forecast with that fit of a run logged at {g['forecast_points']:,} steps (every "
          f"{every} to 36,000 of a 72,000-step cosine): {g['forecast_cpu']:.1f} s CPU, peak "
          f"+{fmb:.0f} MB over the {g['forecast_start_mb']:.0f} MB it started from "
          f"({g['forecast_peak_mb'] / ref:.2f}x the reference)")


TRUTH = {"L0": 3.0, "A": 0.55, "alpha": 0.45, "B": 450.0, "C": 2.0, "beta": 0.55, "gamma": 0.6}


def coverage(replicates: int, level: float, noise: float = 1e-3, seed: int = 11,
             law_name: str = "multipower") -> None:
    law = MultiPowerLaw()
    shapes = {"cosine": cosine(24000, 3e-4, 3e-5, 2160), "constant": cosine(24000, 3e-4, 3e-4, 2160),
              "two_stage": np.where(np.arange(16000) < 8000, cosine(16000, 3e-4, 3e-4, 2160), 9e-5)}
    schedules = {k: Schedule(v, k) for k, v in shapes.items()}
    clean = {k: (np.arange(2160, v.size, 128), law.value(TRUTH, schedules[k],
                                                          np.arange(2160, v.size, 128), ratio=None))
             for k, v in shapes.items()}
    target = Schedule(cosine(36000, 3e-4, 3e-5, 2160), "cosine_36000")  # 1.5x longer, unseen
    truth = law.value(TRUTH, target, [35999], ratio=None)[0]
    rng = np.random.default_rng(seed)
    hits, widths = [], []
    t = time.perf_counter()
    for _ in range(replicates):
        frame = pd.concat([pd.DataFrame({"run": k, "step": s, "lr": shapes[k][s],
                                         "loss": c * np.exp(noise * rng.standard_normal(s.size))})
                           for k, (s, c) in clean.items()])
        fit = fit_curves(frame, law=law_name, bootstrap=100, level=level, schedules=schedules,
                         seed=int(rng.integers(1 << 30)))
        band = fit.predict(target, steps=[35999]).iloc[0]
        observed = truth * np.exp(noise * rng.standard_normal())
        hits.append(band["lo"] <= observed <= band["hi"])
        widths.append((band["hi"] - band["lo"]) / band["loss"])
    k, n = int(np.sum(hits)), len(hits)
    from scipy.stats import beta

    lo = beta.ppf(0.025, k, n - k + 1) if k else 0.0
    hi = beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    print(f"{law_name}: coverage of the {level:.0%} band for a 36,000-step cosine's final loss (fit on 24,000- and "
          f"16,000-step curves): {k}/{n} = {k / n:.3f} [{lo:.3f}, {hi:.3f}]; median width "
          f"{100 * np.median(widths):.2f}% of the loss; {time.perf_counter() - t:.0f} s")


FAR = {"L0": 3.0, "A": 0.55, "alpha": 0.45, "B": 300.0, "C": 0.4, "beta": 1.5, "gamma": 0.25}
MOMENTUM = {"L0": 2.9, "A": 0.6, "alpha": 0.4, "C": 0.35}


def laws_when_one_is_true(seeds: int, noise: float = 1e-3, every: int = 512) -> None:
    from scalinglab.laws.curves import MomentumLaw
    from scalinglab.laws.schedules import wsd

    shapes = {"cosine": cosine(24000, 3e-4, 3e-5, 2160), "constant": cosine(24000, 3e-4, 3e-4, 2160),
              "two_stage": np.where(np.arange(16000) < 8000, cosine(16000, 3e-4, 3e-4, 2160), 9e-5)}
    schedules = {k: Schedule(v, k) for k, v in shapes.items()}
    unseen = {"cosine_36000": Schedule(cosine(36000, 3e-4, 3e-5, 2160)),
              "wsd_linear": Schedule(wsd(24000, 3e-4, 3e-5, 2160, decay_start=18000,
                                         decay="linear"))}
    truths = (("multipower near centre", MultiPowerLaw(), TRUTH),
              ("multipower far shape", MultiPowerLaw(), FAR),
              ("momentum", MomentumLaw(), MOMENTUM))
    t = time.process_time()
    for title, law, truth in truths:
        errors: dict[str, list[float]] = {}
        picks = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            frame = []
            for name, lr in shapes.items():
                st = np.arange(2160, lr.size, every)
                clean = law.value(truth, schedules[name], st)
                frame.append(pd.DataFrame({"run": name, "step": st, "lr": lr[st],
                                           "loss": clean * np.exp(noise * rng.standard_normal(st.size))}))
            data = pd.concat(frame)
            for how in ("multipower", "momentum", "auto", "stack"):
                fit = fit_curves(data, law=how, bootstrap=0, schedules=schedules)
                for sched in unseen.values():
                    st = np.arange(2200, sched.steps, 64)
                    err = np.mean(np.abs(fit.curve_draws(sched, st)[0] / law.value(truth, sched, st) - 1))
                    errors.setdefault(how, []).append(float(err))
                if how == "auto":
                    picks.append("auto " + min(fit.selection, key=fit.selection.__getitem__))
                if how == "stack":
                    picks.append("stack " + ", ".join(f"{lb} {w:.2f}" for lb, w in
                                                      zip(fit.law.labels, fit.law.weights, strict=True)))
        shown = "; ".join(f"{k} {100 * np.mean(v):.3f}% (worst {100 * max(v):.3f}%)"
                          for k, v in errors.items())
        print(f"{title}: mean error on unseen schedules: {shown}")
        print("    " + " | ".join(picks))
    print(f"{time.process_time() - t:.0f} s CPU")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--reference-resamples", type=int, default=4)
    ap.add_argument("--coverage", type=int, default=0, help="replicates of the coverage simulation")
    ap.add_argument("--level", type=float, default=0.9)
    ap.add_argument("--law", default="multipower", help="with --coverage: the law= to fit")
    ap.add_argument("--laws", type=int, default=0,
                    help="seeds of the one-law-is-true check of auto and stack")
    ap.add_argument("--memory", action="store_true", help="only the peak-memory cases")
    ap.add_argument("--every", type=int, default=8,
                    help="with --memory: the 72k band at every N-th step (1: every step), and "
                         "the forecast run logged every N-th step")
    ap.add_argument("--memory-case", help=argparse.SUPPRESS)  # a child of --memory
    args = ap.parse_args(argv)
    if args.memory_case:
        import json

        print(json.dumps(memory_case(args.memory_case, args.bootstrap, args.every)))
        return 0
    if args.laws:
        laws_when_one_is_true(args.laws)
        return 0
    if args.coverage:
        coverage(args.coverage, args.level, law_name=args.law)
        return 0
    if not CURVES.exists():
        print(f"data absent: {CURVES}")
        return 0
    if not args.memory:
        timing(args.bootstrap, args.reference_resamples)
    memory(args.bootstrap, args.every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
