"""Repeated sampling with an imperfect verifier: where more samples stop helping.

Coverage assumes a perfect verifier (any correct sample counts). A real one accepts a correct
sample with probability ``recall`` and a wrong one with probability ``false_positive_rate``.
The policy modelled here: draw k samples, return one the verifier accepted (chosen at random
among the accepted), or fail when it accepted none. For a problem whose samples are correct with
probability p, each sample is accepted with probability ``q = p r + (1 - p) f`` and an accepted
sample is correct with probability ``p r / q``, so

    success(k) = [1 - (1 - q)^k] * p r / q  ->  p r / q   as k -> infinity.

The limit is below 1 whenever ``f > 0``: beyond a point more samples only find more false
positives (Stroebl et al. 2024, "Inference Scaling fLaws"). Averaged over problems, the result
reports that ceiling, the accuracy at each k, and the smallest k after which doubling k gains
less than ``tol``. A problem's p is its observed ``c / n`` (a plug-in estimate); intervals come
from a bootstrap over problems.

A verifier known by its precision instead: at the benchmark's base rate ``p0`` (mean per-sample
success), precision ``P = p0 r / (p0 r + (1 - p0) f)``, so ``f = p0 r (1 - P) / (P (1 - p0))``
(:meth:`Verifier.from_precision`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from scalinglab.errors import ParameterError
from scalinglab.stats import Estimate, bootstrap_weights, percentile_interval
from scalinglab.summary import Summary, Table
from scalinglab.testtime.counts import ProblemCounts
from scalinglab.testtime.passk import _ProblemsResult


@dataclass(frozen=True)
class Verifier:
    """Accepts a correct sample with probability ``recall``, a wrong one with
    ``false_positive_rate``."""

    recall: float
    false_positive_rate: float

    def __post_init__(self) -> None:
        if not 0.0 < self.recall <= 1.0:
            raise ParameterError(f"recall must be in (0, 1], not {self.recall}", "recall")
        if not 0.0 <= self.false_positive_rate <= 1.0:
            raise ParameterError(f"false_positive_rate must be in [0, 1], not {self.false_positive_rate}",
                                 "false_positive_rate")

    @classmethod
    def from_precision(cls, precision: float, recall: float, base_rate: float) -> Verifier:
        """The verifier whose precision is ``precision`` on samples correct at ``base_rate``."""
        if not 0.0 < precision <= 1.0:
            raise ParameterError(f"precision must be in (0, 1], not {precision}", "precision")
        if not 0.0 < base_rate < 1.0:
            raise ParameterError(f"the base rate of correct samples must be strictly between 0 and 1, "
                                 f"not {base_rate}", "base_rate")
        f = base_rate * recall * (1.0 - precision) / (precision * (1.0 - base_rate))
        if f > 1.0:
            raise ParameterError(f"precision {precision} with recall {recall} is impossible at a base "
                                 f"rate of {base_rate:.3g} (it needs a false-positive rate of {f:.3g} > 1)",
                                 "precision", "recall")
        return cls(recall=recall, false_positive_rate=f)

    def precision_at(self, p: float) -> float:
        q = p * self.recall + (1 - p) * self.false_positive_rate
        return float(p * self.recall / q) if q > 0 else float("nan")


def verified_success(p: Any, k: Any, verifier: Verifier) -> np.ndarray:
    """Per-problem success of "return an accepted sample" with ``k`` samples: (problems, len(k))."""
    p = np.atleast_1d(np.asarray(p, dtype=float))[:, None]
    k = np.atleast_1d(np.asarray(k, dtype=float))[None, :]
    r, f = verifier.recall, verifier.false_positive_rate
    q = p * r + (1.0 - p) * f
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(q > 0, p * r / q, 0.0)
        found = -np.expm1(k * np.log1p(-np.minimum(q, 1.0)))
    found = np.where(q >= 1.0, 1.0, found)
    return found * precision


def ceiling(p: Any, verifier: Verifier) -> np.ndarray:
    """Per-problem success as k -> infinity: the verifier's precision on that problem."""
    p = np.atleast_1d(np.asarray(p, dtype=float))
    q = p * verifier.recall + (1 - p) * verifier.false_positive_rate
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q > 0, p * verifier.recall / q, 0.0)


