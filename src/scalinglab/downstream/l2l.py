"""Loss-to-loss prediction (Brandfonbrener et al. 2024): one loss from another, and a law
translated to a new corpus.

:func:`fit_loss_to_loss` fits the shifted power law ``y = K (x - E_x)^kappa + E_y``
(:mod:`scalinglab.laws.loss_to_loss`) between two loss columns, one law per group (a corpus, say),
through the one fitting engine (:func:`scalinglab.fit.loss.fit_arrays`: multi-start, bootstrap).
The offsets ``E_x`` and ``E_y`` are the two losses' irreducible parts. With four free parameters
on one curve they trade off against each other (measured on the sweep's FineWeb-edu train-to-
HellaSwag losses: ``E_x`` runs to its lower bound), so, as the paper does, they can be taken
from a scaling law of each loss in (N, D) (``offsets="scaling"``: the law's limit as N and D grow
without bound) or given (``E_x=``, ``E_y=``). In every case the fit keeps ``E_x`` below every
fitted x and ``E_y`` below every fitted y.

:func:`translate` takes a law fitted on one corpus (any law of N and D, with draws) and a few
runs on a new corpus, fits ``L_new = K (L_old(N, D) - E_old)^kappa + E_new`` on those runs and
predicts the new corpus everywhere the old law does; beside it, the law refitted on the few runs
alone, so the two can be compared on any runs (:meth:`Translation.score`).

:func:`pair_by_compute` builds the train-to-train (and test-to-test) pairs: the runs of two
corpora with the same model size and token count.
"""

from __future__ import annotations

import warnings as pywarnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from scalinglab.errors import InputError, NotIdentifiable, ParameterError
from scalinglab.fit.loss import checked_on_draws, fit_arrays, fit_law, soft_identifiability
from scalinglab.fit.result import FitResult
from scalinglab.laws.loss_to_loss import PAIRINGS, PARAMS, below_offset, shifted_power
from scalinglab.results import Result
from scalinglab.stats import Estimate, percentile_interval
from scalinglab.summary import Summary, Table
from scalinglab.values import as_table

#: an offset is kept this far (relative) below the smallest fitted loss, so that the fit's
#: (x - E_x)^kappa stays real on every run
_MARGIN = 1e-4
#: (N, D) at which a scaling law's value is its irreducible loss (every power term < 1e-10 of it
#: for exponents above 0.1)
_INFINITE = 1e100
_ALL = ""


def _min_refits(asked: int) -> int:
    """How many of ``asked`` bootstrap refits must converge for a loss-to-loss fit to keep its
    draws (the one rule of the per-group fit under its offsets' draws and of the pooled fit):
    half of them, and at least 10, or all of them when fewer than 10 were asked for.

    Why: when more than half fail, the draws that remain are the resamples the link happens to
    fit, not the runs' uncertainty, and fewer than 10 draws give no interval worth reading. But
    ``bootstrap=3`` asks for a quick look, not for 10: demanding 10 of 3 refused every such
    per-group fit ("only 3 of 3 bootstrap refits under the offsets' draws converged") while the
    pooled fit, with this rule, kept its 3."""
    return max(min(10, asked), asked // 2)


def _too_few_refits(kept: int, asked: int) -> str | None:
    """The warning of a fit that keeps its draws although fewer than :func:`_min_refits` of
    ``asked`` refits converged (``kept`` did), or None when enough did. :func:`translate` keeps
    such draws (its link has no other source of E_old's uncertainty) but must say that its
    intervals come from the resamples the link happens to fit."""
    need = _min_refits(asked)
    if not asked or kept >= need:
        return None
    return (f"only {kept} of {asked} bootstrap refits under the old law's draws of E_old converged "
            f"(the loss-to-loss fits need {need}): the intervals come from the resamples the link "
            "happens to fit, not from the runs' uncertainty; treat them as too narrow")



class BelowOffsetWarning(UserWarning):
    """A loss-to-loss prediction at an x at or below the fitted offset E_x (the law then gives
    E_y, its limit from above)."""


def r_squared(observed: Any, predicted: Any) -> float:
    """``1 - SS_res / SS_tot`` (the paper's figure of merit for a translated law)."""
    y = np.asarray(observed, dtype=float)
    p = np.asarray(predicted, dtype=float)
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok], p[ok]
    if len(y) < 2:
        return float("nan")
    tot = float(np.sum((y - y.mean()) ** 2))
    return float("nan") if tot == 0 else 1.0 - float(np.sum((y - p) ** 2)) / tot


def irreducible(law_fit: Any) -> tuple[float, np.ndarray | None]:
    """A loss law's limit as every input grows without bound (its irreducible loss), and the
    same under each of its draws. Law-agnostic: the law is evaluated, not read by name."""
    law = law_fit.law
    inputs = {k: np.array([_INFINITE]) for k in law.inputs}
    with np.errstate(all="ignore"):
        point = float(np.asarray(law(dict(law_fit.params), **inputs), dtype=float).ravel()[0])
        draws = getattr(law_fit, "draws", None)
        if draws is None or not len(draws):
            return point, None
        cols = {k: np.asarray(draws, float)[:, i:i + 1] for i, k in enumerate(law.param_names)}
        values = np.asarray(law(cols, **{k: v[None, :] for k, v in inputs.items()}), dtype=float)
    return point, values.reshape(len(draws), -1)[:, 0]


def _full_params(fit: FitResult, params: Mapping[str, Any]) -> dict[str, Any]:
    constraint = fit.law.constraint
    return dict(constraint.expand(params)) if constraint is not None else dict(params)


def _column(frame: pd.DataFrame, name: str, source: str) -> np.ndarray:
    from scalinglab.errors import columns_hint
    from scalinglab.runs.cells import not_a_number

    if name not in frame.columns:
        raise InputError(f"no column {name!r}{columns_hint(name, list(frame.columns))}",
                         source=source or None)
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(values) & frame[name].notna().to_numpy())
    if bad.size:
        raise InputError(not_a_number(frame[name].iloc[bad[0]]), source=source or None,
                         row=f"row {bad[0] + 1}", column=name)
    return values


def _find(frame: pd.DataFrame, given: str | None, spellings: Sequence[str]) -> str | None:
    if given is not None:
        return given
    return next((c for c in spellings if c in frame.columns), None)


# -- offsets with their uncertainty -------------------------------------------------------------


