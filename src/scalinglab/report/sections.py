"""The report's sections, built once from :class:`~scalinglab.report.analysis.Summary`.

A :class:`Section` is a title, HTML fragments and :class:`Chart` s (an interactive Plotly spec and,
where there is one, the static matplotlib figure ``report --figures`` saves). The HTML report
renders the sections in order under a table of contents; the dashboard draws the same charts
from the same builders; every table and number is rendered by :mod:`scalinglab.summary`.

Adding a result to the report and the dashboard takes one function: anything with
``summary()`` (a :class:`~scalinglab.results.Result`) becomes a section with
:func:`result_section`, its curves a chart with :func:`scalinglab.report.charts.series_chart`;
register the builder with :func:`register_section` and both the report and the dashboard's
"More results" panel show it::

    @register_section
    def downstream(summary, store):
        result = fit_my_result(summary.runs)          # anything with summary()
        return result_section(result, id="downstream", title="Loss to benchmark accuracy",
                              charts=[Chart("downstream_link", "accuracy vs loss",
                                            lambda: charts.series_chart(...))])

A result saved to a file (``fit downstream --save``, ``testtime coverage --save``...) joins the
report with ``report --result FILE`` and the dashboard with ``serve --result FILE``: each kind's
charts are registered in :mod:`scalinglab.report.saved` with ``result_charts``.

A builder returns ``None`` when the runs have nothing for it; a builder that raises a
:class:`~scalinglab.errors.ScalingLabError` shows its message in place of the section. A module
of builders is named in :data:`SECTION_MODULES`, so the report imports it (lazily) before it
collects the sections.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import ScalingLabError
from scalinglab.fit.validate import RollingForward
from scalinglab.report import chart_table, views
from scalinglab.report.chart_table import ChartInputs
from scalinglab.stats import Estimate
from scalinglab.study import analysis
from scalinglab.study.analysis import Summary as Analysis
from scalinglab.summary import Table, format_interval, format_number, formula_text

#: most loss curves drawn in one chart
MAX_CURVES = 40


@dataclass
class Chart:
    """One chart: ``spec()`` the interactive Plotly figure, ``figure()`` the static one."""

    name: str
    caption: str
    spec: Callable[[], dict[str, Any]]
    figure: Callable[[], Any] | None = None


@dataclass
class Section:
    """A titled part of the report: HTML fragments and charts, in order, and subsections."""

    id: str
    title: str
    parts: list[str | Chart] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)

    def charts(self) -> list[Chart]:
        own = [p for p in self.parts if isinstance(p, Chart)]
        return own + [c for child in self.children for c in child.charts()]


def e(x: Any) -> str:
    return html.escape(str(x))


def box(kind: str, lines: Iterable[str]) -> str:
    """A warning (``warn``), error (``error``) or note (``note``) box; empty without lines."""
    items = "".join(f"<li>{e(x)}</li>" for x in lines)
    return f'<div class="{kind}"><ul>{items}</ul></div>' if items else ""


def para(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{e(text)}</p>' if cls else f"<p>{e(text)}</p>"


def result_section(result: Any, *, id: str, title: str, intro: str = "",
                   charts: Sequence[Chart] = ()) -> Section:
    """Any result with ``summary()`` as a section: its summary (tables, facts, notes, warnings,
    rendered by :mod:`scalinglab.summary`) and its charts."""
    parts: list[str | Chart] = [para(intro, "meta")] if intro else []
    parts.append(result.summary().as_html())
    parts += list(charts)
    return Section(id=id, title=title, parts=parts)


SectionBuilder = Callable[[Analysis, Any], "Section | None"]
_BUILDERS: list[SectionBuilder] = []
#: modules whose import registers sections (e.g. "scalinglab.downstream.report")
SECTION_MODULES: tuple[str, ...] = ("scalinglab.report.curve_report",)


def register_section(builder: SectionBuilder) -> SectionBuilder:
    """Add a section to every report and to the dashboard's "More results" panel (decorator)."""
    if builder not in _BUILDERS:
        _BUILDERS.append(builder)
    return builder


