"""Is the residual spread noise, or misfit? Structure tests of a loss law's residuals.

A law's residual spread is often read as run-to-run noise. It is not, when the residuals have
structure: on Gadre et al.'s C4 runs most of it is the systematic misfit of the M = 5 runs
(tokens per parameter; +4 to +14% above the law), while released reruns put seed noise at
0.02-0.1% of loss (OLMo ladder reruns 0.015-0.03%). :func:`residual_structure` groups the
log residuals by tokens per parameter ``M = D/N`` and by model size ``N`` (runs within about 26%
of each other share a group) and, for each grouping, tests whether the group means differ by
more than the spread inside the groups allows (one-way analysis of variance, F test), naming
the groups whose mean lies off the law. What is left inside the groups is an upper bound on
noise; replicate runs (the same N and D more than once) measure noise directly.

A *noise floor* (a fraction of loss) is what a prediction error must exceed to be a
difference: ``noise_floor`` given, else the replicates' spread when there are replicates; an
error below it is reported "within noise".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: F-test p-value below which a grouping's means differ by more than noise
P_MISFIT = 0.01
#: runs whose M (or N) agree within this many decades share a group (about 26%)
GROUP_DEX = 0.1


@dataclass
class ResidualStructure:
    """What the residuals say: total spread, the noise in them, and each grouping's test."""

    n: int
    total_std: float
    #: spread left inside the groups of the most structured grouping (an upper bound on noise)
    within_std: float
    #: seed noise from replicate runs (same N and D), NaN without replicates
    replicate_std: float = float("nan")
    n_replicate_sets: int = 0
    #: the floor below which an error is "within noise" (fraction of loss), and where it came from
    noise_floor: float | None = None
    noise_floor_source: str = ""
    tests: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def misfit(self) -> bool:
        return any(t["p"] < P_MISFIT for t in self.tests)

    def within_noise(self, rel_err: float) -> bool:
        """True when a relative error is below the noise floor (no floor: False)."""
        return self.noise_floor is not None and abs(rel_err) <= self.noise_floor

    def describe(self) -> str:
        """One line: the spread, how much of it is structure, and the noise."""
        text = f"{self.total_std:.3g} of log loss over {self.n} runs"
        worst = min(self.tests, key=lambda t: t["p"]) if self.tests else None
        if worst is not None and worst["p"] < P_MISFIT:
            text += (f": mostly misfit, not noise (by {worst['by']}: {worst['share']:.0%} of it between "
                     f"groups, p = {worst['p']:.2g}); {self.within_std:.3g} left inside the groups")
        elif worst is not None:
            text += f": no structure by {', '.join(t['by'] for t in self.tests)} (p >= {P_MISFIT:g})"
        if np.isfinite(self.replicate_std):
            text += f"; replicate runs ({self.n_replicate_sets} sets) put seed noise at {self.replicate_std:.3g}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "total_std": self.total_std, "within_std": self.within_std,
                "replicate_std": None if not np.isfinite(self.replicate_std) else self.replicate_std,
                "n_replicate_sets": self.n_replicate_sets, "noise_floor": self.noise_floor,
                "noise_floor_source": self.noise_floor_source, "misfit": self.misfit,
                "tests": self.tests, "warnings": list(self.warnings)}


def _groups(values: np.ndarray, dex: float = GROUP_DEX) -> np.ndarray:
    """Group index per value: sorted log values, a new group past ``dex`` from its first."""
    lv = np.log10(values)
    order = np.argsort(lv, kind="stable")
    out = np.empty(len(lv), dtype=int)
    g, start = -1, -np.inf
    for i in order:
        if lv[i] - start > dex:
            g, start = g + 1, lv[i]
        out[i] = g
    return out


def _anova(r: np.ndarray, groups: np.ndarray) -> tuple[float, float, float, float, int]:
    """(F, p, share of the sum of squares between groups, pooled within-group std, k)."""
    from scipy.stats import f as f_dist

    labels = np.unique(groups)
    k, n = len(labels), len(r)
    if k < 2 or n - k < 1:
        return float("nan"), 1.0, 0.0, float("nan"), k
    grand = r.mean()
    ss_b = sum(float((groups == g).sum()) * (r[groups == g].mean() - grand) ** 2 for g in labels)
    ss_w = sum(float(((r[groups == g] - r[groups == g].mean()) ** 2).sum()) for g in labels)
    ss_t = ss_b + ss_w
    within = float(np.sqrt(ss_w / (n - k)))
    if ss_w <= 0:
        return float("inf"), 0.0, 1.0, within, k
    F = (ss_b / (k - 1)) / (ss_w / (n - k))
    return float(F), float(f_dist.sf(F, k - 1, n - k)), float(ss_b / ss_t) if ss_t > 0 else 0.0, within, k


