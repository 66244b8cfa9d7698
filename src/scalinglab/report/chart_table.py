"""The one chart table: every chart the report and the dashboard draw, wired once.

A :class:`ChartKind` is a row of :data:`TABLE`: the chart's id, its title and caption, the
builder of its interactive Plotly spec (:mod:`scalinglab.report.charts`) and of its static
matplotlib figure (:mod:`scalinglab.report.figures`, ``report --figures`` and the dashboard's
``/api/figures``), and its empty state: why there is nothing to draw, said in the chart's place.
Both faces draw from this table: the report's sections (:func:`scalinglab.report.sections.
table_chart`) and the dashboard's ``/api/charts/{id}`` and ``/api/figures/{id}.{ext}``. Only
what a chart is drawn *from* differs, a :class:`ChartInputs`: the report hands it the answers
its summary already holds, the dashboard the Study's answers for one request; each part (the
fit, the IsoFLOP fit, the lr/batch laws, the curves) is asked for only when a chart needs it,
once.

A part a chart needs that cannot be had raises the library's own error (a fit the runs cannot
identify raises :class:`~scalinglab.errors.NotIdentifiable`): the report never asks (it shows
the fit's error in the section instead), the dashboard answers it with the error's status. A
part a chart can do without (the overview's frontier) is left out when it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import InputError, NotIdentifiable, ScalingLabError, StoreBusy
from scalinglab.report import charts, views
from scalinglab.study import analysis
from scalinglab.summary import format_number

Spec = dict[str, Any]
Curves = tuple[dict[str, pd.DataFrame], pd.DataFrame]

#: why a chart of fits has nothing to draw when no run is finished (no filter / a filter)
NO_RUNS = "no finished runs yet: import runs or start a sweep; this view updates as they arrive"
NO_MATCH = "no finished runs match this filter"


def why(exc: BaseException) -> str:
    """A library refusal as one line (a fit that cannot be identified says so first)."""
    return f"not identifiable: {exc}" if isinstance(exc, NotIdentifiable) else str(exc)


def _absent(what: str) -> Callable[[], Any]:
    def missing() -> Any:
        raise InputError(f"no {what} was given to draw this chart from")

    return missing


class ChartInputs:
    """What the charts are drawn from: the finished runs in the filter, and the answers about
    them, each a zero-argument function called at most once (its value, or its error, kept).

    ``compute``: the planned budget (the allocation chart marks it); ``grid``: the (N, D) of the
    lr × batch grid to draw; ``curves_of(run_ids)``: the store's curves of those runs (the
    seed bands ask for theirs); ``x`` and ``smooth``: the loss curves' axis and smoothing;
    ``forecast``: draw a forecast band past each unfinished run's curve; ``filtered``: the runs
    are a filter's (an empty state says "match this filter"); ``data`` and ``budgets``: the
    loss-law runs and the budgets, where the caller already has them."""

    def __init__(self, runs: pd.DataFrame, *, law: str = "chinchilla",
                 fit: Callable[[], Any] | None = None,
                 isoflop: Callable[[], Any] | None = None,
                 hparams: Callable[[], dict[str, Any]] | None = None,
                 rolling: Callable[[], Any] | None = None,
                 curves: Callable[[], Curves] | None = None,
                 curves_of: Callable[[list[str]], dict[str, pd.DataFrame]] | None = None,
                 compute: float | None = None, grid: tuple[float, float] | None = None,
                 x: str = "tokens", smooth: float = 0.6, forecast: bool = False,
                 filtered: bool = False, data: pd.DataFrame | None = None,
                 budgets: views.Budgets | None = None, picked: Sequence[str] = ()) -> None:
        self.runs = runs
        #: the runs whose curves a person asked for by name (the dashboard's ticked runs): the
        #: curve chart names those that have none, rather than drawing fewer lines unexplained
        self.picked = [str(r) for r in picked]
        self.law = law
        self.compute = compute if compute is not None else (
            analysis.default_budget(runs) if len(runs) else None)
        self.grid = grid
        self.x, self.smooth, self.forecast, self.filtered = x, smooth, forecast, filtered
        self._ask = {"fit": fit or _absent("loss-law fit"),
                     "isoflop": isoflop or _absent("IsoFLOP fit"),
                     "hparams": hparams or (lambda: {}),
                     "rolling": rolling or _absent("rolling-forward check"),
                     "curves": curves or (lambda: ({}, runs))}
        self._curves_of = curves_of or (lambda ids: {})
        self._memo: dict[str, tuple[bool, Any]] = {}
        # what the caller already holds (the report computes them once for every chart)
        if data is not None:
            self._memo["data"] = (True, data)
        if budgets is not None:
            self._memo["budgets"] = (True, budgets)

    def _get(self, part: str, compute: Callable[[], Any] | None = None) -> Any:
        if part not in self._memo:
            try:
                self._memo[part] = (True, (compute or self._ask[part])())
            except StoreBusy:
                raise  # worth retrying: never kept
            except Exception as exc:  # noqa: BLE001 - kept and raised again to every asker
                self._memo[part] = (False, exc)
        ok, value = self._memo[part]
        if not ok:
            raise value
        return value

    def _optional(self, part: str) -> Any:
        try:
            return self._get(part)
        except StoreBusy:
            raise
        except ScalingLabError:
            return None

    # -- the parts ----------------------------------------------------------------------------

    def fit(self) -> Any:
        """The loss-law fit (a FitResult), or its error raised."""
        return self._get("fit")

    def fit_or_none(self) -> Any:
        return None if self.runs.empty else self._optional("fit")

    def fit_nd(self) -> Any:
        """The fit where its law is one of N and D (what allocation needs), else ``None``."""
        fit = self.fit_or_none()
        return fit if fit is not None and {"N", "D"} <= set(fit.law.inputs) else None

    def isoflop(self) -> Any:
        return self._get("isoflop")

    def isoflop_or_none(self) -> Any:
        return None if self.runs.empty else self._optional("isoflop")

    def hparams(self) -> dict[str, Any]:
        return self._get("hparams")  # type: ignore[no-any-return]

    def rolling(self) -> Any:
        return self._get("rolling")

    def curves(self) -> Curves:
        """The loss curves to draw and the runs they belong to."""
        return self._get("curves")  # type: ignore[no-any-return]

    def seed_curves(self) -> tuple[dict[str, pd.DataFrame], list[list[str]]]:
        """The runs that differ only in their seed, grouped (at most
        :data:`~scalinglab.report.views.MAX_SEED_GROUPS` groups), and their curves."""
        def read() -> tuple[dict[str, pd.DataFrame], list[list[str]]]:
            groups = views.seed_groups(self.runs)[:views.MAX_SEED_GROUPS]
            ids = [r for g in groups for r in g]
            return (self._curves_of(ids) if ids else {}), groups

        return self._get("seed_curves", read)  # type: ignore[no-any-return]

    @property
    def data(self) -> pd.DataFrame:
        """The runs that inform a loss law (the one selection rule)."""
        return self._get("data", lambda: analysis.loss_runs(self.runs))  # type: ignore[no-any-return]

    @property
    def budgets(self) -> views.Budgets:
        """The runs' compute budgets, as the IsoFLOP fit assigned them where there is one."""
        return self._get("budgets", lambda: views.budgets_of(self.runs, self.isoflop_or_none()))  # type: ignore[no-any-return]

    def grid_runs(self) -> pd.DataFrame:
        """The runs of the lr × batch grid at :attr:`grid`."""
        from scalinglab.report import figures

        try:
            return figures.pick_grid(self.runs, *self.grid_at())
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def grid_at(self) -> tuple[float, float]:
        """The (N, D) of the lr × batch grid to draw."""
        if self.grid is None:
            raise InputError("no lr × batch grid in these runs")
        return self.grid

    def predictions(self) -> dict[str, tuple[float, float]]:
        """Each lr/batch law's predicted optimum at :attr:`grid`."""
        return analysis.predictions_at(self.hparams(), *self.grid_at())

    def allocation_law(self) -> Any:
        """The IsoFLOP allocation law whose exponents' bootstrap draws are drawn, or ``None``."""
        iso = self.isoflop_or_none()
        alloc = None if iso is None else (iso.approach2 or iso.approach1)
        return alloc if alloc is not None and alloc.exponent_draws() else None

    def empty_runs(self) -> str | None:
        return (NO_MATCH if self.filtered else NO_RUNS) if self.runs.empty else None


