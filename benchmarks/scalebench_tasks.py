"""ScaleBench's eight tasks and 65 law instances, written in scalinglab's formula language.

ScaleBench (PlanarG/active-sl, arXiv 2604.22753) fits each published law instance per group on a
training region and scores it by R^2 (clipped to [-1, 1], flattened over outputs, all groups
concatenated) on a held-out high-cost region. Here each law is re-expressed as formula text
(one per output) with the benchmark's parameter order and bounds, so it can be fitted through
``sl.Law.from_formula`` and, for the side-by-side, by the reference fitter in
``benchmarks/scalebench.py``. Where the benchmark's code clamps a quantity that changes the law
(a coefficient taken as ``max(A, 1e-6)``, an exponent argument clipped to [-50, 50], a share
clamped to 1e-12 before a log), the formula says so with ``max``/``clip``; clamps that only guard
against a division by zero inside the data's range are left out, and so are vocab sl_5 to sl_9's
clips of each term's logarithm at +-50 (they change the law only where a term exceeds e^50, about
5e21, far from any loss). ``benchmarks/scalebench.py``'s reference fitter fits these same
formulas, so the side-by-side compares fitters on identical laws.

Stable interface (other benchmarks import it)::

    TASKS: dict[str, Task]            # "parallel", "moe", "vocab", "data_constrained", "farseer",
                                      # "sparsity", "lr_bsz", "domain_mixture"
    load_task(data_dir, task) -> (train_df, test_df | None)
    holdout(task, train_df, frac=0.1) -> (fit_df, held_df, note)   # high-cost slice of train
    Task.cost(df) -> per-row cost;  Task.arrays(df) -> ({input: array}, (rows, outputs) array)
    LawSpec.law(i) -> sl.Law for output i;  LawSpec.bounds_of(names) -> {name: (lo, hi)}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: the published "All Data" mean test R^2 per task (ScaleBench paper, full training set, its own
#: fitter), as quoted in scalinglab issue 29
PUBLISHED_ALL_DATA: dict[str, float] = {
    "parallel": 0.99, "moe": 0.81, "vocab": 0.93, "data_constrained": 0.79, "farseer": 0.91,
    "sparsity": 0.37, "lr_bsz": 0.04, "domain_mixture": 0.81,
}


@dataclass(frozen=True)
class LawSpec:
    """One published law instance: formula text per output, parameters in ScaleBench's theta
    order, and the benchmark's bounds for each parameter."""

    task: str
    name: str
    formulas: tuple[str, ...]
    params: tuple[str, ...]
    bounds: tuple[tuple[float, float], ...]
    inputs: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.params) != len(self.bounds):
            raise ValueError(f"{self.task}/{self.name}: {len(self.params)} parameters, "
                             f"{len(self.bounds)} bounds")

    @property
    def id(self) -> str:
        return f"{self.task}/{self.name}"

    @property
    def n_outputs(self) -> int:
        return len(self.formulas)

    def bounds_of(self, names: Sequence[str]) -> dict[str, tuple[float, float]]:
        b = dict(zip(self.params, self.bounds, strict=True))
        return {n: b[n] for n in names}

    def params_of(self, i: int) -> tuple[str, ...]:
        """The parameters output ``i``'s formula uses, in theta order."""
        from scalinglab.laws.formula import names_in

        used = set(names_in(self.formulas[i]))
        return tuple(p for p in self.params if p in used)

    def inputs_of(self, i: int) -> tuple[str, ...]:
        from scalinglab.laws.formula import names_in

        used = set(names_in(self.formulas[i]))
        return tuple(x for x in self.inputs if x in used)

    def law(self, i: int = 0, **options: Any) -> Any:
        """Output ``i``'s formula as a scalinglab law with the benchmark's bounds."""
        import scalinglab as sl

        params = self.params_of(i)
        suffix = f".y{i + 1}" if self.n_outputs > 1 else ""
        return sl.Law.from_formula(self.formulas[i], inputs=self.inputs_of(i), params=params,
                                   bounds=self.bounds_of(params),
                                   name=f"{self.task}.{self.name}{suffix}", **options)