def extra_sections(s: Analysis, store: Any = None) -> list[Section]:
    """The registered sections for this summary (a builder's refusal shown as its message)."""
    from importlib import import_module

    for module in SECTION_MODULES:
        import_module(module)
    out = []
    for build in list(_BUILDERS):
        try:
            section = build(s, store)
        except ScalingLabError as exc:
            name = getattr(build, "__name__", "section").replace("_", " ")
            section = Section(id=f"extra-{name.replace(' ', '-')}", title=name,
                              parts=[box("error", [str(exc)])])
        if section is not None:
            out.append(section)
    return out


# -- what the sections share ------------------------------------------------------------------


@dataclass
class Context:
    """Views every section draws from, computed once per report."""

    s: Analysis
    data: pd.DataFrame  # the runs that inform loss laws (the one selection rule)
    budgets: views.Budgets
    store: Any = None

    @classmethod
    def of(cls, s: Analysis, store: Any = None) -> Context:
        iso = s.isoflop.value if s.isoflop.ok else None
        data = analysis.loss_runs(s.runs)
        return cls(s=s, data=data, budgets=views.budgets_of(s.runs, iso), store=store)

    @property
    def iso(self) -> Any:
        return self.s.isoflop.value if self.s.isoflop.ok else None

    def inputs(self, law: str | None = None, **options: Any) -> ChartInputs:
        """What the chart table draws from: this summary's answers (``law``'s fit; the
        primary fit when ``None``), the store's curves."""
        s = self.s
        outcome = s.fits.get(law) if law is not None else next(
            (o for o in s.fits.values() if o.ok), None)
        store, runs = self.store, s.runs
        return ChartInputs(
            runs, law=law or s.primary_law or "chinchilla", compute=s.compute,
            fit=_answer(outcome, "loss-law fit"), isoflop=_answer(s.isoflop, "IsoFLOP fit"),
            hparams=lambda: s.hparams,
            curves=lambda: ((analysis.collect_curves(store, runs, MAX_CURVES), runs)
                            if store is not None else ({}, runs)),
            curves_of=lambda ids: store.curves(ids) if store is not None else {},
            data=self.data, budgets=self.budgets, **options)


def _answer(outcome: Any, what: str) -> Any:
    """An answer of the summary as the chart table asks for it: its value, or its error."""
    def get() -> Any:
        if outcome is None or not outcome.ok:
            from scalinglab.errors import InputError

            raise InputError(f"no {what}: {outcome.error if outcome is not None else 'none'}")
        return outcome.value

    return get


def table_chart(chart: str, v: ChartInputs, name: str | None = None, *,
                say_empty: bool = True) -> list[str | Chart]:
    """The chart ``chart`` of the one chart table (:data:`scalinglab.report.chart_table.TABLE`)
    drawn from ``v``, as a section's parts: the chart (named ``name``), or the reason it has
    nothing to draw (none when not ``say_empty``)."""
    kind = chart_table.TABLE[chart]
    reason = kind.empty(v)
    if reason:
        return [para(reason, "empty")] if say_empty else []
    static = ((lambda: chart_table.figure(chart, v))
              if kind.figure is not None and kind.has_figure(v) else None)
    return [Chart(name or chart, kind.caption(v), lambda: chart_table.spec(chart, v), static)]


def report_sections(s: Analysis, store: Any = None, saved: Sequence[Section] = ()) -> list[Section]:
    """Every section of the report, in reading order; ``saved``: the sections of saved results
    (:func:`scalinglab.report.saved.saved_sections`, which builds on this module)."""
    if s.runs.empty and saved:
        # saved results without runs (none in the store, or no store): their sections alone;
        # fits, checks and a plan of no runs would be the published laws' figures, not theirs
        where = f" matching {s.filter_text}" if s.filter_text else ""
        note = Section(id="no-runs", title="Runs", parts=[para(
            f"No finished runs in {s.store}{where}: no loss-law fit, check or plan of runs; the "
            "sections below are the saved results alone.", "meta")])
        return [note, *saved]
    ctx = Context.of(s, store)
    sections = [overview(ctx), warnings_section(s), validation_section(ctx)]
    rolling = rolling_section(ctx)
    if rolling is not None:
        sections.append(rolling)
    sections += [runs_section(s), fits_section(ctx), allocation_section(ctx), hparams_section(ctx),
                 plan_section(s)]
    curves = curves_section(ctx)
    if curves is not None:
        sections.append(curves)
    return sections + list(saved) + extra_sections(s, store)


