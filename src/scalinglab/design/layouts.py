"""Fixed designs laid out for a total spend, and the candidate runs an adaptive design picks from.

Every layout returns run positions ``(N, D)`` whose compute ``C = 6ND`` sums to the spend (up to
rounding), so designs are compared at equal cost:

- :func:`isoflop_layout`: Chinchilla's Approach 2 layout: a few budgets a constant factor apart,
  at each one ``sizes`` models log-spaced over a factor ``span`` in N around a tokens-per-parameter
  guess (20, Hoffmann et al. 2022), each trained on ``D = C/(6N)``;
- :func:`grid_layout`: a full N x D grid (sizes x token counts), scaled to the spend.

:class:`FlopSpace` is the domain an adaptive design may choose from: a log grid of run compute
and tokens per parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.errors import ParameterError


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ParameterError(f"{name} must be a positive number, not {value:g}", name)
    return value


def _count(value: int, name: str, least: int = 1) -> int:
    if int(value) != value or value < least:
        raise ParameterError(f"{name} must be a whole number >= {least}, not {value}", name)
    return int(value)


@dataclass(frozen=True)
class IsoflopLayout:
    """``budgets`` budgets a factor ``ratio`` apart, ``sizes`` models per budget spanning
    ``span`` in N around ``tokens_per_param``; ``replicates`` seeds per run."""

    budgets: int = 5
    sizes: int = 7
    ratio: float = 3.0
    span: float = 16.0
    tokens_per_param: float = 20.0
    replicates: int = 1

    def __post_init__(self) -> None:
        _count(self.budgets, "budgets")
        _count(self.sizes, "sizes")
        _count(self.replicates, "replicates")
        if not self.ratio > 1:
            raise ParameterError(f"ratio must be > 1, not {self.ratio:g}", "ratio")
        if not self.span >= 1:
            raise ParameterError(f"span must be >= 1, not {self.span:g}", "span")
        _positive(self.tokens_per_param, "tokens_per_param")

    @property
    def n_runs(self) -> int:
        return self.budgets * self.sizes * self.replicates

    def label(self) -> str:
        return (f"isoflop {self.budgets} budgets x{self.ratio:g} apart, {self.sizes} sizes over "
                f"{self.span:g}x" + (f", {self.replicates} seeds" if self.replicates > 1 else ""))

    def budgets_for(self, spend: float) -> np.ndarray:
        """The budgets, smallest first, whose runs together cost ``spend``."""
        rel = float(self.ratio) ** -np.arange(self.budgets, dtype=float)[::-1]
        top = _positive(spend, "spend") / (self.sizes * self.replicates * rel.sum())
        return top * rel

    def runs(self, spend: float) -> tuple[np.ndarray, np.ndarray]:
        n_out, d_out = [], []
        half = np.sqrt(self.span)
        for c in self.budgets_for(spend):
            centre = np.sqrt(c / (6.0 * self.tokens_per_param))
            sizes = centre * (np.geomspace(1 / half, half, self.sizes) if self.sizes > 1
                              else np.ones(1))
            for n in sizes:
                n_out += [n] * self.replicates
                d_out += [c / (6.0 * n)] * self.replicates
        return np.array(n_out), np.array(d_out)


@dataclass(frozen=True)
class GridLayout:
    """A ``sizes`` x ``tokens`` grid: N log-spaced over ``span_N``, tokens per parameter
    log-spaced over ``span_tpp`` around ``tokens_per_param``, scaled so the runs cost the spend."""

    sizes: int = 5
    tokens: int = 5
    span_N: float = 100.0
    span_tpp: float = 100.0
    tokens_per_param: float = 20.0
    replicates: int = 1

    def __post_init__(self) -> None:
        _count(self.sizes, "sizes")
        _count(self.tokens, "tokens")
        _count(self.replicates, "replicates")
        for name in ("span_N", "span_tpp"):
            if not getattr(self, name) >= 1:
                raise ParameterError(f"{name} must be >= 1, not {getattr(self, name):g}", name)
        _positive(self.tokens_per_param, "tokens_per_param")

    @property
    def n_runs(self) -> int:
        return self.sizes * self.tokens * self.replicates

    def label(self) -> str:
        return (f"grid {self.sizes} sizes over {self.span_N:g}x x {self.tokens} token counts "
                f"over {self.span_tpp:g}x tokens/param")

    def runs(self, spend: float) -> tuple[np.ndarray, np.ndarray]:
        rel_n = np.geomspace(1.0, self.span_N, self.sizes) if self.sizes > 1 else np.ones(1)
        tpp = self.tokens_per_param * (np.geomspace(self.span_tpp ** -0.5, self.span_tpp ** 0.5,
                                                    self.tokens) if self.tokens > 1 else np.ones(1))
        n_rel, t = (a.ravel() for a in np.meshgrid(rel_n, tpp, indexing="ij"))
        # C = 6 N D = 6 tpp N^2; choose the scale s of N so that sum C = spend
        unit = 6.0 * float(np.sum(t * n_rel**2)) * self.replicates
        s = np.sqrt(_positive(spend, "spend") / unit)
        n = np.repeat(s * n_rel, self.replicates)
        return n, np.repeat(t, self.replicates) * n


@dataclass(frozen=True)
class FlopSpace:
    """Candidate runs: ``n_compute`` run budgets log-spaced over ``compute`` (FLOPs) times
    ``n_tpp`` tokens-per-parameter values log-spaced over ``tokens_per_param``."""

    compute: tuple[float, float]
    tokens_per_param: tuple[float, float] = (1.0, 1000.0)
    n_compute: int = 25
    n_tpp: int = 21

    def __post_init__(self) -> None:
        lo, hi = (_positive(x, "compute") for x in self.compute)
        tlo, thi = (_positive(x, "tokens_per_param") for x in self.tokens_per_param)
        if hi < lo or thi < tlo:
            raise ParameterError("compute and tokens_per_param are (low, high) ranges",
                                 "compute", "tokens_per_param")
        _count(self.n_compute, "n_compute")
        _count(self.n_tpp, "n_tpp")

    @classmethod
    def for_spend(cls, spend: float, smallest: float = 1e-4,
                  tokens_per_param: tuple[float, float] = (1.0, 1000.0)) -> FlopSpace:
        """Runs from ``smallest`` x the spend up to the whole spend."""
        spend = _positive(spend, "spend")
        return cls((spend * _positive(smallest, "smallest"), spend), tokens_per_param)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        c = np.geomspace(*self.compute, self.n_compute)
        t = np.geomspace(*self.tokens_per_param, self.n_tpp)
        cc, tt = (a.ravel() for a in np.meshgrid(c, t, indexing="ij"))
        n = np.sqrt(cc / (6.0 * tt))
        return n, tt * n


def near_existing(N: np.ndarray, D: np.ndarray, run_N: np.ndarray, run_D: np.ndarray,
                  radius: float = 0.05) -> np.ndarray:
    """Candidates within ``radius`` (natural-log units, in both N and D) of a run already made:
    repeating a point teaches less than a new one and narrows the design the bootstrap sees."""
    if len(run_N) == 0:
        return np.zeros(len(N), bool)
    dn = np.abs(np.log(N)[:, None] - np.log(np.asarray(run_N, float))[None, :])
    dd = np.abs(np.log(D)[:, None] - np.log(np.asarray(run_D, float))[None, :])
    return np.any((dn < radius) & (dd < radius), axis=1)
