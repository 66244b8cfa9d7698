"""The command line's conventions, in one place: options, output, errors.

**Options.** One object per flag, shared by every command, so a flag means the same thing
everywhere: :data:`StoreOption` (``--store FILE``), :func:`bootstrap_option` (``--bootstrap K``,
``-b``), :data:`TagOption` (``--tag KEY=VALUE`` or ``KEY:VALUE``, repeatable and comma-separated;
read with :func:`parse_tags`), :data:`MapOption` (``--map NAME=COLUMN``; :func:`parse_map`),
:data:`JsonOption` (``--json``) and :data:`FormatOption` (``--format table|csv|tsv|json``; see
:func:`output_format`). Help shows conventional metavars (``INT``, ``NUMBER``, ``PATH``,
``TEXT``) and flags without a value.

**Output.** :func:`print_table` prints rows: a rich table on a terminal wide enough for it, and
otherwise (piped, or too narrow) plain text aligned to its widest cell, never a number cut to
fit; ``csv``/``tsv``/``json`` give every value in full. :func:`print_summary` does the same for a
result's :class:`~scalinglab.summary.Summary`. :func:`emit_json` writes JSON with NaN as null.

**Errors.** The library raises typed errors (:mod:`scalinglab.errors`); :class:`ScalingLabGroup`,
the class of every command group, turns them into :class:`UserError` with the Python parameter
names a :class:`~scalinglab.errors.ParameterError` mentions replaced by the command's flags.
Every error the command line shows (a UserError, a bad option value, an unknown option) is
**one line on stderr**, ``error: MESSAGE``, with exit code 2, never a box and never a stack
trace. With ``--json`` on the command line, stdout also receives one JSON object,
``{"error": {"type": ..., "message": ..., "exit_code": 2}}``, so a script that parses stdout
always gets JSON, and the person reading stderr still gets the line. Only command modules raise
:class:`UserError` themselves.

Help is rendered by click's plain formatter (``rich_markup_mode=None``): each paragraph of a
docstring is joined and wrapped once, to the terminal's width; a paragraph that starts with a
``\\b`` line (examples) is kept as written.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from scalinglab.errors import ParameterError, ScalingLabError
from scalinglab.runs import DEFAULT_STORE


class _Console(Console):
    """A console as wide as its output when it is not a terminal: rich then lays a table out at
    its natural width instead of cutting numbers to 80 columns (``scalinglab ... | cat``)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(100_000, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


console = _Console()
err_console = Console(stderr=True)


StoreOption = typer.Option(DEFAULT_STORE, "--store", metavar="FILE",
                           help="DuckDB run store file.")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")
TagOption = typer.Option(None, "--tag", "-t", metavar="KEY=VALUE",
                         help="Only runs with this tag, KEY=VALUE or KEY:VALUE; repeat (or "
                         "separate with commas) to require several.")
MapOption = typer.Option(None, "--map", "-m", metavar="NAME=COLUMN",
                         help="Read scalinglab's NAME from the file's COLUMN, e.g. "
                         "loss=final_loss (repeatable or comma-separated).")
#: a file's units: one flag, --units, wherever a file is read. --scale NAME=FACTOR, its older
#: name, is kept as a hidden alias that says it is deprecated: `fit law/custom --scale log|linear`
#: is where residuals are taken, and one flag name must not mean two things.
UnitsOption = typer.Option(None, "--units", metavar="NAME=FACTOR",
                           help="A column's unit factor: multiply NAME by FACTOR, e.g. N=1e6 when "
                           "N is in millions (repeatable or comma-separated).")
ScaleAliasOption = typer.Option(None, "--scale", metavar="NAME=FACTOR", hidden=True,
                                help="Deprecated name of --units.")
ScaleOption = UnitsOption  # older name of the option object (the flag is --units)


def parse_units(units: list[str] | None, scale: list[str] | None = None) -> dict[str, str]:
    """``--units N=1e6`` (and the deprecated ``--scale N=1e6``, with a warning) as
    ``{"N": "1e6"}``."""
    from scalinglab.runs.io import parse_pairs

    if scale:
        shown = " ".join(f"--units {s}" for s in scale)
        err_console.print(f"warning: --scale NAME=FACTOR is deprecated: write {shown} (--scale "
                          "is where fit law/custom take residuals, log or linear)",
                          highlight=False, soft_wrap=True, markup=False)
    return parse_pairs([*(units or []), *(scale or [])], "--units")
#: table (aligned text; rich on a wide terminal), or every value in full as csv, tsv or json
FORMATS = ("table", "csv", "tsv", "json")
FormatOption = typer.Option("table", "--format", metavar="|".join(FORMATS),
                            help="Output: table (aligned text, exact numbers when piped), csv, "
                            "tsv or json (every value in full).")


def bootstrap_option(default: int | None = None, help: str | None = None) -> Any:
    """``--bootstrap K`` / ``-b K``: the number of bootstrap resamples, named the same everywhere
    (default: :data:`scalinglab.stats.DEFAULT_BOOTSTRAP`)."""
    if default is None:
        from scalinglab.stats import DEFAULT_BOOTSTRAP as default
    return typer.Option(default, "--bootstrap", "-b", min=0, metavar="K",
                        help=help or "Bootstrap resamples for intervals (0: none).")


#: flags that were renamed, so the error for the old spelling names the new one
RENAMED_FLAGS = {"--n-boot": "--bootstrap"}


# Typer may vendor its own click; its exception classes are the ones it raises and catches.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_Abort = typer.Abort
_Command = TyperCommand


class UserError(_ClickException):
    """A problem with the user's input, as the command line shows it (flags, not parameters).

    A Typer ``ClickException`` with exit code 2; :class:`ScalingLabGroup` shows it as one line.
    ``kind`` names the library error it came from (``InputError``...), for the JSON error.
    Raised only by command modules and by :class:`ScalingLabGroup`; the library raises
    :mod:`scalinglab.errors` instead.
    """

    exit_code = 2

    def __init__(self, message: str, kind: str = "UserError") -> None:
        super().__init__(message)
        self.kind = kind

    def show(self, file: Any = None) -> None:
        show_error(self.message)


def show_error(message: str) -> None:
    """``error: MESSAGE`` as one line on stderr, whatever the terminal's width."""
    from scalinglab.summary import printable

    one_line = printable(" ".join(str(message).split()))
    err_console.print(f"[bold red]error:[/] {escape(one_line)}", highlight=False, soft_wrap=True)


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


# -- errors as one line ------------------------------------------------------------------------

#: pydantic's wording (Typer validates values with it) -> what a person reads
_PLAIN = (
    (re.compile(r"Input should be a valid integer.*"), "expected a whole number"),
    (re.compile(r"Input should be a valid number.*"), "expected a number"),
    (re.compile(r"Input should be a valid boolean.*"), "expected true or false"),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"must be at least \1"),
    (re.compile(r"Input should be greater than (\S+)"), r"must be more than \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"must be at most \1"),
    (re.compile(r"Input should be less than (\S+)"), r"must be less than \1"),
)


def plain_message(text: str) -> str:
    """A click/pydantic message reworded for a person: ``Invalid value for '--bootstrap' /
    '-b': Input should be a valid integer, ...`` -> ``--bootstrap: expected a whole number``."""
    text = " ".join(str(text).split())
    m = re.match(r"Invalid value for '([^']+)'(?: / '[^']+')*: (.*)", text)
    if m:
        flag, detail = m.groups()
        for pattern, plain in _PLAIN:
            if pattern.match(detail):
                detail = pattern.sub(plain, detail)
                break
        return f"{flag}: {detail}"
    for pattern, plain in _PLAIN:
        text = pattern.sub(plain, text)
    return text


def error_object(message: str, kind: str, exit_code: int) -> dict[str, Any]:
    """The JSON error ``--json`` prints on stdout (the same message as the stderr line)."""
    return {"error": {"type": kind, "message": message, "exit_code": exit_code}}


def _wants_json(argv: Sequence[str]) -> bool:
    """``--json`` among the options (before a ``--`` that ends them)."""
    args = list(argv)
    if "--" in args:
        args = args[: args.index("--")]
    return "--json" in args or any(a in ("--format=json",) for a in args) or (
        "--format" in args and args.index("--format") + 1 < len(args)
        and args[args.index("--format") + 1] == "json")


def _report(exc: Any, as_json: bool) -> int:
    """Show a click exception as one line (and the JSON object with ``--json``)."""
    code = int(getattr(exc, "exit_code", 2) or 2)
    if isinstance(exc, UserError):
        message, kind = exc.message, exc.kind
    else:
        message, kind = plain_message(exc.format_message()), type(exc).__name__
        ctx = getattr(exc, "ctx", None)
        old = re.match(r"No such option: (--[\w-]+)", message)
        if old and old.group(1) in RENAMED_FLAGS:
            message = f"{old.group(1)} is now {RENAMED_FLAGS[old.group(1)]}"
        if isinstance(exc, _UsageError) and ctx is not None:
            message += f" (see '{ctx.command_path} --help')"
    show_error(message)
    if as_json:
        typer.echo(to_json(error_object(" ".join(message.split()), kind, code)))
    return code


_METAVARS = {int: "INT", float: "NUMBER", Path: "PATH", str: "TEXT", bool: "BOOL"}
#: arguments that name a file but are read as text (a path, or a URI with ``import --from``)
_PATH_TEXT = frozenset({"file", "source"})


def _tidy(command: Any) -> None:
    """Conventional metavars for every option and argument that has none (``INT``, ``PATH``...);
    flags show none. Typer would print ``<list[str]>``, ``<int range>``. Plain values are read
    without pydantic (:func:`_quicken`)."""
    for p in getattr(command, "params", []):
        _quicken(p)
        if p.metavar is not None or getattr(p, "is_flag", False):
            continue
        desc = getattr(p, "type_descriptor", None)
        annotation = getattr(desc, "annotation", None)
        base = annotation
        if getattr(desc, "is_list", False):
            args = getattr(annotation, "__args__", None) or (str,)
            base = args[0]
        if p.param_type_name == "argument":
            p.metavar = p.name.upper()  # Typer's usage line adds {} or [] itself
            # Typer labels an argument with its Python type (``FILE <str>``); give it the
            # options' names. A file given as text (``import FILE``, a path or a URI: Path would
            # fold the // of sqlite:///) is still a path to the person reading the help.
            label = "path" if base is str and p.name in _PATH_TEXT else _METAVARS.get(base, "TEXT").lower()
            p.display_type = lambda ctx, label=label: f"<{label}>"  # type: ignore[method-assign]
        else:
            p.metavar = _METAVARS.get(base, "TEXT")
    if getattr(command, "help", None):
        command.help = _keep_examples(command.help)
    subs = getattr(command, "commands", {})
    for sub in (subs.built() if isinstance(subs, LazyCommands) else subs).values():
        _tidy(sub)


# -- values read without pydantic ---------------------------------------------------------------
#
# Typer (0.2x) reads every parameter's value, the defaults included, through a pydantic
# TypeAdapter it builds on first use: for ``scalinglab import`` that imported pydantic and built
# ~10 adapters, 0.16 s of a start-up of 0.5 s (cProfile, process time), most of them only to
# pass None through. Here a parameter builds its adapter only for a value that needs one: an
# option not given (None) is None (or ``()``), as Typer's own first step has it; a text value
# for ``str``, a path for ``Path`` (Typer's own path checks, after ``Path(text)``, which is
# what pydantic's ``Path`` makes of text) and text items for ``list[str]`` are read as Typer's
# adapters read them. Anything else (a number, a choice, a parser, a value that fails a check)
# goes to Typer's adapter, so its result and its error message are Typer's.

try:  # Typer's coercion layer (typer >= 0.2x); older Typers use click's types, no pydantic
    from typer._coercion import RuntimeParam as _RuntimeParam
    from typer._coercion import build_runtime_param as _build_runtime_param
    from typer._param_types import coerce_cli_path as _coerce_cli_path
except ImportError:  # pragma: no cover - depends on the installed Typer
    _RuntimeParam = None


def _quick_kind(descriptor: Any) -> str:
    """``"str"``, ``"path"`` or ``"list_str"`` for a parameter whose given values can be read
    without pydantic; ``"other"`` for one whose values all go to Typer's adapter."""
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or getattr(info, "parser", None) is not None:
        return "other"
    annotation = descriptor.annotation
    if annotation is str:
        return "str"
    if annotation is Path and getattr(info, "path_type", None) is None:
        return "path"
    if annotation == list[str]:
        return "list_str"
    return "other"


if _RuntimeParam is not None:
    @dataclass(frozen=True)
    class _QuickParam(_RuntimeParam):  # type: ignore[misc,valid-type]
        """Reads a plain value as Typer's adapter would; hands anything else to that adapter."""

        kind: str

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.kind == "str" and type(value) is str:
                return value
            if self.kind == "list_str" and isinstance(value, (list, tuple)) \
                    and all(type(v) is str for v in value):
                return list(value)
            if self.kind == "path" and (type(value) is str or isinstance(value, Path)):
                try:
                    return _coerce_cli_path(Path(value), self.parameter_info, path_type=Path,
                                            param=param, ctx=ctx)
                except Exception:  # Typer's adapter words the error, from the value as given
                    pass
            adapter = _build_runtime_param(param.type_descriptor)
            param._runtime_param = adapter
            return adapter._coerce_value(value, param=param, ctx=ctx)


def _quicken(param: Any) -> None:
    """Let ``param`` read plain values without pydantic (see above), where Typer allows."""
    if param is None or _RuntimeParam is None or getattr(param, "_runtime_param", False) \
            is not None:
        return
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        param._runtime_param = _QuickParam(parameter_info=descriptor.parameter_info,
                                           annotation=descriptor.annotation,
                                           kind=_quick_kind(descriptor))


def _keep_examples(text: str) -> str:
    """Mark indented paragraphs (example command lines) so Click never rewraps them: a long
    example with a trailing comment was folded mid-comment at 80 columns."""
    import inspect

    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(f"\b\n{p}" if p.startswith((" ", "\t", "Example:")) else p
                        for p in paragraphs)


class ScalingLabGroup(TyperGroup):
    """A command group that shows every error as one line on stderr (exit code 2).

    Library errors become :class:`UserError` worded with the command's flags: every group
    records the command it resolves in ``ctx.meta`` (shared by the whole context tree), so the
    error of a nested command (``fit chinchilla``) names that command's flags.
    """

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None:
            ctx.meta[_COMMAND_KEY] = cmd
            if not isinstance(cmd, ScalingLabGroup) and \
                    "help_option_names" not in (getattr(cmd, "context_settings", None) or {}):
                # its --help option, made now with the names its own context inherits from
                # this one (as click would make it), reads its value without pydantic too
                _quicken(cmd.get_help_option(ctx))
        return name, cmd, rest

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _quicken(option)
        return option

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ScalingLabError as exc:
            raise UserError(cli_message(exc, ctx.meta.get(_COMMAND_KEY)),
                            kind=type(exc).__name__) from None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        _tidy(self)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except _ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as asked
                typer.echo(exc.ctx.get_help())
                sys.exit(0)
            sys.exit(_report(exc, _wants_json(argv)))
        except _Abort:
            show_error("aborted")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


class LazyCommands(MutableMapping[str, Any]):
    """A group's sub-commands by name, each built by ``load(name)`` the first time it is looked
    up: listing the names (``--help``, "did you mean") imports nothing; ``items()`` and
    ``values()`` build them all (a test that walks every command sees every command)."""

    def __init__(self, names: Iterable[str], load: Callable[[str], Any]) -> None:
        self._names = list(names)
        self._load = load
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in self._names:
                raise KeyError(name)
            self._built[name] = self._load(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._names:
            self._names.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def built(self) -> dict[str, Any]:
        """The commands built so far (what tidying may touch without building the rest)."""
        return dict(self._built)


@dataclass(frozen=True)
class CommandEntry:
    """One line of the command table: where a command lives and its one-line help.

    ``target`` is ``"module:attribute"``, a function (a command) or a Typer app (a group);
    ``extra`` adds commands that live in another area's module to a group (``fit downstream``),
    by name -> ``"module:function"``. ``help`` is the line ``--help`` lists, so listing the
    commands imports none of them (a test checks it against the command's own help).
    """

    target: str
    help: str
    extra: Mapping[str, str] = field(default_factory=dict)


def _resolve(target: str) -> Any:
    from importlib import import_module

    module, _, attribute = target.partition(":")
    return getattr(import_module(module), attribute)


def build_command(name: str, entry: CommandEntry) -> Any:
    """The click command (or group) of one table entry, built from its area's module."""
    from typer.main import get_command

    obj = _resolve(entry.target)
    scratch = new_app()
    scratch.callback()(lambda: None)  # a group even when it holds one command
    if isinstance(obj, typer.Typer):
        scratch.add_typer(obj, name=name)
    else:
        scratch.command(name)(obj)
    command = get_command(scratch).commands[name]
    for sub, target in entry.extra.items():
        extra = new_app()
        extra.callback()(lambda: None)
        extra.command(sub)(_resolve(target))
        command.add_command(get_command(extra).commands[sub], sub)
    if entry.extra:  # commands before groups, as Typer lists them
        ordered = sorted(command.commands.items(), key=lambda kv: hasattr(kv[1], "commands"))
        command.commands = dict(ordered)
    _tidy(command)
    return command


class LazyGroup(ScalingLabGroup):
    """The root group: its commands come from :attr:`table` and each area's module is imported
    only when its command runs, so ``--version`` and ``--help`` start in a fraction of a second
    (torch, scipy, sympy, pandas... are imported by the commands that need them)."""

    table: Mapping[str, CommandEntry] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        eager = dict(self.commands)
        self.commands = LazyCommands(self.table, lambda name: build_command(name, self.table[name]))
        for name, command in eager.items():
            self.commands[name] = command

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # names only: Typer's own walks items(), building each

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, self.table[name].help) for name in self.list_commands(ctx)
                if name in self.table]
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, _Command(name, help=text).get_short_help_str(limit))
                                for name, text in rows])


