"""The contract every fit result keeps, whatever it fitted (a loss law, an IsoFLOP allocation, an
lr/batch law, a timescale law, a downstream link).

A result is an object you can hand to anyone, as statsmodels' and lmfit's are: it knows the runs
it used (``run_ids``) and those it held out (``heldout_ids``), its interval level, its warnings
and notes; ``summary()`` returns one :class:`~scalinglab.summary.Summary` that the CLI, the report
and the dashboard all render; ``to_dict()``/``from_dict()`` round-trip it through JSON (with
``kind`` saying which result it is); ``repr()`` is one short line and Jupyter shows the summary.

Every subclass that declares its own ``kind`` registers itself (``__init_subclass__``), so this
module imports no result class: :func:`load_result` reads any registered kind, and a kind whose
module is not imported yet is found through :data:`KIND_MODULES` (a table of module names, as the
command line's table is: data, not an import; ``tests/test_results_contract.py`` checks that it
names every kind). ``conf_int(level)`` gives parameter intervals at any level from the
bootstrap draws, whatever level the result was fitted with.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any, ClassVar

from scalinglab.errors import InputError, ParameterError
from scalinglab.summary import Summary

#: kind -> the result class, filled by :meth:`Result.__init_subclass__`
REGISTRY: dict[str, type[Result]] = {}

#: kind -> the module that defines it, imported by :func:`load_result` when a file holds a kind
#: not registered yet (a new result kind adds a line; the contract test checks the table)
KIND_MODULES: dict[str, str] = {
    "loss_fit": "scalinglab.fit.result",
    "loss_fit_at": "scalinglab.fit.result",
    "isoflop": "scalinglab.fit.isoflop",
    "isoflop_at": "scalinglab.fit.isoflop",
    "rolling_forward": "scalinglab.fit.validate",
    "law_selection": "scalinglab.fit.validate",
    "hparam_fit": "scalinglab.hparams.fit",
    "tau_fit": "scalinglab.hparams.timescale",
    "curve_fit": "scalinglab.fit.curves",
    "joint_fit": "scalinglab.fit.lsq",
    "link_fit": "scalinglab.downstream.link_fit",
    "link_table": "scalinglab.downstream.link_fit",
    "benchmark_fit": "scalinglab.downstream.benchmark",
    "benchmark_table": "scalinglab.downstream.benchmark",
    "downstream_prediction": "scalinglab.downstream.chain",
    "observational_fit": "scalinglab.downstream.observational",
    "loss_to_loss": "scalinglab.downstream.l2l",
    "loss_translation": "scalinglab.downstream.l2l",
    "ladder_fit": "scalinglab.downstream.ladder",
    "pass_at_k": "scalinglab.testtime.passk",
    "coverage_fit": "scalinglab.testtime.coverage",
    "verifier_analysis": "scalinglab.testtime.verifier",
    "budget_comparison": "scalinglab.testtime.budget",
    "design_proposal": "scalinglab.design.propose",
    "pool_proposal": "scalinglab.design.pool",
    "pool_replay": "scalinglab.design.pool",
    "simulation": "scalinglab.design.simulate",
    "plan": "scalinglab.plan.planner",
    "heldout_check": "scalinglab.demo.job",
}


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is None:  # a shared base (no kind of its own) is not a result one can load
            return
        known = REGISTRY.get(kind)
        if known is not None and (known.__module__, known.__qualname__) != (
                cls.__module__, cls.__qualname__):
            raise TypeError(f"result kind {kind!r} is already {known.__module__}.{known.__qualname__}")
        REGISTRY[kind] = cls

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        """``(names, draws)``: the bootstrap draws of the result's quantities (its parameters,
        or what it estimates where it has none: pass@k at each k), shape (K, len(names)), for
        :meth:`conf_int`; None where the result keeps none."""
        return None

    def _interval_parts(self) -> dict[str, Result]:
        """The results this one is made of whose intervals are its own (a loss-to-loss fit's
        fits by group, a ladder's two steps), by the prefix their names take in
        :meth:`conf_int` (``"step1.E"``; an empty prefix: the part's own names)."""
        return {}

    def conf_int(self, level: float | None = None, *,
                 alpha: float | None = None) -> dict[str, tuple[float, float]]:
        """Each quantity's percentile interval at ``level`` (default: the result's own; or
        ``alpha`` as statsmodels' ``conf_int(alpha)``: ``level = 1 - alpha``), from the
        bootstrap draws the result keeps: the level is chosen when asked, not when fitted.

        Parameters of the parts a result is made of are named ``part.name``. A result that keeps
        no draws raises :class:`ParameterError` saying so."""
        if alpha is not None:
            if level is not None:
                raise ParameterError("give level or alpha, not both", "alpha")
            level = 1.0 - float(alpha)
        if level is None:
            # a result without a level of its own (a pool proposal, a replay) has no intervals:
            # say so, as for any result without draws, not AttributeError: no 'level'
            level = getattr(self, "level", None)
            if level is None:
                raise ParameterError(f"this {type(self).__name__} has no bootstrap draws to give "
                                     "intervals", "level")
        level = float(level)
        if not 0.0 < level < 1.0:
            raise ParameterError(f"level must be between 0 and 1, not {level}", "level")
        out = self._own_intervals(level)
        for prefix, part in self._interval_parts().items():
            try:
                inner = part.conf_int(level)
            except ParameterError:  # a part without draws adds nothing
                continue
            out.update((f"{prefix}.{n}" if prefix else n, v) for n, v in inner.items())
        if not out:
            raise ParameterError(f"this {type(self).__name__} has no bootstrap draws to give "
                                 "intervals (fit with bootstrap > 0)", "level")
        return out

    @property
    def ci(self) -> dict[str, tuple[float, float]]:
        """:meth:`conf_int` at the result's own level, or ``{}`` where it keeps no draws: the
        name a loss fit and a link have always had, so every result answers ``res.ci`` alike
        (a curve fit, a joint fit and a ladder had none). Results whose intervals are of two
        laws (an lr/batch fit's ``{"lr": ..., "bs": ...}``) keep their own shape."""
        try:
            return self.conf_int()
        except ParameterError:
            return {}

    def _own_intervals(self, level: float) -> dict[str, tuple[float, float]]:
        """The percentile interval at ``level`` of each quantity :meth:`_param_draws` gives (its
        parts' not included; empty without draws): what :meth:`conf_int` starts from, and the
        ``ci`` of a result that has one (a loss fit's, a link's), so the two never differ."""
        from scalinglab.stats import percentile_interval

        table = self._param_draws()
        if table is None or table[1] is None or not len(table[1]) or not table[0]:
            return {}
        names, draws = table
        lo, hi = percentile_interval(draws, level)
        return {n: (float(lo[i]), float(hi[i])) for i, n in enumerate(names)}

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
        from scalinglab.serialize import keep_infinities, to_json

        return write_output(path, to_json(keep_infinities(self.to_dict(include_draws=True))) + "\n")


def without_held(names: Sequence[str], draws: Any,
                 held: Container[str]) -> tuple[tuple[str, ...], Any]:
    """``(names, draws)`` (draws: (K, len(names)), or None) less the columns of the parameters in
    ``held``: those held rather than fitted (a given value, one taken from another law, one a
    declared bound holds in every draw). Each draw of one is the same number, and its
    "interval" ``[1, 1]`` would read as a value measured exactly, so it gets none in ``ci``,
    :meth:`Result.conf_int` or the JSON; the result's ``held`` record says where it came from.
    The one filter for every result whose parameters may be held (``FitResult.held``,
    ``LinkFit.held``), for :meth:`Result._param_draws`."""
    keep = [i for i, k in enumerate(names) if k not in held]
    if len(keep) == len(names):
        return tuple(names), draws
    return tuple(names[i] for i in keep), None if draws is None else draws[:, keep]


def stack_draws(tables: list[tuple[list[str], Any]]) -> tuple[tuple[str, ...], Any] | None:
    """Several ``(names, draws)`` tables side by side, for :meth:`Result._param_draws` of a
    result with several sets of draws; a table with fewer rows (resamples that failed and were
    dropped) is padded with NaN, which the percentile intervals ignore. None for no table."""
    import numpy as np

    tables = [(list(n), np.atleast_2d(np.asarray(d, dtype=float))) for n, d in tables
              if d is not None and len(d)]
    if not tables:
        return None
    k = max(len(d) for _, d in tables)
    names = tuple(n for ns, _ in tables for n in ns)
    cols = [np.vstack([d, np.full((k - len(d), d.shape[1]), np.nan)]) for _, d in tables]
    return names, np.hstack(cols)


def registered_kinds() -> dict[str, type[Result]]:
    """Every result kind, its module imported (what :func:`load_result` can read)."""
    for kind in KIND_MODULES:
        _kind(kind)
    return dict(REGISTRY)


def _kind(kind: Any) -> type[Result] | None:
    if kind not in REGISTRY and kind in KIND_MODULES:
        import_module(KIND_MODULES[kind])
    return REGISTRY.get(kind)


def load_result(path: str | Path) -> Result:
    """Read any result written by ``Result.save`` or a command's ``--save``."""
    if not isinstance(path, (str, Path)) and not hasattr(path, "__fspath__"):
        raise ParameterError(f"path must be a file name, not {type(path).__name__}", "path")
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


def saved_kind(path: str | Path) -> str | None:
    """The ``kind`` a saved result file says it holds (None: none), without building it; a file
    that is not JSON raises :class:`InputError` naming it, as :func:`load_result` does."""
    data = _read_json(Path(path))
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None


def result_from_dict(data: Any) -> Result:
    """The result a ``to_dict()`` describes, by its ``kind`` (any registered kind)."""
    kind = data.get("kind") if isinstance(data, dict) else None
    cls = _kind(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InputError(f"not a scalinglab result (kind {kind!r})")
    from scalinglab.serialize import restore_infinities

    return cls.from_dict(restore_infinities(dict(data)))  # type: ignore[attr-defined]


def _read_json(path: Path) -> Any:
    """Bounded (size, nesting depth), regular files only, UTF-8: one InputError otherwise."""
    from scalinglab.safefile import read_json

    return read_json(path)


def _from_dict(data: Any, path: Path) -> Result:
    from scalinglab.safefile import check_saved

    kind = data.get("kind") if isinstance(data, dict) else None
    cls = _kind(kind) if isinstance(kind, str) else None
    if cls is None:
        # one line: the ~30 kinds it could have been were listed here, a paragraph that buried
        # what the file is (registered_kinds() lists them for whoever needs the catalogue)
        raise InputError(f"not a saved scalinglab result ({_what_kind(kind)})", source=str(path))
    check_saved(data, str(path))  # the shared fields, before any arithmetic
    from scalinglab.serialize import restore_infinities

    try:
        return cls.from_dict(restore_infinities(data))  # type: ignore[attr-defined]
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
    cls = _kind(kind) if isinstance(kind, str) else None
    if cls is not None and not issubclass(cls, expect):  # said before reading it whole
        raise InputError(f"a saved {kind} result, not {what}", source=str(path))
    if cls is None:
        raise InputError(f"not {what}: {_what_kind(kind)}", source=str(path))
    return _from_dict(data, path)


def _what_kind(kind: Any) -> str:
    """What a file's ``kind`` says it is, for a one-line error: missing, or not a kind one
    can load (another tool's JSON, or a kind this version does not know)."""
    if kind is None:
        return "no 'kind' field"
    return f"its kind {kind!r} is not a result kind scalinglab reads back"


__all__ = ["KIND_MODULES", "REGISTRY", "Result", "load_result", "load_results", "load_saved",
           "registered_kinds", "result_from_dict", "saved_kind", "short_repr", "stack_draws",
           "without_held"]


def short_repr(obj: Any) -> str:
    """One short line for a dataclass that is handed to people (a plan, an import report, a
    sweep report): its scalar fields (numbers to 4 digits), collections as their sizes, at most
    200 characters; ``_repr_keys`` (a class attribute) picks and orders the fields shown.
    Assign it in the class body (``__repr__ = short_repr``) so ``@dataclass`` keeps it."""
    import dataclasses

    import numpy as np

    from scalinglab.summary import format_number

    keys = getattr(type(obj), "_repr_keys", None) or [f.name for f in dataclasses.fields(obj)]
    items = []
    for k in keys:
        v = getattr(obj, k, None)
        if v is None or (isinstance(v, str) and not v) or (isinstance(v, (list, tuple, dict, set)) and not v):
            continue
        if isinstance(v, bool):
            items.append(f"{k}={v}")
        elif isinstance(v, (int, float, np.integer, np.floating)):
            items.append(f"{k}={format_number(v)}")
        elif isinstance(v, str):
            items.append(f"{k}={v!r}" if len(v) <= 40 else f"{k}={v[:37]!r}...")
        elif isinstance(v, Path):
            items.append(f"{k}={str(v)!r}")
        elif isinstance(v, (list, tuple, dict, set, np.ndarray)):
            items.append(f"{k}: {len(v)}")
    text = f"<{type(obj).__name__} {', '.join(items)}>"
    return text if len(text) <= 200 else text[:196] + "...>"
