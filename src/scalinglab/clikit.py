"""Shared pieces of the command line: JSON output, errors, the store option.

Every command that prints results takes ``--json``; errors the user can fix are raised as
:class:`UserError` and shown as one clear line (exit code 2), never a stack trace.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

DEFAULT_STORE = Path("scalinglab.duckdb")

StoreOption = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file.")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


# Typer may vendor its own click; its ClickException is the one it catches and prints.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class UserError(_ClickException):
    """A problem with the user's input; the message names what is wrong and where.

    A Typer ``ClickException``, so Typer shows it as one line on stderr with exit code 2 in the real CLI
    and in ``CliRunner`` tests alike; library code may raise it too (it is still an Exception).
    """

    exit_code = 2

    def show(self, file: Any = None) -> None:
        err_console.print(f"[bold red]error:[/] {self.message}", highlight=False)


def _default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _clean(o: Any) -> Any:
    """Replace NaN/inf (invalid JSON) by null, recursively."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, np.ndarray):
        return _clean(o.tolist())
    if isinstance(o, np.generic):
        return _clean(o.item())
    return o


def to_json(obj: Any) -> str:
    return json.dumps(_clean(obj), default=_default, indent=2)


def emit_json(obj: Any) -> None:
    """Write JSON to stdout with no rich markup, so it can be piped into ``jq``."""
    typer.echo(to_json(obj))


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
