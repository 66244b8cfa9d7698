"""A law is data and owns its maths: formula, parameters, bounds, provenance, and everything a fit,
a plan or a plot needs to know about it.

A :class:`Law` is the *family* (e.g. Chinchilla's ``L = E + A/N^alpha + B/D^beta``); a
:class:`LawInstance` is that family with numbers attached (published or fitted). Besides its
formula a law carries:

- ``parametrisation``: the fitting form of its logarithm (a class of
  :mod:`scalinglab.laws.logspace`, e.g. the LSE form of a sum of power terms);
- ``starts``: its default grid of starting points in those coordinates;
- ``identifiability``: the rule that says when a design of runs cannot pin it down;
- ``optimum``: its compute-optimal ``(N, D)`` under ``C = 6ND`` in closed form, when there is one;
- ``derived``: figures that follow from its parameters alone (e.g. the N_opt exponent);
- ``exponents``: which parameters are exponents (plotted and checked as such).

So fitting, planning and plotting read these fields and never ask which law they hold: a copy
of a law under another name (``law.renamed("mine")``) fits, plans and plots identically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from scalinglab.errors import ParameterError

if TYPE_CHECKING:
    from scalinglab.laws.logspace import LogModel

ArrayLike = float | np.ndarray
Formula = Callable[[Mapping[str, np.ndarray], Mapping[str, float]], np.ndarray]
#: ``(law, inputs) -> LogModel``: the law's logarithm in fitting coordinates, bound to data
Parametrisation = Callable[["Law", Mapping[str, np.ndarray]], "LogModel"]
#: ``(inputs, loss) -> (S, P)`` starting points in fitting coordinates
StartGrid = Callable[[Mapping[str, np.ndarray], np.ndarray], np.ndarray]
#: ``(params, C) -> (N_opt, D_opt)``; params may hold arrays of draws (vectorised)
Optimum = Callable[[Mapping[str, Any], Any], tuple[Any, Any]]
#: ``(law, inputs) -> None``; raises NotIdentifiable with the cause and a remedy
IdentifiabilityRule = Callable[["Law", Mapping[str, np.ndarray]], None]


@dataclass(frozen=True)
class Provenance:
    """Where a law or a set of numbers comes from, and where it may be trusted."""

    source: str
    url: str = ""
    units: str = ""
    valid_range: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "url": self.url,
            "units": self.units,
            "valid_range": {k: list(v) for k, v in self.valid_range.items()},
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Provenance | None:
        if not data:
            return None
        return cls(source=str(data.get("source", "")), url=str(data.get("url", "")),
                   units=str(data.get("units", "")),
                   valid_range={k: (float(v[0]), float(v[1]))
                                for k, v in (data.get("valid_range") or {}).items()},
                   notes=str(data.get("notes", "")))


@dataclass(frozen=True)
class DerivedFigure:
    """A figure computed from a law's parameters alone, e.g. ``beta / (alpha + beta)``.

    ``fn`` must broadcast over arrays of parameter draws; ``uses`` names the parameters it depends
    on, so a figure built on unidentified parameters is shown as such.
    """

    name: str
    fn: Callable[[Mapping[str, Any]], Any]
    uses: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class Law:
    """A parametric law ``output = fn(inputs; params)`` and the maths that comes with it.

    ``fn`` receives a mapping of input name -> array and a mapping of parameter name -> float (or
    arrays of draws), and must broadcast. ``bounds`` are the physically sensible ranges that
    fitting respects and identifiability checks compare against.
    """

    name: str
    formula: str
    inputs: tuple[str, ...]
    output: str
    param_names: tuple[str, ...]
    fn: Formula
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    provenance: Provenance | None = None
    parametrisation: Parametrisation | None = None
    starts: StartGrid | None = None
    identifiability: IdentifiabilityRule | None = None
    optimum: Optimum | None = None
    derived: tuple[DerivedFigure, ...] = ()
    exponents: tuple[str, ...] = ()
    #: how to rebuild a law that is not in the catalogue by name (a formula, a constraint of
    #: another law): what ``to_dict`` saves and ``laws.registry.law_from_dict`` reads
    definition: Mapping[str, Any] | None = None
    #: for a constrained law: what is tied, fixed and bounded (:mod:`scalinglab.laws.constrain`)
    constraint: Any = None

    def __call__(self, params: Mapping[str, Any], **inputs: ArrayLike) -> np.ndarray:
        missing = [k for k in self.inputs if k not in inputs]
        if missing:
            raise ParameterError(f"law {self.name!r} needs inputs {list(self.inputs)}; missing {missing}")
        absent = [p for p in self.param_names if p not in params]
        if absent:
            raise ParameterError(f"law {self.name!r} needs parameters {absent}")
        arrays = {k: np.asarray(inputs[k], dtype=float) for k in self.inputs}
        return self.fn(arrays, params)

    # -- what fitting needs -------------------------------------------------------------------

    @property
    def fittable(self) -> bool:
        return self.parametrisation is not None

    def log_model(self, inputs: Mapping[str, np.ndarray]) -> LogModel:
        """The law's logarithm in its fitting parametrisation, bound to the runs' inputs."""
        if self.parametrisation is None:
            raise ParameterError(f"law {self.name!r} ({self.formula}) declares no fitting "
                                 "parametrisation, so it can be evaluated but not fitted")
        return self.parametrisation(self, inputs)

    def starting_points(self, inputs: Mapping[str, np.ndarray], loss: np.ndarray) -> np.ndarray:
        """Default starts (S, P) in fitting coordinates; the law's own grid, else a generic one."""
        if self.starts is not None:
            return np.atleast_2d(np.asarray(self.starts(inputs, loss), dtype=float))
        from scalinglab.laws.starts import generic_starts

        return generic_starts(self, inputs, loss)

    def log_model_kinds(self) -> tuple[bool, ...]:
        """Which fitting coordinates are logarithms of the parameters (scales), known without data."""
        probe = {k: np.array([1.0, 2.0, 3.0]) for k in self.inputs}
        return tuple(self.log_model(probe).log_params)

    def check_identifiable(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Raise :class:`~scalinglab.errors.NotIdentifiable` when the design cannot pin the law."""
        from scalinglab.laws.identify import DistinctInputs

        (self.identifiability or DistinctInputs())(self, inputs)

    # -- constraints and user-defined laws ----------------------------------------------------

    @staticmethod
    def from_formula(formula: str, inputs: Any, params: Any = None, **options: Any) -> Law:
        """A law written as a formula, e.g. ``Law.from_formula("E + A*N**-alpha + B*D**-beta",
        inputs=("N", "D"))``, parsed safely and fitted like any catalogue law (see
        :func:`scalinglab.laws.formula.formula_law` for ``bounds``, ``log_params``, ...)."""
        from scalinglab.laws.formula import formula_law

        if isinstance(inputs, str):
            inputs = tuple(x.strip() for x in inputs.split(",") if x.strip())
        return formula_law(formula, inputs, params, law_type=Law, **options)

    def constrained(self, *, tie: Mapping[str, str] | None = None,
                    fix: Mapping[str, float] | None = None,
                    bounds: Mapping[str, tuple[float, float]] | None = None,
                    name: str | None = None) -> Law:
        """This law with parameters tied, fixed and bounded (:func:`scalinglab.laws.constrain.constrain`)."""
        from scalinglab.laws.constrain import constrain

        if not (tie or fix or bounds):
            return self if name is None else self.renamed(name)
        return constrain(self, tie=tie, fix=fix, bounds=bounds, name=name)

    def tied(self, name: str | None = None, **tie: str) -> Law:
        """``law.tied(beta="alpha")``: beta follows alpha (one fewer parameter)."""
        return self.constrained(tie=tie, name=name)

    def fixed(self, name: str | None = None, **fix: float) -> Law:
        """``law.fixed(E=1.69)``: E is held at 1.69, the rest is fitted."""
        return self.constrained(fix=fix, name=name)

    def bounded(self, name: str | None = None, **bounds: tuple[float, float]) -> Law:
        """``law.bounded(alpha=(0.1, 1.0))``: the fit keeps alpha inside [0.1, 1]."""
        return self.constrained(bounds=bounds, name=name)

    # -- identity --------------------------------------------------------------------------

    def renamed(self, name: str, **changes: Any) -> Law:
        """The same law under another name (and any other field changed)."""
        return replace(self, name=name, **changes)

    def with_params(
        self, params: Mapping[str, float], provenance: Provenance | None = None, label: str = ""
    ) -> LawInstance:
        return LawInstance(
            law=self,
            params={k: float(params[k]) for k in self.param_names},
            provenance=provenance or self.provenance,
            label=label or self.name,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "formula": self.formula, "inputs": list(self.inputs),
                "output": self.output, "params": list(self.param_names),
                "bounds": {k: list(v) for k, v in self.bounds.items()},
                "provenance": self.provenance.to_dict() if self.provenance else None,
                **({"definition": dict(self.definition)} if self.definition else {})}

    def __repr__(self) -> str:
        return f"Law({self.name!r}, {self.formula!r})"


@dataclass(frozen=True)
class LawInstance:
    """A law with numbers attached: published, or the point estimate of a fit."""

    law: Law
    params: Mapping[str, float]
    provenance: Provenance | None = None
    label: str = ""

    def predict(self, **inputs: ArrayLike) -> np.ndarray:
        return self.law(self.params, **inputs)

    def replace(self, **changes: Any) -> LawInstance:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "law": self.law.name,
            "label": self.label or self.law.name,
            "formula": self.law.formula,
            "params": dict(self.params),
            "provenance": self.provenance.to_dict() if self.provenance else None,
        }

    def __repr__(self) -> str:
        ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"LawInstance({self.label or self.law.name!r}: {ps})"
