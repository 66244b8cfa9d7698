"""A law is data: formula, parameters, bounds and provenance, shared by fitting, planning and plots.

A :class:`Law` is the *family* (e.g. Chinchilla's ``L = E + A/N^alpha + B/D^beta``); a
:class:`LawInstance` is that family with numbers attached (published or fitted). Fitting code reads
``Law.param_names``/``Law.bounds``, planners call ``LawInstance.predict``, plotting reads
``Law.formula`` and ``Provenance`` for labels, so nothing is re-declared per use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

ArrayLike = float | np.ndarray
Formula = Callable[[Mapping[str, np.ndarray], Mapping[str, float]], np.ndarray]


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


@dataclass(frozen=True)
class Law:
    """A parametric law ``output = fn(inputs; params)``.

    ``fn`` receives a mapping of input name -> array and a mapping of parameter name -> float,
    and must broadcast over inputs. ``bounds`` are the physically sensible ranges that fitting
    respects and that identifiability checks compare against.
    """

    name: str
    formula: str
    inputs: tuple[str, ...]
    output: str
    param_names: tuple[str, ...]
    fn: Formula
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    provenance: Provenance | None = None

    def __call__(self, params: Mapping[str, float], **inputs: ArrayLike) -> np.ndarray:
        missing = [k for k in self.inputs if k not in inputs]
        if missing:
            raise TypeError(f"law {self.name!r} needs inputs {list(self.inputs)}; missing {missing}")
        absent = [p for p in self.param_names if p not in params]
        if absent:
            raise TypeError(f"law {self.name!r} needs parameters {absent}")
        arrays = {k: np.asarray(inputs[k], dtype=float) for k in self.inputs}
        return self.fn(arrays, params)

    def with_params(
        self, params: Mapping[str, float], provenance: Provenance | None = None, label: str = ""
    ) -> LawInstance:
        return LawInstance(
            law=self,
            params={k: float(params[k]) for k in self.param_names},
            provenance=provenance or self.provenance,
            label=label or self.name,
        )


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
