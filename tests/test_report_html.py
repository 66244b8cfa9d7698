"""The HTML report is one self-contained file with the fitted numbers and their intervals; where
a fit is not identifiable it says so instead of printing numbers. And the CLI commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from report_synth import isoflop_runs, make_store
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.report import analysis
from scalinglab.report.html import build_report
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
    build_report(store_path, out / "report.html", bootstrap=BOOT, compute=1e21,
                 figures_dir=out / "figures")
    return out


@pytest.fixture(scope="module")
def report(out_dir: Path) -> str:
    return (out_dir / "report.html").read_text()


def test_report_is_self_contained(report):
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", report)
    assert "<link" not in report and "<script" not in report
    images = re.findall(r'<img [^>]*src="([^"]+)"', report)
    assert len(images) >= 4
    assert all(src.startswith("data:image/png;base64,") and len(src) > 10_000 for src in images)


def test_report_shows_the_fitted_numbers_with_their_intervals(report, store_path):
    fit = analysis.fit_loss_law(RunStore(store_path, read_only=True).runs(), "chinchilla", BOOT)
    lo, hi = fit.ci["alpha"]
    row = re.search(r"<tr><td class=\"l\">α</td><td class=\"r\">([^<]+)</td>"
                    r"<td class=\"l\">\[([^<,]+), ([^<\]]+)\]</td>", report)
    assert row is not None
    assert row.groups() == tuple(format_number(x) for x in (fit.params["alpha"], lo, hi))


def test_report_has_runs_hyperparameter_laws_plan_and_warnings(report):
    for heading in ("Warnings", "Runs (77 finished)", "Loss-law fits",
                    "Compute-optimal allocation (IsoFLOP)", "Hyperparameter laws",
                    "Plan at 1.00e21 FLOPs", "Loss curves"):
        assert f"<h2>{heading}</h2>" in report or f"<h2>{heading}" in report
    assert "CUDA out of memory" in report  # the failed run is listed with its error
    assert "lr = 1.79 · N^-0.713 · D^0.307" in report  # Step Law, as published
    assert "deepseek" in report
    for fig in ("chinchilla_loss", "isoflop", "allocation", "lr_batch_1", "loss_curves"):
        assert f'id="fig-{fig}"' in report
    # the plan is far beyond the runs: the report warns about extrapolation
    assert re.search(r"outside the range of loss law .*extrapolating", report)


def test_an_unidentifiable_fit_shows_the_reason_instead_of_numbers(tmp_path):
    runs = isoflop_runs().iloc[:3]  # three runs cannot pin five parameters
    with RunStore(tmp_path / "few.duckdb") as store:
        store.import_frame(runs, source="few")
    html = build_report(tmp_path / "few.duckdb", tmp_path / "few.html", bootstrap=5).read_text()
    section = html.split("<h2>Loss-law fits</h2>")[1].split("<h2>")[0]
    assert 'class="error"' in section and "not identifiable" in section
    assert "<table" not in section


def test_figures_are_saved_as_png_files_next_to_the_report(out_dir):
    saved = {p.stem: p for p in (out_dir / "figures").iterdir()}
    assert set(saved) == {"chinchilla_loss", "chinchilla_residuals", "chinchilla_bootstrap",
                          "isoflop", "allocation", "isoflop_bootstrap", "lr_batch_1",
                          "loss_curves"}
    for path in saved.values():
        assert path.suffix == ".png" and path.read_bytes().startswith(b"\x89PNG")


def test_report_command_writes_the_file_and_says_so(store_path, tmp_path):
    out = tmp_path / "r" / "report.html"
    result = CliRunner().invoke(app, ["report", "--store", str(store_path), "--out", str(out),
                                      "--bootstrap", "10", "--tag", "sweep:isoflop"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and out.exists()
    assert "Runs (35 finished)" in out.read_text()


@pytest.mark.parametrize(("args", "says"), [
    (["--store", "nowhere.duckdb"], "no run store here"),
    (["--tag", "dataset"], "KEY:VALUE"),
    (["--law", "moore"], "--law 'moore'"),
    (["--tag", "dataset:none-such"], "no finished runs"),
])
def test_report_command_errors_are_one_clear_line(store_path, tmp_path, args, says):
    args = ["--store", str(store_path), *args] if args[0] != "--store" else args
    result = CliRunner().invoke(app, ["report", *args, "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 2
    assert says in result.output and "Traceback" not in result.output


def test_help_shows_examples():
    for cmd in ("report", "serve"):
        result = CliRunner().invoke(app, [cmd, "--help"])
        assert result.exit_code == 0 and "Examples" in result.output
        assert f"scalinglab {cmd} --store" in result.output


def test_serve_refuses_a_missing_store():
    result = CliRunner().invoke(app, ["serve", "--store", "nowhere.duckdb"])
    assert result.exit_code == 2 and "no run store here" in result.output


def test_the_commands_do_not_import_matplotlib_or_fastapi_until_run():
    code = ("import sys, scalinglab.report.commands; "
            "print(sorted(m for m in ('matplotlib', 'fastapi', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tag_filters_accept_colon_or_equals_and_commas():
    assert analysis.parse_tag_filters(["dataset:c4", "sweep=a,arch:gpt"]) == {
        "dataset": "c4", "sweep": "a", "arch": "gpt"}


def test_a_grid_informs_the_loss_law_through_its_best_setting_only():
    runs = pd.DataFrame({"N": [1.0] * 3 + [2.0], "D": [5.0] * 4, "C": [30.0] * 3 + [60.0],
                         "lr": [1e-3, 1e-2, 1e-2, None], "loss": [3.0, 2.5, 2.7, 2.0]})
    assert analysis.loss_runs(runs)["loss"].tolist() == [2.5, 2.7, 2.0]


def test_replicates_of_one_setting_all_inform_the_loss_law():
    runs = pd.DataFrame({"N": [1.0, 1.0], "D": [5.0, 5.0], "C": [30.0, 30.0],
                         "lr": [None, None], "loss": [3.0, 2.5]})
    assert analysis.loss_runs(runs)["loss"].tolist() == [3.0, 2.5]