def new_app(**kwargs: Any) -> typer.Typer:
    """A Typer app (or sub-app) whose group shows errors as one line (see ScalingLabGroup) and
    whose help is wrapped once, by click's plain formatter."""
    kwargs.setdefault("cls", ScalingLabGroup)
    kwargs.setdefault("rich_markup_mode", None)
    return typer.Typer(**kwargs)


# -- parsing the shared options ----------------------------------------------------------------


def parse_tags(items: Iterable[str] | str | None) -> dict[str, str]:
    """``--tag`` values (``dataset=c4``, ``sweep:a``, ``a=1,b:2``) -> ``{"dataset": "c4", ...}``.

    A pair splits at its first ``=`` or ``:``, so a value may hold the other (``url=http://x``).
    """
    from scalinglab.runs.schema import parse_tag_filters

    try:
        return parse_tag_filters(items)
    except ParameterError as exc:
        raise UserError(str(exc).replace("tag filter", "--tag"), kind="ParameterError") from None


def quantity(flag: str, positive: bool = False) -> Callable[[Any], float]:
    """The parser of a numeric flag, as a typed parameter (``typer.Option(..., parser=
    quantity("--compute"))``): a human number (``7B``, ``1e21``, ``3.4e19``, ``2,048``; see
    :func:`scalinglab.values.parse_quantity`), or one line naming the flag. ``positive``: more
    than zero and finite."""
    from scalinglab.values import EXAMPLES, parse_quantity

    def parse(text: Any) -> float:
        try:
            value = parse_quantity(text)
        except ValueError:
            raise UserError(f"{flag} {str(text)!r} is not a number ({EXAMPLES})",
                            kind="ParameterError") from None
        if positive and not (0 < value < float("inf")):
            raise UserError(f"{flag} must be a positive number, not {str(text)!r}",
                            kind="ParameterError")
        return value

    return parse


