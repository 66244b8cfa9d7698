"""The library's exceptions: one root, a few domain errors, no knowledge of the command line.

Everything scalinglab raises on purpose is a :class:`ScalingLabError`, so a notebook can catch
one type. Messages name *Python* parameters (``compute must be a positive number``); only
``scalinglab.cli`` turns them into one-line errors with flag names (``--compute``) and exit
code 2, and only the dashboard turns them into HTTP statuses, by type, never by message text
(as optuna keeps ``CLIUsageError`` to its cli.py).

Errors about input data subclass ``ValueError`` too, so code written against plain Python
conventions (``except ValueError``) keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence


class ScalingLabError(Exception):
    """Root of every error scalinglab raises on purpose."""

    @property
    def message(self) -> str:
        return str(self)


class InputError(ScalingLabError, ValueError):
    """Bad input data: a file, a frame or a plan. Knows where: source, row and column.

    ``row`` is how a person finds the row (``"row 3 (line 4)"``, ``"run 2"``), ``column`` the
    column or key; either may be None when the problem is the whole input. The message is
    ``"SOURCE: ROW, column 'COL': DETAIL"``, parts left out where unknown.
    """

    def __init__(self, detail: str, *, source: str | None = None, row: str | None = None,
                 column: str | None = None) -> None:
        self.detail = detail
        self.source = source
        self.row = row
        self.column = column
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = ", ".join(x for x in (self.row, None if self.column is None
                                      else f"column {self.column!r}") if x)
        head = ": ".join(x for x in (self.source, where) if x)
        return f"{head}: {self.detail}" if head else self.detail


class NothingToFit(InputError):
    """No run is left to fit once the runs without a usable loss are set aside.

    ``read`` runs came in and ``dropped`` says why they went, as ``(count, reason)`` pairs
    (``(6, "they have no loss")``): the message names the reason rather than failing later on
    an empty array with an error about some option that was never at fault.
    """

    def __init__(self, detail: str, *, read: int = 0, dropped: Sequence[tuple[int, str]] = (),
                 source: str | None = None) -> None:
        self.read = int(read)
        self.dropped = tuple((int(n), str(why)) for n, why in dropped)
        super().__init__(detail, source=source)


class ParameterError(ScalingLabError, ValueError):
    """A bad argument to a library function. ``parameters`` are the Python names it mentions,
    so the command line can show its own flag for each."""

    def __init__(self, message: str, *parameters: str) -> None:
        super().__init__(message)
        self.parameters = tuple(parameters)


class NotIdentifiable(ScalingLabError, ValueError):
    """The data cannot pin down what was asked (a law's parameters, an optimum); says why."""


class StoreError(ScalingLabError):
    """The run store cannot be used as asked (missing, read-only, another program's file)."""


class StoreBusy(StoreError):
    """Another process holds the store's write lock for longer than we were willing to wait."""


class ConflictError(InputError):
    """Incoming runs disagree with runs already seen (same id, different values)."""


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``" (did you mean 'loss'?)"`` for the closest choice, or ``""``."""
    import difflib

    same = [c for c in choices if c.lower() == word.lower() and c != word]
    if same:  # 'n' for 'N': difflib scores a one-letter case change 0
        return f" (did you mean {same[0]!r}?)"
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def columns_hint(word: str, columns: Sequence[str], show: int = 12) -> str:
    """What to say after "no column WORD": the closest spelling, then the columns themselves, or,
    for a wide table (a W&B export has 80+), only those that share a word with WORD, so the
    error stays a line a person reads (``"; columns naming 'hellaswag': [...] (86 in all)"``)."""
    import re

    cols = [str(c) for c in columns]
    close = did_you_mean(word, cols)
    if len(cols) <= show:
        return f"{close}; columns are {cols}"
    if close:
        return f"{close} ({len(cols)} columns in all)"
    words = [w for w in re.split(r"[^a-z0-9]+", word.lower()) if len(w) >= 3]
    for w in sorted(words, key=len, reverse=True):
        named = [c for c in cols if w in c.lower()]
        if named:
            more = f", and {len(named) - show} more" if len(named) > show else ""
            return (f"{close}; columns naming {w!r}: {named[:show]}{more} "
                    f"({len(cols)} columns in all)")
    return f"{close}; {len(cols)} columns, e.g. {cols[:show]}"


__all__ = [
    "ConflictError",
    "InputError",
    "NotIdentifiable",
    "NothingToFit",
    "ParameterError",
    "ScalingLabError",
    "StoreBusy",
    "StoreError",
    "columns_hint",
    "did_you_mean",
]