# -- the builders -----------------------------------------------------------------------------


def _overview(v: ChartInputs) -> Spec:
    return charts.runs_by_budget(v.runs, v.budgets, v.fit_or_none())


def _fit_points(v: ChartInputs) -> tuple[Any, pd.DataFrame]:
    fit = v.fit()
    return fit, v._get("points", lambda: views.fit_points(v.data, fit, v.budgets))


def _parity(v: ChartInputs) -> Spec:
    fit, points = _fit_points(v)
    return charts.parity(points, fit, v.budgets)


def _residuals(v: ChartInputs) -> Spec:
    fit, points = _fit_points(v)
    return charts.residuals(points, fit, v.budgets)


def _no_draws(v: ChartInputs) -> str | None:
    return v.empty_runs() or (None if v.fit().n_draws else
                              "no bootstrap draws (bootstrap 0): no intervals and no corner "
                              "plot; fit with bootstrap > 0 to see them")


def _isoflop(v: ChartInputs) -> Spec:
    try:
        iso = v.isoflop()
    except StoreBusy:
        raise
    except ScalingLabError as exc:  # the raw profiles still show, with why there is no fit
        return raw_isoflop(v.data, why(exc))
    return charts.isoflop(views.isoflop_series(v.data, iso), iso)


def _allocation_empty(v: ChartInputs) -> str | None:
    if v.empty_runs():
        return v.empty_runs()
    if v.isoflop_or_none() is None and v.fit_nd() is None:
        return "neither an IsoFLOP fit nor a loss law of N and D fits these runs"
    return None