def _items(value: Any) -> list[Any]:
    """A flag's value as its comma-separated items (a repeatable flag: every occurrence's)."""
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    return [p for v in values for p in (str(v).split(",") if isinstance(v, str) else [v])
            if not isinstance(p, str) or p.strip()]


def quantities(flag: str, positive: bool = False, at_least: int = 1,
               finite: bool = True) -> Callable[[Any], Any]:
    """The parser of a flag of comma-separated human numbers (``--spend 1e20,1e21``), as a
    typed parameter (``parser=`` of a text flag, ``callback=`` of a repeatable one): a list of
    floats, each finite (and above zero with ``positive``), or one line naming the flag.
    ``finite=False`` leaves the range to the library, which names the flag itself (a sweep
    plan's checks). An absent flag stays None."""
    from scalinglab.values import EXAMPLES, parse_quantity

    def parse(value: Any) -> list[float] | None:
        if value is None or (isinstance(value, (list, tuple)) and not value):
            return None if value is None else []
        out = []
        for part in _items(value):
            try:
                v = parse_quantity(part)
            except ValueError:
                shown = value if not isinstance(value, (list, tuple)) else ",".join(map(str, value))
                raise UserError(f"{flag} {str(shown)!r}: expected comma-separated numbers "
                                f"({EXAMPLES}); {str(part).strip()!r} is not one",
                                kind="ParameterError") from None
            if (finite and not math.isfinite(v)) or (positive and v <= 0):
                raise UserError(f"{flag} must be {'positive ' if positive else ''}finite "
                                f"numbers, not {str(part).strip()!r}", kind="ParameterError")
            out.append(v)
        if len(out) < at_least:
            raise UserError(f"{flag}: give at least {at_least} number{'s' * (at_least > 1)}",
                            kind="ParameterError")
        return out

    return parse


