"""The run record: which columns a run has, their units, and what makes a row valid.

Validation is a pure function over a DataFrame so that importing, the sweep runner and the
dashboard all reject the same things with the same words.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.clikit import UserError

#: numeric columns of a run, with units (shown in errors and `scalinglab runs`)
NUMERIC_COLUMNS: dict[str, str] = {
    "N": "non-embedding parameters",
    "D": "training tokens",
    "C": "training FLOPs (6*N*D unless given)",
    "loss": "final loss, nats/token (smoothed when available)",
    "lr": "peak learning rate",
    "batch_tokens": "batch size in tokens",
    "weight_decay": "AdamW weight decay (decoupled lambda)",
    "seq_len": "sequence length in tokens",
}
REQUIRED = ("N", "loss")
TEXT_COLUMNS = ("run_id", "name", "status", "error", "source")
STATUSES = ("finished", "failed", "running")
#: columns that become tags when present
TAG_COLUMNS = ("dataset", "architecture")
#: loss-like columns, best first: a smoothed final loss beats a raw final loss
LOSS_ALIASES = ("smooth_loss", "smooth loss", "smoothed_loss", "final_loss", "loss")
#: a batch given in sequences is converted with seq_len
BATCH_SEQ_ALIASES = ("batch_size", "bs", "batch_sequences")

_SUFFIX = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}


@dataclass
class Prepared:
    """Rows ready for the store, plus what was inferred along the way (said to the user)."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def parse_number(value: Any) -> float:
    """Parse numbers as people write them in run logs: ``3e-4``, ``125M``, ``1.5B``, ``2,048``."""
    if isinstance(value, bool):
        raise ValueError("boolean is not a number")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if value is None:
        return math.nan
    text = str(value).strip().replace(",", "").replace("_", "")
    if text == "" or text.lower() in {"nan", "na", "n/a", "null", "none"}:
        return math.nan
    if text[-1] in _SUFFIX and len(text) > 1:
        return float(text[:-1]) * _SUFFIX[text[-1]]
    return float(text)


def run_id_for(row: dict[str, Any]) -> str:
    """A stable id from a run's content, so importing the same file twice inserts nothing new."""
    keys = ("N", "D", "C", "loss", "lr", "batch_tokens", "weight_decay", "seq_len", "tags", "extra")
    payload = {k: row.get(k) for k in keys}
    blob = json.dumps(payload, sort_keys=True, default=str)
    return "r-" + hashlib.sha1(blob.encode()).hexdigest()[:16]


class _Labels:
    """Row labels as the file counts them (e.g. ``row 3 (line 4)``), kept off the frame.

    Kept out of ``DataFrame.attrs`` during validation: pandas deep-copies attrs on every column
    access, which made a 2,000-row import take seconds.
    """

    def __init__(self, labels: dict[int, str]) -> None:
        self.labels = labels

    def __call__(self, _df: object, i: int) -> str:
        return str(self.labels.get(i, f"row {i + 1}"))