@dataclass(frozen=True)
class Task:
    """A ScaleBench task: its columns, groups, cost and law instances."""

    name: str
    dataset: str
    inputs: Mapping[str, str]          # formula name -> column
    outputs: Mapping[str, str]         # output name -> column
    cost_fn: Callable[[pd.DataFrame], np.ndarray]
    laws: tuple[LawSpec, ...]
    group_col: str = "group"
    notes: str = ""
    extra_columns: tuple[str, ...] = field(default=())

    def cost(self, df: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.cost_fn(df), dtype=float)

    def arrays(self, df: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        x = {k: df[c].to_numpy(dtype=float) for k, c in self.inputs.items()}
        y = np.column_stack([df[c].to_numpy(dtype=float) for c in self.outputs.values()])
        return x, y

    def groups(self, df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
        if self.group_col not in df:
            return [("all_data", df)]
        return [(str(g), sub) for g, sub in df.groupby(self.group_col, sort=True)]

    def law(self, name: str) -> LawSpec:
        for spec in self.laws:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.name} has no law {name!r} (it has {[s.name for s in self.laws]})")


def load_task(data_dir: str | Path, task: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``<task>_train.parquet`` and, when present, ``<task>_test.parquet`` from ``data_dir``."""
    if task not in TASKS:
        raise KeyError(f"unknown ScaleBench task {task!r} (known: {sorted(TASKS)})")
    d = Path(data_dir)
    train_path = d / f"{task}_train.parquet"
    if not train_path.exists():
        raise FileNotFoundError(f"{train_path}: no training split for task {task!r}")
    train = pd.read_parquet(train_path)
    test_path = d / f"{task}_test.parquet"
    test = pd.read_parquet(test_path) if test_path.exists() else None
    return train, test


def holdout(task: str | Task, train: pd.DataFrame, frac: float = 0.1,
            seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Split a training split as ScaleBench splits its data: per group, the rows whose cost is in
    the top ``frac`` (every row tied with the threshold goes with it) are held out as the target
    region. A group whose cost is constant (domain mixture: cost 1 per run) has no high-cost
    region; there a seeded random ``frac`` of its rows is held out, and the note says so."""
    t = TASKS[task] if isinstance(task, str) else task
    cost = t.cost(train)
    held = np.zeros(len(train), dtype=bool)
    notes = []
    rng = np.random.default_rng(seed)
    for _, sub in t.groups(train):
        idx = train.index.get_indexer(sub.index)
        c = cost[idx]
        k = max(1, int(round(frac * len(idx))))
        if np.ptp(c) == 0:
            held[rng.choice(idx, size=k, replace=False)] = True
            notes.append("constant cost: a random slice")
        else:
            threshold = np.sort(c)[-k]
            held[idx[c >= threshold]] = True
    kind = notes[0] if notes else f"top {frac:.0%} of cost per group"
    return (train[~held], train[held],
            f"held out {held.sum()} of {len(train)} training rows ({kind}); no test split read")


# -- the laws ----------------------------------------------------------------------------------


def _spec(task: str, inputs: Sequence[str], name: str, formula: str | Sequence[str],
          params: str | Sequence[str], bounds: Sequence[tuple[float, float]]) -> LawSpec:
    formulas = (formula,) if isinstance(formula, str) else tuple(formula)
    names = tuple(params.split()) if isinstance(params, str) else tuple(params)
    return LawSpec(task, name, formulas, names, tuple((float(a), float(b)) for a, b in bounds),
                   tuple(inputs))


def _data_constrained() -> tuple[LawSpec, ...]:
    x = ("U", "N", "D")
    s = lambda *a: _spec("data_constrained", x, *a)  # noqa: E731
    effn = ("(min(rho*U, N) + tauN*min(rho*U, N)*(1 - exp(-max(N/min(rho*U, N) - 1, 0)/tauN)))")
    effd = "(U + tauD*U*(1 - exp(-(D/U - 1)/tauD)))"
    return (
        s("sl_1", "A*N**(-alpha) + B*D**(-beta) + E*U**gamma*N**delta", "A alpha B beta E gamma delta",
          [(1e-3, 1e9), (0.05, 2.0), (1e-3, 1e8), (0.05, 2.0), (-100, 200), (-0.5, 0.5), (-0.5, 0.5)]),
        s("sl_2", "a + b*U**p + c*N**q + d*D**r", "a b c d p q r",
          [(-3, 10), (-1e6, 1e6), (-1e6, 1e6), (-1e7, 1e7), (-1.5, 0.5), (-1.5, 0.5), (-1.5, 0.5)]),
        s("sl_3", f"A*{effn}**(-alpha) + B*{effd}**(-alpha) + C", "A tauN B tauD alpha C rho",
          [(1e-3, 1e7), (1e-3, 500), (1e-3, 1e7), (1e-3, 500), (0.05, 2.0), (-3, 10), (1e-3, 100)]),
        s("sl_4", "L0 + A*N**(-a) + B*(D/(1 + D/(s*U*N**d)))**(-b)", "L0 A a B b s d",
          [(-3, 8), (1e-3, 1e11), (0.05, 2.5), (1e-3, 1e9), (0.05, 2.5), (1e-5, 1e7), (-2.0, 1.5)]),
        s("sl_5", "A*N**(-alpha) + B*(U**gamma*D**(1 - gamma))**(-beta) + E", "A alpha B beta E gamma",
          [(1e-3, 1e10), (0.05, 2.0), (1e-3, 1e10), (0.05, 2.0), (-3, 10), (0.0, 1.0)]),
        s("sl_6", "E + A*N**(-alpha) + B*(D/(1 + C*max(D/U - 1, 0)**c*N**d))**(-beta)",
          "E A alpha B beta C c d",
          [(-3, 10), (1e-3, 1e11), (0.05, 2.0), (1e-3, 1e12), (0.05, 2.0), (0, 1e4), (0, 2.0), (-1.0, 1.0)]),
        s("sl_7", "L0 + A*(N*U)**apu + B*D**at + C*N**ap", "L0 A apu B at C ap",
          [(-3, 10), (1e-3, 1e9), (-2.0, 0.5), (1e-3, 1e9), (-2.0, 0.5), (-1e13, 1e13), (-2.5, 0.5)]),
        s("sl_8", "a + b/D**alpha + c/N**beta + d*abs(log(U/D + 1))**gamma", "a b c d alpha beta gamma",
          [(-3, 10), (-1e8, 1e8), (-1e8, 1e8), (-200, 200), (0.05, 2.0), (0.05, 2.0), (0.05, 5.0)]),
        s("sl_9", "A/N**alpha + B/D**beta*(1 + C/U**gamma) + Linf", "A alpha B beta C gamma Linf",
          [(1e-3, 1e7), (0.05, 2.0), (1e-3, 1e7), (0.05, 2.0), (0, 1e11), (0.05, 2.0), (-3, 10)]),
        s("sl_10", "L0 + A*N**(-a) + B*max(D**(-b*q) + max(k*U, 1e-12)**(-b*q), 1e-12)**(1/q)", "L0 A B a b k q",
          [(-3, 8), (1e-3, 1e9), (1e-3, 1e9), (0.05, 2.0), (0.05, 2.0), (1e-3, 1e4), (0.1, 50.0)]),
    )


def _parallel() -> tuple[LawSpec, ...]:
    x = ("N", "S")
    s = lambda *a: _spec("parallel", x, *a)  # noqa: E731
    return (
        s("sl_1", "c0 + cN*N**(-alpha) + cS*S**(-beta) + cNS*N**(-alpha)*S**(-beta)",
          "c0 cN alpha cS beta cNS", [(-5, 5), (0, 500), (0, 2), (-50, 50), (0, 2), (-100, 100)]),
        s("sl_2", "c0 + cN*N**(-alpha) + cS*S**(-beta)", "c0 cN alpha cS beta",
          [(-5, 5), (0, 500), (0, 2), (-50, 50), (0, 2)]),
        s("sl_3", "a*N**b + c/(1 + S) + d", "a b c d", [(0, 500), (-2, 0), (-5, 5), (-5, 5)]),
        s("sl_4", "a*N**b + c*S**(-0.5) + d", "a b c d", [(0, 500), (-2, 0), (-5, 5), (-5, 5)]),
        s("sl_5", "max(A/max(N*(k*log(S) + 1), 1e-12), 1e-12)**alpha + E", "A k alpha E",
          [(0, 1e9), (-100, 100), (0, 3), (-5, 5)]),
        s("sl_6", "c0 + c1*(N**(-alpha) + S**(-beta))", "c0 c1 alpha beta",
          [(-200, 200), (-200, 200), (0, 2), (0, 2)]),
        s("sl_7", "L0 + A*N**(-alpha)/max(1 + k*log(S), 1e-12)", "L0 A alpha k", [(-5, 5), (0, 500), (0, 2), (-50, 50)]),
        s("sl_8", "(a*N**b + c)/max(1 + d*log(S), 1e-12)", "a b c d", [(0, 500), (-2, 0), (-5, 5), (-10, 10)]),
        s("sl_9", "A*N**(-alpha)*S**(-beta)", "A alpha beta", [(0, 5000), (0, 2), (0, 2)]),
        s("sl_10", "(A*N**(-alpha) + E)*S**(-beta)", "A alpha E beta", [(0, 500), (0, 2), (-5, 5), (0, 2)]),
    )


def _moe() -> tuple[LawSpec, ...]:
    x = ("E", "N")
    s = lambda *a: _spec("moe", x, *a)  # noqa: E731
    return (
        s("sl_1", "Linf + B/(N**alpha*E**beta)", "Linf B alpha beta", [(0, 3), (0.1, 500), (0, 1.5), (-0.5, 1.5)]),
        s("sl_2", "L + K*(N**alpha*E**beta)**(-gamma)", "L K alpha beta gamma",
          [(0, 3), (0, 500), (0, 2), (0, 2), (0, 2)]),
        s("sl_3", "A*N**alpha/(1 + B*E**beta) + C*N**(alpha*0.6) + D", "A alpha B beta C D",
          [(0, 5e3), (-1.5, 0), (0, 20), (0, 2), (-1e4, 1e4), (-5, 5)]),
        s("sl_4", "a/(N**alpha*(1 + b*E)**gamma) + c + d*(log(N) - 0.4*log(1 + E))", "a alpha b gamma c d",
          [(0.1, 500), (0, 1.5), (0, 20), (0, 1.5), (-5, 5), (-1, 1)]),
        s("sl_5", "p0 + exp(clip(p1 + p2*log(E) + p3*log(N) + p4*log(E)*log(N), -50, 50)) + p5*log(E)",
          "p0 p1 p2 p3 p4 p5", [(0, 3), (-5, 10), (-1, 1), (-1, 1), (-0.1, 0.1), (-1, 1)]),
        s("sl_6", "a*N**(-b)*(1 + c*E**(-d)) + e + f/(E*N**0.05)", "a b c d e f",
          [(0, 200), (0, 1.5), (-5, 20), (-0.5, 2), (-5, 5), (-20, 20)]),
        s("sl_7", "p0*E**p1*N**p2 + p3*N**p4 + p5", "p0 p1 p2 p3 p4 p5",
          [(-500, 500), (-1, 0.5), (-1.5, 0.5), (-500, 500), (-1.5, 0.5), (-5, 5)]),
        s("sl_8", "a*N**b*E**c + d", "a b c d", [(0, 500), (-1.5, 0.5), (-1.5, 0.5), (0, 3)]),
        s("sl_9", "c0 + A*(N*E**g)**(-a)", "c0 A g a", [(0, 3), (0, 500), (-1, 2), (0, 2)]),
        s("sl_10", "bias + A*(N/1e9)**(-alpha)*((1 + B*E**gamma)/(1 + B))**(-beta)", "bias A alpha B gamma beta",
          [(0, 3), (0, 15), (0, 2), (0, 100), (0, 6), (0, 2)]),
    )


def _farseer() -> tuple[LawSpec, ...]:
    return (_spec(
        "farseer", ("N", "D"), "sl_1",
        "exp(clip(s*N**q + S, -50, 50)) + exp(clip(clip(B*N**b + Q, -50, 50)"
        " - exp(clip(A*N**a + E, -50, 50))*log(D), -50, 50))",
        "E s q S B b Q A a",
        [(1.0, 6.0), (-1.0, 0.3), (0.01, 0.5), (-1.0, 1.0), (10.0, 1000.0), (-0.6, -0.01),
         (-5.0, 1.0), (-5.0, 1.0), (0.001, 0.25)]),)


def _sparsity() -> tuple[LawSpec, ...]:
    x = ("P", "Na")
    s = lambda *a: _spec("sparsity", x, *a)  # noqa: E731
    return (
        s("sl_1", "exp(d1 - a*log(P) - b*log(Na) + c*log(P)*log(Na)) + exp(d3)", "d1 a b c d3",
          [(-5.0, 5.0), (0.01, 3.0), (0.01, 3.0), (-1.0, 1.0), (-5.0, 5.0)]),
        s("sl_2", "exp(d1 - a*log(P) - b*log(Na)) + exp(d3)", "d1 a b d3",
          [(-5.0, 5.0), (0.01, 3.0), (0.01, 3.0), (-5.0, 5.0)]),
        s("sl_3", "exp(d1)*P**(-a) + exp(d2)*Na**(-b)*exp(c*log(P)*log(Na)) + exp(d3)", "d1 a d2 b c d3",
          [(-5.0, 5.0), (0.01, 3.0), (-5.0, 5.0), (0.01, 3.0), (-1.0, 1.0), (-5.0, 5.0)]),
        s("sl_4", "exp(d1)*P**(-a) + exp(d2)*Na**(-b) + exp(d3)", "d1 a d2 b d3",
          [(-5.0, 5.0), (0.01, 3.0), (-5.0, 5.0), (0.01, 3.0), (-5.0, 5.0)]),
    )


def _vocab() -> tuple[LawSpec, ...]:
    x = ("P", "V", "D")
    s = lambda *a: _spec("vocab", x, *a)  # noqa: E731
    c, e, w = (-1e4, 1e4), (-5, 5), (-100, 100)
    return (
        s("sl_1", "c0 + A*V**b*P**e*D**g", "c0 A b e g", [w, c, e, e, e]),
        s("sl_2", "L + A*exp(clip(log((P**(-alpha*r) + D**(-beta*r))/2)/r, -50, 50))*(1 + C*(log(V) - v0)**2)",
          "L A alpha beta C v0 r", [w, c, e, e, w, (-10, 30), (0.1, 10)]),
        s("sl_3", "L0 + exp(clip(log((max(a, 1e-6)*P**(-alpha))**q"
          " + (max(b, 1e-6)*(D*V**phi)**(-beta))**q)/q, -50, 50))",
          "L0 a alpha b beta phi q", [w, c, e, c, e, e, (0.1, 10)]),
        s("sl_4", "Linf + exp(clip(log(max(A, 1e-6)) - d*max(a*log(P), log(max(lam, 1e-6)) + b*log(D))"
          " - g*log(V), -50, 50))", "Linf A a b d lam g", [w, c, e, e, e, (1e-6, 1e4), e]),
        s("sl_5", "p0*P**p1*V**p2*D**p3 + p4*P**p5 + p6", "p0 p1 p2 p3 p4 p5 p6", [c, e, e, e, c, e, w]),
        s("sl_6", "max(A, 1e-6)*(P*V**k1)**(-alpha) + max(B, 1e-6)*(D*V**k2)**(-beta) + c0",
          "A alpha k1 B beta k2 c0", [c, e, e, c, e, e, w]),
        s("sl_7", "max(A, 1e-6)*P**(-alpha)*D**(-beta) + max(B, 1e-6)*V**gamma*D**(-delta) + c0",
          "A alpha beta B gamma delta c0", [c, e, e, c, e, e, w]),
        s("sl_8", "c0 + c1*log(V) + V**beta*(c2*P**(-alpha) + c3*D**(-gamma))", "c0 c1 c2 alpha c3 gamma beta",
          [w, w, c, e, c, e, e]),
        s("sl_9", "max(A, 1e-6)*P**(-alpha)*D**(-beta)*(1 + gamma*log(V)) + delta*V**epsilon + Linf",
          "A alpha beta gamma delta epsilon Linf", [c, e, e, w, c, e, w]),
        s("sl_10", "Lmin + exp(clip(a + bP*log(P) + bV1*log(V) + bV2*log(V)**2 + bD*log(D)"
          " + bVD*log(V)*log(D), -50, 50))", "Lmin a bP bV1 bV2 bD bVD",
          [w, (-20, 20), (-2, 2), (-2, 2), (-0.1, 0.1), (-2, 2), (-0.1, 0.1)]),
    )


#: the 15 second-order features of ScaleBench's lr/bsz polynomials, over z0..z3
_POLY2 = ("1", "z0", "z1", "z2", "z3", "z0**2", "z1**2", "z2**2", "z3**2",
          "z0*z1", "z0*z2", "z0*z3", "z1*z2", "z1*z3", "z2*z3")


def _poly(coefs: Sequence[str], z: Sequence[str], extra: Sequence[str] = ()) -> str:
    feats = [f.replace("z0", "Z0").replace("z1", "Z1").replace("z2", "Z2").replace("z3", "Z3")
             for f in (*_POLY2, *extra)]
    for i, zi in enumerate(z):
        feats = [f.replace(f"Z{i}", zi) for f in feats]
    return " + ".join(c if f == "1" else f"{c}*({f})" if " " in f else f"{c}*{f}"
                      for c, f in zip(coefs, feats, strict=True))


def _lr_bsz() -> tuple[LawSpec, ...]:
    x = ("lr", "bsz", "D", "P")
    s = lambda *a: _spec("lr_bsz", x, *a)  # noqa: E731
    z = ("log(lr)", "log(bsz)", "log(D)", "log(P)")
    zl = ("log10(lr)", "log10(bsz)", "log10(D)", "log10(P)")
    w = [f"w{i}" for i in range(15)]
    sl1 = s("sl_1", f"exp({_poly(w, z)})", w,
            [(-15, 15)] + [(-0.35, 0.35)] * 4 + [(-0.025, 0.025)] * 10)
    u, v, sd, p = z[0], z[1], z[2], z[3]
    sp20 = lambda t: f"softplus(clip({t}, -20, 20))"  # noqa: E731
    sl2 = s("sl_2",
            f"Linf + {sp20('Cp')}*exp(-{sp20('ap')}*{p}) + {sp20('Cd')}*exp(-{sp20('ad')}*{sd})"
            f" + {sp20('Cdp')}*exp(-{sp20('adp')}*({sd} - k*{p})) + {sp20('Cbb')}*exp(-{sp20('abb')}*{v})"
            f" + {sp20(f'cL0 + cLp*{p} + cLs*{sd} + cLv*{v}')}*({u} - (u0 + up*{p} + us*{sd} + uv*{v}))**2"
            f" + {sp20(f'cB0 + cBp*{p} + cBs*{sd} + cBv*{v}')}*({v} - (v0 + vp*{p} + vs*{sd}))**2"
            f" + 2*tanh(rho)*sqrt({sp20(f'cL0 + cLp*{p} + cLs*{sd} + cLv*{v}')}"
            f"*{sp20(f'cB0 + cBp*{p} + cBs*{sd} + cBv*{v}')})"
            f"*({u} - (u0 + up*{p} + us*{sd} + uv*{v}))*({v} - (v0 + vp*{p} + vs*{sd}))",
            "Linf Cp ap Cd ad Cdp adp k u0 up us uv v0 vp vs cL0 cLp cLs cB0 cBp cBs rho cLv cBv Cbb abb",
            [(0, 3)] + [(-5, 15), (-5, 5)] * 3 + [(-5, 3), (-20, 2)] + [(-3, 3)] * 3 + [(0, 20)]
            + [(-3, 3)] * 2 + [(-12, 12)] * 6 + [(-8, 8)] + [(-12, 12)] * 2 + [(-5, 15), (-5, 5)])
    sl3 = s("sl_3",
            f"E + A*P**(-alpha) + B*D**(-beta) + F/max(P**wN*D**wD, 1e-30)"
            f" + C0*exp(CN*{p} + CD*{sd} + CB*{v})*({u} - (mu0 + muN*{p} + muD*{sd} + muB*{v} + muND*{p}*{sd}))**2"
            f" + G0*exp(GN*{p} + GD*{sd})*({v} - (nu0 + nuN*{p} + nuD*{sd} + nuND*{p}*{sd}))**2",
            "E A alpha B beta F wN wD C0 CN CD CB mu0 muN muD muB muND G0 GN GD nu0 nuN nuD nuND",
            [(0.5, 3)] + [(0, 5e5), (0.05, 2)] * 2 + [(0, 2e7), (0.05, 2), (0.05, 2)]
            + [(0, 3), (-3, 3), (-3, 3), (-3, 3)] + [(-20, 5)] + [(-10, 3)] * 4
            + [(0, 3), (-3, 3), (-3, 3)] + [(0, 15)] + [(-3, 3)] * 3)
    w20 = [f"w{i}" for i in range(20)]
    sl4 = s("sl_4", f"exp({_poly(w20, z, ('z2 - z3', '1/bsz', '1/bsz**2', '1/D', '1/P'))})", w20,
            [(-15, 15)] + [(-0.35, 0.35)] * 4 + [(-0.025, 0.025)] * 10
            + [(-0.3, 0.3), (-10, 10), (-200, 200), (-1.5e9, 1.5e9), (-5e7, 5e7)])
    sl5 = s("sl_5",
            f"L0 + AN*exp(-aN*{p}) + AD*exp(-aD*{sd}) + AB*exp(-aB*{v}) + AR*exp(-aR*({sd} - {p})**2)"
            f" + AX*exp(-aX*({sd} - {v})) + clr0*exp(-wb*{v} - wn*{p} - ws*{sd})"
            f"*({u} - (u0 + kb*{v} + kn*{p} + kd*{sd}))**2",
            "L0 AN aN AD aD AB aB clr0 u0 kb kn kd wb wn ws AR aR AX aX",
            [(0, 3), (0, 2e4), (0.01, 2), (0, 2e4), (0.01, 2), (0, 20), (0.01, 2), (0, 200), (-12, 3)]
            + [(-2, 2)] * 6 + [(0, 5), (0, 2), (0, 2000), (0, 2)])
    sl6 = s("sl_6",
            f"Linf + exp(clip(w0 + wd*{sd} + wp*{p} + wdp*{sd}*{p} + wlr*{u} + wlr2*{u}**2 + wb*{v}"
            f" + wb2*{v}**2 + wlrb*{u}*{v} + wlrD*{u}*{sd} + wlrP*{u}*{p} + wbD*{v}*{sd} + wbP*{v}*{p},"
            " -50, 50))",
            "Linf w0 wd wp wdp wlr wlr2 wb wb2 wlrb wlrD wlrP wbD wbP",
            [(0, 3), (-8, 8), (-0.5, 0.5), (-0.5, 0.5), (-0.025, 0.025), (-0.6, 0.6), (-0.6, 0.6),
             (-0.5, 0.5), (-0.5, 0.5), (-0.04, 0.04), (-0.02, 0.02), (-0.04, 0.04), (-0.05, 0.05),
             (-0.02, 0.02)])
    wa, wb_ = [f"a{i}" for i in range(15)], [f"b{i}" for i in range(15)]
    poly_b = [(-15, 15)] + [(-0.35, 0.35)] * 4 + [(-0.03, 0.03)] * 10
    sl7 = s("sl_7", f"E + exp(clip({_poly(wa, z)}, -50, 50)) + exp(clip({_poly(wb_, z)}, -50, 50))",
            ["E", *wa, *wb_], [(0, 2.5)] + poly_b + poly_b)
    tnh = lambda t: f"tanh(clip({t}, -20, 20))"  # noqa: E731
    dev = f"({u} - (phi0 + phib*{v} + phip*{p} + phid*{sd}))"
    dns = f"({u} - 0.5*{v} - (psi0 + psip*{p} + psid*{sd}))"
    sl8 = s("sl_8",
            f"L0 + {sp20('cP')}*exp(-{sp20('aP')}*{p}) + {sp20('cD')}*exp(-{sp20('aD')}*{sd})"
            f" + {sp20('cR')}*exp(-{sp20('aR')}*({sd} - {p}))"
            f" + {sp20('klr')}*{dev}**2*(1 + {tnh('alr')}*{tnh(dev)})"
            f" + {sp20('kns')}*{dns}**2*(1 + {tnh('ans')}*{tnh(dns)})"
            f" + {sp20('kdp')}*({sd} - {p} - delta0)**2",
            "L0 cP aP cD aD cR aR phi0 phib phip phid klr alr psi0 psip psid kns ans delta0 kdp",
            [(-1, 3)] + [(-3, 12), (-5, 5)] * 3 + [(-20, 3)] + [(-5, 5)] * 3 + [(-5, 10), (-5, 5)]
            + [(-15, 5)] + [(-5, 5)] * 2 + [(-5, 10), (-5, 5), (-5, 10), (-5, 10)])
    c = [f"c{i}" for i in range(15)]
    sl9 = s("sl_9", _poly(c, zl), c, [(-5, 30)] + [(-4, 4)] * 4 + [(-0.3, 0.3)] * 10)
    sl10 = s("sl_10", f"{_poly(c, z)} + wD*D**(-0.5) + wP*P**(-0.5) + wbsz/bsz", [*c, "wD", "wP", "wbsz"],
             [(-5, 35)] + [(-2, 2)] * 4 + [(-0.1, 0.1)] * 10 + [(-5e4, 5e4), (-2e4, 2e4), (-15, 15)])
    return (sl1, sl2, sl3, sl4, sl5, sl6, sl7, sl8, sl9, sl10)


def _domain_mixture() -> tuple[LawSpec, ...]:
    x = tuple(f"p{i}" for i in range(1, 6))
    s = lambda *a: _spec("domain_mixture", x, *a)  # noqa: E731
    dom = range(1, 6)
    others = {i: [j for j in dom if j != i] for i in dom}
    lg = lambda j: f"log(max(p{j}, 1e-12))"  # noqa: E731
    pw = lambda j, e: f"max(p{j}, 1e-12)**{e}"  # noqa: E731

    def per(block: Callable[[int], tuple[str, list[str], list[tuple[float, float]]]],
            shared: tuple[list[str], list[tuple[float, float]]] = ([], [])) -> tuple[list[str], list[str], list]:
        formulas, params, bounds = [], list(shared[0]), list(shared[1])
        for i in dom:
            f, p, b = block(i)
            formulas.append(f)
            params += p
            bounds += b
        return formulas, params, bounds

    def b1(i: int) -> tuple[str, list[str], list[tuple[float, float]]]:
        cs = [f"c{i}{j}" for j in others[i]]
        f = f"a{i} + b{i}*{lg(i)} + " + " + ".join(f"{c}*p{j}" for c, j in zip(cs, others[i], strict=True))
        return f, [f"a{i}", f"b{i}", *cs], [(-3, 6), (-10, 5)] + [(-10, 10)] * 4

    def b2(i: int) -> tuple[str, list[str], list[tuple[float, float]]]:
        ws = [f"w{i}{j}" for j in others[i]]
        inter = " + ".join(f"{w}*p{j}" for w, j in zip(ws, others[i], strict=True))
        f = f"A{i}*max(p{i} + e{i}, 1e-12)**(-alpha{i})*exp(clip({inter}, -20, 20))"
        return f, [f"A{i}", f"e{i}", f"alpha{i}", *ws], [(0, 10), (-0.03, 0.2), (0, 2)] + [(-5, 5)] * 4

    def b3(i: int) -> tuple[str, list[str], list[tuple[float, float]]]:
        ws = [f"W{i}{j}" for j in others[i]]
        f = f"base{i} + coef{i}*{pw(i, f'ex{i}')} + " + " + ".join(
            f"{w}*p{j}" for w, j in zip(ws, others[i], strict=True))
        return f, [f"base{i}", f"coef{i}", f"ex{i}", *ws], [(-3, 6), (-20, 20), (-2, 4)] + [(-10, 10)] * 4

    alphas = ([f"al{k}" for k in dom], [(-1, 3)] * 5)

    def b4(i: int) -> tuple[str, list[str], list[tuple[float, float]]]:
        cs = [f"C{i}{k}" for k in dom]
        lin = " + ".join(f"{c}*{pw(k, f'al{k}')}" for c, k in zip(cs, dom, strict=True))
        return f"exp(clip(bias{i} + {lin}, -50, 50))", [f"bias{i}", *cs], [(-3, 3)] + [(-10, 10)] * 5

    def b5(i: int) -> tuple[str, list[str], list[tuple[float, float]]]:
        ws = [f"W{i}{k}" for k in dom]
        lin = " + ".join(f"{w}*{pw(k, f'al{k}')}" for w, k in zip(ws, dom, strict=True))
        return f"b{i} + {lin}", [f"b{i}", *ws], [(-3, 6)] + [(-25, 25)] * 5

    def b6(i: int) -> tuple[str, list[str], list[tuple[float, float]]]:
        ts = [f"T{i}{j}" for j in others[i]]
        eff = f"p{i} + " + " + ".join(f"{t}*p{j}" for t, j in zip(ts, others[i], strict=True))
        return (f"C{i} + A{i}*max({eff}, 1e-12)**(-alpha{i})", [f"C{i}", f"A{i}", f"alpha{i}", *ts],
                [(-3, 6), (0, 10), (0, 3)] + [(-5, 5)] * 4)

    def b7(i: int) -> tuple[str, list[str], list[tuple[float, float]]]:
        ds = [f"d{i}{j}" for j in others[i]]
        f = (f"a{i} + b{i}*p{i} + c{i}*{lg(i)} + "
             + " + ".join(f"{d}*p{j}" for d, j in zip(ds, others[i], strict=True))
             + f" + e{i}*(" + " + ".join(lg(j) for j in others[i]) + ")")
        return f, [f"a{i}", f"b{i}", f"c{i}", *ds, f"e{i}"], [(-5, 8), (-10, 15), (-5, 5)] + [(-10, 10)] * 4 + [(-5, 5)]

    def b8(i: int) -> tuple[str, list[str], list[tuple[float, float]]]:
        return f"c{i} - a{i}*{pw(i, f'b{i}')}", [f"c{i}", f"a{i}", f"b{i}"], [(0, 6), (0, 5), (0, 3)]

    def b9(i: int) -> tuple[str, list[str], list[tuple[float, float]]]:
        return (f"a{i} + b{i}*{lg(i)} + c{i}*{lg(i)}**2", [f"a{i}", f"b{i}", f"c{i}"],
                [(-3, 6), (-2, 1), (-1, 1)])

    def b10(i: int) -> tuple[str, list[str], list[tuple[float, float]]]:
        return (f"a{i} + b{i}/max(p{i} + e{i}, 1e-12)", [f"a{i}", f"b{i}", f"e{i}"],
                [(-3, 6), (-1, 1), (-0.03, 0.3)])

    out = []
    for k, (block, shared) in enumerate([(b1, None), (b2, None), (b3, None), (b4, alphas), (b5, alphas),
                                         (b6, None), (b7, None), (b8, None), (b9, None), (b10, None)], 1):
        f, p, b = per(block, shared) if shared else per(block)
        out.append(s(f"sl_{k}", f, p, b))
    return tuple(out)


def _cost_sparsity(df: pd.DataFrame) -> np.ndarray:
    return (6.0 * df["N_dense"].to_numpy(float) * df["D1"].to_numpy(float)
            + 6.0 * df["N_active"].to_numpy(float) * df["D2"].to_numpy(float))


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("parallel", "parallel_scaling_law", {"N": "num_params", "S": "parallel_size"}, {"loss": "loss"},
         lambda d: d["num_params"].to_numpy(float), _parallel()),
    Task("moe", "moe_scaling_law", {"E": "num_experts", "N": "dense_parameter_count"},
         {"loss": "loss_validation"},
         lambda d: d["dense_parameter_count"].to_numpy(float) * d["num_experts"].to_numpy(float), _moe()),
    Task("vocab", "vocab_scaling_law", {"P": "non_vocab_parameters", "V": "vocab_size", "D": "num_characters"},
         {"loss": "unigram_normalized_loss"},
         lambda d: d["non_vocab_parameters"].to_numpy(float) * d["num_characters"].to_numpy(float), _vocab(),
         notes="the target is negative (a unigram-normalised loss)"),
    Task("data_constrained", "data_constrained_scaling_law", {"U": "unique_tokens", "N": "params", "D": "tokens"},
         {"loss": "loss"}, lambda d: 6.0 * d["params"].to_numpy(float) * d["tokens"].to_numpy(float),
         _data_constrained()),
    Task("farseer", "farseer_scaling_law", {"N": "N", "D": "D"}, {"loss": "loss"},
         lambda d: 6.0 * d["N"].to_numpy(float) * d["D"].to_numpy(float), _farseer()),
    Task("sparsity", "sparsity_scaling_law", {"P": "P", "Na": "N_active"}, {"loss": "loss"}, _cost_sparsity,
         _sparsity(), extra_columns=("N_dense", "D1", "D2")),
    Task("lr_bsz", "lr_bsz_scaling_law", {"lr": "lr", "bsz": "bsz", "D": "data_size",
                                          "P": "non_embedding_param_size"}, {"loss": "lm_loss"},
         lambda d: 6.0 * d["non_embedding_param_size"].to_numpy(float) * d["data_size"].to_numpy(float),
         _lr_bsz()),
    Task("domain_mixture", "domain_mixture_scaling_law", {f"p{i}": f"proportion_domain_{i}" for i in range(1, 6)},
         {f"y{i}": f"loss_domain_{i}" for i in range(1, 6)}, lambda d: np.ones(len(d)), _domain_mixture(),
         notes="five outputs; cost is 1 per run, so the held-out slice of train is random"),
)}


def all_laws() -> list[LawSpec]:
    return [spec for t in TASKS.values() for spec in t.laws]