def quantity_range(flag: str) -> Callable[[Any], tuple[float, float]]:
    """The parser of a ``LOW,HIGH`` flag of human numbers with ``0 < LOW <= HIGH``."""
    many = quantities(flag, positive=True)

    def parse(value: Any) -> tuple[float, float]:
        if isinstance(value, tuple):
            return value  # already parsed (a default given as a pair)
        values = many(value) or []
        if len(values) != 2 or not 0 < values[0] <= values[1]:
            raise UserError(f"{flag} {str(value)!r}: give LOW,HIGH with 0 < LOW <= HIGH, "
                            "e.g. 2,2000", kind="ParameterError")
        return values[0], values[1]

    return parse


def fraction(flag: str, *, at_most: float | None = 1.0) -> Callable[[Any], float]:
    """The parser of a share (``--budget 5%`` or ``0.05``), above 0 and at most ``at_most``
    (None: no upper bound), or one line naming the flag."""
    from scalinglab.values import parse_fraction

    def parse(value: Any) -> float:
        try:
            v = parse_fraction(value)
        except ValueError as exc:
            raise UserError(f"{flag} {exc}", kind="ParameterError") from None
        if not (0 < v and (at_most is None or v <= at_most)):
            where = "above 0" if at_most is None else f"in (0, {at_most:g}]"
            raise UserError(f"{flag} must be a share {where} (e.g. 0.05 or 5%), not "
                            f"{str(value)!r}", kind="ParameterError")
        return v

    return parse