def validate_and_prepare(
    raw: pd.DataFrame,
    source: str,
    tags: dict[str, str] | None = None,
    seq_len: int | None = None,
    curves: pd.DataFrame | None = None,
) -> Prepared:
    """Turn a mapped frame into run rows, or raise :class:`UserError` naming file, row, column.

    ``raw`` columns must already use scalinglab names (after ``--map``). Unknown columns are kept
    in ``extra`` so nothing in the user's file is lost.
    """
    notes: list[str] = []
    _row_label = _Labels(dict(raw.attrs.get("row_labels", {})))
    df = raw.copy()
    df.attrs = {}
    if df.empty:
        raise UserError(f"{source}: no rows to import")

    # loss: prefer a smoothed final loss when the file has one
    if "loss" not in df.columns or "smooth_loss" in df.columns or "smooth loss" in df.columns:
        for alias in LOSS_ALIASES:
            if alias in df.columns:
                if alias != "loss":
                    if "loss" in df.columns:
                        df = df.rename(columns={"loss": "raw_loss"})
                    df = df.rename(columns={alias: "loss"})
                    notes.append(f"using column {alias!r} as the loss")
                break

    for col in REQUIRED:
        if col not in df.columns:
            raise UserError(
                f"{source}: missing required column {col!r} ({NUMERIC_COLUMNS[col]}); "
                f"columns are {list(raw.columns)}; map one with --map {col}=YOUR_COLUMN"
            )
    if "D" not in df.columns and "C" not in df.columns:
        raise UserError(
            f"{source}: missing column 'D' (training tokens) or 'C' (training FLOPs); "
            f"columns are {list(raw.columns)}; map one with --map D=YOUR_COLUMN"
        )

    # batch given in sequences -> tokens
    if "batch_tokens" not in df.columns:
        for alias in BATCH_SEQ_ALIASES:
            if alias in df.columns:
                if seq_len is None and "seq_len" not in df.columns:
                    raise UserError(
                        f"{source}: column {alias!r} looks like a batch size in sequences; "
                        "give --seq-len (tokens per sequence) or map a batch in tokens with "
                        "--map batch_tokens=COLUMN"
                    )
                df = df.rename(columns={alias: "batch_sequences"})
                notes.append(f"batch_tokens = {alias} x seq_len")
                break
    if seq_len is not None and "seq_len" not in df.columns:
        df["seq_len"] = seq_len

    numeric_present = [c for c in NUMERIC_COLUMNS if c in df.columns]
    if "batch_sequences" in df.columns:
        numeric_present.append("batch_sequences")
    values: dict[str, np.ndarray] = {}
    for col in numeric_present:
        out = np.empty(len(df))
        for i, v in enumerate(df[col].tolist()):
            try:
                out[i] = parse_number(v)
            except (TypeError, ValueError):
                raise UserError(
                    f"{source}: {_row_label(df, i)}, column {col!r}: {v!r} is not a number"
                ) from None
        values[col] = out

    def check(col: str, ok: np.ndarray, what: str, required: bool) -> None:
        vals = values[col]
        bad = ~ok if required else (~ok & ~np.isnan(vals))
        if bad.any():
            i = int(np.argmax(bad))
            cell = df[col].iloc[i]
            shown = "is missing" if _is_missing(cell) or (
                isinstance(cell, str) and cell.strip().lower() in {"nan", "na", "n/a", "null", "none"}
            ) else f"{cell!r} {what}"
            raise UserError(f"{source}: {_row_label(df, i)}, column {col!r}: {shown}")

    with np.errstate(invalid="ignore"):
        for col in numeric_present:
            check(col, ~np.isinf(values[col]), "is infinite", required=True)
        check("N", np.isfinite(values["N"]) & (values["N"] > 0), "must be a positive number", True)
        check("loss", np.isfinite(values["loss"]) & (values["loss"] > 0), "must be > 0", True)
        if "D" in values:
            check("D", np.isfinite(values["D"]) & (values["D"] >= 1), "must be >= 1 token", True)
        if "C" in values:
            check("C", np.isfinite(values["C"]) & (values["C"] > 0), "must be > 0 FLOPs", True)
        for col in ("lr", "batch_tokens", "weight_decay", "seq_len", "batch_sequences"):
            if col in values:
                positive = values[col] >= 0 if col == "weight_decay" else values[col] > 0
                check(col, positive, "must be positive", required=False)

    n = len(df)
    N = values["N"]
    if "D" in values:
        D = values["D"]
        if "C" in values:
            C = values["C"]
            ratio = C / (6 * N * D)
            if np.any((ratio < 1 / 3) | (ratio > 3)):
                i = int(np.argmax((ratio < 1 / 3) | (ratio > 3)))
                notes.append(
                    f"warning: C differs from 6ND by x{ratio[i]:.3g} at {_row_label(df, i)}; "
                    "check the units of N, D and C"
                )
        else:
            C = 6.0 * N * D
            notes.append("C = 6*N*D (no compute column given)")
    else:
        C = values["C"]
        D = C / (6.0 * N)
        notes.append("D = C/(6*N) (no token column given)")
        bad = ~(D >= 1)
        if bad.any():
            i = int(np.argmax(bad))
            raise UserError(f"{source}: {_row_label(df, i)}, column 'C': implies D = {D[i]:.3g} < 1 token")

    if np.nanmax(N) < 1e3:
        notes.append("warning: every N is below 1,000: is N in millions? use --scale N=1e6")
    if np.nanmax(values["loss"]) > 20:
        notes.append("warning: losses above 20 nats: is this perplexity rather than loss?")
    if "lr" in values and np.nanmax(values["lr"]) > 1:
        notes.append("warning: learning rates above 1: check the lr column")

    batch = values.get("batch_tokens")
    if batch is None and "batch_sequences" in values:
        sl = values["seq_len"] if "seq_len" in values else np.full(n, float(seq_len or 0))
        batch = values["batch_sequences"] * sl

    known = set(numeric_present) | {"run_id", "name", "status", "error", "source", "tags", "curve"}
    known |= set(TAG_COLUMNS)
    extra_cols = [c for c in df.columns if c not in known]

    cols = {c: df[c].tolist() for c in df.columns}
    for c in extra_cols:  # CSV cells arrive as text; keep numeric extras numeric
        with contextlib.suppress(ValueError, TypeError):
            cols[c] = pd.to_numeric(df[c]).tolist()
    rows: list[dict[str, Any]] = []
    curve_rows: list[dict[str, Any]] = []
    for i in range(n):
        rec_tags: dict[str, str] = {}
        if "tags" in df.columns:
            rec_tags.update(_parse_tags(cols["tags"][i], source, _row_label(df, i)))
        for col in TAG_COLUMNS:
            if col in df.columns and not _is_missing(cols[col][i]):
                rec_tags[col] = str(cols[col][i])
        rec_tags.update(tags or {})
        extra = {c: _jsonable(cols[c][i]) for c in extra_cols}
        extra = {k: v for k, v in extra.items() if v is not None}
        rec = {
            "N": float(N[i]),
            "D": float(D[i]),
            "C": float(C[i]),
            "loss": float(values["loss"][i]),
            "lr": _opt(values.get("lr"), i),
            "batch_tokens": _opt(batch, i),
            "weight_decay": _opt(values.get("weight_decay"), i),
            "seq_len": _opt(values.get("seq_len"), i),
            "tags": rec_tags,
            "extra": extra,
        }
        given_id = cols["run_id"][i] if "run_id" in df.columns else None
        rec["run_id"] = str(given_id) if not _is_missing(given_id) else run_id_for(rec)
        status = cols["status"][i] if "status" in df.columns else "finished"
        rec["status"] = "finished" if _is_missing(status) else str(status)
        if rec["status"] not in STATUSES:
            raise UserError(
                f"{source}: {_row_label(df, i)}, column 'status': {status!r} is not one of {STATUSES}"
            )
        error = cols["error"][i] if "error" in df.columns else None
        rec["error"] = None if _is_missing(error) else str(error)
        name = cols["name"][i] if "name" in df.columns else None
        rec["name"] = None if _is_missing(name) else str(name)
        rec["source"] = source
        rows.append(rec)
        if "curve" in df.columns and not _is_missing(cols["curve"][i]):
            for point in _parse_curve(cols["curve"][i], source, _row_label(df, i)):
                curve_rows.append({"run_id": rec["run_id"], **point})
    if curves is not None and len(curves):
        curve_rows += _curve_frame_rows(curves, [r["run_id"] for r in rows], source)

    runs = pd.DataFrame(rows)
    dup = runs["run_id"].duplicated()
    if dup.any():
        i = int(np.argmax(dup.to_numpy()))
        notes.append(f"{int(dup.sum())} rows repeat an earlier row of the file (first: {_row_label(df, i)}); kept once")
        runs = runs[~dup].reset_index(drop=True)
    curves = pd.DataFrame(curve_rows, columns=["run_id", "step", "tokens", "loss", "eval_loss"])
    return Prepared(runs=runs, curves=curves, notes=notes)


