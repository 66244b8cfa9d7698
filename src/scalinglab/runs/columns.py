"""Which file column holds which quantity: one alias table, one priority order.

Run imports, fit files and hyperparameter grids all find their columns here, so a file reads
the same way whichever command opens it. Each scalinglab column lists the spellings accepted
for it, best first; the first present wins and a note says so whenever the winner is not the
canonical name. An explicit mapping (``--map loss=final_loss``) always comes first.

Two choices worth stating:

- **loss**: a smoothed final loss beats a raw one (``smooth loss``, Step Law's column, before
  ``loss``); the raw column, if also present, is kept as ``raw_loss``.
- **W&B runs exports** (the UI's CSV): ``Name``, ``State``, ``Tags``, ``_step`` and the usual
  config and summary keys (``params``/``n_params``, ``tokens``, ``train/loss``, ``lr``,
  ``batch_size``) are recognised without a mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from scalinglab.errors import InputError, did_you_mean

#: scalinglab column -> accepted spellings, best first (the canonical name first unless noted)
ALIASES: dict[str, tuple[str, ...]] = {
    "run_id": ("run_id", "id", "ID", "Run ID"),
    "name": ("name", "Name", "run_name", "Run Name", "run"),
    "status": ("status", "State", "state", "Status"),
    "N": ("N", "params", "n_params", "num_params", "non_embedding_params", "parameters",
          "model_params"),
    "D": ("D", "tokens", "n_tokens", "num_tokens", "train_tokens", "tokens_seen", "total_tokens"),
    "C": ("C", "flops", "FLOPs", "compute", "train_flops"),
    # smoothed first: a smoothed final loss is the better estimate of where training ended
    "loss": ("smooth_loss", "smooth loss", "smoothed_loss", "final_loss", "loss", "train/loss",
             "train_loss", "loss/train", "Loss"),
    "lr": ("lr", "learning_rate", "peak_lr", "max_lr", "LR"),
    "batch_tokens": ("batch_tokens", "tokens_per_batch", "batch_size_tokens"),
    "batch_sequences": ("batch_sequences", "batch_size", "bs", "global_batch_size"),
    "weight_decay": ("weight_decay", "wd"),
    "seq_len": ("seq_len", "sequence_length", "seq_length", "block_size", "context_length",
                "max_seq_len"),
    "steps": ("steps", "_step", "max_steps", "train_steps", "iters"),
    "tags": ("tags",),
    "tag_list": ("Tags",),
    "error": ("error", "Error", "failure_reason"),
}

#: what each quantity is, in words (errors and ``scalinglab runs`` show it)
DESCRIPTIONS: dict[str, str] = {
    "N": "non-embedding parameters",
    "D": "training tokens",
    "C": "training FLOPs (6*N*D unless given)",
    "loss": "final loss, nats/token (smoothed when available)",
    "lr": "peak learning rate",
    "batch_tokens": "batch size in tokens",
    "batch_sequences": "batch size in sequences (times seq_len gives batch_tokens)",
    "weight_decay": "AdamW weight decay (decoupled lambda)",
    "seq_len": "sequence length in tokens",
    "steps": "optimiser steps (times batch_tokens gives D when no tokens are given)",
}


@dataclass(frozen=True)
class ColumnChoice:
    """How a file's columns map to scalinglab names: ``rename`` (file -> scalinglab)."""

    rename: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def source_of(self, name: str) -> str | None:
        """The file column that supplies ``name``, if any."""
        return next((src for src, dst in self.rename.items() if dst == name), None)


def canonical(name: str) -> str:
    """The scalinglab column a spelling stands for (``batch_size`` -> ``batch_sequences``);
    the name itself when it is canonical or unknown."""
    if name in ALIASES:
        return name
    return next((k for k, spellings in ALIASES.items() if name in spellings), name)


def pick(columns: Iterable[str], name: str) -> str | None:
    """The first accepted spelling of ``name`` among ``columns`` (None if absent)."""
    present = set(columns)
    return next((a for a in ALIASES.get(name, (name,)) if a in present), None)


def choose_columns(
    columns: Sequence[str],
    wanted: Iterable[str],
    mapping: Mapping[str, str] | None = None,
    source: str | None = None,
) -> ColumnChoice:
    """Map ``columns`` to the scalinglab names in ``wanted``, explicit ``mapping`` first.

    ``mapping`` is ``{scalinglab_name: file_column}``; a column it names that the file lacks is
    an :class:`~scalinglab.errors.InputError` with a did-you-mean. A file column is used for at
    most one quantity; a canonical column displaced by a better alias (``loss`` by ``smooth
    loss``) is renamed ``raw_<name>`` so it is kept, not lost.
    """
    cols = [str(c) for c in columns]
    mapping = dict(mapping or {})
    missing = [src for src in mapping.values() if src not in cols]
    if missing:
        hint = did_you_mean(missing[0], cols)
        raise InputError(
            f"the mapping refers to column(s) {missing} not in the file{hint}; columns are {cols}",
            source=source)
    # a target spelt as an alias (``batch_size=bs``) means its quantity (``batch_sequences``)
    rename: dict[str, str] = {src: canonical(dst) for dst, src in mapping.items()}
    notes: list[str] = []
    taken = set(rename)
    for name in wanted:
        if name in rename.values():
            continue
        for alias in ALIASES.get(name, (name,)):
            if alias in cols and alias not in taken:
                rename[alias] = name
                taken.add(alias)
                if alias != name:
                    notes.append(f"using column {alias!r} as {name!r}")
                break
    # a canonical-named column displaced by another (mapped, or a better alias) is kept aside
    for col in cols:
        if col not in taken and col in rename.values():
            rename[col] = f"raw_{col}"
    return ColumnChoice(rename=rename, notes=notes)


class MissingColumn(InputError):
    """A required column the input lacks; ``name`` is the scalinglab column. The message ends
    with how to supply it (``map a column to it (loss=YOUR_COLUMN)``); a command adds its own
    flag for mappings."""

    def __init__(self, detail: str, name: str, source: str | None = None) -> None:
        self.name = name
        super().__init__(detail, source=source)


def missing_column(name: str, columns: Sequence[str], source: str | None,
                   what: str | None = None) -> MissingColumn:
    """The error for a required column the file lacks, with the closest column suggested."""
    cols = [str(c) for c in columns]
    hint = ""
    for alias in ALIASES.get(name, (name,)):
        hint = did_you_mean(alias, cols)
        if hint:
            break
    desc = what or DESCRIPTIONS.get(name)
    return MissingColumn(
        f"missing required column {name!r}" + (f" ({desc})" if desc else "") + hint
        + f"; columns are {cols}; map a column to it ({name}=YOUR_COLUMN)", name, source=source)
