"""Do two methods' compute-optimal allocations agree? A comparison of their difference.

Two intervals that overlap do not make two estimates agree: at one budget the report once
called Approaches 2 and 3 "in agreement" on Llama 3's runs while their N_opt differed 1.8x. The
question is whether the *ratio* of the two N_opt is consistent with 1, and that needs the
ratio's own interval:

* when both come from the same resamples (Approaches 1 and 2 of one IsoFLOP fit: draw ``k`` of
  each is the same within-budget resample), the ratio is taken draw by draw - a joint bootstrap;
* otherwise (a loss-law fit against an IsoFLOP fit) draws are paired at random, which treats the
  two as independent; fitted on the same runs they are positively correlated, so the interval
  is, if anything, too wide - a difference it excludes is a real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from scalinglab.stats import Estimate


@dataclass
class Comparison:
    """``ratio`` = N_opt of ``a`` over N_opt of ``b`` at ``C``, with its interval."""

    a: str
    b: str
    C: float
    ratio: Estimate
    joint: bool

    @property
    def differ(self) -> bool | None:
        """True when the ratio's interval excludes 1, False when it holds it, None without one."""
        if self.ratio.ci is None:
            return None
        return not self.ratio.ci[0] <= 1.0 <= self.ratio.ci[1]

    def verdict(self) -> str:
        how = ("joint bootstrap: the same resamples" if self.joint else
               "draws paired at random; fits on the same runs make this interval, if anything, wide")
        r = self.ratio
        head = f"{self.a} vs {self.b} at C = {self.C:.3g}: N_opt ratio {r.value:.3g}"
        if self.differ is None:
            return f"{head} (no interval: too few usable draws to compare)"
        word = ("they differ beyond their joint uncertainty" if self.differ else
                "consistent with 1: no difference the draws can show")
        return f"{head} [{r.ci[0]:.3g}, {r.ci[1]:.3g}] - {word} ({how})"

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "C": self.C, "ratio": self.ratio.to_dict(),
                "level": self.ratio.level, "differ": self.differ, "joint": self.joint}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Comparison:
        """The comparison :meth:`to_dict` wrote (``differ`` follows from the ratio's interval)."""
        ratio = Estimate.from_dict(d["ratio"], float(d.get("level", 0.95)))
        return cls(str(d["a"]), str(d["b"]), float(d["C"]), ratio, bool(d.get("joint", False)))


def log_n_opt(source: Any, C: float) -> tuple[float, np.ndarray | None]:
    """ln N_opt at ``C`` and its draws (None without) from a loss-law fit (its optimum under
    C = 6ND, per draw) or an IsoFLOP allocation law (``N_opt = k C^a``)."""
    C = float(C)
    if hasattr(source, "log_kn"):  # an IsoFLOP AllocationLaw
        point = float(source.log_kn + source.a * np.log(C))
        if source.draws is None:
            return point, None
        return point, source.draws[:, 2] + source.draws[:, 0] * np.log(C)
    fit = source
    law = fit.law
    if law.optimum is not None:
        cols = fit.draw_columns()
        params = {k: np.concatenate([[fit.params[k]], cols[k]]) if fit.n_draws else np.array([fit.params[k]])
                  for k in law.param_names}
        with np.errstate(all="ignore"):
            n = np.asarray(law.optimum(params, C)[0], dtype=float)
    else:
        from scalinglab.fit.derived import _per_draw_optimum

        n, _ = _per_draw_optimum(fit, C, 0.0)
    with np.errstate(all="ignore"):
        logs = np.log(n)
    return float(logs[0]), (logs[1:] if fit.n_draws else None)


def compare_n_opt(a: Any, b: Any, C: float, *, names: tuple[str, str] = ("a", "b"),
                  joint: bool = False, seed: int = 0, level: float = 0.95) -> Comparison:
    """The ratio of ``a``'s N_opt to ``b``'s at ``C`` with a bootstrap interval of the
    difference of their logs (``joint``: draw k of one with draw k of the other)."""
    pa, da = log_n_opt(a, C)
    pb, db = log_n_opt(b, C)
    value = float(np.exp(pa - pb))
    if da is None or db is None or not len(da) or not len(db):
        return Comparison(names[0], names[1], float(C), Estimate(value, level=level), joint)
    if joint and len(da) == len(db):
        diff = da - db
    else:
        joint = False
        rng = np.random.default_rng(seed)
        k = max(len(da), len(db))
        ia = np.arange(k) if len(da) == k else rng.integers(0, len(da), k)
        ib = rng.permutation(k) if len(db) == k else rng.integers(0, len(db), k)
        diff = da[ia] - db[ib]
    return Comparison(names[0], names[1], float(C), Estimate.from_draws(value, np.exp(diff), level),
                      joint)


__all__ = ["Comparison", "compare_n_opt", "log_n_opt"]