def _curve_frame_rows(curves: pd.DataFrame, run_ids: list[str], source: str) -> list[dict[str, Any]]:
    """Points of a long curve frame (``row``, ``step``, ``loss``[, ``tokens``, ``eval_loss``])."""
    missing = [c for c in ("row", "step", "loss") if c not in curves.columns]
    if missing:
        raise UserError(f"{source}: curves need columns row, step and loss; missing {missing}")
    out = []
    for j, p in enumerate(curves.to_dict(orient="records")):
        row = p["row"]
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < len(run_ids):
            raise UserError(f"{source}: curve point {j + 1}: row {row!r} is not a row of the runs")
        out.append({"run_id": run_ids[int(row)], "step": p["step"], "tokens": p.get("tokens"),
                    "loss": p["loss"], "eval_loss": p.get("eval_loss")})
    return out


def _opt(arr: np.ndarray | None, i: int) -> float | None:
    if arr is None or np.isnan(arr[i]):
        return None
    return float(arr[i])


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip() == ""


def _jsonable(v: Any) -> Any:
    if _is_missing(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, dict, str, int, float, bool)):
        return v
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def _parse_tags(v: Any, source: str, where: str) -> dict[str, str]:
    """Tags as a dict, a JSON object string, or ``k=v;k=v``."""
    if _is_missing(v):
        return {}
    if isinstance(v, dict):
        return {str(k): str(x) for k, x in v.items()}
    text = str(v).strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{source}: {where}, column 'tags': invalid JSON ({exc.msg})") from None
        return {str(k): str(x) for k, x in obj.items()}
    out: dict[str, str] = {}
    for part in text.replace(",", ";").split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise UserError(f"{source}: {where}, column 'tags': {part!r} is not key=value")
        k, _, x = part.partition("=")
        out[k.strip()] = x.strip()
    return out


def _parse_curve(v: Any, source: str, where: str) -> list[dict[str, Any]]:
    """A loss curve: list of losses, of [step, tokens, loss] triples, or of dicts."""
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except json.JSONDecodeError as exc:
            raise UserError(f"{source}: {where}, column 'curve': invalid JSON ({exc.msg})") from None
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if not isinstance(v, list):
        raise UserError(f"{source}: {where}, column 'curve': expected a list of points")
    points = []
    for j, p in enumerate(v):
        if isinstance(p, dict):
            point = {k: p.get(k) for k in ("step", "tokens", "loss", "eval_loss")}
            if point["step"] is None:
                point["step"] = j
        elif isinstance(p, (list, tuple)) and len(p) in (2, 3):
            point = {"step": p[0], "tokens": p[1] if len(p) == 3 else None, "loss": p[-1], "eval_loss": None}
        elif isinstance(p, (int, float)):
            point = {"step": j, "tokens": None, "loss": p, "eval_loss": None}
        else:
            raise UserError(f"{source}: {where}, column 'curve': point {j} ({p!r}) is not understood")
        try:
            loss = float(point["loss"])
        except (TypeError, ValueError):
            raise UserError(f"{source}: {where}, column 'curve': point {j} has no numeric loss") from None
        if not math.isfinite(loss):
            raise UserError(f"{source}: {where}, column 'curve': point {j} loss is {loss}")
        points.append(point)
    return points
