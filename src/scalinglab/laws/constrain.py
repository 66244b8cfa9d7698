"""Constrained laws: tied, fixed and bounded parameters as a reparametrisation of the fit.

``CHINCHILLA.tied(beta="alpha")`` is a new :class:`~scalinglab.laws.base.Law` whose parameters
are ``(E, A, B, alpha)``: its formula, optimum and derived figures are the original's with
``beta = alpha`` substituted, and its fitting parametrisation wraps the original's. The
optimiser works in *free* coordinates ``phi``; the wrapped model sees the full ``theta``:

- a fixed parameter is a constant of ``theta`` (its fitting coordinate, e.g. ``log E``);
- a tied parameter copies the coordinate of the one it follows (same kind of coordinate:
  an exponent can follow an exponent, a scale a scale), so the gradient is the sum of both;
- a bounded parameter maps ``phi`` into its range smoothly (a logistic between two finite
  bounds, a softplus above a lower or below an upper one), so the unconstrained L-BFGS respects
  the bounds and the bootstrap draws stay inside them.

Any law with a fitting parametrisation can be constrained, nothing here knows which law it
holds, and a constrained law can be constrained again. ``Law.to_dict`` records the constraint,
so a saved fit loads back (:func:`scalinglab.laws.registry.law_from_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from scalinglab.errors import ParameterError
from scalinglab.laws.logspace import to_params

if TYPE_CHECKING:
    from scalinglab.laws.base import DerivedFigure, Law

#: a logistic coordinate is clipped this far inside (0, 1) when a start is mapped back
_EDGE = 1e-6


@dataclass(frozen=True)
class Constraint:
    """What is tied, fixed and bounded, in the base law's parameter names (natural units)."""

    base: Law
    #: dependent -> the parameter it follows
    tie: Mapping[str, str] = field(default_factory=dict)
    fix: Mapping[str, float] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def free(self) -> tuple[str, ...]:
        return tuple(p for p in self.base.param_names if p not in self.tie and p not in self.fix)

    def expand(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Free parameters -> all of the base law's (broadcasts over arrays of draws)."""
        full: dict[str, Any] = {}
        for p in self.base.param_names:
            if p in self.fix:
                full[p] = self.fix[p]
            elif p in self.tie:
                full[p] = params[self.tie[p]]
            else:
                full[p] = params[p]
        return full

    def describe(self) -> str:
        parts = [f"{k} = {v}" for k, v in self.tie.items()]
        parts += [f"{k} = {v:g} (fixed)" for k, v in self.fix.items()]
        parts += [f"{k} in [{lo:g}, {hi:g}]" for k, (lo, hi) in self.bounds.items()]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "constrained", "base": self.base.to_dict(), "tie": dict(self.tie),
                "fix": {k: float(v) for k, v in self.fix.items()},
                "bounds": {k: [float(lo), float(hi)] for k, (lo, hi) in self.bounds.items()}}


