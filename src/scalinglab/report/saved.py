"""Saved results in the report and the dashboard: ``report --result FILE`` and
``serve --result FILE``.

A file written by ``fit downstream --save``, ``fit benchmark --save``, ``predict downstream
--save`` or ``testtime ... --save`` is read with :func:`scalinglab.results.load_results` (a file
of several models gives one result each) and becomes one section per result:
:func:`~scalinglab.report.sections.result_section` (its ``summary()`` tables, facts, notes and
warnings) followed by the charts its kind has. :func:`saved_sections` builds them, and both the
report (:func:`~scalinglab.report.sections.report_sections`, from ``Summary.results``) and the
dashboard's "More results" panel call it: one code path.

A kind gets a section by registering its charts with :func:`result_charts` (a kind whose
summary is the whole story registers no charts); a file holding a result of a kind with none,
or no result at all, is refused by :func:`load_saved` with an :class:`~scalinglab.errors.InputError`
naming the file, before anything is written.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalinglab.errors import InputError
from scalinglab.report import charts, metric_views
from scalinglab.report.sections import Chart, Section, result_section
from scalinglab.results import Result, load_results

ChartBuilder = Callable[[Any, str], list[Chart]]
_CHARTS: dict[str, ChartBuilder] = {}
#: modules that register charts of more kinds (imported by name before a lookup, as
#: ``sections.SECTION_MODULES``: they build on this module, which does not import them)
CHART_MODULES = ("scalinglab.report.curve_report",)


def _charts() -> dict[str, ChartBuilder]:
    from importlib import import_module

    for module in CHART_MODULES:
        import_module(module)
    return _CHARTS


def result_charts(*kinds: str) -> Callable[[ChartBuilder], ChartBuilder]:
    """Give results of ``kinds`` a report section, with the charts ``build(result, name)``
    returns (``name``: a prefix that makes the charts' names unique in the report)."""
    def register(build: ChartBuilder) -> ChartBuilder:
        for kind in kinds:
            _CHARTS[kind] = build
        return build

    return register


def section_kinds() -> list[str]:
    """The result kinds that have a report section."""
    return sorted(_charts())


@dataclass
class SavedResult:
    """A result read from ``path`` (``name``: its model, in a file of several)."""

    path: Path
    name: str | None
    result: Result

    @property
    def label(self) -> str:
        return self.path.name + (f", {self.name}" if self.name else "")

    def to_json(self) -> dict[str, Any]:
        """What ``report --json`` says of it: the file, its kind and its summary."""
        s = self.result.summary()
        return {"file": str(self.path), "name": self.name, "kind": self.result.kind,
                "title": s.title, "tables": [t.to_dict() for t in s.tables],
                "facts": dict(s.facts), "notes": list(s.notes), "warnings": list(s.warnings),
                "result": self.result.to_dict()}


def load_saved(paths: Iterable[str | Path]) -> list[SavedResult]:
    """Read every file; refuse (naming the file) one that holds no result, or a result of a
    kind with no section, so a report is written with all of them or not at all."""
    out = []
    for p in paths:
        path = Path(p)
        for name, result in load_results(path):
            if result.kind not in _charts():
                raise InputError(f"a saved {result.kind} result has no report section (results "
                                 f"that do: {', '.join(section_kinds())})", source=str(path))
            out.append(SavedResult(path, name, result))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "result"


def saved_sections(saved: Sequence[SavedResult]) -> list[Section]:
    """One section per saved result: its summary, then its charts."""
    out = []
    for i, s in enumerate(saved, start=1):
        r = s.result
        title = r.summary().title
        prefix = f"result{i}_{r.kind}"
        out.append(result_section(r, id=f"result-{i}-{_slug(s.label)}", title=f"{title} ({s.label})",
                                  intro=f"Saved result read from {s.path}"
                                        + (f" (model {s.name})" if s.name else "") + ".",
                                  charts=_charts()[r.kind](r, prefix)))
    return out


def section_payload(sec: Section) -> dict[str, Any]:
    """A section as the dashboard draws it: its HTML (subsections' included) and chart specs."""
    def html(s: Section, level: int) -> str:
        own = "".join(p for p in s.parts if isinstance(p, str))
        return own + "".join(f"<h{level}>{_html.escape(c.title)}</h{level}>{html(c, level + 1)}" for c in s.children)

    return {"id": sec.id, "title": sec.title, "html": html(sec, 4),
            "charts": [{"name": c.name, "caption": c.caption, "spec": c.spec()} for c in sec.charts()]}


# -- the charts of each kind ------------------------------------------------------------------


@result_charts("link_fit", "link_table")
def _link(result: Any, name: str) -> list[Chart]:
    from scalinglab.report import figures

    links = metric_views.link_views(result)
    if not links:
        return []
    what = links[0].metric if len(links) == 1 else f"{len(links)} metrics"
    return [Chart(f"{name}_link", f"{what} against {links[0].x_name}: the models, the fitted link "
                  "and its bootstrap band", lambda: charts.link_chart(links),
                  lambda: figures.link_figure(links))]


def _benchmark_chart(view: metric_views.BenchmarkView, name: str) -> Chart:
    from scalinglab.report import figures

    cut = (f"fitted at or below {view.fit_below:.3g} FLOPs, scored above; " if view.fit_below else "")
    return Chart(name, f"{view.metric} against training compute: {cut}the curve with its band, "
                 "floor and ceiling; shaded: beyond the largest fitted model (extrapolation)",
                 lambda: charts.benchmark_chart(view), lambda: figures.benchmark_figure(view))


@result_charts("benchmark_fit")
def _benchmark(result: Any, name: str) -> list[Chart]:
    return [_benchmark_chart(metric_views.benchmark_view(result), f"{name}_compute")]


@result_charts("benchmark_table")
def _benchmarks(result: Any, name: str) -> list[Chart]:
    out = []
    for j, (metric, fit) in enumerate(result.fits.items(), start=1):
        view = metric_views.benchmark_view(fit)
        obs = result.observational.get(metric)
        if obs is not None:
            extra = metric_views.observational_view(obs)
            if extra is not None:
                view.others = extra.others
        out.append(_benchmark_chart(view, f"{name}_{j}"))
    return out


@result_charts("observational_fit")
def _observational(result: Any, name: str) -> list[Chart]:
    view = metric_views.observational_view(result)
    return [] if view is None else [_benchmark_chart(view, f"{name}_compute")]


@result_charts("coverage_fit", "pass_at_k")
def _coverage(result: Any, name: str) -> list[Chart]:
    from scalinglab.report import figures

    view = metric_views.coverage_view(result)
    what = ("observed pass@k with intervals, the fitted law with its band" if view.grid is not None
            else "observed pass@k with intervals")
    if view.targets:
        what += ", and the samples each target coverage needs"
    return [Chart(f"{name}_coverage", f"Coverage against samples per problem (log k): {what}",
                  lambda: charts.coverage_chart(view), lambda: figures.coverage_figure(view))]


@result_charts("loss_fit")
def _loss_fit(result: Any, name: str) -> list[Chart]:
    """A saved loss-law fit (``fit chinchilla --save``): the chart table's bootstrap draws of
    every parameter, the unidentified ones faded and labelled. It keeps its runs' ids, not their
    numbers, so the parity and residual charts are the report's own fits of the store's runs."""
    import pandas as pd

    from scalinglab.report.chart_table import ChartInputs
    from scalinglab.report.sections import table_chart

    # the runs by id alone (no budget to plan: the corner chart needs none)
    v = ChartInputs(pd.DataFrame({"run_id": list(result.run_ids)}), law=result.law.name,
                    fit=lambda: result, compute=float("nan"))
    # without draws the chart's reason is left out: the summary above says "no bootstrap"
    return [c for c in table_chart("corner", v, f"{name}_corner") if isinstance(c, Chart)]


@result_charts("downstream_prediction", "verifier_analysis", "budget_comparison", "loss_to_loss")
def _summary_only(result: Any, name: str) -> list[Chart]:
    """Their summary tables are the whole story (predictions at given sizes, a verifier's
    ceiling, coverage per option at given budgets, a loss-to-loss law per group with its
    intervals)."""
    return []


__all__ = ["SavedResult", "load_saved", "result_charts", "saved_sections", "section_kinds",
           "section_payload"]

