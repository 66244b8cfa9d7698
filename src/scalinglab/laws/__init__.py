"""Laws as data: the catalogue of loss and hyperparameter laws, their maths and provenance."""

from scalinglab.laws.base import DerivedFigure, Law, LawInstance, Provenance
from scalinglab.laws.registry import get_law, get_published, list_laws, published_laws, register_law

__all__ = [
    "DerivedFigure",
    "Law",
    "LawInstance",
    "Provenance",
    "get_law",
    "get_published",
    "list_laws",
    "published_laws",
    "register_law",
]