# -- at a glance ------------------------------------------------------------------------------


def overview(ctx: Context) -> Section:
    s = ctx.s
    fit = s.primary_fit
    facts: list[tuple[str, str]] = []
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items())) or "none"
    facts.append(("runs", counts))
    if ctx.budgets.values:
        facts.append(("compute budgets", f"{len(ctx.budgets.values)}, from "
                      f"{format_number(min(ctx.budgets.values), 3)} to "
                      f"{format_number(max(ctx.budgets.values), 3)} FLOPs"))
    if fit is not None:
        est = fit.estimates()
        shown = ", ".join(f"{_sym(k)} = {_est(v)}" for k, v in est.items() if k in fit.law.exponents)
        facts.append((f"loss law ({fit.law.name})", f"{formula_text(fit.law.formula)}; {shown}"
                      if shown else formula_text(fit.law.formula)))
        if fit.holdout is not None:
            facts.append(("held-out error", f"mean |relative error| {100 * fit.holdout.mean_abs_rel_err:.2f}% "
                          f"on the {len(fit.holdout.run_ids)} largest-compute runs, not fitted"))
    for v in s.validation:
        line = getattr(v, "headline", None)
        if callable(line):
            facts.append(("held-out check", line()))
    first = next(((law, o.value) for law, o in (s.rolling or {}).items() if o.ok), None)
    if first is not None:
        facts.append((f"rolling-forward error ({first[0]})", rolling_headline(first[1])))
    rec = reconcile(ctx)
    if rec is not None and rec.plan_row is not None:
        facts.append((f"N_opt at {format_number(s.compute, 3)} FLOPs",
                      f"{_est(rec.plan_row.N)} ({rec.plan_row.method}, which the plan uses)"))
    if s.plan.ok:
        p = s.plan.value
        vague = (f" ({_published_plan(p)})" if fit is None else "" if not fit.unidentified else (
            f" (the loss law is not identified: {', '.join(map(_sym, fit.unidentified))}; treat "
            "the plan as a guess)"))
        facts.append(("plan", f"N = {format_number(p.N)}, D = {format_number(p.D)}, loss "
                      f"{format_number(p.loss)} {format_interval(p.loss_interval)}{vague}"))
    items = "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in facts)
    return Section(id="overview", title="At a glance", parts=[f'<ul class="facts">{items}</ul>',
                                                             *table_chart("overview", ctx.inputs())])


def _published_plan(plan: Any) -> str:
    """What a plan made without a law fitted to the runs must say beside its numbers: they are
    a published law's (every law the report fitted failed, or none could be fitted)."""
    label = plan.loss_law.get("label", "") if isinstance(plan.loss_law, dict) else ""
    return f"no loss law fitted these runs: made with the published law {label}, not from your runs"


def _sym(name: str) -> str:
    from scalinglab.summary import symbol

    return symbol(name)


def _est(x: Estimate) -> str:
    from scalinglab.summary import cell_text

    return cell_text(x)


def warnings_section(s: Analysis) -> Section:
    return Section(id="warnings", title="Warnings",
                   parts=[box("warn", s.warnings) or para("None.")])


# -- held-out checks --------------------------------------------------------------------------


def holdout_table(fit: Any) -> Table:
    """The held-out runs, predicted from the rest: observed, predicted with its interval, error."""
    pct = f"{round(fit.level * 100)}% interval"
    t = Table(f"{fit.law.name}: the {len(fit.holdout.run_ids)} largest-compute runs, held out",
              ["run", "C", "observed loss", "predicted", pct, "error", "inside the interval"])
    for r in fit.holdout.to_dict()["runs"]:
        t.add_row(r["run_id"], r["C"], r["loss"], r["predicted"], format_interval((r["lo"], r["hi"])),
                  f"{100 * (r['predicted'] / r['loss'] - 1):+.2f}%", "yes" if r["inside_interval"] else "no")
    return t


