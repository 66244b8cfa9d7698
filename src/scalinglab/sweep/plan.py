"""Sweep plans: which models to train on what, as a TOML file a person can read and edit.

A plan has ``[sweep]`` (name, kind), ``[data]`` (a :class:`DataSpec`), ``[defaults]`` (training
settings every run shares) and one ``[[runs]]`` table per run, which may override any default.
A run's id is a hash of everything that determines its result (shape, training settings, data),
recomputed on load: an edited run is a new run, an unchanged one keeps its id, so a rerun can
skip what the store already holds.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from scalinglab.errors import InputError, ParameterError, did_you_mean
from scalinglab.results import short_repr
from scalinglab.safefile import read_bytes, write_output
from scalinglab.sweep.data import DataSpec
from scalinglab.sweep.model import (
    ModelConfig,
    embedding_params,
    flops_per_token,
    non_embedding_params,
)
from scalinglab.sweep.schema import (
    MODEL_RULES,
    SECTIONS,
    TRAIN_RULES,
    DataSection,
    DefaultsSection,
    Problem,
    Rule,
    RunTable,
    SettingError,
    SweepSection,
    parse_section,
    real,
    run_problem,
    settle,
    shown,
    whole,
)
from scalinglab.sweep.shapes import shape_for
from scalinglab.sweep.train import TrainConfig

_MODEL_KEYS = tuple(f.name for f in fields(ModelConfig))
_TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig))
_MODEL_DEFAULTS = {f.name: f.default for f in fields(ModelConfig) if f.default is not MISSING}
_TRAIN_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


@dataclass(frozen=True)
class RunSpec:
    """One run of a plan: everything needed to train it, and its planned N, D, C."""

    __repr__ = short_repr  # one short line, not every field

    model: ModelConfig
    train: TrainConfig
    data: DataSpec
    tags: dict[str, str] = field(default_factory=dict)
    budget: float | None = None

    @property
    def N(self) -> int:
        return non_embedding_params(self.model)

    @property
    def tokens_per_step(self) -> int:
        return max(1, self.train.batch_tokens // self.model.seq_len) * self.model.seq_len

    @property
    def D(self) -> int:
        return self.train.steps * self.tokens_per_step

    @property
    def C(self) -> float:
        return 6.0 * self.N * self.D

    @property
    def run_id(self) -> str:
        payload = {"model": self.model.to_dict(), "train": self.train.to_dict(),
                   "data": self.data.to_dict()}
        blob = json.dumps(payload, sort_keys=True)
        return "s-" + hashlib.sha1(blob.encode()).hexdigest()[:16]

    def record(self) -> dict[str, Any]:
        """The run's row in the store, before any result is known."""
        return {
            "run_id": self.run_id, "N": float(self.N), "D": float(self.D), "C": self.C,
            "lr": self.train.lr, "batch_tokens": float(self.tokens_per_step),
            "weight_decay": self.train.weight_decay, "seq_len": float(self.model.seq_len),
            "tags": dict(self.tags),
            "extra": {
                "C_attention": flops_per_token(self.model, attention=True) * self.D,
                "embedding_params": embedding_params(self.model),
                "budget": self.budget,
                **{k: v for k, v in self.model.to_dict().items()},
                "steps": self.train.steps, "schedule": self.train.schedule, "seed": self.train.seed,
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "train": self.train.to_dict(),
                "data": self.data.to_dict(), "tags": self.tags, "budget": self.budget}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        return cls(ModelConfig(**d["model"]), TrainConfig(**d["train"]),
                   DataSpec.from_dict(d["data"]), dict(d.get("tags") or {}), d.get("budget"))


@dataclass
class SweepPlan:

    __repr__ = short_repr  # one short line, not every field
    name: str
    kind: str
    runs: list[RunSpec]
    data: DataSpec = field(default_factory=DataSpec)
    defaults: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source: str | None = None  # the file it was read from

    @property
    def total_compute(self) -> float:
        return float(sum(r.C for r in self.runs))

    def to_toml(self) -> str:
        rows = []
        for r in self.runs:
            row: dict[str, Any] = {"run_id": r.run_id}
            if r.budget is not None:
                row["budget"] = float(r.budget)
            row |= {"N": r.N, "D": r.D, "C": float(f"{r.C:.6g}"),
                    "tokens_per_param": round(r.D / r.N, 2),
                    "embedding_params": embedding_params(r.model)}
            merged = {**r.model.to_dict(), **r.train.to_dict()}
            row |= {k: v for k, v in merged.items() if self.defaults.get(k) != v}
            if r.tags:
                row["tags"] = dict(r.tags)
            rows.append(row)
        doc = {
            "sweep": {"name": self.name, "kind": self.kind, "runs": len(self.runs),
                      "total_compute": float(f"{self.total_compute:.4g}")},
            "data": self.data.to_dict(),
            "defaults": self.defaults,
            "runs": rows,
        }
        header = (f"# scalinglab sweep plan ({self.kind}): {len(self.runs)} runs, "
                  f"{self.total_compute:.3g} FLOPs in all.\n"
                  "# Edit freely: a run's settings override [defaults]. run_id, N, D, C and\n"
                  "# embedding_params are recomputed when the plan is read; an edited run gets a "
                  "new id.\n"
                  "# Run it with: scalinglab sweep run THIS_FILE --store runs.duckdb\n\n")
        return header + tomli_w.dumps(doc)

    def save(self, path: str | Path, inputs: Any = ()) -> Path:
        """Write the plan (creating its folder); InputError if the path cannot be written, is
        a run store or one of ``inputs``."""
        path = Path(path)
        text = self.to_toml()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot write the plan here ({exc.strerror or type(exc).__name__})",
                             source=str(path)) from None
        # atomic, and never onto a run store, a symlink or a folder
        return write_output(path, text, inputs=inputs)



