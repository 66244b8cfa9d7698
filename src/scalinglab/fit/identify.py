"""Which fitted parameters the runs do not identify: the rule every fit applies to its estimate
and bootstrap draws (:func:`scalinglab.fit.loss.fit_arrays`, the linear-scale fits and the joint
fit of :mod:`scalinglab.fit.lsq`), in one place so that both can use it without importing each
other."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

import numpy as np

from scalinglab.stats import percentile_interval

#: a scale parameter whose interval spans more than this many decades is not identified
MAX_DECADES = 3.0
#: an exponent whose interval is wider than this is not identified
MAX_EXPONENT_WIDTH = 1.0
#: the warning that names what the runs do not pin down, and how it ends
UNIDENTIFIED = "not identified by these runs: "
UNKNOWN = ". Treat these parameters (and figures derived from them) as unknown."


class Parametrised(Protocol):
    """What the identifiability checks read of a fit's model: its parameter names (the draws'
    columns, in order) and their plausible ranges. A :class:`Law` is one; so is a joint fit
    (:class:`scalinglab.fit.lsq.JointFit`, shared and per-group parameters), which has no law."""

    @property
    def param_names(self) -> Sequence[str]: ...

    @property
    def bounds(self) -> Mapping[str, tuple[float, float]]: ...


def _soft_checks(
    law: Parametrised, log_params: Sequence[bool], params: Mapping[str, float], boot: np.ndarray | None,
    level: float, only: Collection[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Warnings and the parameters the data do not pin down (estimate or draws at the bounds,
    interval spanning decades); the numbers are kept but marked, not presented as meaningful.
    ``only``: check just these parameters (the others are held, or checked elsewhere)."""
    warnings: list[str] = []
    flagged: dict[str, str] = {}
    for i, name in enumerate(law.param_names):
        if only is not None and name not in only:
            continue
        lo_b, hi_b = law.bounds.get(name, (-np.inf, np.inf))
        v = params[name]
        if not lo_b <= v <= hi_b:
            flagged[name] = f"the estimate {name} = {v:.4g} is outside the plausible range [{lo_b:g}, {hi_b:g}]"
            continue
        if boot is None or not len(boot):
            continue
        fitted = boot[:, i][~np.isnan(boot[:, i])]
        col = fitted[np.isfinite(fitted)]
        if not len(col):
            if len(fitted):
                flagged[name] = f"every bootstrap fit sends {name} to {fitted[0]:g}"
            continue
        diverged = float(np.mean(np.isinf(fitted))) if len(fitted) else 0.0
        outside = float(np.mean((col < lo_b) | (col > hi_b)))
        lo, hi = (float(x) for x in percentile_interval(col, level))
        if diverged > 0.1:
            # a draw at inf is outside any range; the interval of the few finite draws left
            # (one among 30 gave "0 decades") says nothing about the spread
            flagged[name] = f"{diverged:.0%} of bootstrap fits send {name} to infinity"
        elif outside > 0.1:
            flagged[name] = f"{outside:.0%} of bootstrap fits put {name} outside [{lo_b:g}, {hi_b:g}]"
        elif log_params[i] and lo > 0 and np.log10(hi / lo) > MAX_DECADES:
            flagged[name] = f"the {level:.0%} interval of {name} spans {np.log10(hi / lo):.1f} decades"
        elif log_params[i] and lo <= 0:
            flagged[name] = f"the {level:.0%} interval of {name} reaches 0"
        elif not log_params[i] and hi - lo > MAX_EXPONENT_WIDTH:
            flagged[name] = f"the {level:.0%} interval of {name} is [{lo:.3g}, {hi:.3g}]"
    if boot is not None and len(boot):
        failed = float(np.mean(~np.all(np.isfinite(boot), axis=1)))
        gone = np.any(np.isinf(boot), axis=1) & ~np.any(np.isnan(boot), axis=1)
        if failed > 0.05 and gone.any():
            names = [n for j, n in enumerate(law.param_names) if np.isinf(boot[gone, j]).any()]
            warnings.append(f"{failed:.0%} of bootstrap resamples could not be fitted "
                            f"({int(gone.sum())} of {len(boot)} diverged: {', '.join(names)} at "
                            "infinity)")
        elif failed > 0.05:
            warnings.append(f"{failed:.0%} of bootstrap resamples could not be fitted")
    if flagged:
        warnings.append(UNIDENTIFIED + "; ".join(flagged.values()) + UNKNOWN)
    return warnings, list(flagged)