def validation_section(ctx: Context) -> Section:
    s = ctx.s
    parts: list[str | Chart] = []
    for law, o in s.fits.items():
        if o.ok and o.value is not None and o.value.holdout is not None:
            h = o.value.holdout
            inside = int(np.sum((h.lo <= h.observed) & (h.observed <= h.hi)))
            parts += [holdout_table(o.value).as_html(),
                      para(f"Fitted without these runs, {law} predicts them with a mean |relative "
                           f"error| of {100 * h.mean_abs_rel_err:.2f}% (max "
                           f"{100 * h.max_abs_rel_err:.2f}%); {inside} of {len(h.run_ids)} fall "
                           "inside the parameter interval (which leaves out run-to-run noise).",
                           "meta")]
    for v in s.validation:
        if not isinstance(v, RollingForward):  # those have a section of their own
            parts.append(v.summary().as_html())
    if not parts and s.fits and not any(o.ok for o in s.fits.values()):
        # "run the report with --holdout-top K" read as advice to a report that was given one
        parts.append(para("No check against held-out runs: no law fitted these runs (see "
                          "Loss-law fits for why).", "empty"))
    elif not parts:
        parts.append(para("No check against runs the law was not fitted on: run the report with "
                          "--holdout-top K to fit without the K largest-compute runs and predict them "
                          "(the demo holds out its largest budget).", "empty"))
    return Section(id="validation", title="Held-out checks", parts=parts)


def rolling_headline(r: RollingForward) -> str:
    """``0.75% mean |relative error| over 42 forward predictions up to 1.3 decades ...``"""
    far = max((p["decades"] for p in r.predictions), default=0.0)
    cover = r._coverage("new_lo", "new_hi", r.predictions)
    text = (f"{r.mean_abs_rel_err:.2%} mean |relative error| over {len(r.predictions)} forward "
            f"predictions up to {far:.2g} decades of {r.by} beyond the fit "
            f"({r.farthest_error():.2%} on the farthest half)")
    if math.isfinite(cover):
        text += f"; {cover:.0%} inside the {round(r.level * 100)}% new-run band"
    return text


def rolling_parts(r: RollingForward, name: str, runs: pd.DataFrame | None = None
                  ) -> list[str | Chart]:
    """One rolling-forward result: its headline, its tables (error and band coverage by
    distance, the cut-offs) and the chart of observed against predicted error by distance."""
    v = ChartInputs(runs if runs is not None else pd.DataFrame(), rolling=lambda: r)
    return [f'<p class="answer">Fitted below each cut-off, <b>{e(r.law)}</b> predicts the '
            f"runs above with {e(rolling_headline(r))}.</p>",
            r.summary().as_html(), *table_chart("rolling", v, name)]


def rolling_section(ctx: Context) -> Section | None:
    """The rolling-forward check of each fitted law (``report --rolling``), and of any
    :class:`~scalinglab.fit.validate.RollingForward` given with the Python API; ``None`` when
    neither was asked for (``report --no-rolling``)."""
    s = ctx.s
    given = [v for v in s.validation if isinstance(v, RollingForward)]
    if s.rolling is None and not given:
        return None
    parts: list[str | Chart] = [para(
        "Will the law extrapolate? Fitted on the runs below each compute cut-off (with the same "
        "selection rule and bootstrap as its fit) and asked to predict every run above: its "
        "error by distance in compute, and how often the observed loss fell inside its bands "
        "(the parameter band leaves out run-to-run noise; the new-run band includes it).",
        "meta")]
    for law, o in (s.rolling or {}).items():
        if o.ok and o.value is not None:
            parts += rolling_parts(o.value, f"{law}_rolling", s.runs)
        else:
            parts.append(box("note", [f"{law}: no rolling-forward check: {o.error}"]))
    for i, v in enumerate(given, start=1):
        parts += rolling_parts(v, f"rolling_{i}", s.runs)
    if s.rolling is not None and not s.rolling and not given:
        parts.append(para("No law fitted these runs, so none was rolled forward.", "empty"))
    return Section(id="rolling", title="Rolling-forward check", parts=parts)


