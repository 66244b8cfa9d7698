"""The HTML report is one self-contained file that tells the whole story: a table of contents,
the fitted numbers with their intervals and the charts that show fit quality, the held-out
check, every run, one reconciled N_opt with the others beside it, and the plan in the runs'
terms; where a fit is not identifiable it says so instead of printing numbers. And the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from report_synth import isoflop_runs, make_store
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.report import analysis, sections
from scalinglab.report.html import build_report, plotly_js
from scalinglab.runs.store import RunStore
from scalinglab.summary import format_number

BOOT = 30


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("report") / "runs.duckdb")


@pytest.fixture(scope="module")
def out_dir(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the demo does: a report, and its figures as files, from one set of fits."""
    out = tmp_path_factory.mktemp("out")
    build_report(store_path, out / "report.html", bootstrap=BOOT, compute=1e21, holdout=3,
                 figures_dir=out / "figures")
    return out


@pytest.fixture(scope="module")
def report(out_dir: Path) -> str:
    return (out_dir / "report.html").read_text()


def section(html: str, sid: str) -> str:
    return html.split(f'<section id="{sid}">')[1].split("</section>")[0]


def embedded(html: str, sid: str) -> dict:
    body = re.search(rf'<script type="application/json" id="{sid}">(.*?)</script>', html, re.S)
    assert body is not None
    return json.loads(body.group(1))


def test_report_is_self_contained_with_plotly_embedded_once(report):
    assert report.count(plotly_js()) == 1
    outside = report.replace(plotly_js(), "")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", outside)
    assert "<link" not in outside and not re.search(r"<script[^>]*\bsrc=", report)
    assert "<img" not in outside  # charts are drawn in the page, not fetched


def test_every_chart_has_its_spec_and_every_spec_is_valid_plotly(report):
    go = pytest.importorskip("plotly.graph_objects")
    names = re.findall(r'data-chart="([^"]+)"', report)
    specs = embedded(report, "sl-specs")
    assert set(names) == set(specs)
    assert {"overview", "chinchilla_parity", "chinchilla_residuals", "chinchilla_corner", "isoflop",
            "allocation", "lr_batch_1", "loss_curves", "chinchilla_rolling"} <= set(names)
    for name in names:
        go.Figure(specs[name])


def test_a_table_of_contents_links_every_section(report):
    toc = report.split('<nav class="toc"')[1].split("</nav>")[0]
    ids = re.findall(r'<section id="([^"]+)">', report)
    assert re.findall(r'href="#([^"]+)"', toc) == ids
    for title in ("At a glance", "Warnings", "Held-out checks", "Rolling-forward check",
                  "Runs (77 finished)",
                  "Loss-law fits", "Compute-optimal allocation", "Hyperparameter laws",
                  "Plan at 1e+21 FLOPs", "Loss curves"):
        assert f">{title}</a>" in toc, title


def test_report_shows_the_fitted_numbers_with_their_intervals(report, store_path):
    fit = analysis.fit_loss_law(RunStore(store_path, read_only=True).runs(), "chinchilla", BOOT, 3)
    lo, hi = fit.ci["alpha"]
    row = re.search(r"<tr><td class=\"l\">α</td><td class=\"r\">([^<]+)</td>"
                    r"<td class=\"l\">\[([^<,]+), ([^<\]]+)\]</td>", report)
    assert row is not None
    assert row.groups() == tuple(format_number(x) for x in (fit.params["alpha"], lo, hi))


def test_the_held_out_check_is_in_the_report(report):
    part = section(report, "validation")
    assert "the 3 largest-compute runs, held out" in part
    assert part.count("<tr><td") == 3 and "mean |relative error|" in part


def test_without_a_held_out_check_the_report_says_how_to_get_one(store_path, tmp_path):
    html = build_report(store_path, tmp_path / "r.html", bootstrap=0, compute=1e21).read_text()
    assert "run the report with --holdout-top K" in section(html, "validation")


def test_every_run_is_listed_whole_and_printing_shows_everything(report):
    runs = report.split('<section id="runs">')[1].split("</section>")[0]
    assert runs.count("<tr data-id=") == 77 + 1  # every finished run, and the failed one
    assert "CUDA out of memory" in runs
    css = report.split("<style>")[1].split("</style>")[0]
    assert "max-height" not in css and 'class="scroll"' not in report  # no clipped scroll boxes
    assert "@media print" in css and "#drawer{display:none" in css.split("@media print")[1]