def fractions(flag: str) -> Callable[[Any], list[float]]:
    """The parser of comma-separated shares (``--budgets 1%,5%,10%``), each in (0, 1]."""
    one = fraction(flag)

    def parse(value: Any) -> list[float]:
        out = [one(p) for p in _items(value)]
        if not out:
            raise UserError(f"{flag}: give at least one share", kind="ParameterError")
        return out

    return parse


def whole_numbers(flag: str, minimum: int = 1) -> Callable[[Any], list[int] | None]:
    """The parser of comma-separated (and repeatable) whole numbers ``>= minimum``
    (``--k 1,10,100``; ``1k`` is 1000), or one line naming the flag; absent: None."""
    from scalinglab.values import parse_quantity

    def parse(value: Any) -> list[int] | None:
        if value is None or (isinstance(value, (list, tuple)) and not value):
            return None
        out = []
        for part in _items(value):
            try:
                v = parse_quantity(part)
            except ValueError:
                raise UserError(f"{flag} {str(part).strip()!r} is not a whole number",
                                kind="ParameterError") from None
            if not math.isfinite(v) or v < minimum or v % 1:
                raise UserError(f"{flag} must be whole numbers >= {minimum}, not "
                                f"{str(part).strip()!r}", kind="ParameterError")
            out.append(int(v))
        return out

    return parse