def _linear_soft_checks(law: Parametrised, params: Mapping[str, float], draws: np.ndarray | None, level: float,
                        linear: set[str]) -> tuple[list[str], list[str]]:
    """:func:`_soft_checks` for a linear-scale fit: a coefficient or offset (a linear parameter,
    of any sign and any magnitude) is unidentified when its interval is wider than twice its
    value (its sign is not pinned), not when it is wider than 1 as an exponent would be; and one
    whose bounds hold it to one sign by :func:`_held_magnitude`'s rule (the decades rule of a
    scale parameter)."""
    warnings, flagged = _soft_checks(law, [False] * len(law.param_names), params, draws, level)
    if draws is None or not len(draws):
        return warnings, flagged
    keep = []
    for i, name in enumerate(law.param_names):
        if name not in flagged:
            continue
        col = draws[:, i][np.isfinite(draws[:, i])]
        if name in linear and len(col):
            lo, hi = (float(x) for x in percentile_interval(col, level))
            lo_b, hi_b = law.bounds.get(name, (-np.inf, np.inf))
            inside = lo_b <= params[name] <= hi_b and np.mean((col < lo_b) | (col > hi_b)) <= 0.1
            if inside and hi - lo <= 2.0 * abs(params[name]):
                continue
        keep.append(name)
    if len(keep) != len(flagged):
        warnings = [w for w in warnings if not w.startswith(UNIDENTIFIED)]
        if keep:
            warnings.append(UNIDENTIFIED + ", ".join(keep) + UNKNOWN)
    held = _held_magnitude(law, draws, level, [n for n in law.param_names if n in linear and n not in keep])
    if held:
        said = next((w for w in warnings if w.startswith(UNIDENTIFIED)), None)
        warnings = [w for w in warnings if w is not said]
        before = [] if said is None else [said[len(UNIDENTIFIED):-len(UNKNOWN)]]
        warnings.append(UNIDENTIFIED + "; ".join([*before, *held.values()]) + UNKNOWN)
        keep = [n for n in law.param_names if n in keep or n in held]
    return warnings, keep


def _held_magnitude(law: Parametrised, draws: np.ndarray, level: float, names: Collection[str]) -> dict[str, str]:
    """Of ``names`` (linear parameters), those whose bounds hold them to one sign (a bound at 0:
    a coefficient kept >= 0, a term that may vanish) and whose size the draws do not pin, each
    with why. Such a parameter is a magnitude: its draws cannot cross 0, they pile up at the
    bound instead, so "the interval keeps its sign" (the test :func:`_linear_soft_checks` applies
    to a free coefficient) says nothing, and the interval's width in the target's units (the
    exponent's test) depends on the units. It is judged as the log-scale fits judge a scale
    parameter: not identified where its interval reaches the bound while the draws also leave it
    (the runs cannot tell the term from none: B*x held >= 0, truth 0, 80 runs, estimate 0 with
    interval [0, 1.7e-4]) or spans more than :data:`MAX_DECADES` decades. Draws all at the bound
    agree on 0 (the enforced-bound warning says the bound decided it), and are not flagged here."""
    out: dict[str, str] = {}
    for i, name in enumerate(law.param_names):
        if name not in names:
            continue
        lo_b, hi_b = law.bounds.get(name, (-np.inf, np.inf))
        if lo_b != 0 and hi_b != 0:
            continue
        col = draws[:, i][np.isfinite(draws[:, i])]
        if not len(col):
            continue
        size = col if lo_b == 0 else -col  # held <= 0: its size is -value
        lo, hi = (float(x) for x in percentile_interval(size, level))
        held = f"{name} (held {'>=' if lo_b == 0 else '<='} 0)"
        if lo <= 0 < hi:
            out[name] = (f"the {level:.0%} interval of {held} reaches 0: the runs bound its size only from above "
                         f"({hi:.3g})")
        elif lo > 0 and np.log10(hi / lo) > MAX_DECADES:
            out[name] = f"the {level:.0%} interval of {held} spans {np.log10(hi / lo):.1f} decades"
    return out
