"""The forward selection's settings and record, in the form every fit shares: the ``select`` /
``select_top`` check that :func:`scalinglab.fit.loss.fit_arrays` and
:func:`scalinglab.fit.lsq.fit_joint` apply, and whether a record (:meth:`lsq.Forward.to_dict`,
as a :class:`~scalinglab.fit.result.FitResult` or a :class:`~scalinglab.fit.lsq.JointFit`
keeps it) moved the fit off the least-squares optimum. Here, not in :mod:`~scalinglab.fit.lsq`
(where :func:`~scalinglab.fit.lsq.forward_select` lives), so that the result classes and the
argument checks read it without importing the linear-scale engine (sympy, scipy) and without an
import cycle (lsq <- loss)."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

from scalinglab.errors import ParameterError

#: the basins a linear-scale fit may return: the deepest (least squares) or the one chosen by
#: rolling-forward validation (:func:`scalinglab.fit.lsq.forward_select`)
SELECTS = ("optimum", "forward")
#: :func:`scalinglab.fit.lsq.forward_select`'s default: the top 10% of the rows fitted, by
#: compute, held out (the share a law fitted to extrapolate is usually asked to reach beyond its data)
FORWARD_TOP = 0.1


def check_select(select: str, select_top: float, unit: str = "runs") -> None:
    """Refuse a ``select`` other than :data:`SELECTS` and a ``select_top`` that is not a
    fraction strictly between 0 and 1 (NaN and non-numbers included); ``unit`` names what it is
    a fraction of, in the caller's words (``fit_arrays``: runs, ``fit_joint``: rows)."""
    if select not in SELECTS:
        raise ParameterError(f"select is 'optimum' or 'forward', not {select!r}", "select")
    if not (isinstance(select_top, Real) and 0.0 < select_top < 1.0):
        raise ParameterError(f"select_top is a fraction of the {unit}, strictly between 0 and 1, not {select_top}",
                             "select_top")


def check_lean_top(lean_top: float, unit: str = "runs") -> None:
    """Refuse a ``lean_top`` that is not a fraction in [0, 1) (0: no lean; NaN and non-numbers
    included), in the words :func:`check_select` uses: ``unit`` is what it is a fraction of
    (``fit_arrays``: runs, ``fit_joint``: rows), so one entry point says one noun for both."""
    if not (isinstance(lean_top, Real) and 0.0 <= lean_top < 1.0):
        raise ParameterError(f"lean_top is a fraction of the {unit}, in [0, 1) (0: no lean), not {lean_top}",
                             "lean_top")


def forward_moved(record: Mapping[str, Any] | None) -> bool:
    """Whether a forward-selection record (:meth:`scalinglab.fit.lsq.Forward.to_dict`) chose a
    basin other than the least-squares optimum, in itself or in any of its independent parts.
    None (no selection): False."""
    if not record:
        return False
    return bool(record.get("chosen")) or any(forward_moved(p) for p in record.get("parts", ()))