def _allocation(v: ChartInputs) -> Spec:
    iso, fit = v.isoflop_or_none(), v.fit_nd()
    C = views.compute_grid(iso, fit, v.compute)
    curves = ([views.loss_law_allocation(fit, C)] if fit is not None else []) + (
        views.isoflop_allocations(iso, C) if iso is not None else [])
    return charts.allocation(curves, views.budget_optima(iso) if iso is not None else {},
                             v.compute, float(v.runs["C"].max()))


def _exponents(v: ChartInputs) -> Spec:
    alloc = v.allocation_law()
    series = []
    for name in ("a", "b"):
        centres, counts = views.histogram(alloc.exponent_draws()[name])
        series.append({"name": f"{name} (estimate {format_number(getattr(alloc, name))})",
                       "x": centres, "y": counts, "mode": "lines+markers"})
    return charts.series_chart(f"Approach {alloc.approach}: bootstrap draws of the exponents",
                               "exponent", "draws", series)


def _curves_empty(v: ChartInputs) -> str | None:
    curves, info = v.curves()
    if curves:
        return None
    if len(info) == 1:
        return "no loss curve recorded for this run"
    return ("no loss curves recorded for these runs (sweeps and imports with a curve column "
            "record them)")


def _curves(v: ChartInputs) -> Spec:
    curves, info = v.curves()
    spec = charts.loss_curves(views.curve_series(curves, info, v.x, v.smooth), v.smooth)
    lacking = [r for r in v.picked if r not in curves or not len(curves[r])]
    if lacking and spec.get("data"):  # none at all: the empty state says it (_curves_empty)
        who = (f"run {views.legend_name(lacking[0])} has" if len(lacking) == 1 else
               f"{len(lacking)} of the {len(v.picked)} runs ticked have")
        spec["layout"]["title"]["text"] += ("<br><span style='font-size:11px;color:#8a5a00'>"
                                            f"{who} no loss curve recorded</span>")
    if v.forecast:
        from scalinglab.report.forecasts import add_forecasts  # a band past unfinished runs

        spec = add_forecasts(spec, curves, info)
    return spec