# -- runs -------------------------------------------------------------------------------------

RUN_COLUMNS = ["run_id", "name", "N", "D", "C", "loss", "lr", "batch_tokens", "seq_len", "tags"]


def runs_table(runs: pd.DataFrame, title: str = "", columns: Sequence[str] = RUN_COLUMNS,
               exact: bool = False) -> Table:
    """Every run, one ``data-id`` per row so a click opens the run (whose panel shows every
    number in full); whole numbers exact, others to 4 significant digits unless ``exact``."""
    # optional columns (a tracker's run name, lr, ...) only where some run has one
    cols = [c for c in columns if c in runs and (c in ("run_id", "N", "D", "C", "loss")
                                                  or runs[c].notna().any())]
    rows = [[_clean(r[c]) for c in cols] for r in runs.to_dict("records")]
    return Table(title, cols, rows, exact=exact, counts=True, row_ids=[str(r) for r in runs["run_id"]])


def _clean(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def runs_section(s: Analysis) -> Section:
    # the static table reads (and prints) without JavaScript; with it, the shared runs table
    # (report/runs_table.py: sort, search, ranges, colour, CSV) takes its place
    parts: list[str | Chart] = [para("Every finished run in the filter, in full; click a row (or a "
                                     "point in any chart) to open the run.", "meta"),
                                '<div class="sl-runs" data-table="runs">'
                                + runs_table(s.runs).as_html() + "</div>"]
    if not s.other_runs.empty:
        parts += ["<h3>Runs not used (failed or running)</h3>",
                  '<div class="sl-runs" data-table="other">'
                  + runs_table(s.other_runs, columns=["run_id", "name", "N", "D", "status",
                                                      "error"]).as_html() + "</div>"]
    return Section(id="runs", title=f"Runs ({len(s.runs)} finished)", parts=parts)


# -- loss-law fits ----------------------------------------------------------------------------


def fits_section(ctx: Context) -> Section:
    s = ctx.s
    children = []
    for law, outcome in s.fits.items():
        fit = outcome.value
        if not outcome.ok or fit is None:
            children.append(Section(id=f"fit-{law}", title=law,
                                    parts=[box("error", [f"not identifiable: {outcome.error}"])]))
            continue
        v = ctx.inputs(law)
        parts: list[str | Chart] = [fit.summary().as_html()]
        for chart in ("parity", "residuals", "corner"):
            parts += table_chart(chart, v, f"{law}_{chart}")
        children.append(Section(id=f"fit-{law}", title=law, parts=parts))
    return Section(id="fits", title="Loss-law fits", parts=[para(
        "Each law fitted to the runs the selection rule keeps (every replicate of the best "
        "hyperparameter setting at each (N, D)). A good fit puts every run on the diagonal of "
        "the parity plot and leaves no trend in the residuals.", "meta")], children=children)


# -- compute-optimal allocation ---------------------------------------------------------------


@dataclass
class Method:
    method: str
    N: Estimate
    D: Estimate
    exponent: Estimate | None
    used_by_plan: bool
    why: str
    #: what gave the figure (a loss-law fit or an IsoFLOP allocation law), for comparisons
    source: Any = None


@dataclass
class Reconciliation:
    C: float
    rows: list[Method]

    @property
    def plan_row(self) -> Method | None:
        return next((r for r in self.rows if r.used_by_plan), None)

    def table(self) -> Table:
        pct = "interval"
        t = Table(f"N_opt at C = {format_number(self.C, 3)} FLOPs, by method",
                  ["method", "N_opt", pct, "D_opt", pct, "a in N_opt ∝ C^a", "vs the plan's N_opt",
                   "the plan"])
        # a ratio to or from an N_opt the runs do not identify is no figure: left blank (it
        # printed "× 4.75" against a plan row that said "not identified" beside it)
        p = self.plan_row
        base = p.N.value if p is not None and p.N.identified else None
        for r in self.rows:
            ratio = ("" if base is None or not r.N.value or not r.N.identified
                     else f"× {format_number(r.N.value / base, 3)}")
            t.add_row(r.method, _value(r.N), format_interval(r.N.ci) if r.N.identified else "",
                      _value(r.D), format_interval(r.D.ci) if r.D.identified else "",
                      r.exponent if r.exponent is not None else "-",
                      "" if r.used_by_plan else ratio, "uses this" if r.used_by_plan else "")
        return t

    def verdicts(self) -> list[str]:
        """Whether each method's N_opt differs from the plan's: the interval of their ratio, from
        a bootstrap of the difference (never the overlap of two intervals, which called a 1.8x
        gap agreement), else what can be said without draws."""
        from scalinglab.fit.compare import compare_n_opt

        p = self.plan_row
        if p is None:
            return []
        out = []
        for r in self.rows:
            if r is p:
                continue
            if r.source is not None and p.source is not None and r.N.identified and p.N.identified:
                cmp = compare_n_opt(r.source, p.source, self.C, names=(r.method, "the plan's method"))
                if cmp.ratio.ci is not None:
                    out.append(cmp.verdict() + ("; the plan is less certain than its own interval "
                                                "says" if cmp.differ else ""))
                    continue
            if not (p.N.identified and r.N.identified):
                # never the number of a figure the table calls not identified
                unknown = [x for x, est in ((r.method, r.N), (p.method, p.N)) if not est.identified]
                shown = f"N_opt {format_number(r.N.value)}; " if r.N.identified else ""
                out.append(f"{r.method}: {shown}not compared with the plan's: N_opt at this "
                           f"budget is not identified by {' nor by '.join(unknown)}")
                continue
            if p.N.ci is None or r.N.ci is None:
                out.append(f"{r.method}: N_opt {format_number(r.N.value)} vs the plan's "
                           f"{format_number(p.N.value)} (no interval to compare)")
                continue
            overlap = r.N.ci[0] <= p.N.ci[1] and p.N.ci[0] <= r.N.ci[1]
            out.append(f"{r.method}: N_opt {format_number(r.N.value)}, {format_number(r.N.value / p.N.value, 3)}× "
                       "the plan's; " + ("the intervals overlap: they agree within their uncertainty"
                                         if overlap else "the intervals do not overlap: they disagree "
                                         "beyond their uncertainty, so the plan is less certain than "
                                         "its own interval says"))
        return out


def _value(x: Estimate | None) -> Any:
    from scalinglab.summary import NotIdentified

    if x is None:
        return None
    return x.value if x.identified else NotIdentified(x.value)


def reconcile(ctx: Context) -> Reconciliation | None:
    """N_opt at the plan's budget by every method, the plan's first (the loss-law fit)."""
    s = ctx.s
    C = s.compute
    rows: list[Method] = []
    fit = s.primary_fit
    if fit is not None and {"N", "D"} <= set(fit.law.inputs):
        opt = fit.optimum(C)
        expo = next((fit.interval(f.fn, uses=f.uses) for f in fit.law.derived
                     if f.name == "N_opt_exponent"), None)
        rows.append(Method(
            f"loss-law fit ({fit.law.name})", opt.N, opt.D, expo, True,
            "the optimum of the fitted L(N, D) under C = 6ND: it uses every run and gives the loss "
            "too, so the plan uses it; it trusts the law's form out to this budget", source=fit))
    iso = ctx.iso
    if iso is not None:
        for law in iso.approaches:
            o = law.optimum(C)
            ci = law.ci.get("a")
            expo = Estimate(law.a, *(ci or (None, None)), level=law.level)
            why = ("the best run at each budget, fitted as a power law: it can only pick sizes "
                   "that were trained, so its resolution is the spacing of the sweep's sizes"
                   if law.approach == 1 else
                   "the vertex of a parabola in ln N at each budget, fitted as a power law: it "
                   "assumes each IsoFLOP profile is symmetric in ln N near its minimum")
            rows.append(Method(f"IsoFLOP Approach {law.approach}", o["N_opt"], o["D_opt"], expo,
                               False, why, source=law))
    return Reconciliation(C, rows) if rows else None


def allocation_section(ctx: Context) -> Section:
    s = ctx.s
    parts: list[str | Chart] = []
    rec = reconcile(ctx)
    if rec is not None:
        p = rec.plan_row
        if p is not None:
            parts.append(f'<p class="answer">At {e(format_number(s.compute, 3))} FLOPs: '
                         f"<b>N_opt = {e(_est(p.N))}</b> ({e(p.method)}, which the plan uses); "
                         f"the other methods beside it:</p>")
        parts.append(rec.table().as_html())
        parts.append("<h3>Why they differ</h3>")
        parts.append("<ul>" + "".join(f"<li><b>{e(r.method)}</b>: {e(r.why)}.</li>" for r in rec.rows)
                     + "</ul>")
        parts.append(box("note", rec.verdicts()))
    iso = ctx.iso
    if not s.isoflop.ok:
        parts.append(box("error", [f"IsoFLOP: {s.isoflop.error}"]))
    v = ctx.inputs()
    if iso is not None:
        parts.append(iso.summary(compute=[s.compute]).as_html())
        parts += table_chart("isoflop", v)
    parts += table_chart("allocation", v, say_empty=False)
    parts += table_chart("isoflop_bootstrap", v, say_empty=False)
    return Section(id="allocation", title="Compute-optimal allocation", parts=parts)


# -- hyperparameters --------------------------------------------------------------------------


def power_form(inst: Any) -> str:
    """A log-linear law as the power law people quote (``lr = 1.79 · N^-0.713 · D^0.307``)."""
    p = dict(inst.params)
    if "intercept" not in p:
        return f"{inst.law.formula} ({', '.join(f'{k}={format_number(v, 3)}' for k, v in p.items())})"
    terms = [f"{f}^{format_number(p[f'coef_{f}'], 3)}" for f in inst.law.inputs]
    return f"{inst.law.output} = {format_number(float(np.exp(p['intercept'])), 3)} · " + " · ".join(terms)


def hparams_section(ctx: Context) -> Section:
    s = ctx.s
    plan = s.plan.value if s.plan.ok else None
    cols = ["law", "optimal lr", "optimal batch (tokens)"]
    if plan is not None:
        cols += ["lr at the plan", "batch at the plan"]
    t = Table("", cols + ["source"])
    for name, law in s.hparams.items():
        row: list[Any] = [name, power_form(law.lr), power_form(law.batch)]
        if plan is not None:
            at = law.predict(plan.N, plan.D)
            row += [float(at["lr"]), float(at["batch_tokens"])]
        row.append(law.provenance.source)
        t.add_row(*row)
    parts: list[str | Chart] = []
    if plan is not None:
        parts.append(para(f"At the plan: N = {format_number(plan.N)}, D = {format_number(plan.D)}.",
                          "meta"))
    parts.append(t.as_html())
    if s.hparams_error and s.grids:
        parts.append(box("error", [f"fitted lr/batch law: not identifiable: {s.hparams_error}"]))
    elif not s.grids:  # the usual case, not an error: no fitted law, the published ones shown
        parts.append(para("No lr × batch grid in these runs, so no fitted lr/batch law: the "
                          "published laws are shown. A grid of lr and batch at one (N, D) adds one.",
                          "meta"))
    for i, grid in enumerate(s.grids[:3]):
        parts += table_chart("heatmap", ctx.inputs(grid=grid), f"lr_batch_{i + 1}")
    return Section(id="hparams", title="Hyperparameter laws", parts=parts)


# -- the plan ---------------------------------------------------------------------------------


def context_table(s: Analysis) -> Table:
    """The plan beside the runs it extrapolates from: sizes, tokens, sequence length, batch, lr."""
    p = s.plan.value
    runs = s.runs

    def span(col: str) -> str:
        if col not in runs or runs[col].dropna().empty:
            return "-"
        lo, hi = float(runs[col].min()), float(runs[col].max())
        return format_number(lo) if lo == hi else f"{format_number(lo)} to {format_number(hi)}"

    ctx = s.context
    t = Table("", ["", "the plan", "your runs"])
    t.add_row("parameters N", p.N, span("N"))
    t.add_row("tokens D", p.D, span("D"))
    t.add_row("compute C (FLOPs)", p.train_flops, span("C"))
    t.add_row("tokens per parameter", p.tokens_per_param,
              "-" if runs.empty else f"{format_number(float((runs['D'] / runs['N']).min()), 3)} to "
              f"{format_number(float((runs['D'] / runs['N']).max()), 3)}")
    t.add_row("sequence length", p.seq_len, ", ".join(str(v) for v in ctx.seq_lens) if ctx and ctx.seq_lens
              else "not recorded")
    t.add_row("batch (tokens)", p.batch_tokens, ", ".join(format_number(v) for v in ctx.batches[:6])
              + (" ..." if ctx and len(ctx.batches) > 6 else "") if ctx and ctx.batches else "not recorded")
    t.add_row("peak learning rate", p.lr, span("lr"))
    return t


def plan_table(p: Any) -> Table:
    t = Table("", ["quantity", "value", "interval"])
    t.add_row("parameters N", p.N, format_interval(p.N_interval))
    t.add_row("tokens D", p.D, format_interval(p.D_interval))
    t.add_row("tokens per parameter", p.tokens_per_param, "")
    t.add_row("loss (nats/token)", p.loss, format_interval(p.loss_interval))
    t.add_row("peak learning rate", p.lr, format_interval(p.lr_interval))
    t.add_row("batch (tokens)", p.batch_tokens, f"{p.batch_sequences} sequences × {p.seq_len}; law's "
              f"batch {format_number(p.batch_tokens_law)} {format_interval(p.batch_interval)}")
    t.add_row("optimizer steps", p.steps, "")
    t.add_row("weight decay", p.weight_decay, f"τ = {format_number(p.tau)}")
    return t


def plan_refused(reason: str) -> str:
    """A plan refused because the fit does not identify what it needs, as the CLI says it: which
    parameters, and which runs would identify them. A reason in the plan's place, not an error
    (the report and the dashboard's plan panel both show this)."""
    why, sep, runs = reason.partition(" Runs that would identify it")
    lines = [why.strip()] + ([f"Runs that would identify it{runs}".strip()] if sep else [])
    return (para("No plan: the runs do not identify the loss law's parameters the plan rests "
                 "on, so every number it would give is where the fit happened to stop.")
            + box("note", lines))


def plan_section(s: Analysis) -> Section:
    title = f"Plan at {format_number(s.compute, 3)} FLOPs"
    if not s.plan.ok and s.plan.not_identified and s.plan.error:
        return Section(id="plan", title=title, parts=[plan_refused(s.plan.error)])
    if not s.plan.ok:
        return Section(id="plan", title=title, parts=[box("error", [f"no plan: {s.plan.error}"])])
    p = s.plan.value
    parts: list[str | Chart] = [
        # a published law's plan beside the user's runs must say so where it is read first
        box("warn", [(lambda t: t[:1].upper() + t[1:] + ".")(_published_plan(p))]
            if s.primary_fit is None else []),
        para(f"Made at {s.plan_basis}; run the report with --seq-len / --batch-tokens to plan "
             "another setting.", "meta"),
        "<h3>Against your runs</h3>", context_table(s).as_html(),
        "<h3>The plan</h3>", plan_table(p).as_html(),
        para(f"{p.mode}; loss law {p.loss_law.get('label', '')}; loss interval: "
             f"{p.loss_interval_source}; τ: {p.tau_source}", "meta"),
        box("warn", p.warnings),
    ]
    return Section(id="plan", title=title, parts=parts)


# -- loss curves ------------------------------------------------------------------------------


def curves_section(ctx: Context) -> Section | None:
    if ctx.store is None:
        return None
    v = ctx.inputs()
    chart = table_chart("curves", v, "loss_curves", say_empty=False)
    if not chart:
        return None
    return Section(id="curves", title="Loss curves", parts=[
        para("Smoothed (exponential moving average, weight 0.6, debiased) over the raw trace, "
             "drawn faint; x is the tokens seen. The dashboard overlays any runs, in tokens, "
             "FLOPs or wall time, with a smoothing control.", "meta"), *chart])