def _refit_given_offsets(x: np.ndarray, y: np.ndarray, ex: float, ey: float | None,
                         start: Mapping[str, float]) -> tuple[float, float, float] | None:
    """``(K, kappa, E_y)`` of the shifted power law with ``E_x = ex`` (and ``E_y = ey`` unless
    None: then fitted below every y), least squares on log y from ``start`` (one bootstrap draw:
    the point fit's multi-start has already found the basin). None if it fails."""
    from scipy.optimize import least_squares

    from scalinglab.laws.loss_to_loss import BOUNDS

    gap = x - ex
    if not np.all(gap > 0):
        return None
    ly, lg = np.log(y), np.log(gap)
    top_ey = float(np.min(y)) * (1 - _MARGIN)
    k_lo, k_hi = BOUNDS["kappa"]

    def resid(p: np.ndarray) -> np.ndarray:
        e = ey if ey is not None else float(np.exp(p[2]))
        with np.errstate(over="ignore"):
            return np.log(np.exp(p[0] + p[1] * lg) + e) - ly

    p0 = [np.log(max(float(start["K"]), 1e-12)), float(np.clip(start["kappa"], k_lo, k_hi))]
    lo, hi = [-50.0, k_lo], [50.0, k_hi]
    if ey is None:
        p0.append(np.log(min(max(float(start["E_y"]), 1e-6), top_ey * (1 - 1e-6))))
        lo.append(np.log(1e-6))
        hi.append(np.log(top_ey))
    try:
        sol = least_squares(resid, np.array(p0), bounds=(lo, hi))
    except (ValueError, FloatingPointError):
        return None
    if not np.all(np.isfinite(sol.x)):
        return None
    return float(np.exp(sol.x[0])), float(sol.x[1]), float(ey if ey is not None else np.exp(sol.x[2]))


def _offset_draws(x: np.ndarray, y: np.ndarray, point: Mapping[str, float],
                  ex_draws: np.ndarray | None, ey_draws: np.ndarray | None, ey_free: bool,
                  n_draws: int, seed: int) -> np.ndarray:
    """(n_draws, 4) draws of ``(K, kappa, E_x, E_y)`` that carry the offsets' uncertainty: draw
    ``j`` resamples the runs, takes offset draw ``j`` (each from its scaling law's bootstrap;
    the point value where an offset has no draws) kept below that resample's smallest loss, and
    refits the link under it. Holding the offsets at their point values instead makes the
    intervals of a far extrapolation too narrow (measured on the sweep's HellaSwag
    test-to-test, 23x beyond the fitted compute: 46% of held-out runs inside a nominal 95%)."""
    rng = np.random.default_rng(seed)
    out = np.full((n_draws, 4), np.nan)
    n = len(x)
    for j in range(n_draws):
        idx = rng.integers(0, n, n)
        xs, ys = x[idx], y[idx]
        ex = float(point["E_x"] if ex_draws is None else ex_draws[j % len(ex_draws)])
        ex = min(ex, float(xs.min()) * (1 - _MARGIN))
        ey: float | None = None
        if not ey_free:
            ey = float(point["E_y"] if ey_draws is None else ey_draws[j % len(ey_draws)])
            ey = min(ey, float(ys.min()) * (1 - _MARGIN))
        if not (np.isfinite(ex) and ex > 0 and (ey is None or (np.isfinite(ey) and ey > 0))):
            continue
        got = _refit_given_offsets(xs, ys, ex, ey, point)
        if got is not None:
            out[j] = (got[0], got[1], ex, got[2])
    return out  # failed refits are NaN rows: callers drop them (keeping the index if they pair)


def _with_draws(fit: FitResult, pairing: str, draws: np.ndarray, note: str) -> FitResult:
    """``fit`` re-expressed on the full four-parameter law, its draws those given."""
    from dataclasses import replace

    law = PAIRINGS[pairing]
    full = _full_params(fit, fit.params)
    params = {k: float(full[k]) for k in law.param_names}
    return replace(fit, law=law, params=params, draws=draws, notes=[*fit.notes, note])


# -- partial pooling across groups -------------------------------------------------------------

#: the parameters a pooled fit may share across groups. ``E_y`` is the y loss's irreducible part:
#: where y is one test set's loss, a property of that test set, not of the corpus a model was
#: trained on. ``kappa`` is the exponent of the power law between the reducible parts.
SHAREABLE = ("kappa", "E_y")


def _pooled_link(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], ex: Sequence[float | None],
                 shared: Sequence[str], start: np.ndarray | None = None) -> np.ndarray | None:
    """Shifted power laws for several groups fitted jointly, by least squares on log y, with the
    parameters in ``shared`` one value for every group and the rest one per group. ``ex[g]``
    holds group g's ``E_x`` (None: fitted below that group's smallest x). Returns the (groups, 4)
    array of ``(K, kappa, E_x, E_y)``, or None if no start converged. ``start`` (such an array)
    gives one start (a bootstrap draw: the point fit's multi-start has found the basin); without
    it, a grid of exponents and offsets."""
    from scipy.optimize import least_squares

    from scalinglab.laws.loss_to_loss import BOUNDS

    m = len(xs)
    sk, se = "kappa" in shared, "E_y" in shared
    nk, ne = (1 if sk else m), (1 if se else m)
    free_x = [i for i in range(m) if ex[i] is None]
    gi = np.concatenate([np.full(len(x), i) for i, x in enumerate(xs)])
    x_all, ly = np.concatenate(xs), np.log(np.concatenate(ys))
    y_top = np.array([float(np.min(y)) * (1 - _MARGIN) for y in ys])
    x_top = np.array([float(np.min(x)) * (1 - _MARGIN) for x in xs])
    fixed_ex = np.array([np.nan if e is None else float(e) for e in ex])
    if np.any(fixed_ex[np.isfinite(fixed_ex)] >= x_top[np.isfinite(fixed_ex)] / (1 - _MARGIN)):
        return None
    k_lo, k_hi = BOUNDS["kappa"]
    # layout: log K (m), kappa (nk), log E_y (ne), log E_x of the groups that fit it
    def unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lk = p[:m]
        ka = np.broadcast_to(p[m:m + nk], (m,))
        ey = np.broadcast_to(np.exp(p[m + nk:m + nk + ne]), (m,))
        e_x = fixed_ex.copy()
        e_x[free_x] = np.exp(p[m + nk + ne:])
        return lk, ka, e_x, ey

    def resid(p: np.ndarray) -> np.ndarray:
        lk, ka, e_x, ey = unpack(p)
        with np.errstate(all="ignore"):
            r = np.log(np.exp(lk[gi] + ka[gi] * np.log(x_all - e_x[gi])) + ey[gi]) - ly
        return np.where(np.isfinite(r), r, 1e3)

    ey_hi = np.log(y_top.min()) if se else np.log(y_top)
    lo = np.r_[np.full(m, -50.0), np.full(nk, k_lo), np.full(ne, np.log(1e-6)), np.full(len(free_x), np.log(1e-6))]
    hi = np.r_[np.full(m, 50.0), np.full(nk, k_hi), np.broadcast_to(ey_hi, (ne,)), np.log(x_top[free_x])]

    def pack(kappa: np.ndarray, ey: np.ndarray, e_x: np.ndarray) -> np.ndarray:
        lk = [np.log(max(float(np.median(y)) - ey[i], 1e-9)) - kappa[i] * np.log(float(np.median(x)) - e_x[i])
              for i, (x, y) in enumerate(zip(xs, ys, strict=True))]
        p = np.r_[lk, kappa[:nk] if not sk else [kappa[0]], np.log(ey[:ne] if not se else [ey[0]]),
                  np.log(e_x[free_x])]
        return np.clip(p, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))

    if start is not None:
        starts = [pack(start[:, 1], np.minimum(start[:, 3], y_top.min() if se else y_top) * (1 - 1e-9),
                       np.where(np.isfinite(fixed_ex), fixed_ex, np.minimum(start[:, 2], x_top)))]
    else:
        starts = []
        for kappa in (0.5, 1.0, 1.5):
            for fy in (0.3, 0.6, 0.9):
                for fx in ((0.3, 0.7, 0.95) if free_x else (0.0,)):
                    ey = fy * (np.full(m, y_top.min()) if se else y_top)
                    e_x = np.where(np.isfinite(fixed_ex), fixed_ex, fx * x_top)
                    starts.append(pack(np.full(m, kappa), ey, e_x))
    best = None
    for p0 in starts:
        try:
            sol = least_squares(resid, p0, bounds=(lo, hi))
        except (ValueError, FloatingPointError):
            continue
        if np.all(np.isfinite(sol.x)) and (best is None or sol.cost < best.cost):
            best = sol
    if best is None:
        return None
    lk, ka, e_x, ey = unpack(best.x)
    return np.column_stack([np.exp(lk), ka, e_x, ey])