def _number(value: Any, what: str, param: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # fix={"E": "abc"} was a bare ValueError
        raise ParameterError(f"{what} must be a number, not {value!r}", param) from None


def _check(base: Law, tie: Mapping[str, str], fix: Mapping[str, float],
           bounds: Mapping[str, tuple[float, float]]) -> tuple[dict[str, str], dict[str, float],
                                                                 dict[str, tuple[float, float]]]:
    from scalinglab.values import as_mapping

    tie = as_mapping(tie, "tie", "{'beta': 'alpha'}")
    fix = as_mapping(fix, "fix", "{'E': 1.69}")
    bounds = as_mapping(bounds, "bounds", "{'alpha': (0.1, 1.0)}")
    names = set(base.param_names)
    for what, keys, param in (("tie", [*tie, *tie.values()], "tie"), ("fix", list(fix), "fix"),
                              ("bounds", list(bounds), "bounds")):
        bad = [k for k in keys if k not in names]
        if bad:
            from scalinglab.errors import did_you_mean

            raise ParameterError(f"{what} names {bad}, which the {base.name} law does not have"
                                 f"{did_you_mean(bad[0], list(names))}; its parameters are "
                                 f"{list(base.param_names)}", param)
    tie = {str(k): str(v) for k, v in tie.items()}
    for k, v in list(tie.items()):  # follow chains: gamma -> beta -> alpha
        seen = {k}
        while v in tie:
            if v in seen:
                raise ParameterError(f"tie {k}={v} goes round in a circle", "tie")
            seen.add(v)
            v = tie[v]
        if v == k:
            raise ParameterError(f"tie {k}={k} ties a parameter to itself", "tie")
        tie[k] = v
    fix = {str(k): _number(v, f"fix {k}", "fix") for k, v in fix.items()}
    for k in fix:
        if not np.isfinite(fix[k]):
            raise ParameterError(f"fix {k} must be a finite number, not {fix[k]}", "fix")
    both = set(tie) & set(fix) or set(tie.values()) & set(fix)
    if both:
        raise ParameterError(f"{sorted(both)} cannot be both tied and fixed (fix the one it "
                             "follows instead)", "tie", "fix")
    for k, v in bounds.items():
        if isinstance(v, (str, bytes)) or not hasattr(v, "__len__") or len(v) != 2:
            raise ParameterError(f"bounds of {k} must be a pair (lo, hi), not {v!r}", "bounds")
    bounds = {str(k): (_number(v[0], f"bounds of {k}", "bounds"), _number(v[1], f"bounds of {k}", "bounds"))
              for k, v in bounds.items()}
    for k, (lo, hi) in bounds.items():
        if k in tie or k in fix:
            raise ParameterError(f"bounds on {k}, which is tied or fixed: bound the parameter it "
                                 "follows", "bounds")
        if not lo < hi:
            raise ParameterError(f"bounds of {k} must have lo < hi, not [{lo:g}, {hi:g}]", "bounds")
    if not [p for p in base.param_names if p not in tie and p not in fix]:
        raise ParameterError(f"every parameter of the {base.name} law is fixed or tied: nothing "
                             "is left to fit", "fix")
    return tie, fix, bounds


def constrain(
    base: Law,
    *,
    tie: Mapping[str, str] | None = None,
    fix: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    name: str | None = None,
) -> Law:
    """``base`` with parameters tied (``{"beta": "alpha"}``: beta follows alpha), fixed
    (``{"E": 1.69}``) and bounded (``{"alpha": (0.1, 1.0)}``), as a new Law."""

    tie, fix, bounds = _check(base, tie or {}, fix or {}, bounds or {})
    c = Constraint(base, tie, fix, bounds)
    if base.parametrisation is not None:
        log_params = dict(zip(base.param_names, base.log_model_kinds(), strict=True))
        for k, v in tie.items():
            if log_params[k] != log_params[v]:
                raise ParameterError(f"cannot tie {k} to {v}: one is fitted as a logarithm (a "
                                     "scale), the other as it is (an exponent)", "tie")
        for k, v in fix.items():
            if log_params[k] and v <= 0:
                raise ParameterError(f"fix {k} must be positive (it is a scale), not {v:g}", "fix")
        for k, (lo, _) in bounds.items():
            if log_params[k] and lo < 0:
                raise ParameterError(f"bounds of {k} must be >= 0 (it is a scale)", "bounds")
    free = c.free
    merged_bounds = {k: v for k, v in base.bounds.items() if k in free} | dict(bounds)
    # bounds are a fitting choice, reported in the notes; only ties and fixed values change which
    # law this is, so only they are named (a name with "[Ep in [0.001, 1e+09]]" read as garbage)
    label = name or (f"{base.name}[{Constraint(base, tie, fix, {}).describe()}]" if tie or fix
                     else base.name)
    return type(base)(  # the base law's class: this layer builds on laws.base, never imports it
        name=label,
        formula=f"{base.formula}; {c.describe()}",
        inputs=base.inputs,
        output=base.output,
        param_names=free,
        fn=_Fn(c),
        bounds=merged_bounds,
        provenance=base.provenance,
        parametrisation=None if base.parametrisation is None else _Parametrisation(c),
        starts=None if base.parametrisation is None else _Starts(c),
        identifiability=base.identifiability,
        optimum=None if base.optimum is None else _Optimum(c),
        derived=tuple(_derived(c, fig) for fig in base.derived),
        exponents=tuple(p for p in base.exponents if p in free),
        definition=c.to_dict(),
        constraint=c,
    )


# -- the pieces of a constrained law, as picklable callables -------------------------------------


@dataclass(frozen=True)
class _Fn:
    c: Constraint

    def __call__(self, x: Mapping[str, np.ndarray], p: Mapping[str, Any]) -> np.ndarray:
        return self.c.base.fn(x, self.c.expand(p))


@dataclass(frozen=True)
class _Optimum:
    c: Constraint

    def __call__(self, params: Mapping[str, Any], C: Any) -> tuple[Any, Any]:
        assert self.c.base.optimum is not None
        return self.c.base.optimum(self.c.expand(params), C)


@dataclass(frozen=True)
class _FigureFn:
    c: Constraint
    fn: Any

    def __call__(self, params: Mapping[str, Any]) -> Any:
        return self.fn(self.c.expand(params))


def _derived(c: Constraint, fig: DerivedFigure) -> DerivedFigure:

    uses = []
    for u in fig.uses:
        u = c.tie.get(u, u)
        if u not in c.fix and u not in uses:
            uses.append(u)
    return type(fig)(fig.name, _FigureFn(c, fig.fn), tuple(uses), fig.description)


@dataclass(frozen=True)
class _Parametrisation:
    c: Constraint

    def __call__(self, law: Law, inputs: Mapping[str, np.ndarray]) -> ConstrainedLog:
        return ConstrainedLog(law, self.c, self.c.base.log_model(inputs))


@dataclass(frozen=True)
class _Starts:
    """The base law's starts, projected onto the free coordinates (duplicates dropped)."""

    c: Constraint

    def __call__(self, inputs: Mapping[str, np.ndarray], loss: np.ndarray) -> np.ndarray:
        base = self.c.base
        full = base.starting_points(inputs, loss)
        model = base.log_model(inputs)
        keep = [base.param_names.index(p) for p in self.c.free]
        theta = np.unique(full[:, keep], axis=0)
        return ConstrainedLog.bounded_from_theta(self.c, model, theta)


class ConstrainedLog:
    """The base law's log model seen through the constraint: ``phi`` (free coordinates) ->
    ``theta`` (the base's), forward and gradient."""

    def __init__(self, law: Law, c: Constraint, inner: Any) -> None:
        self.law = law
        self.c = c
        self.inner = inner
        names = c.base.param_names
        kinds = dict(zip(names, inner.log_params, strict=True))
        self.free = c.free
        self.log_params = tuple(kinds[p] for p in self.free)
        self.free_idx = np.array([names.index(p) for p in self.free])
        #: for each base coordinate: the free coordinate it copies, or -1 where fixed
        self.source = np.array([-1 if p in c.fix else self.free.index(c.tie.get(p, p)) for p in names])
        self.const = np.array([(np.log(c.fix[p]) if kinds[p] else c.fix[p]) if p in c.fix else 0.0
                               for p in names])
        self.bounds = [_coordinate_bounds(c.bounds.get(p), kinds[p]) for p in self.free]

    # -- coordinates -------------------------------------------------------------------------

    def _free_theta(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Free coordinates of the base (bounds applied) and d theta / d phi, both (S, F)."""
        u = np.array(phi, dtype=float, copy=True)
        du = np.ones_like(u)
        with np.errstate(all="ignore"):
            for j, b in enumerate(self.bounds):
                if b is None:
                    continue
                lo, hi = b
                x = phi[:, j]
                if np.isfinite(lo) and np.isfinite(hi):
                    s = 1.0 / (1.0 + np.exp(-x))
                    u[:, j], du[:, j] = lo + (hi - lo) * s, (hi - lo) * s * (1 - s)
                elif np.isfinite(lo):
                    u[:, j], du[:, j] = lo + np.logaddexp(0.0, x), 1.0 / (1.0 + np.exp(-x))
                else:
                    u[:, j], du[:, j] = hi - np.logaddexp(0.0, -x), 1.0 / (1.0 + np.exp(x))
        return u, du

    def theta(self, phi: np.ndarray) -> np.ndarray:
        """Base fitting coordinates (S, P_base) for free coordinates ``phi`` (S, F)."""
        phi = np.atleast_2d(phi)
        u, _ = self._free_theta(phi)
        full = np.broadcast_to(self.const, (len(phi), len(self.const))).copy()
        copy = self.source >= 0
        full[:, copy] = u[:, self.source[copy]]
        return full

    def to_params(self, phi: np.ndarray) -> np.ndarray:
        """Free coordinates -> the constrained law's parameters (natural units)."""
        phi = np.asarray(phi, dtype=float)
        u, _ = self._free_theta(np.atleast_2d(phi))
        out = to_params(self.log_params, u)
        return out.reshape(phi.shape)

    @staticmethod
    def bounded_from_theta(c: Constraint, inner: Any, theta_free: np.ndarray) -> np.ndarray:
        """Free base coordinates -> ``phi`` (the inverse of the bound maps, clipped inside)."""
        kinds = dict(zip(c.base.param_names, inner.log_params, strict=True))
        phi = np.array(theta_free, dtype=float, copy=True)
        for j, p in enumerate(c.free):
            b = _coordinate_bounds(c.bounds.get(p), kinds[p])
            if b is None:
                continue
            lo, hi = b
            x = phi[:, j]
            with np.errstate(all="ignore"):
                if np.isfinite(lo) and np.isfinite(hi):
                    s = np.clip((x - lo) / (hi - lo), _EDGE, 1 - _EDGE)
                    phi[:, j] = np.log(s) - np.log1p(-s)
                elif np.isfinite(lo):
                    phi[:, j] = _inverse_softplus(np.maximum(x - lo, 1e-9))
                else:
                    phi[:, j] = -_inverse_softplus(np.maximum(hi - x, 1e-9))
        if any(b is not None for b in (c.bounds.get(p) for p in c.free)):
            phi = np.unique(phi, axis=0)
        return phi

    # -- the LogModel protocol ---------------------------------------------------------------

    def prepare(self, phi: np.ndarray) -> tuple[Any, np.ndarray]:
        phi = np.atleast_2d(phi)
        _, du = self._free_theta(phi)
        return self.inner.prepare(self.theta(phi)), du

    def forward(self, phi: np.ndarray, offset: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        return self.forward_rows(self.prepare(phi), slice(None), offset)

    def forward_rows(self, prep: tuple[Any, np.ndarray], rows: slice,
                     offset: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        inner_prep, du = prep
        lp, ctx = self.inner.forward_rows(inner_prep, rows, offset)
        return lp, (ctx, du[rows])

    def vjp(self, ctx: tuple[Any, np.ndarray], weights: np.ndarray,
            out: np.ndarray | None = None) -> np.ndarray:
        inner_ctx, du = ctx
        g = self.inner.vjp(inner_ctx, weights)
        if out is None:
            out = np.empty((g.shape[0], len(self.free)))
        out[...] = 0.0
        for i, src in enumerate(self.source):
            if src >= 0:
                out[:, src] += g[:, i]
        out *= du
        return out


def _coordinate_bounds(b: tuple[float, float] | None, is_log: bool) -> tuple[float, float] | None:
    """Natural bounds -> bounds of the fitting coordinate (log for a scale; 0 is no bound)."""
    if b is None:
        return None
    lo, hi = b
    if is_log:
        lo = np.log(lo) if lo > 0 else -np.inf
        hi = np.log(hi) if np.isfinite(hi) else np.inf
    if not np.isfinite(lo) and not np.isfinite(hi):
        return None
    return float(lo), float(hi)


def _inverse_softplus(y: np.ndarray) -> np.ndarray:
    return np.where(y > 30, y, np.log(np.expm1(np.minimum(y, 30))))


def at_bounds(law: Law, params: Mapping[str, float], rel: float = 1e-3) -> list[str]:
    """Parameters of a constrained law whose estimate sits at an enforced bound (the constraint,
    not the data, decides them)."""
    c = law.constraint
    if c is None:
        return []
    return near_bounds(c.bounds, params, rel)


def near_bounds(bounds: Mapping[str, tuple[float, float]], params: Mapping[str, float],
                rel: float = 1e-3) -> list[str]:
    """Estimates within ``rel`` of the width of their bounds from an edge. Positive bounds that
    span decades are measured in decades: with [1e-3, 1e9], 66 is 4.8 decades from the lower
    edge, not "within 1e6 of it" (a linear width made every such coefficient look pinned)."""
    out = []
    for p, (lo, hi) in bounds.items():
        if p not in params:
            continue
        v = params[p]
        logspan = lo > 0 and np.isfinite(hi) and hi / lo > 100.0
        width = (hi - lo) if np.isfinite(hi - lo) else max(abs(v), 1.0)
        for edge in (lo, hi):
            if not np.isfinite(edge):
                continue
            if logspan:
                near = v > 0 and abs(np.log(v / edge)) <= rel * np.log(hi / lo)
            else:
                near = abs(v - edge) <= rel * width
            if near:
                out.append(f"{p} = {v:.4g} sits at its bound {edge:g}")
    return out