def _k_stop(curve: np.ndarray, ks: np.ndarray, tol: float) -> np.ndarray:
    """Smallest k (on the doubling grid ``ks``) from which every further doubling gains less
    than ``tol``; ``curve`` is (R, len(ks)); NaN where the last doubling still gains ``tol``.

    "From which every further": a hard benchmark's curve can be flat at small k and rise later,
    so the first flat doubling is not where sampling stops helping."""
    gain = np.diff(curve, axis=1)
    out = np.full(curve.shape[0], np.nan)
    for r in range(curve.shape[0]):
        steep = np.flatnonzero(~(gain[r] < tol))
        if not steep.size:
            out[r] = ks[0]
        elif steep[-1] < gain.shape[1] - 1:
            out[r] = ks[steep[-1] + 1]
    return out


@dataclass(repr=False)
class VerifierAnalysis(_ProblemsResult):
    """Accuracy with an imperfect verifier against k, its ceiling, and where it levels off."""

    kind: ClassVar[str] = "verifier_analysis"

    verifier: Verifier
    ks: np.ndarray
    accuracy: list[Estimate]
    coverage: list[Estimate]
    ceiling: Estimate
    k_stop: Estimate | None
    tol: float
    run_ids: tuple[str, ...]
    p: np.ndarray
    seed: int = 0
    n_draws: int = 0
    model: str | None = None
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def curve(self, k: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(point, lo, hi)`` of accuracy at each ``k`` with this verifier, for figures."""
        per = verified_success(self.p, k, self.verifier)
        point = per.mean(axis=0)
        if not self.n_draws:
            return point, np.full_like(point, np.nan), np.full_like(point, np.nan)
        w = bootstrap_weights(len(self.p), self.n_draws, np.random.default_rng(self.seed))
        lo, hi = percentile_interval(w @ per / len(self.p), self.level)
        return point, lo, hi

    def _repr_items(self) -> list[str]:
        return [f"ceiling {self.ceiling.value:.3g}",
                f"levels off at k={self.k_stop.value:.0f}" if self.k_stop is not None
                and np.isfinite(self.k_stop.value) else "still rising"]

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        """Accuracy (``accuracy@k``) and coverage with a perfect verifier (``coverage@k``) at
        each k, redrawn from the problems with the same resamples (``seed``) as the fit."""
        if not self.n_draws:
            return None
        w = bootstrap_weights(len(self.p), self.n_draws, np.random.default_rng(self.seed))
        perfect = Verifier(recall=1.0, false_positive_rate=0.0)
        acc = w @ verified_success(self.p, self.ks, self.verifier) / len(self.p)
        cov = w @ verified_success(self.p, self.ks, perfect) / len(self.p)
        names = [f"accuracy@{int(k)}" for k in self.ks] + [f"coverage@{int(k)}" for k in self.ks]
        return tuple(names), np.hstack([acc, cov])

    def summary(self) -> Summary:
        t = Table(f"accuracy with the verifier (recall {self.verifier.recall:.3g}, false-positive rate "
                  f"{self.verifier.false_positive_rate:.3g}) vs a perfect one",
                  ["k", "accuracy", "coverage (perfect verifier)"])
        for k, a, c in zip(self.ks, self.accuracy, self.coverage, strict=True):
            t.add_row(int(k), a, c)
        facts = [("ceiling (k -> infinity)", f"{self.ceiling}")]
        if self.k_stop is not None:
            facts.append((f"more samples stop helping (doubling k gains < {self.tol:g}) at k",
                          f"{self.k_stop}" if np.isfinite(self.k_stop.value)
                          else f"not within k <= {int(self.ks[-1])}"))
        return Summary(title="repeated sampling with an imperfect verifier", tables=[t], facts=facts,
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind, "model": self.model, "level": self.level, "seed": self.seed,
            "verifier": {"recall": self.verifier.recall,
                         "false_positive_rate": self.verifier.false_positive_rate},
            "points": [{"k": int(k), "accuracy": a.to_dict(), "coverage": c.to_dict()}
                       for k, a, c in zip(self.ks, self.accuracy, self.coverage, strict=True)],
            "ceiling": self.ceiling.to_dict(), "tol": self.tol,
            "k_stop": None if self.k_stop is None else self.k_stop.to_dict(),
            "n_problems": len(self.p), "n_bootstrap": self.n_draws,
            "warnings": list(self.warnings), "notes": list(self.notes),
        }
        if include_draws:
            out["problems"] = {"id": list(self.run_ids), "p": self.p.tolist()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerifierAnalysis:
        level = float(data.get("level", 0.95))
        pts = data["points"]
        probs = data.get("problems") or {"id": [], "p": []}
        return cls(
            verifier=Verifier(**data["verifier"]), ks=np.array([p["k"] for p in pts], dtype=np.int64),
            accuracy=[Estimate.from_dict(p["accuracy"], level) for p in pts],
            coverage=[Estimate.from_dict(p["coverage"], level) for p in pts],
            ceiling=Estimate.from_dict(data["ceiling"], level),
            k_stop=None if data.get("k_stop") is None else Estimate.from_dict(data["k_stop"], level),
            tol=float(data.get("tol", 0.005)), run_ids=tuple(probs["id"]),
            p=np.asarray(probs["p"], dtype=float), seed=int(data.get("seed", 0)),
            n_draws=int(data.get("n_bootstrap", 0)) if probs["p"] else 0, model=data.get("model"),
            level=level, warnings=list(data.get("warnings", [])), notes=list(data.get("notes", [])),
        )


def analyze_verifier(
    data: ProblemCounts,
    verifier: Verifier,
    k: Sequence[int] | None = None,
    *,
    tol: float = 0.005,
    bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> VerifierAnalysis:
    """Accuracy of sampling with ``verifier`` at each ``k`` (default 1, 2, 4, ..., 2^20), the
    ceiling as k grows, and the smallest k after which doubling k gains less than ``tol``."""
    if not tol > 0:
        raise ParameterError("tol must be positive", "tol")
    ks = (2 ** np.arange(21)).astype(np.int64) if k is None else np.unique(np.asarray(k, dtype=np.int64))
    if np.any(ks < 1):
        raise ParameterError("k must be at least 1", "k")
    p = data.success_rate
    perfect = Verifier(recall=1.0, false_positive_rate=0.0)
    acc = verified_success(p, ks, verifier)
    cov = verified_success(p, ks, perfect)
    ceil = ceiling(p, verifier)
    doubling = bool(np.all(ks[1:] == 2 * ks[:-1]))
    w = bootstrap_weights(data.n_problems, bootstrap, np.random.default_rng(seed)) if bootstrap > 0 else None

    def est(per: np.ndarray) -> list[Estimate]:
        point = per.mean(axis=0)
        draws = None if w is None else w @ per / data.n_problems
        return [Estimate.from_draws(point[j], None if draws is None else draws[:, j], level)
                for j in range(per.shape[1])]

    k_stop = None
    notes = ["per-problem success rates are the observed c/n (plug-in); accuracy beyond the observed "
             "samples per problem assumes they stay the same"]
    if doubling and len(ks) > 1:
        point = _k_stop(acc.mean(axis=0)[None, :], ks, tol)[0]
        draws = None if w is None else _k_stop(w @ acc / data.n_problems, ks, tol)
        # a draw that never levels off within the grid is beyond its end: count it as +inf
        if draws is not None:
            draws = np.where(np.isnan(draws), np.inf, draws)
        k_stop = Estimate.from_draws(point if np.isfinite(point) else np.inf, draws, level)
    else:
        notes.append("k is not a doubling grid (1, 2, 4, ...): no levelling-off point computed")
    warnings = []
    if verifier.false_positive_rate == 0:
        notes.append("with no false positives accuracy rises to the recall-limited coverage; it never "
                     "stops improving, only slows")
    base = float(np.mean(p))
    if base in (0.0, 1.0):
        warnings.append(f"every sample is {'wrong' if base == 0 else 'right'}: nothing to verify")
    return VerifierAnalysis(
        verifier=verifier, ks=ks, accuracy=est(acc), coverage=est(cov),
        ceiling=est(ceil[:, None])[0], k_stop=k_stop, tol=tol, run_ids=data.problem_ids, p=p,
        seed=seed, n_draws=0 if w is None else len(w), model=data.model, level=level,
        warnings=warnings, notes=notes,
    )


__all__ = ["Verifier", "VerifierAnalysis", "analyze_verifier", "ceiling", "verified_success"]
