"""The self-contained HTML report, and figures saved as files.

One file a person can mail or archive: figures are embedded as base64 PNG and the CSS is inline,
so it opens offline years later. Where a fit cannot be identified the report prints the reason in
place of numbers: a confident-looking table of unidentifiable parameters is worse than none.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from scalinglab.fit.result import FitResult
from scalinglab.report import figures
from scalinglab.report.analysis import (
    Summary,
    collect_curves,
    loss_runs,
    predictions_at,
    summarise,
)
from scalinglab.report.figures import fmt, greek
from scalinglab.summary import CSS

#: most runs listed in the report's table (all are summarised in the counts)
MAX_TABLE_ROWS = 500
#: most loss curves drawn in one figure
MAX_CURVES = 40

_CSS = CSS + """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d232a;max-width:1180px;
margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin-top:36px;border-bottom:1px solid #d6dbe1;
padding-bottom:4px}h3{font-size:15px;margin:22px 0 6px}
.meta{color:#5b6672}.formula{font-family:ui-monospace,Menlo,Consolas,monospace}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border-bottom:1px solid #e4e8ec;padding:3px 10px;text-align:right}
th{background:#f3f5f7}td.l,th.l{text-align:left}
.scroll{max-height:420px;overflow:auto;border:1px solid #e4e8ec}
.warn{background:#fff8e1;border-left:4px solid #f0b400;padding:8px 14px;margin:10px 0}
.error{background:#fdecea;border-left:4px solid #d93025;padding:8px 14px;margin:10px 0}
figure{margin:14px 0}figure img{max-width:100%;height:auto;border:1px solid #eef0f2}
figcaption{color:#5b6672;font-size:12.5px}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _img(fig: Figure, caption: str, name: str) -> str:
    data = base64.b64encode(figures.to_png(fig)).decode("ascii")
    return (f'<figure id="fig-{_e(name)}"><img alt="{_e(caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{_e(caption)}</figcaption></figure>')


def _table(rows: Iterable[Mapping[str, Any]], columns: list[str], left: Iterable[str] = ()) -> str:
    left = set(left)

    def cell(col: str, v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            v = fmt(float(v), 4)
        elif isinstance(v, dict):
            v = ", ".join(f"{k}={x}" for k, x in v.items())
        elif v is None:
            v = ""
        return f'<td class="l">{_e(v)}</td>' if col in left else f"<td>{_e(v)}</td>"

    head = "".join(f'<th class="{"l" if c in left else ""}">{_e(c)}</th>' for c in columns)
    body = "".join("<tr>" + "".join(cell(c, r.get(c)) for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _ci(value: float, ci: tuple[float, float] | None) -> str:
    return f"{fmt(value)} [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else fmt(value)


def power_form(inst: Any) -> str:
    """A log-linear law as the power law people quote (``lr = 1.79 N^-0.713 D^0.307``)."""
    p = dict(inst.params)
    if "intercept" not in p:
        return f"{inst.law.formula} ({', '.join(f'{k}={fmt(v)}' for k, v in p.items())})"
    terms = [f"{f}^{fmt(p[f'coef_{f}'])}" for f in inst.law.inputs]
    return f"{inst.law.output} = {fmt(float(np.exp(p['intercept'])))} · " + " · ".join(terms)


def _box(kind: str, lines: Iterable[str]) -> str:
    items = "".join(f"<li>{_e(x)}</li>" for x in lines)
    return f'<div class="{kind}"><ul>{items}</ul></div>' if items else ""


def fit_table(fit: FitResult) -> str:
    """Parameter estimates with their percentile bootstrap interval, from the fit's own summary
    (so "not identified" reads the same here as in the CLI and the dashboard)."""
    return fit.summary().tables[0].as_html()


# -- figures -----------------------------------------------------------------------------------


def figure_set(summary: Summary, store: Any = None) -> dict[str, tuple[str, Callable[[], Figure]]]:
    """Name -> (caption, figure builder) for every figure the summary supports.

    Builders are lazy so a caller saving one figure does not render the rest; ``store`` is needed
    only for the loss-curve figure.
    """
    out: dict[str, tuple[str, Callable[[], Figure]]] = {}
    data = loss_runs(summary.runs)
    for law, outcome in summary.fits.items():
        fit = outcome.value
        if not outcome.ok or fit is None:
            continue
        out[f"{law}_loss"] = (
            f"{law}: loss vs each input with the fitted law and its {round(fit.level * 100)}% "
            "bootstrap band", lambda fit=fit: figures.loss_fit(data, fit))
        out[f"{law}_residuals"] = (f"{law}: residuals vs compute",
                                   lambda fit=fit: figures.residuals(data, fit))
        if fit.draws is not None and len(fit.draws):
            out[f"{law}_bootstrap"] = (f"{law}: bootstrap distributions of the exponents",
                                       lambda fit=fit: figures.bootstrap_distributions(fit))
    iso = summary.isoflop.value
    if summary.isoflop.ok and iso is not None:
        chinchilla = summary.primary_fit
        out["isoflop"] = ("IsoFLOP curves: loss vs N at each compute budget, fitted parabolas "
                          "and their minima", lambda: figures.isoflop_curves(data, iso))
        out["allocation"] = (
            f"Compute-optimal N and D vs compute, extrapolated to {fmt(summary.compute)} FLOPs",
            lambda: figures.optimal_allocation(iso, summary.compute, fit=chinchilla))
        alloc = iso.approach2 or iso.approach1
        if alloc is not None and alloc.exponent_draws():
            out["isoflop_bootstrap"] = (
                "IsoFLOP: bootstrap distributions of the allocation exponents",
                lambda: figures.bootstrap_distributions(alloc.exponent_draws(), level=alloc.level,
                                                        point={"a": alloc.a, "b": alloc.b}))
    for i, (n, d) in enumerate(summary.grids[:3]):
        preds = predictions_at(summary.hparams, n, d)
        out[f"lr_batch_{i + 1}"] = (
            f"lr × batch grid at N={fmt(n)}, D={fmt(d)} with each law's predicted optimum",
            lambda n=n, d=d, preds=preds: figures.lr_batch_heatmap(summary.runs, n, d, preds))
    if store is not None:
        curves = collect_curves(store, summary.runs, MAX_CURVES)
        if curves:
            out["loss_curves"] = (f"Training curves of {len(curves)} runs",
                                  lambda: figures.loss_curves(curves, summary.runs))
    return out


# -- the report --------------------------------------------------------------------------------


def render_report(summary: Summary, store: Any = None, title: str = "scalinglab report") -> str:
    """The report as one HTML string (no external assets)."""
    figs = figure_set(summary, store)
    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts.items())) or "no runs"
    filt = ", ".join(f"{k}={v}" for k, v in summary.tags.items()) or "none"
    parts = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">store <code>{_e(summary.store)}</code> · filter: {_e(filt)} · '
        f"runs: {_e(counts)} · generated {when}</p>",
        "<h2>Warnings</h2>",
        _box("warn", summary.warnings) or "<p>None.</p>",
        _runs_section(summary),
        _fits_section(summary, figs),
        _isoflop_section(summary, figs),
        _hparams_section(summary, figs),
        _plan_section(summary),
    ]
    if "loss_curves" in figs:
        caption, build = figs["loss_curves"]
        parts += ["<h2>Loss curves</h2>", _img(build(), caption, "loss_curves")]
    body = "\n".join(p for p in parts if p)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n")


def _runs_section(s: Summary) -> str:
    cols = ["run_id", "N", "D", "C", "loss", "lr", "batch_tokens", "tags"]
    rows = s.runs.head(MAX_TABLE_ROWS).to_dict("records")
    more = (f"<p class='meta'>showing {MAX_TABLE_ROWS} of {len(s.runs)} finished runs</p>"
            if len(s.runs) > MAX_TABLE_ROWS else "")
    out = [f"<h2>Runs ({len(s.runs)} finished)</h2>", more,
           f'<div class="scroll">{_table(rows, cols, left=["run_id", "tags"])}</div>']
    if not s.other_runs.empty:
        out += ["<h3>Runs not used (failed or running)</h3>",
                _table(s.other_runs.to_dict("records"), ["run_id", "N", "D", "status", "error"],
                       left=["run_id", "status", "error"])]
    return "\n".join(out)


def _fit_notes(fit: FitResult) -> str:
    bits = [f"{fit.n_runs} runs", f"{0 if fit.draws is None else len(fit.draws)} bootstrap resamples"]
    if np.isfinite(fit.residual_std):
        bits.append(f"σ of log-loss residuals {fmt(fit.residual_std)}")
    if fit.holdout is not None:
        bits.append(f"held-out mean |relative error| {100 * fit.holdout.mean_abs_rel_err:.2f}%")
    if fit.data_range:
        bits.append("fitted on " + ", ".join(
            f"{k} ∈ [{fmt(lo)}, {fmt(hi)}]" for k, (lo, hi) in fit.data_range.items()))
    return f'<p class="meta">{_e("; ".join(bits))}</p>'


def _fits_section(s: Summary, figs: Mapping[str, tuple[str, Callable[[], Figure]]]) -> str:
    out = ["<h2>Loss-law fits</h2>"]
    for law, outcome in s.fits.items():
        out.append(f"<h3>{_e(law)}</h3>")
        if not outcome.ok or outcome.value is None:
            out.append(_box("error", [f"not identifiable: {outcome.error}"]))
            continue
        fit = outcome.value
        out += [f'<p class="formula">{_e(greek(fit.law.formula))}</p>', fit_table(fit),
                _fit_notes(fit), _box("warn", fit.warnings)]
        for suffix in ("loss", "residuals", "bootstrap"):
            if f"{law}_{suffix}" in figs:
                caption, build = figs[f"{law}_{suffix}"]
                out.append(_img(build(), caption, f"{law}_{suffix}"))
    return "\n".join(out)


def _isoflop_section(s: Summary, figs: Mapping[str, tuple[str, Callable[[], Figure]]]) -> str:
    out = ["<h2>Compute-optimal allocation (IsoFLOP)</h2>"]
    if not s.isoflop.ok:
        out.append(_box("error", [f"not identifiable: {s.isoflop.error}"]))
        return "\n".join(out)
    iso = s.isoflop.value
    assert iso is not None
    laws = []
    for law in (iso.approach1, iso.approach2):
        if law is not None:
            ci = law.ci
            laws.append({"approach": law.approach, "budgets": law.n_budgets,
                         "N_opt ∝ C^a: a": _ci(law.a, ci.get("a")),
                         "D_opt ∝ C^b: b": _ci(law.b, ci.get("b")),
                         "N_opt at plan": fmt(float(law.n_opt(s.compute))),
                         "D_opt at plan": fmt(float(law.d_opt(s.compute)))})
    out.append(_table(laws, list(laws[0]), left=[]) if laws else "")
    budgets = [{"C": b.C, "runs": b.n_runs, "N_opt": b.N_opt, "D_opt": b.D_opt,
                "loss at N_opt": b.loss_opt, "best run N": b.best.get("N"),
                "status": b.status} for b in iso.budgets]
    out += ["<h3>Budgets</h3>",
            _table(budgets, list(budgets[0]), left=["status"]) if budgets else "",
            _box("warn", iso.warnings)]
    for name in ("isoflop", "allocation", "isoflop_bootstrap"):
        if name in figs:
            caption, build = figs[name]
            out.append(_img(build(), caption, name))
    return "\n".join(out)


def _hparams_section(s: Summary, figs: Mapping[str, tuple[str, Callable[[], Figure]]]) -> str:
    out = ["<h2>Hyperparameter laws</h2>"]
    plan = s.plan.value if s.plan.ok else None
    rows = []
    for name, law in s.hparams.items():
        row = {"law": name, "optimal lr": power_form(law.lr),
               "optimal batch (tokens)": power_form(law.batch)}
        if plan is not None:
            at = law.predict(plan.N, plan.D)
            row["lr at plan"] = fmt(float(at["lr"]))
            row["batch at plan"] = fmt(float(at["batch_tokens"]))
        row["source"] = law.provenance.source
        rows.append(row)
    if plan is not None:
        out.append(f'<p class="meta">at the plan: N = {fmt(plan.N)}, D = {fmt(plan.D)}</p>')
    out.append(_table(rows, list(rows[0]) if rows else [],
                      left=["law", "optimal lr", "optimal batch (tokens)", "source"]))
    if s.hparams_error:
        out.append(_box("error", [f"fitted lr/batch law: not identifiable: {s.hparams_error}"]))
    for name, (caption, build) in figs.items():
        if name.startswith("lr_batch_"):
            out.append(_img(build(), caption, name))
    return "\n".join(out)


def _plan_section(s: Summary) -> str:
    out = [f"<h2>Plan at {_e(fmt(s.compute))} FLOPs</h2>"]
    if not s.plan.ok:
        out.append(_box("error", [f"no plan: {s.plan.error}"]))
        return "\n".join(out)
    p = s.plan.value

    def iv(x: Any) -> str:
        return f"[{fmt(x[0])}, {fmt(x[1])}]" if x else "n/a"

    rows = [
        {"quantity": "parameters N", "value": fmt(p.N), "interval": iv(p.N_interval)},
        {"quantity": "tokens D", "value": fmt(p.D), "interval": iv(p.D_interval)},
        {"quantity": "tokens per parameter", "value": fmt(p.tokens_per_param), "interval": ""},
        {"quantity": "loss (nats/token)", "value": fmt(p.loss, 4), "interval": iv(p.loss_interval)},
        {"quantity": "peak learning rate", "value": fmt(p.lr), "interval": iv(p.lr_interval)},
        {"quantity": "batch (tokens)", "value": f"{p.batch_tokens:,} ({p.batch_sequences} × "
         f"{p.seq_len})", "interval": iv(p.batch_interval)},
        {"quantity": "optimizer steps", "value": f"{p.steps:,}", "interval": ""},
        {"quantity": "weight decay", "value": fmt(p.weight_decay), "interval": ""},
    ]
    out += [_table(rows, ["quantity", "value", "interval"], left=["quantity"]),
            f'<p class="meta">{_e(p.mode)}; loss law {_e(p.loss_law.get("label", ""))}; '
            f"loss interval: {_e(p.loss_interval_source)}; τ: {_e(p.tau_source)}</p>",
            _box("warn", p.warnings)]
    return "\n".join(out)


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
) -> Path:
    """Fit, plan and write the self-contained HTML report of ``store`` (a RunStore or a path).

    With ``figures_dir`` every figure is also saved there as PNG, from the same fits.
    """
    store = _open(store)
    summary = summarise(store, tags=tags, laws=laws, compute=compute, bootstrap=bootstrap,
                        holdout=holdout, seed=seed)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(summary, store, title=title), encoding="utf-8")
    if figures_dir is not None:
        save_figures(store, figures_dir, summary=summary)
    return out


def save_figures(
    store: Any,
    out_dir: str | Path,
    *,
    summary: Summary | None = None,
    file_format: str = "png",
    dpi: int = 150,
    **summarise_kwargs: Any,
) -> dict[str, Path]:
    """Write every figure the store supports to ``out_dir/<name>.png`` (or svg/pdf)."""
    store = _open(store)
    summary = summary or summarise(store, **summarise_kwargs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, (_caption, build) in figure_set(summary, store).items():
        path = out_dir / f"{name}.{file_format}"
        build().savefig(path, format=file_format, dpi=dpi)
        written[name] = path
    return written


def _open(store: Any) -> Any:
    if isinstance(store, (str, Path)):
        from scalinglab.runs.store import RunStore

        return RunStore(store, read_only=True)
    return store