def quantity_pairs(flag: str, positive: bool = False) -> Callable[[Any], dict[str, float]]:
    """The parser of ``KEY=NUMBER`` pairs (``--params 8B=8e9,70B=70B``; repeatable,
    comma-separated): ``{key: float}``, or one line naming the flag and the pair."""
    from scalinglab.values import parse_quantities

    def parse(value: Any) -> dict[str, float]:
        if isinstance(value, dict):
            return value
        try:
            out = parse_quantities(value, flag)
        except ParameterError as exc:
            raise UserError(str(exc), kind="ParameterError") from None
        bad = [k for k, v in out.items() if not math.isfinite(v) or (positive and v <= 0)]
        if bad:
            raise UserError(f"{flag} {bad[0]} must be a {'positive ' if positive else ''}finite "
                            f"number, not {out[bad[0]]:g}", kind="ParameterError")
        return out

    return parse


def parse_map(items: Iterable[str] | None) -> dict[str, str]:
    """``--map loss=final_loss,N=params`` -> ``{"loss": "final_loss", "N": "params"}``."""
    from scalinglab.values import parse_pairs

    try:
        return parse_pairs(items, "--map")
    except ParameterError:
        bad = next(p for item in items or [] for p in str(item).split(",")
                   if p.strip() and not all(x.strip() for x in p.partition("=")[::2]))
        raise UserError(f"--map {bad!r} must look like NAME=COLUMN, e.g. loss=final_loss") from None


