"""Is a compute column what the tool assumes it is? The 6ND consistency check.

scalinglab turns N and D into compute as ``C = 6ND`` wherever it needs one (the optimum at a
budget, Approach 2's ``D_opt = C / (6 N_opt)``, a plan). A budget or C column given with the runs
may follow another convention: Marin's budgets are 0.93-1.35x 6ND (attention FLOPs, embedding
parameters), a column of parameters in millions makes C 1e6x off. Fitted silently, such a column
skews whatever mixes the two: Approach 1 reads the runs' D while Approach 2 derives D from C, so
their D exponents part by the trend of the factor with compute.

:func:`check_flops` measures ``C / (6 N D)`` per run and says, naming the column and the factor,
when it is not 1 (median off by more than 5%, or a run off by more than 15%). A user who knows
the convention passes it (``flop_convention``: ``"6ND"``, the default; a number, the expected
factor to 6ND, e.g. 1.2; or ``"given"`` to take the column as it is): the check then only notes
the factor.

The rule lives with the runs (not with the fits) so that ``scalinglab import`` applies the very
same rule to a compute or budget column given beside N and D, as ``fit`` does;
:mod:`scalinglab.fit.consistency` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalinglab.errors import ParameterError

#: the median factor may be this far from the expected one (5%) ...
MEDIAN_TOL = 0.05
#: ... and no run further than this (15%) before the check speaks
ROW_TOL = 0.15


def parse_convention(value: Any) -> float | None:
    """``None``/``"6ND"`` -> 1.0; ``"given"``/``"accept"`` -> None (take the column as given); a
    positive number (or ``"1.3x"``) -> that factor to 6ND."""
    if value is None:
        return 1.0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "6nd"):
            return 1.0
        if text in ("given", "accept", "as-is"):
            return None
        text = text.removesuffix("x").removesuffix("*6nd").strip()
        try:
            value = float(text)
        except ValueError:
            raise ParameterError(f"flop_convention must be 6ND, given, or a factor to 6ND such as "
                                 f"1.2, not {value!r}", "flop_convention") from None
    factor = float(value)
    if not (np.isfinite(factor) and factor > 0):
        raise ParameterError(f"flop_convention must be a positive factor, not {value!r}",
                             "flop_convention")
    return factor


@dataclass
class FlopCheck:
    """``C / 6ND`` over the runs: its median ``factor``, range, and trend with compute
    (``slope``: d ln(C/6ND) / d ln C), with what the check says about it."""

    column: str
    n: int = 0
    factor: float = float("nan")
    lo: float = float("nan")
    hi: float = float("nan")
    slope: float = float("nan")
    expected: float | None = 1.0
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.warnings

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "n": self.n, "factor": self.factor, "range": [self.lo, self.hi],
                "slope": self.slope, "expected": self.expected}


def _units_hint(factor: float) -> str:
    decades = np.log10(factor)
    k = round(decades / 3)
    if k and abs(decades - 3 * k) < 0.1:
        # C/6ND near 1e6: N (or D) is 1e6 too small, the usual slip being parameters in millions
        guess = {2: "parameters in millions?", 1: "parameters in thousands?",
                 3: "parameters in billions?"}.get(k, "")
        guess = f"{guess} " if guess else ""
        return (f"; a factor near 1e{3 * k:d} suggests {guess}(N or D in other units, e.g. "
                f"{'millions' if abs(k) == 2 else 'thousands' if abs(k) == 1 else 'billions'}, "
                "or C in units of a power of ten)")
    return ""


#: tokens per parameter outside this range in most runs: N and D are not both in units of one
#: (trained language models sit between about 1 and 1e4; parameters in millions beside tokens
#: in billions give 1e3x too few, parameters in billions beside raw tokens 1e9x too many)
PLAUSIBLE_TPP = (0.1, 1e6)


def units_warnings(N: Any = None, D: Any = None) -> list[str]:
    """What suggests ``N`` (parameters) or ``D`` (tokens) are not in units of one: every N
    below 1,000 or every D below 10,000 (the demo's byte-level models, the smallest trained
    anywhere here, have N ~ 2e3 and D ~ 2e5), or tokens per parameter implausible in most runs.
    A fit of such runs is the same law with A or B rescaled, so it goes through silently; the
    optimum at a budget, a plan or a point read on the law are then off by the factor."""
    out = []
    n = None if N is None else np.asarray(N, dtype=float).ravel()
    d = None if D is None else np.asarray(D, dtype=float).ravel()
    if n is not None and n.size and np.nanmax(n) < 1e3:
        out.append(f"every N is below 1,000 (largest {np.nanmax(n):.4g}): is N in millions or "
                   "billions? scale it (--units N=1e6)")
    if d is not None and d.size and np.nanmax(d) < 1e4:
        out.append(f"every D is below 10,000 tokens (largest {np.nanmax(d):.4g}): is D in millions "
                   "or billions? scale it (--units D=1e9)")
    if n is not None and d is not None and n.size and n.size == d.size:
        with np.errstate(all="ignore"):
            tpp = float(np.nanmedian(d / n))
        lo, hi = PLAUSIBLE_TPP
        if np.isfinite(tpp) and not lo <= tpp <= hi:
            out.append(f"tokens per parameter D/N is {tpp:.3g} in the median run, outside "
                       f"[{lo:g}, {hi:g}]: are N and D in different units (e.g. parameters in "
                       "millions, tokens in billions: --units N=1e6,D=1e9)?")
    return out


def check_flops(N: Any, D: Any, C: Any, *, column: str = "C", flop_convention: Any = None,
                what: str = "compute") -> FlopCheck:
    """Compare a given compute column ``C`` with ``6 N D`` run by run.

    ``column`` names the column in messages (the user's name for it), ``what`` what it is
    (``"compute"``, ``"budget"``). Returns a :class:`FlopCheck`; its ``warnings`` are empty when
    the column agrees with the convention."""
    expected = parse_convention(flop_convention)
    n_, d_, c_ = (np.asarray(v, dtype=float).ravel() for v in (N, D, C))
    with np.errstate(all="ignore"):
        ratio = c_ / (6.0 * n_ * d_)
    ok = np.isfinite(ratio) & (ratio > 0) & np.isfinite(c_) & (c_ > 0)
    out = FlopCheck(column=column, n=int(ok.sum()), expected=expected)
    if out.n == 0:
        return out
    r, c = ratio[ok], c_[ok]
    out.factor, out.lo, out.hi = float(np.median(r)), float(r.min()), float(r.max())
    if out.n >= 3 and np.ptp(np.log(c)) > 0:
        out.slope = float(np.polyfit(np.log(c), np.log(r), 1)[0])
    span = f"{out.lo:.3g}-{out.hi:.3g}x" if out.hi / out.lo > 1.01 else f"{out.factor:.3g}x"
    trend = (f", growing as C^{out.slope:.3g}" if np.isfinite(out.slope) and abs(out.slope) >= 0.01
             else "")
    desc = f"{what} column {column!r} is {span} 6ND (median {out.factor:.3g}x over {out.n} runs{trend})"
    if expected is None:
        out.notes.append(f"{desc}; taken as given (flop convention 'given')")
        return out
    rel = r / expected
    if abs(np.log(np.median(rel))) <= np.log1p(MEDIAN_TOL) and np.all(np.abs(np.log(rel)) <= np.log1p(ROW_TOL)):
        if expected != 1.0:
            out.notes.append(f"{desc}, as the flop convention {expected:g}x 6ND says")
        return out
    conv = "6ND" if expected == 1.0 else f"the flop convention {expected:g}x 6ND"
    out.warnings.append(
        f"{desc}, not {conv}{_units_hint(out.factor / expected)}: figures that turn N and D into "
        f"compute (the optimum at a budget, Approach 2's D_opt = C/(6 N_opt), a plan) use 6ND, so "
        f"they and this column disagree by that factor; check the column, or accept it "
        f"(flop_convention={out.factor:.3g}, or 'given'; CLI --flop-convention)")
    return out


def d_exponent_note(check: FlopCheck, b1: float | None, b2: float | None) -> str | None:
    """Why Approaches 1 and 2 give different D exponents when C is not 6ND: Approach 1 reads
    the runs' D, Approach 2 derives ``D_opt = C / (6 N_opt)``; with ``C = f(C) 6ND`` and
    ``f ∝ C^s`` the two part by about ``s``."""
    if b1 is None or b2 is None or not np.isfinite(check.slope) or check.n == 0:
        return None
    if abs(check.factor - 1.0) <= MEDIAN_TOL and abs(check.slope) < 0.01:
        return None
    return (f"why the D exponents differ ({b2 - b1:+.3g}, Approach 2 minus 1): Approach 1 uses the "
            f"runs' D, Approach 2 derives D_opt = C/(6 N_opt) from the {check.column!r} column, "
            f"which is {check.factor:.3g}x 6ND and grows as C^{check.slope:.3g}; that trend alone "
            f"moves Approach 2's D exponent by about {check.slope:+.3g} "
            "against Approach 1's")


__all__ = ["FlopCheck", "check_flops", "d_exponent_note", "parse_convention"]
