"""The catalogue: every law scalinglab knows, by name, and the published instances of them.

Modules that declare laws register them here (``register_law``); :func:`get_law` and
:func:`list_laws` are what users (and the CLI) see. A name is only ever a key into this table:
no code asks which law it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from scalinglab.errors import ParameterError
from scalinglab.laws.base import Law, LawInstance

_LAWS: dict[str, Law] = {}
_PUBLISHED: dict[str, LawInstance] = {}
#: modules whose import registers laws (loaded on first look-up, so the catalogue is complete)
_CATALOGUE_MODULES = ("scalinglab.laws.loss", "scalinglab.laws.catalogue", "scalinglab.laws.loss_to_loss")


def register_law(law: Law) -> Law:
    """Add ``law`` to the catalogue (a later law of the same name replaces it)."""
    _LAWS[law.name] = law
    return law


def register_published(name: str, instance: LawInstance) -> LawInstance:
    _PUBLISHED[name] = instance
    return instance


def _load() -> None:
    for module in _CATALOGUE_MODULES:
        import_module(module)


def list_laws() -> list[str]:
    """Names of every law in the catalogue."""
    _load()
    return sorted(_LAWS)


def get_law(name: str | Law) -> Law:
    """The catalogue's law called ``name`` (a Law is returned as it is)."""
    if isinstance(name, Law):
        return name
    _load()
    try:
        return _LAWS[name]
    except KeyError:
        from scalinglab.errors import did_you_mean

        raise ParameterError(f"unknown law {name!r}{did_you_mean(str(name), list(_LAWS))}; the "
                             f"catalogue has {sorted(_LAWS)}", "law") from None


def published_laws() -> Mapping[str, LawInstance]:
    """Published loss-law instances by name (``hoffmann2022``, ``besiroglu2024``, ...)."""
    _load()
    return dict(_PUBLISHED)


def get_published(name: str) -> LawInstance:
    _load()
    try:
        return _PUBLISHED[name.lower()]
    except KeyError:
        raise ParameterError(f"unknown published law {name!r}; known: {sorted(_PUBLISHED)}",
                             "law") from None


def law_from_dict(data: Mapping[str, Any]) -> Law:
    """The law a saved result (or ``Law.to_dict``) describes.

    A catalogue law is found by name and checked against the saved formula. A law that is not
    in the catalogue is rebuilt from its saved definition: a formula (``Law.from_formula``) or a
    constraint of another law (tied, fixed, bounded parameters), recursively.
    """
    spec = data.get("law_spec") if isinstance(data.get("law_spec"), Mapping) else data
    name = str(spec.get("name") or data.get("law") or data.get("name"))
    definition = spec.get("definition")
    _load()
    if name in _LAWS:
        law = _LAWS[name]
        saved = spec.get("formula") or data.get("formula")
        if saved and saved != law.formula:
            if isinstance(definition, Mapping) and definition.get("kind") == "constrained":
                # a catalogue law with bounds of its own keeps its name (a loss-to-loss link's
                # offsets bounded below the smallest loss): rebuilt, its base checked as above
                rebuilt = _rebuild(name, definition)
                if rebuilt.formula == saved:
                    return rebuilt
            raise ParameterError(f"the saved result's law {name!r} has formula {saved!r}, but the "
                                 f"catalogue's {name!r} is {law.formula!r}")
        return law
    if isinstance(definition, Mapping):
        return _rebuild(name, definition)
    return get_law(name)


def _rebuild(name: str, definition: Mapping[str, Any]) -> Law:
    kind = definition.get("kind")
    if kind == "formula":
        return Law.from_formula(
            str(definition["formula"]), tuple(definition["inputs"]), tuple(definition["params"]),
            name=name, output=str(definition.get("output", "loss")),
            bounds={k: (float(v[0]), float(v[1])) for k, v in (definition.get("bounds") or {}).items()},
            log_params=dict(definition.get("log_params") or {}),
            definitions=[tuple(d) for d in definition.get("definitions") or []])
    if kind == "constrained":
        base = law_from_dict(definition["base"])
        return base.constrained(
            tie=dict(definition.get("tie") or {}), fix=dict(definition.get("fix") or {}),
            bounds={k: (float(v[0]), float(v[1])) for k, v in (definition.get("bounds") or {}).items()},
            name=name)
    raise ParameterError(f"cannot rebuild law {name!r}: unknown definition kind {kind!r}")
