"""One resolver: "a name, a file or an object" -> what a parameter wants (optuna's
``get_storage`` is the model: a string or an object, one function decides).

    resolve("hoffmann2022", "loss_law")      # a published LawInstance
    resolve("fit.json", "loss_law")          # the FitResult saved there (``fit ... --save``)
    resolve(fit, "fit")                      # a FitResult as it is
    resolve("steplaw", "hparams")            # a published lr/batch law
    resolve("hp.json", "hparams")            # the law of a saved ``hparams fit``
    resolve("link.json", "link")             # a saved LinkFit or LinkTable
    resolve("0.8", "tau")                    # a number, or a saved ``hparams tau`` law

``plan``, ``predict``, ``design simulate``, the Study and the library's ``make_plan`` all go
through it, so each accepts the same things and says the same thing when it cannot. A file is
read with :func:`scalinglab.results.load_result` and recognised by its ``kind``, so this module
imports no engine: results register themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scalinglab.errors import InputError, ParameterError

#: what each parameter wants: its words, and the saved result kinds that give it
WANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "loss_law": ("loss-law fit", ("loss_fit", "loss_fit_at")),
    "fit": ("loss-law fit", ("loss_fit", "loss_fit_at")),
    "link": ("link", ("link_fit", "link_table")),
    "hparams": ("hyperparameter law", ("hparam_fit",)),
    "tau": ("tau law", ("tau_fit",)),
}


def _names(want: str) -> dict[str, Any]:
    if want == "loss_law":
        from scalinglab.laws.loss import PUBLISHED_LOSS_LAWS
        from scalinglab.laws.registry import published_laws

        return {k.lower(): v for k, v in {**published_laws(), **PUBLISHED_LOSS_LAWS}.items()}
    if want == "hparams":
        from scalinglab.laws.hparams import PUBLISHED_HPARAM_LAWS

        return dict(PUBLISHED_HPARAM_LAWS)
    return {}


def _as_wanted(obj: Any, want: str, name: str) -> Any:
    """A result of a kind ``want`` takes, turned into what it wants (a law from a fit)."""
    if want == "hparams":
        return obj.law(name=name)
    if want == "tau":
        return obj.law
    return obj


def resolve(spec: Any, want: str, *, param: str | None = None) -> Any:
    """``spec`` (a published name, a saved result's file, or an object) as ``want`` wants it
    (see :data:`WANTS`); ``param`` names the parameter in errors (default: ``want``).

    Returns: ``loss_law`` a LawInstance or FitResult; ``fit`` a FitResult; ``link`` a LinkFit or
    LinkTable; ``hparams`` an HparamLaw; ``tau`` a float or the fitted tau LawInstance.
    Raises :class:`ParameterError` for a name that is neither published nor a file, and
    :class:`InputError` (naming the file) for a file that is not a result of a kind it takes.
    """
    from scalinglab.laws.base import LawInstance
    from scalinglab.laws.hparams import HparamLaw

    if want not in WANTS:
        raise ParameterError(f"want must be one of {sorted(WANTS)}, not {want!r}", "want")
    param = param or want
    what, kinds = WANTS[want]
    # objects: a law, or a result of a kind this parameter takes
    if getattr(spec, "kind", None) in kinds:
        return _as_wanted(spec, want, "fitted")
    if want == "loss_law" and isinstance(spec, LawInstance):
        return spec
    if want == "hparams" and isinstance(spec, HparamLaw):
        return spec
    if want == "tau":
        if isinstance(spec, LawInstance):
            return spec
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            return float(spec)
        try:
            return float(str(spec))
        except ValueError:
            pass
    if not isinstance(spec, (str, Path)):
        raise ParameterError(f"{param}: a {type(spec).__name__} is not a {what}", param)
    key = str(spec)
    names = _names(want)
    if key.lower() in names:
        return names[key.lower()]
    path = Path(key)
    if not path.exists():
        if want == "tau":
            raise ParameterError(f"{param} {key!r}: neither a number nor a file", param)
        known = f", and not a published law ({', '.join(sorted(names))})" if names else ""
        raise ParameterError(f"{param} {key!r}: no such file{known}", param)
    from scalinglab.results import load_result, saved_kind

    kind = saved_kind(path)  # the kind first: a fit of another kind is not read as this one
    if kind not in kinds:
        from scalinglab.results import KIND_MODULES, REGISTRY

        expected = f"expected kind {' or '.join(kinds)}"
        if kind in KIND_MODULES or kind in REGISTRY:  # a result, of another kind
            raise InputError(f"a saved {kind} result, not a saved {what} ({expected})",
                             source=str(path))
        raise InputError(f"not a saved {what} (kind {kind!r}; {expected})", source=str(path))
    result = load_result(path)
    try:
        return _as_wanted(result, want, path.stem)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read a saved {what}: {exc}", source=str(path)) from None


__all__ = ["WANTS", "resolve"]