def output_format(fmt: str, as_json: bool = False) -> str:
    """The ``--format`` asked for (``--json`` is ``--format json``); a clear error otherwise."""
    fmt = (fmt or "table").lower()
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return "json" if as_json else fmt


# -- output ------------------------------------------------------------------------------------


def to_json(obj: Any) -> str:
    """:func:`scalinglab.serialize.to_json` (imported when first used: numpy is not loaded by
    ``--version``)."""
    from scalinglab.serialize import to_json as write

    return write(obj)


def emit_json(obj: Any) -> None:
    """Write JSON to stdout with no rich markup, so it can be piped into ``jq``."""
    typer.echo(to_json(obj))


def _per_model(results: Mapping[str, Any], as_dict: Callable[[Any], Any]) -> Any:
    """One result's dict alone, or ``{model: dict}`` for several (what ``--save`` and ``--json``
    write, and :func:`scalinglab.results.load_results` reads back)."""
    out = {m: as_dict(r) for m, r in results.items()}
    return next(iter(out.values())) if len(out) == 1 else out


def command_inputs(*outputs: str) -> list[Path]:
    """Every path the running command was given, but its ``outputs`` (parameter names): what
    an output must not overwrite (``fit custom runs.csv --save runs.csv``, ``--store``)."""
    import importlib

    # the click Typer runs on (it may vendor its own, typer._click), whose context is current
    package = _ClickException.__module__.rsplit(".", 1)[0]
    ctx = importlib.import_module(f"{package}.globals").get_current_context(silent=True)
    found: list[Path] = []
    while ctx is not None:
        for name, value in ctx.params.items():
            if name in outputs:
                continue
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(v, Path) or (isinstance(v, str) and v and Path(v).exists()):
                    found.append(Path(v))
        ctx = ctx.parent
    return found


def write_file(path: Path, data: Any, flag: str, output: str | None = None) -> Path:
    """Write a command's output file by the rules of :func:`scalinglab.safefile.write_output`
    (never one of the command's inputs nor a run store; atomic), ``flag`` naming it in errors;
    ``output`` is the command's parameter for it (default: the flag's name)."""
    from scalinglab.safefile import write_output

    param = output or flag.lstrip("-").replace("-", "_")
    return write_output(path, data, inputs=command_inputs(param), flag=flag)


