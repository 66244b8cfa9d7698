"""Unbiased pass@k from per-problem sample counts (Chen et al. 2021, "Evaluating Large Language
Models Trained on Code", eq. 1), with intervals from a bootstrap over problems.

For a problem with ``n`` samples of which ``c`` are correct, the probability that ``k`` samples
drawn without replacement from those ``n`` include a correct one is ``1 - C(n-c, k) / C(n, k)``:
an unbiased estimate of the problem's pass@k, unlike ``1 - (1 - c/n)^k``, which is biased low.
pass@k of a benchmark is its mean over problems ("coverage" in Large Language Monkeys).

The ratio is computed as ``prod_{i=n-c+1}^{n} (1 - k/i)`` (Chen et al.'s stable form) in log
space; for each distinct ``(n, k)`` one reverse cumulative sum over ``i`` serves every ``c``, so
10,000 samples per problem cost one pass over 10,000 terms per ``k``, not per problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from scalinglab.errors import ParameterError
from scalinglab.results import Result
from scalinglab.stats import Estimate, bootstrap_weights, percentile_interval
from scalinglab.summary import Summary, Table
from scalinglab.testtime.counts import ProblemCounts


def pass_at_k(n: Any, c: Any, k: Any) -> np.ndarray:
    """Unbiased per-problem pass@k, ``1 - C(n-c, k) / C(n, k)``: shape (problems, len(k)).

    ``n``, ``c``: samples and correct samples per problem (1-D); ``k``: one or more sample
    counts, each at most every problem's ``n``.
    """
    n = np.atleast_1d(np.asarray(n)).astype(np.int64)
    c = np.atleast_1d(np.asarray(c)).astype(np.int64)
    ks = np.atleast_1d(np.asarray(k)).astype(np.int64)
    if n.shape != c.shape or n.ndim != 1:
        raise ParameterError("n and c must be 1-D and the same length", "n", "c")
    if np.any(n < 1) or np.any(c < 0) or np.any(c > n):
        raise ParameterError("need n >= 1 and 0 <= c <= n for every problem", "n", "c")
    if np.any(ks < 1) or np.any(ks > n.min()):
        raise ParameterError(f"k must be between 1 and the fewest samples of any problem "
                             f"({int(n.min())}), not {ks.tolist()}", "k")
    out = np.empty((len(n), len(ks)))
    for n_val in np.unique(n):
        rows = np.flatnonzero(n == n_val)
        i = np.arange(1, n_val + 1, dtype=float)
        for j, k_val in enumerate(ks):
            # tail[m] = sum_{i=m+1}^{n} log(1 - k/i); terms with i <= k never enter (n - c >= k)
            with np.errstate(divide="ignore", invalid="ignore"):
                terms = np.where(i > k_val, np.log1p(-k_val / i), 0.0)
            tail = np.concatenate([np.cumsum(terms[::-1])[::-1], [0.0]])  # tail[m] for m = 0..n
            cc = c[rows]
            free = n_val - cc  # wrong samples
            value = np.where(free < k_val, 1.0, -np.expm1(tail[np.minimum(free, n_val)]))
            out[rows, j] = value
    return out


def fewest_samples(data: ProblemCounts) -> str:
    """``"; problem 'q7' has the fewest (2; 1 of 51 problems, the rest up to 100): ..."``:
    which problems hold the largest k down, when others have more samples (else "")."""
    n = np.asarray(data.n)
    low = np.flatnonzero(n == n.min())
    if n.min() == n.max():
        return ""
    names = ", ".join(repr(data.problem_ids[i]) for i in low[:3]) + (", ..." if len(low) > 3 else "")
    many = len(low) > 1
    return (f"; problem{'s' if many else ''} {names} {'have' if many else 'has'} the fewest "
            f"({int(n.min())}; {len(low)} of {len(n)} problems, the rest up to {int(n.max())}): "
            f"draw more for {'them' if many else 'it'}, or leave {'them' if many else 'it'} out")


def default_ks(max_k: int) -> np.ndarray:
    """1, 2, 4, ... up to ``max_k``, and ``max_k`` itself."""
    ks = 2 ** np.arange(int(np.floor(np.log2(max_k))) + 1)
    return np.unique(np.append(ks, max_k)).astype(np.int64)


class _ProblemsResult(Result):
    """Results over benchmark problems: the repr counts problems, not runs."""

    def __repr__(self) -> str:
        items = [f"{self.n_runs} problems", *self._repr_items()]
        if self.warnings:
            items.append(f"{len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''}")
        return f"<{type(self).__name__} {', '.join(items)}>"


@dataclass(repr=False)
class PassAtK(_ProblemsResult):
    """pass@k of a benchmark at each ``k``, with bootstrap draws over problems.

    ``run_ids`` are the problem ids. ``curve(k)`` recomputes any ``k`` up to ``max_k`` from the
    counts it keeps, with the same resamples (``seed``), so a figure's band matches the table.
    """

    kind: ClassVar[str] = "pass_at_k"

    ks: np.ndarray
    values: np.ndarray
    draws: np.ndarray | None
    n: np.ndarray
    c: np.ndarray
    run_ids: tuple[str, ...]
    model: str | None = None
    seed: int = 0
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def max_k(self) -> int:
        return int(np.min(self.n))

    def _weights(self) -> np.ndarray | None:
        k = 0 if self.draws is None else len(self.draws)
        if not k:
            return None
        return bootstrap_weights(len(self.n), k, np.random.default_rng(self.seed))

    def curve(self, k: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(point, lo, hi)`` of pass@k at each ``k`` (at most ``max_k``)."""
        per = pass_at_k(self.n, self.c, k)
        point = per.mean(axis=0)
        w = self._weights()
        if w is None:
            return point, np.full_like(point, np.nan), np.full_like(point, np.nan)
        lo, hi = percentile_interval(w @ per / len(self.n), self.level)
        return point, lo, hi

    def estimate(self, k: int) -> Estimate:
        i = np.flatnonzero(self.ks == k)
        if i.size:
            j = int(i[0])
            return Estimate.from_draws(self.values[j], None if self.draws is None else self.draws[:, j],
                                       self.level)
        point, lo, hi = self.curve([k])
        return Estimate(float(point[0]), None if np.isnan(lo[0]) else float(lo[0]),
                        None if np.isnan(hi[0]) else float(hi[0]), self.level)

    def _repr_items(self) -> list[str]:
        return [", ".join(f"pass@{k}={v:.3g}" for k, v in list(zip(self.ks, self.values, strict=True))[:4])]

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        return tuple(f"pass@{int(k)}" for k in self.ks), self.draws

    def summary(self) -> Summary:
        t = Table(f"pass@k over {len(self.n)} problems" + (f" ({self.model})" if self.model else ""),
                  ["k", "pass@k"])
        for k in self.ks:
            t.add_row(int(k), self.estimate(int(k)))
        facts = [("samples per problem", f"{int(self.n.min())}" if self.n.min() == self.n.max()
                  else f"{int(self.n.min())} to {int(self.n.max())}"),
                 ("problems never solved", str(int(np.sum(self.c == 0)))),
                 ("problems always solved", str(int(np.sum(self.c == self.n))))]
        return Summary(title="pass@k (unbiased estimator, Chen et al. 2021)", tables=[t], facts=facts,
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind, "model": self.model, "level": self.level, "seed": self.seed,
            "n_problems": len(self.n),
            "pass_at_k": [{"k": int(k), **self.estimate(int(k)).to_dict()} for k in self.ks],
            "n_bootstrap": 0 if self.draws is None else len(self.draws),
            "warnings": list(self.warnings), "notes": list(self.notes),
        }
        if include_draws:
            out["problems"] = {"id": list(self.run_ids), "n": self.n.tolist(), "c": self.c.tolist()}
            if self.draws is not None:
                out["draws"] = self.draws.tolist()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PassAtK:
        if "problems" not in data:
            raise ParameterError("a pass@k result saved without its problems (include_draws=True) "
                                 "cannot be rebuilt", "data")
        probs = data["problems"]
        rows = data["pass_at_k"]
        return cls(ks=np.array([r["k"] for r in rows], dtype=np.int64),
                   values=np.array([r["value"] for r in rows], dtype=float),
                   draws=None if data.get("draws") is None else np.asarray(data["draws"], float),
                   n=np.asarray(probs["n"], dtype=np.int64), c=np.asarray(probs["c"], dtype=np.int64),
                   run_ids=tuple(probs["id"]), model=data.get("model"), seed=int(data.get("seed", 0)),
                   level=float(data.get("level", 0.95)), warnings=list(data.get("warnings", [])),
                   notes=list(data.get("notes", [])))