def test_one_reconciled_n_opt_with_the_others_beside_it_and_why(report, store_path):
    part = section(report, "allocation")
    assert "which the plan uses" in part and "Why they differ" in part
    for method in ("loss-law fit (chinchilla)", "IsoFLOP Approach 1", "IsoFLOP Approach 2"):
        assert f'<td class="l">{method}</td>' in part
    plan = re.search(r"<td class=\"l\">parameters N</td><td class=\"r\">([^<]+)</td>",
                     section(report, "plan"))
    answer = re.search(r"<b>N_opt = ([^ ]+) ", part)
    assert plan is not None and answer is not None and plan.group(1) == answer.group(1)
    # a comparison of the ratio (bootstrap of the difference), not of overlapping intervals
    assert ("consistent with 1" in part or "they differ beyond their joint uncertainty" in part
            or "no interval" in part or "no interval to compare" in part)
    assert "the intervals overlap" not in part


def test_the_plan_is_made_at_the_runs_sequence_length_and_batch(tmp_path):
    runs = isoflop_runs(budgets=(1e16, 1e17, 1e18), per_budget=5).assign(seq_len=128,
                                                                           batch_tokens=1024)
    with RunStore(tmp_path / "s.duckdb") as store:
        store.import_frame(runs, source="sweep")
    html = build_report(tmp_path / "s.duckdb", tmp_path / "r.html", bootstrap=0).read_text()
    plan = section(html, "plan")
    assert "sequence length 128 (the runs&#x27;)" in plan and "batch 1,024 tokens (every run&#x27;s)" in plan
    assert "8 sequences × 128" in plan
    told = build_report(tmp_path / "s.duckdb", tmp_path / "r2.html", bootstrap=0, seq_len=256,
                        batch_tokens=4096).read_text()
    assert "16 sequences × 256" in section(told, "plan")


def test_an_unidentifiable_fit_shows_the_reason_instead_of_numbers(tmp_path):
    runs = isoflop_runs().iloc[:3]  # three runs cannot pin five parameters
    with RunStore(tmp_path / "few.duckdb") as store:
        store.import_frame(runs, source="few")
    html = build_report(tmp_path / "few.duckdb", tmp_path / "few.html", bootstrap=5).read_text()
    part = section(html, "fits")
    assert 'class="error"' in part and "not identifiable" in part
    assert "<table" not in part


def test_a_registered_section_joins_the_report(store_path, tmp_path):
    from scalinglab.report import charts

    class Linked:  # any result with summary()
        def summary(self):
            from scalinglab.summary import Summary, Table

            t = Table("accuracy at loss", ["loss", "accuracy"])
            t.add_row(3.0, 0.41)
            return Summary(title="loss to accuracy", tables=[t])

    def downstream(summary, store):
        return sections.result_section(Linked(), id="downstream", title="Downstream", charts=[
            sections.Chart("downstream_link", "accuracy against loss", lambda: charts.series_chart(
                "accuracy", "loss", "accuracy", [{"name": "link", "x": [3.0, 2.5], "y": [0.41, 0.5]}]))])

    sections.register_section(downstream)
    try:
        html = build_report(store_path, tmp_path / "r.html", bootstrap=0).read_text()
    finally:
        sections._BUILDERS.remove(downstream)
    assert '<a href="#downstream">Downstream</a>' in html and "loss to accuracy" in html
    assert "downstream_link" in embedded(html, "sl-specs")


def test_figures_are_saved_as_png_files_next_to_the_report(out_dir):
    saved = {p.stem: p for p in (out_dir / "figures").iterdir()}
    assert set(saved) == {"chinchilla_parity", "chinchilla_residuals", "chinchilla_corner",
                          "chinchilla_rolling", "isoflop", "allocation", "isoflop_bootstrap",
                          "lr_batch_1", "loss_curves"}
    for path in saved.values():
        assert path.suffix == ".png" and path.read_bytes().startswith(b"\x89PNG")


