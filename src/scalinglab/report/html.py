"""The self-contained HTML report, and its figures saved as files.

One file a person can mail or archive: the charts are interactive (Plotly: hover shows a run and
its numbers, a click opens the run, zoom, pan, legends that toggle), drawn by the plotly.js that
ships inside the ``plotly`` package and is embedded once, with the CSS inline, so the file opens
offline years later and fetches nothing. Tables are shown whole (no scroll boxes) and print
whole. Where a fit cannot be identified the report prints the reason in place of numbers: a
confident-looking table of unidentifiable parameters is worse than none.

``report --figures DIR`` saves the same views as static matplotlib figures (PNG, SVG or PDF).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.report import runs_table as runs_table_data
from scalinglab.report import views
from scalinglab.report.saved import saved_sections
from scalinglab.report.sections import Chart, Section, report_sections, runs_table
from scalinglab.safefile import output_dir, write_output
from scalinglab.serialize import to_json
from scalinglab.study.analysis import Progress, Summary, summarise
from scalinglab.summary import CSS

#: most points of a run's curve embedded for its detail panel (evenly thinned beyond)
CURVE_POINTS = 400

_CSS = CSS + """
:root{--ink:#1d232a;--muted:#5b6672;--rule:#d6dbe1}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);margin:0}
.page{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin-top:40px;border-bottom:1px solid var(--rule);
padding-bottom:4px}h3{font-size:15px;margin:22px 0 6px}
.meta{color:var(--muted)}.empty{color:var(--muted);font-style:italic}
.answer{font-size:15px}
nav.toc{background:#f6f7f9;border:1px solid #e4e8ec;border-radius:6px;padding:10px 18px;margin:16px 0}
nav.toc ol{margin:4px 0;padding-left:20px}nav.toc li{margin:2px 0}
ul.facts{padding-left:18px}ul.facts li{margin:3px 0}
table{border-collapse:collapse;margin:8px 0;font-size:13px;max-width:100%}
th,td{border-bottom:1px solid #e4e8ec;padding:3px 10px;text-align:right;vertical-align:top}
th{background:#f3f5f7}td.l,th.l{text-align:left}td.l{overflow-wrap:break-word}tr[data-id] td:first-child{white-space:nowrap}
tr[data-id]{cursor:pointer}tr[data-id]:hover{background:#eef4fb}tr.picked{background:#fff3c4}
.warn{background:#fff8e1;border-left:4px solid #f0b400;padding:8px 14px;margin:10px 0}
.error{background:#fdecea;border-left:4px solid #d93025;padding:8px 14px;margin:10px 0}
.note{background:#eef4fb;border-left:4px solid #2f6fb3;padding:8px 14px;margin:10px 0}
figure{margin:14px 0}figcaption{color:var(--muted);font-size:12.5px}
.sl-chart{width:100%;min-height:200px;border:1px solid #eef0f2}
.sl-summary h3{font-size:14px}
#drawer{position:fixed;top:0;right:0;width:min(560px,100%);height:100%;overflow:auto;background:#fff;
box-shadow:-4px 0 18px rgba(0,0,0,.18);padding:14px 18px;z-index:10}
#drawer[hidden]{display:none}#drawer button{float:right}
noscript .warn{display:block}
@media print{
 body{font-size:11px}.page{max-width:none;padding:0}#drawer{display:none!important}
 h2{break-after:avoid}figure,.sl-chart,table{break-inside:avoid}
 table{font-size:10px}tr[data-id]{cursor:auto}nav.toc{break-after:page}
}
"""

_JS = """
"use strict";
(function () {
  const specs = JSON.parse(document.getElementById("sl-specs").textContent);
  const runs = JSON.parse(document.getElementById("sl-runs").textContent);
  const config = {responsive: true, displaylogo: false, showSendToCloud: false,
                  showEditInChartStudio: false, modeBarButtonsToRemove: ["sendDataToCloud"]};
  const drawn = [];
  function idOf(ev) {
    const p = ev && ev.points && ev.points[0];
    return p && p.customdata ? String(Array.isArray(p.customdata) ? p.customdata[0] : p.customdata) : "";
  }
  for (const el of document.querySelectorAll(".sl-chart")) {
    const spec = specs[el.dataset.chart];
    if (!spec) continue;
    Plotly.newPlot(el, spec.data, spec.layout, config);
    el.on("plotly_click", (ev) => { const id = idOf(ev); if (id) openRun(id); });
    drawn.push(el);
  }
  const drawer = document.getElementById("drawer");
  function openRun(id) {
    const r = runs[id];
    drawer.hidden = false;  // first, so the chart is laid out at the panel's width
    document.getElementById("drawer-title").textContent = "run " + id;
    if (!r) {  // a saved result's point whose run is not in the store: a click did nothing
      const body = document.getElementById("drawer-body");
      body.textContent = "Not among this report's runs: a saved result names the runs it was " +
        "fitted on, which may be rows of another file or runs since removed from the store.";
      document.getElementById("drawer-curve").hidden = true;
      return;
    }
    document.getElementById("drawer-body").innerHTML = r.table;
    const chart = document.getElementById("drawer-curve");
    if (r.curve) {
      chart.hidden = false;
      Plotly.newPlot(chart, [
        {type: "scatter", mode: "lines", x: r.curve.x, y: r.curve.raw, name: "raw", opacity: 0.3,
         line: {color: "#2f6fb3", width: 1}},
        {type: "scatter", mode: "lines", x: r.curve.x, y: r.curve.smoothed, name: "smoothed (0.6)",
         line: {color: "#2f6fb3", width: 2}},
      ].concat(r.curve.eval_x.length ? [{type: "scatter", mode: "markers", x: r.curve.eval_x,
         y: r.curve.eval_loss, name: "eval", marker: {color: "#c62828", size: 6}}] : []),
        {height: 300, margin: {l: 56, r: 10, t: 10, b: 40}, xaxis: {type: "log", title: {text: "tokens"}},
         yaxis: {type: "log", title: {text: "loss"}}, legend: {orientation: "h"}}, config);
    } else { chart.hidden = true; }
    for (const tr of document.querySelectorAll("tr.picked")) tr.classList.remove("picked");
    for (const tr of document.querySelectorAll("tr[data-id]")) {
      if (tr.dataset.id === id) tr.classList.add("picked");
    }
  }
  document.getElementById("drawer-close").addEventListener("click", () => { drawer.hidden = true; });
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") drawer.hidden = true; });
  // the shared runs table replaces each static one (which stays for readers without scripts)
  const tables = JSON.parse(document.getElementById("sl-tables").textContent);
  for (const box of document.querySelectorAll(".sl-runs")) {
    const data = tables[box.dataset.table];
    if (!data || !window.SLRunsTable) continue;
    const holder = document.createElement("div");
    box.replaceWith(holder);
    holder.id = box.dataset.table === "runs" ? "runs-table" : "other-runs-table";
    SLRunsTable(holder, {onOpen: openRun, filename: box.dataset.table + ".csv"}).setData(data);
  }
  for (const tr of document.querySelectorAll("tr[data-id]")) {
    if (!tr.closest(".rt")) tr.addEventListener("click", () => openRun(tr.dataset.id));
  }
  // print at the page's width, then back
  window.addEventListener("beforeprint", () => { for (const el of drawn) Plotly.relayout(el, {width: 700}); });
  window.addEventListener("afterprint", () => { for (const el of drawn) Plotly.relayout(el, {width: null, autosize: true}); });
})();
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


#: characters that may end or bend a <script> element (``</script>``, ``<!--<script>`` puts the
#: HTML parser in its script-escape state and every chart after it was lost), or end a line in
#: JavaScript (U+2028/9); they can only occur inside JSON strings, where \uXXXX means the same
_SCRIPT_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _script_json(obj: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>``, ``&``, U+2028 or
    U+2029 left raw in the text, whatever a run's name holds."""
    return to_json(obj).translate(_SCRIPT_UNSAFE)


def plotly_js() -> str:
    """plotly.js from the installed ``plotly`` package (never the network)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


# -- the report --------------------------------------------------------------------------------


def render_report(summary: Summary, store: Any = None, title: str = "scalinglab report",
                  progress: Progress | None = None) -> str:
    """The report as one HTML string: sections, interactive charts, run details, no external
    assets. ``progress(stage, done, total)`` hears each chart as it is built."""
    sections = report_sections(summary, store, saved_sections(summary.results))
    charts = [c for sec in sections for c in sec.charts()]
    specs: dict[str, Any] = {}
    for i, chart in enumerate(charts):
        if progress is not None:
            progress(f"drawing {chart.name}", i, len(charts))
        specs[chart.name] = chart.spec()
    if progress is not None:
        progress("writing the report", len(charts), len(charts))
    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts.items())) or "no runs"
    # the where filter too: a report of --where "N > 1e8" said "filter: none"
    filt = summary.filter_text or "none"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">store <code>{_e(summary.store)}</code> · filter: {_e(filt)} · '
        f"runs: {_e(counts)} · generated {when}</p>",
        '<noscript><div class="warn">The charts need JavaScript; the tables below are complete '
        "without it.</div></noscript>",
        toc(sections),
        *(render_section(sec, level=2) for sec in sections),
    ]
    details = run_details(summary, store)
    tables = {"runs": runs_table_data.payload(summary.runs),
              "other": runs_table_data.payload(summary.other_runs)}
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}{runs_table_data.asset('css')}</style><script>{plotly_js()}</script>"
        f"<script>{runs_table_data.asset('js')}</script></head><body>\n"
        f'<div class="page">{"".join(body)}</div>\n'
        '<aside id="drawer" hidden><button id="drawer-close" type="button">close</button>'
        '<h3 id="drawer-title"></h3><div id="drawer-body"></div>'
        '<div id="drawer-curve" hidden></div></aside>\n'
        f'<script type="application/json" id="sl-specs">{_script_json(specs)}</script>\n'
        f'<script type="application/json" id="sl-runs">{_script_json(details)}</script>\n'
        f'<script type="application/json" id="sl-tables">{_script_json(tables)}</script>\n'
        f"<script>{_JS}</script></body></html>\n"
    )


def toc(sections: Iterable[Section]) -> str:
    def items(secs: Iterable[Section]) -> str:
        out = []
        for s in secs:
            sub = f"<ol>{items(s.children)}</ol>" if s.children else ""
            out.append(f'<li><a href="#{_e(s.id)}">{_e(s.title)}</a>{sub}</li>')
        return "".join(out)

    return f'<nav class="toc" aria-label="contents"><b>Contents</b><ol>{items(sections)}</ol></nav>'


def render_section(sec: Section, level: int = 2) -> str:
    out = [f'<section id="{_e(sec.id)}"><h{level}>{_e(sec.title)}</h{level}>']
    for part in sec.parts:
        out.append(render_chart(part) if isinstance(part, Chart) else part)
    out += [render_section(child, level + 1) for child in sec.children]
    out.append("</section>")
    return "\n".join(out)


def render_chart(chart: Chart) -> str:
    return (f'<figure id="fig-{_e(chart.name)}"><div class="sl-chart" data-chart="{_e(chart.name)}" '
            f'role="img" aria-label="{_e(chart.caption)}"></div>'
            f"<figcaption>{_e(chart.caption)}</figcaption></figure>")


def run_details(summary: Summary, store: Any = None) -> dict[str, Any]:
    """Each run's full record (as a table) and, where recorded, its curve, for the detail panel."""
    from scalinglab.report.sections import MAX_CURVES
    from scalinglab.study.analysis import collect_curves

    out: dict[str, Any] = {}
    every = [summary.runs, summary.other_runs]
    for frame in every:
        for r in frame.to_dict("records"):
            out[str(r["run_id"])] = {"table": views.run_table(r).as_html()}
    if store is not None:
        for rid, c in collect_curves(store, summary.runs, MAX_CURVES).items():
            if rid in out:
                out[rid]["curve"] = curve_payload(c)
    return out


def curve_payload(curve: Any, points: int = CURVE_POINTS) -> dict[str, Any]:
    """A curve thinned to ``points``, raw and smoothed, on tokens (steps where tokens are absent)."""
    x, _axis = views.curve_x(curve, None, "tokens")
    raw = curve["loss"].to_numpy(float)
    smoothed = views.smooth(raw, 0.6)
    ev = curve["eval_loss"].to_numpy(float) if "eval_loss" in curve else np.full(len(curve), np.nan)
    keep = np.unique(np.linspace(0, len(x) - 1, min(points, len(x))).astype(int)) if len(x) else []
    has_ev = np.isfinite(ev)
    return {"x": x[keep], "raw": raw[keep], "smoothed": smoothed[keep],
            "eval_x": x[has_ev], "eval_loss": ev[has_ev]}


def build_report(
    store: Any,
    out_path: str | Path = "report.html",
    *,
    tags: Mapping[str, str] | None = None,
    laws: Iterable[str] = ("chinchilla",),
    compute: float | None = None,
    bootstrap: int = 200,
    holdout: int = 0,
    seed: int = 0,
    title: str = "scalinglab report",
    figures_dir: str | Path | None = None,
    seq_len: int | None = None,
    batch_tokens: float | None = None,
    validation: Iterable[Any] = (),
    results: Iterable[str | Path] = (),
    progress: Progress | None = None,
    rolling: bool | None = None,
) -> Path:
    """Fit, plan and write the self-contained HTML report of ``store`` (a RunStore or a path).

    ``validation`` adds checks against runs the laws were not fitted on (results with
    ``summary()``: a held-out budget, a rolling-forward evaluation) to the report; ``rolling``
    computes each law's rolling-forward check from the store (``None``: when the runs span at
    least 3 compute budgets; see :func:`~scalinglab.report.analysis.summarise`). With
    ``figures_dir`` every figure is also saved there as PNG, from the same fits. ``results``:
    files of saved results, each shown as a section (see :mod:`scalinglab.report.saved`); they
    are read first, and a file that is not one refuses the report before anything is written.
    """
    from scalinglab.report.saved import load_saved

    saved = load_saved(results)
    store = _open(store)
    summary = summarise(store, tags=tags, laws=laws, compute=compute, bootstrap=bootstrap,
                        holdout=holdout, seed=seed, seq_len=seq_len, batch_tokens=batch_tokens,
                        progress=progress, rolling=rolling)
    summary.validation += list(validation)
    summary.results += saved
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_output(out, render_report(summary, store, title=title, progress=progress),
                 inputs=[getattr(store, "path", None)])
    if figures_dir is not None:
        save_figures(store, figures_dir, summary=summary, progress=progress)
    return out


def figure_set(summary: Summary, store: Any = None) -> dict[str, tuple[str, Callable[[], Any]]]:
    """Name -> (caption, static figure builder) for every chart that has a static figure."""
    return {c.name: (c.caption, c.figure) for sec in report_sections(summary, store, saved_sections(summary.results))
            for c in sec.charts() if c.figure is not None}


def save_figures(
    store: Any,
    out_dir: str | Path,
    *,
    summary: Summary | None = None,
    file_format: str = "png",
    dpi: int = 150,
    progress: Progress | None = None,
    **summarise_kwargs: Any,
) -> dict[str, Path]:
    """Write every static figure the store supports to ``out_dir/<name>.png`` (or svg/pdf)."""
    store = _open(store)
    summary = summary or summarise(store, **summarise_kwargs)
    out_dir = output_dir(out_dir, flag="--figures")
    written = {}
    todo = figure_set(summary, store)
    for i, (name, (_caption, build)) in enumerate(todo.items()):
        if progress is not None:
            progress(f"saving figure {name}", i, len(todo))
        path = out_dir / f"{name}.{file_format}"
        fig = build()
        write_output(path, lambda fh, fig=fig: fig.savefig(fh, format=file_format, dpi=dpi))
        written[name] = path
    return written


def _open(store: Any) -> Any:
    if isinstance(store, (str, Path)):
        from scalinglab.runs.store import RunStore

        return RunStore(store, read_only=True)
    return store


__all__ = ["build_report", "figure_set", "render_report", "runs_table", "save_figures"]