def estimate_pass_at_k(
    data: ProblemCounts,
    k: Sequence[int] | int | None = None,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PassAtK:
    """pass@k at each ``k`` (default 1, 2, 4, ... up to the fewest samples per problem), with a
    percentile interval from ``bootstrap`` resamples of the problems.

    The interval is over problems (another benchmark of the same kind), not over samples; with
    few samples per problem the per-problem estimates are noisy too, and that noise is part of
    what the problem bootstrap sees.
    """
    ks = default_ks(data.min_samples) if k is None else np.atleast_1d(np.asarray(k, dtype=np.int64))
    if np.any(ks > data.min_samples):
        raise ParameterError(f"k must be between 1 and the fewest samples of any problem "
                             f"({data.min_samples}), not {ks.tolist()}{fewest_samples(data)}", "k")
    per = pass_at_k(data.n, data.c, ks)
    values = per.mean(axis=0)
    draws = None
    if bootstrap > 0:
        w = bootstrap_weights(data.n_problems, bootstrap, np.random.default_rng(seed))
        draws = w @ per / data.n_problems
    notes = []
    if data.n.min() != data.n.max():
        notes.append(f"problems have {int(data.n.min())} to {int(data.n.max())} samples"
                     f"{fewest_samples(data)}")
    return PassAtK(ks=ks, values=values, draws=draws, n=np.asarray(data.n), c=np.asarray(data.c),
                   run_ids=data.problem_ids, model=data.model, seed=seed, level=level, notes=notes)


__all__ = ["PassAtK", "default_ks", "estimate_pass_at_k", "pass_at_k"]
