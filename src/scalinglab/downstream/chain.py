"""Chaining a loss law and a link: the loss, and the downstream metric, at a model size and a
token count, each with an interval that carries both fits' uncertainty.

The joint bootstrap pairs draws, it does not add bands: draw ``j`` of the metric is the link's
draw ``j'`` evaluated at the loss law's draw ``j`` at ``(N, D)``, where ``j'`` is a random
permutation of the link's draws (or a resample with replacement when the two fits have different
numbers of draws). The metric's interval is the percentile interval of those paired values, so a
loss that comes out low in one draw moves the metric with it, through the link's own curvature.
Adding the two bands' widths would instead treat the metric as linear in the loss and the two
errors as perfectly correlated.

Pairing draws at random treats the two fits' errors as independent. That is right when the loss
law and the link were fitted on different runs; when they share runs (Gadre et al. fit the law
on 5 runs and the link on 6, 5 of them the same) the errors are positively correlated and the
joint interval is, if anything, slightly too narrow; the result says so in its notes.

A loss law without draws (a published :class:`~scalinglab.laws.base.LawInstance`) contributes no
parameter uncertainty: that part of the interval is then the link's alone, and the result says so.

The intervals shown (``metrics``, ``loss``) are *new-model* intervals: where a model trained at
``(N, D)`` will land, not only where the laws' curves lie. Each paired draw is spread by the
model-to-model scatter of both relations: the loss law's run-to-run noise (log-normal with its
``noise_std``) moves the loss fed to the link, and the link's own residual scatter (its
``residual_std`` times Student's t with the link's degrees of freedom, see
:meth:`~scalinglab.downstream.link_fit.LinkFit.scatter`) is added to the metric. Parameter
uncertainty alone (``curve``) left the truth outside for 2 of 6 held-out Gadre et al. models: the
link's models scatter about the curve by more than the curve itself is uncertain. A metric that
lives in [0, 1] (an error rate, an accuracy) is never shown outside it: an interval that reaches
past 0 or 1 is clipped and the result warns, naming the metric and the raw interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from scalinglab.downstream.link_fit import LinkFit, LinkTable
from scalinglab.errors import ParameterError
from scalinglab.results import Result, stack_draws
from scalinglab.stats import Estimate
from scalinglab.summary import Summary, Table, format_number


def _links(link: LinkFit | LinkTable | Mapping[str, LinkFit]) -> dict[str, LinkFit]:
    if isinstance(link, LinkFit):
        return {link.metric: link}
    if isinstance(link, LinkTable):
        return dict(link.fits)
    return dict(link)


def loss_at(loss_law: Any, N: np.ndarray, D: np.ndarray, extra: Mapping[str, np.ndarray] | None = None
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """The loss law's prediction at ``(N, D)`` (m,), and under each of its draws (K, m) or None.
    ``extra``: values of the law's other inputs (e.g. the ladder's ``lr_stage``).

    ``loss_law`` is a fit result (anything with ``law``, ``params`` and optionally ``draws`` of
    shape (K, P), such as :class:`~scalinglab.fit.result.FitResult`) or a published
    :class:`~scalinglab.laws.base.LawInstance`. A law in compute alone gets ``C = 6 N D``.
    """
    law = loss_law.law
    available = {"N": N, "D": D, "C": 6.0 * N * D, **(extra or {})}
    missing = [k for k in law.inputs if k not in available]
    if missing:
        raise ParameterError(f"the loss law {law.name!r} needs inputs {missing}, which a model size "
                             f"and token count cannot give", "loss_law")
    inputs = {k: available[k] for k in law.inputs}
    with np.errstate(all="ignore"):
        point = np.asarray(law(dict(loss_law.params), **inputs), dtype=float)
    draws = getattr(loss_law, "draws", None)
    if draws is None or not len(draws):
        return point, None
    draws = np.asarray(draws, dtype=float)
    params = {name: draws[:, i:i + 1] for i, name in enumerate(law.param_names)}
    with np.errstate(all="ignore"):
        values = np.asarray(law(params, **{k: v[None, :] for k, v in inputs.items()}), dtype=float)
    values[~np.all(np.isfinite(draws), axis=1)] = np.nan
    return point, values


def _label(loss_law: Any) -> str:
    inst = getattr(loss_law, "instance", loss_law)
    return str(getattr(inst, "label", "") or loss_law.law.name)


#: paired draws are spread by the scatter this many times each (or up to this many draws in all)
SCATTER_DRAWS = 4000


def loss_noise(loss_law: Any) -> float:
    """The loss law's run-to-run noise of log loss (``noise_std`` of a fit; NaN when unknown,
    as for a published law)."""
    value = getattr(loss_law, "noise_std", float("nan"))
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def new_model_draws(link: LinkFit, loss_draws: np.ndarray, link_rows: np.ndarray | None,
                    noise: float, rng: np.random.Generator) -> np.ndarray:
    """The metric a *new model* gets, per draw: (K * R, m).

    ``loss_draws`` (K, m) are the loss law's predictions (one row per paired draw; a single row
    for a point estimate), ``link_rows`` (K, P) the link's parameter rows paired with them (None:
    the link's estimate). Each pair is repeated ``R`` times (about :data:`SCATTER_DRAWS` in all);
    each repeat moves the loss by the loss law's noise (log-normal, ``noise``; NaN or 0: none)
    and adds the link's model-to-model scatter. Reused by anything that chains a loss to a link.
    """
    loss_draws = np.atleast_2d(np.asarray(loss_draws, dtype=float))
    k, m = loss_draws.shape
    rows = np.repeat(link.theta[None, :], k, axis=0) if link_rows is None else np.asarray(link_rows, float)
    r = max(1, -(-SCATTER_DRAWS // k))
    loss = np.repeat(loss_draws, r, axis=0)
    if np.isfinite(noise) and noise > 0:
        loss = loss * np.exp(noise * rng.standard_normal(loss.shape))
    rows = np.repeat(rows, r, axis=0)
    out = link.form.evaluate(rows, {link.form.law.inputs[0]: loss}) + link.scatter(loss.shape, rng)
    out[~np.all(np.isfinite(rows), axis=1)] = np.nan
    return out


def _clipped(est: Estimate, bounds: tuple[float, float] | None) -> tuple[Estimate, bool]:
    """``est`` with its interval (and value) held inside ``bounds``; True when anything moved."""
    if bounds is None:
        return est, False
    lo_b, hi_b = bounds
    vals = [v for v in (est.value, est.lo, est.hi) if v is not None and np.isfinite(v)]
    if all(lo_b <= v <= hi_b for v in vals):
        return est, False

    def clip(v: float | None) -> float | None:
        return v if v is None or not np.isfinite(v) else float(min(max(v, lo_b), hi_b))

    return Estimate(clip(est.value), clip(est.lo), clip(est.hi), est.level, est.identified,
                    est.note), True


@dataclass(repr=False)
class ChainedPrediction(Result):
    """Loss and metrics at points ``(N, D)``: ``loss[i]``, ``metrics[name][i]`` (new-model
    intervals: parameter uncertainty of both fits and both relations' model-to-model scatter),
    ``curve[name][i]`` (parameter uncertainty only: where the chained curve lies), and for
    comparison ``loss_only`` (link at its estimate, loss law's draws) and ``link_only`` (loss at
    its estimate, link's draws)."""

    kind: ClassVar[str] = "downstream_prediction"

    N: np.ndarray
    D: np.ndarray
    loss: list[Estimate]
    metrics: dict[str, list[Estimate]]
    loss_only: dict[str, list[Estimate]]
    link_only: dict[str, list[Estimate]]
    loss_law: str
    x_name: str
    n_draws: int = 0
    loss_draws: np.ndarray | None = None
    draws: dict[str, np.ndarray] = field(default_factory=dict)
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    curve: dict[str, list[Estimate]] = field(default_factory=dict)
    loss_curve: list[Estimate] = field(default_factory=list)

    def metric(self, name: str, i: int = 0) -> Estimate:
        return self.metrics[name][i]

    def _curve(self, name: str) -> list[Estimate]:
        return self.curve.get(name) or self.metrics[name]

    def _point_label(self, i: int) -> str:
        return f"N={format_number(self.N[i])}, D={format_number(self.D[i])}"

    def _repr_items(self) -> list[str]:
        return [f"{len(self.N)} points", f"{len(self.metrics)} metrics", f"loss law {self.loss_law}"]

    def _param_draws(self) -> tuple[tuple[str, ...], Any] | None:
        """What it predicts, by point: ``loss at N=.., D=..`` from the loss law's draws and
        ``<metric> at N=.., D=..`` from the joint draws (the new-model intervals' draws)."""
        at = [self._point_label(i) for i in range(len(self.N))]
        return stack_draws([([f"{what} at {p}" for p in at], d) for what, d in
                            ((self.x_name, self.loss_draws), *self.draws.items())])

    def summary(self) -> Summary:
        lt = Table(f"predicted {self.x_name} ({self.loss_law})", ["N", "D", "D/N", "loss"])
        for i in range(len(self.N)):
            lt.add_row(float(self.N[i]), float(self.D[i]), float(self.D[i] / self.N[i]), self.loss[i])
        mt = Table(f"predicted metrics of a new model ({self.level:.0%} interval: both fits and "
                   "both relations' model-to-model scatter)",
                   ["metric", *(self._point_label(i) for i in range(len(self.N)))])
        for name, ests in self.metrics.items():
            mt.add_row(name, *ests)
        tables = [lt, mt]
        if len(self.metrics) * len(self.N) <= 12 and self.n_draws:
            dt = Table("where the metric's uncertainty comes from",
                       ["metric", "at", "new model", "curve (both fits)", "loss law only", "link only"])
            for name in self.metrics:
                for i in range(len(self.N)):
                    dt.add_row(name, self._point_label(i), self.metrics[name][i],
                               self._curve(name)[i], self.loss_only[name][i], self.link_only[name][i])
            tables.append(dt)
        return Summary(title=f"downstream prediction from {self.loss_law}", tables=tables,
                       facts=[("bootstrap draws", str(self.n_draws))], notes=list(self.notes),
                       warnings=list(self.warnings), data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        points = []
        for i in range(len(self.N)):
            points.append({
                "N": float(self.N[i]), "D": float(self.D[i]), "loss": self.loss[i].to_dict(),
                "loss_curve": (self.loss_curve or self.loss)[i].to_dict(),
                "metrics": {m: {"value": self.metrics[m][i].to_dict(),
                                "curve": self._curve(m)[i].to_dict(),
                                "loss_law_only": self.loss_only[m][i].to_dict(),
                                "link_only": self.link_only[m][i].to_dict()} for m in self.metrics},
            })
        out: dict[str, Any] = {
            "kind": self.kind, "loss_law": self.loss_law, "x": self.x_name, "level": self.level,
            "n_draws": self.n_draws, "run_ids": list(self.run_ids), "points": points,
            "warnings": list(self.warnings), "notes": list(self.notes),
        }
        if include_draws and self.draws:
            out["draws"] = {m: v.tolist() for m, v in self.draws.items()}
            if self.loss_draws is not None:
                out["loss_draws"] = self.loss_draws.tolist()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChainedPrediction:
        level = float(data.get("level", 0.95))
        pts = data["points"]
        names = list(pts[0]["metrics"]) if pts else []

        def col(m: str, key: str) -> list[Estimate]:
            return [Estimate.from_dict(p["metrics"][m][key], level) for p in pts]

        return cls(
            N=np.array([p["N"] for p in pts], dtype=float), D=np.array([p["D"] for p in pts], dtype=float),
            loss=[Estimate.from_dict(p["loss"], level) for p in pts],
            metrics={m: col(m, "value") for m in names},
            loss_only={m: col(m, "loss_law_only") for m in names},
            link_only={m: col(m, "link_only") for m in names},
            loss_law=str(data.get("loss_law", "")), x_name=str(data.get("x", "loss")),
            n_draws=int(data.get("n_draws", 0)),
            loss_draws=None if data.get("loss_draws") is None else np.asarray(data["loss_draws"], float),
            draws={m: np.asarray(v, float) for m, v in (data.get("draws") or {}).items()},
            run_ids=tuple(data.get("run_ids", [])), level=level,
            warnings=list(data.get("warnings", [])), notes=list(data.get("notes", [])),
            curve={m: col(m, "curve") for m in names if pts and "curve" in pts[0]["metrics"][m]},
            loss_curve=[Estimate.from_dict(p.get("loss_curve", p["loss"]), level) for p in pts],
        )


def _pairing(k_loss: int, k_link: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices pairing loss draws with link draws: K = the larger count; the larger set is used
    once each, the link's order is shuffled, a smaller set is resampled with replacement."""
    k = max(k_loss, k_link)
    li = np.arange(k) if k_loss == k else rng.integers(0, k_loss, size=k)
    ki = rng.permutation(k) if k_link == k else rng.integers(0, k_link, size=k)
    return li, ki


def chain(
    loss_law: Any,
    link: LinkFit | LinkTable | Mapping[str, LinkFit],
    N: float | Sequence[float] | np.ndarray,
    D: float | Sequence[float] | np.ndarray,
    *,
    seed: int = 0,
) -> ChainedPrediction:
    """Predicted loss and metric(s) at ``(N, D)`` from a loss law and a link, jointly bootstrapped.

    Parameters
    ----------
    loss_law : a fitted loss law with ``draws`` (e.g. ``FitResult``; evaluated draw by draw as
        ``fit.law(dict(zip(fit.law.param_names, row)), N=..., D=...)``) or any ``LawInstance``
        (no draws: then only the link's uncertainty is carried).
    link : a :class:`LinkFit`, a :class:`LinkTable` (every metric at once) or a mapping of them.
        Its input must be the loss the law predicts (the same evaluation set).
    N, D : model sizes and token counts; scalars or equal-length sequences (a scalar is repeated).
    seed : seed of the random pairing of draws (results are deterministic).
    """
    links = _links(link)
    if not links:
        raise ParameterError("link has no fitted metrics", "link")
    n_arr = np.atleast_1d(np.asarray(N, dtype=float))
    d_arr = np.atleast_1d(np.asarray(D, dtype=float))
    if n_arr.size != d_arr.size:
        if n_arr.size == 1:
            n_arr = np.repeat(n_arr, d_arr.size)
        elif d_arr.size == 1:
            d_arr = np.repeat(d_arr, n_arr.size)
        else:
            raise ParameterError(f"{n_arr.size} values of N but {d_arr.size} of D", "N", "D")
    bad = ~(np.isfinite(n_arr) & (n_arr > 0) & np.isfinite(d_arr) & (d_arr > 0))
    if bad.any():
        raise ParameterError("N and D must be positive numbers", "N", "D")

    first = next(iter(links.values()))
    level = first.level
    point, loss_draws = loss_at(loss_law, n_arr, d_arr)
    k_loss = 0 if loss_draws is None else len(loss_draws)
    k_links = {m: (0 if f.draws is None else len(f.draws)) for m, f in links.items()}
    k_link = max(k_links.values())
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    warnings: list[str] = []

    li = ki = None
    if k_loss and k_link:
        li, ki = _pairing(k_loss, k_link, rng)
        notes.append(f"joint bootstrap: {len(li)} loss-law draws paired at random with link draws "
                     "(independent errors assumed; fits that share runs make the interval slightly narrow)")
    elif k_link:
        notes.append("the loss law has no bootstrap draws: the intervals carry the link's uncertainty only")
    elif k_loss:
        notes.append("the link has no bootstrap draws: the intervals carry the loss law's uncertainty only")
    else:
        notes.append("neither fit has bootstrap draws: no intervals")
    notes.append(f"the link's input is {first.x_name}: the loss law must predict that same loss")

    n_draws = len(li) if li is not None else max(k_loss, k_link)
    loss_sel = None if loss_draws is None else (loss_draws if li is None else loss_draws[li])
    noise = loss_noise(loss_law)
    curve_loss = [Estimate.from_draws(point[i], None if loss_draws is None else loss_draws[:, i], level)
                  for i in range(len(point))]
    base_loss = loss_sel if loss_sel is not None else point[None, :]
    scatter_rng = np.random.default_rng([seed, 1])
    if np.isfinite(noise) and noise > 0:
        reps = max(1, -(-SCATTER_DRAWS // len(base_loss)))
        spread = np.repeat(base_loss, reps, axis=0)
        spread = spread * np.exp(noise * scatter_rng.standard_normal(spread.shape))
        loss_est = [Estimate.from_draws(point[i], spread[:, i], level) for i in range(len(point))]
        notes.append(f"new-model intervals: the loss law's run-to-run noise ({noise:.3g} in log loss) "
                     "and each link's model-to-model scatter are added to every paired draw")
    else:
        loss_est = curve_loss
        notes.append("new-model intervals: each link's model-to-model scatter is added to every draw; "
                     "the loss law has no estimate of its run-to-run noise (a published law), so the "
                     "loss interval is the law's parameter uncertainty only")
    metrics: dict[str, list[Estimate]] = {}
    curve: dict[str, list[Estimate]] = {}
    loss_only: dict[str, list[Estimate]] = {}
    link_only: dict[str, list[Estimate]] = {}
    draws: dict[str, np.ndarray] = {}
    extrapolated: dict[tuple[float, float], list[str]] = {}
    impossible: list[str] = []
    for name, fit in links.items():
        value = np.atleast_1d(fit.predict(point))
        by_loss = None if loss_draws is None else fit.predict(loss_draws.ravel()).reshape(loss_draws.shape)
        by_link = fit.predict_draws(point) if k_links[name] else None
        joint = by_link if loss_draws is None else by_loss
        link_rows = None
        if k_links[name]:
            kd = (ki if k_links[name] == k_link else rng.integers(0, k_links[name], size=n_draws)) \
                if ki is not None else np.arange(k_links[name])
            link_rows = fit.draws[kd]
        if li is not None and loss_sel is not None and link_rows is not None:
            joint = fit.form.evaluate(link_rows, {fit.form.law.inputs[0]: loss_sel})
            joint[~np.all(np.isfinite(link_rows), axis=1)] = np.nan
        if joint is not None:
            draws[name] = joint
        rows_for = link_rows if link_rows is not None and len(link_rows) == len(base_loss) else None
        if rows_for is None and link_rows is not None and len(base_loss) == 1:
            base, rows_for = np.repeat(base_loss, len(link_rows), axis=0), link_rows
        else:
            base = base_loss
        predictive = new_model_draws(fit, base, rows_for, noise, scatter_rng)
        bounds = fit.value_range
        curve[name], metrics[name] = [], []
        for i in range(len(point)):
            c_est, c_moved = _clipped(Estimate.from_draws(
                value[i], None if joint is None else joint[:, i], level), bounds)
            raw = Estimate.from_draws(value[i], predictive[:, i], level)
            est, moved = _clipped(raw, bounds)
            curve[name].append(c_est)
            metrics[name].append(est)
            if moved or c_moved:
                impossible.append(f"{name} at N={n_arr[i]:.3g}, D={d_arr[i]:.3g}: {raw:.3g}")
        loss_only[name] = [Estimate.from_draws(value[i], None if by_loss is None else by_loss[:, i], level)
                           for i in range(len(point))]
        link_only[name] = [Estimate.from_draws(value[i], None if by_link is None else by_link[:, i], level)
                           for i in range(len(point))]
        lo, hi = fit.data_range
        outside = [i for i in range(len(point)) if not lo <= point[i] <= hi]
        if outside:
            extrapolated.setdefault((lo, hi, outside[0], len(outside)), []).append(name)
        for w in fit.warnings:
            if "leaves [0, 1]" in w:
                impossible.append(f"{name} link: {w.split(':')[0]}")
    if impossible:
        shown = "; ".join(impossible[:6]) + (f"; and {len(impossible) - 6} more" if len(impossible) > 6 else "")
        warnings.append(f"impossible values: {len(impossible)} interval(s) or link asymptote(s) reach "
                        f"outside [0, 1], where these metrics live ({shown}); intervals are shown "
                        "clipped to [0, 1] and predictions there lean on an extrapolated link")
    for (lo, hi, i, count), names in extrapolated.items():
        who = names[0] if len(names) == 1 else f"{len(names)} metrics ({', '.join(names[:3])}" + (
            ", ...)" if len(names) > 3 else ")")
        warnings.append(f"{who}: the predicted loss {point[i]:.4g} at N={n_arr[i]:.3g}, "
                        f"D={d_arr[i]:.3g} is outside the losses the link was fitted on "
                        f"[{lo:.4g}, {hi:.4g}]: the link is extrapolated"
                        + (f" ({count} points)" if count > 1 else ""))
    data_range = getattr(loss_law, "data_range", None) or getattr(
        getattr(loss_law, "provenance", None), "valid_range", None) or {}
    for key, values in (("N", n_arr), ("D", d_arr)):
        if key in data_range:
            top = float(data_range[key][1])
            if values.max() > 1.01 * top:
                notes.append(f"{key} up to {values.max():.3g} is {values.max() / top:.3g}x the largest "
                             f"{key} the loss law was fitted on ({top:.3g})")
    return ChainedPrediction(
        N=n_arr, D=d_arr, loss=loss_est, metrics=metrics, loss_only=loss_only, link_only=link_only,
        curve=curve, loss_curve=curve_loss,
        loss_law=_label(loss_law), x_name=first.x_name, n_draws=n_draws,
        loss_draws=loss_sel, draws=draws,
        run_ids=tuple(dict.fromkeys(r for f in links.values() for r in f.run_ids)),
        level=level, warnings=warnings, notes=notes,
    )


__all__ = ["SCATTER_DRAWS", "ChainedPrediction", "chain", "loss_at", "loss_noise", "new_model_draws"]
