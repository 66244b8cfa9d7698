"""The final loss of a logged curve: its last point, its lowest, or an EMA of its last points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.errors import ParameterError


@dataclass(frozen=True)
class FinalRule:
    """How a curve's logged losses become the run's final loss.

    ``last``: the last logged value. ``min``: the lowest. ``ema:K``: a bias-corrected exponential
    moving average with span ``K`` logged points (weight ``(1 - a)**age``, ``a = 2 / (K + 1)``,
    as ``pandas.Series.ewm(span=K).mean()``), read at the last point: a raw last training loss
    carries one batch's noise, the EMA averages over roughly the last K logs.
    """

    kind: str = "last"
    span: int = 0

    @classmethod
    def parse(cls, text: str | FinalRule | None) -> FinalRule:
        if isinstance(text, FinalRule):
            return text
        raw = (text or "last").strip().lower()
        if raw in ("last", "min"):
            return cls(raw)
        if raw.startswith("ema:"):
            try:
                span = int(raw[4:])
            except ValueError:
                span = 0
            if span >= 1:
                return cls("ema", span)
        raise ParameterError(
            f"final must be last, min or ema:K with K a whole number of logged points >= 1, "
            f"not {text!r}", "final",
        )

    def __str__(self) -> str:
        return f"ema:{self.span}" if self.kind == "ema" else self.kind

    def apply(self, values: np.ndarray) -> float:
        """The final loss of ``values`` (finite, in step order, at least one)."""
        if self.kind == "last":
            return float(values[-1])
        if self.kind == "min":
            return float(values.min())
        alpha = 2.0 / (self.span + 1.0)
        age = np.arange(len(values) - 1, -1, -1, dtype=float)
        w = (1.0 - alpha) ** age
        return float(np.dot(w, values) / w.sum())