# -- the fit -----------------------------------------------------------------------------------


@dataclass(repr=False)
class LossToLossFit(Result):
    """Shifted power laws ``y = K (x - E_x)^kappa + E_y``, one per group (``""``: no groups)."""

    kind: ClassVar[str] = "loss_to_loss"

    fits: dict[str, FitResult]
    x_name: str
    y_name: str
    group_name: str | None = None
    pairing: str = "train_to_test"
    offsets: str = "fit"
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the parameters fitted jointly, one value for every group (partial pooling; empty: each
    #: group fitted on its own)
    shared: tuple[str, ...] = ()
    #: with pooling and offsets from fitted laws: the law draw each kept bootstrap draw used (the
    #: same index in every group), so a prediction can pair the two
    draw_index: tuple[int, ...] = ()

    @property
    def fixed(self) -> dict[str, dict[str, str]]:
        """Per group, the offsets held fixed (not fitted, and not drawn from a law's bootstrap)
        and where each came from ("given", "from the chinchilla law of x"): each group's
        :attr:`FitResult.held`, shown as fixed, not as a zero-width interval."""
        return {g: dict(f.held) for g, f in self.fits.items() if f.held}

    def fit(self, group: str | None = None) -> FitResult:
        if group is None:
            if len(self.fits) != 1:
                raise ParameterError(f"give group= one of {sorted(self.fits)}", "group")
            return next(iter(self.fits.values()))
        try:
            return self.fits[str(group)]
        except KeyError:
            raise ParameterError(f"unknown group {group!r}; the fit has {sorted(self.fits)}",
                                 "group") from None

    def params(self, group: str | None = None) -> dict[str, float]:
        """Every parameter of the law (fixed offsets included) for ``group``."""
        f = self.fit(group)
        return {k: float(v) for k, v in _full_params(f, f.params).items()}

    def predict(self, x: Any, group: Any = None, *, new_run: bool = False) -> pd.DataFrame:
        """``y`` with its ``level`` interval (``lo``, ``hi``) at each ``x`` (for ``group``: one
        name, or one per x). ``new_run=True`` widens the band by the fit's run-to-run scatter.

        An x at or below the fitted ``E_x`` gets ``E_y`` (the law's limit from above), the column
        ``below_E_x`` is True there, and a :class:`BelowOffsetWarning` says so: the prediction is
        then a floor the law cannot see past, not an extrapolation of its curve. Where every draw
        gives that floor (E_y held fixed) ``lo`` and ``hi`` are NaN rather than a zero-width
        interval.
        """
        xs = np.atleast_1d(np.asarray(x, dtype=float)).ravel()
        if not np.all(np.isfinite(xs)):
            raise ParameterError("x must be finite numbers", "x")
        if group is None or isinstance(group, str) or np.ndim(group) == 0:
            groups = [None if group is None else str(group)] * len(xs)
        else:
            groups = [str(g) for g in group]
            if len(groups) != len(xs):
                raise ParameterError(f"{len(groups)} groups for {len(xs)} values of x", "group", "x")
        out = pd.DataFrame({"x": xs, "y": np.nan, "lo": np.nan, "hi": np.nan, "below_E_x": False})
        if self.group_name is not None:
            out.insert(0, self.group_name, [g if g is not None else "" for g in groups])
        for g in dict.fromkeys(groups):
            idx = np.array([i for i, gg in enumerate(groups) if gg == g])
            f = self.fit(g)
            point, lo, hi = f.predict_interval(new_run=new_run, x=xs[idx])
            out.loc[idx, "y"] = np.asarray(point, float)
            out.loc[idx, "lo"] = np.asarray(lo, float)
            out.loc[idx, "hi"] = np.asarray(hi, float)
            below = below_offset(_full_params(f, f.params), xs[idx])
            out.loc[idx, "below_E_x"] = below
            if below.any():
                ex = _full_params(f, f.params)["E_x"]
                # with E_y held fixed every draw gives E_y there: a zero-width interval would
                # claim a certainty the law does not have, so it is left out (NaN)
                flat = idx[below & np.isclose(out.loc[idx, "lo"].to_numpy(float),
                                              out.loc[idx, "hi"].to_numpy(float))]
                out.loc[flat, ["lo", "hi"]] = np.nan
                pywarnings.warn(
                    f"{int(below.sum())} x value(s) (smallest {xs[idx].min():.4g}) at or below the "
                    f"fitted offset E_x = {ex:.4g}" + (f" of group {g!r}" if g else "")
                    + ": predicted y = E_y there (the law's floor), not an extrapolated curve"
                    + ("; no interval where every draw gives that floor" if len(flat) else ""),
                    BelowOffsetWarning, stacklevel=2)
        return out

    def _repr_items(self) -> list[str]:
        items = [f"{self.y_name} from {self.x_name}"]
        if self.group_name is not None:
            items.append(f"{len(self.fits)} groups")
        return items

    def _interval_parts(self) -> dict[str, Result]:
        return {str(g): f for g, f in self.fits.items()}  # "<group>.<parameter>"

    def summary(self) -> Summary:
        names = ("K", "kappa", "E_x", "E_y")
        t = Table(f"y = K (x - E_x)^kappa + E_y ({self.level:.0%} bootstrap intervals)",
                  [self.group_name or "group", "runs", *names, "residual std (log)"])
        for g, f in self.fits.items():
            est = f.estimates()
            full = _full_params(f, f.params)
            cells = [est[k] if k in est else Estimate.held(full[k], f.held.get(k, ""))
                     for k in names]
            t.add_row(g or "(all)", f.n_runs, *cells, f.residual_std)
        return Summary(
            title=f"loss-to-loss ({self.pairing.replace('_', '-')}): {self.y_name} from {self.x_name}",
            tables=[t], facts=[("offsets", self.offsets)]
            + ([("shared across groups", ", ".join(self.shared))] if self.shared else []), notes=list(self.notes),
            warnings=list(self.warnings), data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        return {"kind": self.kind, "x": self.x_name, "y": self.y_name, "group": self.group_name,
                "pairing": self.pairing, "offsets": self.offsets, "level": self.level,
                "run_ids": list(self.run_ids), "shared": list(self.shared),
                "draw_index": list(self.draw_index) if include_draws else [],
                "fits": {g: f.to_dict(include_draws=include_draws) for g, f in self.fits.items()},
                "warnings": list(self.warnings), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossToLossFit:
        fits = {str(g): FitResult.from_dict(f) for g, f in data["fits"].items()}
        for g, held in (data.get("fixed") or {}).items():  # saved before each fit kept its own
            if str(g) in fits and not fits[str(g)].held:
                fits[str(g)] = replace(fits[str(g)], held={str(k): str(v) for k, v in held.items()})
        return cls(fits=fits,
                   x_name=str(data["x"]), y_name=str(data["y"]), group_name=data.get("group"),
                   pairing=str(data.get("pairing", "train_to_test")),
                   offsets=str(data.get("offsets", "fit")), run_ids=tuple(data.get("run_ids", [])),
                   level=float(data.get("level", 0.95)), warnings=list(data.get("warnings", [])),
                   notes=list(data.get("notes", [])), shared=tuple(data.get("shared", [])),
                   draw_index=tuple(int(i) for i in data.get("draw_index", [])))


def _held_offset(value: Any, law: str, column: str, clamped: bool) -> str:
    """Where an offset held fixed came from, in words (:attr:`LossToLossFit.fixed`)."""
    where = (f"from the given {value.law.name} law" if isinstance(value, FitResult)
             else f"from the {law} law of {column}" if value is None else "given")
    return where + (f", kept below the smallest {column}" if clamped else "")


def fit_shifted_power(
    x: Any, y: Any, *, pairing: str = "train_to_test", E_x: float | None = None,
    E_y: float | None = None, bootstrap: int = 200, seed: int = 0, level: float = 0.95,
    run_ids: Sequence[str] | None = None, source: str = "",
) -> FitResult:
    """One shifted power law ``y = K (x - E_x)^kappa + E_y`` by the fitting engine; a given
    offset is held fixed, a free one is kept below the smallest x (or y) it must stay under."""
    if pairing not in PAIRINGS:
        raise ParameterError(f"pairing must be one of {sorted(PAIRINGS)}, not {pairing!r}", "pairing")
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    fix: dict[str, float] = {}
    bounds: dict[str, tuple[float, float]] = {}
    for name, given, values in (("E_x", E_x, x), ("E_y", E_y, y)):
        top = float(np.min(values)) * (1 - _MARGIN)
        if given is None:
            bounds[name] = (1e-6, top)
        elif not (np.isfinite(given) and 0 < given < float(np.min(values))):
            raise ParameterError(f"{name} = {given:g} must be positive and below every fitted "
                                 f"{name[-1]} (smallest {float(np.min(values)):.4g})", name)
        else:
            fix[name] = float(given)
    return fit_arrays(PAIRINGS[pairing], {"x": x}, y, fix=fix, bounds=bounds, bootstrap=bootstrap,
                      seed=seed, level=level, run_ids=run_ids, source=source)


def _scaling_offset(frame: pd.DataFrame, n_col: str, d_col: str, loss: np.ndarray,
                    law: str, seed: int, bootstrap: int = 0) -> tuple[float, np.ndarray | None]:
    runs = pd.DataFrame({"N": _column(frame, n_col, ""), "D": _column(frame, d_col, ""), "loss": loss})
    point, draws = _offset(fit_law(law, runs, bootstrap=bootstrap, seed=seed), aligned=True)
    assert point is not None  # a fitted law always has an irreducible loss
    return point, draws


def _offset(value: Any, aligned: bool = False) -> tuple[float | None, np.ndarray | None]:
    """An offset given as a number (held fixed), None (fitted), or a fitted scaling law (its
    irreducible loss, with the law's bootstrap draws of it: the finite ones, or with ``aligned``
    all of them, so that draw j stays the law's draw j). A law none of whose draws gives a
    finite offset has no draws to carry: the offset is then held at its point value."""
    if value is None:
        return None, None
    if isinstance(value, FitResult):
        point, draws = irreducible(value)
        if draws is None or not np.isfinite(draws).any():
            return point, None
        return point, draws if aligned else draws[np.isfinite(draws)]
    return float(value), None


def fit_loss_to_loss(
    frame: pd.DataFrame,
    x: str,
    y: str,
    group: str | None = None,
    *,
    pairing: str = "train_to_test",
    offsets: str = "fit",
    E_x: float | FitResult | Mapping[str, float | FitResult] | None = None,
    E_y: float | FitResult | None = None,
    N: str | None = None,
    D: str | None = None,
    scaling_law: str = "chinchilla",
    shared: Sequence[str] = (),
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
    source: str = "",
) -> LossToLossFit:
    """Fit ``y = K (x - E_x)^kappa + E_y`` between the columns ``x`` and ``y`` of ``frame``, one
    law per value of the column ``group`` (e.g. the training corpus), with bootstrap intervals.

    ``pairing``: ``"train_to_test"`` (one model's training and test loss), ``"train_to_train"``
    or ``"test_to_test"`` (two models with the same N and D; see :func:`pair_by_compute`).
    ``offsets``: ``"fit"`` (both fitted, kept below the smallest x and y) or ``"scaling"``
    (each taken as the irreducible loss of a ``scaling_law`` fitted to that loss in the
    columns ``N`` and ``D``, per group, as Brandfonbrener et al. do). ``E_x``/``E_y`` fix an
    offset to a value (for every group), or give it as a fitted scaling law of that loss (its
    irreducible loss). Rows with a missing x or y are left out (said in ``notes``).

    An offset from a scaling law is uncertain, and far beyond the fitted losses that
    uncertainty dominates: with ``bootstrap``, each draw of the link uses a draw of each such
    offset from its law's bootstrap and refits ``K`` and ``kappa`` on a resample of the runs,
    so the intervals carry it (the draws then include ``E_x`` and ``E_y``). A plain number is
    taken as known exactly. ``E_x`` may also map each group to its own offset.

    ``shared`` (partial pooling, needs ``group``): parameters among ``"kappa"`` and ``"E_y"``
    fitted jointly, one value for every group, the rest per group; the bootstrap resamples the
    runs within each group and refits all groups together, and the engine's identifiability
    checks run on those draws (each shared parameter once, each group's own per group): a group
    whose few or narrow runs do not pin its own parameters has them marked not identified (in
    its law's ``unidentified``, the summary and ``warnings``). ``E_y`` is then always fitted (with
    ``offsets="scaling"`` only ``E_x`` comes from the scaling laws). Sharing ``E_y`` says that
    the y loss's irreducible part belongs to the test set, not to the training corpus; which
    parameters to share is a modelling choice to validate on held-out runs (as
    ``benchmarks/repro_l2l.py`` does on the highest-compute runs of the fitted budgets). There
    (six corpora fitted up to 9.6e17 FLOPs, the 2.1e18 budget's runs predicted), sharing ``E_y``
    cut the worst corpus's error of MMLU-Humanities train-to-test from 1.91% to 1.29% and of
    HellaSwag test-to-test from 1.12% to 1.04%; sharing ``kappa`` too was worse than neither
    (1.75%, 1.85%).
    """
    frame = as_table(frame, "frame")
    shared = tuple(dict.fromkeys(str(p) for p in shared))
    bad_share = [p for p in shared if p not in SHAREABLE]
    if bad_share:
        raise ParameterError(f"shared may name {list(SHAREABLE)}, not {bad_share}", "shared")
    if shared and group is None:
        raise ParameterError("shared parameters need groups (group=COL)", "shared", "group")
    if shared and E_y is not None:
        raise ParameterError("with shared parameters E_y is fitted; do not give E_y", "shared", "E_y")
    if offsets not in ("fit", "scaling"):
        raise ParameterError(f"offsets must be 'fit' or 'scaling', not {offsets!r}", "offsets")
    for name, given in (("E_x", E_x), ("E_y", E_y)):
        # a number above the smallest x is kept below it (as a law's offset is), but inf was
        # too, and then read as "given"
        for value in (given.values() if isinstance(given, Mapping) else [given]):
            if isinstance(value, int | float) and not (np.isfinite(value) and value > 0):
                raise ParameterError(f"{name} = {value:g} must be a positive finite number", name)
    xs, ys = _column(frame, x, source), _column(frame, y, source)
    keep = np.isfinite(xs) & np.isfinite(ys)
    notes: list[str] = []
    if not keep.all():
        notes.append(f"{int((~keep).sum())} rows without both {x} and {y} left out")
    labels = np.array([_ALL] * len(frame))
    if group is not None:
        col = frame[_check_group(frame, group, source)]
        labels = col.astype(str).to_numpy()
        # a row without a group formed a group '' of its own, which failed a pooled fit
        no_group = (col.isna() | (col.astype(str).str.strip() == "")).to_numpy() & keep
        if no_group.any():
            notes.append(f"{int(no_group.sum())} rows without a {group} left out (first: row "
                         f"{int(np.argmax(no_group)) + 1})")
            keep &= ~no_group
    for name, v in ((x, xs), (y, ys)):
        bad = np.flatnonzero(keep & ~(v > 0))
        if bad.size:
            raise InputError(f"a loss must be positive, not {v[bad[0]]:g}", source=source or None,
                             row=f"row {bad[0] + 1}", column=name)
    ids = (frame["run_id"].astype(str).to_numpy() if "run_id" in frame.columns
           else np.array([f"row-{i + 1}" for i in range(len(frame))]))
    n_col = d_col = None
    if offsets == "scaling":
        n_col = _find(frame, N, ("N", "params", "n_params"))
        d_col = _find(frame, D, ("D", "tokens", "n_tokens"))
        if n_col is None or d_col is None:
            raise ParameterError("offsets='scaling' needs model size and token columns (N=, D=)",
                                 "N", "D")
        notes.append((f"E_x: irreducible losses of {scaling_law} laws fitted to {x} " if shared else
                      f"E_x and E_y: irreducible losses of {scaling_law} laws fitted to {x} and {y} ")
                     + f"in ({n_col}, {d_col}) per group"
                     + ("; their bootstrap draws are carried into the intervals" if bootstrap
                        else " (held fixed)"))
    if shared:
        assert group is not None
        return _fit_pooled(frame, xs, ys, labels, keep, ids, x=x, y=y, group=group, pairing=pairing,
                           offsets=offsets, E_x=E_x, n_col=n_col, d_col=d_col, scaling_law=scaling_law,
                           shared=shared, bootstrap=bootstrap, seed=seed, level=level, source=source,
                           notes=notes)
    fits: dict[str, FitResult] = {}
    held: dict[str, dict[str, str]] = {}
    warns: list[str] = []
    per_group_ex = isinstance(E_x, Mapping)
    (ex0, ex_draws0), (ey0, ey_draws0) = (None, None) if per_group_ex else _offset(E_x), _offset(E_y)
    for g in dict.fromkeys(labels[keep]):
        rows = keep & (labels == g)
        given_x = _group_value(E_x, g)
        (ex, ex_draws), (ey, ey_draws) = _offset(given_x) if per_group_ex else (ex0, ex_draws0), (ey0, ey_draws0)
        if offsets == "scaling":
            sub = frame.loc[rows]
            assert n_col is not None and d_col is not None
            if ex is None:
                ex, ex_draws = _scaling_offset(sub, n_col, d_col, xs[rows], scaling_law, seed, bootstrap)
            if ey is None:
                ey, ey_draws = _scaling_offset(sub, n_col, d_col, ys[rows], scaling_law, seed + 1,
                                               bootstrap)
        x_top, y_top = float(xs[rows].min()) * (1 - _MARGIN), float(ys[rows].min()) * (1 - _MARGIN)
        clamped = {"E_x": ex is not None and ex > x_top, "E_y": ey is not None and ey > y_top}
        if ex is not None:
            ex = min(ex, x_top)
        if ey is not None:
            ey = min(ey, y_top)
        uncertain = bootstrap > 0 and (ex_draws is not None or ey_draws is not None)
        # an offset without draws of its own (or with the bootstrap off) is one number in every draw
        held[str(g)] = {
            name: _held_offset(given, scaling_law, col, clamped[name])
            for name, value, given, draws, col in (("E_x", ex, given_x, ex_draws, x), ("E_y", ey, E_y, ey_draws, y))
            if value is not None and (draws is None or not uncertain)}
        try:
            f = fit_shifted_power(xs[rows], ys[rows], pairing=pairing, E_x=ex, E_y=ey,
                                  bootstrap=0 if uncertain else bootstrap, seed=seed, level=level,
                                  run_ids=list(ids[rows]), source=source)
            if uncertain:
                every = _offset_draws(xs[rows], ys[rows], _full_params(f, f.params), ex_draws,
                                      ey_draws, ey is None, bootstrap, seed)
                draws = every[np.all(np.isfinite(every), axis=1)]
                if len(draws) < _min_refits(bootstrap):
                    raise NotIdentifiable(f"only {len(draws)} of {bootstrap} bootstrap refits "
                                          "under the offsets' draws converged")
                f = _with_draws(f, pairing, draws, "bootstrap draws carry the offsets' "
                                "uncertainty (each draw: an offset draw from its scaling law, "
                                "the link refitted on a resample of the runs)")
                f = checked_on_draws(f, every, ["K", "kappa", *(["E_y"] if ey is None else [])])
        except (NotIdentifiable, ParameterError) as exc:
            if group is None:
                raise
            warns.append(f"{g}: not fitted ({exc})")
            continue
        fits[str(g)] = replace(f, held=held[str(g)])
        warns += [f"{g}: {w}" if g else w for w in f.warnings]
    if not fits:
        raise NotIdentifiable("no group could be fitted: " + "; ".join(warns))
    kept = np.isin(labels, list(fits)) & keep
    return LossToLossFit(fits=fits, x_name=x, y_name=y, group_name=group, pairing=pairing,
                         offsets=_offsets_label(offsets, E_x, E_y, scaling_law),
                         run_ids=tuple(ids[kept]), level=level, warnings=warns, notes=notes)


def _offsets_label(offsets: str, E_x: Any, E_y: Any, scaling_law: str, ey_fitted: bool = False) -> str:
    """Where the offsets came from, for the summary: ``"fit"``, ``"given"`` or ``"scaling"``
    when both came the same way, else each said (``"E_x from a given law, E_y fitted"``): a
    given offset overrides ``offsets``, and "offsets: fit" beside an E_x taken from a law
    misled."""
    def source(value: Any, fitted: bool) -> str:
        if isinstance(value, Mapping):
            kinds = {source(v, False) for v in value.values()}
            return kinds.pop() if len(kinds) == 1 else "given per group"
        if isinstance(value, FitResult):
            return "from a given law"
        if value is not None:
            return "given"
        return "fitted" if fitted or offsets == "fit" else f"from {scaling_law} laws"

    ex, ey = source(E_x, False), source(E_y, ey_fitted)
    if ex == ey:
        return {"fitted": "fit", "given": "given", f"from {scaling_law} laws": "scaling"}.get(ex, ex)
    return f"E_x {ex}, E_y {ey}"


def _group_value(values: Any, g: str) -> Any:
    """Group ``g``'s E_x: its entry where ``values`` gives one per group, else ``values``."""
    if not isinstance(values, Mapping):
        return values
    if str(g) not in values:
        raise ParameterError(f"E_x gives no offset for group {g!r} (it has {sorted(values)})", "E_x")
    return values[str(g)]


def _fit_pooled(frame: pd.DataFrame, xs: np.ndarray, ys: np.ndarray, labels: np.ndarray,
                keep: np.ndarray, ids: np.ndarray, *, x: str, y: str, group: str, pairing: str,
                offsets: str, E_x: Any, n_col: str | None, d_col: str | None, scaling_law: str,
                shared: tuple[str, ...], bootstrap: int, seed: int, level: float, source: str,
                notes: list[str]) -> LossToLossFit:
    """:func:`fit_loss_to_loss` with ``shared`` parameters: every group's law fitted at once."""
    from dataclasses import replace

    names = list(dict.fromkeys(labels[keep]))
    if len(names) < 2:
        raise ParameterError(f"shared parameters need at least two groups, not {len(names)}", "shared")
    rows = [keep & (labels == g) for g in names]
    gx, gy = [xs[r] for r in rows], [ys[r] for r in rows]
    # each group's E_x: given (number, law, or one per group), from a scaling law, or fitted
    ex: list[float | None] = []
    ex_draws: list[np.ndarray | None] = []
    held: dict[str, dict[str, str]] = {}
    for g, r in zip(names, rows, strict=True):
        given = _group_value(E_x, g)
        if given is None and offsets == "scaling":
            assert n_col is not None and d_col is not None
            point, draws = _scaling_offset(frame.loc[r], n_col, d_col, xs[r], scaling_law, seed, bootstrap)
        else:
            point, draws = _offset(given, aligned=True)  # draw j stays the law's draw j
        if point is not None:
            top = float(xs[r].min()) * (1 - _MARGIN)
            if draws is None or not bootstrap:  # one number in every draw
                held[str(g)] = {"E_x": _held_offset(given, scaling_law, x, point > top)}
            point = min(point, top)
        ex.append(point)
        ex_draws.append(draws)
    pooled = _pooled_link(gx, gy, ex, shared)
    if pooled is None:
        raise NotIdentifiable(f"the pooled fit of {len(names)} groups did not converge")
    with np.errstate(all="ignore"):
        resid = [np.log(shifted_power({"x": gx[i]}, dict(zip(PARAMS, pooled[i], strict=True)))) - np.log(gy[i])
                 for i in range(len(names))]
    draws = np.full((bootstrap, len(names), 4), np.nan)
    rng = np.random.default_rng(seed)
    for j in range(bootstrap):
        idx = [rng.integers(0, len(v), len(v)) for v in gx]
        bx, by = [v[i] for v, i in zip(gx, idx, strict=True)], [v[i] for v, i in zip(gy, idx, strict=True)]
        bex: list[float | None] = []
        for i in range(len(names)):
            e = ex[i] if ex_draws[i] is None else float(ex_draws[i][j % len(ex_draws[i])])  # type: ignore[index]
            bex.append(None if e is None else min(e, float(bx[i].min()) * (1 - _MARGIN)))
        if any(e is not None and not (np.isfinite(e) and e > 0) for e in bex):
            continue
        got = _pooled_link(bx, by, bex, shared, start=pooled)
        if got is not None:
            draws[j] = got
    kept = np.flatnonzero(np.all(np.isfinite(draws), axis=(1, 2)))
    if bootstrap and len(kept) < _min_refits(bootstrap):
        raise NotIdentifiable(f"only {len(kept)} of {bootstrap} pooled bootstrap refits converged")
    law = PAIRINGS[pairing]
    fits: dict[str, FitResult] = {}
    warns: list[str] = []
    note = (f"fitted jointly with {len(names) - 1} other groups, sharing {', '.join(shared)}"
            + ("; bootstrap draws resample the runs within each group and refit all groups together"
               + (", each under a draw of its offset's law" if any(d is not None for d in ex_draws) else "")
               if bootstrap else ""))
    # the engine's identifiability checks (fit_arrays), on what this fit estimated: the shared
    # parameters once (one value and one draw for every group; all draws, so failed refits are
    # counted), then each group's own (its K, its unshared kappa and E_y, its E_x where fitted:
    # a held E_x or one drawn from a scaling law is not estimated from these runs)
    shared_warns, shared_bad = soft_identifiability(
        law, dict(zip(PARAMS, map(float, pooled[0]), strict=True)), draws[:, 0, :] if bootstrap else None,
        level, only=shared)
    warns += [f"shared across groups: {w}" for w in shared_warns]
    for i, g in enumerate(names):
        params = dict(zip(PARAMS, map(float, pooled[i]), strict=True))
        own = [p for p in PARAMS if p not in shared and (p != "E_x" or ex[i] is None)]
        group_warns, group_bad = soft_identifiability(law, params, draws[kept, i, :] if bootstrap else None,
                                                      level, only=own)
        warns += [f"{g}: {w}" for w in group_warns]
        # the per-group engine fit gives the result its frame (runs, ranges); its parameters are
        # then replaced by the pooled ones
        try:
            template = fit_shifted_power(gx[i], gy[i], pairing=pairing, E_x=ex[i], bootstrap=0, seed=seed,
                                         level=level, run_ids=list(ids[rows[i]]), source=source)
            template_notes = template.notes
        except NotIdentifiable:
            # too few runs to fit this group's law alone (four runs, four parameters), though
            # the pooled fit gives it fewer: the frame then comes from a fit of K alone, the
            # rest held at the pooled values (its constraint note would describe that, not this)
            try:
                template = fit_arrays(law, {"x": gx[i]}, gy[i], bootstrap=0, seed=seed, level=level,
                                      fix={k: params[k] for k in ("kappa", "E_x", "E_y")},
                                      run_ids=list(ids[rows[i]]), source=source)
            except NotIdentifiable as exc:
                raise NotIdentifiable(f"group {g!r} of the pooled fit: {exc}") from None
            template_notes = []
        fits[str(g)] = replace(template, law=law, params=params,
                               draws=draws[kept, i, :] if bootstrap else None,
                               residual_std=float(np.std(resid[i])),
                               unidentified=tuple(p for p in PARAMS if p in group_bad or p in shared_bad),
                               warnings=[*group_warns, *(f"shared across groups: {w}" for w in shared_warns)],
                               notes=[*template_notes, note], held=held.get(str(g), {}))
    notes.append(f"partial pooling: {', '.join(shared)} shared by the {len(names)} groups"
                 + ("; E_y fitted jointly (not from the scaling laws)" if offsets == "scaling" else ""))
    kept_all = np.isin(labels, names) & keep
    return LossToLossFit(fits=fits, x_name=x, y_name=y, group_name=group, pairing=pairing,
                         offsets=_offsets_label(offsets, E_x, None, scaling_law, ey_fitted=True),
                         run_ids=tuple(ids[kept_all]), level=level, warnings=warns,
                         notes=notes, shared=shared, draw_index=tuple(int(j) for j in kept))


def _check_group(frame: pd.DataFrame, group: str, source: str) -> str:
    from scalinglab.errors import columns_hint

    if group not in frame.columns:
        raise InputError(f"no group column {group!r}{columns_hint(group, list(frame.columns))}",
                         source=source or None)
    return group


def pair_by_compute(
    frame: pd.DataFrame, by: str, x_value: str, y_value: str, x: str, y: str | None = None,
    on: Sequence[str] = ("params", "tokens"),
) -> pd.DataFrame:
    """Train-to-train (or test-to-test) pairs: for each run with ``by == x_value``, the run with
    ``by == y_value`` and the same ``on`` columns (model size and tokens, hence compute); columns
    ``x`` (the first run's loss ``x``), ``y`` (the second's loss ``y``, default the same column),
    and ``on``. Repeated (N, D) points on one side are averaged."""
    y = y or x
    for col in (by, x, y, *on):
        if col not in frame.columns:
            raise ParameterError(f"the frame has no column {col!r}", "frame")
    a = frame[frame[by].astype(str) == x_value].groupby(list(on), as_index=False)[x].mean()
    b = frame[frame[by].astype(str) == y_value].groupby(list(on), as_index=False)[y].mean()
    if a.empty or b.empty:
        raise ParameterError(f"no runs with {by} = {x_value if a.empty else y_value!r}", "by")
    out = a.rename(columns={x: "x"}).merge(b.rename(columns={y: "y"}), on=list(on), how="inner")
    if out.empty:
        raise ParameterError(f"no ({', '.join(on)}) is shared by {x_value!r} and {y_value!r}", "on")
    return out


# -- translation -------------------------------------------------------------------------------


@dataclass(repr=False)
class Translation(Result):
    """A law translated to a new corpus: ``L_new(N, D) = K (L_old(N, D) - E_old)^kappa + E_new``,
    with the old law and its link both bootstrapped, beside the law refitted on the new runs alone."""

    kind: ClassVar[str] = "loss_translation"

    source: FitResult
    link: FitResult
    baseline: FitResult | None
    x_from: str
    run_ids: tuple[str, ...] = ()
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seed: int = 0
    #: when the link's draws were refitted under the old law's draws of E_old: the old law's
    #: draw each link draw belongs with (prediction pairs them, not at random)
    source_draw: tuple[int, ...] = ()

    def _inputs(self, N: Any, D: Any) -> dict[str, np.ndarray]:
        n = np.atleast_1d(np.asarray(N, dtype=float))
        d = np.atleast_1d(np.asarray(D, dtype=float))
        n, d = np.broadcast_arrays(n, d)
        if not np.all(np.isfinite(n) & (n > 0) & np.isfinite(d) & (d > 0)):
            raise ParameterError("N and D must be positive numbers", "N", "D")
        return {"N": n.astype(float), "D": d.astype(float), "C": 6.0 * n * d}

    def predict(self, N: Any, D: Any, *, baseline: bool = True, new_run: bool = False) -> pd.DataFrame:
        """The new corpus's loss at ``(N, D)`` with its joint interval (``y``, ``lo``, ``hi``):
        the old law's draw ``j`` at ``(N, D)``, through the link's draw ``j'`` (a random pairing:
        the two were fitted on different runs). ``new_run=True``: where one new run will fall,
        each draw also spread by the link's run-to-run scatter (log-normal with its residual
        std). With ``baseline``, the refit's ``baseline``, ``baseline_lo``, ``baseline_hi``
        beside it (also for a new run when ``new_run``)."""
        from scalinglab.downstream.chain import _pairing, loss_at

        inputs = self._inputs(N, D)
        x, x_draws = loss_at(self.source, inputs["N"], inputs["D"])
        y = self.link.predict(x=x)
        out = pd.DataFrame({"N": inputs["N"], "D": inputs["D"], "x": x, "y": y})
        lo = hi = np.full(len(x), np.nan)
        if x_draws is not None and self.link.n_draws:
            if self.source_draw and max(self.source_draw) < len(x_draws):
                li, ki = np.asarray(self.source_draw), np.arange(self.link.n_draws)
            else:
                li, ki = _pairing(len(x_draws), self.link.n_draws, np.random.default_rng(self.seed))
            cols = {k: self.link.draws[ki, i:i + 1] for i, k in enumerate(self.link.law.param_names)}
            with np.errstate(all="ignore"):
                joint = np.asarray(self.link.law(cols, x=x_draws[li]), dtype=float)
            if new_run and np.isfinite(self.link.noise_std):
                rng = np.random.default_rng(self.seed + 1)
                joint = joint * np.exp(rng.normal(0.0, self.link.noise_std, size=joint.shape))
            lo, hi = percentile_interval(joint, self.level)
        elif self.link.n_draws:
            _, lo, hi = self.link.predict_interval(new_run=new_run, x=x)
        out["lo"], out["hi"] = lo, hi
        out["below_E_x"] = below_offset(_full_params(self.link, self.link.params), x)
        if baseline and self.baseline is not None:
            # the refit on a few new runs alone is the comparison the translation must beat, and
            # it usually leaves parameters unidentified at extreme values (six runs at one tokens
            # per parameter: A = inf, alpha = 64), whose predictions overflow to inf or nan; that
            # is its honest answer (score gives it a NaN R²), not a fault to warn about
            with np.errstate(over="ignore", invalid="ignore"):
                b, blo, bhi = self.baseline.predict_interval(
                    new_run=new_run, **{k: inputs[k] for k in self.baseline.law.inputs})
            out["baseline"], out["baseline_lo"], out["baseline_hi"] = b, blo, bhi
            if self.baseline.unidentified:
                # its figures stay (NaN where it predicts nothing); the reason goes beside them
                out["baseline_note"] = _refit_state(self.baseline)
        return out

    def score(self, frame: pd.DataFrame, loss: str = "loss", N: str | None = None,
              D: str | None = None) -> dict[str, float]:
        """R² of the translated law and of the refit on the runs of ``frame``."""
        n_col = _find(frame, N, ("N", "params"))
        d_col = _find(frame, D, ("D", "tokens"))
        if n_col is None or d_col is None:
            raise ParameterError("frame needs model size and token columns", "N", "D")
        p = self.predict(frame[n_col].to_numpy(float), frame[d_col].to_numpy(float))
        obs = frame[loss].to_numpy(float)
        out = {"translated": r_squared(obs, p["y"])}
        if "baseline" in p:
            out["refit"] = r_squared(obs, p["baseline"])
        return out

    def _repr_items(self) -> list[str]:
        return [f"from {self.source.law.name} on {self.source.n_runs} runs"]

    def _interval_parts(self) -> dict[str, Result]:
        parts: dict[str, Result] = {"source": self.source, "link": self.link}
        if self.baseline is not None:
            parts["baseline"] = self.baseline
        return parts

    def summary(self) -> Summary:
        t = Table(f"link L_new = K (L_old - E_old)^kappa + E_new ({self.level:.0%} intervals)",
                  ["K", "kappa", "E_old", "E_new"])
        est = self.link.estimates()
        full = _full_params(self.link, self.link.params)
        t.add_row(est["K"], est["kappa"], est.get("E_x", Estimate.held(full["E_x"], f"from the {self.source.law.name} law")),
                  est.get("E_y", Estimate(float(full["E_y"]))))
        facts = [("old law", f"{self.source.law.name} on {self.source.n_runs} runs"),
                 ("new runs", str(self.link.n_runs)), ("x of the new runs", self.x_from),
                 ("link residual std (log)", f"{self.link.residual_std:.3g}")]
        if self.baseline is not None:
            facts.append(("refit on the new runs alone",
                          f"{self.baseline.law.name}, {_refit_state(self.baseline)}"))
        return Summary(title="law translated to a new corpus", tables=[t], facts=facts,
                       notes=list(self.notes), warnings=list(self.warnings), data=self.to_dict())

    def to_dict(self, include_draws: bool = False) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source.to_dict(include_draws=include_draws),
                "link": self.link.to_dict(include_draws=include_draws),
                "baseline": None if self.baseline is None
                else self.baseline.to_dict(include_draws=include_draws),
                "x_from": self.x_from, "run_ids": list(self.run_ids), "level": self.level,
                "seed": self.seed, "warnings": list(self.warnings), "notes": list(self.notes),
                "source_draw": list(self.source_draw) if include_draws else []}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Translation:
        return cls(source=FitResult.from_dict(data["source"]), link=FitResult.from_dict(data["link"]),
                   baseline=None if not data.get("baseline") else FitResult.from_dict(data["baseline"]),
                   x_from=str(data.get("x_from", "")), run_ids=tuple(data.get("run_ids", [])),
                   level=float(data.get("level", 0.95)), seed=int(data.get("seed", 0)),
                   warnings=list(data.get("warnings", [])), notes=list(data.get("notes", [])),
                   source_draw=tuple(int(i) for i in data.get("source_draw", [])))


def _refit_state(fit: FitResult) -> str:
    """What the refit on the few new runs alone is worth, in words: ``"not identified (E, A,
    alpha); diverged (A = inf): it predicts nothing"`` where its estimate ran off to infinity."""
    if not fit.unidentified:
        return "identified"
    state = f"not identified ({', '.join(fit.unidentified)})"
    gone = [f"{k} = {v:g}" for k, v in fit.params.items() if not np.isfinite(v)]
    return state + (f"; diverged ({', '.join(gone)}): it predicts nothing" if gone else "")


def translate(
    source: FitResult,
    runs: pd.DataFrame,
    *,
    loss: str = "loss",
    x: str | None = None,
    N: str | None = None,
    D: str | None = None,
    baseline: str | None = "chinchilla",
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
    source_name: str = "",
) -> Translation:
    """Translate ``source`` (a law of N and D fitted on one corpus, with draws) to the corpus of
    ``runs`` (a few runs: model size, tokens, ``loss``).

    The link's x for each new run is the old corpus's loss at its (N, D): the column ``x`` when
    the runs carry it (a model with the same N and D trained on the old corpus, as
    Brandfonbrener et al. pair them), else the old law's prediction there. ``E_old`` is held at
    the old law's irreducible loss (its limit as N and D grow); ``K``, ``kappa`` and ``E_new``
    are fitted. ``baseline`` (a catalogue law, or None) is refitted on the same runs alone for
    comparison.
    """
    if not isinstance(source, FitResult):
        raise ParameterError("source must be a fitted loss law (FitResult)", "source")
    n_col = _find(runs, N, ("N", "params", "n_params"))
    d_col = _find(runs, D, ("D", "tokens", "n_tokens"))
    if n_col is None or d_col is None:
        raise ParameterError("the runs need model size and token columns (N=, D=)", "N", "D")
    n, d, y = (_column(runs, c, source_name) for c in (n_col, d_col, loss))
    ids = (runs["run_id"].astype(str).tolist() if "run_id" in runs.columns
           else [f"row-{i + 1}" for i in range(len(runs))])
    e_old, e_draws = irreducible(source)
    joint = bootstrap > 0 and e_draws is not None and bool(np.isfinite(e_draws).any())
    notes = [f"E_old = {e_old:.4g}: the old law's irreducible loss"
             + ("; each link draw is refitted under the old law's draw of it, and predictions "
                "pair the two" if joint else " (held fixed)")]
    if x is not None:
        xs = _column(runs, x, source_name)
        x_from = f"column {x!r} (paired runs on the old corpus)"
    else:
        from scalinglab.downstream.chain import loss_at

        xs = loss_at(source, n, d)[0]
        x_from = "the old law's prediction at each run's (N, D)"
    if not np.all(xs > e_old):
        raise InputError(f"a run's old-corpus loss {float(xs.min()):.4g} is at or below the old law's "
                         f"irreducible loss {e_old:.4g}", source=source_name or None)
    link = fit_shifted_power(xs, y, pairing="train_to_train", E_x=e_old,
                             bootstrap=0 if joint else bootstrap, seed=seed, level=level,
                             run_ids=ids, source=source_name)
    source_draw: tuple[int, ...] = ()
    too_few: str | None = None
    if joint:
        assert e_draws is not None
        raw = _offset_draws(xs, y, _full_params(link, link.params), e_draws, None, True,
                            len(e_draws), seed)
        good = np.flatnonzero(np.all(np.isfinite(raw), axis=1))
        link = _with_draws(link, "train_to_train", raw[good], "bootstrap draws carry E_old's "
                           "uncertainty (draw j: the old law's draw j of E_old, the link refitted "
                           "on a resample of the new runs)")
        source_draw = tuple(int(i) for i in good)
        too_few = _too_few_refits(len(source_draw), len(e_draws))
    base = None
    warns = [f"link: {w}" for w in link.warnings]
    if too_few is not None:
        warns.append(f"link: {too_few}")
    if baseline is not None:
        frame = pd.DataFrame({"N": n, "D": d, "loss": y, "run_id": ids})
        try:
            base = fit_law(baseline, frame, bootstrap=bootstrap, seed=seed, level=level,
                           source=source_name)
        except (ParameterError, InputError, NotIdentifiable) as exc:
            notes.append(f"the {baseline} refit on these runs failed: {exc}")
        else:
            if base.unidentified:
                notes.append(f"the {baseline} refit on {len(y)} runs alone does not identify "
                             f"{', '.join(base.unidentified)}")
    return Translation(source=source, link=link, baseline=base, x_from=x_from, run_ids=tuple(ids),
                       level=level, warnings=warns, notes=notes, seed=seed, source_draw=source_draw)


__all__ = ["BelowOffsetWarning", "LossToLossFit", "Translation", "fit_loss_to_loss",
           "fit_shifted_power", "irreducible", "pair_by_compute", "r_squared", "translate"]