def _seeds(v: ChartInputs) -> Spec:
    curves, groups = v.seed_curves()
    return charts.seed_bands(curves, v.runs, groups, v.x, v.smooth)


def _rolling_view(v: ChartInputs) -> Any:
    return v._get("rolling_view", lambda: views.rolling_view(v.rolling()))


def _figures() -> Any:
    from scalinglab.report import figures  # matplotlib: only when a static figure is drawn

    return figures


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartKind:
    """One chart: its builders and its empty state (see the module)."""

    id: str
    title: str
    caption: Callable[[ChartInputs], str]
    spec: Callable[[ChartInputs], Spec]
    #: the static figure, where there is one
    figure: Callable[[ChartInputs], Any] | None = None
    #: why there is nothing to draw (``None``: draw): the report says it in the chart's place,
    #: the dashboard draws it as an empty chart (and refuses the static figure with it)
    empty: Callable[[ChartInputs], str | None] = ChartInputs.empty_runs
    #: whether the static figure can be drawn from these inputs (the report offers only those)
    has_figure: Callable[[ChartInputs], bool] = lambda v: True


TABLE: dict[str, ChartKind] = {k.id: k for k in (
    ChartKind("overview", "Runs by compute budget",
              lambda v: "Every finished run's loss against its compute, by budget, with the "
                        "fitted law's compute-optimal loss",
              _overview, empty=lambda v: None),  # the runs chart says itself why it is empty
    ChartKind("parity", "Predicted vs observed loss",
              lambda v: f"{v.law}: predicted vs observed loss, by budget; held-out runs ringed",
              _parity, lambda v: _figures().parity(v.data, v.fit(), v.isoflop_or_none())),
    ChartKind("residuals", "Residuals",
              lambda v: f"{v.law}: residuals against compute, by budget",
              _residuals, lambda v: _figures().residuals(v.data, v.fit(), iso=v.isoflop_or_none())),
    ChartKind("corner", "Bootstrap draws",
              lambda v: f"{v.law}: bootstrap draws of every parameter",
              lambda v: charts.corner(views.corner_data(v.fit())),
              lambda v: _figures().corner(v.fit()), empty=_no_draws),
    ChartKind("isoflop", "IsoFLOP profiles",
              lambda v: "IsoFLOP profiles: loss against N at each budget (the runs the fit "
                        "assigned to it), its parabola and minimum",
              _isoflop, lambda v: _figures().isoflop_curves(v.data, v.isoflop())),
    ChartKind("allocation", "Compute-optimal allocation",
              lambda v: "Compute-optimal N and D against compute, extrapolated to "
                        f"{format_number(v.compute, 3)} FLOPs",
              _allocation, lambda v: _figures().optimal_allocation(v.isoflop(), v.compute,
                                                                   fit=v.fit_nd()),
              empty=_allocation_empty, has_figure=lambda v: v.isoflop_or_none() is not None),
    ChartKind("isoflop_bootstrap", "IsoFLOP exponents",
              lambda v: "IsoFLOP: bootstrap distributions of the allocation exponents",
              _exponents, lambda v: _figures().bootstrap_distributions(
                  v.allocation_law().exponent_draws(), level=v.allocation_law().level,
                  point={"a": v.allocation_law().a, "b": v.allocation_law().b}),
              empty=lambda v: v.empty_runs() or (
                  None if v.allocation_law() is not None
                  else "no bootstrap draws of the IsoFLOP allocation exponents")),
    ChartKind("heatmap", "lr × batch grid",
              lambda v: f"lr × batch grid at N = {format_number(v.grid_at()[0], 3)}, "
                        f"D = {format_number(v.grid_at()[1], 3)} with each law's predicted optimum",
              lambda v: charts.lr_batch(v.grid_runs(), v.predictions()),
              lambda v: _figures().lr_batch_heatmap(v.runs, *v.grid_at(), v.predictions())),
    ChartKind("rolling", "Rolling-forward check",
              lambda v: f"{v.rolling().law}: |error| of each forward prediction against its "
                        "distance beyond the fit, by cut-off (open: outside the new-run band), "
                        "with the mean observed error by distance beside the predicted one",
              lambda v: charts.rolling_forward(_rolling_view(v)),
              lambda v: _figures().rolling_forward(_rolling_view(v)),
              empty=lambda v: None),  # drawn from the check itself, not from the runs
    ChartKind("curves", "Training curves",
              lambda v: f"Training curves of {len(v.curves()[0])} runs, spread over compute",
              _curves, lambda v: _figures().loss_curves(*v.curves(), x=v.x, smoothing=v.smooth),
              empty=_curves_empty),
    # the two below say themselves why they are empty (too few lr x batch runs, no seeds)
    ChartKind("seeds", "Training loss across seeds",
              lambda v: "Runs that differ only in their seed: the mean of their smoothed "
                        "curves and a band of ± 1 sd across seeds",
              _seeds, empty=lambda v: None),
    ChartKind("parallel", "Runs across lr and batch",
              lambda v: "The runs that set lr and batch across log lr, log batch, N, D and "
                        "the loss; drag on an axis to keep a range",
              lambda v: charts.parallel_coordinates(v.runs), empty=lambda v: None),
)}


