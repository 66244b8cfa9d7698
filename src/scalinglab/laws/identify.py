"""Identifiability rules: when can a design of runs pin a law down at all?

A rule is data on the law (:attr:`scalinglab.laws.base.Law.identifiability`), called with the runs'
inputs before any fitting; it raises :class:`~scalinglab.errors.NotIdentifiable` with the cause and
a remedy. Softer problems (an interval spanning decades, draws at the bounds) are found after the
fit, from the bootstrap, by :mod:`scalinglab.fit.loss`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from scalinglab.errors import NotIdentifiable

if TYPE_CHECKING:
    from scalinglab.laws.base import Law

_MEANING = {"N": "how loss falls with model size", "D": "how loss falls with data",
            "C": "how loss falls with compute"}


@dataclass(frozen=True)
class DistinctInputs:
    """At least ``len(params) + 1`` runs, and ``need`` distinct values of every input.

    A term ``A x^-alpha`` plus a constant needs 3 distinct values of ``x``: with one, A and alpha
    are confounded with the constant; with two, any alpha fits exactly after adjusting A.
    ``owners`` names, per input, the parameters that describe it (for the message).
    """

    need: int = 3
    owners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __call__(self, law: Law, inputs: Mapping[str, np.ndarray]) -> None:
        n = len(next(iter(inputs.values()))) if inputs else 0
        p = len(law.param_names)
        if n < p + 1:
            raise NotIdentifiable(
                f"{n} runs cannot identify the {law.name} law's {p} parameters "
                f"({', '.join(law.param_names)}): need at least {p + 1} runs"
            )
        for name in law.inputs:
            distinct = np.unique(np.asarray(inputs[name]))
            if len(distinct) >= self.need:
                continue
            owned = self.owners.get(name, ())
            where = (f"all runs have {name} = {distinct[0]:.4g}" if len(distinct) == 1 else
                     f"runs have only {len(distinct)} distinct values of {name}")
            what = f"{' and '.join(owned)} ({_MEANING.get(name, f'the dependence on {name}')})" \
                if owned else f"the dependence on {name}"
            others = [k for k in law.inputs if k != name]
            hint = (f"; fit a one-variable power law in {others[0]} instead, or add runs at other "
                    f"{name}" if len(others) == 1 else f"; add runs at other {name}")
            raise NotIdentifiable(
                f"{where}: {what} cannot be identified (need at least {self.need} distinct "
                f"{name}){hint}"
            )


def sum_of_powers_owners(inputs: tuple[str, ...], param_names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """For ``E + sum_k A_k x_k^-alpha_k``: input k owns its scale and its exponent."""
    k = len(inputs)
    return {x: (param_names[1 + j], param_names[1 + k + j]) for j, x in enumerate(inputs)}