def residual_structure(
    inputs: Mapping[str, Any], observed: Any, predicted: Any, *,
    by: Sequence[str] = ("M", "N"), noise_floor: float | None = None,
) -> ResidualStructure:
    """Test the log residuals ``ln observed - ln predicted`` for structure by each of ``by``
    (``"M"``: tokens per parameter D/N; any input such as ``"N"``, ``"D"``, ``"C"``).

    ``noise_floor`` (a fraction of loss, e.g. 0.001 for 0.1%) is the floor below which errors
    are within noise; by default the replicate runs' spread when the runs hold replicates."""
    y = np.asarray(observed, dtype=float).ravel()
    f = np.asarray(predicted, dtype=float).ravel()
    x = {k: np.asarray(v, dtype=float).ravel() for k, v in inputs.items()}
    ok = np.isfinite(y) & np.isfinite(f) & (y > 0) & (f > 0)
    r = np.log(y[ok]) - np.log(f[ok])
    x = {k: v[ok] for k, v in x.items()}
    if "N" in x and "D" in x:
        x["M"] = x["D"] / x["N"]
    out = ResidualStructure(n=int(ok.sum()), total_std=float(np.std(r)) if len(r) else float("nan"),
                            within_std=float(np.std(r)) if len(r) else float("nan"))
    # replicates: the same point run more than once
    keys = [k for k in ("N", "D", "U") if k in x] or list(x)
    if keys and len(r) > 1:
        point = np.unique(np.column_stack([x[k] for k in keys]), axis=0, return_inverse=True)[1].ravel()
        sets = [point == p for p in np.unique(point) if (point == p).sum() > 1]
        if sets:
            ss = sum(float(((r[s] - r[s].mean()) ** 2).sum()) for s in sets)
            dof = sum(int(s.sum()) - 1 for s in sets)
            out.replicate_std, out.n_replicate_sets = float(np.sqrt(ss / dof)), len(sets)
    if noise_floor is not None:
        if not (np.isfinite(noise_floor) and noise_floor >= 0):
            from scalinglab.errors import ParameterError

            raise ParameterError(f"noise_floor must be a fraction >= 0, not {noise_floor}", "noise_floor")
        out.noise_floor, out.noise_floor_source = float(noise_floor), "given"
    elif np.isfinite(out.replicate_std):
        out.noise_floor = out.replicate_std
        out.noise_floor_source = f"the spread of {out.n_replicate_sets} sets of replicate runs"
    best_within = out.total_std
    for name in by:
        if name not in x or len(r) < 4:
            continue
        groups = _groups(x[name])
        F, p, share, within, k = _anova(r, groups)
        if k < 2 or not np.isfinite(within):
            continue
        test: dict[str, Any] = {"by": name, "groups": k, "F": F, "p": p, "share": share,
                                "within_std": within, "off": []}
        if p < P_MISFIT:
            best_within = min(best_within, within)
            se = within / np.sqrt(np.array([(groups == g).sum() for g in range(k)]))
            for g in range(k):
                m = groups == g
                mean = float(r[m].mean())
                if abs(mean) > 3 * se[g] and abs(mean) > (out.noise_floor or 0.0):
                    lo, hi = float(np.expm1(r[m].min())), float(np.expm1(r[m].max()))
                    test["off"].append({"group": _label(name, x[name][m]), "n": int(m.sum()),
                                        "mean": float(np.expm1(mean)), "range": [lo, hi]})
            if test["off"]:
                shown = "; ".join(f"runs at {o['group']} ({o['n']}) lie {100 * o['range'][0]:+.1f}% to "
                                  f"{100 * o['range'][1]:+.1f}% from the law" for o in test["off"][:3])
                out.warnings.append(
                    f"residuals are structured by {name}"
                    f"{' (tokens per parameter, D/N)' if name == 'M' else ''} (F test p = {p:.2g}; {share:.0%} of their "
                    f"spread lies between groups): {shown}. That is misfit of the law, not run-to-run "
                    "noise; predictions there carry it")
        out.tests.append(test)
    out.within_std = float(best_within)
    return out


def _label(name: str, values: np.ndarray) -> str:
    lo, hi = float(values.min()), float(values.max())
    return f"{name} = {lo:.3g}" if hi <= lo * 1.001 else f"{name} = {lo:.3g}-{hi:.3g}"


__all__ = ["ResidualStructure", "residual_structure"]
