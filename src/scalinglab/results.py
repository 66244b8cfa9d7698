"""The contract every fit result keeps, whatever it fitted (a loss law, an IsoFLOP allocation, an
lr/batch law, a timescale law, a downstream link).

A result is an object you can hand to anyone, as statsmodels' and lmfit's are: it knows the runs
it used (``run_ids``) and those it held out (``heldout_ids``), its interval level, its warnings
and notes; ``summary()`` returns one :class:`~scalinglab.summary.Summary` that the CLI, the report
and the dashboard all render; ``to_dict()``/``from_dict()`` round-trip it through JSON (with
``kind`` saying which result it is); ``repr()`` is one short line and Jupyter shows the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from scalinglab.errors import InputError
from scalinglab.summary import Summary


class Result:
    """Mixin for result dataclasses (declare them with ``repr=False``).

    Subclasses define ``kind``, ``summary()``, ``to_dict()``, ``from_dict()`` and
    ``_repr_items()``; they hold ``run_ids``, ``level``, ``warnings`` and ``notes`` as fields.
    """

    kind: ClassVar[str] = "result"
    run_ids: tuple[str, ...]
    level: float
    warnings: list[str]
    notes: list[str]

    @property
    def heldout_ids(self) -> tuple[str, ...]:
        return ()

    @property
    def n_runs(self) -> int:
        return len(self.run_ids)

    def summary(self) -> Summary:  # pragma: no cover - each result defines its own
        raise NotImplementedError

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def _repr_items(self) -> list[str]:
        return []

    def __repr__(self) -> str:
        items = [f"{self.n_runs} runs", *self._repr_items()]
        if self.warnings:
            items.append(f"{len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''}")
        text = f"<{type(self).__name__} {', '.join(items)}>"
        return text if len(text) <= 240 else text[:236] + "...>"

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def save(self, path: str | Path) -> Path:
        """Write ``to_dict(include_draws=True)`` as JSON (read back with :func:`load_result`)."""
        from scalinglab.safefile import write_output
        from scalinglab.serialize import to_json

        return write_output(path, to_json(self.to_dict(include_draws=True)) + "\n")


def _kinds() -> dict[str, Any]:
    from scalinglab.design.pool import PoolProposal, ReplayResult
    from scalinglab.downstream import kinds as downstream_kinds
    from scalinglab.fit.curves import CurveFit
    from scalinglab.fit.isoflop import IsoFlopResult
    from scalinglab.fit.result import FitResult
    from scalinglab.fit.validate import LawSelection, RollingForward
    from scalinglab.hparams.fit import HparamFit
    from scalinglab.hparams.timescale import TauFit
    from scalinglab.testtime import kinds as testtime_kinds

    return {cls.kind: cls for cls in (FitResult, IsoFlopResult, HparamFit, TauFit, RollingForward,
                                      LawSelection, CurveFit, *downstream_kinds(),
                                      *testtime_kinds(), PoolProposal, ReplayResult)}


def load_result(path: str | Path) -> Result:
    """Read any result written by ``Result.save`` or a command's ``--save``."""
    path = Path(path)
    return _from_dict(_read_json(path), path)


def load_results(path: str | Path) -> list[tuple[str | None, Result]]:
    """Every result in a saved file, each with its name: ``[(None, result)]`` for a file of one
    result, ``[(model, result), ...]`` for a ``{model: result}`` file (what the ``testtime``
    commands save for several models)."""
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, dict) and "kind" not in data and data and all(
            isinstance(v, dict) and "kind" in v for v in data.values()):
        return [(str(name), _from_dict(item, path)) for name, item in data.items()]
    return [(None, _from_dict(data, path))]


def _read_json(path: Path) -> Any:
    """Bounded (size, nesting depth), regular files only, UTF-8: one InputError otherwise."""
    from scalinglab.safefile import read_json

    return read_json(path)


def _from_dict(data: Any, path: Path) -> Result:
    from scalinglab.safefile import check_saved

    kinds = _kinds()
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in kinds:
        raise InputError(f"not a saved scalinglab result (kind {kind!r}; known: {sorted(kinds)})",
                         source=str(path))
    check_saved(data, str(path))  # the shared fields, before any arithmetic
    try:
        return kinds[kind].from_dict(data)
    except KeyError as exc:
        raise InputError(f"a saved {kind} result without the field {exc}",
                         source=str(path)) from None
    except (TypeError, ValueError, IndexError, AttributeError, OverflowError,
            ZeroDivisionError) as exc:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InputError(f"cannot read a saved {kind} result: {detail}",
                         source=str(path)) from None


def load_saved(path: str | Path, expect: type | tuple[type, ...], what: str) -> Result:
    """THE loader for a saved file a command reads back (``plan --law``, ``--tau``,
    ``--truth``, ``--link``, ``--loss-law``...): bounded JSON, the shared fields checked,
    the result rebuilt, and of the type ``expect`` (``what`` names it in the error)."""
    path = Path(path)
    data = _read_json(path)
    kind = data.get("kind") if isinstance(data, dict) else None
    cls = _kinds().get(kind)
    if cls is not None and not issubclass(cls, expect):  # said before reading it whole
        raise InputError(f"a saved {kind} result, not {what}", source=str(path))
    return _from_dict(data, path)


__all__ = ["Result", "load_result", "load_results", "load_saved"]