def check_output_early(path: Path | None, flag: str, output: str | None = None) -> None:
    """:func:`write_file`'s refusals, before a long computation rather than after it (the
    folder may still be missing: commands that make it check that when they write)."""
    from scalinglab.safefile import check_output

    if path is None:
        return
    param = output or flag.lstrip("-").replace("-", "_")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.is_dir():
        check_output(path, inputs=command_inputs(param), flag=flag)


def save_results(save: Path | None, results: Any) -> None:
    """``--save``: a result (or ``{model: result}``) with its bootstrap draws, as JSON."""
    if save is None:
        return
    from scalinglab.serialize import keep_infinities

    def saved(r: Any) -> Any:  # infinities kept, so the file loads back as it was
        return keep_infinities(r.to_dict(include_draws=True))

    save_dict(save, _per_model(results, saved) if isinstance(results, Mapping) else saved(results))


def save_dict(save: Path, data: Any) -> None:
    """THE ``--save`` writer: ``data`` as JSON ending in one newline (as every saved file does),
    written atomically and never over an input."""
    write_file(save, to_json(data) + "\n", "--save")


def show_results(results: Any, save: Path | None, as_json: bool) -> None:
    """A command's ending: save with ``--save``; then the JSON (``--json``) or each result's
    summary, one after the other, and where it was saved."""
    save_results(save, results)
    many = results if isinstance(results, Mapping) else {"": results}
    if as_json:
        emit_json(_per_model(many, lambda r: r.to_dict()))
        return
    for r in many.values():
        print_summary(r.summary())
    if save is not None:
        console.print(f"[green]saved[/] to {save}")


def print_summary(summary: Any) -> None:
    """A result's :class:`~scalinglab.summary.Summary`: rich tables on a terminal, plain aligned
    text when piped (never a number cut to fit a width)."""
    if console.is_terminal:
        console.print(summary)
    else:
        typer.echo(summary.as_text(), nl=False)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str = "",
                fmt: str = "table", exact: bool = True, records: Sequence[Mapping[str, Any]]
                | None = None) -> None:
    """Rows under column headings, as ``fmt`` (see :data:`FORMATS`).

    ``table``: a rich table on a terminal that fits it; otherwise (piped, or a table wider than
    the terminal) plain text aligned to the widest cell, so nothing is cut. ``exact`` prints
    numbers in full (raw data) rather than to 4 significant digits (estimates). ``csv``/``tsv``
    write every value in full; ``json`` writes ``records`` when given (e.g. whole runs), else
    one object per row.
    """
    from scalinglab.summary import Table

    table = Table(title, list(columns), [list(r) for r in rows], exact=exact)
    if fmt == "json":
        emit_json(list(records) if records is not None else
                  [dict(zip(table.columns, r, strict=True)) for r in table.rows])
        return
    if fmt in ("csv", "tsv"):
        typer.echo(table.as_delimited("," if fmt == "csv" else "\t"), nl=False)
        return
    if console.is_terminal and _fits(table):
        console.print(table)
    elif not console.is_terminal and table.title:
        # piped: stdout is the data alone (header, rule, rows); the title goes to stderr
        err_console.print(table.title, highlight=False, soft_wrap=True)
        table.title = ""
        typer.echo(table.as_text())
    else:
        typer.echo(table.as_text())


def _fits(table: Any) -> bool:
    """Whether the rich table shows every cell whole at the terminal's width."""
    widths = [max([len(h), *(len(r[j]) for r in table.texts())])
              for j, h in enumerate(table.columns)]
    return sum(widths) + 3 * len(widths) + 1 <= console.width


@contextmanager
def progress_display(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """``update(stage, done, total)`` for long work, on stderr (stdout stays for results): the
    one progress display (:func:`scalinglab.sweep.display.stage_progress`), with elapsed time
    and an ETA per stage; one line per stage, as it starts, when not on a terminal (the report's
    and the demo's stages: a log shows where a job of many steps stands)."""
    from scalinglab.sweep.display import stage_progress

    with stage_progress(enabled, console=err_console, log_after=0.0) as update:
        yield update


def fail(message: str, code: int = 2) -> None:
    show_error(message)
    raise typer.Exit(code)