def test_report_command_writes_the_file_says_so_and_shows_progress(store_path, tmp_path):
    out = tmp_path / "r" / "report.html"
    result = CliRunner().invoke(app, ["report", "--store", str(store_path), "--out", str(out),
                                      "--bootstrap", "10", "--tag", "sweep:isoflop",
                                      "--compute", "1.5e21"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and out.exists()
    stages = result.stderr.splitlines()
    assert stages[:2] == ["reading runs ...", "fitting chinchilla: optimising from every start ..."]
    assert "drawing allocation ..." in stages
    html = out.read_text()
    assert "Runs (35 finished)" in html and "Plan at 1.5e+21 FLOPs" in html


@pytest.mark.parametrize(("args", "says"), [
    (["--store", "nowhere.duckdb"], "no run store here"),
    (["--tag", "dataset"], "KEY=VALUE or KEY:VALUE"),
    (["--law", "moore"], "--law 'moore'"),
    (["--tag", "dataset:none-such"], "no finished runs"),
    (["--compute", "lots"], "--compute 'lots' is not a number"),
    (["--batch-tokens", "-4"], "--batch-tokens must be a positive number"),
])
def test_report_command_errors_are_one_clear_line(store_path, tmp_path, args, says):
    args = ["--store", str(store_path), *args] if args[0] != "--store" else args
    result = CliRunner().invoke(app, ["report", *args, "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 2
    assert says in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) <= 7 and result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_help_shows_examples():
    for cmd in ("report", "serve"):
        result = CliRunner().invoke(app, [cmd, "--help"])
        assert result.exit_code == 0 and "Examples" in result.output
        assert f"scalinglab {cmd} --store" in result.output


def test_serve_refuses_a_store_in_a_folder_that_does_not_exist():
    # a store that does not exist yet is waited for (the dashboard shows it empty); a folder
    # that does not exist is a typo, and no sweep will ever write there
    result = CliRunner().invoke(app, ["serve", "--store", "no/such/folder/runs.duckdb"])
    assert result.exit_code == 2 and "no run store here" in result.output


def test_the_commands_do_not_import_matplotlib_plotly_or_fastapi_until_run():
    code = ("import sys, scalinglab.report.commands; print(sorted(m for m in "
            "('matplotlib', 'fastapi', 'uvicorn', 'plotly') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tag_filters_accept_colon_or_equals_and_commas():
    assert analysis.parse_tag_filters(["dataset:c4", "sweep=a,arch:gpt", "url=http://x"]) == {
        "dataset": "c4", "sweep": "a", "arch": "gpt", "url": "http://x"}


def test_a_grid_informs_the_loss_law_through_its_best_setting_only():
    runs = pd.DataFrame({"N": [1.0] * 3 + [2.0], "D": [5.0] * 4, "C": [30.0] * 3 + [60.0],
                         "lr": [1e-3, 1e-2, 1e-2, None], "loss": [3.0, 2.5, 2.7, 2.0]})
    assert analysis.loss_runs(runs)["loss"].tolist() == [2.5, 2.7, 2.0]


def test_replicates_of_one_setting_all_inform_the_loss_law():
    runs = pd.DataFrame({"N": [1.0, 1.0], "D": [5.0, 5.0], "C": [30.0, 30.0],
                         "lr": [None, None], "loss": [3.0, 2.5]})
    assert analysis.loss_runs(runs)["loss"].tolist() == [3.0, 2.5]


def test_where_filters_the_report_as_it_filters_runs(store_path, tmp_path):
    """`report --where` takes the store's safe filter: the fit uses exactly the runs `runs
    --where` lists, and a statement in the filter is refused before anything is written."""
    runner = CliRunner()
    where = "N > 2e7"
    res = runner.invoke(app, ["report", "--store", str(store_path), "--where", where, "-b", "0",
                              "--no-rolling", "--out", str(tmp_path / "r.html"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    listed = RunStore(store_path, read_only=True).runs(where=where)
    every = RunStore(store_path, read_only=True).runs()
    assert len(listed) < len(every)
    assert set(out["fits"]["chinchilla"]["run_ids"]) <= set(listed["run_id"])
    bad = runner.invoke(app, ["report", "--store", str(store_path), "--where",
                              "1=1; COPY runs TO 'x.csv'", "--out", str(tmp_path / "bad.html")])
    assert bad.exit_code == 2 and not (tmp_path / "bad.html").exists()


def test_an_unidentified_n_opt_is_neither_divided_nor_quoted():
    """Runs that leave the loss law's N_opt unidentified: the table said "not identified" in
    the plan's row and "× 4.75" beside the IsoFLOP row, and the note below quoted the hidden
    value ("vs the plan's 1.756e+07"). A ratio to an unknown is no figure: blank, and said."""
    from scalinglab.stats import Estimate

    unknown = Estimate(1.756e7, 1e6, 1e9, identified=False, note="A not identified")
    plan = sections.Method("loss-law fit (chinchilla)", unknown, unknown, None, True, "")
    iso = sections.Method("IsoFLOP Approach 2", Estimate(8.337e7), Estimate(6e9), None, False, "")
    rec = sections.Reconciliation(3e18, [plan, iso])
    rows = {r[0]: r for r in rec.table().rows}
    assert rows["IsoFLOP Approach 2"][6] == "" and rows["loss-law fit (chinchilla)"][7] == "uses this"
    (verdict,) = rec.verdicts()
    assert verdict == ("IsoFLOP Approach 2: N_opt 8.337e+07; not compared with the plan's: N_opt "
                       "at this budget is not identified by loss-law fit (chinchilla)")
    assert "1.756" not in verdict and "1.756" not in rec.table().as_html()
    # the other way round: the plan's N_opt known, a method's not
    known = sections.Method("loss-law fit (chinchilla)", Estimate(2e7, 1e7, 4e7),
                            Estimate(2e9), None, True, "")
    lost = sections.Method("IsoFLOP Approach 1", unknown, unknown, None, False, "")
    rec = sections.Reconciliation(3e18, [known, lost])
    assert {r[0]: r for r in rec.table().rows}["IsoFLOP Approach 1"][6] == ""
    assert rec.verdicts() == ["IsoFLOP Approach 1: not compared with the plan's: N_opt at this "
                              "budget is not identified by IsoFLOP Approach 1"]


def test_the_header_names_the_where_filter_beside_the_tags(store_path, tmp_path):
    """A report of ``--where "N > 1e7 AND lr IS NULL"`` (29 of 77 runs) said "filter: none":
    read later, it passed for a report of every run."""
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", "--store", str(store_path), "--out", str(out),
                                   "--where", "N > 1e7 AND lr IS NULL", "--tag", "sweep:isoflop",
                                   "--bootstrap", "0", "--no-rolling"])
    assert res.exit_code == 0, res.output
    meta = re.search(r'<p class="meta">store .*?</p>', out.read_text()).group(0)
    assert "filter: sweep=isoflop, where N &gt; 1e7 AND lr IS NULL · runs: 29 finished" in meta
    plain = build_report(store_path, tmp_path / "all.html", bootstrap=0, rolling=False).read_text()
    assert "filter: none" in plain


def test_a_plan_made_without_a_fitted_law_says_it_is_a_published_laws(store_path, tmp_path):
    """--holdout-top 100, more runs than the fit has: the chinchilla fit failed, yet "At a glance" read
    "plan: N = 6.449e+08, D = 2.585e+10, loss 2.6", Hoffmann et al.'s published law's plan
    beside the user's runs with nothing to say so, and the held-out section advised "run the
    report with --holdout-top K"."""
    html = build_report(store_path, tmp_path / "r.html", bootstrap=0, holdout=100,
                        rolling=False).read_text()
    glance = re.search(r"<b>plan</b>: ([^<]*)", section(html, "overview")).group(1)
    assert glance.endswith("(no loss law fitted these runs: made with the published law "
                           "hoffmann2022, not from your runs)")
    assert ('<div class="warn"><ul><li>No loss law fitted these runs: made with the published '
            "law hoffmann2022, not from your runs.</li>") in section(html, "plan")
    held = section(html, "validation")
    assert "no law fitted these runs" in held and "--holdout-top K" not in held
    fitted = build_report(store_path, tmp_path / "ok.html", bootstrap=0, rolling=False).read_text()
    assert "published law" not in section(fitted, "overview") + section(fitted, "plan")
