"""Saved results in the report and the dashboard (``report --result``, ``serve --result``).

A link fitted by ``fit downstream --save``, a benchmark-vs-compute fit and a coverage fit, each
fitted on synthetic data by the real fitting functions and saved, become sections of the report
with their summary tables and their charts: the loss-to-metric link with its band, one trace
group per metric; the metric against compute with the fitted and the scored models apart and
the extrapolated compute shaded; coverage on a log-k axis with the target coverage marked. The
dashboard serves the same sections; a file that is not a result with a section stops the report
with one line naming the file, and nothing is written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from report_synth import isoflop_runs
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.downstream import fit_benchmark
from scalinglab.errors import InputError
from scalinglab.report import saved, server
from scalinglab.runs.store import RunStore
from scalinglab.summary import cell_text
from scalinglab.testtime import fit_coverage
from scalinglab.testtime.synthetic import simulate_counts

#: Gadre et al.'s RedPajama 17-task link, Err = eps - k exp(-gamma L)
EPS, K, GAMMA = 0.857, 2.206, 0.7146
#: a four-way benchmark: acc = 0.25 + 0.75 sigmoid(S (log10 C - X0))
S, X0, CUT = 1.4, 22.5, 1e23


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(3)
    loss = np.linspace(2.4, 4.2, 18)
    models = pd.DataFrame({"model": [f"m{i}" for i in range(len(loss))], "loss": loss,
                           "err_avg": EPS - K * np.exp(-GAMMA * loss) + rng.normal(0, 0.004, len(loss)),
                           "err_hard": 0.95 - 3.0 * np.exp(-0.9 * loss) + rng.normal(0, 0.004, len(loss))})
    models.to_csv(d / "models.csv", index=False)
    out = CliRunner().invoke(app, ["fit", "downstream", str(d / "models.csv"), "--metric", "err_*",
                                   "--loss", "loss", "--id", "model", "--bootstrap", "40",
                                   "--save", str(d / "link.json")])
    assert out.exit_code == 0, out.output

    C = np.geomspace(1e20, 3e24, 16)
    acc = 0.25 + 0.75 / (1 + np.exp(-S * (np.log10(C) - X0))) + rng.normal(0, 0.01, len(C))
    fit_benchmark(C, acc, metric="MMLU", chance=0.25, fit_below=CUT, bootstrap=40,
                  model_ids=[f"b{i}" for i in range(len(C))]).save(d / "benchmark.json")

    cov = fit_coverage(simulate_counts(-1.2, -0.45, n_problems=150, n_samples=64), bootstrap=40)
    cov.targets = (0.8,)
    cov.save(d / "coverage.json")

    with RunStore(d / "runs.duckdb") as store:
        store.import_frame(isoflop_runs(budgets=(1e16, 1e17, 1e18), per_budget=5), source="synthetic")
    return {"dir": d, "store": d / "runs.duckdb", "link": d / "link.json",
            "benchmark": d / "benchmark.json", "coverage": d / "coverage.json"}


@pytest.fixture(scope="module")
def report(files: dict[str, Path]) -> tuple[str, dict]:
    out = files["dir"] / "report.html"
    res = CliRunner().invoke(app, ["report", "--store", str(files["store"]), "--out", str(out),
                                   "--bootstrap", "0", "--result", str(files["link"]),
                                   "--result", str(files["benchmark"]),
                                   "--result", str(files["coverage"]), "--json"])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    specs = json.loads(re.search(r'id="sl-specs">(.*?)</script>', html, re.S).group(1).replace("<\\/", "</"))
    return html, {"json": json.loads(res.stdout), "specs": specs}


def section(html: str, prefix: str) -> str:
    m = re.search(rf'<section id="{prefix}[^"]*">.*?</section>', html, re.S)
    assert m, f"no section {prefix}"
    return m.group(0)


def named(spec: dict, text: str) -> list[dict]:
    return [t for t in spec["data"] if text in t.get("name", "")]


def test_each_saved_result_is_a_section_listed_in_the_contents(report):
    html, _ = report
    for i, file in enumerate(("link-json", "benchmark-json", "coverage-json"), start=1):
        assert f'<a href="#result-{i}-{file}">' in html
    assert "downstream links: 2 metrics from loss (link.json)" in html


def test_the_link_section_shows_the_summary_numbers_and_one_trace_group_per_metric(report, files):
    from scalinglab.results import load_result

    html, extra = report
    link = load_result(files["link"])
    part = section(html, "result-1")
    for metric in ("err_avg", "err_hard"):
        est = link[metric].param_estimates()
        for p in ("eps", "k", "gamma"):
            assert cell_text(est[p]) in part
    # the fitted 17-task link recovers Gadre et al.'s parameters
    assert link["err_avg"].params["gamma"] == pytest.approx(GAMMA, rel=0.1)
    spec = extra["specs"]["result1_link_table_link"]
    for metric in ("err_avg", "err_hard"):
        group = [t for t in spec["data"] if t.get("legendgroup") == metric]
        points = [t for t in group if t["mode"] == "markers"]
        assert len(points) == 1 and len(points[0]["x"]) == 18  # every model, as saved
        assert points[0]["customdata"][0] == ["m0"]
        assert len([t for t in group if t["mode"] == "lines" and "fill" not in t and "band" not in t["name"]]) == 1
        band = [t for t in group if t.get("fill") == "tonexty"]
        assert len(band) == 1 and "95% band" in band[0]["name"]
        lo = np.array(group[0]["y"], float)
        hi = np.array(band[0]["y"], float)
        line = np.array(named(spec, f"{metric}: fitted link")[0]["y"], float)
        assert np.all(lo <= line + 1e-12) and np.all(line <= hi + 1e-12) and np.any(hi > lo)


def test_the_benchmark_chart_marks_fitted_and_scored_models_and_shades_the_extrapolation(report, files):
    from scalinglab.results import load_result

    html, extra = report
    fit = load_result(files["benchmark"])
    part = section(html, "result-2")
    assert cell_text(fit.mae) in part and "models above" in part
    spec = extra["specs"]["result2_benchmark_fit_compute"]
    fitted, scored = named(spec, "fitted on"), named(spec, "scored, not fitted")
    assert len(fitted[0]["x"]) == len(fit.link.x) and len(scored[0]["x"]) == len(fit.test)
    assert max(fitted[0]["x"]) <= CUT < min(scored[0]["x"])
    assert fitted[0]["marker"]["symbol"] != scored[0]["marker"]["symbol"]
    assert len(named(spec, "sigmoid in log10 C")) == 1 and len(named(spec, "95% band")) == 2
    (region,) = [s for s in spec["layout"]["shapes"] if s.get("name") == "extrapolation"]
    assert region["type"] == "rect" and region["x0"] == pytest.approx(max(fitted[0]["x"]))
    assert region["x1"] > max(scored[0]["x"])
    assert any("extrapolation" in a["text"] for a in spec["layout"]["annotations"])
    floors = {s["name"]: s["y0"] for s in spec["layout"]["shapes"] if s.get("name") in ("floor", "ceiling")}
    assert floors == {"floor": 0.25, "ceiling": 1.0}
    assert spec["layout"]["xaxis"]["type"] == "log"


def test_the_coverage_chart_is_on_a_log_k_axis_with_the_target_marked(report, files):
    from scalinglab.results import load_result

    html, extra = report
    fit = load_result(files["coverage"])
    part = section(html, "result-3")
    k80 = fit.samples_for(0.8)
    assert "samples per problem for a coverage" in part and cell_text(k80) in part
    spec = extra["specs"]["result3_coverage_fit_coverage"]
    assert spec["layout"]["xaxis"]["type"] == "log"
    (obs,) = named(spec, "observed pass@k")
    assert obs["x"] == [float(k) for k in fit.ks] and "arrayminus" in obs["error_y"]
    assert len(named(spec, "fitted: coverage = exp(a * k^b)")) == 1 and len(named(spec, "band of the law")) == 2
    (target,) = named(spec, "coverage 0.8")
    assert target["y"] == [0.8] and target["x"][0] == pytest.approx(k80.value)


def test_report_json_includes_each_results_summary(report):
    _, extra = report
    results = extra["json"]["results"]
    assert [r["kind"] for r in results] == ["link_table", "benchmark_fit", "coverage_fit"]
    assert results[2]["result"]["samples_for"][0]["coverage"] == 0.8
    assert results[0]["tables"][0]["columns"][0] == "metric"


def test_static_figures_are_saved_for_the_results_charts(files, tmp_path):
    out = CliRunner().invoke(app, ["report", "--store", str(files["store"]), "--out",
                                   str(tmp_path / "r.html"), "--bootstrap", "0", "--figures",
                                   str(tmp_path / "figs"), "--result", str(files["benchmark"])])
    assert out.exit_code == 0, out.output
    png = tmp_path / "figs" / "result1_benchmark_fit_compute.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_dashboard_serves_the_same_sections(files, report):
    html, extra = report
    client = TestClient(server.create_app(files["store"], bootstrap=0,
                                          results=[files["link"], files["coverage"]]),
                        base_url="http://127.0.0.1:8765")
    got = client.get("/api/sections").json()["sections"]
    assert [s["id"] for s in got] == ["result-1-link-json", "result-2-coverage-json"]
    assert got[0]["html"] in section(html, "result-1").replace("\n", "")
    assert got[0]["charts"][0]["spec"] == extra["specs"]["result1_link_table_link"]
    assert got[1]["charts"][0]["spec"]["layout"]["xaxis"]["type"] == "log"


@pytest.mark.parametrize("content, says", [
    ("{not json", "not JSON"),
    ('{"kind": "nonsense"}', "not a saved scalinglab result"),
    ("isoflop_result", "has no report section"),
])
def test_a_bad_result_file_is_one_line_naming_it_and_no_report_is_written(files, tmp_path, content, says):
    bad = tmp_path / "bad.json"
    if content == "isoflop_result":  # a kind with no section (a loss fit has one now)
        from scalinglab.fit.isoflop import fit_isoflop

        fit_isoflop(isoflop_runs(), bootstrap=0).save(bad)
    else:
        bad.write_text(content)
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", "--store", str(files["store"]), "--out", str(out),
                                   "--result", str(files["link"]), "--result", str(bad)])
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "bad.json" in lines[0] and says in lines[0]
    assert "Traceback" not in res.output and not out.exists()
    with pytest.raises(InputError, match=says):
        saved.load_saved([bad])


def test_serve_refuses_a_bad_result_before_listening(files, tmp_path):
    res = CliRunner().invoke(app, ["serve", "--store", str(files["store"]), "--result",
                                   str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "missing.json" in res.output and "no such file" in res.output


def test_a_file_of_several_models_gives_one_section_each(files, tmp_path):
    one = json.loads(files["coverage"].read_text())
    (tmp_path / "two.json").write_text(json.dumps({"small": one, "large": one}))
    got = saved.load_saved([tmp_path / "two.json"])
    assert [s.name for s in got] == ["small", "large"]
    assert [s.title for s in saved.saved_sections(got)][0].endswith("(two.json, small)")


def test_pass_at_k_draws_observed_points_alone_and_a_verifier_is_its_summary(tmp_path):
    from scalinglab.testtime import Verifier, analyze_verifier, estimate_pass_at_k

    data = simulate_counts(-1.2, -0.45, n_problems=80, n_samples=32)
    estimate_pass_at_k(data, bootstrap=30).save(tmp_path / "pk.json")
    analyze_verifier(data, Verifier(0.9, 0.05), bootstrap=20).save(tmp_path / "ver.json")
    pk, ver = saved.saved_sections(saved.load_saved([tmp_path / "pk.json", tmp_path / "ver.json"]))
    (chart,) = pk.charts()
    spec = chart.spec()
    assert [t["name"] for t in spec["data"]] == ["observed pass@k (unbiased)"]
    assert spec["layout"]["xaxis"]["type"] == "log" and spec["data"][0]["x"][-1] == 32.0
    assert ver.charts() == [] and "verifier" in ver.title.lower()


def test_a_saved_loss_fit_and_loss_to_loss_law_are_sections_with_the_draws_of_each_parameter(
        files, tmp_path):
    """``fit chinchilla --save`` and ``fit loss-to-loss --save`` were refused by ``report
    --result`` ("has no report section"), though they are the fits a person saves most. A loss
    fit is its summary and its bootstrap draws (unidentified parameters faded and labelled); a
    loss-to-loss law is its per-group table."""
    from report_synth import synthetic_fit

    from scalinglab.downstream.l2l import fit_loss_to_loss

    synthetic_fit(isoflop_runs().assign(run_id=lambda d: [f"r{i}" for i in range(len(d))]),
                  unidentified=("E",)).save(tmp_path / "fit.json")
    x = np.linspace(2.2, 3.6, 14)
    pairs = pd.DataFrame({"x": x, "y": 0.9 * (x - 1.6) ** 1.1 + 1.9, "corpus": "c4"})
    fit_loss_to_loss(pairs, "x", "y", "corpus", bootstrap=20).save(tmp_path / "l2l.json")
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", "--store", str(files["store"]), "--out", str(out),
                                   "--bootstrap", "0", "--no-rolling", "--result",
                                   str(tmp_path / "fit.json"), "--result", str(tmp_path / "l2l.json")])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    fit_part, l2l_part = section(html, "result-1"), section(html, "result-2")
    assert "(fit.json)" in fit_part and 'data-chart="result1_loss_fit_corner"' in fit_part
    assert "not identified" in fit_part  # E, in its table
    specs = json.loads(re.search(r'id="sl-specs">(.*?)</script>', html, re.S).group(1)
                       .replace("<\\/", "</"))
    assert "E (not identified)" in json.dumps(specs["result1_loss_fit_corner"], ensure_ascii=False)
    assert "(l2l.json)" in l2l_part and "<td class=\"l\">c4</td>" in l2l_part


def test_saved_results_without_runs_are_a_report_of_them_alone(files, tmp_path):
    """A link fitted from a CSV and no run store (or a store with no finished run): ``report
    --result`` stopped with "no run store here" / "no finished runs". It writes the saved
    results' sections alone, says why, and shows no fit, check or plan of no runs (those were
    the published laws' figures); the missing store is not created. Without a result an empty
    store is still refused."""
    out, missing = tmp_path / "r.html", tmp_path / "nowhere.duckdb"
    res = CliRunner().invoke(app, ["report", "--store", str(missing), "--out", str(out),
                                   "--result", str(files["link"]), "--bootstrap", "0"])
    assert res.exit_code == 0, res.output
    assert "the report shows the saved results alone" in " ".join(res.output.split())
    assert not missing.exists()
    html = out.read_text()
    assert [m for m in re.findall(r'<section id="([^"]+)"', html)] == ["no-runs", "result-1-link-json"]
    assert f"No finished runs in {missing}" in html and "Plan at" not in html
    assert 'data-chart="result1_link_table_link"' in html
    with RunStore(tmp_path / "failed.duckdb") as store:
        store.add_run({"run_id": "f", "N": 1e7, "D": 1e8, "status": "failed", "error": "OOM"})
    res = CliRunner().invoke(app, ["report", "--store", str(tmp_path / "failed.duckdb"), "--out",
                                   str(out), "--result", str(files["link"]), "--bootstrap", "0",
                                   "--json"])
    assert res.exit_code == 0, res.output
    said = json.loads(res.stdout)
    assert said["plan"] is None and said["warnings"] == [] and len(said["results"]) == 1
    res = CliRunner().invoke(app, ["report", "--store", str(tmp_path / "failed.duckdb"), "--out",
                                   str(tmp_path / "none.html"), "--bootstrap", "0"])
    assert res.exit_code == 2 and "no finished runs" in res.output
    assert not (tmp_path / "none.html").exists()