def spec(chart: str, v: ChartInputs) -> Spec:
    """The interactive chart ``chart`` (a :data:`TABLE` id) drawn from ``v``; an empty state is
    an empty chart that says why."""
    kind = TABLE[chart]
    reason = kind.empty(v)
    return charts.empty(reason, kind.title) if reason else kind.spec(v)


def figure(chart: str, v: ChartInputs) -> Any:
    """The static figure of ``chart`` drawn from ``v``; an empty state refuses it
    (:class:`~scalinglab.errors.InputError` with the reason)."""
    kind = TABLE[chart]
    if kind.figure is None:
        raise InputError(f"the {chart} chart has no static figure")
    reason = kind.empty(v)
    if reason:
        raise InputError(reason)
    return kind.figure(v)


def figure_ids() -> tuple[str, ...]:
    """The charts that have a static figure."""
    return tuple(k.id for k in TABLE.values() if k.figure is not None)


def raw_isoflop(runs: pd.DataFrame, reason: str) -> Spec:
    """The IsoFLOP chart when the fit is impossible: the runs' loss against N per compute budget
    (grouped as the fit would), no parabolas, and the reason in the title, so a failed fit still
    shows the profiles it could not fit."""
    b = views.budgets_of(runs, None)
    series = []
    cols = [c for c in ("run_id", "N", "D", "C", "loss") if c in runs]
    ids = runs["run_id"].astype(str)
    for i, (value, label, colour) in enumerate(zip(b.values, b.labels, b.colours, strict=True)):
        mine = runs[[b.of(r) == i for r in ids]][cols].reset_index(drop=True)
        series.append(views.BudgetSeries(C=value, label=f"{label} ({len(mine)} runs)", colour=colour,
                                         runs=mine, ok=False, status="not fitted",
                                         curve_N=np.array([]), curve_loss=np.array([]), vertex=None))
    spec = charts.isoflop(series, SimpleNamespace(approach1=None, approach2=None))  # type: ignore[arg-type]
    # the reason under the title, wrapped: on one line it ran off the dashboard's panel
    lines = charts.wrap_reason(reason)
    spec["layout"]["title"]["text"] = (f"IsoFLOP profiles, {len(series)} budgets, raw: no fit<br>"
                                       f"<span style='font-size:11px'>{lines}</span>")
    spec["layout"]["title"]["font"]["color"] = "#8a5a00"
    margin = spec["layout"].setdefault("margin", {})
    margin["t"] = max(int(margin.get("t", 48)), 44 + 17 * (lines.count("<br>") + 2))
    spec["fit_error"] = reason
    return spec


__all__ = ["TABLE", "ChartInputs", "ChartKind", "figure", "figure_ids", "raw_isoflop", "spec", "why"]
