"""What a plan file may say: every key of ``[sweep]``, ``[data]``, ``[defaults]`` and ``[[runs]]``.

A plan is a file people edit by hand, so it is checked as input data when it is read: each key
has a type and a range, and anything that would fail or quietly misbehave at training time (a
zero sequence length, a negative or NaN weight decay, warmup longer than the run, 10.5 steps, a
boolean where a number goes, a misspelt key) is refused then, naming the run and the key.

The rules are the small functions in :data:`MODEL_RULES`, :data:`TRAIN_RULES` and friends, so
the messages are ours (``must be a whole number >= 1, not 10.5``), not the schema library's.
Pydantic holds the structure: which sections and keys exist, unknown keys, where each problem
is. The same rules check :class:`~scalinglab.sweep.model.ModelConfig` and
:class:`~scalinglab.sweep.train.TrainConfig` when Python code builds them, so the file and the
library cannot disagree about what a valid run is.

Numbers keep the type the file gives them (``lr = 1`` stays an int) because a run's id hashes
its settings as written, and a valid plan must keep its ids; a whole-number float for an integer
key (``steps = 1e4``) is taken as that integer (before these checks such a run failed at its
first step, so no stored run has that id).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, create_model
from pydantic_core import PydanticCustomError

from scalinglab.errors import did_you_mean


class SettingError(ValueError):
    """One key's value breaks its rule; ``detail`` reads after the key ("must be ...")."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


Rule = Callable[[Any], Any]