def load_plan(path: str | Path) -> SweepPlan:
    """Read and check a plan file; raises :class:`~scalinglab.errors.InputError` naming the
    file, the run (``run 3``, or ``[defaults]``, ``[data]``, ``[sweep]``) and the key.

    Every key is checked against :mod:`scalinglab.sweep.schema`, so nothing that would fail or
    misbehave in training is accepted; notes (a run edited since it was planned, a hand-edited
    N that the shape does not give) are returned in ``SweepPlan.notes``.
    """
    path = Path(path)
    source = str(path)
    if path.is_dir():
        raise InputError("is a folder, not a plan file", source=source)
    try:
        # a regular file of at most 64 MB (a FIFO or /dev/zero: refused, not read forever)
        doc = tomllib.loads(read_bytes(path, 64 * 1024 * 1024).decode("utf-8"))
    except InputError as exc:
        if "no such file" in exc.detail:
            raise InputError("plan file not found", source=source) from None
        raise
    except RecursionError:
        raise InputError("not valid TOML (nested too deeply)", source=source) from None
    except FileNotFoundError:
        raise InputError("plan file not found", source=source) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a plan file", source=source) from None
    except UnicodeDecodeError:
        raise InputError("not a text file (plans are UTF-8 TOML)", source=source) from None
    except OSError as exc:
        raise InputError(f"cannot read the plan ({exc.strerror or type(exc).__name__})",
                         source=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML ({exc})", source=source) from None

    def section(model: Any, values: Any, where: str) -> dict[str, Any]:
        try:
            return parse_section(model, values)
        except Problem as exc:
            more = f" (and {exc.more} more problem{'s' if exc.more > 1 else ''} there)" if exc.more else ""
            raise InputError(exc.detail + more, source=source, row=where, column=exc.key) from None

    unknown = [k for k in doc if k not in SECTIONS]
    if unknown:
        raise InputError(f"unknown section [{unknown[0]}]{did_you_mean(unknown[0], SECTIONS)}; "
                         "a plan has [sweep], [data], [defaults] and [[runs]]", source=source)
    sweep = section(SweepSection, doc.get("sweep", {}), "[sweep]")
    data = DataSpec(**section(DataSection, doc.get("data", {}), "[data]"))
    defaults = section(DefaultsSection, doc.get("defaults", {}), "[defaults]")
    rows = doc.get("runs")
    if not rows:
        raise InputError("no [[runs]] in this plan", source=source)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError("runs must be tables, written [[runs]]", source=source)
    runs, notes = [], []
    for i, raw in enumerate(rows, start=1):
        where = f"run {i}"
        row = section(RunTable, raw, where)
        merged = {**defaults, **row}
        problem = run_problem(merged, _MODEL_DEFAULTS, _TRAIN_DEFAULTS)
        if problem:
            raise InputError(problem[1], source=source, row=where, column=problem[0])
        model = ModelConfig(**{k: merged[k] for k in _MODEL_KEYS if k in merged})
        train = TrainConfig(**{k: merged[k] for k in _TRAIN_KEYS if k in merged})
        spec = RunSpec(model, train, data, dict(merged.get("tags") or {}), merged.get("budget"))
        if "run_id" in row and row["run_id"] != spec.run_id:
            notes.append(f"run {i} was edited since it was planned; its id is now {spec.run_id}")
        elif "run_id" in row:
            notes.extend(_stale_written(spec, row, i))
        if spec.tokens_per_step != train.batch_tokens:
            notes.append(f"run {i}: batch_tokens = {train.batch_tokens} is not a multiple of "
                         f"seq_len = {model.seq_len}; each step takes "
                         f"{spec.tokens_per_step // model.seq_len} sequences "
                         f"({spec.tokens_per_step} tokens)")
        runs.append(spec)
    ids = [r.run_id for r in runs]
    if len(set(ids)) < len(ids):
        first = next(i for i, r in enumerate(ids, start=1) if ids.count(r) > 1)
        second = next(i for i, r in enumerate(ids, start=1) if r == ids[first - 1] and i > first)
        raise InputError(f"identical to run {first} (same model, training and data)",
                         source=source, row=f"run {second}")
    return SweepPlan(name=str(sweep.get("name", path.stem)), kind=str(sweep.get("kind", "custom")),
                     runs=runs, data=data, defaults=defaults, notes=notes, source=source)


def _stale_written(spec: RunSpec, row: dict[str, Any], i: int) -> list[str]:
    """Notes for an unedited run whose written N/D/C were changed by hand: they do nothing."""
    actual = {"N": spec.N, "D": spec.D, "C": spec.C, "embedding_params": embedding_params(spec.model)}
    out = []
    for key, value in actual.items():
        if key in row and not math.isclose(row[key], value, rel_tol=1e-5):
            out.append(f"run {i}: {key} = {row[key]:g} in the file, but its settings give "
                       f"{value:g}; {key} is computed, not set (edit d_model, n_layers or steps)")
    return out


# -- planning ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Defaults:
    """Settings shared by a plan's runs; every field can be overridden per run in the file."""

    seq_len: int = 128
    batch_tokens: int = 2048
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup: float = 0.05
    schedule: str = "cosine"
    seed: int = 0
    vocab_size: int = 256
    positions: str = "rope"
    tie_embeddings: bool = True
    ffn_ratio: float = 4.0
    aspect: float = 64.0
    eval_tokens: int = 65_536
    min_steps: int = 20

    def __post_init__(self) -> None:
        rules = {k: r for k, r in {**MODEL_RULES, **TRAIN_RULES}.items() if k in self.__dict__}
        problem = settle(self, {**rules, "aspect": real(0, lo_open=True), "min_steps": whole(1)})
        if problem is None and self.batch_tokens < self.seq_len:
            raise ParameterError(f"batch_tokens ({self.batch_tokens}) must hold at least one "
                                 f"sequence of seq_len ({self.seq_len}) tokens",
                                 "batch_tokens", "seq_len")
        if problem:
            raise ParameterError(f"{problem[0]} {problem[1]}", problem[0])

    def shape(self, target_n: float) -> ModelConfig:
        return shape_for(target_n, aspect=self.aspect, seq_len=self.seq_len,
                         vocab_size=self.vocab_size, ffn_ratio=self.ffn_ratio,
                         positions=self.positions, tie_embeddings=self.tie_embeddings)

    def recorded(self) -> dict[str, Any]:
        """What [defaults] says: the shared model and training keys."""
        return {k: v for k, v in self.__dict__.items()
                if k in _MODEL_KEYS or k in _TRAIN_KEYS}

    def train(self, steps: int, lr: float | None = None, batch_tokens: int | None = None) -> TrainConfig:
        return TrainConfig(lr=lr or self.lr, batch_tokens=batch_tokens or self.batch_tokens,
                           steps=steps, weight_decay=self.weight_decay, warmup=self.warmup,
                           schedule=self.schedule, seed=self.seed,  # type: ignore[arg-type]
                           eval_tokens=self.eval_tokens)


def _check(name: str, value: Any, rule: Rule) -> None:
    try:
        rule(value)
    except SettingError as exc:
        raise ParameterError(f"{name} {exc.detail}", name) from None


def _positive(name: str, values: list[float], what: str) -> None:
    if not values:
        raise ParameterError(f"{name} needs at least one value", name)
    for v in values:
        if isinstance(v, bool) or not (isinstance(v, numbers.Real) and v > 0 and math.isfinite(v)):
            raise ParameterError(f"{name} must be positive finite {what}; {shown(v)} is not", name)


def _steps_for(tokens: float, batch_tokens: int, seq_len: int, min_steps: int) -> int:
    per_step = max(1, batch_tokens // seq_len) * seq_len
    return max(min_steps, int(round(tokens / per_step)))


def isoflop_plan(budgets: list[float], sizes: int = 5, span: float = 16.0,
                 tokens_per_param: float = 20.0, data: DataSpec = DataSpec(),
                 defaults: Defaults = Defaults(), name: str = "isoflop") -> SweepPlan:
    """For each budget C, ``sizes`` models log-spaced over a factor ``span`` around the
    Chinchilla-rule optimum N = sqrt(C / (6 * tokens_per_param)), each trained on D = C/(6N)."""
    _positive("budgets", budgets, "FLOP counts, e.g. 1e13,3e13,1e14")
    _check("sizes", sizes, whole(1))
    _check("span", span, real(1))
    _check("tokens_per_param", tokens_per_param, real(0, lo_open=True))
    runs, notes = [], []
    for budget in sorted(budgets):
        n_center = math.sqrt(budget / (6.0 * tokens_per_param))
        targets = n_center * np.geomspace(1 / math.sqrt(span), math.sqrt(span), sizes)
        seen: set[tuple[int, int]] = set()
        for target in targets:
            model = defaults.shape(float(target))
            if (model.d_model, model.n_layers) in seen:
                continue
            if non_embedding_params(model) > 2 * target:
                notes.append(f"budget {budget:.3g}: the smallest shape (N={non_embedding_params(model):,}) "
                             f"is far above the target N={target:,.0f}; raise the budget")
            elif non_embedding_params(model) < target / 2:
                notes.append(f"budget {budget:.3g}: the largest shape (N={non_embedding_params(model):,}) "
                             f"is far below the target N={target:,.0f}; lower the budget")
            seen.add((model.d_model, model.n_layers))
            n = non_embedding_params(model)
            steps = _steps_for(budget / (6.0 * n), defaults.batch_tokens, defaults.seq_len,
                               defaults.min_steps)
            spec = RunSpec(model, defaults.train(steps), data,
                           {"sweep": name, "budget": f"{budget:.3g}"}, float(budget))
            if abs(math.log(spec.C / budget)) > math.log(1.25):
                notes.append(f"budget {budget:.3g}: N={n:,} gets {spec.C:.3g} FLOPs "
                             f"(min {defaults.min_steps} steps)")
            runs.append(spec)
        if len(seen) < sizes:
            notes.append(f"budget {budget:.3g}: only {len(seen)} distinct shapes for {sizes} sizes")
    return SweepPlan(name, "isoflop", runs, data, defaults.recorded(), notes)


def check_grid(lrs: list[float], batches: list[float], sizes: list[float], seq_len: int) -> None:
    """The values of a grid: positive, finite, and batches (tokens) of at least one sequence."""
    _positive("lrs", lrs, "learning rates")
    _positive("batches", batches, "token counts")
    _positive("sizes", sizes, "parameter counts")
    for b in batches:
        _check("batches", b, whole(seq_len))


def grid_plan(lrs: list[float], batches: list[int], sizes: list[float], tokens: float | None = None,
              tokens_per_param: float | None = 20.0, data: DataSpec = DataSpec(),
              defaults: Defaults = Defaults(), name: str = "grid") -> SweepPlan:
    """An lr x batch grid at each model size (N targets), on ``tokens`` or N x tokens_per_param."""
    check_grid(lrs, batches, sizes, defaults.seq_len)
    if tokens is not None:
        _check("tokens", tokens, real(0, lo_open=True))
    elif tokens_per_param is not None:
        _check("tokens_per_param", tokens_per_param, real(0, lo_open=True))
    runs = []
    for target in sizes:
        model = defaults.shape(float(target))
        n = non_embedding_params(model)
        d = tokens if tokens is not None else n * float(tokens_per_param or 20.0)
        for batch in batches:
            steps = _steps_for(d, int(batch), defaults.seq_len, defaults.min_steps)
            for lr in lrs:
                runs.append(RunSpec(model, defaults.train(steps, lr=lr, batch_tokens=int(batch)),
                                    data, {"sweep": name}))
    return SweepPlan(name, "grid", runs, data, defaults.recorded())
