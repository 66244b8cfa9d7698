"""Shared pieces of the command line: JSON output, errors, the store option.

Every command that prints results takes ``--json``. The library raises typed errors
(:mod:`scalinglab.errors`); :class:`ScalingLabGroup`, the class of every command group, turns
them into :class:`UserError`: one clear line on stderr, exit code 2, never a stack trace, with the
Python parameter names a :class:`~scalinglab.errors.ParameterError` mentions replaced by the
command's own flags. Only command modules raise :class:`UserError` themselves.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from scalinglab.errors import ParameterError, ScalingLabError

console = Console()
err_console = Console(stderr=True)

DEFAULT_STORE = Path("scalinglab.duckdb")

StoreOption = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file.")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


# Typer may vendor its own click; its ClickException is the one it catches and prints.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_Exit = typer.Exit


class UserError(_ClickException):
    """A problem with the user's input, as the command line shows it (flags, not parameters).

    A Typer ``ClickException``, so Typer shows it as one line on stderr with exit code 2 in the
    real CLI and in ``CliRunner`` tests alike. Raised only by command modules and by
    :class:`ScalingLabGroup`; the library raises :mod:`scalinglab.errors` instead.
    """

    exit_code = 2

    def show(self, file: Any = None) -> None:
        # soft_wrap: one line whatever the terminal width (scripts grep stderr)
        err_console.print(f"[bold red]error:[/] {escape(self.message)}", highlight=False,
                          soft_wrap=True)


_COMMAND_KEY = "scalinglab.command"


#: library parameter names that commands expose under another name (``make_plan(loss_law=)`` is
#: ``plan --law``); looked up only when the command has no parameter of the library's name
PARAM_ALIASES: dict[str, tuple[str, ...]] = {
    "loss_law": ("law",), "hparams_law": ("hparams", "law"), "n_boot": ("bootstrap",),
    "holdout_top": ("holdout",), "lr_features": ("lr_features",), "tag": ("tag",),
}


def flag_for(command: Any, parameter: str) -> str | None:
    """The long flag (``--holdout-top``) of ``command``'s option for a Python parameter name."""
    names = (parameter, *PARAM_ALIASES.get(parameter, ()))
    params = getattr(command, "params", [])
    for name in names:
        flag = _flag(params, name)
        if flag:
            return flag
    return None


def _flag(params: Any, parameter: str) -> str | None:
    for p in params:
        if p.name == parameter and getattr(p, "opts", None):
            longs = [o for o in p.opts if o.startswith("--")]
            return (longs or p.opts)[0] if p.param_type_name == "option" else p.name.upper()
    return None


def cli_message(exc: ScalingLabError, command: Any = None) -> str:
    """The library's message, with each parameter a ParameterError names shown as its flag."""
    text = str(exc)
    if isinstance(exc, ParameterError) and command is not None:
        for name in exc.parameters:
            flag = flag_for(command, name)
            if flag:
                text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag, text)
    return text


class ScalingLabGroup(TyperGroup):
    """A command group that shows library errors as one-line CLI errors (exit code 2).

    Every group records the command it resolves in ``ctx.meta`` (shared by the whole context
    tree), so the error of a nested command (``fit chinchilla``) is worded with that command's
    flags.
    """

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None:
            ctx.meta[_COMMAND_KEY] = cmd
        return name, cmd, rest

    def invoke(self, ctx: Any) -> Any:
        try:
            try:
                return super().invoke(ctx)
            except ScalingLabError as exc:
                raise UserError(cli_message(exc, ctx.meta.get(_COMMAND_KEY))) from None
        except UserError as exc:
            # shown here, as one line, rather than in Typer's multi-line error box
            exc.show()
            raise _Exit(exc.exit_code) from None


def new_app(**kwargs: Any) -> typer.Typer:
    """A Typer app (or sub-app) whose group translates library errors (see ScalingLabGroup)."""
    kwargs.setdefault("cls", ScalingLabGroup)
    return typer.Typer(**kwargs)


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


def print_summary(summary: Any) -> None:
    """A result's :class:`~scalinglab.summary.Summary`: rich tables on a terminal, plain aligned
    text when piped (never a number cut to fit a width)."""
    if console.is_terminal:
        console.print(summary)
    else:
        typer.echo(summary.as_text(), nl=False)


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