def shown(value: Any) -> str:
    """A value as the message shows it: Python scalars, TOML words for booleans and tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(_python_scalar(value))  # np.int64(-5) shows as -5


def _fmt(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _bounds(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {_fmt(lo)}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {_fmt(hi)}"
    return ""


def _inside(v: float, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> bool:
    if lo is not None and (v <= lo if lo_open else v < lo):
        return False
    return not (hi is not None and (v >= hi if hi_open else v > hi))


def _python_scalar(v: Any) -> Any:
    """numpy scalars (from Python callers) as the Python numbers they hold; others unchanged."""
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    return v


def whole(lo: int | None = None, hi: int | None = None) -> Rule:
    """An integer in [lo, hi]; a whole-number float (``1e4``) is taken as that integer."""
    want = f"a whole number{_bounds(lo, hi, False, False)}"

    def rule(v: Any) -> int:
        v = _python_scalar(v)
        if isinstance(v, float) and math.isfinite(v) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or not _inside(v, lo, hi, False, False):
            raise SettingError(f"must be {want}, not {shown(v)}")
        return v

    rule.__doc__ = want
    return rule


def real(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
         hi_open: bool = False) -> Rule:
    """A finite number in the interval (ints stay ints: see the module docstring)."""
    want = f"a finite number{_bounds(lo, hi, lo_open, hi_open)}"

    def rule(v: Any) -> int | float:
        v = _python_scalar(v)
        if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                or not _inside(v, lo, hi, lo_open, hi_open)):
            raise SettingError(f"must be {want}, not {shown(v)}")
        return v

    rule.__doc__ = want
    return rule


def choice(*options: str) -> Rule:
    want = "one of " + ", ".join(repr(o) for o in options)

    def rule(v: Any) -> str:
        if v not in options or not isinstance(v, str):
            hint = did_you_mean(v, options) if isinstance(v, str) else ""
            raise SettingError(f"must be {want}, not {shown(v)}{hint}")
        return v

    rule.__doc__ = want
    return rule


def flag(v: Any) -> bool:
    """true or false"""
    if not isinstance(v, bool):
        raise SettingError(f"must be true or false, not {shown(v)}")
    return v


def text(v: Any) -> str:
    """a non-empty string"""
    if not isinstance(v, str) or not v.strip():
        raise SettingError(f"must be a non-empty string, not {shown(v)}")
    return v


#: tag keys become JSON keys that filters address (``--tag KEY=VALUE``): plain words only
TAG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def tags(v: Any) -> dict[str, str]:
    """a table of KEY = "VALUE" """
    if not isinstance(v, Mapping):
        raise SettingError(f'must be a table of KEY = "VALUE", e.g. {{ dataset = "owt" }}, '
                           f"not {shown(v)}")
    out = {}
    for key, value in v.items():
        if not TAG_KEY.fullmatch(str(key)):
            raise SettingError(f"key {key!r} must be a word of letters, digits, '_' or '-'")
        if isinstance(value, (Mapping, list, tuple)) or value is None:
            raise SettingError(f"{key!r} must be a string, number or boolean, not {shown(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingError(f"{key!r} must be finite, not {shown(value)}")
        out[str(key)] = str(value)
    return out


# -- the rules ---------------------------------------------------------------------------------

#: :class:`~scalinglab.sweep.model.ModelConfig` fields
MODEL_RULES: dict[str, Rule] = {
    "d_model": whole(1),
    "n_layers": whole(1),
    "n_heads": whole(1),
    "seq_len": whole(2),
    # token ids are stored as uint16, so no corpus needs more than 65,536 rows
    "vocab_size": whole(2, 65_536),
    "ffn_ratio": real(0, lo_open=True),
    "positions": choice("rope", "learned"),
    "tie_embeddings": flag,
}

#: :class:`~scalinglab.sweep.train.TrainConfig` fields
TRAIN_RULES: dict[str, Rule] = {
    "lr": real(0, lo_open=True),
    "batch_tokens": whole(1),
    "steps": whole(1, 2**63 - 1),  # TOML integers are 64-bit
    "weight_decay": real(0),
    # a fraction of the steps: warmup = 2.0 would warm up for twice the run and never decay
    "warmup": real(0, 1, hi_open=True),
    "schedule": choice("cosine", "wsd", "constant"),
    "min_lr_ratio": real(0, 1),
    "decay_fraction": real(0, 1, lo_open=True),
    "beta1": real(0, 1, hi_open=True),
    "beta2": real(0, 1, hi_open=True),
    "grad_clip": real(0),  # 0 turns clipping off
    # numpy's generators refuse negative seeds, at the run's first batch
    "seed": whole(0),
    "eval_tokens": whole(1),
    "evals": whole(1),
    "ema": real(0, 1, hi_open=True),
}

#: keys a run may carry besides its settings: tags, its budget, and what ``to_toml`` writes for
#: the reader (recomputed on load; checked only for type)
RUN_INFO_RULES: dict[str, Rule] = {
    "tags": tags,
    "budget": real(0, lo_open=True),
}
WRITTEN_RULES: dict[str, Rule] = {
    "run_id": text,
    "N": real(0),
    "D": real(0),
    "C": real(0),
    "embedding_params": real(0),
    "tokens_per_param": real(0),
}

SWEEP_RULES: dict[str, Rule] = {
    "name": text,
    "kind": text,
    "runs": whole(0),
    "total_compute": real(0),
}

DATA_RULES: dict[str, Rule] = {
    "source": text,
    "tokenizer": text,
    # the held-out share of a single file or array; file-level splits hold out 1 file in 20
    "val_fraction": real(0, 0.5, lo_open=True, hi_open=True),
}

#: keys a run needs, from its own table or from [defaults]
REQUIRED = ("d_model", "n_layers", "n_heads", "lr", "batch_tokens", "steps")

SECTIONS = ("sweep", "data", "defaults", "runs")


def _for_pydantic(rule: Rule) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        try:
            return rule(v)
        except SettingError as exc:
            raise PydanticCustomError("plan_value", "{detail}", {"detail": exc.detail}) from None

    return check


def _section(name: str, rules: Mapping[str, Rule]) -> type[BaseModel]:
    """A pydantic model of one section: every key optional, unknown keys refused."""
    fields: dict[str, Any] = {key: (Annotated[Any, BeforeValidator(_for_pydantic(rule))], None)
                              for key, rule in rules.items()}
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


SweepSection = _section("SweepSection", SWEEP_RULES)
DataSection = _section("DataSection", DATA_RULES)
DefaultsSection = _section("DefaultsSection", {**MODEL_RULES, **TRAIN_RULES, **RUN_INFO_RULES})
RunTable = _section("RunTable", {**MODEL_RULES, **TRAIN_RULES, **RUN_INFO_RULES, **WRITTEN_RULES})


class Problem(ValueError):
    """What is wrong with one section of a plan: the key (None for the whole section) and why."""

    def __init__(self, key: str | None, detail: str, more: int = 0) -> None:
        super().__init__(f"{key}: {detail}" if key else detail)
        self.key, self.detail, self.more = key, detail, more


def parse_section(model: type[BaseModel], values: Any) -> dict[str, Any]:
    """The keys the section sets, checked and normalised; raises :class:`Problem`."""
    if not isinstance(values, Mapping):
        raise Problem(None, f"must be a table, not {shown(values)}")
    try:
        parsed = model.model_validate(dict(values))
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        key = str(first["loc"][0]) if first["loc"] else None
        if first["type"] == "extra_forbidden":
            detail = "unknown key" + (did_you_mean(key, list(model.model_fields)) if key else "")
            if not did_you_mean(key or "", list(model.model_fields)):
                detail += f"; known keys: {', '.join(model.model_fields)}"
        elif first["type"] == "plan_value":
            detail = str(first["ctx"]["detail"]) if first.get("ctx") else first["msg"]
        else:  # not reached with these rules; kept readable rather than raw
            detail = first["msg"]
        raise Problem(key, detail, more=len(errors) - 1) from None
    return parsed.model_dump(exclude_unset=True)


# -- cross-key rules -----------------------------------------------------------------------------


def shape_problem(d_model: int, n_heads: int, positions: str) -> tuple[str, str] | None:
    """(key, detail) when heads cannot split the width as asked; shared with ModelConfig."""
    if d_model % n_heads:
        return "n_heads", f"{n_heads} does not divide d_model = {d_model}"
    if positions == "rope" and (d_model // n_heads) % 2:
        return "n_heads", (f"{n_heads} heads give an odd head dimension ({d_model // n_heads}); "
                           "rotary positions need an even one")
    return None


def run_problem(merged: Mapping[str, Any], model_defaults: Mapping[str, Any],
                train_defaults: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first (key, detail) that makes a whole run (its table over [defaults]) unusable.

    ``*_defaults`` are the dataclass defaults of keys neither table sets.
    """
    for key in REQUIRED:
        if key not in merged:
            return key, "is missing (give it in this run or in [defaults])"
    get = {**model_defaults, **train_defaults, **merged}.__getitem__
    shape = shape_problem(get("d_model"), get("n_heads"), get("positions"))
    if shape:
        return shape
    if round(get("ffn_ratio") * get("d_model")) < 1:
        return "ffn_ratio", (f"{shown(get('ffn_ratio'))} x d_model = {get('d_model')} leaves an "
                             "MLP of width 0")
    if get("batch_tokens") < get("seq_len"):
        return "batch_tokens", (f"{get('batch_tokens')} does not hold one sequence of seq_len = "
                                f"{get('seq_len')} tokens")
    return None


def settle(obj: Any, rules: Mapping[str, Rule]) -> tuple[str, str] | None:
    """Check a frozen dataclass's fields by ``rules`` and store what each rule returns (numpy
    scalars become Python numbers, ``steps=1e4`` becomes 10000), as a plan file's values are.
    Returns the first (key, detail) that breaks its rule, leaving the rest unchecked."""
    for key, rule in rules.items():
        value = getattr(obj, key)
        if value is None:
            continue
        try:
            object.__setattr__(obj, key, rule(value))
        except SettingError as exc:
            return key, exc.detail
    return None
